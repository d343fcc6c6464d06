import assert from 'node:assert/strict';
import { DRAIN_SLACK_MS } from '../module.js';
import type { Transport } from '../transport.js';
import { type ConformanceOptions, delay, Harness, range, type TestApi } from './harness.js';

/**
 * A stop that starts no new work: once `close()` begins, no handler starts, what the running
 * handlers acknowledged is committed, and the rest goes to the next member, none of it twice.
 * Checked on the transport (a subscription) and through the routing engine (`bus.close()`).
 */
export function drainTests(api: TestApi, options: ConformanceOptions): void {
  const h = new Harness(api, options);

  /**
   * `count` messages, handlers of 300 ms; `bus.close()` as soon as the first handler started. Then a
   * second bus on another instance, same group, must handle exactly what the first did not finish.
   */
  const busDrain = async (t: Transport, other: Transport, batchSize: number, concurrency: number, count: number) => {
    const topic = h.name('topic');
    const mod = h.name('drain');
    const drainTimeoutMs = 3000;
    const definition = (completed: number[], started: { n: number; afterClose: boolean }[], isClosing: () => boolean) => ({
      name: mod,
      pollIntervalMs: h.poll,
      batchSize,
      concurrency,
      drainTimeoutMs,
      consumers: { c: { topics: [topic], events: ['test.happened' as const] } },
      handler: async (ctx: { payload: { n: number } }) => {
        started.push({ n: ctx.payload.n, afterClose: isClosing() });
        await delay(300);
        completed.push(ctx.payload.n);
      },
    });

    const first = h.busOn(t);
    const firstDone: number[] = [];
    const firstStarted: { n: number; afterClose: boolean }[] = [];
    let closing = false;
    first.module(definition(firstDone, firstStarted, () => closing));
    await first.start();
    await first.publishBatch(
      topic,
      range(0, count).map((n) => ({ event: 'test.happened' as const, payload: { n }, key: concurrency === 1 ? 'one-key' : `key-${n}` })),
    );
    await h.waitFor('the first handler to start', () => firstStarted.length > 0);
    closing = true;
    const closeStarted = Date.now();
    await first.close();
    const closeMs = Date.now() - closeStarted;

    assert.ok(firstStarted.length <= concurrency, `${firstStarted.length} handlers started with concurrency ${concurrency}`);
    const late = firstStarted.filter((s) => s.afterClose).map((s) => s.n);
    assert.deepEqual(late, [], `handlers started after close() began: ${late.join(', ')}`);
    assert.ok(closeMs <= drainTimeoutMs + DRAIN_SLACK_MS, `close() took ${closeMs} ms, more than drainTimeoutMs + ${DRAIN_SLACK_MS}`);
    assert.deepEqual(
      [...firstDone].sort((a, b) => a - b),
      firstStarted.map((s) => s.n).sort((a, b) => a - b),
      'a handler started before close was cut off',
    );

    const second = h.busOn(other);
    const secondDone: number[] = [];
    second.module(definition(secondDone, [], () => false));
    await second.start();
    const rest = range(0, count).filter((n) => !firstDone.includes(n));
    await h.waitFor(`the ${rest.length} unstarted messages on the next member`, () => rest.every((n) => secondDone.includes(n)), h.waitMs * 2);
    await h.holds('no message is completed twice', () => secondDone.every((n) => !firstDone.includes(n)) && new Set(secondDone).size === secondDone.length, 1000);
    await second.close();
    assert.deepEqual(
      [...firstDone, ...secondDone].sort((a, b) => a - b),
      range(0, count),
    );
  };

  api.describe('drain', () => {
    h.test(
      'close waits for the running batch handler, commits what it acknowledged and hands nothing more to the handler',
      ['consumerGroups'],
      async (t) => {
        const topic = h.name('topic');
        const group = h.name('group');
        await h.publishAll(t, topic, h.records(0, 10, { key: 'k' }));
        let closing = false;
        let calls = 0;
        let callsAfterClose = 0;
        let finished = false;
        const acked: number[] = [];
        const sub = await h.subscribe(
          t,
          [topic],
          group,
          async (batch) => {
            calls++;
            if (closing) callsAfterClose++;
            await delay(300);
            for (const m of batch) {
              acked.push(h.numberOf(m));
              m.ack();
            }
            finished = true;
          },
          { batchSize: 2 },
        );
        await h.waitFor('the handler to start', () => calls > 0);
        closing = true;
        await sub.close();
        assert.ok(finished, 'close resolved before the running handler finished');
        assert.equal(callsAfterClose, 0, `the handler was called ${callsAfterClose} time(s) after close began`);
        assert.ok(acked.length > 0 && acked.length <= 2, `acknowledged ${acked.length} messages with batchSize 2`);
        const next = await h.collector(t, [topic], group);
        const rest = range(0, 10).filter((n) => !acked.includes(n));
        await h.waitFor('the messages not handled before close, on the next member', () => rest.every((n) => next.seen.includes(n)));
        await h.holds('nothing acknowledged before close comes back', () => !next.seen.some((n) => acked.includes(n)), 500);
        await next.sub.close();
      },
    );

    h.test('concurrent close: closing subscriptions and the transport at once ends without error or hang', [], async (t) => {
      const topic = h.name('topic');
      let handled = 0;
      const subs = await Promise.all(
        range(0, 3).map((i) =>
          h.subscribe(
            t,
            [topic],
            h.name(`group-${i}`),
            async (batch) => {
              await delay(50);
              for (const m of batch) m.ack();
              handled += batch.length;
            },
            { batchSize: 5 },
          ),
        ),
      );
      await h.publishAll(t, topic, h.records(0, 30));
      await h.waitFor('some messages in hand', () => handled > 0);
      let timer: NodeJS.Timeout | undefined;
      const outcome = await Promise.race([
        Promise.allSettled([subs[0]?.close(), t.close(), subs[1]?.close(), subs[2]?.close(), t.close(), subs[0]?.close()]),
        new Promise<'hang'>((resolve) => {
          timer = setTimeout(() => resolve('hang'), h.waitMs);
        }),
      ]);
      clearTimeout(timer);
      assert.notEqual(outcome, 'hang', `closing at once did not end within ${h.waitMs} ms`);
      const failures = (outcome as PromiseSettledResult<unknown>[]).filter((r) => r.status === 'rejected');
      assert.deepEqual(
        failures.map((f) => String((f as PromiseRejectedResult).reason)),
        [],
        'a close rejected',
      );
    });

    h.test(
      'bus drain (batchSize 10, concurrency 1): no handler starts after close() began; the next member handles the rest, none twice',
      ['consumerGroups'],
      async (t, env) => busDrain(t, await env.another(), 10, 1, 10),
    );

    h.test(
      'bus drain (batchSize 8, concurrency 4): no handler starts after close() began; the next member handles the rest, none twice',
      ['consumerGroups'],
      async (t, env) => busDrain(t, await env.another(), 8, 4, 8),
    );

    h.test('bus: a handler cut off by close is not acknowledged; the group gets the message again', ['redeliversUnsettled'], async (t) => {
      const topic = h.name('topic');
      const mod = h.name('mod');
      const first = h.busOn(t);
      let started = false;
      first.module({
        name: mod,
        pollIntervalMs: h.poll,
        drainTimeoutMs: 100,
        consumers: { c: { topics: [topic], events: ['test.happened'] } },
        handler: async (ctx) => {
          started = true;
          await new Promise<void>((_, reject) => ctx.signal.addEventListener('abort', () => reject(new Error('aborted'))));
        },
      });
      await first.start();
      await first.publish(topic, 'test.happened', { n: 5 });
      await h.waitFor('the handler to start', () => started);
      await first.close();
      const second = h.busOn(t);
      const again: number[] = [];
      second.module({
        name: mod,
        pollIntervalMs: h.poll,
        consumers: { c: { topics: [topic], events: ['test.happened'] } },
        handler: (ctx) => {
          again.push(ctx.payload.n);
        },
      });
      await second.start();
      await h.waitFor('the redelivery', () => again.includes(5), h.waitMs * 2);
      await second.close();
    });
  });
}
