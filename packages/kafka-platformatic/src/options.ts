import type { ConnectionOptions as TlsOptions } from 'node:tls';
import { type Infer, type OptionPath, type OptionSchema, fail, opt } from '@bus/core/kit';
import type { SASLOptions } from '@platformatic/kafka';

const SOURCE = 'bus/kafka-platformatic';
const HOUR = 3_600_000;

/** A closed section whose absence means "every default": `{}` resolved through the section itself. */
function section<S extends Record<string, OptionSchema<unknown>>>(shape: S) {
  const schema = opt.object(shape);
  return schema.default(() => schema.parse({}, { source: SOURCE, path: '' }));
}

const brokerPattern = /^(?:[^\s:]+|\[[0-9a-fA-F:.]+\]):\d{1,5}$/;

/** Bootstrap brokers: an array of `host:port`, or one comma-separated string. */
const brokersSchema = opt.custom<string[]>((value, at) => {
  const list = typeof value === 'string' ? value.split(',').map((b) => b.trim()).filter((b) => b.length > 0) : value;
  if (!Array.isArray(list) || list.length === 0) fail(at, 'must name at least one host:port (an array, or a comma-separated string)', value);
  return list.map((broker, i) => {
    if (typeof broker !== 'string' || !brokerPattern.test(broker)) {
      // `user:password@host:port` is no broker address; never echo what precedes the @.
      fail({ ...at, path: `${at.path}[${i}]` }, 'must be host:port', typeof broker === 'string' ? broker.replace(/^.*@/, '***@') : broker);
    }
    return broker;
  });
});

const SASL_MECHANISMS = ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512', 'OAUTHBEARER'] as const;

/** SASL as @platformatic/kafka takes it; the mechanism is checked here, the credentials are never echoed. */
const saslSchema = opt.custom<SASLOptions>((value, at: OptionPath) => {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(at, 'must be an object', '[object]');
  const mechanism = (value as { mechanism?: unknown }).mechanism;
  opt.oneOf(SASL_MECHANISMS).parse(mechanism, { ...at, path: `${at.path}.mechanism` });
  return value as SASLOptions;
});

const sslSchema = opt.custom<boolean | TlsOptions>((value, at) => {
  if (typeof value === 'boolean') return value;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(at, 'must be true, false or tls.connect options', value);
  return value as TlsOptions;
});

/**
 * Every option of {@link kafkaPlatformatic}, its check and its default, in one declaration (closed:
 * a misspelt key fails with "did you mean …?").
 */
export const optionsSchema = opt.object({
  /** Transport name in metrics, logs and errors. @default 'kafka' */
  name: opt.string().default('kafka'),
  /** Bootstrap brokers, `host:port`; a comma-separated string is split. Required. */
  brokers: brokersSchema,
  /** Client id sent to the brokers; members add `-<consumerName>`. @default 'bus' */
  clientId: opt.string().default('bus'),
  /** TLS: `true` or Node `tls.connect` options. @default undefined (plaintext) */
  ssl: sslSchema.optional(),
  /** SASL: `{ mechanism: 'PLAIN' | 'SCRAM-SHA-256' | 'SCRAM-SHA-512' | 'OAUTHBEARER', username, password | token }`. @default undefined */
  sasl: saslSchema.optional(),
  /** TCP (and TLS) connect timeout per broker connection, in ms. @default 3000 */
  connectionTimeoutMs: opt.int(1, HOUR).default(3000),
  /** Deadline of one request to a broker, in ms. @default 30000 */
  requestTimeoutMs: opt.int(1, HOUR).default(30_000),
  retry: section({
    /** Retries of a failed request after the first attempt. @default 5 */
    retries: opt.int(0, 1000).default(5),
    /** Wait between retries, in ms. @default 300 */
    retryDelayMs: opt.int(0, HOUR).default(300),
  }),
  producer: section({
    /** Idempotent producer (the broker drops duplicates of a retried request); needs `acks: -1`. @default true */
    idempotent: opt.boolean().default(true),
    /** Replicas that must store a record: `-1` all in-sync replicas, `1` the leader, `0` none. @default -1 */
    acks: opt
      .custom<-1 | 0 | 1>((v, at) => {
        if (v !== -1 && v !== 0 && v !== 1) fail(at, 'must be -1, 0 or 1', v);
        return v;
      })
      .default(-1),
    /** Compression of record batches. @default 'none' */
    compression: opt.oneOf(['none', 'gzip', 'snappy', 'lz4', 'zstd']).default('none'),
    /** A publish larger than this (key, value and header bytes) is sent as several produce requests, in order. @default 900000 */
    maxRequestBytes: opt.int(1024, 1_073_741_824).default(900_000),
  }),
  topics: section({
    /** Create a missing topic (admin API) before the first publish or subscribe naming it; `false`: a missing topic is a `ConfigError`. @default true */
    create: opt.boolean().default(true),
    /** Partitions of a created topic. @default 3 */
    partitions: opt.int(1, 100_000).default(3),
    /** Replicas of each partition of a created topic. @default 1 */
    replicationFactor: opt.int(1, 100).default(1),
  }),
  consumer: section({
    /**
     * `'classic'`: the JoinGroup/SyncGroup protocol with client-side assignment (every Kafka). `'consumer'`:
     * KIP-848, the broker assigns partitions and rebalances incrementally (Kafka 4.0+). @default 'classic'
     */
    groupProtocol: opt.oneOf(['classic', 'consumer']).default('classic'),
    /** Classic protocol: a member without heartbeat for this long leaves its group, in ms (KIP-848: the broker's `group.consumer.session.timeout.ms`). @default 30000 */
    sessionTimeoutMs: opt.int(1000, HOUR).default(30_000),
    /** Classic protocol: heartbeat period (KIP-848: the broker's `group.consumer.heartbeat.interval.ms`). @default 3000 */
    heartbeatIntervalMs: opt.int(100, HOUR).default(3000),
    /** How long the group waits for members to rejoin during a rebalance, in ms. @default 60000 */
    rebalanceTimeoutMs: opt.int(1000, HOUR).default(60_000),
    /** Upper bound of the bytes of one fetch response. @default 10485760 */
    maxBytes: opt.int(1024, 1_073_741_824).default(10_485_760),
    /** Upper bound of the bytes fetched from one partition per request. @default 1048576 */
    maxBytesPerPartition: opt.int(1024, 1_073_741_824).default(1_048_576),
    /** The broker answers a fetch once it has this many bytes (or after `pollIntervalMs`). @default 1 */
    minBytes: opt.int(1, 1_073_741_824).default(1),
    /** Messages fetched ahead of the handler (the stream's high water mark). @default 1024 */
    prefetch: opt.int(1, 1_000_000).default(1024),
    /** `subscribe` resolves once the member joined and fetched, or after this long (it goes on in the background), in ms. @default 30000 */
    joinTimeoutMs: opt.int(0, HOUR).default(30_000),
    /** A nacked or unsettled message is fetched again after this pause of its partition, in ms. @default 200 */
    nackDelayMs: opt.int(0, HOUR).default(200),
    /** Upper bound of `Subscription.close()`: the running batch finishes, its offsets are committed, the member leaves, in ms. @default 30000 */
    closeTimeoutMs: opt.int(0, HOUR).default(30_000),
    /** A member whose stream failed (broker gone, fenced) is started again after this delay, doubled per consecutive failure up to 30 s, in ms. @default 1000 */
    restartDelayMs: opt.int(0, HOUR).default(1000),
  }),
});

/** {@link KafkaPlatformaticOptions} checked, every default filled in. */
export type ResolvedOptions = Infer<typeof optionsSchema>;

/** Options of {@link kafkaPlatformatic}; only `brokers` is required. Every key is documented on {@link optionsSchema}. */
export interface KafkaPlatformaticOptions {
  /** @default 'kafka' */
  name?: string;
  brokers: readonly string[] | string;
  /** @default 'bus' */
  clientId?: string;
  /** @default undefined (plaintext) */
  ssl?: boolean | TlsOptions;
  /** @default undefined */
  sasl?: SASLOptions;
  /** @default 3000 */
  connectionTimeoutMs?: number;
  /** @default 30000 */
  requestTimeoutMs?: number;
  /** @default { retries: 5, retryDelayMs: 300 } */
  retry?: Partial<ResolvedOptions['retry']>;
  /** @default { idempotent: true, acks: -1, compression: 'none', maxRequestBytes: 900000 } */
  producer?: Partial<ResolvedOptions['producer']>;
  /** @default { create: true, partitions: 3, replicationFactor: 1 } */
  topics?: Partial<ResolvedOptions['topics']>;
  /** @default see {@link optionsSchema} (`groupProtocol: 'classic'`) */
  consumer?: Partial<ResolvedOptions['consumer']>;
}

/** Validates the options once, at construction; every error names the option's path. */
export function resolveOptions(options: unknown): ResolvedOptions {
  const root: OptionPath = { source: SOURCE, path: '' };
  const o = optionsSchema.parse(options, root);
  if (o.producer.idempotent && o.producer.acks !== -1) {
    fail({ source: SOURCE, path: 'producer.acks' }, 'must be -1 when producer.idempotent is true (set idempotent: false to use 0 or 1)', o.producer.acks);
  }
  if (o.consumer.heartbeatIntervalMs >= o.consumer.sessionTimeoutMs) {
    fail({ source: SOURCE, path: 'consumer.heartbeatIntervalMs' }, `must be lower than consumer.sessionTimeoutMs (${o.consumer.sessionTimeoutMs})`, o.consumer.heartbeatIntervalMs);
  }
  if (o.consumer.rebalanceTimeoutMs < o.consumer.sessionTimeoutMs) {
    fail({ source: SOURCE, path: 'consumer.rebalanceTimeoutMs' }, `must be at least consumer.sessionTimeoutMs (${o.consumer.sessionTimeoutMs})`, o.consumer.rebalanceTimeoutMs);
  }
  if (o.consumer.maxBytesPerPartition > o.consumer.maxBytes) {
    fail({ source: SOURCE, path: 'consumer.maxBytesPerPartition' }, `must not exceed consumer.maxBytes (${o.consumer.maxBytes})`, o.consumer.maxBytesPerPartition);
  }
  return o;
}
