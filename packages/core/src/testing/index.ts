import { createServer } from 'node:net';
import { busTests } from './bus.js';
import { consumeTests } from './consume.js';
import { deadLetterTests } from './dead-letter.js';
import { drainTests } from './drain.js';
import { groupTests } from './groups.js';
import type { ConformanceOptions, TestApi } from './harness.js';
import { orderingTests } from './ordering.js';
import { publishTests } from './publish.js';
import { reconnectTests } from './reconnect.js';
import { settlementTests } from './settlement.js';
import { stressTests } from './stress.js';

export type { ConformanceOptions, Need, RunnerContext, TestApi, TransportRequest } from './harness.js';
export { busTests, consumeTests, deadLetterTests, drainTests, groupTests, orderingTests, publishTests, reconnectTests, settlementTests, stressTests };

/**
 * The contract every transport keeps, as tests, in the spirit of Watermill's universal pub/sub tests
 * and keyv's storage test suite: every feature function below, in one `describe`. Register it in your
 * runner (vitest shown; see {@link TestApi} for node:test and mocha):
 *
 * ```ts
 * import { describe, it } from 'vitest';
 * import { runTransportConformance } from '@bus/core/testing';
 * runTransportConformance({ describe, it }, { createTransport: () => myTransport({ url }) });
 * ```
 *
 * A test of a capability the transport does not declare is reported **skipped** with the reason
 * (never passed); a runner without a runtime skip (jest) fails it instead. Several tests call
 * `createTransport` more than once: each instance of one test must reach the same broker.
 * Or run only some features: `publishTests(api, options)`, `consumeTests`, `groupTests`,
 * `settlementTests`, `orderingTests`, `deadLetterTests`, `drainTests`, `busTests`, `reconnectTests`,
 * `stressTests` (only with `options.stress`).
 */
export function runTransportConformance(api: TestApi, options: ConformanceOptions): void {
  api.describe('transport conformance', () => {
    publishTests(api, options);
    consumeTests(api, options);
    groupTests(api, options);
    settlementTests(api, options);
    orderingTests(api, options);
    deadLetterTests(api, options);
    drainTests(api, options);
    busTests(api, options);
    reconnectTests(api, options);
    stressTests(api, options);
  });
}

/**
 * A TCP port free on 127.0.0.1 right now, for a broker or server a test starts of its own (e.g. the
 * broker behind a `restartBroker` hook).
 */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.unref();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export { type DelayTestApi, type DelayTestOptions, delayTests } from './delays.js';
