import { randomUUID } from 'node:crypto';
import { jsonCodec } from '@bus/core';
import { afterAll, describe, expect, it } from 'vitest';
import { type RedisStreamTransport, redisStream } from '../src/index.js';
import { deleteKeys, nodeOf, SHARED_REDIS_URL } from './helpers/servers.js';

const prefix = `bus-test:${randomUUID().slice(0, 8)}:`;
const codec = jsonCodec();
const transports: RedisStreamTransport[] = [];
const record = (n: number) => codec.encode({ id: `id-${n}`, event: 'e', payload: { n }, publishedAt: Date.now(), headers: {} });

afterAll(async () => {
  await Promise.all(transports.map((t) => t.close()));
  await deleteKeys([nodeOf(SHARED_REDIS_URL)], `${prefix}*`);
});

describe('waitReplicas (WAIT after XADD)', () => {
  it('a publish no replica confirmed fails retryably, naming waitReplicas; with waitReplicas 0 the same publish is ok', async () => {
    // The test server has no replica: WAIT 1 returns 0 after waitTimeoutMs.
    const strict = redisStream({ url: SHARED_REDIS_URL, keyPrefix: prefix, waitReplicas: 1, waitTimeoutMs: 50 });
    const plain = redisStream({ url: SHARED_REDIS_URL, keyPrefix: prefix });
    transports.push(strict, plain);
    const results = await strict.publish('durable', [record(1), record(2)]);
    expect(results).toHaveLength(2);
    for (const r of results) {
      expect(r.ok).toBe(false);
      if (!r.ok) {
        expect(r.error).toMatchObject({ code: 'PUBLISH', retryable: true });
        expect(r.error.message).toMatch(/\[bus\/redis\] publish to "durable" is not confirmed on the replicas \(waitReplicas\): 0 of 1 replicas/);
      }
    }
    const [plainResult] = await plain.publish('durable', [record(3)]);
    expect(plainResult?.ok).toBe(true);
  });

  it('sentinel cannot be combined with url, and its sentinels are checked', () => {
    expect(() => redisStream({ url: 'redis://127.0.0.1:6379', sentinel: { sentinels: [{ host: '127.0.0.1', port: 26379 }], name: 'm' } })).toThrow(
      /sentinel cannot be combined with url\/connection/,
    );
    expect(() => redisStream({ sentinel: { sentinels: ['127.0.0.1:26379' as never], name: 'm' } })).toThrow(/sentinel\.sentinels\[0\] must be \{ host, port \}/);
    expect(() => redisStream({ waitReplicas: -1 })).toThrow(/waitReplicas/);
  });
});
