import { randomUUID } from 'node:crypto';
import { AuthError, ConfigError, ConnectionError, createBus, jsonCodec, noopMetrics, TimeoutError } from '@bus/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type KafkaTransport, type KafkaTransportOptions, kafka } from '../src/index.js';
import { capturingLogger, errorRecorder, makePki, silentServer, startSecuredBroker, stringify, type TestPki } from './helpers/security.js';

// One own broker for every case, on the loopback ports 17301-17309.
const PORT = { plain: 17301, controller: 17302, sasl: 17303, ssl: 17304, silent: 17305, closed: 17306 } as const;
const USER = 'bus-user';
const SECRET = 'kafka-s3cret-Pw';
const codec = jsonCodec();
const record = () => codec.encode({ id: randomUUID(), event: 'e', payload: { n: 1 }, publishedAt: Date.now(), headers: {} });
const logger = capturingLogger();
const seen: string[] = [];
const transports: KafkaTransport[] = [];
const make = (options: KafkaTransportOptions) => {
  const t = kafka({ connectionTimeoutMs: 2000, retry: { retries: 2, initialRetryTimeMs: 100, maxRetryTimeMs: 1000 }, logLevel: 'debug', ...options });
  t.attach?.({ logger, metrics: noopMetrics });
  transports.push(t);
  return t;
};
const { failure, caught } = errorRecorder(seen);
const topic = () => `sec-${randomUUID().slice(0, 8)}`;

let pki: TestPki;
let broker: { stop(): Promise<void> } | undefined;

beforeAll(async () => {
  pki = makePki();
  broker = await startSecuredBroker(PORT, pki, USER, SECRET);
}, 200_000);

afterAll(async () => {
  await Promise.allSettled(transports.map((t) => t.close()));
  await broker?.stop();
  pki?.dispose();
}, 120_000);

describe('unreachable and silent brokers', () => {
  it('a port that accepts TCP and never answers fails bus.start() and publish() within connectTimeoutMs, naming the broker', async () => {
    const silent = await silentServer(PORT.silent);
    try {
      const t = make({ brokers: [`127.0.0.1:${PORT.silent}`], connectTimeoutMs: 1000 });
      const bus = createBus({ transports: { kafka: t }, logger });
      bus.module({ name: 'm', consumers: { c: { topics: ['t'], events: ['e'] } }, handler: () => {} });
      const error = await caught(bus.start());
      expect(ConnectionError.isInstance(error)).toBe(true);
      expect(error.message).toContain(`127.0.0.1:${PORT.silent}`);
      expect(error.message).toContain('within 1000 ms');
      expect(error.message).toContain('ApiVersions');
      await bus.close();
      const publishError = failure(await make({ brokers: [`127.0.0.1:${PORT.silent}`], connectTimeoutMs: 1000 }).publish('t', [record()]));
      expect(ConnectionError.isInstance(publishError)).toBe(true);
      expect(publishError.code).toBe('CONNECTION');
    } finally {
      await silent.close();
    }
  }, 30_000);

  it('a closed port is a CONNECTION error, not CONFIG', async () => {
    const t = make({ brokers: [`127.0.0.1:${PORT.closed}`], connectTimeoutMs: 3000 });
    const error = failure(await t.publish('t', [record()]));
    expect(error.code).toBe('CONNECTION');
    expect(error.message).toContain(`127.0.0.1:${PORT.closed}`);
  }, 30_000);
});

describe('SASL/PLAIN', () => {
  it('the right credentials publish and consume', async () => {
    const t = make({ brokers: [`127.0.0.1:${PORT.sasl}`], sasl: { mechanism: 'plain', username: USER, password: SECRET } });
    const name = topic();
    const [result] = await t.publish(name, [record()]);
    expect(result?.ok).toBe(true);
    const got: string[] = [];
    const sub = await t.subscribe({ group: `g-${name}`, topics: [name], batchSize: 10, pollIntervalMs: 100, startFrom: 'earliest', consumerName: 'c' }, async (batch) => {
      for (const m of batch) {
        got.push(m.id);
        m.ack();
      }
    });
    const deadline = Date.now() + 20_000;
    while (got.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await sub.close();
    expect(got).toEqual([result?.ok ? result.id : '']);
  }, 60_000);

  it('a wrong password is an AuthError with the broker reason, for publish and for bus.start()', async () => {
    const options: KafkaTransportOptions = {
      brokers: [`127.0.0.1:${PORT.sasl}`],
      sasl: { mechanism: 'plain', username: USER, password: `wrong-${SECRET}` },
      // Generous deadlines: only failing on the refusal itself ends this test within its timeout.
      connectTimeoutMs: 60_000,
      publishTimeoutMs: 60_000,
    };
    const error = failure(await make(options).publish(topic(), [record()]));
    expect(AuthError.isInstance(error)).toBe(true);
    expect(error.code).toBe('AUTH');
    expect(error.retryable).toBe(false);
    expect(error.message).toMatch(/SASL PLAIN authentication failed/i);
    const bus = createBus({ transports: { kafka: make(options) }, logger });
    bus.module({ name: 'm', consumers: { c: { topics: [topic()], events: ['e'] } }, handler: () => {} });
    const startError = await caught(bus.start());
    expect(AuthError.isInstance(startError)).toBe(true);
    await bus.close();
  }, 30_000);
});

describe('SASL/SCRAM', () => {
  it.each(['scram-sha-256', 'scram-sha-512'] as const)('%s: the right credentials publish, a wrong password is an AuthError', async (mechanism) => {
    const brokers = [`127.0.0.1:${PORT.sasl}`];
    const [result] = await make({ brokers, sasl: { mechanism, username: USER, password: SECRET } }).publish(topic(), [record()]);
    expect(result?.ok).toBe(true);
    const error = failure(
      await make({ brokers, sasl: { mechanism, username: USER, password: `not-${SECRET}` }, connectTimeoutMs: 60_000, publishTimeoutMs: 60_000 }).publish(topic(), [record()]),
    );
    expect(AuthError.isInstance(error)).toBe(true);
    expect(error.message).toMatch(/SASL SCRAM SHA(256|512) authentication failed/i);
  }, 30_000);
});

describe('SSL listener (a throwaway CA)', () => {
  it('trusting the CA works', async () => {
    const t = make({ brokers: [`127.0.0.1:${PORT.ssl}`], ssl: { ca: [pki.ca] } });
    const [result] = await t.publish(topic(), [record()]);
    expect(result?.ok).toBe(true);
  }, 60_000);

  it('an untrusted certificate is a non-retryable ConnectionError naming the TLS reason', async () => {
    const t = make({ brokers: [`127.0.0.1:${PORT.ssl}`], ssl: true, connectTimeoutMs: 60_000, publishTimeoutMs: 60_000 });
    const error = failure(await t.publish(topic(), [record()]));
    expect(ConnectionError.isInstance(error)).toBe(true);
    expect(error.retryable).toBe(false);
    expect(error.message).toContain('TLS handshake failed');
    expect(error.message).toMatch(/certificate/i);
  }, 30_000);
});

describe('redaction', () => {
  it('config errors never print SASL secrets or broker userinfo', () => {
    for (const options of [
      { brokers: [`${USER}:${SECRET}@127.0.0.1:9092`] },
      { brokers: ['127.0.0.1:9092'], sasl: `${USER}:${SECRET}` },
      { brokers: ['127.0.0.1:9092'], sasl: { mechanism: 'nope', username: USER, password: SECRET } },
    ]) {
      let error: unknown;
      try {
        kafka(options as never);
      } catch (e) {
        error = e;
      }
      expect(ConfigError.isInstance(error)).toBe(true);
      seen.push(stringify(error));
    }
    expect(seen.join('\n')).not.toContain(SECRET);
  });
});

describe('publish during an outage', () => {
  it('fails with a retryable TimeoutError at publishTimeoutMs', async () => {
    const t = make({ brokers: [`127.0.0.1:${PORT.plain}`], publishTimeoutMs: 1500, retry: { retries: 10, initialRetryTimeMs: 300, maxRetryTimeMs: 5000 } });
    const name = topic();
    const [first] = await t.publish(name, [record()]);
    expect(first?.ok).toBe(true);
    await broker?.stop();
    const error = failure(await t.publish(name, [record()]));
    expect(TimeoutError.isInstance(error)).toBe(true);
    expect(error.retryable).toBe(true);
    expect(error.message).toContain('within 1500 ms (publishTimeoutMs)');
  }, 90_000);

  it('nothing secret in any error, cause or log line (kafkajs debug lines included)', () => {
    expect(logger.lines.length).toBeGreaterThan(0);
    const all = `${seen.join('\n')}\n${logger.text()}`;
    expect(all).not.toContain(SECRET);
    expect(all).not.toContain('PRIVATE KEY');
  });
});
