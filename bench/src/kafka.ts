import { randomUUID } from 'node:crypto';
import { type Bus, createBus } from '@bus/core';
import { kafka } from '@bus/kafka';
import { type Consumer, Kafka, logLevel, type Message, Partitioners, type Producer } from 'kafkajs';
import { addRow, type BenchEvents, type Ctx, EVENT, makePayload, nowMs, type Payload, RUN_ID, waitFor } from './common.js';
import { type E2eSide, e2eRows } from './redis.js';
import { compare, cpuPerMessage } from './stats.js';

const PARTITIONS = 3;

/** @platformatic/kafka needs Node >= 22.22; on an older Node its two sides are left out of the rows. */
const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
const PLATFORMATIC = major > 22 || (major === 22 && minor >= 22);
const plt = PLATFORMATIC ? await import('./kafka-platformatic.js') : undefined;
const POLL_MS = 100;
const BATCH = 100;

/**
 * What raw kafkajs sends per message: the record the bus's Kafka transport sends with the JSON codec
 * (CloudEvents binary mode: JSON value, `ce_*` headers), built by hand. No key on either side.
 */
function rawMessage(payload: Payload): Message {
  return {
    value: JSON.stringify(payload),
    headers: {
      'ce_specversion': '1.0',
      'ce_id': randomUUID(),
      'ce_type': EVENT,
      'ce_time': new Date().toISOString(),
      'content-type': 'application/json',
    },
  };
}

/** The producer settings of the bus's Kafka transport, for raw kafkajs too. */
const PRODUCER = { idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner } as const;

function kafkaBus(ctx: Ctx): Bus<BenchEvents> {
  return createBus<BenchEvents>({
    transports: { kafka: kafka({ brokers: ctx.kafkaBrokers, clientId: `bench-${RUN_ID}`, logLevel: 'error', topics: { create: true, partitions: PARTITIONS } }) },
  });
}

async function rawSend(producer: Producer, topic: string, payloads: readonly Payload[]): Promise<void> {
  await producer.sendBatch({ topicMessages: [{ topic, messages: payloads.map(rawMessage) }], acks: -1 });
}

/**
 * The hand-written eachBatch consumer the bus replaces: chunks of `BATCH` messages, JSON.parse, the
 * handler, resolve the chunk's last offset and commit, heartbeat. Same fetch settings as the bus.
 */
async function rawConsumer(client: Kafka, group: string, topic: string, onMessage: (p: Payload) => void): Promise<Consumer> {
  const consumer = client.consumer({
    groupId: group,
    sessionTimeout: 30_000,
    heartbeatInterval: 3000,
    rebalanceTimeout: 60_000,
    minBytes: 1,
    maxWaitTimeInMs: POLL_MS,
    maxBytes: 10 * 1024 * 1024,
    maxBytesPerPartition: 1024 * 1024,
    retry: { retries: 5 },
  });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  const joined = new Promise<void>((resolve) => consumer.on(consumer.events.FETCH, () => resolve()));
  await consumer.run({
    eachBatchAutoResolve: false,
    eachBatch: async ({ batch, resolveOffset, commitOffsetsIfNecessary, heartbeat, isRunning, isStale }) => {
      for (let i = 0; i < batch.messages.length && isRunning() && !isStale(); i += BATCH) {
        const chunk = batch.messages.slice(i, i + BATCH);
        for (const m of chunk) onMessage(JSON.parse((m.value as Buffer).toString()) as Payload);
        const last = (chunk[chunk.length - 1] as { offset: string }).offset;
        resolveOffset(last);
        // An explicit commit of the chunk, as the bus does (kafkajs's own auto-commit would wait for the batch's end).
        const offset = (BigInt(last) + 1n).toString();
        await commitOffsetsIfNecessary({ topics: [{ topic: batch.topic, partitions: [{ partition: batch.partition, offset }] }] });
        await heartbeat();
      }
    },
  });
  await Promise.race([joined, new Promise((resolve) => setTimeout(resolve, 30_000))]);
  return consumer;
}

export async function kafkaSuite(ctx: Ctx): Promise<void> {
  const client = new Kafka({ clientId: `bench-${RUN_ID}`, brokers: ctx.kafkaBrokers, logLevel: logLevel.NOTHING });
  const admin = client.admin();
  await admin.connect();
  const topics: string[] = [];
  const topic = async (what: string) => {
    const name = `bench-${RUN_ID}-${what}`;
    await admin.createTopics({ topics: [{ topic: name, numPartitions: PARTITIONS, replicationFactor: 1 }], waitForLeaders: true });
    topics.push(name);
    return name;
  };
  const producer = client.producer(PRODUCER);
  await producer.connect();
  const bus = kafkaBus(ctx);
  const pltBus = plt?.platformaticBus(ctx.kafkaBrokers, PARTITIONS);
  const pltProducer = plt?.rawPlatformaticProducer(ctx.kafkaBrokers, PARTITIONS);
  try {
    // --- produce
    for (const bytes of [200, 1024]) {
      const payload = makePayload(bytes);
      const total = Math.round(50_000 * ctx.scale);
      const t = await topic(`produce-${bytes}`);
      const run = async (send: () => Promise<void>) => {
        const t0 = nowMs();
        for (let sent = 0; sent < total; sent += BATCH) await send();
        return (total / (nowMs() - t0)) * 1000;
      };
      const values = await compare(
        {
          bus: () =>
            run(async () => {
              const results = await bus.publishBatch(t, Array.from({ length: BATCH }, () => ({ event: EVENT, payload }) as const));
              for (const r of results) if (!r.ok) throw r.error;
            }),
          raw: () => run(() => rawSend(producer, t, Array.from({ length: BATCH }, () => payload))),
          ...(pltBus && pltProducer
            ? {
                'bus-plt': () =>
                  run(async () => {
                    const results = await pltBus.publishBatch(t, Array.from({ length: BATCH }, () => ({ event: EVENT, payload }) as const));
                    for (const r of results) if (!r.ok) throw r.error;
                  }),
                'raw-plt': () => run(() => pltProducer.send(t, Array.from({ length: BATCH }, () => payload))),
              }
            : {}),
        },
        ctx.warmup,
        ctx.runs,
      );
      addRow(ctx, {
        section: 'Kafka',
        name: `produce, batch ${BATCH}, ${bytes} B, acks -1`,
        unit: 'msg/s',
        settings: `${total} msgs/run, 1 batch in flight, ${PARTITIONS} partitions, no key; idempotent producer, maxInFlightRequests 1, no compression; bus publishBatch · raw producer.sendBatch (kafkajs) / producer.send (@platformatic/kafka)`,
        values,
        versus: 'raw',
      });
    }

    // --- consume
    const total = Math.round(150_000 * ctx.scale);
    const filled = await topic('consume');
    const payload = makePayload(200);
    for (let i = 0; i < total; i += 1000) await rawSend(producer, filled, Array.from({ length: Math.min(1000, total - i) }, () => payload));
    let groups = 0;
    /** Rate from the first to the last message, so the group join (a few hundred ms) is not counted. */
    const timed = () => {
      let first = 0;
      let last = 0;
      let count = 0;
      return {
        on: () => {
          if (count === 0) first = nowMs();
          if (++count === total) last = nowMs();
        },
        done: () => count >= total,
        rate: () => ((total - 1) / (last - first)) * 1000,
      };
    };
    const values = await compare(
      {
        bus: async () => {
          const clock = timed();
          const consumerBus = kafkaBus(ctx);
          consumerBus.module({
            name: `bench-${RUN_ID}-k${++groups}`,
            batchSize: BATCH,
            pollIntervalMs: POLL_MS,
            lagIntervalMs: 0,
            consumers: { c: { topics: [filled], events: [EVENT] } },
            handler: clock.on,
          });
          try {
            await consumerBus.start();
            await waitFor(clock.done, 120_000, 'bus Kafka consumer', 2);
            return clock.rate();
          } finally {
            await consumerBus.close();
          }
        },
        raw: async () => {
          const clock = timed();
          const consumer = await rawConsumer(client, `bench-${RUN_ID}-r${++groups}`, filled, clock.on);
          try {
            await waitFor(clock.done, 120_000, 'raw Kafka consumer', 2);
            return clock.rate();
          } finally {
            await consumer.disconnect();
          }
        },
        ...(plt
          ? {
              'bus-plt': async () => {
                const clock = timed();
                const consumerBus = plt.platformaticBus(ctx.kafkaBrokers, PARTITIONS);
                consumerBus.module({
                  name: `bench-${RUN_ID}-p${++groups}`,
                  batchSize: BATCH,
                  pollIntervalMs: POLL_MS,
                  lagIntervalMs: 0,
                  consumers: { c: { topics: [filled], events: [EVENT] } },
                  handler: clock.on,
                });
                try {
                  await consumerBus.start();
                  await waitFor(clock.done, 120_000, 'bus (platformatic) Kafka consumer', 2);
                  return clock.rate();
                } finally {
                  await consumerBus.close();
                }
              },
              'raw-plt': async () => {
                const clock = timed();
                const consumer = await plt.rawPlatformaticConsumer(ctx.kafkaBrokers, `bench-${RUN_ID}-rp${++groups}`, filled, BATCH, POLL_MS, clock.on);
                try {
                  await waitFor(clock.done, 120_000, 'raw @platformatic/kafka consumer', 2);
                  return clock.rate();
                } finally {
                  await consumer.stop();
                }
              },
            }
          : {}),
      },
      ctx.warmup,
      ctx.runs,
    );
    addRow(ctx, {
      section: 'Kafka',
      name: `consume, batch ${BATCH}, 200 B`,
      unit: 'msg/s',
      settings: `${total} msgs pre-filled in ${PARTITIONS} partitions, new group per run, timed first → last message; fetch minBytes 1, maxWait ${POLL_MS} ms, 1 MiB/partition; commit after every ${BATCH}; bus module · raw eachBatch (kafkajs) / a stream without autocommit (@platformatic/kafka)`,
      values,
      versus: 'raw',
    });
    addRow(ctx, {
      section: 'Kafka',
      name: `consume, batch ${BATCH}: CPU per message`,
      unit: 'µs/msg',
      settings: 'user + system CPU of the bench process over each run above ÷ messages (lower is better; includes joining the group and closing)',
      values: cpuPerMessage(values, total),
      versus: 'raw',
    });

    // --- end-to-end
    let n = 0;
    const sides: Record<string, E2eSide> = {
      bus: {
        async start(onMessage) {
          const t = await topic(`e2e-bus-${++n}`);
          const consumerBus = kafkaBus(ctx);
          consumerBus.module({
            name: `bench-${RUN_ID}-e2e${n}`,
            batchSize: BATCH,
            pollIntervalMs: POLL_MS,
            lagIntervalMs: 0,
            consumers: { c: { topics: [t], events: [EVENT] } },
            handler: ({ payload }) => onMessage(payload),
          });
          await consumerBus.start();
          return {
            async publish(payloads) {
              const results = await bus.publishBatch(
                t,
                payloads.map((p) => ({ event: EVENT, payload: p })),
              );
              for (const r of results) if (!r.ok) throw r.error;
            },
            stop: () => consumerBus.close(),
          };
        },
      },
      raw: {
        async start(onMessage) {
          const t = await topic(`e2e-raw-${++n}`);
          const consumer = await rawConsumer(client, `bench-${RUN_ID}-e2e${n}`, t, onMessage);
          return {
            publish: (payloads) => rawSend(producer, t, payloads),
            stop: () => consumer.disconnect(),
          };
        },
      },
    };
    await e2eRows(
      ctx,
      'Kafka',
      sides,
      10_000,
      Math.max(1, 3 * ctx.scale),
      200,
      `producer and consumer in one process, acks -1, ${PARTITIONS} partitions; batch ${BATCH}, fetch maxWait ${POLL_MS} ms`,
      'raw',
    );
  } finally {
    await bus.close();
    await pltBus?.close();
    await pltProducer?.close();
    await producer.disconnect();
    if (topics.length > 0) await admin.deleteTopics({ topics, timeout: 30_000 }).catch((e) => ctx.log(`  could not delete topics: ${e}`));
    await admin.disconnect();
  }
}
