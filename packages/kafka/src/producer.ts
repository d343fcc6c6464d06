import { BusError, createPool, type Pool, type PoolStats, PoolTimeoutError, type PublishResult, TimeoutError, type WireRecord } from '@bus/core';
import { CompressionTypes, type Kafka, type Message, type PartitionerArgs, Partitioners, type Producer } from 'kafkajs';
import { connectWithin, toBusError } from './client.js';
import type { ResolvedOptions } from './options.js';
import { recordSize, toKafkaMessage } from './wire.js';

interface PooledProducer {
  producer: Producer;
  /** Set when the producer was disconnected (kafkajs reconnects broken broker connections by itself). */
  disconnected: boolean;
}

/**
 * Publishes through a pool of kafkajs producers. Each `publish` borrows one producer and sends its
 * records in one produce request (one per leader broker), or in several bounded ones when it is
 * larger than `producer.maxRequestBytes`.
 */
export class Publisher {
  private readonly pool: Pool<PooledProducer>;
  /** Partition kafkajs chose for each message of a running send, read back to compute the offsets. */
  private readonly partitionOf = new WeakMap<Message, number>();

  constructor(
    client: () => Kafka,
    private readonly options: ResolvedOptions,
    observe: (stats: PoolStats) => void,
  ) {
    const { idempotent } = options.producer;
    const partitionOf = this.partitionOf;
    // The Java client's partitioner (murmur2 of the key); kept explicit so kafkajs does not warn about its v2 default change.
    const createPartitioner = () => {
      const partition = Partitioners.DefaultPartitioner();
      return (args: PartitionerArgs) => {
        const p = partition(args);
        partitionOf.set(args.message, p);
        return p;
      };
    };
    this.pool = createPool<PooledProducer>(
      `${options.name}-producer`,
      {
        create: async () => {
          const producer = client().producer({
            idempotent,
            createPartitioner,
            allowAutoTopicCreation: false,
            // One request in flight per broker keeps the order of retried requests even without idempotence.
            maxInFlightRequests: 1,
          });
          await connectWithin(producer, options, 'could not connect a producer');
          const pooled: PooledProducer = { producer, disconnected: false };
          producer.on(producer.events.DISCONNECT, () => {
            pooled.disconnected = true;
          });
          return pooled;
        },
        validate: ({ disconnected }) => !disconnected,
        destroy: async ({ producer }) => {
          await producer.disconnect().catch(() => {});
        },
      },
      options.pool,
      observe,
    );
  }

  /** Sends `records` to `topic` in order; one result per record, never throws. */
  async publish(topic: string, records: readonly WireRecord[]): Promise<PublishResult[]> {
    const results: PublishResult[] = new Array(records.length);
    let failure: BusError | undefined;
    for (const [start, end] of this.requests(records)) {
      if (failure) {
        // A later request must not overtake a failed one: same-key order would break on the caller's retry.
        for (let i = start; i < end; i++) results[i] = { ok: false, error: failure };
        continue;
      }
      const messages = records.slice(start, end).map(toKafkaMessage);
      try {
        const metadata = await this.withinPublishTimeout(topic, end - start, (pooled) =>
          pooled.producer.send({
            topic,
            messages,
            acks: this.options.producer.acks,
            timeout: this.options.producer.ackTimeoutMs,
            compression: this.options.producer.compression === 'gzip' ? CompressionTypes.GZIP : CompressionTypes.None,
          }),
        );
        const byPartition = new Map(metadata.map((m) => [m.partition, m]));
        const next = new Map<number, bigint>();
        messages.forEach((message, j) => {
          const partition = this.partitionOf.get(message);
          const base = partition === undefined ? undefined : byPartition.get(partition)?.baseOffset;
          if (partition === undefined || base === undefined || base === '-1') {
            // acks 0: the broker does not answer, so no offset is known.
            results[start + j] = { ok: true, id: partition === undefined ? '-1' : `${partition}:-1` };
            return;
          }
          const offset = next.get(partition) ?? BigInt(base);
          next.set(partition, offset + 1n);
          results[start + j] = { ok: true, id: `${partition}:${offset}` };
        });
      } catch (error) {
        failure = toBusError(error, `could not publish ${end - start} message(s) to "${topic}"`);
        for (let i = start; i < end; i++) results[i] = { ok: false, error: failure };
      }
    }
    return results;
  }

  /**
   * Borrows a producer and runs `send` on it, all within `publishTimeoutMs`. Past it the call fails
   * with a retryable `TimeoutError` and the producer is disconnected, which ends its retries (a
   * producer borrowed only after the deadline goes back to the pool unused). A pool timeout caused by
   * a failing connect becomes that connect's error.
   */
  private async withinPublishTimeout<R>(topic: string, count: number, send: (pooled: PooledProducer) => Promise<R>): Promise<R> {
    const ms = this.options.publishTimeoutMs;
    let borrowed: PooledProducer | undefined;
    let timedOut = false;
    let timer: NodeJS.Timeout | undefined;
    const late = new TimeoutError('[bus/kafka] publish timed out before sending');
    const work = this.pool.use(
      async (pooled) => {
        if (timedOut) throw late;
        borrowed = pooled;
        return send(pooled);
      },
      // A producer that failed is replaced: its idempotence sequence or connections may be broken.
      (error) => error !== late,
    );
    work.catch(() => {});
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        timedOut = true;
        // Ends kafkajs's retries of this send; the pool replaces the producer when `use` fails.
        if (borrowed) void borrowed.producer.disconnect().catch(() => {});
        reject(
          new TimeoutError(
            `[bus/kafka] publish of ${count} message(s) to "${topic}" was not acknowledged within ${ms} ms (publishTimeoutMs); ` +
              `the brokers (${this.options.brokers.join(',')}) may be down or overloaded. Retrying may write a message twice.`,
          ),
        );
      }, ms);
    });
    try {
      return await Promise.race([work, deadline]);
    } catch (error) {
      const cause = (error as { cause?: unknown } | undefined)?.cause;
      // The pool timed out because no producer could connect: report the connect error.
      if (PoolTimeoutError.isInstance(error) && BusError.isInstance(cause)) throw cause;
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  /** [start, end) ranges of `records`, each at most `maxRequestBytes` (or one record). */
  private *requests(records: readonly WireRecord[]): Generator<[number, number]> {
    const limit = this.options.producer.maxRequestBytes;
    let start = 0;
    let bytes = 0;
    for (let i = 0; i < records.length; i++) {
      const size = recordSize(records[i] as WireRecord);
      if (i > start && bytes + size > limit) {
        yield [start, i];
        start = i;
        bytes = 0;
      }
      bytes += size;
    }
    if (start < records.length) yield [start, records.length];
  }

  stats(): PoolStats {
    return this.pool.stats();
  }

  /** Waits (bounded) for running sends, then disconnects every producer. */
  close(timeoutMs: number): Promise<void> {
    return this.pool.close(timeoutMs);
  }
}
