/** Labels of a handled message. */
export interface JobLabels {
  module: string;
  consumer: string;
  event: string;
  transport: string;
  topic: string;
}

/** How a handled message ended. `retry`: this attempt failed and another follows. */
export type JobOutcome = 'success' | 'retry' | 'dead_letter';

/**
 * How a delivered message ended, counted by {@link Metrics.settled}: `handled`, `skipped` (an event
 * the consumer does not subscribe to), `dead_lettered`, or `released` to the broker for redelivery
 * (the consumer was stopping, or the dead letter could not be written), or `retried` through the
 * broker (a broker-side retry stored it to come again later). Every delivery ends in exactly one, so
 * "nothing vanished" is checkable: deliveries = handled + skipped + dead_lettered + released + retried.
 */
export type MessageOutcome = 'handled' | 'skipped' | 'dead_lettered' | 'released' | 'retried';

export interface PoolStats {
  size: number;
  available: number;
  borrowed: number;
  pending: number;
  min: number;
  max: number;
}

/**
 * Hooks the bus calls as messages flow. Every method must be cheap and must not throw; the default
 * ({@link noopMetrics}) does nothing. `@bus/prometheus` implements them on prom-client.
 */
export interface Metrics {
  /** `count` messages of `event` were published (ok) or failed to publish. */
  published(labels: { transport: string; topic: string; event: string }, count: number, ok: boolean): void;
  /** A handler is about to run; `delaySeconds` = now − publishedAt. */
  jobStarted(labels: JobLabels, delaySeconds: number): void;
  /** A handler attempt ended. */
  jobFinished(labels: JobLabels, costSeconds: number, outcome: JobOutcome): void;
  /** A failed attempt will be retried. */
  retried(labels: JobLabels): void;
  /** A message went to the dead letter. `event` is `unknown` when it could not be decoded. */
  deadLettered(labels: JobLabels, reason: string): void;
  /** A message of an event the consumer does not subscribe to was acknowledged unhandled. */
  skipped(labels: JobLabels): void;
  /** A delivered message was settled with this outcome (once per delivery). */
  settled(labels: JobLabels, outcome: MessageOutcome): void;
  /** Size of a connection pool. */
  poolStats(labels: { transport: string; pool: string }, stats: PoolStats): void;
  /** Messages a group is behind on a topic. */
  lag(labels: { transport: string; group: string; topic: string }, lag: number): void;
  /**
   * Delayed messages of a topic stored and not yet due or not yet moved (a gauge), as seen by the
   * process that moves them (Redis: the sorted set's size; Kafka: the delay tiers' lag).
   */
  delayedWaiting(labels: { transport: string; topic: string }, waiting: number): void;
  /**
   * A delayed (or broker-retried) message reached a handler `latenessSeconds` after its due time
   * (`bus-deliver-at`), observed once per delivery.
   */
  delayLateness(labels: JobLabels, latenessSeconds: number): void;
}

const noop = () => {};

/** The default: records nothing. */
export const noopMetrics: Metrics = {
  published: noop,
  jobStarted: noop,
  jobFinished: noop,
  retried: noop,
  deadLettered: noop,
  skipped: noop,
  settled: noop,
  poolStats: noop,
  lag: noop,
  delayedWaiting: noop,
  delayLateness: noop,
};
