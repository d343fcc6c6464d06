// A CLI that says why: each command against a broker that refuses the password, wants one, or cannot
// be reached ends by itself, non-zero (3), naming the reason and what to check — and never prints
// the password. Runs the built CLI (dist/bin.js), as an operator does; a test Redis of its own
// (redis-server --requirepass) on a loopback port.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { AuthError, ConnectionError } from '@bus/core';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT, exitCodeOf, explain } from '../src/failure.js';
import { CONFIG, MEMORY_CONFIG } from './helpers.js';

const DIST_BIN = fileURLToPath(new URL('../dist/bin.js', import.meta.url));
const TSCONFIG = fileURLToPath(new URL('./fixtures/tsconfig.json', import.meta.url));
const BROKEN_CONFIG = fileURLToPath(new URL('./fixtures/broken.config.ts', import.meta.url));
// 17001-17003 are the cluster bus ports of the shared Redis Cluster (7001-7003 + 10000).
const PORT = Number(process.env.BUS_TEST_AUTH_REDIS_PORT ?? 17051);
const PASSWORD = `pw-${process.pid}-Zq9`;
const WRONG = `wrong-${process.pid}-Xk7`;
let server: ChildProcess | undefined;

/** Runs the built `bus`; SIGKILLs it (and fails the test) if it is still running after `guardMs`. */
async function bus(args: string[], env: Record<string, string>, guardMs = 15_000) {
  if (!existsSync(DIST_BIN)) throw new Error(`${DIST_BIN} is missing: build first (pnpm build)`);
  const started = Date.now();
  const child = spawn(process.execPath, [DIST_BIN, ...args], { env: { ...process.env, TSX_TSCONFIG_PATH: TSCONFIG, BUS_TIMEOUT_MS: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => {
    stdout += d;
  });
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  let killed = false;
  const guard = setTimeout(() => {
    killed = true;
    child.kill('SIGKILL');
  }, guardMs);
  const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
  clearTimeout(guard);
  return { code, stdout, stderr, killed, ms: Date.now() - started };
}

beforeAll(async () => {
  server = spawn('redis-server', ['--port', String(PORT), '--bind', '127.0.0.1', '--requirepass', PASSWORD, '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const probe = new Redis({ port: PORT, password: PASSWORD, lazyConnect: true, retryStrategy: () => 100, maxRetriesPerRequest: 1 });
  probe.on('error', () => {});
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      await probe.connect();
      break;
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`the test redis-server on ${PORT} did not start: ${(error as Error).message}`);
      probe.disconnect();
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  probe.disconnect();
}, 20_000);

afterAll(() => {
  server?.kill('SIGTERM');
});

const COMMANDS: [string, string[]][] = [
  ['status', ['status']],
  ['publish', ['publish', 'jobs', 'job.created', '{"n":1}']],
  ['dlq list', ['dlq', 'list', 'jobs']],
  ['dlq replay', ['dlq', 'replay', 'jobs']],
];

describe('bus commands against a broker that will not serve them', () => {
  const cases: [string, Record<string, string>, RegExp][] = [
    // The driver's AuthError keeps Redis's own words; every command prints them.
    ['a wrong password', { REDIS_URL: `redis://:${WRONG}@127.0.0.1:${PORT}` }, /WRONGPASS/],
    ['no password', { REDIS_URL: `redis://127.0.0.1:${PORT}` }, /NOAUTH/],
    ['an unreachable Redis', { REDIS_URL: 'redis://127.0.0.1:1' }, /ECONNREFUSED|could not connect|exhausted|no answer/],
    ['an unreachable Kafka', { BUS_TEST_TRANSPORT: 'kafka', KAFKA_BROKERS: '127.0.0.1:1' }, /ECONNREFUSED/],
  ];
  it.each(cases)('with %s, every command ends by itself with exit 3, the reason, what to check, and no password', async (_, env, reason) => {
    const runs = await Promise.all(COMMANDS.map(async ([name, args]) => ({ name, ...(await bus([...args, '--config', CONFIG], env)) })));
    for (const r of runs) {
      const output = `${r.stdout}\n${r.stderr}`;
      expect(r.killed, `${r.name} was still running after 15 s`).toBe(false);
      expect(r.code, `${r.name}: ${output}`).toBe(EXIT.unreachable);
      expect(r.stderr, r.name).toMatch(/^bus: \[bus/m);
      expect(output, r.name).toMatch(reason);
      expect(r.stderr, r.name).toMatch(/^ {2}check: /m);
      expect(output, `${r.name} printed a password`).not.toContain(PASSWORD);
      expect(output, `${r.name} printed a password`).not.toContain(WRONG);
    }
    console.info(`${_}: ${runs.map((r) => `${r.name} exit ${r.code} in ${r.ms} ms`).join(', ')}`);
  });

  it('bus status exits non-zero when it could not read, and still prints the table with the rows it has', async () => {
    const r = await bus(['status', '--config', CONFIG], { REDIS_URL: 'redis://127.0.0.1:1' });
    expect(r.code).toBe(EXIT.unreachable);
    expect(r.stdout).toMatch(/^MODULE\s+CONSUMER\s+GROUP\s+TRANSPORT\s+TOPIC\s+LAG\s+PENDING\s+DEAD-LETTERS\s+STATE\n.*unreadable$/m);
    expect(r.stdout).toContain('1 row(s): 1 unreadable');
    expect(r.stderr).toMatch(/^bus: \[bus\/cli\] could not read 1 of 1 row\(s\) of bus status/);
  });
});

describe('exit codes', () => {
  it('1 when the config fails to evaluate, with its reason', async () => {
    const r = await bus(['status', '--config', BROKEN_CONFIG], {});
    expect(r.code, r.stderr).toBe(EXIT.error);
    expect(r.stderr).toContain('the settings service is down');
  });

  it('2 for a bad --timeout, 0 for a command that works', async () => {
    const bad = await bus(['status', '--timeout', 'soon', '--config', MEMORY_CONFIG], {});
    expect(bad.code).toBe(EXIT.usage);
    expect(bad.stderr).toContain('--timeout must be a positive integer, got "soon"');
    const ok = await bus(['publish', 'jobs', 'job.created', '{"n":1}', '--config', MEMORY_CONFIG], {});
    expect(ok.code, ok.stderr).toBe(EXIT.ok);
  });
});

describe('explain(): the broker’s own reason, from a real refusal', () => {
  it("quotes Redis's WRONGPASS / NOAUTH through the cause chain, says what to check, exit 3, and masks URL passwords", async () => {
    const refusal = async (password: string | undefined) => {
      // ioredis reports the server's refusal as an 'error' event (connect() then rejects with "Connection is closed").
      const client = new Redis({ port: PORT, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, ...(password ? { password } : {}) });
      let reported: unknown;
      client.on('error', (error) => {
        reported ??= error;
      });
      try {
        await client.connect();
        await client.xlen('jobs');
      } catch (error) {
        reported ??= error;
      } finally {
        client.disconnect();
      }
      return reported;
    };
    const wrong = await refusal(WRONG);
    const none = await refusal(undefined);
    expect(String(wrong)).toMatch(/WRONGPASS/);
    expect(String(none)).toMatch(/NOAUTH/);

    // As a driver reports it: its own error, the client's as the cause.
    const asDriver = new AuthError(`[bus/redis] Redis refused the credentials of redis://:${WRONG}@127.0.0.1:${PORT}`, { cause: wrong });
    const text = explain(asDriver);
    expect(text).toMatch(/^bus: \[bus\/redis\] Redis refused the credentials of redis:\/\/:\*\*\*@127\.0\.0\.1/);
    expect(text).toMatch(/\n {2}because: WRONGPASS/);
    expect(text).toMatch(/\n {2}check: the broker refused the credentials: check the user name and password/);
    expect(text).not.toContain(WRONG);
    expect(exitCodeOf(asDriver)).toBe(EXIT.unreachable);

    const noAuth = explain(new ConnectionError('[bus/redis] could not connect to Redis', { cause: none }));
    expect(noAuth).toMatch(/because: NOAUTH/);
    expect(noAuth).toMatch(/check: the server requires a password/);
    // What the transports logged meanwhile, for failures that carry no reason themselves.
    expect(explain(new Error('[bus/cli] no answer'), ['kafkajs: Connection error: connect ECONNREFUSED 127.0.0.1:1'])).toMatch(
      /reported: kafkajs: Connection error: connect ECONNREFUSED 127\.0\.0\.1:1\n {2}check: check the host and port/,
    );
    // A plain handler / config failure is exit 1.
    expect(exitCodeOf(new Error('boom'))).toBe(EXIT.error);
  });
});

// A stray server must not outlive a crashed run.
process.on('exit', () => {
  try {
    if (server?.pid) execFileSync('kill', ['-9', String(server.pid)]);
  } catch {
    // gone
  }
});
