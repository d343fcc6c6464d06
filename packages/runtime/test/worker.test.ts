// The worker lifecycle in one process: signals are emitted on `process` (no real signal), and
// `exit` is a spy, so every step is observable.
import { afterEach, describe, expect, it } from 'vitest';
import { exitOnEarlySignals, runWorker } from '../src/index.js';

const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));

/** A bus-like target that records what happened to it. */
function fakeBus(startMs = 0) {
  const events: string[] = [];
  return {
    events,
    start: async (o?: { modules?: readonly string[] }) => {
      events.push(`start ${o?.modules?.join(',') ?? 'all'}`);
      await tick(startMs);
    },
    close: async () => {
      events.push('close');
    },
  };
}

afterEach(() => {
  for (const s of ['SIGTERM', 'SIGINT'] as const) process.removeAllListeners(s);
  process.removeAllListeners('disconnect');
});

describe('exitOnEarlySignals', () => {
  it('exits with 0 at once on a signal until a real handler takes over; then the real one runs', async () => {
    const exits: number[] = [];
    exitOnEarlySignals({ exit: (c) => exits.push(c) });
    process.emit('SIGTERM', 'SIGTERM');
    expect(exits).toEqual([0]);

    const bus = fakeBus();
    const worker = await runWorker(bus, { exit: (c) => exits.push(100 + c) });
    expect(process.listenerCount('SIGTERM'), 'one handler, never two').toBe(1);
    process.emit('SIGTERM', 'SIGTERM');
    await tick(10);
    expect(exits).toEqual([0, 100]);
    expect(bus.events).toEqual(['start all', 'close']);
    expect(worker.health).toBeUndefined();
  });
});

describe('runWorker', () => {
  it('drains and exits 0 on a signal during setup, without starting, and closes what setup returned', async () => {
    const exits: number[] = [];
    const bus = fakeBus();
    let closedSetup = 0;
    const running = runWorker(bus, {
      modules: ['a', 'b'],
      exit: (c) => exits.push(c),
      setup: async () => {
        await tick(100);
        return { close: async () => void closedSetup++ };
      },
    });
    await tick(20);
    process.emit('SIGTERM', 'SIGTERM');
    await running;
    await tick(10);
    expect(exits).toEqual([0]);
    expect(bus.events).toEqual(['close']);
    expect(closedSetup).toBe(1);
  });

  it('starts modules one by one, serves /ready per module, and closes setup after the bus', async () => {
    const exits: number[] = [];
    const order: string[] = [];
    const bus = fakeBus(150);
    const running = runWorker(bus, {
      modules: ['a', 'b'],
      exit: (c) => exits.push(c),
      health: [
        { port: 0, modules: ['a'] },
        { port: 0, modules: ['b'] },
      ],
      setup: () => ({ close: async () => void order.push('setup closed') }),
    });
    await tick(200);
    const worker = await running;
    expect(bus.events).toEqual(['start a', 'start b']);
    expect(worker.health?.port).toBeGreaterThan(0);
    const res = await fetch(`http://127.0.0.1:${worker.health?.port}/ready`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'ready', detail: { modules: ['a'] } });
    bus.close = async () => void order.push('bus closed');
    worker.shutdown();
    await tick(20);
    expect(order).toEqual(['bus closed', 'setup closed']);
    expect(exits).toEqual([0]);
  });

  it('rejects when a module fails to start, after closing the bus; no handler is left behind', async () => {
    const bus = fakeBus();
    bus.start = async () => {
      throw new Error('WRONGPASS invalid username-password pair');
    };
    await expect(runWorker(bus, { modules: ['a'], exit: () => {} })).rejects.toThrow('WRONGPASS');
    expect(bus.events).toEqual(['close']);
    expect(process.listenerCount('SIGTERM')).toBe(0);
  });
});
