// --no-mmap with the load-time copies of the dense matrices (dense_repack.cpp: Q4_0 in the
// x8 layout, the others as they are): the private copy of the file gives back the plain
// rows of every matrix copied, so those matrices are held once, not twice; and every reader of plain rows (the reference forward, the emulated
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

// What dense_repack.cpp copies, and of that what goes into the x8 layout when Q4_0: a dense
// file's attention, output and FFN; a ReLU file's attention and output, and the gate its
// neuron blocks leave out (exact mode reads it whole; kept in plain rows).
const COPIED_DENSE = /(attn_(q|k|v|output)|ffn_(gate|up|down))\.weight$|^output\.weight$/;
const COPIED_SPARSE = /(attn_(q|k|v|output)|ffn_gate)\.weight$|^output\.weight$/;
const X8_SPARSE = /attn_(q|k|v|output)\.weight$|^output\.weight$/;

for (const [arch, repacked, x8Set] of [['llama', COPIED_DENSE, COPIED_DENSE], ['bamboo', COPIED_SPARSE, X8_SPARSE]] as const) {
  test(`${arch} q4_0 --no-mmap: copied matrices held once; cpu, ref${arch === 'bamboo' ? ', emulated device' : ''} logits equal the mapped file's`, async () => {
    const path = join(dir, `${arch}.gguf`);
    await makeModel({ arch, size: 'small', type: 'q4_0', seed: 11, out: path });
    const mapped = await Model.load(path);
    const priv = await Model.load(path, { noMmap: true });
    try {
      const fileBytes = priv.info.fileBytes;
      // Every matrix dense steps stream is copied at load (dense_repack.cpp): the Q4_0 ones
      // into the x8 layout where this CPU has an x8 kernel, the others as they are.
      const matrices = priv.tensors.filter((t) => repacked.test(t.name));
      const copiedBytes = matrices.reduce((a, t) => a + t.bytes, 0);
      const q4 = matrices.filter((t) => t.typeName === 'q4_0' && x8Set.test(t.name)).reduce((a, t) => a + t.bytes, 0);
      assert.ok(q4 > 0.1 * fileBytes && q4 < copiedBytes, `the test needs Q4_0 and other copied matrices (${q4} / ${copiedBytes} of ${fileBytes} bytes)`);
      // Exactly the Q4_0 ones of the x8 set went into x8, over a mapping and a private copy
      // alike; where this CPU has no x8 kernel, none.
      const x8 = priv.info.x8Bytes > 0;
      assert.equal(priv.info.x8Bytes, x8 ? q4 : 0);
      assert.equal(mapped.info.x8Bytes, priv.info.x8Bytes);
      // The private copy was resident whole after reading; then every copied matrix's
      // plain rows were given back (whole pages only: at most two partial pages per
      // matrix stay).
      const resident = priv.fileResidentBytes();
      const limit = fileBytes - copiedBytes + 2 * 4096 * matrices.length;
      assert.ok(resident <= limit, `private copy ${resident} bytes resident; file ${fileBytes}, copied ${copiedBytes}`);
      assert.ok(resident >= fileBytes - copiedBytes - 4096 * matrices.length, `only ${resident} bytes resident`);
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
