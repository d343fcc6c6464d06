import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ConfigError, createBus, idempotent, jsonCodec } from '@bus/core';
import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisIdempotencyStore, redisStream } from '../src/index.js';
import { deleteKeys, ensureCluster, nodeOf, SHARED_REDIS_URL, stopCluster } from './helpers/servers.js';

const require = createRequire(import.meta.url);
const TSX = pathToFileURL(require.resolve('tsx')).href;
const WORKER = fileURLToPath(new URL('./fixtures/idempotent-worker.ts', import.meta.url));
const TSCONFIG = fileURLToPath(new URL('./fixtures/tsconfig.json', import.meta.url));
const prefix = `bus-test:${randomUUID().slice(0, 8)}:`;
const node = nodeOf(SHARED_REDIS_URL);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const waitFor = async (what: string, predicate: () => boolean | Promise<boolean>, ms = 20_000) => {
  const deadline = Date.now() + ms;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
};

afterAll(async () => {
  await deleteKeys([node], `${prefix}*`);
});

describe('redisIdempotencyStore', () => {
  it('acquire / extend / complete / release on a standalone server', async () => {
    const store = redisIdempotencyStore({ url: SHARED_REDIS_URL, keyPrefix: `${prefix}idem:` });
    const redis = new Redis(SHARED_REDIS_URL);
    try {
      expect(await store.acquire('k1', 'tok-a', 200)).toBe('acquired');
      expect(await store.acquire('k1', 'tok-b', 200)).toBe('busy');
      expect(await store.extend('k1', 'tok-b', 5000)).toBe(false);
      expect(await store.extend('k1', 'tok-a', 5000)).toBe(true);
      expect(await redis.pttl(`${prefix}idem:k1`)).toBeGreaterThan(1000);
      await store.release('k1', 'tok-b');
      expect(await store.acquire('k1', 'tok-b', 200)).toBe('busy');
      await store.release('k1', 'tok-a');
      expect(await store.acquire('k1', 'tok-b', 200)).toBe('acquired');
      await store.complete('k1', 'tok-b', 60_000);
      expect(await store.acquire('k1', 'tok-c', 200)).toBe('done');
      expect(await redis.pttl(`${prefix}idem:k1`)).toBeGreaterThan(50_000);
      // A lease nobody renews expires.
      expect(await store.acquire('k2', 'dead', 100)).toBe('acquired');
      await sleep(150);
      expect(await store.acquire('k2', 'alive', 100)).toBe('acquired');
    } finally {
      await store.close?.();
      redis.disconnect();
    }
  });

  it('checks its options', () => {
    expect(() => redisIdempotencyStore({} as never)).toThrow(ConfigError);
    expect(() => redisIdempotencyStore({ url: SHARED_REDIS_URL, client: new Redis({ lazyConnect: true }) })).toThrow(/exactly one of client, url, cluster/);
  });

  describe('on Redis Cluster', () => {
    let nodes: { host: string; port: number }[] = [];
    let startedHere = false;
    beforeAll(async () => {
      ({ nodes, startedHere } = await ensureCluster());
    }, 90_000);
    afterAll(async () => {
      await deleteKeys(nodes, `${prefix}*`);
      if (startedHere) await stopCluster();
    }, 90_000);

    it('keys on every master work (one key per command, no cross-slot error)', async () => {
      const client = new Cluster(nodes, { lazyConnect: true });
      const store = redisIdempotencyStore({ client, keyPrefix: `${prefix}idem:` });
      try {
        const keys = Array.from({ length: 50 }, (_, i) => `group:${randomUUID()}-${i}`);
        for (const key of keys) {
          expect(await store.acquire(key, 't1', 5000)).toBe('acquired');
          expect(await store.acquire(key, 't2', 5000)).toBe('busy');
          expect(await store.extend(key, 't1', 5000)).toBe(true);
        }
        await store.release(keys[0] as string, 't1');
        expect(await store.acquire(keys[0] as string, 't2', 5000)).toBe('acquired');
        for (const key of keys.slice(1)) await store.complete(key, 't1', 60_000);
        expect(await store.acquire(keys[1] as string, 't3', 5000)).toBe('done');
      } finally {
        await store.close?.();
        client.disconnect();
      }
    });
  });
});

describe('idempotent consumers on Redis Streams', () => {
  it('the same envelope published twice, and delivered to two members at once, is handled once', async () => {
    const topic = `dup-${randomUUID().slice(0, 6)}`;
    const codec = jsonCodec();
    const producer = redisStream({ url: SHARED_REDIS_URL, keyPrefix: prefix });
    const N = 200;
    // Each envelope twice, the copies side by side: two members reading in parallel get both copies at once.
    const records = Array.from({ length: N }, (_, n) => codec.encode({ id: `env-${n}`, event: 'pay', payload: { n }, publishedAt: Date.now(), headers: {} }));
    expect((await producer.publish(topic, records.flatMap((r) => [r, r]))).every((r) => r.ok)).toBe(true);
    await producer.close();

    const redis = new Redis(SHARED_REDIS_URL);
    const completions = `${prefix}completions:${topic}`;
    let busy = 0;
    let skipped = 0;
    const store = redisIdempotencyStore({ url: SHARED_REDIS_URL, keyPrefix: `${prefix}idem:` });
    // Counts the times a copy found the other copy's lease: proof the two were delivered at once.
    const counting = {
      ...store,
      acquire: async (key: string, token: string, leaseMs: number) => {
        const state = await store.acquire(key, token, leaseMs);
        if (state === 'busy') busy++;
        return state;
      },
    };
    const members = [0, 1].map(() => {
      const bus = createBus<{ pay: { n: number } }>({ transports: { redis: redisStream({ url: SHARED_REDIS_URL, keyPrefix: prefix }) } });
      bus.module({
        name: 'billing',
        consumers: { charge: { topics: [topic], events: ['pay'] } },
        batchSize: 1,
        concurrency: 2,
        pollIntervalMs: 100,
        middleware: [idempotent({ store: counting, leaseMs: 5000, pollMs: 2, onDuplicate: () => skipped++ })],
        handler: async (ctx) => {
          await sleep(3);
          await redis.hincrby(completions, ctx.message.id, 1);
        },
      });
      return bus;
    });
    try {
      await Promise.all(members.map((b) => b.start()));
      await waitFor('every envelope handled', async () => (await redis.hlen(completions)) === N);
      await waitFor('every second copy skipped', () => skipped === N);
      const counts = Object.values(await redis.hgetall(completions)).map(Number);
      expect(counts).toHaveLength(N);
      expect(Math.max(...counts)).toBe(1);
      console.info(`duplicates: ${skipped} second copies skipped, ${busy} lease waits`);
      expect(busy, 'copies were delivered to the two members at once').toBeGreaterThan(0);
    } finally {
      await Promise.all(members.map((b) => b.close()));
      await store.close?.();
      redis.disconnect();
    }
  });

  describe('workers killed with SIGKILL (3 kills over 10,000 messages)', () => {
    const N = 10_000;
    const children = new Set<ChildProcess>();
    afterAll(() => {
      for (const c of children) c.kill('SIGKILL');
    });

    const spawnWorker = (topic: string, completions: string, mode: 'on' | 'off') =>
      new Promise<ChildProcess>((resolve, reject) => {
        const child = spawn(process.execPath, ['--import', TSX, WORKER], {
          env: { ...process.env, TSX_TSCONFIG_PATH: TSCONFIG, BUS_URL: SHARED_REDIS_URL, BUS_PREFIX: prefix, BUS_TOPIC: topic, BUS_COMPLETIONS: completions, BUS_IDEMPOTENT: mode },
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        children.add(child);
        const timer = setTimeout(() => reject(new Error('worker not ready within 30 s')), 30_000);
        child.once('exit', (code) => {
          children.delete(child);
          reject(new Error(`worker exited early (${code})`));
        });
        child.stdout?.once('data', () => {
          clearTimeout(timer);
          resolve(child);
        });
      });
    const kill = async (child: ChildProcess) => {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
      children.delete(child);
    };

    const scenario = async (mode: 'on' | 'off', total: number) => {
      const topic = `kill-${mode}-${randomUUID().slice(0, 6)}`;
      const completions = `${prefix}completions:${topic}`;
      const redis = new Redis(SHARED_REDIS_URL);
      const producer = createBus<{ 'job.created': { n: number } }>({ transports: { redis: redisStream({ url: SHARED_REDIS_URL, keyPrefix: prefix }) } });
      try {
        for (let start = 0; start < total; start += 1000) {
          const entries = Array.from({ length: Math.min(1000, total - start) }, (_, i) => ({ event: 'job.created' as const, payload: { n: start + i } }));
          expect((await producer.publishBatch(topic, entries)).every((r) => r.ok)).toBe(true);
        }
        const workers = [await spawnWorker(topic, completions, mode), await spawnWorker(topic, completions, mode)];
        let kills = 0;
        for (const fraction of [0.25, 0.5, 0.75]) {
          await waitFor(`${fraction * 100}% handled`, async () => (await redis.hlen(completions)) >= total * fraction, 60_000);
          const victim = workers[kills % 2] as ChildProcess;
          await kill(victim);
          kills++;
          workers[(kills - 1) % 2] = await spawnWorker(topic, completions, mode);
        }
        await waitFor('every message handled', async () => (await redis.hlen(completions)) === total, 60_000);
        // Redeliveries of the last kill may still be in flight: wait for the group to drain.
        await waitFor('no pending entries', async () => {
          const pending = (await redis.xpending(`${prefix}${topic}`, 'jobs-run')) as [number, ...unknown[]];
          return pending[0] === 0;
        }, 30_000);
        for (const w of workers) await kill(w);
        const counts = Object.values(await redis.hgetall(completions)).map(Number);
        return { handled: counts.length, twice: counts.filter((c) => c > 1).length, kills };
      } finally {
        await producer.close();
        redis.disconnect();
      }
    };

    it('with the idempotent middleware, no handler completes twice', async () => {
      const result = await scenario('on', N);
      console.info(`idempotent kill test: ${result.handled}/${N} handled, ${result.twice} completed twice, ${result.kills} SIGKILLs`);
      expect(result.handled).toBe(N);
      expect(result.kills).toBe(3);
      expect(result.twice).toBe(0);
    }, 240_000);

    it('control: without it, the same kills make handlers complete twice', async () => {
      const result = await scenario('off', N);
      console.info(`control kill test: ${result.handled}/${N} handled, ${result.twice} completed twice, ${result.kills} SIGKILLs`);
      expect(result.handled).toBe(N);
      expect(result.twice).toBeGreaterThan(0);
    }, 240_000);
  });
});
