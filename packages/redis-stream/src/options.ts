import { type PoolOptions, poolSchema } from '@bus/core';
import { child, fail, type Infer, opt } from '@bus/core/kit';
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

/**
 * Safe retention: consumers trim each stream below the oldest entry some consumer group still needs
 * (the lowest of every group's last-delivered id and oldest pending id, `XTRIM MINID`), so a stopped
 * or slow group never loses what it has not handled. Runs in each subscription's claim pass.
 */
export interface RetentionOptions {
  /**
   * A pass runs at most this often per subscription (and at most every `claimIntervalMs`), in ms.
   * @default 60000
   */
  intervalMs?: number;
  /** Trim exactly (`XTRIM MINID =`) instead of by whole radix-tree nodes (`~`, cheaper). @default false */
  exact?: boolean;
}

/** Connection through Redis Sentinel: the bus follows the master's promotions. */
export interface RedisSentinelConnection {
  /** The sentinels (a few are enough). */
  sentinels: Array<{ host: string; port: number }>;
  /** The monitored master's name (`sentinel monitor <name> …`). */
  name: string;
  /**
   * ioredis options of every connection (merged under our per-role defaults like `connection`),
   * e.g. `sentinelPassword`, `password`, `tls`.
   * @default {}
   */
  options?: RedisOptions;
}

/** Names of the stream fields that carry the record's value and key (every other field is a header). */
export interface FieldNames {
  /** @default '_data' */
  value?: string;
  /** @default '_key' */
  key?: string;
}

/**
 * Options of {@link redisStream}. Give exactly one of `url`/`connection`, `cluster`, `sentinel`, or `createClient`
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
  /** ioredis `connectTimeout` of every connection, in ms. @default 10000 */
  connectTimeoutMs?: number;
  /**
   * Deadline of one non-blocking command (publish pipeline, XACK, XAUTOCLAIM…), in ms: one timer per use
   * of a connection, not one per command. A command past it fails and its connection is replaced (it is
   * presumed dead).
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
  /**
   * Hard caps on stream length/age, applied on publish. They trim **regardless of consumer groups**:
   * read the README's "Trimming" section first; prefer `retention`.
   * @default undefined
   */
  trim?: TrimOptions;
  /** Safe retention, trimming only what every group has had (see the README). @default undefined (off) */
  retention?: RetentionOptions;
  /**
   * After each publish, `WAIT <waitReplicas> <waitTimeoutMs>`: the publish resolves ok only once this
   * many replicas have the entries; otherwise each record fails with a retryable `PublishError` (the
   * entries may still be on the master: a retry can duplicate them). `0`: no WAIT — an ok publish is
   * on the master only, and a master crash before replication loses it.
   * @default 0
   */
  waitReplicas?: number;
  /** Deadline of the `WAIT` of `waitReplicas`, in ms. @default 1000 */
  waitTimeoutMs?: number;
  /** Connect through Redis Sentinel instead of `url`/`connection`/`cluster`. @default undefined */
  sentinel?: RedisSentinelConnection;
  /** Names of the value and key fields. @default { value: '_data', key: '_key' } */
  fields?: FieldNames;
}

const DAY = 86_400_000;

const isUrl = (v: string) => /^rediss?:\/\//.test(v);

/** A Cluster startup node: `host:port`, a port, or `{ host, port }`. */
const clusterNode = opt.custom<ClusterNode>((node, at) => {
  const ok =
    (typeof node === 'string' && node.length > 0) ||
    (typeof node === 'number' && Number.isInteger(node) && node > 0) ||
    (typeof node === 'object' && node !== null && !Array.isArray(node));
  if (!ok) fail(at, 'must be a host:port string, a port or { host, port }', node);
  return node as ClusterNode;
});

/**
 * The one declaration of {@link RedisStreamOptions}: each option's check and `@default`. The resolved
 * type ({@link ResolvedOptions}), the defaults ({@link DEFAULTS}) and the closed key set come from it.
 */
export const redisStreamSchema = opt.object({
  name: opt.string().default('redis'),
  url: opt.custom<string>((v, at) => {
    if (typeof v !== 'string' || !isUrl(v)) fail(at, 'must start with redis:// or rediss:// (no spaces around it)', v);
    return v;
  }).optional(),
  connection: opt.custom<RedisOptions>((v, at) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(at, 'must be an object (ioredis options)', v);
    const connection = v as RedisOptions;
    if (connection.keyPrefix) fail(child(at, 'keyPrefix'), 'is not supported (stream keys would not match); use the keyPrefix option', connection.keyPrefix);
    return connection;
  }).optional(),
  cluster: opt
    .object({
      nodes: opt.array(clusterNode),
      options: opt.custom<ClusterOptions>((v, at) => {
        if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(at, 'must be an object (ioredis Cluster options)', v);
        return v as ClusterOptions;
      }).default(() => ({})),
    })
    .optional(),
  createClient: opt.func<(role: ConnectionRole) => RedisClient>().optional(),
  keyPrefix: opt.custom<string>((v, at) => {
    if (typeof v !== 'string') fail(at, 'must be a string', v);
    return v;
  }).default(''),
  pool: poolSchema,
  connectTimeoutMs: opt.int(1, DAY).default(10_000),
  commandTimeoutMs: opt.int(1, DAY).default(10_000),
  readTimeoutGraceMs: opt.int(1, DAY).default(5000),
  claimIdleMs: opt.int(100, DAY).default(30_000),
  claimIntervalMs: opt.int(10, DAY).default(5000),
  nackDelayMs: opt.int(0, DAY).optional(),
  delayPollMs: opt.int(1, 60_000).default(50),
  consumerIdleTimeoutMs: opt.int(0, 30 * DAY).default(3_600_000),
  binary: opt.boolean().default(false),
  trim: opt
    .object({
      maxLen: opt.int(1).optional(),
      maxAgeMs: opt.int(1).optional(),
      exact: opt.boolean().default(false),
    })
    .refine((trim, at) => {
      if (trim.maxLen !== undefined && trim.maxAgeMs !== undefined) {
        fail(child(at, 'maxAgeMs'), 'cannot be combined with trim.maxLen (Redis trims by one strategy per XADD)', trim.maxAgeMs);
      }
    })
    .default(() => ({ exact: false })),
  retention: opt.object({ intervalMs: opt.int(10, DAY).default(60_000), exact: opt.boolean().default(false) }).optional(),
  waitReplicas: opt.int(0, 1000).default(0),
  waitTimeoutMs: opt.int(1, DAY).default(1000),
  sentinel: opt
    .object({
      sentinels: opt.array(
        opt.custom<{ host: string; port: number }>((v, at) => {
          const node = v as { host?: unknown; port?: unknown };
          if (typeof v !== 'object' || v === null || typeof node.host !== 'string' || typeof node.port !== 'number') fail(at, 'must be { host, port }', v);
          return v as { host: string; port: number };
        }),
      ),
      name: opt.string(),
      options: opt.custom<RedisOptions>((v, at) => {
        if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(at, 'must be an object (ioredis options)', v);
        return v as RedisOptions;
      }).default(() => ({})),
    })
    .optional(),
  fields: opt
    .object({ value: opt.string().default('_data'), key: opt.string().default('_key') })
    .refine((fields, at) => {
      if (fields.value === fields.key) fail(child(at, 'key'), 'must differ from fields.value', fields.key);
    })
    .default(() => ({ value: '_data', key: '_key' })),
});

/** {@link RedisStreamOptions} checked and with every default filled in. */
export type ResolvedOptions = Omit<Infer<typeof redisStreamSchema>, 'nackDelayMs' | 'cluster' | 'url' | 'connection' | 'sentinel'> & {
  sentinel: { sentinels: Array<{ host: string; port: number }>; name: string; options: RedisOptions } | undefined;
  connection: RedisOptions;
  /** The URL to connect to; undefined when `connection` alone, `cluster` or `createClient` is used. */
  url: string | undefined;
  cluster: { nodes: ClusterNode[]; options: ClusterOptions } | undefined;
  nackDelayMs: number;
};

/** Default values of {@link RedisStreamOptions} (pool defaults are `POOL_DEFAULTS` of `@bus/core`). */
export const DEFAULTS = {
  ...(redisStreamSchema.parse({}, { source: 'bus/redis', path: '' }) as Omit<ResolvedOptions, 'url' | 'cluster' | 'sentinel'>),
  url: 'redis://127.0.0.1:6379',
  nackDelayMs: 1000,
} as const;

/** Validates the options once, at construction; every error names the option's path (secrets redacted). */
export function resolveOptions(options: unknown): ResolvedOptions {
  const at = { source: 'bus/redis', path: '' };
  const o = redisStreamSchema.parse(options ?? {}, at);
  const sources = [o.url !== undefined || o.connection !== undefined ? 'url/connection' : '', o.cluster ? 'cluster' : '', o.sentinel ? 'sentinel' : '', o.createClient ? 'createClient' : ''].filter(Boolean);
  if (sources.length > 1) fail(child(at, sources[1] as string), `cannot be combined with ${sources[0]}: give one way to connect`, '[given]');
  const nackDelayMs = o.nackDelayMs ?? Math.min(DEFAULTS.nackDelayMs, o.claimIdleMs);
  if (nackDelayMs > o.claimIdleMs) fail(child(at, 'nackDelayMs'), `must not exceed claimIdleMs (${o.claimIdleMs})`, nackDelayMs);
  return {
    ...o,
    connection: o.connection ?? {},
    url: o.url ?? (o.connection === undefined && !o.cluster && !o.sentinel && !o.createClient ? DEFAULTS.url : undefined),
    cluster: o.cluster as ResolvedOptions['cluster'],
    sentinel: o.sentinel as ResolvedOptions['sentinel'],
    nackDelayMs,
  };
}
