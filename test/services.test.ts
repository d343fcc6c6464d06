import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '@bus/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from './chaos/redis-topology.js';

const SERVICES = fileURLToPath(new URL('../scripts/services.sh', import.meta.url));
const CLUSTER = fileURLToPath(new URL('../scripts/redis-cluster.sh', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'bus-services-'));

/** A program that is neither Kafka nor Redis, holding a port: it answers every connection with junk. */
let impostor: Server;
let heldPort: number;
const sockets = new Set<Socket>();

beforeAll(async () => {
  heldPort = await freePort();
  impostor = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
    socket.end('HTTP/1.1 400 Bad Request\r\n\r\n');
  });
  await new Promise<void>((resolve) => impostor.listen(heldPort, '127.0.0.1', resolve));
});

afterAll(async () => {
  // Whatever a failed test left running: our Kafka and redis-server only (own run and state dirs).
  await services(['down', 'kafka', 'redis'], {}).catch(() => {});
  for (const socket of sockets) socket.destroy();
  await new Promise((resolve) => impostor.close(resolve));
  rmSync(work, { recursive: true, force: true });
});

/** Runs `scripts/services.sh ARGS` with its state, env file and Kafka run dir in this test's folder. */
function services(args: string[], env: Record<string, string>): Promise<{ code: number; stderr: string; env: Record<string, string> }> {
  const envFile = join(work, 'services.env');
  const childEnv: NodeJS.ProcessEnv = { ...process.env };
  // The caller's own choices would decide for the script: the test sets what it means to.
  for (const k of ['REDIS_URL', 'KAFKA_BROKERS', 'BUS_REDIS_PORT', 'BUS_KAFKA_PORT', 'BUS_KAFKA_CONTROLLER_PORT']) delete childEnv[k];
  Object.assign(childEnv, {
    BUS_SERVICES_ENV: envFile,
    BUS_SERVICES_DIR: join(work, 'state'),
    BUS_KAFKA_RUN_DIR: join(work, 'kafka'),
    BUS_KAFKA_HEAP_OPTS: '-Xmx256m -Xms128m',
    BUS_KAFKA_JVM_OPTS: '-XX:+UseSerialGC -XX:TieredStopAtLevel=1',
    ...env,
  });
  return new Promise((resolve) => {
    execFile('bash', [SERVICES, ...args], { env: childEnv, timeout: 150_000 }, (error, _stdout, stderr) => {
      let written: Record<string, string> = {};
      try {
        written = Object.fromEntries(
          readFileSync(envFile, 'utf8')
            .split('\n')
            .filter(Boolean)
            .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
        );
      } catch {}
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stderr, env: written });
    });
  });
}

/** A pid no process has (above Linux's pid_max of 2^22). */
const DEAD_PID = 4_194_305;

function kcatBrokers(bootstrap: string): Promise<string> {
  return new Promise((resolve) => {
    execFile('kcat', ['-L', '-b', bootstrap, '-m', '5'], { timeout: 15_000 }, (_error, stdout) => resolve(stdout));
  });
}

describe('scripts/services.sh, the first half of the test command', () => {
  it('starts its own Kafka on free ports when another program holds the port it wants, and says so', async () => {
    const controller = await freePort();
    const up = await services(['up', 'kafka'], { BUS_KAFKA_PORT: String(heldPort), BUS_KAFKA_CONTROLLER_PORT: String(controller) });
    expect(up.code, up.stderr).toBe(0);
    expect(up.stderr).toContain(`127.0.0.1:${heldPort} (wanted for Kafka) is held by another program; using free port`);
    const bootstrap = up.env.KAFKA_BROKERS as string;
    expect(bootstrap).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(bootstrap).not.toBe(`127.0.0.1:${heldPort}`);
    expect(up.stderr).toContain(`services: kafka: started Kafka (scripts/kafka.sh) on ${bootstrap}, controller on 127.0.0.1:${controller}`);
    expect(up.stderr).not.toContain(`kafka 127.0.0.1:9092 ready`);
    expect(await kcatBrokers(bootstrap)).toMatch(/1 brokers:\s+broker 1 at 127\.0\.0\.1:\d+/);

    // Again: it finds the broker it started (the ports are remembered), and starts nothing.
    const again = await services(['up', 'kafka'], {});
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toContain(`services: kafka: ${bootstrap} already running (started by scripts/kafka.sh earlier)`);
    expect(again.env.KAFKA_BROKERS).toBe(bootstrap);

    // The machine's processes end with the session, their files stay (CI runs on that machine): a broker
    // killed with SIGKILL whose pid file names a process that no longer exists is started again.
    const pidFile = join(work, 'kafka', 'node-1', 'kafka.pid');
    process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGKILL');
    writeFileSync(pidFile, `${DEAD_PID}\n`);
    await waitUntil('the killed broker to stop answering', async () => !(await kcatBrokers(bootstrap)).includes('brokers:'), 10_000);
    const restarted = await services(['up', 'kafka'], { BUS_KAFKA_CONTROLLER_PORT: String(await freePort()) });
    expect(restarted.code, restarted.stderr).toBe(0);
    expect(restarted.stderr).toMatch(/services: kafka: started Kafka \(scripts\/kafka\.sh\) on 127\.0\.0\.1:\d+/);
    expect(await kcatBrokers(restarted.env.KAFKA_BROKERS as string)).toMatch(/1 brokers:/);

    const down = await services(['down', 'kafka'], {});
    expect(down.code, down.stderr).toBe(0);
    expect(await kcatBrokers(restarted.env.KAFKA_BROKERS as string)).not.toContain('brokers:');
  }, 240_000);

  it('uses the Kafka that KAFKA_BROKERS names, and refuses one that does not answer as Kafka', async () => {
    const shared = process.env.KAFKA_BROKERS ?? '127.0.0.1:9092';
    const ok = await services(['up', 'kafka'], { KAFKA_BROKERS: shared });
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stderr).toContain(`services: kafka: using KAFKA_BROKERS=${shared} (answers metadata requests)`);
    expect(ok.env.KAFKA_BROKERS).toBe(shared);

    const bad = await services(['up', 'kafka'], { KAFKA_BROKERS: `127.0.0.1:${heldPort}` });
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain(`services: ERROR: KAFKA_BROKERS=127.0.0.1:${heldPort} does not answer a Kafka metadata request`);
  }, 60_000);

  it('starts its own redis-server on a free port when another program holds the Redis port, and uses REDIS_URL when told', async () => {
    const up = await services(['up', 'redis'], { BUS_REDIS_PORT: String(heldPort) });
    expect(up.code, up.stderr).toBe(0);
    expect(up.stderr).toContain(`127.0.0.1:${heldPort} (wanted for Redis) is held by another program; using free port`);
    const url = up.env.REDIS_URL as string;
    expect(url).toMatch(/^redis:\/\/127\.0\.0\.1:\d+$/);
    expect(url).not.toBe(`redis://127.0.0.1:${heldPort}`);
    expect(up.stderr).toMatch(/services: redis: started redis-server on 127\.0\.0\.1:\d+ \(pid \d+/);

    const told = await services(['up', 'redis'], { REDIS_URL: url });
    expect(told.stderr).toContain(`services: redis: using REDIS_URL=${url} (answers PING)`);
    const bad = await services(['up', 'redis'], { REDIS_URL: `redis://127.0.0.1:${heldPort}` });
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain(`services: ERROR: REDIS_URL=redis://127.0.0.1:${heldPort} does not answer PING`);

    const down = await services(['down', 'redis'], {});
    expect(down.stderr).toMatch(/services: redis: stopped the redis-server of this script \(pid \d+\)/);
  }, 60_000);

  it('starts the Redis Cluster again when its processes are gone and their files are left (killed, or a new session on the same machine)', async () => {
    const base = 18421; // and 18521-18523 for the cluster bus: no other test uses these
    const env = {
      ...process.env,
      BUS_REDIS_CLUSTER_PORT_BASE: String(base),
      BUS_REDIS_CLUSTER_NODES: '3',
      BUS_REDIS_CLUSTER_REPLICAS: '0',
      BUS_REDIS_CLUSTER_BUS_OFFSET: '100',
      BUS_REDIS_CLUSTER_DIR: join(work, 'cluster'),
    };
    const cluster = (...args: string[]) =>
      new Promise<{ code: number; stderr: string }>((resolve) => {
        execFile('bash', [CLUSTER, ...args], { env, timeout: 60_000 }, (error, _stdout, stderr) =>
          resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stderr }),
        );
      });
    try {
      const first = await cluster('start');
      expect(first.code, first.stderr).toBe(0);
      for (const port of [base, base + 1, base + 2]) {
        const pidFile = join(work, 'cluster', String(port), 'redis.pid');
        process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGKILL');
        writeFileSync(pidFile, `${DEAD_PID}\n`);
      }
      await waitUntil('the killed cluster to be unhealthy', async () => (await cluster('status')).code !== 0, 10_000);
      // Before: the nodes came back on their old nodes.conf and `redis-cli --cluster create` refused them
      // ("Node … is not empty"), so `pnpm test` failed in its first second.
      const again = await cluster('start');
      expect(again.code, again.stderr).toBe(0);
      expect(again.stderr).toContain('removing the files of a cluster that no longer runs');
      expect((await cluster('status')).code).toBe(0);
    } finally {
      await cluster('stop');
    }
  }, 120_000);
});

