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
import { parseArgs } from 'node:util';
import { createBus, DELAY_HEADER, type Transport } from '@bus/core';
import { kafka } from '@bus/kafka';
import { redisStream } from '@bus/redis-stream';
import { Redis } from 'ioredis';
import { type BenchEvents, EVENT, makePayload, RUN_ID, sleep, waitFor } from './common.js';
import { percentiles } from './stats.js';

const { values } = parseArgs({
  options: {
    rate: { type: 'string', default: '1000' },
    seconds: { type: 'string', default: '20' },
    'min-delay': { type: 'string', default: '500' },
    'max-delay': { type: 'string', default: '3000' },
    kafka: { type: 'boolean', default: false },
  },
});
const rate = Number(values.rate);
const seconds = Number(values.seconds);
const minDelay = Number(values['min-delay']);
const maxDelay = Number(values['max-delay']);
const redisUrl = process.env.BUS_REDIS_URL ?? 'redis://127.0.0.1:6379';
const brokers = (process.env.BUS_KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
const prefix = `bench:${RUN_ID}:`;
const topic = values.kafka ? `bench-${RUN_ID}-delays` : 'delays';

async function main(): Promise<void> {
  const transport: Transport = values.kafka ? kafka({ brokers, clientId: `bench-${RUN_ID}` }) : redisStream({ url: redisUrl, keyPrefix: prefix });
  const bus = createBus<BenchEvents>({ transports: { t: transport } });
  const total = Math.round(rate * seconds);
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
  await bus.start();
  const payload = makePayload(200);
  // Publish in ticks of 10 ms (one publishBatch each), keeping the average rate exact.
  const started = Date.now();
  let sent = 0;
  let failed = 0;
  while (sent < total) {
    const due = Math.min(total, Math.floor(((Date.now() - started) / 1000) * rate) + 1);
    const n = due - sent;
    if (n > 0) {
      const entries = Array.from({ length: n }, () => ({ event: EVENT as typeof EVENT & keyof BenchEvents, payload, delayMs: minDelay + Math.random() * (maxDelay - minDelay) }));
      const results = await bus.publishBatch(topic, entries);
      failed += results.filter((r) => !r.ok).length;
      sent += n;
    }
    await sleep(10);
  }
  const publishSeconds = (Date.now() - started) / 1000;
  await waitFor(() => received >= total - failed, maxDelay + 60_000, `${total - failed} delayed messages`, 20);
  await bus.close();
  const p = percentiles(lateness, Math.min(received, total));
  const name = values.kafka ? 'Kafka' : 'Redis';
  console.log(`\n${name}: ${total} delayed messages at ${rate} msg/s (published in ${publishSeconds.toFixed(1)} s), delays ${minDelay}–${maxDelay} ms`);
  console.log(`failed publishes ${failed}, received ${received}, delivered early ${early}`);
  console.log('| broker | rate | delayed messages | lateness p50 | lateness p99 | max | early |');
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  console.log(`| ${name} | ${rate} msg/s | ${total} | ${p.p50.toFixed(1)} ms | ${p.p99.toFixed(1)} ms | ${p.max.toFixed(0)} ms | ${early} |`);
  if (!values.kafka) await cleanRedis();
}

async function cleanRedis(): Promise<void> {
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

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
