import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { type Bus, createBus, DLQ_HEADER, type IncomingMessage } from '@bus/core';
import { delayTests } from '@bus/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { route, tierTopics } from '../src/delays.js';
import { BROKERS, type DedicatedBroker, delay, requireBroker, startDedicatedBroker, testTransport, waitFor } from './helpers/kafka.js';

const require = createRequire(import.meta.url);
const TSX = pathToFileURL(require.resolve('tsx')).href;
const FIXTURE = fileURLToPath(new URL('./fixtures/retrying.ts', import.meta.url));
const TSCONFIG = fileURLToPath(new URL('./fixtures/tsconfig.json', import.meta.url));
const run = randomUUID().slice(0, 8);

describe('delay tiers', () => {
  it('route: the longest tier not longer than what remains, released after exactly that tier', () => {
    const now = 1_000_000;
    expect(route('t', now, now)).toEqual({ topic: 't' });
    expect(route('t', now + 50, now)).toEqual({ topic: 't.delay.100ms', release: now + 50 });
    expect(route('t', now + 1500, now)).toEqual({ topic: 't.delay.1s', release: now + 1000 });
    expect(route('t', now + 25 * 60_000, now)).toEqual({ topic: 't.delay.10m', release: now + 600_000 });
    expect(route('t', now + 5 * 3_600_000, now)).toEqual({ topic: 't.delay.1h', release: now + 3_600_000 });
    expect(tierTopics('t')).toEqual(['t.delay.100ms', 't.delay.1s', 't.delay.10s', 't.delay.1m', 't.delay.10m', 't.delay.1h']);
  });
});

describe('kafka delays (conformance, shared broker)', () => {
  beforeAll(async () => {
    await requireBroker();
  }, 30_000);
  delayTests({ describe, it }, { createTransport: () => testTransport(BROKERS), prefix: `bus-delay-${run}`, pollIntervalMs: 100, waitMs: 20_000, delayMs: 1500 });
});

describe('kafka delays across restarts and crashes', () => {
  it('the attempt count survives a SIGKILL of the consumer while a retry waits; the dead letter comes after the last attempt', async () => {
    const topic = `bus-delay-jobs-${randomUUID().slice(0, 8)}`;
    const moduleName = `retrier-${randomUUID().slice(0, 8)}`;
    const group = `${moduleName}-c`;
    const backoff = 5000;
    const t = testTransport(BROKERS);
    let child: ChildProcess | undefined;
    const attempts: number[] = [];
    try {
      child = spawn(process.execPath, ['--import', TSX, FIXTURE], {
        env: { ...process.env, TSX_TSCONFIG_PATH: TSCONFIG, BUS_BROKERS: BROKERS.join(','), BUS_TOPIC: topic, BUS_MODULE: moduleName, BUS_BACKOFF_MS: String(backoff) },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('the child reported nothing within 40 s')), 40_000);
        lines.on('line', (line) => {
          const msg = JSON.parse(line) as { ready?: boolean; attempt?: number };
          if (msg.attempt !== undefined) attempts.push(msg.attempt);
          if (msg.ready) {
            clearTimeout(timer);
            resolve();
          }
        });
      });
      const bus = createBus({ transports: { kafka: t } });
      await bus.publish(topic, 'job.failed', { n: 1 });
      // Attempt 1 failed; the retry is stored (before the commit) and the original committed: kill mid-retry.
      const deadline = Date.now() + 30_000;
      for (;;) {
        const [lag] = (await t.lag?.(group, [topic])) ?? [];
        // (Attempt 1 may run twice: when storing its retry fails, e.g. creating the tier topics on a
        // busy broker, the message is released and comes again as attempt 1.)
        if (attempts.length >= 1 && attempts.every((a) => a === 1) && lag?.lag === 0) break;
        if (Date.now() > deadline) throw new Error(`attempt 1 was not committed in time (attempts ${attempts}, lag ${lag?.lag})`);
        await delay(50);
      }
      const exited = new Promise((r) => child?.once('exit', r));
      child.kill('SIGKILL');
      await exited;
      expect(attempts.length).toBeGreaterThan(0);
      expect(attempts.every((a) => a === 1)).toBe(true);

      const dead: IncomingMessage[] = [];
      const seen: number[] = [];
      const successor = createBus({ transports: { kafka: testTransport(BROKERS) } });
      successor.module({
        name: moduleName,
        consumers: { c: { topics: [topic], events: ['job.failed'] } },
        pollIntervalMs: 100,
        lagIntervalMs: 0,
        retry: { mode: 'redeliver', attempts: 3, baseDelayMs: backoff / 5, maxDelayMs: backoff / 5, jitter: 0 },
        handler: (ctx) => {
          seen.push(ctx.message.attempt);
          throw new Error('always failing');
        },
      });
      await successor.start();
      const dlq = await t.subscribe({ group: `dlq-${run}`, topics: [`${topic}.dlq`], batchSize: 10, pollIntervalMs: 100, startFrom: 'earliest', consumerName: 'r' }, async (batch) => {
        for (const m of batch) {
          dead.push(m);
          m.ack();
        }
      });
      try {
        await waitFor('the dead letter', () => dead.length >= 1, 60_000);
      } finally {
        await dlq.close();
        await successor.close();
      }
      expect(seen, 'the successor went on from attempt 2').toEqual([2, 3]);
      expect(dead[0]?.headers[DLQ_HEADER.attempts]).toBe('3');
      expect(dead[0]?.headers[DLQ_HEADER.topic]).toBe(topic);
    } finally {
      child?.kill('SIGKILL');
      await t.close();
    }
  }, 150_000);

  describe('on a broker of its own', () => {
    let broker: DedicatedBroker | undefined;
    beforeAll(async () => {
      const port = Number(process.env.BUS_TEST_KAFKA_PORT);
      const controller = Number(process.env.BUS_TEST_KAFKA_CONTROLLER_PORT);
      broker = await startDedicatedBroker(port && controller ? { port, controller } : undefined);
    }, 180_000);
    afterAll(async () => {
      await broker?.dispose();
    }, 60_000);

    it('a delayed message survives the exit of every process and a broker crash, and is never delivered early', async () => {
      const b = broker as DedicatedBroker;
      type Events = { 'reminder.due': { n: number } };
      const topic = `reminders-${run}`;
      const got: { n: number; at: number }[] = [];
      const moduleDef = (bus: Bus<Events>) =>
        bus.module({
          name: 'reminders',
          consumers: { c: { topics: [topic], events: ['reminder.due'] } },
          pollIntervalMs: 100,
          lagIntervalMs: 0,
          handler: (ctx) => {
            got.push({ n: ctx.payload.n, at: Date.now() });
          },
        });
      const first = createBus<Events>({ transports: { kafka: testTransport(b.brokers) } });
      moduleDef(first);
      await first.start();
      const publishedAt = Date.now();
      const dueSoon = publishedAt + 2500;
      const dueLater = publishedAt + 30_000;
      await first.publish(topic, 'reminder.due', { n: 1 }, { deliverAt: new Date(dueSoon) });
      await first.publish(topic, 'reminder.due', { n: 2 }, { deliverAt: dueLater });
      await first.close();
      // Every process is gone; then the broker is killed (SIGKILL) and started on its data.
      await b.crash();
      await delay(Math.max(0, dueSoon + 200 - Date.now()));
      expect(got, 'nothing runs while no process is up').toEqual([]);
      const second = createBus<Events>({ transports: { kafka: testTransport(b.brokers) } });
      moduleDef(second);
      await second.start();
      try {
        await waitFor('the overdue message', () => got.length >= 1, 60_000);
        expect(got[0]?.n).toBe(1);
        if (Date.now() < dueLater) expect(got.find((g) => g.n === 2), 'the later message is not early').toBeUndefined();
        await waitFor('the later message', () => got.length >= 2, Math.max(0, dueLater - Date.now()) + 30_000);
        expect(got[1]?.n).toBe(2);
        expect(got[1]?.at).toBeGreaterThanOrEqual(dueLater);
      } finally {
        await second.close();
      }
    }, 180_000);
  });
});
