import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { Logger } from '@bus/core';
import { healthServer, type Supervisor, supervise } from '../src/index.js';

const require = createRequire(import.meta.url);
const TSX = pathToFileURL(require.resolve('tsx')).href;
const RUNTIME = pathToFileURL(fileURLToPath(new URL('../src/index.ts', import.meta.url))).href;
const dir = mkdtempSync(join(tmpdir(), 'bus-supervisor-'));
const WORKER = join(dir, 'worker.mts');

// A worker whose behaviour the test picks with MODE: crash at once, run a fake bus (start and close
// take START_MS / CLOSE_MS) under runWorker, or ignore SIGTERM.
writeFileSync(
  WORKER,
  `import { runWorker } from ${JSON.stringify(RUNTIME)};
const { MODE, START_MS = '0', CLOSE_MS = '0', TIMEOUT_MS = '15000' } = process.env;
const sleep = (ms: string) => new Promise((r) => setTimeout(r, Number(ms)));
if (MODE === 'crash') {
  setTimeout(() => process.exit(3), 30);
} else if (MODE === 'boot') {
  setInterval(() => {}, 1000);
} else if (MODE === 'ignore') {
  process.on('SIGTERM', () => {});
  setInterval(() => {}, 1000);
  process.send?.({ bus: 'worker', state: 'ready' });
} else {
  const keepAlive = setInterval(() => {}, 1000);
  await runWorker(
    { start: () => sleep(START_MS), close: async () => { await sleep(CLOSE_MS); clearInterval(keepAlive); } },
    { timeoutMs: Number(TIMEOUT_MS) },
  );
}
`,
);

const supervisors: Supervisor[] = [];
afterAll(async () => {
  for (const s of supervisors) for (const w of s.workers()) if (w.pid) process.kill(w.pid, 'SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

function recorder() {
  const lines: { level: string; msg: string; fields: Record<string, unknown>; at: number }[] = [];
  const make = (bindings: Record<string, unknown>): Logger => {
    const write = (level: string) => (msg: string, fields: Record<string, unknown> = {}) => lines.push({ level, msg, fields: { ...bindings, ...fields }, at: Date.now() });
    return { debug: write('debug'), info: write('info'), warn: write('warn'), error: write('error'), child: (more) => make({ ...bindings, ...more }) };
  };
  return { lines, logger: make({}) };
}

function start(env: Record<string, string>, group: Record<string, unknown> = {}) {
  const log = recorder();
  const supervisor = supervise({
    script: WORKER,
    execArgv: ['--import', TSX],
    env: { ...process.env, ...env },
    logger: log.logger,
    handleSignals: false,
    groups: [{ name: 'g', ...group }],
  });
  supervisors.push(supervisor);
  return { supervisor, log };
}

async function waitFor(what: string, predicate: () => boolean, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function status(url: string): Promise<number> {
  const res = await fetch(url);
  await res.text();
  return res.status;
}

describe('supervise()', () => {
  it('restarts a crashing worker after the restart delay, doubling it while it crash-loops, with the exit code in the log', async () => {
    const { supervisor, log } = start({ MODE: 'crash' }, { restartDelayMs: 100, maxRestartDelayMs: 400 });
    const exits = () => log.lines.filter((l) => l.msg.includes('exited with code 3'));
    await waitFor('4 crashes', () => exits().length >= 4);
    expect(exits().map((l) => l.fields.restartInMs)).toEqual(expect.arrayContaining([100, 200, 400]));
    expect(exits().slice(0, 4).map((l) => l.fields.restartInMs)).toEqual([100, 200, 400, 400]);
    expect(exits()[0]?.level).toBe('error');
    expect(exits()[1]?.msg).toMatch(/^worker g#0 \(pid \d+\) exited with code 3 after \d+ ms; restarting in 200 ms \(died 2 times in a row, backing off\)$/);
    // Each start comes at least the announced delay after the exit before it.
    const starts = log.lines.filter((l) => /^worker g#0 started/.test(l.msg));
    for (let i = 0; i < 3; i++) {
      const exit = exits()[i];
      const next = starts[i + 1];
      expect((next?.at ?? 0) - (exit?.at ?? 0)).toBeGreaterThanOrEqual((exit?.fields.restartInMs as number) - 5);
    }
    expect(supervisor.workers()[0]?.restarts).toBeGreaterThanOrEqual(4);
    await supervisor.stop();
    const after = log.lines.length;
    await new Promise((r) => setTimeout(r, 600));
    expect(log.lines.slice(after).filter((l) => /started/.test(l.msg)), 'no restart after stop()').toEqual([]);
  });

  it('serves /ready 503 until every worker is subscribed, 200 then, 503 while draining; stop() drains with SIGTERM and resolves 0', async () => {
    const { supervisor, log } = start({ MODE: 'ok', START_MS: '1500', CLOSE_MS: '700' }, { processes: 2, health: { port: 0 } });
    await waitFor('health server', () => supervisor.health.has('g'));
    const base = `http://127.0.0.1:${supervisor.health.get('g')?.port}`;
    expect(await status(`${base}/live`)).toBe(200);
    expect(await status(`${base}/ready`)).toBe(503);
    await supervisor.ready;
    expect(await status(`${base}/ready`)).toBe(200);
    expect(supervisor.workers().map((w) => w.status)).toEqual(['ready', 'ready']);
    const stopping = supervisor.stop();
    expect(await status(`${base}/ready`)).toBe(503);
    const t0 = Date.now();
    expect(await stopping).toBe(0);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(500);
    expect(log.lines.filter((l) => /exited with code 0$/.test(l.msg))).toHaveLength(2);
    expect(supervisor.workers().map((w) => w.status)).toEqual(['stopped', 'stopped']);
    expect(await status(`${base}/live`).catch(() => 0)).toBe(0);
  });

  it('counts a worker that dies of its stop signal before it installed a handler as stopped cleanly, never as a crash', async () => {
    // MODE=boot: a worker still booting (no handler yet) when the supervisor stops, as in `bus run`
    // stopped 0.3 s after its start: Node's default action kills it with the SIGTERM.
    const { supervisor, log } = start({ MODE: 'boot' }, { processes: 2, restartDelayMs: 50 });
    await waitFor('both workers forked', () => supervisor.workers().every((w) => w.pid !== undefined));
    await new Promise((r) => setTimeout(r, 200));
    expect(await supervisor.stop()).toBe(0);
    expect(log.lines.filter((l) => /was killed by signal SIGTERM$/.test(l.msg)), JSON.stringify(log.lines)).toHaveLength(2);
    expect(log.lines.filter((l) => l.level !== 'info')).toEqual([]);
    expect(supervisor.workers().map((w) => [w.status, w.restarts])).toEqual([
      ['stopped', 0],
      ['stopped', 0],
    ]);
  });

  it('kills (SIGKILL) a worker that does not exit within killTimeoutMs of SIGTERM, and resolves 1', async () => {
    const { supervisor, log } = start({ MODE: 'ignore' }, { killTimeoutMs: 300 });
    await supervisor.ready;
    const t0 = Date.now();
    expect(await supervisor.stop()).toBe(1);
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(290);
    expect(took).toBeLessThan(3000);
    expect(log.lines.some((l) => /did not exit within 300 ms of SIGTERM; killing it \(SIGKILL\)/.test(l.msg))).toBe(true);
    expect(log.lines.some((l) => /was killed by signal SIGKILL while stopping/.test(l.msg))).toBe(true);
  });

  it("bounds a worker's own drain: past runWorker's timeoutMs it exits 1 by itself", async () => {
    const { supervisor, log } = start({ MODE: 'ok', CLOSE_MS: '10000', TIMEOUT_MS: '200' }, { killTimeoutMs: 5000 });
    await supervisor.ready;
    const t0 = Date.now();
    expect(await supervisor.stop()).toBe(1);
    expect(Date.now() - t0).toBeLessThan(2500);
    expect(log.lines.some((l) => /exited with code 1 while stopping/.test(l.msg))).toBe(true);
    expect(log.lines.some((l) => /did not exit within/.test(l.msg)), 'not killed by the supervisor').toBe(false);
  });

  it('checks its options, naming the key', () => {
    expect(() => supervise({ script: WORKER, groups: [] })).toThrow('[bus/runtime] supervise.groups must be a non-empty array');
    expect(() => supervise({ script: WORKER, groups: [{ name: 'g', processes: 0 }] })).toThrow('[bus/runtime] supervise.groups[0].processes must be an integer from 1 to 1024, got 0');
    expect(() => supervise({ script: WORKER, groups: [{ name: 'g', procesess: 2 } as never] })).toThrow('[bus/runtime] supervise.groups[0].procesess is not an option; did you mean "processes"?');
    expect(() => supervise({ script: WORKER, group: [] } as never)).toThrow('[bus/runtime] supervise.group is not an option; did you mean "groups"?');
  });
});

describe('healthServer()', () => {
  it('answers /live 200, /ready from check(), 404 elsewhere', async () => {
    let ready = false;
    const server = await healthServer({ port: 0, check: () => ({ ready, detail: { n: 1 } }) });
    try {
      const base = `http://127.0.0.1:${server.port}`;
      expect(await status(`${base}/live`)).toBe(200);
      const notReady = await fetch(`${base}/ready`);
      expect(notReady.status).toBe(503);
      expect(await notReady.json()).toEqual({ status: 'not ready', detail: { n: 1 } });
      ready = true;
      expect(await status(`${base}/ready`)).toBe(200);
      expect(await status(`${base}/nope`)).toBe(404);
    } finally {
      await server.close();
    }
  });
});
