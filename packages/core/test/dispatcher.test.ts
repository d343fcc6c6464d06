import { describe, expect, it } from 'vitest';
import { KeyedDispatcher } from '../src/dispatcher.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('KeyedDispatcher (concurrency across batches, per-key order)', () => {
  it('never runs more than `concurrency` at once, across overlapping batches', async () => {
    const d = new KeyedDispatcher(3);
    let running = 0;
    let peak = 0;
    const run = async () => {
      running++;
      peak = Math.max(peak, running);
      await sleep(5);
      running--;
    };
    const batch = (from: number) => Array.from({ length: 10 }, (_, i) => ({ key: `k${from + i}` }));
    await Promise.all([d.run(batch(0), run), d.run(batch(10), run), d.run(batch(20), run)]);
    expect(peak).toBe(3);
  });

  it("holds per-key order across batches: a key's next message starts after its previous one finished", async () => {
    const d = new KeyedDispatcher(8);
    const log: string[] = [];
    const run = async (m: { key: string; n: number; ms: number }) => {
      log.push(`start ${m.key}${m.n}`);
      await sleep(m.ms);
      log.push(`end ${m.key}${m.n}`);
    };
    const first = d.run(
      [
        { key: 'a', n: 1, ms: 30 },
        { key: 'b', n: 1, ms: 1 },
      ],
      run,
    );
    const second = d.run(
      [
        { key: 'a', n: 2, ms: 1 },
        { key: 'b', n: 2, ms: 1 },
      ],
      run,
    );
    await Promise.all([first, second]);
    expect(log.indexOf('start a2')).toBeGreaterThan(log.indexOf('end a1'));
    expect(log.indexOf('start b2')).toBeGreaterThan(log.indexOf('end b1'));
    // The next batch does not wait for the previous batch's slowest key.
    expect(log.indexOf('end b2')).toBeLessThan(log.indexOf('end a1'));
  });

  it('a message without a key has no order; a failing run neither stalls its key nor rejects the batch', async () => {
    const d = new KeyedDispatcher(2);
    const seen: number[] = [];
    await d.run([{ key: 'x', n: 1 }, { key: 'x', n: 2 }, { n: 3 }] as { key?: string; n: number }[], async (m) => {
      seen.push(m.n);
      if (m.n === 1) throw new Error('boom');
    });
    expect(seen.sort()).toEqual([1, 2, 3]);
  });
});
