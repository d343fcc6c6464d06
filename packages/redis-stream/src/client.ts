import { BusError, ConnectionError, PublishError } from '@bus/core';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { ConnectionRole, RedisClient, ResolvedOptions } from './options.js';

/**
 * Per-role ioredis defaults.
 * - producer: a command sent while disconnected fails at once (`enableOfflineQueue: false`) and a
 *   command caught by a disconnect fails after one reconnect attempt, so `publish` reports a
 *   `ConnectionError` quickly instead of hanging while Redis is down.
 * - reader: commands wait in the offline queue for the reconnect, and fail after one attempt so the
 *   read loop can back off; the loop's own deadline guards against a blocking read that never ends.
 */
const ROLE_DEFAULTS: Record<ConnectionRole, { enableOfflineQueue: boolean; maxRetriesPerRequest: number }> = {
  producer: { enableOfflineQueue: false, maxRetriesPerRequest: 1 },
  reader: { enableOfflineQueue: true, maxRetriesPerRequest: 1 },
};

/** Makes a new, not yet connected client for `role` from the resolved options. */
export function makeClient(o: ResolvedOptions, role: ConnectionRole): RedisClient {
  if (o.createClient) return o.createClient(role);
  const defaults = ROLE_DEFAULTS[role];
  const connectionName = `bus-${o.name}-${role}`;
  const forced = { lazyConnect: true, protocol: 2 } as const;
  // A command timeout would cut blocking reads short: readers keep their own deadlines instead.
  const commandTimeout = (own: number | undefined) => (role === 'producer' ? (own ?? o.commandTimeoutMs) : undefined);
  if (o.cluster) {
    const { redisOptions, ...clusterOptions } = o.cluster.options;
    const nodeOptions = {
      connectionName,
      connectTimeout: o.connectTimeoutMs,
      maxRetriesPerRequest: defaults.maxRetriesPerRequest,
      ...redisOptions,
      ...forced,
    };
    nodeOptions.commandTimeout = commandTimeout(redisOptions?.commandTimeout);
    return new Cluster(o.cluster.nodes, { enableOfflineQueue: defaults.enableOfflineQueue, ...clusterOptions, lazyConnect: true, redisOptions: nodeOptions });
  }
  const own = o.sentinel ? { ...o.sentinel.options, sentinels: o.sentinel.sentinels, name: o.sentinel.name } : o.connection;
  const options: RedisOptions = { connectionName, connectTimeout: o.connectTimeoutMs, ...defaults, ...own, ...forced };
  options.commandTimeout = commandTimeout(own.commandTimeout);
  return o.url ? new Redis(o.url, options) : new Redis(options);
}

/** Connects a lazy client; on failure disconnects it (stopping ioredis's reconnect attempts) and throws. */
export async function connect(client: RedisClient, transport: string): Promise<RedisClient> {
  client.on('error', () => {
    // ioredis reports connection errors as events too; the commands that fail carry them.
  });
  if (client.status !== 'wait') return client;
  try {
    await client.connect();
    return client;
  } catch (error) {
    client.disconnect();
    throw new ConnectionError(`[bus/${transport}] could not connect to Redis: ${messageOf(error)}`, { cause: error });
  }
}

/** Closes a client at once; pending commands fail with "Connection is closed". Never throws. */
export function destroy(client: RedisClient | undefined): void {
  try {
    client?.disconnect();
  } catch {
    // Already closed.
  }
}

export function isCluster(client: RedisClient): client is Cluster {
  return client instanceof Cluster || (client as { isCluster?: boolean }).isCluster === true;
}

/** A Redis error reply (`ERR`, `WRONGTYPE`, `NOGROUP`, `OOM`…), as opposed to a connection failure. */
export function isReplyError(error: unknown): boolean {
  return error instanceof Error && error.name === 'ReplyError';
}

export function replyCode(error: unknown): string | undefined {
  return isReplyError(error) ? (error as Error).message.split(' ', 1)[0] : undefined;
}

/** A Redis failure as a bus error: a reply error is a `PublishError`, anything else a `ConnectionError`. */
export function toBusError(error: unknown, transport: string, what: string): BusError {
  if (BusError.isInstance(error)) return error;
  const message = `[bus/${transport}] ${what}: ${messageOf(error)}`;
  if (isReplyError(error)) {
    const code = replyCode(error);
    // OOM, LOADING, BUSY, CLUSTERDOWN, TRYAGAIN, MASTERDOWN pass, MOVED/ASK after a failover too; the rest (WRONGTYPE, ERR…) will not.
    const retryable = code !== undefined && ['OOM', 'LOADING', 'BUSY', 'CLUSTERDOWN', 'TRYAGAIN', 'MASTERDOWN', 'READONLY', 'MOVED', 'ASK'].includes(code);
    return new PublishError(message, { cause: error, retryable });
  }
  return new ConnectionError(message, { cause: error });
}

export function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}

/**
 * Runs `promise` with a deadline. On timeout `onTimeout` runs (e.g. to drop the connection) and the
 * returned promise rejects with a `ConnectionError`; the original promise's outcome is ignored.
 */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string, onTimeout: () => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onTimeout();
      reject(new ConnectionError(`${what} got no reply within ${ms} ms; the connection is presumed dead and replaced`));
    }, ms);
  });
  promise.catch(() => {});
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

// --- Cluster key slots ---------------------------------------------------------------------------

const CRC16_TABLE = (() => {
  const table = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let j = 0; j < 8; j++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    table[i] = crc;
  }
  return table;
})();

/** The Redis Cluster hash slot of a key (CRC16/XMODEM of the key or of its `{hash tag}`, mod 16384). */
export function keySlot(key: string): number {
  let bytes = Buffer.from(key);
  const open = bytes.indexOf(0x7b);
  if (open !== -1) {
    const close = bytes.indexOf(0x7d, open + 1);
    if (close > open + 1) bytes = bytes.subarray(open + 1, close);
  }
  let crc = 0;
  for (const byte of bytes) crc = ((crc << 8) & 0xffff) ^ (CRC16_TABLE[((crc >> 8) ^ byte) & 0xff] as number);
  return crc % 16384;
}
