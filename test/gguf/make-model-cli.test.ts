import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeModel } from '../../server/cli/make-model.js';
import { makeModelProgram as program, runMakeModel } from '../make-model-program.js';

test('make-model subcommand parses its flags and writes the same file as makeModel()', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'rs-cli-'));
  try {
    const a = join(dir, 'a.gguf');
    const b = join(dir, 'b.gguf');
    const said = await runMakeModel(['--out', a, '--arch', 'bamboo', '--size', 'tiny', '--type', 'f16', '--seed', '18446744073709551615', '--vocab-size', '300', '--tied', '--quiet']);
    assert.match(said, /wrote .*a\.gguf: 20 tensors/);
    await makeModel({ arch: 'bamboo', size: 'tiny', type: 'f16', seed: -1, out: b, vocabSize: 300, tied: true });
    assert.ok((await readFile(a)).equals(await readFile(b)), 'seed 2^64-1 and -1 are the same u64');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('make-model refuses bad flags with the flag named', async () => {
  const out = join(tmpdir(), 'rs-cli-never.gguf');
  await assert.rejects(program().parseAsync(['make-model', '--out', out, '--seed', 'x1'], { from: 'user' }), /--seed: "x1" is not an integer/);
  await assert.rejects(program().parseAsync(['make-model', '--out', out, '--vocab-size', '0'], { from: 'user' }), /--vocab-size: "0" is not a positive integer/);
  await assert.rejects(program().parseAsync(['make-model', '--out', out, '--type', 'q2_k'], { from: 'user' }), /--type: unknown weight type "q2_k"/);
  await assert.rejects(program().parseAsync(['make-model', '--size', 'tiny'], { from: 'user' }), /--out/);
  assert.equal(existsSync(out), false);
});
