import { BusError, ConfigError } from '@bus/core';
import { describe, expect, it } from 'vitest';
import { keySlot, redisStream } from '../src/index.js';
import { Deadlines } from '../src/client.js';
import { fromFields, toFields } from '../src/wire.js';

const configError = (options: unknown): ConfigError => {
  try {
    redisStream(options as Parameters<typeof redisStream>[0]);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('no ConfigError');
};

describe('option validation (at construction, naming the key path)', () => {
  it.each([
    [{ pool: { max: 0 } }, 'pool.max', '[bus/redis] pool.max must be an integer from 1 to 10000, got 0'],
    [{ pool: { acquireTimeoutMs: -5 } }, 'pool.acquireTimeoutMs', 'pool.acquireTimeoutMs must be'],
    [{ pool: { min: 5, max: 2 } }, 'pool.min', 'must not exceed pool.max (2)'],
    [{ pool: { maxConnections: 3 } }, 'pool.maxConnections', 'is not an option; known options: min, max'],
    [{ url: 'http://x' }, 'url', 'must start with redis://'],
    [{ url: '' }, 'url', 'must start with redis:// or rediss://'],
    [{ claimIdleMs: 10 }, 'claimIdleMs', 'must be an integer from 100'],
    [{ claimIdleMs: 1000, nackDelayMs: 5000 }, 'nackDelayMs', 'must not exceed claimIdleMs (1000)'],
    [{ consumerIdleTimeoutMs: 'soon' }, 'consumerIdleTimeoutMs', 'got "soon"'],
    [{ cluster: { nodes: [] } }, 'cluster.nodes', 'must be a non-empty array'],
    [{ cluster: { nodes: ['127.0.0.1:7001', null] } }, 'cluster.nodes[1]', 'must be a host:port string'],
    [{ url: 'redis://a', cluster: { nodes: [7001] } }, 'cluster', 'cannot be combined with url/connection'],
    [{ cluster: { nodes: [7001] }, createClient: () => null }, 'createClient', 'cannot be combined with cluster'],
    [{ createClient: 'yes' }, 'createClient', 'must be a function'],
    [{ trim: { maxLen: 0 } }, 'trim.maxLen', 'must be a positive integer'],
    [{ trim: { maxLen: 10, maxAgeMs: 1000 } }, 'trim.maxAgeMs', 'cannot be combined with trim.maxLen'],
    [{ fields: { value: 'x', key: 'x' } }, 'fields.key', 'must differ from fields.value'],
    [{ connection: { keyPrefix: 'app:' } }, 'connection.keyPrefix', 'use the keyPrefix option'],
    [{ claimIntervallMs: 100 }, 'claimIntervallMs', 'is not an option; did you mean "claimIntervalMs"?'],
    // Secrets never reach the message: URL passwords and secret-looking keys are masked.
    [{ url: 'http://:s3cret@host:6379' }, 'url', 'got "http://:***@host:6379"'],
    [{ connection: 'redis://:s3cret@host' }, 'connection', 'got "redis://:***@host"'],
    [{ connection: { password: 's3cret', keyPrefix: 'x' } }, 'connection.keyPrefix', 'use the keyPrefix option'],
    [{ urll: 'redis://u:s3cret@host' }, 'urll', 'did you mean "url"?, got "redis://u:***@host"'],
  ])('%j → %s', (options, path, message) => {
    const error = configError(options);
    expect(error.path).toBe(path);
    expect(error.message).toContain(message);
    expect(error.message.startsWith('[bus/redis] ')).toBe(true);
    expect(error.message).not.toContain('s3cret');
    expect(JSON.stringify(error.value ?? null)).not.toContain('s3cret');
    expect(BusError.isInstance(error)).toBe(true);
    expect(error.code).toBe('CONFIG');
  });

  it('accepts the defaults and does not connect at construction', async () => {
    const t = redisStream({ url: 'redis://127.0.0.1:1' });
    expect(t.name).toBe('redis');
    expect(t.specificationVersion).toBe('v1');
    expect(t.capabilities).toEqual({
      persistent: true,
      consumerGroups: true,
      ordering: 'topic',
      nativeBatching: true,
      blockingReads: true,
      redeliversUnsettled: true,
      concurrentBatches: false,
      durableDeliveryCount: true,
      delays: true,
    });
    await t.close();
    await t.close();
  });
});

describe('wire mapping', () => {
  const fields = { value: '_data', key: '_key' };

  it('headers become fields of the same name; key and value go under the reserved names', () => {
    const args = toFields({ key: 'k1', value: Buffer.from('{"a":1}'), headers: { ce_id: 'x', 'content-type': 'application/json' } }, fields, 'redis');
    expect(args.map(String)).toEqual(['ce_id', 'x', 'content-type', 'application/json', '_key', 'k1', '_data', '{"a":1}']);
  });

  it('round-trips binary values byte for byte', () => {
    const value = new Uint8Array([0, 255, 128, 10, 13, 0xc3]);
    const args = toFields({ value, headers: { h: 'v' } }, fields, 'redis').map((a) => (Buffer.isBuffer(a) ? a : Buffer.from(a)));
    const back = fromFields(args, fields);
    expect(Buffer.from(back.value as Uint8Array).equals(Buffer.from(value))).toBe(true);
    expect(back.headers).toEqual({ h: 'v' });
    expect(back.key).toBeUndefined();
  });

  it('an entry without a value field decodes to an empty value, every field a header', () => {
    const back = fromFields([Buffer.from('junk'), Buffer.from('1')], fields);
    expect(back.headers).toEqual({ junk: '1' });
    expect(Buffer.from(back.value as Uint8Array).length).toBe(0);
  });

  it('entries of different layouts in turn read correctly (the field-name cache is only a cache), also into a given record', () => {
    const a = ['ce_id', 'a1', 'ce_type', 'x.happened', '_data', '{"n":1}'];
    const b = ['ce_type', 'y.happened', 'extra', 'e', '_key', 'k', 'ce_id', 'b1', '_data', '{"n":2}'];
    const fresh = (list: string[]) => list.map((s) => Buffer.from(s).toString());
    for (let round = 0; round < 3; round++) {
      expect(fromFields(fresh(a), fields)).toEqual({ value: '{"n":1}', headers: { ce_id: 'a1', ce_type: 'x.happened' } });
      const into = { topic: 't', id: '1-0', deliveryCount: 2, value: Buffer.alloc(0) as Buffer | string, headers: {} };
      const back = fromFields(fresh(b), fields, into);
      expect(back).toBe(into);
      expect(back).toEqual({ topic: 't', id: '1-0', deliveryCount: 2, key: 'k', value: '{"n":2}', headers: { ce_type: 'y.happened', extra: 'e', ce_id: 'b1' } });
    }
  });

  it('a header named like a reserved field is refused with a non-retryable PublishError', () => {
    expect(() => toFields({ value: 'v', headers: { _data: 'oops' } }, fields, 'redis')).toThrow(/header "_data" uses a field name reserved/);
  });
});

describe('keySlot', () => {
  it('matches CLUSTER KEYSLOT, hash tags included', () => {
    // Values from `redis-cli -p 7001 CLUSTER KEYSLOT <key>` (Redis 7.0).
    expect(keySlot('foo')).toBe(12182);
    expect(keySlot('bar')).toBe(5061);
    expect(keySlot('{user1}.a')).toBe(8106);
    expect(keySlot('abc{}d')).toBe(16183);
    expect(keySlot('x{y}z')).toBe(12222);
    expect(keySlot('{orders}.dlq')).toBe(keySlot('{orders}'));
  });
});

describe('Deadlines (one timer for every command in flight)', () => {
  const never = () => new Promise<never>(() => {});
  const after = <T>(ms: number, value: T) => new Promise<T>((resolve) => setTimeout(() => resolve(value), ms));

  it('each unanswered command fails at its own deadline with a ConnectionError, after onTimeout; answered ones keep their outcome', async () => {
    const d = new Deadlines();
    const t0 = performance.now();
    const timedOut: string[] = [];
    const settle = (p: Promise<unknown>) =>
      p.then(
        (v) => ({ ok: true, v, at: performance.now() - t0 }),
        (e: unknown) => ({ ok: false, e, at: performance.now() - t0 }),
      );
    const slow = settle(d.run(never(), 120, 'slow', () => timedOut.push('slow')));
    const fast = settle(d.run(never(), 40, 'fast', () => timedOut.push('fast')));
    const answered = settle(d.run(after(10, 'yes'), 40, 'answered', () => timedOut.push('answered')));
    const failed = settle(d.run(Promise.reject(new Error('refused')), 40, 'failed', () => timedOut.push('failed')));
    const [s, f, a, x] = await Promise.all([slow, fast, answered, failed]);
    expect(a).toMatchObject({ ok: true, v: 'yes' });
    expect(x).toMatchObject({ ok: false, e: { message: 'refused' } });
    expect(timedOut).toEqual(['fast', 'slow']);
    for (const [r, ms] of [[f, 40], [s, 120]] as const) {
      expect(r.ok).toBe(false);
      expect(BusError.isInstance((r as { e: unknown }).e)).toBe(true);
      expect(String((r as { e: Error }).e.message)).toMatch(new RegExp(`got no reply within ${ms} ms`));
      expect(r.at).toBeGreaterThanOrEqual(ms - 1);
      expect(r.at).toBeLessThan(ms + 60);
    }
    expect(d.size).toBe(0);
    d.close();
  });

  it('many sequential commands share the timer (no timer per command) and none fails early', async () => {
    const d = new Deadlines();
    const created: unknown[] = [];
    const original = globalThis.setTimeout;
    globalThis.setTimeout = ((fn: () => void, ms?: number) => {
      created.push(ms);
      return original(fn, ms);
    }) as typeof setTimeout;
    try {
      for (let i = 0; i < 1000; i++) await d.run(Promise.resolve(i), 5000, 'cmd', () => {});
    } finally {
      globalThis.setTimeout = original;
    }
    expect(created.length).toBe(1);
    expect(d.size).toBe(0);
    d.close();
  });
});
