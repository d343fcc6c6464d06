import { type Bus, createBus } from '@bus/core';
import { redisStream } from '@bus/redis-stream';
import { Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { type BenchEvents, type Ctx, countdown, EVENT, RUN_ID, addRow, makePayload, nowMs, type Payload, waitFor } from './common.js';
import { connectRedis, deleteKeys, rawConsume, rawPublish } from './redis-raw.js';
import { compare, cpuPerMessage, percentiles, stat } from './stats.js';

export const REDIS_PREFIX = `bench:${RUN_ID}:`;
export const BULL_PREFIX = `benchbull-${RUN_ID}`;

let seq = 0;
const topic = (what: string) => `${what}-${++seq}`;

export function redisBus(ctx: Ctx): Bus<BenchEvents> {
  return createBus<BenchEvents>({ transports: { redis: redisStream({ url: ctx.redisUrl, keyPrefix: REDIS_PREFIX }) } });
}

export function bullConnection(url: string) {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port || 6379), maxRetriesPerRequest: null };
}

const BULL_JOB = { removeOnComplete: true, removeOnFail: true } as const;

/** Bus publishBatch vs raw pipelined XADD vs BullMQ add/addBulk, one batch in flight at a time. */
export async function redisPublish(ctx: Ctx, admin: Redis): Promise<void> {
  const bus = redisBus(ctx);
  const raw = await connectRedis(ctx.redisUrl);
  const queue = new Queue(`pub-${RUN_ID}`, { connection: bullConnection(ctx.redisUrl), prefix: BULL_PREFIX });
  try {
    for (const batch of [1, 100]) {
      for (const bytes of [200, 1024]) {
        const payload = makePayload(bytes);
        const total = Math.max(batch, Math.round((batch === 1 ? 5000 : 100_000) * ctx.scale));
        const run = async (send: (key: string) => Promise<void>, key: string): Promise<number> => {
          const t0 = nowMs();
          for (let sent = 0; sent < total; sent += batch) await send(key);
          const rate = (total / (nowMs() - t0)) * 1000;
          await admin.unlink(REDIS_PREFIX + key);
          return rate;
        };
        const values = await compare(
          {
            bus: () =>
              run(async (key) => {
                const entries = Array.from({ length: batch }, () => ({ event: EVENT, payload }) as const);
                const results = await bus.publishBatch(key, entries);
                for (const r of results) if (!r.ok) throw r.error;
              }, topic('pub')),
            raw: () =>
              run(async (key) => {
                await rawPublish(raw, REDIS_PREFIX + key, Array.from({ length: batch }, () => payload));
              }, topic('pub')),
            bullmq: async () => {
              const t0 = nowMs();
              for (let sent = 0; sent < total; sent += batch) {
                if (batch === 1) await queue.add(EVENT, payload, BULL_JOB);
                else await queue.addBulk(Array.from({ length: batch }, () => ({ name: EVENT, data: payload, opts: BULL_JOB })));
              }
              const rate = (total / (nowMs() - t0)) * 1000;
              await queue.obliterate({ force: true });
              return rate;
            },
          },
          ctx.warmup,
          ctx.runs,
        );
        addRow(ctx, {
          section: 'Redis',
          name: `publish, batch ${batch}, ${bytes} B`,
          unit: 'msg/s',
          settings: `${total} msgs/run, 1 ${batch === 1 ? 'call' : 'batch'} in flight; bus publishBatch · raw pipeline of XADD · BullMQ ${batch === 1 ? 'add' : 'addBulk'}`,
          values,
          versus: 'raw',
        });
      }
    }
  } finally {
    await bus.close();
    raw.disconnect();
    await queue.close();
  }
}

/** Read + no-op handler + ack of a pre-filled stream, batch 100: bus module vs raw XREADGROUP/XACK vs BullMQ Worker. */
export async function redisConsume(ctx: Ctx, admin: Redis): Promise<void> {
  const total = Math.round(100_000 * ctx.scale);
  const batchSize = 100;
  const payload = makePayload(200);
  const key = topic('consume');
  for (let i = 0; i < total; i += 1000) await rawPublish(admin, REDIS_PREFIX + key, Array.from({ length: Math.min(1000, total - i) }, () => payload));
  const connection = bullConnection(ctx.redisUrl);
  let groups = 0;
  const values = await compare(
    {
      bus: async () => {
        const handled = countdown(total, 60_000, 'bus consumer');
        const bus = redisBus(ctx);
        bus.module({
          name: `consume${++groups}`,
          batchSize,
          pollIntervalMs: 100,
          lagIntervalMs: 0,
          consumers: { c: { topics: [key], events: [EVENT] } },
          handler: handled.hit,
        });
        const t0 = nowMs();
        await bus.start();
        await handled.done;
        const rate = (total / (nowMs() - t0)) * 1000;
        await bus.close();
        return rate;
      },
      raw: async () => {
        let count = 0;
        const t0 = nowMs();
        const client = await connectRedis(ctx.redisUrl);
        const deadline = Date.now() + 60_000;
        await rawConsume({
          client,
          key: REDIS_PREFIX + key,
          group: `raw${++groups}`,
          consumer: 'c1',
          batchSize,
          pollMs: 100,
          handler: () => {
            count++;
          },
          stop: () => count >= total || Date.now() > deadline,
        });
        const rate = (total / (nowMs() - t0)) * 1000;
        client.disconnect();
        if (count < total) throw new Error('bench: raw consumer timed out');
        return rate;
      },
      bullmq: async () => {
        const name = `consume-${++groups}`;
        const queue = new Queue(name, { connection, prefix: BULL_PREFIX });
        for (let i = 0; i < total; i += 1000) {
          await queue.addBulk(Array.from({ length: Math.min(1000, total - i) }, () => ({ name: EVENT, data: payload, opts: BULL_JOB })));
        }
        const handled = countdown(total, 60_000, 'BullMQ worker');
        const t0 = nowMs();
        const worker = new Worker(
          name,
          async () => {
            handled.hit();
          },
          { connection, prefix: BULL_PREFIX, concurrency: batchSize },
        );
        await handled.done;
        const rate = (total / (nowMs() - t0)) * 1000;
        await worker.close();
        await queue.obliterate({ force: true });
        await queue.close();
        return rate;
      },
    },
    ctx.warmup,
    ctx.runs,
  );
  await admin.unlink(REDIS_PREFIX + key);
  addRow(ctx, {
    section: 'Redis',
    name: 'consume, batch 100, 200 B',
    unit: 'msg/s',
    settings: `${total} msgs pre-filled, new group per run, no-op handler; bus batchSize 100 concurrency 1 · raw XREADGROUP COUNT 100 + JSON.parse + XACK · BullMQ Worker concurrency 100`,
    values,
    versus: 'raw',
  });
  addRow(ctx, {
    section: 'Redis',
    name: 'consume, batch 100: CPU per message',
    unit: 'µs/msg',
    settings: 'user + system CPU of the bench process over each run above ÷ messages (lower is better); BullMQ: includes filling its queue (addBulk) in the run',
    values: cpuPerMessage(values, total),
    versus: 'raw',
  });
}

/** A side of the end-to-end test: starts its consumer once, returns a publisher and a stop function. */
export interface E2eSide {
  start(onMessage: (payload: Payload) => void): Promise<E2eRunning>;
}
interface E2eRunning {
  publish(payloads: Payload[]): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Offers `rate` msg/s for `seconds`: every ~1 ms the messages due by then are created (`sentAt` =
 * now) and queued; the queue is published as one batch (at most 1,000) whenever no publish is in
 * flight, so both sides batch alike under load. Records handler start − `sentAt` per message.
 * Producer and consumer share this process.
 */
async function offerLoad(
  running: E2eRunning,
  setRecorder: (r: ((p: Payload) => void) | undefined) => void,
  rate: number,
  seconds: number,
  bytes: number,
): Promise<{ p50: number; p99: number; max: number; lost: number }> {
  const total = Math.round(rate * seconds);
  const delays = new Float64Array(total);
  let received = 0;
  const runId = Math.random();
  setRecorder((payload) => {
    // A late message of an earlier run (there should be none) is not counted.
    if (payload.run !== runId) return;
    if (received < total) delays[received] = nowMs() - payload.sentAt;
    received++;
  });
  const filler = makePayload(bytes).data;
  const queue: Payload[] = [];
  let inflight: Promise<void> | undefined;
  let failure: unknown;
  const t0 = nowMs();
  let created = 0;
  const deadline = Date.now() + seconds * 1000 + 30_000;
  while ((created < total || queue.length > 0 || inflight) && failure === undefined && Date.now() < deadline) {
    const due = Math.min(total, Math.floor(((nowMs() - t0) * rate) / 1000));
    for (; created < due; created++) queue.push({ sentAt: nowMs(), seq: created, data: filler, run: runId });
    if (!inflight && queue.length > 0) {
      inflight = running
        .publish(queue.splice(0, 1000))
        .catch((error) => {
          failure = error;
        })
        .finally(() => {
          inflight = undefined;
        });
    }
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  if (failure) throw failure;
  try {
    await waitFor(() => received >= total, 15_000, 'end-to-end messages');
  } catch {
    // Reported as lost below.
  }
  setRecorder(undefined);
  return { ...percentiles(delays, Math.min(received, total)), lost: total - Math.min(received, total) };
}

/** Starts each side once, runs `warmup` + `runs` load tests per side, interleaved, and adds p50 / p99 rows. */
export async function e2eRows(ctx: Ctx, section: string, sides: Record<string, E2eSide>, rate: number, seconds: number, bytes: number, settings: string, versus: string) {
  const names = Object.keys(sides);
  const p50: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  const p99: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  const recorders: Record<string, ((p: Payload) => void) | undefined> = {};
  const running: Record<string, E2eRunning> = {};
  let lost = 0;
  try {
    for (const n of names) running[n] = await (sides[n] as E2eSide).start((p) => recorders[n]?.(p));
    const once = (n: string, secs: number) => offerLoad(running[n] as E2eRunning, (r) => (recorders[n] = r), rate, secs, bytes);
    for (let i = 0; i < ctx.warmup; i++) for (const n of names) await once(n, Math.min(1, seconds));
    for (let i = 0; i < ctx.runs; i++) {
      for (const n of names) {
        const r = await once(n, seconds);
        p50[n]?.push(r.p50);
        p99[n]?.push(r.p99);
        lost += r.lost;
      }
    }
  } finally {
    for (const n of Object.keys(running)) await running[n]?.stop();
  }
  const note = lost > 0 ? `${lost} messages not received within 15 s after the load` : undefined;
  const common = {
    section,
    unit: 'ms',
    settings: `${rate.toLocaleString('en-US')} msg/s offered for ${seconds} s per run, ${bytes} B, one publish in flight (messages due meanwhile go in the next batch); ${settings}`,
    versus,
  };
  addRow(ctx, { ...common, name: `end-to-end delay p50 @ ${rate / 1000}k msg/s`, values: Object.fromEntries(names.map((n) => [n, stat(p50[n] as number[])])), ...(note ? { note } : {}) });
  addRow(ctx, { ...common, name: `end-to-end delay p99 @ ${rate / 1000}k msg/s`, values: Object.fromEntries(names.map((n) => [n, stat(p99[n] as number[])])) });
}

export async function redisE2e(ctx: Ctx): Promise<void> {
  const connection = bullConnection(ctx.redisUrl);
  let n = 0;
  const sides: Record<string, E2eSide> = {
    bus: {
      async start(onMessage) {
        const bus = redisBus(ctx);
        const key = topic('e2e');
        bus.module({
          name: `e2e${++n}`,
          batchSize: 100,
          pollIntervalMs: 100,
          lagIntervalMs: 0,
          startFrom: 'latest',
          consumers: { c: { topics: [key], events: [EVENT] } },
          handler: ({ payload }) => onMessage(payload),
        });
        await bus.start();
        return {
          async publish(payloads) {
            const results = await bus.publishBatch(key, payloads.map((payload) => ({ event: EVENT, payload })));
            for (const r of results) if (!r.ok) throw r.error;
          },
          async stop() {
            await bus.close();
          },
        };
      },
    },
    raw: {
      async start(onMessage) {
        const key = REDIS_PREFIX + topic('e2e');
        const producer = await connectRedis(ctx.redisUrl);
        const reader = await connectRedis(ctx.redisUrl);
        let stopped = false;
        await reader.xgroup('CREATE', key, 'g', '$', 'MKSTREAM');
        const loop = rawConsume({ client: reader, key, group: 'g', consumer: 'c1', batchSize: 100, pollMs: 100, handler: onMessage, stop: () => stopped });
        return {
          publish: (payloads) => rawPublish(producer, key, payloads),
          async stop() {
            stopped = true;
            await loop;
            producer.disconnect();
            reader.disconnect();
          },
        };
      },
    },
    bullmq: {
      async start(onMessage) {
        const name = `e2e-${++n}`;
        const queue = new Queue(name, { connection, prefix: BULL_PREFIX });
        const worker = new Worker(
          name,
          async (job) => {
            onMessage(job.data as Payload);
          },
          { connection, prefix: BULL_PREFIX, concurrency: 100 },
        );
        await worker.waitUntilReady();
        return {
          async publish(payloads) {
            await queue.addBulk(payloads.map((data) => ({ name: EVENT, data, opts: BULL_JOB })));
          },
          async stop() {
            await worker.close();
            await queue.obliterate({ force: true });
            await queue.close();
          },
        };
      },
    },
  };
  await e2eRows(
    ctx,
    'Redis',
    sides,
    10_000,
    Math.max(1, 3 * ctx.scale),
    200,
    'producer and consumer in one process; bus batchSize 100 BLOCK 100 · raw XREADGROUP COUNT 100 BLOCK 100 · BullMQ addBulk + Worker concurrency 100',
    'raw',
  );
}

export { deleteKeys };
