import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import { createBus } from '../bus.js';
import { HEADER, jsonCodec } from '../codec.js';
import type { WireRecord } from '../envelope.js';
import { BusError } from '../errors.js';
import type { HandlerContext } from '../events.js';
import { DLQ_HEADER } from '../router.js';
import type { IncomingMessage, SubscribeOptions, Transport, TransportCapabilities } from '../transport.js';

/** The test functions of your runner (vitest, jest, mocha…): `it(name, fn, timeoutMs)`. */
export interface TestApi {
  describe(name: string, fn: () => void): void;
  it(name: string, fn: () => Promise<void>, timeoutMs?: number): void;
}

export interface ConformanceOptions {
  /**
   * Makes a new transport; the suite closes each one it makes. `context.test` is the title of the test
   * it is for (e.g. to point the reconnect test at a broker of its own).
   */
  createTransport: (context: { test: string }) => Transport | Promise<Transport>;
  /** Stops and starts the broker (for the reconnect test). Without it that test is not registered. */
  restartBroker?: () => Promise<void>;
  /** Prefix of the topics and groups the suite creates. @default 'conformance' */
  prefix?: string;
  /** Longest wait for an expected delivery, in ms. @default 10000 */
  waitMs?: number;
  /** `pollIntervalMs` of the suite's subscriptions. @default 100 */
  pollIntervalMs?: number;
  /** Timeout of each test, in ms. @default 60000 */
  testTimeoutMs?: number;
  /** Overrides of the capabilities the transport declares (e.g. to skip what a test setup lacks). */
  capabilities?: Partial<TransportCapabilities>;
}

/**
 * The contract every transport keeps, as tests, in the spirit of Watermill's universal pub/sub tests.
 * Tests are gated by the transport's declared capabilities. Register them in your runner:
 *
 * ```ts
 * import { describe, it } from 'vitest';
 * import { runTransportConformance } from '@bus/core/testing';
 * runTransportConformance({ describe, it }, { createTransport: () => myTransport() });
 * ```
 */
export function runTransportConformance(api: TestApi, options: ConformanceOptions): void {
  const waitMs = options.waitMs ?? 10_000;
  const poll = options.pollIntervalMs ?? 100;
  const timeout = options.testTimeoutMs ?? 60_000;
  const prefix = options.prefix ?? 'conformance';
  const codec = jsonCodec();
  let caps: TransportCapabilities | undefined;

  const name = (what: string) => `${prefix}-${what}-${randomUUID().slice(0, 8)}`;
  const test = (title: string, needs: (keyof TransportCapabilities)[], fn: (t: Transport) => Promise<void>) => {
    api.it(
      title,
      async () => {
        const t = await options.createTransport({ test: title });
        try {
          caps ??= { ...t.capabilities, ...options.capabilities };
          const missing = needs.filter((need) => !caps?.[need] || caps[need] === 'none');
          // A capability the transport does not declare makes the test pass vacuously, on purpose:
          // the contract only binds what is declared.
          if (missing.length > 0) return;
          await fn(t);
        } finally {
          await t.close();
        }
      },
      timeout,
    );
  };

  const record = (n: number, extra: Partial<WireRecord> = {}, event = 'test.happened'): WireRecord => {
    const r = codec.encode({ id: `${n}`, event, payload: { n }, publishedAt: Date.now(), headers: { 'x-n': String(n) } });
    return { ...r, ...extra, headers: { ...r.headers, ...extra.headers } };
  };
  const numberOf = (m: IncomingMessage): number => (codec.decode(m).payload as { n: number }).n;
  const records = (from: number, to: number, extra: Partial<WireRecord> = {}) => Array.from({ length: to - from }, (_, i) => record(from + i, extra));

  const publishAll = async (t: Transport, topic: string, list: WireRecord[]) => {
    const results = await t.publish(topic, list);
    assert.equal(results.length, list.length, 'one publish result per record');
    for (const [i, r] of results.entries()) assert.ok(r.ok, `record ${i} published: ${r.ok ? '' : r.error.message}`);
    return results;
  };

  const subscribe = (t: Transport, topics: string[], group: string, handler: (batch: IncomingMessage[]) => Promise<void> | void, extra: Partial<SubscribeOptions> = {}) =>
    t.subscribe(
      { group, topics, batchSize: 10, pollIntervalMs: poll, startFrom: 'earliest', consumerName: name('member'), ...extra },
      async (batch) => {
        await handler(batch);
      },
    );

  /** Subscribes a member that acks everything and records the payload numbers it saw. */
  const collector = async (t: Transport, topics: string[], group: string, extra: Partial<SubscribeOptions> = {}) => {
    const seen: number[] = [];
    const batches: number[] = [];
    const sub = await subscribe(
      t,
      topics,
      group,
      (batch) => {
        batches.push(batch.length);
        for (const m of batch) {
          seen.push(numberOf(m));
          m.ack();
        }
      },
      extra,
    );
    return { seen, batches, sub };
  };

  const waitFor = async (what: string, predicate: () => boolean, ms = waitMs) => {
    const deadline = Date.now() + ms;
    while (!predicate()) {
      if (Date.now() > deadline) assert.fail(`timed out after ${ms} ms waiting for ${what}`);
      await delay(20);
    }
  };
  /** Waits `ms` and checks that `predicate` stayed true throughout. */
  const holds = async (what: string, predicate: () => boolean, ms = Math.min(waitMs, 1500)) => {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      assert.ok(predicate(), what);
      await delay(25);
    }
  };
  const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);
  const uniqueSorted = (values: number[]) => [...new Set(values)].sort((a, b) => a - b);

  api.describe('transport conformance', () => {
    test('publish returns one ok result per record, in order, with distinct ids', [], async (t) => {
      const results = await publishAll(t, name('topic'), records(0, 5));
      const ids = results.map((r) => (r.ok ? r.id : ''));
      assert.equal(new Set(ids).size, 5);
    });

    test('a subscriber receives every message with its value, key and headers intact', [], async (t) => {
      const topic = name('topic');
      const got: IncomingMessage[] = [];
      const sub = await subscribe(t, [topic], name('group'), (batch) => {
        for (const m of batch) {
          got.push(m);
          m.ack();
        }
      });
      await publishAll(t, topic, records(0, 20, { key: 'k-1', headers: { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' } }));
      await waitFor('20 messages', () => got.length >= 20);
      await sub.close();
      assert.deepEqual(uniqueSorted(got.map(numberOf)), range(0, 20));
      const first = got[0] as IncomingMessage;
      assert.equal(first.topic, topic);
      assert.equal(first.key, 'k-1');
      assert.equal(first.headers.traceparent, '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
      assert.equal(first.headers['x-n'], String(numberOf(first)));
      assert.equal(first.deliveryCount, 1);
    });

    test('batches never exceed batchSize, and a backlog is read in batches', [], async (t) => {
      const topic = name('topic');
      await publishAll(t, topic, records(0, 50));
      const c = await collector(t, [topic], name('group'), { batchSize: 7 });
      await waitFor('50 messages', () => c.seen.length >= 50);
      await c.sub.close();
      assert.ok(Math.max(...c.batches) <= 7, `largest batch ${Math.max(...c.batches)} > 7`);
      assert.ok(Math.max(...c.batches) > 1, 'a backlog of 50 came one message per read');
    });

    test('one subscription reads several topics', [], async (t) => {
      const a = name('topic-a');
      const b = name('topic-b');
      const c = await collector(t, [a, b], name('group'));
      await publishAll(t, a, records(0, 10));
      await publishAll(t, b, records(10, 20));
      await waitFor('20 messages from 2 topics', () => c.seen.length >= 20);
      await c.sub.close();
      assert.deepEqual(uniqueSorted(c.seen), range(0, 20));
    });

    test('fan-out: every consumer group gets every message', ['consumerGroups'], async (t) => {
      const topic = name('topic');
      const g1 = await collector(t, [topic], name('group-1'));
      const g2 = await collector(t, [topic], name('group-2'));
      await publishAll(t, topic, records(0, 30));
      await waitFor('both groups to get 30', () => uniqueSorted(g1.seen).length >= 30 && uniqueSorted(g2.seen).length >= 30);
      await Promise.all([g1.sub.close(), g2.sub.close()]);
      assert.deepEqual(uniqueSorted(g1.seen), range(0, 30));
      assert.deepEqual(uniqueSorted(g2.seen), range(0, 30));
    });

    test('sharing: members of one group split the messages, each handled once when acked', ['consumerGroups'], async (t) => {
      const topic = name('topic');
      const group = name('group');
      const m1 = await collector(t, [topic], group, { batchSize: 5 });
      const m2 = await collector(t, [topic], group, { batchSize: 5 });
      await delay(poll * 2);
      await publishAll(
        t,
        topic,
        range(0, 200).map((n) => record(n, { key: `key-${n % 16}` })),
      );
      await waitFor('200 messages across the members', () => uniqueSorted([...m1.seen, ...m2.seen]).length >= 200);
      await Promise.all([m1.sub.close(), m2.sub.close()]);
      assert.deepEqual(uniqueSorted([...m1.seen, ...m2.seen]), range(0, 200));
      assert.ok(m1.seen.length > 0 && m2.seen.length > 0, `both members got work (${m1.seen.length}/${m2.seen.length})`);
    });

    test('nack: a nacked message is delivered again with a higher deliveryCount', [], async (t) => {
      const topic = name('topic');
      const deliveries: number[] = [];
      const sub = await subscribe(t, [topic], name('group'), (batch) => {
        for (const m of batch) {
          deliveries.push(m.deliveryCount);
          if (m.deliveryCount === 1) m.nack();
          else m.ack();
        }
      });
      await publishAll(t, topic, [record(1)]);
      await waitFor('a redelivery', () => deliveries.length >= 2);
      await sub.close();
      assert.equal(deliveries[0], 1);
      assert.ok((deliveries[1] as number) >= 2, `deliveryCount of the redelivery is ${deliveries[1]}`);
    });

    test('no ack: a message left unsettled by the batch handler is delivered again', [], async (t) => {
      const topic = name('topic');
      let calls = 0;
      const acked: number[] = [];
      const sub = await subscribe(t, [topic], name('group'), (batch) => {
        calls++;
        if (calls === 1) return;
        for (const m of batch) {
          acked.push(numberOf(m));
          m.ack();
        }
      });
      await publishAll(t, topic, [record(7)]);
      await waitFor('the unsettled message again', () => acked.length > 0);
      await sub.close();
      assert.deepEqual(acked, [7]);
    });

    test('a batch handler that throws: its unsettled messages are delivered again', [], async (t) => {
      const topic = name('topic');
      let thrown = false;
      const seen: number[] = [];
      const sub = await subscribe(t, [topic], name('group'), (batch) => {
        if (!thrown) {
          thrown = true;
          throw new Error('boom');
        }
        for (const m of batch) {
          seen.push(numberOf(m));
          m.ack();
        }
      });
      await publishAll(t, topic, records(0, 3));
      await waitFor('all 3 after the failure', () => uniqueSorted(seen).length >= 3);
      await sub.close();
      assert.deepEqual(uniqueSorted(seen), [0, 1, 2]);
    });

    test('an acknowledged message is never delivered to the group again', ['consumerGroups'], async (t) => {
      const topic = name('topic');
      const group = name('group');
      const first = await collector(t, [topic], group);
      await publishAll(t, topic, records(0, 10));
      await waitFor('10 messages', () => first.seen.length >= 10);
      await first.sub.close();
      const second = await collector(t, [topic], group);
      await publishAll(t, topic, records(10, 15));
      await waitFor('5 new messages', () => second.seen.length >= 5);
      await holds('no old message comes back', () => second.seen.every((n) => n >= 10), Math.min(1000, waitMs));
      await second.sub.close();
    });

    test('close waits for the running batch handler and commits what it acknowledged', ['consumerGroups'], async (t) => {
      const topic = name('topic');
      const group = name('group');
      let running = false;
      let finished = false;
      const acked: number[] = [];
      const sub = await subscribe(t, [topic], group, async (batch) => {
        running = true;
        await delay(400);
        for (const m of batch) {
          acked.push(numberOf(m));
          m.ack();
        }
        finished = true;
      }, { batchSize: 100 });
      await publishAll(t, topic, records(0, 3));
      await waitFor('the handler to start', () => running);
      await sub.close();
      assert.ok(finished, 'close resolved before the running handler finished');
      assert.ok(acked.length > 0);
      const again = await collector(t, [topic], group);
      await publishAll(t, topic, [record(99)]);
      await waitFor('the next message', () => again.seen.includes(99));
      await holds('nothing acknowledged before close comes back', () => !again.seen.some((n) => acked.includes(n)), 500);
      await again.sub.close();
    });

    test('order: a single member sees one key in publish order', ['ordering'], async (t) => {
      const topic = name('topic');
      const c = await collector(t, [topic], name('group'), { batchSize: 13 });
      for (let i = 0; i < 100; i += 25) await publishAll(t, topic, records(i, i + 25, { key: 'same' }));
      await waitFor('100 messages', () => c.seen.length >= 100);
      await c.sub.close();
      assert.deepEqual(c.seen, range(0, 100));
    });

    test('late group with startFrom "earliest" reads messages published before it existed', ['persistent'], async (t) => {
      const topic = name('topic');
      await publishAll(t, topic, records(0, 5));
      const c = await collector(t, [topic], name('group'), { startFrom: 'earliest' });
      await waitFor('the 5 earlier messages', () => c.seen.length >= 5);
      await c.sub.close();
      assert.deepEqual(uniqueSorted(c.seen), range(0, 5));
    });

    test('late group with startFrom "latest" reads only messages published after it joined', [], async (t) => {
      const topic = name('topic');
      await publishAll(t, topic, records(0, 5));
      const c = await collector(t, [topic], name('group'), { startFrom: 'latest' });
      await delay(poll * 2);
      await publishAll(t, topic, records(5, 8));
      await waitFor('the 3 new messages', () => c.seen.length >= 3);
      await holds('no earlier message', () => c.seen.every((n) => n >= 5), 500);
      await c.sub.close();
    });

    test('publish after close gives a typed error; close is idempotent', [], async (t) => {
      await t.close();
      await t.close();
      let results: Awaited<ReturnType<Transport['publish']>> | undefined;
      try {
        results = await t.publish(name('topic'), [record(1)]);
      } catch (error) {
        assert.ok(BusError.isInstance(error), `threw a non-BusError: ${String(error)}`);
        return;
      }
      const r = results?.[0];
      assert.ok(r && !r.ok && BusError.isInstance(r.error), 'publish after close reported success');
    });

    if (options.restartBroker) {
      const restart = options.restartBroker;
      test('reconnect: consuming and publishing resume after the broker restarts', ['persistent'], async (t) => {
        const topic = name('topic');
        const c = await collector(t, [topic], name('group'));
        await publishAll(t, topic, records(0, 20));
        await waitFor('20 before the restart', () => uniqueSorted(c.seen).length >= 20);
        await restart();
        const deadline = Date.now() + waitMs * 3;
        let sent = false;
        while (!sent) {
          const results = await t.publish(topic, records(20, 40));
          sent = results.every((r) => r.ok);
          if (!sent) {
            if (Date.now() > deadline) assert.fail('publish did not recover after the restart');
            await delay(250);
          }
        }
        await waitFor('20 after the restart', () => uniqueSorted(c.seen).length >= 40, waitMs * 3);
        await c.sub.close();
      });
    }

    // --- The routing engine on this transport -------------------------------------------------------
    type Events = { 'test.happened': { n: number }; 'test.other': { n: number } };
    const busOn = (t: Transport) => {
      // The suite owns the transport's lifetime; the bus must not close it under the next step.
      const shared: Transport = Object.create(t, { close: { value: async () => {} } });
      return createBus<Events>({ transports: { t: shared } });
    };
    const dlqReader = async (t: Transport, topic: string) => {
      const got: IncomingMessage[] = [];
      const sub = await subscribe(t, [`${topic}.dlq`], name('dlq-reader'), (batch) => {
        for (const m of batch) {
          got.push(m);
          m.ack();
        }
      });
      return { got, sub };
    };

    test('bus: the handler gets { consumer, event, payload, message } for subscribed events only', [], async (t) => {
      const topic = name('topic');
      const bus = busOn(t);
      const got: HandlerContext<Events>[] = [];
      bus.module({
        name: 'mod',
        pollIntervalMs: poll,
        consumers: { only: { topics: [topic], events: ['test.happened'] } },
        handler: (ctx) => {
          got.push(ctx);
        },
      });
      await bus.start();
      const receipt = await bus.publish(topic, 'test.happened', { n: 1 }, { key: 'k', headers: { 'x-user': 'u' } });
      await bus.publish(topic, 'test.other', { n: 2 });
      await bus.publish(topic, 'test.happened', { n: 3 });
      await waitFor('2 handled', () => got.length >= 2);
      await holds('the unsubscribed event is skipped', () => got.length === 2, 500);
      await bus.close();
      const first = got[0] as HandlerContext<Events, 'test.happened'>;
      assert.equal(first.consumer, 'only');
      assert.equal(first.module, 'mod');
      assert.equal(first.event, 'test.happened');
      assert.deepEqual(first.payload, { n: 1 });
      assert.equal(first.message.id, receipt.id);
      assert.equal(first.message.topic, topic);
      assert.equal(first.message.key, 'k');
      assert.equal(first.message.headers['x-user'], 'u');
      assert.equal(first.message.group, 'mod-only');
      assert.equal(first.message.attempt, 1);
      assert.ok(Math.abs(first.message.publishedAt - Date.now()) < 60_000);
      assert.deepEqual(got.map((c) => c.payload.n), [1, 3]);
      const lag = await t.lag?.('mod-only', [topic]);
      if (lag) assert.equal(lag[0]?.lag ?? 0, 0, 'the skipped event was not acknowledged');
    });

    test('bus: publishBatch reports one result per entry and every entry arrives', [], async (t) => {
      const topic = name('topic');
      const bus = busOn(t);
      const seen: number[] = [];
      bus.module({
        name: 'mod',
        pollIntervalMs: poll,
        batchSize: 50,
        consumers: { c: { topics: [topic], events: ['test.happened'] } },
        handler: (ctx) => {
          seen.push(ctx.payload.n);
        },
      });
      await bus.start();
      const results = await bus.publishBatch(topic, range(0, 120).map((n) => ({ event: 'test.happened' as const, payload: { n }, key: `k${n % 4}` })));
      assert.equal(results.length, 120);
      assert.ok(results.every((r) => r.ok));
      await waitFor('120 handled', () => uniqueSorted(seen).length >= 120);
      await bus.close();
    });

    test('bus: resend on error: a handler failing twice then succeeding is not dead-lettered', [], async (t) => {
      const topic = name('topic');
      const bus = busOn(t);
      const attempts: number[] = [];
      const dlq = await dlqReader(t, topic);
      bus.module({
        name: 'mod',
        pollIntervalMs: poll,
        retry: { attempts: 3, baseDelayMs: 10, maxDelayMs: 20 },
        consumers: { c: { topics: [topic], events: ['test.happened'] } },
        handler: (ctx) => {
          attempts.push(ctx.message.attempt);
          if (ctx.message.attempt < 3) throw new Error('not yet');
        },
      });
      await bus.start();
      await bus.publish(topic, 'test.happened', { n: 1 });
      await waitFor('the third attempt', () => attempts.length >= 3);
      await holds('nothing dead-lettered', () => dlq.got.length === 0, 500);
      await bus.close();
      await dlq.sub.close();
      assert.deepEqual(attempts, [1, 2, 3]);
    });

    test('bus: retry then dead letter with reason, attempts and origin; nothing acked before that', [], async (t) => {
      const topic = name('topic');
      const bus = busOn(t);
      let calls = 0;
      const dlq = await dlqReader(t, topic);
      bus.module({
        name: 'mod',
        pollIntervalMs: poll,
        retry: { attempts: 3, baseDelayMs: 10, maxDelayMs: 20 },
        consumers: { c: { topics: [topic], events: ['test.happened'] } },
        handler: () => {
          calls++;
          throw new Error('payment service down');
        },
      });
      await bus.start();
      const receipt = await bus.publish(topic, 'test.happened', { n: 1 });
      await waitFor('the dead letter', () => dlq.got.length >= 1);
      await bus.close();
      await dlq.sub.close();
      assert.equal(calls, 3);
      const dead = dlq.got[0] as IncomingMessage;
      assert.equal(dead.headers[DLQ_HEADER.reason], 'payment service down');
      assert.equal(dead.headers[DLQ_HEADER.attempts], '3');
      assert.equal(dead.headers[DLQ_HEADER.topic], topic);
      assert.equal(dead.headers[DLQ_HEADER.group], 'mod-c');
      assert.equal(dead.headers[HEADER.id], receipt.id);
      assert.deepEqual(codec.decode(dead).payload, { n: 1 });
    });

    test('bus: continue after errors: failing messages go to the dead letter, the rest are handled', [], async (t) => {
      const topic = name('topic');
      const bus = busOn(t);
      const handled: number[] = [];
      const dlq = await dlqReader(t, topic);
      bus.module({
        name: 'mod',
        pollIntervalMs: poll,
        retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 5 },
        consumers: { c: { topics: [topic], events: ['test.happened'] } },
        handler: (ctx) => {
          if (ctx.payload.n % 5 === 0) throw new Error(`poison ${ctx.payload.n}`);
          handled.push(ctx.payload.n);
        },
      });
      await bus.start();
      await bus.publishBatch(topic, range(1, 21).map((n) => ({ event: 'test.happened' as const, payload: { n } })));
      await waitFor('16 handled and 4 dead-lettered', () => uniqueSorted(handled).length >= 16 && dlq.got.length >= 4);
      await bus.close();
      await dlq.sub.close();
      assert.deepEqual(uniqueSorted(handled), range(1, 21).filter((n) => n % 5 !== 0));
      assert.deepEqual(dlq.got.map((m) => m.headers[DLQ_HEADER.reason]).sort(), ['poison 10', 'poison 15', 'poison 20', 'poison 5']);
    });

    test('bus: undecodable bytes go to the dead letter with the reason and the consumer goes on', [], async (t) => {
      const topic = name('topic');
      const bus = busOn(t);
      const handled: number[] = [];
      const dlq = await dlqReader(t, topic);
      bus.module({
        name: 'mod',
        pollIntervalMs: poll,
        consumers: { c: { topics: [topic], events: ['test.happened'] } },
        handler: (ctx) => {
          handled.push(ctx.payload.n);
        },
      });
      await bus.start();
      const garbage = record(0);
      await publishAll(t, topic, [{ value: Buffer.from('{not json'), headers: garbage.headers }, { value: 'x', headers: { junk: '1' } }]);
      await bus.publish(topic, 'test.happened', { n: 42 });
      await waitFor('the good message and 2 dead letters', () => handled.includes(42) && dlq.got.length >= 2);
      await bus.close();
      await dlq.sub.close();
      const reasons = dlq.got.map((m) => m.headers[DLQ_HEADER.reason] ?? '');
      assert.ok(reasons.some((r) => r.includes('not valid JSON')), reasons.join(' | '));
      assert.ok(reasons.some((r) => r.includes('missing header "ce_id"')), reasons.join(' | '));
      assert.ok(dlq.got.every((m) => m.headers[DLQ_HEADER.error] === 'DECODE'));
    });

    test('bus: a handler cut off by close is not acknowledged; the group gets the message again', ['redeliversUnsettled'], async (t) => {
      const topic = name('topic');
      const first = busOn(t);
      let started = false;
      first.module({
        name: 'mod',
        pollIntervalMs: poll,
        drainTimeoutMs: 100,
        consumers: { c: { topics: [topic], events: ['test.happened'] } },
        handler: async (ctx) => {
          started = true;
          await new Promise<void>((_, reject) => ctx.signal.addEventListener('abort', () => reject(new Error('aborted'))));
        },
      });
      await first.start();
      await first.publish(topic, 'test.happened', { n: 5 });
      await waitFor('the handler to start', () => started);
      await first.close();
      const second = busOn(t);
      const again: number[] = [];
      second.module({
        name: 'mod',
        pollIntervalMs: poll,
        consumers: { c: { topics: [topic], events: ['test.happened'] } },
        handler: (ctx) => {
          again.push(ctx.payload.n);
        },
      });
      await second.start();
      await waitFor('the redelivery', () => again.includes(5), waitMs * 2);
      await second.close();
    });

    test('bus: concurrency > 1 handles everything and keeps per-key order', [], async (t) => {
      const topic = name('topic');
      const bus = busOn(t);
      const byKey = new Map<string, number[]>();
      let inFlight = 0;
      let maxInFlight = 0;
      bus.module({
        name: 'mod',
        pollIntervalMs: poll,
        batchSize: 40,
        concurrency: 4,
        consumers: { c: { topics: [topic], events: ['test.happened'] } },
        handler: async (ctx) => {
          inFlight++;
          maxInFlight = Math.max(maxInFlight, inFlight);
          await delay(2);
          const list = byKey.get(ctx.message.key ?? '') ?? [];
          list.push(ctx.payload.n);
          byKey.set(ctx.message.key ?? '', list);
          inFlight--;
        },
      });
      await bus.start();
      await bus.publishBatch(topic, range(0, 80).map((n) => ({ event: 'test.happened' as const, payload: { n }, key: `k${n % 4}` })));
      await waitFor('80 handled', () => [...byKey.values()].reduce((s, l) => s + l.length, 0) >= 80);
      await bus.close();
      for (const [key, list] of byKey) assert.deepEqual(list, [...list].sort((a, b) => a - b), `order of key ${key}`);
      assert.ok(maxInFlight > 1, `handlers never ran concurrently (max in flight ${maxInFlight})`);
    });
  });
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * A TCP port free on 127.0.0.1 right now, for a broker or server a test starts of its own (e.g. the
 * broker behind a `restartBroker` hook).
 */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.unref();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export { type DelayTestApi, type DelayTestOptions, delayTests } from './delays.js';
