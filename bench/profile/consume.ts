import { createBus } from '@bus/core';
import { redisStream } from '@bus/redis-stream';
import { Redis } from 'ioredis';
import { makePayload, EVENT } from '../src/common.js';
import { rawPublish, rawConsume } from '../src/redis-raw.js';
const mode = process.argv[2];
const total = Number(process.argv[3] ?? 200_000);
const prefix = 'bench:profc:';
const key = process.argv[4] ?? 'c';
const payload = makePayload(200);
const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
import { getHeapStatistics } from 'node:v8';
const alloc0 = () => getHeapStatistics().total_allocated_bytes;
const admin = new Redis(url);
// Resolved by the handler at the last message: no polling timer burdens one side's CPU.
let reached!: () => void;
const done = new Promise<void>((r) => { reached = r; });
if (mode === 'fill') {
  await admin.unlink(prefix + key);
  for (let i = 0; i < total; i += 1000) await rawPublish(admin, prefix + key, Array.from({ length: 1000 }, () => payload));
} else if (mode === 'clean') {
  await admin.unlink(prefix + key);
} else if (mode === 'transport') {
  // The Redis transport alone (no router): decode each message and ack it.
  let count = 0;
  const { jsonCodec } = await import('@bus/core');
  const codec = jsonCodec();
  let decodeMs = 0;
  const t = redisStream({ url, keyPrefix: prefix });
  const t0 = performance.now(); const cpu0 = process.cpuUsage(); const a0 = alloc0();
  const sub = await t.subscribe({ group: `t${Date.now()}`, topics: [key], batchSize: 100, pollIntervalMs: 100, startFrom: 'earliest', consumerName: 'c' }, async (batch) => {
    const t = performance.now();
    for (const m of batch) codec.decode(m);
    decodeMs += performance.now() - t;
    for (const m of batch) { m.ack(); if (++count === total) reached(); }
  });
  await done;
  { const cpu = process.cpuUsage(cpu0); console.log(mode, Math.round(total / (performance.now() - t0) * 1000), 'msg/s', ((cpu.user + cpu.system) / total).toFixed(2), 'cpu-us/msg', Math.round((alloc0() - a0) / total), 'B/msg'); }
  console.log('decode µs/msg', (decodeMs * 1000 / total).toFixed(3));
  await sub.close(); await t.close();
} else if (mode === 'bus') {
  let count = 0;
  const bus = createBus({ transports: { redis: redisStream({ url, keyPrefix: prefix }) } });
  bus.module({ name: `m${Date.now()}`, batchSize: 100, pollIntervalMs: 100, lagIntervalMs: 0, consumers: { c: { topics: [key], events: [EVENT] } }, handler: () => { if (++count === total) reached(); } });
  const t0 = performance.now(); const cpu0 = process.cpuUsage(); const a0 = alloc0();
  await bus.start();
  await done;
  { const cpu = process.cpuUsage(cpu0); console.log(mode, Math.round(total / (performance.now() - t0) * 1000), 'msg/s', ((cpu.user + cpu.system) / total).toFixed(2), 'cpu-us/msg', Math.round((alloc0() - a0) / total), 'B/msg'); }
  await bus.close();
} else {
  let count = 0;
  const c = new Redis(url, process.env.PROTO ? { protocol: Number(process.env.PROTO) as 2 | 3 } : {});
  if (process.env.VARIED) {
    // The replies a bus reader also sees (XGROUP, XAUTOCLAIM, XPENDING, EVAL, CLIENT): does their
    // variety alone slow ioredis's decoder down for the XREADGROUP replies?
    const k = prefix + key;
    await c.xgroup('CREATE', k, 'varied', '0').catch(() => {});
    for (let i = 0; i < 200; i++) {
      await c.call('XAUTOCLAIM', k, 'varied', 'v', 60000, '0-0', 'COUNT', 10);
      await c.call('XPENDING', k, 'varied');
      await c.call('EVAL', 'return {1, "a", {2, "b"}}', 0);
      await c.call('CLIENT', 'SETNAME', 'varied');
      await c.call('INFO', 'server');
      await c.call('XINFO', 'GROUPS', k);
    }
    await c.xgroup('DESTROY', k, 'varied');
  }
  const t0 = performance.now(); const cpu0 = process.cpuUsage(); const a0 = alloc0();
  await rawConsume({ client: c, key: prefix + key, group: `r${Date.now()}`, consumer: 'c', batchSize: 100, pollMs: 100, handler: () => { count++; }, stop: () => count >= total });
  { const cpu = process.cpuUsage(cpu0); console.log(mode, Math.round(total / (performance.now() - t0) * 1000), 'msg/s', ((cpu.user + cpu.system) / total).toFixed(2), 'cpu-us/msg', Math.round((alloc0() - a0) / total), 'B/msg'); }
  c.disconnect();
}
admin.disconnect();
