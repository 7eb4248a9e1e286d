// The monitoring files against a real Prometheus (Debian's `prometheus` package; .ci/run
// installs it): promtool accepts the scrape config and the rules; a Prometheus running the
// repository's scrape config, pointed at a real relu-serve, scrapes it; every metric the
// dashboard, the rules and the autoscaler read exists; and every one of their PromQL
// expressions evaluates without error, the rules included (their evaluation health).
// Skipped, saying why, only where the binaries are missing.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { dashboardQueries, metricNames, ruleQueries, RULES, type Query } from './promql.js';
import { autoscalerQueries } from './k8s.js';
import { freePort, killChildren, onPath, poll, startCli, track } from './processes.js';
import { readRepo, repoPath } from './repo.js';

const CONFIG = 'docker/prometheus/prometheus.yml';
const missing = ['prometheus', 'promtool'].filter((b) => !onPath(b));
const skip = missing.length > 0 ? `${missing.join(' and ')} not on PATH: apt-get install prometheus (Debian) to run this test` : false;

const tmp = mkdtempSync(path.join(tmpdir(), 'relu-serve-prometheus-'));
after(() => {
  killChildren();
  rmSync(tmp, { recursive: true, force: true });
});

test('promtool: the scrape config and the alerting rules are valid', { skip }, () => {
  for (const args of [['check', 'config', repoPath(CONFIG)], ['check', 'rules', repoPath(RULES)]]) {
    const r = spawnSync('promtool', args, { encoding: 'utf8' });
    assert.equal(r.status, 0, `promtool ${args.join(' ')}:\n${r.stdout}${r.stderr}`);
  }
});

interface ApiAnswer<T> {
  status: string;
  data: T;
  error?: string;
  errorType?: string;
}

test('Prometheus scrapes relu-serve with the repository config; every query evaluates', { skip, timeout: 60_000 }, async (t) => {
  const t0 = Date.now();
  const phases: string[] = [];
  const mark = (what: string) => phases.push(`${what} ${Date.now() - t0} ms`);
  // Prometheus first (its start-up is the slow part), scraping the port the server will take.
  const serverPort = await freePort();
  // The repository's config with the target, the interval and the rules path made local.
  const cfg = parse(readRepo(CONFIG)) as {
    global: Record<string, string>;
    rule_files: string[];
    scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[];
  };
  assert.equal(cfg.scrape_configs.length, 1);
  const job = cfg.scrape_configs[0].job_name;
  cfg.global.scrape_interval = '1s';
  cfg.global.evaluation_interval = '1s';
  cfg.rule_files = cfg.rule_files.map((f) => path.resolve(path.dirname(repoPath(CONFIG)), f));
  cfg.scrape_configs[0].static_configs = [{ targets: [`127.0.0.1:${serverPort}`] }];
  writeFileSync(path.join(tmp, 'prometheus.yml'), stringify(cfg));

  const port = await freePort();
  const prom = `http://127.0.0.1:${port}`;
  const logs: string[] = [];
  const proc = track(spawn('prometheus', [
    `--config.file=${path.join(tmp, 'prometheus.yml')}`,
    `--storage.tsdb.path=${path.join(tmp, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`,
    '--log.level=warn',
  ], { stdio: ['ignore', 'pipe', 'pipe'] }));
  proc.stdout!.on('data', (d: Buffer) => logs.push(d.toString()));
  proc.stderr!.on('data', (d: Buffer) => logs.push(d.toString()));
  // The server as the images run it: settings from RELU_SERVE_* only, the embedded default
  // model, on the emulated device so the device series (VRAM, neurons per side) exist too.
  const server = await startCli({ RELU_SERVE_PORT: String(serverPort), RELU_SERVE_DEVICE: 'emu', RELU_SERVE_VRAM_BUDGET: '50%', RELU_SERVE_THREADS: '1', RELU_SERVE_PARALLEL: '2', RELU_SERVE_CTX_SIZE: '256' });
  const res = await fetch(`${server.url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt: 'And it came to pass', max_tokens: 8, temperature: 0 }),
  });
  assert.equal(res.status, 200, await res.text());
  mark('server up, completion done');
  await (await fetch(`${server.url}/v1/nothing-here`)).arrayBuffer(); // a 404 in the status label

  const api = async <T>(p: string): Promise<ApiAnswer<T>> => (await (await fetch(`${prom}${p}`)).json()) as ApiAnswer<T>;
  const query = (expr: string) => api<{ result: { metric: Record<string, string>; value: [number, string] }[] }>(`/api/v1/query?query=${encodeURIComponent(expr)}`);

  // A scrape that saw the completion's tokens.
  await poll(async () => {
    const r = await query(`relu_serve_generated_tokens_total{job="${job}"} > 0`);
    return r.data.result.length > 0 ? true : undefined;
  }, 30_000, () => `a scrape of relu-serve (prometheus log: ${logs.join('')})`);
  mark('first scrape with tokens');
  const up = await query(`up{job="${job}"}`);
  assert.equal(up.data.result[0]?.value[1], '1', 'the target is up');

  const queries: Query[] = [...dashboardQueries(), ...ruleQueries(), ...autoscalerQueries()];
  assert.ok(queries.length >= 30, `expected the dashboard's, the rules' and the autoscaler's queries, found ${queries.length}`);

  // Every series the queries read exists (a misspelt name evaluates fine, to nothing).
  const names = new Set((await api<string[]>('/api/v1/label/__name__/values')).data);
  const used = new Set(queries.flatMap((q) => metricNames(q.expr)));
  for (const n of used) {
    const base = n.replace(/_(bucket|sum|count)$/, '');
    assert.ok(names.has(n), `${n} (${queries.find((q) => metricNames(q.expr).includes(n))!.where}) is not among the scraped series; relu_serve series: ${[...names].filter((x) => x.startsWith('relu_serve_') && x.startsWith(base.slice(0, 14))).join(', ')}`);
  }
  // The dashboard's per-layer panels have a series per layer.
  const layers = await query('relu_serve_layer_active_neuron_ratio');
  assert.ok(layers.data.result.length >= 2, `per-layer active ratio: ${JSON.stringify(layers.data.result)}`);

  // Every expression evaluates.
  for (const q of queries) {
    const r = await query(q.expr);
    assert.equal(r.status, 'success', `${q.where}: ${q.expr}\n${r.errorType}: ${r.error}`);
  }

  mark('every query evaluated');
  // The rules as Prometheus evaluates them: each has run, healthy.
  const ruleNames = ruleQueries().map((q) => q.where.split('/').pop());
  const rules = await poll(async () => {
    const r = await api<{ groups: { rules: { name: string; health: string; lastError?: string; lastEvaluation: string }[] }[] }>('/api/v1/rules');
    const all = r.data.groups.flatMap((g) => g.rules);
    return all.length === ruleNames.length && all.every((x) => !x.lastEvaluation.startsWith('0001')) ? all : undefined;
  }, 10_000, 'a rule evaluation');
  for (const r of rules) assert.equal(r.health, 'ok', `rule ${r.name}: ${r.lastError}`);
  mark('rules evaluated');
  t.diagnostic(`checked ${queries.length} PromQL expressions (${dashboardQueries().length} dashboard, ${ruleQueries().length} rules, ${autoscalerQueries().length} autoscaler), ${used.size} metric names; ${phases.join(', ')}`);

  // Both gone before after() removes Prometheus's storage.
  const exited = (p: typeof proc) => new Promise((r) => (p.exitCode !== null || p.signalCode !== null ? r(null) : p.once('exit', r)));
  proc.kill('SIGKILL');
  server.proc.kill('SIGTERM');
  await Promise.all([exited(proc), exited(server.proc)]);
});
