import { hostname } from 'node:os';
import type { Codec } from './codec.js';
import { KeyedDispatcher } from './dispatcher.js';
import { ConsumerActivity } from './drained.js';
import type { Envelope } from './envelope.js';
import { BusError, ConfigError, DecodeError } from './errors.js';
import type { EventMap, Handler, HandlerContext } from './events.js';
import type { Logger } from './logger.js';
import type { JobLabels, Metrics } from './metrics.js';
import { type ConsumersDeclaration, consumersSchema, DRAIN_SLACK_MS, type ResolvedModule } from './module.js';
import { defaultPolicies, defaultPolicyOrder } from './policies/index.js';
import { errorMessage } from './policies/retry.js';
import { composeSyncPolicies, type Delivery, type Outcome, type PolicyServices, type SyncStep } from './policy.js';
import { originTopic, retryRecord } from './retry-topic.js';
import type { Tracing } from './tracing.js';
import type { IncomingMessage, Subscription, Transport } from './transport.js';
import { type EventDefinitions, validating, validationHeaders } from './validation.js';

/** Headers added to a dead-lettered record. */
export const DLQ_HEADER = {
  reason: 'bus-dlq-reason',
  error: 'bus-dlq-error',
  attempts: 'bus-dlq-attempts',
  topic: 'bus-dlq-topic',
  position: 'bus-dlq-position',
  group: 'bus-dlq-group',
  at: 'bus-dlq-at',
} as const;

export interface RouterServices {
  codec: Codec;
  metrics: Metrics;
  tracing: Tracing;
  logger: Logger;
  /** Schemas validating each payload before the middleware and handler. @default no validation */
  events?: EventDefinitions | undefined;
}

let memberSeq = 0;

const toHandled = (): Outcome => 'handled';
/** `Delivery.isFinal` without a retry policy (every failure is final): shared, not a closure per message. */
const alwaysFinal = (): boolean => true;
const DONE: Promise<void> = Promise.resolve();

/**
 * One message on its way through the policies. A class, not an object literal with closures: on the
 * hot path its methods are the prototype's, shared by every message.
 */
class RunnerDelivery implements Delivery {
  attempt = 1;
  retried?: boolean;
  isFinal: (error: unknown) => boolean = alwaysFinal;
  retryLater?: (deliverAt: number, attempt: number, parked: boolean) => Promise<boolean>;

  constructor(
    private readonly runner: ModuleRunner,
    private readonly run: ConsumerRun,
    readonly record: IncomingMessage,
    readonly envelope: Envelope,
    readonly labels: JobLabels,
    readonly batchSize: number,
  ) {}

  // What every message of the consumer shares is read from the runner, not copied into each delivery.
  get module(): string {
    return this.runner.module.name;
  }
  get transport(): string {
    return this.runner.transportName;
  }
  get consumer(): string {
    return this.run.consumer;
  }
  get group(): string {
    return this.run.group;
  }
  get stopping(): AbortSignal {
    return this.runner.stoppingSignal;
  }
  get deadline(): AbortSignal {
    return this.runner.deadlineSignal;
  }
  get services(): PolicyServices {
    return this.runner.policyServices;
  }

  deadLetter(error: unknown, attempts: number): Promise<boolean> {
    return this.runner.deadLetter(this.record, this.labels, this.group, error, attempts);
  }
}

/** Per consumer: what the runner needs for each of its messages. */
interface ConsumerRun {
  consumer: string;
  group: string;
  events: Set<string>;
  /** Concurrency > 1: the consumer's slots and key order, shared by every batch. */
  dispatcher: KeyedDispatcher | undefined;
  /**
   * Concurrency 1 with a prefetch (see {@link batchesInFlight}): the end of the last batch handed
   * over; the next one runs after it, so messages still run one at a time, in order.
   */
  serial: Promise<void> | undefined;
  /**
   * Metrics labels per origin topic and subscribed event, built once and shared by their messages
   * (metrics take them as they are; nothing changes them).
   */
  labels: Map<string, Map<string, JobLabels>>;
  /** The labels last used (consecutive messages mostly share topic and event): no map lookup for them. */
  last: JobLabels | undefined;
}

/**
 * Batches a subscription may hand over before the earlier ones settled. Above concurrency 1, enough
 * fetched messages (≈ 2 × concurrency beyond the running batch) that slow handlers never leave
 * slots idle while the next fetch waits. At concurrency 1, one batch fetched ahead (the read's round
 * trip and the previous batch's commit overlap the handlers; the runner runs the calls one after
 * the other) — unless the transport's calls already overlap on their own (`concurrentBatches`:
 * Kafka's `partitionsConsumedConcurrently`), whose behaviour stays as it was.
 */
export function batchesInFlight(concurrency: number, batchSize: number, concurrentBatches = false): number {
  if (concurrency > 1) return 1 + Math.ceil((2 * concurrency) / batchSize);
  return concurrentBatches ? 1 : 2;
}

/**
 * Runs one module on one transport: one subscription (consumer group) per consumer. For each
 * message: decode → filter (skip events the consumer does not subscribe to) → policies and handler
 * → settle. Every message ends as exactly one of handled, skipped or dead-lettered, or is released
 * to the broker for redelivery (the consumer is stopping, or the dead letter could not be written).
 */
export class ModuleRunner {
  private readonly subscriptions: { consumer: string; subscription: Subscription }[] = [];
  /** Aborted as soon as close starts: no handler starts after it; back-offs end (the message is released). */
  private readonly stopping = new AbortController();
  /** Aborted when the drain deadline passes: handlers should give up. */
  private readonly deadline = new AbortController();
  /** Policies and handler, composed once; a synchronous handler keeps it synchronous. */
  private readonly chain: SyncStep;
  /** @internal for {@link RunnerDelivery}. */
  readonly transportName: string;
  /** @internal */
  readonly stoppingSignal: AbortSignal;
  /** @internal */
  readonly deadlineSignal: AbortSignal;
  /** @internal */
  readonly policyServices: PolicyServices;
  /** The user's middleware around the handler. */
  private readonly handler: Handler<EventMap>;
  private closed: Promise<void> | undefined;
  private readonly log: Logger;
  private lagTimer: NodeJS.Timeout | undefined;
  /** Groups read and messages in flight, for `bus.drained()`. */
  readonly activity: ConsumerActivity;

  constructor(
    readonly module: ResolvedModule,
    private readonly transport: Transport,
    private readonly services: RouterServices,
  ) {
    this.log = services.logger.child({ module: module.name, transport: transport.name });
    // Validation (when the bus has event schemas) runs before the user's middleware: it sees only valid payloads.
    this.handler = validating(services.events, module.middleware.reduceRight<Handler<EventMap>>((next, mw) => mw(next), module.handler));
    const defaults = defaultPolicies(module);
    const policies = module.policies ? module.policies(defaults) : defaultPolicyOrder(defaults);
    this.chain = composeSyncPolicies(policies, (delivery) => this.invoke(delivery));
    this.transportName = transport.name;
    this.stoppingSignal = this.stopping.signal;
    this.deadlineSignal = this.deadline.signal;
    this.policyServices = services;
    this.activity = new ConsumerActivity(transport);
  }

  async start(): Promise<void> {
    const m = this.module;
    await m.onStart?.();
    const declared = typeof m.consumers === 'function' ? await m.consumers() : m.consumers;
    const consumers = consumersSchema.parse(declared, { source: 'bus', path: `modules.${m.name}.consumers` }) as ConsumersDeclaration;
    const redeliver = m.retry.mode === 'redeliver';
    if (redeliver && !(this.transport.capabilities.delays && this.transport.publishDelayed)) {
      throw new ConfigError(`modules.${m.name}.retry.mode`, `is "redeliver" but transport "${this.transport.name}" has no delayed delivery`, m.retry.mode);
    }
    for (const [consumer, decl] of Object.entries(consumers)) {
      if (this.stopping.signal.aborted) return;
      const run: ConsumerRun = {
        consumer,
        group: `${m.name}-${consumer}`,
        events: new Set<string>(decl.events),
        dispatcher: m.concurrency > 1 ? new KeyedDispatcher(m.concurrency) : undefined,
        serial: m.concurrency === 1 && !this.transport.capabilities.concurrentBatches ? Promise.resolve() : undefined,
        labels: new Map(),
        last: undefined,
      };
      // Broker-side retries come back through the group's own retry topic, read by this group only.
      const topics = redeliver ? [...decl.topics, m.retryTopic(run.group)] : decl.topics;
      const consumerName = `${hostname()}-${process.pid}-${++memberSeq}`;
      const subscription = await this.transport.subscribe(
        {
          group: run.group,
          topics,
          batchSize: m.batchSize,
          pollIntervalMs: m.pollIntervalMs,
          startFrom: m.startFrom,
          consumerName,
          maxBatchesInFlight: batchesInFlight(m.concurrency, m.batchSize, this.transport.capabilities.concurrentBatches),
        },
        (batch) => this.activity.track(batch.length, () => this.handleBatch(run, batch)),
      );
      if (this.stopping.signal.aborted) {
        // close() ran while this subscription was being made: it did not see it.
        await subscription.close();
        return;
      }
      this.subscriptions.push({ consumer, subscription });
      this.activity.subscribed(run.group, decl.topics);
      this.log.info('consumer started', { consumer, group: run.group, topics: decl.topics, events: decl.events });
    }
    this.watchLag(consumers);
  }

  /** Reports each consumer group's lag to metrics every `lagIntervalMs`, where the transport can tell. */
  private watchLag(consumers: ConsumersDeclaration): void {
    const lag = this.transport.lag?.bind(this.transport);
    if (!lag || this.module.lagIntervalMs === 0) return;
    const groups = Object.entries(consumers).map(([consumer, decl]) => ({ group: `${this.module.name}-${consumer}`, topics: decl.topics }));
    let running = false;
    const report = async () => {
      if (running) return;
      running = true;
      try {
        for (const { group, topics } of groups) {
          for (const info of await lag(group, topics)) {
            this.services.metrics.lag({ transport: this.transport.name, group, topic: info.topic }, info.lag);
          }
        }
      } catch (error) {
        this.log.debug('could not read consumer lag', { error });
      } finally {
        running = false;
      }
    };
    this.lagTimer = setInterval(report, this.module.lagIntervalMs);
    this.lagTimer.unref();
    void report();
  }

  private handleBatch(run: ConsumerRun, batch: IncomingMessage[]): Promise<void> {
    if (run.serial) {
      // Concurrency 1 with a batch fetched ahead: after the previous call, one message at a time.
      // (handleMessage never throws, so the chain never breaks.)
      const done = run.serial.then(() => this.handleInOrder(run, batch));
      run.serial = done;
      return done;
    }
    if (!run.dispatcher) return this.handleInOrder(run, batch);
    // Up to `concurrency` handlers at once across this and overlapping batches; same key: in order.
    const size = batch.length;
    return run.dispatcher.run(batch, (message) => this.handleMessage(run, message, size) ?? DONE);
  }

  private async handleInOrder(run: ConsumerRun, batch: IncomingMessage[]): Promise<void> {
    // A message handled synchronously costs no await: only pending ones are waited for.
    for (let i = 0; i < batch.length; i++) {
      const pending = this.handleMessage(run, batch[i] as IncomingMessage, batch.length);
      if (pending !== undefined) await pending;
    }
  }

  /** The labels of a message of `event` from `topic` (shared per consumer for subscribed events). */
  private labelsOf(run: ConsumerRun, topic: string, event: string | undefined): JobLabels {
    const known = event !== undefined && event !== '' && run.events.has(event);
    if (known) {
      const last = run.last;
      if (last !== undefined && last.event === event && last.topic === topic) return last;
      const byEvent = run.labels.get(topic);
      const cached = byEvent?.get(event);
      if (cached) {
        run.last = cached;
        return cached;
      }
      const labels: JobLabels = { module: this.module.name, consumer: run.consumer, event, transport: this.transport.name, topic };
      if (byEvent) byEvent.set(event, labels);
      else run.labels.set(topic, new Map([[event, labels]]));
      run.last = labels;
      return labels;
    }
    return { module: this.module.name, consumer: run.consumer, event: event || 'unknown', transport: this.transport.name, topic };
  }

  /**
   * Decode → filter → policies and handler → settle. Settles the message whatever happens; never
   * throws or rejects. Returns undefined when it finished synchronously (a synchronous handler and
   * no failure), a promise otherwise.
   */
  private handleMessage(run: ConsumerRun, message: IncomingMessage, batchSize: number): Promise<void> | undefined {
    const { codec } = this.services;
    const peeked = codec.peekEvent(message);
    const topic = originTopic(message);
    let labels = this.labelsOf(run, topic, peeked);
    if (this.stopping.signal.aborted) {
      // Stopping: start nothing; the broker gives the message to another member (or the next start).
      this.settle(message, labels, 'released');
      return undefined;
    }
    // Skipped only for a real event name not subscribed to; a missing or empty one is dead-lettered.
    if (peeked && !run.events.has(peeked)) {
      this.settle(message, labels, 'skipped');
      return undefined;
    }
    let envelope: Envelope;
    try {
      envelope = codec.decode(message);
      if (!envelope.event) throw new DecodeError(`[bus] message ${envelope.id || message.id}: the event name is empty`);
    } catch (error) {
      return this.deadLetter(message, labels, run.group, error, 0).then((stored) => this.settle(message, labels, stored ? 'dead_lettered' : 'released'));
    }
    if (envelope.event !== peeked) labels = this.labelsOf(run, topic, envelope.event);
    if (!run.events.has(envelope.event)) {
      this.settle(message, labels, 'skipped');
      return undefined;
    }
    const delivery = new RunnerDelivery(this, run, message, envelope, labels, batchSize);
    if (this.module.retry.mode === 'redeliver') delivery.retryLater = (at, attempt, parked) => this.retryLater(run.group, message, at, attempt, parked);
    let outcome: Outcome | Promise<Outcome>;
    try {
      outcome = this.chain(delivery);
    } catch (error) {
      this.policyFailed(run, message, error);
      outcome = 'released';
    }
    if (!(outcome instanceof Promise)) {
      this.settle(message, labels, outcome);
      return undefined;
    }
    return outcome.then(
      (o) => this.settle(message, labels, o),
      (error: unknown) => {
        this.policyFailed(run, message, error);
        this.settle(message, labels, 'released');
      },
    );
  }

  private policyFailed(run: ConsumerRun, message: IncomingMessage, error: unknown): void {
    this.log.warn('a policy let a failure through; the message is released for redelivery', {
      consumer: run.consumer,
      position: message.id,
      error: errorMessage(error),
    });
  }

  private settle(message: IncomingMessage, labels: JobLabels, outcome: Outcome | 'skipped'): void {
    if (outcome === 'released') message.nack();
    else message.ack();
    if (outcome === 'skipped') this.services.metrics.skipped(labels);
    this.services.metrics.settled(labels, outcome);
  }

  /**
   * The innermost step: the user's middleware and handler, for one attempt. Not `async`: a handler
   * that returns synchronously finishes synchronously (its throw is thrown on, to the policies), one
   * that returns a promise costs one `then`.
   */
  private invoke(delivery: Delivery): Outcome | Promise<Outcome> {
    const { envelope, record } = delivery;
    const context = {
      module: delivery.module,
      consumer: delivery.consumer,
      event: envelope.event,
      payload: envelope.payload,
      signal: delivery.deadline,
      message: {
        id: envelope.id,
        topic: originTopic(record),
        key: envelope.key ?? record.key,
        headers: envelope.headers,
        publishedAt: envelope.publishedAt,
        source: envelope.source,
        transport: delivery.transport,
        group: delivery.group,
        position: record.id,
        deliveryCount: record.deliveryCount,
        attempt: delivery.attempt,
      },
    } satisfies HandlerContext<EventMap>;
    const result: unknown = this.handler(context);
    return result instanceof Promise ? result.then(toHandled) : typeof (result as PromiseLike<void> | undefined)?.then === 'function' ? Promise.resolve(result).then(toHandled) : 'handled';
  }

  /** Writes the original record to the dead letter with the reason headers; `true` once stored. */
  /** @internal for {@link RunnerDelivery}. */
  async deadLetter(message: IncomingMessage, labels: JobLabels, group: string, error: unknown, attempts: number): Promise<boolean> {
    const reason = errorMessage(error).slice(0, 2000);
    const topic = this.module.deadLetterTopic(originTopic(message));
    const headers = { ...message.headers };
    headers[DLQ_HEADER.reason] = reason;
    headers[DLQ_HEADER.error] = BusError.isInstance(error) ? error.code : error instanceof Error ? error.name : typeof error;
    headers[DLQ_HEADER.attempts] = String(attempts);
    headers[DLQ_HEADER.topic] = originTopic(message);
    headers[DLQ_HEADER.position] = message.id;
    headers[DLQ_HEADER.group] = group;
    headers[DLQ_HEADER.at] = new Date().toISOString();
    Object.assign(headers, validationHeaders(error));
    const record = message.key === undefined ? { value: message.value, headers } : { key: message.key, value: message.value, headers };
    let results: Awaited<ReturnType<Transport['publish']>>;
    try {
      results = await this.transport.publish(topic, [record]);
    } catch (publishError) {
      results = [{ ok: false, error: publishError as BusError }];
    }
    const result = results[0];
    if (result?.ok) {
      this.services.metrics.deadLettered(labels, headers[DLQ_HEADER.error] as string);
      this.log.warn('message dead-lettered', { consumer: labels.consumer, topic: message.topic, deadLetterTopic: topic, position: message.id, attempts, reason });
      return true;
    }
    // Never acknowledge what is not safely stored elsewhere: the broker delivers it again.
    this.log.error('dead-lettering failed, message left for redelivery', {
      consumer: labels.consumer,
      topic: message.topic,
      position: message.id,
      error: result && !result.ok ? result.error : undefined,
    });
    return false;
  }

  /** Stores `message` in the group's retry topic, due at `deliverAt`; `true` once stored. */
  private async retryLater(group: string, message: IncomingMessage, deliverAt: number, attempt: number, parked: boolean): Promise<boolean> {
    const topic = this.module.retryTopic(group);
    try {
      const [result] = (await this.transport.publishDelayed?.(topic, [retryRecord(message, deliverAt, attempt, parked)])) ?? [];
      if (result?.ok) return true;
      this.log.error('could not store a message for a later retry; it is left for redelivery', { topic, position: message.id, error: result?.error });
    } catch (error) {
      this.log.error('could not store a message for a later retry; it is left for redelivery', { topic, position: message.id, error });
    }
    return false;
  }

  /**
   * Stops: from the first call no handler starts (fetched messages are released to the broker),
   * running handlers get `drainTimeoutMs` before their `signal` aborts, then the subscriptions commit
   * what finished and close; the whole is bounded by `drainTimeoutMs + DRAIN_SLACK_MS`. Idempotent.
   */
  close(): Promise<void> {
    this.closed ??= (async () => {
      this.stopping.abort();
      clearInterval(this.lagTimer);
      const timer = setTimeout(() => this.deadline.abort(), this.module.drainTimeoutMs);
      const graceMs = this.module.drainTimeoutMs + DRAIN_SLACK_MS;
      let hardTimer: NodeJS.Timeout | undefined;
      const all = Promise.allSettled(this.subscriptions.map((s) => s.subscription.close()));
      const done = await Promise.race([
        all.then(() => true),
        new Promise<false>((resolve) => {
          hardTimer = setTimeout(() => resolve(false), graceMs);
        }),
      ]);
      clearTimeout(timer);
      clearTimeout(hardTimer);
      if (!done) this.log.error('handlers ignored the drain deadline; their messages will be redelivered', { graceMs });
    })();
    return this.closed;
  }
}
