// The producer → handler trace over the real brokers (Redis and Kafka): W3C trace context travels in Redis stream fields
// and Kafka record headers, exactly as over the memory transport.
import { execFileSync } from 'node:child_process';
import { kafka } from '@bus/kafka';
import { redisStream } from '@bus/redis-stream';
import { describeTraceAcrossBus } from './helpers/tracing.js';

const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

describeTraceAcrossBus('redis', () => redisStream({ url: redisUrl }), {
  pollIntervalMs: 100,
  // The shared Redis keeps no test streams behind.
  cleanup: (streams) => void execFileSync('redis-cli', ['-u', redisUrl, 'DEL', ...streams], { stdio: 'ignore' }),
});

const kafkaBrokers = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');

describeTraceAcrossBus('kafka', () => kafka({ brokers: kafkaBrokers, clientId: 'bus-otel-test' }), { pollIntervalMs: 100 });
