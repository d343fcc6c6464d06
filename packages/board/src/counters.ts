import { type JobLabels, type JobOutcome, type Metrics, noopMetrics } from '@bus/core';

/** Handled and failed counts of one consumer group on one topic, since the process started. */
export interface ConsumerCounts {
  /** Handler attempts that succeeded. */
  handled: number;
  /** Handler attempts that failed (retried or dead-lettered). */
  failed: number;
  /** Messages sent to the dead letter. */
  deadLettered: number;
}

/** {@link Metrics} that count handled and failed messages per consumer and topic for the board. */
export interface CountingMetrics extends Metrics {
  /** Counts of `<module>-<consumer>` on `topic`; zeros when nothing was seen. */
  counts(module: string, consumer: string, topic: string): ConsumerCounts;
}

/**
 * Wraps a {@link Metrics} (e.g. `@bus/prometheus`'s) so the board can show handled and failed
 * counts: pass the result as the bus's `metrics` and as `BoardOptions.counters`. Every call is
 * forwarded to `inner` unchanged; counting is a map update.
 *
 * ```ts
 * const counters = countingMetrics(prometheus());
 * const bus = createBus({ transports, metrics: counters });
 * const board = createBoard({ bus, modules, counters });
 * ```
 *
 * @param inner the metrics to forward to. @default noopMetrics
 */
export function countingMetrics(inner: Metrics = noopMetrics): CountingMetrics {
  const counts = new Map<string, ConsumerCounts>();
  const keyOf = (module: string, consumer: string, topic: string) => JSON.stringify([module, consumer, topic]);
  const entry = (l: JobLabels) => {
    const key = keyOf(l.module, l.consumer, l.topic);
    let c = counts.get(key);
    if (!c) {
      c = { handled: 0, failed: 0, deadLettered: 0 };
      counts.set(key, c);
    }
    return c;
  };
  return {
    published: (labels, count, ok) => inner.published(labels, count, ok),
    jobStarted: (labels, delay) => inner.jobStarted(labels, delay),
    jobFinished(labels: JobLabels, cost: number, outcome: JobOutcome) {
      const c = entry(labels);
      if (outcome === 'success') c.handled++;
      else c.failed++;
      inner.jobFinished(labels, cost, outcome);
    },
    retried: (labels) => inner.retried(labels),
    deadLettered(labels, reason) {
      entry(labels).deadLettered++;
      inner.deadLettered(labels, reason);
    },
    skipped: (labels) => inner.skipped(labels),
    poolStats: (labels, stats) => inner.poolStats(labels, stats),
    lag: (labels, lag) => inner.lag(labels, lag),
    counts: (module, consumer, topic) => ({ ...(counts.get(keyOf(module, consumer, topic)) ?? { handled: 0, failed: 0, deadLettered: 0 }) }),
  };
}
