/**
 * Kafka fault scenarios on a single node of their own (scripts/kafka.sh with BUS_KAFKA_PORT,
 * BUS_KAFKA_CONTROLLER_PORT and a run dir of its own, small heap), topic of 3 partitions, RF 1:
 * - kafkaBrokerRestart: the broker is SIGKILLed at 40 % of the publishes and started again on its data;
 * - kafkaConsumerCrash: consumer processes of one group SIGKILLed `kills` times while they work through
 *   `messages` published up front;
 * - kafkaMalformed: records no codec expects, written by kcat among good ones.
 * Consumers are processes of test/chaos/kafka-consumer.ts.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createBus, DLQ_HEADER, jsonCodec } from '@bus/core';
import { kafka } from '@bus/kafka';
import { spawnJsonLines, stopProcess } from './child.js';
import { sleep } from './redis-topology.js';
import { type ChaosRow, tally } from './row.js';

const exec = promisify(execFile);
const SCRIPT = fileURLToPath(new URL('../../scripts/kafka.sh', import.meta.url));
const CONSUMER = fileURLToPath(new URL('./kafka-consumer.ts', import.meta.url));
const codec = jsonCodec();

interface Node {
  brokers: string[];
  env: NodeJS.ProcessEnv;
  script(...args: string[]): Promise<unknown>;
  dispose(): Promise<void>;
}

async function startNode(port: number, controllerPort: number): Promise<Node> {
  const runDir = mkdtempSync(join(tmpdir(), 'bus-chaos-kafka1-'));
  // Every variable explicit: the script's defaults are the shared broker's.
  const env = {
    ...process.env,
    BUS_KAFKA_RUN_DIR: runDir,
    BUS_KAFKA_PORT: String(port),
    BUS_KAFKA_CONTROLLER_PORT: String(controllerPort),
    BUS_KAFKA_HEAP_OPTS: process.env.BUS_KAFKA_HEAP_OPTS ?? '-Xmx384m -Xms128m',
    CHAOS_KAFKA_RF: '1',
  };
  const script = (...args: string[]) => exec('bash', [SCRIPT, ...args], { env, timeout: 180_000 });
  await script('start', '1');
  return {
    brokers: [`127.0.0.1:${port}`],
    env,
    script,
    async dispose() {
      await script('stop').catch((error) => console.error(`chaos: could not stop Kafka: ${(error as Error).message}`));
      rmSync(runDir, { recursive: true, force: true });
    },
  };
}

/** Consumer processes of one group; every handled message counted in `handled`. */
function consumers(node: Node, topic: string, group: string, handled: Map<number, number>, env: NodeJS.ProcessEnv = {}) {
  let serial = 0;
  const children = new Set<ChildProcess>();
  return {
    children,
    async start() {
      const child = await spawnJsonLines(
        CONSUMER,
        [node.brokers.join(','), topic, group, `k${serial++}`],
        (line) => {
          if (typeof line.n === 'number') handled.set(line.n, (handled.get(line.n) ?? 0) + 1);
        },
        { env: { ...node.env, ...env }, stdin: 'pipe', readyMs: 60_000 },
      );
      children.add(child);
      child.once('exit', () => children.delete(child));
      return child;
    },
    async stopAll() {
      await Promise.all([...children].map((c) => stopProcess(c, 'SIGTERM', 15_000)));
    },
  };
}


/** Publishes n in [from, to) in batches of 100 (keyed), each failed record retried until ok or `deadline`. */
async function publishRange(publisher: ReturnType<typeof kafka>, topic: string, from: number, to: number, ok: Set<number>, deadline: number, onFail: () => void) {
  let pending = Array.from({ length: to - from }, (_, j) => from + j);
  while (pending.length > 0 && Date.now() < deadline) {
    const results = await publisher
      .publish(
        topic,
        pending.map((n) => ({ ...codec.encode({ id: `m-${n}`, event: 'chaos', payload: { n, seq: n }, publishedAt: Date.now(), headers: {} }), key: `k${n % 50}` })),
      )
      .catch(() => pending.map(() => ({ ok: false })));
    const again = pending.filter((_, j) => !results[j]?.ok);
    for (const [j, n] of pending.entries()) if (results[j]?.ok) ok.add(n);
    if (again.length > 0) {
      onFail();
      await sleep(200);
    }
    pending = again;
  }
}

/** b. A single broker SIGKILLed at 40 % of the publishes and started again on its data (acks -1). */
export async function kafkaBrokerRestart(options: { port: number; controllerPort: number; messages: number; deadlineMs: number }): Promise<ChaosRow> {
  const started = Date.now();
  const deadline = started + options.deadlineMs;
  const node = await startNode(options.port, options.controllerPort);
  const topic = `chaos-restart-${randomUUID().slice(0, 6)}`;
  const handled = new Map<number, number>();
  const ok = new Set<number>();
  const group = consumers(node, topic, `chaos-${randomUUID().slice(0, 6)}`, handled);
  const publisher = kafka({ brokers: node.brokers, clientId: 'chaos-publisher', topics: { replicationFactor: 1, partitions: 3 } });
  let killedAt = 0;
  let backAt = 0;
  let failed = 0;
  let lastFailedAt = 0;
  try {
    await publisher.publish(topic, []);
    await group.start();
    await group.start();
    let restart: Promise<void> | undefined;
    for (let i = 0; i < options.messages && Date.now() < deadline; i += 100) {
      if (killedAt === 0 && i >= options.messages * 0.4) {
        await node.script('kill-node', '1');
        killedAt = Date.now();
        restart = (node.script('start-node', '1') as Promise<unknown>).then(() => {
          backAt = Date.now();
        });
      }
      await publishRange(publisher, topic, i, Math.min(options.messages, i + 100), ok, deadline, () => {
        failed++;
        lastFailedAt = Date.now();
      });
    }
    await Promise.race([restart, sleep(Math.max(0, deadline - Date.now()))]);
    while (Date.now() < deadline && [...ok].some((n) => !handled.has(n))) await sleep(250);
  } finally {
    await group.stopAll();
    await Promise.race([publisher.close(), sleep(10_000)]);
    await node.dispose();
  }
  return {
    scenario: 'kafka 1 broker acks -1: broker SIGKILL + restart, 2 consumer processes',
    messages: options.messages,
    ...tally(ok, handled),
    deadLettered: 0,
    recoverMs: lastFailedAt > killedAt && killedAt > 0 ? lastFailedAt - killedAt : backAt > killedAt ? backAt - killedAt : 0,
    detail: `broker back after ${backAt > 0 ? backAt - killedAt : '?'} ms (kill to answering metadata); ${failed} publish attempts of a batch failed and were retried`,
    seconds: (Date.now() - started) / 1000,
  };
}

/** c. `messages` published up front; 2 consumer processes; every `everyMs` one is SIGKILLed and a new one started, `kills` times. */
export async function kafkaConsumerCrash(options: { port: number; controllerPort: number; messages: number; kills: number; everyMs: number; sessionMs: number; batchMs: number; deadlineMs: number }): Promise<ChaosRow> {
  const started = Date.now();
  const deadline = started + options.deadlineMs;
  const node = await startNode(options.port, options.controllerPort);
  const topic = `chaos-crash-${randomUUID().slice(0, 6)}`;
  const handled = new Map<number, number>();
  const ok = new Set<number>();
  // The consumers take batchMs per batch (of up to 200), so that the kills land while they work.
  const group = consumers(node, topic, `chaos-${randomUUID().slice(0, 6)}`, handled, { CHAOS_KAFKA_SESSION_MS: String(options.sessionMs), CHAOS_KAFKA_BATCH_MS: String(options.batchMs) });
  const publisher = kafka({ brokers: node.brokers, clientId: 'chaos-publisher', topics: { replicationFactor: 1, partitions: 3 } });
  let kills = 0;
  let lastKillAt = 0;
  let doneAt = 0;
  try {
    for (let i = 0; i < options.messages && Date.now() < deadline; i += 1000) await publishRange(publisher, topic, i, Math.min(options.messages, i + 1000), ok, deadline, () => {});
    await group.start();
    await group.start();
    for (let k = 0; k < options.kills && Date.now() < deadline && handled.size < ok.size; k++) {
      await sleep(options.everyMs);
      await stopProcess([...group.children][0]);
      kills++;
      lastKillAt = Date.now();
      await group.start();
    }
    while (Date.now() < deadline && [...ok].some((n) => !handled.has(n))) await sleep(250);
    doneAt = Date.now();
  } finally {
    for (const child of group.children) await stopProcess(child);
    await Promise.race([publisher.close(), sleep(10_000)]);
    await node.dispose();
  }
  return {
    scenario: `kafka: consumer process SIGKILL x${kills}, 3 partitions`,
    messages: options.messages,
    ...tally(ok, handled),
    deadLettered: 0,
    // From the last kill until every message was handled (the dead member's partitions reassigned after sessionTimeoutMs).
    recoverMs: lastKillAt > 0 && doneAt > lastKillAt ? doneAt - lastKillAt : 0,
    detail: `${kills} SIGKILLs every ${options.everyMs} ms; sessionTimeoutMs ${options.sessionMs}; ${options.batchMs} ms per batch of up to 200`,
    seconds: (Date.now() - started) / 1000,
  };
}

/** Runs kcat (librdkafka's client) against `brokers` with `input` on stdin. */
function kcat(brokers: string[], args: string[], input: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('kcat', ['-b', brokers.join(','), '-q', ...args], { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.stderr.on('data', (d) => {
      err += d;
    });
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`kcat ${args.join(' ')} exited ${code}: ${err}`));
    });
    child.stdin.end(input);
  });
}

const envelopeHeaders = (id: string, type: string) => ({ ce_specversion: '1.0', ce_id: id, ce_type: type, ce_time: '2026-12-02T12:00:00Z', 'content-type': 'application/json' });

/** Three kinds of malformed records: [headers, value] of record i (values unique, no newline). */
const MALFORMED: ((i: number) => [Record<string, string>, Buffer])[] = [
  // bytes no codec expects, in an otherwise well-formed envelope
  (i) => [envelopeHeaders(`bad-${i}`, 'chaos'), Buffer.concat([Buffer.from([0xff, 0xfe, 0x00, 0x9c]), Buffer.from(`{not json ${i}`)])],
  // missing fields: no envelope headers at all
  (i) => [{}, Buffer.from(`no envelope ${i}`)],
  // empty event name
  (i) => [envelopeHeaders(`empty-${i}`, ''), Buffer.from(`{"n":${i},"empty":true}`)],
];

/**
 * e (Kafka). `malformed` records written by kcat, in groups of 10 of one kind, each group followed by
 * 10 good ones in our envelope (also by kcat): every malformed one in `<topic>.dlq` byte for byte (value
 * and headers) with a reason, every good one handled.
 */
export async function kafkaMalformed(options: { port: number; controllerPort: number; malformed: number; deadlineMs: number }): Promise<ChaosRow> {
  const started = Date.now();
  const deadline = started + options.deadlineMs;
  const node = await startNode(options.port, options.controllerPort);
  const topic = `chaos-malformed-${randomUUID().slice(0, 6)}`;
  const handled = new Map<number, number>();
  const transport = kafka({ brokers: node.brokers, clientId: 'chaos-malformed', topics: { replicationFactor: 1, partitions: 3 } });
  const bus = createBus({ transports: { kafka: transport } });
  const written = new Map<string, Record<string, string>>();
  const dead: { value: Buffer; headers: Record<string, string> }[] = [];
  let good = 0;
  try {
    await transport.publish(topic, []);
    bus.module({
      name: 'chaos',
      batchSize: 200,
      pollIntervalMs: 100,
      consumers: { c: { topics: [topic], events: ['chaos'] } },
      handler: ({ payload }) => {
        const { n } = payload as { n: number };
        handled.set(n, (handled.get(n) ?? 0) + 1);
      },
    });
    await bus.start();
    for (let g = 0; g * 10 < options.malformed && Date.now() < deadline; g++) {
      const kind = MALFORMED[g % MALFORMED.length] as (i: number) => [Record<string, string>, Buffer];
      const values: Buffer[] = [];
      let headers: Record<string, string> = {};
      for (let i = g * 10; i < Math.min(options.malformed, g * 10 + 10); i++) {
        const [h, value] = kind(i);
        // One kcat call per group: its records share the headers (the last record's).
        headers = h;
        values.push(value);
      }
      for (const value of values) written.set(value.toString('latin1'), headers);
      const flags = (h: Record<string, string>) => Object.entries(h).flatMap(([k, v]) => ['-H', `${k}=${v}`]);
      await kcat(node.brokers, ['-P', '-t', topic, ...flags(headers)], Buffer.concat(values.flatMap((v) => [v, Buffer.from('\n')])));
      const goods = Array.from({ length: values.length }, (_, j) => good + j);
      await kcat(node.brokers, ['-P', '-t', topic, ...flags(envelopeHeaders(`good-${g}`, 'chaos'))], Buffer.from(goods.map((n) => `{"n":${n}}\n`).join('')));
      good += goods.length;
    }
    const reader = await transport.subscribe({ group: `chaos-dlq-${randomUUID().slice(0, 6)}`, topics: [`${topic}.dlq`], batchSize: 500, pollIntervalMs: 200, startFrom: 'earliest', consumerName: 'dlq-reader' }, async (batch) => {
      for (const m of batch) {
        dead.push({ value: Buffer.from(m.value), headers: { ...m.headers } });
        m.ack();
      }
    });
    while (Date.now() < deadline && (handled.size < good || dead.length < written.size)) await sleep(250);
    await Promise.race([reader.close(), sleep(10_000)]);
  } finally {
    await Promise.race([bus.close(), sleep(15_000)]);
    await Promise.race([transport.close(), sleep(10_000)]);
    await node.dispose();
  }
  let exact = 0;
  let withReason = 0;
  let strange = 0;
  const seen = new Set<string>();
  for (const d of dead) {
    const key = d.value.toString('latin1');
    const origin = written.get(key);
    if (!origin || seen.has(key)) {
      strange++;
      continue;
    }
    seen.add(key);
    if (d.headers[DLQ_HEADER.reason]) withReason++;
    const own = Object.fromEntries(Object.entries(d.headers).filter(([k]) => !k.startsWith('bus-dlq-')));
    if (JSON.stringify(Object.entries(own).sort()) === JSON.stringify(Object.entries(origin).sort())) exact++;
    else if (process.env.BUS_CHAOS_DEBUG) console.error('chaos: dead letter differs', { written: origin, deadLetter: d.headers });
  }
  return {
    scenario: `kafka: ${options.malformed} malformed records by kcat among ${good} good ones`,
    messages: options.malformed + good,
    publishedOk: options.malformed + good,
    handled: handled.size,
    lost: good - handled.size + (written.size - exact),
    duplicates: [...handled.values()].reduce((s, c) => s + c - 1, 0),
    deadLettered: dead.length,
    recoverMs: 0,
    detail: `dead letters byte for byte equal to the record written (value and headers): ${exact}/${written.size}, with a reason: ${withReason}; other dead letters: ${strange}`,
    mismatches: written.size - exact + (written.size - withReason) + strange,
    seconds: (Date.now() - started) / 1000,
  };
}
