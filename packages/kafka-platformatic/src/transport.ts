import {
  type BatchHandler,
  ClosedError,
  type LagInfo,
  type Logger,
  type PublishResult,
  type SubscribeOptions,
  type Subscription,
  silentLogger,
  type Transport,
  type TransportCapabilities,
  type TransportContext,
  type WireRecord,
} from '@bus/core';
import { AdminClient } from './admin.js';
import { toBusError } from './client.js';
import { type KafkaPlatformaticOptions, type ResolvedOptions, resolveOptions } from './options.js';
import { Publisher } from './producer.js';
import { PlatformaticSubscription } from './subscription.js';

/** What the transport guarantees: the same as `@bus/kafka`. */
export const KAFKA_PLATFORMATIC_CAPABILITIES: Readonly<TransportCapabilities> = Object.freeze({
  persistent: true,
  consumerGroups: true,
  ordering: 'key',
  nativeBatching: true,
  blockingReads: true,
  redeliversUnsettled: true,
  concurrentBatches: false,
  // Delivery counts of nacked messages live in the member's memory; a crash starts them again at 1.
  durableDeliveryCount: false,
});

/** A {@link Transport} on Apache Kafka through @platformatic/kafka, with the options it was made with. */
export interface KafkaPlatformaticTransport extends Transport, AsyncDisposable {
  readonly name: string;
  /** The validated options, every default filled in. */
  readonly options: Readonly<ResolvedOptions>;
}

/**
 * Creates the Kafka transport on @platformatic/kafka (Node.js ≥ 22.22). Validates `options` at once
 * (a bad value throws a `ConfigError` naming its path, with "did you mean …?" for a misspelt key) and
 * connects **lazily**: the admin client on the first publish, subscribe or lag; the producer on the
 * first publish; each subscription's consumer on `subscribe`.
 *
 * The records on the wire are the ones `@bus/kafka` (kafkajs) writes, so the two drivers can share
 * topics and consumer groups. `consumer.groupProtocol: 'consumer'` uses the KIP-848 group protocol
 * (Kafka 4.0+).
 *
 * - `publish` writes the records in one produce request per leader broker (bounded by
 *   `producer.maxRequestBytes`); each result is `ok` with `partition:offset`, or a typed error.
 * - `subscribe` joins consumer group `options.group` and resolves after the first fetch; offsets are
 *   committed only once acknowledged (at least once).
 * - `close` closes every subscription (bounded), the producer and the admin client. Idempotent.
 *
 * ```ts
 * const bus = createBus({ transports: { kafka: kafkaPlatformatic({ brokers: ['127.0.0.1:9092'] }) } });
 * ```
 */
export function kafkaPlatformatic(options: KafkaPlatformaticOptions): KafkaPlatformaticTransport {
  const o = resolveOptions(options);
  let logger: Logger = silentLogger;
  const admin = new AdminClient(o);
  let publisher: Publisher | undefined;
  const subscriptions = new Set<PlatformaticSubscription>();
  let closing: Promise<void> | undefined;

  return {
    specificationVersion: 'v1',
    name: o.name,
    capabilities: KAFKA_PLATFORMATIC_CAPABILITIES,
    options: o,

    attach(context: TransportContext) {
      logger = context.logger;
    },

    async publish(topic: string, records: readonly WireRecord[]): Promise<PublishResult[]> {
      if (closing) {
        const error = new ClosedError('kafka transport');
        return records.map(() => ({ ok: false, error }));
      }
      if (records.length === 0) return [];
      try {
        await admin.ensureTopics([topic]);
      } catch (error) {
        const failure = toBusError(error, `could not publish to "${topic}"`, o.brokers);
        return records.map(() => ({ ok: false, error: failure }));
      }
      publisher ??= new Publisher(o);
      return publisher.publish(topic, records);
    },

    async subscribe(subscribeOptions: SubscribeOptions, handler: BatchHandler): Promise<Subscription> {
      if (closing) throw new ClosedError('kafka transport');
      await admin.ensureTopics(subscribeOptions.topics);
      const subscription: PlatformaticSubscription = new PlatformaticSubscription(o, subscribeOptions, handler, logger, () => {
        subscriptions.delete(subscription);
      });
      subscriptions.add(subscription);
      try {
        await subscription.start();
      } catch (error) {
        await subscription.close();
        throw error;
      }
      return subscription;
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
