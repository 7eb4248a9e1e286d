// Loads the SentencePiece fixture (tools/spm-fixture) for the tokenizer tests.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { GgufValue } from '../../server/engine/types.js';

export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('package.json not found above the test file');
    dir = up;
  }
  return dir;
}

export interface FixtureVocab {
  pieces: string[];
  scores: number[];
  types: number[];
}
export interface FixtureCases {
  encode: { text: string; ids: number[]; decoded: string }[];
  decode: { ids: number[]; text: string }[];
}

const dir = join(repoRoot(), 'test', 'fixtures', 'spm');
export const fixtureVocab: FixtureVocab = JSON.parse(readFileSync(join(dir, 'vocab.json'), 'utf8'));
export const fixtureCases: FixtureCases = JSON.parse(readFileSync(join(dir, 'cases.json'), 'utf8'));

/** The metadata map a GGUF file with this vocabulary gives (as the engine exposes it). */
export function fixtureMetadata(): Map<string, GgufValue> {
  return new Map<string, GgufValue>([
    ['tokenizer.ggml.model', 'llama'],
    ['tokenizer.ggml.tokens', fixtureVocab.pieces],
    // GGUF stores scores as f32.
    ['tokenizer.ggml.scores', fixtureVocab.scores.map(Math.fround)],
    ['tokenizer.ggml.token_type', fixtureVocab.types],
    ['tokenizer.ggml.bos_token_id', 1],
    ['tokenizer.ggml.eos_token_id', 2],
    ['tokenizer.ggml.unknown_token_id', 0],
    ['tokenizer.ggml.add_bos_token', true],
    ['tokenizer.ggml.add_eos_token', false],
  ]);
}
