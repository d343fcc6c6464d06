import { randomUUID } from 'node:crypto';
import { DELAY_HEADER, DLQ_HEADER, type IncomingMessage, jsonCodec, memoryTransport } from '@bus/core';
import { redisStream } from '@bus/redis-stream';
import { describe, expect, it } from 'vitest';
import { parseDuration, replayDeadLetters } from '../src/index.js';

const codec = jsonCodec();

describe('dlq replay with a delay (API of `bus dlq replay <topic> --delay 10m`)', () => {
  it('parses durations', () => {
    expect(parseDuration('10m')).toBe(600_000);
    expect(parseDuration('1.5s')).toBe(1500);
    expect(parseDuration('250')).toBe(250);
    expect(parseDuration('2h')).toBe(7_200_000);
    expect(() => parseDuration('later')).toThrow(/not a duration/);
  });

  it('on Redis: the replayed copy reaches the origin topic no sooner than the delay', async () => {
    const prefix = `bus-test:${randomUUID().slice(0, 8)}:`;
    const t = redisStream({ url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', keyPrefix: prefix });
    const topic = 'orders';
    const got: { at: number; m: IncomingMessage }[] = [];
    try {
      const letter = codec.encode({ id: randomUUID(), event: 'order.paid', payload: { n: 1 }, publishedAt: Date.now(), headers: {} });
      letter.headers[DLQ_HEADER.topic] = topic;
      letter.headers[DLQ_HEADER.reason] = 'boom';
      // Dead-lettered after its last broker-side retry: the replayed copy must start at attempt 1 again.
      letter.headers[DELAY_HEADER.attempt] = '3';
      letter.headers[DELAY_HEADER.topic] = topic;
      expect((await t.publish(`${topic}.dlq`, [letter]))[0]?.ok).toBe(true);
      const sub = await t.subscribe({ group: 'g', topics: [topic], batchSize: 10, pollIntervalMs: 100, startFrom: 'earliest', consumerName: 'c' }, async (batch) => {
        for (const m of batch) {
          got.push({ at: Date.now(), m });
          m.ack();
        }
      });
      const started = Date.now();
      const result = await replayDeadLetters(t, topic, 10, () => {}, 5000, { delayMs: 1000 });
      expect(result).toEqual({ replayed: 1, skipped: 0 });
      const deadline = Date.now() + 10_000;
      while (got.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
      await sub.close();
      expect(got).toHaveLength(1);
      const due = Number(got[0]?.m.headers[DELAY_HEADER.deliverAt]);
      expect(due).toBeGreaterThanOrEqual(started + 1000);
      expect(got[0]?.at).toBeGreaterThanOrEqual(due);
      expect(got[0]?.m.headers[DLQ_HEADER.reason]).toBeUndefined();
      expect(got[0]?.m.headers[DELAY_HEADER.attempt]).toBeUndefined();
      expect(got[0]?.m.headers[DELAY_HEADER.topic]).toBeUndefined();
    } finally {
      await t.withClient(async (c) => {
        const keys = await c.keys(`${prefix}*`);
        if (keys.length > 0) await c.del(...keys);
      });
      await t.close();
    }
  }, 30_000);

  it('refuses a delay on a transport without delayed delivery', async () => {
    const { publishDelayed: _, ...plain } = memoryTransport();
    const bare = { ...plain, capabilities: { ...plain.capabilities, delays: false } };
    await expect(replayDeadLetters(bare, 'x', 1, () => {}, 100, { delayMs: 10 })).rejects.toThrow(/no delayed delivery/);
  });
});
