import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { createBus, memoryTransport } from '@bus/core';
import { runModules } from '@bus/cli';
import { prometheus, startMetricsServer } from '@bus/prometheus';
import { Redis } from 'ioredis';
import { dayOfStreaming, liveTasksBus } from './app.js';
import type { Completion } from './daily-task.js';
import { LIVE_TOPIC, liveEvents } from './events.js';
import { metricsPort, untilSignal } from './metrics.js';
import { RUN_HEADER, SharedDailyLiveTask } from './shared-progress.js';
import { createTransport, type TransportName, transportName } from './transport.js';

// `pnpm start` runs on the memory transport in this process; `--transport redis|kafka` (or
// BUS_TRANSPORT) runs the tasks module from ./bus.config.ts as 2 supervised worker processes.
// With BUS_METRICS_PORT, /metrics is served on that port (in memory mode by this process, with
// workers by the supervisor, summing both workers), and the example keeps running after the day is
// handled, until Ctrl-C (SIGINT) or SIGTERM, so that Prometheus can scrape it.
const name = transportName();
const port = metricsPort();
/** Between two events in worker mode: events arrive one by one, so both workers get some. */
const PUBLISH_GAP_MS = 20;
console.log(
  name === 'memory'
    ? 'live-tasks on the in-memory transport: one process, no broker (--transport redis or kafka for a real one)'
    : `live-tasks on ${name}: the tasks module as 2 supervised worker processes`,
);
if (name === 'memory') await inProcess();
else await workers(name);

async function inProcess(): Promise<void> {
  const completed: Completion[] = [];
  const bus = liveTasksBus(
    memoryTransport(),
    // Printed after the publish line: in one process the handler may run before publishBatch resolves.
    (c) => completed.push(c),
    { metrics: prometheus() },
  );
  const server = port === undefined ? undefined : await startMetricsServer({ port });
  if (server) console.log(`metrics on ${server.url}`);

  await bus.start();
  const entries = dayOfStreaming();
  const results = await bus.publishBatch(LIVE_TOPIC, entries);
  console.log(`published ${results.filter((r) => r.ok).length} events to "${LIVE_TOPIC}"`);

  // Wait until the module has handled the day (bounded), then drain and close.
  const deadline = Date.now() + 10_000;
  while (completed.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  for (const c of completed) console.log(`task daily-live-60min-100yuan completed: ${c.anchorId} on ${c.day} (${c.minutes} min live, ${c.income} yuan)`);
  if (server && completed.length === 2) await linger();
  await bus.close();
  await server?.close();
  if (completed.length < 2) {
    console.error(`expected 2 completed tasks, got ${completed.length}`);
    process.exit(1);
  }
}

async function workers(transport: Exclude<TransportName, 'memory'>): Promise<void> {
  process.env.BUS_TRANSPORT = transport;
  const config = fileURLToPath(new URL('../bus.config.ts', import.meta.url));
  const supervisor = await runModules({ config, logLevel: 'warn', handleSignals: false });
  const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  const store = new SharedDailyLiveTask(redis, () => {});
  const bus = createBus({ events: liveEvents, transports: { [transport]: createTransport(transport) }, source: 'live-app' });
  let ok = false;
  try {
    await Promise.race([supervisor.ready, timeout(60_000, 'the workers did not subscribe within 60 s')]);
    console.log(`module tasks running as ${supervisor.workers().length} worker processes on ${transport} (pids ${supervisor.workers().map((w) => w.pid).join(', ')})`);
    // Progress is kept per run (a header), so runs never mix, even with leftovers of an earlier one.
    const run = process.env.LIVE_RUN || randomUUID();
    // One by one, as a live app would: a batch would be read at once by whichever worker reads first.
    let published = 0;
    for (const e of dayOfStreaming()) {
      await bus.publish(LIVE_TOPIC, e.event, e.payload, { ...(e.key ? { key: e.key } : {}), headers: { [RUN_HEADER]: run } });
      published++;
      await new Promise((r) => setTimeout(r, PUBLISH_GAP_MS));
    }
    console.log(`published ${published} events to "${LIVE_TOPIC}"`);
    const deadline = Date.now() + 60_000;
    let completed: Completion[] = [];
    while (completed.length < 2 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      completed = await store.completions(run);
    }
    ok = completed.length === 2;
    if (!ok) console.error(`expected 2 completed tasks, got ${completed.length}`);
    if (ok && port !== undefined) await linger();
  } finally {
    const code = await supervisor.stop();
    await bus.close();
    redis.disconnect();
    if (code !== 0) console.error(`workers stopped with code ${code}`);
    process.exit(ok && code === 0 ? 0 : 1);
  }
}

/** Keeps the example up for scraping until a signal. */
async function linger(): Promise<void> {
  console.log('keeping the metrics endpoint up until SIGINT or SIGTERM');
  const signal = await untilSignal();
  console.log(`${signal} received: stopping`);
}

function timeout(ms: number, message: string): Promise<never> {
  return new Promise((_, reject) => setTimeout(() => reject(new Error(message)), ms).unref());
}
