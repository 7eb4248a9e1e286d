// `relu-serve make-model --sparse` through commander: flags reach makeModel, bad values
// are refused with the flag named.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeModel } from '../../server/cli/make-model.js';
import { makeModelProgram as program, runMakeModel } from '../make-model-program.js';
import { readGgufHeader } from '../../server/gguf/header-reader.js';

test('make-model --sparse flags write the same file as makeModel()', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'rs-sparse-cli-'));
  try {
    const a = join(dir, 'a.gguf');
    const b = join(dir, 'b.gguf');
    const said = await runMakeModel(['--out', a, '--arch', 'bamboo', '--type', 'q4_0', '--sparse', '--sparsity', '0.85', '--predictor', 'lowrank', '--predictor-rank', '21', '--threshold', '-0.2', '--quiet']);
    // tiny: 1 + 2 x 11 + 2 tensors
    assert.match(said, /wrote .*a\.gguf: 25 tensors/);
    await makeModel({ arch: 'bamboo', size: 'tiny', type: 'q4_0', seed: 0, out: b, sparse: true, sparsity: 0.85, predictor: 'lowrank', predictorRank: 21, threshold: -0.2 });
    assert.ok((await readFile(a)).equals(await readFile(b)));
    const h = await readGgufHeader(a);
    assert.equal(h.magic, 'PWRI');
    assert.ok(Math.abs(Number(h.metadata.get('powerinfer.sparse_threshold')!.value) + 0.2) < 1e-7);
    assert.equal(h.metadata.get('relu_serve.synthetic.predictor')!.value, 'lowrank');
    assert.deepEqual(h.tensors.find((t) => t.name === 'blk.0.fc1.weight')!.dims, [64, 21]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('make-model --sparse refuses bad values with the flag named', async () => {
  const out = join(tmpdir(), 'rs-sparse-cli-never.gguf');
  const run = (...args: string[]) => program().parseAsync(['make-model', '--out', out, '--quiet', ...args], { from: 'user' });
  await assert.rejects(run('--sparse', '--sparsity', 'lots'), /--sparsity: "lots" is not a number/);
  await assert.rejects(run('--sparse', '--sparsity', '0'), /--sparsity must be in \(0, 1\)/);
  await assert.rejects(run('--sparse', '--threshold', 'x'), /--threshold: "x" is not a number/);
  await assert.rejects(run('--sparse', '--predictor-rank', '0'), /--predictor-rank: "0" is not a positive integer/);
  await assert.rejects(run('--sparse', '--predictor-rank', '65'), /--predictor-rank must be an integer in \[3, n_embd = 64\]/);
  await assert.rejects(run('--predictor', 'exact'), /need --sparse/);
});
