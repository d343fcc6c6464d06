/**
 * Redis failover scenarios: a publisher writes `messages` numbered messages (retrying each failed publish
 * until it resolves ok), two consumers of one group handle them, and the master of the stream is
 * SIGKILLed twice-free once, at `killAt` of the run, then started again as a replica. Every publish that
 * resolved ok must be handled at least once.
 */
import { randomUUID } from 'node:crypto';
import { jsonCodec } from '@bus/core';
import { type RedisStreamOptions, type RedisStreamTransport, redisStream } from '@bus/redis-stream';
import { type ClusterTopology, type SentinelTopology, sleep, startClusterWithReplicas, startSentinel } from './redis-topology.js';
import type { ChaosRow } from './row.js';

const codec = jsonCodec();
const debug = (...args: unknown[]) => {
  if (process.env.BUS_CHAOS_DEBUG) console.error(`[chaos ${new Date().toISOString().slice(11, 23)}]`, ...args);
};
const record = (n: number) => codec.encode({ id: `m-${n}`, event: 'chaos', payload: { n }, publishedAt: Date.now(), headers: {} });

export interface FailoverRun {
  scenario: string;
  messages: number;
  /** Fraction of the run at which the master is killed. @default 0.4 */
  killAt?: number;
  /** Deadline of the whole run, in ms. */
  deadlineMs: number;
  options: RedisStreamOptions;
  /** Kills the master of `key`; returns the promoted port and how long the failover took. */
  kill(key: string): Promise<{ killedPort: number; failoverMs: number }>;
  revive(port: number): Promise<void>;
}

export async function runFailover(run: FailoverRun): Promise<ChaosRow> {
  const started = Date.now();
  const deadline = started + run.deadlineMs;
  const topic = `{chaos}.failover-${randomUUID().slice(0, 6)}`;
  const keyPrefix = 'bus-chaos:';
  const key = `${keyPrefix}${topic}`;
  const common: RedisStreamOptions = { keyPrefix, claimIdleMs: 2000, claimIntervalMs: 500, commandTimeoutMs: 2000, connectTimeoutMs: 2000, ...run.options };
  const transports: RedisStreamTransport[] = [];
  const make = () => {
    const t = redisStream(common);
    transports.push(t);
    return t;
  };
  const handled = new Map<number, number>();
  const publishedOk = new Set<number>();
  let killedAt = 0;
  let lastFailedAt = 0;
  let failoverMs = 0;
  let failedPublishes = 0;
  const notes: string[] = [];
  try {
    const publisher = make();
    const subs = await Promise.all(
      ['c1', 'c2'].map((name) =>
        make().subscribe({ group: 'chaos', topics: [topic], batchSize: 100, pollIntervalMs: 200, startFrom: 'earliest', consumerName: name }, async (batch) => {
          for (const m of batch) {
            const n = (codec.decode(m).payload as { n: number }).n;
            handled.set(n, (handled.get(n) ?? 0) + 1);
            m.ack();
          }
        }),
      ),
    );
    const batch = 50;
    const killIndex = Math.floor(run.messages * (run.killAt ?? 0.4));
    let killing: Promise<void> | undefined;
    for (let i = 0; i < run.messages && Date.now() < deadline; i += batch) {
      if (!killing && i >= killIndex) {
        killing = (async () => {
          killedAt = Date.now();
          debug('killing the master at message', i);
          const killed = await run.kill(key);
          failoverMs = killed.failoverMs;
          debug('failover done', killed);
          // The old master comes back (empty) as a replica: WAIT has a replica to count again.
          await run.revive(killed.killedPort);
          debug('old master revived');
        })().catch((error) => {
          notes.push(`kill failed: ${(error as Error).message}`);
        });
      }
      let pending = Array.from({ length: Math.min(batch, run.messages - i) }, (_, j) => i + j);
      while (pending.length > 0 && Date.now() < deadline) {
        const results = await publisher.publish(topic, pending.map(record));
        if (results.some((r) => !r.ok) && failedPublishes % 500 === 0) debug('publish failed', i, results.find((r) => !r.ok));
        const failed: number[] = [];
        results.forEach((r, j) => {
          const n = pending[j] as number;
          if (r.ok) publishedOk.add(n);
          else failed.push(n);
        });
        if (failed.length > 0 && killedAt > 0) lastFailedAt = Date.now();
        failedPublishes += failed.length;
        pending = failed;
        if (failed.length > 0) await sleep(100);
      }
    }
    debug('publishing done', { ok: publishedOk.size, handled: handled.size });
    await killing;
    // Wait for every acknowledged publish to be handled (bounded by the run's deadline).
    while (Date.now() < deadline && [...publishedOk].some((n) => !handled.has(n))) await sleep(200);
    debug('handled', handled.size);
    const closed = await Promise.race([Promise.all(subs.map((s) => s.close())).then(() => true), sleep(15_000).then(() => false)]);
    if (!closed) notes.push('a subscription did not close within 15 s');
    debug('subscriptions closed', closed);
  } finally {
    await Promise.race([Promise.allSettled(transports.map((t) => t.close())), sleep(15_000)]);
  }
  const lost = [...publishedOk].filter((n) => !handled.has(n)).length;
  let duplicates = 0;
  for (const count of handled.values()) duplicates += count - 1;
  return {
    scenario: run.scenario,
    messages: run.messages,
    publishedOk: publishedOk.size,
    handled: handled.size,
    lost,
    duplicates,
    deadLettered: 0,
    recoverMs: lastFailedAt > 0 ? lastFailedAt - killedAt : 0,
    detail: `failover ${failoverMs} ms; ${failedPublishes} publish attempts failed and were retried${notes.length ? `; ${notes.join('; ')}` : ''}`,
    seconds: (Date.now() - started) / 1000,
  };
}

/** Redis Sentinel: 1 master + 1 replica + 3 sentinels on base … base+4, waitReplicas 1. */
export async function sentinelFailover(options: { base: number; messages: number; deadlineMs: number; waitReplicas?: number }): Promise<ChaosRow> {
  const topology: SentinelTopology = await startSentinel(options.base);
  try {
    return await runFailover({
      scenario: `redis sentinel: master SIGKILL (waitReplicas ${options.waitReplicas ?? 1})`,
      messages: options.messages,
      deadlineMs: options.deadlineMs,
      options: { sentinel: { sentinels: topology.sentinels, name: topology.name }, waitReplicas: options.waitReplicas ?? 1, waitTimeoutMs: 1000 },
      kill: () => topology.killMaster(),
      revive: (port) => topology.revive(port),
    });
  } finally {
    await topology.dispose();
  }
}

/** Redis Cluster 3 masters + 3 replicas on base … base+5, waitReplicas 1. */
export async function clusterFailover(options: { base: number; messages: number; deadlineMs: number; waitReplicas?: number }): Promise<ChaosRow> {
  const topology: ClusterTopology = await startClusterWithReplicas(options.base);
  try {
    return await runFailover({
      scenario: `redis cluster 3+3: master SIGKILL (waitReplicas ${options.waitReplicas ?? 1})`,
      messages: options.messages,
      deadlineMs: options.deadlineMs,
      options: { cluster: { nodes: topology.nodes }, waitReplicas: options.waitReplicas ?? 1, waitTimeoutMs: 1000 },
      kill: (key) => topology.killMasterOf(key),
      revive: (port) => topology.revive(port),
    });
  } finally {
    await topology.dispose();
  }
}
