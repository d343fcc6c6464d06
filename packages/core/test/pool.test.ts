import { describe, expect, it } from 'vitest';
import { AuthError, BusError, createPool, PoolTimeoutError } from '../src/index.js';

describe('createPool', () => {
  it('is lazy, bounded by max, and reports its size', async () => {
    let created = 0;
    const pool = createPool('test', { create: async () => ({ n: ++created }), destroy: async () => {} }, { max: 2, acquireTimeoutMs: 100 });
    expect(created).toBe(0);
    const a = await pool.acquire();
    const b = await pool.acquire();
    expect(pool.stats()).toMatchObject({ size: 2, borrowed: 2, max: 2 });
    const waiting = pool.acquire();
    expect(pool.stats().pending).toBe(1);
    await pool.release(a);
    expect(await waiting).toBe(a);
    await pool.release(a);
    await pool.release(b);
    await pool.close();
    expect(created).toBe(2);
  });

  it('exhaustion gives a PoolTimeoutError after the acquire timeout, naming the pool and its state', async () => {
    const pool = createPool('redis producer', { create: async () => ({}), destroy: async () => {} }, { max: 1, acquireTimeoutMs: 50 });
    const held = await pool.acquire();
    const started = performance.now();
    const error = await pool.acquire().catch((e: unknown) => e);
    expect(performance.now() - started).toBeGreaterThanOrEqual(45);
    expect(error).toBeInstanceOf(PoolTimeoutError);
    expect(BusError.isInstance(error) && error.code).toBe('POOL_TIMEOUT');
    expect((error as Error).message).toBe('[bus] pool "redis producer" exhausted: no resource free within 50 ms (size 1/1, in use 1, waiting 1)');
    await pool.release(held);
    await pool.close();
  });

  it('carries the connection error when creating resources fails', async () => {
    const pool = createPool('broken', { create: async () => Promise.reject(new Error('ECONNREFUSED 127.0.0.1:1')), destroy: async () => {} }, { max: 1, acquireTimeoutMs: 50 });
    const error = (await pool.acquire().catch((e: unknown) => e)) as PoolTimeoutError;
    expect(error).toBeInstanceOf(PoolTimeoutError);
    expect((error.cause as Error).message).toBe('ECONNREFUSED 127.0.0.1:1');
    await pool.close();
  });

  it('a pool timeout caused by a failing connect says so and carries its text, not "exhausted"', async () => {
    const pool = createPool('broken', { create: async () => Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:1')), destroy: async () => {} }, { max: 1, acquireTimeoutMs: 50, createRetryDelayMs: 5 });
    const error = (await pool.acquire().catch((e: unknown) => e)) as PoolTimeoutError;
    expect(error).toBeInstanceOf(PoolTimeoutError);
    expect(error.message).toContain('connecting failed: connect ECONNREFUSED 127.0.0.1:1');
    expect(error.message).not.toContain('exhausted');
    await pool.close();
  });

  it('a non-retryable connect error (refused credentials) fails every waiting acquire at once', async () => {
    let creates = 0;
    const refused = new AuthError('[bus/test] WRONGPASS');
    const pool = createPool(
      'auth',
      {
        create: async () => {
          creates++;
          throw refused;
        },
        destroy: async () => {},
      },
      // A minute: only failing fast lets the test end within its timeout.
      { max: 2, acquireTimeoutMs: 60_000, createRetryDelayMs: 5 },
    );
    const errors = await Promise.all([pool.acquire().catch((e: unknown) => e), pool.acquire().catch((e: unknown) => e)]);
    expect(errors).toEqual([refused, refused]);
    const before = creates;
    await new Promise((r) => setTimeout(r, 50));
    // Nobody waits any more: no create keeps retrying in the background.
    expect(creates).toBe(before);
    await pool.close(100);
  });

  it('validation replaces a broken resource on borrow', async () => {
    let created = 0;
    const broken = new Set<number>();
    const destroyed: number[] = [];
    const pool = createPool(
      'validated',
      {
        create: async () => ++created,
        destroy: async (n) => {
          destroyed.push(n);
        },
        validate: async (n) => !broken.has(n),
      },
      { max: 1 },
    );
    const first = await pool.acquire();
    await pool.release(first);
    broken.add(first);
    const second = await pool.acquire();
    expect(second).not.toBe(first);
    expect(destroyed).toEqual([first]);
    await pool.release(second);
    await pool.close();
  });

  it('a synchronous or throwing validate replaces the resource too; one that never accepts ends in a PoolTimeoutError, not a loop', async () => {
    let created = 0;
    const destroyed: number[] = [];
    let verdict: (n: number) => boolean = () => true;
    const pool = createPool(
      'sync-validated',
      {
        create: async () => ++created,
        destroy: async (n) => {
          destroyed.push(n);
        },
        validate: (n) => verdict(n),
      },
      { max: 1, acquireTimeoutMs: 200 },
    );
    const first = await pool.acquire();
    await pool.release(first);
    verdict = (n) => n !== first;
    const second = await pool.acquire();
    expect(second).not.toBe(first);
    await pool.release(second);
    verdict = (n) => {
      if (n === second) throw new Error('cannot tell');
      return true;
    };
    const third = await pool.acquire();
    expect(third).not.toBe(second);
    await pool.release(third);
    expect(destroyed).toEqual([first, second]);
    verdict = () => false;
    const t0 = Date.now();
    await expect(pool.acquire()).rejects.toMatchObject({ name: 'PoolTimeoutError' });
    expect(Date.now() - t0).toBeLessThan(2000);
    await pool.close();
  });

  it('use() destroys a resource its callback reports broken, and close() is idempotent and final', async () => {
    let created = 0;
    const destroyed: number[] = [];
    const pool = createPool('use', { create: async () => ++created, destroy: async (n) => void destroyed.push(n) }, { max: 1 });
    await expect(pool.use(async () => Promise.reject(new Error('socket closed')), () => true)).rejects.toThrow('socket closed');
    expect(destroyed).toEqual([1]);
    expect(await pool.use(async (n) => n * 10)).toBe(20);
    await Promise.all([pool.close(), pool.close()]);
    await expect(pool.acquire()).rejects.toThrow('[bus] pool "use" is closed');
  });

  it('a resource given back is counted available at once, reused by the next borrow, and still closed or evicted', async () => {
    let created = 0;
    const destroyed: number[] = [];
    const pool = createPool('kept', { create: async () => ++created, destroy: async (n) => void destroyed.push(n) }, { max: 2 });
    for (let i = 0; i < 100; i++) expect(await pool.use(async (n) => n)).toBe(1);
    expect(created).toBe(1);
    expect(pool.stats()).toMatchObject({ size: 1, available: 1, borrowed: 0, pending: 0 });
    const a = await pool.acquire();
    await pool.release(a);
    await expect(pool.release(a)).rejects.toThrow('released twice');
    // Two at once: the kept one and a new one, both back in the pool, both closed.
    const [x, y] = await Promise.all([pool.acquire(), pool.acquire()]);
    expect(new Set([x, y])).toEqual(new Set([1, 2]));
    await pool.release(x);
    await pool.release(y);
    expect(pool.stats()).toMatchObject({ size: 2, available: 2, borrowed: 0 });
    await pool.close();
    expect(destroyed.sort()).toEqual([1, 2]);
    expect(pool.stats()).toMatchObject({ size: 0, borrowed: 0 });
  });

  it('close() while a use runs and another resource was just given back: each is destroyed once, nothing stays kept', async () => {
    let created = 0;
    const destroyed: number[] = [];
    const pool = createPool('closing', { create: async () => ++created, destroy: async (n) => void destroyed.push(n) }, { max: 3 });
    const [a, b] = await Promise.all([pool.acquire(), pool.acquire()]);
    await pool.release(a);
    await pool.release(b);
    // Takes one of the two just given back, and holds it.
    let finish!: () => void;
    const running = pool.use((n) => new Promise<number>((resolve) => (finish = () => resolve(n))));
    await Promise.resolve();
    const closing = pool.close(2000);
    await expect(pool.acquire()).rejects.toThrow('is closed');
    finish();
    expect([1, 2]).toContain(await running);
    await closing;
    expect(destroyed.sort()).toEqual([1, 2]);
    expect(pool.stats()).toMatchObject({ size: 0, borrowed: 0, available: 0 });
  });

  it('a waiting borrower gets a given-back resource before a new borrower', async () => {
    const pool = createPool('fair', { create: async () => ({}), destroy: async () => {} }, { max: 1, acquireTimeoutMs: 1000 });
    const held = await pool.acquire();
    const order: string[] = [];
    const waiting = pool.acquire().then((r) => {
      order.push('waiting');
      return r;
    });
    await pool.release(held);
    const late = pool.acquire().then((r) => {
      order.push('late');
      return r;
    });
    await pool.release(await waiting);
    await pool.release(await late);
    expect(order).toEqual(['waiting', 'late']);
    await pool.close();
  });

  it('idle resources above min are evicted', async () => {
    const destroyed: number[] = [];
    let created = 0;
    const pool = createPool('idle', { create: async () => ++created, destroy: async (n) => void destroyed.push(n) }, { max: 2, idleTimeoutMs: 30, evictionIntervalMs: 10 });
    const a = await pool.acquire();
    await pool.release(a);
    await new Promise((r) => setTimeout(r, 120));
    expect(destroyed).toEqual([1]);
    expect(pool.stats().size).toBe(0);
    await pool.close();
  });
});
