import { AuthError, BusError, ConnectionError, PoolTimeoutError, PublishError, redactUrl } from '@bus/core';
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
  // No ioredis command timeout (one timer per command; it would also cut blocking reads short): the
  // transport puts one deadline of commandTimeoutMs on each use of a connection instead. A commandTimeout
  // the caller set in the connection options is kept, for producers.
  const commandTimeout = (own: number | undefined) => (role === 'producer' ? own : undefined);
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

/** The last `error` event of each client: ioredis rejects `connect()` with "Connection is closed." and reports the reason (WRONGPASS, a certificate error…) only as an event. */
const lastErrors = new WeakMap<RedisClient, Error>();

/** `host:port` (or the socket path, or the Cluster's startup nodes) a client connects to; never credentials. */
export function targetOf(client: RedisClient): string {
  const describe = (o: { host?: string; port?: number; path?: string } | undefined) =>
    o?.path ? o.path : `${o?.host ?? '127.0.0.1'}:${o?.port ?? 6379}`;
  if (isCluster(client)) {
    const nodes = (client as unknown as { startupNodes?: unknown[] }).startupNodes ?? [];
    const list = nodes.map((n) => (typeof n === 'object' && n !== null ? describe(n as { host?: string; port?: number }) : String(n)));
    return list.length > 0 ? `Cluster ${list.join(',')}` : 'Cluster';
  }
  const options = (client as { options?: { host?: string; port?: number; path?: string } }).options;
  return describe(options);
}

/** `host:port` of the resolved options (URL, connection or Cluster nodes), without credentials. */
export function targetOfOptions(o: ResolvedOptions): string {
  if (o.cluster) return `Cluster ${o.cluster.nodes.map((n) => (typeof n === 'object' ? `${n.host ?? '127.0.0.1'}:${n.port ?? 6379}` : String(n))).join(',')}`;
  if (o.createClient) return 'the createClient() client';
  if (o.url) {
    try {
      const url = new URL(o.url);
      return `${url.hostname || '127.0.0.1'}:${url.port || 6379}`;
    } catch {
      return 'the configured url';
    }
  }
  return o.connection.path ?? `${o.connection.host ?? '127.0.0.1'}:${o.connection.port ?? 6379}`;
}

/**
 * Connects a lazy client within `timeoutMs` (the whole handshake: TCP, TLS, AUTH/HELLO and the ready
 * check; ioredis's own `connectTimeout` stops at the TCP connect). On failure the client is
 * disconnected (stopping ioredis's reconnect attempts) and the reason is thrown as a typed error:
 * `AuthError` (WRONGPASS, NOAUTH, NOPERM), `ConnectionError` (refused, TLS, silent server…).
 */
export async function connect(client: RedisClient, transport: string, timeoutMs: number): Promise<RedisClient> {
  client.on('error', (error: Error) => {
    // Commands that fail carry the error too; the last one is kept for a failing connect().
    lastErrors.set(client, scrub(error));
  });
  if (client.status !== 'wait') return client;
  let timer: NodeJS.Timeout | undefined;
  let timedOut = false;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      timedOut = true;
      reject(new Error('deadline'));
    }, timeoutMs);
  });
  const connecting = client.connect();
  connecting.catch(() => {});
  try {
    await Promise.race([connecting, deadline]);
    lastErrors.delete(client);
    return client;
  } catch (error) {
    // Read before disconnect(): that changes the status to 'end'.
    const stage: string = client.status;
    client.disconnect();
    const target = targetOf(client);
    if (timedOut) {
      const what =
        stage === 'connecting'
          ? 'the TCP/TLS connection was not established'
          : 'the TCP connection was established, but the server never answered the handshake (AUTH/HELLO, then INFO) — is a Redis server listening there?';
      throw new ConnectionError(`[bus/${transport}] could not connect to Redis at ${target} within ${timeoutMs} ms (connectTimeoutMs): ${what}`);
    }
    throw connectError(lastErrors.get(client) ?? error, transport, target);
  } finally {
    clearTimeout(timer);
  }
}

const AUTH_CODES = new Set(['WRONGPASS', 'NOAUTH', 'NOPERM']);

/** Node's codes of certificate checks (tls.connect `error.code`). */
function isTlsError(error: Error): boolean {
  const code = String((error as { code?: unknown }).code ?? '');
  return (
    /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_)/.test(code) ||
    /certificate|SSL routines|TLS/i.test(error.message)
  );
}

/** Commands whose arguments hold credentials; ioredis keeps the failed command on its ReplyError. */
const SECRET_COMMANDS = /^(auth|hello|acl|migrate|config)$/i;

/** Masks the arguments of a credential-bearing command that ioredis attached to its error (in place). */
export function scrub<E>(error: E): E {
  const command = (error as { command?: { name?: unknown; args?: unknown } } | undefined)?.command;
  if (command && typeof command === 'object' && SECRET_COMMANDS.test(String(command.name)) && Array.isArray(command.args)) {
    command.args = command.args.map(() => '***');
  }
  return error;
}

/** A failed connect as a typed error naming the target; the original error is the `cause`. */
export function connectError(error: unknown, transport: string, target: string): BusError {
  if (BusError.isInstance(error)) return error;
  // A Cluster reports "Failed to refresh slots cache." and keeps the node's own reason here.
  const nodeError = (error as { lastNodeError?: unknown } | undefined)?.lastNodeError;
  if (nodeError instanceof Error) error = nodeError;
  scrub(error);
  const text = redactUrl(messageOf(error));
  const code = replyCode(error);
  if (code !== undefined && AUTH_CODES.has(code)) {
    return new AuthError(`[bus/${transport}] Redis at ${target} refused the connection's credentials: ${text} (check the password/username of url or connection)`, { cause: error });
  }
  if (error instanceof Error && isTlsError(error)) {
    const tlsCode = (error as { code?: unknown }).code;
    return new ConnectionError(`[bus/${transport}] TLS handshake with Redis at ${target} failed: ${text}${tlsCode ? ` (${String(tlsCode)})` : ''} (check connection.tls: ca, servername, certificates)`, {
      cause: error,
      retryable: false,
    });
  }
  return new ConnectionError(`[bus/${transport}] could not connect to Redis at ${target}: ${text}`, { cause: error });
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

/**
 * A Redis failure as a bus error: an ACL/auth refusal (NOPERM, NOAUTH, WRONGPASS) is an `AuthError`,
 * another reply error a `PublishError`, anything else a `ConnectionError`. A pool timeout caused by a
 * failing connect becomes that connect's error.
 */
export function toBusError(error: unknown, transport: string, what: string): BusError {
  if (PoolTimeoutError.isInstance(error) && BusError.isInstance(error.cause)) return error.cause;
  if (BusError.isInstance(error)) return error;
  scrub(error);
  const message = `[bus/${transport}] ${what}: ${redactUrl(messageOf(error))}`;
  if (isReplyError(error)) {
    const code = replyCode(error);
    if (code !== undefined && AUTH_CODES.has(code)) return new AuthError(message, { cause: error });
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

interface Pending {
  deadline: number;
  ms: number;
  what: string;
  onTimeout: () => void;
  reject: (error: unknown) => void;
}

/**
 * Deadlines for many short commands without a timer each: one timer, armed for the earliest deadline
 * in flight and re-armed from the next one when it fires. A command that is answered just leaves the
 * set (no clearTimeout/setTimeout per command, which cost about 1 µs of a publish of one entry). A
 * command that is not answered in time rejects with a `ConnectionError` (`onTimeout` runs first: the
 * connection is replaced) at its deadline, as a timer of its own would. The timer is unref'd (the
 * command's socket keeps the process alive) and stops re-arming once nothing is in flight; `close()`
 * clears it.
 */
export class Deadlines {
  private readonly pending = new Set<Pending>();
  private timer: NodeJS.Timeout | undefined;
  /** The deadline the timer is armed for (Infinity: not armed). */
  private armedFor = Number.POSITIVE_INFINITY;

  /** `promise`, or a `ConnectionError` "`what` got no reply within `ms` ms" when it takes longer. */
  run<T>(promise: Promise<T>, ms: number, what: string, onTimeout: () => void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const entry: Pending = { deadline: performance.now() + ms, ms, what, onTimeout, reject };
      this.pending.add(entry);
      if (entry.deadline < this.armedFor) this.arm(entry.deadline);
      promise.then(
        (value) => {
          if (this.pending.delete(entry)) resolve(value);
        },
        (error: unknown) => {
          if (this.pending.delete(entry)) reject(error);
        },
      );
    });
  }

  /** Number of commands in flight (for tests). */
  get size(): number {
    return this.pending.size;
  }

  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.armedFor = Number.POSITIVE_INFINITY;
  }

  private arm(at: number): void {
    clearTimeout(this.timer);
    this.armedFor = at;
    this.timer = setTimeout(() => this.fire(), Math.max(0, Math.ceil(at - performance.now())));
    this.timer.unref();
  }

  private fire(): void {
    this.timer = undefined;
    this.armedFor = Number.POSITIVE_INFINITY;
    const now = performance.now();
    let next = Number.POSITIVE_INFINITY;
    for (const entry of this.pending) {
      if (entry.deadline <= now) {
        this.pending.delete(entry);
        entry.onTimeout();
        entry.reject(new ConnectionError(`${entry.what} got no reply within ${entry.ms} ms; the connection is presumed dead and replaced`));
      } else if (entry.deadline < next) next = entry.deadline;
    }
    if (next !== Number.POSITIVE_INFINITY) this.arm(next);
  }
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
