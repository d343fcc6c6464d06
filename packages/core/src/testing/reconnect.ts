import assert from 'node:assert/strict';
import { type ConformanceOptions, delay, Harness, type TestApi, uniqueSorted } from './harness.js';

/**
 * Reconnect: consuming and publishing resume after `options.restartBroker()` stopped and started the
 * broker. Skipped without that option.
 */
export function reconnectTests(api: TestApi, options: ConformanceOptions): void {
  const h = new Harness(api, options);
  const restart = options.restartBroker;
  api.describe('reconnect', () => {
    h.test(
      'reconnect: consuming and publishing resume after the broker restarts',
      ['persistent'],
      async (t) => {
        assert.ok(restart, 'registered without restartBroker');
        const topic = h.name('topic');
        const c = await h.collector(t, [topic], h.name('group'));
        await h.publishAll(t, topic, h.records(0, 20));
        await h.waitFor('20 before the restart', () => uniqueSorted(c.seen).length >= 20);
        await restart();
        const deadline = Date.now() + h.waitMs * 3;
        let sent = false;
        while (!sent) {
          const results = await t.publish(topic, h.records(20, 40));
          sent = results.every((r) => r.ok);
          if (!sent) {
            if (Date.now() > deadline) assert.fail('publish did not recover after the restart');
            await delay(250);
          }
        }
        await h.waitFor('20 after the restart', () => uniqueSorted(c.seen).length >= 40, h.waitMs * 3);
        await c.sub.close();
      },
      restart ? {} : { unless: 'no restartBroker option was given' },
    );
  });
}
