/**
 * One consumer process of the Redis consumer-crash scenario: joins group `argv[4]` on stream `argv[3]`
 * of `argv[2]` and prints one JSON line per handled batch: { n: [...] }. Killed with SIGKILL by the runner.
 */
import { jsonCodec } from '@bus/core';
import { redisStream } from '@bus/redis-stream';

const [url, topic, group, name] = process.argv.slice(2) as [string, string, string, string];
const codec = jsonCodec();
const transport = redisStream({ url, keyPrefix: 'bus-chaos:', claimIdleMs: 1000, claimIntervalMs: 250 });
await transport.subscribe({ group, topics: [topic], batchSize: 100, pollIntervalMs: 200, startFrom: 'earliest', consumerName: name }, async (batch) => {
  const n = batch.map((m) => (codec.decode(m).payload as { n: number }).n);
  // A little work per batch, so that kills land while batches are held.
  await new Promise((r) => setTimeout(r, 50));
  process.stdout.write(`${JSON.stringify({ n })}\n`);
  for (const m of batch) m.ack();
});
process.stdout.write(`${JSON.stringify({ ready: name })}\n`);
