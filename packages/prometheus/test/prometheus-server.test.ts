// A real Prometheus server (Debian package `prometheus`) scrapes a bus's /metrics every second; PromQL
// over its HTTP API must return the seed's histograms with the expected labels, the example alert
// rules must load and evaluate, and every dashboard query must be valid PromQL.
import { type Bus, createBus, memoryTransport } from '@bus/core';
import { type MetricsServer, prometheus, startMetricsServer } from '../src/index.js';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alertRulesFile, dashboardQueries, readDashboard } from './helpers/observability.js';
import { type PromSample, type RunningPrometheus, startPrometheus } from './helpers/prometheus-tools.js';

type Events = { 'task.done': { n: number }; 'task.failed': { n: number } };

// Timeouts are explicit: the vitest projects do not inherit the root config's testTimeout.
describe('a real Prometheus server scraping the bus', { timeout: 40_000 }, () => {
  const registry = new Registry();
  let bus: Bus<Events>;
  let endpoint: MetricsServer;
  let server: RunningPrometheus;
  let producer: NodeJS.Timeout;

  beforeAll(async () => {
    bus = createBus<Events>({ transports: { memory: memoryTransport() }, metrics: prometheus({ registry }) });
    bus.module({
      name: 'live',
      consumers: { income: { topics: ['tasks'], events: ['task.done', 'task.failed'] } },
      retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 1, jitter: 0 },
      pollIntervalMs: 20,
      handler: (ctx) => {
        if (ctx.event === 'task.failed') throw new RangeError(`task ${ctx.payload.n} failed`);
      },
    });
    await bus.start();
    endpoint = await startMetricsServer({ port: 0, host: '127.0.0.1', registry });
    server = await startPrometheus({ targets: [new URL(endpoint.url).host], ruleFiles: [alertRulesFile] });
    // Keep traffic flowing so that rate() over the scrapes is non-zero.
    let n = 0;
    producer = setInterval(() => {
      n++;
      void bus.publish('tasks', n % 5 === 0 ? 'task.failed' : 'task.done', { n }).catch(() => {});
      // Delayed ones too, for the lateness panel.
      if (n % 3 === 0) void bus.publish('tasks', 'task.done', { n }, { delayMs: 30 }).catch(() => {});
    }, 50);
  }, 40_000);

  afterAll(async () => {
    clearInterval(producer);
    await server?.close();
    await endpoint?.close();
    await bus?.close();
  }, 20_000);

  const labelsOf = (samples: PromSample[]) => samples.map((s) => s.metric);

  it('returns messagebus_job_delay_count series with the expected labels', async () => {
    const samples = await server.waitFor('messagebus_job_delay_count', (s) => s.length >= 2);
    expect(labelsOf(samples), server.log()).toEqual(
      expect.arrayContaining([
        { __name__: 'messagebus_job_delay_count', job: 'bus', instance: expect.any(String), module: 'live', consumer: 'income', event: 'task.done', transport: 'memory' },
        { __name__: 'messagebus_job_delay_count', job: 'bus', instance: expect.any(String), module: 'live', consumer: 'income', event: 'task.failed', transport: 'memory' },
      ]),
    );
    expect(Number(samples[0]?.value[1])).toBeGreaterThan(0);
  });

  it('returns messagebus_job_cost_count series per outcome', async () => {
    const samples = await server.waitFor('messagebus_job_cost_count', (s) => s.length >= 3);
    const outcomes = samples.map((s) => `${s.metric.event}/${s.metric.outcome}`).sort();
    expect(outcomes).toEqual(['task.done/success', 'task.failed/dead_letter', 'task.failed/retry']);
    for (const s of samples) {
      expect(s.metric).toMatchObject({ job: 'bus', module: 'live', consumer: 'income', transport: 'memory' });
    }
    const dead = await server.waitFor('messagebus_dead_lettered_total', (s) => s.length > 0);
    expect(dead[0]?.metric).toMatchObject({ module: 'live', consumer: 'income', event: 'task.failed', reason: 'RangeError' });
  });

  it('computes quantiles from the histograms', async () => {
    const p99 = await server.waitFor(
      'histogram_quantile(0.99, sum by (le, module, consumer) (rate(messagebus_job_delay_bucket[1m])))',
      (s) => s.length > 0 && Number.isFinite(Number(s[0]?.value[1])),
    );
    expect(p99[0]?.metric).toEqual({ module: 'live', consumer: 'income' });
    const seconds = Number(p99[0]?.value[1]);
    expect(seconds).toBeGreaterThan(0);
    expect(seconds).toBeLessThan(10);
  });

  it('runs every dashboard query as valid PromQL, with data for the throughput and latency panels', async () => {
    const queries = dashboardQueries(readDashboard());
    const empty: string[] = [];
    for (const { where, expr } of queries) {
      const samples = await server.query(expr).catch((error: Error) => {
        throw new Error(`${where}: ${error.message}`);
      });
      if (samples.length === 0) empty.push(where);
    }
    // Lag, pool and publish-error panels stay empty: the memory transport reports no lag or pools.
    expect(empty.filter((w) => /Published|Handled|quantiles|Average/.test(w) && !/ B$/.test(w))).toEqual([]);
  });

  it('loads and evaluates the example alert rules', async () => {
    const deadline = Date.now() + 20_000;
    let rules: { name: string; health: string; lastError?: string }[] = [];
    while (Date.now() < deadline) {
      const body = (await (await fetch(`${server.url}/api/v1/rules`)).json()) as { data: { groups: { rules: typeof rules }[] } };
      rules = body.data.groups.flatMap((g) => g.rules);
      if (rules.length === 8 && rules.every((r) => r.health === 'ok')) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(rules.map((r) => `${r.name}:${r.health}${r.lastError ?? ''}`).sort()).toEqual(
      [
        'MessageBusConsumerLagGrowing',
        'MessageBusDeadLetters',
        'MessageBusDeadLettersRising',
        'MessageBusDelayedDeliveryLate',
        'MessageBusDelayedPilingUp',
        'MessageBusHighDelay',
        'MessageBusPoolExhausted',
        'MessageBusPublishErrors',
      ].map((n) => `${n}:ok`),
    );
    // A message is dead-lettered every 250 ms: the dead-letter alert is pending or firing.
    const alerts = await server.waitFor('ALERTS{alertname="MessageBusDeadLetters"}', (s) => s.length > 0);
    expect(alerts[0]?.metric).toMatchObject({ module: 'live', consumer: 'income', reason: 'RangeError', severity: 'warning' });
  });
});
