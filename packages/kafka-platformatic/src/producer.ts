import type { BusError, PublishResult, WireRecord } from '@bus/core';
import { compatibilityPartitioner, type MessageToProduce, Producer } from '@platformatic/kafka';
import { baseOptions, toBusError } from './client.js';
import type { ResolvedOptions } from './options.js';
import { recordSize, toKafkaMessage } from './wire.js';

type Message = MessageToProduce<Buffer, Buffer, Buffer, Buffer>;

/**
 * Publishes through one @platformatic/kafka producer (it multiplexes concurrent sends over its broker
 * connections, so there is no pool). The partition of each record is chosen here, the way the Java
 * client and kafkajs choose it (murmur2 of the key; round robin without a key), so a key lands on the
 * same partition whichever Kafka driver published it, and each result can carry `partition:offset`.
 */
export class Publisher {
  private producer: Producer<Buffer, Buffer, Buffer, Buffer> | undefined;
  private readonly roundRobin = new Map<string, number>();
  private closed = false;

  constructor(private readonly options: ResolvedOptions) {}

  private get client(): Producer<Buffer, Buffer, Buffer, Buffer> {
    this.producer ??= new Producer<Buffer, Buffer, Buffer, Buffer>({
      ...baseOptions(this.options, `${this.options.clientId}-producer`),
      idempotent: this.options.producer.idempotent,
      acks: this.options.producer.acks,
      compression: this.options.producer.compression,
      // One request in flight per broker keeps the order of retried requests even without idempotence.
      maxInflights: 1,
    });
    return this.producer;
  }

  /** Sends `records` to `topic` in order; one result per record, never throws. */
  async publish(topic: string, records: readonly WireRecord[]): Promise<PublishResult[]> {
    const results: PublishResult[] = new Array(records.length);
    let failure: BusError | undefined;
    let partitions: number;
    try {
      const metadata = await this.client.metadata({ topics: [topic] });
      partitions = metadata.topics.get(topic)?.partitionsCount ?? 1;
    } catch (error) {
      const e = toBusError(error, `could not publish ${records.length} message(s) to "${topic}"`, this.options.brokers);
      return records.map(() => ({ ok: false, error: e }));
    }
    for (const [start, end] of this.requests(records)) {
      if (failure) {
        // A later request must not overtake a failed one: same-key order would break on the caller's retry.
        for (let i = start; i < end; i++) results[i] = { ok: false, error: failure };
        continue;
      }
      const messages: Message[] = [];
      for (let i = start; i < end; i++) {
        const message = toKafkaMessage(topic, records[i] as WireRecord);
        message.partition = message.key ? compatibilityPartitioner(message, message.key) % partitions : this.nextPartition(topic, partitions);
        messages.push(message);
      }
      try {
        const sent = await this.client.send({ messages });
        const base = new Map<number, bigint>();
        for (const o of sent.offsets ?? []) if (o.topic === topic) base.set(o.partition, o.offset);
        const next = new Map<number, bigint>();
        messages.forEach((message, j) => {
          const partition = message.partition as number;
          const first = base.get(partition);
          if (first === undefined || first < 0n) {
            // acks 0: the broker does not answer, so no offset is known.
            results[start + j] = { ok: true, id: `${partition}:-1` };
            return;
          }
          const offset = next.get(partition) ?? first;
          next.set(partition, offset + 1n);
          results[start + j] = { ok: true, id: `${partition}:${offset}` };
        });
      } catch (error) {
        failure = toBusError(error, `could not publish ${end - start} message(s) to "${topic}"`, this.options.brokers);
        for (let i = start; i < end; i++) results[i] = { ok: false, error: failure };
      }
    }
    return results;
  }

  private nextPartition(topic: string, partitions: number): number {
    const n = this.roundRobin.get(topic) ?? Math.floor(Math.random() * partitions);
    this.roundRobin.set(topic, n + 1);
    return n % partitions;
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

  /** Closes the producer (bounded by `timeoutMs`). Idempotent. */
  async close(timeoutMs: number): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const producer = this.producer;
    if (!producer) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([producer.close().catch(() => {}), new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
  }
}
