import { createBus, DLQ_HEADER, DLQ_ISSUES_HEADER, type IncomingMessage, memoryTransport, ValidationError } from '@bus/core';
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

describe('live-tasks events are checked against their schemas', () => {
  it('publish refuses a payload with a bad field, naming it', async () => {
    const bus = liveTasksBus(memoryTransport(), () => {});
    // biome-ignore lint/suspicious/noExplicitAny: what an untyped caller could send.
    const error = await bus.publish('live', 'anchor.income', { anchorId: 'lina', amount: -5, at: '2026-11-28T09:00:00.000Z' } as any).catch((e: unknown) => e);
    expect(ValidationError.isInstance(error)).toBe(true);
    expect((error as ValidationError).issues.map((i) => i.path)).toEqual(['amount']);
    await bus.close();
  });

  it('a message from a producer without the schemas goes to live.dlq with VALIDATION, the others are handled', async () => {
    const transport = memoryTransport();
    const completed: Completion[] = [];
    const bus = liveTasksBus(transport, (c) => completed.push(c));
    await bus.start();
    const foreign = createBus({ transports: { [transport.name]: transport } });
    await foreign.publish('live', 'live.duration', { anchorId: 'lina', minutes: 'sixty', at: 'yesterday' });
    await foreign.publishBatch('live', dayOfStreaming());
    const dead: IncomingMessage[] = [];
    const reader = await transport.subscribe(
      { group: 'reader', topics: ['live.dlq'], batchSize: 10, pollIntervalMs: 10, startFrom: 'earliest', consumerName: 'r' },
      async (batch) => {
        for (const m of batch) {
          dead.push(m);
          m.ack();
        }
      },
    );
    const deadline = Date.now() + 5000;
    while ((dead.length < 1 || completed.length < 2) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    await reader.close();
    await bus.close();
    expect(dead).toHaveLength(1);
    expect(dead[0]?.headers[DLQ_HEADER.error]).toBe('VALIDATION');
    expect(JSON.parse(dead[0]?.headers[DLQ_ISSUES_HEADER] ?? '[]').map((i: { path: string }) => i.path)).toEqual(['minutes', 'at']);
    expect(completed.map((c) => c.anchorId)).toEqual(['lina', 'wang']);
  });
});
