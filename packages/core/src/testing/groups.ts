import assert from 'node:assert/strict';
import type { IncomingMessage } from '../transport.js';
import { sharingCase } from './cases.js';
import { type ConformanceOptions, delay, gate, Harness, range, type TestApi, uniqueSorted } from './harness.js';

/**
 * Consumer groups: fan-out, sharing (also across two transport instances on one broker), no
 * redelivery of what was acknowledged, members that leave (closed, or gone without settling).
 */
export function groupTests(api: TestApi, options: ConformanceOptions): void {
  const h = new Harness(api, options);
  api.describe('consumer groups', () => {
    h.test('fan-out: every consumer group gets every message', ['consumerGroups'], async (t) => {
      const topic = h.name('topic');
      const g1 = await h.collector(t, [topic], h.name('group-1'));
      const g2 = await h.collector(t, [topic], h.name('group-2'));
      await h.publishAll(t, topic, h.records(0, 30));
      await h.waitFor('both groups to get 30', () => uniqueSorted(g1.seen).length >= 30 && uniqueSorted(g2.seen).length >= 30);
      await Promise.all([g1.sub.close(), g2.sub.close()]);
      assert.deepEqual(uniqueSorted(g1.seen), range(0, 30));
      assert.deepEqual(uniqueSorted(g2.seen), range(0, 30));
    });

    h.test(
      'deleteGroup forgets a group: a member joining after it starts over from the start position; a missing group or topic is no error',
      ['consumerGroups'],
      async (t) => {
        const topic = h.name('topic');
        const group = h.name('group');
        const first = await h.collector(t, [topic], group);
        await h.publishAll(t, topic, h.records(0, 6));
        await h.waitFor('6 messages', () => uniqueSorted(first.seen).length >= 6);
        await first.sub.close();
        await t.deleteGroup?.(group, [topic]);
        // Deleted already, never created, on a topic that does not exist: nothing to do, no error.
        await t.deleteGroup?.(group, [topic]);
        await t.deleteGroup?.(h.name('never-group'), [h.name('never-topic')]);
        // The group starts again from the earliest message: what it acknowledged before is delivered again.
        const again = await h.collector(t, [topic], group);
        await h.waitFor('the 6 messages again', () => uniqueSorted(again.seen).length >= 6);
        await again.sub.close();
        assert.deepEqual(uniqueSorted(again.seen), range(0, 6));
      },
      { unless: (_, t) => (typeof t.deleteGroup === 'function' ? undefined : 'the transport has no deleteGroup()') },
    );

    h.test('sharing: members of one group split the messages, each handled once when acked', ['consumerGroups'], (t) => sharingCase(h, t));

    h.test('an acknowledged message is never delivered to the group again', ['consumerGroups'], async (t) => {
      const topic = h.name('topic');
      const group = h.name('group');
      const first = await h.collector(t, [topic], group);
      await h.publishAll(t, topic, h.records(0, 10));
      await h.waitFor('10 messages', () => first.seen.length >= 10);
      await first.sub.close();
      const second = await h.collector(t, [topic], group);
      await h.publishAll(t, topic, h.records(10, 15));
      await h.waitFor('5 new messages', () => second.seen.length >= 5);
      await h.holds('no old message comes back', () => second.seen.every((n) => n >= 10), Math.min(1000, h.waitMs));
      await second.sub.close();
    });

    h.test('two instances: a message published on one instance reaches a subscriber on the other', [], async (t, env) => {
      const other = await env.another();
      const topic = h.name('topic');
      const c = await h.collector(other, [topic], h.name('group'));
      await h.publishAll(t, topic, h.records(0, 10, { key: 'k' }));
      await h.waitFor('10 messages on the other instance', () => uniqueSorted(c.seen).length >= 10);
      await c.sub.close();
      assert.deepEqual(uniqueSorted(c.seen), range(0, 10));
    });

    h.test('two instances: members on both instances share one group, each message once', ['consumerGroups'], async (t, env) => sharingCase(h, t, await env.another()));

    h.test('continue after a subscription closes: the remaining member gets the rest', ['consumerGroups'], async (t, env) => {
      const other = await env.another();
      const topic = h.name('topic');
      const group = h.name('group');
      const leaving = await h.collector(t, [topic], group, { batchSize: 5 });
      const staying = await h.collector(other, [topic], group, { batchSize: 5 });
      await delay(h.poll * 2);
      const keyed = (from: number, to: number) => range(from, to).map((n) => h.record(n, { key: `key-${n % 8}` }));
      await h.publishAll(t, topic, keyed(0, 40));
      await h.waitFor('the first 40 across both members', () => uniqueSorted([...leaving.seen, ...staying.seen]).length >= 40);
      await leaving.sub.close();
      await h.publishAll(t, topic, keyed(40, 80));
      await h.waitFor('the next 40 on the remaining member', () => range(40, 80).every((n) => staying.seen.includes(n)), h.waitMs * 2);
      await staying.sub.close();
      assert.ok(leaving.seen.every((n) => n < 40), 'the closed member got messages after its close');
    });

    h.test(
      'redelivery after a crashed member: what it held unsettled goes to a member on another instance',
      ['consumerGroups', 'redeliversUnsettled'],
      async (t, env) => {
        const crashing = await env.another();
        const topic = h.name('topic');
        const group = h.name('group');
        const held: number[] = [];
        const hang = gate();
        await h.subscribe(
          crashing,
          [topic],
          group,
          async (batch: IncomingMessage[]) => {
            for (const m of batch) held.push(h.numberOf(m));
            // Never settles: the member goes away with these messages in hand.
            await hang.wait;
          },
          { batchSize: 5 },
        );
        await h.publishAll(t, topic, h.records(0, 5, { key: 'k' }));
        await h.waitFor('the crashing member to receive messages', () => held.length > 0);
        // The instance goes away as a whole; its handler returns without settling anything.
        const gone = crashing.close();
        setTimeout(hang.open, 50);
        await gone;
        const survivor = await h.collector(t, [topic], group);
        await h.waitFor('the held messages on the surviving instance', () => uniqueSorted(survivor.seen).length >= 5, h.waitMs * 2);
        await survivor.sub.close();
        assert.deepEqual(uniqueSorted(survivor.seen), range(0, 5));
        for (const n of held) assert.ok(survivor.seen.includes(n), `message ${n} held by the crashed member was not delivered again`);
      },
    );
  });
}
