import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createBus, type Bus } from '../bus.js';
import { type Codec, jsonCodec } from '../codec.js';
import type { WireRecord } from '../envelope.js';
import type { JobLabels, MessageOutcome, Metrics } from '../metrics.js';
import { noopMetrics } from '../metrics.js';
import type { IncomingMessage, PublishResult, SubscribeOptions, Subscription, Transport, TransportCapabilities } from '../transport.js';

/**
 * What the suite may receive as the first argument of a test function: the runner's test context.
 * vitest passes one with `skip(note)`; node:test passes `t` with `t.skip(note)`; mocha binds `this`
 * with `this.skip()`. Jest has no runtime skip.
 */
export interface RunnerContext {
  skip?: (note?: string) => unknown;
}

/**
 * The test functions of your runner: `it(name, fn, timeoutMs)`. The suite calls `fn` with the
 * runner's test context, whose `skip(note)` it uses for what the transport does not declare:
 * pass the context through if you wrap `it`.
 *
 * | runner | how | skips show as |
 * | --- | --- | --- |
 * | vitest | `{ describe, it }` | skipped (`ctx.skip(note)`) |
 * | node:test | `{ describe, it: (n, fn, ms) => it(n, { timeout: ms }, (t) => fn(t)) }` | skipped (`t.skip(note)`) |
 * | mocha | `{ describe, it: (n, fn, ms) => it(n, function () { this.timeout(ms ?? 0); return fn(this); }) }` | pending (`this.skip()`) |
 * | jest | — | a failure: "cannot skip: your runner gives no skip()" (declare the capability off with `capabilities`, or use another runner) |
 */
export interface TestApi {
  describe(name: string, fn: () => void): void;
  it(name: string, fn: (context?: RunnerContext) => Promise<void>, timeoutMs?: number): void;
}

/** The context `createTransport` gets. */
export interface TransportRequest {
  /** Title of the test the transport is for (e.g. to point the reconnect test at a broker of its own). */
  test: string;
  /**
   * 1 for the test's first transport, 2, 3… for the further instances a test makes. Every instance
   * of one test must reach the same broker (the same messages and consumer groups), as separate
   * processes would.
   */
  instance: number;
}

export interface ConformanceOptions {
  /**
   * Makes a new transport; the suite closes each one it makes. Several calls within one test (see
   * {@link TransportRequest.instance}) must reach the same broker: for `memoryTransport`, pass one
   * `memoryBroker()` to all of them.
   */
  createTransport: (context: TransportRequest) => Transport | Promise<Transport>;
  /** Stops and starts the broker (for the reconnect test). Without it that test is skipped. */
  restartBroker?: () => Promise<void>;
  /** Prefix of the topics and groups the suite creates. @default 'conformance' */
  prefix?: string;
  /** Longest wait for an expected delivery, in ms. @default 10000 */
  waitMs?: number;
  /** `pollIntervalMs` of the suite's subscriptions. @default 100 */
  pollIntervalMs?: number;
  /** Timeout of each test, in ms. @default 60000 */
  testTimeoutMs?: number;
  /**
   * Overrides of the capabilities the transport declares: `false` (or `ordering: 'none'`) skips the
   * tests of a capability a test setup lacks.
   * @default {}
   */
  capabilities?: Partial<TransportCapabilities>;
  /**
   * Stress mode: registers tests that each run this many copies of a core case (publish/subscribe,
   * group sharing, redelivery, order) in parallel, each copy on a transport of its own. Off below 2.
   * @default 0
   */
  stress?: number;
}

/** What a test needs from the transport: a declared capability, or per-key order across members. */
export type Need = Exclude<keyof TransportCapabilities, 'ordering'> | 'ordering' | 'ordering:key';

/** Thrown to mark a skip where the runner has no skip of its own (the suite's own fake runners). */
const CANNOT_SKIP = 'cannot skip: your runner gives no skip() (vitest, node:test and mocha do; see TestApi)';

/** The events the suite's buses know. */
export type SuiteEvents = { 'test.happened': { n: number }; 'test.other': { n: number } };

/** One delivery outcome the suite's recording metrics saw. */
export interface SettledRecord {
  labels: JobLabels;
  outcome: MessageOutcome;
}

/** Per-test helpers: the transport under test, more instances, and what they declare. */
export interface TestEnv {
  /** The capabilities of the transport, with the suite's overrides. */
  capabilities: TransportCapabilities;
  /** Another transport instance on the same broker; closed at the end of the test. */
  another(): Promise<Transport>;
}

/**
 * The helpers shared by the feature files: names, records, subscriptions and bounded waits. One per
 * feature function call.
 */
export class Harness {
  readonly waitMs: number;
  readonly poll: number;
  readonly timeout: number;
  readonly prefix: string;
  readonly stress: number;
  readonly codec: Codec = jsonCodec();

  constructor(
    readonly api: TestApi,
    readonly options: ConformanceOptions,
  ) {
    this.waitMs = options.waitMs ?? 10_000;
    this.poll = options.pollIntervalMs ?? 100;
    this.timeout = options.testTimeoutMs ?? 60_000;
    this.prefix = options.prefix ?? 'conformance';
    this.stress = options.stress ?? 0;
  }

  name(what: string): string {
    return `${this.prefix}-${what}-${randomUUID().slice(0, 8)}`;
  }

  /**
   * Registers a test that gets a fresh transport (closed afterwards). When the transport does not
   * declare everything in `needs`, the test is reported skipped by the runner, never passed.
   * `unless` gives a reason to skip that is not a missing capability (e.g. a missing option or
   * optional method, or a capability the test must not see).
   */
  test(
    title: string,
    needs: readonly Need[],
    fn: (t: Transport, env: TestEnv) => Promise<void>,
    options: { timeoutMs?: number; unless?: string | ((capabilities: TransportCapabilities, transport: Transport) => string | undefined) } = {},
  ): void {
    const harness = this;
    // `function` with a rest parameter: mocha binds its context to `this`, and reads the arity to
    // decide whether the test takes a `done` callback (0 here: it returns a promise).
    const body = async function (this: unknown, ...args: unknown[]): Promise<void> {
      const runner = (args[0] ?? this) as RunnerContext | undefined;
      const made: Transport[] = [];
      const make = async () => {
        const t = await harness.options.createTransport({ test: title, instance: made.length + 1 });
        made.push(t);
        return t;
      };
      try {
        const t = await make();
        const capabilities = { ...t.capabilities, ...harness.options.capabilities };
        const unless = typeof options.unless === 'function' ? options.unless(capabilities, t) : options.unless;
        const reason = unless ?? missing(capabilities, needs);
        if (reason) {
          await closeAll(made);
          skip(runner, reason);
          return;
        }
        await fn(t, { capabilities, another: make });
      } finally {
        await closeAll(made);
      }
    };
    this.api.it(title, body, options.timeoutMs ?? this.timeout);
  }

  record(n: number, extra: Partial<WireRecord> = {}, event = 'test.happened'): WireRecord {
    const r = this.codec.encode({ id: `${n}`, event, payload: { n }, publishedAt: Date.now(), headers: { 'x-n': String(n) } });
    return { ...r, ...extra, headers: { ...r.headers, ...extra.headers } };
  }

  records(from: number, to: number, extra: Partial<WireRecord> = {}): WireRecord[] {
    return Array.from({ length: to - from }, (_, i) => this.record(from + i, extra));
  }

  numberOf(m: IncomingMessage): number {
    return (this.codec.decode(m).payload as { n: number }).n;
  }

  async publishAll(t: Transport, topic: string, list: WireRecord[]): Promise<PublishResult[]> {
    const results = await t.publish(topic, list);
    assert.equal(results.length, list.length, 'one publish result per record');
    for (const [i, r] of results.entries()) assert.ok(r.ok, `record ${i} published: ${r.ok ? '' : r.error.message}`);
    return results;
  }

  subscribe(
    t: Transport,
    topics: string[],
    group: string,
    handler: (batch: IncomingMessage[]) => Promise<void> | void,
    extra: Partial<SubscribeOptions> = {},
  ): Promise<Subscription> {
    return t.subscribe(
      { group, topics, batchSize: 10, pollIntervalMs: this.poll, startFrom: 'earliest', consumerName: this.name('member'), ...extra },
      async (batch) => {
        await handler(batch);
      },
    );
  }

  /** Subscribes a member that acks everything and records the payload numbers (and keys) it saw. */
  async collector(t: Transport, topics: string[], group: string, extra: Partial<SubscribeOptions> = {}) {
    const seen: number[] = [];
    const batches: number[] = [];
    const messages: IncomingMessage[] = [];
    const sub = await this.subscribe(
      t,
      topics,
      group,
      (batch) => {
        batches.push(batch.length);
        for (const m of batch) {
          seen.push(this.numberOf(m));
          messages.push(m);
          m.ack();
        }
      },
      extra,
    );
    return { seen, batches, messages, sub };
  }

  async waitFor(what: string, predicate: () => boolean, ms = this.waitMs): Promise<void> {
    const deadline = Date.now() + ms;
    while (!predicate()) {
      if (Date.now() > deadline) assert.fail(`timed out after ${ms} ms waiting for ${what}`);
      await delay(20);
    }
  }

  /** Waits `ms` and checks that `predicate` stayed true throughout. */
  async holds(what: string, predicate: () => boolean, ms = Math.min(this.waitMs, 1500)): Promise<void> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      assert.ok(predicate(), what);
      await delay(25);
    }
    assert.ok(predicate(), what);
  }

  /** A bus on `t` that leaves `t` open (the test owns it), with metrics recording each settlement. */
  busOn(t: Transport): Bus<SuiteEvents> & { settled: SettledRecord[] } {
    // Methods bound, not a prototype copy: a class transport with #private fields works too.
    const shared: Transport = {
      specificationVersion: t.specificationVersion,
      name: t.name,
      capabilities: t.capabilities,
      publish: (topic, records) => t.publish(topic, records),
      subscribe: (options, handler) => t.subscribe(options, handler),
      close: async () => {},
    };
    if (t.attach) shared.attach = (context) => t.attach?.(context);
    if (t.lag) shared.lag = (group, topics) => t.lag?.(group, topics) ?? Promise.resolve([]);
    const settled: SettledRecord[] = [];
    const metrics: Metrics = { ...noopMetrics, settled: (labels, outcome) => void settled.push({ labels: { ...labels }, outcome }) };
    return Object.assign(createBus<SuiteEvents>({ transports: { t: shared }, metrics }), { settled });
  }

  /** Reads `<topic>.dlq` from the start, acking everything. */
  async dlqReader(t: Transport, topic: string) {
    const got: IncomingMessage[] = [];
    const sub = await this.subscribe(t, [`${topic}.dlq`], this.name('dlq-reader'), (batch) => {
      for (const m of batch) {
        got.push(m);
        m.ack();
      }
    });
    return { got, sub };
  }
}

function missing(capabilities: TransportCapabilities, needs: readonly Need[]): string | undefined {
  const lacking = needs.filter((need) => {
    if (need === 'ordering:key') return capabilities.ordering !== 'key';
    if (need === 'ordering') return capabilities.ordering === 'none';
    return !capabilities[need];
  });
  if (lacking.length === 0) return undefined;
  const described = lacking.map((need) => (need === 'ordering:key' ? `ordering: 'key' (declared '${capabilities.ordering}')` : need === 'ordering' ? `ordering (declared 'none')` : `${need}`));
  return `the transport does not declare ${described.join(', ')}`;
}

function skip(runner: RunnerContext | undefined, note: string): void {
  if (typeof runner?.skip !== 'function') throw new Error(`[bus/testing] ${CANNOT_SKIP}; this test needs to be skipped: ${note}`);
  // vitest and mocha throw from skip(); node:test marks the test and the caller returns.
  runner.skip(note);
}

async function closeAll(transports: Transport[]): Promise<void> {
  const list = transports.splice(0);
  await Promise.all(list.map((t) => t.close()));
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i);
}

export function uniqueSorted(values: number[]): number[] {
  return [...new Set(values)].sort((a, b) => a - b);
}

/** A promise and its resolver, to hold a handler until the test lets it go. */
export function gate(): { wait: Promise<void>; open: () => void } {
  let open = () => {};
  const wait = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { wait, open };
}
