import assert from 'node:assert/strict';
import { HEADER } from '../codec.js';
import { DLQ_HEADER } from '../router.js';
import type { IncomingMessage } from '../transport.js';
import { type ConformanceOptions, Harness, range, type TestApi, uniqueSorted } from './harness.js';

/**
 * Retry and dead letter through the routing engine on the transport: resend on error, dead letter
 * with its reason headers, undecodable and empty-event records, and `maxDeliveries` for a message
 * that keeps crashing its member.
 */
export function deadLetterTests(api: TestApi, options: ConformanceOptions): void {
  const h = new Harness(api, options);
  api.describe('dead letter', () => {
    h.test('bus: resend on error: a handler failing twice then succeeding is not dead-lettered', [], async (t) => {
      const topic = h.name('topic');
      const mod = h.name('mod');
      const bus = h.busOn(t);
      const attempts: number[] = [];
      const dlq = await h.dlqReader(t, topic);
      bus.module({
        name: mod,
        pollIntervalMs: h.poll,
        retry: { attempts: 3, baseDelayMs: 10, maxDelayMs: 20 },
        consumers: { c: { topics: [topic], events: ['test.happened'] } },
        handler: (ctx) => {
          attempts.push(ctx.message.attempt);
          if (ctx.message.attempt < 3) throw new Error('not yet');
        },
      });
      await bus.start();
      await bus.publish(topic, 'test.happened', { n: 1 });
      await h.waitFor('the third attempt', () => attempts.length >= 3);
      await h.holds('nothing dead-lettered', () => dlq.got.length === 0, 500);
      await bus.close();
      await dlq.sub.close();
      assert.deepEqual(attempts, [1, 2, 3]);
    });

    h.test('bus: retry then dead letter with reason, attempts and origin; nothing acked before that', [], async (t) => {
      const topic = h.name('topic');
      const mod = h.name('mod');
      const bus = h.busOn(t);
      let calls = 0;
      const dlq = await h.dlqReader(t, topic);
      bus.module({
        name: mod,
        pollIntervalMs: h.poll,
        retry: { attempts: 3, baseDelayMs: 10, maxDelayMs: 20 },
        consumers: { c: { topics: [topic], events: ['test.happened'] } },
        handler: () => {
          calls++;
          throw new Error('payment service down');
        },
      });
      await bus.start();
      const receipt = await bus.publish(topic, 'test.happened', { n: 1 });
      await h.waitFor('the dead letter', () => dlq.got.length >= 1);
      await bus.close();
      await dlq.sub.close();
      assert.equal(calls, 3);
      const dead = dlq.got[0] as IncomingMessage;
      assert.equal(dead.headers[DLQ_HEADER.reason], 'payment service down');
      assert.equal(dead.headers[DLQ_HEADER.attempts], '3');
      assert.equal(dead.headers[DLQ_HEADER.topic], topic);
      assert.equal(dead.headers[DLQ_HEADER.group], `${mod}-c`);
      assert.equal(dead.headers[HEADER.id], receipt.id);
      assert.deepEqual(h.codec.decode(dead).payload, { n: 1 });
    });

    h.test('bus: continue after errors: failing messages go to the dead letter, the rest are handled', [], async (t) => {
      const topic = h.name('topic');
      const mod = h.name('mod');
      const bus = h.busOn(t);
      const handled: number[] = [];
      const dlq = await h.dlqReader(t, topic);
      bus.module({
        name: mod,
        pollIntervalMs: h.poll,
        retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 5 },
        consumers: { c: { topics: [topic], events: ['test.happened'] } },
        handler: (ctx) => {
          if (ctx.payload.n % 5 === 0) throw new Error(`poison ${ctx.payload.n}`);
          handled.push(ctx.payload.n);
        },
      });
      await bus.start();
      await bus.publishBatch(
        topic,
        range(1, 21).map((n) => ({ event: 'test.happened' as const, payload: { n } })),
      );
      await h.waitFor('16 handled and 4 dead-lettered', () => uniqueSorted(handled).length >= 16 && dlq.got.length >= 4);
      await bus.close();
      await dlq.sub.close();
      assert.deepEqual(
        uniqueSorted(handled),
        range(1, 21).filter((n) => n % 5 !== 0),
      );
      assert.deepEqual(dlq.got.map((m) => m.headers[DLQ_HEADER.reason]).sort(), ['poison 10', 'poison 15', 'poison 20', 'poison 5']);
    });

    h.test('bus: undecodable bytes go to the dead letter with the reason and the consumer goes on', [], async (t) => {
      const topic = h.name('topic');
      const mod = h.name('mod');
      const bus = h.busOn(t);
      const handled: number[] = [];
      const dlq = await h.dlqReader(t, topic);
      bus.module({
        name: mod,
        pollIntervalMs: h.poll,
        consumers: { c: { topics: [topic], events: ['test.happened'] } },
        handler: (ctx) => {
          handled.push(ctx.payload.n);
        },
      });
      await bus.start();
      const garbage = h.record(0);
      // Not UTF-8: the dead letter must hold these bytes exactly (a string round trip would not).
      const binary = Buffer.from([0xff, 0xfe, 0x80, 0x00, 0xc3, 0x28]);
      await h.publishAll(t, topic, [
        { value: Buffer.from('{not json'), headers: garbage.headers },
        { value: 'x', headers: { junk: '1' } },
        { value: binary, headers: { ...garbage.headers, [HEADER.id]: 'binary' } },
      ]);
      await bus.publish(topic, 'test.happened', { n: 42 });
      await h.waitFor('the good message and 3 dead letters', () => handled.includes(42) && dlq.got.length >= 3);
      await bus.close();
      await dlq.sub.close();
      const reasons = dlq.got.map((m) => m.headers[DLQ_HEADER.reason] ?? '');
      assert.ok(
        reasons.some((r) => r.includes('not valid JSON')),
        reasons.join(' | '),
      );
      assert.ok(
        reasons.some((r) => r.includes('missing header "ce_id"')),
        reasons.join(' | '),
      );
      assert.ok(dlq.got.every((m) => m.headers[DLQ_HEADER.error] === 'DECODE'));
      const letter = dlq.got.find((m) => m.headers[HEADER.id] === 'binary');
      assert.ok(letter && Buffer.from(letter.value).equals(binary), `dead letter bytes ${letter ? Buffer.from(letter.value).toString('hex') : 'missing'}`);
    });

    h.test('bus: empty event: a record whose ce_type is empty is dead-lettered (DECODE) with its reason, never skipped', [], async (t) => {
      const topic = h.name('topic');
      const mod = h.name('mod');
      const bus = h.busOn(t);
      const handled: number[] = [];
      const dlq = await h.dlqReader(t, topic);
      bus.module({
        name: mod,
        pollIntervalMs: h.poll,
        consumers: { c: { topics: [topic], events: ['test.happened'] } },
        handler: (ctx) => {
          handled.push(ctx.payload.n);
        },
      });
      await bus.start();
      // As redis-cli or kcat would write it: every attribute there, the event name empty.
      await h.publishAll(t, topic, [h.record(7, { headers: { [HEADER.type]: '' } })]);
      await bus.publish(topic, 'test.happened', { n: 42 });
      await h.waitFor('the good message and the dead letter', () => handled.includes(42) && dlq.got.length >= 1);
      await bus.close();
      await dlq.sub.close();
      assert.deepEqual(handled, [42]);
      const dead = dlq.got[0] as IncomingMessage;
      assert.equal(dead.headers[DLQ_HEADER.error], 'DECODE');
      assert.ok(dead.headers[DLQ_HEADER.reason], 'the dead letter gives no reason');
      assert.equal(dead.headers['x-n'], '7', 'the dead letter is not the empty-event record');
      const outcomes = bus.settled.map((s) => s.outcome);
      assert.deepEqual(outcomes.filter((o) => o === 'skipped'), [], 'a message was counted as skipped');
      assert.equal(outcomes.filter((o) => o === 'dead_lettered').length, 1, `outcomes: ${outcomes.join(', ')}`);
    });

    h.test(
      'bus: maxDeliveries: a message that crashes its member each time goes to the dead letter once delivered more than maxDeliveries times',
      ['redeliversUnsettled', 'durableDeliveryCount'],
      async (t) => {
        const topic = h.name('topic');
        const mod = h.name('crashing');
        const maxDeliveries = 2;
        const dlq = await h.dlqReader(t, topic);
        const counts: number[] = [];
        // Each round is a member that takes the message and dies on it: its handler only ends when
        // the drain deadline aborts it, so nothing settles it.
        for (let round = 0; round < maxDeliveries + 2 && dlq.got.length === 0; round++) {
          const bus = h.busOn(t);
          bus.module({
            name: mod,
            pollIntervalMs: h.poll,
            drainTimeoutMs: 50,
            maxDeliveries,
            retry: { attempts: 3, baseDelayMs: 10, maxDelayMs: 20 },
            consumers: { c: { topics: [topic], events: ['test.happened'] } },
            handler: async (ctx) => {
              counts.push(ctx.message.deliveryCount);
              await new Promise<void>((_, reject) => ctx.signal.addEventListener('abort', () => reject(new Error('member crashed'))));
            },
          });
          await bus.start();
          if (round === 0) await bus.publish(topic, 'test.happened', { n: 1 });
          await h.waitFor(`delivery ${round + 1} or the dead letter`, () => counts.length > round || dlq.got.length > 0, h.waitMs * 2);
          await bus.close();
        }
        await h.waitFor('the dead letter', () => dlq.got.length >= 1);
        await dlq.sub.close();
        assert.deepEqual(counts, range(1, maxDeliveries + 1), `deliveryCount seen by the handler: ${counts.join(', ')}`);
        const dead = dlq.got[0] as IncomingMessage;
        assert.match(dead.headers[DLQ_HEADER.reason] ?? '', /maxDeliveries/);
        assert.deepEqual(h.codec.decode(dead).payload, { n: 1 });
      },
    );
  });
}
