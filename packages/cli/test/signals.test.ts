// SIGTERM at any moment of `bus run` — while the config loads, while connecting, running, draining —
// ends it with exit 0 and no process left; a second signal forces a fast, non-zero exit.
//
// These tests run the built CLI (dist/bin.js, as an operator does): through tsx, Node would spend its
// first second compiling the CLI, and a signal then would test tsx, not `bus`. A signal that comes
// before Node ran the first line of any script gets Node's default (death by the signal, 143)
// whatever the script: "at 0.1 s" means at 0.1 s or, on a machine where Node needs longer to boot,
// at the first moment `bus` can take a signal (see sigtermAt).
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createBus, type Transport } from '@bus/core';
import { kafka } from '@bus/kafka';
import { redisStream } from '@bus/redis-stream';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { CONFIG, handled, waitFor } from './helpers.js';

const DIST_BIN = fileURLToPath(new URL('../dist/bin.js', import.meta.url));
const TSCONFIG = fileURLToPath(new URL('./fixtures/tsconfig.json', import.meta.url));
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const BROKERS = process.env.KAFKA_BROKERS ?? '127.0.0.1:9092';
const run = randomUUID().slice(0, 8);
const streams: string[] = [];
const children = new Set<ChildProcess>();

type Events = { 'job.created': { n: number; fail?: boolean } };

interface Run {
  child: ChildProcess;
  stdout: string[];
  stderr: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
}

/** `node dist/bin.js run` in a process group of its own (its workers join it). */
function busRun(env: Record<string, string>): Run {
  if (!existsSync(DIST_BIN)) throw new Error(`${DIST_BIN} is missing: build first (pnpm build)`);
  const child = spawn(process.execPath, [DIST_BIN, 'run', '--config', CONFIG], {
    // BUS_DEBUG: `bus` says when its first line ran (see sigtermAt).
    env: { ...process.env, TSX_TSCONFIG_PATH: TSCONFIG, BUS_DEBUG: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  children.add(child);
  const stdout: string[] = [];
  const stderr: string[] = [];
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (l) => stdout.push(l));
  createInterface({ input: child.stderr as NodeJS.ReadableStream }).on('line', (l) => stderr.push(l));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) => {
    child.once('close', (code, signal) => resolve({ code, signal, at: Date.now() }));
  });
  return { child, stdout, stderr, exited };
}

const asHandled = (r: Run) => handled({ child: r.child, stdout: r.stdout, stderr: r.stderr, exited: r.exited, json: () => parse(r.stdout), logs: () => parse(r.stderr) });
function parse(lines: string[]): Record<string, unknown>[] {
  return lines.flatMap((l) => {
    try {
      const v = JSON.parse(l) as unknown;
      return typeof v === 'object' && v !== null ? [v as Record<string, unknown>] : [];
    } catch {
      return [];
    }
  });
}

/**
 * Sends SIGTERM `afterMs` after the spawn — or, when Node has not yet run the first line of `bus` by
 * then (it takes longer than 0.1 s on a loaded machine), at the first moment it can take a signal at
 * all. Returns when the signal was sent, in ms after the spawn.
 */
async function sigtermAt(r: Run, spawnedAt: number, afterMs: number): Promise<number> {
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, spawnedAt + afterMs - Date.now())));
  const deadline = Date.now() + 30_000;
  while (!r.stderr.includes(`bus: pid ${r.child.pid} takes signals`)) {
    if (Date.now() > deadline) throw new Error('bus never installed a SIGTERM handler');
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  r.child.kill('SIGTERM');
  return Date.now() - spawnedAt;
}

/** True once no process of `pgid` is left (bounded wait). */
async function groupGone(pgid: number, timeoutMs = 5000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      process.kill(-pgid, 0);
    } catch {
      return true;
    }
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Waits for the exit (bounded: SIGKILLs the group past `timeoutMs` and fails). */
async function exitOf(r: Run, timeoutMs = 60_000) {
  const timer = setTimeout(() => {
    try {
      if (r.child.pid) process.kill(-r.child.pid, 'SIGKILL');
    } catch {
      // gone
    }
  }, timeoutMs);
  const result = await r.exited;
  clearTimeout(timer);
  children.delete(r.child);
  return result;
}

function transportOf(which: 'redis' | 'kafka'): Transport {
  return which === 'kafka' ? kafka({ brokers: BROKERS, logLevel: 'error' }) : redisStream({ url: REDIS_URL });
}

async function publish(which: 'redis' | 'kafka', topic: string, count: number): Promise<void> {
  const b = createBus<Events>({ transports: { [which]: transportOf(which) } });
  try {
    const results = await b.publishBatch(topic, Array.from({ length: count }, (_, n) => ({ event: 'job.created' as const, payload: { n } })));
    expect(results.every((r) => r.ok)).toBe(true);
  } finally {
    await b.close();
  }
}

afterAll(async () => {
  for (const child of children) {
    try {
      if (child.pid) process.kill(-child.pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  if (streams.length > 0) {
    const redis = new Redis(REDIS_URL);
    await redis.del(...streams.flatMap((t) => [t, `${t}.dlq`])).catch(() => {});
    redis.disconnect();
  }
});

/** Log lines that would mean a worker was counted as crashed, or restarted. */
const crashLines = (r: Run) => r.stderr.filter((l) => /restarting in|while stopping|failed|did not exit/.test(l));

for (const which of ['redis', 'kafka'] as const) {
  describe(`bus run on ${which}: SIGTERM at any moment`, () => {
    const env = (name: string): Record<string, string> => {
      const topic = `cli-sig-${name}-${run}`;
      if (which === 'redis') streams.push(topic);
      return { BUS_TEST_TRANSPORT: which, BUS_TEST_TOPIC: topic, BUS_TEST_MODULE: `sig${name}${run}`, BUS_TEST_PROCESSES: '2' };
    };

    for (const afterMs of [100, 300, 1000]) {
      it(`${afterMs} ms after the start: exit 0, no worker counted as crashed, no process left`, async () => {
        const spawnedAt = Date.now();
        const r = busRun(env(`t${afterMs}`));
        const sentAt = await sigtermAt(r, spawnedAt, afterMs);
        const { code, signal } = await exitOf(r);
        console.info(`${which}: SIGTERM ${sentAt} ms after the spawn (asked: ${afterMs}) → exit ${code ?? signal}`);
        const pgid = r.child.pid as number;
        expect({ code, signal }, r.stderr.join('\n')).toEqual({ code: 0, signal: null });
        expect(crashLines(r)).toEqual([]);
        expect(await groupGone(pgid), 'a worker process is left').toBe(true);
      });
    }

    it('mid-drain (handlers running): exit 0, every handler that started ended, no process left', async () => {
      const e: Record<string, string> = { ...env('drain'), BUS_TEST_HANDLER_MS: '400', BUS_TEST_BATCH: '2' };
      const r = busRun(e);
      await waitFor('both workers started', () => r.stderr.filter((l) => /"msg":"module .* started"/.test(l)).length === 2, 45_000);
      await publish(which, e.BUS_TEST_TOPIC as string, 40);
      await waitFor('handlers running', () => r.stdout.some((l) => l.includes('"start"')), 30_000);
      r.child.kill('SIGTERM');
      const { code, signal } = await exitOf(r);
      const pgid = r.child.pid as number;
      expect({ code, signal }, r.stderr.join('\n')).toEqual({ code: 0, signal: null });
      const h = asHandled(r);
      expect(h.ended.size).toBeGreaterThan(0);
      expect(h.unfinished, 'a handler was cut off').toEqual([]);
      expect(crashLines(r)).toEqual([]);
      expect(await groupGone(pgid), 'a worker process is left').toBe(true);
    });
  });
}

// The operator's deploy: module defaults (batch of 10, concurrency 1), 2-second handlers, SIGTERM
// while the first handler runs. Before the stop rules lived in core, the worker went on to start every
// message it had fetched (9 more handlers, 18 s, exit 1) and, its acks never written, ran them again
// after the restart.
for (const which of ['redis', 'kafka'] as const) {
  describe(`bus run on ${which}: SIGTERM mid-batch starts no new work`, () => {
    it('exit 0 within the drain deadline, 0 handlers started after the signal, 0 completed twice after a restart', async () => {
      const topic = `cli-sig-batch-${run}-${which}`;
      if (which === 'redis') streams.push(topic);
      const e: Record<string, string> = {
        BUS_TEST_TRANSPORT: which,
        BUS_TEST_TOPIC: topic,
        BUS_TEST_MODULE: `sigbatch${which}${run}`,
        BUS_TEST_PROCESSES: '1',
        BUS_TEST_HANDLER_MS: '2000',
        BUS_TEST_BATCH: '10',
      };
      const first = busRun(e);
      await waitFor('the worker started', () => first.stderr.some((l) => /"msg":"module .* started"/.test(l)), 45_000);
      await publish(which, topic, 10);
      await waitFor('the first handler running', () => first.stdout.some((l) => l.includes('"start"')), 30_000);
      const signalledAt = Date.now();
      first.child.kill('SIGTERM');
      const { code, at } = await exitOf(first);
      expect(code, first.stderr.join('\n')).toBe(0);
      // The running handler finishes (2 s); nothing else runs: far below drainTimeoutMs (10 s).
      expect(at - signalledAt).toBeLessThan(8000);
      const starts = parse(first.stdout).filter((l) => typeof l.start === 'string');
      expect(starts.filter((l) => (l.at as number) > signalledAt + 50).map((l) => l.n), 'handlers started after SIGTERM').toEqual([]);
      const firstEnded = asHandled(first).ended;
      expect(asHandled(first).unfinished).toEqual([]);

      // The restart handles the rest, and nothing the first run finished comes back.
      const second = busRun(e);
      await waitFor('the other messages handled after the restart', () => asHandled(second).ended.size + firstEnded.size >= 10, 60_000);
      second.child.kill('SIGTERM');
      expect((await exitOf(second)).code, second.stderr.join('\n')).toBe(0);
      const again = [...asHandled(second).ended].filter((id) => firstEnded.has(id));
      expect(again, 'messages completed twice').toEqual([]);
      expect(firstEnded.size + asHandled(second).ended.size).toBe(10);
    }, 150_000);
  });
}

describe('bus run: a second signal', () => {
  it('forces the exit at once: the workers are killed, exit code 128 + signal, and a line says why', async () => {
    const topic = `cli-sig-force-${run}`;
    streams.push(topic);
    const e = { BUS_TEST_TOPIC: topic, BUS_TEST_MODULE: `sigforce${run}`, BUS_TEST_PROCESSES: '2', BUS_TEST_HANDLER_MS: '30000', BUS_TEST_DRAIN_MS: '40000', BUS_TEST_BATCH: '1' };
    const r = busRun(e);
    await waitFor('both workers started', () => r.stderr.filter((l) => /"msg":"module .* started"/.test(l)).length === 2, 45_000);
    await publish('redis', topic, 4);
    await waitFor('handlers running', () => r.stdout.some((l) => l.includes('"start"')), 30_000);
    r.child.kill('SIGTERM');
    await waitFor('the drain to start', () => r.stderr.some((l) => l.includes('SIGTERM received: draining the workers')), 10_000);
    r.child.kill('SIGINT');
    const { code } = await exitOf(r);
    const pgid = r.child.pid as number;
    expect(code).toBe(130);
    expect(asHandled(r).ended.size, 'the forced exit did not wait for the 30 s handlers').toBe(0);
    expect(r.stderr.some((l) => /SIGINT again: not waiting for the drain; killing 2 worker\(s\) now \(SIGKILL\) and exiting with code 130/.test(l))).toBe(true);
    expect(await groupGone(pgid), 'a worker process is left').toBe(true);
  });
});
