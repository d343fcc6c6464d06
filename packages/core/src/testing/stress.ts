import type { Transport } from '../transport.js';
import { nackCase, orderCase, publishSubscribeCase, sharingCase } from './cases.js';
import { type ConformanceOptions, Harness, type Need, range, type TestApi } from './harness.js';

/**
 * Stress mode (Watermill's stress tests): with `options.stress` = N ≥ 2, each core case runs N
 * copies in parallel, each on a transport instance of its own. Registers nothing otherwise.
 */
export function stressTests(api: TestApi, options: ConformanceOptions): void {
  const h = new Harness(api, options);
  const copies = h.stress;
  if (copies < 2) return;
  const cases: [string, readonly Need[], (t: Transport) => Promise<void>][] = [
    ['publish and subscribe', [], (t) => publishSubscribeCase(h, t)],
    ['group sharing', ['consumerGroups'], (t) => sharingCase(h, t)],
    ['nack redelivery', [], (t) => nackCase(h, t)],
    ['order of one key', ['ordering'], (t) => orderCase(h, t)],
  ];
  api.describe(`stress (${copies} copies in parallel)`, () => {
    for (const [title, needs, run] of cases) {
      h.test(
        `stress: ${copies} × ${title} in parallel`,
        needs,
        async (t, env) => {
          const transports = [t, ...(await Promise.all(range(1, copies).map(() => env.another())))];
          await Promise.all(transports.map((one) => run(one)));
        },
        { timeoutMs: h.timeout * 2 },
      );
    }
  });
}
