import { ClosedError, type IdempotencyState, type IdempotencyStore, OptionReader } from '@bus/core';
import { Cluster, type ClusterNode, type ClusterOptions, Redis, type RedisOptions } from 'ioredis';
import { connect, destroy, toBusError } from './client.js';
import type { RedisClient } from './options.js';

/** Options of {@link redisIdempotencyStore}. Give exactly one of `client`, `url`, `cluster`. */
export interface RedisIdempotencyStoreOptions {
  /** An ioredis client (standalone or Cluster) the caller owns: the store never closes it. @default undefined */
  client?: RedisClient;
  /** A Redis URL; the store makes (lazily) and closes its own client. @default undefined */
  url?: string;
  /** Redis Cluster nodes; the store makes (lazily) and closes its own Cluster client. @default undefined */
  cluster?: { nodes: ClusterNode[]; options?: ClusterOptions };
  /** ioredis options of the client made from `url`. @default {} */
  connection?: RedisOptions;
  /** Prefix of every record key. @default 'bus:idem:' */
  keyPrefix?: string;
  /** Deadline of the store's connect (TCP, TLS, AUTH, ready check), in ms. @default 10000 */
  connectTimeoutMs?: number;
}

/** The value of a *done* record; a lease holds its owner's token (a UUID) instead. */
const DONE = 'D';

// Compare-and-set scripts: each touches its one key, so they run on Redis Cluster as they are.
const EXTEND = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end`;
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`;

/**
 * An {@link IdempotencyStore} on Redis (standalone or Cluster; Redis ≥ 7.0), one string key per
 * message: `acquire` is a single `SET key token NX PX leaseMs GET` (atomic: it takes a free key and
 * reads a taken one in one round trip), `complete` is `SET key D PX ttlMs`, `extend` and `release` are
 * compare-and-set scripts on the token. Every command names one key, so Cluster needs no hash tags.
 *
 * Connects lazily (on the first message) when it makes its own client.
 *
 * ```ts
 * middleware: [idempotent({ store: redisIdempotencyStore({ url: 'redis://127.0.0.1:6379' }) })]
 * ```
 */
export function redisIdempotencyStore(options: RedisIdempotencyStoreOptions): IdempotencyStore {
  const r = new OptionReader('bus/redis', 'idempotencyStore');
  const o = r.object('options', options) as Record<string, unknown>;
  const given = ['client', 'url', 'cluster'].filter((k) => o[k] !== undefined);
  if (given.length !== 1) r.fail('options', 'must give exactly one of client, url, cluster', given);
  if (o.url !== undefined) r.string('url', o.url);
  if (o.cluster !== undefined) r.at('cluster').object('nodes', (o.cluster as Record<string, unknown>).nodes);
  const prefix = o.keyPrefix === undefined ? 'bus:idem:' : r.string('keyPrefix', o.keyPrefix);
  const owned = options.client === undefined;
  let client: RedisClient | undefined = options.client;
  let connecting: Promise<RedisClient> | undefined;
  let closed = false;

  const get = (): Promise<RedisClient> => {
    if (closed) return Promise.reject(new ClosedError('redis idempotency store'));
    if (client && !owned) return Promise.resolve(client);
    connecting ??= (async () => {
      const base = { lazyConnect: true, maxRetriesPerRequest: 1, connectionName: 'bus-idempotency' } as const;
      client = options.cluster
        ? new Cluster(options.cluster.nodes, { ...options.cluster.options, lazyConnect: true, redisOptions: { ...base, ...options.cluster.options?.redisOptions } })
        : new Redis(options.url as string, { ...base, ...options.connection, lazyConnect: true });
      return connect(client, 'redis', options.connectTimeoutMs ?? 10_000);
    })();
    return connecting;
  };
  const run = async <T>(what: string, command: (c: RedisClient) => Promise<T>): Promise<T> => {
    try {
      return await command(await get());
    } catch (error) {
      throw toBusError(error, 'redis', `idempotency ${what}`);
    }
  };

  return {
    name: 'redis',
    acquire: (key, token, leaseMs) =>
      run('acquire', async (c): Promise<IdempotencyState> => {
        const previous = (await c.call('SET', prefix + key, token, 'NX', 'PX', String(leaseMs), 'GET')) as string | null;
        if (previous === null) return 'acquired';
        return previous === DONE ? 'done' : 'busy';
      }),
    extend: (key, token, leaseMs) => run('extend', async (c) => (await c.eval(EXTEND, 1, prefix + key, token, String(leaseMs))) === 1),
    complete: (key, _token, ttlMs) =>
      run('complete', async (c) => {
        await c.set(prefix + key, DONE, 'PX', ttlMs);
      }),
    release: (key, token) =>
      run('release', async (c) => {
        await c.eval(RELEASE, 1, prefix + key, token);
      }),
    async close() {
      if (closed) return;
      closed = true;
      if (owned && client) {
        const c = client;
        await Promise.race([c.quit().catch(() => undefined), new Promise((r) => setTimeout(r, 2000).unref())]);
        destroy(c);
      }
    },
  };
}
