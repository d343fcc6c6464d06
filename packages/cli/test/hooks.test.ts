// The config's `supervisor` and `worker` hooks under `bus run` (memory transport, real processes).
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { bus, busDone, killAll, logsMatching, waitFor } from './helpers.js';
import { freePort } from '@bus/core/testing';

const HOOKS_CONFIG = fileURLToPath(new URL('./fixtures/hooks.config.ts', import.meta.url));

afterAll(() => killAll());

describe('bus run with supervisor and worker hooks', { timeout: 60_000 }, () => {
  it('runs the supervisor hook in the parent and the worker hook in each worker, and closes both on SIGTERM', async () => {
    const port = await freePort();
    const p = bus(['run', '--config', HOOKS_CONFIG], { BUS_TEST_PORT: String(port) });
    await waitFor('both workers ready', () => logsMatching(p, /module jobs started/).length === 2);
    const parent = p.child.pid;
    const hooks = p.json().filter((l) => l.hook);
    expect(hooks.filter((l) => l.hook === 'supervisor').map((l) => l.pid)).toEqual([parent]);
    const workerHooks = hooks.filter((l) => l.hook === 'worker');
    expect(workerHooks.map((l) => [l.supervised, l.modules])).toEqual([
      [true, ['jobs']],
      [true, ['jobs']],
    ]);

    // The parent's server asks the workers over IPC; each answers with what its worker hook got.
    const replies = (await (await fetch(`http://127.0.0.1:${port}/`)).json()) as { index: number; pid: number; ok: boolean; value: { pid: number } }[];
    expect(replies.map((r) => [r.index, r.ok, r.value.pid === r.pid])).toEqual([
      [0, true, true],
      [1, true, true],
    ]);
    expect(new Set(replies.map((r) => r.pid))).toEqual(new Set(workerHooks.map((l) => l.pid)));

    p.child.kill('SIGTERM');
    const { code } = await p.exited;
    expect(code).toBe(0);
    const closed = p.json().filter((l) => l.closed);
    expect(closed.filter((l) => l.closed === 'worker')).toHaveLength(2);
    // The parent's resource is closed last, once no worker runs.
    expect(closed.at(-1)).toMatchObject({ closed: 'supervisor', workers: 0, pid: parent });
  });

  it('runs the worker hook unsupervised with --inline', async () => {
    const p = bus(['run', '--inline', '--config', HOOKS_CONFIG], { BUS_TEST_PORT: '0' });
    await waitFor('the module to start', () => logsMatching(p, /module jobs started/).length === 1);
    expect(p.json().filter((l) => l.hook)).toEqual([{ hook: 'worker', supervised: false, modules: ['jobs'], pid: p.child.pid }]);
    p.child.kill('SIGTERM');
    expect((await p.exited).code).toBe(0);
    expect(p.json().filter((l) => l.closed)).toEqual([{ closed: 'worker', pid: p.child.pid }]);
  });

  it('fails `bus run` (exit 1, workers stopped) when the supervisor hook throws', async () => {
    const { code, stderr } = await busDone(['run', '--config', HOOKS_CONFIG], { BUS_TEST_FAIL: 'supervisor', BUS_TEST_PORT: '0' });
    expect(code).toBe(1);
    expect(stderr).toContain("bus: [bus/cli] the config's supervisor hook failed: no port for you");
  });

  it('fails a worker whose worker hook throws (exit 1, restarted by the supervisor)', async () => {
    const p = bus(['run', '--config', HOOKS_CONFIG], { BUS_TEST_FAIL: 'worker', BUS_TEST_PORT: String(await freePort()) });
    await waitFor('the hook failures', () => logsMatching(p, /the config's worker hook failed: worker hook broke/).length === 2);
    await waitFor('the supervisor to see the exits', () => logsMatching(p, /exited with code 1 after \d+ ms; restarting/).length === 2);
    p.child.kill('SIGTERM');
    expect((await p.exited).code).toBe(0);
  });

  it('rejects a hook that is not a function, naming the key', async () => {
    const { resolveConfig, memoryTransport } = await Promise.all([import('@bus/runtime'), import('@bus/core')]).then(([r, c]) => ({ ...r, ...c }));
    await expect(resolveConfig({ transports: { memory: memoryTransport() }, supervisor: 'nope' as never })).rejects.toThrow(
      '[bus/runtime] config.supervisor must be a function, got "nope"',
    );
    await expect(resolveConfig({ transports: { memory: memoryTransport() }, worker: 42 as never })).rejects.toThrow('[bus/runtime] config.worker must be a function, got 42');
  });
});
