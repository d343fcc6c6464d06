// Peak RSS of one consumer process (bench/src/worker.mjs) over COUNT messages, bus and raw interleaved
// for ROUNDS rounds (order rotating), with V8's heap spaces at the peak. Run from bench/:
//   node profile/rss.mjs [rounds=3] [count=1000000] [extra node flags for the worker…]
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';

const rounds = Number(process.argv[2] ?? 3);
const count = Number(process.argv[3] ?? 1_000_000);
const execArgv = process.argv.slice(4);
const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = 'bench-rss:';
const topic = 'big';
const admin = new Redis(url);
const FILL = `
for i = 1, tonumber(ARGV[1]) do
  redis.call('XADD', KEYS[1], '*', 'ce_specversion', '1.0', 'ce_id', ARGV[2] .. i, 'ce_type', ARGV[3],
    'ce_time', ARGV[4], 'content-type', 'application/json', '_data', ARGV[5])
end
return 1`;
const data = JSON.stringify({ id: 1, text: 'x'.repeat(180) });
await admin.del(prefix + topic);
for (let done = 0; done < count; done += 5000) {
  await admin.eval(FILL, 1, prefix + topic, Math.min(5000, count - done), `fill-${done}-`, 'bench.event', new Date().toISOString(), data);
}
const worker = fileURLToPath(new URL('../src/worker.mjs', import.meta.url));
const run = (mode, group) =>
  new Promise((resolve, reject) => {
    const child = fork(worker, [JSON.stringify({ mode, redisUrl: url, prefix, topic, group, batchSize: 100, expected: count, progressEvery: 10_000, spaces: true })], { execArgv });
    const t0 = performance.now();
    child.on('message', (m) => {
      if (m.type === 'ready') child.send({ type: 'go' });
      if (m.type === 'progress' && m.count >= count) child.send({ type: 'stop' });
      if (m.type === 'done') resolve({ ...m, seconds: (performance.now() - t0) / 1000 });
    });
    child.on('exit', (code) => code && reject(new Error(`worker exited ${code}`)));
  });
const peaks = { bus: [], raw: [] };
for (let r = 0; r < rounds; r++) {
  for (const mode of r % 2 ? ['raw', 'bus'] : ['bus', 'raw']) {
    const res = await run(mode, `rss-${mode}-${r}`);
    peaks[mode].push(res.peakRssMb);
    console.log(`round ${r} ${mode}: peak ${res.peakRssMb.toFixed(1)} MB (hwm ${res.hwmMb.toFixed(1)}), ${(count / res.seconds).toFixed(0)} msg/s, marks ${res.marks.map((m) => m.rssMb.toFixed(0)).join('/')}, spaces ${JSON.stringify(res.spacesAtPeak)}`);
  }
}
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
console.log(`median peak: bus ${median(peaks.bus).toFixed(1)} MB, raw ${median(peaks.raw).toFixed(1)} MB`);
await admin.del(prefix + topic);
admin.disconnect();
