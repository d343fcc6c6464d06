import type { ConnectionOptions } from 'node:tls';
import { OptionReader, type PoolOptions } from '@bus/core';
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
  /** Replicas of each partition of a created topic (at most the number of brokers). @default 1 */
  replicationFactor?: number;
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
  /** TCP (and TLS) connect timeout per broker connection, in ms (the seed's `connect_timeout`). @default 3000 */
  connectionTimeoutMs?: number;
  /** Deadline of one request to a broker, in ms. @default 30000 */
  requestTimeoutMs?: number;
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

/** {@link KafkaTransportOptions} checked, with every default filled in. */
export interface ResolvedOptions {
  name: string;
  brokers: string[];
  clientId: string;
  ssl: boolean | ConnectionOptions | undefined;
  sasl: SASLOptions | undefined;
  connectionTimeoutMs: number;
  requestTimeoutMs: number;
  retry: Required<KafkaRetryOptions>;
  logLevel: KafkaLogLevel;
  pool: PoolOptions;
  producer: Required<KafkaProducerOptions>;
  topics: Required<KafkaTopicOptions>;
  consumer: Required<KafkaConsumerOptions>;
  delays: Required<KafkaDelayOptions>;
}

/** Default values of {@link KafkaTransportOptions} (pool defaults are `POOL_DEFAULTS` of `@bus/core`). */
export const DEFAULTS = {
  name: 'kafka',
  clientId: 'bus',
  connectionTimeoutMs: 3000,
  requestTimeoutMs: 30_000,
  logLevel: 'info',
  retry: { retries: 5, initialRetryTimeMs: 300, maxRetryTimeMs: 30_000 },
  producer: { idempotent: true, acks: -1, compression: 'none', ackTimeoutMs: 30_000, maxRequestBytes: 900_000 },
  topics: { create: true, partitions: 3, replicationFactor: 1 },
  consumer: {
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
  },
  delays: { fetchWaitMs: 100 },
} as const satisfies Omit<ResolvedOptions, 'brokers' | 'ssl' | 'sasl' | 'pool'>;

const KNOWN: Record<string, readonly string[]> = {
  '': ['name', 'brokers', 'clientId', 'ssl', 'sasl', 'connectionTimeoutMs', 'requestTimeoutMs', 'retry', 'logLevel', 'pool', 'producer', 'topics', 'consumer', 'delays'],
  retry: Object.keys(DEFAULTS.retry),
  pool: ['min', 'max', 'acquireTimeoutMs', 'idleTimeoutMs', 'evictionIntervalMs', 'validateOnBorrow', 'createRetryDelayMs'],
  producer: Object.keys(DEFAULTS.producer),
  topics: Object.keys(DEFAULTS.topics),
  consumer: Object.keys(DEFAULTS.consumer),
  delays: Object.keys(DEFAULTS.delays),
};

const HOUR = 3_600_000;

function checkKeys(r: OptionReader, section: string, value: Record<string, unknown>): void {
  const known = KNOWN[section] ?? [];
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) r.fail(key, `is not an option of kafka()${section ? ` ${section}` : ''} (known: ${known.join(', ')})`, value[key]);
  }
}

/** Validates the options once, at construction; every error names the option's path, e.g. `consumer.sessionTimeoutMs`. */
export function resolveOptions(options: unknown): ResolvedOptions {
  const r: OptionReader = new OptionReader('bus/kafka', '');
  const o = r.object('options', options) as Record<string, unknown>;
  checkKeys(r, '', o);

  let brokers: string[];
  if (typeof o.brokers === 'string') {
    brokers = o.brokers
      .split(',')
      .map((b) => b.trim())
      .filter((b) => b.length > 0);
    if (brokers.length === 0) r.fail('brokers', 'must name at least one host:port', o.brokers);
  } else {
    brokers = [...r.stringArray('brokers', o.brokers)];
  }
  brokers.forEach((broker, i) => {
    if (!/^[^\s:]+:\d{1,5}$/.test(broker) && !/^\[[0-9a-fA-F:.]+\]:\d{1,5}$/.test(broker)) r.fail(`brokers[${i}]`, 'must be host:port', broker);
  });

  if (o.ssl !== undefined && typeof o.ssl !== 'boolean') r.object('ssl', o.ssl);
  if (o.sasl !== undefined) {
    const sasl = r.object('sasl', o.sasl) as Record<string, unknown>;
    if (sasl.mechanism === undefined) r.at('sasl').fail('mechanism', 'must be set', undefined);
    r.at('sasl').oneOf('mechanism', sasl.mechanism, ['plain', 'scram-sha-256', 'scram-sha-512', 'aws', 'oauthbearer'], 'plain');
  }

  const retryRaw = r.object('retry', o.retry, true) ?? {};
  checkKeys(r.at('retry'), 'retry', retryRaw);
  const rr = r.at('retry');
  const retry = {
    retries: rr.int('retries', retryRaw.retries, DEFAULTS.retry.retries, 0, 1000),
    initialRetryTimeMs: rr.int('initialRetryTimeMs', retryRaw.initialRetryTimeMs, DEFAULTS.retry.initialRetryTimeMs, 1, HOUR),
    maxRetryTimeMs: rr.int('maxRetryTimeMs', retryRaw.maxRetryTimeMs, DEFAULTS.retry.maxRetryTimeMs, 1, HOUR),
  };

  const poolRaw = r.object('pool', o.pool, true) ?? {};
  checkKeys(r.at('pool'), 'pool', poolRaw);
  const pr = r.at('pool');
  const pool: PoolOptions = {};
  if (poolRaw.min !== undefined) pool.min = pr.int('min', poolRaw.min, 0, 0, 1000);
  if (poolRaw.max !== undefined) pool.max = pr.int('max', poolRaw.max, 10, 1, 1000);
  if (pool.min !== undefined && pool.max !== undefined && pool.min > pool.max) pr.fail('min', `must not exceed pool.max (${pool.max})`, pool.min);
  if (poolRaw.acquireTimeoutMs !== undefined) pool.acquireTimeoutMs = pr.int('acquireTimeoutMs', poolRaw.acquireTimeoutMs, 0, 1, HOUR);
  if (poolRaw.idleTimeoutMs !== undefined) pool.idleTimeoutMs = pr.int('idleTimeoutMs', poolRaw.idleTimeoutMs, 0, 1, 24 * HOUR);
  if (poolRaw.evictionIntervalMs !== undefined) pool.evictionIntervalMs = pr.int('evictionIntervalMs', poolRaw.evictionIntervalMs, 0, 1, HOUR);
  if (poolRaw.validateOnBorrow !== undefined) pool.validateOnBorrow = pr.boolean('validateOnBorrow', poolRaw.validateOnBorrow, true);
  if (poolRaw.createRetryDelayMs !== undefined) pool.createRetryDelayMs = pr.int('createRetryDelayMs', poolRaw.createRetryDelayMs, 0, 0, HOUR);

  const prodRaw = r.object('producer', o.producer, true) ?? {};
  checkKeys(r.at('producer'), 'producer', prodRaw);
  const p = r.at('producer');
  const d = DEFAULTS.producer;
  const acks = prodRaw.acks === undefined ? d.acks : prodRaw.acks;
  if (acks !== -1 && acks !== 0 && acks !== 1) p.fail('acks', 'must be -1, 0 or 1', acks);
  const producer = {
    idempotent: p.boolean('idempotent', prodRaw.idempotent, d.idempotent),
    acks: acks as -1 | 0 | 1,
    compression: p.oneOf('compression', prodRaw.compression, ['none', 'gzip'], d.compression),
    ackTimeoutMs: p.int('ackTimeoutMs', prodRaw.ackTimeoutMs, d.ackTimeoutMs, 1, HOUR),
    maxRequestBytes: p.int('maxRequestBytes', prodRaw.maxRequestBytes, d.maxRequestBytes, 1024, 1_073_741_824),
  };
  if (producer.idempotent && retry.retries < 1) rr.fail('retries', 'must be at least 1 when producer.idempotent is true', retry.retries);
  if (producer.idempotent && producer.acks !== -1) p.fail('acks', 'must be -1 when producer.idempotent is true (set idempotent: false to use 0 or 1)', producer.acks);

  const topicsRaw = r.object('topics', o.topics, true) ?? {};
  checkKeys(r.at('topics'), 'topics', topicsRaw);
  const t = r.at('topics');
  const topics = {
    create: t.boolean('create', topicsRaw.create, DEFAULTS.topics.create),
    partitions: t.int('partitions', topicsRaw.partitions, DEFAULTS.topics.partitions, 1, 100_000),
    replicationFactor: t.int('replicationFactor', topicsRaw.replicationFactor, DEFAULTS.topics.replicationFactor, 1, 100),
  };

  const consRaw = r.object('consumer', o.consumer, true) ?? {};
  checkKeys(r.at('consumer'), 'consumer', consRaw);
  const c = r.at('consumer');
  const cd = DEFAULTS.consumer;
  const consumer = {
    sessionTimeoutMs: c.int('sessionTimeoutMs', consRaw.sessionTimeoutMs, cd.sessionTimeoutMs, 1000, HOUR),
    heartbeatIntervalMs: c.int('heartbeatIntervalMs', consRaw.heartbeatIntervalMs, cd.heartbeatIntervalMs, 100, HOUR),
    rebalanceTimeoutMs: c.int('rebalanceTimeoutMs', consRaw.rebalanceTimeoutMs, cd.rebalanceTimeoutMs, 1000, HOUR),
    partitionsConsumedConcurrently: c.int('partitionsConsumedConcurrently', consRaw.partitionsConsumedConcurrently, cd.partitionsConsumedConcurrently, 1, 1000),
    maxBytes: c.int('maxBytes', consRaw.maxBytes, cd.maxBytes, 1024, 1_073_741_824),
    maxBytesPerPartition: c.int('maxBytesPerPartition', consRaw.maxBytesPerPartition, cd.maxBytesPerPartition, 1024, 1_073_741_824),
    minBytes: c.int('minBytes', consRaw.minBytes, cd.minBytes, 1, 1_073_741_824),
    joinTimeoutMs: c.int('joinTimeoutMs', consRaw.joinTimeoutMs, cd.joinTimeoutMs, 0, HOUR),
    nackDelayMs: c.int('nackDelayMs', consRaw.nackDelayMs, cd.nackDelayMs, 0, HOUR),
    closeTimeoutMs: c.int('closeTimeoutMs', consRaw.closeTimeoutMs, cd.closeTimeoutMs, 0, HOUR),
    restartDelayMs: c.int('restartDelayMs', consRaw.restartDelayMs, cd.restartDelayMs, 0, HOUR),
  };
  if (consumer.heartbeatIntervalMs >= consumer.sessionTimeoutMs) {
    c.fail('heartbeatIntervalMs', `must be lower than consumer.sessionTimeoutMs (${consumer.sessionTimeoutMs}); about a third of it is usual`, consumer.heartbeatIntervalMs);
  }
  if (consumer.maxBytesPerPartition > consumer.maxBytes) c.fail('maxBytesPerPartition', `must not exceed consumer.maxBytes (${consumer.maxBytes})`, consumer.maxBytesPerPartition);

  const delaysRaw = r.object('delays', o.delays, true) ?? {};
  checkKeys(r.at('delays'), 'delays', delaysRaw);
  const delays = { fetchWaitMs: r.at('delays').int('fetchWaitMs', delaysRaw.fetchWaitMs, DEFAULTS.delays.fetchWaitMs, 1, 60_000) };

  return {
    name: r.string('name', o.name, DEFAULTS.name),
    brokers,
    clientId: r.string('clientId', o.clientId, DEFAULTS.clientId),
    ssl: o.ssl as ResolvedOptions['ssl'],
    sasl: o.sasl as SASLOptions | undefined,
    connectionTimeoutMs: r.int('connectionTimeoutMs', o.connectionTimeoutMs, DEFAULTS.connectionTimeoutMs, 1, HOUR),
    requestTimeoutMs: r.int('requestTimeoutMs', o.requestTimeoutMs, DEFAULTS.requestTimeoutMs, 1, HOUR),
    retry,
    logLevel: r.oneOf('logLevel', o.logLevel, ['nothing', 'error', 'warn', 'info', 'debug'], DEFAULTS.logLevel),
    pool,
    producer,
    topics,
    consumer,
    delays,
  };
}
