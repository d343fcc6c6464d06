// A third-party transport, written only against @bus/core's public types, runs the same conformance
// suite as the built-in ones. It is deliberately plain: a polling log with per-group offsets.
import { describe, it } from 'vitest';
import {
  type BatchHandler,
  ClosedError,
  type IncomingMessage,
  type PublishResult,
  type SubscribeOptions,
  type Subscription,
  type Transport,
  type WireRecord,
} from '@bus/core';
import { runTransportConformance } from '@bus/core/testing';

interface Group {
  offset: number;
  retry: { index: number; count: number }[];
}

/** The "broker": what every instance made with the same store sees. */
interface Store {
  logs: Map<string, WireRecord[]>;
  groups: Map<string, Group>;
}

function pollingLogTransport({ logs, groups }: Store): Transport {
  const loops = new Set<Subscription>();
  let closed = false;
  const log = (topic: string) => logs.get(topic) ?? (logs.set(topic, []).get(topic) as WireRecord[]);

  return {
    specificationVersion: 'v1',
    name: 'polling-log',
    capabilities: { persistent: false, consumerGroups: true, ordering: 'topic', nativeBatching: false, blockingReads: false, redeliversUnsettled: true, concurrentBatches: false, durableDeliveryCount: false },
    async publish(topic, records): Promise<PublishResult[]> {
      if (closed) return records.map(() => ({ ok: false, error: new ClosedError('polling-log') }));
      const entries = log(topic);
      return records.map((record) => ({ ok: true, id: String(entries.push(structuredClone(record)) - 1) }));
    },
    async subscribe(options: SubscribeOptions, handler: BatchHandler): Promise<Subscription> {
      if (closed) throw new ClosedError('polling-log');
      const state = options.topics.map((topic) => {
        const key = `${options.group}\u0000${topic}`;
        if (!groups.has(key)) groups.set(key, { offset: options.startFrom === 'latest' ? log(topic).length : 0, retry: [] });
        return { topic, group: groups.get(key) as Group };
      });
      let running = true;
      const loop = (async () => {
        while (running) {
          const batch: (IncomingMessage & { settle?: 'ack' | 'nack' })[] = [];
          for (const { topic, group } of state) {
            const take = (index: number, count: number) => {
              const record = log(topic)[index] as WireRecord;
              const message: IncomingMessage & { settle?: 'ack' | 'nack' } = {
                ...structuredClone(record),
                topic,
                id: String(index),
                deliveryCount: count,
                ack: () => void (message.settle ??= 'ack'),
                nack: () => {
                  if (message.settle) return;
                  message.settle = 'nack';
                  group.retry.push({ index, count });
                },
              };
              batch.push(message);
            };
            while (batch.length < options.batchSize && group.retry.length > 0) {
              const r = group.retry.shift() as { index: number; count: number };
              take(r.index, r.count + 1);
            }
            while (batch.length < options.batchSize && group.offset < log(topic).length) take(group.offset++, 1);
          }
          if (batch.length === 0) {
            await new Promise((resolve) => setTimeout(resolve, Math.min(options.pollIntervalMs, 5)));
            continue;
          }
          await handler(batch).catch(() => {});
          for (const message of batch) if (!message.settle) message.nack();
          // Give the other members of the group a turn, timers included (the suite's sharing test
          // fails without it).
          await new Promise((resolve) => setTimeout(resolve, 1));
        }
      })();
      const subscription: Subscription = {
        async close() {
          running = false;
          await loop;
          loops.delete(subscription);
        },
      };
      loops.add(subscription);
      return subscription;
    },
    async close() {
      closed = true;
      await Promise.all([...loops].map((s) => s.close()));
    },
  };
}

describe('a custom transport built on the public types', () => {
  const store: Store = { logs: new Map(), groups: new Map() };
  runTransportConformance({ describe, it }, { createTransport: () => pollingLogTransport(store), pollIntervalMs: 20, waitMs: 5000 });
});
