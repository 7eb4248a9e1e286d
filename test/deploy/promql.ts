// The PromQL the repository ships: the Grafana dashboard's queries, the alerting rules and
// the autoscaler's query, each with where it came from, ready for Prometheus's query API.

import { parse } from 'yaml';
import { readRepo } from './repo.js';

export interface Query {
  where: string;
  expr: string;
}

export const DASHBOARD = 'docker/grafana/dashboards/relu-serve.json';
export const RULES = 'docker/prometheus/alerts.yml';

/** Grafana's variables replaced by what Prometheus accepts: ranges by a range, our `instance` by any. */
export function substituteGrafana(expr: string): string {
  return expr
    .replace(/\$__rate_interval|\$\{__rate_interval\}|\$__interval|\$\{__interval\}|\$__range|\$\{__range\}/g, '1m')
    .replace(/\$\{instance(?::[a-z]+)?\}|\$instance\b/g, '.*');
}

function walk(node: unknown, path: string, out: Query[]): void {
  if (Array.isArray(node)) {
    node.forEach((n, i) => walk(n, `${path}[${i}]`, out));
    return;
  }
  if (node === null || typeof node !== 'object') return;
  const obj = node as Record<string, unknown>;
  const where = typeof obj.title === 'string' ? `${path} "${obj.title}"` : path;
  for (const [k, v] of Object.entries(obj)) {
    if (k === 'expr' && typeof v === 'string') out.push({ where: `${DASHBOARD} ${where}`, expr: substituteGrafana(v) });
    // A query variable: label_values(SELECTOR, label) runs SELECTOR.
    else if (k === 'definition' && typeof v === 'string') {
      const m = /^label_values\((.+),\s*[a-zA-Z_][a-zA-Z0-9_]*\)$/.exec(v.trim());
      if (m) out.push({ where: `${DASHBOARD} ${where} (variable)`, expr: substituteGrafana(m[1]) });
    } else walk(v, `${where}.${k}`, out);
  }
}

export function dashboardQueries(): Query[] {
  const out: Query[] = [];
  walk(JSON.parse(readRepo(DASHBOARD)), '', out);
  return out;
}

export function ruleQueries(): Query[] {
  const doc = parse(readRepo(RULES)) as { groups: { name: string; rules: { alert?: string; record?: string; expr: string }[] }[] };
  return doc.groups.flatMap((g) => g.rules.map((r) => ({ where: `${RULES} ${g.name}/${r.alert ?? r.record}`, expr: String(r.expr).trim() })));
}

/** Metric names a query reads (relu_serve_* and up). */
export function metricNames(expr: string): string[] {
  const names = new Set<string>();
  for (const m of expr.matchAll(/\b(relu_serve_[a-z0-9_]+|up)\b(?!\s*\()/g)) names.add(m[1]);
  return [...names];
}
