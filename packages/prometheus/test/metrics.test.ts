import { type Bus, ConfigError, createBus, memoryTransport } from '@bus/core';
import { prometheus } from '../src/index.js';
import { Counter, Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { promtool } from './helpers/prometheus-tools.js';

type Events = {
  'order.paid': { n: number; fail?: 'once' | 'always' };
  'order.viewed': { n: number };
};

class PaymentDeclined extends Error {
  override name = 'PaymentDeclined';
}

/** Value of one sample (`name` may be `<histogram>_count` / `_sum` / `_bucket`) whose labels include `labels`. */
async function sample(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  for (const metric of await registry.getMetricsAsJSON()) {
    for (const v of metric.values as { value: number; labels: Record<string, string | number>; metricName?: string }[]) {
      if ((v.metricName ?? metric.name) !== name) continue;
      if (Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want)) return v.value;
    }
  }
  return undefined;
}

async function until(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('prometheus() on a running bus', () => {
  const registry = new Registry();
  let bus: Bus<Events>;
  const job = { module: 'shop', consumer: 'billing', event: 'order.paid', transport: 'memory' };
  const failedOnce = new Set<number>();

  beforeAll(async () => {
    bus = createBus<Events>({ transports: { memory: memoryTransport() }, metrics: prometheus({ registry }) });
    bus.module({
      name: 'shop',
      consumers: { billing: { topics: ['orders'], events: ['order.paid'] } },
      retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 1, jitter: 0 },
      pollIntervalMs: 20,
      handler: async (ctx) => {
        if (ctx.event !== 'order.paid') return;
        const { n, fail } = ctx.payload;
        if (fail === 'always' || (fail === 'once' && !failedOnce.has(n))) {
          failedOnce.add(n);
          throw new PaymentDeclined(`order ${n} declined`);
        }
        await new Promise((r) => setTimeout(r, 20));
      },
    });
    // Published before the consumers start: each message waits >= 60 ms, which the delay must show.
    for (let n = 1; n <= 4; n++) await bus.publish('orders', 'order.paid', { n });
    await bus.publish('orders', 'order.paid', { n: 5, fail: 'once' });
    await bus.publish('orders', 'order.paid', { n: 6, fail: 'always' });
    await bus.publishBatch('orders', [
      { event: 'order.viewed', payload: { n: 7 } },
      { event: 'order.viewed', payload: { n: 8 } },
    ]);
    await new Promise((r) => setTimeout(r, 60));
    await bus.start();
    await until(async () => (await sample(registry, 'messagebus_dead_lettered_total')) === 1 && (await sample(registry, 'messagebus_job_cost_count', { outcome: 'success' })) === 5);
  });
  afterAll(() => bus?.close());

  it('counts published messages per event and outcome', async () => {
    expect(await sample(registry, 'messagebus_published_total', { transport: 'memory', topic: 'orders', event: 'order.paid', outcome: 'ok' })).toBe(6);
    expect(await sample(registry, 'messagebus_published_total', { event: 'order.viewed', outcome: 'ok' })).toBe(2);
  });

  it('observes the job cost per outcome, in seconds', async () => {
    expect(await sample(registry, 'messagebus_job_cost_count', { ...job, outcome: 'success' })).toBe(5);
    expect(await sample(registry, 'messagebus_job_cost_count', { ...job, outcome: 'retry' })).toBe(2);
    expect(await sample(registry, 'messagebus_job_cost_count', { ...job, outcome: 'dead_letter' })).toBe(1);
    // 5 successes of >= 20 ms each.
    expect(await sample(registry, 'messagebus_job_cost_sum', { ...job, outcome: 'success' })).toBeGreaterThanOrEqual(0.09);
    expect(await sample(registry, 'messagebus_job_cost_sum', { ...job, outcome: 'success' })).toBeLessThan(5);
  });

  it('observes the real delay from publishedAt to handling, once per message', async () => {
    expect(await sample(registry, 'messagebus_job_delay_count', job)).toBe(6);
    expect(await sample(registry, 'messagebus_job_delay_sum', job)).toBeGreaterThanOrEqual(6 * 0.05);
    // Nothing waited less than 50 ms: the 0.05 bucket is empty, the 10 s bucket holds all six.
    expect(await sample(registry, 'messagebus_job_delay_bucket', { ...job, le: '0.025' })).toBe(0);
    expect(await sample(registry, 'messagebus_job_delay_bucket', { ...job, le: '10' })).toBe(6);
  });

  it('counts consumed, retried, dead-lettered (with reason) and skipped messages', async () => {
    expect(await sample(registry, 'messagebus_consumed_total', job)).toBe(6);
    expect(await sample(registry, 'messagebus_retried_total', job)).toBe(2);
    expect(await sample(registry, 'messagebus_dead_lettered_total', { ...job, reason: 'PaymentDeclined' })).toBe(1);
    expect(await sample(registry, 'messagebus_skipped_total', { ...job, event: 'order.viewed' })).toBe(2);
  });

  it('maps pool stats and lag to gauges', async () => {
    const m = prometheus({ registry });
    m.poolStats({ transport: 'kafka', pool: 'producer' }, { size: 4, available: 1, borrowed: 3, pending: 2, min: 1, max: 4 });
    m.lag({ transport: 'kafka', group: 'shop-billing-external', topic: 'orders' }, 42);
    expect(await sample(registry, 'messagebus_pool_size', { transport: 'kafka', pool: 'producer' })).toBe(4);
    expect(await sample(registry, 'messagebus_pool_in_use', { pool: 'producer' })).toBe(3);
    expect(await sample(registry, 'messagebus_pool_waiting', { pool: 'producer' })).toBe(2);
    expect(await sample(registry, 'messagebus_consumer_lag', { group: 'shop-billing-external', topic: 'orders' })).toBe(42);
  });

  it('maps delayed messages waiting to a gauge and lateness to a histogram', async () => {
    const m = prometheus({ registry });
    m.delayedWaiting({ transport: 'redis', topic: 'reminders' }, 17);
    m.delayLateness({ module: 'shop', consumer: 'reminders', event: 'reminder.due', transport: 'redis', topic: 'reminders' }, 0.004);
    expect(await sample(registry, 'messagebus_delayed_waiting', { transport: 'redis', topic: 'reminders' })).toBe(17);
    expect(await sample(registry, 'messagebus_delay_lateness_count', { module: 'shop', consumer: 'reminders' })).toBe(1);
    expect(await sample(registry, 'messagebus_delay_lateness_bucket', { consumer: 'reminders', le: '0.005' })).toBe(1);
  });

  it('produces an exposition that `promtool check metrics` accepts', async () => {
    const text = await registry.metrics();
    expect(text).toContain('# TYPE messagebus_job_cost histogram');
    const { status, output } = promtool(['check', 'metrics'], text);
    expect(output).toBe('');
    expect(status).toBe(0);
  });
});

describe('prometheus() options and registry', () => {
  it('reuses the metrics already on a registry (two buses in one process)', () => {
    const registry = new Registry();
    const a = prometheus({ registry });
    const b = prometheus({ registry });
    expect(b.metrics.jobCost).toBe(a.metrics.jobCost);
    expect(b.metrics.consumerLag).toBe(a.metrics.consumerLag);
    expect(registry.getMetricsAsArray()).toHaveLength(14);
  });

  it('uses the default registry by default', () => {
    expect(prometheus().registry).toBe(prometheus().registry);
  });

  it('refuses a clashing metric of another type', () => {
    const registry = new Registry();
    new Counter({ name: 'messagebus_job_cost', help: 'not ours', registers: [registry] });
    expect(() => prometheus({ registry })).toThrow(ConfigError);
    expect(() => prometheus({ registry })).toThrow(/\[bus\/prometheus\] registry already holds a metric "messagebus_job_cost" of type counter/);
  });

  it('prefixes names with the namespace and honours custom buckets', async () => {
    const registry = new Registry();
    const m = prometheus({ registry, namespace: 'shop', costBuckets: [0.1, 1], delayBuckets: [1, 60] });
    m.jobFinished({ module: 'm', consumer: 'c', event: 'e', transport: 't', topic: 'x' }, 0.5, 'success');
    const text = await registry.metrics();
    expect(text).toContain('shop_messagebus_job_cost_bucket{le="0.1",module="m",consumer="c",event="e",transport="t",outcome="success"} 0');
    expect(text).toContain('shop_messagebus_job_cost_bucket{le="1",module="m",consumer="c",event="e",transport="t",outcome="success"} 1');
    expect(text).toContain('# TYPE shop_messagebus_job_delay histogram');
    expect(text).not.toMatch(/^messagebus_/m);
  });

  it('validates options, naming the option', () => {
    expect(() => prometheus({ namespace: 'bad-name' })).toThrow('[bus/prometheus] namespace must be a valid Prometheus metric name prefix');
    expect(() => prometheus({ namspace: 'app' } as never)).toThrow('[bus/prometheus] namspace is not an option; did you mean "namespace"?');
    expect(() => prometheus({ costBuckets: [1, 0.5] })).toThrow('[bus/prometheus] costBuckets[1] must be greater than the bucket before it');
    expect(() => prometheus({ delayBuckets: [] })).toThrow('[bus/prometheus] delayBuckets must be a non-empty array');
    expect(() => prometheus({ registry: {} as Registry })).toThrow('[bus/prometheus] registry must be a prom-client Registry');
  });

  it('never throws from a hook', () => {
    const m = prometheus({ registry: new Registry() });
    expect(() => m.lag({ transport: 't', group: 'g', topic: 'x' }, 'many' as unknown as number)).not.toThrow();
    expect(() => m.published({ transport: 't', topic: 'x', event: 'e' }, -1, true)).not.toThrow();
  });
});
