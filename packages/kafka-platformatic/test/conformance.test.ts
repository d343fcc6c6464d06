import { randomUUID } from 'node:crypto';
import { runTransportConformance } from '@bus/core/testing';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { BROKERS, type DedicatedBroker, PROTOCOLS, requireBroker, startDedicatedBroker, testTransport } from './helpers/kafka.js';

const run = randomUUID().slice(0, 8);

for (const protocol of PROTOCOLS) {
  describe(`kafka-platformatic conformance, groupProtocol '${protocol}' (shared broker; reconnect on a dedicated broker it restarts)`, () => {
    let dedicated: DedicatedBroker | undefined;
    // The suite's createTransport cannot tell which test it serves: the wrapped `it` tells it.
    let current = '';
    beforeAll(async () => {
      await requireBroker();
    });
    afterAll(async () => {
      await dedicated?.dispose();
    }, 60_000);

    runTransportConformance(
      {
        describe,
        it: (title, fn, timeoutMs) =>
          it(
            title,
            async (context) => {
              current = title;
              if (title.startsWith('reconnect')) dedicated ??= await startDedicatedBroker();
              // The context carries vitest's skip(), which the suite uses for what the transport lacks.
              await fn(context);
            },
            title.startsWith('reconnect') ? (timeoutMs ?? 60_000) + 90_000 : timeoutMs,
          ),
      },
      {
        createTransport: () => testTransport(current.startsWith('reconnect') && dedicated ? dedicated.brokers : BROKERS, protocol),
        restartBroker: async () => {
          await dedicated?.restart();
        },
        prefix: `bus-kplat-${protocol}-${run}`,
        pollIntervalMs: 100,
        waitMs: 30_000,
        testTimeoutMs: 90_000,
      },
    );
  });
}
