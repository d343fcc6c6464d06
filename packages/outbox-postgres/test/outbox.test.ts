import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ConfigError, createBus, defineEvents, ValidationError } from '@bus/core';
import { kafka } from '@bus/kafka';
import { redisStream } from '@bus/redis-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { migrate, pgOutbox } from '../src/index.js';
import { PG_URL, REDIS_URL, readStream, sleep, testDatabase, waitFor } from './helpers/pg.js';

const require = createRequire(import.meta.url);
const TSX = pathToFileURL(require.resolve('tsx')).href;
const RELAY = fileURLToPath(new URL('./fixtures/relay.ts', import.meta.url));
const TSCONFIG = fileURLToPath(new URL('./fixtures/tsconfig.json', import.meta.url));
const prefix = `bus-test:${randomUUID().slice(0, 8)}:`;
const db = testDatabase(20);
type Events = { 'order.created': { orderId: string; n: number } };

const redisBus = () => createBus<Events>({ transports: { redis: redisStream({ url: REDIS_URL, keyPrefix: prefix }) } });

/** Runs `work` in a transaction on its own connection; commits, or rolls back when asked or when it throws. */
async function inTransaction(work: (tx: import('pg').PoolClient) => Promise<void>, rollback = false): Promise<void> {
  const tx = await db.pool.connect();
  try {
    await tx.query('BEGIN');
    await work(tx);
    await tx.query(rollback ? 'ROLLBACK' : 'COMMIT');
  } catch (error) {
    await tx.query('ROLLBACK');
    throw error;
  } finally {
    tx.release();
  }
}

beforeAll(async () => {
  await migrate(db.pool, { schema: db.schema });
});

afterAll(async () => {
  await db.drop();
  const { Redis } = await import('ioredis');
  const redis = new Redis(REDIS_URL);
  const keys = await redis.keys(`${prefix}*`);
  for (const key of keys) await redis.del(key);
  redis.disconnect();
});

describe('migrate', () => {
  it('applies the shipped SQL once; again and concurrently it applies nothing', async () => {
    const again = await Promise.all([migrate(db.pool, { schema: db.schema }), migrate(db.pool, { schema: db.schema })]);
    expect(again).toEqual([[], []]);
    const fresh = testDatabase(2);
    try {
      expect(await migrate(fresh.pool, { schema: fresh.schema })).toEqual([1, 2]);
      const { rows } = await fresh.pool.query(`SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1`, [fresh.schema]);
      expect(rows.map((r) => r.table_name)).toEqual(['bus_idempotency', 'bus_outbox', 'bus_outbox_migrations']);
    } finally {
      await fresh.drop();
    }
  });
});

describe('pgOutbox', () => {
  it('checks its options', () => {
    expect(() => pgOutbox({ pool: {} as never })).toThrow(ConfigError);
    expect(() => pgOutbox({ pool: db.pool, schema: '' })).toThrow(/outbox\.schema must be a non-empty string/);
  });

  it('sends committed rows, never rolled-back ones; reports backlog and age; validates payloads', async () => {
    const events = defineEvents({ 'order.created': z.object({ orderId: z.string(), n: z.number().int() }) });
    const outbox = pgOutbox({ pool: db.pool, schema: db.schema, events });
    const topic = `orders-${randomUUID().slice(0, 6)}`;
    const committed: string[] = [];
    const rolledBack: string[] = [];
    for (let n = 0; n < 20; n++) {
      const rollback = n % 4 === 3;
      await inTransaction(async (tx) => {
        const { id } = await outbox.publish(tx, topic, 'order.created', { orderId: `o-${n}`, n }, { key: `o-${n % 3}` });
        (rollback ? rolledBack : committed).push(id);
      }, rollback);
    }
    // An invalid payload throws before writing: the caller's transaction goes on.
    await inTransaction(async (tx) => {
      // biome-ignore lint/suspicious/noExplicitAny: a payload from an untyped caller.
      const error = await outbox.publish(tx, topic, 'order.created', { orderId: 'x', n: 1.5 } as any).catch((e: unknown) => e);
      expect(ValidationError.isInstance(error)).toBe(true);
      expect((error as ValidationError).issues[0]?.path).toBe('n');
    });
    await sleep(30);
    const stats = await outbox.stats();
    expect(stats.backlog).toBe(15);
    expect(stats.oldestAgeMs).toBeGreaterThanOrEqual(30);

    const bus = redisBus();
    const reported: { backlog: number }[] = [];
    const relay = outbox.relay(bus, { batchSize: 7, onStats: (s) => reported.push(s), statsIntervalMs: 20 });
    try {
      await waitFor('all committed rows sent', () => relay.sent === 15);
      const sent = await readStream(REDIS_URL, `${prefix}${topic}`);
      expect(sent.map((m) => m.id)).toEqual(committed);
      expect(sent.filter((m) => rolledBack.includes(m.id))).toEqual([]);
      expect(sent[0]).toMatchObject({ key: 'o-0', payload: { orderId: 'o-0', n: 0 } });
      await waitFor('stats of the drained outbox', () => reported.some((s) => s.backlog === 0));
      expect(reported[0]?.backlog).toBeGreaterThan(0);
      expect(await outbox.stats()).toEqual({ backlog: 0, oldestAgeMs: 0 });
      const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM ${outbox.table}`);
      expect(rows[0].n).toBe(0);
    } finally {
      await relay.close();
      await bus.close();
    }
  });

  it('a NOTIFY at commit wakes the relay long before its poll interval', async () => {
    const outbox = pgOutbox<Events>({ pool: db.pool, schema: db.schema });
    const topic = `wake-${randomUUID().slice(0, 6)}`;
    const bus = redisBus();
    const relay = outbox.relay(bus, { pollIntervalMs: 60_000 });
    try {
      await sleep(300); // the relay's first scan found nothing and waits (LISTEN is on)
      const started = Date.now();
      await inTransaction((tx) => outbox.publish(tx, topic, 'order.created', { orderId: 'w', n: 1 }).then(() => {}));
      await waitFor('the woken relay', () => relay.sent === 1, 10_000);
      expect(Date.now() - started).toBeLessThan(30_000);
    } finally {
      await relay.close();
      await bus.close();
    }
  });

  it("'mark' keeps sent rows with sent_at", async () => {
    const outbox = pgOutbox<Events>({ pool: db.pool, schema: db.schema });
    const topic = `mark-${randomUUID().slice(0, 6)}`;
    await inTransaction((tx) => outbox.publish(tx, topic, 'order.created', { orderId: 'm', n: 1 }).then(() => {}));
    const bus = redisBus();
    const relay = outbox.relay(bus, { afterSend: 'mark', pollIntervalMs: 20 });
    try {
      await waitFor('sent', () => relay.sent === 1);
      const { rows } = await db.pool.query(`SELECT sent_at FROM ${outbox.table} WHERE topic = $1`, [topic]);
      expect(rows).toHaveLength(1);
      expect(rows[0].sent_at).toBeInstanceOf(Date);
      expect((await outbox.stats()).backlog).toBe(0);
    } finally {
      await relay.close();
      await bus.close();
      await db.pool.query(`DELETE FROM ${outbox.table} WHERE topic = $1`, [topic]);
    }
  });

  it('three relays at once send every row once and keep each key in order', async () => {
    const outbox = pgOutbox<Events>({ pool: db.pool, schema: db.schema });
    const topic = `order-${randomUUID().slice(0, 6)}`;
    const N = 1500;
    const keys = 5;
    // Written by 5 concurrent producers, one per key, 30 rows per transaction.
    await Promise.all(
      Array.from({ length: keys }, async (_, k) => {
        for (let start = 0; start < N / keys; start += 30) {
          await inTransaction(async (tx) => {
            for (let i = start; i < start + 30; i++) await outbox.publish(tx, topic, 'order.created', { orderId: `k${k}`, n: i }, { key: `k${k}` });
          });
        }
      }),
    );
    const buses = [redisBus(), redisBus(), redisBus()];
    const relays = buses.map((bus) => outbox.relay(bus, { batchSize: 40, pollIntervalMs: 20 }));
    try {
      await waitFor('all rows sent', () => relays.reduce((sum, r) => sum + r.sent, 0) === N, 60_000);
      expect(relays.filter((r) => r.sent > 0).length, 'the relays shared the work').toBeGreaterThan(1);
      const sent = await readStream(REDIS_URL, `${prefix}${topic}`);
      expect(sent).toHaveLength(N);
      expect(new Set(sent.map((m) => m.id)).size).toBe(N);
      for (let k = 0; k < keys; k++) {
        const ns = sent.filter((m) => m.key === `k${k}`).map((m) => (m.payload as { n: number }).n);
        expect(ns).toEqual(Array.from({ length: N / keys }, (_, i) => i));
      }
    } finally {
      await Promise.all(relays.map((r) => r.close()));
      await Promise.all(buses.map((b) => b.close()));
    }
  });
});

describe('relay processes killed with SIGKILL mid-batch', () => {
  const children = new Set<ChildProcess>();
  afterAll(() => {
    for (const c of children) c.kill('SIGKILL');
  });

  const spawnRelay = (stall: boolean, onLine: (msg: { sent?: number }) => void = () => {}) =>
    new Promise<ChildProcess>((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', TSX, RELAY], {
        env: {
          ...process.env,
          TSX_TSCONFIG_PATH: TSCONFIG,
          PG_URL: PG_URL,
          REDIS_URL: REDIS_URL,
          BUS_PREFIX: prefix,
          BUS_SCHEMA: db.schema,
          BUS_STALL_AFTER_SEND: stall ? '1' : '0',
          BUS_BATCH: '50',
        },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      children.add(child);
      const timer = setTimeout(() => reject(new Error('relay not ready within 30 s')), 30_000);
      child.once('exit', (code, signal) => {
        children.delete(child);
        if (signal !== 'SIGKILL') reject(new Error(`relay exited early (${code ?? signal})`));
      });
      createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
        const msg = JSON.parse(line) as { ready?: number; sent?: number };
        if (msg.ready) {
          clearTimeout(timer);
          resolve(child);
        } else onLine(msg);
      });
    });
  const kill = async (child: ChildProcess) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  };

  it('every committed row is delivered at least once, no rolled-back row ever is', async () => {
    const outbox = pgOutbox<Events>({ pool: db.pool, schema: db.schema });
    const topic = `kill-${randomUUID().slice(0, 6)}`;
    const committed = new Set<string>();
    const rolledBack = new Set<string>();
    let producing = true;
    // Producers commit 3 of 4 transactions (10 rows each) and roll back the 4th, while relays die.
    const producers = Array.from({ length: 3 }, async (_, p) => {
      for (let t = 0; producing && t < 400; t++) {
        const rollback = t % 4 === 3;
        const ids: string[] = [];
        await inTransaction(async (tx) => {
          for (let i = 0; i < 10; i++) ids.push((await outbox.publish(tx, topic, 'order.created', { orderId: `p${p}`, n: t * 10 + i }, { key: `p${p}` })).id);
        }, rollback);
        for (const id of ids) (rollback ? rolledBack : committed).add(id);
        await sleep(2);
      }
    });

    // 1. Killed between the broker's ack and the delete (the stalling relay reports each send).
    let stalledKill: Promise<void> | undefined;
    const first = await spawnRelay(true, (msg) => {
      if (msg.sent) stalledKill ??= kill(first);
    });
    await waitFor('the first send of the stalling relay', () => stalledKill !== undefined, 30_000);
    await stalledKill;
    const afterFirst = await readStream(REDIS_URL, `${prefix}${topic}`);
    expect(afterFirst.length, 'the killed relay had sent a batch').toBeGreaterThan(0);
    const { rows: left } = await db.pool.query(`SELECT id FROM ${outbox.table} WHERE id = ANY($1)`, [afterFirst.map((m) => m.id)]);
    expect(left.length, 'its rows were not deleted: they will be sent again').toBe(afterFirst.length);

    // 2. Two ordinary relays, each killed at a random moment mid-run and replaced.
    let kills = 1;
    for (let round = 0; round < 2; round++) {
      const relays = [await spawnRelay(false), await spawnRelay(false)];
      await sleep(300 + Math.random() * 500);
      await kill(relays[0] as ChildProcess);
      kills++;
      await sleep(100 + Math.random() * 200);
      await kill(relays[1] as ChildProcess);
    }
    producing = false;
    await Promise.all(producers);

    // 3. A last relay (in this process) drains the outbox.
    const bus = redisBus();
    const relay = outbox.relay(bus, { batchSize: 200, pollIntervalMs: 20 });
    try {
      await waitFor('an empty outbox', async () => (await outbox.stats()).backlog === 0, 60_000);
    } finally {
      await relay.close();
      await bus.close();
    }
    const delivered = await readStream(REDIS_URL, `${prefix}${topic}`);
    const ids = delivered.map((m) => m.id);
    const unique = new Set(ids);
    const missing = [...committed].filter((id) => !unique.has(id));
    const leaked = ids.filter((id) => rolledBack.has(id));
    console.info(
      `outbox kill test: ${committed.size} committed, ${rolledBack.size} rolled back, ${kills} relay SIGKILLs; ` +
        `delivered ${ids.length} (${ids.length - unique.size} duplicates), ${missing.length} missing, ${leaked.length} rolled-back delivered`,
    );
    expect(committed.size).toBeGreaterThan(100);
    expect(rolledBack.size).toBeGreaterThan(0);
    expect(missing).toEqual([]);
    expect(leaked).toEqual([]);
    expect(unique.size).toBe(committed.size);
    expect(ids.length - unique.size, 'the batch sent before the first kill went out twice').toBeGreaterThanOrEqual(afterFirst.length);
  }, 180_000);
});

describe('relaying to Kafka', () => {
  it('committed rows reach a Kafka consumer in order per key; rolled-back rows never do', async () => {
    const brokers = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
    const outbox = pgOutbox<Events>({ pool: db.pool, schema: db.schema });
    const topic = `outbox-${randomUUID().slice(0, 8)}`;
    const committed = new Set<string>();
    const rolledBack = new Set<string>();
    for (let t = 0; t < 40; t++) {
      const rollback = t % 5 === 4;
      const ids: string[] = [];
      await inTransaction(async (tx) => {
        for (let i = 0; i < 5; i++) ids.push((await outbox.publish(tx, topic, 'order.created', { orderId: `k${i % 2}`, n: t * 5 + i }, { key: `k${i % 2}` })).id);
      }, rollback);
      for (const id of ids) (rollback ? rolledBack : committed).add(id);
    }
    const producer = createBus<Events>({ transports: { kafka: kafka({ brokers, connectionTimeoutMs: 3000 }) } });
    const consumer = createBus<Events>({ transports: { kafka: kafka({ brokers, connectionTimeoutMs: 3000 }) } });
    const seen: { id: string; key: string | undefined; n: number }[] = [];
    consumer.module({
      name: `outbox-${randomUUID().slice(0, 6)}`,
      consumers: { read: { topics: [topic], events: ['order.created'] } },
      batchSize: 100,
      pollIntervalMs: 100,
      handler: (ctx) => {
        seen.push({ id: ctx.message.id, key: ctx.message.key, n: ctx.payload.n });
      },
    });
    const relays = [outbox.relay(producer, { batchSize: 15, pollIntervalMs: 20 }), outbox.relay(producer, { batchSize: 15, pollIntervalMs: 20 })];
    try {
      await waitFor('all rows relayed', () => relays.reduce((sum, r) => sum + r.sent, 0) === committed.size, 60_000);
      await consumer.start();
      await waitFor('all rows consumed', () => new Set(seen.map((s) => s.id)).size >= committed.size, 60_000);
      expect(seen.filter((s) => rolledBack.has(s.id))).toEqual([]);
      expect(new Set(seen.map((s) => s.id))).toEqual(committed);
      for (const key of ['k0', 'k1']) {
        const ns = seen.filter((s) => s.key === key).map((s) => s.n);
        expect(ns).toEqual([...ns].sort((a, b) => a - b));
      }
    } finally {
      await Promise.all(relays.map((r) => r.close()));
      await consumer.close();
      await producer.close();
    }
  }, 120_000);
});
