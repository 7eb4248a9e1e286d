// docker/compose.yaml and its files agree with each other and with the server (no Docker
// here to run it): the image's Dockerfile, the port, the environment names; Prometheus's
// mounted config scrapes the relu-serve service on the server's port; Grafana's provisioned
// datasource reaches the prometheus service with the uid the dashboard uses, and the
// dashboard provider reads where the dashboards are mounted.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { parse } from 'yaml';
import { DASHBOARD } from './promql.js';
import { defaultConfig, existsInRepo, readRepo, serverEnvNames } from './repo.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const DIR = 'docker';
const yamlAt = (rel: string): Obj => parse(readRepo(rel)) as Obj;
const compose = yamlAt(`${DIR}/compose.yaml`);
const services = compose.services as Obj;

/** host path (relative to the repo) of the mount at `target`, or null. */
function mountSource(svc: Obj, target: string): string | null {
  for (const v of (svc.volumes ?? []) as string[]) {
    const [src, dst] = v.replace(/\$\{[A-Z_]+:-([^}]+)\}/, '$1').split(':');
    if (dst === target) return path.posix.normalize(`${DIR}/${src}`);
  }
  return null;
}

/** Inside-container path -> repo path, through the service's bind mounts. */
function hostPath(svc: Obj, p: string): string | null {
  for (const v of (svc.volumes ?? []) as string[]) {
    const [src, dst] = v.split(':');
    if (p === dst || p.startsWith(dst + '/')) return path.posix.normalize(`${DIR}/${src}${p.slice(dst.length)}`);
  }
  return null;
}

function envNames(svc: Obj): string[] {
  const env = svc.environment ?? [];
  return Array.isArray(env) ? env.map((e: string) => e.split('=')[0]) : Object.keys(env);
}

test('compose: relu-serve is built from the repository Dockerfiles, on the server port, with env names it reads', () => {
  const port = defaultConfig().port;
  for (const file of [`${DIR}/compose.yaml`, `${DIR}/compose.gpu.yaml`]) {
    const svc = (yamlAt(file).services as Obj)['relu-serve'];
    const context = path.posix.normalize(`${DIR}/${svc.build.context}`);
    assert.equal(context, '.', `${file}: builds from the repository root`);
    assert.ok(existsInRepo(svc.build.dockerfile), `${file}: ${svc.build.dockerfile} exists`);
    for (const n of envNames(svc)) if (n.startsWith('RELU_SERVE_')) assert.ok(serverEnvNames.has(n), `${file}: ${n} is not a setting relu-serve reads`);
  }
  const rs = services['relu-serve'];
  assert.ok((rs.ports as string[]).some((p) => p.split(':').at(-1) === String(port)), `publishes container port ${port}`);
  assert.equal(mountSource(rs, '/models'), 'models', 'the models volume is /models, by default the repository models/');
  // `docker compose stop` waits this long before SIGKILL: the server's grace and its 10 s last resort fit.
  const stop = Number(/^(\d+)s$/.exec(rs.stop_grace_period)?.[1]);
  assert.ok(stop * 1000 > defaultConfig().shutdownGraceMs + 10_000, `stop_grace_period ${rs.stop_grace_period}`);
});

test('compose: Prometheus reads the repository config, which scrapes the relu-serve service', () => {
  const prom = services.prometheus;
  assert.match(prom.image, /^prom\/prometheus:v\d+\.\d+\.\d+$/);
  const flag = (prom.command as string[]).find((c) => c.startsWith('--config.file='))!;
  const cfgPath = hostPath(prom, flag.slice('--config.file='.length));
  assert.equal(cfgPath, `${DIR}/prometheus/prometheus.yml`);
  const cfg = yamlAt(cfgPath!);
  for (const f of cfg.rule_files as string[]) assert.ok(existsInRepo(path.posix.join(path.posix.dirname(cfgPath!), f)), `rule file ${f}`);
  const sc = (cfg.scrape_configs as Obj[])[0];
  assert.equal(sc.job_name, 'relu-serve', 'the job the dashboard and the rules select');
  assert.equal(sc.metrics_path, '/metrics');
  assert.deepEqual(sc.static_configs[0].targets, [`relu-serve:${defaultConfig().port}`]);
});

test('compose: Grafana provisions the datasource the dashboard uses and loads the dashboard', () => {
  const g = services.grafana;
  assert.match(g.image, /^grafana\/grafana:\d+\.\d+\.\d+$/);
  const prov = mountSource(g, '/etc/grafana/provisioning')!;
  const ds = (yamlAt(`${prov}/datasources/prometheus.yaml`).datasources as Obj[])[0];
  assert.equal(ds.url, 'http://prometheus:9090');
  assert.ok((services.prometheus.ports as string[]).some((p) => p.endsWith(':9090')));
  const uids = new Set([...readRepo(DASHBOARD).matchAll(/"uid": "([^"]+)"/g)].map((m) => m[1]).filter((u) => u !== 'relu-serve'));
  assert.deepEqual([...uids], [ds.uid], 'every panel and variable uses the provisioned datasource');
  const provider = (yamlAt(`${prov}/dashboards/relu-serve.yaml`).providers as Obj[])[0];
  const dashDir = hostPath(g, provider.options.path);
  assert.equal(dashDir, path.posix.dirname(DASHBOARD));
  assert.equal(hostPath(g, g.environment.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH), DASHBOARD);
});
