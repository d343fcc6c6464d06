import type { Envelope } from './envelope.js';
import type { JobLabels, Metrics } from './metrics.js';
import type { Logger } from './logger.js';
import type { Tracing } from './tracing.js';
import type { IncomingMessage } from './transport.js';

/**
 * How a message left a consumer's policies:
 * - `handled`: the handler succeeded; the message is acknowledged;
 * - `dead_lettered`: it is stored in the dead letter; the message is acknowledged;
 * - `released`: not handled (the consumer is stopping, or the dead letter could not be written);
 *   the broker delivers it again;
 * - `retried`: handed back to the broker to come again later (a broker-side retry, or parked behind
 *   a retrying message of its key); the message is acknowledged.
 */
export type Outcome = 'handled' | 'dead_lettered' | 'released' | 'retried';

/** The services of the bus, for policies. */
export interface PolicyServices {
  metrics: Metrics;
  tracing: Tracing;
  logger: Logger;
}

/** One decoded message on its way through a consumer's policies to the handler. */
export interface Delivery {
  readonly module: string;
  readonly consumer: string;
  /** Consumer group, `<module>-<consumer>`. */
  readonly group: string;
  readonly transport: string;
  /** The message as the transport delivered it. Policies read it; the module runner settles it. */
  readonly record: IncomingMessage;
  readonly envelope: Envelope;
  /** Labels for metrics. */
  readonly labels: JobLabels;
  /** Messages in the batch this one came in. */
  readonly batchSize: number;
  /** Attempt number, 1 first; a retry policy raises it (a broker-side retry reads it from `bus-attempt`). */
  attempt: number;
  /** Set once an in-process retry runs the rest of the chain again for this delivery. */
  retried?: boolean;
  /** Aborted as soon as the consumer starts stopping: start nothing new (a back-off ends in `released`). */
  readonly stopping: AbortSignal;
  /** Aborted when the drain deadline has passed: the handler's `signal`. */
  readonly deadline: AbortSignal;
  readonly services: PolicyServices;
  /**
   * Whether a failure of the current attempt is the last one (no retry follows). A retry policy
   * replaces it for the policies inside it; without one, every failure is final. Call it on the
   * delivery (`delivery.isFinal(error)`): the built-in retry policy's reads `this`.
   */
  isFinal(error: unknown): boolean;
  /**
   * Writes the original record to the consumer's dead-letter topic with the reason headers
   * (`DLQ_HEADER`); resolves `true` once stored, `false` when the broker refused it.
   */
  deadLetter(error: unknown, attempts: number): Promise<boolean>;
  /**
   * Hands the original record back to the broker, to be delivered to this consumer group only, no
   * sooner than `deliverAt` (Unix ms), with `attempt` in the `bus-attempt` header (through the
   * group's retry topic and the transport's delayed delivery). `parked`: the message has not failed,
   * it waits behind a retrying message of its key. Resolves `true` once stored. Absent when the
   * transport has no delayed delivery.
   */
  retryLater?(deliverAt: number, attempt: number, parked: boolean): Promise<boolean>;
}

/** The rest of the chain, down to the handler. Throws when the handler failed. */
export type Step = (delivery: Delivery) => Promise<Outcome>;

/**
 * A consumer policy (retry, dead letter, max deliveries, tracing, metrics, or yours), in the style of
 * Watermill's router middleware: it gets the next step and returns a step. A policy may call `next`
 * several times (retry), turn a failure into an outcome (dead letter), or refuse to call it.
 * A step that throws past every policy releases the message for redelivery.
 */
export type Policy = (next: Step) => Step;

/** Wraps `last` in `policies`, the first one outermost. */
export function composePolicies(policies: readonly Policy[], last: Step): Step {
  return toStep(composeSyncPolicies(policies, last));
}

/**
 * A step that may finish synchronously: an outcome, a thrown failure, or a promise of either.
 * @internal the built-in policies and the module runner use it so that a handler that returns
 * synchronously costs no promise per policy; user policies keep the {@link Step} contract.
 */
export type SyncStep = (delivery: Delivery) => Outcome | Promise<Outcome>;

/** @internal a built-in policy's synchronous-capable form. */
export type SyncPolicy = (next: SyncStep) => SyncStep;

const SYNC: unique symbol = Symbol.for('bus.policy.sync');

type WithSync = Policy & { [SYNC]?: SyncPolicy };

/**
 * @internal A {@link Policy} from its synchronous-capable form: as a `Policy` it keeps the promise
 * contract; composed by the runner next to other built-in ones, it skips the promise of every layer
 * while the handler returns synchronously.
 */
export function syncPolicy(sync: SyncPolicy): Policy {
  const policy: WithSync = (next) => toStep(sync(next));
  policy[SYNC] = sync;
  return policy;
}

/** @internal {@link composePolicies} keeping synchronous outcomes synchronous through built-in policies. */
export function composeSyncPolicies(policies: readonly Policy[], last: SyncStep): SyncStep {
  let next = last;
  for (let i = policies.length - 1; i >= 0; i--) {
    const policy = policies[i] as WithSync;
    const sync = policy[SYNC];
    // A user policy gets a Step that always returns a promise, as its contract says.
    next = sync ? sync(next) : policy(toStep(next));
  }
  return next;
}

/** A {@link SyncStep} as a {@link Step}: a synchronous outcome or throw becomes a promise. */
export function toStep(step: SyncStep): Step {
  return (delivery) => {
    try {
      const result = step(delivery);
      return result instanceof Promise ? result : Promise.resolve(result);
    } catch (error) {
      return Promise.reject(error);
    }
  };
}

/**
 * @internal Runs `next`; a failure, thrown or rejected, goes to `onFailure`. A synchronous outcome
 * stays synchronous and allocates nothing.
 */
export function runCatching(next: SyncStep, delivery: Delivery, onFailure: (error: unknown, delivery: Delivery) => Outcome | Promise<Outcome>): Outcome | Promise<Outcome> {
  let result: Outcome | Promise<Outcome>;
  try {
    result = next(delivery);
  } catch (error) {
    return onFailure(error, delivery);
  }
  return result instanceof Promise ? result.then(undefined, (error: unknown) => onFailure(error, delivery)) : result;
}
