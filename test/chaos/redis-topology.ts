/**
 * Redis topologies of our own for the fault scenarios, on loopback ports given by the caller, never the
 * shared ones: 1 master + 1 replica + 3 sentinels, and a Redis Cluster of 3 masters + 3 replicas
 * (scripts/redis-cluster.sh with BUS_REDIS_CLUSTER_REPLICAS=1). Every wait is bounded.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const exec = promisify(execFile);
const HOST = '127.0.0.1';
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function cli(port: number, ...args: string[]): Promise<string> {
  try {
    return (await exec('redis-cli', ['-h', HOST, '-p', String(port), ...args], { timeout: 5000 })).stdout.trim();
  } catch {
    return '';
  }
}

export async function waitUntil(what: string, ok: () => Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(100);
  }
}

/** 1 master + 1 replica + 3 sentinels (quorum 2) on base … base+4. */
export interface SentinelTopology {
  name: string;
  sentinels: { host: string; port: number }[];
  /** The port of the current master, as the sentinels say. */
  masterPort(): Promise<number | undefined>;
  /** SIGKILL of the current master; resolves once a sentinel names another master (bounded). */
  killMaster(): Promise<{ killedPort: number; promotedPort: number; failoverMs: number }>;
  /** Starts a killed server again (it comes back as a replica of the new master). */
  revive(port: number): Promise<void>;
  dispose(): Promise<void>;
}

export async function startSentinel(base: number): Promise<SentinelTopology> {
  const dir = mkdtempSync(join(tmpdir(), 'bus-chaos-sentinel-'));
  const name = 'busmaster';
  const servers = new Map<number, ChildProcess>();
  const sentinelProcs: ChildProcess[] = [];
  const master = base;
  const replica = base + 1;
  const startServer = async (port: number, replicaOf?: number) => {
    const args = ['--port', String(port), '--bind', HOST, '--protected-mode', 'no', '--save', '', '--appendonly', 'no', '--dir', dir, '--dbfilename', `dump-${port}.rdb`];
    if (replicaOf) args.push('--replicaof', HOST, String(replicaOf));
    servers.set(port, spawn('redis-server', args, { stdio: 'ignore' }));
    await waitUntil(`redis-server on ${port}`, async () => (await cli(port, 'PING')) === 'PONG', 10_000);
  };
  await startServer(master);
  await startServer(replica, master);
  await waitUntil('the replica to sync', async () => (await cli(replica, 'INFO', 'replication')).includes('master_link_status:up'), 15_000);
  const sentinelPorts = [base + 2, base + 3, base + 4];
  for (const port of sentinelPorts) {
    const conf = join(dir, `sentinel-${port}.conf`);
    writeFileSync(
      conf,
      [
        `port ${port}`,
        `bind ${HOST}`,
        'protected-mode no',
        `dir ${dir}`,
        `sentinel monitor ${name} ${HOST} ${master} 2`,
        `sentinel down-after-milliseconds ${name} 1000`,
        `sentinel failover-timeout ${name} 5000`,
        `sentinel parallel-syncs ${name} 1`,
        '',
      ].join('\n'),
    );
    sentinelProcs.push(spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' }));
  }
  for (const port of sentinelPorts) {
    await waitUntil(`sentinel on ${port} to see the replica`, async () => /num-slaves\n1/.test(await cli(port, 'SENTINEL', 'MASTER', name)), 15_000);
  }
  const masterPort = async () => {
    for (const port of sentinelPorts) {
      const reply = (await cli(port, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name)).split('\n');
      if (reply[1]) return Number(reply[1]);
    }
    return undefined;
  };
  const killProcess = async (child: ChildProcess | undefined) => {
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await Promise.race([exited, sleep(5000)]);
  };
  return {
    name,
    sentinels: sentinelPorts.map((port) => ({ host: HOST, port })),
    masterPort,
    async killMaster() {
      const killedPort = (await masterPort()) as number;
      const started = Date.now();
      await killProcess(servers.get(killedPort));
      let promotedPort = killedPort;
      await waitUntil(
        'the sentinels to promote the replica',
        async () => {
          promotedPort = (await masterPort()) ?? killedPort;
          return promotedPort !== killedPort && (await cli(promotedPort, 'ROLE')).startsWith('master');
        },
        30_000,
      );
      return { killedPort, promotedPort, failoverMs: Date.now() - started };
    },
    async revive(port: number) {
      const current = await masterPort();
      await startServer(port, current && current !== port ? current : undefined);
    },
    async dispose() {
      await Promise.all([...servers.values(), ...sentinelProcs].map(killProcess));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const SCRIPT = fileURLToPath(new URL('../../scripts/redis-cluster.sh', import.meta.url));

/** 3 masters + 3 replicas through scripts/redis-cluster.sh, on base … base+5 (cluster bus: port + 100). */
export interface ClusterTopology {
  nodes: { host: string; port: number }[];
  /** The master port that serves `key`'s slot now. */
  masterOf(key: string, skip?: number): Promise<number | undefined>;
  /** SIGKILL of a node; resolves once another node serves its slots as master (bounded). */
  killMasterOf(key: string): Promise<{ killedPort: number; promotedPort: number; failoverMs: number }>;
  revive(port: number): Promise<void>;
  dispose(): Promise<void>;
}

export async function startClusterWithReplicas(base: number): Promise<ClusterTopology> {
  const dir = mkdtempSync(join(tmpdir(), 'bus-chaos-cluster-'));
  // Every variable explicit: this script must never act on the shared cluster's defaults.
  const env = {
    ...process.env,
    BUS_REDIS_CLUSTER_PORT_BASE: String(base),
    BUS_REDIS_CLUSTER_NODES: '3',
    BUS_REDIS_CLUSTER_REPLICAS: '1',
    BUS_REDIS_CLUSTER_NODE_TIMEOUT: '2000',
    BUS_REDIS_CLUSTER_BUS_OFFSET: '100',
    BUS_REDIS_CLUSTER_DIR: dir,
  };
  const script = (...args: string[]) => exec('bash', [SCRIPT, ...args], { env, timeout: 60_000 });
  await script('start');
  const ports = Array.from({ length: 6 }, (_, i) => base + i);
  // A replica that has not synced once cannot be elected: wait for every link.
  for (const port of ports) {
    await waitUntil(
      `node ${port} to be a master or a synced replica`,
      async () => {
        const info = await cli(port, 'INFO', 'replication');
        return info.includes('role:master') || info.includes('master_link_status:up');
      },
      30_000,
    );
  }
  const masterOf = async (key: string, skip?: number) => {
    let slot = Number.NaN;
    for (const port of ports) if (Number.isNaN(slot) && port !== skip) slot = Number((await cli(port, 'CLUSTER', 'KEYSLOT', key)) || Number.NaN);
    for (const port of ports) {
      if (port === skip) continue;
      const lines = (await cli(port, 'CLUSTER', 'NODES')).split('\n');
      for (const line of lines) {
        const parts = line.split(' ');
        if (!parts[2]?.includes('master') || parts[2].includes('fail') || parts[7] !== 'connected') continue;
        for (const range of parts.slice(8)) {
          const [from, to] = range.split('-').map(Number);
          if (from !== undefined && slot >= from && slot <= (to ?? from)) return Number(parts[1]?.split(':')[1]?.split('@')[0]);
        }
      }
      if (lines.length > 1) break;
    }
    return undefined;
  };
  return {
    nodes: ports.map((port) => ({ host: HOST, port })),
    masterOf,
    async killMasterOf(key: string) {
      const killedPort = (await masterOf(key)) as number;
      const started = Date.now();
      await script('kill9', String(killedPort));
      let promotedPort = killedPort;
      await waitUntil(
        'a replica to take over the slot',
        async () => {
          const port = await masterOf(key, killedPort);
          if (port === undefined || port === killedPort) return false;
          promotedPort = port;
          return (await cli(port, 'ROLE')).startsWith('master');
        },
        30_000,
      );
      return { killedPort, promotedPort, failoverMs: Date.now() - started };
    },
    async revive(port: number) {
      await script('revive', String(port));
      await waitUntil(`node ${port}`, async () => (await cli(port, 'PING')) === 'PONG', 10_000);
    },
    async dispose() {
      await script('stop').catch((error) => console.error(`chaos: could not stop the cluster: ${(error as Error).message}`));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
