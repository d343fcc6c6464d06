// The producer → handler trace over the real brokers: W3C trace context travels in Redis stream fields
// and Kafka record headers, exactly as over the memory transport.
import { redisStream } from '@bus/redis-stream';
import { describeTraceAcrossBus } from './helpers/tracing.js';

const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

describeTraceAcrossBus('redis', () => redisStream({ url: redisUrl }), { pollIntervalMs: 100 });
