/**
 * One consumer process of the Kafka failover scenario: joins group `argv[4]` on topic `argv[3]` of the
 * brokers `argv[2]` and prints one JSON line per handled message: { n, key, seq, partition }.
 * Exits on SIGTERM (closing its subscription) or when stdin closes.
 */
import { jsonCodec } from '@bus/core';
import { kafka } from '@bus/kafka';

const [brokers, topic, group, name] = process.argv.slice(2) as [string, string, string, string];
const codec = jsonCodec();
// CHAOS_KAFKA_RF=1 for the single-node scenarios; CHAOS_KAFKA_SESSION_MS: how soon a SIGKILLed member leaves.
const session = process.env.CHAOS_KAFKA_SESSION_MS ? Number(process.env.CHAOS_KAFKA_SESSION_MS) : undefined;
const batchMs = Number(process.env.CHAOS_KAFKA_BATCH_MS ?? 0);
const rf = Number(process.env.CHAOS_KAFKA_RF ?? 3);
const transport = kafka({
  brokers: brokers.split(','),
  clientId: `chaos-${name}`,
  topics: { replicationFactor: rf, minInsyncReplicas: Math.min(2, rf), partitions: 3 },
  ...(session ? { consumer: { sessionTimeoutMs: session, heartbeatIntervalMs: Math.floor(session / 6) } } : {}),
});
const subscription = await transport.subscribe(
  { group, topics: [topic], batchSize: 200, pollIntervalMs: 200, startFrom: 'earliest', consumerName: name },
  async (batch) => {
    const lines: string[] = [];
    for (const m of batch) {
      const { n, seq } = codec.decode(m).payload as { n: number; seq: number };
      lines.push(JSON.stringify({ n, key: m.key, seq, partition: (m as { partition?: number }).partition }));
      m.ack();
    }
    if (batchMs > 0) await new Promise((r) => setTimeout(r, batchMs));
    process.stdout.write(`${lines.join('\n')}\n`);
  },
);
process.stdout.write(`${JSON.stringify({ ready: name })}\n`);
const stop = async () => {
  await Promise.race([subscription.close(), new Promise((r) => setTimeout(r, 10_000))]);
  await Promise.race([transport.close(), new Promise((r) => setTimeout(r, 5000))]);
  process.exit(0);
};
process.once('SIGTERM', stop);
process.stdin.on('close', stop);
process.stdin.resume();
