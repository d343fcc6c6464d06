import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { type Bus, createBus, DLQ_HEADER, type IncomingMessage, jsonCodec, noopMetrics, silentLogger } from '@bus/core';
import { delayTests } from '@bus/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { delayedKey, redisStream } from '../src/index.js';
import { deleteKeys, ensureCluster, nodeOf, type RedisServer, SHARED_REDIS_URL, startRedisServer, stopCluster } from './helpers/servers.js';

const require = createRequire(import.meta.url);
const TSX = pathToFileURL(require.resolve('tsx')).href;
const FIXTURE = fileURLToPath(new URL('./fixtures/retrying.ts', import.meta.url));
const TSCONFIG = fileURLToPath(new URL('./fixtures/tsconfig.json', import.meta.url));
const prefix = `bus-test:${randomUUID().slice(0, 8)}:`;
const codec = jsonCodec();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, predicate: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(25);
  }
}

afterAll(async () => {
  await deleteKeys([nodeOf(SHARED_REDIS_URL)], `${prefix}*`);
});

describe('redisStream delays (conformance)', () => {
  delayTests({ describe, it }, { createTransport: () => redisStream({ url: SHARED_REDIS_URL, keyPrefix: prefix }), pollIntervalMs: 100 });
});

describe('redisStream delays on a Redis Cluster', () => {
  let cluster: Awaited<ReturnType<typeof ensureCluster>> | undefined;
  const clusterPrefix = `bus-test:${randomUUID().slice(0, 8)}:`;
  beforeAll(async () => {
    cluster = await ensureCluster();
  }, 90_000);
  afterAll(async () => {
    if (cluster?.startedHere) await stopCluster();
    else if (cluster) await deleteKeys(cluster.nodes, `${clusterPrefix}*`);
  }, 90_000);
  it('the sorted set shares its stream slot (plain and hash-tagged keys), so the move script runs on one node', async () => {
    const t = redisStream({ cluster: { nodes: cluster?.nodes ?? [] }, keyPrefix: clusterPrefix });
    const got: number[] = [];
    try {
      const topics = ['plain-topic', '{tag}tagged'];
      for (const topic of topics) expect(delayedKey(t.streamKey(topic))).toMatch(/bus-delayed$/);
      const subs = await Promise.all(
        topics.map((topic) =>
          t.subscribe({ group: 'g', topics: [topic], batchSize: 10, pollIntervalMs: 100, startFrom: 'earliest', consumerName: `m-${topic}` }, async (batch) => {
            for (const m of batch) {
              got.push((codec.decode(m).payload as { n: number }).n);
              m.ack();
            }
          }),
        ),
      );
      const at = Date.now() + 300;
      for (const [i, topic] of topics.entries()) {
        const r = codec.encode({ id: randomUUID(), event: 'e', payload: { n: i }, publishedAt: Date.now(), headers: {} });
        const [result] = (await t.publishDelayed?.(topic, [{ ...r, deliverAt: at }])) ?? [];
        expect(result?.ok).toBe(true);
      }
      await until('both delayed records', () => got.length >= 2);
      await Promise.all(subs.map((s) => s.close()));
      expect(got.sort()).toEqual([0, 1]);
    } finally {
      await t.close();
    }
  }, 30_000);
});

describe('redisStream delays across processes and restarts', () => {
  it('several processes move due records concurrently, each record exactly once into the stream', async () => {
    const topic = `once-${randomUUID().slice(0, 8)}`;
    const movers = Array.from({ length: 4 }, () => redisStream({ url: SHARED_REDIS_URL, keyPrefix: prefix, delayPollMs: 5 }));
    const seen: string[] = [];
    const waiting: number[] = [];
    movers[0]?.attach?.({ logger: silentLogger, metrics: { ...noopMetrics, delayedWaiting: (labels, n) => labels.topic === topic && waiting.push(n) } });
    try {
      const subs = await Promise.all(
        movers.map((t, i) =>
          t.subscribe({ group: 'shared', topics: [topic], batchSize: 100, pollIntervalMs: 100, startFrom: 'earliest', consumerName: `m${i}` }, async (batch) => {
            for (const m of batch) {
              seen.push(m.headers.ce_id as string);
              m.ack();
            }
          }),
        ),
      );
      const N = 600;
      const now = Date.now();
      const records = Array.from({ length: N }, (_, n) => ({
        ...codec.encode({ id: `d-${n}`, event: 'e', payload: { n }, publishedAt: now, headers: {} }),
        deliverAt: now + 200 + (n % 20) * 10,
      }));
      const results = (await movers[0]?.publishDelayed?.(topic, records)) ?? [];
      expect(results.every((r) => r.ok)).toBe(true);
      await until(`${N} records`, () => seen.length >= N);
      await sleep(300);
      await Promise.all(subs.map((s) => s.close()));
      expect(seen.length).toBe(N);
      expect(new Set(seen).size).toBe(N);
      const length = await movers[0]?.withClient((c) => c.xlen(movers[0]?.streamKey(topic) as string));
      expect(length, 'one XADD per delayed record').toBe(N);
      const left = await movers[0]?.withClient((c) => c.zcard(delayedKey(movers[0]?.streamKey(topic) as string)));
      expect(left).toBe(0);
      expect(Math.max(...waiting), 'the mover reports the delayed messages waiting').toBeGreaterThan(0);
      expect(waiting[waiting.length - 1]).toBe(0);
    } finally {
      await Promise.all(movers.map((t) => t.close()));
    }
  }, 40_000);

  describe('on a Redis of its own', () => {
    let server: RedisServer | undefined;
    beforeAll(async () => {
      server = await startRedisServer(process.env.BUS_TEST_REDIS_PORT ? Number(process.env.BUS_TEST_REDIS_PORT) : undefined);
    });
    afterAll(async () => {
      await server?.dispose();
    });

    it('a delayed message survives the exit of every process and a Redis crash, and is never delivered early', async () => {
      const srv = server as RedisServer;
      type Events = { 'reminder.due': { n: number } };
      const got: { n: number; at: number }[] = [];
      const moduleDef = (bus: Bus<Events>) =>
        bus.module({
          name: 'reminders',
          consumers: { c: { topics: ['reminders'], events: ['reminder.due'] } },
          pollIntervalMs: 100,
          lagIntervalMs: 0,
          handler: (ctx) => {
            got.push({ n: ctx.payload.n, at: Date.now() });
          },
        });
      const first = createBus<Events>({ transports: { redis: redisStream({ url: srv.url }) } });
      moduleDef(first);
      await first.start();
      const publishedAt = Date.now();
      const dueSoon = publishedAt + 1500;
      const dueLater = publishedAt + 4000;
      await first.publish('reminders', 'reminder.due', { n: 1 }, { deliverAt: new Date(dueSoon) });
      await first.publish('reminders', 'reminder.due', { n: 2 }, { deliverAt: dueLater });
      await first.close();
      // Every process is gone; then the broker crashes (AOF with appendfsync always keeps the sorted set).
      await srv.restart({ signal: 'SIGKILL', downMs: 300 });
      await sleep(Math.max(0, dueSoon + 200 - Date.now()));
      expect(got, 'nothing runs while no process is up').toEqual([]);
      const second = createBus<Events>({ transports: { redis: redisStream({ url: srv.url }) } });
      moduleDef(second);
      await second.start();
      try {
        await until('the overdue message', () => got.length >= 1);
        expect(got[0]?.n).toBe(1);
        expect(got.find((g) => g.n === 2), 'the later message is not early').toBeUndefined();
        await until('the later message', () => got.length >= 2);
        expect(got[1]?.n).toBe(2);
        expect(got[1]?.at).toBeGreaterThanOrEqual(dueLater);
      } finally {
        await second.close();
      }
    }, 40_000);
  });

  it('the attempt count survives a SIGKILL of the consumer while a retry waits; the dead letter comes after the last attempt', async () => {
    const topic = `jobs-${randomUUID().slice(0, 8)}`;
    const moduleName = `retrier-${randomUUID().slice(0, 8)}`;
    const group = `${moduleName}-c`;
    const backoff = 1500;
    const t = redisStream({ url: SHARED_REDIS_URL, keyPrefix: prefix });
    let child: ChildProcess | undefined;
    const attempts: number[] = [];
    try {
      child = spawn(process.execPath, ['--import', TSX, FIXTURE], {
        env: { ...process.env, TSX_TSCONFIG_PATH: TSCONFIG, BUS_URL: SHARED_REDIS_URL, BUS_PREFIX: prefix, BUS_TOPIC: topic, BUS_MODULE: moduleName, BUS_BACKOFF_MS: String(backoff) },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
      const ready = new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('the child reported nothing within 20 s')), 20_000);
        lines.on('line', (line) => {
          const msg = JSON.parse(line) as { ready?: boolean; attempt?: number };
          if (msg.attempt !== undefined) attempts.push(msg.attempt);
          if (msg.ready) {
            clearTimeout(timer);
            resolve();
          }
        });
      });
      await ready;
      const bus = createBus({ transports: { redis: t } });
      await bus.publish(topic, 'job.failed', { n: 1 });
      const retryZset = delayedKey(t.streamKey(`${group}.retry`));
      // Attempt 1 failed, its retry is stored and the original acknowledged: kill the process mid-retry.
      await until('the stored retry and the acknowledged original', async () => {
        const [stored, pending] = await t.withClient(async (c) => [await c.zcard(retryZset), await t.lag?.(group, [topic])]);
        return stored === 1 && (pending as { pending?: number }[] | undefined)?.[0]?.pending === 0 && attempts.length === 1;
      });
      const exited = new Promise((r) => child?.once('exit', r));
      child.kill('SIGKILL');
      await exited;
      expect(attempts).toEqual([1]);

      const dead: IncomingMessage[] = [];
      const seen: number[] = [];
      const successor = createBus({ transports: { redis: redisStream({ url: SHARED_REDIS_URL, keyPrefix: prefix }) } });
      successor.module({
        name: moduleName,
        consumers: { c: { topics: [topic], events: ['job.failed'] } },
        pollIntervalMs: 100,
        lagIntervalMs: 0,
        retry: { mode: 'redeliver', attempts: 3, baseDelayMs: backoff, maxDelayMs: backoff, jitter: 0 },
        handler: (ctx) => {
          seen.push(ctx.message.attempt);
          throw new Error('always failing');
        },
      });
      await successor.start();
      const dlq = await t.subscribe({ group: 'dlq-reader', topics: [`${topic}.dlq`], batchSize: 10, pollIntervalMs: 100, startFrom: 'earliest', consumerName: 'r' }, async (batch) => {
        for (const m of batch) {
          dead.push(m);
          m.ack();
        }
      });
      try {
        await until('the dead letter', () => dead.length >= 1, 20_000);
      } finally {
        await dlq.close();
        await successor.close();
      }
      expect(seen, 'the successor went on from attempt 2').toEqual([2, 3]);
      expect(dead[0]?.headers[DLQ_HEADER.attempts]).toBe('3');
      expect(dead[0]?.headers[DLQ_HEADER.topic]).toBe(topic);
    } finally {
      child?.kill('SIGKILL');
      await t.close();
    }
  }, 60_000);
});
