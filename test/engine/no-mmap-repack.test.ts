// --no-mmap with the dense Q4_0 repacking (dense_repack.cpp): the private copy of the
// file gives back the plain rows of every matrix it repacked, so those matrices are held
// once, not twice; and every reader of plain rows (the reference forward, the emulated
// device's upload) rebuilds them from the repacked copy, bit for bit: each context gives
// the same logits as over the mapped file.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Model, sequenceBatch, type Context } from '../../server/engine/engine.js';
import type { ContextOptions } from '../../server/engine/types.js';
import { makeModel } from '../../server/cli/make-model.js';

const dir = mkdtempSync(join(tmpdir(), 'relu-serve-nommap-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const prompt = [1, 15, 27, 3, 99, 4, 61, 8, 200, 5, 33, 7];

async function logits(m: Model, opts: Partial<ContextOptions>): Promise<Float32Array> {
  const c: Context = await m.createContext({ nSeq: 1, nCtx: 32, threads: 2, ...opts });
  try {
    return await c.decode(sequenceBatch(prompt, 0, 0));
  } finally {
    c.dispose();
  }
}

const REPACKED_DENSE = /(attn_(q|k|v|output)|ffn_(gate|up|down))\.weight$|^output\.weight$/;
const REPACKED_SPARSE = /attn_(q|k|v|output)\.weight$|^output\.weight$/;

for (const [arch, repacked] of [['llama', REPACKED_DENSE], ['bamboo', REPACKED_SPARSE]] as const) {
  test(`${arch} q4_0 --no-mmap: repacked matrices held once; cpu, ref${arch === 'bamboo' ? ', emulated device' : ''} logits equal the mapped file's`, async () => {
    const path = join(dir, `${arch}.gguf`);
    await makeModel({ arch, size: 'small', type: 'q4_0', seed: 11, out: path });
    const mapped = await Model.load(path);
    const priv = await Model.load(path, { noMmap: true });
    try {
      const fileBytes = priv.info.fileBytes;
      const matrices = priv.tensors.filter((t) => t.typeName === 'q4_0' && repacked.test(t.name));
      const repackedBytes = matrices.reduce((a, t) => a + t.bytes, 0);
      assert.ok(repackedBytes > 0.1 * fileBytes, `the test needs repackable matrices (${repackedBytes} of ${fileBytes} bytes)`);
      // Exactly those matrices were repacked, over a mapping and a private copy alike;
      // where this CPU has no x8 kernel, none.
      const x8 = priv.info.x8Bytes > 0;
      assert.equal(priv.info.x8Bytes, x8 ? repackedBytes : 0);
      assert.equal(mapped.info.x8Bytes, priv.info.x8Bytes);
      // The private copy was resident whole after reading; then the repacked matrices'
      // plain rows were given back (whole pages only: at most two partial pages per
      // matrix stay).
      const resident = priv.fileResidentBytes();
      const limit = x8 ? fileBytes - repackedBytes + 2 * 4096 * matrices.length : fileBytes + 4096;
      assert.ok(resident <= limit, `private copy ${resident} bytes resident; file ${fileBytes}, repacked ${repackedBytes}`);
      assert.ok(resident >= fileBytes - repackedBytes - 4096 * matrices.length, `only ${resident} bytes resident`);
      assert.deepEqual(await logits(priv, {}), await logits(mapped, {}));
      assert.deepEqual(await logits(priv, { backend: 'ref' }), await logits(mapped, { backend: 'ref' }));
      if (arch === 'bamboo') {
        const emu = { device: 'emu' as const, vramBudget: 64 << 20, emuMemory: 256 << 20 };
        assert.deepEqual(await logits(priv, emu), await logits(mapped, emu));
      }
    } finally {
      priv.dispose();
      mapped.dispose();
    }
  });
}
