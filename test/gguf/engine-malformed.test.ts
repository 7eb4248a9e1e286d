// Deliberately malformed files from the writer's test hooks, fed to the engine's loader:
// each must be refused with an error that names the problem, never crash the process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { syntheticModelSpec } from '../../server/gguf/synthetic-model.js';
import { buildGgufLayout, writeGguf, type GgufSpec } from '../../server/gguf/writer.js';

const addonBuilt = existsSync(join(fileURLToPath(new URL('../../../', import.meta.url)), 'build', 'Release', 'relu_serve.node'));

test('the engine refuses malformed files with a message naming the problem', { skip: !addonBuilt && 'native addon not built' }, async () => {
  const { Model } = await import('../../server/engine/engine.js');
  const dir = await mkdtemp(join(tmpdir(), 'rs-bad-'));
  try {
    const base = await syntheticModelSpec({ arch: 'llama', size: 'tiny', type: 'f32', seed: 1 });
    const layout = buildGgufLayout(base);
    const last = layout.tensors[layout.tensors.length - 1];
    const fileEnd = layout.dataOffset + Number(last.offset + last.nBytes);
    const q = base.tensors.findIndex((t) => t.name === 'blk.0.attn_q.weight');
    const withTensor = (i: number, patch: object): GgufSpec['tensors'] =>
      base.tensors.map((t, j) => (j === i ? { ...t, ...patch } : t));
    const cases: [string, Partial<GgufSpec>, RegExp][] = [
      ['magic', { magic: 'GGUX' }, /^bad magic 'GGUX': not a GGUF file/],
      ['version', { version: 7 }, /^unsupported GGUF version 7 \(expected 2 or 3\)/],
      ['kv count', { overrides: { kvCount: 2n ** 40n } }, /^metadata count 1099511627776 is absurd for a file of \d+ bytes/],
      ['tensor count', { overrides: { tensorCount: 2n ** 40n } }, /^tensor count 1099511627776 is absurd for a file of \d+ bytes/],
      ['truncated', { overrides: { truncateAt: 4096 } }, /^metadata key 'tokenizer\.ggml\.tokens': array of \d+ strings cannot fit in the \d+ bytes left in the file/],
      ['truncated data', { overrides: { truncateAt: fileEnd - 100 } }, /^tensor 'output\.weight' data \[\d+, \+\d+\) lies outside the data section/],
      ['offset', { tensors: withTensor(q, { offsetOverride: 2n ** 40n }) }, /^tensor 'blk\.0\.attn_q\.weight' data \[1099511627776, \+\d+\) lies outside the data section/],
      ['misaligned offset', { tensors: withTensor(q, { offsetOverride: 3n }) }, /^tensor 'blk\.0\.attn_q\.weight' data offset 3 is not aligned to 32/],
      ['shape', { tensors: withTensor(q, { dims: [64, 32], data: new Uint8Array(64 * 32 * 4) }) }, /^tensor 'blk\.0\.attn_q\.weight' has shape \[64, 32\], expected \[64, 64\]/],
      ['dims', { tensors: withTensor(q, { nDimsOverride: 9 }) }, /^tensor 'blk\.0\.attn_q\.weight' has 9 dimensions \(1\.\.4 allowed\)/],
    ];
    for (const [name, patch, re] of cases) {
      const path = join(dir, `${name.replace(/ /g, '_')}.gguf`);
      await writeGguf(path, { ...base, ...patch, overrides: { allowSizeMismatch: true, ...patch.overrides } });
      await assert.rejects(Model.load(path), (e: Error & { code?: string }) => {
        assert.match(e.message, re, `${name}: ${e.message}`);
        assert.equal(e.code, 'RS_ERR_FORMAT', `${name}: error code`);
        return true;
      }, name);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
