import type { EventMap, EventName, Handler, Middleware } from './events.js';
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

/** Retry of a failing handler, in process, before the message goes to the dead letter. */
export interface RetryOptions {
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
  /** Longest wait for new messages per read, in ms (blocking where the broker can). @default 1000 */
  pollIntervalMs?: number;
  /**
   * Messages of one consumer handled at once. Messages with the same key never run at the same time,
   * so per-key order holds at any concurrency. @default 1
   */
  concurrency?: number;
  /** @default { attempts: 3, baseDelayMs: 100, maxDelayMs: 5000, jitter: 0.2 } */
  retry?: RetryOptions;
  /**
   * A message the broker has delivered this many times without it being settled (its consumer
   * crashed each time) goes to the dead letter without running again. @default 5
   */
  maxDeliveries?: number;
  /** Dead-letter topic of a source topic. @default topic => `${topic}.dlq` */
  deadLetterTopic?: (topic: string) => string;
  /** Where a consumer group that does not exist yet starts. @default 'earliest' */
  startFrom?: StartFrom;
  /** How long `close()` waits for running handlers before aborting their `signal`. @default 10000 */
  drainTimeoutMs?: number;
  /** How often each consumer's lag is read from the transport and reported to metrics; 0 turns it off. @default 15000 */
  lagIntervalMs?: number;
  /** Policies around the handler, outermost first. */
  middleware?: readonly Middleware<M>[];
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
  retry: { attempts: 3, baseDelayMs: 100, maxDelayMs: 5000, jitter: 0.2 },
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
