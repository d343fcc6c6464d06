// Reads examples/observability: the Grafana dashboard's PromQL and the alert rules' expressions.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const observabilityDir = fileURLToPath(new URL('../../../../examples/observability/', import.meta.url));
export const alertRulesFile = `${observabilityDir}alert-rules.yml`;
export const alertRulesTestFile = `${observabilityDir}alert-rules.test.yml`;

interface Panel {
  id: number;
  type: string;
  title: string;
  targets?: { expr: string; refId: string }[];
}
export interface Dashboard {
  uid: string;
  panels: Panel[];
  templating: { list: { name: string; type: string; query: unknown }[] };
}

export function readDashboard(): Dashboard {
  return JSON.parse(readFileSync(`${observabilityDir}grafana-dashboard.json`, 'utf8')) as Dashboard;
}

/**
 * Every PromQL expression of the dashboard (panel targets and variable queries), made runnable on a
 * plain Prometheus: Grafana variables replaced (`$__rate_interval` → 1m, `$x` → `.*`) and
 * `label_values(selector, label)` turned into `group by (label) (selector)`.
 */
export function dashboardQueries(dashboard: Dashboard): { where: string; expr: string }[] {
  const out: { where: string; expr: string }[] = [];
  for (const panel of dashboard.panels) {
    for (const target of panel.targets ?? []) out.push({ where: `panel "${panel.title}" ${target.refId}`, expr: target.expr });
  }
  for (const variable of dashboard.templating.list) {
    if (variable.type !== 'query') continue;
    const q = (variable.query as { query: string }).query;
    const m = /^label_values\((.+),\s*(\w+)\)$/.exec(q);
    if (!m) throw new Error(`variable ${variable.name}: unexpected query ${q}`);
    out.push({ where: `variable $${variable.name}`, expr: `group by (${m[2]}) (${m[1]})` });
  }
  return out.map(({ where, expr }) => ({ where, expr: expr.replaceAll('$__rate_interval', '1m').replace(/\$\w+/g, '.*') }));
}

/** Base metric names (`_bucket`/`_count`/`_sum` stripped) referenced by an expression. */
export function metricNames(text: string): string[] {
  return [...new Set([...text.matchAll(/\bmessagebus_[a-z_]+/g)].map((m) => m[0].replace(/_(bucket|count|sum)$/, '')))];
}
