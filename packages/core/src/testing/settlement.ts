import assert from 'node:assert/strict';
import { nackCase } from './cases.js';
import { type ConformanceOptions, delay, Harness, type TestApi, uniqueSorted } from './harness.js';

/**
 * The `BatchHandler` settlement rules: a nacked, unsettled or failed message is delivered again; the
 * first settlement wins.
 */
export function settlementTests(api: TestApi, options: ConformanceOptions): void {
  const h = new Harness(api, options);
  api.describe('settlement', () => {
    h.test('nack: a nacked message is delivered again with a higher deliveryCount', [], (t) => nackCase(h, t));

    h.test('no ack: a message left unsettled by the batch handler is delivered again', [], async (t) => {
      const topic = h.name('topic');
      let calls = 0;
      const acked: number[] = [];
      const sub = await h.subscribe(t, [topic], h.name('group'), (batch) => {
        calls++;
        if (calls === 1) return;
        for (const m of batch) {
          acked.push(h.numberOf(m));
          m.ack();
        }
      });
      await h.publishAll(t, topic, [h.record(7)]);
      await h.waitFor('the unsettled message again', () => acked.length > 0);
      await sub.close();
      assert.deepEqual(acked, [7]);
    });

    h.test('a batch handler that throws: its unsettled messages are delivered again', [], async (t) => {
      const topic = h.name('topic');
      let thrown = false;
      const seen: number[] = [];
      const sub = await h.subscribe(t, [topic], h.name('group'), (batch) => {
        if (!thrown) {
          thrown = true;
          throw new Error('boom');
        }
        for (const m of batch) {
          seen.push(h.numberOf(m));
          m.ack();
        }
      });
      await h.publishAll(t, topic, h.records(0, 3));
      await h.waitFor('all 3 after the failure', () => uniqueSorted(seen).length >= 3);
      await sub.close();
      assert.deepEqual(uniqueSorted(seen), [0, 1, 2]);
    });

    h.test(
      'one handler call at a time per subscription when concurrentBatches is false',
      [],
      async (t) => {
        const topics = [h.name('topic-a'), h.name('topic-b'), h.name('topic-c')];
        let inFlight = 0;
        let maxInFlight = 0;
        let handled = 0;
        const sub = await h.subscribe(
          t,
          topics,
          h.name('group'),
          async (batch) => {
            inFlight++;
            maxInFlight = Math.max(maxInFlight, inFlight);
            await delay(5);
            for (const m of batch) m.ack();
            handled += batch.length;
            inFlight--;
          },
          { batchSize: 5 },
        );
        await Promise.all(topics.map((topic, i) => h.publishAll(t, topic, h.records(i * 100, i * 100 + 30, { key: `k${i}` }))));
        await h.waitFor('90 messages', () => handled >= 90);
        await sub.close();
        assert.equal(maxInFlight, 1, `${maxInFlight} batch handler calls of one subscription overlapped`);
      },
      { unless: (c) => (c.concurrentBatches ? 'the transport declares concurrentBatches: its calls may overlap' : undefined) },
    );

    h.test('the first settlement wins: a message acked then nacked is not delivered again, one nacked then acked is', [], async (t) => {
      const topic = h.name('topic');
      const deliveries: number[] = [];
      const sub = await h.subscribe(t, [topic], h.name('group'), (batch) => {
        for (const m of batch) {
          const n = h.numberOf(m);
          deliveries.push(n);
          const first = deliveries.filter((d) => d === n).length === 1;
          if (n === 1 && first) {
            m.nack();
            m.ack();
          } else {
            m.ack();
            m.nack();
          }
        }
      });
      await h.publishAll(t, topic, h.records(0, 2));
      await h.waitFor('message 1 again', () => deliveries.filter((n) => n === 1).length >= 2);
      await h.holds('message 0, acked first, is not delivered again', () => deliveries.filter((n) => n === 0).length === 1, 500);
      await sub.close();
    });
  });
}
