import { createBus } from '@bus/core';
import { migrate, pgOutbox } from '@bus/outbox-postgres';
import { redisStream } from '@bus/redis-stream';
import pg from 'pg';
import { addRow, type BenchEvents, type Ctx, EVENT, makePayload, nowMs, type Payload, RUN_ID, sleep, waitFor } from './common.js';
import { REDIS_PREFIX } from './redis.js';
import { compare, percentiles, stat } from './stats.js';

/** PostgreSQL of the outbox rows: `PG_URL`. */
const PG_URL = process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const WRITERS = 4;

/**
 * The transactional outbox (`@bus/outbox-postgres`) to Redis Streams:
 * - the write path: transactions of one business row, with and without its outbox row (4 writers);
 * - the relay's throughput on a backlog;
 * - relay lag (commit → handler of a consumer on Redis) at a steady rate, p50 / p99.
 */
export async function outboxSuite(ctx: Ctx): Promise<void> {
  const schema = `bench_${RUN_ID.replaceAll('-', '_')}`;
  const pool = new pg.Pool({ connectionString: PG_URL, max: WRITERS + 4 });
  pool.on('error', () => {});
  const payload = makePayload(200);
  let seq = 0;
  try {
    await migrate(pool, { schema });
    await pool.query(`CREATE TABLE "${schema}".orders (id bigserial PRIMARY KEY, data jsonb NOT NULL)`);
    const outbox = pgOutbox<BenchEvents>({ pool, schema });
    // Without NOTIFY: relays find rows by polling only.
    const quiet = pgOutbox<BenchEvents>({ pool, schema, notify: false });
    const topic = () => `outbox-${++seq}`;

    /** `total` transactions by 4 writers, each: INSERT a row (+ its outbox row); resolves rows/s. */
    const writeRun = async (total: number, withOutbox: typeof outbox | undefined): Promise<number> => {
      const key = topic();
      let next = 0;
      const t0 = nowMs();
      await Promise.all(
        Array.from({ length: WRITERS }, async () => {
          while (next < total) {
            next++;
            const tx = await pool.connect();
            try {
              await tx.query('BEGIN');
              await tx.query(`INSERT INTO "${schema}".orders (data) VALUES ($1)`, [payload]);
              if (withOutbox) await withOutbox.publish(tx, key, EVENT, payload);
              await tx.query('COMMIT');
            } finally {
              tx.release();
            }
          }
        }),
      );
      return (total / (nowMs() - t0)) * 1000;
    };
    const writes = Math.round(4000 * ctx.scale);
    const writeValues = await compare({ bus: () => writeRun(writes, outbox), raw: () => writeRun(writes, undefined) }, ctx.warmup, ctx.runs);
    const quietValues = await compare({ bus: () => writeRun(writes, quiet), raw: () => writeRun(writes, undefined) }, ctx.warmup, ctx.runs);
    // The relay was not running: empty the outbox for the next rows.
    await pool.query(`TRUNCATE "${schema}".bus_outbox`);
    addRow(ctx, {
      section: 'Outbox',
      name: 'publish through the outbox, 1 row per transaction',
      unit: 'rows/s',
      settings: `${WRITERS} writers, each transaction INSERTs a 200 B row and (bus) its outbox row; raw = the same transactions without the outbox row; ${writes} transactions per run`,
      values: writeValues,
      versus: 'raw',
      note: 'bus/raw = the write path with the outbox ÷ without it',
    });
    addRow(ctx, {
      section: 'Outbox',
      name: 'publish through the outbox without NOTIFY (relays poll)',
      unit: 'rows/s',
      settings: `as above, pgOutbox({ notify: false }): the commits do not take PostgreSQL's notification queue lock`,
      values: quietValues,
      versus: 'raw',
    });

    // Relay throughput: a backlog written at once, relayed by one relay in batches of 500.
    const backlog = Math.round(20_000 * ctx.scale);
    const relayRun = async (): Promise<number> => {
      const key = topic();
      const tx = await pool.connect();
      try {
        await tx.query('BEGIN');
        for (let i = 0; i < backlog; i++) await outbox.publish(tx, key, EVENT, payload);
        await tx.query('COMMIT');
      } finally {
        tx.release();
      }
      const bus = createBus<BenchEvents>({ transports: { redis: redisStream({ url: ctx.redisUrl, keyPrefix: REDIS_PREFIX }) } });
      const t0 = nowMs();
      const relay = outbox.relay(bus, { batchSize: 500, pollIntervalMs: 50 });
      try {
        await waitFor(() => relay.sent >= backlog, 120_000, 'the relay to drain the backlog', 5);
        return (backlog / (nowMs() - t0)) * 1000;
      } finally {
        await relay.close();
        await bus.close();
      }
    };
    addRow(ctx, {
      section: 'Outbox',
      name: `relay a backlog of ${backlog.toLocaleString('en-US')} rows to Redis`,
      unit: 'rows/s',
      settings: '1 relay, batchSize 500 (SELECT … FOR UPDATE SKIP LOCKED, XADD pipeline, DELETE, COMMIT per batch)',
      values: (await compare({ bus: relayRun }, ctx.warmup, ctx.runs)) as { bus: ReturnType<typeof stat> },
    });

    // Relay lag at a steady rate: commit → the handler of a Redis consumer (NOTIFY wakes the relay).
    const rate = 500;
    const seconds = Math.max(2, Math.round(5 * ctx.scale));
    const lagRun = async (): Promise<{ p50: number; p99: number }> => {
      const key = topic();
      const committedAt = new Map<number, number>();
      const lags: number[] = [];
      const total = rate * seconds;
      const producer = createBus<BenchEvents>({ transports: { redis: redisStream({ url: ctx.redisUrl, keyPrefix: REDIS_PREFIX }) } });
      const consumer = createBus<BenchEvents>({ transports: { redis: redisStream({ url: ctx.redisUrl, keyPrefix: REDIS_PREFIX }) } });
      consumer.module({
        name: `outbox-lag-${seq}`,
        batchSize: 100,
        pollIntervalMs: 100,
        lagIntervalMs: 0,
        consumers: { c: { topics: [key], events: [EVENT] } },
        handler: ({ payload: p }: { payload: Payload }) => {
          const at = committedAt.get(p.seq);
          if (at !== undefined) lags.push(nowMs() - at);
        },
      });
      await consumer.start();
      const relays = [outbox.relay(producer, { batchSize: 100, pollIntervalMs: 1000 }), outbox.relay(producer, { batchSize: 100, pollIntervalMs: 1000 })];
      try {
        const t0 = nowMs();
        let n = 0;
        await Promise.all(
          Array.from({ length: WRITERS }, async () => {
            while (n < total) {
              const i = n++;
              // Paced: transaction i starts at t0 + i / rate.
              const due = t0 + (i / rate) * 1000 - nowMs();
              if (due > 1) await sleep(due);
              const tx = await pool.connect();
              try {
                await tx.query('BEGIN');
                await outbox.publish(tx, key, EVENT, { ...payload, seq: i, sentAt: nowMs() });
                // Set before the COMMIT resolves: its NOTIFY may bring the row to the consumer first.
                committedAt.set(i, nowMs());
                await tx.query('COMMIT');
              } finally {
                tx.release();
              }
            }
          }),
        );
        await waitFor(() => lags.length >= total, 60_000, 'every outbox row at the consumer', 5);
        const p = percentiles(lags);
        return { p50: p.p50, p99: p.p99 };
      } finally {
        await Promise.all(relays.map((r) => r.close()));
        await producer.close();
        await consumer.close();
      }
    };
    const p50: number[] = [];
    const p99: number[] = [];
    for (let i = 0; i < ctx.warmup; i++) await lagRun();
    for (let i = 0; i < ctx.runs; i++) {
      const r = await lagRun();
      p50.push(r.p50);
      p99.push(r.p99);
    }
    const settings = `${rate} transactions/s of 1 outbox row for ${seconds} s, ${WRITERS} writers; 2 relays woken by NOTIFY; lag = COMMIT sent → handler of a bus consumer on Redis`;
    addRow(ctx, { section: 'Outbox', name: `relay lag p50 @ ${rate} rows/s`, unit: 'ms', settings, values: { bus: stat(p50) } });
    addRow(ctx, { section: 'Outbox', name: `relay lag p99 @ ${rate} rows/s`, unit: 'ms', settings, values: { bus: stat(p99) } });
  } finally {
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => {});
    await pool.end();
  }
}
