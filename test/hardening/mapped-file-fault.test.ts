// A mapped model file truncated WHILE a decode reads it (fault_guard.h): the read of a
// page past the new end raises SIGBUS, which used to kill the process. Now the faulting
// task is recovered, the decode rejects with RS_ERR_MODEL_FILE, that model refuses every
// later decode, and another model in the same process decodes on, bit for bit as before.
// (This file runs in its own process under `node --test`: a SIGBUS that is not recovered
// ends it, and the runner reports the file as failed.)
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Model, sequenceBatch } from '../../server/engine/engine.js';
import { makeModel } from '../../server/cli/make-model.js';

const dir = mkdtempSync(join(tmpdir(), 'relu-serve-fault-'));
after(() => rmSync(dir, { recursive: true, force: true }));

// A ReLU model decoded in dense mode: the load copies attention and output onto the heap
// (dense_repack.cpp) and the FFN into neuron blocks (packed_ffn.cpp), where truncation
// cannot reach, but dense steps read the FFN's up and down matrices from the mapping,
// most of the bytes of a step.
async function source(): Promise<string> {
  const out = join(dir, 'source.gguf');
  await makeModel({ arch: 'bamboo', size: 'small', type: 'f32', seed: 5, out });
  return out;
}
const DENSE = { ffnMode: 'dense' } as const;

const prompt = Array.from({ length: 200 }, (_, i) => 3 + ((i * 37) % 250));

test('truncated during a decode: the decode rejects, the model is refused after, another model is untouched', { skip: process.platform !== 'linux' && 'SIGBUS on truncated mappings: Linux' }, async () => {
  const src = await source();
  const otherPath = join(dir, 'other.gguf');
  copyFileSync(src, otherPath);
  const other = await Model.load(otherPath);
  const otherCtx = await other.createContext({ nSeq: 1, nCtx: 256, nBatch: 256, threads: 2, ...DENSE });
  const reference = await otherCtx.decode(sequenceBatch(prompt, 0, 0));
  await otherCtx.truncate(0, 0);

  let faults = 0;
  let missed = 0;
  for (let attempt = 0; attempt < 40 && faults < 3; attempt++) {
    const file = join(dir, `victim-${attempt}.gguf`);
    copyFileSync(src, file);
    const m = await Model.load(file);
    const ctx = await m.createContext({ nSeq: 1, nCtx: 256, nBatch: 256, threads: 2, ...DENSE });
    try {
      // Warm: the pages are resident, so only the truncation can make them fault.
      await ctx.decode(sequenceBatch(prompt.slice(0, 8), 0, 0));
      await ctx.truncate(0, 0);
      const running = ctx.decode(sequenceBatch(prompt, 0, 0)).then(
        () => null,
        (e: Error & { code?: string }) => e,
      );
      await new Promise((r) => setTimeout(r, attempt % 4));
      truncateSync(file, 4096);
      const err = await running;
      if (err === null) {
        missed++; // the decode had read everything before the truncation landed
        continue;
      }
      assert.equal(err.code, 'RS_ERR_MODEL_FILE', `unexpected failure: ${err.message}`);
      assert.match(err.message, /model file changed on disk while the engine read it/);
      faults++;
      // Refused from now on, without touching the mapping again.
      await assert.rejects(ctx.decode(sequenceBatch([1], 0, 0)), (e: Error & { code?: string }) => e.code === 'RS_ERR_MODEL_FILE');
    } finally {
      ctx.dispose();
      m.dispose();
    }
  }
  assert.ok(faults >= 3, `the truncation never landed inside a decode (${missed} misses, ${faults} faults)`);

  // The other model, in the same process, after all that: the same logits, bit for bit.
  const again = await otherCtx.decode(sequenceBatch(prompt, 0, 0));
  assert.deepEqual(again, reference);
  otherCtx.dispose();
  other.dispose();
});

// The hybrid runtime uploads the attention, predictor and output matrices and the hot
// neurons' rows when a context is created: from the load's heap copies (dense_repack.cpp,
// packed_ffn.cpp), where a truncation cannot reach, or through a guarded staging copy
// from the mapping. The token embedding stays in the mapping and is read by every decode:
// there a file truncated after the load faults, which is refused the same way.
test('truncated before a device context is created: its first decode rejects, the process lives', { skip: process.platform !== 'linux' && 'SIGBUS on truncated mappings: Linux' }, async () => {
  const file = join(dir, 'device-victim.gguf');
  // f32 and ReLU with predictors: the hybrid runtime takes it.
  await makeModel({ arch: 'llama', size: 'small', type: 'f32', seed: 3, out: file, sparse: true, sparsity: 0.9, predictor: 'lowrank' });
  const m = await Model.load(file);
  try {
    truncateSync(file, 4096);
    const ctx = await m.createContext({ nSeq: 1, nCtx: 64, nBatch: 64, threads: 2, device: 'emu' });
    try {
      const refused = (e: Error & { code?: string }) => e.code === 'RS_ERR_MODEL_FILE' && /model file changed on disk while the engine read it/.test(e.message);
      await assert.rejects(ctx.decode(sequenceBatch([1, 2, 3], 0, 0)), refused);
      await assert.rejects(ctx.decode(sequenceBatch([1], 0, 0)), refused, 'refused from then on');
    } finally {
      ctx.dispose();
    }
  } finally {
    m.dispose();
  }
});

// The reference backend (the test oracle) reads the mapping on the decoding thread, not
// in the pool's tasks: guarded on its own.
test('truncated between two decodes of the reference backend: the second rejects, the process lives', { skip: process.platform !== 'linux' && 'SIGBUS on truncated mappings: Linux' }, async () => {
  const file = join(dir, 'ref-victim.gguf');
  copyFileSync(await source(), file);
  const m = await Model.load(file);
  const ctx = await m.createContext({ nSeq: 1, nCtx: 64, nBatch: 64, threads: 1, backend: 'ref' });
  try {
    await ctx.decode(sequenceBatch([1, 2, 3], 0, 0));
    truncateSync(file, 4096);
    await assert.rejects(ctx.decode(sequenceBatch([4], 0, 3)), (e: Error & { code?: string }) => e.code === 'RS_ERR_MODEL_FILE');
  } finally {
    ctx.dispose();
    m.dispose();
  }
});
