// Batch-1 publish, wall µs per call of several variants in interleaved blocks (to find where the bus's
// latency per call goes): raw pipeline, raw call, the Redis transport alone, the bus.
//   [ONLY=a,b] node --import tsx profile/pub1v.ts [blocks=6] [calls=5000]
import { createBus, jsonCodec } from '@bus/core';
import { redisStream } from '@bus/redis-stream';
import { Redis } from 'ioredis';
import { EVENT, makePayload } from '../src/common.js';
import { rawFields, rawPublish } from '../src/redis-raw.js';
const blocks = Number(process.argv[2] ?? 6);
const calls = Number(process.argv[3] ?? 5000);
const payload = makePayload(200);
const prefix = 'bench:pub1v:';
const c = new Redis();
const transport = redisStream({ keyPrefix: prefix });
const codec = jsonCodec();
const bus = createBus({ transports: { redis: redisStream({ keyPrefix: prefix }) } });
const variants: Record<string, () => Promise<unknown>> = {
  rawPipeline: () => rawPublish(c, `${prefix}p`, [payload]),
  rawCall: () => c.call('XADD', `${prefix}p`, '*', ...rawFields(payload)),
  transport: () => transport.publish('p', [codec.encode({ id: 'x', event: EVENT, payload, publishedAt: Date.now(), headers: {} })]),
  bus: () => bus.publishBatch('p', [{ event: EVENT, payload }]),
};
// ONLY=transport,rawCall: just these (e.g. for --cpu-prof of one variant).
for (const name of Object.keys(variants)) if (process.env.ONLY && !process.env.ONLY.split(',').includes(name)) delete variants[name];
const wall: Record<string, number[]> = {};
const cpu: Record<string, number[]> = {};
for (const send of Object.values(variants)) for (let i = 0; i < 1000; i++) await send();
const names = Object.keys(variants);
for (let b = 0; b < blocks; b++) {
  for (let k = 0; k < names.length; k++) {
    const name = names[(k + b) % names.length] as string;
    const send = variants[name] as () => Promise<unknown>;
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    for (let i = 0; i < calls; i++) await send();
    const used = process.cpuUsage(c0);
    (wall[name] ??= []).push(((performance.now() - t0) * 1000) / calls);
    (cpu[name] ??= []).push((used.user + used.system) / calls);
  }
}
const med = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)] as number;
for (const n of names) console.log(n.padEnd(12), 'wall µs/call', med(wall[n] as number[]).toFixed(1), ' cpu µs/call', med(cpu[n] as number[]).toFixed(1), ' runs', (wall[n] as number[]).map((x) => x.toFixed(0)).join(' '));
await bus.close();
await transport.close();
await c.unlink(`${prefix}p`);
c.disconnect();
