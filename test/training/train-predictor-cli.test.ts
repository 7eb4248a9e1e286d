// `relu-serve train-predictor` as a user runs it: a child process of the built CLI
// (dist/server/cli/main.js) on a tiny ReLU model and a small corpus. Exit code, the
// printed report, the saved JSON report, the written file (loads, passes the PowerInfer
// rules); Ctrl-C (SIGINT) while collecting stops collection and still trains on what was
// collected; a SiLU model and a missing file end with exit code 1 and a clear message.
// Needs the native addon and the compiled CLI (npm run build).

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Model } from '../../server/engine/engine.js';
import { writeGguf } from '../../server/gguf/writer.js';
import { syntheticModelSpec } from '../../server/gguf/synthetic-model.js';
import { buildPowerLawModel, writePowerLawModel } from '../profiler/powerlaw-model.js';
import { seededRandom } from '../profiler/synthetic.js';
import { powerInferViolations } from './powerinfer-conformance.js';

const cli = fileURLToPath(new URL('../../server/cli/main.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'rs-train-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const model = join(dir, 'relu.gguf');
const corpus = join(dir, 'corpus.txt');
const bigCorpus = join(dir, 'big.txt');

const ready = (async () => {
  await writePowerLawModel(model, buildPowerLawModel({ nLayer: 2, nFf: 128, nEmbd: 32, alpha: 0.5, seed: 3 }));
  const rand = seededRandom(5);
  const letters = (n: number) => Array.from({ length: n }, () => String.fromCharCode(97 + Math.floor(rand() * 26))).join('');
  writeFileSync(corpus, letters(2000));
  // Long enough that collecting it all takes tens of seconds here (~7k tokens/s).
  writeFileSync(bigCorpus, letters(300_000));
})();

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Run the CLI; `onStderr` sees stderr as it arrives (to interrupt at the right moment). */
function runCli(args: string[], onStderr?: (soFar: string, child: ReturnType<typeof spawn>) => void, timeoutMs = 120_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (b) => { stdout += b; });
    child.stderr.on('data', (b) => {
      stderr += b;
      onStderr?.(stderr, child);
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

const base = ['train-predictor', '--threads', '2', '--ctx', '256', '--batch', '64', '--rank', '16', '--epochs', '2'];

test('trains, prints and saves the report, writes a PowerInfer file that loads', async () => {
  await ready;
  const out = join(dir, 'out.powerinfer.gguf');
  const r = await runCli([...base, '--model', model, '--corpus', corpus, '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  // Printed: the model line, rows, time, one line per layer with its held-out figures.
  assert.match(r.stdout, /^model +.*relu\.gguf -> .*out\.powerinfer\.gguf \(\d+ bytes, predictors f32, threshold -1\)$/m);
  assert.match(r.stdout, /^rows +\d+ collected \(\d+ train, \d+ held out\)$/m);
  for (const l of [0, 1]) {
    assert.match(r.stdout, new RegExp(`^layer +${l} +rank +16 +recall \\d+\\.\\d+% +precision \\d+\\.\\d+% +active [\\d.]+% +selected [\\d.]+% +predictor \\d+ KiB / FFN \\d+ KiB`, 'm'));
  }
  assert.match(r.stdout, /wrote .*out\.powerinfer\.gguf; report .*out\.powerinfer\.gguf\.report\.json/);
  assert.match(r.stderr, /collecting from corpus\.txt: \d+ tokens/);
  // Saved: the same figures as JSON.
  const rep = JSON.parse(readFileSync(`${out}.report.json`, 'utf8'));
  assert.equal(rep.train.out, out);
  assert.equal(rep.train.interrupted, false);
  assert.equal(rep.train.layers.length, 2);
  assert.equal(rep.train.trainRows + rep.train.heldoutRows, rep.train.tokens);
  for (const l of rep.train.layers) {
    assert.equal(l.rank, 16);
    assert.ok(l.heldout.recall >= 0.99, `layer ${l.layer} recall ${l.heldout.recall}`);
    for (const k of ['precision', 'activeShare', 'predictedShare']) assert.ok(l.heldout[k] > 0 && l.heldout[k] <= 1, k);
    assert.ok(l.predictorBytes > 0 && l.ffnBytes > l.predictorBytes);
    // The printed recall is the saved one.
    assert.match(r.stdout, new RegExp(`layer +${l.layer} .*recall ${(100 * l.heldout.recall).toFixed(2)}%`));
  }
  assert.equal(rep.train.fileBytes, readFileSync(out).length);
  assert.deepEqual(await powerInferViolations(out), []);
  const m = await Model.load(out);
  try {
    assert.equal(m.info.sparseThreshold, -1);
  } finally {
    m.dispose();
  }
});

test('Ctrl-C while collecting stops collection and trains on what it has', async () => {
  await ready;
  const out = join(dir, 'int.powerinfer.gguf');
  let sent = false;
  const r = await runCli([...base, '--model', model, '--corpus', bigCorpus, '--tokens', '400000', '--out', out], (err, child) => {
    // Collection has begun once this line is out; give it a moment to collect some rows.
    if (!sent && /collecting from big\.txt: (\d+) tokens/.test(err)) {
      sent = true;
      setTimeout(() => child.kill('SIGINT'), 1500);
    }
  });
  assert.ok(sent, r.stderr);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /stopping collection after the current batch; training on what was collected/);
  const total = Number(/collecting from big\.txt: (\d+) tokens/.exec(r.stderr)![1]);
  const rep = JSON.parse(readFileSync(`${out}.report.json`, 'utf8'));
  assert.equal(rep.train.interrupted, true);
  assert.ok(rep.train.tokens >= 64 && rep.train.tokens < total, `collected ${rep.train.tokens} of ${total}`);
  assert.match(r.stdout, /collection interrupted/);
  assert.equal(rep.train.layers.length, 2, 'it still trained every layer');
  assert.deepEqual(await powerInferViolations(out), []);
});

test('a SiLU model and missing files end with exit code 1 and a clear message', async () => {
  await ready;
  const silu = join(dir, 'silu.gguf');
  await writeGguf(silu, await syntheticModelSpec({ arch: 'llama', size: 'tiny', type: 'f32', seed: 1 }));
  const out = join(dir, 'never.gguf');
  // Refused before the corpus is read: the corpus named here does not exist.
  const s = await runCli([...base, '--model', silu, '--corpus', join(dir, 'absent.txt'), '--out', out]);
  assert.equal(s.code, 1);
  assert.match(s.stderr, /^train-predictor: synthetic-LLaMA-tiny-f32 uses a SwiGLU \(SiLU\) FFN: its activations are almost never exactly zero/m);
  assert.equal(existsSync(out), false, 'nothing written');

  const m = await runCli([...base, '--model', join(dir, 'missing.gguf'), '--out', out]);
  assert.equal(m.code, 1);
  assert.match(m.stderr, /^train-predictor: cannot open model file '.*missing\.gguf': No such file or directory$/m);

  const c = await runCli([...base, '--model', model, '--corpus', join(dir, 'absent.txt'), '--out', out]);
  assert.equal(c.code, 1);
  assert.match(c.stderr, /^train-predictor: cannot read corpus file .*absent\.txt/m);
  assert.equal(existsSync(out), false, 'nothing written');
  for (const r of [s, m, c]) assert.doesNotMatch(r.stderr, /\n\s+at /, 'a message, not a stack trace');
});
