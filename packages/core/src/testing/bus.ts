import assert from 'node:assert/strict';
import type { HandlerContext } from '../events.js';
import { type ConformanceOptions, delay, Harness, range, type SuiteEvents, type TestApi, uniqueSorted } from './harness.js';

/**
 * The routing engine on the transport: the handler context, `publishBatch`, and concurrency with
 * per-key order. (Retry and dead letter: {@link deadLetterTests}; stop: {@link drainTests}.)
 */
export function busTests(api: TestApi, options: ConformanceOptions): void {
  const h = new Harness(api, options);
  api.describe('bus on the transport', () => {
    h.test('bus: the handler gets { consumer, event, payload, message } for subscribed events only', [], async (t) => {
      const topic = h.name('topic');
      const mod = h.name('mod');
      const bus = h.busOn(t);
      const got: HandlerContext<SuiteEvents>[] = [];
      bus.module({
        name: mod,
        pollIntervalMs: h.poll,
        consumers: { only: { topics: [topic], events: ['test.happened'] } },
        handler: (ctx) => {
          got.push(ctx);
        },
      });
      await bus.start();
      const receipt = await bus.publish(topic, 'test.happened', { n: 1 }, { key: 'k', headers: { 'x-user': 'u' } });
      await bus.publish(topic, 'test.other', { n: 2 });
      await bus.publish(topic, 'test.happened', { n: 3 });
      await h.waitFor('2 handled', () => got.length >= 2);
      await h.holds('the unsubscribed event is skipped', () => got.length === 2, 500);
      await bus.close();
      const first = got[0] as HandlerContext<SuiteEvents, 'test.happened'>;
      assert.equal(first.consumer, 'only');
      assert.equal(first.module, mod);
      assert.equal(first.event, 'test.happened');
      assert.deepEqual(first.payload, { n: 1 });
      assert.equal(first.message.id, receipt.id);
      assert.equal(first.message.topic, topic);
      assert.equal(first.message.key, 'k');
      assert.equal(first.message.headers['x-user'], 'u');
      assert.equal(first.message.group, `${mod}-only`);
      assert.equal(first.message.attempt, 1);
      assert.ok(Math.abs(first.message.publishedAt - Date.now()) < 60_000);
      assert.deepEqual(
        got.map((c) => c.payload.n),
        [1, 3],
      );
      assert.deepEqual(
        bus.settled.map((s) => s.outcome).sort(),
        ['handled', 'handled', 'skipped'],
        'one outcome per delivery',
      );
      const lag = await t.lag?.(`${mod}-only`, [topic]);
      if (lag) assert.equal(lag[0]?.lag ?? 0, 0, 'the skipped event was not acknowledged');
    });

    h.test('bus: publishBatch reports one result per entry and every entry arrives', [], async (t) => {
      const topic = h.name('topic');
      const mod = h.name('mod');
      const bus = h.busOn(t);
      const seen: number[] = [];
      bus.module({
        name: mod,
        pollIntervalMs: h.poll,
        batchSize: 50,
        consumers: { c: { topics: [topic], events: ['test.happened'] } },
        handler: (ctx) => {
          seen.push(ctx.payload.n);
        },
      });
      await bus.start();
      const results = await bus.publishBatch(
        topic,
        range(0, 120).map((n) => ({ event: 'test.happened' as const, payload: { n }, key: `k${n % 4}` })),
      );
      assert.equal(results.length, 120);
      assert.ok(results.every((r) => r.ok));
      await h.waitFor('120 handled', () => uniqueSorted(seen).length >= 120);
      await bus.close();
    });

    h.test('bus: concurrency > 1 handles everything and keeps per-key order', [], async (t) => {
      const topic = h.name('topic');
      const mod = h.name('mod');
      const bus = h.busOn(t);
      const byKey = new Map<string, number[]>();
      let inFlight = 0;
      let maxInFlight = 0;
      bus.module({
        name: mod,
        pollIntervalMs: h.poll,
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
      await bus.publishBatch(
        topic,
        range(0, 80).map((n) => ({ event: 'test.happened' as const, payload: { n }, key: `k${n % 4}` })),
      );
      await h.waitFor('80 handled', () => [...byKey.values()].reduce((s, l) => s + l.length, 0) >= 80);
      await bus.close();
      for (const [key, list] of byKey)
        assert.deepEqual(
          list,
          [...list].sort((a, b) => a - b),
          `order of key ${key}`,
        );
      assert.ok(maxInFlight > 1, `handlers never ran concurrently (max in flight ${maxInFlight})`);
    });
  });
}
