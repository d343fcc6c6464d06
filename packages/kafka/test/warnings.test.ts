import { randomUUID } from 'node:crypto';
import type { WireRecord } from '@bus/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixKafkajsNegativeTimeout } from '../src/kafkajs-timeout.js';
import { BROKERS, testTransport, waitFor } from './helpers/kafka.js';

// Node.js 24+ prints a TimeoutNegativeWarning for kafkajs 2.2.4's request-queue check (a delay of
// -Date.now()): every process that fetched from Kafka wrote one to stderr. This file runs in its own
// process, so the listener sees every warning the transport causes.
const warnings: Error[] = [];
const onWarning = (warning: Error) => warnings.push(warning);

describe('kafka on the current Node.js lines: no runtime warnings', () => {
  beforeAll(() => {
    // No requireBroker(): its plain kafkajs client would trip the warning before the bus's first client.
    process.on('warning', onWarning);
  });
  afterAll(() => {
    process.off('warning', onWarning);
  });

  it('publishing and consuming 200 records emits no TimeoutNegativeWarning (kafkajs request queue)', async () => {
    const t = testTransport(BROKERS);
    const topic = `bus-kafka-warn-${randomUUID().slice(0, 8)}`;
    try {
      const records: WireRecord[] = Array.from({ length: 200 }, (_, n) => ({ value: Buffer.from(String(n)), headers: { n: String(n) } }));
      expect((await t.publish(topic, records)).every((r) => r.ok)).toBe(true);
      let seen = 0;
      const s = await t.subscribe(
        { group: `g-${randomUUID().slice(0, 8)}`, topics: [topic], batchSize: 50, pollIntervalMs: 100, startFrom: 'earliest', consumerName: 'm' },
        async (batch) => {
          for (const m of batch) {
            seen++;
            m.ack();
          }
        },
      );
      await waitFor('200 records', () => seen >= 200, 30_000);
      await s.close();
    } finally {
      await t.close();
    }
    // Warnings are emitted on the next tick: give them one.
    await new Promise((resolve) => setImmediate(resolve));
    expect(warnings.map((w) => `${w.name}: ${w.message} ${w.stack}`)).toEqual([]);
    expect(fixKafkajsNegativeTimeout()).toBe(true); // kafkajs 2.2.4's method was recognised and replaced
  });
});
