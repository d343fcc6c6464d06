import { consoleLogger, type Logger, noopMetrics, type Transport } from '@bus/core';
import { Kafka, logLevel } from 'kafkajs';
import { type KafkaTransportOptions, kafka } from '../../src/index.js';

export { type DedicatedBroker, delay, KAFKA_SH, startDedicatedBroker, waitFor } from './broker.js';

/** The shared broker of the test environment (CI starts it with `bash scripts/kafka.sh start`). */
export const BROKERS = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',').map((b) => b.trim());

/** Set BUS_KAFKA_TEST_LOG=debug|info|warn to see the transport's (and kafkajs's) log lines. */
export const testLogger = (): Logger | undefined => {
  const level = process.env.BUS_KAFKA_TEST_LOG;
  return level === 'debug' || level === 'info' || level === 'warn' || level === 'error' ? consoleLogger(level) : undefined;
};

/** Options that make group joins and failure detection quick on a test broker. */
export function testOptions(brokers: string[] = BROKERS, extra: Partial<KafkaTransportOptions> = {}): KafkaTransportOptions {
  return {
    brokers,
    connectionTimeoutMs: 2000,
    retry: { retries: 5, initialRetryTimeMs: 100, maxRetryTimeMs: 2000 },
    ...extra,
    consumer: { sessionTimeoutMs: 6000, heartbeatIntervalMs: 500, rebalanceTimeoutMs: 15_000, nackDelayMs: 50, restartDelayMs: 300, closeTimeoutMs: 20_000, ...extra.consumer },
  };
}

/** A transport with the test options and, when asked for, a logger on stderr. */
export function testTransport(brokers: string[] = BROKERS, extra: Partial<KafkaTransportOptions> = {}): Transport {
  const t = kafka(testOptions(brokers, extra));
  const logger = testLogger();
  if (logger) t.attach?.({ logger: logger.child({ transport: 'kafka' }), metrics: noopMetrics });
  return t;
}

/** Fails (never skips) when no broker answers: the suite must run against a real Kafka. */
export async function requireBroker(brokers: string[] = BROKERS): Promise<void> {
  const admin = new Kafka({ brokers, clientId: 'bus-test-probe', connectionTimeout: 2000, logLevel: logLevel.NOTHING, retry: { retries: 2, initialRetryTime: 200 } }).admin();
  try {
    await admin.connect();
    await admin.describeCluster();
  } catch (error) {
    throw new Error(`no Kafka broker answers at ${brokers.join(',')} (start one: bash scripts/kafka.sh start): ${(error as Error).message}`);
  } finally {
    await admin.disconnect().catch(() => {});
  }
}
