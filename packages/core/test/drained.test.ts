import { describe, expect, it } from 'vitest';
import { ConfigError, createBus, memoryTransport, TimeoutError, type Transport } from '../src/index.js';

type Events = { 'job.done': { n: number } };

describe('bus.drained()', () => {
  it('resolves only after every published message was handled, with slow handlers and several consumers', async () => {
    const bus = createBus<Events>({ transports: { memory: memoryTransport() } });
    const seen: Record<string, number[]> = { a: [], b: [] };
    bus.module({
      name: 'm',
      pollIntervalMs: 20,
      batchSize: 2,
      consumers: { a: { topics: ['t'], events: ['job.done'] }, b: { topics: ['t'], events: ['job.done'] } },
      handler: async ({ consumer, payload }) => {
        await new Promise((resolve) => setTimeout(resolve, 15));
        seen[consumer]?.push(payload.n);
      },
    });
    await bus.start();
    for (let n = 0; n < 8; n++) await bus.publish('t', 'job.done', { n });
    await bus.drained({ timeoutMs: 10_000 });
    expect(seen.a).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(seen.b).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    await bus.close();
  });

  it('waits for a message that is being retried', async () => {
    const bus = createBus<Events>({ transports: { memory: memoryTransport() } });
    let calls = 0;
    bus.module({
      name: 'm',
      pollIntervalMs: 20,
      retry: { attempts: 3, baseDelayMs: 50, maxDelayMs: 50 },
      consumers: { c: { topics: ['t'], events: ['job.done'] } },
      handler: async () => {
        if (++calls < 3) throw new Error('not yet');
      },
    });
    await bus.start();
    await bus.publish('t', 'job.done', { n: 1 });
    await bus.drained({ timeoutMs: 10_000, intervalMs: 5 });
    expect(calls).toBe(3);
    await bus.close();
  });

  it('rejects with a TimeoutError naming the group when a handler does not finish in time', async () => {
    const bus = createBus<Events>({ transports: { memory: memoryTransport() } });
    let release: () => void = () => {};
    const blocked = new Promise<void>((resolve) => {
      release = resolve;
    });
    bus.module({ name: 'm', pollIntervalMs: 20, consumers: { c: { topics: ['t'], events: ['job.done'] } }, handler: () => blocked });
    await bus.start();
    await bus.publish('t', 'job.done', { n: 1 });
    await bus.publish('t', 'job.done', { n: 2 });
    const error = await bus.drained({ timeoutMs: 200 }).catch((e: unknown) => e);
    expect(TimeoutError.isInstance(error)).toBe(true);
    expect((error as Error).message).toMatch(/^\[bus\] not drained within 200 ms: .*group m-c on t: lag 1, pending 1/);
    release();
    await bus.drained({ timeoutMs: 5000 });
    await bus.close();
  });

  it('resolves at once when no module is started, and checks its options', async () => {
    const bus = createBus<Events>({ transports: { memory: memoryTransport() } });
    await bus.publish('t', 'job.done', { n: 1 });
    await expect(bus.drained({ timeoutMs: 0 })).resolves.toBeUndefined();
    const error = await bus.drained({ timeoutMs: -1 }).catch((e: unknown) => e);
    expect(ConfigError.isInstance(error)).toBe(true);
    expect((error as Error).message).toContain('drained.timeoutMs must be a number >= 0');
    await bus.close();
  });

  it('says so when a transport cannot report lag', async () => {
    const inner = memoryTransport({ name: 'nolag' });
    const { lag: _lag, ...rest } = inner;
    const transport: Transport = { ...rest, specificationVersion: 'v1', name: 'nolag', capabilities: inner.capabilities };
    const bus = createBus<Events>({ transports: { nolag: transport } });
    bus.module({ name: 'm', pollIntervalMs: 20, consumers: { c: { topics: ['t'], events: ['job.done'] } }, handler: () => {} });
    await bus.start();
    const error = await bus.drained({ timeoutMs: 1000 }).catch((e: unknown) => e);
    expect(ConfigError.isInstance(error)).toBe(true);
    expect((error as Error).message).toContain('transports.nolag.lag must be implemented for bus.drained()');
    await bus.close();
  });
});
