import { ConfigError } from '@bus/core';
import { describe, expect, it } from 'vitest';
import { kafkaPlatformatic } from '../src/index.js';

const make = (options: unknown) => () => kafkaPlatformatic(options as Parameters<typeof kafkaPlatformatic>[0]);

describe('kafkaPlatformatic() options (closed, checked at construction)', () => {
  it('fills every default', () => {
    const t = kafkaPlatformatic({ brokers: '127.0.0.1:9092, 127.0.0.1:9093' });
    expect(t.options.brokers).toEqual(['127.0.0.1:9092', '127.0.0.1:9093']);
    expect(t.options.consumer).toMatchObject({ groupProtocol: 'classic', sessionTimeoutMs: 30_000, nackDelayMs: 200, prefetch: 1024 });
    expect(t.options.producer).toEqual({ idempotent: true, acks: -1, compression: 'none', maxRequestBytes: 900_000 });
    expect(t.options.topics).toEqual({ create: true, partitions: 3, replicationFactor: 1 });
  });

  it('a misspelt key fails with its path and "did you mean"', () => {
    expect(make({ brokers: ['h:1'], consumer: { groupProtocoll: 'consumer' } })).toThrow(/consumer\.groupProtocoll.*did you mean "groupProtocol"/);
    expect(make({ brokers: ['h:1'], consumer: { groupProtocoll: 'consumer' } })).toThrow(ConfigError);
  });

  it('bad values name their path', () => {
    expect(make({ brokers: ['nohost'] })).toThrow(/brokers\[0\] must be host:port/);
    expect(make({ brokers: [] })).toThrow(/brokers/);
    expect(make({ brokers: ['h:1'], consumer: { groupProtocol: 'cooperative' } })).toThrow(/consumer\.groupProtocol must be one of "classic", "consumer"/);
    expect(make({ brokers: ['h:1'], producer: { acks: 1 } })).toThrow(/producer\.acks must be -1 when producer\.idempotent/);
    expect(make({ brokers: ['h:1'], consumer: { heartbeatIntervalMs: 40_000 } })).toThrow(/consumer\.heartbeatIntervalMs/);
    expect(make({ brokers: ['h:1'], sasl: { mechanism: 'plain', username: 'u', password: 'secret' } })).toThrow(/sasl\.mechanism/);
  });

  it('a refused SASL option never echoes the password', () => {
    try {
      make({ brokers: ['h:1'], sasl: { mechanism: 'nope', username: 'u', password: 'hunter2' } })();
      expect.fail('should throw');
    } catch (error) {
      expect(String((error as Error).message)).not.toContain('hunter2');
    }
  });
});
