import { randomUUID } from 'node:crypto';
import { createBus } from '@bus/core';
import { afterAll, describe, expect, it } from 'vitest';
import { type RedisStreamTransport, redisStream } from '../src/index.js';
import { deleteKeys, nodeOf, SHARED_REDIS_URL } from './helpers/servers.js';

const prefix = `bus-test:${randomUUID().slice(0, 8)}:`;
const transports: RedisStreamTransport[] = [];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

afterAll(async () => {
  await Promise.all(transports.map((t) => t.close()));
  await deleteKeys([nodeOf(SHARED_REDIS_URL)], `${prefix}*`);
});

describe('concurrency across batches (issue 14)', () => {
  it('a slow message does not hold up the next batches: other keys keep the slots busy, per-key order and the concurrency hold', async () => {
    const transport = redisStream({ url: SHARED_REDIS_URL, keyPrefix: prefix });
    transports.push(transport);
    const topic = `cont-${randomUUID().slice(0, 6)}`;
    const bus = createBus<{ e: { n: number } }>({ transports: { redis: transport } });
    // Message 0 (key "slow") takes 1.5 s; the 40 others (10 keys, 4 messages each, in order) 10 ms.
    const total = 41;
    const log: { n: number; key: string; at: number; end?: number }[] = [];
    let running = 0;
    let peak = 0;
    let slowEnded = Number.POSITIVE_INFINITY;
    bus.module({
      name: `cont${randomUUID().slice(0, 6)}`,
      batchSize: 5,
      concurrency: 4,
      pollIntervalMs: 50,
      lagIntervalMs: 0,
      consumers: { c: { topics: [topic], events: ['e'] } },
      handler: async ({ payload, message }) => {
        running++;
        peak = Math.max(peak, running);
        const entry: (typeof log)[number] = { n: payload.n, key: message.key as string, at: Date.now() };
        log.push(entry);
        await sleep(payload.n === 0 ? 1500 : 10);
        entry.end = Date.now();
        if (payload.n === 0) slowEnded = entry.end;
        running--;
      },
    });
    await bus.start();
    const results = await bus.publishBatch(
      topic,
      Array.from({ length: total }, (_, n) => ({ event: 'e' as const, payload: { n }, key: n === 0 ? 'slow' : `k${(n - 1) % 10}` })),
    );
    expect(results.every((r) => r.ok)).toBe(true);
    const deadline = Date.now() + 15_000;
    while (log.filter((e) => e.end !== undefined).length < total && Date.now() < deadline) await sleep(20);
    await bus.close();
    expect(log.filter((e) => e.end !== undefined)).toHaveLength(total);
    // Every other message (8 batches of 5 after the first) finished while the slow one still ran:
    // before, the router waited for the slowest key of each batch before the next fetch.
    const finishedBeforeSlow = log.filter((e) => e.n !== 0 && (e.end as number) < slowEnded).length;
    expect(finishedBeforeSlow).toBe(total - 1);
    expect(peak).toBeLessThanOrEqual(4);
    // Per key, in publish order, and each started after the previous one of its key ended.
    const byKey = new Map<string, (typeof log)[number][]>();
    for (const e of log) byKey.set(e.key, [...(byKey.get(e.key) ?? []), e]);
    for (const list of byKey.values()) {
      for (let i = 1; i < list.length; i++) {
        const prev = list[i - 1] as (typeof log)[number];
        const cur = list[i] as (typeof log)[number];
        expect(cur.n).toBeGreaterThan(prev.n);
        expect(cur.at).toBeGreaterThanOrEqual(prev.end as number);
      }
    }
  });

  it('concurrency 1 with a batch fetched ahead: one handler at a time, in stream order, each message once', async () => {
    const transport = redisStream({ url: SHARED_REDIS_URL, keyPrefix: prefix });
    transports.push(transport);
    const topic = `seq-${randomUUID().slice(0, 6)}`;
    const bus = createBus<{ e: { n: number } }>({ transports: { redis: transport } });
    const total = 60;
    const seen: number[] = [];
    let running = 0;
    let peak = 0;
    bus.module({
      name: `seq${randomUUID().slice(0, 6)}`,
      batchSize: 5,
      pollIntervalMs: 50,
      lagIntervalMs: 0,
      consumers: { c: { topics: [topic], events: ['e'] } },
      handler: async ({ payload }) => {
        running++;
        peak = Math.max(peak, running);
        await sleep(payload.n % 3);
        seen.push(payload.n);
        running--;
      },
    });
    await bus.start();
    const results = await bus.publishBatch(
      topic,
      Array.from({ length: total }, (_, n) => ({ event: 'e' as const, payload: { n } })),
    );
    expect(results.every((r) => r.ok)).toBe(true);
    const deadline = Date.now() + 15_000;
    while (seen.length < total && Date.now() < deadline) await sleep(20);
    await bus.close();
    expect(peak).toBe(1);
    expect(seen).toEqual(Array.from({ length: total }, (_, n) => n));
  });
});
