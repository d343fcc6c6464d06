import type { EventMap, EventName, Handler, Middleware } from './events.js';
import { fail, type Infer, type OptionPath, opt } from './kit/schema.js';
import type { DefaultPolicies } from './policies/index.js';
import type { Policy } from './policy.js';
import type { StartFrom } from './transport.js';

/** The topics and events one consumer subscribes to. */
export interface ConsumerDeclaration<E extends string = string> {
  /** Topics (Kafka topics, Redis streams) read by this consumer. */
  topics: readonly string[];
  /** Events handled; other events on these topics are acknowledged and skipped. */
  events: readonly E[];
}

/** Consumer name → declaration. */
export type ConsumersDeclaration<E extends string = string> = Record<string, ConsumerDeclaration<E>>;

/** Retry of a failing handler before the message goes to the dead letter. */
export interface RetryOptions {
  /**
   * - `in-process`: the consumer sleeps through each back-off holding the message (short back-offs;
   *   with `concurrency: 1` the consumer's other messages wait meanwhile);
   * - `redeliver`: the message is handed back to the broker (the group's retry topic, delayed by the
   *   back-off, attempt count in the `bus-attempt` header) and acknowledged, so the consumer goes on
   *   at once; later messages of a retrying key are parked behind it. Needs a transport with
   *   `capabilities.delays`.
   * @default 'in-process'
   */
  mode?: 'in-process' | 'redeliver';
  /** Attempts in all, the first one included. @default 3 */
  attempts?: number;
  /** Delay before the second attempt; doubles each time. @default 100 */
  baseDelayMs?: number;
  /** Upper bound of one delay. @default 5000 */
  maxDelayMs?: number;
  /** Fraction of each delay drawn at random (0 … 1), so failing consumers don't retry in step. @default 0.2 */
  jitter?: number;
}

/**
 * A business module: its consumers, how they read, and the handler.
 *
 * Each consumer is its own consumer group `<module>-<consumer>`: every consumer gets every message of
 * its topics, and the processes running this module share them.
 */
export interface ModuleDefinition<M extends EventMap, E extends EventName<M> = EventName<M>> {
  name: string;
  /** Transport name (a key of `createBus({ transports })`). @default the bus's `defaultTransport` */
  transport?: string;
  /**
   * Consumer name → topics and events. May be a function (async, e.g. loaded from a database or a
   * config service), called once at start.
   */
  consumers: ConsumersDeclaration<E> | (() => ConsumersDeclaration<E> | Promise<ConsumersDeclaration<E>>);
  handler: Handler<M, E>;
  /** Messages read per call. @default 10 */
  batchSize?: number;
  /** Longest wait for new messages per read, in ms (a blocking read where the broker has one). @default 1000 */
  pollIntervalMs?: number;
  /**
   * Messages of one consumer handled at once, across batches: above 1, transports that can (Redis)
   * fetch the next batch while slow handlers of the previous one still run. A message with a key
   * starts only after the previous one with that key finished, so per-key order holds at any
   * concurrency. @default 1
   */
  concurrency?: number;
  /** @default { mode: 'in-process', attempts: 3, baseDelayMs: 100, maxDelayMs: 5000, jitter: 0.2 } */
  retry?: RetryOptions;
  /**
   * A message the broker has delivered this many times without it being settled (its consumer
   * crashed each time) goes to the dead letter without running again. @default 5
   */
  maxDeliveries?: number;
  /**
   * Retry topic of a consumer group, read by that group only, for `retry.mode: 'redeliver'`.
   * @default group => `${group}.retry`
   */
  retryTopic?: (group: string) => string;
  /** Dead-letter topic of a source topic. @default topic => `${topic}.dlq` */
  deadLetterTopic?: (topic: string) => string;
  /** Where a consumer group that does not exist yet starts. @default 'earliest' */
  startFrom?: StartFrom;
  /** How long `close()` waits for running handlers before aborting their `signal`. @default 10000 */
  drainTimeoutMs?: number;
  /** How often each consumer's lag is read from the transport and reported to metrics; 0 turns it off. @default 15000 */
  lagIntervalMs?: number;
  /**
   * Your policies around the handler, outermost first; they run inside the retry policy, so each
   * attempt passes through them.
   */
  middleware?: readonly Middleware<M>[];
  /**
   * The consumer policies, outermost first, given the defaults built from this module's options.
   * Reorder, drop or add (a {@link Policy} sees the raw record, the decoded envelope and the outcome).
   * @default (p) => [p.deadLetter, p.maxDeliveries, p.tracing, p.retry, p.metrics]
   */
  policies?: (defaults: DefaultPolicies) => readonly Policy[];
  /** Runs once before consuming starts. */
  onStart?: () => void | Promise<void>;
}

export const MODULE_DEFAULTS = {
  batchSize: 10,
  pollIntervalMs: 1000,
  concurrency: 1,
  maxDeliveries: 5,
  startFrom: 'earliest' as StartFrom,
  drainTimeoutMs: 10_000,
  lagIntervalMs: 15_000,
  retry: { mode: 'in-process' as 'in-process' | 'redeliver', attempts: 3, baseDelayMs: 100, maxDelayMs: 5000, jitter: 0.2 },
} as const;

/**
 * Time allowed on top of a module's `drainTimeoutMs` for what follows the drain: acknowledging what
 * finished, leaving the group, closing connections. Whoever bounds a whole shutdown (the router's
 * hard stop, a supervisor's kill timer) adds this once.
 */
export const DRAIN_SLACK_MS = 5000;

/** Identity function that gives a module definition its types. */
export function defineModule<M extends EventMap, E extends EventName<M> = EventName<M>>(
  definition: ModuleDefinition<M, E>,
): ModuleDefinition<M, E> {
  return definition;
}

/** The closed schema of one consumer declaration. */
export const consumerSchema = opt.object({
  topics: opt.array(opt.string()),
  events: opt.array(opt.string()),
});

/** Consumer name → declaration, at least one. */
export const consumersSchema = opt.record(consumerSchema, 'must declare at least one consumer');

const d = MODULE_DEFAULTS;

/** The closed schema of a module definition: its type, defaults and checks in one place. */
export const moduleSchema = opt.object({
  name: opt.string(),
  transport: opt.string().optional(),
  consumers: opt.custom<ModuleDefinition<EventMap>['consumers']>((value, at) =>
    typeof value === 'function' ? (value as ModuleDefinition<EventMap>['consumers']) : consumersSchema.parse(value, at),
  ),
  handler: opt.func<Handler<EventMap>>(),
  batchSize: opt.int(1, 100_000).default(d.batchSize),
  pollIntervalMs: opt.int(1, 3_600_000).default(d.pollIntervalMs),
  concurrency: opt.int(1, 10_000).default(d.concurrency),
  retry: opt
    .object({
      mode: opt.oneOf(['in-process', 'redeliver']).default(d.retry.mode),
      attempts: opt.int(1, 100).default(d.retry.attempts),
      baseDelayMs: opt.int(0).default(d.retry.baseDelayMs),
      maxDelayMs: opt.int(0).default(d.retry.maxDelayMs),
      jitter: opt.number(0, 1).default(d.retry.jitter),
    })
    .default(() => ({ ...d.retry })),
  maxDeliveries: opt.int(1).default(d.maxDeliveries),
  retryTopic: opt.func<(group: string) => string>().default(() => (group: string) => `${group}.retry`),
  deadLetterTopic: opt.func<(topic: string) => string>().default(() => (topic: string) => `${topic}.dlq`),
  startFrom: opt.oneOf(['earliest', 'latest']).default(d.startFrom),
  drainTimeoutMs: opt.int(0).default(d.drainTimeoutMs),
  lagIntervalMs: opt.int(0).default(d.lagIntervalMs),
  middleware: opt.array(opt.func<Middleware<EventMap>>(), false).default(() => []),
  policies: opt.func<(defaults: DefaultPolicies) => readonly Policy[]>().optional(),
  onStart: opt.func<() => void | Promise<void>>().optional(),
});

/** A module definition with every default filled in and every value checked. */
export type ResolvedModule = Infer<typeof moduleSchema> & { transport: string };

/**
 * Validates a module definition against {@link moduleSchema}; throws a `ConfigError` naming
 * `modules.<name>.<key>` (and "did you mean …?" for a misspelt key).
 */
export function resolveModule(definition: unknown, defaultTransport: string, transports: readonly string[]): ResolvedModule {
  const root: OptionPath = { source: 'bus', path: 'modules' };
  const name =
    typeof definition === 'object' && definition !== null && typeof (definition as { name?: unknown }).name === 'string' && (definition as { name: string }).name
      ? (definition as { name: string }).name
      : '<module>';
  const resolved = moduleSchema.parse(definition, { ...root, path: `modules.${name}` });
  const transport = resolved.transport ?? defaultTransport;
  if (!transports.includes(transport)) {
    fail({ ...root, path: `modules.${name}.transport` }, `must name a configured transport (${transports.join(', ')})`, transport);
  }
  return { ...resolved, transport };
}
