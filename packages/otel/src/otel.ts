import { BusError, type Headers, OptionReader, type ProcessTraceInfo, type PublishTraceInfo, type Tracing } from '@bus/core';
import {
  type Attributes,
  type Context,
  context,
  defaultTextMapGetter,
  defaultTextMapSetter,
  INVALID_SPAN_CONTEXT,
  isSpanContextValid,
  type Link,
  propagation,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapPropagator,
  type Tracer,
  type TracerProvider,
  trace,
} from '@opentelemetry/api';
import { ATTR } from './semconv.js';
import { VERSION } from './version.js';

/** Options of {@link otel}. */
export interface OtelOptions {
  /**
   * Where the tracer comes from.
   * @default the global tracer provider (`trace.getTracerProvider()`), i.e. whatever SDK the app registers
   */
  tracerProvider?: TracerProvider;
  /**
   * Writes and reads the trace context in message headers (`traceparent`, `tracestate`, `baggage`…).
   * @default the global propagator (`propagation`), e.g. W3C trace context + baggage as the SDK registers it
   */
  propagator?: TextMapPropagator;
  /**
   * `messaging.system` of a transport, from its name.
   * @default names starting with `kafka` → `kafka`, with `redis` → `redis`, others as they are (`memory`)
   */
  system?: (transport: string) => string;
  /**
   * How a `process` span relates to the producer's span found in the message headers:
   * - `'child'`: the process span is its child, so one trace runs from the producer to the handler;
   * - `'link'`: the process span is a child of the consumer's active context (usually a new trace) and
   *   links to the producer's span (for very long-lived or fan-out traces).
   * Baggage from the headers reaches the handler either way.
   * @default 'child'
   */
  processParent?: 'child' | 'link';
}

const defaultSystem = (transport: string): string =>
  transport.startsWith('kafka') ? 'kafka' : transport.startsWith('redis') ? 'redis' : transport;

/**
 * Creates the bus's OpenTelemetry tracing, built on `@opentelemetry/api` only: pass it as
 * `createBus({ tracing: otel() })` and register any SDK in the app.
 *
 * - **publish**: one span `<topic> publish` (kind PRODUCER) per `publish` / `publishBatch` call; its
 *   context (W3C `traceparent`, `tracestate`, and `baggage` — whatever the propagator writes) is
 *   injected into every message's headers, and the transport's send runs inside it.
 * - **process**: one span `<topic> process` (kind CONSUMER) per handled message (all its in-process
 *   retries included), a child of the producer's span from the headers (see `processParent`); the
 *   handler runs inside it, so its own spans and publishes continue the trace.
 * - Attributes follow the messaging semantic conventions: `messaging.system`,
 *   `messaging.destination.name`, `messaging.consumer.group.name`, `messaging.message.id`,
 *   `messaging.batch.message_count` (batches of more than one), `messaging.operation.type`
 *   (`send` / `process`) and `.name` (`publish` / `process`); plus `bus.event`, `bus.module`,
 *   `bus.consumer`, `bus.delivery_count`.
 * - A failure is recorded on the span (`recordException` of the handler's own error, status ERROR,
 *   `error.type`), then rethrown unchanged.
 *
 * Without an SDK the API's no-op tracer is used: spans are non-recording, no attribute beyond the
 * few given at creation is computed, and an incoming trace context is still passed on (extracted,
 * made active for the handler, injected into what it publishes). Nothing to close.
 *
 * @throws {ConfigError} on an invalid option, naming it (`[bus/otel] processParent must be one of …`)
 */
export function otel(options: OtelOptions = {}): Tracing {
  const r = new OptionReader('bus/otel', '');
  r.closed(r.object('options', options), ['tracerProvider', 'propagator', 'system', 'processParent']);
  const system = r.func<(transport: string) => string>('system', options.system, true) ?? defaultSystem;
  const parentMode = r.oneOf('processParent', options.processParent, ['child', 'link'], 'child');
  if (options.tracerProvider !== undefined && typeof options.tracerProvider?.getTracer !== 'function') {
    r.fail('tracerProvider', 'must be a TracerProvider (with getTracer)', options.tracerProvider);
  }
  const propagator = options.propagator;
  if (propagator !== undefined && (typeof propagator?.inject !== 'function' || typeof propagator.extract !== 'function')) {
    r.fail('propagator', 'must be a TextMapPropagator (with inject and extract)', propagator);
  }
  // A ProxyTracer from the global provider picks up an SDK registered after this call.
  const tracer: Tracer = (options.tracerProvider ?? trace.getTracerProvider()).getTracer('@bus/otel', VERSION);
  const inject = propagator
    ? (ctx: Context, carrier: Headers) => propagator.inject(ctx, carrier, defaultTextMapSetter)
    : (ctx: Context, carrier: Headers) => propagation.inject(ctx, carrier, defaultTextMapSetter);
  const extract = propagator
    ? (ctx: Context, carrier: Readonly<Headers>) => propagator.extract(ctx, carrier, defaultTextMapGetter)
    : (ctx: Context, carrier: Readonly<Headers>) => propagation.extract(ctx, carrier, defaultTextMapGetter);

  return {
    publish<T>(info: PublishTraceInfo, carriers: Headers[], fn: () => Promise<T>): Promise<T> {
      const active = context.active();
      // Only what samplers look at is computed before we know the span records.
      const span = tracer.startSpan(
        `${info.topic} publish`,
        {
          kind: SpanKind.PRODUCER,
          attributes: {
            [ATTR.messagingSystem]: system(info.transport),
            [ATTR.destinationName]: info.topic,
            [ATTR.operationType]: 'send',
            [ATTR.operationName]: 'publish',
          },
        },
        active,
      );
      const recording = span.isRecording();
      if (recording) span.setAttributes(publishAttributes(info));
      const ctx = recording || !sameAsParent(span, active) ? trace.setSpan(active, span) : active;
      for (const carrier of carriers) inject(ctx, carrier);
      return recording ? run(span, ctx, fn) : context.with(ctx, fn);
    },

    process<T>(info: ProcessTraceInfo, fn: () => Promise<T>): Promise<T> {
      const active = context.active();
      const extracted = extract(active, info.headers);
      let parent = extracted;
      let links: Link[] | undefined;
      if (parentMode === 'link') {
        const producer = trace.getSpanContext(extracted);
        if (producer && producer !== trace.getSpanContext(active)) links = [{ context: producer }];
        parent = active;
      }
      const span = tracer.startSpan(
        `${info.topic} process`,
        {
          kind: SpanKind.CONSUMER,
          attributes: {
            [ATTR.messagingSystem]: system(info.transport),
            [ATTR.destinationName]: info.topic,
            [ATTR.consumerGroupName]: info.group,
            [ATTR.operationType]: 'process',
            [ATTR.operationName]: 'process',
          },
          ...(links ? { links } : {}),
        },
        parent,
      );
      if (!span.isRecording()) {
        // No SDK (or sampled out): nothing to record, but the handler still runs in the incoming
        // trace context, so what it publishes carries it on.
        return context.with(sameAsParent(span, extracted) ? extracted : trace.setSpan(extracted, span), fn);
      }
      span.setAttributes(processAttributes(info));
      // The handler's context carries the extracted baggage in both modes.
      return run(span, trace.setSpan(extracted, span), fn);
    },
  };
}

/**
 * Whether a non-recording span only re-wraps the parent's span context (what the API's no-op tracer
 * returns): then the parent context can be used as is, saving a context copy per message.
 */
function sameAsParent(span: Span, parent: Context): boolean {
  const own = span.spanContext();
  return own === INVALID_SPAN_CONTEXT || own === trace.getSpanContext(parent) || !isSpanContextValid(own);
}

async function run<T>(span: Span, ctx: Context, fn: () => Promise<T>): Promise<T> {
  try {
    return await context.with(ctx, fn);
  } catch (error) {
    if (span.isRecording()) recordError(span, error);
    throw error;
  } finally {
    span.end();
  }
}

function publishAttributes(info: PublishTraceInfo): Attributes {
  const attributes: Attributes = {};
  const count = info.messageIds.length;
  if (count === 1) attributes[ATTR.messageId] = info.messageIds[0];
  else attributes[ATTR.batchMessageCount] = count;
  const event = info.events[0];
  if (event !== undefined && info.events.every((e) => e === event)) attributes[ATTR.busEvent] = event;
  return attributes;
}

function processAttributes(info: ProcessTraceInfo): Attributes {
  const attributes: Attributes = {
    [ATTR.messageId]: info.messageId,
    [ATTR.busEvent]: info.event,
    [ATTR.busModule]: info.module,
    [ATTR.busConsumer]: info.consumer,
    [ATTR.busDeliveryCount]: info.deliveryCount,
  };
  if (info.batchSize > 1) attributes[ATTR.batchMessageCount] = info.batchSize;
  return attributes;
}

/** Records what the user's code threw (not the bus's wrapper), with the wrapper's message as status. */
function recordError(span: Span, error: unknown): void {
  const root = BusError.isInstance(error) && error.code === 'HANDLER' && error.cause !== undefined ? error.cause : error;
  const exception = root instanceof Error ? root : new Error(String(root));
  span.recordException(exception);
  span.setAttribute(ATTR.errorType, exception.name || 'Error');
  span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
}
