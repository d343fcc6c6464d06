import { DELAY_HEADER, type DelayedRecord, type Logger, type Metrics, type PublishResult, type WireRecord } from '@bus/core';
import type { Consumer, EachBatchPayload, Kafka, KafkaMessage } from 'kafkajs';
import { rootMessage } from './client.js';
import type { ResolvedOptions } from './options.js';
import { fromKafkaMessage } from './wire.js';

/**
 * The delay tiers, shortest first: a delayed record waits in `<topic>.delay.<tier>` for exactly the
 * tier's time (or, in the shortest tier, until its due time when that is sooner), then goes on to the
 * tier of what remains, or to its topic once due. Every record of a tier partition waits the same
 * time, so the partition's records come due in their order and a paused partition's head is always
 * the next one due: no record waits behind a later one (but for the sub-100 ms rest of the shortest tier).
 */
export const DELAY_TIERS: readonly { label: string; ms: number }[] = [
  { label: '100ms', ms: 100 },
  { label: '1s', ms: 1000 },
  { label: '10s', ms: 10_000 },
  { label: '1m', ms: 60_000 },
  { label: '10m', ms: 600_000 },
  { label: '1h', ms: 3_600_000 },
];

/** When a record in a tier partition may leave it (Unix ms); internal to the tiers. */
export const RELEASE_HEADER = 'bus-delay-release';

/** The delay tier topics of a topic, shortest tier first. */
export function tierTopics(topic: string): string[] {
  return DELAY_TIERS.map((tier) => `${topic}.delay.${tier.label}`);
}

/**
 * Where a record due at `deliverAt` goes now: its topic when due, else the longest tier not longer
 * than what remains (the shortest tier for less than 100 ms), with the release time of that tier.
 */
export function route(topic: string, deliverAt: number, now: number): { topic: string; release?: number } {
  const remaining = deliverAt - now;
  if (remaining <= 0) return { topic };
  let tier = DELAY_TIERS[0] as { label: string; ms: number };
  for (const t of DELAY_TIERS) if (t.ms <= remaining) tier = t;
  return { topic: `${topic}.delay.${tier.label}`, release: Math.min(deliverAt, now + tier.ms) };
}

/** A delayed record, routed into its first tier (or its topic when already due). */
export function toTierRecord(topic: string, record: DelayedRecord, now: number): { topic: string; record: WireRecord } {
  const to = route(topic, record.deliverAt, now);
  const headers: Record<string, string> = { ...record.headers, [DELAY_HEADER.deliverAt]: String(record.deliverAt) };
  if (to.release !== undefined) headers[RELEASE_HEADER] = String(to.release);
  else delete headers[RELEASE_HEADER];
  const out: WireRecord = { value: record.value, headers };
  if (record.key !== undefined) out.key = record.key;
  return { topic: to.topic, record: out };
}

/** What a forwarder needs from its transport. */
export interface ForwarderContext {
  options: ResolvedOptions;
  client: () => Kafka;
  logger: () => Logger;
  metrics: () => Metrics;
  ensureTopics(topics: readonly string[]): Promise<void>;
  /** Publishes records (keys kept) to a topic; the publisher of the transport. */
  publish(topic: string, records: readonly WireRecord[]): Promise<PublishResult[]>;
  lag(group: string, topics: readonly string[]): Promise<{ lag: number }[]>;
}

/**
 * Forwards the delay tiers of one topic while at least one subscription of this process reads the
 * topic (reference counted). All processes share one consumer group per topic (`bus.delay.<topic>`),
 * so each tier partition has one forwarder. A partition whose head is not due is paused until it is;
 * due records are published to their next tier or their topic, then the offsets committed: at least
 * once (a crash between the two forwards a record again).
 */
export class DelayForwarder {
  private refs = 0;
  private consumer: Consumer | undefined;
  private running: Promise<void> | undefined;
  private readonly timers = new Set<NodeJS.Timeout>();
  private lagTimer: NodeJS.Timeout | undefined;
  private stopping = false;

  constructor(
    private readonly topic: string,
    private readonly ctx: ForwarderContext,
  ) {}

  /** The consumer group of the forwarders of this topic. */
  get group(): string {
    return `bus.delay.${this.topic}`;
  }

  /** Whether a subscription of this process reads the topic. */
  get wanted(): boolean {
    return this.refs > 0;
  }

  /** Whether the forwarder runs (or is starting). */
  get active(): boolean {
    return this.running !== undefined;
  }

  acquire(): void {
    this.refs++;
  }

  /**
   * Starts forwarding, if a subscription wants it and it is not running yet. The transport calls it
   * once the topic's tiers exist (found by its periodic look, or made by a delayed publish here), so
   * topics that never see a delayed message cost no consumer.
   */
  activate(): void {
    if (this.refs === 0 || this.running) return;
    this.stopping = false;
    this.running = this.start().catch((error) => {
      this.running = undefined;
      this.ctx.logger().error('the delay forwarder could not start; delayed messages of this topic wait', { topic: this.topic, error: rootMessage(error) });
    });
  }

  async release(): Promise<void> {
    if (this.refs === 0 || --this.refs > 0) return;
    await this.halt();
  }

  async halt(): Promise<void> {
    this.refs = 0;
    this.stopping = true;
    clearInterval(this.lagTimer);
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    // Bounded: a start still joining (a broker away) must not hold the transport's close.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.running, new Promise<void>((resolve) => (timer = setTimeout(resolve, this.ctx.options.consumer.closeTimeoutMs)))]);
    clearTimeout(timer);
    this.running = undefined;
    const consumer = this.consumer;
    this.consumer = undefined;
    await consumer?.disconnect().catch(() => {});
  }

  private async start(): Promise<void> {
    const o = this.ctx.options;
    const tiers = tierTopics(this.topic);
    await this.ctx.ensureTopics(tiers);
    if (this.stopping) return;
    const consumer = this.ctx.client().consumer({
      groupId: this.group,
      sessionTimeout: o.consumer.sessionTimeoutMs,
      heartbeatInterval: o.consumer.heartbeatIntervalMs,
      rebalanceTimeout: o.consumer.rebalanceTimeoutMs,
      maxWaitTimeInMs: o.delays.fetchWaitMs,
      allowAutoTopicCreation: false,
      retry: { retries: o.retry.retries, initialRetryTime: o.retry.initialRetryTimeMs, maxRetryTime: o.retry.maxRetryTimeMs },
    });
    this.consumer = consumer;
    await consumer.connect();
    await consumer.subscribe({ topics: tiers, fromBeginning: true });
    if (this.stopping) return;
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      // Tier partitions are independent: forward them side by side, or one fetch cycle would pay a
      // produce and a commit per partition in turn, on every hop.
      partitionsConsumedConcurrently: Math.min(32, tiers.length * o.topics.partitions),
      eachBatch: (payload) => this.eachBatch(payload),
    });
    this.lagTimer = setInterval(() => void this.reportWaiting(tiers), 5000);
    this.lagTimer.unref();
  }

  private async reportWaiting(tiers: string[]): Promise<void> {
    try {
      const lags = await this.ctx.lag(this.group, tiers);
      const waiting = lags.reduce((n, l) => n + l.lag, 0);
      this.ctx.metrics().delayedWaiting({ transport: this.ctx.options.name, topic: this.topic }, waiting);
    } catch (error) {
      this.ctx.logger().debug('could not read the delay tiers lag', { topic: this.topic, error: rootMessage(error as Error) });
    }
  }

  private async eachBatch(payload: EachBatchPayload): Promise<void> {
    const { batch, resolveOffset, commitOffsetsIfNecessary, heartbeat, pause, isRunning, isStale } = payload;
    const messages = batch.messages;
    let i = 0;
    while (i < messages.length) {
      if (this.stopping || !isRunning() || isStale()) return;
      const now = Date.now();
      // The due prefix of what is left: forwarded together, in order.
      const due: KafkaMessage[] = [];
      let waitUntil: number | undefined;
      for (; i < messages.length; i++) {
        const m = messages[i] as KafkaMessage;
        const release = Number(m.headers?.[RELEASE_HEADER]?.toString() ?? 0);
        if (release > now) {
          waitUntil = release;
          break;
        }
        due.push(m);
      }
      if (due.length > 0) {
        await this.forward(due, now);
        const last = (due[due.length - 1] as KafkaMessage).offset;
        resolveOffset(last);
        await commitOffsetsIfNecessary({ topics: [{ topic: batch.topic, partitions: [{ partition: batch.partition, offset: (BigInt(last) + 1n).toString() }] }] });
        await heartbeat();
      }
      if (waitUntil !== undefined) {
        // Nothing after the head is resolved: once resumed, the partition is fetched again from it.
        const resume = pause();
        const timer = setTimeout(() => {
          this.timers.delete(timer);
          resume();
        }, waitUntil - Date.now());
        this.timers.add(timer);
        return;
      }
    }
  }

  /** Publishes due records to their next tier or their topic; throws when any could not be stored. */
  private async forward(messages: KafkaMessage[], now: number): Promise<void> {
    const byTopic = new Map<string, WireRecord[]>();
    for (const m of messages) {
      const record = fromKafkaMessage(m);
      const deliverAt = Number(record.headers[DELAY_HEADER.deliverAt] ?? 0);
      const next = toTierRecord(this.topic, { ...record, deliverAt }, now);
      const list = byTopic.get(next.topic);
      if (list) list.push(next.record);
      else byTopic.set(next.topic, [next.record]);
    }
    // Tiers first: nothing reaches the topic before what was due before it is on its way.
    for (const [topic, records] of byTopic) {
      const results = await this.ctx.publish(topic, records);
      const failed = results.find((r) => !r.ok);
      if (failed && !failed.ok) {
        this.ctx.logger().warn('could not forward delayed messages; they are forwarded again', { topic, error: failed.error.message });
        throw failed.error;
      }
    }
  }
}
