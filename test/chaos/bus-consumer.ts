/**
 * One worker process of the SIGTERM-drain scenario: a bus module on Redis stream `argv[3]` of `argv[2]`
 * whose handler takes CHAOS_HANDLER_MS per message. Prints { start: n } when a handler starts and { n }
 * when it finished (then the message is acknowledged). SIGTERM: closeOnSignals drains and exits 0.
 */
import { createBus } from '@bus/core';
import { redisStream } from '@bus/redis-stream';
import { closeOnSignals } from '@bus/runtime';

const [url, topic] = process.argv.slice(2) as [string, string];
const handlerMs = Number(process.env.CHAOS_HANDLER_MS ?? 200);
const drainTimeoutMs = Number(process.env.CHAOS_DRAIN_MS ?? 5000);
const bus = createBus({ transports: { redis: redisStream({ url, keyPrefix: 'bus-chaos:', claimIdleMs: 1000, claimIntervalMs: 250 }) } });
bus.module({
  name: 'drain',
  batchSize: 10,
  concurrency: 5,
  pollIntervalMs: 200,
  drainTimeoutMs,
  consumers: { c: { topics: [topic], events: ['chaos'] } },
  handler: async ({ payload }) => {
    const { n } = payload as { n: number };
    process.stdout.write(`${JSON.stringify({ start: n })}\n`);
    await new Promise((r) => setTimeout(r, handlerMs));
    process.stdout.write(`${JSON.stringify({ n })}\n`);
  },
});
await bus.start();
closeOnSignals(bus, { timeoutMs: drainTimeoutMs + 5000 });
process.stdout.write(`${JSON.stringify({ ready: process.pid })}\n`);
