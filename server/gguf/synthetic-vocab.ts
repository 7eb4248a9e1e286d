// The vocabulary of synthetic models: the SentencePiece fixture's pieces (a real,
// trained llama-style tokenizer, see tools/spm-fixture), cut or extended to the size a
// model asks for. Extra pieces are unique, of normal type, made of letters, and score
// below every real piece, so they never change how the fixture's strings encode.

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface VocabTables {
  pieces: string[];
  scores: number[];
  types: number[];
}

function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the relu-serve package root (package.json)');
    dir = up;
  }
  return dir;
}

export function fixtureVocabPath(): string {
  return join(packageRoot(), 'test', 'fixtures', 'spm', 'vocab.json');
}

let cached: VocabTables | undefined;

export function loadFixtureVocab(): VocabTables {
  if (cached) return cached;
  const path = fixtureVocabPath();
  if (!existsSync(path)) {
    throw new Error(`the tokenizer fixture ${path} is missing (it ships with the repository; see tools/spm-fixture)`);
  }
  const v = JSON.parse(readFileSync(path, 'utf8')) as VocabTables;
  if (!Array.isArray(v.pieces) || v.pieces.length !== v.scores?.length || v.pieces.length !== v.types?.length) {
    throw new Error(`${path}: pieces, scores and types must be arrays of the same length`);
  }
  cached = v;
  return v;
}

/** Smallest size that keeps the control, user-defined and all 256 byte tokens. */
export function minVocabSize(v: VocabTables = loadFixtureVocab()): number {
  let last = 0;
  v.types.forEach((t, i) => {
    if (t !== 1) last = i;
  });
  return last + 2; // and at least one normal piece
}

const LETTERS = 'abcdefghijklmnopqrstuvwxyz';

/** The k-th synthetic word: "▁q" + base-26 digits, e.g. ▁qa, ▁qb, ... ▁qaa. */
function syntheticPiece(k: number): string {
  let s = '';
  let n = k;
  do {
    s = LETTERS[n % 26] + s;
    n = Math.floor(n / 26);
  } while (n > 0);
  return `\u2581zq${s}`;
}

/** The fixture vocabulary cut or extended to exactly `size` tokens. */
export function syntheticVocab(size: number): VocabTables {
  const v = loadFixtureVocab();
  const min = minVocabSize(v);
  if (!Number.isInteger(size) || size < min) {
    throw new RangeError(`vocabulary size ${size} is too small: at least ${min} (special and byte tokens)`);
  }
  if (size <= v.pieces.length) {
    return { pieces: v.pieces.slice(0, size), scores: v.scores.slice(0, size), types: v.types.slice(0, size) };
  }
  const pieces = v.pieces.slice();
  const scores = v.scores.slice();
  const types = v.types.slice();
  const seen = new Set(pieces);
  // Integers below the lowest real score: exact in f32 up to 2^24.
  let score = Math.floor(Math.min(...v.scores)) - 1;
  for (let k = 0; pieces.length < size; k++) {
    const p = syntheticPiece(k);
    if (seen.has(p)) continue;
    seen.add(p);
    pieces.push(p);
    scores.push(score--);
    types.push(1);
  }
  return { pieces, scores, types };
}
