// GGUF mutation fuzzer for the engine's loader: seeded mutations (gguf-mutate.ts) of a
// dense and a PowerInfer-format tiny model, each loaded by a child process
// (gguf-load-child.ts). A child that dies by a signal or an uncaught exception, hangs
// past the per-case limit, or answers with an error the engine did not classify, is a
// finding; its input is kept in the work directory for replay.
//
//   npm run fuzz -- --minutes 10 [--seed 1] [--keep DIR]
// `npm test` runs a short fixed-seed pass (test/hardening/gguf-fuzz.test.ts).

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface, type Interface } from 'node:readline';
import { makeModel } from '../../server/cli/make-model.js';
import { scanLayout, type Layout } from './gguf-layout.js';
import { mutate } from './gguf-mutate.js';

const childScript = fileURLToPath(new URL('./gguf-load-child.js', import.meta.url));

export interface FuzzOptions {
  /** Stop after this many cases (default: unbounded). */
  cases?: number;
  /** Stop after this many seconds. */
  seconds: number;
  seed?: number;
  /** Per-case limit before a load counts as a hang, ms. */
  caseTimeoutMs?: number;
  /** Where seed models, the case file and findings go (default: a temp dir). */
  dir?: string;
  log?: (line: string) => void;
}

export interface Finding {
  caseNo: number;
  seedModel: string;
  what: string;
  failure: string;
  file: string;
}

export interface FuzzResult {
  cases: number;
  seconds: number;
  outcomes: Record<string, number>;
  findings: Finding[];
  restarts: number;
}

/** The two seed models: dense llama (Q8_0, so block types are parsed) and PowerInfer bamboo. */
export async function seedModels(dir: string): Promise<{ name: string; path: string }[]> {
  const dense = join(dir, 'seed-dense.gguf');
  const sparse = join(dir, 'seed-powerinfer.gguf');
  await makeModel({ arch: 'llama', size: 'tiny', type: 'q8_0', seed: 11, out: dense, vocabSize: 300 });
  await makeModel({ arch: 'bamboo', size: 'tiny', type: 'f16', seed: 12, out: sparse, vocabSize: 300, sparse: true });
  return [
    { name: 'dense', path: dense },
    { name: 'powerinfer', path: sparse },
  ];
}

class Loader {
  private proc: ChildProcess | null = null;
  private lines: Interface | null = null;
  private waiting: ((line: string) => void) | null = null;
  private exit: ((why: string) => void) | null = null;
  restarts = 0;

  private start(): void {
    const proc = spawn(process.execPath, [childScript], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    proc.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
    this.lines = createInterface({ input: proc.stdout! });
    this.lines.on('line', (l) => {
      const w = this.waiting;
      this.waiting = null;
      w?.(l);
    });
    proc.on('exit', (code, signal) => {
      if (this.proc !== proc) return;
      this.proc = null;
      const e = this.exit;
      this.exit = null;
      e?.(signal ? `killed by ${signal}` : `exited with code ${code}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`);
    });
    this.proc = proc;
  }

  /** The outcome line, or a failure string ('crash: ...' / 'hang'). */
  run(file: string, timeoutMs: number): Promise<{ outcome?: string; failure?: string }> {
    if (!this.proc) {
      this.start();
      this.restarts++;
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting = null;
        this.exit = null;
        this.kill();
        resolve({ failure: `hang (no answer in ${timeoutMs} ms)` });
      }, timeoutMs);
      this.waiting = (line) => {
        clearTimeout(timer);
        this.exit = null;
        resolve({ outcome: (JSON.parse(line) as { outcome: string }).outcome });
      };
      this.exit = (why) => {
        clearTimeout(timer);
        this.waiting = null;
        resolve({ failure: `crash: ${why}` });
      };
      this.proc!.stdin!.write(file + '\n');
    });
  }

  kill(): void {
    const p = this.proc;
    this.proc = null;
    p?.kill('SIGKILL');
  }
}

export async function runFuzz(o: FuzzOptions): Promise<FuzzResult> {
  const dir = o.dir ?? mkdtempSync(join(tmpdir(), 'relu-serve-fuzz-'));
  mkdirSync(dir, { recursive: true });
  const seeds = (await seedModels(dir)).map((s) => {
    const bytes = readFileSync(s.path);
    return { ...s, bytes, layout: scanLayout(bytes) as Layout };
  });
  const baseSeed = o.seed ?? 1;
  const loader = new Loader();
  const outcomes: Record<string, number> = {};
  const findings: Finding[] = [];
  const t0 = Date.now();
  const caseFile = join(dir, 'case.gguf');
  let n = 0;
  try {
    while ((o.cases === undefined || n < o.cases) && Date.now() - t0 < o.seconds * 1000) {
      const s = seeds[n % seeds.length];
      const m = mutate(baseSeed * 1_000_003 + n, s.bytes, s.layout);
      writeFileSync(caseFile, m.bytes);
      const r = await loader.run(caseFile, o.caseTimeoutMs ?? 20_000);
      let failure = r.failure;
      if (r.outcome?.startsWith('bad-error')) failure = `unclassified error: ${r.outcome.slice(10)}`;
      if (failure) {
        const keep = join(dir, `finding-${n}.gguf`);
        writeFileSync(keep, m.bytes);
        findings.push({ caseNo: n, seedModel: s.name, what: m.what, failure, file: keep });
        o.log?.(`case ${n} (${s.name}; ${m.what}): ${failure} -> ${keep}`);
        outcomes.failed = (outcomes.failed ?? 0) + 1;
      } else {
        outcomes[r.outcome!] = (outcomes[r.outcome!] ?? 0) + 1;
      }
      n++;
    }
  } finally {
    loader.kill();
    if (!o.dir) {
      if (findings.length === 0) rmSync(dir, { recursive: true, force: true });
    }
  }
  return { cases: n, seconds: (Date.now() - t0) / 1000, outcomes, findings, restarts: loader.restarts };
}

async function main(argv: string[]): Promise<void> {
  const arg = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const minutes = Number(arg('--minutes') ?? '1');
  const seed = Number(arg('--seed') ?? String(Date.now() % 1_000_000));
  if (!(minutes > 0) || !Number.isInteger(seed)) throw new Error('usage: npm run fuzz -- --minutes N [--seed S] [--keep DIR]');
  const dir = arg('--keep') ?? mkdtempSync(join(tmpdir(), 'relu-serve-fuzz-'));
  console.log(`fuzzing the GGUF loader for ${minutes} min, seed ${seed}, files in ${dir}`);
  const r = await runFuzz({ seconds: minutes * 60, seed, dir, log: (l) => console.log(l) });
  console.log(`${r.cases} cases in ${r.seconds.toFixed(1)} s (${(r.cases / r.seconds).toFixed(1)}/s): ${JSON.stringify(r.outcomes)}, loader restarts ${r.restarts}`);
  if (r.findings.length > 0) {
    console.log(`${r.findings.length} findings; replay one with: node dist/tools/fuzz/gguf-load-child.js <<< FILE`);
    process.exitCode = 1;
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).catch((e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exitCode = 2;
  });
}
