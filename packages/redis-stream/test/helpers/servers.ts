import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { freePort } from '@bus/core/testing';

const run = promisify(execFile);

/** The shared Redis of the test environment; never stopped by the tests. */
export const SHARED_REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

export interface RedisServer {
  port: number;
  url: string;
  /** Graceful stop (SIGTERM: the AOF is flushed) or a crash (SIGKILL). */
  stop(signal?: 'SIGTERM' | 'SIGKILL'): Promise<void>;
  start(): Promise<void>;
  /** Stop, wait `downMs`, start again with the same data. */
  restart(options?: { signal?: 'SIGTERM' | 'SIGKILL'; downMs?: number }): Promise<void>;
  /** Stops for good and deletes the data directory. */
  dispose(): Promise<void>;
}

/**
 * A private redis-server on a free loopback port with AOF persistence (`appendfsync always`, so even a
 * SIGKILL loses no acknowledged write), for restart and crash tests.
 */
export async function startRedisServer(fixedPort?: number): Promise<RedisServer> {
  const port = fixedPort ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), 'bus-redis-test-'));
  let child: ChildProcess | undefined;

  const start = async () => {
    child = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--dir', dir, '--protected-mode', 'no'],
      { stdio: 'ignore' },
    );
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (await ping(port)) return;
      if (Date.now() > deadline) throw new Error(`redis-server on ${port} did not start`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const stop = async (signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM') => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => c.once('exit', () => resolve()));
    c.kill(signal);
    const timer = setTimeout(() => c.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };
  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    stop,
    start,
    async restart({ signal = 'SIGTERM', downMs = 300 } = {}) {
      await stop(signal);
      await new Promise((r) => setTimeout(r, downMs));
      await start();
    },
    async dispose() {
      await stop('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function ping(port: number): Promise<boolean> {
  const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
  client.on('error', () => {});
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

const SCRIPT = fileURLToPath(new URL('../../../../scripts/redis-cluster.sh', import.meta.url));

/**
 * Makes sure the local 3-master cluster of scripts/redis-cluster.sh runs. Returns its nodes and
 * whether this call started it (then the caller stops it).
 */
export async function ensureCluster(): Promise<{ nodes: { host: string; port: number }[]; startedHere: boolean }> {
  let startedHere = false;
  try {
    await run('bash', [SCRIPT, 'status'], { timeout: 20_000 });
  } catch {
    await run('bash', [SCRIPT, 'start'], { timeout: 60_000 });
    startedHere = true;
  }
  const { stdout } = await run('bash', [SCRIPT, 'nodes'], { timeout: 10_000 });
  const nodes = stdout
    .trim()
    .split(',')
    .map((address) => {
      const [host, port] = address.split(':');
      return { host: host as string, port: Number(port) };
    });
  return { nodes, startedHere };
}

export async function stopCluster(): Promise<void> {
  await run('bash', [SCRIPT, 'stop'], { timeout: 60_000 });
}

/** Deletes every key matching `pattern` on a standalone server or on each master of a cluster. */
export async function deleteKeys(nodes: { host: string; port: number }[], pattern: string): Promise<number> {
  let deleted = 0;
  for (const node of nodes) {
    const client = new Redis({ ...node, lazyConnect: true, maxRetriesPerRequest: 1 });
    client.on('error', () => {});
    try {
      await client.connect();
      let cursor = '0';
      do {
        const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        cursor = next;
        // One key per DEL: in a cluster the keys of one node span many slots.
        for (const key of keys) deleted += await client.del(key);
      } while (cursor !== '0');
    } catch {
      // The node is gone already: nothing to clean.
    } finally {
      client.disconnect();
    }
  }
  return deleted;
}

export function nodeOf(url: string): { host: string; port: number } {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port || 6379) };
}
