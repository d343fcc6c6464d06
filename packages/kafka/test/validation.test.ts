import { randomUUID } from 'node:crypto';
import { createBus, DLQ_HEADER, DLQ_ISSUES_HEADER, defineEvents, type IncomingMessage, ValidationError } from '@bus/core';
import * as v from 'valibot';
import { beforeAll, describe, expect, it } from 'vitest';
import { BROKERS, requireBroker, testTransport, waitFor } from './helpers/kafka.js';

const events = defineEvents({
  'order.created': v.object({ orderId: v.string(), items: v.array(v.object({ sku: v.string(), qty: v.pipe(v.number(), v.integer()) })) }),
});

describe('Standard Schema events on Kafka', () => {
  beforeAll(async () => {
    await requireBroker();
  });

  it('publish refuses an invalid payload; a record from a producer without schemas is dead-lettered with VALIDATION and its path', async () => {
    const topic = `bus-kafka-validation-${randomUUID().slice(0, 8)}`;
    const strict = createBus({ events, transports: { kafka: testTransport(BROKERS) } });
    const loose = createBus({ transports: { kafka: testTransport(BROKERS) } });
    const reader = testTransport(BROKERS);
    const handled: string[] = [];
    const dead: IncomingMessage[] = [];
    strict.module({
      name: `validation-${randomUUID().slice(0, 6)}`,
      pollIntervalMs: 100,
      consumers: { c: { topics: [topic], events: ['order.created'] } },
      handler: (ctx) => {
        handled.push(ctx.payload.orderId);
      },
    });
    try {
      // biome-ignore lint/suspicious/noExplicitAny: what an untyped caller could send.
      const error = await strict.publish(topic, 'order.created', { orderId: 'o0', items: [{ sku: 'a', qty: 1.5 }] } as any).catch((e: unknown) => e);
      expect(ValidationError.isInstance(error)).toBe(true);
      expect((error as ValidationError).issues.map((i) => i.path)).toEqual(['items[0].qty']);

      await loose.publish(topic, 'order.created', { orderId: 'o1', items: [{ sku: 'a', qty: 'two' }] });
      await loose.publish(topic, 'order.created', { orderId: 'o2', items: [{ sku: 'a', qty: 2 }] });
      await strict.start();
      const sub = await reader.subscribe(
        { group: `dlq-${randomUUID().slice(0, 6)}`, topics: [`${topic}.dlq`], batchSize: 10, pollIntervalMs: 100, startFrom: 'earliest', consumerName: 'r' },
        async (batch) => {
          for (const m of batch) {
            dead.push(m);
            m.ack();
          }
        },
      );
      await waitFor('the dead letter and the valid message', () => dead.length >= 1 && handled.length >= 1, 60_000);
      await sub.close();
      expect(handled).toEqual(['o2']);
      expect(dead[0]?.headers[DLQ_HEADER.error]).toBe('VALIDATION');
      expect(JSON.parse(dead[0]?.headers[DLQ_ISSUES_HEADER] ?? '[]').map((i: { path: string }) => i.path)).toEqual(['items[0].qty']);
    } finally {
      await strict.close();
      await loose.close();
      await reader.close();
    }
  }, 90_000);
});
