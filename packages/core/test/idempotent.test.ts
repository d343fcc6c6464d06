import { describe, expect, it } from 'vitest';
import { ConfigError, type EventMap, type HandlerContext, idempotent, memoryIdempotencyStore } from '../src/index.js';

const ctx = (id: string, group = 'm-c'): HandlerContext<EventMap> => ({
  module: 'm',
  consumer: 'c',
  event: 'e',
  payload: {},
  signal: new AbortController().signal,
  message: { id, topic: 't', key: undefined, headers: {}, publishedAt: 0, source: undefined, transport: 'memory', group, position: '1', deliveryCount: 1, attempt: 1 },
});

describe('idempotent middleware (memory store)', () => {
  it('runs a message id once per consumer group; other groups run it too', async () => {
    const runs: string[] = [];
    const skipped: string[] = [];
    const handler = idempotent({ store: memoryIdempotencyStore(), onDuplicate: (c) => skipped.push(c.message.id) })(async (c) => {
      runs.push(`${c.message.group}/${c.message.id}`);
    });
    await handler(ctx('a'));
    await handler(ctx('a'));
    await handler(ctx('b'));
    await handler(ctx('a', 'other-group'));
    expect(runs).toEqual(['m-c/a', 'm-c/b', 'other-group/a']);
    expect(skipped).toEqual(['a']);
  });

  it('a concurrent duplicate waits for the running one and is then skipped, not run twice', async () => {
    const store = memoryIdempotencyStore();
    let running = 0;
    let runs = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const handler = idempotent({ store, leaseMs: 5000, pollMs: 5 })(async () => {
      running++;
      runs++;
      expect(running).toBe(1);
      await gate;
      running--;
    });
    const first = handler(ctx('x'));
    await new Promise((r) => setTimeout(r, 20));
    const second = handler(ctx('x'));
    await new Promise((r) => setTimeout(r, 50));
    expect(runs).toBe(1);
    release();
    await Promise.all([first, second]);
    expect(runs).toBe(1);
  });

  it('records the message only after the handler succeeded: a failure releases it for the retry', async () => {
    let calls = 0;
    const handler = idempotent({ store: memoryIdempotencyStore() })(async () => {
      calls++;
      if (calls === 1) throw new Error('first attempt fails');
    });
    await expect(handler(ctx('y'))).rejects.toThrow('first attempt fails');
    await handler(ctx('y'));
    await handler(ctx('y'));
    expect(calls).toBe(2);
  });

  it('a lease left by a dead holder expires; the duplicate then runs', async () => {
    const store = memoryIdempotencyStore();
    expect(await store.acquire('m-c:z', 'dead-worker', 50)).toBe('acquired');
    let runs = 0;
    await idempotent({ store, leaseMs: 50, pollMs: 5 })(async () => {
      runs++;
    })(ctx('z'));
    expect(runs).toBe(1);
  });

  it('a duplicate that waits longer than waitMs throws a retryable TimeoutError', async () => {
    const store = memoryIdempotencyStore();
    await store.acquire('m-c:w', 'alive-elsewhere', 60_000);
    const error = await Promise.resolve(idempotent({ store, waitMs: 30, pollMs: 5 })(async () => {})(ctx("w"))).catch((e: unknown) => e);
    expect((error as { code?: string }).code).toBe('TIMEOUT');
    expect((error as { retryable?: boolean }).retryable).toBe(true);
  });

  it('checks its options', () => {
    expect(() => idempotent({ store: {} as never })).toThrow(ConfigError);
    expect(() => idempotent({ store: memoryIdempotencyStore(), ttlMs: 0 })).toThrow(/idempotent\.ttlMs must be a positive integer/);
  });
});
