// Warm-process comparison of the Redis consume path (issue 14): bus and raw alternate in ONE process,
// as in the bench, so JIT warm-up and per-run setup (bus, transport, subscription) weigh as there.
// Usage: npx tsx profile/warm.ts [messages per run] [pairs]   (node --cpu-prof --import tsx … to profile)
import { createBus } from '@bus/core';
import { redisStream } from '@bus/redis-stream';
import { Redis } from 'ioredis';
import { EVENT, makePayload } from '../src/common.js';
import { rawConsume, rawPublish } from '../src/redis-raw.js';

const total = Number(process.argv[2] ?? 30_000);
const pairs = Number(process.argv[3] ?? 6);
const prefix = `bench:warm${process.pid}:`;
const admin = new Redis();
const payload = makePayload(200);
for (let i = 0; i < total; i += 1000) await rawPublish(admin, `${prefix}s`, Array.from({ length: Math.min(1000, total - i) }, () => payload));
const cpuOf = async (fn: () => Promise<void>) => {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  await fn();
  const c = process.cpuUsage(c0);
  return { rate: Math.round((total / (performance.now() - t0)) * 1000), us: (c.user + c.system) / total };
};
let groups = 0;
const out: Record<string, { rate: number; us: number }[]> = { bus: [], raw: [] };
// SIDES=bus or SIDES=raw: one side only (to profile it alone).
const sides = (process.env.SIDES ?? 'bus,raw').split(',');
for (let p = 0; p < pairs; p++) {
  if (sides.includes('bus'))
    out.bus?.push(
    await cpuOf(async () => {
      let count = 0;
      const bus = createBus({ transports: { redis: redisStream({ keyPrefix: prefix }) } });
      bus.module({ name: `w${++groups}`, batchSize: 100, pollIntervalMs: 100, lagIntervalMs: 0, consumers: { c: { topics: ['s'], events: [EVENT] } }, handler: () => void count++ });
      await bus.start();
      while (count < total) await new Promise((r) => setTimeout(r, 1));
      await bus.close();
    }),
  );
  if (sides.includes('raw'))
    out.raw?.push(
    await cpuOf(async () => {
      let count = 0;
      const c = new Redis();
      await rawConsume({ client: c, key: `${prefix}s`, group: `r${++groups}`, consumer: 'c', batchSize: 100, pollMs: 100, handler: () => void count++, stop: () => count >= total });
      c.disconnect();
    }),
  );
}
for (const [side, runs] of Object.entries(out)) console.log(side, runs.map((r) => `${r.rate} msg/s ${r.us.toFixed(2)} µs`).join(' | '));
await admin.unlink(`${prefix}s`);
admin.disconnect();
