import { describe, expectTypeOf, it } from 'vitest';
import { createBus, defineModule, type HandlerContext, memoryTransport } from '../src/index.js';

type LiveEvents = {
  'anchor.income': { anchorId: string; amount: number };
  'live.duration': { anchorId: string; minutes: number };
};

const bus = createBus<LiveEvents>({ transports: { memory: memoryTransport() } });

describe('one event map types publish and handlers', () => {
  it('publish accepts declared events with their payloads only', () => {
    void bus.publish('live', 'anchor.income', { anchorId: 'a1', amount: 30 });
    // @ts-expect-error unknown event name
    void bus.publish('live', 'anchor.incme', { anchorId: 'a1', amount: 30 });
    // @ts-expect-error payload of another event
    void bus.publish('live', 'anchor.income', { anchorId: 'a1', minutes: 30 });
    // @ts-expect-error wrong payload field type
    void bus.publish('live', 'live.duration', { anchorId: 'a1', minutes: '30' });
  });

  it('publishBatch entries are a union discriminated on event', () => {
    void bus.publishBatch('live', [
      { event: 'anchor.income', payload: { anchorId: 'a', amount: 1 } },
      { event: 'live.duration', payload: { anchorId: 'a', minutes: 1 }, key: 'a' },
    ]);
    // @ts-expect-error payload does not match its event
    void bus.publishBatch('live', [{ event: 'live.duration', payload: { anchorId: 'a', amount: 1 } }]);
  });

  it('handlers narrow the payload by event', () => {
    bus.module({
      name: 'tasks',
      consumers: { daily: { topics: ['live'], events: ['anchor.income', 'live.duration'] } },
      handler: (ctx) => {
        expectTypeOf(ctx.consumer).toEqualTypeOf<string>();
        if (ctx.event === 'anchor.income') expectTypeOf(ctx.payload).toEqualTypeOf<{ anchorId: string; amount: number }>();
        else expectTypeOf(ctx.payload).toEqualTypeOf<{ anchorId: string; minutes: number }>();
      },
    });
  });

  it('a module subscribed to some events only sees those', () => {
    defineModule<LiveEvents, 'anchor.income'>({
      name: 'billing',
      consumers: { ledger: { topics: ['live'], events: ['anchor.income'] } },
      handler: (ctx) => {
        expectTypeOf(ctx.event).toEqualTypeOf<'anchor.income'>();
        expectTypeOf(ctx.payload.amount).toEqualTypeOf<number>();
      },
    });
    defineModule<LiveEvents, 'anchor.income'>({
      name: 'billing',
      // @ts-expect-error event outside the module's subscription
      consumers: { ledger: { topics: ['live'], events: ['live.duration'] } },
      handler: () => {},
    });
  });

  it('consumer declarations reject undeclared event names', () => {
    bus.module({
      name: 'x',
      // @ts-expect-error not an event of the map
      consumers: { c: { topics: ['live'], events: ['anchor.outcome'] } },
      handler: () => {},
    });
  });

  it('HandlerContext is a discriminated union', () => {
    expectTypeOf<HandlerContext<LiveEvents>['event']>().toEqualTypeOf<'anchor.income' | 'live.duration'>();
  });
});
