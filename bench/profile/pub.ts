import { createBus } from '@bus/core';
import { redisStream } from '@bus/redis-stream';
import { Redis } from 'ioredis';
import { makePayload, EVENT } from '../src/common.js';
import { rawPublish } from '../src/redis-raw.js';
const mode = process.argv[2];
const bytes = Number(process.argv[3] ?? 1024);
const total = 300_000, batch = 100;
const prefix = 'bench:prof:';
const payload = makePayload(bytes);
const admin = new Redis();
if (mode === 'bus') {
  const bus = createBus({ transports: { redis: redisStream({ keyPrefix: prefix }) } });
  const t0 = performance.now();
  for (let s = 0; s < total; s += batch) await bus.publishBatch('p', Array.from({ length: batch }, () => ({ event: EVENT, payload })));
  console.log(mode, Math.round(total / (performance.now() - t0) * 1000));
  await bus.close();
} else {
  const c = new Redis();
  const t0 = performance.now();
  for (let s = 0; s < total; s += batch) await rawPublish(c, prefix + 'p', Array.from({ length: batch }, () => payload));
  console.log(mode, Math.round(total / (performance.now() - t0) * 1000));
  c.disconnect();
}
await admin.unlink(prefix + 'p'); admin.disconnect();
