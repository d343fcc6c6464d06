import { memoryTransport, type Transport } from '@bus/core';
import { kafka } from '@bus/kafka';
import { redisStream } from '@bus/redis-stream';

export const TRANSPORTS = ['memory', 'redis', 'kafka'] as const;
export type TransportName = (typeof TRANSPORTS)[number];

/** `--transport <name>` on the command line, else `$BUS_TRANSPORT`, else `memory`. */
export function transportName(argv: readonly string[] = process.argv.slice(2), env = process.env): TransportName {
  const i = argv.indexOf('--transport');
  const name = (i >= 0 ? argv[i + 1] : undefined) ?? env.BUS_TRANSPORT ?? 'memory';
  if (!TRANSPORTS.includes(name as TransportName)) {
    throw new Error(`transport must be one of ${TRANSPORTS.join(', ')} (--transport or BUS_TRANSPORT), got ${JSON.stringify(name)}`);
  }
  return name as TransportName;
}

/** The transport, connected lazily: Redis at $REDIS_URL, Kafka at $KAFKA_BROKERS (comma-separated). */
export function createTransport(name: TransportName, env = process.env): Transport {
  switch (name) {
    case 'redis':
      return redisStream({ url: env.REDIS_URL ?? 'redis://127.0.0.1:6379' });
    case 'kafka':
      return kafka({ brokers: env.KAFKA_BROKERS ?? '127.0.0.1:9092', logLevel: 'warn' });
    default:
      return memoryTransport();
  }
}
