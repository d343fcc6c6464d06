import { randomUUID } from 'node:crypto';
import { runTransportConformance } from '@bus/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keySlot, redisStream } from '../src/index.js';
import { deleteKeys, ensureCluster, type RedisServer, startRedisServer, stopCluster } from './helpers/servers.js';

const run = randomUUID().slice(0, 8);

describe('redisStream on a standalone Redis (own server, restarted by the reconnect test)', () => {
  let server: RedisServer | undefined;
  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterAll(async () => {
    await server?.dispose();
  });
  runTransportConformance(
    { describe, it },
    {
      createTransport: () => redisStream({ url: (server as RedisServer).url, keyPrefix: `bus-test:${run}:` }),
      restartBroker: () => (server as RedisServer).restart(),
      pollIntervalMs: 100,
      stress: 3,
    },
  );
});

describe('redisStream on a 3-master Redis Cluster', () => {
  let cluster: Awaited<ReturnType<typeof ensureCluster>> | undefined;
  const prefix = `bus-test:${run}:`;
  beforeAll(async () => {
    cluster = await ensureCluster();
  }, 90_000);
  afterAll(async () => {
    if (!cluster) return;
    if (cluster.startedHere) await stopCluster();
    else await deleteKeys(cluster.nodes, `${prefix}*`);
  }, 90_000);
  runTransportConformance(
    { describe, it },
    {
      createTransport: () => redisStream({ cluster: { nodes: cluster?.nodes ?? [] }, keyPrefix: prefix }),
      pollIntervalMs: 100,
    },
  );

  it('one subscription reads topics owned by three different masters, and hash-tagged topics together', async () => {
    const t = redisStream({ cluster: { nodes: cluster?.nodes ?? [] }, keyPrefix: prefix });
    try {
      // One topic in each master's slot range of the 3-master layout (0-5460, 5461-10922, 10923-16383).
      const perMaster = new Map<number, string>();
      for (let i = 0; perMaster.size < 3; i++) {
        const master = Math.min(2, Math.floor(keySlot(`${prefix}spread-${i}`) / 5461));
        if (!perMaster.has(master)) perMaster.set(master, `spread-${i}`);
      }
      const topics = [...perMaster.values(), '{live}.income', '{live}.gifts'];
      expect(keySlot(`${prefix}{live}.income`)).toBe(keySlot(`${prefix}{live}.gifts`));
      const got = new Map<string, number>();
      const sub = await t.subscribe({ group: 'g', topics, batchSize: 20, pollIntervalMs: 100, startFrom: 'earliest', consumerName: 'c' }, async (batch) => {
        for (const m of batch) {
          got.set(m.topic, (got.get(m.topic) ?? 0) + 1);
          m.ack();
        }
      });
      for (const topic of topics) {
        const results = await t.publish(topic, Array.from({ length: 30 }, (_, n) => ({ value: String(n), headers: {} })));
        expect(results.every((r) => r.ok)).toBe(true);
      }
      const deadline = Date.now() + 10_000;
      while ([...got.values()].reduce((a, b) => a + b, 0) < 150 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      await sub.close();
      expect(Object.fromEntries(got)).toEqual(Object.fromEntries(topics.map((topic) => [topic, 30])));
    } finally {
      await t.close();
    }
  });
});
