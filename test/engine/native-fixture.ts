// What native.test.ts and native-cmake.long.test.ts share: running a binary, and the two
// models both feed relu-serve-native.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { makeModel } from '../../server/cli/make-model.js';

export function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env, timeout: 600_000, maxBuffer: 16 << 20 }, (e, out, err) =>
      resolve({ code: e ? Number((e as { code?: number }).code ?? 1) : 0, out, err }),
    );
  });
}

/** A small Q4_0 bamboo and a small Q4_0 PowerInfer-format llama with an exact predictor, in dir. */
export async function makeNativeModels(dir: string): Promise<{ bamboo: string; powerinfer: string }> {
  const bamboo = join(dir, 'bamboo.gguf');
  const powerinfer = join(dir, 'powerinfer.gguf');
  await makeModel({ arch: 'bamboo', size: 'small', type: 'q4_0', seed: 5, out: bamboo });
  // The exact predictor: a lowrank one misses neurons near its threshold, so the active set
  // follows the scores' last bits, which the GPU sums in another order than the CPU; the
  // outputs then differ by ~1e-3 and a near-tie in a synthetic model's logits (seen:
  // 2e-4 apart) flips a token. hybrid.test.ts covers the lowrank predictor on the emulated
  // device, whose scores are the CPU's.
  await makeModel({ arch: 'llama', size: 'small', type: 'q4_0', seed: 3, out: powerinfer, sparse: true, sparsity: 0.9, predictor: 'exact' });
  return { bamboo, powerinfer };
}
