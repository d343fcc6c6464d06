import { createBus } from '@bus/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisStream } from '../src/index.js';
import { type RedisServer, startRedisServer } from './helpers/servers.js';

type Events = { 'tick.happened': { n: number } };

describe('Redis restarts in the middle of a run', () => {
  let server: RedisServer | undefined;
  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterAll(async () => {
    await server?.dispose();
  });

  it('the run completes: every message whose publish succeeded is handled, publishes fail clearly while Redis is down', async () => {
    const srv = server as RedisServer;
    const bus = createBus<Events>({ transports: { redis: redisStream({ url: srv.url, pool: { max: 4, acquireTimeoutMs: 1000 } }) } });
    const handled = new Set<string>();
    bus.module({
      name: 'ticks',
      batchSize: 50,
      pollIntervalMs: 200,
      consumers: { counter: { topics: ['ticks'], events: ['tick.happened'] } },
      handler: (ctx) => {
        handled.add(ctx.message.id);
      },
    });
    await bus.start();

    const TOTAL = 3000;
    const published = new Set<string>();
    const failures = new Map<string, number>();
    let next = 0;
    let restarted: Promise<void> | undefined;
    const started = Date.now();
    while (published.size < TOTAL) {
      if (!restarted && published.size >= TOTAL / 3) {
        // A crash, not a clean shutdown: appendfsync always keeps every acknowledged XADD.
        restarted = srv.restart({ signal: 'SIGKILL', downMs: 1500 });
      }
      const batch = Array.from({ length: Math.min(50, TOTAL - published.size) }, () => ({ event: 'tick.happened' as const, payload: { n: next++ } }));
      const results = await bus.publishBatch('ticks', batch);
      for (const r of results) {
        if (r.ok) published.add(r.id);
        else failures.set(r.error.code, (failures.get(r.error.code) ?? 0) + 1);
      }
      await new Promise((r) => setTimeout(r, results.every((r) => r.ok) ? 5 : 100));
      if (Date.now() - started > 40_000) throw new Error(`publishing did not recover (${published.size}/${TOTAL})`);
    }
    await restarted;
    const deadline = Date.now() + 20_000;
    while ([...published].some((id) => !handled.has(id)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    await bus.close();

    const missing = [...published].filter((id) => !handled.has(id));
    console.info(
      `restart test: ${published.size} published ok, ${handled.size} handled, ${missing.length} missing; failed publish attempts while down: ${JSON.stringify(Object.fromEntries(failures))}`,
    );
    expect(missing).toEqual([]);
    expect(failures.size, 'some publishes hit the outage and failed with a typed error').toBeGreaterThan(0);
    for (const code of failures.keys()) expect(['CONNECTION', 'POOL_TIMEOUT']).toContain(code);
  }, 60_000);
});
