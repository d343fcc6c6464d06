// Supervisor.askWorkers / answerSupervisor: request-response over the supervisor's IPC channel, with
// real forked worker processes (tsx, core's sources).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { answerSupervisor, isSupervisedWorker, type Supervisor, supervise } from '../src/index.js';

const require = createRequire(import.meta.url);
const TSX = pathToFileURL(require.resolve('tsx')).href;
const RUNTIME = pathToFileURL(fileURLToPath(new URL('../src/index.ts', import.meta.url))).href;
const dir = mkdtempSync(join(tmpdir(), 'bus-ask-'));
const WORKER = join(dir, 'worker.mts');

// Every worker answers "whoami", "fail" (throws), "async" (resolves later), "listeners" (its IPC
// listener count), "exit" (dies while answering); worker #1 answers "slow" after 10 s, worker #0 at
// once. MODE=silent workers never call answerSupervisor. "drop" removes the "whoami" handler.
writeFileSync(
  WORKER,
  `import { answerSupervisor, isSupervisedWorker, runWorker } from ${JSON.stringify(RUNTIME)};
const index = Number(process.env.BUS_WORKER_INDEX);
if (process.env.MODE !== 'silent') {
  const offWhoami = answerSupervisor('whoami', () => ({ pid: process.pid, index, supervised: isSupervisedWorker() }));
  answerSupervisor('fail', () => { throw new Error('boom in ' + index); });
  answerSupervisor('async', () => new Promise((r) => setTimeout(() => r([index, 'later']), 50)));
  answerSupervisor('listeners', () => process.listenerCount('message'));
  answerSupervisor('exit', () => process.exit(9));
  answerSupervisor('slow', () => new Promise((r) => setTimeout(() => r(index), index === 1 ? 10_000 : 0)));
  answerSupervisor('drop', () => { offWhoami(); offWhoami(); return 'dropped'; });
}
const keepAlive = setInterval(() => {}, 1000);
await runWorker({ start: async () => {}, close: async () => { clearInterval(keepAlive); } }, { timeoutMs: 5000 });
`,
);

let supervisor: Supervisor | undefined;
afterEach(async () => {
  await supervisor?.stop();
  supervisor = undefined;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function start(processes: number, env: Record<string, string> = {}): Promise<Supervisor> {
  supervisor = supervise({
    script: WORKER,
    execArgv: ['--import', TSX],
    env: { ...process.env, ...env },
    handleSignals: false,
    groups: [{ name: 'g', processes, restartDelayMs: 100, killTimeoutMs: 5000 }],
  });
  await supervisor.ready;
  return supervisor;
}

describe('Supervisor.askWorkers and answerSupervisor', { timeout: 30_000 }, () => {
  it('collects one answer per running worker, in slot order, from the worker that answered', async () => {
    const s = await start(2);
    const pids = s.workers().map((w) => w.pid);
    const replies = await s.askWorkers<{ pid: number; index: number; supervised: boolean }>('whoami');
    expect(replies).toEqual([
      { group: 'g', index: 0, pid: pids[0], status: 'ready', restarts: 0, ok: true, value: { pid: pids[0], index: 0, supervised: true } },
      { group: 'g', index: 1, pid: pids[1], status: 'ready', restarts: 0, ok: true, value: { pid: pids[1], index: 1, supervised: true } },
    ]);
    const later = await s.askWorkers('async');
    expect(later.map((r) => r.ok && r.value)).toEqual([
      [0, 'later'],
      [1, 'later'],
    ]);
  });

  it('keeps concurrent requests apart by id and leaks no listener', async () => {
    const s = await start(2);
    const [before] = await s.askWorkers<number>('listeners');
    const all = await Promise.all(Array.from({ length: 40 }, (_, i) => s.askWorkers(i % 2 ? 'whoami' : 'async')));
    all.forEach((replies, i) => {
      expect(replies.every((r) => r.ok)).toBe(true);
      if (i % 2 === 0) expect(replies.map((r) => r.ok && r.value)).toEqual([[0, 'later'], [1, 'later']]);
    });
    const [after] = await s.askWorkers<number>('listeners');
    expect(before?.ok && after?.ok && after.value).toBe(before?.ok && before.value);
  });

  it('reports a failing handler, an unknown topic and a removed handler, without waiting for the timeout', async () => {
    const s = await start(1);
    const t0 = Date.now();
    expect(await s.askWorkers('fail')).toMatchObject([{ index: 0, ok: false, reason: 'error', error: 'boom in 0' }]);
    expect(await s.askWorkers('nope')).toMatchObject([{ ok: false, reason: 'no-handler', error: expect.stringContaining('no handler for "nope"') }]);
    expect(await s.askWorkers('drop')).toMatchObject([{ ok: true, value: 'dropped' }]);
    expect(await s.askWorkers('whoami')).toMatchObject([{ ok: false, reason: 'no-handler' }]);
    expect(Date.now() - t0).toBeLessThan(3000);
  });

  it('reports a worker that does not answer in time as timeout, and still returns the others', async () => {
    const s = await start(2);
    const t0 = Date.now();
    const replies = await s.askWorkers('slow', { timeoutMs: 300 });
    const took = Date.now() - t0;
    expect(replies).toMatchObject([
      { index: 0, ok: true, value: 0 },
      { index: 1, ok: false, reason: 'timeout', error: 'no answer to "slow" within 300 ms' },
    ]);
    expect(took).toBeGreaterThanOrEqual(280);
    expect(took).toBeLessThan(2000);
  });

  it('reports a worker that never answers anything as timeout', async () => {
    const s = await start(1, { MODE: 'silent' });
    expect(await s.askWorkers('whoami', { timeoutMs: 200 })).toMatchObject([{ ok: false, reason: 'timeout' }]);
  });

  it('reports a worker that exits while asked as exited, and skips it while it waits for its restart', async () => {
    const s = await start(2);
    const replies = await s.askWorkers('exit', { timeoutMs: 10_000 });
    expect(replies).toMatchObject([
      { index: 0, ok: false, reason: 'exited' },
      { index: 1, ok: false, reason: 'exited' },
    ]);
    expect(await s.askWorkers('whoami')).toEqual([]);
    const deadline = Date.now() + 10_000;
    while (s.workers().some((w) => w.status !== 'ready') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect((await s.askWorkers('whoami')).map((r) => r.ok && r.restarts)).toEqual([1, 1]);
  });

  it('closes what closeOnStop was given after the workers are gone', async () => {
    const s = await start(1);
    const events: string[] = [];
    s.closeOnStop({
      close: async () => {
        events.push(`closed with ${s.workers().filter((w) => w.pid !== undefined).length} workers running`);
      },
    });
    expect(await s.stop()).toBe(0);
    expect(events).toEqual(['closed with 0 workers running']);
    s.closeOnStop({ close: async () => void events.push('closed at once') });
    await new Promise((r) => setTimeout(r, 10));
    expect(events).toEqual(['closed with 0 workers running', 'closed at once']);
    expect(() => s.closeOnStop({} as never)).toThrow('[bus/runtime] closeOnStop.resource must have a close() method');
  });

  it('validates its arguments, and is a no-op outside a supervised worker', async () => {
    const s = await start(1);
    expect(() => s.askWorkers('')).toThrow('[bus/runtime] askWorkers.topic must be a non-empty string');
    expect(() => s.askWorkers('x', { timeoutMs: 0 })).toThrow('[bus/runtime] askWorkers.timeoutMs must be a positive integer, got 0');
    // This test process may have an IPC channel (vitest's fork pool) but no supervisor.
    expect(isSupervisedWorker()).toBe(false);
    const listeners = process.listenerCount('message');
    const off = answerSupervisor('whoami', () => 1);
    expect(process.listenerCount('message')).toBe(listeners);
    off();
    expect(() => answerSupervisor('', () => 1)).toThrow('[bus/runtime] answerSupervisor.topic must be a non-empty string');
  });
});
