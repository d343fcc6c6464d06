import type { BatchHandler, Logger, SubscribeOptions, Subscription } from '@bus/core';
import { BatchSettlement, type DeliveredRecord } from '@bus/core/kit';
import { Consumer, type Message, type MessagesStream } from '@platformatic/kafka';
import { baseOptions, rootMessage, toBusError } from './client.js';
import type { ResolvedOptions } from './options.js';
import { fromKafkaRecord } from './wire.js';

type Fetched = Message<Buffer, Buffer, Buffer, Buffer>;
type Stream = MessagesStream<Buffer, Buffer, Buffer, Buffer>;

/** A fetched message handed to the handler, with its delivery count. */
interface Delivery {
  message: Fetched;
  deliveryCount: number;
}

/** A partition waiting for its first unsettled message to be fetched again. */
interface Seek {
  offset: bigint;
  /** When the stream is pointed back at `offset` (`nackDelayMs` after the nack). */
  at: number;
  applied: boolean;
}

const tpOf = (topic: string, partition: number) => `${topic}:${partition}`;

/**
 * One member of a consumer group on @platformatic/kafka: a messages stream in `committed` mode without
 * autocommit, read in chunks of at most `batchSize`. After each chunk the acknowledged prefix of each
 * partition is committed; the first nacked or unsettled message of a partition points the stream back
 * at it (after `nackDelayMs`), and what was fetched after it is dropped until it comes again. Heartbeats
 * (classic protocol) or the KIP-848 heartbeat run in the client's background, also while a handler runs.
 */
export class PlatformaticSubscription implements Subscription, AsyncDisposable {
  private readonly log: Logger;
  private consumer: Consumer<Buffer, Buffer, Buffer, Buffer> | undefined;
  private stream: Stream | undefined;
  /** Deliveries so far of messages that were nacked or left unsettled, by topic:partition:offset. */
  private readonly deliveries = new Map<string, number>();
  /**
   * The last offset of the acknowledged prefix of each partition (what this member committed or tried
   * to). A classic rebalance can reject that commit and point the stream back at the committed offset
   * while the member keeps the partition: what comes again up to here was handled, and is only committed.
   * Kept when a partition is revoked: should it come back, what this member handled is still handled.
   */
  private readonly handledUpTo = new Map<string, bigint>();
  /** Offsets acknowledged after a nacked message (not committable yet), by topic:partition. */
  private readonly ackedAhead = new Map<string, Set<bigint>>();
  private readonly seeks = new Map<string, Seek>();
  /** Commits sent and not answered yet: the next chunk does not wait for them; close does. */
  private readonly pendingCommits = new Set<Promise<void>>();
  private readonly stop = new AbortController();
  private wake: (() => void) | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private seekTimer: NodeJS.Timeout | undefined;
  private crashes = 0;
  private loop: Promise<void> | undefined;
  private starting: Promise<void> | undefined;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly options: ResolvedOptions,
    private readonly subscription: SubscribeOptions,
    private readonly handler: BatchHandler,
    logger: Logger,
    private readonly onClosed: () => void,
  ) {
    this.log = logger.child({ group: subscription.group, member: subscription.consumerName });
  }

  private get stopping(): boolean {
    return this.stop.signal.aborted;
  }

  /** Joins the group and resolves after the first fetch (bounded by `consumer.joinTimeoutMs`). */
  start(): Promise<void> {
    this.starting ??= (async () => {
      try {
        await this.connect();
      } catch (error) {
        throw toBusError(error, `could not start a member of group "${this.subscription.group}"`, this.options.brokers, 'connection');
      }
      this.loop = this.run();
      const stream = this.stream as Stream;
      let timer: NodeJS.Timeout | undefined;
      const timeoutMs = this.options.consumer.joinTimeoutMs;
      const fetched = await Promise.race([
        new Promise<true>((resolve) => stream.once('fetch', () => resolve(true))),
        new Promise<false>((resolve) => {
          timer = setTimeout(() => resolve(false), timeoutMs);
          this.stop.signal.addEventListener('abort', () => resolve(false), { once: true });
        }),
      ]);
      clearTimeout(timer);
      if (!fetched && !this.stopping) this.log.warn('member has not fetched yet; it goes on joining in the background', { timeoutMs });
    })();
    return this.starting;
  }

  /** A new consumer and its stream; the group join happens inside `consume`. */
  private async connect(): Promise<void> {
    const c = this.options.consumer;
    const { group, consumerName, topics, startFrom, pollIntervalMs } = this.subscription;
    const common = {
      ...baseOptions(this.options, `${this.options.clientId}-${consumerName}`),
      groupId: group,
      autocommit: false,
      minBytes: c.minBytes,
      maxBytes: c.maxBytes,
      maxBytesPerPartition: c.maxBytesPerPartition,
      // The broker holds a fetch until data arrives or this passes: the blocking read of pollIntervalMs.
      maxWaitTime: pollIntervalMs,
      highWaterMark: c.prefetch,
    };
    const consumer =
      c.groupProtocol === 'consumer'
        ? new Consumer<Buffer, Buffer, Buffer, Buffer>({
            ...common,
            // The client checks rebalanceTimeout >= sessionTimeout (default 60 s) for either protocol; under
            // KIP-848 the broker owns the session and heartbeat timings, so these two only satisfy that check.
            ...({ sessionTimeout: c.sessionTimeoutMs, heartbeatInterval: c.heartbeatIntervalMs } as object),
            groupProtocol: 'consumer',
            rebalanceTimeout: c.rebalanceTimeoutMs,
          })
        : new Consumer<Buffer, Buffer, Buffer, Buffer>({
            ...common,
            groupProtocol: 'classic',
            sessionTimeout: c.sessionTimeoutMs,
            heartbeatInterval: c.heartbeatIntervalMs,
            rebalanceTimeout: c.rebalanceTimeoutMs,
          });
    this.consumer = consumer;
    consumer.on('consumer:group:join', () => {
      this.forgetRevoked();
      this.log.debug('joined the consumer group', { assignments: consumer.assignments });
    });
    consumer.on('consumer:heartbeat:error', (event) => this.log.debug('heartbeat failed', { error: rootMessage(event.error) }));
    try {
      const stream = await consumer.consume({
        topics: [...topics],
        mode: 'committed',
        fallbackMode: startFrom === 'earliest' ? 'earliest' : 'latest',
        autocommit: false,
        maxWaitTime: pollIntervalMs,
        highWaterMark: c.prefetch,
      });
      if (this.stopping) {
        await stream.close().catch(() => {});
        throw new Error('closed while joining');
      }
      this.stream = stream;
      // The stream is read with read(): a 'readable' listener starts its fetch loop without flowing mode.
      stream.on('readable', () => this.wake?.());
      stream.on('error', (error) => this.crashed(stream, error));
      stream.on('close', () => this.crashed(stream, new Error('the messages stream closed')));
      // A restarted stream starts at the committed offsets: pending seeks are met already, and what it
      // fetches again is handled again (a new member would; the topic may have been recreated).
      this.seeks.clear();
      this.handledUpTo.clear();
    } catch (error) {
      this.consumer = undefined;
      await consumer.close(true).catch(() => {});
      throw error;
    }
  }

  /**
   * The stream failed (broker gone past the retries, fenced member): the member is made again after a
   * backoff, whatever the error, so a consumer never silently stops.
   */
  private crashed(stream: Stream, error: Error): void {
    if (this.stopping || stream !== this.stream) return;
    this.stream = undefined;
    const consumer = this.consumer;
    this.consumer = undefined;
    void consumer?.close(true).catch(() => {});
    this.scheduleRestart(error);
  }

  private scheduleRestart(error: unknown): void {
    if (this.stopping) return;
    const delay = Math.min(30_000, this.options.consumer.restartDelayMs * 2 ** this.crashes++);
    this.log.warn('consumer stream failed; restarting the member', { error: rootMessage(error), delay, crashes: this.crashes });
    clearTimeout(this.restartTimer);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.stopping) return;
      this.connect().then(
        () => {
          this.crashes = 0;
          this.wake?.();
        },
        (restartError) => this.scheduleRestart(restartError),
      );
    }, delay);
  }

  /** Drops redelivery state of partitions this member no longer owns. */
  private forgetRevoked(): void {
    const owned = this.owned();
    for (const tp of this.ackedAhead.keys()) if (!owned.has(tp)) this.ackedAhead.delete(tp);
    for (const tp of this.seeks.keys()) if (!owned.has(tp)) this.seeks.delete(tp);
    for (const key of this.deliveries.keys()) if (!owned.has(key.slice(0, key.lastIndexOf(':')))) this.deliveries.delete(key);
  }

  private owned(): Set<string> {
    const owned = new Set<string>();
    for (const a of this.consumer?.assignments ?? []) for (const p of a.partitions) owned.add(tpOf(a.topic, p));
    return owned;
  }

  /** The read loop: one chunk at a time, until close. */
  private async run(): Promise<void> {
    while (!this.stopping) {
      const chunk = this.take();
      if (chunk.length === 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, 1000);
          function done() {
            clearTimeout(timer);
            resolve();
          }
          this.wake = done;
          if (this.stopping) done();
        });
        this.wake = undefined;
        continue;
      }
      try {
        await this.handle(chunk);
      } catch (error) {
        this.log.warn('could not settle a chunk; its messages will be delivered again', { error: rootMessage(error) });
      }
    }
  }

  /** Up to `batchSize` messages already fetched, without those a pending redelivery or a revocation makes stale. */
  private take(): Fetched[] {
    const stream = this.stream;
    if (!stream) return [];
    const out: Fetched[] = [];
    // Read at every chunk: under KIP-848 the assignment changes with heartbeats, without a join event.
    const owned = this.consumer?.assignments ? this.owned() : undefined;
    while (out.length < this.subscription.batchSize) {
      const m = stream.read() as Fetched | null;
      if (m === null) break;
      const tp = tpOf(m.topic, m.partition);
      // Fetched before a rebalance took the partition away: its new owner reads it from the committed offset.
      if (owned && !owned.has(tp)) continue;
      const seek = this.seeks.get(tp);
      if (seek) {
        if (seek.applied && m.offset <= seek.offset) {
          this.seeks.delete(tp);
        } else {
          // Fetched after the message that is waiting for redelivery; an in-flight fetch may have moved the
          // stream past it again, so point it back.
          if (seek.applied) stream.offsetsToFetch.set(tp, seek.offset);
          continue;
        }
      }
      out.push(m);
    }
    return out;
  }

  private async handle(chunk: Fetched[]): Promise<void> {
    const deliveries: Delivery[] = [];
    const skipped = new Set<Fetched>();
    for (const m of chunk) {
      const tp = tpOf(m.topic, m.partition);
      // Acknowledged on an earlier delivery (after a message that was not, or before a rebalance rejected
      // the commit): not handed out again, committed again.
      if (this.ackedAhead.get(tp)?.has(m.offset) || m.offset <= (this.handledUpTo.get(tp) ?? -1n)) {
        skipped.add(m);
        continue;
      }
      const deliveryCount = this.deliveries.size === 0 ? 1 : (this.deliveries.get(`${tp}:${m.offset}`) ?? 1);
      deliveries.push({ message: m, deliveryCount });
    }
    const settlement = new BatchSettlement(deliveries, (d) => this.record(d));
    const settled = await settlement.run(this.handler, this.stop.signal);
    if (settled.error !== undefined) {
      this.log.warn('batch handler failed; its unsettled messages will be delivered again', { error: rootMessage(settled.error) });
    }
    const outcome = new Map<Fetched, boolean>();
    for (let i = 0; i < deliveries.length; i++) outcome.set((deliveries[i] as Delivery).message, settled.settlements[i] === 'ack');

    // Kafka stores one offset per partition: the committable position is the end of the acknowledged prefix.
    const last = new Map<string, Fetched>();
    const open = new Map<string, bigint>();
    for (const m of chunk) {
      const tp = tpOf(m.topic, m.partition);
      const wasSkipped = skipped.has(m);
      const acked = wasSkipped || outcome.get(m) === true;
      const key = `${tp}:${m.offset}`;
      if (acked) {
        if (this.deliveries.size > 0) this.deliveries.delete(key);
        if (!open.has(tp)) last.set(tp, m);
        else if (!wasSkipped) this.remember(tp, m.offset);
      } else {
        if (!open.has(tp)) open.set(tp, m.offset);
        this.deliveries.set(key, (this.deliveries.get(key) ?? 1) + 1);
      }
    }
    // Commits are pipelined: the client merges them per partition and sends one at a time, in order.
    for (const [tp, m] of last) {
      if (m.offset > (this.handledUpTo.get(tp) ?? -1n)) this.handledUpTo.set(tp, m.offset);
      const pending: Promise<void> = this.commit(m).then(() => {
        this.forgetUpTo(tp, m.offset);
        this.pendingCommits.delete(pending);
      });
      this.pendingCommits.add(pending);
    }
    const now = Date.now();
    for (const [tp, offset] of open) this.seeks.set(tp, { offset, at: now + this.options.consumer.nackDelayMs, applied: false });
    if (open.size > 0) this.scheduleSeeks();
  }

  /** Commits the position after `m` (bounded by `requestTimeoutMs`); a failed commit only means redelivery. */
  private async commit(m: Fetched): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        m.commit() as unknown as Promise<void>,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`commit timed out after ${this.options.requestTimeoutMs} ms`)), this.options.requestTimeoutMs);
        }),
      ]);
    } catch (error) {
      // Not lost: the messages are delivered again (here or, after a rebalance, to another member).
      this.log.warn('could not commit offsets; the messages will be delivered again', { topic: m.topic, partition: m.partition, offset: String(m.offset + 1n), error: rootMessage(error) });
    } finally {
      clearTimeout(timer);
    }
  }

  /** Points the stream back at each nacked message once its `nackDelayMs` passed. */
  private scheduleSeeks(): void {
    clearTimeout(this.seekTimer);
    let next = Number.POSITIVE_INFINITY;
    const now = Date.now();
    for (const [tp, seek] of this.seeks) {
      if (seek.applied) continue;
      if (seek.at <= now) {
        seek.applied = true;
        this.stream?.offsetsToFetch.set(tp, seek.offset);
      } else next = Math.min(next, seek.at);
    }
    if (next !== Number.POSITIVE_INFINITY && !this.stopping) this.seekTimer = setTimeout(() => this.scheduleSeeks(), next - now);
  }

  private remember(tp: string, offset: bigint): void {
    let set = this.ackedAhead.get(tp);
    if (!set) {
      set = new Set();
      this.ackedAhead.set(tp, set);
    }
    set.add(offset);
  }

  private forgetUpTo(tp: string, last: bigint): void {
    const set = this.ackedAhead.get(tp);
    if (!set) return;
    for (const offset of set) if (offset <= last) set.delete(offset);
    if (set.size === 0) this.ackedAhead.delete(tp);
  }

  private record({ message: m, deliveryCount }: Delivery): DeliveredRecord {
    const record = fromKafkaRecord(m.key, m.value, m.headerEntries ?? m.headers);
    const out: DeliveredRecord = { topic: m.topic, id: `${m.partition}:${m.offset}`, partition: m.partition, value: record.value, headers: record.headers, deliveryCount };
    if (record.key !== undefined) out.key = record.key;
    return out;
  }

  /**
   * Starts no new chunk, lets the running one finish and commits its settlements, closes the stream
   * and leaves the group; messages fetched but not handed out are released at once (never committed).
   * Bounded by `consumer.closeTimeoutMs`. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.stop.abort();
      this.wake?.();
      clearTimeout(this.restartTimer);
      clearTimeout(this.seekTimer);
      let timer: NodeJS.Timeout | undefined;
      const done = await Promise.race([
        (async () => {
          await this.starting?.catch(() => {});
          await this.loop;
          await Promise.allSettled([...this.pendingCommits]);
          const stream = this.stream;
          this.stream = undefined;
          await stream?.close();
          await this.consumer?.close();
          return true;
        })().catch((error) => {
          this.log.warn('error while closing the consumer', { error: rootMessage(error) });
          return true;
        }),
        new Promise<false>((resolve) => {
          timer = setTimeout(() => resolve(false), this.options.consumer.closeTimeoutMs);
        }),
      ]);
      clearTimeout(timer);
      if (!done) {
        this.log.error('consumer did not stop in time; its uncommitted messages will be delivered again', { timeoutMs: this.options.consumer.closeTimeoutMs });
      }
      if (!done || this.consumer) void this.consumer?.close(true).catch(() => {});
      this.consumer = undefined;
      this.onClosed();
    })();
    return this.closing;
  }

  /** Same as {@link PlatformaticSubscription.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
