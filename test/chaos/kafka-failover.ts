/**
 * Kafka leader failover: a 3-node KRaft cluster of scripts/kafka.sh on the caller's ports, a topic with
 * RF 3, min.insync.replicas 2, 3 partitions, producer acks -1 (idempotent). A publisher writes
 * `messages` keyed messages (50 keys, each with its own sequence), retrying each failed publish until it
 * resolves ok; two consumer PROCESSES of one group handle them. The broker leading most partitions is
 * SIGKILLed at 30 % and, after it came back, the new leader at 65 %. Reports lost acknowledged
 * publishes, duplicates, per-key order among the first handlings, and how long publishing was out.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { jsonCodec } from '@bus/core';
import { kafka } from '@bus/kafka';
import type { ChaosRow } from './row.js';

const exec = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const SCRIPT = fileURLToPath(new URL('../../scripts/kafka.sh', import.meta.url));
const CONSUMER = fileURLToPath(new URL('./kafka-consumer.ts', import.meta.url));
const debug = (...args: unknown[]) => {
  if (process.env.BUS_CHAOS_DEBUG) console.error(`[chaos ${new Date().toISOString().slice(11, 23)}]`, ...args);
};

export async function kafkaFailover(options: { base: number; controllerBase: number; messages: number; deadlineMs: number; runDir?: string }): Promise<ChaosRow> {
  const started = Date.now();
  const deadline = started + options.deadlineMs;
  const runDir = options.runDir ?? mkdtempSync(join(tmpdir(), 'bus-chaos-kafka-'));
  // Every variable explicit: the script's defaults are the shared broker's.
  const env = {
    ...process.env,
    BUS_KAFKA_RUN_DIR: runDir,
    BUS_KAFKA_CLUSTER_PORT_BASE: String(options.base),
    BUS_KAFKA_CLUSTER_CONTROLLER_PORT_BASE: String(options.controllerBase),
    BUS_KAFKA_HEAP_OPTS: process.env.BUS_KAFKA_HEAP_OPTS ?? '-Xmx384m -Xms128m',
  };
  const script = (...args: string[]) => exec('bash', [SCRIPT, ...args], { env, timeout: 180_000 });
  const brokers = [0, 1, 2].map((i) => `127.0.0.1:${options.base + i}`);
  await script('start', '3');
  const topic = `chaos-kafka-${randomUUID().slice(0, 6)}`;
  const group = `chaos-${randomUUID().slice(0, 6)}`;
  const codec = jsonCodec();
  const publisher = kafka({ brokers, clientId: 'chaos-publisher', topics: { replicationFactor: 3, minInsyncReplicas: 2, partitions: 3 } });
  const consumers: ChildProcess[] = [];
  const handled = new Map<number, number>();
  const lastSeq = new Map<string, number>();
  let orderViolations = 0;
  const publishedOk = new Set<number>();
  let failedPublishes = 0;
  let lastFailedAt = 0;
  const kills: { at: number; broker: number; leaderMovedMs: number }[] = [];
  const notes: string[] = [];
  const leaders = async (): Promise<Map<number, number>> => {
    const { stdout } = await exec('kcat', ['-b', brokers.join(','), '-L', '-t', topic, '-m', '5'], { timeout: 10_000 }).catch(() => ({ stdout: '' }));
    const out = new Map<number, number>();
    for (const m of stdout.matchAll(/partition (\d+), leader (-?\d+)/g)) out.set(Number(m[1]), Number(m[2]));
    return out;
  };
  try {
    // The topic exists before the consumers join (created by a first publish).
    await publisher.publish(topic, []);
    for (const name of ['p1', 'p2']) {
      const child = spawn(process.execPath, ['--import', 'tsx', CONSUMER, brokers.join(','), topic, group, name], { stdio: ['pipe', 'pipe', 'inherit'], env });
      consumers.push(child);
      const ready = new Promise<void>((resolve) => {
        createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
          const m = JSON.parse(line) as { ready?: string; n: number; key: string; seq: number };
          if (m.ready) return resolve();
          const count = handled.get(m.n) ?? 0;
          handled.set(m.n, count + 1);
          if (count === 0) {
            if (m.seq < (lastSeq.get(m.key) ?? -1)) orderViolations++;
            else lastSeq.set(m.key, m.seq);
          }
        });
      });
      await Promise.race([ready, sleep(60_000)]);
    }
    // Resolves once the broker is SIGKILLed; the returned promise (leaders moved, broker restarted) runs on.
    const kill = async (): Promise<Promise<void>> => {
      const byLeader = new Map<number, number>();
      for (const leader of (await leaders()).values()) byLeader.set(leader, (byLeader.get(leader) ?? 0) + 1);
      const broker = [...byLeader.entries()].sort((a, b) => b[1] - a[1])[0]?.[0];
      if (broker === undefined || broker < 1) throw new Error('no partition leader found');
      const at = Date.now();
      debug('SIGKILL of broker', broker);
      await script('kill-node', String(broker));
      return (async () => {
        let moved = 0;
        while (Date.now() - at < 60_000) {
          const now = await leaders();
          if (now.size > 0 && [...now.values()].every((l) => l !== broker && l >= 0)) {
            moved = Date.now() - at;
            break;
          }
          await sleep(250);
        }
        kills.push({ at, broker, leaderMovedMs: moved });
        debug('leaders moved after', moved, 'ms; restarting', broker);
        await script('start-node', String(broker));
        debug('broker back', broker);
      })();
    };
    const batch = 100;
    const keys = 50;
    const seqs = new Array<number>(keys).fill(0);
    const killAt = [Math.floor(options.messages * 0.3), Math.floor(options.messages * 0.65)];
    let recovering: Promise<void> | undefined;
    for (let i = 0; i < options.messages && Date.now() < deadline; i += batch) {
      if (killAt.length > 0 && i >= (killAt[0] as number)) {
        killAt.shift();
        // The second kill waits for the first broker to be back (RF 3, min ISR 2: one broker down at a time).
        await recovering;
        recovering = kill()
          .then((rest) => rest)
          .catch((error) => {
            notes.push(`kill failed: ${(error as Error).message}`);
          });
        // Publishing goes on while the leaders move; only the SIGKILL itself is awaited.
        await Promise.race([recovering, sleep(3000)]);
      }
      const records = Array.from({ length: Math.min(batch, options.messages - i) }, (_, j) => {
        const n = i + j;
        const k = n % keys;
        const seq = seqs[k] ?? 0;
        seqs[k] = seq + 1;
        return { n, record: { ...codec.encode({ id: `m-${n}`, event: 'chaos', payload: { n, seq }, publishedAt: Date.now(), headers: {} }), key: `k${k}` } };
      });
      // Per-key order: a batch is retried whole, in order, until every record of it resolved ok.
      let pending = records;
      while (pending.length > 0 && Date.now() < deadline) {
        const results = await publisher.publish(
          topic,
          pending.map((p) => p.record),
        );
        const failed = pending.filter((_, j) => !results[j]?.ok);
        for (const [j, p] of pending.entries()) if (results[j]?.ok) publishedOk.add(p.n);
        if (failed.length > 0) {
          failedPublishes += failed.length;
          lastFailedAt = Date.now();
          if (failedPublishes % 1000 < failed.length) debug('publish failed', i, results.find((r) => !r.ok));
          await sleep(200);
        }
        pending = failed;
      }
    }
    await Promise.race([recovering, sleep(Math.max(0, deadline - Date.now()))]);
    debug('publishing done', { ok: publishedOk.size, handled: handled.size });
    while (Date.now() < deadline && [...publishedOk].some((n) => !handled.has(n))) await sleep(250);
  } finally {
    for (const child of consumers) child.kill('SIGTERM');
    await Promise.all(consumers.map((c) => Promise.race([new Promise((r) => c.once('exit', r)), sleep(15_000)])));
    for (const child of consumers) if (child.exitCode === null) child.kill('SIGKILL');
    await Promise.race([publisher.close(), sleep(10_000)]);
    await script('stop').catch((error) => console.error(`chaos: could not stop Kafka: ${(error as Error).message}`));
    if (!options.runDir) rmSync(runDir, { recursive: true, force: true });
  }
  const lost = [...publishedOk].filter((n) => !handled.has(n)).length;
  let duplicates = 0;
  for (const count of handled.values()) duplicates += count - 1;
  const firstKill = kills[0]?.at ?? 0;
  return {
    scenario: 'kafka 3 brokers RF3 minISR2 acks -1: leader SIGKILL x2, 2 consumer processes',
    messages: options.messages,
    publishedOk: publishedOk.size,
    handled: handled.size,
    lost,
    duplicates,
    deadLettered: 0,
    // Publishes that kafkajs retried itself never failed: then the time until every leader had moved.
    recoverMs: lastFailedAt > 0 && firstKill > 0 ? lastFailedAt - firstKill : Math.max(0, ...kills.map((k) => k.leaderMovedMs)),
    detail: `leaders moved after ${kills.map((k) => `${k.leaderMovedMs} ms (broker ${k.broker})`).join(', ')}; ${failedPublishes} publish attempts failed and were retried; per-key order violations among first handlings: ${orderViolations}${notes.length ? `; ${notes.join('; ')}` : ''}`,
    seconds: (Date.now() - started) / 1000,
  };
}
