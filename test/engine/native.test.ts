// relu-serve-native as the npm build left it: the same greedy ids as `relu-serve generate`,
// on the CPU and the emulated device, and clear refusals. Its plain-CMake build without
// Node, the CUDA emulator and the device check script are native-cmake.long.test.ts's
// (`npm run test:long`: a second full C++ build takes minutes).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeNativeModels, run } from './native-fixture.js';
import { generate, type GenerateOptions } from '../../server/cli/generate.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'relu-serve-native-'));
after(() => rmSync(dir, { recursive: true, force: true }));
// The binary the npm build (cmake-js) left; the no-Node build is native-cmake.long.test.ts's.
const npmBuilt = join(root, 'build', 'bin', 'relu-serve-native');


let bamboo = '';
let powerinfer = '';
before(async () => {
  ({ bamboo, powerinfer } = await makeNativeModels(dir));
});

async function generated(model: string, prompt: string): Promise<{ promptTokens: number[]; tokens: number[] }> {
  const o: GenerateOptions = {
    model, prompt, maxTokens: 12, temperature: 0, topK: 0, topP: 1, minP: 0, repeatPenalty: 1, threads: 2, ctxSize: 256,
    ffnActivation: 'auto', ffnMode: 'auto', isa: 'best', bos: true, json: true, device: 'cpu',
  };
  return generate(o);
}

for (const kind of ['bamboo', 'powerinfer'] as const) {
  test(`${kind}: relu-serve-native gives generate's ids, on the CPU and the emulated device`, async () => {
    const model = kind === 'bamboo' ? bamboo : powerinfer;
    const g = await generated(model, 'And it came to pass that the');
    assert.equal(g.tokens.length, 12);
    for (const device of [['--device', 'cpu'], ['--device', 'emu', '--vram-budget', '50%']]) {
      const r = await run(npmBuilt, ['--model', model, '--tokens', g.promptTokens.join(','), '-n', '12', '--threads', '2', '--json', ...device]);
      assert.equal(r.code, 0, r.err);
      const j = JSON.parse(r.out);
      assert.deepEqual(j.prompt_tokens, g.promptTokens);
      assert.deepEqual(j.tokens, g.tokens, device.join(' '));
      assert.equal(j.device.type, device[1]);
      assert.ok(j.timings.gen_tokens_per_s > 0);
      if (device[1] === 'emu') {
        assert.ok(j.device.used <= j.device.budget && j.device.bytes.ffn > 0);
        assert.equal(j.hybrid.steps, 12, 'the prompt step and 11 generation steps');
        assert.ok(j.hybrid.neurons_device > 0);
      }
    }
  });
}

test('relu-serve-native refuses clearly: a missing model, cuda without a GPU, bad arguments', async () => {
  const missing = await run(npmBuilt, ['--model', join(dir, 'nope.gguf'), '--tokens', '1']);
  assert.equal(missing.code, 1);
  assert.match(missing.err, /loading the model: cannot open model file .*nope\.gguf/);
  const cuda = await run(npmBuilt, ['--model', bamboo, '--tokens', '1', '--device', 'cuda']);
  assert.equal(cuda.code, 1);
  assert.match(cuda.err, /creating the context: (device 'cuda' is not available|.*no CUDA device)/);
  const small = await run(npmBuilt, ['--model', bamboo, '--tokens', '1', '--device', 'emu', '--vram-budget', '1KiB']);
  assert.equal(small.code, 1);
  assert.match(small.err, /VRAM budget .* is too small: the fixed part needs/);
  const bad = await run(npmBuilt, ['--model', bamboo, '--tokens', '1,x']);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /--tokens: 'x' is not a token id/);
  const vocab = await run(npmBuilt, ['--model', bamboo, '--tokens', '99999999']);
  assert.equal(vocab.code, 2);
  assert.match(vocab.err, /outside the vocabulary/);
});

