import { OptionReader, type PoolOptions } from '@bus/core';
import type { Cluster, ClusterNode, ClusterOptions, Redis, RedisOptions } from 'ioredis';

/** A connection made by ioredis: a standalone client or a Cluster client. */
export type RedisClient = Redis | Cluster;

/**
 * What a connection is for. Producers and readers get different ioredis defaults (see the README):
 * producers fail fast while disconnected, readers wait for the reconnect.
 */
export type ConnectionRole = 'producer' | 'reader';

/** Connection to a Redis Cluster. */
export interface RedisClusterConnection {
  /** Startup nodes; a few are enough, the others are discovered. */
  nodes: ClusterNode[];
  /** ioredis Cluster options; `redisOptions` go to each node connection. */
  options?: ClusterOptions;
}

/** Stream trimming on publish. Off unless one of `maxLen` / `maxAgeMs` is set. */
export interface TrimOptions {
  /**
   * Keep about this many entries per stream (`XADD … MAXLEN ~ n`).
   * @default undefined (no length trimming)
   */
  maxLen?: number;
  /**
   * Drop entries older than this, by their stream id time (`XADD … MINID ~ <now − maxAgeMs>`).
   * @default undefined (no age trimming)
   */
  maxAgeMs?: number;
  /**
   * Trim exactly (`=`) instead of approximately (`~`). Exact trimming costs more on every XADD.
   * @default false
   */
  exact?: boolean;
}

/** Names of the stream fields that carry the record's value and key (every other field is a header). */
export interface FieldNames {
  /** @default '_data' */
  value?: string;
  /** @default '_key' */
  key?: string;
}

/**
 * Options of {@link redisStream}. Give exactly one of `url`/`connection`, `cluster`, or `createClient`
 * (with none of them, `redis://127.0.0.1:6379` is used).
 */
export interface RedisStreamOptions {
  /** Transport name in metrics, logs and errors. @default 'redis' */
  name?: string;
  /** `redis://[user:password@]host:port[/db]` or `rediss://…` for TLS. @default 'redis://127.0.0.1:6379' when nothing else is given */
  url?: string;
  /**
   * ioredis options of every standalone connection (merged over `url`). Our per-role defaults
   * (`maxRetriesPerRequest`, `enableOfflineQueue`) apply unless you set them here; `lazyConnect`
   * and `protocol` are always overridden (`true`, `2`). Do not set ioredis's `keyPrefix`: use ours.
   * @default {}
   */
  connection?: RedisOptions;
  /** Connect to a Redis Cluster instead of a standalone server. @default undefined */
  cluster?: RedisClusterConnection;
  /**
   * Makes a new, unconnected (or connected) client for `role`, instead of `url`/`connection`/`cluster`
   * (e.g. Sentinel, or a client with custom instrumentation). Called once per pooled producer and once
   * per blocking reader; the transport owns and closes what it returns. Give it `lazyConnect: true`
   * and `protocol: 2` (or the default `replyMapping: 'legacy'`).
   * @default undefined
   */
  createClient?: (role: ConnectionRole) => RedisClient;
  /** Prepended to every topic to form the stream key (`<keyPrefix><topic>`). @default '' */
  keyPrefix?: string;
  /** Producer connection pool (also used for `lag()` and consumer hygiene). @default POOL_DEFAULTS of @bus/core */
  pool?: PoolOptions;
  /** ioredis `connectTimeout` of every connection, in ms (the seed's `connect_timeout`). @default 10000 */
  connectTimeoutMs?: number;
  /**
   * Deadline of one non-blocking command (publish pipeline, XACK, XAUTOCLAIM…), in ms. A command past
   * it fails; on a reader connection the connection is also replaced (it is presumed dead).
   * @default 10000
   */
  commandTimeoutMs?: number;
  /**
   * Extra time a blocking `XREADGROUP … BLOCK <pollIntervalMs>` may take before the reader presumes
   * its connection dead (a silent network failure) and replaces it, in ms.
   * @default 5000
   */
  readTimeoutGraceMs?: number;
  /**
   * A pending entry idle this long (its consumer neither acknowledged nor refreshed it) is claimed
   * by another member with `XAUTOCLAIM`, in ms. Running handlers refresh their entries every
   * `claimIdleMs / 3`, so only entries of dead or stuck members pass it.
   * @default 30000
   */
  claimIdleMs?: number;
  /** How often each subscription looks for claimable entries, in ms. @default 5000 */
  claimIntervalMs?: number;
  /**
   * A nacked (or unsettled) message can be claimed again, by any member, after this long, in ms.
   * @default 1000
   */
  nackDelayMs?: number;
  /**
   * Longest wait, in ms, of a subscribed process between two looks at a topic's delayed messages
   * (the sorted set `<stream>:bus-delayed`); it also wakes at the earliest known due time. Bounds
   * the lateness of a delayed message published while the mover sleeps.
   * @default 50
   */
  delayPollMs?: number;
  /**
   * Consumers of a group idle longer than this and with no pending entry are removed
   * (`XGROUP DELCONSUMER`), in ms; `0` turns this off.
   * @default 3600000 (1 hour)
   */
  consumerIdleTimeoutMs?: number;
  /**
   * Read entries as Buffers, byte for byte. Needed only by a codec whose values are not UTF-8 text;
   * the default JSON codec is text, and string replies are decoded by ioredis's parser at about half
   * the cost of converting Buffers.
   * @default false
   */
  binary?: boolean;
  /** Stream trimming on publish. Off by default: read the README's warning first. @default undefined */
  trim?: TrimOptions;
  /** Names of the value and key fields. @default { value: '_data', key: '_key' } */
  fields?: FieldNames;
}

/** {@link RedisStreamOptions} checked and with every default filled in. */
export interface ResolvedOptions {
  name: string;
  url: string | undefined;
  connection: RedisOptions;
  cluster: { nodes: ClusterNode[]; options: ClusterOptions } | undefined;
  createClient: ((role: ConnectionRole) => RedisClient) | undefined;
  keyPrefix: string;
  pool: PoolOptions;
  connectTimeoutMs: number;
  commandTimeoutMs: number;
  readTimeoutGraceMs: number;
  claimIdleMs: number;
  claimIntervalMs: number;
  nackDelayMs: number;
  delayPollMs: number;
  consumerIdleTimeoutMs: number;
  binary: boolean;
  /** Trimming on XADD: `MAXLEN` by count or `MINID` by age (computed per call); both undefined = off. */
  trim: { maxLen: number | undefined; maxAgeMs: number | undefined; exact: boolean };
  fields: { value: string; key: string };
}

/** Default values of {@link RedisStreamOptions} (pool defaults are `POOL_DEFAULTS` of `@bus/core`). */
export const DEFAULTS = {
  name: 'redis',
  url: 'redis://127.0.0.1:6379',
  keyPrefix: '',
  connectTimeoutMs: 10_000,
  commandTimeoutMs: 10_000,
  readTimeoutGraceMs: 5000,
  claimIdleMs: 30_000,
  claimIntervalMs: 5000,
  nackDelayMs: 1000,
  delayPollMs: 50,
  consumerIdleTimeoutMs: 3_600_000,
  binary: false,
  fields: { value: '_data', key: '_key' },
} as const;

const DAY = 86_400_000;

const KNOWN = new Set([
  'name',
  'url',
  'connection',
  'cluster',
  'createClient',
  'keyPrefix',
  'pool',
  'connectTimeoutMs',
  'commandTimeoutMs',
  'readTimeoutGraceMs',
  'claimIdleMs',
  'claimIntervalMs',
  'nackDelayMs',
  'delayPollMs',
  'consumerIdleTimeoutMs',
  'binary',
  'trim',
  'fields',
]);

/** Validates the options once, at construction; every error names the option's path. */
export function resolveOptions(options: unknown): ResolvedOptions {
  const r: OptionReader = new OptionReader('bus/redis', '');
  const o = (r.object('options', options ?? {}) ?? {}) as Record<string, unknown>;
  for (const key of Object.keys(o)) if (!KNOWN.has(key)) r.fail(key, 'is not an option of redisStream (a typo?)', o[key]);
  const url = r.optionalString('url', o.url);
  if (url !== undefined && !/^rediss?:\/\//.test(url)) r.fail('url', 'must start with redis:// or rediss://', url);
  const connection = (r.object('connection', o.connection, true) ?? {}) as RedisOptions;
  if ('keyPrefix' in connection && connection.keyPrefix) {
    r.at('connection').fail('keyPrefix', 'is not supported (stream keys would not match); use the keyPrefix option', connection.keyPrefix);
  }
  let cluster: ResolvedOptions['cluster'];
  const clusterRaw = r.object('cluster', o.cluster, true);
  if (clusterRaw) {
    const c: OptionReader = r.at('cluster');
    const nodes = clusterRaw.nodes;
    if (!Array.isArray(nodes) || nodes.length === 0) c.fail('nodes', 'must be a non-empty array of nodes (host:port strings, ports or { host, port })', nodes);
    nodes.forEach((node, i) => {
      const ok =
        (typeof node === 'string' && node.length > 0) ||
        (typeof node === 'number' && Number.isInteger(node) && node > 0) ||
        (typeof node === 'object' && node !== null && !Array.isArray(node));
      if (!ok) c.fail(`nodes[${i}]`, 'must be a host:port string, a port or { host, port }', node);
    });
    cluster = { nodes: nodes as ClusterNode[], options: (c.object('options', clusterRaw.options, true) ?? {}) as ClusterOptions };
  }
  const createClient = r.func<(role: ConnectionRole) => RedisClient>('createClient', o.createClient, true);
  const sources = [url !== undefined || o.connection !== undefined ? 'url/connection' : '', cluster ? 'cluster' : '', createClient ? 'createClient' : ''].filter(Boolean);
  if (sources.length > 1) r.fail(sources[1] as string, `cannot be combined with ${sources[0]}: give one way to connect`, o[sources[1] === 'cluster' ? 'cluster' : 'createClient']);

  const keyPrefix = o.keyPrefix === undefined || o.keyPrefix === '' ? DEFAULTS.keyPrefix : r.string('keyPrefix', o.keyPrefix);
  const pool = validatePool(r, o.pool);

  const trimRaw = r.object('trim', o.trim, true) ?? {};
  const t: OptionReader = r.at('trim');
  const trim = {
    maxLen: trimRaw.maxLen === undefined ? undefined : t.int('maxLen', trimRaw.maxLen, 0, 1),
    maxAgeMs: trimRaw.maxAgeMs === undefined ? undefined : t.int('maxAgeMs', trimRaw.maxAgeMs, 0, 1),
    exact: t.boolean('exact', trimRaw.exact, false),
  };
  if (trim.maxLen !== undefined && trim.maxAgeMs !== undefined) t.fail('maxAgeMs', 'cannot be combined with trim.maxLen (Redis trims by one strategy per XADD)', trim.maxAgeMs);

  const fieldsRaw = r.object('fields', o.fields, true) ?? {};
  const f: OptionReader = r.at('fields');
  const fields = {
    value: f.string('value', fieldsRaw.value, DEFAULTS.fields.value),
    key: f.string('key', fieldsRaw.key, DEFAULTS.fields.key),
  };
  if (fields.value === fields.key) f.fail('key', 'must differ from fields.value', fields.key);

  const claimIdleMs = r.int('claimIdleMs', o.claimIdleMs, DEFAULTS.claimIdleMs, 100, DAY);
  const nackDelayMs = r.int('nackDelayMs', o.nackDelayMs, Math.min(DEFAULTS.nackDelayMs, claimIdleMs), 0, DAY);
  if (nackDelayMs > claimIdleMs) r.fail('nackDelayMs', `must not exceed claimIdleMs (${claimIdleMs})`, nackDelayMs);

  return {
    name: r.string('name', o.name, DEFAULTS.name),
    url: url ?? (o.connection === undefined && !cluster && !createClient ? DEFAULTS.url : undefined),
    connection,
    cluster,
    createClient,
    keyPrefix,
    pool,
    connectTimeoutMs: r.int('connectTimeoutMs', o.connectTimeoutMs, DEFAULTS.connectTimeoutMs, 1, DAY),
    commandTimeoutMs: r.int('commandTimeoutMs', o.commandTimeoutMs, DEFAULTS.commandTimeoutMs, 1, DAY),
    binary: r.boolean('binary', o.binary, DEFAULTS.binary),
    readTimeoutGraceMs: r.int('readTimeoutGraceMs', o.readTimeoutGraceMs, DEFAULTS.readTimeoutGraceMs, 1, DAY),
    claimIdleMs,
    claimIntervalMs: r.int('claimIntervalMs', o.claimIntervalMs, DEFAULTS.claimIntervalMs, 10, DAY),
    nackDelayMs,
    delayPollMs: r.int('delayPollMs', o.delayPollMs, DEFAULTS.delayPollMs, 1, 60_000),
    consumerIdleTimeoutMs: r.int('consumerIdleTimeoutMs', o.consumerIdleTimeoutMs, DEFAULTS.consumerIdleTimeoutMs, 0, 30 * DAY),
    trim,
    fields,
  };
}

function validatePool(r: OptionReader, value: unknown): PoolOptions {
  const raw = r.object('pool', value, true) ?? {};
  const p: OptionReader = r.at('pool');
  const pool: PoolOptions = {};
  if (raw.min !== undefined) pool.min = p.int('min', raw.min, 0, 0, 10_000);
  if (raw.max !== undefined) pool.max = p.int('max', raw.max, 10, 1, 10_000);
  if (raw.acquireTimeoutMs !== undefined) pool.acquireTimeoutMs = p.int('acquireTimeoutMs', raw.acquireTimeoutMs, 5000, 1, DAY);
  if (raw.idleTimeoutMs !== undefined) pool.idleTimeoutMs = p.int('idleTimeoutMs', raw.idleTimeoutMs, 60_000, 1, DAY);
  if (raw.evictionIntervalMs !== undefined) pool.evictionIntervalMs = p.int('evictionIntervalMs', raw.evictionIntervalMs, 10_000, 1, DAY);
  if (raw.validateOnBorrow !== undefined) pool.validateOnBorrow = p.boolean('validateOnBorrow', raw.validateOnBorrow, true);
  if (raw.createRetryDelayMs !== undefined) pool.createRetryDelayMs = p.int('createRetryDelayMs', raw.createRetryDelayMs, 200, 0, DAY);
  const known = new Set(['min', 'max', 'acquireTimeoutMs', 'idleTimeoutMs', 'evictionIntervalMs', 'validateOnBorrow', 'createRetryDelayMs']);
  for (const key of Object.keys(raw)) if (!known.has(key)) p.fail(key, `is not a pool option (${[...known].join(', ')})`, raw[key]);
  if ((pool.min ?? 0) > (pool.max ?? 10)) p.fail('min', `must not exceed pool.max (${pool.max ?? 10})`, pool.min);
  return pool;
}
