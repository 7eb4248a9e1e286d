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
      ['magic', { magic: 'GGUX' }, /magic/i],
      ['version', { version: 7 }, /version/i],
      ['kv count', { overrides: { kvCount: 2n ** 40n } }, /metadata count .* is absurd/],
      ['tensor count', { overrides: { tensorCount: 2n ** 40n } }, /tensor count .* is absurd/],
      ['truncated', { overrides: { truncateAt: 4096 } }, /truncat|bounds|beyond|end of file|cannot fit|left in the file|exceed/i],
      ['truncated data', { overrides: { truncateAt: fileEnd - 100 } }, /output\.weight|outside the data section|truncated/],
      ['offset', { tensors: withTensor(q, { offsetOverride: 2n ** 40n }) }, /offset|bounds|beyond|exceed/i],
      ['misaligned offset', { tensors: withTensor(q, { offsetOverride: 3n }) }, /align|offset|overlap/i],
      ['shape', { tensors: withTensor(q, { dims: [64, 32], data: new Uint8Array(64 * 32 * 4) }) }, /attn_q|shape/i],
      ['dims', { tensors: withTensor(q, { nDimsOverride: 9 }) }, /dim/i],
    ];
    for (const [name, patch, re] of cases) {
      const path = join(dir, `${name.replace(/ /g, '_')}.gguf`);
      await writeGguf(path, { ...base, ...patch, overrides: { allowSizeMismatch: true, ...patch.overrides } });
      await assert.rejects(Model.load(path), (e: Error) => {
        assert.match(e.message, re, `${name}: ${e.message}`);
        return true;
      }, name);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
