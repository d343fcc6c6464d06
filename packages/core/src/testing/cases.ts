import assert from 'node:assert/strict';
import type { IncomingMessage, Transport } from '../transport.js';
import { delay, type Harness, range, uniqueSorted } from './harness.js';

/**
 * The core cases, each a function of a transport: registered once as tests by the feature files, and
 * run N times in parallel by the stress tests.
 */

/** Every message arrives with its value, key and headers intact. */
export async function publishSubscribeCase(h: Harness, t: Transport): Promise<void> {
  const topic = h.name('topic');
  const got: IncomingMessage[] = [];
  const sub = await h.subscribe(t, [topic], h.name('group'), (batch) => {
    for (const m of batch) {
      got.push(m);
      m.ack();
    }
  });
  try {
    await h.publishAll(t, topic, h.records(0, 20, { key: 'k-1', headers: { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' } }));
    await h.waitFor('20 messages', () => got.length >= 20);
  } finally {
    await sub.close();
  }
  assert.deepEqual(uniqueSorted(got.map((m) => h.numberOf(m))), range(0, 20));
  const first = got[0] as IncomingMessage;
  assert.equal(first.topic, topic);
  assert.equal(first.key, 'k-1');
  assert.equal(first.headers.traceparent, '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
  assert.equal(first.headers['x-n'], String(h.numberOf(first)));
  assert.equal(first.deliveryCount, 1);
}

/** Two members of one group split the messages; together they see each one. */
export async function sharingCase(h: Harness, t: Transport, second: Transport = t): Promise<void> {
  const topic = h.name('topic');
  const group = h.name('group');
  const m1 = await h.collector(t, [topic], group, { batchSize: 5 });
  const m2 = await h.collector(second, [topic], group, { batchSize: 5 });
  try {
    await delay(h.poll * 2);
    await h.publishAll(
      t,
      topic,
      range(0, 200).map((n) => h.record(n, { key: `key-${n % 16}` })),
    );
    await h.waitFor('200 messages across the members', () => uniqueSorted([...m1.seen, ...m2.seen]).length >= 200);
  } finally {
    await Promise.all([m1.sub.close(), m2.sub.close()]);
  }
  assert.deepEqual(uniqueSorted([...m1.seen, ...m2.seen]), range(0, 200));
  assert.ok(m1.seen.length > 0 && m2.seen.length > 0, `both members got work (${m1.seen.length}/${m2.seen.length})`);
}

/** A nacked message comes again with a higher deliveryCount. */
export async function nackCase(h: Harness, t: Transport): Promise<void> {
  const topic = h.name('topic');
  const deliveries: number[] = [];
  const sub = await h.subscribe(t, [topic], h.name('group'), (batch) => {
    for (const m of batch) {
      deliveries.push(m.deliveryCount);
      if (m.deliveryCount === 1) m.nack();
      else m.ack();
    }
  });
  try {
    await h.publishAll(t, topic, [h.record(1)]);
    await h.waitFor('a redelivery', () => deliveries.length >= 2);
  } finally {
    await sub.close();
  }
  assert.equal(deliveries[0], 1);
  assert.ok((deliveries[1] as number) >= 2, `deliveryCount of the redelivery is ${deliveries[1]}`);
}

/** A single member sees one key in publish order, across several publish calls and batches. */
export async function orderCase(h: Harness, t: Transport): Promise<void> {
  const topic = h.name('topic');
  const c = await h.collector(t, [topic], h.name('group'), { batchSize: 13 });
  try {
    for (let i = 0; i < 100; i += 25) await h.publishAll(t, topic, h.records(i, i + 25, { key: 'same' }));
    await h.waitFor('100 messages', () => c.seen.length >= 100);
  } finally {
    await c.sub.close();
  }
  assert.deepEqual(c.seen, range(0, 100));
}
