import { randomUUID } from 'node:crypto';
import { AuthError, ConfigError, ConnectionError, createBus, jsonCodec, noopMetrics, } from '@bus/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { capturingLogger, errorRecorder, makePki, silentServer, startSecuredBroker, stringify, type TestPki } from '../../kafka/test/helpers/security.js';
import { type KafkaPlatformaticOptions, type KafkaPlatformaticTransport, kafkaPlatformatic } from '../src/index.js';
import { type GroupProtocol, PROTOCOLS, waitFor } from './helpers/kafka.js';

// One own broker for every case, on the loopback ports 17401-17409.
const PORT = { plain: 17401, controller: 17402, sasl: 17403, ssl: 17404, silent: 17405, closed: 17406 } as const;
const USER = 'bus-user';
const SECRET = 'kafka-s3cret-Pw';
const codec = jsonCodec();
const record = () => codec.encode({ id: randomUUID(), event: 'e', payload: { n: 1 }, publishedAt: Date.now(), headers: {} });
const logger = capturingLogger();
const seen: string[] = [];
const transports: KafkaPlatformaticTransport[] = [];
const make = (options: Partial<KafkaPlatformaticOptions> & Pick<KafkaPlatformaticOptions, 'brokers'>, groupProtocol: GroupProtocol = 'classic') => {
  const t = kafkaPlatformatic({
    connectionTimeoutMs: 2000,
    requestTimeoutMs: 10_000,
    retry: { retries: 2, retryDelayMs: 100 },
    ...options,
    consumer: { groupProtocol, sessionTimeoutMs: 6000, heartbeatIntervalMs: 500, rebalanceTimeoutMs: 15_000, closeTimeoutMs: 10_000, ...options.consumer },
  });
  t.attach?.({ logger, metrics: noopMetrics });
  transports.push(t);
  return t;
};
const { failure, caught } = errorRecorder(seen);
const topic = () => `sec-plt-${randomUUID().slice(0, 8)}`;
const timed = async <T>(work: Promise<T>): Promise<{ value: T; ms: number }> => {
  const started = Date.now();
  const value = await work;
  return { value, ms: Date.now() - started };
};

/** Publishes one message and consumes it in a new group: the whole path over one listener. */
async function roundTrip(t: KafkaPlatformaticTransport): Promise<void> {
  const name = topic();
  const [result] = await t.publish(name, [record()]);
  expect(result?.ok, JSON.stringify(result)).toBe(true);
  const got: string[] = [];
  const sub = await t.subscribe({ group: `g-${name}`, topics: [name], batchSize: 10, pollIntervalMs: 100, startFrom: 'earliest', consumerName: 'c' }, async (batch) => {
    for (const m of batch) {
      got.push(m.id);
      m.ack();
    }
  });
  try {
    await waitFor('the message', () => got.length > 0, 30_000);
  } finally {
    await sub.close();
  }
  expect(got).toEqual([result?.ok ? result.id : '']);
}

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

describe('kafka-platformatic: unreachable and silent brokers', () => {
  it('a port that accepts TCP and never answers fails bus.start() and publish() with a ConnectionError naming the broker, within the request deadline × attempts', async () => {
    const silent = await silentServer(PORT.silent);
    try {
      // 2 attempts × 1 s request deadline, for the admin's metadata and its ApiVersions.
      const options = { brokers: [`127.0.0.1:${PORT.silent}`], requestTimeoutMs: 1000, retry: { retries: 1, retryDelayMs: 100 } };
      const bus = createBus({ transports: { kafka: make(options) }, logger });
      bus.module({ name: 'm', consumers: { c: { topics: ['t'], events: ['e'] } }, handler: () => {} });
      const { value: error, ms } = await timed(caught(bus.start()));
      expect(ConnectionError.isInstance(error)).toBe(true);
      expect(error.message).toContain(`127.0.0.1:${PORT.silent}`);
      expect(error.message).toMatch(/timed out/i);
      expect(ms).toBeLessThan(15_000);
      await bus.close();
      const publishError = failure(await make(options).publish('t', [record()]));
      expect(ConnectionError.isInstance(publishError)).toBe(true);
      expect(publishError.code).toBe('CONNECTION');
      expect(publishError.retryable).toBe(true);
      expect(publishError.message).toContain(`127.0.0.1:${PORT.silent}`);
    } finally {
      await silent.close();
    }
  }, 60_000);

  it('a closed port is a CONNECTION error, not CONFIG', async () => {
    const error = failure(await make({ brokers: [`127.0.0.1:${PORT.closed}`] }).publish('t', [record()]));
    expect(error.code).toBe('CONNECTION');
    expect(error.message).toContain(`127.0.0.1:${PORT.closed}`);
  }, 30_000);
});

describe('kafka-platformatic: SASL/PLAIN', () => {
  it.each(PROTOCOLS)('groupProtocol %s: the right credentials publish and consume', async (protocol) => {
    await roundTrip(make({ brokers: [`127.0.0.1:${PORT.sasl}`], sasl: { mechanism: 'PLAIN', username: USER, password: SECRET } }, protocol));
  }, 60_000);

  it('a wrong password is a non-retryable AuthError with the broker reason, for publish and for bus.start(), without retrying for long', async () => {
    const options = { brokers: [`127.0.0.1:${PORT.sasl}`], sasl: { mechanism: 'PLAIN' as const, username: USER, password: `wrong-${SECRET}` } };
    const { value: error, ms } = await timed(make(options).publish(topic(), [record()]).then(failure));
    expect(AuthError.isInstance(error)).toBe(true);
    expect(error.code).toBe('AUTH');
    expect(error.retryable).toBe(false);
    expect(error.message).toMatch(/SASL authentication failed/i);
    // The broker's own words (SaslAuthenticate's error message), not only the client's.
    expect(error.message).toContain('the broker says: Authentication failed: Invalid username or password');
    expect(error.message).toContain('check sasl');
    expect(ms).toBeLessThan(10_000);
    const bus = createBus({ transports: { kafka: make(options) }, logger });
    bus.module({ name: 'm', consumers: { c: { topics: [topic()], events: ['e'] } }, handler: () => {} });
    const startError = await caught(bus.start());
    expect(AuthError.isInstance(startError)).toBe(true);
    await bus.close();
  }, 30_000);
});

describe('kafka-platformatic: SASL/SCRAM', () => {
  it.each(['SCRAM-SHA-256', 'SCRAM-SHA-512'] as const)('%s: the right credentials publish, a wrong password is an AuthError with the broker reason', async (mechanism) => {
    const brokers = [`127.0.0.1:${PORT.sasl}`];
    const [result] = await make({ brokers, sasl: { mechanism, username: USER, password: SECRET } }).publish(topic(), [record()]);
    expect(result?.ok).toBe(true);
    const error = failure(await make({ brokers, sasl: { mechanism, username: USER, password: `not-${SECRET}` } }).publish(topic(), [record()]));
    expect(AuthError.isInstance(error)).toBe(true);
    expect(error.retryable).toBe(false);
    expect(error.message).toContain(`the broker says: Authentication failed during authentication due to invalid credentials with SASL mechanism ${mechanism}`);
  }, 30_000);

  it('groupProtocol consumer: SCRAM-SHA-512 publishes and consumes', async () => {
    await roundTrip(make({ brokers: [`127.0.0.1:${PORT.sasl}`], sasl: { mechanism: 'SCRAM-SHA-512', username: USER, password: SECRET } }, 'consumer'));
  }, 60_000);
});

describe('kafka-platformatic: SSL listener (a throwaway CA)', () => {
  it.each(PROTOCOLS)('groupProtocol %s: trusting the CA publishes and consumes', async (protocol) => {
    await roundTrip(make({ brokers: [`127.0.0.1:${PORT.ssl}`], ssl: { ca: [pki.ca] } }, protocol));
  }, 60_000);

  it('an untrusted certificate is a non-retryable ConnectionError naming the TLS reason, for publish and for bus.start()', async () => {
    const options = { brokers: [`127.0.0.1:${PORT.ssl}`], ssl: true };
    const error = failure(await make(options).publish(topic(), [record()]));
    expect(ConnectionError.isInstance(error)).toBe(true);
    expect(error.retryable).toBe(false);
    expect(error.message).toContain('TLS handshake failed');
    expect(error.message).toMatch(/certificate/i);
    expect(error.message).toContain('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    const bus = createBus({ transports: { kafka: make(options) }, logger });
    bus.module({ name: 'm', consumers: { c: { topics: [topic()], events: ['e'] } }, handler: () => {} });
    const startError = await caught(bus.start());
    expect(ConnectionError.isInstance(startError)).toBe(true);
    expect(startError.retryable).toBe(false);
    await bus.close();
  }, 30_000);
});

describe('kafka-platformatic: redaction', () => {
  it('config errors never print SASL secrets or broker userinfo', () => {
    for (const options of [
      { brokers: [`${USER}:${SECRET}@127.0.0.1:9092`] },
      { brokers: `${USER}:${SECRET}@127.0.0.1:9092` },
      { brokers: ['127.0.0.1:9092'], sasl: `${USER}:${SECRET}` },
      { brokers: ['127.0.0.1:9092'], sasl: { mechanism: 'nope', username: USER, password: SECRET } },
      { brokers: ['127.0.0.1:9092'], sasl: { mechanism: 'PLAIN', username: USER, password: SECRET }, sals: 1 },
    ]) {
      let error: unknown;
      try {
        kafkaPlatformatic(options as never);
      } catch (e) {
        error = e;
      }
      expect(ConfigError.isInstance(error), JSON.stringify(options.brokers)).toBe(true);
      seen.push(stringify(error));
    }
    expect(seen.join('\n')).not.toContain(SECRET);
  });
});

describe('kafka-platformatic: publish during an outage', () => {
  it('fails with a retryable ConnectionError once the retries are spent', async () => {
    const t = make({ brokers: [`127.0.0.1:${PORT.plain}`], requestTimeoutMs: 3000, retry: { retries: 3, retryDelayMs: 300 } });
    const name = topic();
    const [first] = await t.publish(name, [record()]);
    expect(first?.ok).toBe(true);
    await broker?.stop();
    const { value: error, ms } = await timed(t.publish(name, [record()]).then(failure));
    expect(ConnectionError.isInstance(error)).toBe(true);
    expect(error.retryable).toBe(true);
    expect(error.message).toContain(`127.0.0.1:${PORT.plain}`);
    // 4 attempts, each bounded by the connect (2 s) or request (3 s) deadline, 300 ms apart.
    expect(ms).toBeLessThan(20_000);
  }, 90_000);

  it('nothing secret in any error, cause, aggregated error or log line', () => {
    expect(logger.lines.length).toBeGreaterThan(0);
    const all = `${seen.join('\n')}\n${logger.text()}`;
    expect(all).not.toContain(SECRET);
    expect(all).not.toContain('PRIVATE KEY');
  });
});
