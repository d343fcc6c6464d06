import { readFileSync } from 'node:fs';
import { ConfigError, createBus, memoryTransport, PublishError } from '@bus/core';
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { otel } from '../src/index.js';
import { VERSION } from '../src/version.js';
import { describeTraceAcrossBus, setupTracing, spansWhen } from './helpers/tracing.js';

describeTraceAcrossBus('memory', () => memoryTransport());

describe('otel() details', () => {
  let tracing: ReturnType<typeof setupTracing>;
  beforeAll(() => {
    tracing = setupTracing();
  });
  afterAll(() => tracing.shutdown());

  it('links instead of parenting with processParent: "link"', async () => {
    await using bus = createBus<{ ping: { n: number } }>({ transports: { memory: memoryTransport() }, tracing: otel({ processParent: 'link' }) });
    bus.module({ name: 'm', consumers: { c: { topics: ['pings'], events: ['ping'] } }, pollIntervalMs: 10, handler: () => {} });
    await bus.start();
    await bus.publish('pings', 'ping', { n: 1 });
    const spans = await spansWhen(tracing.exporter, (s) => s.some((x) => x.name === 'pings process'));
    const publish = spans.find((s) => s.name === 'pings publish');
    const processSpan = spans.find((s) => s.name === 'pings process');
    expect(processSpan?.spanContext().traceId).not.toBe(publish?.spanContext().traceId);
    expect(processSpan?.parentSpanContext).toBeUndefined();
    expect(processSpan?.links.map((l) => l.context.spanId)).toEqual([publish?.spanContext().spanId]);
  });

  it('records a failed publish on the publish span', async () => {
    tracing.exporter.reset();
    const transport = memoryTransport({ name: 'kafka-test' });
    const failing = { ...transport, publish: async () => [{ ok: false as const, error: new PublishError('[bus/kafka] broker said no') }] };
    await using bus = createBus({ transports: { kafka: failing }, tracing: otel() });
    await expect(bus.publish('orders', 'order.paid', {})).rejects.toThrow('broker said no');
    const [span] = tracing.exporter.getFinishedSpans();
    expect(span?.name).toBe('orders publish');
    expect(span?.kind).toBe(SpanKind.PRODUCER);
    expect(span?.attributes['messaging.system']).toBe('kafka');
    expect(span?.status).toEqual({ code: SpanStatusCode.ERROR, message: '[bus/kafka] broker said no' });
    expect(span?.attributes['error.type']).toBe('PublishError');
  });

  it('maps messaging.system with the system option and reports its version as the scope version', async () => {
    tracing.exporter.reset();
    await using bus = createBus({ transports: { memory: memoryTransport() }, tracing: otel({ system: () => 'custom' }) });
    await bus.publish('t', 'e', {});
    const [span] = tracing.exporter.getFinishedSpans();
    expect(span?.attributes['messaging.system']).toBe('custom');
    expect(span?.instrumentationScope).toEqual({ name: '@bus/otel', version: VERSION, schemaUrl: undefined });
    expect(VERSION).toBe(JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version);
  });

  it('uses an explicit tracer provider when given', async () => {
    tracing.exporter.reset();
    const spans: string[] = [];
    const tracer = trace.getTracer('x');
    const provider = {
      getTracer: () => ({
        ...tracer,
        startSpan: (name: string, options?: object, ctx?: never) => {
          spans.push(name);
          return tracer.startSpan(name, options, ctx);
        },
        startActiveSpan: tracer.startActiveSpan.bind(tracer),
      }),
    };
    await using bus = createBus({ transports: { memory: memoryTransport() }, tracing: otel({ tracerProvider: provider }) });
    await bus.publish('t', 'e', {});
    expect(spans).toEqual(['t publish']);
  });

  it('validates options, naming the option', () => {
    expect(() => otel({ processParent: 'sibling' as 'link' })).toThrow(ConfigError);
    expect(() => otel({ processParent: 'sibling' as 'link' })).toThrow('[bus/otel] processParent must be one of "child", "link"');
    expect(() => otel({ processparent: 'link' } as never)).toThrow('[bus/otel] processparent is not an option; did you mean "processParent"?');
    expect(() => otel({ system: 'kafka' as unknown as () => string })).toThrow('[bus/otel] system must be a function');
    expect(() => otel({ tracerProvider: {} as never })).toThrow('[bus/otel] tracerProvider must be a TracerProvider');
    expect(() => otel({ propagator: { inject() {} } as never })).toThrow('[bus/otel] propagator must be a TextMapPropagator');
  });
});
