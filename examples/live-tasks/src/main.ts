import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { createBus, memoryTransport } from '@bus/core';
import { runModules } from '@bus/cli';
import { Redis } from 'ioredis';
import { dayOfStreaming, liveTasksBus } from './app.js';
import type { Completion } from './daily-task.js';
import { LIVE_TOPIC } from './events.js';
import { RUN_HEADER, SharedDailyLiveTask } from './shared-progress.js';
import { createTransport, type TransportName, transportName } from './transport.js';

// `pnpm start` runs on the memory transport in this process; `--transport redis|kafka` (or
// BUS_TRANSPORT) runs the tasks module from ./bus.config.ts as 2 supervised worker processes.
const name = transportName();
if (name === 'memory') await inProcess();
else await workers(name);

async function inProcess(): Promise<void> {
  const completed: Completion[] = [];
  const bus = liveTasksBus(memoryTransport(), (c) => {
    completed.push(c);
    console.log(`task daily-live-60min-100yuan completed: ${c.anchorId} on ${c.day} (${c.minutes} min live, ${c.income} yuan)`);
  });

  await bus.start();
  const entries = dayOfStreaming();
  const results = await bus.publishBatch(LIVE_TOPIC, entries);
  console.log(`published ${results.filter((r) => r.ok).length} events to "${LIVE_TOPIC}"`);

  // Wait until the module has handled the day (bounded), then drain and close.
  const deadline = Date.now() + 10_000;
  while (completed.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  await bus.close();
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
  const bus = createBus({ transports: { [transport]: createTransport(transport) }, source: 'live-app' });
  let ok = false;
  try {
    await Promise.race([supervisor.ready, timeout(60_000, 'the workers did not subscribe within 60 s')]);
    console.log(`module tasks running as ${supervisor.workers().length} worker processes on ${transport} (pids ${supervisor.workers().map((w) => w.pid).join(', ')})`);
    // Progress is kept per run (a header), so runs never mix, even with leftovers of an earlier one.
    const run = randomUUID();
    const entries = dayOfStreaming().map((e) => ({ ...e, headers: { [RUN_HEADER]: run } }));
    const results = await bus.publishBatch(LIVE_TOPIC, entries);
    console.log(`published ${results.filter((r) => r.ok).length} events to "${LIVE_TOPIC}"`);
    const deadline = Date.now() + 60_000;
    let completed: Completion[] = [];
    while (completed.length < 2 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      completed = await store.completions(run);
    }
    ok = completed.length === 2;
    if (!ok) console.error(`expected 2 completed tasks, got ${completed.length}`);
  } finally {
    const code = await supervisor.stop();
    await bus.close();
    redis.disconnect();
    if (code !== 0) console.error(`workers stopped with code ${code}`);
    process.exit(ok && code === 0 ? 0 : 1);
  }
}

function timeout(ms: number, message: string): Promise<never> {
  return new Promise((_, reject) => setTimeout(() => reject(new Error(message)), ms).unref());
}
