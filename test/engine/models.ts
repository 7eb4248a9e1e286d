// Tiny synthetic models for engine tests, written once per test process into a temp
// directory by the same code as `relu-serve make-model`.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeModel } from '../../server/cli/make-model.js';

const dir = mkdtempSync(join(tmpdir(), 'relu-serve-test-'));
const made = new Map<string, Promise<string>>();

/**
 * Path of a tiny model of this architecture and weight type (seeded, deterministic).
 * K-quant rows need multiples of 256 elements: use size 'small' (256 wide) to get real
 * Q4_K/Q5_K/Q6_K matrices; the tiny shape falls back to Q8_0 for them.
 */
export function tinyModel(arch: 'llama' | 'bamboo', type: string, seed = 7, size: 'tiny' | 'small' = 'tiny'): Promise<string> {
  const key = `${arch}-${type}-${seed}-${size}`;
  const known = made.get(key);
  if (known) return known;
  const out = join(dir, `${key}.gguf`);
  const p = makeModel({ arch, size, type, seed, out }).then(() => out);
  made.set(key, p);
  return p;
}

export const testDir = dir;
