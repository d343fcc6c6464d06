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
  /** Size of a connection pool. */
  poolStats(labels: { transport: string; pool: string }, stats: PoolStats): void;
  /** Messages a group is behind on a topic. */
  lag(labels: { transport: string; group: string; topic: string }, lag: number): void;
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
  poolStats: noop,
  lag: noop,
};
