// CPU µs per consumed message of two bus builds and the raw loop, alternating in ONE process (order
// rotating per round), so load from other processes on the machine hits all sides alike. Median per side.
// usage (from bench/): node profile/ab.mjs <base bundle> <new bundle> [messages per run=20000] [rounds=15]
// bundles: bash bench/profile/bundle.sh bus-side <out.mjs> (from the repo root, once per build). REDIS_URL.
import { pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
const [baseFile, newFile] = process.argv.slice(2, 4);
const total = Number(process.argv[4] ?? 20_000);
const rounds = Number(process.argv[5] ?? 15);
const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const { rawConsume, rawPublish } = await import(pathToFileURL(newFile).href);
const base = (await import(pathToFileURL(baseFile).href)).busSide;
const next = (await import(`${pathToFileURL(newFile).href}?new`)).busSide;
const prefix = `bench:ab${process.pid}:`;
const admin = new Redis(url);
const payload = { id: 1, text: 'x'.repeat(180) };
for (let i = 0; i < total; i += 1000) await rawPublish(admin, `${prefix}s`, Array.from({ length: 1000 }, () => payload));
let groups = 0;
const sides = {
  base: () => base(url, prefix, 's', total),
  new: () => next(url, prefix, 's', total),
  raw: async () => {
    let count = 0;
    const c = new Redis(url);
    await rawConsume({ client: c, key: `${prefix}s`, group: `r${++groups}`, consumer: 'c', batchSize: 100, pollMs: 100, handler: () => void count++, stop: () => count >= total });
    c.disconnect();
  },
};
const names = process.env.SIDES ? process.env.SIDES.split(',') : Object.keys(sides);
const out = Object.fromEntries(names.map((n) => [n, []]));
for (let r = 0; r < rounds + 1; r++) {
  for (let s = 0; s < names.length; s++) {
    const name = names[(s + r) % names.length];
    const c0 = process.cpuUsage();
    await sides[name]();
    const c = process.cpuUsage(c0);
    if (r > 0) out[name].push((c.user + c.system) / total); // round 0 warms up
  }
}
const median = (a) => { const s = [...a].sort((x, y) => x - y); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
for (const n of names) console.log(`${n}: median ${median(out[n]).toFixed(2)} µs/msg (runs ${out[n].map((v) => v.toFixed(1)).join(' ')})`);
if (out.raw && out.base && out.new) console.log(`raw/base ${(median(out.raw) / median(out.base)).toFixed(3)}, raw/new ${(median(out.raw) / median(out.new)).toFixed(3)}`);
await admin.unlink(`${prefix}s`);
admin.disconnect();
