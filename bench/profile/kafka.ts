import { createBus } from '@bus/core';
import { kafka } from '@bus/kafka';
import { Kafka, logLevel, Partitioners } from 'kafkajs';
import { EVENT, makePayload } from '../src/common.js';
const mode = process.argv[2];
const total = Number(process.argv[3] ?? 200_000);
const topic = process.argv[4] ?? 'bench-prof-k';
const client = new Kafka({ clientId: 'prof', brokers: ['127.0.0.1:9092'], logLevel: logLevel.NOTHING });
if (mode === 'fill') {
  const admin = client.admin(); await admin.connect();
  await admin.deleteTopics({ topics: [topic] }).catch(() => {});
  await new Promise((r) => setTimeout(r, 1000));
  await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true });
  const p = client.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
  await p.connect();
  const v = JSON.stringify(makePayload(200));
  for (let i = 0; i < total; i += 1000) await p.sendBatch({ topicMessages: [{ topic, messages: Array.from({ length: 1000 }, () => ({ value: v, headers: { ce_specversion: '1.0', ce_id: crypto.randomUUID(), ce_type: EVENT, ce_time: new Date().toISOString(), 'content-type': 'application/json' } })) }], acks: -1 });
  await p.disconnect(); await admin.disconnect();
} else if (mode === 'clean') {
  const admin = client.admin(); await admin.connect(); await admin.deleteTopics({ topics: [topic] }); await admin.disconnect();
} else {
  let count = 0, first = 0, last = 0, cpu0: NodeJS.CpuUsage | undefined;
  const on = () => { if (count === 0) { first = performance.now(); cpu0 = process.cpuUsage(); } if (++count === total) last = performance.now(); };
  if (mode === 'raw') {
    const consumer = client.consumer({ groupId: `rawprof-${Date.now()}`, minBytes: 1, maxWaitTimeInMs: 100 });
    await consumer.connect(); await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({ eachBatchAutoResolve: false, eachBatch: async ({ batch, resolveOffset, commitOffsetsIfNecessary, heartbeat }) => {
      for (let i = 0; i < batch.messages.length; i += 100) { const chunk = batch.messages.slice(i, i + 100); for (const m of chunk) { JSON.parse(m.value!.toString()); on(); }
        const last = chunk[chunk.length - 1]!.offset; resolveOffset(last);
        await commitOffsetsIfNecessary({ topics: [{ topic: batch.topic, partitions: [{ partition: batch.partition, offset: (BigInt(last) + 1n).toString() }] }] }); await heartbeat(); } } });
    while (count < total) await new Promise((r) => setTimeout(r, 5));
    const cpu = process.cpuUsage(cpu0);
    console.log(mode, Math.round(total / (last - first) * 1000), 'msg/s', ((cpu.user + cpu.system) / total).toFixed(2), 'cpu-us/msg');
    await consumer.disconnect(); process.exit(0);
  }
  const bus = createBus({ transports: { k: kafka({ brokers: ['127.0.0.1:9092'], logLevel: 'error' }) } });
  bus.module({ name: `prof-${Date.now()}`, batchSize: 100, pollIntervalMs: 100, lagIntervalMs: 0, consumers: { c: { topics: [topic], events: [EVENT] } }, handler: on });
  await bus.start();
  while (count < total) await new Promise((r) => setTimeout(r, 5));
  const cpu = process.cpuUsage(cpu0);
  console.log(mode, Math.round(total / (last - first) * 1000), 'msg/s', ((cpu.user + cpu.system) / total).toFixed(2), 'cpu-us/msg');
  await bus.close();
}
