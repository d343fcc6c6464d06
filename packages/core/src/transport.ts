import type { DelayedRecord } from './delay.js';
import type { Headers, WireRecord } from './envelope.js';
import type { BusError } from './errors.js';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';

/**
 * What a transport guarantees. The routing engine and the conformance suite read these instead of
 * guessing; declare only what the broker really does.
 */
export interface TransportCapabilities {
  /** Messages survive the restart of the consuming process (they live in a broker). */
  persistent: boolean;
  /**
   * Consumer groups: every group gets every message of its topics; the members of one group share
   * them, each message going to one member at a time.
   */
  consumerGroups: boolean;
  /**
   * - `key`: messages with the same key are delivered in publish order even when several members
   *   share the group (Kafka partitions).
   * - `topic`: a single member sees each topic in publish order (Redis streams, memory).
   * - `none`: no order.
   */
  ordering: 'key' | 'topic' | 'none';
  /** `publish` of many records costs one round trip per partition / stream. */
  nativeBatching: boolean;
  /** Reads wait on the broker for new messages instead of sleeping between polls. */
  blockingReads: boolean;
  /**
   * A message delivered to a member that goes away (crash, close) without settling it is delivered
   * again to a member of the same group.
   */
  redeliversUnsettled: boolean;
  /**
   * Batch handler calls of one subscription may overlap (e.g. Kafka with
   * `partitionsConsumedConcurrently` > 1: one call per partition at a time). Overlapping calls never
   * share a message. When false, a subscription makes one handler call at a time.
   */
  concurrentBatches: boolean;
  /**
   * `deliveryCount` survives the crash of the consuming process (Redis: the pending-entries list
   * counts deliveries). When false (Kafka: counts live in the member's memory), a message that
   * crashes every consumer restarts from 1 after each crash, and `maxDeliveries` only catches
   * redeliveries within one process.
   */
  durableDeliveryCount: boolean;
  /**
   * Delayed delivery: the transport implements {@link Transport.publishDelayed}, and a delayed record
   * survives the restart of every process (memory: of none) and is never delivered before its time.
   * @default false (absent)
   */
  delays?: boolean;
}

/** Where a new consumer group starts reading. */
export type StartFrom = 'earliest' | 'latest';

export interface SubscribeOptions {
  /** Consumer group; the engine names it `<module>-<consumer>`. */
  group: string;
  topics: readonly string[];
  /** Upper bound of messages handed to one handler call. */
  batchSize: number;
  /** Longest wait for new messages in one read (the blocking time where the broker has blocking reads). */
  pollIntervalMs: number;
  /** Position of a group that does not exist yet. */
  startFrom: StartFrom;
  /** Member name, unique per process (Redis consumer name, Kafka client id suffix). */
  consumerName: string;
  /**
   * Handler calls this subscription may have running at once. Above 1, a transport that supports
   * it fetches and hands over the next batch before the earlier ones settled (never sharing a
   * message between calls, each call settled and committed on its own), so a subscriber that
   * keeps many slow handlers busy (the module runner with `concurrency` > 1, which holds per-key
   * order across calls) is not held up by the slowest message of each batch. A transport that
   * cannot overlap calls ignores it. Stop semantics are unchanged: once the subscription is
   * closing no call starts, and fetched messages not handed over are released.
   * @default 1 (one call at a time, unless `capabilities.concurrentBatches`)
   */
  maxBatchesInFlight?: number;
}

/** A message as a transport delivers it. Settle each one exactly once with `ack` or `nack`. */
export interface IncomingMessage extends WireRecord {
  topic: string;
  /** The broker's position of the record: a Redis stream id, `partition:offset` on Kafka. */
  id: string;
  partition?: number;
  /** 1 on the first delivery; grows with each redelivery where the broker counts them. */
  deliveryCount: number;
  /** Handled (or dead-lettered): never deliver it to this group again. */
  ack(): void;
  /** Not handled: deliver it again later, to this member or another. */
  nack(): void;
}

/**
 * Receives up to `batchSize` messages. The rules, implemented once by `BatchSettlement` of
 * `@bus/core/kit` (use it in your transport):
 * - each message is settled at most once (`ack` or `nack`; the first call wins);
 * - the transport commits the settlements once the returned promise settles; a message left
 *   unsettled is nacked, and a rejected promise nacks every unsettled message of the batch;
 * - calls of one subscription overlap only where `capabilities.concurrentBatches` says so, or up to
 *   `SubscribeOptions.maxBatchesInFlight` where the subscriber asked for it and the transport supports it;
 * - once the subscription is closing, no new call starts: messages fetched and not yet handed to
 *   the handler are released for redelivery at once.
 */
export type BatchHandler = (messages: IncomingMessage[]) => Promise<void>;

export interface Subscription {
  /**
   * Stops fetching and starts no new handler call (fetched messages not yet handed over are
   * released), waits for the running batch handler, commits its settlements and releases the
   * member's connections. Bounded in time; idempotent.
   */
  close(): Promise<void>;
}

/**
 * Outcome of one record of a `publish` call, in the order of the input. `id` is the broker's
 * position of the stored record: the `id` a subscriber's `IncomingMessage` carries for it.
 */
export type PublishResult = { ok: true; id: string } | { ok: false; error: BusError };

/** Services the bus hands to a transport before first use. */
export interface TransportContext {
  logger: Logger;
  metrics: Metrics;
}

/** Consumer lag of a group on one topic (or stream). */
export interface LagInfo {
  group: string;
  topic: string;
  /** Messages not yet delivered to the group. */
  lag: number;
  /** Delivered but not yet acknowledged, where the broker tracks it (Redis pending entries). */
  pending?: number;
}

/**
 * A message broker binding. Implement it to add a broker; check it with `runTransportConformance`
 * from `@bus/core/testing`.
 */
export interface Transport {
  /** Version of this interface the transport implements. */
  readonly specificationVersion: 'v1';
  /** Short name used in metrics, logs and errors: `memory`, `redis`, `kafka`… */
  readonly name: string;
  readonly capabilities: TransportCapabilities;
  /** Called once by the bus before first use. */
  attach?(context: TransportContext): void;
  /** Writes records to a topic in order; one result per record. Never throws for a single record. */
  publish(topic: string, records: readonly WireRecord[]): Promise<PublishResult[]>;
  /**
   * Stores records to be appended to `topic` no sooner than each one's `deliverAt` (Unix ms), and
   * then within a bounded lateness, as long as one consumer process of the topic is running (the
   * transport moves due records while it has a subscription; no extra daemon). Each record reaches
   * the topic once (Redis: exactly once, an atomic move; Kafka: at least once). The result id is the
   * record's place in the delay store, not its final position. Present exactly when
   * `capabilities.delays` is true. Never throws for a single record.
   */
  publishDelayed?(topic: string, records: readonly DelayedRecord[]): Promise<PublishResult[]>;
  /** Creates the group if needed and starts delivering batches; resolves once reading has begun. */
  subscribe(options: SubscribeOptions, handler: BatchHandler): Promise<Subscription>;
  /** Lag per group and topic, for metrics and `bus status`. */
  lag?(group: string, topics: readonly string[]): Promise<LagInfo[]>;
  /**
   * Forgets a consumer group on these topics: its position and its pending messages (Redis: the
   * group of each stream; Kafka: the group itself, topics aside, once it has no member left). For
   * tools that read with a throwaway group (`bus dlq list`, the board), which would otherwise leave
   * one group behind per use. A group (or topic) that does not exist is no error.
   */
  deleteGroup?(group: string, topics: readonly string[]): Promise<void>;
  /** Closes subscriptions, pools and connections. Idempotent. */
  close(): Promise<void>;
}

export type { Headers };
