import assert from 'node:assert/strict';
import type { Transport } from '../transport.js';
import { orderCase } from './cases.js';
import { type ConformanceOptions, delay, Harness, range, type TestApi, uniqueSorted } from './harness.js';

/**
 * Order: one member sees one key in publish order (`ordering` other than `none`); with
 * `ordering: 'key'`, every member of a group sees each key in publish order.
 */
export function orderingTests(api: TestApi, options: ConformanceOptions): void {
  const h = new Harness(api, options);
  api.describe('ordering', () => {
    h.test('order: a single member sees one key in publish order', ['ordering'], (t) => orderCase(h, t));

    h.test(
      "order across members: with three members on two instances, each key arrives in publish order at whichever member gets it (ordering 'key')",
      ['ordering:key', 'consumerGroups'],
      async (t, env) => {
        const other = await env.another();
        const topic = h.name('topic');
        const group = h.name('group');
        const members: { byKey: Map<string, number[]>; sub: { close(): Promise<void> } }[] = [];
        const join = async (on: Transport) => {
          const byKey = new Map<string, number[]>();
          const sub = await h.subscribe(
            on,
            [topic],
            group,
            (batch) => {
              for (const m of batch) {
                const list = byKey.get(m.key ?? '') ?? [];
                list.push(h.numberOf(m));
                byKey.set(m.key ?? '', list);
                m.ack();
              }
            },
            { batchSize: 7 },
          );
          members.push({ byKey, sub });
        };
        await join(t);
        await join(other);
        await join(t);
        await delay(h.poll * 2);
        const keys = range(0, 8).map((k) => `key-${k}`);
        for (let i = 0; i < 240; i += 60) {
          await h.publishAll(
            t,
            topic,
            range(i, i + 60).map((n) => h.record(n, { key: keys[n % keys.length] as string })),
          );
        }
        const all = () => members.flatMap((m) => [...m.byKey.values()].flat());
        await h.waitFor('240 messages across the members', () => uniqueSorted(all()).length >= 240, h.waitMs * 2);
        await Promise.all(members.map((m) => m.sub.close()));
        assert.deepEqual(uniqueSorted(all()), range(0, 240));
        members.forEach((m, i) => {
          for (const [key, list] of m.byKey) assert.deepEqual(list, [...list].sort((a, b) => a - b), `member ${i + 1}: order of ${key}`);
        });
        const working = members.filter((m) => m.byKey.size > 0).length;
        assert.ok(working >= 2, `only ${working} member got messages: order across members was not exercised`);
      },
    );
  });
}
