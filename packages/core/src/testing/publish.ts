import assert from 'node:assert/strict';
import { BusError } from '../errors.js';
import type { Transport } from '../transport.js';
import { type ConformanceOptions, Harness, range, type TestApi } from './harness.js';

/**
 * Publishing: one result per record, in order, with distinct ids; `nativeBatching` (one call of 500
 * records); publish after close gives a typed error.
 */
export function publishTests(api: TestApi, options: ConformanceOptions): void {
  const h = new Harness(api, options);
  api.describe('publish', () => {
    h.test('publish returns one ok result per record, in order, with distinct ids', [], async (t) => {
      const results = await h.publishAll(t, h.name('topic'), h.records(0, 5));
      const ids = results.map((r) => (r.ok ? r.id : ''));
      assert.equal(new Set(ids).size, 5);
    });

    h.test(
      'nativeBatching: one publish call of 500 records returns 500 ok results in order (each id is the position its subscriber sees)',
      ['nativeBatching'],
      async (t, env) => {
        const topic = h.name('topic');
        const results = await h.publishAll(t, topic, h.records(0, 500, { key: 'batch' }));
        const ids = results.map((r) => (r.ok ? r.id : ''));
        assert.equal(new Set(ids).size, 500, 'distinct ids');
        const c = await h.collector(t, [topic], h.name('group'), { batchSize: 100 });
        await h.waitFor('500 messages', () => new Set(c.seen).size >= 500);
        await c.sub.close();
        // The result of record n names the position the subscriber got record n at: results are in input order.
        const positionOf = new Map(c.messages.map((m) => [h.numberOf(m), m.id]));
        const wrong = range(0, 500).filter((n) => positionOf.get(n) !== ids[n]);
        assert.deepEqual(wrong.slice(0, 10), [], `publish result ids differ from the delivered positions of records ${wrong.slice(0, 10).join(', ')}`);
        if (env.capabilities.ordering !== 'none') assert.deepEqual(c.seen, range(0, 500), 'one key, one member: delivered in publish order');
      },
    );

    h.test('publish after close gives a typed error; close is idempotent', [], async (t) => {
      await t.close();
      await t.close();
      let results: Awaited<ReturnType<Transport['publish']>> | undefined;
      try {
        results = await t.publish(h.name('topic'), [h.record(1)]);
      } catch (error) {
        assert.ok(BusError.isInstance(error), `threw a non-BusError: ${String(error)}`);
        return;
      }
      const r = results?.[0];
      assert.ok(r && !r.ok && BusError.isInstance(r.error), 'publish after close reported success');
    });
  });
}
