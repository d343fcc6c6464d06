import type { BatchHandler, Logger, SubscribeOptions, Subscription } from '@bus/core';
import { BatchSettlement, type DeliveredRecord } from '@bus/core/kit';
import type { Consumer, ConsumerRunConfig, EachBatchPayload, Kafka, KafkaMessage } from 'kafkajs';
import { rootMessage, toBusError } from './client.js';
import type { ResolvedOptions } from './options.js';
import { fromKafkaMessage } from './wire.js';

/** A fetched message handed to the handler, with its delivery count. */
interface Fetched {
  message: KafkaMessage;
  deliveryCount: number;
}

const SEP = '\u0000';

/**
 * Offset commits of one partition batch, sent in order with at most one in flight: the commit of a
 * chunk overlaps the handler of the next one instead of holding it for a round trip to the coordinator.
 */
class CommitPipeline {
  private inFlight: Promise<void> | undefined;
  /** Set when a commit failed: no further chunk is handled, the error is thrown by the next `push`/`drain`. */
  failed = false;

  /** Waits for the commit in flight (rethrowing its error), then starts `commit` without waiting for it. */
  async push(commit: () => Promise<void>): Promise<void> {
    await this.drain();
    const running = commit();
    this.inFlight = running;
    running.catch(() => {
      this.failed = true;
    });
  }

  /** Waits for the commit in flight; throws its error. */
  async drain(): Promise<void> {
    const running = this.inFlight;
    this.inFlight = undefined;
    await running;
  }
}

/**
 * One member of a consumer group: a kafkajs consumer running `eachBatch` without auto-resolve and
 * without auto-commit. Each fetched partition batch is handed to the handler in chunks of at most
 * `batchSize`; after each chunk the longest acknowledged prefix is resolved and committed, and the
 * first nacked or unsettled message ends the batch: the next fetch of that partition starts from it.
 */
export class KafkaSubscription implements Subscription, AsyncDisposable {
  private readonly consumer: Consumer;
  private readonly log: Logger;
  private readonly runConfig: ConsumerRunConfig;
  /** Deliveries so far of messages that were nacked or left unsettled, by topic/partition/offset. */
  private readonly deliveries = new Map<string, number>();
  /** Offsets acknowledged after a nacked message (not committable yet), by topic/partition: skipped when fetched again. */
  private readonly ackedAhead = new Map<string, Set<string>>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly removers: (() => void)[] = [];
  private restartTimer: NodeJS.Timeout | undefined;
  private crashes = 0;
  /** Aborted when close starts: no handler call starts after it. */
  private readonly stop = new AbortController();
  private get stopping(): boolean {
    return this.stop.signal.aborted;
  }
  private joined = false;
  private starting: Promise<void> | undefined;
  /** The latest `consumer.run()` (first start or a restart); close waits for it before stopping. */
  private running: Promise<void> | undefined;
  private abortStart: (() => void) | undefined;
  private closing: Promise<void> | undefined;
  private onJoinedAndFetched: (() => void) | undefined;
  private fetchedSinceJoin = false;

  constructor(
    client: Kafka,
    private readonly options: ResolvedOptions,
    private readonly subscription: SubscribeOptions,
    private readonly handler: BatchHandler,
    logger: Logger,
    private readonly onClosed: () => void,
  ) {
    const c = options.consumer;
    this.log = logger.child({ group: subscription.group, member: subscription.consumerName });
    this.consumer = client.consumer({
      groupId: subscription.group,
      sessionTimeout: c.sessionTimeoutMs,
      heartbeatInterval: c.heartbeatIntervalMs,
      rebalanceTimeout: c.rebalanceTimeoutMs,
      maxBytes: c.maxBytes,
      maxBytesPerPartition: c.maxBytesPerPartition,
      minBytes: c.minBytes,
      // The broker holds a fetch until data arrives or this passes: the blocking read of pollIntervalMs.
      maxWaitTimeInMs: subscription.pollIntervalMs,
      allowAutoTopicCreation: false,
      retry: {
        retries: options.retry.retries,
        initialRetryTime: options.retry.initialRetryTimeMs,
        maxRetryTime: options.retry.maxRetryTimeMs,
        // Restarts are ours (scheduleRestart), for every kind of crash.
        restartOnFailure: async () => false,
      },
    });
    this.runConfig = {
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: c.partitionsConsumedConcurrently,
      eachBatch: (payload) => this.eachBatch(payload),
    };
    const { events } = this.consumer;
    this.removers.push(
      this.consumer.on(events.GROUP_JOIN, (event) => {
        this.joined = true;
        this.crashes = 0;
        this.fetchedSinceJoin = false;
        this.forgetRevoked(event.payload.memberAssignment);
        this.log.debug('joined the consumer group', { assignment: event.payload.memberAssignment, leader: event.payload.isLeader });
      }),
      this.consumer.on(events.FETCH, () => {
        if (!this.joined || this.fetchedSinceJoin) return;
        this.fetchedSinceJoin = true;
        this.onJoinedAndFetched?.();
      }),
      this.consumer.on(events.CRASH, (event) => {
        this.joined = false;
        this.scheduleRestart(event.payload.error);
      }),
    );
  }

  /** Connects, joins the group and resolves after the first fetch (bounded by `consumer.joinTimeoutMs`). */
  start(): Promise<void> {
    this.starting ??= (async () => {
      const { topics, startFrom } = this.subscription;
      const ready = new Promise<void>((resolve) => {
        this.onJoinedAndFetched = resolve;
      });
      try {
        await this.consumer.connect();
        await this.consumer.subscribe({ topics: [...topics], fromBeginning: startFrom === 'earliest' });
      } catch (error) {
        await this.consumer.disconnect().catch(() => {});
        throw toBusError(error, `could not start a member of group "${this.subscription.group}"`, 'connection');
      }
      // kafkajs's run() resolves after the join, or after a failed join went through its crash handling.
      this.running = this.consumer.run(this.runConfig).catch((error) => this.scheduleRestart(error as Error));
      let timer: NodeJS.Timeout | undefined;
      const timeoutMs = this.options.consumer.joinTimeoutMs;
      const joined = await Promise.race([
        ready.then(() => true),
        new Promise<false>((resolve) => {
          timer = setTimeout(() => resolve(false), timeoutMs);
          this.abortStart = () => resolve(false);
        }),
      ]);
      clearTimeout(timer);
      this.onJoinedAndFetched = undefined;
      this.abortStart = undefined;
      if (!joined && !this.stopping) {
        this.log.warn('member has not joined its group yet; it goes on trying in the background', { timeoutMs, topics });
      }
    })();
    return this.starting;
  }

  /**
   * Every crash comes here (kafkajs's own restart is turned off): the member is started again after a
   * backoff, whatever the error, so a consumer never silently stops. Owning the restart also lets
   * `close` wait for a restart in progress instead of racing it.
   */
  private scheduleRestart(error: Error): void {
    if (this.stopping) return;
    const delay = Math.min(30_000, this.options.consumer.restartDelayMs * 2 ** this.crashes++);
    this.log.warn('consumer crashed; restarting it', { error: rootMessage(error), delay, crashes: this.crashes });
    clearTimeout(this.restartTimer);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.stopping) return;
      this.running = (async () => {
        await this.consumer.connect();
        await this.consumer.run(this.runConfig);
      })().catch((restartError) => this.scheduleRestart(restartError as Error));
    }, delay);
  }

  /** Drops redelivery state of partitions this member no longer owns. */
  private forgetRevoked(assignment: Record<string, number[]>): void {
    const owned = new Set<string>();
    for (const [topic, partitions] of Object.entries(assignment)) for (const p of partitions) owned.add(`${topic}${SEP}${p}`);
    for (const tp of this.ackedAhead.keys()) if (!owned.has(tp)) this.ackedAhead.delete(tp);
    for (const key of this.deliveries.keys()) {
      if (!owned.has(key.slice(0, key.lastIndexOf(SEP)))) this.deliveries.delete(key);
    }
  }

  private async eachBatch(payload: EachBatchPayload): Promise<void> {
    // The commit of a chunk runs while the next chunk's handler does (at most one in flight, sent in
    // order); the batch ends only after the last one succeeded, or throws its error.
    const commits = new CommitPipeline();
    try {
      await this.handleChunks(payload, commits);
    } finally {
      await commits.drain();
    }
  }

  private async handleChunks(payload: EachBatchPayload, commits: CommitPipeline): Promise<void> {
    const { batch, resolveOffset, heartbeat, commitOffsetsIfNecessary, isRunning, isStale, pause } = payload;
    const { topic, partition } = batch;
    const tp = `${topic}${SEP}${partition}`;
    const size = this.subscription.batchSize;
    for (let i = 0; i < batch.messages.length; ) {
      // A commit that failed already (a rebalance took the partition): no further chunk starts.
      if (this.stopping || !isRunning() || isStale() || commits.failed) return;
      const raw = batch.messages.slice(i, i + size);
      i += raw.length;

      const ahead = this.ackedAhead.get(tp);
      const fetched: Fetched[] = [];
      for (const m of raw) {
        // Acknowledged on an earlier delivery, after a message that was not: not handed out again.
        if (ahead?.has(m.offset)) continue;
        // The map only holds redeliveries: while it is empty (the normal case) skip building keys.
        const deliveryCount = this.deliveries.size === 0 ? 1 : (this.deliveries.get(`${tp}${SEP}${m.offset}`) ?? 1);
        fetched.push({ message: m, deliveryCount });
      }
      const settlement = new BatchSettlement(fetched, (f) => this.record(topic, partition, f));
      const settled = await this.runHandler(settlement, heartbeat);

      // The committable position is the end of the acknowledged prefix: Kafka stores one offset per partition.
      let last: string | undefined;
      let open: string | undefined;
      let j = 0;
      for (const m of raw) {
        const skipped = fetched[j]?.message !== m;
        const acked = skipped || settled.settlements[j] === 'ack';
        const deliveryCount = skipped ? 1 : (fetched[j] as Fetched).deliveryCount;
        if (!skipped) j++;
        if (acked) {
          if (this.deliveries.size > 0) this.deliveries.delete(`${tp}${SEP}${m.offset}`);
          if (open === undefined) last = m.offset;
          else if (!skipped) this.remember(tp, m.offset);
        } else {
          open ??= m.offset;
          this.deliveries.set(`${tp}${SEP}${m.offset}`, deliveryCount + 1);
        }
      }
      if (last !== undefined) {
        resolveOffset(last);
        const next = (BigInt(last) + 1n).toString();
        // Waits for the previous chunk's commit (and throws its error), then sends this one without waiting.
        await commits.push(async () => {
          try {
            await commitOffsetsIfNecessary({ topics: [{ topic, partitions: [{ partition, offset: next }] }] });
          } catch (error) {
            // Not lost: the messages are delivered again (here or, after a rebalance, to another member).
            this.log.warn('could not commit offsets; the messages will be delivered again', { topic, partition, offset: next, error: rootMessage(error) });
            throw error;
          }
          this.forgetUpTo(tp, BigInt(last));
        });
      }
      if (open !== undefined) {
        // Nothing after the open message is resolved, so kafkajs fetches the partition again from it.
        // The pause spaces out redeliveries of a message that keeps failing.
        if (this.options.consumer.nackDelayMs > 0 && !this.stopping) {
          const resume = pause();
          const timer = setTimeout(() => {
            this.timers.delete(timer);
            resume();
          }, this.options.consumer.nackDelayMs);
          this.timers.add(timer);
        }
        return;
      }
      // Between chunks: keep the membership alive, and learn early of a rebalance (kafkajs rejoins on the error).
      await heartbeat();
    }
  }

  private remember(tp: string, offset: string): void {
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
    for (const offset of set) if (BigInt(offset) <= last) set.delete(offset);
    if (set.size === 0) this.ackedAhead.delete(tp);
  }

  /** Runs the handler on one chunk, heartbeating meanwhile so a slow handler keeps the membership. */
  private async runHandler(settlement: BatchSettlement<Fetched>, heartbeat: () => Promise<void>) {
    const timer = setInterval(() => {
      heartbeat().catch((error) => {
        // A rebalance started: the heartbeat after the chunk fails the same way and kafkajs rejoins.
        this.log.debug('heartbeat during a running handler failed', { error: rootMessage(error) });
      });
    }, this.options.consumer.heartbeatIntervalMs);
    try {
      const settled = await settlement.run(this.handler, this.stop.signal);
      if (settled.error !== undefined) {
        this.log.warn('batch handler failed; its unsettled messages will be delivered again', { error: rootMessage(settled.error as Error) });
      }
      return settled;
    } finally {
      clearInterval(timer);
    }
  }

  private record(topic: string, partition: number, { message: m, deliveryCount }: Fetched): DeliveredRecord {
    const record = fromKafkaMessage(m);
    const out: DeliveredRecord = { topic, id: `${partition}:${m.offset}`, partition, value: record.value, headers: record.headers, deliveryCount };
    if (record.key !== undefined) out.key = record.key;
    return out;
  }

  /**
   * Stops fetching, lets the running chunk finish and commits its settlements, leaves the group and
   * disconnects; bounded by `consumer.closeTimeoutMs`. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.stop.abort();
      this.abortStart?.();
      clearTimeout(this.restartTimer);
      for (const timer of this.timers) clearTimeout(timer);
      this.timers.clear();
      let timer: NodeJS.Timeout | undefined;
      const done = await Promise.race([
        (async () => {
          await this.starting?.catch(() => {});
          // Stopping a member whose join is still running would not stop it (kafkajs only stops a running runner).
          await this.running;
          await this.consumer.disconnect();
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
        void this.consumer.disconnect().catch(() => {});
      }
      for (const remove of this.removers) remove();
      this.onClosed();
    })();
    return this.closing;
  }

  /** Same as {@link KafkaSubscription.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
