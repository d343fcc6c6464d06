// Publish with batch 1, one call in flight: CPU µs per call, bus vs raw (node --cpu-prof to profile).
import { createBus } from '@bus/core';
import { redisStream } from '@bus/redis-stream';
import { Redis } from 'ioredis';
import { EVENT, makePayload } from '../src/common.js';
import { rawPublish } from '../src/redis-raw.js';
const mode = process.argv[2];
const total = Number(process.argv[3] ?? 30_000);
const payload = makePayload(200);
const key = 'bench:prof1:p';
const admin = new Redis();
let send: () => Promise<unknown>;
let close: () => Promise<unknown>;
if (mode === 'bus') {
  const bus = createBus({ transports: { redis: redisStream({ keyPrefix: 'bench:prof1:' }) } });
  send = () => bus.publishBatch('p', [{ event: EVENT, payload }]);
  close = () => bus.close();
} else {
  const c = new Redis();
  send = () => rawPublish(c, key, [payload]);
  close = async () => c.disconnect();
}
for (let i = 0; i < 2000; i++) await send();
const t0 = performance.now();
const cpu0 = process.cpuUsage();
for (let i = 0; i < total; i++) await send();
const cpu = process.cpuUsage(cpu0);
console.log(mode, Math.round((total / (performance.now() - t0)) * 1000), 'msg/s', ((cpu.user + cpu.system) / total).toFixed(1), 'cpu-us/call');
await close();
await admin.unlink(key);
admin.disconnect();
