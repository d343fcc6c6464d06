import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { BusError, createBus, DLQ_HEADER, type IncomingMessage, jsonCodec, PoolTimeoutError } from '@bus/core';
import { afterAll, describe, expect, it } from 'vitest';
import { type RedisStreamTransport, redisStream } from '../src/index.js';
import { deleteKeys, nodeOf, SHARED_REDIS_URL } from './helpers/servers.js';

const exec = promisify(execFile);
const prefix = `bus-test:${randomUUID().slice(0, 8)}:`;
const node = nodeOf(SHARED_REDIS_URL);
const codec = jsonCodec();
const transports: RedisStreamTransport[] = [];
const make = (options: Parameters<typeof redisStream>[0] = {}) => {
  const t = redisStream({ url: SHARED_REDIS_URL, keyPrefix: prefix, ...options });
  transports.push(t);
  return t;
};
const cli = async (...args: string[]) => (await exec('redis-cli', ['-h', node.host, '-p', String(node.port), ...args], { timeout: 5000 })).stdout.trim();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const waitFor = async (what: string, predicate: () => boolean, ms = 10_000) => {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
};
const record = (n: number) => codec.encode({ id: `id-${n}`, event: 'e', payload: { n }, publishedAt: Date.now(), headers: {} });

afterAll(async () => {
  await Promise.all(transports.map((t) => t.close()));
  await deleteKeys([node], `${prefix}*`);
});

describe('entries written by redis-cli', () => {
  type Events = { 'order.created': { orderId: string; amount: number } };

  it('an XADD in our envelope is consumed; an entry with garbage fields is dead-lettered with the reason; the consumer goes on', async () => {
    const topic = `orders-${randomUUID().slice(0, 6)}`;
    const key = `${prefix}${topic}`;
    const bus = createBus<Events>({ transports: { redis: make() } });
    const handled: { payload: Events['order.created']; id: string; key: string | undefined; headers: Record<string, string> }[] = [];
    bus.module({
      name: 'billing',
      pollIntervalMs: 100,
      consumers: { orders: { topics: [topic], events: ['order.created'] } },
      handler: (ctx) => {
        handled.push({ payload: ctx.payload, id: ctx.message.id, key: ctx.message.key, headers: ctx.message.headers });
      },
    });
    await bus.start();
    const dlq: IncomingMessage[] = [];
    const dlqSub = await make().subscribe(
      { group: 'dlq-reader', topics: [`${topic}.dlq`], batchSize: 10, pollIntervalMs: 100, startFrom: 'earliest', consumerName: 'r' },
      async (batch) => {
        for (const m of batch) {
          dlq.push(m);
          m.ack();
        }
      },
    );

    const time = new Date().toISOString();
    // What an operator or a non-Node producer writes.
    const first = await cli('XADD', key, '*', 'ce_specversion', '1.0', 'ce_id', 'cli-1', 'ce_type', 'order.created', 'ce_time', time, 'content-type', 'application/json', 'traceparent', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', '_key', 'customer-7', '_data', '{"orderId":"o-1","amount":30}');
    expect(first).toMatch(/^\d+-\d+$/);
    await cli('XADD', key, '*', 'foo', 'bar', 'baz', 'qux');
    await cli('XADD', key, '*', 'ce_specversion', '1.0', 'ce_id', 'cli-2', 'ce_type', 'order.created', 'ce_time', time, 'content-type', 'application/json', '_data', '{oops');
    await cli('XADD', key, '*', 'ce_specversion', '1.0', 'ce_id', 'cli-3', 'ce_type', 'order.created', 'ce_time', time, '_data', '{"orderId":"o-3","amount":5}');
    // An empty event name is no event the consumer skips: it is dead-lettered, never acknowledged and dropped.
    await cli('XADD', key, '*', 'ce_specversion', '1.0', 'ce_id', 'cli-4', 'ce_type', '', 'ce_time', time, '_data', '{"orderId":"o-4","amount":1}');

    await waitFor('2 handled and 3 dead-lettered', () => handled.length >= 2 && dlq.length >= 3);
    await bus.close();
    await dlqSub.close();

    expect(handled.map((h) => h.id)).toEqual(['cli-1', 'cli-3']);
    expect(handled[0]?.payload).toEqual({ orderId: 'o-1', amount: 30 });
    expect(handled[0]?.key).toBe('customer-7');
    expect(handled[0]?.headers.traceparent).toBe('00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
    const reasons = dlq.map((m) => m.headers[DLQ_HEADER.reason]);
    expect(reasons[0]).toContain('missing header "ce_id"');
    expect(reasons[1]).toContain('not valid JSON');
    expect(reasons[2]).toContain('"ce_type"');
    expect(dlq[2]?.headers.ce_id).toBe('cli-4');
    expect(dlq[0]?.headers.foo).toBe('bar');
    expect(dlq.every((m) => m.headers[DLQ_HEADER.error] === 'DECODE' && m.headers[DLQ_HEADER.topic] === topic)).toBe(true);
    // The dead letter is itself a plain stream entry anyone can read.
    const raw = await cli('XRANGE', `${key}.dlq`, '-', '+', 'COUNT', '1');
    expect(raw).toContain(DLQ_HEADER.reason);
    expect(await cli('XPENDING', key, 'billing-orders')).toMatch(/^0/);
  });

  it('what we publish reads back in redis-cli as plain fields', async () => {
    const topic = `plain-${randomUUID().slice(0, 6)}`;
    const t = make();
    const [result] = await t.publish(topic, [{ key: 'k', value: Buffer.from('{"a":1}'), headers: { ce_id: 'x', 'content-type': 'application/json' } }]);
    expect(result?.ok).toBe(true);
    const out = (await cli('XRANGE', `${prefix}${topic}`, '-', '+')).split('\n');
    expect(out).toEqual([result?.ok ? result.id : '', 'ce_id', 'x', 'content-type', 'application/json', '_key', 'k', '_data', '{"a":1}']);
  });
});

describe('publish errors', () => {
  it('an XADD Redis refuses is a PublishError for that record, never ok', async () => {
    const topic = `wrongtype-${randomUUID().slice(0, 6)}`;
    await cli('SET', `${prefix}${topic}`, 'not a stream');
    const results = await make().publish(topic, [record(1), record(2)]);
    expect(results).toHaveLength(2);
    for (const r of results) {
      expect(r.ok).toBe(false);
      if (!r.ok) {
        expect(r.error.code).toBe('PUBLISH');
        expect(r.error.message).toMatch(/^\[bus\/redis\] XADD to ".*" failed: WRONGTYPE/);
        expect(r.error.retryable).toBe(false);
      }
    }
  });

  it('an unreachable Redis gives a typed error per record, quickly', async () => {
    const t = make({ url: 'redis://127.0.0.1:1', pool: { acquireTimeoutMs: 500 }, connectTimeoutMs: 200 });
    const started = Date.now();
    const results = await t.publish('x', [record(1), record(2)]);
    expect(Date.now() - started).toBeLessThan(3000);
    for (const r of results) {
      expect(r.ok).toBe(false);
      if (!r.ok) {
        expect(BusError.isInstance(r.error)).toBe(true);
        expect(['CONNECTION', 'POOL_TIMEOUT']).toContain(r.error.code);
      }
    }
    await expect(t.subscribe({ group: 'g', topics: ['x'], batchSize: 1, pollIntervalMs: 100, startFrom: 'earliest', consumerName: 'c' }, async () => {})).rejects.toMatchObject({ code: 'CONNECTION' });
  });
});

describe('producer pool', () => {
  it('exhaustion gives a PoolTimeoutError after acquireTimeoutMs', async () => {
    const t = make({ pool: { max: 1, acquireTimeoutMs: 300 } });
    let release: () => void = () => {};
    const holding = t.withClient(() => new Promise<void>((r) => (release = r)));
    await sleep(50);
    const started = Date.now();
    const [result] = await t.publish('pool', [record(1)]);
    const waited = Date.now() - started;
    release();
    await holding;
    expect(result?.ok).toBe(false);
    if (result && !result.ok) {
      expect(result.error).toBeInstanceOf(PoolTimeoutError);
      expect(result.error.message).toContain('pool "redis-producer" exhausted: no resource free within 300 ms');
    }
    expect(waited).toBeGreaterThanOrEqual(280);
    expect(waited).toBeLessThan(1500);
    const [after] = await t.publish('pool', [record(2)]);
    expect(after?.ok).toBe(true);
  });
});

describe('consumer groups', () => {
  it('a handler running longer than claimIdleMs keeps its messages: no other member steals them', async () => {
    const topic = `long-${randomUUID().slice(0, 6)}`;
    const options = { claimIdleMs: 300, claimIntervalMs: 50, nackDelayMs: 0 };
    const a = make(options);
    const b = make(options);
    const group = 'slow';
    const seen: { member: string; id: string; deliveryCount: number }[] = [];
    const member = (name: string, t: RedisStreamTransport, workMs: number) =>
      t.subscribe({ group, topics: [topic], batchSize: 10, pollIntervalMs: 50, startFrom: 'earliest', consumerName: name }, async (batch) => {
        for (const m of batch) seen.push({ member: name, id: m.id, deliveryCount: m.deliveryCount });
        await sleep(workMs);
        for (const m of batch) m.ack();
      });
    const subA = await member('a', a, 2000);
    await a.publish(topic, [record(1), record(2), record(3)]);
    await waitFor('a to start', () => seen.length >= 3);
    const subB = await member('b', b, 0);
    await sleep(2300);
    await Promise.all([subA.close(), subB.close()]);
    // 2 s of work = 6 × claimIdleMs; b claimed every 50 ms and never got anything.
    expect(seen.map((s) => s.member)).toEqual(['a', 'a', 'a']);
    expect(seen.every((s) => s.deliveryCount === 1)).toBe(true);
    expect(await cli('XPENDING', `${prefix}${topic}`, group)).toMatch(/^0/);
  });

  it("a batch's XACK goes out behind the next read, and close() right after the handler still waits for it: nothing stays pending", async () => {
    const t = make();
    for (let round = 0; round < 5; round++) {
      const topic = `ackclose-${randomUUID().slice(0, 6)}`;
      await t.publish(topic, [record(1), record(2), record(3)]);
      let closing: Promise<void> | undefined;
      const sub = await t.subscribe({ group: 'g', topics: [topic], batchSize: 10, pollIntervalMs: 50, startFrom: 'earliest', consumerName: 'c' }, async (batch) => {
        for (const m of batch) m.ack();
        // Close as soon as this handler returns: the XACK is sent after it, while close() runs.
        setImmediate(() => {
          closing = sub.close();
        });
      });
      await waitFor('close to begin', () => closing !== undefined);
      await closing;
      expect(await cli('XPENDING', `${prefix}${topic}`, 'g')).toMatch(/^0/);
    }
  });

  it('a deleted group is recreated and consumption goes on', async () => {
    const topic = `nogroup-${randomUUID().slice(0, 6)}`;
    const t = make();
    const got: number[] = [];
    const sub = await t.subscribe({ group: 'g', topics: [topic], batchSize: 10, pollIntervalMs: 100, startFrom: 'earliest', consumerName: 'c' }, async (batch) => {
      for (const m of batch) {
        got.push((codec.decode(m).payload as { n: number }).n);
        m.ack();
      }
    });
    await t.publish(topic, [record(1)]);
    await waitFor('the first message', () => got.includes(1));
    expect(await cli('XGROUP', 'DESTROY', `${prefix}${topic}`, 'g')).toBe('1');
    await t.publish(topic, [record(2)]);
    await waitFor('the message after the group was recreated', () => got.includes(2));
    await sub.close();
  });

  it('pending entries whose data was deleted are cleaned from the PEL', async () => {
    const topic = `deleted-${randomUUID().slice(0, 6)}`;
    const key = `${prefix}${topic}`;
    const t = make({ claimIdleMs: 100, claimIntervalMs: 50 });
    const [r1, r2] = await t.publish(topic, [record(1), record(2)]);
    // A member that read both and died.
    await cli('XGROUP', 'CREATE', key, 'g', '0');
    await cli('XREADGROUP', 'GROUP', 'g', 'dead', 'COUNT', '10', 'STREAMS', key, '>');
    await cli('XDEL', key, r1?.ok ? r1.id : '');
    const got: string[] = [];
    const sub = await t.subscribe({ group: 'g', topics: [topic], batchSize: 10, pollIntervalMs: 50, startFrom: 'earliest', consumerName: 'live' }, async (batch) => {
      for (const m of batch) {
        got.push(m.id);
        m.ack();
      }
    });
    await waitFor('the surviving entry', () => got.length >= 1);
    await waitFor('an empty PEL', () => got.length >= 1, 2000);
    await sleep(200);
    await sub.close();
    expect(got).toEqual([r2?.ok ? r2.id : '']);
    expect(await cli('XPENDING', key, 'g')).toMatch(/^0/);
  });

  it('idle consumers without pending entries are removed (XGROUP DELCONSUMER); those with pending entries stay', async () => {
    const topic = `hygiene-${randomUUID().slice(0, 6)}`;
    const key = `${prefix}${topic}`;
    const t = make({ consumerIdleTimeoutMs: 200, claimIdleMs: 60_000, claimIntervalMs: 100 });
    await t.publish(topic, [record(1)]);
    await cli('XGROUP', 'CREATE', key, 'g', '$');
    await cli('XGROUP', 'CREATECONSUMER', key, 'g', 'ghost');
    await t.publish(topic, [record(2)]);
    await cli('XREADGROUP', 'GROUP', 'g', 'holder', 'COUNT', '1', 'STREAMS', key, '>');
    await sleep(300);
    const sub = await t.subscribe({ group: 'g', topics: [topic], batchSize: 10, pollIntervalMs: 50, startFrom: 'earliest', consumerName: 'live' }, async (batch) => {
      for (const m of batch) m.ack();
    });
    // Redis creates a consumer on its first successful read.
    await t.publish(topic, [record(3)]);
    await sleep(300);
    await sub.close();
    const consumers = await cli('XINFO', 'CONSUMERS', key, 'g');
    expect(consumers).not.toContain('ghost');
    expect(consumers).toContain('holder');
    expect(consumers).toContain('live');
  });

  it('lag() reports XINFO GROUPS lag and pending', async () => {
    const topic = `lag-${randomUUID().slice(0, 6)}`;
    const key = `${prefix}${topic}`;
    const t = make();
    await t.publish(topic, [record(1), record(2), record(3), record(4), record(5)]);
    expect(await t.lag?.('g', [topic, 'nothing-here'])).toEqual([
      { group: 'g', topic, lag: 5, pending: 0 },
      { group: 'g', topic: 'nothing-here', lag: 0, pending: 0 },
    ]);
    await cli('XGROUP', 'CREATE', key, 'g', '0');
    await cli('XREADGROUP', 'GROUP', 'g', 'c', 'COUNT', '2', 'STREAMS', key, '>');
    expect(await t.lag?.('g', [topic])).toEqual([{ group: 'g', topic, lag: 3, pending: 2 }]);
  });
});

describe('trimming', () => {
  it('trim.maxLen caps the stream (approximately) on publish', async () => {
    const topic = `trim-${randomUUID().slice(0, 6)}`;
    const t = make({ trim: { maxLen: 10, exact: true } });
    for (let i = 0; i < 5; i++) await t.publish(topic, Array.from({ length: 10 }, (_, n) => record(i * 10 + n)));
    expect(Number(await cli('XLEN', `${prefix}${topic}`))).toBe(10);
  });

  it('trim.maxAgeMs drops entries older than the age', async () => {
    const topic = `age-${randomUUID().slice(0, 6)}`;
    const t = make({ trim: { maxAgeMs: 200, exact: true } });
    await t.publish(topic, [record(1), record(2)]);
    await sleep(300);
    await t.publish(topic, [record(3)]);
    expect(Number(await cli('XLEN', `${prefix}${topic}`))).toBe(1);
  });
});
