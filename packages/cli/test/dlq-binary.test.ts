import { randomUUID } from 'node:crypto';
import { createBus, DLQ_HEADER, HEADER, jsonCodec } from '@bus/core';
import { redisStream } from '@bus/redis-stream';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { replayDeadLetters } from '../src/dlq.js';
import { busDone, CONFIG } from './helpers.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `bus-dlq-bin:${randomUUID().slice(0, 8)}:`;
const redis = new Redis(REDIS_URL);
const codec = jsonCodec();
// Not UTF-8: string replies would turn these into U+FFFD (EF BF BD).
const BYTES = Buffer.from([0xff, 0xfe, 0x80, 0x00, 0x41, 0xc3, 0x28, 0xe2, 0x82, 0x7b, 0x22]);

afterAll(async () => {
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
});

/** Every entry of a stream, fields as Buffers, as name → bytes. */
async function entries(key: string): Promise<Map<string, Buffer>[]> {
  const reply = (await redis.callBuffer('XRANGE', key, '-', '+')) as [Buffer, Buffer[]][];
  return reply.map(([, fields]) => {
    const map = new Map<string, Buffer>();
    for (let i = 0; i + 1 < fields.length; i += 2) map.set((fields[i] as Buffer).toString(), fields[i + 1] as Buffer);
    return map;
  });
}

async function until(what: string, check: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('Redis dead letters are byte-exact', () => {
  it('a binary value comes back from the dead letter byte for byte, and dlq replay restores it; a bad ce_time is dead-lettered as DECODE naming the header', async () => {
    const topic = `orders-${randomUUID().slice(0, 6)}`;
    const key = `${prefix}${topic}`;
    const headers = codec.encode({ id: randomUUID(), event: 'e', payload: 1, publishedAt: Date.now(), headers: { 'x-trace': 'abc' } }).headers;
    await redis.xadd(key, '*', ...Object.entries(headers).flat(), '_key', 'k1', '_data', BYTES);
    const badTime = { ...headers, [HEADER.id]: randomUUID(), [HEADER.time]: '2024' };
    await redis.xadd(key, '*', ...Object.entries(badTime).flat(), '_data', '{"n":1}');

    const transport = redisStream({ url: REDIS_URL, keyPrefix: prefix });
    const bus = createBus({ transports: { redis: transport } });
    bus.module({ name: 'bin', pollIntervalMs: 100, consumers: { c: { topics: [topic], events: ['e'] } }, handler: () => {} });
    await bus.start();
    await until('two dead letters', async () => (await redis.xlen(`${key}.dlq`)) >= 2);
    await bus.close();

    const [binary, time] = await entries(`${key}.dlq`);
    expect(binary?.get('_data')?.equals(BYTES), `dead letter value ${binary?.get('_data')?.toString('hex')}`).toBe(true);
    expect(binary?.get('_key')?.toString()).toBe('k1');
    expect(binary?.get('x-trace')?.toString()).toBe('abc');
    expect(binary?.get(DLQ_HEADER.error)?.toString()).toBe('DECODE');
    expect(time?.get(DLQ_HEADER.error)?.toString()).toBe('DECODE');
    expect(time?.get(DLQ_HEADER.reason)?.toString()).toContain('"ce_time" is not an RFC 3339 time: "2024"');

    const replayTransport = redisStream({ url: REDIS_URL, keyPrefix: prefix });
    try {
      const result = await replayDeadLetters(replayTransport, topic, 10, () => {}, 5000);
      expect(result.replayed).toBe(2);
    } finally {
      await replayTransport.close();
    }
    const origin = await entries(key);
    expect(origin).toHaveLength(4);
    const replayed = origin.find((e, i) => i >= 2 && e.get(HEADER.id)?.toString() === headers[HEADER.id]);
    expect(replayed?.get('_data')?.equals(BYTES), `replayed value ${replayed?.get('_data')?.toString('hex')}`).toBe(true);
    expect(replayed?.get('_key')?.toString()).toBe('k1');
  }, 60_000);
});

describe('CLI output never shows a password', () => {
  it('bus publish against a Redis URL with a password that cannot connect: the reason is printed, the password is not', async () => {
    const secret = 'cli-s3cret-Pw';
    // A closed loopback port of this test's range: the connect is refused.
    const env = { BUS_TEST_TRANSPORT: 'redis', REDIS_URL: `redis://:${secret}@127.0.0.1:17209`, BUS_TEST_TOPIC: 'cli-secret' };
    const publish = await busDone(['publish', 'cli-secret', 'job.created', '{"n":1}', '--config', CONFIG], env);
    expect(publish.code).not.toBe(0);
    const printed = `${publish.stdout}\n${publish.stderr}`;
    expect(printed).toContain('127.0.0.1:17209');
    expect(printed).not.toContain(secret);
  }, 60_000);
});
