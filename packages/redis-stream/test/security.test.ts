import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AuthError, BusError, ConfigError, ConnectionError, createBus, jsonCodec, noopMetrics, type PublishResult } from '@bus/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RedisStreamTransport, redisStream } from '../src/index.js';
import { capturingLogger, makePki, recordingObservers, silentServer, startRedisWith, stringify, type TestPki } from './helpers/security.js';

// Own servers on the loopback ports 17201-17209 (requirepass, ACL, TLS, a silent port).
const PORT = { silent: 17201, password: 17202, acl: 17203, tls: 17204, stopped: 17205 } as const;
const SECRET = 's3cret-Pa55';
const ACL_SECRET = 'acl-Pa55-x9';
const codec = jsonCodec();
const record = () => codec.encode({ id: randomUUID(), event: 'e', payload: { n: 1 }, publishedAt: Date.now(), headers: {} });
const logger = capturingLogger();
/** Every error seen, as text (with causes), grepped for secrets at the end. */
const seen: string[] = [];
const transports: RedisStreamTransport[] = [];
const make = (options: Parameters<typeof redisStream>[0]) => {
  const t = redisStream({ keyPrefix: `bus-sec:${randomUUID().slice(0, 6)}:`, ...options });
  t.attach?.({ logger, metrics: noopMetrics });
  transports.push(t);
  return t;
};
const failure = (results: PublishResult[]): BusError => {
  const r = results[0];
  if (!r || r.ok) throw new Error('publish was expected to fail');
  seen.push(stringify(r.error));
  return r.error;
};
const caught = async (promise: Promise<unknown>): Promise<BusError> => {
  const error = await promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
  seen.push(stringify(error));
  if (!BusError.isInstance(error)) throw error;
  return error;
};

const servers: { stop(): Promise<void> }[] = [];
let pki: TestPki;

beforeAll(async () => {
  pki = makePki();
  const aclFile = join(pki.dir, 'users.acl');
  writeFileSync(aclFile, `user default off\nuser writer on >${ACL_SECRET} ~* &* +@all\nuser readonly on >${ACL_SECRET} ~* &* +@all -xadd\nuser writeonly on >${ACL_SECRET} ~* &* +@all -@read\n`);
  servers.push(
    await startRedisWith(PORT.password, ['--port', String(PORT.password), '--requirepass', SECRET]),
    await startRedisWith(PORT.acl, ['--port', String(PORT.acl), '--aclfile', aclFile]),
    await startRedisWith(PORT.tls, [
      '--port',
      '0',
      '--tls-port',
      String(PORT.tls),
      '--tls-cert-file',
      pki.certFile,
      '--tls-key-file',
      pki.keyFile,
      '--tls-ca-cert-file',
      pki.caFile,
      '--tls-auth-clients',
      'no',
      '--requirepass',
      SECRET,
    ]),
  );
}, 60_000);

afterAll(async () => {
  await Promise.all(transports.map((t) => t.close()));
  await Promise.all(servers.map((s) => s.stop()));
  pki?.dispose();
});

describe('a port that accepts TCP and never answers', () => {
  it('fails bus.start() within connectTimeoutMs with a ConnectionError naming host:port and the stage', async () => {
    const silent = await silentServer(PORT.silent);
    try {
      const transport = make({ url: `redis://:${SECRET}@127.0.0.1:${PORT.silent}`, connectTimeoutMs: 800, commandTimeoutMs: 800 });
      const bus = createBus({ transports: { redis: transport }, logger });
      bus.module({ name: 'm', consumers: { c: { topics: ['t'], events: ['e'] } }, handler: () => {} });
      const error = await caught(bus.start());
      expect(ConnectionError.isInstance(error)).toBe(true);
      expect(error.message).toContain(`127.0.0.1:${PORT.silent}`);
      expect(error.message).toContain('within 800 ms');
      expect(error.message).toContain('never answered the handshake');
      await bus.close();
    } finally {
      await silent.close();
    }
  });

  it('fails publish with that ConnectionError, not "pool exhausted"', async () => {
    const silent = await silentServer(PORT.silent);
    try {
      const transport = make({ url: `redis://:${SECRET}@127.0.0.1:${PORT.silent}`, connectTimeoutMs: 500, pool: { acquireTimeoutMs: 1500 } });
      const error = failure(await transport.publish('t', [record()]));
      expect(ConnectionError.isInstance(error)).toBe(true);
      expect(error.message).toContain(`127.0.0.1:${PORT.silent}`);
      expect(error.message).not.toContain('exhausted');
    } finally {
      await silent.close();
    }
  });
});

describe('a Redis that stops answering after the connection is up (SIGSTOP)', () => {
  it('publish fails within commandTimeoutMs with a ConnectionError naming host:port; the dead connection is replaced, so publishing works again once Redis answers', async () => {
    const server = await startRedisWith(PORT.stopped, ['--port', String(PORT.stopped)]);
    const transport = make({ url: `redis://127.0.0.1:${PORT.stopped}`, commandTimeoutMs: 600, pool: { max: 1 } });
    try {
      expect((await transport.publish('t', [record()]))[0]?.ok).toBe(true); // the pool holds a live connection
      process.kill(server.pid, 'SIGSTOP');
      const startedAt = Date.now();
      const error = failure(await transport.publish('t', [record()]));
      // A deadline, not a speed: without one the publish would hang until the server came back.
      expect(Date.now() - startedAt).toBeLessThan(5_000);
      expect(ConnectionError.isInstance(error)).toBe(true);
      expect(error.retryable).toBe(true);
      expect(error.message).toContain(`a command to Redis at 127.0.0.1:${PORT.stopped} got no reply within 600 ms`);
      process.kill(server.pid, 'SIGCONT');
      const again = await transport.publish('t', [record(), record()]);
      expect(again.map((r) => r.ok)).toEqual([true, true]);
    } finally {
      await server.stop();
    }
  });
});

describe('a port that accepts TCP and never answers, with the pool deadline shorter than the connect deadline', () => {
  it('publish fails at the pool deadline with a ConnectionError naming host:port, not "pool exhausted"', async () => {
    const silent = await silentServer(PORT.silent);
    try {
      const transport = make({ url: `redis://:${SECRET}@127.0.0.1:${PORT.silent}`, connectTimeoutMs: 5000, pool: { acquireTimeoutMs: 800 } });
      const error = failure(await transport.publish('t', [record()]));
      expect(ConnectionError.isInstance(error)).toBe(true);
      expect(error.message).toContain(`127.0.0.1:${PORT.silent}`);
      expect(error.message).toContain('still in progress');
      expect(error.message).not.toContain('exhausted');
    } finally {
      await silent.close();
    }
  });
});

describe('requirepass', () => {
  it('the right password works', async () => {
    const t = make({ url: `redis://:${SECRET}@127.0.0.1:${PORT.password}` });
    const [result] = await t.publish('t', [record()]);
    expect(result?.ok).toBe(true);
  });

  it('a wrong password fails publish and subscribe at once with an AuthError carrying WRONGPASS', async () => {
    // A pool that would wait a minute: only failing fast lets this test finish in time.
    const t = make({ url: `redis://:wrong-${SECRET}@127.0.0.1:${PORT.password}`, pool: { acquireTimeoutMs: 60_000 } });
    const error = failure(await t.publish('t', [record()]));
    expect(AuthError.isInstance(error)).toBe(true);
    expect(error.code).toBe('AUTH');
    expect(error.retryable).toBe(false);
    expect(error.message).toContain('WRONGPASS');
    expect(error.message).toContain(`127.0.0.1:${PORT.password}`);
    expect((error.cause as Error).message).toContain('WRONGPASS');
    const subscribeError = await caught(
      t.subscribe({ group: 'g', topics: ['t'], batchSize: 1, pollIntervalMs: 100, startFrom: 'earliest', consumerName: 'c' }, async () => {}),
    );
    expect(AuthError.isInstance(subscribeError)).toBe(true);
  }, 20_000);

  it('no password fails with an AuthError carrying NOAUTH', async () => {
    const t = make({ url: `redis://127.0.0.1:${PORT.password}`, pool: { acquireTimeoutMs: 60_000 } });
    const error = failure(await t.publish('t', [record()]));
    expect(AuthError.isInstance(error)).toBe(true);
    expect(error.message).toContain('NOAUTH');
  }, 20_000);
});

describe('ACL users', () => {
  it('an ACL user with the right password publishes and consumes', async () => {
    const t = make({ url: `redis://writer:${ACL_SECRET}@127.0.0.1:${PORT.acl}` });
    const [result] = await t.publish('t', [record()]);
    expect(result?.ok).toBe(true);
    const got: string[] = [];
    const sub = await t.subscribe({ group: 'g', topics: ['t'], batchSize: 10, pollIntervalMs: 100, startFrom: 'earliest', consumerName: 'c' }, async (batch) => {
      for (const m of batch) {
        got.push(m.id);
        m.ack();
      }
    });
    const deadline = Date.now() + 5000;
    while (got.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await sub.close();
    expect(got).toEqual([result?.ok ? result.id : '']);
  });

  it('an ACL denial (NOPERM) is an AuthError, not a PublishError', async () => {
    const t = make({ url: `redis://readonly:${ACL_SECRET}@127.0.0.1:${PORT.acl}` });
    const error = failure(await t.publish('t', [record()]));
    expect(AuthError.isInstance(error)).toBe(true);
    expect(error.message).toContain('NOPERM');
  });

  it('lag() for a user who may not read the stream fails with an AuthError (NOPERM), it does not report 0', async () => {
    const writer = make({ url: `redis://writer:${ACL_SECRET}@127.0.0.1:${PORT.acl}` });
    const [result] = await writer.publish('lag-acl', [record()]);
    expect(result?.ok).toBe(true);
    const t = make({ url: `redis://writeonly:${ACL_SECRET}@127.0.0.1:${PORT.acl}` });
    const error = await t.lag?.('g', ['lag-acl']).then(
      (info) => assert.fail(`lag() resolved ${JSON.stringify(info)}`),
      (e: unknown) => e as Error,
    );
    expect(AuthError.isInstance(error)).toBe(true);
    expect(error?.message).toContain('NOPERM');
    expect(error?.message).not.toContain(ACL_SECRET);
  });

  it('a wrong ACL password is an AuthError', async () => {
    const t = make({ url: `redis://writer:not-${ACL_SECRET}@127.0.0.1:${PORT.acl}`, pool: { acquireTimeoutMs: 60_000 } });
    const error = failure(await t.publish('t', [record()]));
    expect(AuthError.isInstance(error)).toBe(true);
    expect(error.message).toContain('WRONGPASS');
  }, 20_000);
});

describe('TLS (rediss://, a throwaway CA)', () => {
  it('trusting the CA works', async () => {
    const t = make({ url: `rediss://:${SECRET}@127.0.0.1:${PORT.tls}`, connection: { tls: { ca: pki.ca } } });
    const [result] = await t.publish('t', [record()]);
    expect(result?.ok).toBe(true);
  });

  it('an untrusted certificate fails at once with a ConnectionError naming the TLS reason', async () => {
    const t = make({ url: `rediss://:${SECRET}@127.0.0.1:${PORT.tls}`, pool: { acquireTimeoutMs: 60_000 } });
    const error = failure(await t.publish('t', [record()]));
    expect(ConnectionError.isInstance(error)).toBe(true);
    expect(error.retryable).toBe(false);
    expect(error.message).toContain('TLS handshake');
    expect(error.message).toMatch(/certificate/i);
    const bus = createBus({ transports: { redis: t }, logger });
    bus.module({ name: 'm', consumers: { c: { topics: ['t'], events: ['e'] } }, handler: () => {} });
    const startError = await caught(bus.start());
    expect(startError.message).toContain('TLS handshake');
    await bus.close();
  }, 20_000);
});

describe('redaction', () => {
  it('config errors never print the password of a url or of a connection given as a string', () => {
    const attempts: unknown[] = [
      { url: ` redis://:${SECRET}@127.0.0.1:6379` },
      { url: `http://user:${SECRET}@127.0.0.1:6379` },
      { connection: `redis://:${SECRET}@127.0.0.1:6379` },
      { connection: { password: SECRET, keyPrefix: 'x' } },
      { url: `redis://:${SECRET}@h:1`, cluster: { nodes: [] } },
    ];
    for (const options of attempts) {
      let error: unknown;
      try {
        redisStream(options as never);
      } catch (e) {
        error = e;
      }
      expect(ConfigError.isInstance(error)).toBe(true);
      seen.push(stringify(error));
      expect(stringify(error)).not.toContain(SECRET);
    }
  });

  it('metrics labels and span attributes of a bus on a password-protected Redis hold no secret', async () => {
    const observers = recordingObservers();
    type Events = { 'job.created': { n: number } };
    const topic = `jobs-${randomUUID().slice(0, 6)}`;
    const good = createBus<Events>({ transports: { redis: make({ url: `redis://:${SECRET}@127.0.0.1:${PORT.password}` }) }, logger, metrics: observers.metrics, tracing: observers.tracing });
    const handled: number[] = [];
    good.module({ name: 'm', pollIntervalMs: 100, consumers: { c: { topics: [topic], events: ['job.created'] } }, handler: (ctx) => void handled.push(ctx.payload.n) });
    await good.start();
    await good.publish(topic, 'job.created', { n: 1 });
    const deadline = Date.now() + 5000;
    while (handled.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await good.close();
    expect(handled).toEqual([1]);
    const bad = createBus<Events>({ transports: { redis: make({ url: `redis://:wrong-${SECRET}@127.0.0.1:${PORT.password}` }) }, logger, metrics: observers.metrics, tracing: observers.tracing });
    const failed = await bad.publish(topic, 'job.created', { n: 2 }).catch((e: unknown) => e);
    seen.push(stringify(failed));
    await bad.close();
    expect(observers.records.some((r) => r.startsWith('metrics.published'))).toBe(true);
    expect(observers.records.some((r) => r.startsWith('span process'))).toBe(true);
    seen.push(...observers.records);
  });

  it('no error, cause, log line (debug level included), metric label or span attribute of this file holds a secret', () => {
    expect(seen.length).toBeGreaterThan(8);
    expect(logger.lines.length).toBeGreaterThan(0);
    const all = `${seen.join('\n')}\n${logger.text()}`;
    expect(all).not.toContain(SECRET);
    expect(all).not.toContain(ACL_SECRET);
    expect(all).not.toContain('PRIVATE KEY');
  });
});
