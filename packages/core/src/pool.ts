import { child, fail, opt } from './kit/schema.js';
import * as genericPool from 'generic-pool';
import { ClosedError, isRetryable, PoolTimeoutError } from './errors.js';
import type { PoolStats } from './metrics.js';

/** Pool sizing and timing, in milliseconds. */
export interface PoolOptions {
  /** Connections kept open once the pool has started. @default 0 */
  min?: number;
  /** Upper bound of open connections. @default 10 */
  max?: number;
  /** How long `acquire` waits for a free connection before a {@link PoolTimeoutError}. @default 5000 */
  acquireTimeoutMs?: number;
  /** An idle connection above `min` is closed after this long. @default 60000 */
  idleTimeoutMs?: number;
  /** How often idle connections are checked. @default 10000 */
  evictionIntervalMs?: number;
  /** Validate a connection each time it is borrowed. @default true */
  validateOnBorrow?: boolean;
  /** Pause after a failed connection attempt before the next one (the broker is down). @default 200 */
  createRetryDelayMs?: number;
}

export interface PoolFactory<T> {
  create(): Promise<T>;
  destroy(resource: T): Promise<void>;
  /**
   * `false` (or a promise of it) for a broken resource: it is destroyed and another one is borrowed.
   * Checked on each borrow (`validateOnBorrow`); a synchronous answer adds nothing to the borrow.
   */
  validate?(resource: T): Promise<boolean> | boolean;
}

/** A bounded pool of connections (producers, blocking-read clients…) built on generic-pool. */
export interface Pool<T> {
  readonly name: string;
  acquire(): Promise<T>;
  release(resource: T): Promise<void>;
  /** Removes a broken resource from the pool. */
  destroy(resource: T): Promise<void>;
  /** Acquires, runs `fn`, releases (or destroys, when `fn` says the resource broke). */
  use<R>(fn: (resource: T) => Promise<R>, isBroken?: (error: unknown) => boolean): Promise<R>;
  stats(): PoolStats;
  /** Waits for borrowed resources to come back (bounded by `timeoutMs`), then destroys all. Idempotent. */
  close(timeoutMs?: number): Promise<void>;
}

const DAY_MS = 86_400_000;

/**
 * The closed schema of {@link PoolOptions}, for transports: `poolSchema.parse(options.pool, at)`.
 * Absent keys stay absent (the pool fills {@link POOL_DEFAULTS}); `min` must not exceed `max`.
 */
export const poolSchema = opt
  .object({
    min: opt.int(0, 10_000).optional(),
    max: opt.int(1, 10_000).optional(),
    acquireTimeoutMs: opt.int(1, DAY_MS).optional(),
    idleTimeoutMs: opt.int(1, DAY_MS).optional(),
    evictionIntervalMs: opt.int(1, DAY_MS).optional(),
    validateOnBorrow: opt.boolean().optional(),
    createRetryDelayMs: opt.int(0, DAY_MS).optional(),
  })
  .refine((pool, at) => {
    if ((pool.min ?? 0) > (pool.max ?? POOL_DEFAULTS.max)) fail(child(at, 'min'), `must not exceed pool.max (${pool.max ?? POOL_DEFAULTS.max})`, pool.min);
  })
  .default(() => ({}));

export const POOL_DEFAULTS = {
  min: 0,
  max: 10,
  acquireTimeoutMs: 5000,
  idleTimeoutMs: 60_000,
  evictionIntervalMs: 10_000,
  validateOnBorrow: true,
  createRetryDelayMs: 200,
} as const satisfies Required<PoolOptions>;

/**
 * Creates a pool. Lazy: no resource is created before the first `acquire`.
 * Pool exhaustion surfaces as a {@link PoolTimeoutError} after `acquireTimeoutMs`, carrying the last
 * error of `factory.create` as its `cause` (and its text in the message) when connecting was what
 * failed. A create that fails with a non-retryable error (`isRetryable` false: refused credentials, a
 * certificate the client does not trust) fails every waiting `acquire` at once with that error:
 * waiting longer cannot help.
 */
export function createPool<T>(
  name: string,
  factory: PoolFactory<T>,
  options: PoolOptions = {},
  /** Called with the pool's size after each acquire and release, e.g. to feed `Metrics.poolStats`. */
  observe?: (stats: PoolStats) => void,
): Pool<T> {
  const o = { ...POOL_DEFAULTS, ...stripUndefined(options) };
  let lastCreateError: unknown;
  let creating = 0;
  let closing: Promise<void> | undefined;
  const gp = genericPool.createPool<T>(
    {
      create: async () => {
        creating++;
        try {
          const resource = await factory.create();
          lastCreateError = undefined;
          return resource;
        } catch (error) {
          lastCreateError = error;
          if (!isRetryable(error)) failWaiting(error);
          // generic-pool retries a failed create at once for every waiting request: without a pause
          // that is a busy loop that starves the event loop (and the acquire timeout's own timer).
          await new Promise((resolve) => setTimeout(resolve, o.createRetryDelayMs));
          throw error;
        } finally {
          creating--;
        }
      },
      destroy: (resource) => factory.destroy(resource),
    },
    {
      min: o.min,
      max: o.max,
      acquireTimeoutMillis: o.acquireTimeoutMs,
      idleTimeoutMillis: o.idleTimeoutMs,
      evictionRunIntervalMillis: o.evictionIntervalMs,
      // Validation on borrow runs in acquire() below: generic-pool's own chains several promises per borrow.
      testOnBorrow: false,
      autostart: false,
    },
  );
  // generic-pool also reports create failures as events; without a listener they would be lost.
  gp.on('factoryCreateError', (error) => {
    lastCreateError = error;
  });
  gp.on('factoryDestroyError', () => {});

  /**
   * Rejects every waiting acquire with `error`. generic-pool (3.x) has no public way to do this, and
   * would otherwise retry the create for each waiting request until its acquire timeout.
   */
  const failWaiting = (error: unknown) => {
    const queue = (gp as unknown as { _waitingClientsQueue?: { length: number; dequeue(): { reject(e: unknown): void } | undefined } })._waitingClientsQueue;
    if (!queue || typeof queue.dequeue !== 'function') return;
    for (let request = queue.dequeue(); request; request = queue.dequeue()) request.reject(error);
  };

  /**
   * Resources given back while nobody waited, still borrowed from generic-pool until the event loop's
   * next check phase: a caller that borrows again before then (a publish loop, a handler awaiting
   * publishes one by one) takes one from here without generic-pool's per-borrow request, deferred and
   * acquire-timeout timer. Returned to generic-pool by `flush` (so its idle eviction, `drain` and
   * fairness see them), at once when someone waits.
   */
  const kept: T[] = [];
  let flushScheduled = false;
  const flush = () => {
    flushScheduled = false;
    for (let resource = kept.pop(); resource !== undefined; resource = kept.pop()) gp.release(resource).catch(() => {});
  };

  const stats = (): PoolStats => ({
    size: gp.size,
    // generic-pool's clear() destroys the idle resources but leaves them in its available list: never
    // report more available than exist (after close(): 0).
    available: Math.min(gp.available, gp.size) + kept.length,
    borrowed: gp.borrowed - kept.length,
    pending: gp.pending,
    min: gp.min,
    max: gp.max,
  });

  const report = observe ? () => observe(stats()) : () => {};
  const giveBack = (resource: T): Promise<void> | undefined => {
    if (kept.includes(resource)) return Promise.reject(new Error(`[bus] pool "${name}": resource released twice`));
    if (closing || gp.pending > 0) return gp.release(resource);
    kept.push(resource);
    if (!flushScheduled) {
      flushScheduled = true;
      setImmediate(flush);
    }
    return undefined;
  };
  const release = async (resource: T) => {
    await giveBack(resource);
    report();
  };
  const destroy = async (resource: T) => {
    await gp.destroy(resource);
    report();
  };

  const validate = o.validateOnBorrow ? factory.validate?.bind(factory) : undefined;
  const timeoutError = (pending: number) => {
    const now = stats();
    return new PoolTimeoutError(name, o.acquireTimeoutMs, { ...now, pending: now.pending + pending }, { lastError: lastCreateError, inProgress: creating });
  };

  const acquire = async (): Promise<T> => {
    if (closing) throw new ClosedError(`pool "${name}"`);
    const deadline = Date.now() + o.acquireTimeoutMs;
    for (;;) {
      let resource = kept.pop();
      if (resource === undefined) {
        try {
          resource = await gp.acquire();
        } catch (error) {
          report();
          // The timed-out request has already left the queue; count it among the waiting.
          if (error instanceof Error && error.name === 'TimeoutError') throw timeoutError(1);
          throw error;
        }
      }
      if (!validate) {
        report();
        return resource;
      }
      let valid: boolean;
      try {
        const answer = validate(resource);
        // A synchronous answer costs no tick.
        valid = (typeof answer === 'boolean' ? answer : await answer) !== false;
      } catch {
        valid = false;
      }
      if (valid) {
        report();
        return resource;
      }
      // Broken: replaced by another (a new one when none is idle), within the acquire timeout.
      await gp.destroy(resource).catch(() => {});
      if (Date.now() >= deadline) {
        report();
        throw timeoutError(0);
      }
    }
  };

  return {
    name,
    acquire,
    release,
    destroy,
    async use(fn, isBroken) {
      const resource = await acquire();
      let result: Awaited<ReturnType<typeof fn>>;
      try {
        result = await fn(resource);
      } catch (error) {
        if (isBroken?.(error)) await destroy(resource).catch(() => {});
        else await release(resource).catch(() => {});
        throw error;
      }
      // Taken back synchronously; the caller need not wait for the report.
      giveBack(resource)?.catch(() => {});
      report();
      return result;
    },
    stats,
    close(timeoutMs = 5000) {
      closing ??= (async () => {
        flush();
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          gp.drain(),
          new Promise<void>((resolve) => {
            timer = setTimeout(resolve, timeoutMs);
          }),
        ]);
        clearTimeout(timer);
        await gp.clear();
        report();
      })();
      return closing;
    },
  };
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
