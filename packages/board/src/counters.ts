import { type JobLabels, type JobOutcome, type Metrics, noopMetrics } from '@bus/core';
import { answerSupervisor, type Supervisor } from '@bus/runtime';

/** Handled and failed counts of one consumer group on one topic, since the process started. */
export interface ConsumerCounts {
  /** Handler attempts that succeeded. */
  handled: number;
  /** Handler attempts that failed (retried or dead-lettered). */
  failed: number;
  /** Messages sent to the dead letter. */
  deadLettered: number;
}

/** Every count of a process (or of all workers, summed): one entry per module, consumer and topic. */
export type CountsSnapshot = (ConsumerCounts & { module: string; consumer: string; topic: string })[];

/** {@link Metrics} that count handled and failed messages per consumer and topic for the board. */
export interface CountingMetrics extends Metrics {
  /** Counts of `<module>-<consumer>` on `topic`; zeros when nothing was seen. */
  counts(module: string, consumer: string, topic: string): ConsumerCounts;
  /** Every count, as plain data (for {@link answerCounts}). */
  snapshot(): CountsSnapshot;
}

/** Where the board gets counts: counters of this process, or a function (e.g. {@link workerCounts}). */
export type CountsSource = CountingMetrics | (() => Promise<CountsSnapshot>);

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
  const counts = new Map<string, CountsSnapshot[number]>();
  const keyOf = (module: string, consumer: string, topic: string) => JSON.stringify([module, consumer, topic]);
  const entry = (l: JobLabels) => {
    const key = keyOf(l.module, l.consumer, l.topic);
    let c = counts.get(key);
    if (!c) {
      c = { module: l.module, consumer: l.consumer, topic: l.topic, handled: 0, failed: 0, deadLettered: 0 };
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
    settled: (labels, outcome) => inner.settled(labels, outcome),
    delayedWaiting: (labels, count) => inner.delayedWaiting(labels, count),
    delayLateness: (labels, seconds) => inner.delayLateness(labels, seconds),
    poolStats: (labels, stats) => inner.poolStats(labels, stats),
    lag: (labels, lag) => inner.lag(labels, lag),
    counts(module, consumer, topic) {
      const c = counts.get(keyOf(module, consumer, topic));
      return { handled: c?.handled ?? 0, failed: c?.failed ?? 0, deadLettered: c?.deadLettered ?? 0 };
    },
    snapshot: () => [...counts.values()].map((c) => ({ ...c })),
  };
}

/** The supervisor topic the workers' counts travel on (see {@link answerCounts}). */
export const COUNTS_TOPIC = 'bus-board-counts';

/**
 * In a `bus run` worker (the config's `worker` hook): answers the supervisor's requests for this
 * process's counts, so a board in the `bus run` parent can sum them ({@link workerCounts}). Does
 * nothing outside a supervised worker. Returns the function that stops answering.
 */
export function answerCounts(counters: CountingMetrics): () => void {
  return answerSupervisor(COUNTS_TOPIC, () => counters.snapshot());
}

/**
 * In the `bus run` parent (the config's `supervisor` hook): the counts of every worker, asked over
 * IPC and summed, for `BoardOptions.counters`. A worker that does not answer within `timeoutMs` is
 * left out (its counts are missing from that refresh, and a restarted worker starts from zero).
 *
 * @param timeoutMs longest wait for the workers' answers. @default 1000
 */
export function workerCounts(supervisor: Pick<Supervisor, 'askWorkers'>, timeoutMs = 1000): () => Promise<CountsSnapshot> {
  return async () => {
    const replies = await supervisor.askWorkers<CountsSnapshot>(COUNTS_TOPIC, { timeoutMs });
    const sum = new Map<string, CountsSnapshot[number]>();
    for (const reply of replies) {
      if (!reply.ok || !Array.isArray(reply.value)) continue;
      for (const c of reply.value) {
        const key = JSON.stringify([c.module, c.consumer, c.topic]);
        const s = sum.get(key) ?? { module: c.module, consumer: c.consumer, topic: c.topic, handled: 0, failed: 0, deadLettered: 0 };
        s.handled += c.handled;
        s.failed += c.failed;
        s.deadLettered += c.deadLettered;
        sum.set(key, s);
      }
    }
    return [...sum.values()];
  };
}
