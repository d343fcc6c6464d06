/**
 * Redis fault scenarios on a redis-server of their own (loopback port given by the caller):
 * - redisAofRestart: the server (AOF, appendfsync always) is SIGKILLed mid-run and restarted on its files;
 * - redisPoison: 1 % of the messages make the handler throw, always: exactly those are dead-lettered;
 * - redisMalformed: entries written by redis-cli that no codec expects, interleaved with good ones;
 * - redisSigtermDrain: a worker process is SIGTERMed mid-batch, again and again.
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { consoleLogger, createBus, DLQ_HEADER, jsonCodec } from '@bus/core';
import { redisStream } from '@bus/redis-stream';
import { spawnJsonLines, startRedisServer, stopProcess } from './child.js';
import { sleep } from './redis-topology.js';
import { type ChaosRow, duplicatesOf, tally } from './row.js';

const REDIS_CONSUMER = fileURLToPath(new URL('./redis-consumer.ts', import.meta.url));
const BUS_CONSUMER = fileURLToPath(new URL('./bus-consumer.ts', import.meta.url));
const PREFIX = 'bus-chaos:';
const codec = jsonCodec();
const record = (n: number, extra: Record<string, unknown> = {}) => codec.encode({ id: `m-${n}`, event: 'chaos', payload: { n, ...extra }, publishedAt: Date.now(), headers: {} });

/** Publishes `messages` records in batches of 100, each failed one retried until ok (bounded by `deadline`). */
async function publishAll(
  url: string,
  topic: string,
  messages: number,
  deadline: number,
  options: { extra?: (n: number) => Record<string, unknown>; beforeBatch?: (i: number) => Promise<void> | void } = {},
) {
  const publisher = redisStream({ url, keyPrefix: PREFIX });
  const ok = new Set<number>();
  let failed = 0;
  let lastFailedAt = 0;
  try {
    for (let i = 0; i < messages && Date.now() < deadline; i += 100) {
      await options.beforeBatch?.(i);
      let pending = Array.from({ length: Math.min(100, messages - i) }, (_, j) => i + j);
      while (pending.length > 0 && Date.now() < deadline) {
        const results = await publisher.publish(
          topic,
          pending.map((n) => record(n, options.extra?.(n))),
        ).catch(() => pending.map(() => ({ ok: false })));
        const again = pending.filter((_, j) => !results[j]?.ok);
        for (const [j, n] of pending.entries()) if (results[j]?.ok) ok.add(n);
        if (again.length > 0) {
          failed += again.length;
          lastFailedAt = Date.now();
          await sleep(100);
        }
        pending = again;
      }
    }
  } finally {
    await Promise.race([publisher.close(), sleep(5000)]);
  }
  return { ok, failed, lastFailedAt };
}

/** a. redis-server with appendonly yes, appendfsync always, SIGKILLed at 40 % of the publishes and restarted on its files. */
export async function redisAofRestart(options: { base: number; messages: number; deadlineMs: number; downMs?: number }): Promise<ChaosRow> {
  const started = Date.now();
  const deadline = started + options.deadlineMs;
  const dir = mkdtempSync(join(tmpdir(), 'bus-chaos-aof-'));
  const args = ['--appendonly', 'yes', '--appendfsync', 'always', '--dir', dir];
  let server = await startRedisServer(options.base, args);
  const url = `redis://127.0.0.1:${options.base}`;
  const topic = `aof-${randomUUID().slice(0, 6)}`;
  const handled = new Map<number, number>();
  const children: ChildProcess[] = [];
  let killedAt = 0;
  let backAt = 0;
  let doneAt = 0;
  let published: Awaited<ReturnType<typeof publishAll>> | undefined;
  try {
    for (const name of ['a1', 'a2']) {
      children.push(
        await spawnJsonLines(REDIS_CONSUMER, [url, topic, 'aof', name], (line) => {
          for (const n of (line.n as number[] | undefined) ?? []) handled.set(n, (handled.get(n) ?? 0) + 1);
        }),
      );
    }
    let restart: Promise<void> | undefined;
    published = await publishAll(url, topic, options.messages, deadline, {
      beforeBatch: (i) => {
        if (killedAt > 0 || i < options.messages * 0.4) return;
        killedAt = Date.now();
        // The kill is awaited; the restart runs while publishing goes on (and fails meanwhile).
        return stopProcess(server).then(() => {
          restart = (async () => {
            await sleep(options.downMs ?? 1000);
            server = await startRedisServer(options.base, args);
            backAt = Date.now();
          })();
        });
      },
    });
    await restart;
    while (Date.now() < deadline && [...published.ok].some((n) => !handled.has(n))) await sleep(200);
    doneAt = Date.now();
  } finally {
    await Promise.all(children.map((c) => stopProcess(c)));
    await stopProcess(server);
    rmSync(dir, { recursive: true, force: true });
  }
  const ok = published?.ok ?? new Set<number>();
  return {
    scenario: 'redis AOF appendfsync always: server SIGKILL + restart, 2 consumer processes',
    messages: options.messages,
    ...tally(ok, handled),
    deadLettered: 0,
    recoverMs: published && published.lastFailedAt > killedAt && killedAt > 0 ? published.lastFailedAt - killedAt : 0,
    detail: `server down ${backAt > 0 ? backAt - killedAt : '?'} ms (kill to PONG after the restart); every message handled ${doneAt - backAt} ms after the restart; ${published?.failed ?? 0} publish attempts failed and were retried`,
    seconds: (Date.now() - started) / 1000,
  };
}

/**
 * Fields of a stream entry as [name, value] pairs, each as redis-cli prints it (`--no-raw`: quoted, with
 * \xNN escapes for bytes that are not printable): two strings are equal exactly when their bytes are.
 */
type Fields = [string, string][];

/** XRANGE `key` - + read by redis-cli --no-raw. */
async function xrange(port: number, key: string): Promise<{ id: string; fields: Fields }[]> {
  const out = await redisCli(port, `XRANGE ${key} - +\n`, ['--no-raw']);
  const entries: { id: string; flat: string[] }[] = [];
  // `  1) 1) "id"` starts an entry: its first `)` is in the column of the first line's (the entry
  // numbers are right-aligned); the lines indented further are its fields and values.
  let column = -1;
  for (const line of out.split('\n')) {
    const quoted = /"(.*)"$/.exec(line)?.[1];
    if (quoted === undefined) continue;
    if (column < 0) column = line.indexOf(')');
    if (line.indexOf(')') === column) entries.push({ id: quoted, flat: [] });
    else entries.at(-1)?.flat.push(quoted);
  }
  return entries.map(({ id, flat }) => ({ id, fields: Array.from({ length: flat.length >> 1 }, (_, i) => [flat[2 * i] as string, flat[2 * i + 1] as string]) }));
}

/** A value as redis-cli quoted it, unescaped (to text). */
const unquote = (s: string) =>
  s.replace(/\\(x[0-9a-f]{2}|.)/g, (_, c: string) => (c.length === 3 ? String.fromCharCode(Number.parseInt(c.slice(1), 16)) : ({ n: '\n', r: '\r', t: '\t', a: '\x07', b: '\b' } as Record<string, string>)[c] ?? c));

/** A bus with one module on `topic`; `handler` gets the payload; retries short. */
async function startBus(url: string, topic: string, handler: (payload: { n: number; poison?: boolean }) => void) {
  const bus = createBus({ transports: { redis: redisStream({ url, keyPrefix: PREFIX }) }, ...(process.env.BUS_CHAOS_DEBUG ? { logger: consoleLogger('info') } : {}) });
  bus.module({
    name: 'chaos',
    batchSize: 100,
    concurrency: 10,
    pollIntervalMs: 100,
    retry: { attempts: 2, baseDelayMs: 10, maxDelayMs: 50 },
    consumers: { c: { topics: [topic], events: ['chaos'] } },
    handler: ({ payload }) => handler(payload as { n: number; poison?: boolean }),
  });
  await bus.start();
  return bus;
}

/** d. 1 % poison messages (the handler throws for them, always). */
export async function redisPoison(options: { base: number; messages: number; deadlineMs: number }): Promise<ChaosRow> {
  const started = Date.now();
  const deadline = started + options.deadlineMs;
  const server = await startRedisServer(options.base);
  const url = `redis://127.0.0.1:${options.base}`;
  const topic = `poison-${randomUUID().slice(0, 6)}`;
  const isPoison = (n: number) => n % 100 === 37;
  const handled = new Map<number, number>();
  const dead = new Map<number, number>();
  const reasons = new Set<string>();
  let ok = new Set<number>();
  let bus: Awaited<ReturnType<typeof startBus>> | undefined;
  try {
    bus = await startBus(url, topic, (p) => {
      if (p.poison) throw new Error(`poison message ${p.n}`);
      handled.set(p.n, (handled.get(p.n) ?? 0) + 1);
    });
    ({ ok } = await publishAll(url, topic, options.messages, deadline, { extra: (n) => (isPoison(n) ? { poison: true } : {}) }));
    const expectedDead = [...ok].filter(isPoison).length;
    while (Date.now() < deadline && (handled.size < ok.size - expectedDead || dead.size < expectedDead)) {
      await sleep(250);
      dead.clear();
      for (const entry of await xrange(options.base, `${PREFIX}${topic}.dlq`)) {
        const fields = Object.fromEntries(entry.fields.map(([k, v]) => [unquote(k), unquote(v)]));
        const n = (JSON.parse(fields._data ?? '{}') as { n: number }).n;
        dead.set(n, (dead.get(n) ?? 0) + 1);
        reasons.add(fields[DLQ_HEADER.reason] ?? '');
      }
    }
  } finally {
    await Promise.race([bus?.close(), sleep(10_000)]);
    await stopProcess(server);
  }
  const wrongDead = [...dead.keys()].filter((n) => !isPoison(n)).length + [...ok].filter((n) => isPoison(n) && !dead.has(n)).length;
  const poisonHandled = [...handled.keys()].filter(isPoison).length;
  return {
    scenario: 'redis: 1 % poison messages (handler always throws), 2 attempts',
    messages: options.messages,
    publishedOk: ok.size,
    handled: handled.size,
    lost: [...ok].filter((n) => !handled.has(n) && !dead.has(n)).length,
    duplicates: duplicatesOf(handled) + duplicatesOf(dead),
    deadLettered: dead.size,
    recoverMs: 0,
    detail: `${[...ok].filter(isPoison).length} poison published; dead letters not poison or poison not dead-lettered: ${wrongDead}; poison handled: ${poisonHandled}; reasons: ${[...reasons].slice(0, 2).join(' | ')}`,
    mismatches: wrongDead + poisonHandled,
    seconds: (Date.now() - started) / 1000,
  };
}

/** Three kinds of malformed entries, as redis-cli arguments (double-quoted, \xNN escapes). */
const MALFORMED = [
  // bytes no codec expects, in an otherwise well-formed envelope
  (i: number) => `ce_specversion 1.0 ce_id bad-${i} ce_type chaos ce_time 2026-12-02T12:00:00Z content-type application/json _data "\\xff\\xfe\\x00\\x9c{not json ${i}"`,
  // missing fields: no envelope at all (control bytes; header values are text, so valid UTF-8: see RELIABILITY.md)
  (i: number) => `junk "\\x00\\x01\\x1b[0m ${i} \\xc3\\xbc"`,
  // empty event name
  (i: number) => `ce_specversion 1.0 ce_id empty-${i} ce_type "" ce_time 2026-12-02T12:00:00Z content-type application/json _data "{\\"n\\":${i}}"`,
];

/** Runs redis-cli with `args`, `script` on stdin (one command a line); resolves its stdout. */
function redisCli(port: number, script: string, args: string[] = []): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`redis-cli exited ${code}`));
    });
    child.stdin.end(script);
  });
}

/** e. `malformed` entries written by redis-cli (3 kinds, in turn), each followed by a good one in our envelope. */
export async function redisMalformed(options: { base: number; malformed: number; deadlineMs: number }): Promise<ChaosRow> {
  const started = Date.now();
  const deadline = started + options.deadlineMs;
  const server = await startRedisServer(options.base);
  const url = `redis://127.0.0.1:${options.base}`;
  const topic = `malformed-${randomUUID().slice(0, 6)}`;
  const key = `${PREFIX}${topic}`;
  const handled = new Map<number, number>();
  let bus: Awaited<ReturnType<typeof startBus>> | undefined;
  const bad = new Map<string, Fields>();
  let good = 0;
  let deadLettered = 0;
  let exact = 0;
  let withReason = 0;
  let goodDead = 0;
  try {
    bus = await startBus(url, topic, (p) => {
      handled.set(p.n, (handled.get(p.n) ?? 0) + 1);
    });
    const lines: string[] = [];
    for (let i = 0; i < options.malformed; i++) {
      lines.push(`XADD ${key} * ${(MALFORMED[i % MALFORMED.length] as (i: number) => string)(i)}`);
      lines.push(`XADD ${key} * ce_specversion 1.0 ce_id good-${i} ce_type chaos ce_time 2026-12-02T12:00:00Z content-type application/json _data "{\\"n\\":${i}}"`);
    }
    const ids = (await redisCli(options.base, `${lines.join('\n')}\n`)).trim().split('\n');
    if (ids.length !== lines.length) throw new Error(`redis-cli wrote ${ids.length} entries of ${lines.length}: ${ids.find((l) => !/^\d+-\d+$/.test(l))}`);
    good = options.malformed;
    const stored = new Map((await xrange(options.base, key)).map((e) => [e.id, e.fields]));
    for (const [i, id] of ids.entries()) if (i % 2 === 0) bad.set(id, stored.get(id) ?? []);
    let dead: { id: string; fields: Fields }[] = [];
    while (Date.now() < deadline && (handled.size < good || dead.length < bad.size)) {
      await sleep(250);
      dead = await xrange(options.base, `${key}.dlq`);
    }
    deadLettered = dead.length;
    for (const { fields } of dead) {
      const header = (name: string) => fields.find(([k]) => k === name)?.[1];
      const origin = bad.get(header(DLQ_HEADER.position) ?? '');
      if (!origin) {
        goodDead++;
        continue;
      }
      if (header(DLQ_HEADER.reason)) withReason++;
      const own = fields.filter(([k]) => !k.startsWith('bus-dlq-'));
      if (own.length === origin.length && own.every(([k, v], j) => k === origin[j]?.[0] && v === origin[j]?.[1])) exact++;
      else if (process.env.BUS_CHAOS_DEBUG) console.error('chaos: dead letter differs', { written: origin, deadLetter: fields });
    }
  } finally {
    await Promise.race([bus?.close(), sleep(10_000)]);
    await stopProcess(server);
  }
  return {
    scenario: `redis: ${options.malformed} malformed entries by redis-cli among ${good} good ones`,
    messages: options.malformed + good,
    publishedOk: options.malformed + good,
    handled: handled.size,
    lost: good - handled.size + (bad.size - exact),
    duplicates: duplicatesOf(handled),
    deadLettered,
    recoverMs: 0,
    detail: `dead letters byte for byte equal to the entry written: ${exact}/${bad.size}, with a reason: ${withReason}; good ones dead-lettered: ${goodDead}`,
    mismatches: bad.size - exact + (bad.size - withReason) + goodDead,
    seconds: (Date.now() - started) / 1000,
  };
}

/** f. A worker process (bus + closeOnSignals, handlers of `handlerMs`) SIGTERMed mid-batch `terms` times; a last one finishes. */
export async function redisSigtermDrain(options: { base: number; messages: number; terms: number; handlerMs: number; drainMs: number; deadlineMs: number }): Promise<ChaosRow> {
  const started = Date.now();
  const deadline = started + options.deadlineMs;
  const server = await startRedisServer(options.base);
  const url = `redis://127.0.0.1:${options.base}`;
  const topic = `drain-${randomUUID().slice(0, 6)}`;
  const handled = new Map<number, number>();
  const exits: { code: number | null; signal: string | null; ms: number; unfinished: number }[] = [];
  const env = { ...process.env, CHAOS_HANDLER_MS: String(options.handlerMs), CHAOS_DRAIN_MS: String(options.drainMs) };
  let ok = new Set<number>();
  let worker: ChildProcess | undefined;
  try {
    ({ ok } = await publishAll(url, topic, options.messages, deadline));
    let running = new Set<number>();
    const start = async () => {
      running = new Set<number>();
      const mine = running;
      worker = await spawnJsonLines(
        BUS_CONSUMER,
        [url, topic],
        (line) => {
          if (typeof line.start === 'number') mine.add(line.start);
          if (typeof line.n === 'number') {
            mine.delete(line.n);
            handled.set(line.n, (handled.get(line.n) ?? 0) + 1);
          }
        },
        { env },
      );
      return worker;
    };
    for (let t = 0; t < options.terms && Date.now() < deadline && handled.size < ok.size; t++) {
      const child = await start();
      // Mid-batch: after some handlers finished, while others run.
      const until = Date.now() + 2000 + Math.random() * 1000;
      while (Date.now() < until || running.size === 0) {
        if (Date.now() > deadline || child.exitCode !== null) break;
        await sleep(20);
      }
      const at = Date.now();
      const exited = new Promise<[number | null, string | null]>((resolve) => child.once('exit', (code, signal) => resolve([code, signal])));
      child.kill('SIGTERM');
      const result = await Promise.race([exited, sleep(options.drainMs + 10_000).then(() => [null, 'timeout'] as [null, string])]);
      exits.push({ code: result[0], signal: result[1], ms: Date.now() - at, unfinished: running.size });
      await stopProcess(child);
    }
    await start();
    while (Date.now() < deadline && handled.size < ok.size) await sleep(200);
  } finally {
    await stopProcess(worker, 'SIGTERM', options.drainMs + 5000);
    await stopProcess(server);
  }
  const bad = exits.filter((e) => e.code !== 0 || e.ms > options.drainMs || e.unfinished > 0);
  return {
    scenario: `redis: worker process SIGTERM mid-batch x${exits.length} (handlers ${options.handlerMs} ms), drain`,
    messages: options.messages,
    publishedOk: ok.size,
    handled: handled.size,
    lost: [...ok].filter((n) => !handled.has(n)).length,
    duplicates: duplicatesOf(handled),
    deadLettered: 0,
    recoverMs: Math.max(0, ...exits.map((e) => e.ms)),
    detail: `exit codes ${[...new Set(exits.map((e) => e.code ?? e.signal))].join(',')}; SIGTERM to exit max ${Math.max(0, ...exits.map((e) => e.ms))} ms (drain deadline ${options.drainMs} ms); handlers cut: ${exits.reduce((s, e) => s + e.unfinished, 0)}; bad exits ${bad.length}`,
    mismatches: bad.length,
    seconds: (Date.now() - started) / 1000,
  };
}
