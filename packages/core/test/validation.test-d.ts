import * as v from 'valibot';
import { describe, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { createBus, defineEvents, defineModule, type InferEvents, memoryTransport } from '../src/index.js';

const liveEvents = defineEvents({
  'anchor.income': z.object({ anchorId: z.string(), amount: z.number() }),
  'live.duration': v.object({ anchorId: v.string(), minutes: v.number() }),
});
type LiveEvents = InferEvents<typeof liveEvents>;

const bus = createBus({ events: liveEvents, transports: { memory: memoryTransport() } });

describe('schemas give the event map (no second declaration)', () => {
  it('InferEvents is the schemas output types', () => {
    expectTypeOf<LiveEvents>().toEqualTypeOf<{
      'anchor.income': { anchorId: string; amount: number };
      'live.duration': { anchorId: string; minutes: number };
    }>();
  });

  it('publish is typed from the schemas', () => {
    void bus.publish('live', 'anchor.income', { anchorId: 'a1', amount: 30 });
    // @ts-expect-error unknown event name
    void bus.publish('live', 'anchor.incme', { anchorId: 'a1', amount: 30 });
    // @ts-expect-error wrong payload field type
    void bus.publish('live', 'live.duration', { anchorId: 'a1', minutes: '30' });
    void bus.publishBatch('live', [{ event: 'live.duration', payload: { anchorId: 'a', minutes: 1 } }]);
    // @ts-expect-error payload of another event
    void bus.publishBatch('live', [{ event: 'live.duration', payload: { anchorId: 'a', amount: 1 } }]);
  });

  it('handlers narrow the inferred payloads', () => {
    bus.module({
      name: 'tasks',
      consumers: { daily: { topics: ['live'], events: ['anchor.income', 'live.duration'] } },
      handler: (ctx) => {
        if (ctx.event === 'anchor.income') expectTypeOf(ctx.payload).toEqualTypeOf<{ anchorId: string; amount: number }>();
        else expectTypeOf(ctx.payload).toEqualTypeOf<{ anchorId: string; minutes: number }>();
      },
    });
    defineModule<LiveEvents, 'live.duration'>({
      name: 'billing',
      consumers: { ledger: { topics: ['live'], events: ['live.duration'] } },
      handler: (ctx) => {
        expectTypeOf(ctx.payload.minutes).toEqualTypeOf<number>();
      },
    });
  });

  it('an explicit event map still works without schemas', () => {
    const plain = createBus<{ 'x.y': { n: number } }>({ transports: { memory: memoryTransport() } });
    void plain.publish('t', 'x.y', { n: 1 });
    // @ts-expect-error wrong payload
    void plain.publish('t', 'x.y', { n: '1' });
  });
});
