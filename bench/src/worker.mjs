// A consumer process for the memory and scaling benchmarks: plain JavaScript, so that no TypeScript
// loader sits in the process whose memory is measured. Driven over IPC by processes.ts:
//   → { type: 'ready' }   ← { type: 'go' }   → { type: 'first' }   → { type: 'progress', count } …   ← { type: 'stop' }
//   → { type: 'done', count, peakRssMb, marks }
// Options come as JSON in argv[2]: { mode: 'bus' | 'raw', redisUrl, prefix, topic, group, batchSize,
// expected (messages; RSS is noted at 25/50/75/100 % of it), progressEvery }.
import { readFileSync } from 'node:fs';
import { getHeapSpaceStatistics } from 'node:v8';
import { createBus } from '@bus/core';
import { redisStream } from '@bus/redis-stream';
import { Redis } from 'ioredis';

const o = JSON.parse(process.argv[2]);
const send = (m) => process.send?.(m);
const MB = 1024 * 1024;

/** Resident set size, and the kernel's high-water mark of it (Linux), in MB. */
function rss() {
  try {
    const status = readFileSync('/proc/self/status', 'utf8');
    const kb = (name) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? Number.NaN) / 1024;
    return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
  } catch {
    const r = process.memoryUsage().rss / MB;
    return { rss: r, hwm: Number.NaN };
  }
}

let count = 0;
/** CPU time from "go" on (user + system, this process's threads): the `cpuMs` of the report. */
let cpuAtGo;
/** CPU time from "go" to the first message (connecting, joining): the report's `startCpuMs`. */
let cpuToFirst;
let peak = 0;
const marks = [];
const quarter = Math.max(1, Math.floor(o.expected / 4));
/** With `o.spaces`: V8's heap spaces (MB) at the sample of the highest RSS, to see what the peak is made of. */
let spacesAtPeak;
const sampler = setInterval(() => {
  const r = rss().rss;
  if (r > peak && o.spaces) spacesAtPeak = Object.fromEntries(getHeapSpaceStatistics().map((s) => [s.space_name, +(s.space_size / MB).toFixed(1)]));
  peak = Math.max(peak, r);
}, 50);

function onMessage() {
  // The first message handled: the parent times throughput from the first message of any worker, so
  // that connecting and joining (before "go" for raw, in bus.start() for the bus) count for neither side.
  if (++count === 1) {
    cpuToFirst = process.cpuUsage(cpuAtGo);
    send({ type: 'first' });
  }
  if (count % o.progressEvery === 0 || count === o.expected) send({ type: 'progress', count });
  if (count % quarter === 0 && marks.length < 4) {
    const r = rss();
    peak = Math.max(peak, r.rss);
    marks.push({ pct: (marks.length + 1) * 25, count, rssMb: r.rss, heapUsedMb: process.memoryUsage().heapUsed / MB });
  }
}

let stop;
if (o.mode === 'bus') {
  const bus = createBus({ transports: { redis: redisStream({ url: o.redisUrl, keyPrefix: o.prefix }) } });
  bus.module({
    name: o.group,
    batchSize: o.batchSize,
    pollIntervalMs: 100,
    lagIntervalMs: 0,
    consumers: { c: { topics: [o.topic], events: ['bench.event'] } },
    handler: onMessage,
  });
  await waitGo();
  await bus.start();
  stop = () => bus.close();
} else {
  const client = new Redis(o.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await client.connect();
  const key = o.prefix + o.topic;
  const group = `${o.group}-c`;
  const consumer = `raw-${process.pid}`;
  let stopped = false;
  await waitGo();
  await client.xgroup('CREATE', key, group, '0', 'MKSTREAM').catch((e) => {
    if (!String(e.message).startsWith('BUSYGROUP')) throw e;
  });
  const loop = (async () => {
    while (!stopped) {
      const reply = await client.xreadgroup('GROUP', group, consumer, 'COUNT', o.batchSize, 'BLOCK', 100, 'STREAMS', key, '>');
      if (!reply) continue;
      for (const [stream, entries] of reply) {
        const ids = [];
        for (const [id, fields] of entries) {
          for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === '_data') JSON.parse(fields[i + 1]);
          onMessage();
          ids.push(id);
        }
        if (ids.length > 0) await client.xack(stream, group, ...ids);
      }
    }
  })();
  stop = async () => {
    stopped = true;
    await loop;
    client.disconnect();
  };
}

process.on('message', async (m) => {
  if (m?.type !== 'stop') return;
  await stop();
  clearInterval(sampler);
  const r = rss();
  const cpu = process.cpuUsage(cpuAtGo);
  send({ type: 'done', count, peakRssMb: Math.max(peak, r.rss), hwmMb: r.hwm, marks, spacesAtPeak, cpuMs: (cpu.user + cpu.system) / 1000, startCpuMs: cpuToFirst ? (cpuToFirst.user + cpuToFirst.system) / 1000 : Number.NaN });
  process.disconnect?.();
});
// The parent going away must not leave this process behind.
process.on('disconnect', () => process.exit(0));

function waitGo() {
  return new Promise((resolve) => {
    process.on('message', (m) => {
      if (m?.type === 'go') {
        cpuAtGo = process.cpuUsage();
        resolve();
      }
    });
    send({ type: 'ready' });
  });
}
