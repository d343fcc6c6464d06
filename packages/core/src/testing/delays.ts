import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createBus } from '../bus.js';
import { jsonCodec } from '../codec.js';
import { DELAY_HEADER, type DelayedRecord } from '../delay.js';
import type { HandlerContext } from '../events.js';
import { DLQ_HEADER } from '../router.js';
import type { IncomingMessage, Transport, TransportCapabilities } from '../transport.js';
import { Harness, type TestApi } from './harness.js';

/** The test functions of your runner (vitest, jest, mocha…). */
export interface DelayTestApi {
  describe(name: string, fn: () => void): void;
  it(name: string, fn: () => Promise<void>, timeoutMs?: number): void;
}

/** The options of {@link delayTests}: the shape of `runTransportConformance`'s. */
export interface DelayTestOptions {
  /** Makes a new transport; each test closes the ones it makes. */
  createTransport: (context: { test: string }) => Transport | Promise<Transport>;
  /** Prefix of the topics and groups the tests create. @default 'conformance' */
  prefix?: string;
  /** Longest wait for an expected delivery, in ms. @default 10000 */
  waitMs?: number;
  /** `pollIntervalMs` of the subscriptions. @default 100 */
  pollIntervalMs?: number;
  /** Timeout of each test, in ms. @default 60000 */
  testTimeoutMs?: number;
  /**
   * Overrides of the declared capabilities, as in `runTransportConformance`: `{ delays: false }`
   * registers none of these tests (for a setup that lacks delayed delivery).
   */
  capabilities?: Partial<TransportCapabilities>;
  /** Accepted for the shape of `runTransportConformance`'s options; not used here. */
  restartBroker?: () => Promise<void>;
  /**
   * Delays used by the tests, in ms: long enough that "not before its time" means something on the
   * broker, short enough for a test run. @default 800
   */
  delayMs?: number;
}

type Events = { 'delay.tick': { n: number; key?: string } };

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The `delays` feature of the conformance suite: delayed records are never delivered before their
 * time and are delivered after it; `publish`/`publishBatch` with `delayMs`/`deliverAt`; broker-side
 * retries (`retry.mode: 'redeliver'`) that never hold the consumer, keep the attempt count and the
 * order of a retrying key's later messages. A transport that does not declare `capabilities.delays`
 * sees them reported as skipped (`capabilities: { delays: false }` in the options registers nothing).
 *
 * ```ts
 * import { describe, it } from 'vitest';
 * import { delayTests } from '@bus/core/testing';
 * delayTests({ describe, it }, { createTransport: () => myTransport() });
 * ```
 */
export function delayTests(api: DelayTestApi, options: DelayTestOptions): void {
  const waitMs = options.waitMs ?? 10_000;
  const poll = options.pollIntervalMs ?? 100;
  const timeout = options.testTimeoutMs ?? 60_000;
  const prefix = options.prefix ?? 'conformance';
  const delay = options.delayMs ?? 800;
  const codec = jsonCodec();
  const name = (what: string) => `${prefix}-${what}-${randomUUID().slice(0, 8)}`;

  // The suite's harness: a transport that does not declare `delays` shows these tests as skipped.
  const harness = new Harness(api as TestApi, options);
  const test = (title: string, fn: (t: Transport) => Promise<void>) => {
    harness.test(
      title,
      ['delays'],
      async (t) => {
        assert.ok(typeof t.publishDelayed === 'function', `transport "${t.name}" declares delays but has no publishDelayed()`);
        await fn(t);
      },
      { timeoutMs: timeout },
    );
  };

  const waitFor = async (what: string, predicate: () => boolean, ms = waitMs + delay) => {
    const deadline = Date.now() + ms;
    while (!predicate()) {
      if (Date.now() > deadline) assert.fail(`timed out after ${ms} ms waiting for ${what}`);
      await sleep(20);
    }
  };

  const delayed = (n: number, deliverAt: number, key?: string): DelayedRecord => {
    const r = codec.encode({ id: randomUUID(), event: 'delay.tick', payload: { n }, publishedAt: Date.now(), headers: {} });
    return key === undefined ? { ...r, deliverAt } : { ...r, key, deliverAt };
  };
  const numberOf = (m: IncomingMessage) => (codec.decode(m).payload as { n: number }).n;

  if (options.capabilities?.delays === false) return;
  api.describe('delays', () => {
    test('a delayed record is not delivered before its time, and is delivered after it, in due order', async (t) => {
      const topic = name('topic');
      const got: { n: number; at: number }[] = [];
      const sub = await t.subscribe(
        { group: name('group'), topics: [topic], batchSize: 10, pollIntervalMs: poll, startFrom: 'earliest', consumerName: name('member') },
        async (batch) => {
          for (const m of batch) {
            got.push({ n: numberOf(m), at: Date.now() });
            m.ack();
          }
        },
      );
      try {
        const now = Date.now();
        const due = [now + 2 * delay, now + delay, now + delay];
        const results = await t.publishDelayed?.(topic, due.map((at, n) => delayed(n, at)));
        assert.equal(results?.length, 3);
        for (const r of results ?? []) assert.ok(r.ok, r.ok ? '' : r.error.message);
        const immediate = codec.encode({ id: randomUUID(), event: 'delay.tick', payload: { n: 99 }, publishedAt: now, headers: {} });
        await t.publish(topic, [immediate]);
        await waitFor('3 delayed records and 1 immediate one', () => got.length >= 4);
        assert.equal(got[0]?.n, 99, 'the record published at once comes first');
        for (const { n, at } of got) if (n !== 99) assert.ok(at >= (due[n] as number), `record ${n} delivered ${(due[n] as number) - at} ms early`);
        assert.equal(got[got.length - 1]?.n, 0, 'the record due last comes last');
        assert.deepEqual(got.map((g) => g.n).sort(), [0, 1, 2, 99]);
      } finally {
        await sub.close();
      }
    });

    test('records due at the same time, stored by separate calls, come out in the order they were stored', async (t) => {
      // What keeps a key's order when the redeliver retry parks its later messages behind a blocker:
      // they are stored one by one, as they arrive, with the blocker's due time.
      const topic = name('topic');
      const got: number[] = [];
      const sub = await t.subscribe(
        { group: name('group'), topics: [topic], batchSize: 10, pollIntervalMs: poll, startFrom: 'earliest', consumerName: name('member') },
        async (batch) => {
          for (const m of batch) {
            got.push(numberOf(m));
            m.ack();
          }
        },
      );
      try {
        const due = Date.now() + delay;
        for (let n = 0; n < 8; n++) {
          const [result] = (await t.publishDelayed?.(topic, [delayed(n, due, 'same-key')])) ?? [];
          assert.ok(result?.ok, result && !result.ok ? result.error.message : 'no result');
          await sleep(3 * (n % 3)); // stored at different moments, due at the same one
        }
        await waitFor('8 delayed records', () => got.length >= 8);
        assert.deepEqual(got, [0, 1, 2, 3, 4, 5, 6, 7]);
      } finally {
        await sub.close();
      }
    });

    test('publish and publishBatch take delayMs / deliverAt; the handler sees bus-deliver-at', async (t) => {
      const topic = name('topic');
      const bus = createBus<Events>({ transports: { t } });
      const got: { n: number; at: number; due: number }[] = [];
      bus.module({
        name: name('module'),
        consumers: { c: { topics: [topic], events: ['delay.tick'] } },
        pollIntervalMs: poll,
        lagIntervalMs: 0,
        handler: (ctx) => {
          got.push({ n: ctx.payload.n, at: Date.now(), due: Number(ctx.message.headers[DELAY_HEADER.deliverAt]) });
        },
      });
      try {
        await bus.start();
        const now = Date.now();
        await bus.publish(topic, 'delay.tick', { n: 1 }, { delayMs: delay });
        await bus.publish(topic, 'delay.tick', { n: 2 }, { deliverAt: new Date(now + delay) });
        const results = await bus.publishBatch(topic, [
          { event: 'delay.tick', payload: { n: 3 }, delayMs: delay },
          { event: 'delay.tick', payload: { n: 4 } },
        ]);
        assert.ok(results.every((r) => r.ok));
        await waitFor('4 messages', () => got.length >= 4);
        assert.equal(got[0]?.n, 4, 'the undelayed batch entry comes first');
        for (const g of got.filter((x) => x.n !== 4)) {
          assert.ok(g.due >= now + delay, `message ${g.n} has bus-deliver-at ${g.due}`);
          assert.ok(g.at >= g.due, `message ${g.n} delivered ${g.due - g.at} ms early`);
        }
      } finally {
        await bus.close();
      }
    });

    test("retry.mode 'redeliver': a failing message never holds the consumer; attempts travel with it; then the dead letter", async (t) => {
      const topic = name('topic');
      const events: string[] = [];
      const attempts: number[] = [];
      const bus = createBus<Events>({ transports: { t } });
      const moduleName = name('module');
      bus.module({
        name: moduleName,
        consumers: { c: { topics: [topic], events: ['delay.tick'] } },
        pollIntervalMs: poll,
        lagIntervalMs: 0,
        concurrency: 1,
        retry: { mode: 'redeliver', attempts: 3, baseDelayMs: delay, maxDelayMs: delay, jitter: 0 },
        handler: (ctx: HandlerContext<Events>) => {
          if (ctx.payload.n === 0) {
            attempts.push(ctx.message.attempt);
            events.push(`bad#${ctx.message.attempt}`);
            assert.equal(ctx.message.topic, topic, 'a retried message shows its own topic');
            throw new Error('permanently broken');
          }
          events.push(`good${ctx.payload.n}`);
        },
      });
      const dead: IncomingMessage[] = [];
      try {
        await bus.start();
        await bus.publishBatch(
          topic,
          Array.from({ length: 6 }, (_, n) => ({ event: 'delay.tick' as const, payload: { n } })),
        );
        await waitFor('the bad message to be tried 3 times', () => attempts.length >= 3);
        const dlq = await t.subscribe(
          { group: name('dlq'), topics: [`${topic}.dlq`], batchSize: 10, pollIntervalMs: poll, startFrom: 'earliest', consumerName: name('m') },
          async (batch) => {
            for (const m of batch) {
              dead.push(m);
              m.ack();
            }
          },
        );
        await waitFor('the dead letter', () => dead.length >= 1);
        await dlq.close();
      } finally {
        await bus.close();
      }
      // The other messages never waited for the failing one's back-off: the first six handler runs
      // are its first attempt and all five others (in topic order where the transport keeps one).
      assert.deepEqual([...events.slice(0, 6)].sort(), ['bad#1', 'good1', 'good2', 'good3', 'good4', 'good5']);
      assert.deepEqual(attempts, [1, 2, 3]);
      assert.equal(dead.length, 1);
      assert.equal(dead[0]?.headers[DLQ_HEADER.attempts], '3');
      assert.equal(dead[0]?.headers[DLQ_HEADER.topic], topic);
    });

    test("retry.mode 'redeliver': later messages of a retrying key wait behind it; other keys do not", async (t) => {
      const topic = name('topic');
      const handled: string[] = [];
      let failures = 0;
      const bus = createBus<Events>({ transports: { t } });
      bus.module({
        name: name('module'),
        consumers: { c: { topics: [topic], events: ['delay.tick'] } },
        pollIntervalMs: poll,
        lagIntervalMs: 0,
        concurrency: 1,
        retry: { mode: 'redeliver', attempts: 5, baseDelayMs: delay / 2, maxDelayMs: delay / 2, jitter: 0 },
        handler: (ctx: HandlerContext<Events>) => {
          const { n, key } = ctx.payload;
          if (key === 'k' && n === 0 && failures < 2) {
            failures++;
            throw new Error('not yet');
          }
          handled.push(`${key}${n}`);
        },
      });
      try {
        await bus.start();
        const entries = [
          { key: 'k', n: 0 },
          { key: 'k', n: 1 },
          { key: 'o', n: 0 },
          { key: 'k', n: 2 },
          { key: 'o', n: 1 },
        ].map(({ key, n }) => ({ event: 'delay.tick' as const, payload: { n, key }, key }));
        await bus.publishBatch(topic, entries.slice(0, 3));
        await waitFor('o0', () => handled.includes('o0'));
        // Published while k0 is retrying: it must wait behind k0 too.
        await bus.publishBatch(topic, entries.slice(3));
        await waitFor('every message', () => handled.length >= 5);
      } finally {
        await bus.close();
      }
      assert.equal(failures, 2);
      assert.deepEqual(
        handled.filter((h) => h.startsWith('k')),
        ['k0', 'k1', 'k2'],
        `key order: ${handled.join(',')}`,
      );
      assert.ok(handled.indexOf('o0') < handled.indexOf('k0'), `the other key went ahead: ${handled.join(',')}`);
      assert.ok(handled.indexOf('o1') < handled.indexOf('k0'), `the other key went ahead: ${handled.join(',')}`);
    });
  });
}
