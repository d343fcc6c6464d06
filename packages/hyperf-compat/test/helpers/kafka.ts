// The few Kafka test helpers the interop tests need (the driver's own live in packages/kafka/test/helpers).
import type { Transport } from '@bus/core';
import { kafka } from '@bus/kafka';
import { Kafka, logLevel } from 'kafkajs';

/** The shared broker of the test environment (CI starts it with `bash scripts/kafka.sh start`). */
export const BROKERS = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',').map((b) => b.trim());

/** A transport with options that make group joins quick on a test broker. */
export function testTransport(brokers: string[] = BROKERS): Transport {
  return kafka({
    brokers,
    connectionTimeoutMs: 2000,
    retry: { retries: 5, initialRetryTimeMs: 100, maxRetryTimeMs: 2000 },
    consumer: { sessionTimeoutMs: 6000, heartbeatIntervalMs: 500, rebalanceTimeoutMs: 15_000, nackDelayMs: 50, restartDelayMs: 300, closeTimeoutMs: 20_000 },
  });
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

/** Polls `predicate` every 25 ms; throws after `ms`. */
export async function waitFor(what: string, predicate: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise<void>((resolve) => setTimeout(resolve, 25));
  }
}
