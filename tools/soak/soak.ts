// Load-and-fault run against a real `relu-serve serve` process:
//   npm run soak -- --seconds 60 [--clients 12] [--parallel 4] [--max-queue 4]
// Concurrent clients stream and wait for completions, abort at random moments, and
// burst past the queue (429s expected). At the end it checks that the books balance:
//   - every request the clients started ended as finished, errored (429 included) or
//     cancelled, none hung; the server counted (relu_serve_requests_total) every answered
//     one and its 429s, and no more than were started (aborted ones may never arrive);
//   - no slot is left busy and nothing waits (/health, /metrics);
//   - the server's RSS after the run is within bounds of its RSS after warm-up;
//   - SIGTERM ends the process with status 0.
// Exit status 0 when all hold; the figures are printed either way.

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeModel } from '../../server/cli/make-model.js';

const cli = fileURLToPath(new URL('../../server/cli/main.js', import.meta.url));

interface Tally {
  started: number;
  finished: number;
  errored: number;
  rejected429: number;
  cancelled: number;
  hung: number;
}

function arg(argv: string[], name: string, dflt: number): number {
  const i = argv.indexOf(name);
  const v = i >= 0 ? Number(argv[i + 1]) : dflt;
  if (!Number.isFinite(v) || v < 0) throw new Error(`${name}: expected a number`);
  return v;
}

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

async function metric(url: string, name: string, labels: RegExp = /.*/): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^(\S+?)(\{[^}]*\})?\s+(\S+)$/.exec(line);
    if (m && m[1] === name && labels.test(m[2] ?? '')) sum += Number(m[3]);
  }
  return sum;
}

/** One client request: random kind, random abort; settles into exactly one tally bucket. */
async function oneRequest(url: string, t: Tally, rnd: () => number): Promise<void> {
  t.started++;
  const stream = rnd() < 0.7;
  const chat = rnd() < 0.5;
  const abortAfter = rnd() < 0.3 ? rnd() * 300 : null;
  const ac = new AbortController();
  const abortTimer = abortAfter === null ? null : setTimeout(() => ac.abort(), abortAfter);
  const hangTimer = setTimeout(() => ac.abort(new Error('hung')), 60_000);
  const body = chat
    ? { messages: [{ role: 'user', content: `tell me ${Math.floor(rnd() * 1000)}` }], max_tokens: 4 + Math.floor(rnd() * 40), stream }
    : { prompt: `count ${Math.floor(rnd() * 1000)}`, max_tokens: 4 + Math.floor(rnd() * 40), stream };
  try {
    const res = await fetch(`${url}/v1/${chat ? 'chat/completions' : 'completions'}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: ac.signal,
    });
    const text = await res.text();
    if (res.status === 429) t.rejected429++;
    if (res.status !== 200) t.errored++;
    else if (stream && !text.includes('[DONE]')) t.errored++;
    else t.finished++;
  } catch (err) {
    if (ac.signal.reason instanceof Error && ac.signal.reason.message === 'hung') t.hung++;
    else if (ac.signal.aborted) t.cancelled++;
    else t.errored++;
  } finally {
    if (abortTimer) clearTimeout(abortTimer);
    clearTimeout(hangTimer);
  }
}

export async function soak(argv: string[]): Promise<boolean> {
  const seconds = arg(argv, '--seconds', 30);
  const clients = arg(argv, '--clients', 12);
  const parallel = arg(argv, '--parallel', 4);
  const maxQueue = arg(argv, '--max-queue', 4);
  const dir = mkdtempSync(join(tmpdir(), 'relu-serve-soak-'));
  const model = join(dir, 'soak.gguf');
  await makeModel({ arch: 'bamboo', size: 'tiny', type: 'q8_0', seed: 21, out: model });
  const proc = spawn(process.execPath, [cli, 'serve', '--model', model, '--alias', 'soak', '--port', '0', '--threads', '1', '--parallel', String(parallel), '--max-queue', String(maxQueue), '--ctx-size', '256', '--shutdown-grace', '3000', '--log-level', 'info'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<{ code: number | null; signal: string | null }>((r) => proc.on('exit', (code, signal) => r({ code, signal })));
  let logs = '';
  proc.stderr!.on('data', (d: Buffer) => (logs = (logs + d.toString()).slice(-4000)));
  const url = await new Promise<string>((resolve, reject) => {
    proc.stdout!.on('data', (d: Buffer) => {
      logs = (logs + d.toString()).slice(-4000);
      const m = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(logs);
      if (m) resolve(m[1]);
    });
    proc.on('exit', () => reject(new Error(`server exited early: ${logs}`)));
  });
  for (let i = 0; (await fetch(`${url}/health`).then((r) => r.status, () => 0)) !== 200; i++) {
    if (i > 400) throw new Error('server never became healthy');
    await new Promise((r) => setTimeout(r, 50));
  }

  let seed = 12345;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const t: Tally = { started: 0, finished: 0, errored: 0, rejected429: 0, cancelled: 0, hung: 0 };
  // Warm-up, then the RSS the run is measured against.
  await Promise.all(Array.from({ length: parallel * 2 }, () => oneRequest(url, t, rnd)));
  const rssWarm = rssOf(proc.pid!);
  let rssPeak = rssWarm;
  const end = Date.now() + seconds * 1000;
  const rssTimer = setInterval(() => (rssPeak = Math.max(rssPeak, rssOf(proc.pid!))), 500);
  const worker = async () => {
    while (Date.now() < end) {
      // Now and then a burst far past slots + queue: the overflow must be 429s.
      if (rnd() < 0.05) await Promise.all(Array.from({ length: parallel + maxQueue + 8 }, () => oneRequest(url, t, rnd)));
      else await oneRequest(url, t, rnd);
    }
  };
  await Promise.all(Array.from({ length: clients }, worker));
  clearInterval(rssTimer);
  // Aborted requests are reaped at the next engine step: give it a moment to settle.
  let health: { slots_total: number; slots_idle: number; requests_waiting: number } = { slots_total: -1, slots_idle: -2, requests_waiting: -1 };
  for (let i = 0; i < 100; i++) {
    health = (await (await fetch(`${url}/health`)).json()) as typeof health;
    if (health.slots_idle === health.slots_total && health.requests_waiting === 0) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const genRoutes = /route="\/v1\/(chat\/)?completions"/;
  const serverCounted = await metric(url, 'relu_serve_requests_total', genRoutes);
  const server429 = await metric(url, 'relu_serve_requests_total', /route="\/v1\/(chat\/)?completions".*status="429"|status="429".*route="\/v1\/(chat\/)?completions"/);
  const slotsBusy = await metric(url, 'relu_serve_slots_busy');
  const running = await metric(url, 'relu_serve_requests_running');
  const rssEnd = rssOf(proc.pid!);
  proc.kill('SIGTERM');
  const exit = await Promise.race([exited, new Promise<{ code: null; signal: string }>((r) => setTimeout(() => r({ code: null, signal: 'timeout' }), 15_000))]);
  if (exit.signal === 'timeout') proc.kill('SIGKILL');

  const mb = (b: number) => (b / 2 ** 20).toFixed(1);
  console.log(`soak: ${seconds} s, ${clients} clients, ${parallel} slots, max-queue ${maxQueue}`);
  console.log(`client: started ${t.started} = finished ${t.finished} + errored ${t.errored} (429: ${t.rejected429}) + cancelled ${t.cancelled} + hung ${t.hung}`);
  console.log(`server: counted ${serverCounted} generation requests (429: ${server429}); slots busy ${slotsBusy}, running ${running}; /health ${JSON.stringify(health)}`);
  console.log(`rss: warm ${mb(rssWarm)} MiB, peak ${mb(rssPeak)} MiB, end ${mb(rssEnd)} MiB; SIGTERM -> ${JSON.stringify(exit)}`);
  const checks: [string, boolean][] = [
    ['every request ended once', t.started === t.finished + t.errored + t.cancelled + t.hung],
    ['no request hung', t.hung === 0],
    // A request the client aborted may never have reached the server (or been answered
    // after the abort), so the server's books are bounded by the client's on both sides.
    ['the server counted every answered request, and no more than were started', serverCounted >= t.finished + t.errored && serverCounted <= t.started],
    ['the server counted every 429 the clients saw, and no more than 429s + aborts', server429 >= t.rejected429 && server429 <= t.rejected429 + t.cancelled],
    ['the queue overflowed at least once (429s seen)', t.rejected429 > 0],
    ['no slot leaked', slotsBusy === 0 && running === 0 && health.slots_idle === health.slots_total && health.requests_waiting === 0],
    ['RSS bounded (end <= 1.5 x warm + 64 MiB)', rssEnd <= rssWarm * 1.5 + 64 * 2 ** 20],
    ['SIGTERM exits 0', exit.code === 0],
  ];
  for (const [what, ok] of checks) console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (exit.code !== 0) console.log(`server log tail:\n${logs.split('\n').slice(-8).join('\n')}`);
  return checks.every(([, ok]) => ok);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  soak(process.argv.slice(2)).then(
    (ok) => (process.exitCode = ok ? 0 : 1),
    (e) => {
      console.error(e instanceof Error ? e.message : e);
      process.exitCode = 2;
    },
  );
}
