import { randomUUID } from 'node:crypto';
import { kafka } from '@bus/kafka';
import { createBus, type HandlerContext, type Transport } from '@bus/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BROKERS, PROTOCOLS, requireBroker, testTransport, waitFor } from './helpers/kafka.js';

type Events = { 'order.placed': { orderId: string; amount: number } };
const run = randomUUID().slice(0, 8);

/** The kafkajs driver with the same quick test timings. */
const kafkajsTransport = (): Transport =>
  kafka({
    brokers: BROKERS,
    connectionTimeoutMs: 2000,
    retry: { retries: 5, initialRetryTimeMs: 100, maxRetryTimeMs: 2000 },
    consumer: { sessionTimeoutMs: 6000, heartbeatIntervalMs: 500, rebalanceTimeoutMs: 15_000, nackDelayMs: 50, restartDelayMs: 300 },
  });

/** Publishes 20 keyed orders through `from`, consumes them through `to`; returns what was handled and the receipts. */
async function roundTrip(topic: string, from: Transport, to: Transport) {
  const producer = createBus<Events>({ transports: { kafka: from }, source: 'interop' });
  const consumer = createBus<Events>({ transports: { kafka: to } });
  const handled: HandlerContext<Events, 'order.placed'>[] = [];
  consumer.module({
    name: `interop-${run}`,
    pollIntervalMs: 100,
    startFrom: 'earliest',
    consumers: { orders: { topics: [topic], events: ['order.placed'] } },
    handler: (ctx) => {
      handled.push(ctx as HandlerContext<Events, 'order.placed'>);
    },
  });
  try {
    const receipts = [];
    for (let i = 0; i < 20; i++) {
      receipts.push(await producer.publish(topic, 'order.placed', { orderId: `o${i}`, amount: i }, { key: `k${i % 4}`, headers: { 'x-tenant': 'acme' } }));
    }
    await consumer.start();
    await waitFor('20 orders handled', () => handled.length >= 20, 30_000);
    return { handled, receipts };
  } finally {
    await consumer.close();
    await producer.close();
  }
}

function expectSame({ handled, receipts }: Awaited<ReturnType<typeof roundTrip>>) {
  expect(handled).toHaveLength(20);
  for (const h of handled) {
    const i = Number(h.payload.orderId.slice(1));
    const receipt = receipts[i];
    expect(h.event).toBe('order.placed');
    expect(h.payload).toEqual({ orderId: `o${i}`, amount: i });
    expect(h.message.id).toBe(receipt?.id);
    expect(h.message.key).toBe(`k${i % 4}`);
    expect(h.message.position).toBe(receipt?.position);
    expect(h.message.source).toBe('interop');
    expect(h.message.headers['x-tenant']).toBe('acme');
  }
}

describe('the two Kafka drivers read what the other wrote (same envelope on the wire)', () => {
  beforeAll(async () => {
    await requireBroker();
  });
  const closers: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const close of closers) await close();
  });

  it.each(PROTOCOLS)('@bus/kafka (kafkajs) produces, @bus/kafka-platformatic consumes (groupProtocol %s)', async (protocol) => {
    expectSame(await roundTrip(`bus-kplat-${run}-from-kafkajs-${protocol}`, kafkajsTransport(), testTransport(BROKERS, protocol)));
  }, 60_000);

  it('@bus/kafka-platformatic produces, @bus/kafka (kafkajs) consumes', async () => {
    expectSame(await roundTrip(`bus-kplat-${run}-to-kafkajs`, testTransport(), kafkajsTransport()));
  }, 60_000);

  it('a key lands on the same partition whichever driver published it (the Java client partitioner)', async () => {
    const topic = `bus-kplat-${run}-partitions`;
    const a = createBus<Events>({ transports: { kafka: kafkajsTransport() } });
    const b = createBus<Events>({ transports: { kafka: testTransport() } });
    closers.push(() => a.close(), () => b.close());
    for (let i = 0; i < 12; i++) {
      const key = `key-${i}`;
      const viaKafkajs = await a.publish(topic, 'order.placed', { orderId: key, amount: 1 }, { key });
      const viaPlatformatic = await b.publish(topic, 'order.placed', { orderId: key, amount: 1 }, { key });
      expect(viaPlatformatic.position.split(':')[0]).toBe(viaKafkajs.position.split(':')[0]);
    }
  }, 60_000);
});
