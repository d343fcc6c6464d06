import assert from 'node:assert/strict';
import { publishSubscribeCase } from './cases.js';
import { type ConformanceOptions, delay, Harness, range, type TestApi, uniqueSorted } from './harness.js';

/**
 * Consuming: what a subscriber receives, batch sizes, several topics, topic isolation, subscriptions
 * made at once, where a new group starts, and `blockingReads`.
 */
export function consumeTests(api: TestApi, options: ConformanceOptions): void {
  const h = new Harness(api, options);
  api.describe('consume', () => {
    h.test('a subscriber receives every message with its value, key and headers intact', [], (t) => publishSubscribeCase(h, t));

    h.test('batches never exceed batchSize, and a backlog is read in batches', [], async (t) => {
      const topic = h.name('topic');
      await h.publishAll(t, topic, h.records(0, 50));
      const c = await h.collector(t, [topic], h.name('group'), { batchSize: 7 });
      await h.waitFor('50 messages', () => c.seen.length >= 50);
      await c.sub.close();
      assert.ok(Math.max(...c.batches) <= 7, `largest batch ${Math.max(...c.batches)} > 7`);
      assert.ok(Math.max(...c.batches) > 1, 'a backlog of 50 came one message per read');
    });

    h.test('one subscription reads several topics', [], async (t) => {
      const a = h.name('topic-a');
      const b = h.name('topic-b');
      const c = await h.collector(t, [a, b], h.name('group'));
      await h.publishAll(t, a, h.records(0, 10));
      await h.publishAll(t, b, h.records(10, 20));
      await h.waitFor('20 messages from 2 topics', () => c.seen.length >= 20);
      await c.sub.close();
      assert.deepEqual(uniqueSorted(c.seen), range(0, 20));
    });

    h.test('topic isolation: a subscriber of one topic never gets a message of another', [], async (t) => {
      const a = h.name('topic');
      // A name that extends the other: a prefix match or a shared key pattern would leak.
      const b = `${a}-b`;
      const ca = await h.collector(t, [a], h.name('group-a'));
      const cb = await h.collector(t, [b], h.name('group-b'));
      await h.publishAll(t, b, h.records(100, 110));
      await h.publishAll(t, a, h.records(0, 10));
      await h.waitFor('10 messages on each topic', () => ca.seen.length >= 10 && cb.seen.length >= 10);
      await h.holds('nothing crosses topics', () => ca.seen.every((n) => n < 100) && cb.seen.every((n) => n >= 100), 500);
      await Promise.all([ca.sub.close(), cb.sub.close()]);
      assert.ok(ca.messages.every((m) => m.topic === a) && cb.messages.every((m) => m.topic === b), 'message.topic names the topic read');
      assert.deepEqual(uniqueSorted(ca.seen), range(0, 10));
      assert.deepEqual(uniqueSorted(cb.seen), range(100, 110));
    });

    h.test('concurrent subscribe: 8 subscriptions made at once each get their messages', [], async (t) => {
      const topics = range(0, 8).map((i) => h.name(`topic-${i}`));
      const members = await Promise.all(topics.map((topic) => h.collector(t, [topic], h.name('group'))));
      await Promise.all(topics.map((topic, i) => h.publishAll(t, topic, h.records(i * 10, i * 10 + 5))));
      await h.waitFor('5 messages on each subscription', () => members.every((m) => m.seen.length >= 5));
      await Promise.all(members.map((m) => m.sub.close()));
      for (const [i, m] of members.entries()) assert.deepEqual(uniqueSorted(m.seen), range(i * 10, i * 10 + 5), `subscription ${i}`);
    });

    h.test('late group with startFrom "earliest" reads messages published before it existed', ['persistent'], async (t) => {
      const topic = h.name('topic');
      await h.publishAll(t, topic, h.records(0, 5));
      const c = await h.collector(t, [topic], h.name('group'), { startFrom: 'earliest' });
      await h.waitFor('the 5 earlier messages', () => c.seen.length >= 5);
      await c.sub.close();
      assert.deepEqual(uniqueSorted(c.seen), range(0, 5));
    });

    h.test('late group with startFrom "latest" reads only messages published after it joined', [], async (t) => {
      const topic = h.name('topic');
      await h.publishAll(t, topic, h.records(0, 5));
      const c = await h.collector(t, [topic], h.name('group'), { startFrom: 'latest' });
      await delay(h.poll * 2);
      await h.publishAll(t, topic, h.records(5, 8));
      await h.waitFor('the 3 new messages', () => c.seen.length >= 3);
      await h.holds('no earlier message', () => c.seen.every((n) => n >= 5), 500);
      await c.sub.close();
    });

    h.test('blockingReads: a message published while a subscriber waits arrives long before pollIntervalMs (5 s)', ['blockingReads'], async (t) => {
      const topic = h.name('topic');
      // A first message, there before the subscriber: no transport waits for its first read (Kafka's
      // subscribe resolves after a first fetch, which would otherwise last the whole poll interval).
      await h.publishAll(t, topic, [h.record(0)]);
      const c = await h.collector(t, [topic], h.name('group'), { pollIntervalMs: 5000 });
      await h.waitFor('the first message', () => c.seen.includes(0));
      // Let the subscriber settle into its wait for new messages.
      await delay(500);
      await h.publishAll(t, topic, [h.record(1)]);
      // A transport that sleeps between polls delivers after up to 5 s; a blocking read at once.
      await h.waitFor('the message, within half the poll interval of its publish', () => c.seen.includes(1), 2500);
      await c.sub.close();
    });
  });
}
