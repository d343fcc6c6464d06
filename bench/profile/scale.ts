// Scaling probe: 1 and 2 worker processes, bus vs raw; msg/s, worker CPU µs/msg, Redis server CPU µs/msg.
import { fork } from 'node:child_process';
import { Redis } from 'ioredis';
import { fillStream } from '../src/processes.js';
const WORKER = new URL('../src/worker.mjs', import.meta.url).pathname;
const admin = new Redis();
const prefix = 'bench:scaleprobe:';
const topic = 'big';
const per = Number(process.argv[2] ?? 200_000);
const rounds = Number(process.argv[3] ?? 3);
await admin.unlink(prefix + topic);
await fillStream(admin, prefix + topic, per * rounds * 4 + 1000, 200);
const redisCpu = async () => { const i = await admin.info('cpu'); const g = (k: string) => Number(new RegExp(`${k}:([\\d.]+)`).exec(i)?.[1]); return (g('used_cpu_user') + g('used_cpu_sys')) * 1000; };
let n = 0;
async function run(mode: string, procs: number) {
  const group = `p${++n}`;
  const ws = await Promise.all(Array.from({ length: procs }, () => new Promise<any>((res) => {
    const child = fork(WORKER, [JSON.stringify({ mode, redisUrl: 'redis://127.0.0.1:6379', prefix, topic, group, batchSize: 100, expected: per, progressEvery: 1000 })], { execArgv: [] });
    const w: any = { child, count: 0 };
    w.done = new Promise((d) => child.on('message', (m: any) => { if (m.type === 'ready') res(w); else if (m.type === 'first') w.first ??= performance.now(); else if (m.type === 'progress') w.count = m.count; else if (m.type === 'done') d(m); }));
  })));
  const r0 = await redisCpu();
  for (const w of ws) w.child.send({ type: 'go' });
  while (ws.reduce((s, w) => s + w.count, 0) < per) await new Promise((r) => setTimeout(r, 1));
  const end = performance.now();
  const r1 = await redisCpu();
  const first = Math.min(...ws.map((w) => w.first));
  const sum = ws.reduce((s, w) => s + w.count, 0);
  for (const w of ws) w.child.send({ type: 'stop' });
  const reports = await Promise.all(ws.map((w) => w.done));
  const cpu = reports.reduce((s, r) => s + r.cpuMs, 0);
  const start = reports.map((r) => r.startCpuMs.toFixed(0)).join('+');
  return { rate: Math.round(sum / (end - first) * 1000), cpu: (cpu * 1000 / sum).toFixed(2), redis: ((r1 - r0) * 1000 / sum).toFixed(2), startCpuMs: start, perProc: reports.map((r) => (r.cpuMs * 1000 / r.count).toFixed(2)).join(' ') };
}
for (let r = 0; r < rounds; r++) {
  const sides = (process.env.ONLY?.split(',').map((s) => [s.split(':')[0], Number(s.split(':')[1])]) ??
    (r % 2 ? [['raw', 1], ['bus', 1], ['raw', 2], ['bus', 2]] : [['bus', 1], ['raw', 1], ['bus', 2], ['raw', 2]])) as [string, number][];
  for (const [m, p] of sides) {
    console.log(r, m, p, JSON.stringify(await run(m, p)));
  }
}
await admin.unlink(prefix + topic);
admin.disconnect();
