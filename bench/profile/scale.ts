// The scaling row's probe: 1 and 2 worker processes (bench/src/worker.mjs) in one consumer group, bus
// and raw; msg/s, each worker's CPU µs per message (user + system, from "go" to the stop) and Redis's
// (INFO cpu). Run from bench/:
//   node --import tsx profile/scale.ts [perRun=200000] [rounds=3]      ONLY=bus:2,raw:2 picks sides
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { fillStream } from '../src/processes.js';

interface Report {
  type: string;
  count: number;
  cpuMs: number;
  startCpuMs: number;
}
interface Worker {
  child: ChildProcess;
  count: number;
  first?: number;
  done: Promise<Report>;
}

const WORKER = fileURLToPath(new URL('../src/worker.mjs', import.meta.url));
const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const admin = new Redis(url);
const prefix = 'bench:scaleprobe:';
const topic = 'big';
const per = Number(process.argv[2] ?? 200_000);
const rounds = Number(process.argv[3] ?? 3);
await admin.unlink(prefix + topic);
await fillStream(admin, prefix + topic, per * rounds * 4 + 1000, 200);

const redisCpuMs = async () => {
  const info = await admin.info('cpu');
  const field = (k: string) => Number(new RegExp(`${k}:([\\d.]+)`).exec(info)?.[1]);
  return (field('used_cpu_user') + field('used_cpu_sys')) * 1000;
};

const start = (mode: string, group: string): Promise<Worker> =>
  new Promise((ready) => {
    const options = { mode, redisUrl: url, prefix, topic, group, batchSize: 100, expected: per, progressEvery: 1000 };
    const child = fork(WORKER, [JSON.stringify(options)], { execArgv: [] });
    let done!: (r: Report) => void;
    const w: Worker = { child, count: 0, done: new Promise<Report>((resolve) => (done = resolve)) };
    child.on('message', (m: Report) => {
      if (m.type === 'ready') ready(w);
      else if (m.type === 'first') w.first ??= performance.now();
      else if (m.type === 'progress') w.count = m.count;
      else if (m.type === 'done') done(m);
    });
  });

let n = 0;
async function run(mode: string, processes: number) {
  const group = `p${++n}`;
  const workers = await Promise.all(Array.from({ length: processes }, () => start(mode, group)));
  const before = await redisCpuMs();
  for (const w of workers) w.child.send({ type: 'go' });
  const deadline = Date.now() + 120_000;
  while (workers.reduce((s, w) => s + w.count, 0) < per && Date.now() < deadline) await new Promise((r) => setTimeout(r, 1));
  const end = performance.now();
  const after = await redisCpuMs();
  const first = Math.min(...workers.map((w) => w.first ?? end));
  const sum = workers.reduce((s, w) => s + w.count, 0);
  for (const w of workers) w.child.send({ type: 'stop' });
  const reports = await Promise.all(workers.map((w) => w.done));
  const cpu = reports.reduce((s, r) => s + r.cpuMs, 0);
  return {
    rate: Math.round((sum / (end - first)) * 1000),
    cpu: ((cpu * 1000) / reports.reduce((s, r) => s + r.count, 0)).toFixed(2),
    redis: (((after - before) * 1000) / sum).toFixed(2),
    startCpuMs: reports.map((r) => r.startCpuMs.toFixed(0)).join('+'),
    perProcess: reports.map((r) => ((r.cpuMs * 1000) / r.count).toFixed(2)).join(' '),
  };
}

for (let r = 0; r < rounds; r++) {
  const rotating: [string, number][] =
    r % 2
      ? [
          ['raw', 1],
          ['bus', 1],
          ['raw', 2],
          ['bus', 2],
        ]
      : [
          ['bus', 1],
          ['raw', 1],
          ['bus', 2],
          ['raw', 2],
        ];
  const sides = process.env.ONLY?.split(',').map((s): [string, number] => [s.split(':')[0] ?? 'bus', Number(s.split(':')[1] ?? 1)]) ?? rotating;
  for (const [mode, processes] of sides) console.log(r, mode, processes, JSON.stringify(await run(mode, processes)));
}
await admin.unlink(prefix + topic);
admin.disconnect();
