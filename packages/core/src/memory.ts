import type { DelayedRecord } from './delay.js';
import type { WireRecord } from './envelope.js';
import { ClosedError } from './errors.js';
import { BatchSettlement } from './kit/settlement.js';
import type {
  BatchHandler,
  LagInfo,
  PublishResult,
  SubscribeOptions,
  Subscription,
  Transport,
  TransportCapabilities,
} from './transport.js';

interface Delivery {
  seq: number;
  count: number;
}

/** One consumer group's state on one topic, like a Redis stream group: cursor, pending, redeliveries. */
interface GroupCursor {
  next: number;
  /** Delivered and not settled, by sequence number. */
  pending: Map<number, Delivery>;
  /** Nacked or released; delivered again before new entries. */
  redeliver: Delivery[];
}

/** A message taken for a batch: where it comes from. */
interface Taken {
  name: string;
  cursor: GroupCursor;
  delivery: Delivery;
}

interface Topic {
  log: WireRecord[];
  groups: Map<string, GroupCursor>;
  /** Members blocked in a read, woken by publish. */
  waiters: Set<() => void>;
}

export interface MemoryTransportOptions {
  /** Transport name in metrics and logs. @default 'memory' */
  name?: string;
  /**
   * Where the topics and groups live. Transports made with the same broker see the same messages
   * and share consumer groups, like processes sharing a broker (e.g. two instances in a test).
   * @default a broker of this transport's own
   */
  broker?: MemoryBroker;
}

/** The state several memory transports can share: topics, their messages and consumer groups. See {@link memoryBroker}. */
export interface MemoryBroker {
  readonly kind: 'memory-broker';
}

const brokerTopics = new WeakMap<MemoryBroker, Map<string, Topic>>();

/** A new, empty in-process broker for {@link memoryTransport}'s `broker` option. */
export function memoryBroker(): MemoryBroker {
  const broker: MemoryBroker = Object.freeze({ kind: 'memory-broker' as const });
  brokerTopics.set(broker, new Map());
  return broker;
}

/**
 * An in-process transport with the semantics of a broker with consumer groups: every group gets every
 * message of its topics, members of one group share them, a nacked or unsettled message is delivered
 * again (with a higher `deliveryCount`), publish order is kept per topic. Messages live as long as
 * the transport (not persistent); nothing is trimmed. For tests, demos and single-process apps.
 */
export function memoryTransport(options: MemoryTransportOptions = {}): Transport & { reset(): void } {
  const topics = (options.broker && brokerTopics.get(options.broker)) || new Map<string, Topic>();
  const subscriptions = new Set<Subscription>();
  let closed = false;
  /**
   * Delayed records waiting for their time (lost with the process, like everything here), in due
   * order: by due time, then in the order they were stored, as a broker's delay store keeps them
   * (records due at the same millisecond come out in publish order). One timer, for the first.
   */
  const delayed: { deliverAt: number; topic: string; record: WireRecord }[] = [];
  let delayTimer: NodeJS.Timeout | undefined;
  let delayedSeq = 0;
  const clearDelayed = () => {
    delayed.length = 0;
    if (delayTimer) clearTimeout(delayTimer);
    delayTimer = undefined;
  };
  const armDelayTimer = () => {
    if (delayTimer) clearTimeout(delayTimer);
    delayTimer = undefined;
    const first = delayed[0];
    if (!first || closed) return;
    // Never early: a timer may fire a millisecond before its time on some platforms; it re-arms.
    delayTimer = setTimeout(releaseDue, Math.max(0, first.deliverAt - Date.now()));
  };
  const releaseDue = () => {
    delayTimer = undefined;
    const now = Date.now();
    let due = 0;
    while (due < delayed.length && (delayed[due] as (typeof delayed)[number]).deliverAt <= now) due++;
    for (const { topic, record } of delayed.splice(0, due)) if (!closed) void transport.publish(topic, [record]);
    armDelayTimer();
  };

  const topicOf = (name: string): Topic => {
    let topic = topics.get(name);
    if (!topic) {
      topic = { log: [], groups: new Map(), waiters: new Set() };
      topics.set(name, topic);
    }
    return topic;
  };

  const cursorOf = (topic: Topic, group: string, startFrom: SubscribeOptions['startFrom']): GroupCursor => {
    let cursor = topic.groups.get(group);
    if (!cursor) {
      cursor = { next: startFrom === 'latest' ? topic.log.length : 0, pending: new Map(), redeliver: [] };
      topic.groups.set(group, cursor);
    }
    return cursor;
  };

  const capabilities: TransportCapabilities = {
    persistent: false,
    consumerGroups: true,
    ordering: 'topic',
    nativeBatching: true,
    blockingReads: true,
    redeliversUnsettled: true,
    concurrentBatches: false,
    durableDeliveryCount: false,
    delays: true,
  };

  const transport: Transport & { reset(): void } = {
    specificationVersion: 'v1',
    name: options.name ?? 'memory',
    capabilities,

    async publish(name: string, records: readonly WireRecord[]): Promise<PublishResult[]> {
      if (closed) {
        const error = new ClosedError('memory transport');
        return records.map(() => ({ ok: false, error }));
      }
      const topic = topicOf(name);
      const results: PublishResult[] = records.map((record) => {
        // Copy: the caller may reuse its objects, a broker would have serialised them.
        const stored: WireRecord = { value: record.value, headers: { ...record.headers } };
        if (record.key !== undefined) stored.key = record.key;
        topic.log.push(stored);
        return { ok: true, id: String(topic.log.length - 1) };
      });
      for (const wake of topic.waiters) wake();
      return results;
    },

    async publishDelayed(name: string, records: readonly DelayedRecord[]): Promise<PublishResult[]> {
      if (closed) {
        const error = new ClosedError('memory transport');
        return records.map(() => ({ ok: false, error }));
      }
      const results = records.map((record): PublishResult => {
        const { deliverAt, ...rest } = record;
        const stored: WireRecord = { ...rest, headers: { ...rest.headers } };
        // After every record due at or before it: equal due times keep their publish order.
        let at = delayed.length;
        while (at > 0 && (delayed[at - 1] as (typeof delayed)[number]).deliverAt > deliverAt) at--;
        delayed.splice(at, 0, { deliverAt, topic: name, record: stored });
        return { ok: true, id: `delayed-${delayedSeq++}` };
      });
      armDelayTimer();
      return results;
    },

    async subscribe(subscribeOptions: SubscribeOptions, handler: BatchHandler): Promise<Subscription> {
      if (closed) throw new ClosedError('memory transport');
      const { group, batchSize, pollIntervalMs } = subscribeOptions;
      const members = subscribeOptions.topics.map((name) => {
        const topic = topicOf(name);
        return { name, topic, cursor: cursorOf(topic, group, subscribeOptions.startFrom) };
      });
      const stop = new AbortController();
      let wake: (() => void) | undefined;
      let turn = 0;

      const take = (): Taken[] => {
        const batch: Taken[] = [];
        // Rotate the starting topic so a busy topic does not starve the others.
        for (let i = 0; i < members.length && batch.length < batchSize; i++) {
          const { name, topic, cursor } = members[(turn + i) % members.length] as (typeof members)[number];
          while (batch.length < batchSize && cursor.redeliver.length > 0) {
            const delivery = cursor.redeliver.shift() as Delivery;
            delivery.count++;
            cursor.pending.set(delivery.seq, delivery);
            batch.push({ name, cursor, delivery });
          }
          while (batch.length < batchSize && cursor.next < topic.log.length) {
            const delivery = { seq: cursor.next++, count: 1 };
            cursor.pending.set(delivery.seq, delivery);
            batch.push({ name, cursor, delivery });
          }
        }
        turn++;
        return batch;
      };

      const toRecord = ({ name, delivery }: Taken) => {
        const record = topicOf(name).log[delivery.seq] as WireRecord;
        // Copy the headers: a handler may change them, a broker would hand out fresh ones.
        const out = { topic: name, id: String(delivery.seq), value: record.value, headers: { ...record.headers }, deliveryCount: delivery.count };
        return record.key === undefined ? out : { ...out, key: record.key };
      };

      const wait = () =>
        new Promise<void>((resolve) => {
          const done = () => {
            clearTimeout(timer);
            for (const m of members) m.topic.waiters.delete(done);
            wake = undefined;
            resolve();
          };
          const timer = setTimeout(done, pollIntervalMs);
          for (const m of members) m.topic.waiters.add(done);
          wake = done;
        });

      const loop = (async () => {
        while (!stop.signal.aborted) {
          const batch = take();
          if (batch.length === 0) {
            await wait();
            continue;
          }
          const { settlements } = await new BatchSettlement(batch, toRecord).run(handler, stop.signal);
          batch.forEach(({ cursor, delivery }, i) => {
            cursor.pending.delete(delivery.seq);
            if (settlements[i] === 'nack') cursor.redeliver.push(delivery);
          });
          // Let publishers and timers run between batches, as a network round trip would.
          await new Promise<void>((resolve) => setImmediate(resolve));
        }
      })();

      let closing: Promise<void> | undefined;
      const subscription: Subscription = {
        close() {
          closing ??= (async () => {
            stop.abort();
            wake?.();
            await loop;
            subscriptions.delete(subscription);
          })();
          return closing;
        },
      };
      subscriptions.add(subscription);
      return subscription;
    },

    async lag(group: string, names: readonly string[]): Promise<LagInfo[]> {
      return names.map((name) => {
        const topic = topics.get(name);
        const cursor = topic?.groups.get(group);
        if (!topic || !cursor) return { group, topic: name, lag: topic?.log.length ?? 0, pending: 0 };
        return { group, topic: name, lag: topic.log.length - cursor.next + cursor.redeliver.length, pending: cursor.pending.size };
      });
    },

    async deleteGroup(group: string, names: readonly string[]): Promise<void> {
      for (const name of names) topics.get(name)?.groups.delete(group);
    },

    /** Drops every topic and group (between tests). */
    reset() {
      topics.clear();
      clearDelayed();
    },

    async close() {
      closed = true;
      clearDelayed();
      await Promise.all([...subscriptions].map((s) => s.close()));
    },
  };
  return transport;
}
