// deploy/k8s against the server: every kustomization renders (resources and patches exist,
// the YAML parses); the Deployment's port, probes, environment (names the config reads,
// values it accepts), drain time and user agree with the server and the images; Service,
// PodDisruptionBudget, ServiceMonitor and ScaledObject point at what exists; the autoscaler's
// metric is one relu-serve exports; the GPU variant asks for a GPU and runs the CUDA image.

import { test } from 'node:test';
import { spawnSync } from 'node:child_process';
import { parseAllDocuments } from 'yaml';
import assert from 'node:assert/strict';
import { parseDockerfile } from './dockerfile.js';
import { autoscalerQueries, kustomizations, one, render, type Obj } from './k8s.js';
import { metricNames } from './promql.js';
import { onPath } from './processes.js';
import { defaultConfig, readRepo, repoPath, serverEnvNames } from './repo.js';
import { loadConfig } from '../../server/config.js';
import { Metrics } from '../../server/observability/metrics.js';

const dirs = kustomizations();

test('deploy/k8s has the base, autoscaled and GPU variants, and each renders', () => {
  assert.deepEqual(dirs.map((d) => d.split('/').pop()).sort(), ['autoscale', 'base', 'gpu']);
  for (const d of dirs) assert.ok(render(d).length >= 3, d);
});

function container(objs: Obj[]): Obj {
  const c = one(objs, 'Deployment').spec.template.spec.containers as Obj[];
  assert.equal(c.length, 1);
  return c[0];
}

function plainEnv(c: Obj): Record<string, string> {
  return Object.fromEntries((c.env as Obj[]).filter((e) => 'value' in e).map((e) => [e.name, String(e.value)]));
}

function portNamed(c: Obj, p: string | number): number {
  if (typeof p === 'number') return p;
  const port = (c.ports as Obj[]).find((x) => x.name === p);
  assert.ok(port, `no container port named ${p}`);
  return port.containerPort;
}

function labelsMatch(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

for (const dir of dirs) {
  test(`${dir}: the Deployment agrees with the server`, () => {
    const objs = render(dir);
    const dep = one(objs, 'Deployment');
    const pod = dep.spec.template.spec;
    const c = container(objs);
    const env = plainEnv(c);
    // Env names the config reads, with values it accepts (as the container gets them, over the image's).
    for (const e of c.env as Obj[]) assert.ok(serverEnvNames.has(e.name), `${dir}: env ${e.name} is not a setting relu-serve reads`);
    const cfg = loadConfig({ env: { RELU_SERVE_HOST: '0.0.0.0', ...env } });
    assert.equal(portNamed(c, 'http'), cfg.port, 'containerPort is the port the server listens on');
    for (const probe of ['startupProbe', 'readinessProbe', 'livenessProbe']) {
      assert.equal(c[probe]?.httpGet?.path, '/health', `${dir}: ${probe} on /health`);
      assert.equal(portNamed(c, c[probe].httpGet.port), cfg.port, `${dir}: ${probe} port`);
    }
    // The drain fits in the pod's termination grace: preStop, the server's grace, its 10 s last resort.
    const preStop = Number(c.lifecycle?.preStop?.exec?.command?.[0] === 'sleep' ? c.lifecycle.preStop.exec.command[1] : 0);
    assert.ok(pod.terminationGracePeriodSeconds * 1000 > preStop * 1000 + cfg.shutdownGraceMs + 10_000,
      `${dir}: terminationGracePeriodSeconds ${pod.terminationGracePeriodSeconds} s must exceed preStop ${preStop} s + shutdownGraceMs ${cfg.shutdownGraceMs} ms + 10 s`);
    assert.ok(c.resources?.requests?.cpu && c.resources?.requests?.memory, `${dir}: resource requests`);
    // API keys from a Secret, never inline.
    const keys = (c.env as Obj[]).find((e) => e.name === 'RELU_SERVE_API_KEYS');
    assert.ok(keys?.valueFrom?.secretKeyRef?.name, `${dir}: RELU_SERVE_API_KEYS from a Secret`);
    // The image's non-root user.
    const file = c.image.endsWith(':cuda') ? 'docker/cuda.Dockerfile' : 'docker/cpu.Dockerfile';
    const user = parseDockerfile(readRepo(file)).at(-1)!.instructions.filter((i) => i.op === 'USER').at(-1)!.args.split(':')[0];
    assert.equal(pod.securityContext.runAsNonRoot, true);
    assert.equal(String(pod.securityContext.runAsUser), user, `${dir}: runAsUser is ${file}'s USER`);
    assert.ok(labelsMatch(dep.spec.selector.matchLabels, dep.spec.template.metadata.labels));
  });

  test(`${dir}: Service, PodDisruptionBudget and the autoscaling objects point at the Deployment`, () => {
    const objs = render(dir);
    const dep = one(objs, 'Deployment');
    const podLabels = dep.spec.template.metadata.labels;
    const c = container(objs);
    const svc = one(objs, 'Service');
    assert.ok(labelsMatch(svc.spec.selector, podLabels), `${dir}: the Service selects the pods`);
    for (const p of svc.spec.ports as Obj[]) assert.equal(portNamed(c, p.targetPort), defaultConfig().port);
    const pdb = one(objs, 'PodDisruptionBudget');
    assert.ok(labelsMatch(pdb.spec.selector.matchLabels, podLabels));
    for (const sm of objs.filter((o) => o.kind === 'ServiceMonitor')) {
      assert.ok(labelsMatch(sm.spec.selector.matchLabels, svc.metadata.labels), 'the ServiceMonitor selects the Service');
      for (const ep of sm.spec.endpoints as Obj[]) {
        assert.ok((svc.spec.ports as Obj[]).some((p) => p.name === ep.port), `ServiceMonitor port ${ep.port}`);
        assert.equal(ep.path, '/metrics');
        const keys = (c.env as Obj[]).find((e) => e.name === 'RELU_SERVE_API_KEYS');
        assert.equal(ep.authorization?.credentials?.name, keys?.valueFrom.secretKeyRef.name, 'the scrape presents a key from the same Secret');
      }
      // The dashboard and rules select job="relu-serve": the operator names the job after the Service.
      assert.equal(svc.metadata.name, 'relu-serve');
    }
    for (const so of objs.filter((o) => o.kind === 'ScaledObject')) {
      assert.equal(so.spec.scaleTargetRef.name, dep.metadata.name);
      assert.ok(so.spec.minReplicaCount >= 1 && so.spec.maxReplicaCount > so.spec.minReplicaCount);
    }
  });
}

test('the autoscaled variants scale on relu_serve_requests_waiting; the GPU variant asks for a GPU', () => {
  for (const dir of dirs.filter((d) => !d.endsWith('/base'))) assert.equal(render(dir).filter((o) => o.kind === 'ScaledObject').length, 1, dir);
  const qs = autoscalerQueries();
  assert.ok(qs.length >= 1);
  for (const q of qs) assert.deepEqual(metricNames(q.expr), ['relu_serve_requests_waiting'], q.where);
  const gpu = container(render(dirs.find((d) => d.endsWith('/gpu'))!));
  assert.equal(String(gpu.resources.limits['nvidia.com/gpu']), '1');
  assert.equal(plainEnv(gpu).RELU_SERVE_DEVICE, 'cuda');
  assert.match(gpu.image, /:cuda$/);
});

test("the autoscaler's metric is in relu-serve's /metrics", async () => {
  // The registry /metrics serves, before any model is attached: the queue gauge is there from the start.
  const text = await new Metrics({ defaultMetrics: false }).registry.metrics();
  const exported = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]));
  for (const q of autoscalerQueries()) for (const n of metricNames(q.expr)) assert.ok(exported.has(n), `${q.where}: ${n} is not in /metrics`);
});

// This file reads the kustomizations itself (k8s.ts); where kubectl is installed, its own
// rendering must give the same Deployment, so the checks above hold for what is applied.
const noKubectl = onPath('kubectl') ? false : 'kubectl not on PATH: the comparison with its kustomize rendering is not run';
test("kubectl kustomize renders the same Deployment as this test's reader", { skip: noKubectl }, () => {
  for (const dir of dirs) {
    const r = spawnSync('kubectl', ['kustomize', repoPath(dir)], { encoding: 'utf8' });
    assert.equal(r.status, 0, `kubectl kustomize ${dir}: ${r.stderr}`);
    const theirs = parseAllDocuments(r.stdout).map((d) => d.toJS() as Obj);
    assert.deepEqual(theirs.map((o) => o.kind).sort(), render(dir).map((o) => o.kind).sort(), dir);
    const a = container(theirs);
    const b = container(render(dir));
    const byName = (env: Obj[]) => [...env].sort((x, y) => String(x.name).localeCompare(String(y.name)));
    assert.deepEqual(byName(a.env), byName(b.env), `${dir}: env`);
    assert.deepEqual(a.resources, b.resources, `${dir}: resources`);
    assert.equal(a.image, b.image, `${dir}: image`);
  }
});
