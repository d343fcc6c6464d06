import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { jsonCodec } from '@bus/core';
import { afterAll, describe, expect, it } from 'vitest';
import { redisStream } from '../src/index.js';
import { deleteKeys, nodeOf, SHARED_REDIS_URL } from './helpers/servers.js';

const require = createRequire(import.meta.url);
const TSX = pathToFileURL(require.resolve('tsx')).href;
const FIXTURE = fileURLToPath(new URL('./fixtures/consumer.ts', import.meta.url));
const TSCONFIG = fileURLToPath(new URL('./fixtures/tsconfig.json', import.meta.url));
const prefix = `bus-test:${randomUUID().slice(0, 8)}:`;
const codec = jsonCodec();

describe('a consumer process killed with SIGKILL', () => {
  let child: ChildProcess | undefined;
  afterAll(async () => {
    child?.kill('SIGKILL');
    await deleteKeys([nodeOf(SHARED_REDIS_URL)], `${prefix}*`);
  });

  it('another member of the group handles every one of its pending messages (by id), after XAUTOCLAIM', async () => {
    const N = 500;
    const claimIdleMs = 1000;
    const topic = 'orders';
    const group = 'billing-orders';
    const transport = redisStream({ url: SHARED_REDIS_URL, keyPrefix: prefix, claimIdleMs, claimIntervalMs: 200 });
    try {
      const records = Array.from({ length: N }, (_, n) => codec.encode({ id: `m-${n}`, event: 'order.created', payload: { n }, publishedAt: Date.now(), headers: {} }));
      const results = await transport.publish(topic, records);
      expect(results.every((r) => r.ok)).toBe(true);

      child = spawn(process.execPath, ['--import', TSX, FIXTURE], {
        env: { ...process.env, TSX_TSCONFIG_PATH: TSCONFIG, BUS_URL: SHARED_REDIS_URL, BUS_PREFIX: prefix, BUS_TOPIC: topic, BUS_GROUP: group, BUS_BATCH: String(N), BUS_CLAIM_IDLE_MS: String(claimIdleMs) },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const held = await new Promise<string[]>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('the child consumer reported nothing within 20 s')), 20_000);
        child?.once('exit', (code) => reject(new Error(`child exited early (${code})`)));
        createInterface({ input: child?.stdout as NodeJS.ReadableStream }).on('line', (line) => {
          const msg = JSON.parse(line) as { held?: string[] };
          if (msg.held) {
            clearTimeout(timer);
            resolve(msg.held);
          }
        });
      });
      expect(held).toHaveLength(N);

      // The survivor joins while the child still lives: the child's refreshes keep its entries.
      const handled = new Map<string, number>();
      const sub = await transport.subscribe(
        { group, topics: [topic], batchSize: 100, pollIntervalMs: 100, startFrom: 'earliest', consumerName: 'survivor' },
        async (batch) => {
          for (const m of batch) {
            handled.set(m.headers.ce_id as string, m.deliveryCount);
            m.ack();
          }
        },
      );
      await new Promise((r) => setTimeout(r, claimIdleMs * 2.5));
      expect(handled.size, 'the survivor took entries from a live member').toBe(0);

      const exited = new Promise((r) => child?.once('exit', r));
      child.kill('SIGKILL');
      await exited;
      const killedAt = Date.now();
      while (handled.size < N && Date.now() - killedAt < 20_000) await new Promise((r) => setTimeout(r, 50));
      const tookMs = Date.now() - killedAt;
      await sub.close();

      expect(handled.size).toBe(N);
      expect([...handled.keys()].sort()).toEqual([...held].sort());
      expect(Math.min(...handled.values()), 'claimed entries count as redeliveries').toBeGreaterThanOrEqual(2);
      const lag = await transport.lag?.(group, [topic]);
      expect(lag?.[0]).toEqual({ group, topic, lag: 0, pending: 0 });
      console.info(`crash test: killed consumer held ${held.length} pending; survivor handled ${handled.size}/${N} by id, ${tookMs} ms after the kill`);
    } finally {
      await transport.close();
    }
  }, 60_000);
});
