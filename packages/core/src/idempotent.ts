import { OptionReader } from './config.js';
import { TimeoutError } from './errors.js';
import type { EventMap, HandlerContext, Middleware } from './events.js';
import { uuidv7 } from './id.js';
import { type Logger, silentLogger } from './logger.js';
import { sleep } from './retry.js';

/** What {@link IdempotencyStore.acquire} found. */
export type IdempotencyState =
  /** The key was free (or its lease had expired): the caller now holds the lease. */
  | 'acquired'
  /** The key is recorded as handled: skip the message. */
  | 'done'
  /** Another holder's lease is live: the message is being handled elsewhere right now. */
  | 'busy';

/**
 * Where {@link idempotent} keeps its records: one key per handled message, either an in-progress
 * *lease* owned by a token, or *done*. Every operation touches one key, so a store on a sharded
 * database (Redis Cluster) needs no cross-shard transaction.
 */
export interface IdempotencyStore {
  /** Short name for logs, e.g. `redis`. */
  readonly name: string;
  /** Takes the lease on `key` for `leaseMs` when the key is free or its lease expired. */
  acquire(key: string, token: string, leaseMs: number): Promise<IdempotencyState>;
  /** Extends the lease if `token` still holds it; resolves whether it did. */
  extend(key: string, token: string, leaseMs: number): Promise<boolean>;
  /** Records `key` as done for `ttlMs`, replacing the lease. */
  complete(key: string, token: string, ttlMs: number): Promise<void>;
  /** Drops the lease if `token` still holds it, so that a retry or a redelivery can run. */
  release(key: string, token: string): Promise<void>;
  /** Releases what the store opened itself (not a client it was given). Idempotent. */
  close?(): Promise<void>;
}

/** Options of {@link idempotent}. */
export interface IdempotentOptions {
  /** Where the records live. */
  store: IdempotencyStore;
  /** How long a *done* record is kept: longer than any redelivery or replay window. @default 86_400_000 (1 day) */
  ttlMs?: number;
  /** How long an in-progress lease lives without renewal; renewed every `leaseMs / 3` while the handler runs. @default 30_000 */
  leaseMs?: number;
  /**
   * How long a duplicate waits for a lease held elsewhere before throwing a retryable
   * {@link TimeoutError} (the bus then retries it). @default leaseMs + 1000
   */
  waitMs?: number;
  /** How often a waiting duplicate looks again. @default min(100, leaseMs / 10) */
  pollMs?: number;
  /** The record's key. @default `${ctx.message.group}:${ctx.message.id}` (envelope id per consumer group) */
  key?: (ctx: HandlerContext<EventMap>) => string;
  /** Called when a message is skipped as already handled. @default none */
  onDuplicate?: (ctx: HandlerContext<EventMap>) => void;
  /** Where store failures are reported. @default silentLogger */
  logger?: Logger;
}

/** The defaults of {@link idempotent}. */
export const IDEMPOTENT_DEFAULTS = { ttlMs: 86_400_000, leaseMs: 30_000 } as const;

/**
 * A middleware that handles each message once per consumer group, despite at-least-once delivery:
 *
 * 1. takes a lease on the message's key (the envelope id per group); a message already *done* is
 *    skipped (acknowledged without running the handler), and one leased elsewhere waits for that
 *    lease to end rather than run a second time;
 * 2. runs the handler, renewing the lease while it runs;
 * 3. only after the handler succeeded, records the key as *done* for `ttlMs`. A handler that throws
 *    releases the lease, so the retry or redelivery runs it again.
 *
 * A process killed after the handler's side effect but before the *done* write (one round trip) is the
 * one case where the handler runs again, after the lease expires. Put it first in `middleware`.
 *
 * ```ts
 * bus.module({ ..., middleware: [idempotent({ store: redisIdempotencyStore({ url }) })] });
 * ```
 */
export function idempotent<M extends EventMap = EventMap>(options: IdempotentOptions): Middleware<M> {
  const r = new OptionReader('bus', 'idempotent');
  const o = r.closed(r.object('options', options), ['store', 'ttlMs', 'leaseMs', 'waitMs', 'pollMs', 'key', 'onDuplicate', 'logger']) as Record<string, unknown>;
  const store = r.object('store', o.store) as unknown as IdempotencyStore;
  for (const method of ['acquire', 'extend', 'complete', 'release'] as const) r.at('store').func(method, store[method]);
  const ttlMs = r.int('ttlMs', o.ttlMs, IDEMPOTENT_DEFAULTS.ttlMs, 1);
  const leaseMs = r.int('leaseMs', o.leaseMs, IDEMPOTENT_DEFAULTS.leaseMs, 10);
  const waitMs = r.int('waitMs', o.waitMs, leaseMs + 1000, 0);
  const pollMs = r.int('pollMs', o.pollMs, Math.max(1, Math.min(100, Math.floor(leaseMs / 10))), 1);
  const keyOf = r.func<(ctx: HandlerContext<EventMap>) => string>('key', o.key, true) ?? ((ctx) => `${ctx.message.group}:${ctx.message.id}`);
  const onDuplicate = r.func<(ctx: HandlerContext<EventMap>) => void>('onDuplicate', o.onDuplicate, true);
  const log = ((o.logger as Logger | undefined) ?? silentLogger).child({ middleware: 'idempotent', store: store.name });

  const middleware: Middleware<EventMap> = (next) => async (ctx) => {
    const key = keyOf(ctx);
    const token = uuidv7();
    const deadline = Date.now() + waitMs;
    for (;;) {
      const state = await store.acquire(key, token, leaseMs);
      if (state === 'done') {
        onDuplicate?.(ctx);
        log.debug('duplicate skipped', { key, id: ctx.message.id });
        return;
      }
      if (state === 'acquired') break;
      if (Date.now() >= deadline) {
        throw new TimeoutError(`[bus] idempotent: message ${ctx.message.id} is still being handled elsewhere after ${waitMs} ms (key ${key})`);
      }
      if (!(await sleep(pollMs, ctx.signal))) throw new TimeoutError(`[bus] idempotent: stopped while waiting for the lease on ${key}`);
    }
    const renew = setInterval(
      () => {
        store.extend(key, token, leaseMs).then(
          (held) => {
            if (!held) log.warn('lease lost while the handler ran (it outlived leaseMs without renewal)', { key });
          },
          (error: unknown) => log.warn('could not renew the lease', { key, error }),
        );
      },
      Math.max(1, Math.floor(leaseMs / 3)),
    );
    renew.unref();
    try {
      await next(ctx);
    } catch (error) {
      clearInterval(renew);
      await store.release(key, token).catch((releaseError: unknown) => log.warn('could not release the lease; it expires by itself', { key, error: releaseError }));
      throw error;
    }
    clearInterval(renew);
    try {
      await store.complete(key, token, ttlMs);
    } catch (error) {
      // The handler succeeded: throwing would run it again. The lease expires by itself; only a later
      // duplicate of this message could then run once more.
      log.error('could not record the message as handled', { key, error });
    }
  };
  return middleware as unknown as Middleware<M>;
}

/**
 * An {@link IdempotencyStore} in this process's memory: for tests and single-process consumers (records
 * are lost on restart and not shared between workers).
 */
export function memoryIdempotencyStore(): IdempotencyStore & { readonly size: number } {
  const entries = new Map<string, { value: string; expiresAt: number }>();
  const live = (key: string) => {
    const entry = entries.get(key);
    if (entry && entry.expiresAt <= Date.now()) {
      entries.delete(key);
      return undefined;
    }
    return entry;
  };
  return {
    name: 'memory',
    get size() {
      return entries.size;
    },
    async acquire(key, token, leaseMs) {
      const entry = live(key);
      if (entry) return entry.value === DONE ? 'done' : 'busy';
      entries.set(key, { value: token, expiresAt: Date.now() + leaseMs });
      return 'acquired';
    },
    async extend(key, token, leaseMs) {
      const entry = live(key);
      if (entry?.value !== token) return false;
      entry.expiresAt = Date.now() + leaseMs;
      return true;
    },
    async complete(key, _token, ttlMs) {
      entries.set(key, { value: DONE, expiresAt: Date.now() + ttlMs });
    },
    async release(key, token) {
      if (live(key)?.value === token) entries.delete(key);
    },
  };
}

/** The value of a *done* record (a lease holds its token, a UUID). */
const DONE = 'done';
