import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { createBus } from '@bus/core';
import { redisStream } from '@bus/redis-stream';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { bus, busDone, killAll, MEMORY_CONFIG, waitFor } from './helpers.js';

const LIVE_TASKS = fileURLToPath(new URL('../../../examples/live-tasks/bus.config.ts', import.meta.url));
const BOARD_CONFIG = fileURLToPath(new URL('./fixtures/board.config.ts', import.meta.url));
const run = randomUUID().slice(0, 8);
const redisKeys: string[] = [];

afterAll(async () => {
  killAll();
  if (redisKeys.length) {
    const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
    await redis.del(...redisKeys);
    redis.disconnect();
  }
});

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

describe('the board in the bus run parent', () => {
  it('shows the worker processes alive and their handled counts summed', async () => {
    const topic = `cli-board-${run}`;
    const module = `cliboard${run}`;
    redisKeys.push(topic, `${topic}.dlq`);
    const p = bus(['run', '--config', BOARD_CONFIG], { BUS_TEST_TOPIC: topic, BUS_TEST_MODULE: module });
    await waitFor('the board URL', () => p.json().some((l) => typeof l.board === 'string') || p.child.exitCode !== null, 30_000);
    const url = p.json().find((l) => typeof l.board === 'string')?.board as string;
    expect(url, p.stderr.join('\n')).toBeDefined();
    type Row = { workers?: { alive: number; ready: number; total: number; restarts: number; pids: number[] }; consumers: { topics: { handled?: number }[] }[] };
    let row: Row | undefined;
    const read = async (): Promise<Row> => {
      const o = (await (await fetch(`${url}api/overview`)).json()) as { modules: Row[] };
      row = o.modules[0];
      if (!row) throw new Error('no module on the board');
      return row;
    };
    const until = async (what: string, check: (r: Row) => boolean) => {
      const deadline = Date.now() + 30_000;
      while (!check(await read())) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(row)}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    };
    await until('2 workers ready', (r) => r.workers?.ready === 2);
    expect(row?.workers).toMatchObject({ total: 2, alive: 2, restarts: 0 });

    const producer = createBus<{ 'job.created': { n: number } }>({ transports: { redis: redisStream({ url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' }) } });
    for (let n = 1; n <= 6; n++) await producer.publish(topic, 'job.created', { n });
    await producer.close();
    await until('6 handled over both workers', (r) => r.consumers[0]?.topics[0]?.handled === 6);
    const html = await (await fetch(url)).text();
    expect(html).toMatch(/Worker processes: <span data-live="0\.workers">2\/2 alive, 2 ready, 0 restart\(s\) \(pid \d+, \d+\)/);

    process.kill(row?.workers?.pids[0] as number, 'SIGKILL');
    await until('a restart', (r) => (r.workers?.restarts ?? 0) >= 1 && r.workers?.ready === 2);
    p.child.kill('SIGTERM');
    expect((await p.exited).code).toBe(0);
  });
});
