import * as v from 'valibot';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  ConfigError,
  createBus,
  DLQ_HEADER,
  DLQ_ISSUES_HEADER,
  defineEvents,
  type IncomingMessage,
  memoryTransport,
  type Transport,
  ValidationError,
} from '../src/index.js';

const until = async (what: string, predicate: () => boolean, ms = 5000) => {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
};

async function deadLetters(t: Transport, topic: string, count: number): Promise<IncomingMessage[]> {
  const dead: IncomingMessage[] = [];
  const sub = await t.subscribe({ group: 'reader', topics: [`${topic}.dlq`], batchSize: 10, pollIntervalMs: 10, startFrom: 'earliest', consumerName: 'r' }, async (batch) => {
    for (const m of batch) {
      dead.push(m);
      m.ack();
    }
  });
  await until('the dead letters', () => dead.length >= count);
  await sub.close();
  return dead;
}

const libraries = {
  zod: defineEvents({
    'order.placed': z.object({ orderId: z.string(), items: z.array(z.object({ sku: z.string(), price: z.number().positive() })) }),
    'order.cancelled': z.object({ orderId: z.string() }),
  }),
  valibot: defineEvents({
    'order.placed': v.object({ orderId: v.string(), items: v.array(v.object({ sku: v.string(), price: v.pipe(v.number(), v.minValue(0.01)) })) }),
    'order.cancelled': v.object({ orderId: v.string() }),
  }),
};

describe.each(Object.entries(libraries))('Standard Schema events with %s', (_name, events) => {
  it('publish refuses an invalid payload with a ValidationError naming the event and the field path', async () => {
    const t = memoryTransport();
    const bus = createBus({ events, transports: { t } });
    const bad = { orderId: 'o1', items: [{ sku: 'a', price: 1 }, { sku: 'b', price: 'free' }] };
    // biome-ignore lint/suspicious/noExplicitAny: a payload from an untyped caller.
    const error = await bus.publish('orders', 'order.placed', bad as any).catch((e: unknown) => e);
    expect(ValidationError.isInstance(error)).toBe(true);
    const ve = error as ValidationError;
    expect(ve.code).toBe('VALIDATION');
    expect(ve.event).toBe('order.placed');
    expect(ve.issues.map((i) => i.path)).toEqual(['items[1].price']);
    expect(ve.message).toMatch(/^\[bus\] invalid payload of "order\.placed": items\[1\]\.price: /);
    // Nothing reached the broker.
    expect((await t.lag!('nobody', ['orders']))[0]?.lag ?? 0).toBe(0);
    await bus.publish('orders', 'order.placed', { orderId: 'o1', items: [{ sku: 'a', price: 1 }] });
    expect((await t.lag!('nobody', ['orders']))[0]?.lag).toBe(1);
    await bus.close();
  });

  it('publishBatch refuses the whole batch when one entry is invalid, naming its index', async () => {
    const t = memoryTransport();
    const bus = createBus({ events, transports: { t } });
    const error = await bus
      .publishBatch('orders', [
        { event: 'order.cancelled', payload: { orderId: 'o1' } },
        // biome-ignore lint/suspicious/noExplicitAny: a payload from an untyped caller.
        { event: 'order.cancelled', payload: { orderId: 42 } as any },
      ])
      .catch((e: unknown) => e);
    expect(ValidationError.isInstance(error)).toBe(true);
    expect((error as ValidationError).message).toMatch(/batch entry 1.*orderId/);
    expect((error as ValidationError).issues[0]?.path).toBe('orderId');
    expect((await t.lag!('nobody', ['orders']))[0]?.lag ?? 0).toBe(0);
    await bus.close();
  });

  it('consumption validates before the handler and dead-letters an invalid message with VALIDATION and the issues', async () => {
    const t = memoryTransport();
    // A producer that does not validate (another service, kcat, redis-cli…).
    const loose = createBus({ transports: { t } });
    const bus = createBus({ events, transports: { t } });
    const handled: unknown[] = [];
    bus.module({
      name: 'billing',
      consumers: { ledger: { topics: ['orders'], events: ['order.placed'] } },
      retry: { attempts: 3, baseDelayMs: 1 },
      handler: (ctx) => {
        handled.push(ctx.payload);
      },
    });
    await bus.start();
    await loose.publish('orders', 'order.placed', { orderId: 'bad', items: [{ sku: 'x', price: -1 }] });
    await loose.publish('orders', 'order.placed', { orderId: 'good', items: [{ sku: 'x', price: 2 }] });
    const [dead] = await deadLetters(t, 'orders', 1);
    await until('the valid message', () => handled.length === 1);
    expect(handled).toEqual([{ orderId: 'good', items: [{ sku: 'x', price: 2 }] }]);
    expect(dead?.headers[DLQ_HEADER.error]).toBe('VALIDATION');
    // Never retried: one attempt.
    expect(dead?.headers[DLQ_HEADER.attempts]).toBe('1');
    expect(dead?.headers[DLQ_HEADER.reason]).toMatch(/"order\.placed": items\[0\]\.price/);
    const issues = JSON.parse(dead?.headers[DLQ_ISSUES_HEADER] ?? '[]') as { path: string; message: string }[];
    expect(issues.map((i) => i.path)).toEqual(['items[0].price']);
    expect(issues[0]?.message.length).toBeGreaterThan(0);
    await bus.close();
    await loose.close();
  });
});

describe('events option', () => {
  it('the handler receives the schema output (defaults applied)', async () => {
    const events = defineEvents({ 'ping.sent': z.object({ n: z.number(), note: z.string().default('none') }) });
    const t = memoryTransport();
    const bus = createBus({ events, transports: { t } });
    const got: unknown[] = [];
    bus.module({ name: 'm', consumers: { c: { topics: ['p'], events: ['ping.sent'] } }, handler: (ctx) => void got.push(ctx.payload) });
    await bus.start();
    await bus.publish('p', 'ping.sent', { n: 1, note: 'x' });
    // biome-ignore lint/suspicious/noExplicitAny: an older producer without the field.
    await createBus({ transports: { t } }).publish('p', 'ping.sent', { n: 2 } as any);
    await until('both', () => got.length === 2);
    expect(got).toEqual([
      { n: 1, note: 'x' },
      { n: 2, note: 'none' },
    ]);
    await bus.close();
  });

  it('async schemas are awaited', async () => {
    const events = defineEvents({ 'user.signed': z.object({ name: z.string().refine(async (s) => s !== 'root', 'reserved name') }) });
    const bus = createBus({ events, transports: { t: memoryTransport() } });
    const error = await bus.publish('u', 'user.signed', { name: 'root' }).catch((e: unknown) => e);
    expect((error as ValidationError).issues).toEqual([{ path: 'name', message: 'reserved name' }]);
    await expect(bus.publish('u', 'user.signed', { name: 'ann' })).resolves.toMatchObject({ id: expect.any(String) });
    await bus.close();
  });

  it('is checked at construction', () => {
    expect(() => defineEvents({ a: { parse: () => 1 } as never })).toThrow(/"a" is not a Standard Schema/);
    expect(() => createBus({ transports: { t: memoryTransport() }, events: { a: z.string() } as never })).toThrow(ConfigError);
    expect(() => createBus({ transports: { t: memoryTransport() }, events: { a: z.string() } as never })).toThrow(/events must be made by defineEvents/);
  });
});
