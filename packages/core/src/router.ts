import { hostname } from 'node:os';
import type { Codec } from './codec.js';
import { ConsumerActivity } from './drained.js';
import { OptionReader } from './config.js';
import type { Envelope } from './envelope.js';
import { BusError, HandlerError, isRetryable } from './errors.js';
import type { EventMap, Handler, HandlerContext, Middleware } from './events.js';
import type { Logger } from './logger.js';
import type { JobLabels, Metrics } from './metrics.js';
import { type ConsumersDeclaration, DRAIN_SLACK_MS, MODULE_DEFAULTS, type ModuleDefinition } from './module.js';
import { backoffDelay, type RetryPolicy, sleep } from './retry.js';
import { noopTracing, type Tracing } from './tracing.js';
import type { IncomingMessage, StartFrom, Subscription, Transport } from './transport.js';

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

/** A module definition with every default filled in and every value checked. */
export interface ResolvedModule {
  name: string;
  transport: string;
  consumers: ModuleDefinition<EventMap>['consumers'];
  handler: Handler<EventMap>;
  batchSize: number;
  pollIntervalMs: number;
  concurrency: number;
  retry: RetryPolicy;
  maxDeliveries: number;
  deadLetterTopic: (topic: string) => string;
  startFrom: StartFrom;
  drainTimeoutMs: number;
  lagIntervalMs: number;
  middleware: readonly Middleware<EventMap>[];
  onStart: (() => void | Promise<void>) | undefined;
}

/** Validates a module definition; throws a ConfigError naming `modules.<name>.<key>`. */
export function resolveModule(definition: unknown, defaultTransport: string, transports: readonly string[]): ResolvedModule {
  const root: OptionReader = new OptionReader('bus', 'modules');
  const def = root.object('<module>', definition) as Record<string, unknown>;
  const name = root.string('<module>.name', def.name);
  const r: OptionReader = root.at(name);
  const transport = r.string('transport', def.transport, defaultTransport);
  if (!transports.includes(transport)) r.fail('transport', `must name a configured transport (${transports.join(', ')})`, transport);
  if (typeof def.consumers !== 'function') validateConsumers(def.consumers, r);
  const retryRaw = r.object('retry', def.retry, true) ?? {};
  const rr = r.at('retry');
  const d = MODULE_DEFAULTS;
  const retry: RetryPolicy = {
    attempts: rr.int('attempts', retryRaw.attempts, d.retry.attempts, 1, 100),
    baseDelayMs: rr.int('baseDelayMs', retryRaw.baseDelayMs, d.retry.baseDelayMs, 0),
    maxDelayMs: rr.int('maxDelayMs', retryRaw.maxDelayMs, d.retry.maxDelayMs, 0),
    jitter: rr.number('jitter', retryRaw.jitter, d.retry.jitter, 0, 1),
  };
  const middleware: unknown = def.middleware ?? [];
  if (!Array.isArray(middleware)) r.fail('middleware', 'must be an array of functions', middleware);
  for (const [i, m] of middleware.entries()) r.func(`middleware[${i}]`, m);
  return {
    name,
    transport,
    consumers: def.consumers as ResolvedModule['consumers'],
    handler: r.func<Handler<EventMap>>('handler', def.handler) as Handler<EventMap>,
    batchSize: r.int('batchSize', def.batchSize, d.batchSize, 1, 100_000),
    pollIntervalMs: r.int('pollIntervalMs', def.pollIntervalMs, d.pollIntervalMs, 1, 3_600_000),
    concurrency: r.int('concurrency', def.concurrency, d.concurrency, 1, 10_000),
    retry,
    maxDeliveries: r.int('maxDeliveries', def.maxDeliveries, d.maxDeliveries, 1),
    deadLetterTopic: r.func<(t: string) => string>('deadLetterTopic', def.deadLetterTopic, true) ?? ((t) => `${t}.dlq`),
    startFrom: r.oneOf('startFrom', def.startFrom, ['earliest', 'latest'], d.startFrom),
    drainTimeoutMs: r.int('drainTimeoutMs', def.drainTimeoutMs, d.drainTimeoutMs, 0),
    lagIntervalMs: r.int('lagIntervalMs', def.lagIntervalMs, d.lagIntervalMs, 0),
    middleware: middleware as Middleware<EventMap>[],
    onStart: r.func<() => void>('onStart', def.onStart, true),
  };
}

function validateConsumers(value: unknown, r: OptionReader): ConsumersDeclaration {
  const consumers = r.object('consumers', value) as Record<string, unknown>;
  const names = Object.keys(consumers);
  if (names.length === 0) r.fail('consumers', 'must declare at least one consumer', value);
  const c: OptionReader = r.at('consumers');
  for (const name of names) {
    const decl = c.object(name, consumers[name]) as Record<string, unknown>;
    c.at(name).stringArray('topics', decl.topics);
    c.at(name).stringArray('events', decl.events);
  }
  return consumers as ConsumersDeclaration;
}

export interface RouterServices {
  codec: Codec;
  metrics: Metrics;
  tracing: Tracing;
  logger: Logger;
}

let memberSeq = 0;

/** Runs one module on one transport: one subscription (consumer group) per consumer. */
export class ModuleRunner {
  private readonly subscriptions: { consumer: string; subscription: Subscription }[] = [];
  /** Aborted as soon as close starts: cuts retry back-offs short (the message is nacked). */
  private readonly stopping = new AbortController();
  /** Aborted when the drain deadline passes: handlers should give up. */
  private readonly deadline = new AbortController();
  private readonly chain: Handler<EventMap>;
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
    this.chain = module.middleware.reduceRight<Handler<EventMap>>((next, mw) => mw(next), module.handler);
    this.log = services.logger.child({ module: module.name, transport: transport.name });
    this.activity = new ConsumerActivity(transport);
  }

  async start(): Promise<void> {
    const m = this.module;
    await m.onStart?.();
    const declared = typeof m.consumers === 'function' ? await m.consumers() : m.consumers;
    const consumers = validateConsumers(declared, new OptionReader('bus', `modules.${m.name}`));
    for (const [consumer, decl] of Object.entries(consumers)) {
      if (this.stopping.signal.aborted) return;
      const group = `${m.name}-${consumer}`;
      const events = new Set<string>(decl.events);
      const consumerName = `${hostname()}-${process.pid}-${++memberSeq}`;
      const subscription = await this.transport.subscribe(
        {
          group,
          topics: decl.topics,
          batchSize: m.batchSize,
          pollIntervalMs: m.pollIntervalMs,
          startFrom: m.startFrom,
          consumerName,
        },
        (batch) => this.activity.track(batch.length, () => this.handleBatch(consumer, group, events, batch)),
      );
      if (this.stopping.signal.aborted) {
        // close() ran while this subscription was being made: it did not see it.
        await subscription.close();
        return;
      }
      this.subscriptions.push({ consumer, subscription });
      this.activity.subscribed(group, decl.topics);
      this.log.info('consumer started', { consumer, group, topics: decl.topics, events: decl.events });
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

  private async handleBatch(consumer: string, group: string, events: Set<string>, batch: IncomingMessage[]): Promise<void> {
    if (this.module.concurrency === 1 || batch.length === 1) {
      for (const message of batch) await this.handleMessage(consumer, group, events, message, batch.length);
      return;
    }
    // Messages with the same key form one lane, run in order; lanes run side by side.
    const lanes = new Map<string | IncomingMessage, IncomingMessage[]>();
    for (const message of batch) {
      const laneKey = message.key ?? message;
      const lane = lanes.get(laneKey);
      if (lane) lane.push(message);
      else lanes.set(laneKey, [message]);
    }
    const queue = [...lanes.values()];
    const worker = async () => {
      for (let lane = queue.shift(); lane; lane = queue.shift()) {
        for (const message of lane) await this.handleMessage(consumer, group, events, message, batch.length);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.module.concurrency, queue.length) }, worker));
  }

  /** Settles the message whatever happens; never throws. */
  private async handleMessage(
    consumer: string,
    group: string,
    events: Set<string>,
    message: IncomingMessage,
    batchSize: number,
  ): Promise<void> {
    const { codec, metrics } = this.services;
    const labels: JobLabels = {
      module: this.module.name,
      consumer,
      event: codec.peekEvent(message) ?? 'unknown',
      transport: this.transport.name,
      topic: message.topic,
    };
    if (labels.event !== 'unknown' && !events.has(labels.event)) {
      message.ack();
      metrics.skipped(labels);
      return;
    }
    let envelope: Envelope;
    try {
      envelope = codec.decode(message);
    } catch (error) {
      await this.deadLetter(message, labels, group, error, 0);
      return;
    }
    labels.event = envelope.event;
    if (!events.has(envelope.event)) {
      message.ack();
      metrics.skipped(labels);
      return;
    }
    if (message.deliveryCount > this.module.maxDeliveries) {
      const error = new HandlerError(
        `[bus] message ${envelope.id} was delivered ${message.deliveryCount} times without being settled ` +
          `(more than maxDeliveries ${this.module.maxDeliveries}); its consumer probably crashed on it`,
        0,
        { retryable: false },
      );
      await this.deadLetter(message, labels, group, error, 0);
      return;
    }
    metrics.jobStarted(labels, Math.max(0, (Date.now() - envelope.publishedAt) / 1000));
    try {
      const { tracing } = this.services;
      const run = () => this.runWithRetry(consumer, group, envelope, message, labels);
      // Without tracing, skip building the trace info: it is per message, on the hot path.
      const attempts =
        tracing === noopTracing
          ? await run()
          : await tracing.process(
              {
                transport: this.transport.name,
                topic: message.topic,
                event: envelope.event,
                messageId: envelope.id,
                group,
                module: this.module.name,
                consumer,
                batchSize,
                deliveryCount: message.deliveryCount,
                headers: envelope.headers,
              },
              run,
            );
      if (attempts === 0) {
        // Closing cut a retry short: leave the message to the broker to deliver again.
        message.nack();
        return;
      }
      message.ack();
    } catch (error) {
      const attempts = error instanceof HandlerError ? error.attempts : 1;
      await this.deadLetter(message, labels, group, (error as HandlerError).cause ?? error, attempts);
    }
  }

  /** Resolves the number of attempts used, 0 when stopped before success; throws a HandlerError when all failed. */
  private async runWithRetry(
    consumer: string,
    group: string,
    envelope: Envelope,
    message: IncomingMessage,
    labels: JobLabels,
  ): Promise<number> {
    const { metrics } = this.services;
    const policy = this.module.retry;
    for (let attempt = 1; ; attempt++) {
      const context = {
        module: this.module.name,
        consumer,
        event: envelope.event,
        payload: envelope.payload,
        signal: this.deadline.signal,
        message: {
          id: envelope.id,
          topic: message.topic,
          key: envelope.key ?? message.key,
          headers: envelope.headers,
          publishedAt: envelope.publishedAt,
          source: envelope.source,
          transport: this.transport.name,
          group,
          position: message.id,
          deliveryCount: message.deliveryCount,
          attempt,
        },
      } satisfies HandlerContext<EventMap>;
      const started = performance.now();
      try {
        await this.chain(context);
        metrics.jobFinished(labels, (performance.now() - started) / 1000, 'success');
        return attempt;
      } catch (error) {
        const cost = (performance.now() - started) / 1000;
        const last = attempt >= policy.attempts || !isRetryable(error);
        if (!last && this.stopping.signal.aborted) {
          metrics.jobFinished(labels, cost, 'retry');
          return 0;
        }
        metrics.jobFinished(labels, cost, last ? 'dead_letter' : 'retry');
        if (last) {
          throw new HandlerError(`[bus] handler failed after ${attempt} attempt(s): ${errorMessage(error)}`, attempt, {
            cause: error,
          });
        }
        metrics.retried(labels);
        const delay = backoffDelay(policy, attempt);
        this.log.warn('handler failed, retrying', { consumer, event: envelope.event, id: envelope.id, attempt, delay, error });
        if (!(await sleep(delay, this.stopping.signal))) return 0;
      }
    }
  }

  private async deadLetter(message: IncomingMessage, labels: JobLabels, group: string, error: unknown, attempts: number) {
    const reason = errorMessage(error).slice(0, 2000);
    const topic = this.module.deadLetterTopic(message.topic);
    const headers = { ...message.headers };
    headers[DLQ_HEADER.reason] = reason;
    headers[DLQ_HEADER.error] = BusError.isInstance(error) ? error.code : error instanceof Error ? error.name : typeof error;
    headers[DLQ_HEADER.attempts] = String(attempts);
    headers[DLQ_HEADER.topic] = message.topic;
    headers[DLQ_HEADER.position] = message.id;
    headers[DLQ_HEADER.group] = group;
    headers[DLQ_HEADER.at] = new Date().toISOString();
    const record = message.key === undefined ? { value: message.value, headers } : { key: message.key, value: message.value, headers };
    let results: Awaited<ReturnType<Transport['publish']>>;
    try {
      results = await this.transport.publish(topic, [record]);
    } catch (publishError) {
      results = [{ ok: false, error: publishError as BusError }];
    }
    const result = results[0];
    if (result?.ok) {
      message.ack();
      this.services.metrics.deadLettered(labels, headers[DLQ_HEADER.error] as string);
      this.log.warn('message dead-lettered', { consumer: labels.consumer, topic: message.topic, deadLetterTopic: topic, position: message.id, attempts, reason });
    } else {
      // Never acknowledge what is not safely stored elsewhere: the broker delivers it again.
      message.nack();
      this.log.error('dead-lettering failed, message left for redelivery', {
        consumer: labels.consumer,
        topic: message.topic,
        position: message.id,
        error: result && !result.ok ? result.error : undefined,
      });
    }
  }

  /** Stops fetching, lets running handlers finish within `drainTimeoutMs`, settles, releases. Idempotent. */
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

function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}
