// Lateness of delayed messages (issue 16): publishes delayed messages at a steady rate, each with a
// delay drawn between --min-delay and --max-delay ms, and measures, in the handler, how long after its
// due time (`bus-deliver-at`) each one arrived. Redis by default; --kafka for the Kafka delay tiers.
//
//   pnpm --filter @bus/bench exec tsx src/delays.ts                     # Redis, 1,000 msg/s for 20 s
//   pnpm --filter @bus/bench exec tsx src/delays.ts --rate=1000 --seconds=20 --min-delay=500 --max-delay=3000
//   pnpm --filter @bus/bench exec tsx src/delays.ts --kafka
//
// Keys are under bench:<pid>-<rand>: and deleted at the end (SCAN + UNLINK); Kafka topics are left to
// the broker's retention (bench-<pid>-<rand>-delays*). Every wait is bounded.
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { createBus, DELAY_HEADER, type Transport } from '@bus/core';
import { kafka } from '@bus/kafka';
import { redisStream } from '@bus/redis-stream';
import { Redis } from 'ioredis';
import { addRow, type BenchEvents, type Ctx, EVENT, makePayload, RUN_ID, sleep, waitFor } from './common.js';
import { percentiles, stat } from './stats.js';

/** What one lateness run measured. */
export interface LatenessResult {
  total: number;
  received: number;
  failed: number;
  early: number;
  publishSeconds: number;
  p50: number;
  p99: number;
  max: number;
}

/**
 * Publishes `rate` delayed msg/s for `seconds` (delays uniform in [minDelay, maxDelay] ms) on `transport`
 * and measures each message's lateness after its due time in the handler. Closes the transport.
 */
export async function measureLateness(
  transport: Transport,
  topic: string,
  o: { rate: number; seconds: number; minDelay: number; maxDelay: number },
): Promise<LatenessResult> {
  const bus = createBus<BenchEvents>({ transports: { t: transport } });
  const total = Math.round(o.rate * o.seconds);
  const lateness = new Float64Array(total);
  let received = 0;
  let early = 0;
  bus.module({
    name: 'bench',
    consumers: { delays: { topics: [topic], events: [EVENT] } },
    batchSize: 100,
    pollIntervalMs: 100,
    lagIntervalMs: 0,
    handler: (ctx) => {
      const late = Date.now() - Number(ctx.message.headers[DELAY_HEADER.deliverAt]);
      if (late < 0) early++;
      if (received < total) lateness[received] = late;
      received++;
    },
  });
  try {
    await bus.start();
    const payload = makePayload(200);
    // Publish in ticks of 10 ms (one publishBatch each), keeping the average rate exact.
    const started = Date.now();
    let sent = 0;
    let failed = 0;
    while (sent < total) {
      const due = Math.min(total, Math.floor(((Date.now() - started) / 1000) * o.rate) + 1);
      const n = due - sent;
      if (n > 0) {
        const entries = Array.from({ length: n }, () => ({
          event: EVENT as typeof EVENT & keyof BenchEvents,
          payload,
          delayMs: o.minDelay + Math.random() * (o.maxDelay - o.minDelay),
        }));
        const results = await bus.publishBatch(topic, entries);
        failed += results.filter((r) => !r.ok).length;
        sent += n;
      }
      await sleep(10);
    }
    const publishSeconds = (Date.now() - started) / 1000;
    await waitFor(() => received >= total - failed, o.maxDelay + 60_000, `${total - failed} delayed messages`, 20);
    const p = percentiles(lateness, Math.min(received, total));
    return { total, received, failed, early, publishSeconds, ...p };
  } finally {
    await bus.close();
  }
}

/** `pnpm bench --only=delays`: Redis lateness p50/p99 at 1,000 delayed msg/s. */
export async function delaySuite(ctx: Ctx): Promise<void> {
  const rate = 1000;
  const seconds = Math.max(3, Math.round(20 * ctx.scale));
  const prefix = `bench:${RUN_ID}:`;
  const r = await measureLateness(redisStream({ url: ctx.redisUrl, keyPrefix: prefix }), 'delays', { rate, seconds, minDelay: 500, maxDelay: 3000 });
  ctx.details.delays = r;
  const settings = `${r.total} delayed msgs at ${rate} msg/s, delays 0.5–3 s, one process; early: ${r.early}`;
  addRow(ctx, { section: 'Redis', name: `delayed delivery lateness p50 @ ${rate} msg/s`, unit: 'ms', settings, values: { bus: stat([r.p50]) } });
  addRow(ctx, { section: 'Redis', name: `delayed delivery lateness p99 @ ${rate} msg/s`, unit: 'ms', settings, values: { bus: stat([r.p99]) } });
}

async function cleanRedis(redisUrl: string, prefix: string): Promise<void> {
  const redis = new Redis(redisUrl);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await redis.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rate: { type: 'string', default: '1000' },
      seconds: { type: 'string', default: '20' },
      'min-delay': { type: 'string', default: '500' },
      'max-delay': { type: 'string', default: '3000' },
      kafka: { type: 'boolean', default: false },
    },
  });
  const o = { rate: Number(values.rate), seconds: Number(values.seconds), minDelay: Number(values['min-delay']), maxDelay: Number(values['max-delay']) };
  const redisUrl = process.env.BUS_REDIS_URL ?? 'redis://127.0.0.1:6379';
  const brokers = (process.env.BUS_KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
  const prefix = `bench:${RUN_ID}:`;
  const transport: Transport = values.kafka ? kafka({ brokers, clientId: `bench-${RUN_ID}` }) : redisStream({ url: redisUrl, keyPrefix: prefix });
  try {
    const r = await measureLateness(transport, values.kafka ? `bench-${RUN_ID}-delays` : 'delays', o);
    const name = values.kafka ? 'Kafka' : 'Redis';
    console.log(`\n${name}: ${r.total} delayed messages at ${o.rate} msg/s (published in ${r.publishSeconds.toFixed(1)} s), delays ${o.minDelay}–${o.maxDelay} ms`);
    console.log(`failed publishes ${r.failed}, received ${r.received}, delivered early ${r.early}`);
    console.log('| broker | rate | delayed messages | lateness p50 | lateness p99 | max | early |');
    console.log('|---|---:|---:|---:|---:|---:|---:|');
    console.log(`| ${name} | ${o.rate} msg/s | ${r.total} | ${r.p50.toFixed(1)} ms | ${r.p99.toFixed(1)} ms | ${r.max.toFixed(0)} ms | ${r.early} |`);
  } finally {
    if (!values.kafka) await cleanRedis(redisUrl, prefix);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error) => {
    console.error(error);
    process.exitCode = 1;
  });
}
