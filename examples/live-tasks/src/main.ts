import { memoryTransport } from '@bus/core';
import { dayOfStreaming, liveTasksBus } from './app.js';
import type { Completion } from './daily-task.js';
import { LIVE_TOPIC } from './events.js';

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
