import { randomUUID } from 'node:crypto';
import { type BatchPublishResult, createBus } from '@bus/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DedicatedBroker, delay, startDedicatedBroker, testLogger, testTransport, waitFor } from './helpers/kafka.js';

type Events = { job: { n: number } };
const TOTAL = 10_000;
const BATCH = 200;

describe('kafka-platformatic: broker restart during a run (dedicated single-node broker)', () => {
  let broker: DedicatedBroker;
  beforeAll(async () => {
    broker = await startDedicatedBroker();
  }, 120_000);
  afterAll(async () => {
    await broker?.dispose();
  }, 60_000);

  // One restart kind per group protocol keeps the file to two runs of 10,000 messages.
  it.each([
    ['classic', 'restart-node (SIGTERM, start on the same data)', () => broker.restart()],
    ['consumer', 'kill-node (SIGKILL) + start-node', () => broker.crash()],
  ] as const)(`groupProtocol %s, %s while ${TOTAL} messages are published and consumed: every message is handled, none lost`, async (protocol, _title, restart) => {
    const topic = `bus-kplat-restart-${randomUUID().slice(0, 8)}`;
    const bus = createBus<Events>({ transports: { kafka: testTransport(broker.brokers, protocol) }, logger: testLogger() });
    const handled = new Map<number, number>();
    bus.module({
      name: 'restart',
      batchSize: 200,
      pollIntervalMs: 200,
      consumers: { c: { topics: [topic], events: ['job'] } },
      handler: ({ payload }) => {
        handled.set(payload.n, (handled.get(payload.n) ?? 0) + 1);
      },
    });
    try {
      await bus.start();
      const started = Date.now();
      const queue = Array.from({ length: TOTAL }, (_, n) => n);
      let confirmed = 0;
      let failedCalls = 0;
      let failedRecords = 0;
      const errorCodes = new Set<string>();
      let restarting: Promise<void> | undefined;
      let restartMs = 0;
      while (queue.length > 0) {
        if (!restarting && confirmed >= TOTAL * 0.3) {
          const t0 = Date.now();
          restarting = restart().then(() => {
            restartMs = Date.now() - t0;
          });
        }
        const ns = queue.splice(0, BATCH);
        const results: BatchPublishResult[] = await bus.publishBatch(
          topic,
          ns.map((n) => ({ event: 'job' as const, payload: { n }, key: `k${n % 50}` })),
        );
        const failed = ns.filter((_, i) => !results[i]?.ok);
        for (const r of results) if (!r.ok) errorCodes.add(r.error.code);
        confirmed += ns.length - failed.length;
        if (failed.length > 0) {
          failedCalls++;
          failedRecords += failed.length;
          // A failed publish is the caller's to retry (the bus gives each attempt a new envelope id; we count payloads).
          queue.unshift(...failed);
          await delay(250);
        } else {
          // Pace the run so that it spans the outage.
          await delay(40);
        }
      }
      const publishedMs = Date.now() - started;
      await restarting;
      await waitFor(`all ${TOTAL} handled`, () => handled.size >= TOTAL, 120_000);
      const totalMs = Date.now() - started;
      const duplicates = [...handled.values()].reduce((sum, c) => sum + c - 1, 0);
      console.log(
        `[restart test] ${protocol}, ${_title}: ${TOTAL} handled in ${totalMs} ms (publishing ${publishedMs} ms, broker restart ${restartMs} ms); ` +
          `failed publish calls ${failedCalls} (${failedRecords} records retried, codes ${[...errorCodes].join(',') || '-'}); duplicates ${duplicates}`,
      );
      for (let n = 0; n < TOTAL; n++) if (!handled.has(n)) expect.fail(`message ${n} was never handled`);
      expect(handled.size).toBe(TOTAL);
    } finally {
      await bus.close();
    }
  }, 240_000);
});
