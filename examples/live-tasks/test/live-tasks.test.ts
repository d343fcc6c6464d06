import { memoryTransport } from '@bus/core';
import { describe, expect, it } from 'vitest';
import { dayOfStreaming, liveTasksBus } from '../src/app.js';
import type { Completion } from '../src/daily-task.js';

describe('live-tasks example', () => {
  it('marks the daily task complete for exactly the streamers who reached 60 minutes and 100 yuan', async () => {
    const completed: Completion[] = [];
    const bus = liveTasksBus(memoryTransport(), (c) => completed.push(c));
    await bus.start();
    const results = await bus.publishBatch('live', dayOfStreaming());
    expect(results.every((r) => r.ok)).toBe(true);
    const deadline = Date.now() + 5000;
    while (completed.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 300));
    await bus.close();
    expect(completed).toEqual([
      { anchorId: 'lina', day: '2026-11-28', minutes: 75, income: 120 },
      { anchorId: 'wang', day: '2026-11-28', minutes: 60, income: 100 },
    ]);
  });
});
