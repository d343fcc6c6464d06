import { type JobLabels, type JobOutcome, type Metrics, OptionReader, type PoolStats } from '@bus/core';
import { Counter, Gauge, Histogram, type Registry, register } from 'prom-client';

/**
 * Default buckets of `messagebus_job_cost`, in seconds: 0.5 ms … 5 min. Handlers are usually fast (a
 * database write), sometimes slow (a report, a call to a third party).
 */
export const DEFAULT_COST_BUCKETS: readonly number[] = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300,
];

/**
 * Default buckets of `messagebus_job_delay`, in seconds: 1 ms … 1 h. Delay grows with backlog, so the
 * upper buckets reach further than the cost's: a consumer hours behind must not hide in `+Inf`.
 */
export const DEFAULT_DELAY_BUCKETS: readonly number[] = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600,
];

/**
 * Default buckets of `messagebus_delay_lateness`, in seconds: 1 ms … 10 min. A delayed message is due
 * to be handled within ~100 ms of its time; the upper buckets catch a backlog or no running consumer.
 */
export const DEFAULT_LATENESS_BUCKETS: readonly number[] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 600];

/** Options of {@link prometheus}. */
export interface PrometheusOptions {
  /**
   * prom-client registry the metrics are registered on. Metrics already registered there under the
   * same names (another bus in the same process, a second `prometheus()` call) are reused.
   * @default prom-client's default `register`
   */
  registry?: Registry;
  /**
   * Prefix of every metric name, joined with `_`: `namespace: 'shop'` gives `shop_messagebus_job_cost`.
   * @default none (names start with `messagebus_`: `messagebus_job_cost`, …)
   */
  namespace?: string;
  /**
   * Upper bounds (seconds) of the `messagebus_job_cost` buckets, ascending.
   * @default {@link DEFAULT_COST_BUCKETS} (0.5 ms … 5 min)
   */
  costBuckets?: readonly number[];
  /**
   * Upper bounds (seconds) of the `messagebus_job_delay` buckets, ascending.
   * @default {@link DEFAULT_DELAY_BUCKETS} (1 ms … 1 h)
   */
  delayBuckets?: readonly number[];
  /**
   * Upper bounds (seconds) of the `messagebus_delay_lateness` buckets, ascending.
   * @default {@link DEFAULT_LATENESS_BUCKETS} (1 ms … 10 min)
   */
  latenessBuckets?: readonly number[];
}

type JobLabel = 'module' | 'consumer' | 'event' | 'transport';
const JOB_LABELS = ['module', 'consumer', 'event', 'transport'] as const;

/** The prom-client metrics behind a {@link PrometheusMetrics}, e.g. to read or reset them in tests. */
export interface BusPromMetrics {
  /** `messagebus_job_cost`: handler duration of one attempt, seconds; labels module, consumer, event, transport, outcome. */
  jobCost: Histogram<JobLabel | 'outcome'>;
  /** `messagebus_job_delay`: handling start − `publishedAt`, seconds; labels module, consumer, event, transport. */
  jobDelay: Histogram<JobLabel>;
  /** `messagebus_published_total`: labels transport, topic, event, outcome (`ok` / `error`). */
  published: Counter<'transport' | 'topic' | 'event' | 'outcome'>;
  /** `messagebus_consumed_total`: messages handed to a handler (once per message, retries not counted). */
  consumed: Counter<JobLabel>;
  /** `messagebus_skipped_total`: messages of events the consumer does not subscribe to, acknowledged unhandled. */
  skipped: Counter<JobLabel>;
  /** `messagebus_retried_total`: failed attempts followed by another attempt. */
  retried: Counter<JobLabel>;
  /** `messagebus_dead_lettered_total`: messages written to the dead letter; `reason` is the error code or class. */
  deadLettered: Counter<JobLabel | 'reason'>;
  /**
   * `messagebus_messages_total`: every delivered message, once, by how it ended; labels module,
   * consumer, event, transport, outcome (`handled`, `skipped`, `dead_lettered`, `released`, `retried`).
   */
  messages: Counter<JobLabel | 'outcome'>;
  /** `messagebus_consumer_lag`: messages a group is behind on a topic; labels transport, group, topic. */
  consumerLag: Gauge<'transport' | 'group' | 'topic'>;
  /** `messagebus_delayed_waiting`: delayed messages of a topic stored and not yet moved to it; labels transport, topic. */
  delayedWaiting: Gauge<'transport' | 'topic'>;
  /** `messagebus_delay_lateness`: handling start − due time of a delayed or broker-retried message, seconds. */
  delayLateness: Histogram<JobLabel>;
  /** `messagebus_pool_size`: connections in a pool; labels transport, pool. */
  poolSize: Gauge<'transport' | 'pool'>;
  /** `messagebus_pool_in_use`: connections borrowed from a pool. */
  poolInUse: Gauge<'transport' | 'pool'>;
  /** `messagebus_pool_waiting`: callers waiting for a pooled connection. */
  poolWaiting: Gauge<'transport' | 'pool'>;
}

/** A core {@link Metrics} implementation on prom-client. */
export interface PrometheusMetrics extends Metrics {
  /** The registry the metrics live on (serve it with {@link metricsHandler} / {@link startMetricsServer}). */
  readonly registry: Registry;
  /** The underlying prom-client metrics. */
  readonly metrics: BusPromMetrics;
}

/** Longest `reason` label kept: the label is meant for error codes and class names, not messages. */
const MAX_REASON = 64;

/**
 * Creates the bus's Prometheus metrics on a prom-client registry and returns the hooks the bus calls.
 * Pass it as `createBus({ metrics: prometheus() })`.
 *
 * Metrics (names get the `namespace` prefix when set):
 * - `messagebus_job_cost` histogram (s): module, consumer, event, transport, outcome (`success`, `retry`, `dead_letter`)
 * - `messagebus_job_delay` histogram (s): module, consumer, event, transport
 * - `messagebus_published_total`: transport, topic, event, outcome (`ok`, `error`)
 * - `messagebus_consumed_total`, `messagebus_skipped_total`, `messagebus_retried_total`: module, consumer, event, transport
 * - `messagebus_dead_lettered_total`: module, consumer, event, transport, reason
 * - `messagebus_messages_total`: module, consumer, event, transport, outcome (`handled`, `skipped`, `dead_lettered`, `released`, `retried`)
 * - `messagebus_consumer_lag` gauge: transport, group, topic
 * - `messagebus_delayed_waiting` gauge: transport, topic
 * - `messagebus_delay_lateness` histogram (s): module, consumer, event, transport
 * - `messagebus_pool_size`, `messagebus_pool_in_use`, `messagebus_pool_waiting` gauges: transport, pool
 *
 * Registration is eager (at this call); nothing is served: expose the registry with
 * {@link startMetricsServer}, {@link metricsHandler} or, across worker processes,
 * {@link supervisorMetricsServer} + {@link exposeToSupervisor} (`bus run` / `supervise()`) or
 * {@link clusterMetricsServer} + {@link exposeToClusterPrimary} (`node:cluster`). The hooks never throw.
 *
 * @throws {ConfigError} on an invalid option, or when the registry holds a metric of one of these
 *   names with another type or other labels
 */
export function prometheus(options: PrometheusOptions = {}): PrometheusMetrics {
  const r = new OptionReader('bus/prometheus', '');
  r.closed(r.object('options', options), ['registry', 'namespace', 'costBuckets', 'delayBuckets', 'latenessBuckets']);
  const registry = options.registry ?? register;
  if (typeof (registry as Partial<Registry>)?.getSingleMetric !== 'function' || typeof (registry as Partial<Registry>).registerMetric !== 'function') {
    r.fail('registry', 'must be a prom-client Registry', registry);
  }
  const namespace = r.optionalString('namespace', options.namespace);
  if (namespace !== undefined && !/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(namespace)) {
    r.fail('namespace', 'must be a valid Prometheus metric name prefix ([a-zA-Z_:][a-zA-Z0-9_:]*)', namespace);
  }
  const costBuckets = buckets(r, 'costBuckets', options.costBuckets, DEFAULT_COST_BUCKETS);
  const delayBuckets = buckets(r, 'delayBuckets', options.delayBuckets, DEFAULT_DELAY_BUCKETS);
  const latenessBuckets = buckets(r, 'latenessBuckets', options.latenessBuckets, DEFAULT_LATENESS_BUCKETS);
  const name = (base: string) => (namespace ? `${namespace}_${base}` : base);
  const make = <M extends Counter<string> | Gauge<string> | Histogram<string>>(
    type: 'counter' | 'gauge' | 'histogram',
    base: string,
    labelNames: readonly string[],
    create: (metricName: string) => M,
  ): M => {
    const metricName = name(base);
    const existing = registry.getSingleMetric(metricName) as unknown as { type?: string; labelNames?: readonly string[] } | undefined;
    if (!existing) return create(metricName);
    // Two buses in one process share the registry: reuse what the first one registered, but only
    // when it measures the same thing, or the second bus would write into someone else's metric.
    const sameLabels = existing.labelNames?.length === labelNames.length && labelNames.every((l) => existing.labelNames?.includes(l));
    if (existing.type !== type || !sameLabels) {
      r.fail(
        'registry',
        `already holds a metric "${metricName}" of type ${existing.type} with labels [${existing.labelNames?.join(', ')}]; ` +
          `@bus/prometheus needs a ${type} with labels [${labelNames.join(', ')}] (set "namespace" to avoid the clash)`,
        metricName,
      );
    }
    return existing as unknown as M;
  };
  const registers = [registry];
  const counter = <L extends string>(base: string, help: string, labelNames: readonly L[]) =>
    make('counter', base, labelNames, (n) => new Counter<L>({ name: n, help, labelNames, registers }));
  const gauge = <L extends string>(base: string, help: string, labelNames: readonly L[], aggregator: 'sum' | 'max') =>
    make('gauge', base, labelNames, (n) => new Gauge<L>({ name: n, help, labelNames, registers, aggregator }));

  const m: BusPromMetrics = {
    jobCost: make('histogram', 'messagebus_job_cost', [...JOB_LABELS, 'outcome'], (n) =>
      new Histogram({
        name: n,
        help: 'Time a handler attempt took, in seconds (outcome: success, retry, dead_letter).',
        labelNames: [...JOB_LABELS, 'outcome'] as const,
        buckets: [...costBuckets],
        registers,
      }),
    ),
    jobDelay: make('histogram', 'messagebus_job_delay', JOB_LABELS, (n) =>
      new Histogram({
        name: n,
        help: 'Time from publishing a message to the start of its handling, in seconds.',
        labelNames: JOB_LABELS,
        buckets: [...delayBuckets],
        registers,
      }),
    ),
    published: counter('messagebus_published_total', 'Messages published (outcome: ok, error).', ['transport', 'topic', 'event', 'outcome']),
    consumed: counter('messagebus_consumed_total', 'Messages handed to a handler (once per message; retries are not counted).', JOB_LABELS),
    skipped: counter('messagebus_skipped_total', 'Messages of events the consumer does not subscribe to, acknowledged unhandled.', JOB_LABELS),
    retried: counter('messagebus_retried_total', 'Failed handler attempts followed by another attempt.', JOB_LABELS),
    deadLettered: counter('messagebus_dead_lettered_total', 'Messages written to the dead letter (reason: error code or class).', [...JOB_LABELS, 'reason']),
    messages: counter(
      'messagebus_messages_total',
      'Delivered messages by how they ended (outcome: handled, skipped, dead_lettered, released for redelivery, retried through the broker).',
      [...JOB_LABELS, 'outcome'],
    ),
    // Every worker of a group sees the same lag: across cluster workers take the largest, not the sum.
    consumerLag: gauge('messagebus_consumer_lag', 'Messages a consumer group is behind on a topic.', ['transport', 'group', 'topic'], 'max'),
    // Every moving process reads the same sorted set / tiers: take the largest, not the sum.
    delayedWaiting: gauge('messagebus_delayed_waiting', 'Delayed messages of a topic stored and not yet delivered to it.', ['transport', 'topic'], 'max'),
    delayLateness: make('histogram', 'messagebus_delay_lateness', JOB_LABELS, (n) =>
      new Histogram({
        name: n,
        help: 'Time from the due time of a delayed (or broker-retried) message to the start of its handling, in seconds.',
        labelNames: JOB_LABELS,
        buckets: [...latenessBuckets],
        registers,
      }),
    ),
    poolSize: gauge('messagebus_pool_size', 'Connections in a pool.', ['transport', 'pool'], 'sum'),
    poolInUse: gauge('messagebus_pool_in_use', 'Connections borrowed from a pool.', ['transport', 'pool'], 'sum'),
    poolWaiting: gauge('messagebus_pool_waiting', 'Callers waiting for a pooled connection.', ['transport', 'pool'], 'sum'),
  };

  const job = (l: JobLabels): Record<JobLabel, string> => ({ module: l.module, consumer: l.consumer, event: l.event, transport: l.transport });
  return {
    registry,
    metrics: m,
    published(labels, count, ok) {
      guard(() => m.published.inc({ transport: labels.transport, topic: labels.topic, event: labels.event, outcome: ok ? 'ok' : 'error' }, count));
    },
    jobStarted(labels, delaySeconds) {
      guard(() => {
        const l = job(labels);
        m.consumed.inc(l);
        m.jobDelay.observe(l, delaySeconds);
      });
    },
    jobFinished(labels, costSeconds, outcome: JobOutcome) {
      guard(() => m.jobCost.observe({ ...job(labels), outcome }, costSeconds));
    },
    retried(labels) {
      guard(() => m.retried.inc(job(labels)));
    },
    deadLettered(labels, reason) {
      guard(() => m.deadLettered.inc({ ...job(labels), reason: String(reason).slice(0, MAX_REASON) || 'unknown' }));
    },
    skipped(labels) {
      guard(() => m.skipped.inc(job(labels)));
    },
    settled(labels, outcome) {
      guard(() => m.messages.inc({ ...job(labels), outcome }));
    },
    poolStats(labels, stats: PoolStats) {
      guard(() => {
        const l = { transport: labels.transport, pool: labels.pool };
        m.poolSize.set(l, stats.size);
        m.poolInUse.set(l, stats.borrowed);
        m.poolWaiting.set(l, stats.pending);
      });
    },
    lag(labels, lag) {
      guard(() => m.consumerLag.set({ transport: labels.transport, group: labels.group, topic: labels.topic }, lag));
    },
    delayedWaiting(labels, waiting) {
      guard(() => m.delayedWaiting.set({ transport: labels.transport, topic: labels.topic }, waiting));
    },
    delayLateness(labels, latenessSeconds) {
      guard(() => m.delayLateness.observe(job(labels), latenessSeconds));
    },
  };
}

/** The hooks run on the message path: a metrics failure (e.g. a reset registry) must never fail a message. */
function guard(fn: () => void): void {
  try {
    fn();
  } catch {
    // Deliberately ignored: see above.
  }
}

function buckets(r: OptionReader, key: string, value: readonly number[] | undefined, fallback: readonly number[]): readonly number[] {
  if (value === undefined) return fallback;
  if (!Array.isArray(value) || value.length === 0) r.fail(key, 'must be a non-empty array of numbers', value);
  value.forEach((b, i) => {
    if (typeof b !== 'number' || !Number.isFinite(b) || b <= 0) r.fail(`${key}[${i}]`, 'must be a positive finite number (seconds)', b);
    if (i > 0 && b <= (value[i - 1] as number)) r.fail(`${key}[${i}]`, 'must be greater than the bucket before it (ascending order)', b);
  });
  return value;
}
