// Peak RSS of one consumer process (bench/src/worker.mjs) over COUNT messages, bus and raw interleaved
// for ROUNDS rounds (order rotating), with V8's heap spaces at the peak. Run from bench/:
//   node --import tsx profile/rss.ts [rounds=3] [count=1000000] [extra node flags for the worker…]
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { fillStream } from '../src/processes.js';

const rounds = Number(process.argv[2] ?? 3);
const count = Number(process.argv[3] ?? 1_000_000);
const execArgv = process.argv.slice(4);
const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = 'bench-rss:';
const topic = 'big';
const admin = new Redis(url);
await admin.del(prefix + topic);
await fillStream(admin, prefix + topic, count, 200);
interface Report {
  peakRssMb: number;
  hwmMb: number;
  seconds: number;
  marks: { rssMb: number }[];
  spacesAtPeak?: Record<string, number>;
}
const worker = fileURLToPath(new URL('../src/worker.mjs', import.meta.url));
const run = (mode: 'bus' | 'raw', group: string): Promise<Report> =>
  new Promise((resolve, reject) => {
    const child = fork(worker, [JSON.stringify({ mode, redisUrl: url, prefix, topic, group, batchSize: 100, expected: count, progressEvery: 10_000, spaces: true })], { execArgv });
    const t0 = performance.now();
    child.on('message', (m: Report & { type: string; count: number }) => {
      if (m.type === 'ready') child.send({ type: 'go' });
      if (m.type === 'progress' && m.count >= count) child.send({ type: 'stop' });
      if (m.type === 'done') resolve({ ...m, seconds: (performance.now() - t0) / 1000 });
    });
    child.on('exit', (code) => {
      if (code) reject(new Error(`worker exited ${code}`));
    });
  });
const peaks: Record<'bus' | 'raw', number[]> = { bus: [], raw: [] };
for (let r = 0; r < rounds; r++) {
  for (const mode of r % 2 ? (['raw', 'bus'] as const) : (['bus', 'raw'] as const)) {
    const res = await run(mode, `rss-${mode}-${r}`);
    peaks[mode].push(res.peakRssMb);
    console.log(`round ${r} ${mode}: peak ${res.peakRssMb.toFixed(1)} MB (hwm ${res.hwmMb.toFixed(1)}), ${(count / res.seconds).toFixed(0)} msg/s, marks ${res.marks.map((m) => m.rssMb.toFixed(0)).join('/')}, spaces ${JSON.stringify(res.spacesAtPeak)}`);
  }
}
const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
console.log(`median peak: bus ${median(peaks.bus).toFixed(1)} MB, raw ${median(peaks.raw).toFixed(1)} MB`);
await admin.del(prefix + topic);
admin.disconnect();
