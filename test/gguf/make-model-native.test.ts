// relu-serve-make-model (tools/device-check): the C++ port of make-model that machines
// without Node (the lent GPU machines) use to write their test models. For the same
// arguments it must write the same bytes as `relu-serve make-model`: every case here
// writes a model with both and compares the files byte for byte (the 1b case is
// make-model-native-1b.long.test.ts's, in `npm run test:long`).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { assertSameBytes, bin, dir, run, tsMakeModel } from './same-bytes.js';

const cases: string[][] = [
  // PowerInfer (sparse) models: both archs, Q4_0 at tiny (64 wide: output.weight falls back
  // from Q6_K to Q8_0) and small (a Q6_K output), several seeds, both predictors.
  ['--arch', 'llama', '--size', 'tiny', '--type', 'q4_0', '--sparse', '--seed', '1'],
  ['--arch', 'bamboo', '--size', 'tiny', '--type', 'q4_0', '--sparse', '--seed', '2', '--predictor', 'lowrank'],
  ['--arch', 'llama', '--size', 'small', '--type', 'q4_0', '--sparse', '--seed', '2', '--predictor', 'lowrank'],
  ['--arch', 'bamboo', '--size', 'small', '--type', 'q4_0', '--sparse', '--seed', '1'],
  ['--arch', 'bamboo', '--size', 'small', '--type', 'q4_0', '--sparse', '--seed', '7', '--predictor', 'lowrank'],
  // The other types at tiny.
  ['--arch', 'llama', '--size', 'tiny', '--type', 'q8_0', '--sparse', '--seed', '1'],
  ['--arch', 'bamboo', '--size', 'tiny', '--type', 'q8_0', '--sparse', '--seed', '2', '--predictor', 'lowrank'],
  ['--arch', 'llama', '--size', 'tiny', '--type', 'f16', '--sparse', '--seed', '2', '--predictor', 'lowrank'],
  ['--arch', 'bamboo', '--size', 'tiny', '--type', 'f16', '--sparse', '--seed', '1'],
  ['--arch', 'llama', '--size', 'tiny', '--type', 'f32', '--sparse', '--seed', '1', '--predictor', 'lowrank'],
  ['--arch', 'bamboo', '--size', 'tiny', '--type', 'f32', '--sparse', '--seed', '2'],
  ['--arch', 'llama', '--size', 'small', '--type', 'bf16', '--sparse', '--seed', '3'],
  ['--arch', 'bamboo', '--size', 'small', '--type', 'q4_k', '--sparse', '--seed', '3', '--predictor', 'lowrank'],
  ['--arch', 'llama', '--size', 'small', '--type', 'q5_k', '--sparse', '--seed', '3'],
  ['--arch', 'bamboo', '--size', 'small', '--type', 'q6_k', '--sparse', '--seed', '3'],
  // PowerInfer-shaped predictors (rank >= 96: block-aligned units, the file's type).
  ['--arch', 'llama', '--size', 'small', '--type', 'q4_0', '--sparse', '--seed', '5', '--predictor-rank', '128'],
  ['--arch', 'bamboo', '--size', 'small', '--type', 'q8_0', '--sparse', '--seed', '6', '--predictor-rank', '160', '--predictor', 'lowrank'],
  ['--arch', 'bamboo', '--size', 'small', '--type', 'q4_k', '--sparse', '--seed', '6', '--predictor-rank', '256'],
  ['--arch', 'llama', '--size', 'small', '--type', 'bf16', '--sparse', '--seed', '6', '--predictor-rank', '100'],
  // Non-default sparse parameters (an even rank leaves a spare predictor row).
  ['--arch', 'bamboo', '--size', 'small', '--type', 'q4_0', '--sparse', '--seed', '4', '--sparsity', '0.75', '--predictor-rank', '24', '--threshold', '-0.2'],
  ['--arch', 'llama', '--size', 'tiny', '--type', 'f16', '--sparse', '--seed', '5', '--predictor', 'lowrank', '--sparsity', '0.97', '--predictor-rank', '9', '--threshold', '0.01'],
  // Seeds beyond 2^64 and negative ones wrap the same way; a vocabulary extended with
  // synthetic pieces (as 1b / 7b's 32000 are).
  ['--arch', 'llama', '--size', 'tiny', '--type', 'q4_0', '--sparse', '--seed', '-3'],
  ['--arch', 'bamboo', '--size', 'tiny', '--type', 'q8_0', '--sparse', '--seed', '18446744073709551621', '--vocab-size', '4321'],
  // Plain (GGUF) models.
  ['--arch', 'llama', '--size', 'tiny', '--type', 'f16', '--seed', '1'],
  ['--arch', 'llama', '--size', 'small', '--type', 'q4_0', '--seed', '2', '--relu', '--vocab-size', '4100'],
  ['--arch', 'bamboo', '--size', 'small', '--type', 'q4_k', '--seed', '3', '--tied'],
  ['--arch', 'bamboo', '--size', 'tiny', '--type', 'f32', '--seed', '4'],
];

for (const args of cases) {
  test(`the same bytes: ${args.join(' ')}`, () => assertSameBytes(args));
}

test('unsupported or bad options are refused with exit status 2 and leave no file', async () => {
  assert.ok(existsSync(bin), `${bin} is missing`);
  const out = join(dir, 'refused.gguf');
  const refused: [string[], RegExp][] = [
    [['--chat-template', 'x'], /unknown or unsupported option '--chat-template'/],
    [['--type', 'q5_0'], /--type: unknown weight type "q5_0"/],
    [['--arch', 'mistral'], /--arch: unknown architecture/],
    [['--size', '13b'], /--size: unknown size/],
    [['--sparse', '--tied'], /drop --tied/],
    [['--sparsity', '0.5'], /need --sparse/],
    [['--sparse', '--sparsity', '1'], /--sparsity must be in \(0, 1\)/],
    [['--sparse', '--sparsity', '0.03'], /--sparsity must be above 0.03/],
    [['--sparse', '--predictor', 'oracle'], /--predictor must be exact or lowrank/],
    [['--sparse', '--predictor-rank', '2'], /--predictor-rank must be an integer in \[3, n_embd = 64\]/],
    [['--sparse', '--threshold', 'abc'], /--threshold: "abc" is not a number/],
    [['--seed', '1.5'], /--seed: "1.5" is not an integer/],
    [['--vocab-size', '100'], /vocabulary size 100 is too small/],
  ];
  for (const [args, why] of refused) {
    const r = await run([...args, '--out', out]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
    assert.match(r.err, why, args.join(' '));
  }
  const noOut = await run(['--size', 'tiny']);
  assert.equal(noOut.code, 2);
  assert.match(noOut.err, /--out: an output file is required/);
  // Nothing was written, not even a temporary file.
  assert.deepEqual(readdirSync(dir).filter((f) => f.startsWith('refused')), []);
  // The TS writer refuses the same requests.
  await assert.rejects(tsMakeModel(['--sparse', '--tied', '--out', out]), /drop --tied/);
  await assert.rejects(tsMakeModel(['--type', 'q5_0', '--out', out]), /unknown weight type/);
  // (A sparsity of 0.03 or less used to hang both: no neuron fires above 97%.)
  await assert.rejects(tsMakeModel(['--sparse', '--sparsity', '0.02', '--out', out]), /--sparsity must be above 0.03/);
});
