// The @platformatic/kafka sides of the Kafka rows: the bus on @bus/kafka-platformatic, and raw
// @platformatic/kafka written by hand with the same settings as raw kafkajs. Loaded only on Node >= 22.22.
import { randomUUID } from 'node:crypto';
import { type Bus, createBus } from '@bus/core';
import { kafkaPlatformatic } from '@bus/kafka-platformatic';
import { Consumer, type MessageToProduce, Producer } from '@platformatic/kafka';
import { type BenchEvents, EVENT, type Payload, RUN_ID } from './common.js';

type Message = MessageToProduce<Buffer, Buffer, Buffer, Buffer>;

/** The bus on the @platformatic/kafka transport, same settings as the kafkajs one. */
export function platformaticBus(brokers: string[], partitions: number): Bus<BenchEvents> {
  return createBus<BenchEvents>({
    transports: { kafka: kafkaPlatformatic({ brokers, clientId: `bench-plt-${RUN_ID}`, topics: { create: true, partitions } }) },
  });
}

/** The record the bus writes (CloudEvents binary mode), built by hand; no key. */
function rawMessage(topic: string, payload: Payload, partition: number): Message {
  const headers = new Map<Buffer, Buffer>([
    [Buffer.from('ce_specversion'), Buffer.from('1.0')],
    [Buffer.from('ce_id'), Buffer.from(randomUUID())],
    [Buffer.from('ce_type'), Buffer.from(EVENT)],
    [Buffer.from('ce_time'), Buffer.from(new Date().toISOString())],
    [Buffer.from('content-type'), Buffer.from('application/json')],
  ]);
  return { topic, value: Buffer.from(JSON.stringify(payload)), headers, partition };
}

/** Raw @platformatic/kafka producer: idempotent, acks -1, one request in flight per broker (as raw kafkajs). */
export function rawPlatformaticProducer(brokers: string[], partitions: number) {
  const producer = new Producer<Buffer, Buffer, Buffer, Buffer>({ clientId: `bench-rawplt-${RUN_ID}`, bootstrapBrokers: brokers, idempotent: true, acks: -1, maxInflights: 1 });
  let next = 0;
  return {
    async send(topic: string, payloads: readonly Payload[]): Promise<void> {
      // Round robin over the partitions, like kafkajs's default partitioner for messages without a key.
      await producer.send({ messages: payloads.map((p) => rawMessage(topic, p, next++ % partitions)) });
    },
    close: () => producer.close(),
  };
}

/**
 * The hand-written @platformatic/kafka consumer the bus replaces: a stream without autocommit, JSON.parse,
 * the handler, a commit every `batch` messages. Same fetch settings as the bus.
 */
export async function rawPlatformaticConsumer(brokers: string[], group: string, topic: string, batch: number, pollMs: number, onMessage: (p: Payload) => void) {
  const consumer = new Consumer<Buffer, Buffer, Buffer, Buffer>({
    clientId: `bench-rawplt-${RUN_ID}`,
    bootstrapBrokers: brokers,
    groupId: group,
    sessionTimeout: 30_000,
    heartbeatInterval: 3000,
    rebalanceTimeout: 60_000,
    autocommit: false,
    minBytes: 1,
    maxWaitTime: pollMs,
    maxBytes: 10 * 1024 * 1024,
    maxBytesPerPartition: 1024 * 1024,
  });
  const stream = await consumer.consume({ topics: [topic], mode: 'committed', fallbackMode: 'earliest', autocommit: false, maxWaitTime: pollMs });
  const done = (async () => {
    let n = 0;
    for await (const m of stream) {
      onMessage(JSON.parse(m.value.toString()) as Payload);
      if (++n % batch === 0) await m.commit();
    }
  })().catch(() => {});
  return {
    async stop() {
      await stream.close().catch(() => {});
      await done;
      await consumer.close(true).catch(() => {});
    },
  };
}
