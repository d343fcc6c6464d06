import type { ConnectionOptions } from 'node:tls';
import { type PoolOptions, poolSchema } from '@bus/core';
import { child, fail, type Infer, opt } from '@bus/core/kit';
import type { SASLOptions } from 'kafkajs';

/** kafkajs log levels routed to the bus logger (`info` and `debug` lines go to its `debug`). */
export type KafkaLogLevel = 'nothing' | 'error' | 'warn' | 'info' | 'debug';

/** Retries of kafkajs requests (connect, metadata, produce, fetch, commit), with exponential backoff. */
export interface KafkaRetryOptions {
  /** Retries after the first attempt. @default 5 */
  retries?: number;
  /** Wait before the first retry, in ms; grows ×2 (with 20 % jitter) per retry. @default 300 */
  initialRetryTimeMs?: number;
  /** Upper bound of one wait, in ms. @default 30000 */
  maxRetryTimeMs?: number;
}

/** How publishes are written. */
export interface KafkaProducerOptions {
  /**
   * Idempotent producer: the broker drops duplicates of a retried request and keeps the order of each
   * partition. Needs `acks: -1`.
   * @default true
   */
  idempotent?: boolean;
  /** Replicas that must store a record before it counts as written: `-1` all in-sync replicas, `1` the leader, `0` none. @default -1 */
  acks?: -1 | 0 | 1;
  /** Compression of record batches. @default 'none' */
  compression?: 'none' | 'gzip';
  /** How long the broker may wait for the replicas' acknowledgement of one produce request, in ms. @default 30000 */
  ackTimeoutMs?: number;
  /**
   * A `publish` larger than this (sum of key, value and header bytes) is sent as several produce
   * requests of at most this size, in order; keep it under the broker's `message.max.bytes`
   * (1 MiB by default).
   * @default 900000
   */
  maxRequestBytes?: number;
}

/** Topic creation. */
export interface KafkaTopicOptions {
  /**
   * `true`: a topic that does not exist is created (with `partitions` and `replicationFactor`) through
   * the admin client before the first publish or subscribe that names it. `false`: publishing to or
   * subscribing to a missing topic fails with a `ConfigError` (the broker's own auto-creation is not used).
   * @default true
   */
  create?: boolean;
  /** Partitions of a created topic; the upper bound of members of one group that get work. @default 3 */
  partitions?: number;
  /**
   * Replicas of each partition of a created topic (at most the number of brokers). On a cluster use 3:
   * with 1, a broker that dies takes its partitions' messages with it.
   * @default 1
   */
  replicationFactor?: number;
  /**
   * `min.insync.replicas` of a created topic: with `producer.acks: -1`, a publish resolves only once
   * this many replicas have it, and fails (retryably) while fewer are in sync. On a cluster with
   * `replicationFactor: 3` use 2: an acknowledged publish then survives the loss of any one broker.
   * @default undefined (the broker's default, 1)
   */
  minInsyncReplicas?: number;
}

/** Consumer group members (one per subscription). */
export interface KafkaConsumerOptions {
  /**
   * A member that sends no heartbeat for this long is removed from its group and its partitions go to
   * the others, in ms. The broker accepts 6000 … 300000 by default
   * (`group.min.session.timeout.ms` / `group.max.session.timeout.ms`).
   * @default 30000
   */
  sessionTimeoutMs?: number;
  /** Heartbeat period, also while a long batch handler runs; below a third of `sessionTimeoutMs`. @default 3000 */
  heartbeatIntervalMs?: number;
  /**
   * How long the group waits for every member to rejoin during a rebalance, in ms. A member whose
   * handler runs longer is dropped; its unsettled messages go to another member.
   * @default 60000
   */
  rebalanceTimeoutMs?: number;
  /** Partitions of one member handled at the same time; order within a partition is always kept. @default 1 */
  partitionsConsumedConcurrently?: number;
  /** Upper bound of the bytes of one fetch response. @default 10485760 (10 MiB) */
  maxBytes?: number;
  /** Upper bound of the bytes fetched from one partition per request. @default 1048576 (1 MiB) */
  maxBytesPerPartition?: number;
  /** The broker answers a fetch once it has this many bytes (or after `pollIntervalMs`). @default 1 */
  minBytes?: number;
  /**
   * `subscribe` resolves once the member joined its group and made its first fetch, or after this
   * long, in ms (then it goes on joining in the background and logs a warning).
   * @default 30000
   */
  joinTimeoutMs?: number;
  /** A nacked or unsettled message is fetched again after this pause of its partition, in ms. @default 200 */
  nackDelayMs?: number;
  /**
   * Upper bound of `Subscription.close()`: the running batch finishes, its settlements are committed,
   * the member leaves the group, in ms.
   * @default 30000
   */
  closeTimeoutMs?: number;
  /**
   * After kafkajs gives up on a member (a crash it does not restart by itself), the transport starts
   * it again after this delay, doubled per consecutive crash up to 30 s, in ms.
   * @default 1000
   */
  restartDelayMs?: number;
}

/** Options of {@link kafka}. Only `brokers` is required. */
export interface KafkaTransportOptions {
  /** Transport name in metrics, logs and errors. @default 'kafka' */
  name?: string;
  /** Bootstrap brokers, `host:port`; a comma-separated string is split. */
  brokers: readonly string[] | string;
  /** Client id sent to the brokers (quotas, broker logs); members add `-<consumerName>`. @default 'bus' */
  clientId?: string;
  /** TLS: `true` or Node `tls.connect` options; passed to kafkajs as they are. @default undefined (plaintext) */
  ssl?: boolean | ConnectionOptions;
  /** SASL authentication (`plain`, `scram-sha-256`, `scram-sha-512`, `aws`, `oauthbearer`); passed to kafkajs. @default undefined */
  sasl?: SASLOptions;
  /** TCP (and TLS) connect timeout per broker connection, in ms. @default 3000 */
  connectionTimeoutMs?: number;
  /**
   * Deadline of a whole connect of a producer, the admin client or a member, in ms: TCP, TLS, SASL
   * and the first requests, retries included. A broker that accepts connections and never answers
   * (a wrong port, a half-dead proxy) fails `start()`/`publish()` with a `ConnectionError` after it.
   * @default 10000
   */
  connectTimeoutMs?: number;
  /** Deadline of one request to a broker, in ms. @default 30000 */
  requestTimeoutMs?: number;
  /**
   * Deadline of one `publish` request (checking or creating the topic the first time, acquiring a
   * producer, connecting it, sending and the broker's acknowledgement, retries included), in ms. Past it the records fail with a retryable
   * `TimeoutError` (code `TIMEOUT`) and the producer is replaced; a record may still have been
   * written (retrying it may duplicate it, as with any at-least-once publish).
   * @default 10000
   */
  publishTimeoutMs?: number;
  /** Retries of failed requests. @default { retries: 5, initialRetryTimeMs: 300, maxRetryTimeMs: 30000 } */
  retry?: KafkaRetryOptions;
  /** Lowest kafkajs log level passed to the bus logger. @default 'info' */
  logLevel?: KafkaLogLevel;
  /** Pool of producers (each one its own broker connections). @default POOL_DEFAULTS of @bus/core (min 0, max 10, …) */
  pool?: PoolOptions;
  /** @default { idempotent: true, acks: -1, compression: 'none', ackTimeoutMs: 30000, maxRequestBytes: 900000 } */
  producer?: KafkaProducerOptions;
  /** @default { create: true, partitions: 3, replicationFactor: 1 } */
  topics?: KafkaTopicOptions;
  /** @default see {@link KafkaConsumerOptions} */
  consumer?: KafkaConsumerOptions;
  /** Delayed delivery (delay tier topics). @default { fetchWaitMs: 100 } */
  delays?: KafkaDelayOptions;
}

/**
 * Delayed delivery: a delayed record waits in the delay tier topics of its topic
 * (`<topic>.delay.100ms|1s|10s|1m|10m|1h`), forwarded by every process subscribed to the topic.
 */
export interface KafkaDelayOptions {
  /**
   * Longest wait of one fetch of the tier forwarder, in ms: a tier partition paused until its head is
   * due is fetched again at most this late after it resumes, so it bounds the lateness per hop.
   * @default 100
   */
  fetchWaitMs?: number;
}

const HOUR = 3_600_000;
const GIB = 1_073_741_824;

const brokerList = opt.custom<string[]>((v, at) => {
  let brokers: string[];
  if (typeof v === 'string') {
    brokers = v
      .split(',')
      .map((b) => b.trim())
      .filter((b) => b.length > 0);
    if (brokers.length === 0) fail(at, 'must name at least one host:port', v);
  } else {
    brokers = opt.array(opt.string()).parse(v, at);
  }
  brokers.forEach((broker, i) => {
    if (!/^[^\s:]+:\d{1,5}$/.test(broker) && !/^\[[0-9a-fA-F:.]+\]:\d{1,5}$/.test(broker)) {
      // `user:password@host:port` is no broker address; never echo what precedes the @.
      fail(child(at, i), 'must be host:port', broker.replace(/^.*@/, '***@'));
    }
  });
  return brokers;
});

const objectOf = <T>(what: string) =>
  opt.custom<T>((v, at) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(at, `must be ${what}`, v);
    return v as T;
  });

const CONSUMER_DEFAULTS = {
  sessionTimeoutMs: 30_000,
  heartbeatIntervalMs: 3000,
  rebalanceTimeoutMs: 60_000,
  partitionsConsumedConcurrently: 1,
  maxBytes: 10_485_760,
  maxBytesPerPartition: 1_048_576,
  minBytes: 1,
  joinTimeoutMs: 30_000,
  nackDelayMs: 200,
  closeTimeoutMs: 30_000,
  restartDelayMs: 1000,
};

/**
 * The one declaration of {@link KafkaTransportOptions}: each option's check and `@default`. The
 * resolved type ({@link ResolvedOptions}), {@link DEFAULTS} and the closed key sets come from it.
 */
export const kafkaSchema = opt.object({
  name: opt.string().default('kafka'),
  brokers: brokerList,
  clientId: opt.string().default('bus'),
  ssl: opt
    .custom<boolean | ConnectionOptions>((v, at) => (typeof v === 'boolean' ? v : objectOf<ConnectionOptions>('true, false or tls.connect options').parse(v, at)))
    .optional(),
  sasl: objectOf<SASLOptions>('an object ({ mechanism, … })')
    .refine((sasl, at) => {
      opt.oneOf(['plain', 'scram-sha-256', 'scram-sha-512', 'aws', 'oauthbearer']).parse((sasl as { mechanism?: unknown }).mechanism, child(at, 'mechanism'));
    })
    .optional(),
  connectionTimeoutMs: opt.int(1, HOUR).default(3000),
  connectTimeoutMs: opt.int(1, HOUR).default(10_000),
  requestTimeoutMs: opt.int(1, HOUR).default(30_000),
  publishTimeoutMs: opt.int(1, HOUR).default(10_000),
  retry: opt
    .object({
      retries: opt.int(0, 1000).default(5),
      initialRetryTimeMs: opt.int(1, HOUR).default(300),
      maxRetryTimeMs: opt.int(1, HOUR).default(30_000),
    })
    .default(() => ({ retries: 5, initialRetryTimeMs: 300, maxRetryTimeMs: 30_000 })),
  logLevel: opt.oneOf(['nothing', 'error', 'warn', 'info', 'debug']).default('info'),
  pool: poolSchema,
  producer: opt
    .object({
      idempotent: opt.boolean().default(true),
      acks: opt
        .custom<-1 | 0 | 1>((v, at) => {
          if (v !== -1 && v !== 0 && v !== 1) fail(at, 'must be -1, 0 or 1', v);
          return v;
        })
        .default(-1),
      compression: opt.oneOf(['none', 'gzip']).default('none'),
      ackTimeoutMs: opt.int(1, HOUR).default(30_000),
      maxRequestBytes: opt.int(1024, GIB).default(900_000),
    })
    .refine((p, at) => {
      if (p.idempotent && p.acks !== -1) fail(child(at, 'acks'), 'must be -1 when producer.idempotent is true (set idempotent: false to use 0 or 1)', p.acks);
    })
    .default(() => ({ idempotent: true, acks: -1 as const, compression: 'none' as const, ackTimeoutMs: 30_000, maxRequestBytes: 900_000 })),
  topics: opt
    .object({
      create: opt.boolean().default(true),
      partitions: opt.int(1, 100_000).default(3),
      replicationFactor: opt.int(1, 100).default(1),
      minInsyncReplicas: opt.int(1, 100).optional(),
    })
    .refine((t, at) => {
      if (t.minInsyncReplicas !== undefined && t.minInsyncReplicas > t.replicationFactor) {
        fail(child(at, 'minInsyncReplicas'), `must not exceed topics.replicationFactor (${t.replicationFactor})`, t.minInsyncReplicas);
      }
    })
    .default(() => ({ create: true, partitions: 3, replicationFactor: 1 })),
  consumer: opt
    .object({
      sessionTimeoutMs: opt.int(1000, HOUR).default(30_000),
      heartbeatIntervalMs: opt.int(100, HOUR).default(3000),
      rebalanceTimeoutMs: opt.int(1000, HOUR).default(60_000),
      partitionsConsumedConcurrently: opt.int(1, 1000).default(1),
      maxBytes: opt.int(1024, GIB).default(10_485_760),
      maxBytesPerPartition: opt.int(1024, GIB).default(1_048_576),
      minBytes: opt.int(1, GIB).default(1),
      joinTimeoutMs: opt.int(0, HOUR).default(30_000),
      nackDelayMs: opt.int(0, HOUR).default(200),
      closeTimeoutMs: opt.int(0, HOUR).default(30_000),
      restartDelayMs: opt.int(0, HOUR).default(1000),
    })
    .refine((c, at) => {
      if (c.heartbeatIntervalMs >= c.sessionTimeoutMs) {
        fail(child(at, 'heartbeatIntervalMs'), `must be lower than consumer.sessionTimeoutMs (${c.sessionTimeoutMs}); about a third of it is usual`, c.heartbeatIntervalMs);
      }
      if (c.maxBytesPerPartition > c.maxBytes) fail(child(at, 'maxBytesPerPartition'), `must not exceed consumer.maxBytes (${c.maxBytes})`, c.maxBytesPerPartition);
    })
    .default(() => ({ ...CONSUMER_DEFAULTS })),
  delays: opt.object({ fetchWaitMs: opt.int(1, 60_000).default(100) }).default(() => ({ fetchWaitMs: 100 })),
});


/** {@link KafkaTransportOptions} checked, with every default filled in. */
export type ResolvedOptions = Infer<typeof kafkaSchema>;

/** Validates the options once, at construction; every error names the option's path, e.g. `consumer.sessionTimeoutMs`. */
export function resolveOptions(options: unknown): ResolvedOptions {
  const at = { source: 'bus/kafka', path: '' };
  if (typeof options !== 'object' || options === null || Array.isArray(options)) fail({ ...at, path: 'options' }, 'must be an object', options);
  const o = kafkaSchema.parse(options, at);
  if (o.producer.idempotent && o.retry.retries < 1) fail(child(at, 'retry.retries'), 'must be at least 1 when producer.idempotent is true', o.retry.retries);
  return o;
}

/** Default values of {@link KafkaTransportOptions} (pool defaults are `POOL_DEFAULTS` of `@bus/core`). */
export const DEFAULTS = (() => {
  const { brokers: _brokers, ...defaults } = kafkaSchema.parse({ brokers: 'localhost:9092' }, { source: 'bus/kafka', path: '' });
  return defaults;
})();
