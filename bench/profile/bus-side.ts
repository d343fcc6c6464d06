// One bus consume run, for profile/ab.mjs: bundled once per build (profile/bundle.sh), so two builds
// of the bus can alternate in one process.
import { createBus } from '@bus/core';
import { redisStream } from '@bus/redis-stream';
import { EVENT } from '../src/common.js';

let groups = 0;
export async function busSide(url: string, prefix: string, key: string, total: number): Promise<void> {
  let count = 0;
  const bus = createBus({ transports: { redis: redisStream({ url, keyPrefix: prefix }) } });
  bus.module({ name: `ab${process.pid}-${Date.now()}-${++groups}`, batchSize: 100, pollIntervalMs: 100, lagIntervalMs: 0, consumers: { c: { topics: [key], events: [EVENT] } }, handler: () => void count++ });
  await bus.start();
  while (count < total) await new Promise((r) => setTimeout(r, 1));
  await bus.close();
}
export { rawConsume, rawPublish } from '../src/redis-raw.js';
