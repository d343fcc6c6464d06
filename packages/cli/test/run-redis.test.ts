import { randomUUID } from 'node:crypto';
import { createBus, type Transport } from '@bus/core';
import { redisStream } from '@bus/redis-stream';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { bus, CONFIG, handled, httpStatus, killAll, logsMatching, waitFor } from './helpers.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const run = randomUUID().slice(0, 8);
const redis = new Redis(REDIS_URL, { lazyConnect: true });
const topics: string[] = [];

type Events = { 'job.created': { n: number; fail?: boolean } };

async function publish(topic: string, count: number): Promise<void> {
  const b = createBus<Events>({ transports: { redis: redisStream({ url: REDIS_URL }) } });
  try {
    const results = await b.publishBatch(
      topic,
      Array.from({ length: count }, (_, n) => ({ event: 'job.created' as const, payload: { n } })),
    );
    expect(results.every((r) => r.ok)).toBe(true);
  } finally {
    await b.close();
  }
}

async function lagOf(group: string, topic: string) {
  const t: Transport = redisStream({ url: REDIS_URL });
  try {
    return (await t.lag?.(group, [topic]))?.[0];
  } finally {
    await t.close();
  }
}

afterAll(async () => {
  killAll();
  if (topics.length > 0) await redis.del(...topics.flatMap((t) => [t, `${t}.dlq`]));
  redis.disconnect();
});

describe('bus run on Redis: a module as 2 worker processes', () => {
  it('restarts a worker killed with SIGKILL after the restart delay, and every message is handled', async () => {
    const topic = `cli-crash-${run}`;
    const module = `crash${run}`;
    topics.push(topic);
    const N = 400;
    const restartMs = 1000;
    const p = bus(['run', '--config', CONFIG], {
      BUS_TEST_TOPIC: topic,
      BUS_TEST_MODULE: module,
      BUS_TEST_PROCESSES: '2',
      BUS_TEST_RESTART_MS: String(restartMs),
      BUS_TEST_HANDLER_MS: '10',
    });
    await waitFor('both workers subscribed', () => logsMatching(p, /^module .* started$/).length === 2);
    await publish(topic, N);
    await waitFor('some messages handled', () => handled(p).ended.size >= 60);

    const started = logsMatching(p, /^worker .*#0 started/);
    const victim = started[0]?.pid as number;
    expect(victim).toBeGreaterThan(0);
    process.kill(victim, 'SIGKILL');
    const killedAt = Date.now();
    const endsAtKill = handled(p).ended.size;
    await waitFor('the restart', () => logsMatching(p, /^worker .*#0 started/).length === 2, 10_000);
    const restartedAfter = Date.now() - killedAt;
    const exitLine = logsMatching(p, /#0 \(pid \d+\) was killed by signal SIGKILL/)[0];
    expect(exitLine, 'a log line names the signal').toBeDefined();
    expect(exitLine?.msg).toMatch(/restarting in 1000 ms/);
    expect(exitLine?.level).toBe('error');
    expect(restartedAfter).toBeGreaterThanOrEqual(restartMs - 50);

    await waitFor(`all ${N} messages handled`, () => handled(p).ended.size === N, 30_000);
    const info = await lagOf(`${module}-jobs`, topic);
    expect(info).toMatchObject({ lag: 0, pending: 0 });
    const byPid = new Map<unknown, number>();
    for (const l of p.json()) if (l.end) byPid.set(l.pid, (byPid.get(l.pid) ?? 0) + 1);
    console.info(
      `crash test: worker ${victim} SIGKILLed after ${endsAtKill}/${N} ends; restarted after ${restartedAfter} ms; ` +
        `${N}/${N} ids handled, by ${byPid.size} processes (${[...byPid.values()].join('/')} handler runs)`,
    );

    p.child.kill('SIGTERM');
    expect((await p.exited).code).toBe(0);
  });

  it('drains on SIGTERM: exits 0 within the drain deadline, no handler cut off, the unstarted released; /ready goes 503', async () => {
    const topic = `cli-drain-${run}`;
    const module = `drain${run}`;
    topics.push(topic);
    const N = 120;
    const drainMs = 5000;
    const port = 20000 + Math.floor(Math.random() * 20000);
    const env = {
      BUS_TEST_TOPIC: topic,
      BUS_TEST_MODULE: module,
      BUS_TEST_PROCESSES: '2',
      BUS_TEST_HANDLER_MS: '150',
      BUS_TEST_BATCH: '5',
      BUS_TEST_DRAIN_MS: String(drainMs),
      BUS_TEST_HEALTH_PORT: String(port),
    };
    const p = bus(['run', '--config', CONFIG], env);
    const ready = `http://127.0.0.1:${port}/ready`;
    await waitFor('the health server', () => logsMatching(p, /^health of/).length === 1);
    await waitFor('both workers subscribed', () => logsMatching(p, /^module .* started$/).length === 2);
    let afterStart = 0;
    const subscribedAt = Date.now();
    // The parent hears "ready" over IPC right after the workers log it.
    while (afterStart !== 200 && Date.now() - subscribedAt < 2000) afterStart = await httpStatus(ready);
    expect(await httpStatus(`http://127.0.0.1:${port}/live`)).toBe(200);
    await publish(topic, N);
    await waitFor('handlers running', () => handled(p).ended.size >= 10);

    const sigtermAt = Date.now();
    p.child.kill('SIGTERM');
    await waitFor('the parent to take the signal', () => logsMatching(p, /^SIGTERM received: draining the workers$/).length === 1, 2000);
    const whileDraining = await httpStatus(ready);
    const { code, at } = await p.exited;
    const tookMs = at - sigtermAt;
    const first = handled(p);

    expect(afterStart).toBe(200);
    expect(whileDraining === 503 || whileDraining === 0, `/ready while draining answered ${whileDraining}`).toBe(true);
    expect(code).toBe(0);
    expect(tookMs).toBeLessThan(drainMs);
    expect(first.unfinished, 'every handler that started also ended').toEqual([]);
    expect(p.json().some((l) => l.end && l.aborted), 'no handler saw its signal aborted').toBe(false);
    const info = await lagOf(`${module}-jobs`, topic);
    // Fetched and never started: released at once (pending with an idle time past claimIdleMs, so
    // the next XAUTOCLAIM of any member takes them); at most the running batch and the one fetched
    // ahead, per worker.
    expect(info?.pending ?? 0, 'released entries (XPENDING)').toBeLessThanOrEqual(2 * 2 * 5);
    expect((info?.lag ?? 0) + (info?.pending ?? 0)).toBe(N - first.ended.size);

    // What the drained run did not take is still there: a second run handles exactly the rest.
    const p2 = bus(['run', '--config', CONFIG], { ...env, BUS_TEST_HANDLER_MS: '1' });
    await waitFor('the rest handled', () => first.ended.size + handled(p2).ended.size >= N, 30_000);
    const all = new Set([...first.ended, ...handled(p2).ended]);
    expect(all.size).toBe(N);
    expect([...handled(p2).ended].filter((id) => first.ended.has(id)), 'nothing handled twice').toEqual([]);
    p2.child.kill('SIGTERM');
    expect((await p2.exited).code).toBe(0);
    expect(await lagOf(`${module}-jobs`, topic)).toMatchObject({ lag: 0, pending: 0 });
    console.info(
      `drain test: SIGTERM with ${first.ended.size}/${N} handled → exit 0 in ${tookMs} ms (deadline ${drainMs}); ` +
        `0 cut off, released ${info?.pending}, lag ${info?.lag}; /ready ${afterStart} → ${whileDraining}; second run handled the rest`,
    );
  });
});
