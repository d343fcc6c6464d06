import { type Codec, jsonCodec } from './codec.js';
import { type DrainedOptions, waitDrained } from './drained.js';
import { OptionReader } from './config.js';
import { type OptionPath, opt } from './kit/schema.js';
import { DELAY_HEADER, type DelayOptions, type DelayedRecord, dueTime } from './delay.js';
import type { Envelope, Headers, WireRecord } from './envelope.js';
import { BusError, ClosedError, ConfigError, PublishError } from './errors.js';
import type { BatchEntry, EventMap, EventName } from './events.js';
import { uuidv7 } from './id.js';
import { type Logger, silentLogger } from './logger.js';
import { type Metrics, noopMetrics } from './metrics.js';
import type { ModuleDefinition } from './module.js';
import { type ResolvedModule, resolveModule } from './module.js';
import { ModuleRunner } from './router.js';
import { noopTracing, type Tracing } from './tracing.js';
import type { PublishResult, Transport } from './transport.js';
import { type EventDefinitions, type InferEvents, readEventsOption, validateBatch, validatePayload } from './validation.js';

export interface BusOptions {
  /** Transports by name, e.g. `{ redis: redisStream(...), kafka: kafka(...) }`. The bus closes them. */
  transports: Record<string, Transport>;
  /** Transport used when a publish or module names none. @default the only transport, when there is one */
  defaultTransport?: string;
  /** @default jsonCodec() */
  codec?: Codec;
  /** @default noopMetrics */
  metrics?: Metrics;
  /** @default noopTracing */
  tracing?: Tracing;
  /** @default silentLogger */
  logger?: Logger;
  /** Producer name written into every envelope (`ce_source`). @default omitted */
  source?: string;
  /**
   * The events as schemas, from {@link defineEvents}: the event map is inferred from them, payloads
   * are validated on publish and before the handler. @default no validation
   */
  events?: EventDefinitions;
}

/**
 * Options of one publish. `delayMs` / `deliverAt` ({@link DelayOptions}) delay the delivery: the
 * message is handed to no consumer before its time (needs a transport with `capabilities.delays`;
 * others reject it with a `PublishError`). A delayed message carries its due time in the
 * `bus-deliver-at` header.
 */
export interface PublishOptions extends DelayOptions {
  /** Ordering / partition key. */
  key?: string;
  headers?: Headers;
  /** @default the bus's `defaultTransport` */
  transport?: string;
}

/** What a successful publish returns. */
export interface PublishReceipt {
  /** Envelope id (UUIDv7). */
  id: string;
  /** The broker's position (Redis stream id, Kafka `partition:offset`). */
  position: string;
}

export type BatchPublishResult = ({ ok: true } & PublishReceipt) | { ok: false; id: string; error: BusError };

export interface Bus<M extends EventMap> extends AsyncDisposable {
  /**
   * Publishes one event. Resolves once the broker has stored it.
   * @throws {PublishError} when the broker refused it or could not be reached
   */
  publish<E extends EventName<M>>(topic: string, event: E, payload: M[E], options?: PublishOptions): Promise<PublishReceipt>;
  /**
   * Publishes many events to one topic in one round trip per partition / stream. Never throws for a
   * single entry: each result says whether that entry was stored.
   */
  publishBatch(topic: string, entries: readonly BatchEntry<M>[], options?: Omit<PublishOptions, 'key' | 'headers' | 'delayMs' | 'deliverAt'>): Promise<BatchPublishResult[]>;
  /** Registers a module; validated at once (throws a {@link ConfigError} naming the bad key). */
  module<E extends EventName<M>>(definition: ModuleDefinition<M, E>): this;
  /** Starts the registered modules (all, or those named): runs `onStart`, creates groups, starts reading. */
  start(options?: { modules?: readonly string[] }): Promise<void>;
  /**
   * Resolves once every started module has handled what reached its consumer groups: no message in
   * flight, and no lag or pending message in any group it reads (the transport's `lag()`). Use it in
   * scripts and tests after `publish` and before `close()`, so that what was published is handled.
   * Also waits for messages other producers published to those groups.
   * @throws {TimeoutError} after `timeoutMs` (default 30 s), naming the groups that still lag
   */
  drained(options?: DrainedOptions): Promise<void>;
  /** Stops the modules (draining running handlers), then closes every transport. Idempotent. */
  close(): Promise<void>;
  readonly transports: Readonly<Record<string, Transport>>;
  readonly defaultTransport: string;
  readonly codec: Codec;
}

/**
 * Creates a bus. Connects lazily: transports connect on first publish or on `start()`.
 *
 * ```ts
 * const bus = createBus<LiveEvents>({ transports: { memory: memoryTransport() } });
 * await bus.publish('live', 'anchor.income', { anchorId: 'a1', amount: 30 });
 * ```
 */
export function createBus<D extends EventDefinitions>(options: BusOptions & { events: D }): Bus<InferEvents<D>>;
export function createBus<M extends EventMap = EventMap>(options: BusOptions): Bus<M>;
export function createBus<M extends EventMap = EventMap>(options: BusOptions): Bus<M> {
  const root: OptionPath = { source: 'bus', path: '' };
  busOptionsSchema.parse(options, root);
  const events = readEventsOption(new OptionReader('bus', ''), options.events);
  const transports = options.transports;
  const names = Object.keys(transports);
  const defaultTransport =
    options.defaultTransport ??
    (names.length === 1
      ? (names[0] as string)
      : fail(root, 'defaultTransport', `must be set when there are several transports (${names.join(', ')})`, undefined));
  if (!names.includes(defaultTransport)) fail(root, 'defaultTransport', `must name a configured transport (${names.join(', ')})`, defaultTransport);

  const codec = options.codec ?? jsonCodec(options.source === undefined ? {} : { source: options.source });
  const metrics = options.metrics ?? noopMetrics;
  const tracing = options.tracing ?? noopTracing;
  const logger = options.logger ?? silentLogger;
  for (const name of names) transports[name]?.attach?.({ logger: logger.child({ transport: name }), metrics });

  const modules = new Map<string, ResolvedModule>();
  const runners: ModuleRunner[] = [];
  let closing: Promise<void> | undefined;

  const transportFor = (name: string | undefined): Transport => {
    if (closing) throw new ClosedError('bus');
    const t = transports[name ?? defaultTransport];
    if (!t) throw new ConfigError('transport', `must name a configured transport (${names.join(', ')})`, name);
    return t;
  };

  /** Writes the transport's answers into `results` (entry `at[j]` got `list[j]`; `at` absent: entry j). */
  const fill = (results: BatchPublishResult[], envelopes: Envelope[], transport: Transport, list: PublishResult[], at?: number[]) => {
    const count = at ? at.length : envelopes.length;
    for (let j = 0; j < count; j++) {
      const i = at ? (at[j] as number) : j;
      const id = (envelopes[i] as Envelope).id;
      const result = list[j];
      results[i] = result?.ok
        ? { ok: true, id, position: result.id }
        : { ok: false, id, error: result?.error ?? new PublishError(`[bus] transport "${transport.name}" returned no result for entry ${i}`) };
    }
  };
  const fillError = (results: BatchPublishResult[], envelopes: Envelope[], error: BusError, at?: number[]) => {
    const count = at ? at.length : envelopes.length;
    for (let j = 0; j < count; j++) {
      const i = at ? (at[j] as number) : j;
      results[i] = { ok: false, id: (envelopes[i] as Envelope).id, error };
    }
  };

  const send = async (topic: string, envelopes: Envelope[], transport: Transport, due?: (number | undefined)[]): Promise<BatchPublishResult[]> => {
    const results: BatchPublishResult[] = new Array(envelopes.length);
    if (due === undefined && tracing === noopTracing) {
      // The usual publish (nothing delayed, no tracer): encoded and handed over here, without the
      // general path's layers of async functions (each costs a promise and a tick per publish).
      let records: WireRecord[] | undefined = new Array(envelopes.length);
      for (let i = 0; i < envelopes.length; i++) {
        try {
          records[i] = codec.encode(envelopes[i] as Envelope);
        } catch {
          // An entry that does not encode: the general path reports it, entry by entry.
          records = undefined;
          break;
        }
      }
      if (records !== undefined) {
        try {
          fill(results, envelopes, transport, await transport.publish(topic, records));
        } catch (error) {
          fillError(results, envelopes, asPublishError(error, transport.name, topic));
        }
        countPublished(transport.name, topic, envelopes, results);
        return results;
      }
    }
    // Fills `results`; never throws (a failed encode or a transport that throws becomes those entries' error).
    const deliver = async (): Promise<void> => {
      const records: WireRecord[] = [];
      const index: number[] = [];
      let delayed: DelayedRecord[] | undefined;
      let delayedIndex: number[] | undefined;
      for (let i = 0; i < envelopes.length; i++) {
        const envelope = envelopes[i] as Envelope;
        try {
          const deliverAt = due?.[i];
          if (deliverAt === undefined) {
            records.push(codec.encode(envelope));
            index.push(i);
            continue;
          }
          if (!transport.capabilities.delays || !transport.publishDelayed) {
            throw new PublishError(`[bus] transport "${transport.name}" has no delayed delivery (capabilities.delays)`, { retryable: false });
          }
          (delayed ??= []).push({ ...codec.encode(envelope), deliverAt });
          (delayedIndex ??= []).push(i);
        } catch (error) {
          results[i] = { ok: false, id: envelope.id, error: asPublishError(error, transport.name, topic) };
        }
      }
      const collect = async (send: () => Promise<PublishResult[]> | PublishResult[], at: number[]) => {
        try {
          fill(results, envelopes, transport, await send(), at);
        } catch (error) {
          fillError(results, envelopes, asPublishError(error, transport.name, topic), at);
        }
      };
      // Both sent at once when a batch mixes immediate and delayed entries.
      const now = records.length === 0 ? undefined : collect(() => transport.publish(topic, records), index);
      const later = delayed === undefined || delayedIndex === undefined ? undefined : collect(() => transport.publishDelayed?.(topic, delayed) ?? [], delayedIndex);
      await now;
      await later;
    };
    if (tracing === noopTracing) await deliver();
    else {
      await tracing
        .publish({ transport: transport.name, topic, events: envelopes.map((e) => e.event), messageIds: envelopes.map((e) => e.id) }, envelopes.map((e) => e.headers), async () => {
          await deliver();
          // The rejection only marks the trace span: the per-entry results carry the errors.
          const failed = results.find((r) => !r.ok);
          if (failed && !failed.ok) throw failed.error;
        })
        .catch(() => {});
    }
    countPublished(transport.name, topic, envelopes, results);
    return results;
  };

  const countPublished = (transport: string, topic: string, envelopes: Envelope[], results: BatchPublishResult[]) => {
    // One call per (event, outcome) rather than per message: batches are usually of one event.
    let event = envelopes[0]?.event ?? '';
    let ok = results[0]?.ok ?? true;
    let count = 0;
    for (let i = 0; i < envelopes.length; i++) {
      const e = (envelopes[i] as Envelope).event;
      const o = (results[i] as BatchPublishResult).ok;
      if (e !== event || o !== ok) {
        metrics.published({ transport, topic, event }, count, ok);
        event = e;
        ok = o;
        count = 0;
      }
      count++;
    }
    if (count > 0) metrics.published({ transport, topic, event }, count, ok);
  };

  const bus: Bus<M> = {
    transports,
    defaultTransport,
    codec,
    async publish(topic, event, payload, opts = {}) {
      const transport = transportFor(opts.transport);
      checkTopic(topic);
      checkEvent(event, 'event');
      if (events) await validatePayload(events, event, payload);
      const now = Date.now();
      const due = dueTime(opts, now, 'options');
      const envelope: Envelope = { id: uuidv7(), event, payload, publishedAt: now, headers: { ...opts.headers } };
      if (due !== undefined) envelope.headers[DELAY_HEADER.deliverAt] = String(due);
      if (opts.key !== undefined) envelope.key = opts.key;
      if (options.source !== undefined) envelope.source = options.source;
      const [result] = await send(topic, [envelope], transport, due === undefined ? undefined : [due]);
      if (!result?.ok) throw result?.error ?? new PublishError(`[bus] publish to "${topic}" returned no result`);
      return { id: result.id, position: result.position };
    },
    async publishBatch(topic, entries, opts = {}) {
      const transport = transportFor(opts.transport);
      checkTopic(topic);
      for (const [i, entry] of entries.entries()) checkEvent(entry?.event, `entries[${i}].event`);
      if (events) await validateBatch(events, entries);
      const now = Date.now();
      let due: (number | undefined)[] | undefined;
      const envelopes = entries.map((entry, i) => {
        const envelope: Envelope = { id: uuidv7(now), event: entry.event, payload: entry.payload, publishedAt: now, headers: { ...entry.headers } };
        if (entry.delayMs !== undefined || entry.deliverAt !== undefined) {
          const at = dueTime(entry, now, `entries[${i}]`);
          if (at !== undefined) {
            due ??= new Array(entries.length);
            due[i] = at;
            envelope.headers[DELAY_HEADER.deliverAt] = String(at);
          }
        }
        if (entry.key !== undefined) envelope.key = entry.key;
        if (options.source !== undefined) envelope.source = options.source;
        return envelope;
      });
      return envelopes.length === 0 ? [] : send(topic, envelopes, transport, due);
    },
    module(definition) {
      if (closing) throw new ClosedError('bus');
      const resolved = resolveModule(definition, defaultTransport, names);
      if (modules.has(resolved.name)) throw new ConfigError(`modules.${resolved.name}`, 'is registered twice', resolved.name);
      modules.set(resolved.name, resolved);
      return this;
    },
    async start(startOptions = {}) {
      if (closing) throw new ClosedError('bus');
      const wanted = startOptions.modules ?? [...modules.keys()];
      for (const name of wanted) {
        // close() during start (a SIGTERM while connecting): stop starting, quietly.
        if (closing) return;
        const module = modules.get(name);
        if (!module) throw new ConfigError('modules', `has no module "${name}" (registered: ${[...modules.keys()].join(', ') || 'none'})`, name);
        const runner = new ModuleRunner(module, transportFor(module.transport), { codec, metrics, tracing, logger, events });
        runners.push(runner);
        await runner.start();
      }
    },
    drained(drainOptions) {
      return waitDrained(() => runners.map((runner) => runner.activity), drainOptions);
    },
    close() {
      closing ??= (async () => {
        await Promise.allSettled(runners.map((runner) => runner.close()));
        await Promise.allSettled(Object.values(transports).map((t) => t.close()));
      })();
      return closing;
    },
    [Symbol.asyncDispose]() {
      return this.close();
    },
  };
  return bus;
}

function checkTopic(topic: unknown): void {
  if (typeof topic !== 'string' || topic.length === 0) throw new ConfigError('topic', 'must be a non-empty string', topic);
}

/** An event name must be a non-empty string: a message without one could only be dead-lettered. */
function checkEvent(event: unknown, where: string): void {
  if (typeof event !== 'string' || event.length === 0) throw new ConfigError(where, 'must be a non-empty event name', event);
}

function fail(at: OptionPath, key: string, expectation: string, value: unknown): never {
  throw new ConfigError(at.path ? `${at.path}.${key}` : key, expectation, value, at.source);
}

const transportSchema = opt.custom<Transport>((t, at) => {
  const candidate = t as Partial<Transport> | undefined;
  if (!candidate || typeof candidate.publish !== 'function' || typeof candidate.subscribe !== 'function' || typeof candidate.close !== 'function') {
    throw new ConfigError(at.path, 'must be a Transport (publish, subscribe, close)', t, at.source);
  }
  if (candidate.specificationVersion !== 'v1') throw new ConfigError(`${at.path}.specificationVersion`, 'must be "v1"', candidate.specificationVersion, at.source);
  return candidate as Transport;
});

/** The closed schema of {@link BusOptions}: unknown keys are rejected with "did you mean …?". */
export const busOptionsSchema = opt.object({
  transports: opt.record(transportSchema, 'must name at least one transport'),
  defaultTransport: opt.string().optional(),
  codec: opt.custom<Codec>((c, at) => {
    const codec = c as Partial<Codec> | undefined;
    if (!codec || typeof codec.encode !== 'function' || typeof codec.decode !== 'function' || typeof codec.peekEvent !== 'function') {
      throw new ConfigError(at.path, 'must be a Codec (encode, decode, peekEvent)', '[object]', at.source);
    }
    return c as Codec;
  }).optional(),
  metrics: opt.custom<Metrics>((m) => m as Metrics).optional(),
  tracing: opt.custom<Tracing>((t) => t as Tracing).optional(),
  logger: opt.custom<Logger>((l) => l as Logger).optional(),
  source: opt.string().optional(),
  events: opt.custom<EventDefinitions>((e) => e as EventDefinitions).optional(),
});

function asPublishError(error: unknown, transport: string, topic: string): BusError {
  if (BusError.isInstance(error)) return error;
  return new PublishError(`[bus/${transport}] could not encode a message for "${topic}": ${(error as Error)?.message}`, { cause: error, retryable: false });
}
