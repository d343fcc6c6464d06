import { describe, expect, it } from 'vitest';
import {
  createBus,
  DLQ_HEADER,
  type IncomingMessage,
  type JobLabels,
  type Metrics,
  memoryTransport,
  type Middleware,
  noopMetrics,
  type Transport,
  ValidationError,
} from '../src/index.js';

type Events = { 'a.happened': { n: number }; 'b.happened': { n: number } };

const until = async (what: string, predicate: () => boolean, ms = 5000) => {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
};

/** Reads `count` dead letters of `topic` with a group of its own. */
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

function recordingMetrics() {
  const calls: string[] = [];
  const label = (l: JobLabels) => `${l.module}/${l.consumer}/${l.event}/${l.transport}/${l.topic}`;
  const metrics: Metrics = {
    ...noopMetrics,
    published: (l, count, ok) => calls.push(`published ${l.topic} ${l.event} ${count} ${ok}`),
    jobStarted: (l, delay) => calls.push(`started ${label(l)} ${delay >= 0 && delay < 5}`),
    jobFinished: (l, cost, outcome) => calls.push(`finished ${label(l)} ${outcome} ${cost >= 0}`),
    retried: (l) => calls.push(`retried ${label(l)}`),
    deadLettered: (l, reason) => calls.push(`dead ${label(l)} ${reason}`),
    skipped: (l) => calls.push(`skipped ${label(l)}`),
    lag: (l, lag) => calls.push(`lag ${l.group} ${l.topic} ${lag}`),
  };
  return { calls, metrics };
}

describe('routing engine', () => {
  it('calls the metrics hooks for publish, skip, retry, success and dead letter', async () => {
    const { calls, metrics } = recordingMetrics();
    const bus = createBus<Events>({ transports: { mem: memoryTransport() }, metrics });
    bus.module({
      name: 'm',
      pollIntervalMs: 10,
      lagIntervalMs: 0,
      retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 1 },
      consumers: { c: { topics: ['t'], events: ['a.happened'] } },
      handler: (ctx) => {
        if (ctx.payload.n === 2) throw new TypeError('bad n');
      },
    });
    await bus.start();
    await bus.publishBatch('t', [
      { event: 'a.happened', payload: { n: 1 } },
      { event: 'b.happened', payload: { n: 0 } },
      { event: 'a.happened', payload: { n: 2 } },
    ]);
    await until('the dead letter', () => calls.some((c) => c.startsWith('dead')));
    await bus.close();
    const job = 'm/c/a.happened/memory/t';
    // Publish is counted once the broker answered, which may be after the consumer started.
    expect(calls.filter((c) => c.startsWith('published'))).toEqual([
      'published t a.happened 1 true',
      'published t b.happened 1 true',
      'published t a.happened 1 true',
    ]);
    expect(calls.filter((c) => !c.startsWith('published'))).toEqual([
      `started ${job} true`,
      `finished ${job} success true`,
      'skipped m/c/b.happened/memory/t',
      `started ${job} true`,
      `finished ${job} retry true`,
      `retried ${job}`,
      `finished ${job} dead_letter true`,
      `dead ${job} TypeError`,
    ]);
  });

  it('a user policy between the built-in ones gets promises from next, also when the handler is synchronous', async () => {
    const seen: string[] = [];
    const t = memoryTransport();
    const bus = createBus<Events>({ transports: { mem: t } });
    bus.module({
      name: 'm',
      pollIntervalMs: 10,
      lagIntervalMs: 0,
      retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 1 },
      // Inside the retry policy, so it sees each attempt; the built-in ones around it run synchronously.
      policies: (d) => [
        d.deadLetter,
        d.maxDeliveries,
        d.tracing,
        d.retry,
        (next) => (delivery) => {
          const result = next(delivery);
          seen.push(`${(delivery.envelope.payload as { n: number }).n}:${delivery.attempt}:${result instanceof Promise}`);
          return result;
        },
        d.metrics,
      ],
      consumers: { c: { topics: ['t'], events: ['a.happened'] } },
      handler: (ctx) => {
        if (ctx.payload.n === 2) throw new TypeError('bad n');
      },
    });
    await bus.start();
    await bus.publish('t', 'a.happened', { n: 1 });
    await bus.publish('t', 'a.happened', { n: 2 });
    const dead = await deadLetters(t, 't', 1);
    await until('both attempts of n=2', () => seen.length >= 3);
    await bus.close();
    expect(seen).toEqual(['1:1:true', '2:1:true', '2:2:true']);
    expect(dead.map((m) => m.headers[DLQ_HEADER.attempts])).toEqual(['2']);
  });

  it('runs middleware outermost first, inside the retry loop', async () => {
    const order: string[] = [];
    const tag =
      (name: string): Middleware<Events> =>
      (next) =>
      async (ctx) => {
        order.push(`${name}>${ctx.message.attempt}`);
        await next(ctx);
        order.push(`<${name}`);
      };
    const bus = createBus<Events>({ transports: { mem: memoryTransport() } });
    bus.module({
      name: 'm',
      pollIntervalMs: 10,
      retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 1 },
      middleware: [tag('outer'), tag('inner')],
      consumers: { c: { topics: ['t'], events: ['a.happened'] } },
      handler: (ctx) => {
        order.push('handler');
        if (ctx.message.attempt === 1) throw new Error('once');
      },
    });
    await bus.start();
    await bus.publish('t', 'a.happened', { n: 1 });
    await until('the second attempt', () => order.includes('<outer'));
    await bus.close();
    expect(order).toEqual(['outer>1', 'inner>1', 'handler', 'outer>2', 'inner>2', 'handler', '<inner', '<outer']);
  });

  it('a non-retryable error goes to the dead letter after one attempt', async () => {
    const t = memoryTransport();
    const bus = createBus<Events>({ transports: { mem: t } });
    let calls = 0;
    bus.module({
      name: 'm',
      pollIntervalMs: 10,
      consumers: { c: { topics: ['t'], events: ['a.happened'] } },
      handler: () => {
        calls++;
        throw new ValidationError('n must be positive');
      },
    });
    await bus.start();
    await bus.publish('t', 'a.happened', { n: -1 });
    const dead = await deadLetters(t, 't', 1);
    await bus.close();
    expect(calls).toBe(1);
    expect(dead[0]?.headers[DLQ_HEADER.error]).toBe('VALIDATION');
    expect(dead[0]?.headers[DLQ_HEADER.attempts]).toBe('1');
  });

  it('a message delivered more than maxDeliveries times is dead-lettered without running (crash loop)', async () => {
    const inner = memoryTransport();
    // A broker that reports the message as delivered 6 times, as after 5 crashed consumers.
    const crashed: Transport = Object.create(inner, {
      subscribe: {
        value: (options: Parameters<Transport['subscribe']>[0], handler: Parameters<Transport['subscribe']>[1]) =>
          inner.subscribe(options, (batch) => handler(options.group === 'm-c' ? batch.map((m) => Object.assign(m, { deliveryCount: 6 })) : batch)),
      },
    });
    const bus = createBus<Events>({ transports: { mem: crashed } });
    let ran = false;
    bus.module({
      name: 'm',
      pollIntervalMs: 10,
      maxDeliveries: 5,
      consumers: { c: { topics: ['t'], events: ['a.happened'] } },
      handler: () => {
        ran = true;
      },
    });
    await bus.start();
    await bus.publish('t', 'a.happened', { n: 1 });
    const dead = await deadLetters(inner, 't', 1);
    await bus.close();
    expect(ran).toBe(false);
    expect(dead[0]?.headers[DLQ_HEADER.reason]).toMatch(/delivered 6 times without being settled/);
  });

  it('reports consumer lag to metrics every lagIntervalMs', async () => {
    const { calls, metrics } = recordingMetrics();
    const bus = createBus<Events>({ transports: { mem: memoryTransport() }, metrics });
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    bus.module({
      name: 'm',
      pollIntervalMs: 10,
      batchSize: 1,
      lagIntervalMs: 20,
      consumers: { c: { topics: ['t'], events: ['a.happened'] } },
      handler: () => gate,
    });
    await bus.publishBatch('t', Array.from({ length: 5 }, (_, n) => ({ event: 'a.happened' as const, payload: { n } })));
    await bus.start();
    await until('a lag of 4 behind the blocked handler', () => calls.includes('lag m-c t 4'));
    release();
    await until('lag 0', () => calls.includes('lag m-c t 0'));
    await bus.close();
  });

  it('close() aborts a back-off: the message is nacked, not dead-lettered, and close does not wait for the delay', async () => {
    const t = memoryTransport();
    const bus = createBus<Events>({ transports: { mem: t } });
    let calls = 0;
    bus.module({
      name: 'm',
      pollIntervalMs: 10,
      retry: { attempts: 5, baseDelayMs: 60_000, maxDelayMs: 60_000 },
      consumers: { c: { topics: ['t'], events: ['a.happened'] } },
      handler: () => {
        calls++;
        throw new Error('down');
      },
    });
    await bus.start();
    await bus.publish('t', 'a.happened', { n: 1 });
    await until('the first attempt', () => calls === 1);
    const started = Date.now();
    await bus.close();
    expect(Date.now() - started).toBeLessThan(5000);
    const [lag] = await t.lag!('m-c', ['t']);
    expect(lag).toEqual({ group: 'm-c', topic: 't', lag: 1, pending: 0 });
    const [dlq] = await t.lag!('nobody', ['t.dlq']);
    expect(dlq?.lag).toBe(0);
  });
});

describe('publishing through a transport that throws', () => {
  // A custom transport may break its contract (reject instead of per-record results, or throw before
  // returning a promise): every entry gets a typed PublishError naming the transport, counted as failed.
  it.each([
    ['rejects', async () => Promise.reject(new Error('socket exploded'))],
    ['throws synchronously', () => {
      throw new Error('socket exploded');
    }],
    ['returns too few results', async () => []],
  ])('publishBatch when the transport %s: each entry fails with a PublishError, nothing is thrown', async (_how, publish) => {
    const inner = memoryTransport();
    const broken: Transport = { ...inner, name: 'broken', publish: publish as Transport['publish'] };
    const { calls, metrics } = recordingMetrics();
    const bus = createBus<Events>({ transports: { broken }, metrics });
    const results = await bus.publishBatch('t', [
      { event: 'a.happened', payload: { n: 1 } },
      { event: 'a.happened', payload: { n: 2 } },
    ]);
    expect(results).toHaveLength(2);
    for (const r of results) {
      expect(r.ok).toBe(false);
      if (!r.ok) {
        expect(r.error.name).toBe('PublishError');
        expect(r.error.message).toMatch(/broken|no result/);
      }
    }
    expect(calls).toEqual(['published t a.happened 2 false']);
    await expect(bus.publish('t', 'a.happened', { n: 3 })).rejects.toMatchObject({ name: 'PublishError' });
    await bus.close();
  });
});
