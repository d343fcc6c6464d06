import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';
import { addRow, type Ctx, EVENT, makePayload, nowMs, waitFor } from './common.js';
import { REDIS_PREFIX, redisBus } from './redis.js';
import { rawPublish } from './redis-raw.js';
import { compare, type Stat, stat } from './stats.js';

const WORKER = fileURLToPath(new URL('./worker.mjs', import.meta.url));

/**
 * Appends `count` entries in the bus's wire format server-side (a Lua loop, 5,000 per call, so the
 * shared Redis is never blocked for long): a million entries in seconds instead of a minute of
 * client round trips. Ids are `fill-<n>`, all with the same publish time.
 */
const FILL = `
for i = 1, tonumber(ARGV[1]) do
  redis.call('XADD', KEYS[1], '*', 'ce_specversion', '1.0', 'ce_id', ARGV[2] .. i, 'ce_type', ARGV[3],
    'ce_time', ARGV[4], 'content-type', 'application/json', '_data', ARGV[5])
end
return 1`;

export async function fillStream(admin: Redis, key: string, count: number, bytes: number): Promise<void> {
  const data = JSON.stringify(makePayload(bytes));
  const time = new Date().toISOString();
  for (let done = 0; done < count; done += 5000) {
    await admin.eval(FILL, 1, key, Math.min(5000, count - done), `fill-${done}-`, EVENT, time, data);
  }
}

interface Worker {
  child: ChildProcess;
  count: number;
  /** When the worker reported its first handled message (parent's clock). */
  firstAt?: number;
  done: Promise<{
    count: number;
    peakRssMb: number;
    hwmMb: number;
    marks: { pct: number; count: number; rssMb: number; heapUsedMb: number }[];
    /** CPU (user + system, all threads) from "go" to the stop. */
    cpuMs: number;
  }>;
}

async function startWorker(options: Record<string, unknown>): Promise<Worker> {
  const child = fork(WORKER, [JSON.stringify(options)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] });
  const worker = { child, count: 0 } as Worker;
  let ready!: () => void;
  let failed!: (e: Error) => void;
  const isReady = new Promise<void>((resolve, reject) => {
    ready = resolve;
    failed = reject;
  });
  worker.done = new Promise((resolve, reject) => {
    child.on('message', (m: { type: string; count: number }) => {
      if (m.type === 'ready') ready();
      else if (m.type === 'first') worker.firstAt ??= nowMs();
      else if (m.type === 'progress') worker.count = m.count;
      else if (m.type === 'done') resolve(m as never);
    });
    child.on('exit', (code) => {
      const error = new Error(`bench: worker process exited with ${code}`);
      failed(error);
      reject(error);
    });
  });
  worker.done.catch(() => {});
  const timer = setTimeout(() => failed(new Error('bench: worker did not start within 20 s')), 20_000);
  try {
    await isReady;
  } finally {
    clearTimeout(timer);
  }
  return worker;
}

/** Asks the worker to stop and waits for its report (bounded; killed past 20 s). */
async function stopWorker(worker: Worker) {
  worker.child.send({ type: 'stop' });
  const timer = setTimeout(() => worker.child.kill('SIGKILL'), 20_000);
  try {
    return await worker.done;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * One stream of 1,000,000 entries serves three measurements: publish cost with that backlog (vs an
 * empty stream), a consumer process's memory over all of it, and consume throughput with 1 and 2
 * worker processes (each run a new group, stopped after `perRun` messages).
 */
export async function bigStream(ctx: Ctx, admin: Redis): Promise<void> {
  const total = Math.round(1_000_000 * ctx.scale);
  const topic = 'big';
  const key = REDIS_PREFIX + topic;
  const t0 = nowMs();
  await fillStream(admin, key, total, 200);
  await admin.xgroup('CREATE', key, 'backlog', '0');
  ctx.log(`  (filled ${total} entries in ${((nowMs() - t0) / 1000).toFixed(1)} s; Redis used_memory ${await usedMemory(admin)})`);

  await backlogPublish(ctx, admin, topic, total);
  // The stream now holds a few more entries (the backlog runs); the consumer is measured over the first `total`.
  await memory(ctx, topic, total);
  await scaling(ctx, topic, Math.min(total, Math.round(200_000 * ctx.scale)));
  await admin.unlink(key);
}

async function usedMemory(admin: Redis): Promise<string> {
  const info = await admin.info('memory');
  return /used_memory_human:(\S+)/.exec(info)?.[1] ?? '?';
}

/** Bus publishBatch (and raw XADD) of batch 100 × 200 B into an empty stream vs into the big one. */
async function backlogPublish(ctx: Ctx, admin: Redis, bigTopic: string, backlog: number): Promise<void> {
  const bus = redisBus(ctx);
  const raw = admin;
  const payload = makePayload(200);
  const perRun = Math.round(50_000 * ctx.scale);
  const emptyTopic = 'backlog0';
  await admin.xgroup('CREATE', REDIS_PREFIX + emptyTopic, 'backlog', '0', 'MKSTREAM');
  const run = async (send: () => Promise<void>) => {
    const t0 = nowMs();
    for (let sent = 0; sent < perRun; sent += 100) await send();
    return (perRun / (nowMs() - t0)) * 1000;
  };
  const entries = () => Array.from({ length: 100 }, () => ({ event: EVENT, payload }) as const);
  const payloads = () => Array.from({ length: 100 }, () => payload);
  try {
    const values = await compare(
      {
        bus0: () => run(() => bus.publishBatch(emptyTopic, entries()).then(() => {})),
        busBig: () => run(() => bus.publishBatch(bigTopic, entries()).then(() => {})),
        raw0: () => run(() => rawPublish(raw, REDIS_PREFIX + emptyTopic, payloads())),
        rawBig: () => run(() => rawPublish(raw, REDIS_PREFIX + bigTopic, payloads())),
      },
      ctx.warmup,
      ctx.runs,
    );
    const settings = `batch 100 × 200 B, ${perRun} msgs/run, one consumer group that has read nothing`;
    addRow(ctx, { section: 'Redis', name: 'publish into an empty stream (backlog 0)', unit: 'msg/s', settings, values: { bus: values.bus0 as Stat, raw: values.raw0 as Stat }, versus: 'raw' });
    const slowdown = (values.busBig as Stat).median / (values.bus0 as Stat).median;
    addRow(ctx, {
      section: 'Redis',
      name: `publish with a backlog of ${backlog.toLocaleString('en-US')} entries`,
      unit: 'msg/s',
      settings,
      values: { bus: values.busBig as Stat, raw: values.rawBig as Stat },
      versus: 'raw',
      note: `bus with backlog / without: ${slowdown.toFixed(2)}`,
    });
  } finally {
    await bus.close();
    await admin.unlink(REDIS_PREFIX + emptyTopic);
  }
}

/**
 * One consumer process reads the whole stream, its RSS sampled every 50 ms; bus and raw alternate over
 * `rounds` rounds (order rotating, a new group each), the median peak of each side is shown.
 */
async function memory(ctx: Ctx, topic: string, expected: number): Promise<void> {
  type Result = Awaited<Worker['done']> & { seconds: number };
  const rounds = Math.min(ctx.runs, 3);
  const results: Record<'bus' | 'raw', Result[]> = { bus: [], raw: [] };
  for (let r = 0; r < rounds; r++) {
    for (const mode of r % 2 === 0 ? (['bus', 'raw'] as const) : (['raw', 'bus'] as const)) {
      const worker = await startWorker({
        mode,
        redisUrl: ctx.redisUrl,
        prefix: REDIS_PREFIX,
        topic,
        group: `mem-${mode}-${r}`,
        batchSize: 100,
        expected,
        progressEvery: 10_000,
      });
      const t0 = nowMs();
      worker.child.send({ type: 'go' });
      try {
        await waitFor(() => worker.count >= expected, 180_000, `${mode} memory consumer`, 20);
      } finally {
        const report = await stopWorker(worker);
        results[mode].push({ ...report, seconds: (nowMs() - t0) / 1000 });
      }
    }
  }
  const peaks = (mode: 'bus' | 'raw') => stat(results[mode].map((r) => r.peakRssMb));
  const at = (r: Result, pct: number) => r.marks.find((m) => m.pct === pct);
  const growths = (mode: 'bus' | 'raw') => stat(results[mode].map((r) => (at(r, 100)?.rssMb ?? Number.NaN) - (at(r, 25)?.rssMb ?? Number.NaN)));
  const rate = (mode: 'bus' | 'raw') => stat(results[mode].map((r) => expected / r.seconds)).median.toFixed(0);
  const settings = `one consumer process, ${expected.toLocaleString('en-US')} messages of 200 B, batch 100, RSS sampled every 50 ms; ${rounds} rounds, bus and raw alternating`;
  addRow(ctx, {
    section: 'Memory',
    name: `peak RSS of a consumer over ${expected.toLocaleString('en-US')} messages`,
    unit: 'MB',
    settings,
    values: { bus: peaks('bus'), raw: peaks('raw') },
    versus: 'raw',
    note: `msg/s (median): bus ${rate('bus')}, raw ${rate('raw')}`,
  });
  addRow(ctx, {
    section: 'Memory',
    name: 'consumer RSS growth, 25 % → 100 % of the messages',
    unit: 'MB',
    settings,
    values: { bus: growths('bus'), raw: growths('raw') },
  });
  ctx.details.memory = results;
}

/** Consume throughput with 1 and 2 worker processes in one consumer group (bus, and raw for reference). */
async function scaling(ctx: Ctx, topic: string, perRun: number): Promise<void> {
  let n = 0;
  /** ms from "go" to the first handled message, per side and run. */
  const startup: Record<string, number[]> = {};
  /** CPU µs per message over the worker processes of a run (user + system, from "go" to the stop). */
  const cpu: Record<string, number[]> = {};
  const run = (mode: 'bus' | 'raw', processes: number) => async () => {
    const group = `scale-${mode}-${++n}`;
    const workers = await Promise.all(
      Array.from({ length: processes }, () =>
        startWorker({ mode, redisUrl: ctx.redisUrl, prefix: REDIS_PREFIX, topic, group, batchSize: 100, expected: perRun, progressEvery: 1000 }),
      ),
    );
    const sum = () => workers.reduce((s, w) => s + w.count, 0);
    const go = nowMs();
    for (const w of workers) w.child.send({ type: 'go' });
    try {
      await waitFor(() => sum() >= perRun, 120_000, 'scaling workers', 1);
      const end = nowMs();
      // From the first message any worker handled: connecting and joining the group are not consuming
      // (raw connects before "go", the bus in bus.start() after it).
      const first = Math.min(...workers.map((w) => w.firstAt ?? go));
      startup[mode + processes] = [...(startup[mode + processes] ?? []), first - go];
      return (sum() / (end - first)) * 1000;
    } finally {
      const reports = await Promise.all(workers.map(stopWorker));
      const handled = reports.reduce((n, r) => n + r.count, 0);
      if (handled > 0) cpu[mode + processes] = [...(cpu[mode + processes] ?? []), (reports.reduce((ms, r) => ms + r.cpuMs, 0) * 1000) / handled];
    }
  };
  const values = await compare({ bus1: run('bus', 1), raw1: run('raw', 1), bus2: run('bus', 2), raw2: run('raw', 2) }, 0, Math.min(ctx.runs, 3));
  const cpuNote = ['bus1', 'raw1', 'bus2', 'raw2'].map((k) => `${k} ${stat(cpu[k] ?? []).median.toFixed(2)}`).join(', ');
  const startupNote = ['bus1', 'raw1', 'bus2', 'raw2'].map((k) => `${k} ${Math.round(stat(startup[k] ?? []).median)}`).join(', ');
  const settings = `${perRun.toLocaleString('en-US')} msgs per run from the backlog, batch 100, one group, timed from the first message any worker handled to the last (process start, connect and group join excluded: "go" → first message, median ms: ${startupNote}); ${Math.min(ctx.runs, 3)} runs`;
  addRow(ctx, { section: 'Scaling', name: 'consume, 1 worker process', unit: 'msg/s', settings, values: { bus: values.bus1 as Stat, raw: values.raw1 as Stat }, versus: 'raw' });
  addRow(ctx, {
    section: 'Scaling',
    name: 'consume, 2 worker processes',
    unit: 'msg/s',
    settings,
    values: { bus: values.bus2 as Stat, raw: values.raw2 as Stat },
    versus: 'raw',
    note: `speed-up 1 → 2 processes: bus ${((values.bus2 as Stat).median / (values.bus1 as Stat).median).toFixed(2)}×, raw ${((values.raw2 as Stat).median / (values.raw1 as Stat).median).toFixed(2)}×; worker CPU µs/msg (median): ${cpuNote}`,
  });
}
