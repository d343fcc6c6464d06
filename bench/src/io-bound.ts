import { Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { addRow, countdown, type Ctx, EVENT, makePayload, nowMs, sleep } from './common.js';
import { BULL_PREFIX, bullConnection, REDIS_PREFIX, redisBus } from './redis.js';
import { connectRedis } from './redis-raw.js';
import { compare } from './stats.js';

/** The I/O-bound handler of issue 14: awaits 5 ms, as a database query or an HTTP call would. */
export const IO_LATENCY_MS = 5;
export const IO_CONCURRENCY = 64;
export const IO_KEYS = 1000;

let seq = 0;

/** Whether Redis stream id `a` comes before `b` (`<ms>-<seq>`). */
function streamIdBefore(a: string, b: string): boolean {
  const [am = 0, as = 0] = a.split('-').map(Number);
  const [bm = 0, bs = 0] = b.split('-').map(Number);
  return am < bm || (am === bm && as < bs);
}

/**
 * The hand-written equivalent of a bus consumer with `concurrency` and per-key order: one
 * XREADGROUP loop that keeps up to 2 × concurrency entries fetched ahead, a chain per key (an
 * entry starts after the previous entry of its key finished), `concurrency` slots, and the
 * finished ids XACKed in one command before each read.
 */
export async function rawKeyedConsume(options: {
  client: Redis;
  key: string;
  group: string;
  concurrency: number;
  handler: () => Promise<void>;
  stop: () => boolean;
}): Promise<void> {
  const { client, key, group, concurrency, handler, stop } = options;
  await client.xgroup('CREATE', key, group, '0', 'MKSTREAM').catch((error: Error) => {
    if (!error.message.startsWith('BUSYGROUP')) throw error;
  });
  let active = 0;
  let fetched = 0;
  const waiting: (() => void)[] = [];
  const tails = new Map<string, Promise<void>>();
  let done: string[] = [];
  let wake: (() => void) | undefined;
  const run = async (id: string): Promise<void> => {
    if (active < concurrency) active++;
    else await new Promise<void>((r) => waiting.push(r));
    try {
      await handler();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else active--;
      done.push(id);
      fetched--;
      wake?.();
    }
  };
  while (!stop()) {
    if (done.length > 0) {
      void client.xack(key, group, ...done);
      done = [];
    }
    if (fetched >= 2 * concurrency) {
      await new Promise<void>((r) => {
        wake = r;
      });
      wake = undefined;
      continue;
    }
    const reply = (await (fetched > 0
      ? client.xreadgroup('GROUP', group, 'c1', 'COUNT', 100, 'STREAMS', key, '>')
      : client.xreadgroup('GROUP', group, 'c1', 'COUNT', 100, 'BLOCK', 100, 'STREAMS', key, '>'))) as [string, [string, string[]][]][] | null;
    if (!reply) {
      if (fetched > 0) {
        await new Promise<void>((r) => {
          wake = r;
        });
        wake = undefined;
      }
      continue;
    }
    for (const [, entries] of reply) {
      for (const [id, fields] of entries) {
        let k = '';
        for (let i = 0; i + 1 < fields.length; i += 2) {
          if (fields[i] === '_key') k = fields[i + 1] as string;
          else if (fields[i] === '_data') JSON.parse(fields[i + 1] as string);
        }
        fetched++;
        const previous = tails.get(k);
        const finished = previous ? previous.then(() => run(id)) : run(id);
        tails.set(k, finished);
        void finished.then(() => {
          if (tails.get(k) === finished) tails.delete(k);
        });
      }
    }
  }
  if (done.length > 0) await client.xack(key, group, ...done);
}

/**
 * I/O-bound handlers (issue 14): every handler awaits a 5 ms timer; concurrency 64; 1,000 keys with
 * per-key order; 20,000 messages pre-filled. Ceiling = concurrency ÷ latency = 12,800 msg/s.
 */
export async function redisIoBound(ctx: Ctx, admin: Redis): Promise<void> {
  const total = Math.round(20_000 * ctx.scale);
  const payload = makePayload(200);
  const topic = `io-${++seq}`;
  const streamKey = REDIS_PREFIX + topic;
  // Filled through the bus, so every entry carries the `_key` field the raw side reads too.
  const filler = redisBus(ctx);
  for (let i = 0; i < total; i += 1000) {
    const entries = Array.from({ length: Math.min(1000, total - i) }, (_, j) => ({ event: EVENT, payload, key: `k${(i + j) % IO_KEYS}` }) as const);
    for (const r of await filler.publishBatch(topic, entries)) if (!r.ok) throw r.error;
  }
  await filler.close();
  const io = () => sleep(IO_LATENCY_MS);
  const connection = bullConnection(ctx.redisUrl);
  let groups = 0;
  const values = await compare(
    {
      bus: async () => {
        const handled = countdown(total, 120_000, 'bus consumer');
        let running = 0;
        let maxRunning = 0;
        const last = new Map<string, string>();
        let outOfOrder = 0;
        const bus = redisBus(ctx);
        bus.module({
          name: `io${++groups}`,
          batchSize: 100,
          pollIntervalMs: 100,
          lagIntervalMs: 0,
          concurrency: IO_CONCURRENCY,
          consumers: { c: { topics: [topic], events: [EVENT] } },
          handler: async ({ message }) => {
            running++;
            maxRunning = Math.max(maxRunning, running);
            const k = message.key as string;
            const previous = last.get(k);
            if (previous !== undefined && streamIdBefore(message.position, previous)) outOfOrder++;
            last.set(k, message.position);
            await io();
            running--;
            handled.hit();
          },
        });
        const t0 = nowMs();
        await bus.start();
        await handled.done;
        const rate = (total / (nowMs() - t0)) * 1000;
        await bus.close();
        if (outOfOrder > 0 || maxRunning > IO_CONCURRENCY) throw new Error(`bench: bus broke per-key order (${outOfOrder}) or concurrency (${maxRunning})`);
        return rate;
      },
      raw: async () => {
        let count = 0;
        const client = await connectRedis(ctx.redisUrl);
        const deadline = Date.now() + 120_000;
        const t0 = nowMs();
        await rawKeyedConsume({
          client,
          key: streamKey,
          group: `ioraw${++groups}`,
          concurrency: IO_CONCURRENCY,
          handler: async () => {
            await io();
            count++;
          },
          stop: () => count >= total || Date.now() > deadline,
        });
        const rate = (total / (nowMs() - t0)) * 1000;
        client.disconnect();
        if (count < total) throw new Error('bench: raw keyed consumer timed out');
        return rate;
      },
      bullmq: async () => {
        const name = `io-${++groups}`;
        const queue = new Queue(name, { connection, prefix: BULL_PREFIX });
        for (let i = 0; i < total; i += 1000) {
          await queue.addBulk(
            Array.from({ length: Math.min(1000, total - i) }, () => ({ name: EVENT, data: payload, opts: { removeOnComplete: true, removeOnFail: true } })),
          );
        }
        const handled = countdown(total, 120_000, 'BullMQ worker');
        const t0 = nowMs();
        const worker = new Worker(
          name,
          async () => {
            await io();
            handled.hit();
          },
          { connection, prefix: BULL_PREFIX, concurrency: IO_CONCURRENCY },
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
  await admin.unlink(streamKey);
  const ceiling = (IO_CONCURRENCY / IO_LATENCY_MS) * 1000;
  const bus = values.bus?.median ?? Number.NaN;
  addRow(ctx, {
    section: 'Redis',
    name: `I/O-bound handlers (${IO_LATENCY_MS} ms each), concurrency ${IO_CONCURRENCY}, ${IO_KEYS} keys in order`,
    unit: 'msg/s',
    settings: `${total} msgs pre-filled; ceiling ${IO_CONCURRENCY} ÷ ${IO_LATENCY_MS} ms = ${ceiling.toLocaleString('en-US')} msg/s; bus batchSize 100 · raw XREADGROUP loop, key chains, 64 slots · BullMQ Worker concurrency 64`,
    note: `bus ÷ ceiling ${(bus / ceiling).toFixed(2)}, bus ÷ BullMQ ${(bus / (values.bullmq?.median ?? Number.NaN)).toFixed(1)}; BullMQ has no per-key order`,
    values,
    versus: 'raw',
  });
}
