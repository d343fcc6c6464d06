// OpenTelemetry SDK setup for tests, and the producer → handler trace scenario, reusable for any
// transport: `describeTraceAcrossBus('redis', () => redisStream({ url }))`.
import { randomUUID } from 'node:crypto';
import { type Bus, createBus, type Transport } from '@bus/core';
import { context, propagation, type SpanContext, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { otel } from '../../src/index.js';

/** Registers a tracer provider exporting to memory, AsyncLocalStorage context and W3C propagation (trace context + baggage). */
export function setupTracing() {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  trace.setGlobalTracerProvider(provider);
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }));
  return {
    exporter,
    async shutdown() {
      await provider.shutdown();
      trace.disable();
      context.disable();
      propagation.disable();
    },
  };
}

/** Waits until the exporter holds spans matching `accept`. */
export async function spansWhen(exporter: InMemorySpanExporter, accept: (spans: ReadableSpan[]) => boolean, timeoutMs = 15_000): Promise<ReadableSpan[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const spans = exporter.getFinishedSpans();
    if (accept(spans)) return spans;
    if (Date.now() > deadline) throw new Error(`spans not as expected in time; got: ${spans.map((s) => s.name).join(', ')}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

type Events = { 'task.run': { n: number; fail?: boolean } };

interface Seen {
  spanContext: SpanContext | undefined;
  baggage: string | undefined;
  traceparent: string | undefined;
}

/**
 * Runs a bus with `otel()` over the transport and checks that one trace spans producer → bus →
 * handler, that the handler runs in the process span, and that a failing handler is recorded.
 */
export function describeTraceAcrossBus(
  name: string,
  createTransport: () => Transport,
  options: { pollIntervalMs?: number; cleanup?: (topics: string[]) => Promise<void> | void } = {},
) {
  describe(`otel() across the ${name} transport`, { timeout: 30_000 }, () => {
    let tracing: ReturnType<typeof setupTracing>;
    let bus: Bus<Events>;
    const topic = `otel-${randomUUID().slice(0, 8)}`;
    const seen = new Map<number, Seen>();
    let transportName = '';

    beforeAll(async () => {
      tracing = setupTracing();
      bus = createBus<Events>({ transports: { t: createTransport() }, tracing: otel() });
      transportName = bus.transports.t?.name ?? '';
      bus.module({
        name: 'shop',
        consumers: { billing: { topics: [topic], events: ['task.run'] } },
        retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 1, jitter: 0 },
        pollIntervalMs: options.pollIntervalMs ?? 20,
        handler: async ({ payload, message }) => {
          seen.set(payload.n, {
            spanContext: trace.getActiveSpan()?.spanContext(),
            baggage: propagation.getActiveBaggage()?.getEntry('tenant')?.value,
            traceparent: message.headers.traceparent,
          });
          await trace.getTracer('app').startActiveSpan('db write', async (span) => span.end());
          if (payload.fail) throw new TypeError(`task ${payload.n} is broken`);
        },
      });
      await bus.start();
    }, 30_000);

    afterAll(async () => {
      await bus?.close();
      await tracing?.shutdown();
      await options.cleanup?.([topic, `${topic}.dlq`]);
    }, 30_000);

    const byName = (spans: ReadableSpan[], spanName: string, traceId: string) => spans.filter((s) => s.name === spanName && s.spanContext().traceId === traceId);

    it('puts the producer span and the consumer span in one trace, with the handler inside', async () => {
      const tracer = trace.getTracer('app');
      const bag = propagation.createBaggage({ tenant: { value: 'acme' } });
      const traceId = await context.with(propagation.setBaggage(context.active(), bag), () =>
        tracer.startActiveSpan('http request', async (request) => {
          await bus.publish(topic, 'task.run', { n: 1 });
          request.end();
          return request.spanContext().traceId;
        }),
      );
      const spans = await spansWhen(tracing.exporter, (s) => byName(s, 'db write', traceId).length === 1 && byName(s, `${topic} process`, traceId).length === 1);
      const [request] = byName(spans, 'http request', traceId);
      const [publish] = byName(spans, `${topic} publish`, traceId);
      const [processSpan] = byName(spans, `${topic} process`, traceId);
      const [dbWrite] = byName(spans, 'db write', traceId);
      expect(publish?.kind).toBe(SpanKind.PRODUCER);
      expect(processSpan?.kind).toBe(SpanKind.CONSUMER);
      expect(publish?.parentSpanContext?.spanId).toBe(request?.spanContext().spanId);
      expect(processSpan?.parentSpanContext?.spanId).toBe(publish?.spanContext().spanId);
      expect(dbWrite?.parentSpanContext?.spanId).toBe(processSpan?.spanContext().spanId);
      // The handler ran with the process span active, saw the producer's traceparent and baggage.
      const handled = seen.get(1);
      expect(handled?.spanContext?.spanId).toBe(processSpan?.spanContext().spanId);
      expect(handled?.traceparent).toBe(`00-${traceId}-${publish?.spanContext().spanId}-01`);
      expect(handled?.baggage).toBe('acme');

      const system = transportName.startsWith('kafka') ? 'kafka' : transportName.startsWith('redis') ? 'redis' : transportName;
      expect(publish?.attributes).toMatchObject({
        'messaging.system': system,
        'messaging.destination.name': topic,
        'messaging.operation.type': 'send',
        'messaging.operation.name': 'publish',
        'messaging.message.id': expect.any(String),
        'bus.event': 'task.run',
      });
      expect(processSpan?.attributes).toMatchObject({
        'messaging.system': system,
        'messaging.destination.name': topic,
        'messaging.consumer.group.name': 'shop-billing',
        'messaging.operation.type': 'process',
        'messaging.operation.name': 'process',
        'messaging.message.id': publish?.attributes['messaging.message.id'],
        'bus.event': 'task.run',
        'bus.module': 'shop',
        'bus.consumer': 'billing',
        'bus.delivery_count': 1,
      });
      expect(processSpan?.status.code).not.toBe(SpanStatusCode.ERROR);
    });

    it('records a failing handler on the process span, still in the producer trace', async () => {
      const traceId = await trace.getTracer('app').startActiveSpan('job', async (root) => {
        await bus.publish(topic, 'task.run', { n: 2, fail: true });
        root.end();
        return root.spanContext().traceId;
      });
      const spans = await spansWhen(tracing.exporter, (s) => byName(s, `${topic} process`, traceId).length === 1);
      const [publish] = byName(spans, `${topic} publish`, traceId);
      const [processSpan] = byName(spans, `${topic} process`, traceId);
      expect(processSpan?.parentSpanContext?.spanId).toBe(publish?.spanContext().spanId);
      expect(processSpan?.status.code).toBe(SpanStatusCode.ERROR);
      expect(processSpan?.status.message).toContain('task 2 is broken');
      expect(processSpan?.attributes['error.type']).toBe('TypeError');
      const exception = processSpan?.events.find((e) => e.name === 'exception');
      expect(exception?.attributes).toMatchObject({ 'exception.type': 'TypeError', 'exception.message': 'task 2 is broken' });
      // Both attempts ran inside the same process span.
      expect(byName(spans, 'db write', traceId).map((s) => s.parentSpanContext?.spanId)).toEqual([processSpan?.spanContext().spanId, processSpan?.spanContext().spanId]);
    });

    it('gives a batch one publish span whose context every message carries', async () => {
      const traceId = await trace.getTracer('app').startActiveSpan('import', async (root) => {
        await bus.publishBatch(topic, [10, 11, 12].map((n) => ({ event: 'task.run' as const, payload: { n } })));
        root.end();
        return root.spanContext().traceId;
      });
      const spans = await spansWhen(tracing.exporter, (s) => byName(s, `${topic} process`, traceId).length === 3);
      const publishes = byName(spans, `${topic} publish`, traceId);
      expect(publishes).toHaveLength(1);
      expect(publishes[0]?.attributes['messaging.batch.message_count']).toBe(3);
      expect(publishes[0]?.attributes['messaging.message.id']).toBeUndefined();
      for (const p of byName(spans, `${topic} process`, traceId)) expect(p.parentSpanContext?.spanId).toBe(publishes[0]?.spanContext().spanId);
      for (const n of [10, 11, 12]) expect(seen.get(n)?.traceparent).toBe(`00-${traceId}-${publishes[0]?.spanContext().spanId}-01`);
    });
  });
}
