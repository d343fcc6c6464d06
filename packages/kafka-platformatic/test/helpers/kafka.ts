import { consoleLogger, type Logger, noopMetrics } from '@bus/core';
import { Admin } from '@platformatic/kafka';
import { type KafkaPlatformaticOptions, type KafkaPlatformaticTransport, kafkaPlatformatic } from '../../src/index.js';

export { type DedicatedBroker, delay, KAFKA_SH, startDedicatedBroker, waitFor } from '../../../kafka/test/helpers/broker.js';

/** The shared broker of the test environment (CI starts it with `bash scripts/kafka.sh start`). */
export const BROKERS = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',').map((b) => b.trim());

/** Both group protocols the driver is verified with. */
export const PROTOCOLS = ['classic', 'consumer'] as const;
export type GroupProtocol = (typeof PROTOCOLS)[number];

/** Set BUS_KAFKA_TEST_LOG=debug|info|warn to see the transport's log lines. */
export const testLogger = (): Logger | undefined => {
  const level = process.env.BUS_KAFKA_TEST_LOG;
  return level === 'debug' || level === 'info' || level === 'warn' || level === 'error' ? consoleLogger(level) : undefined;
};

/** Options that make group joins and failure detection quick on a test broker. */
export function testOptions(brokers: string[] = BROKERS, groupProtocol: GroupProtocol = 'classic', extra: Partial<KafkaPlatformaticOptions> = {}): KafkaPlatformaticOptions {
  return {
    brokers,
    connectionTimeoutMs: 2000,
    requestTimeoutMs: 10_000,
    retry: { retries: 5, retryDelayMs: 200 },
    ...extra,
    consumer: {
      groupProtocol,
      sessionTimeoutMs: 6000,
      heartbeatIntervalMs: 500,
      rebalanceTimeoutMs: 15_000,
      nackDelayMs: 50,
      restartDelayMs: 300,
      closeTimeoutMs: 20_000,
      ...extra.consumer,
    },
  };
}

/** A transport with the test options and, when asked for, a logger on stderr. */
export function testTransport(brokers: string[] = BROKERS, groupProtocol: GroupProtocol = 'classic', extra: Partial<KafkaPlatformaticOptions> = {}): KafkaPlatformaticTransport {
  const t = kafkaPlatformatic(testOptions(brokers, groupProtocol, extra));
  const logger = testLogger();
  if (logger) t.attach?.({ logger: logger.child({ transport: 'kafka-platformatic', groupProtocol }), metrics: noopMetrics });
  return t;
}

/** Fails (never skips) when no broker answers: the suite must run against a real Kafka. */
export async function requireBroker(brokers: string[] = BROKERS): Promise<void> {
  const admin = new Admin({ clientId: 'bus-test-probe', bootstrapBrokers: brokers, connectTimeout: 2000, retries: 2, retryDelay: 200 });
  try {
    await admin.listTopics();
  } catch (error) {
    throw new Error(`no Kafka broker answers at ${brokers.join(',')} (start one: bash scripts/kafka.sh start): ${(error as Error).message}`);
  } finally {
    await admin.close().catch(() => {});
  }
}
