import { randomUUID } from 'node:crypto';
import { createBus, DLQ_HEADER, HEADER, type HandlerContext, uuidv7 } from '@bus/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BROKERS, PROTOCOLS, requireBroker, testTransport, waitFor } from './helpers/kafka.js';
import { headersOf, type KcatRecord, kcat, kcatRead } from '../../kafka/test/helpers/kcat.js';

type Events = { 'order.placed': { orderId: string; amount: number }; 'order.shipped': { orderId: string } };
const run = randomUUID().slice(0, 8);

describe('kafka-platformatic: interop with kcat (librdkafka)', () => {
  beforeAll(async () => {
    await requireBroker();
    await kcat(['-L', '-m', '5']);
  });
  const closers: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const close of closers) await close();
  });

  it.each(PROTOCOLS)('consumes what kcat -P produces in our envelope; a garbage value lands in <topic>.dlq with the reason (groupProtocol %s)', async (protocol) => {
    const topic = `bus-kplat-${run}-kcat-in-${protocol}`;
    const bus = createBus<Events>({ transports: { kafka: testTransport(BROKERS, protocol) } });
    closers.push(() => bus.close());
    const handled: HandlerContext<Events, 'order.placed'>[] = [];
    bus.module({
      name: 'interop',
      pollIntervalMs: 100,
      consumers: { orders: { topics: [topic], events: ['order.placed'] } },
      handler: (ctx) => {
        handled.push(ctx as HandlerContext<Events, 'order.placed'>);
      },
    });
    await bus.start();

    const sent: { id: string; time: string; orderId: string }[] = [];
    for (const orderId of ['o1', 'o2', 'o3']) {
      const id = uuidv7();
      const time = new Date().toISOString();
      sent.push({ id, time, orderId });
      // biome-ignore format: one kcat flag per line
      await kcat([
        '-P', '-t', topic, '-k', orderId,
        '-H', `ce_id=${id}`, '-H', 'ce_type=order.placed', '-H', `ce_time=${time}`, '-H', 'ce_specversion=1.0',
        '-H', 'content-type=application/json', '-H', 'x-tenant=acme',
      ], `${JSON.stringify({ orderId, amount: 30 })}\n`);
    }
    const garbageId = uuidv7();
    // biome-ignore format: one kcat flag per line
    await kcat([
      '-P', '-t', topic, '-k', 'bad',
      '-H', `ce_id=${garbageId}`, '-H', 'ce_type=order.placed', '-H', `ce_time=${new Date().toISOString()}`, '-H', 'ce_specversion=1.0',
      '-H', 'content-type=application/json',
    ], '{not json\n');
    await kcat(['-P', '-t', topic], 'no envelope at all\n');
    // An empty event name is dead-lettered, never acknowledged as "not subscribed" and dropped.
    const emptyEventId = uuidv7();
    // biome-ignore format: one kcat flag per line
    await kcat([
      '-P', '-t', topic, '-k', 'empty',
      '-H', `ce_id=${emptyEventId}`, '-H', 'ce_type=', '-H', `ce_time=${new Date().toISOString()}`, '-H', 'ce_specversion=1.0',
    ], '{"orderId":"o4","amount":1}\n');

    await waitFor('3 orders handled', () => handled.length >= 3, 30_000);
    let dead: KcatRecord[] = [];
    for (let i = 0; i < 60 && dead.length < 3; i++) {
      dead = await kcatRead(`${topic}.dlq`).catch(() => []);
      if (dead.length < 3) await new Promise((r) => setTimeout(r, 500));
    }
    await bus.close();

    expect(handled.map((h) => h.payload.orderId).sort()).toEqual(['o1', 'o2', 'o3']);
    for (const h of handled) {
      const s = sent.find((x) => x.orderId === h.payload.orderId);
      expect(h.event).toBe('order.placed');
      expect(h.payload).toEqual({ orderId: s?.orderId, amount: 30 });
      expect(h.message.id).toBe(s?.id);
      expect(h.message.key).toBe(s?.orderId);
      expect(h.message.publishedAt).toBe(Date.parse(s?.time ?? ''));
      expect(h.message.headers['x-tenant']).toBe('acme');
      expect(h.message.position).toMatch(/^\d+:\d+$/);
    }
    expect(dead).toHaveLength(3);
    const byReason = dead.map((r) => ({ r, h: headersOf(r) }));
    const badJson = byReason.find(({ h }) => h[HEADER.id] === garbageId);
    expect(badJson?.r.payload).toBe('{not json');
    expect(badJson?.r.key).toBe('bad');
    expect(badJson?.h[DLQ_HEADER.reason]).toContain('not valid JSON');
    expect(badJson?.h[DLQ_HEADER.error]).toBe('DECODE');
    expect(badJson?.h[DLQ_HEADER.topic]).toBe(topic);
    expect(badJson?.h[DLQ_HEADER.group]).toBe('interop-orders');
    const noEnvelope = byReason.find(({ h }) => h[HEADER.id] === undefined);
    expect(noEnvelope?.r.payload).toBe('no envelope at all');
    expect(noEnvelope?.h[DLQ_HEADER.reason]).toContain('missing header "ce_id"');
    const emptyEvent = byReason.find(({ h }) => h[HEADER.id] === emptyEventId);
    expect(emptyEvent?.r.payload).toBe('{"orderId":"o4","amount":1}');
    expect(emptyEvent?.h[DLQ_HEADER.reason]).toContain('"ce_type"');
    expect(emptyEvent?.h[DLQ_HEADER.error]).toBe('DECODE');
  }, 90_000);

  it.each(['none', 'gzip', 'zstd'] as const)('kcat -C reads what the bus produced (compression %s): JSON value, key, headers', async (compression) => {
    const topic = `bus-kplat-${run}-kcat-out-${compression}`;
    const bus = createBus<Events>({ transports: { kafka: testTransport(BROKERS, 'classic', { producer: { compression } }) }, source: 'billing' });
    closers.push(() => bus.close());
    const receipt = await bus.publish(topic, 'order.shipped', { orderId: 'o9' }, { key: 'o9', headers: { 'x-user': 'u1', traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' } });
    const batch = await bus.publishBatch(topic, [1, 2, 3].map((n) => ({ event: 'order.shipped' as const, payload: { orderId: `b${n}` }, key: 'batch' })));
    expect(batch.every((r) => r.ok)).toBe(true);
    await bus.close();

    const got = await kcatRead(topic);
    expect(got).toHaveLength(4);
    const single = got.find((r) => r.key === 'o9') as KcatRecord;
    expect(`${single.partition}:${single.offset}`).toBe(receipt.position);
    expect(JSON.parse(single.payload ?? '')).toEqual({ orderId: 'o9' });
    expect(headersOf(single)).toEqual({
      'x-user': 'u1',
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      ce_specversion: '1.0',
      ce_id: receipt.id,
      ce_type: 'order.shipped',
      ce_time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      ce_source: 'billing',
      'content-type': 'application/json',
    });
    const batchRecords = got.filter((r) => r.key === 'batch').sort((a, b) => a.offset - b.offset);
    expect(batchRecords.map((r) => JSON.parse(r.payload ?? '').orderId)).toEqual(['b1', 'b2', 'b3']);
    expect(new Set(batchRecords.map((r) => r.partition)).size).toBe(1);
    expect(batch.map((r) => (r.ok ? r.position : ''))).toEqual(batchRecords.map((r) => `${r.partition}:${r.offset}`));
  }, 60_000);
});
