import {
  type BatchHandler,
  ClosedError,
  type LagInfo,
  type Logger,
  type Metrics,
  noopMetrics,
  type PublishResult,
  type SubscribeOptions,
  type Subscription,
  silentLogger,
  TimeoutError,
  type Transport,
  type TransportCapabilities,
  type TransportContext,
  type WireRecord,
  type DelayedRecord,
} from '@bus/core';
import type { Kafka } from 'kafkajs';
import { AdminClient } from './admin.js';
import { createClient, toBusError } from './client.js';
import { type KafkaTransportOptions, type ResolvedOptions, resolveOptions } from './options.js';
import { DelayForwarder, tierTopics, toTierRecord } from './delays.js';
import { Publisher } from './producer.js';
import { KafkaSubscription } from './subscription.js';

/** What the Kafka transport guarantees (see the package README for the details). */
export const KAFKA_CAPABILITIES: Readonly<TransportCapabilities> = Object.freeze({
  persistent: true,
  consumerGroups: true,
  ordering: 'key',
  nativeBatching: true,
  blockingReads: true,
  redeliversUnsettled: true,
  // True for a transport made with consumer.partitionsConsumedConcurrently > 1 (one call per partition at a time).
  concurrentBatches: false,
  // Delivery counts of nacked messages live in the member's memory; a crash starts them again at 1.
  durableDeliveryCount: false,
  // Delay tier topics, forwarded by every process subscribed to the topic.
  delays: true,
});

/** How often a subscribed process looks for delay tiers of its topics that another process created. */
const DISCOVER_MS = 5000;

/** A {@link Transport} on Apache Kafka, with the options it was made with. */
export interface KafkaTransport extends Transport, AsyncDisposable {
  readonly name: string;
  /** The validated options, every default filled in. */
  readonly options: Readonly<ResolvedOptions>;
}

/**
 * Creates the Kafka transport (kafkajs). Validates `options` at once (a bad value throws a
 * `ConfigError` naming its path, e.g. `[bus/kafka] consumer.sessionTimeoutMs must be …`) and
 * connects **lazily**: the admin client on the first publish, subscribe or lag; producers (pooled)
 * on the first publish; each subscription's consumer on `subscribe`.
 *
 * - `publish` borrows a producer and writes the records in one produce request per leader broker
 *   (bounded by `producer.maxRequestBytes`); each result is `ok` with `partition:offset`, or a
 *   `ConnectionError` / `PublishError` / `PoolTimeoutError` / `ConfigError` for the records of a
 *   failed request.
 * - `subscribe` joins consumer group `options.group` and resolves after the first fetch; messages
 *   are committed only once acknowledged (at least once); see {@link KafkaTransportOptions.consumer}.
 * - `close` closes every subscription (bounded), the producer pool and the admin client. Idempotent.
 *
 * ```ts
 * const bus = createBus({ transports: { kafka: kafka({ brokers: ['127.0.0.1:9092'] }) } });
 * ```
 */
export function kafka(options: KafkaTransportOptions): KafkaTransport {
  const o = resolveOptions(options);
  let logger: Logger = silentLogger;
  let metrics: Metrics = noopMetrics;
  let client: Kafka | undefined;
  const getClient = () => {
    client ??= createClient(o, () => logger);
    return client;
  };
  const admin = new AdminClient(getClient, o);
  let publisher: Publisher | undefined;
  const getPublisher = () => {
    publisher ??= new Publisher(getClient, o, (stats) => metrics.poolStats({ transport: o.name, pool: 'producer' }, stats));
    return publisher;
  };
  const subscriptions = new Set<KafkaSubscription>();
  let closing: Promise<void> | undefined;
  const forwarders = new Map<string, DelayForwarder>();
  const publishNow = async (topic: string, records: readonly WireRecord[]): Promise<PublishResult[]> => {
    try {
      await withinDeadline(admin.ensureTopics([topic]), o.publishTimeoutMs, () => {
        return new TimeoutError(`[bus/kafka] publish to "${topic}": the topic could not be checked or created within ${o.publishTimeoutMs} ms (publishTimeoutMs)`);
      });
    } catch (error) {
      const failure = toBusError(error, `could not publish to "${topic}"`);
      return records.map(() => ({ ok: false, error: failure }));
    }
    return getPublisher().publish(topic, records);
  };
  const forwarderOf = (topic: string): DelayForwarder => {
    let forwarder = forwarders.get(topic);
    if (!forwarder) {
      forwarder = new DelayForwarder(topic, {
        options: o,
        client: () => createClient(o, () => logger, `${o.clientId}-delay`),
        logger: () => logger,
        metrics: () => metrics,
        ensureTopics: (topics) => admin.ensureTopics(topics),
        publish: publishNow,
        lag: (group, topics) => admin.lag(group, topics),
      });
      forwarders.set(topic, forwarder);
    }
    return forwarder;
  };
  // Forwarders start only for topics whose delay tiers exist: a look at the topic list at each
  // subscribe and every DISCOVER_MS while some subscribed topic has none (a delayed publish from
  // another process creates them), and at once on a delayed publish from this process.
  let discoverTimer: NodeJS.Timeout | undefined;
  const discover = async () => {
    const waiting = [...forwarders.entries()].filter(([, f]) => f.wanted && !f.active);
    if (waiting.length === 0 || closing) return;
    try {
      const existing = new Set(await admin.listTopics());
      for (const [topic, f] of waiting) if (tierTopics(topic).every((t) => existing.has(t))) f.activate();
    } catch (error) {
      logger.debug('could not list topics to find delay tiers', { error: (error as Error).message });
    }
  };
  const watchTiers = () => {
    if (discoverTimer) return;
    discoverTimer = setInterval(() => {
      if ([...forwarders.values()].some((f) => f.wanted && !f.active)) void discover();
    }, DISCOVER_MS);
    discoverTimer.unref();
  };

  return {
    specificationVersion: 'v1',
    name: o.name,
    capabilities: o.consumer.partitionsConsumedConcurrently > 1 ? Object.freeze({ ...KAFKA_CAPABILITIES, concurrentBatches: true }) : KAFKA_CAPABILITIES,
    options: o,

    attach(context: TransportContext) {
      logger = context.logger;
      metrics = context.metrics;
    },

    async publish(topic: string, records: readonly WireRecord[]): Promise<PublishResult[]> {
      if (closing) {
        const error = new ClosedError('kafka transport');
        return records.map(() => ({ ok: false, error }));
      }
      if (records.length === 0) return [];
      return publishNow(topic, records);
    },

    async publishDelayed(topic: string, records: readonly DelayedRecord[]): Promise<PublishResult[]> {
      if (closing) {
        const error = new ClosedError('kafka transport');
        return records.map(() => ({ ok: false, error }));
      }
      // A subscription of this process reads the topic: forward its tiers from now on.
      try {
        await withinDeadline(admin.ensureTopics(tierTopics(topic)), o.publishTimeoutMs, () => {
          return new TimeoutError(`[bus/kafka] publish to "${topic}": its delay tiers could not be checked or created within ${o.publishTimeoutMs} ms (publishTimeoutMs)`);
        });
      } catch (error) {
        const failure = toBusError(error, `could not create the delay tiers of "${topic}"`);
        return records.map(() => ({ ok: false, error: failure }));
      }
      forwarders.get(topic)?.activate();
      // Each record goes to its first delay tier (or straight to the topic when already due).
      const now = Date.now();
      const results: PublishResult[] = new Array(records.length);
      const byTopic = new Map<string, { index: number[]; records: WireRecord[] }>();
      records.forEach((record, i) => {
        const to = toTierRecord(topic, record, now);
        let group = byTopic.get(to.topic);
        if (!group) {
          group = { index: [], records: [] };
          byTopic.set(to.topic, group);
        }
        group.index.push(i);
        group.records.push(to.record);
      });
      await Promise.all(
        [...byTopic].map(async ([to, group]) => {
          const sent = await publishNow(to, group.records);
          sent.forEach((result, j) => {
            results[group.index[j] as number] = result;
          });
        }),
      );
      return results;
    },

    async subscribe(subscribeOptions: SubscribeOptions, handler: BatchHandler): Promise<Subscription> {
      if (closing) throw new ClosedError('kafka transport');
      await admin.ensureTopics(subscribeOptions.topics);
      // One client per member so brokers see which member a connection belongs to.
      const memberClient = createClient(o, () => logger, `${o.clientId}-${subscribeOptions.consumerName}`);
      const subscription: KafkaSubscription = new KafkaSubscription(memberClient, o, subscribeOptions, handler, logger, () => {
        subscriptions.delete(subscription);
      });
      subscriptions.add(subscription);
      try {
        await subscription.start();
      } catch (error) {
        await subscription.close();
        throw error;
      }
      // While this process reads a topic, it forwards the topic's delay tiers.
      const topics = [...new Set(subscribeOptions.topics)];
      for (const topic of topics) forwarderOf(topic).acquire();
      await discover();
      watchTiers();
      let released: Promise<void> | undefined;
      return {
        close: async () => {
          await subscription.close();
          released ??= Promise.all(topics.map((topic) => forwarderOf(topic).release())).then(() => {});
          await released;
        },
        [Symbol.asyncDispose]() {
          return this.close();
        },
      } as Subscription;
    },

    lag(group: string, topics: readonly string[]): Promise<LagInfo[]> {
      if (closing) return Promise.reject(new ClosedError('kafka transport'));
      return admin.lag(group, topics);
    },

    /** Deletes the group (a Kafka group spans its topics: `topics` is not needed). */
    deleteGroup(group: string): Promise<void> {
      if (closing) return Promise.reject(new ClosedError('kafka transport'));
      return admin.deleteGroup(group);
    },

    close(): Promise<void> {
      closing ??= (async () => {
        await Promise.allSettled([...subscriptions].map((s) => s.close()));
        clearInterval(discoverTimer);
        await Promise.allSettled([...forwarders.values()].map((f) => f.halt()));
        await publisher?.close(o.requestTimeoutMs);
        await admin.close();
      })();
      return closing;
    },

    [Symbol.asyncDispose]() {
      return this.close();
    },
  };
}

/** `promise`, or a rejection with `onTimeout()` after `ms` (the promise's own outcome is then ignored). */
function withinDeadline<T>(promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  promise.catch(() => {});
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}
