import { describe, expect, it } from 'vitest';
import { createBus, memoryTransport } from '../src/index.js';
import { delayTests } from '../src/testing/delays.js';

describe('memoryTransport delays', () => {
  delayTests({ describe, it }, { createTransport: () => memoryTransport(), pollIntervalMs: 20, waitMs: 5000, delayMs: 300 });
});

describe('delayed publish options', () => {
  it('rejects delayMs with deliverAt, and a transport without delays', async () => {
    const t = memoryTransport();
    const bus = createBus({ transports: { t } });
    await expect(bus.publish('x', 'e', {}, { delayMs: 10, deliverAt: Date.now() })).rejects.toThrow(/delayMs or deliverAt/);
    await expect(bus.publish('x', 'e', {}, { delayMs: Number.NaN })).rejects.toThrow(/options.delayMs/);
    await bus.close();
    const { publishDelayed: _, ...plain } = memoryTransport();
    const bare = createBus({ transports: { t: { ...plain, capabilities: { ...plain.capabilities, delays: false } } } });
    await expect(bare.publish('x', 'e', {}, { delayMs: 10 })).rejects.toThrow(/no delayed delivery/);
    await bare.close();
  });
});
