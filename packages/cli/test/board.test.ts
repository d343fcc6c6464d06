import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { bus, busDone, killAll, MEMORY_CONFIG, waitFor } from './helpers.js';

const LIVE_TASKS = fileURLToPath(new URL('../../../examples/live-tasks/bus.config.ts', import.meta.url));

afterAll(() => killAll());

/** Starts `bus board`, waits for its URL line, returns it with the process. */
async function board(args: string[], env: Record<string, string> = {}) {
  const p = bus(['board', '--port', '0', ...args], env);
  await waitFor('the board URL', () => p.stdout.some((l) => l.startsWith('bus board: http://')) || p.child.exitCode !== null, 30_000);
  const line = p.stdout.find((l) => l.startsWith('bus board: '));
  expect(line, p.stderr.join('\n')).toBeDefined();
  return { p, url: /http:\/\/\S+/.exec(line as string)?.[0] as string, line: line as string };
}

describe('bus board', () => {
  it('serves the config\'s board on 127.0.0.1, read-only without a token, and stops on SIGTERM', async () => {
    const { p, url, line } = await board(['--config', MEMORY_CONFIG]);
    expect(line).toContain('read-only');
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const res = await fetch(url);
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain('data-module="jobs"');
    expect(html).toContain('data-mode="read"');
    p.child.kill('SIGTERM');
    expect((await p.exited).code).toBe(0);
  });

  it('runs from the live-tasks example, with actions behind the token', async () => {
    const { p, url, line } = await board(['--config', LIVE_TASKS], { BUS_BOARD_TOKEN: 'live-tasks-board-token' });
    expect(line).toContain('actions enabled');
    const html = await (await fetch(url)).text();
    expect(html).toContain('data-module="tasks"');
    expect(html).toContain('action="/login"');
    p.child.kill('SIGTERM');
    expect((await p.exited).code).toBe(0);
  });

  it('rejects a short token and a bad port as usage errors', async () => {
    const short = await busDone(['board', '--config', MEMORY_CONFIG, '--token', 'short']);
    expect(short.code).toBe(2);
    expect(short.stderr).toContain('--token must have at least 12 characters');
    const port = await busDone(['board', '--config', MEMORY_CONFIG, '--port', 'x']);
    expect(port.code).toBe(2);
    expect(port.stderr).toContain('--port must be a positive integer');
  });
});
