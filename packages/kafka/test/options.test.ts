import { BusError, ConfigError, POOL_DEFAULTS } from '@bus/core';
import { describe, expect, it } from 'vitest';
import { KAFKA_CAPABILITIES, KAFKA_DEFAULTS, kafka } from '../src/index.js';
import { freePort } from '@bus/core/testing';

/** The ConfigError thrown by `kafka(options)`. */
function configError(options: unknown): ConfigError {
  try {
    kafka(options as never);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('kafka() accepted invalid options');
}

describe('kafka() options', () => {
  it.each([
    [undefined, 'options', '[bus/kafka] options must be an object'],
    [{}, 'brokers', '[bus/kafka] brokers must be a non-empty array of strings, got undefined'],
    [{ brokers: [] }, 'brokers', 'brokers must be a non-empty array'],
    [{ brokers: ' , ' }, 'brokers', 'brokers must name at least one host:port'],
    [{ brokers: ['localhost'] }, 'brokers[0]', '[bus/kafka] brokers[0] must be host:port, got "localhost"'],
    [{ brokers: ['a:1', 7] }, 'brokers[1]', 'brokers[1] must be a non-empty string, got 7'],
    [{ brokers: 'a:1', clientId: '' }, 'clientId', 'clientId must be a non-empty string'],
    [{ brokers: 'a:1', broker: 'a:1' }, 'broker', 'broker is not an option; did you mean "brokers"?'],
    [{ brokers: 'a:1', ssl: 'yes' }, 'ssl', 'ssl must be true, false or tls.connect options'],
    [{ brokers: 'a:1', sasl: { username: 'u' } }, 'sasl.mechanism', 'sasl.mechanism must be one of "plain", "scram-sha-256"'],
    [{ brokers: 'a:1', sasl: { mechanism: 'gssapi' } }, 'sasl.mechanism', 'sasl.mechanism must be one of "plain"'],
    [{ brokers: 'a:1', connectionTimeoutMs: 0 }, 'connectionTimeoutMs', 'connectionTimeoutMs must be an integer from 1 to 3600000, got 0'],
    [{ brokers: 'a:1', logLevel: 'trace' }, 'logLevel', 'logLevel must be one of'],
    [{ brokers: 'a:1', retry: { retries: -1 } }, 'retry.retries', 'retry.retries must be an integer from 0 to 1000, got -1'],
    [{ brokers: 'a:1', retry: { retries: 0 } }, 'retry.retries', 'retry.retries must be at least 1 when producer.idempotent is true'],
    [{ brokers: 'a:1', retry: { backoff: 1 } }, 'retry.backoff', 'retry.backoff is not an option; known options: retries, initialRetryTimeMs, maxRetryTimeMs'],
    [{ brokers: 'a:1', pool: { max: 0 } }, 'pool.max', '[bus/kafka] pool.max must be an integer from 1 to 10000, got 0'],
    [{ brokers: 'a:1', topics: { replicationFactor: 3, minInsyncReplicas: 4 } }, 'topics.minInsyncReplicas', 'must not exceed topics.replicationFactor (3)'],
    [{ brokers: 'a:1', sasl: { mechanism: 'plain', username: 'u', password: 's3cret' }, sasll: 1 }, 'sasll', 'did you mean "sasl"?'],
    [{ brokers: 'a:1', pool: { min: 5, max: 2 } }, 'pool.min', 'pool.min must not exceed pool.max (2), got 5'],
    [{ brokers: 'a:1', pool: { acquireTimeoutMs: 1.5 } }, 'pool.acquireTimeoutMs', 'pool.acquireTimeoutMs must be an integer'],
    [{ brokers: 'a:1', producer: { acks: 2 } }, 'producer.acks', 'producer.acks must be -1, 0 or 1, got 2'],
    [{ brokers: 'a:1', producer: { acks: 1 } }, 'producer.acks', 'producer.acks must be -1 when producer.idempotent is true'],
    [{ brokers: 'a:1', producer: { compression: 'snappy' } }, 'producer.compression', 'producer.compression must be one of "none", "gzip", got "snappy"'],
    [{ brokers: 'a:1', producer: { idempotent: 'yes' } }, 'producer.idempotent', 'producer.idempotent must be true or false'],
    [{ brokers: 'a:1', topics: { partitions: 0 } }, 'topics.partitions', 'topics.partitions must be an integer from 1 to 100000, got 0'],
    [{ brokers: 'a:1', topics: { create: 'no' } }, 'topics.create', 'topics.create must be true or false'],
    [{ brokers: 'a:1', topics: { replicationFactor: 0 } }, 'topics.replicationFactor', 'topics.replicationFactor must be an integer'],
    [{ brokers: 'a:1', consumer: { sessionTimeoutMs: 100 } }, 'consumer.sessionTimeoutMs', 'consumer.sessionTimeoutMs must be an integer from 1000'],
    [{ brokers: 'a:1', consumer: { sessionTimeoutMs: 6000, heartbeatIntervalMs: 6000 } }, 'consumer.heartbeatIntervalMs', 'must be lower than consumer.sessionTimeoutMs (6000)'],
    [{ brokers: 'a:1', consumer: { partitionsConsumedConcurrently: 0 } }, 'consumer.partitionsConsumedConcurrently', 'consumer.partitionsConsumedConcurrently must be an integer from 1 to 1000'],
    [{ brokers: 'a:1', consumer: { maxBytes: 2048, maxBytesPerPartition: 4096 } }, 'consumer.maxBytesPerPartition', 'must not exceed consumer.maxBytes (2048)'],
    [{ brokers: 'a:1', consumer: { sessionTimeout: 6000 } }, 'consumer.sessionTimeout', 'consumer.sessionTimeout is not an option; did you mean "sessionTimeoutMs"?'],
  ])('%j → ConfigError at %s', (options, path, message) => {
    const error = configError(options);
    expect(error.path).toBe(path);
    expect(error.message).toContain(message);
    expect(error.message.startsWith('[bus/kafka] ')).toBe(true);
    expect(BusError.isInstance(error)).toBe(true);
    expect(error.code).toBe('CONFIG');
  });

  it('fills every default, splits a comma-separated broker list, declares its capabilities', () => {
    const t = kafka({ brokers: ' 127.0.0.1:9092, [::1]:9093 ' });
    expect(t.name).toBe('kafka');
    expect(t.specificationVersion).toBe('v1');
    expect(t.capabilities).toEqual({
      persistent: true,
      consumerGroups: true,
      ordering: 'key',
      nativeBatching: true,
      blockingReads: true,
      redeliversUnsettled: true,
      concurrentBatches: false,
      durableDeliveryCount: false,
      delays: true,
    });
    expect(t.capabilities).toBe(KAFKA_CAPABILITIES);
    expect(t.options).toEqual({
      ...KAFKA_DEFAULTS,
      brokers: ['127.0.0.1:9092', '[::1]:9093'],
      ssl: undefined,
      sasl: undefined,
      pool: {},
    });
    expect(KAFKA_DEFAULTS.producer).toEqual({ idempotent: true, acks: -1, compression: 'none', ackTimeoutMs: 30_000, maxRequestBytes: 900_000 });
    expect(KAFKA_DEFAULTS.topics).toEqual({ create: true, partitions: 3, replicationFactor: 1 });
    expect(KAFKA_DEFAULTS.consumer.partitionsConsumedConcurrently).toBe(1);
    expect(POOL_DEFAULTS.max).toBe(10);
  });

  it('is lazy: nothing connects before use, and close without use returns at once', async () => {
    const t = kafka({ brokers: ['127.0.0.1:1'] });
    const started = Date.now();
    await t.close();
    await t.close();
    expect(Date.now() - started).toBeLessThan(100);
    const [result] = await t.publish('any', [{ value: 'x', headers: {} }]);
    expect(result?.ok).toBe(false);
    if (result && !result.ok) expect(result.error.code).toBe('CLOSED');
  });

  it('a publish to an unreachable broker fails in bounded time with a typed ConnectionError per record', async () => {
    const port = await freePort();
    const t = kafka({ brokers: [`127.0.0.1:${port}`], connectionTimeoutMs: 500, retry: { retries: 1, initialRetryTimeMs: 50, maxRetryTimeMs: 100 } });
    const started = Date.now();
    const results = await t.publish('nowhere', [
      { value: 'a', headers: {} },
      { value: 'b', headers: {} },
    ]);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(results).toHaveLength(2);
    for (const r of results) {
      expect(r.ok).toBe(false);
      if (!r.ok) {
        expect(r.error.code).toBe('CONNECTION');
        // The broker is named; the reason is Node's.
        expect(r.error.message).toMatch(/^\[bus\/kafka\] could not connect the admin client to 127\.0\.0\.1:\d+: .*ECONNREFUSED/);
      }
    }
    await expect(t.subscribe({ group: 'g', topics: ['nowhere'], batchSize: 1, pollIntervalMs: 100, startFrom: 'earliest', consumerName: 'm' }, async () => {})).rejects.toMatchObject({ code: 'CONNECTION' });
    await expect(t.lag?.('g', ['nowhere'])).rejects.toBeTruthy();
    await t.close();
  });
});
