import { readFileSync } from 'node:fs';
import { prometheus } from '../src/index.js';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { alertRulesFile, alertRulesTestFile, dashboardQueries, metricNames, observabilityDir, readDashboard } from './helpers/observability.js';
import { promtool } from './helpers/prometheus-tools.js';

const exposed = new Set(prometheus({ registry: new Registry() }).registry.getMetricsAsArray().map((m) => (m as unknown as { name: string }).name));

describe('examples/observability', () => {
  it('alert rules pass `promtool check rules`', () => {
    const { status, output } = promtool(['check', 'rules', alertRulesFile]);
    expect(output).toContain('SUCCESS: 8 rules found');
    expect(status).toBe(0);
  });

  it('alert rules pass their unit tests (`promtool test rules`)', () => {
    const { status, output } = promtool(['test', 'rules', alertRulesTestFile]);
    expect(output).toContain('SUCCESS');
    expect(status).toBe(0);
  });

  it('alert rules and dashboard only use metrics @bus/prometheus exports', () => {
    const names = [...metricNames(readFileSync(alertRulesFile, 'utf8')), ...dashboardQueries(readDashboard()).flatMap((q) => metricNames(q.expr))];
    expect(names.length).toBeGreaterThan(5);
    expect(names.filter((n) => !exposed.has(n))).toEqual([]);
  });

  it('dashboard has unique panel ids, PromQL on every panel, and covers each metric', () => {
    const dashboard = readDashboard();
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const panel of dashboard.panels.filter((p) => p.type !== 'row')) expect(panel.targets?.length, panel.title).toBeGreaterThan(0);
    const used = new Set(dashboardQueries(dashboard).flatMap((q) => metricNames(q.expr)));
    expect([...exposed].filter((n) => !used.has(n))).toEqual([]);
    const exprs = dashboardQueries(dashboard).map((q) => q.expr).join('\n');
    expect(exprs).toContain('histogram_quantile(0.99, sum by (le, module, consumer) (rate(messagebus_job_cost_bucket');
    expect(exprs).toContain('histogram_quantile(0.99, sum by (le, module, consumer) (rate(messagebus_job_delay_bucket');
    expect(observabilityDir).toMatch(/examples\/observability\/$/);
  });
});
