// The conformance suite must fail a transport that breaks the contract, and must report what it did
// not run as skipped. Its tests are collected through a fake TestApi and run here, against the memory
// transport and against deliberately broken wrappers of it.
import { describe, expect, it } from 'vitest';
import { type BatchHandler, type IncomingMessage, memoryBroker, memoryTransport, type Transport } from '../src/index.js';
import { type ConformanceOptions, publishTests, type RunnerContext, runTransportConformance, type TestApi } from '../src/testing/index.js';

interface Collected {
  title: string;
  fn: (context?: RunnerContext) => Promise<void>;
  timeoutMs: number | undefined;
}

/** Registers the suite into a list instead of a runner. */
function collect(register: (api: TestApi) => void): Collected[] {
  const tests: Collected[] = [];
  register({
    describe: (_name, fn) => fn(),
    it: (title, fn, timeoutMs) => void tests.push({ title, fn, timeoutMs }),
  });
  return tests;
}

class Skipped extends Error {}

type Result = { status: 'passed' } | { status: 'skipped'; note: string } | { status: 'failed'; error: string };

/** Runs one collected test the way vitest would, with a context whose skip() throws. */
async function run(test: Collected, context: RunnerContext | undefined = { skip: (note) => { throw new Skipped(note); } }): Promise<Result> {
  try {
    await test.fn(context);
    return { status: 'passed' };
  } catch (error) {
    if (error instanceof Skipped) return { status: 'skipped', note: error.message };
    return { status: 'failed', error: error instanceof Error ? error.message : String(error) };
  }
}

const OPTIONS = { pollIntervalMs: 20, waitMs: 1500, testTimeoutMs: 30_000 } satisfies Partial<ConformanceOptions>;

/** The suite's tests whose title starts with `prefix`, for transports made by `make` (one broker per test). */
function suiteTest(prefix: string, make: (inner: Transport) => Transport): Collected {
  let broker = memoryBroker();
  let current = '';
  const tests = collect((api) =>
    runTransportConformance(api, {
      ...OPTIONS,
      createTransport: ({ test }) => {
        if (test !== current) {
          current = test;
          broker = memoryBroker();
        }
        return make(memoryTransport({ broker }));
      },
    }),
  );
  const found = tests.filter((t) => t.title.startsWith(prefix));
  if (found.length !== 1) throw new Error(`${found.length} suite tests start with "${prefix}"`);
  return found[0] as Collected;
}

/** Wraps a transport's subscribe; the rest is delegated. */
function wrap(inner: Transport, subscribe: Transport['subscribe']): Transport {
  return {
    specificationVersion: inner.specificationVersion,
    name: `broken-${inner.name}`,
    capabilities: inner.capabilities,
    publish: (topic, records) => inner.publish(topic, records),
    subscribe,
    close: () => inner.close(),
  };
}

/** A message whose ack and nack do nothing. */
function inert(m: IncomingMessage): IncomingMessage {
  return { topic: m.topic, id: m.id, key: m.key, value: m.value, headers: m.headers, deliveryCount: m.deliveryCount, ack() {}, nack() {} };
}

/** Acknowledges every message it delivered, whatever the handler did with it. */
const acksEverything = (inner: Transport) =>
  wrap(inner, (options, handler) =>
    inner.subscribe(options, async (batch) => {
      try {
        await handler(batch.map(inert));
      } finally {
        for (const m of batch) m.ack();
      }
    }),
  );

/** Hands out as many messages per call as it has, whatever `batchSize` says. */
const ignoresBatchSize = (inner: Transport) => wrap(inner, (options, handler) => inner.subscribe({ ...options, batchSize: 1000 }, handler));

/**
 * Fetches several batches at once and hands them to the handler one after the other without looking
 * at close(): the drivers' old "check the stop only between reads".
 */
const startsHandlersAfterClose = (inner: Transport) =>
  wrap(inner, (options, handler: BatchHandler) =>
    inner.subscribe({ ...options, batchSize: options.batchSize * 5 }, async (batch) => {
      for (let i = 0; i < batch.length; i += options.batchSize) await handler(batch.slice(i, i + options.batchSize));
    }),
  );

/** Runs the handler calls of one fetch side by side while declaring `concurrentBatches: false`. */
const overlapsHandlerCalls = (inner: Transport) =>
  wrap(inner, (options, handler: BatchHandler) =>
    inner.subscribe({ ...options, batchSize: options.batchSize * 3 }, async (batch) => {
      const calls: Promise<void>[] = [];
      for (let i = 0; i < batch.length; i += options.batchSize) calls.push(handler(batch.slice(i, i + options.batchSize)));
      await Promise.all(calls);
    }),
  );

/** Per breakage: the suite tests (title prefix) that must fail, and why. */
const CASES: [string, (inner: Transport) => Transport, [string, RegExp][]][] = [
  [
    'acks everything regardless of the handler',
    acksEverything,
    [
      ['nack: a nacked message is delivered again', /waiting for a redelivery/],
      ['no ack: a message left unsettled', /waiting for the unsettled message again/],
      ['a batch handler that throws', /waiting for all 3 after the failure/],
      ['the first settlement wins', /waiting for message 1 again/],
      ['redelivery after a crashed member', /waiting for the held messages on the surviving instance/],
      ['bus drain (batchSize 10, concurrency 1)', /waiting for the 9 unstarted messages on the next member/],
      ['bus: a handler cut off by close', /waiting for the redelivery/],
    ],
  ],
  ['ignores batchSize', ignoresBatchSize, [['batches never exceed batchSize', /largest batch \d+ > 7/]]],
  ['overlaps handler calls without declaring concurrentBatches', overlapsHandlerCalls, [['one handler call at a time per subscription', /batch handler calls of one subscription overlapped/]]],
  [
    'starts handlers after close',
    startsHandlersAfterClose,
    [['close waits for the running batch handler, commits what it acknowledged and hands nothing more', /the handler was called \d+ time\(s\) after close began/]],
  ],
];

describe('the conformance suite fails a broken transport', () => {
  for (const [breakage, make, titles] of CASES) {
    for (const [title, why] of titles) {
      it(`${breakage}: fails "${title}…" (which the memory transport passes)`, async () => {
        expect(await run(suiteTest(title, (t) => t))).toEqual({ status: 'passed' });
        const result = await run(suiteTest(title, make));
        expect(result).toEqual({ status: 'failed', error: expect.stringMatching(why) });
      }, 60_000);
    }
  }
});

describe('the conformance suite reports what it did not run as skipped', () => {
  const lacking = (): ConformanceOptions => ({ ...OPTIONS, createTransport: () => memoryTransport(), capabilities: { nativeBatching: false } });

  it('an undeclared capability is skipped with its reason, never passed: "2 passed, 1 skipped"', async () => {
    const results = await Promise.all(collect((api) => publishTests(api, lacking())).map((t) => run(t)));
    expect(results.filter((r) => r.status === 'passed')).toHaveLength(2);
    expect(results.filter((r) => r.status === 'skipped')).toEqual([{ status: 'skipped', note: 'the transport does not declare nativeBatching' }]);
  });

  it('a runner without skip() fails the test loudly instead of passing it', async () => {
    const nativeBatching = collect((api) => publishTests(api, lacking())).find((t) => t.title.startsWith('nativeBatching')) as Collected;
    const result = await run(nativeBatching, {});
    expect(result.status).toBe('failed');
    expect((result as { error: string }).error).toMatch(/cannot skip: your runner gives no skip\(\)/);
  });

  it("node:test's skip(), which does not throw, ends the test without running it", async () => {
    let created = 0;
    let published = 0;
    const notes: string[] = [];
    const tests = collect((api) =>
      publishTests(api, {
        ...lacking(),
        createTransport: () => {
          created++;
          const t = memoryTransport();
          const publish = t.publish.bind(t);
          t.publish = (topic, records) => {
            published++;
            return publish(topic, records);
          };
          return t;
        },
      }),
    );
    const nativeBatching = tests.find((t) => t.title.startsWith('nativeBatching')) as Collected;
    expect(await run(nativeBatching, { skip: (note) => void notes.push(note ?? '') })).toEqual({ status: 'passed' });
    expect(notes).toEqual(['the transport does not declare nativeBatching']);
    expect(created).toBe(1);
    expect(published).toBe(0);
  });

  it('mocha: the skip() of `this` is used when no context is passed', async () => {
    const nativeBatching = collect((api) => publishTests(api, lacking())).find((t) => t.title.startsWith('nativeBatching')) as Collected;
    const notes: string[] = [];
    const mochaContext = { skip: (note?: string) => void notes.push(note ?? '') };
    await nativeBatching.fn.call(mochaContext);
    expect(notes).toHaveLength(1);
    expect(nativeBatching.fn.length).toBe(0);
  });

  it('the reconnect test without restartBroker is skipped, not left out', async () => {
    const tests = collect((api) => runTransportConformance(api, { ...OPTIONS, createTransport: () => memoryTransport() }));
    const reconnect = tests.find((t) => t.title.startsWith('reconnect')) as Collected;
    expect(await run(reconnect)).toEqual({ status: 'skipped', note: 'no restartBroker option was given' });
  });
});
