import { randomUUID } from 'node:crypto';
import { type IncomingMessage, type Logger, noopMetrics, type PoolStats, type Transport, type WireRecord } from '@bus/core';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { kafka } from '../src/index.js';
import { BROKERS, delay, requireBroker, testOptions, testTransport, waitFor } from './helpers/kafka.js';

const run = randomUUID().slice(0, 8);
const name = (what: string) => `bus-kafka-${run}-${what}-${randomUUID().slice(0, 6)}`;
const records = (from: number, to: number, key?: (n: number) => string): WireRecord[] =>
  Array.from({ length: to - from }, (_, i) => {
    const n = from + i;
    const r: WireRecord = { value: Buffer.from(String(n)), headers: { n: String(n) } };
    if (key) r.key = key(n);
    return r;
  });
const numberOf = (m: IncomingMessage) => Number(m.headers.n);
const sub = (topic: string, group: string, batchSize: number) => ({ group, topics: [topic], batchSize, pollIntervalMs: 100, startFrom: 'earliest' as const, consumerName: name('m') });

describe('kafka consumer: chunking, settlement, heartbeats, lag', () => {
  const open: Transport[] = [];
  const transport = (extra?: Parameters<typeof testTransport>[1]) => {
    const t = testTransport(BROKERS, extra);
    open.push(t);
    return t;
  };
  beforeAll(async () => {
    await requireBroker();
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((t) => t.close()));
  });
  afterAll(async () => {
    await Promise.all(open.splice(0).map((t) => t.close()));
  });

  it('hands a backlog to the handler in chunks of at most batchSize, and commits it all', async () => {
    const t = transport();
    const topic = name('backlog');
    const published = await t.publish(topic, records(0, 1000));
    expect(published.every((r) => r.ok)).toBe(true);
    const calls: number[] = [];
    const seen = new Set<number>();
    const group = name('g');
    const s = await t.subscribe(sub(topic, group, 25), async (batch) => {
      calls.push(batch.length);
      for (const m of batch) {
        seen.add(numberOf(m));
        m.ack();
      }
    });
    await waitFor('1000 messages', () => seen.size >= 1000, 30_000);
    await s.close();
    expect(Math.max(...calls)).toBeLessThanOrEqual(25);
    // A kafkajs fetch returns hundreds of messages per partition: they were split, not handed at once.
    expect(calls.filter((n) => n === 25).length).toBeGreaterThanOrEqual(30);
    expect(calls.reduce((a, b) => a + b, 0)).toBe(1000);
    const lag = await t.lag?.(group, [topic]);
    expect(lag).toEqual([{ group, topic, lag: 0 }]);
  });

  it('lag counts what a group has not committed, from the low watermark for a new group', async () => {
    const t = transport();
    const topic = name('lag');
    await t.publish(topic, records(0, 12));
    expect(await t.lag?.(name('never-subscribed'), [topic])).toEqual([expect.objectContaining({ lag: 12 })]);
  });

  it('a nack ends the chunk: earlier acks are committed, the nacked message comes back first, later acks are not handled again', async () => {
    const t = transport();
    const topic = name('nack');
    // One key: one partition, one order.
    await t.publish(topic, records(0, 10, () => 'k'));
    const deliveries: { n: number; count: number; id: string }[] = [];
    const s = await t.subscribe(sub(topic, name('g'), 10), async (batch) => {
      for (const m of batch) {
        deliveries.push({ n: numberOf(m), count: m.deliveryCount, id: m.id });
        if (numberOf(m) === 4 && m.deliveryCount === 1) m.nack();
        else if (numberOf(m) === 7 && m.deliveryCount === 1) {
          // left unsettled: redelivered like a nack
        } else m.ack();
      }
    });
    await waitFor('every message settled', () => deliveries.filter((d) => d.count > 1).length >= 2 && deliveries.some((d) => d.n === 9), 20_000);
    await delay(300);
    await s.close();
    // 0..9 once, then 4 again (count 2), then 7 again (count 2); 5, 6, 8, 9 were acked the first time and are skipped.
    expect(deliveries.map((d) => `${d.n}/${d.count}`)).toEqual(['0/1', '1/1', '2/1', '3/1', '4/1', '5/1', '6/1', '7/1', '8/1', '9/1', '4/2', '7/2']);
    expect(deliveries[4]?.id).toBe(deliveries[10]?.id);
    expect(deliveries[4]?.id).toMatch(/^\d+:\d+$/);
  });

  it('a handler longer than the session timeout keeps its membership (heartbeats while it runs)', async () => {
    const t = transport({ consumer: { sessionTimeoutMs: 6000, heartbeatIntervalMs: 500 } });
    const topic = name('slow');
    await t.publish(topic, records(0, 3, () => 'k'));
    const deliveries: number[] = [];
    const group = name('g');
    const s = await t.subscribe(sub(topic, group, 10), async (batch) => {
      for (const m of batch) deliveries.push(m.deliveryCount);
      await delay(9000);
      for (const m of batch) m.ack();
    });
    await waitFor('the slow batch', () => deliveries.length >= 3, 15_000);
    await delay(9500);
    await s.close();
    expect(deliveries).toEqual([1, 1, 1]);
    expect(await t.lag?.(group, [topic])).toEqual([{ group, topic, lag: 0 }]);
  }, 40_000);

  it('partitionsConsumedConcurrently > 1 runs partitions side by side, each in order', async () => {
    const t = transport({ consumer: { partitionsConsumedConcurrently: 3 } });
    const topic = name('parallel');
    // Keys spread over the 3 partitions.
    await t.publish(topic, records(0, 300, (n) => `key-${n % 12}`));
    let inFlight = 0;
    let maxInFlight = 0;
    const perKey = new Map<string, number[]>();
    let total = 0;
    const s = await t.subscribe(sub(topic, name('g'), 10), async (batch) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await delay(20);
      for (const m of batch) {
        const list = perKey.get(m.key ?? '') ?? [];
        list.push(numberOf(m));
        perKey.set(m.key ?? '', list);
        total++;
        m.ack();
      }
      inFlight--;
    });
    await waitFor('300 messages', () => total >= 300, 30_000);
    await s.close();
    expect(maxInFlight).toBeGreaterThan(1);
    for (const [key, list] of perKey) expect(list, key).toEqual([...list].sort((a, b) => a - b));
  });

  it('a publish larger than producer.maxRequestBytes goes out in several ordered requests with per-record offsets', async () => {
    const t = transport({ producer: { maxRequestBytes: 4096 } });
    const topic = name('split');
    const big = records(0, 200, () => 'one-key').map((r) => ({ ...r, value: Buffer.alloc(100, 97) }));
    const results = await t.publish(topic, big);
    expect(results.every((r) => r.ok)).toBe(true);
    const offsets = results.map((r) => (r.ok ? Number(r.id.split(':')[1]) : -1));
    expect(offsets).toEqual(offsets.map((_, i) => (offsets[0] as number) + i));
    // What kcat or any other client sees at those offsets is the same record.
    const client = new Kafka({ brokers: BROKERS, logLevel: logLevel.NOTHING });
    const admin = client.admin();
    await admin.connect();
    const watermarks = await admin.fetchTopicOffsets(topic);
    await admin.disconnect();
    expect(watermarks.reduce((sum, p) => sum + Number(p.high), 0)).toBe(200);
  });

  it('routes kafkajs log lines to the attached logger and reports producer pool stats to metrics', async () => {
    const lines: { level: string; message: string; fields?: Record<string, unknown> }[] = [];
    const logger: Logger = {
      debug: (message, fields) => lines.push({ level: 'debug', message, fields }),
      info: (message, fields) => lines.push({ level: 'info', message, fields }),
      warn: (message, fields) => lines.push({ level: 'warn', message, fields }),
      error: (message, fields) => lines.push({ level: 'error', message, fields }),
      child: () => logger,
    };
    const pools: { labels: { transport: string; pool: string }; stats: PoolStats }[] = [];
    const t = kafka(testOptions(BROKERS, { name: 'kafka-main', logLevel: 'debug' }));
    open.push(t);
    t.attach?.({ logger, metrics: { ...noopMetrics, poolStats: (labels, stats) => pools.push({ labels, stats }) } });
    const topic = name('observed');
    expect((await t.publish(topic, records(0, 3))).every((r) => r.ok)).toBe(true);
    const s = await t.subscribe(sub(topic, name('g'), 10), async (batch) => {
      for (const m of batch) m.ack();
    });
    await s.close();
    expect(lines.some((l) => l.message.startsWith('kafkajs: ') && typeof l.fields?.namespace === 'string')).toBe(true);
    expect(pools.length).toBeGreaterThan(0);
    expect(pools[0]?.labels).toEqual({ transport: 'kafka-main', pool: 'producer' });
    expect(pools.at(-1)?.stats).toMatchObject({ borrowed: 0, max: 10 });
  });

  it('topics: created with the configured partitions; with create: false a missing topic is refused', async () => {
    const creating = transport({ topics: { partitions: 5 } });
    const topic = name('created');
    expect((await creating.publish(topic, records(0, 1)))[0]?.ok).toBe(true);
    const admin = new Kafka({ brokers: BROKERS, logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
    await admin.disconnect();
    expect(topics[0]?.partitions).toHaveLength(5);

    const strict = transport({ topics: { create: false } });
    const missing = name('missing');
    const [result] = await strict.publish(missing, records(0, 1));
    expect(result?.ok).toBe(false);
    if (result && !result.ok) {
      expect(result.error.code).toBe('CONFIG');
      expect(result.error.message).toContain(`topic "${missing}" does not exist`);
    }
    await expect(strict.subscribe(sub(missing, name('g'), 10), async () => {})).rejects.toMatchObject({ code: 'CONFIG' });
    // An existing topic is fine.
    expect((await strict.publish(topic, records(1, 2)))[0]?.ok).toBe(true);

    // A topic the broker refuses to create: a non-retryable CONFIG error naming Kafka's reason.
    const refused = transport({ topics: { replicationFactor: 50 } });
    const [bad] = await refused.publish(name('rf50'), records(0, 1));
    expect(bad?.ok).toBe(false);
    if (bad && !bad.ok) {
      expect(bad.error).toMatchObject({ code: 'CONFIG', retryable: false });
      expect(bad.error.message).toMatch(/could not create topic ".*": Topic creation errors: Replication-factor is invalid/);
    }
  });
});
