// Issue 5's acceptance test: the live-tasks example as users run it (`pnpm start --transport redis`,
// 2 worker processes under the supervisor, built packages) with BUS_METRICS_PORT; a real Prometheus
// server (Debian package `prometheus`) scrapes the supervisor's endpoint every second, and PromQL over
// its HTTP API must return the seed's histograms with the expected labels, counting the messages of
// both workers. Redis at $REDIS_URL (127.0.0.1:6379) is shared: the topic and run are unique and
// deleted afterwards.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '@bus/core/testing';
import { type PromSample, promtool, type RunningPrometheus, startPrometheus } from '../../../packages/prometheus/test/helpers/prometheus-tools.js';

const require = createRequire(import.meta.url);
const TSX = pathToFileURL(require.resolve('tsx')).href;
const dir = fileURLToPath(new URL('..', import.meta.url));
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

const topic = `live-prom-${randomUUID()}`;
const run = randomUUID();
const CONSUMER = 'daily-live-60min-100yuan';

describe('live-tasks on Redis with 2 workers, scraped by a real Prometheus server', { timeout: 90_000 }, () => {
  let app: ChildProcess;
  let out = '';
  let err = '';
  let port: number;
  let prometheus: RunningPrometheus | undefined;
  let published: number;

  const waitForOutput = async (what: string, accept: () => boolean, timeoutMs = 60_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!accept()) {
      if (app.exitCode !== null || app.signalCode !== null) throw new Error(`the example exited (${app.exitCode ?? app.signalCode}) before ${what}\n${out}\n${err}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\nstdout:\n${out}\nstderr:\n${err}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  beforeAll(async () => {
    port = await freePort();
    app = spawn(process.execPath, ['--import', TSX, 'src/main.ts', '--transport', 'redis'], {
      cwd: dir,
      env: { ...process.env, REDIS_URL, BUS_METRICS_PORT: String(port), LIVE_TOPIC: topic, LIVE_RUN: run },
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group, so that a failed test can take the workers down with it.
      detached: true,
    });
    app.stdout?.on('data', (d) => (out += d));
    app.stderr?.on('data', (d) => (err += d));
    await waitForOutput('the day to be handled', () => out.includes('keeping the metrics endpoint up'));
    published = Number(/published (\d+) events to "([^"]+)"/.exec(out)?.[1]);
    prometheus = await startPrometheus({ targets: [`127.0.0.1:${port}`] });
  }, 90_000);

  afterAll(async () => {
    await prometheus?.close();
    if (app?.pid && app.exitCode === null && app.signalCode === null) {
      try {
        process.kill(-app.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    const redis = new Redis(REDIS_URL);
    try {
      const keys: string[] = [];
      for await (const batch of redis.scanStream({ match: `live-tasks:${run}:*`, count: 1000 })) keys.push(...(batch as string[]));
      await redis.del(topic, `${topic}.dlq`, ...keys);
    } finally {
      redis.disconnect();
    }
  }, 30_000);

  const labels = (samples: PromSample[]) => samples.map((s) => s.metric).sort((a, b) => `${a.event}${a.outcome}`.localeCompare(`${b.event}${b.outcome}`));
  const total = (samples: PromSample[]) => samples.reduce((sum, s) => sum + Number(s.value[1]), 0);

  it('the example ran 2 workers and completed the daily task', () => {
    expect(out).toMatch(/module tasks running as 2 worker processes on redis \(pids \d+, \d+\)/);
    expect(out).toMatch(/metrics of all workers on http:\/\/localhost:\d+\/metrics/);
    expect(out.match(/completed:/g)).toHaveLength(2);
    expect(published).toBe(14);
  });

  it('PromQL returns messagebus_job_delay and messagebus_job_cost series with the expected labels', async () => {
    const server = prometheus as RunningPrometheus;
    const job = { job: 'bus', instance: `127.0.0.1:${port}`, module: 'tasks', consumer: CONSUMER, transport: 'redis' };
    const delay = await server.waitFor('messagebus_job_delay_count', (s) => total(s) === published);
    expect(labels(delay), server.log()).toEqual([
      { __name__: 'messagebus_job_delay_count', ...job, event: 'anchor.income' },
      { __name__: 'messagebus_job_delay_count', ...job, event: 'live.duration' },
    ]);
    const cost = await server.waitFor('messagebus_job_cost_count', (s) => total(s) === published);
    expect(labels(cost)).toEqual([
      { __name__: 'messagebus_job_cost_count', ...job, event: 'anchor.income', outcome: 'success' },
      { __name__: 'messagebus_job_cost_count', ...job, event: 'live.duration', outcome: 'success' },
    ]);
    // The day has 5 incomes and 9 live sessions.
    expect(Object.fromEntries(cost.map((s) => [s.metric.event, Number(s.value[1])]))).toEqual({ 'anchor.income': 5, 'live.duration': 9 });
    // Seconds from publish to handling, below the 10 s bucket: the delay is measured, not 0 and not absurd.
    const p99 = await server.waitFor('histogram_quantile(0.99, sum by (le) (messagebus_job_delay_bucket))', (s) => s.length === 1);
    expect(Number(p99[0]?.value[1])).toBeGreaterThan(0);
    expect(Number(p99[0]?.value[1])).toBeLessThan(10);
  });

  it('one scrape counts the messages of both workers: the sum equals what the example published', async () => {
    const server = prometheus as RunningPrometheus;
    const consumed = await server.waitFor(`sum(messagebus_consumed_total{module="tasks",transport="redis"})`, (s) => total(s) === published);
    expect(total(consumed)).toBe(published);
    const body = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const { status, output } = promtool(['check', 'metrics'], body);
    expect(output).toBe('');
    expect(status).toBe(0);
  });

  it('stops on SIGTERM with its workers, each of which handled part of the day', async () => {
    const closed = new Promise<number | null>((resolve) => app.once('close', resolve));
    app.kill('SIGTERM');
    expect(await closed, err).toBe(0);
    // Each worker reports what it handled when it drains (from its own messagebus_consumed_total).
    const workers = [...out.matchAll(/worker tasks#(\d) \(pid (\d+)\) handled (\d+) messages/g)].map((m) => ({ index: m[1], pid: Number(m[2]), handled: Number(m[3]) }));
    expect(workers.map((w) => w.index).sort()).toEqual(['0', '1']);
    for (const w of workers) expect(w.handled, out).toBeGreaterThan(0);
    expect(workers.reduce((sum, w) => sum + w.handled, 0)).toBe(published);
    const alive = workers.filter((w) => {
      try {
        process.kill(w.pid, 0);
        return true;
      } catch {
        return false;
      }
    });
    expect(alive).toEqual([]);
    await expect(fetch(`http://127.0.0.1:${port}/metrics`)).rejects.toThrow();
  });
});
