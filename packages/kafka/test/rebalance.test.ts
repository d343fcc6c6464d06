import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Subscription, Transport, WireRecord } from '@bus/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BROKERS, delay, requireBroker, testTransport, waitFor } from './helpers/kafka.js';

const require = createRequire(import.meta.url);
const TSX = pathToFileURL(require.resolve('tsx')).href;
const FIXTURE = fileURLToPath(new URL('./fixtures/member.ts', import.meta.url));
const TSCONFIG = fileURLToPath(new URL('./fixtures/tsconfig.json', import.meta.url));
const TOTAL = 4000;

describe('group members join, leave and crash during a run', () => {
  const transports: Transport[] = [];
  let child: ChildProcess | undefined;
  beforeAll(async () => {
    await requireBroker();
  });
  afterAll(async () => {
    child?.kill('SIGKILL');
    await Promise.all(transports.map((t) => t.close()));
  });

  it(`every one of ${TOTAL} messages is handled at least once, including those a killed member held`, async () => {
    const run = randomUUID().slice(0, 8);
    const topic = `bus-kafka-rebalance-${run}`;
    const group = `rebalance-${run}`;
    const handled = new Map<number, number>();
    const byMember = new Map<string, number>();
    const member = async (label: string): Promise<Subscription> => {
      const t = testTransport();
      transports.push(t);
      return t.subscribe({ group, topics: [topic], batchSize: 20, pollIntervalMs: 100, startFrom: 'earliest', consumerName: `${label}-${run}` }, async (batch) => {
        // Slow enough that chunks are in flight when the membership changes.
        await delay(10);
        for (const m of batch) {
          const n = Number(m.headers.n);
          handled.set(n, (handled.get(n) ?? 0) + 1);
          byMember.set(label, (byMember.get(label) ?? 0) + 1);
          m.ack();
        }
      });
    };
    const started = Date.now();
    const timeline: string[] = [];
    const mark = (what: string) => timeline.push(`${((Date.now() - started) / 1000).toFixed(1)}s ${what}`);

    const a = await member('a');
    mark('a joined');
    const producer = testTransport();
    transports.push(producer);
    let published = 0;
    const publishing = (async () => {
      for (let from = 0; from < TOTAL; from += 100) {
        const records: WireRecord[] = Array.from({ length: 100 }, (_, i) => ({ key: `k${(from + i) % 30}`, value: String(from + i), headers: { n: String(from + i) } }));
        const results = await producer.publish(topic, records);
        expect(results.every((r) => r.ok)).toBe(true);
        published += 100;
        // ~300 messages/s for ~13 s: the membership changes below happen while traffic flows.
        await delay(300);
      }
      mark(`published ${TOTAL}`);
    })();

    // A member in another process takes a chunk and dies with it unsettled.
    await waitFor('some traffic', () => published >= 300, 20_000);
    child = spawn(process.execPath, ['--import', TSX, FIXTURE], {
      env: { ...process.env, TSX_TSCONFIG_PATH: TSCONFIG, BUS_BROKERS: BROKERS.join(','), BUS_TOPIC: topic, BUS_GROUP: group },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const held = await new Promise<number[]>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the child member reported nothing within 30 s')), 30_000);
      child?.once('exit', (code) => reject(new Error(`child exited early (${code})`)));
      createInterface({ input: child?.stdout as NodeJS.ReadableStream }).on('line', (line) => {
        const msg = JSON.parse(line) as { held?: number[] };
        if (msg.held) {
          clearTimeout(timer);
          resolve(msg.held);
        }
      });
    });
    mark(`child joined and holds ${held.length} messages`);
    child.removeAllListeners('exit');
    child.kill('SIGKILL');
    mark('child killed (SIGKILL)');

    const b = await member('b');
    mark('b joined');
    await delay(1000);
    const c = await member('c');
    mark('c joined');
    await delay(1000);
    await b.close();
    mark('b left');
    await a.close();
    mark('a left');
    const d = await member('d');
    mark('d joined');

    const changesDoneAt = published;
    await publishing;
    mark(`membership changes done after ${changesDoneAt} of ${TOTAL} published`);
    await waitFor(`all ${TOTAL} handled`, () => handled.size >= TOTAL, 60_000);
    mark(`all ${TOTAL} handled`);
    await Promise.all([c.close(), d.close()]);
    const duplicates = [...handled.values()].reduce((sum, n) => sum + n - 1, 0);
    console.log(`[rebalance test] ${timeline.join(' | ')}; per member ${JSON.stringify(Object.fromEntries(byMember))}; duplicates ${duplicates}`);
    for (let n = 0; n < TOTAL; n++) if (!handled.has(n)) expect.fail(`message ${n} was never handled`);
    for (const n of held) expect(handled.has(n), `message ${n} held by the killed member`).toBe(true);
    expect(held.length).toBeGreaterThan(0);
    // The changes happened during the run, and the late members took over work.
    expect(changesDoneAt).toBeLessThan(TOTAL);
    expect(byMember.get('c') ?? 0).toBeGreaterThan(0);
    expect(byMember.get('d') ?? 0).toBeGreaterThan(0);
  }, 120_000);
});
