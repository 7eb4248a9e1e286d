// Tiny synthetic models for engine tests, written once per test process into a temp
// directory by the same code as `relu-serve make-model`.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeModel } from '../../server/cli/make-model.js';

const dir = mkdtempSync(join(tmpdir(), 'relu-serve-test-'));
const made = new Map<string, Promise<string>>();

/** Path of a tiny model of this architecture and weight type (seeded, deterministic). */
export function tinyModel(arch: 'llama' | 'bamboo', type: string, seed = 7): Promise<string> {
  const key = `${arch}-${type}-${seed}`;
  const known = made.get(key);
  if (known) return known;
  const out = join(dir, `${key}.gguf`);
  const p = makeModel({ arch, size: 'tiny', type, seed, out }).then(() => out);
  made.set(key, p);
  return p;
}

export const testDir = dir;
