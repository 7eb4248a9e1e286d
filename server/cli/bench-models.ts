// Synthetic models for the benchmarks, written once into models/.cache/ (ignored by git)
// by the same code as `relu-serve make-model`, and reused by later runs.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { makeModel, type MakeModelOptions } from './make-model.js';

export interface BenchModelShape {
  arch: string;
  size: string;
  type: string;
}

/**
 * What the generator writes for given arguments changes now and then (2: PowerInfer-shaped
 * predictors); cached files of another version are not reused.
 */
const GENERATOR_VERSION = 2;

/** Path of the seeded synthetic model of this shape; sparsity > 0: a PowerInfer file with a low-rank predictor. */
export async function benchModelPath(o: BenchModelShape, sparsity = 0): Promise<string> {
  const dir = join(process.cwd(), 'models', '.cache');
  mkdirSync(dir, { recursive: true });
  const sparse = sparsity > 0;
  const path = join(dir, `bench-v${GENERATOR_VERSION}-${o.arch}-${o.size}-${o.type}${sparse ? `-sparse${sparsity}` : ''}.gguf`);
  if (!existsSync(path)) {
    process.stderr.write(`writing ${path} (once; later runs reuse it)\n`);
    const opts: MakeModelOptions = { arch: o.arch, size: o.size, type: o.type, seed: 1, out: path };
    if (sparse) Object.assign(opts, { sparse: true, sparsity, predictor: 'lowrank' });
    await makeModel(opts);
  }
  return path;
}
