import { type EventMap, type HandlerContext, idempotent } from '@bus/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate, pgIdempotencyStore } from '../src/index.js';
import { sleep, testDatabase } from './helpers/pg.js';

const db = testDatabase(10);
beforeAll(() => migrate(db.pool, { schema: db.schema }));
afterAll(() => db.drop());

const ctx = (id: string): HandlerContext<EventMap> => ({
  module: 'm',
  consumer: 'c',
  event: 'e',
  payload: {},
  signal: new AbortController().signal,
  message: { id, topic: 't', key: undefined, headers: {}, publishedAt: 0, source: undefined, transport: 'redis', group: 'm-c', position: '1', deliveryCount: 1, attempt: 1 },
});

describe('pgIdempotencyStore', () => {
  it('acquire / extend / complete / release, and expiry', async () => {
    const store = pgIdempotencyStore({ pool: db.pool, schema: db.schema });
    expect(await store.acquire('k1', 'a', 5000)).toBe('acquired');
    expect(await store.acquire('k1', 'b', 5000)).toBe('busy');
    expect(await store.extend('k1', 'b', 5000)).toBe(false);
    expect(await store.extend('k1', 'a', 5000)).toBe(true);
    await store.release('k1', 'b');
    expect(await store.acquire('k1', 'b', 5000)).toBe('busy');
    await store.release('k1', 'a');
    expect(await store.acquire('k1', 'b', 5000)).toBe('acquired');
    await store.complete('k1', 'b', 60_000);
    expect(await store.acquire('k1', 'c', 5000)).toBe('done');
    expect(await store.extend('k1', 'b', 5000), 'a done record is no lease').toBe(false);
    expect(await store.acquire('k2', 'dead', 50)).toBe('acquired');
    await sleep(80);
    expect(await store.acquire('k2', 'alive', 5000)).toBe('acquired');
    await store.complete('k3', 'x', 1);
    await sleep(20);
    expect(await store.purge()).toBeGreaterThanOrEqual(1);
    expect(await store.acquire('k3', 'y', 5000), 'an expired done record is forgotten').toBe('acquired');
  });

  it('concurrent acquires of one key: exactly one wins', async () => {
    const store = pgIdempotencyStore({ pool: db.pool, schema: db.schema });
    const states = await Promise.all(Array.from({ length: 8 }, (_, i) => store.acquire('race', `t${i}`, 5000)));
    expect(states.filter((s) => s === 'acquired')).toHaveLength(1);
    expect(states.filter((s) => s === 'busy')).toHaveLength(7);
  });

  it('with the middleware, 5 concurrent deliveries of each of 20 messages run the handler once each', async () => {
    const store = pgIdempotencyStore({ pool: db.pool, schema: db.schema });
    const runs = new Map<string, number>();
    const handler = idempotent({ store, leaseMs: 5000, pollMs: 5 })(async (c) => {
      runs.set(c.message.id, (runs.get(c.message.id) ?? 0) + 1);
      await sleep(10);
    });
    await Promise.all(Array.from({ length: 20 }, (_, m) => Promise.all(Array.from({ length: 5 }, () => handler(ctx(`msg-${m}`))))));
    expect(runs.size).toBe(20);
    expect(Math.max(...runs.values())).toBe(1);
  });

  it('completeWithin records the message in the handler transaction: a rollback forgets it', async () => {
    const store = pgIdempotencyStore({ pool: db.pool, schema: db.schema });
    for (const outcome of ['ROLLBACK', 'COMMIT'] as const) {
      const tx = await db.pool.connect();
      try {
        await tx.query('BEGIN');
        await store.completeWithin(tx, `m-c:tx-${outcome}`, 60_000);
        await tx.query(outcome);
      } finally {
        tx.release();
      }
    }
    expect(await store.acquire('m-c:tx-ROLLBACK', 'n', 5000)).toBe('acquired');
    expect(await store.acquire('m-c:tx-COMMIT', 'n', 5000)).toBe('done');
  });
});
