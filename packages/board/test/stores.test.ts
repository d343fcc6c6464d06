import { randomUUID } from 'node:crypto';
import { KAFKA_DELETE_UNAVAILABLE, redisDeadLetters, scanDeadLetters } from '@bus/board';
import { memoryTransport } from '@bus/core';
import { redisStream } from '@bus/redis-stream';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';

const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const topic = `board-store-${randomUUID().slice(0, 8)}.dlq`;

afterAll(async () => {
  const redis = new Redis(url);
  await redis.del(topic);
  redis.disconnect();
});

describe('redisDeadLetters', () => {
  it('pages newest first with a cursor, looks up, scans and deletes, binary-safe', async () => {
    const transport = redisStream({ url, fields: { value: 'v', key: 'k' } });
    try {
      const sent = await transport.publish(topic, [1, 2, 3, 4, 5].map((n) => ({ key: `k${n}`, value: Buffer.from([0xff, n]), headers: { n: String(n) } })));
      const ids = sent.map((r) => (r.ok ? r.id : ''));
      const store = redisDeadLetters(transport);
      expect(store.deleteUnavailable).toBeUndefined();
      const first = await store.page(topic, { limit: 2 });
      expect(first.records.map((r) => r.headers.n)).toEqual(['5', '4']);
      expect(first.total).toBe(5);
      expect(first.records[0]).toMatchObject({ id: ids[4], key: 'k5', value: Buffer.from([0xff, 5]) });
      const second = await store.page(topic, { cursor: first.next, limit: 2 });
      expect(second.records.map((r) => r.headers.n)).toEqual(['3', '2']);
      const last = await store.page(topic, { cursor: second.next, limit: 2 });
      expect(last.records.map((r) => r.headers.n)).toEqual(['1']);
      expect(last.next).toBeUndefined();

      expect((await store.get(topic, [ids[2] as string, '9-9', 'not-an-id'])).map((r) => r.headers.n)).toEqual(['3']);
      expect((await store.scan(topic, 3)).map((r) => r.headers.n)).toEqual(['5', '4', '3']);
      expect(await store.delete(topic, [ids[0] as string, ids[1] as string, 'junk'])).toBe(2);
      expect((await store.page(topic, { limit: 10 })).records.map((r) => r.headers.n)).toEqual(['5', '4', '3']);
    } finally {
      await transport.close();
    }
  });

  it('refuses a transport that is not Redis', () => {
    expect(() => redisDeadLetters(memoryTransport())).toThrow(/needs a @bus\/redis-stream transport/);
  });
});

describe('scanDeadLetters', () => {
  it('pages a topic read with a throwaway group, and cannot delete', async () => {
    const mem = memoryTransport();
    await mem.publish('t.dlq', [1, 2, 3].map((n) => ({ value: String(n), headers: { n: String(n) } })));
    const store = scanDeadLetters(mem, { deleteUnavailable: KAFKA_DELETE_UNAVAILABLE });
    const first = await store.page('t.dlq', { limit: 2 });
    expect(first.records.map((r) => r.headers.n)).toEqual(['3', '2']);
    expect(first.total).toBe(3);
    const second = await store.page('t.dlq', { cursor: first.next, limit: 2 });
    expect(second.records.map((r) => r.headers.n)).toEqual(['1']);
    expect(second.next).toBeUndefined();
    expect((await store.get('t.dlq', [first.records[1]?.id as string])).map((r) => r.headers.n)).toEqual(['2']);
    await expect(store.delete('t.dlq', ['0'])).rejects.toThrow(/Kafka cannot delete single records/);
  });
});
