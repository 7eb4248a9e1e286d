// What a loaded model keeps in memory. After the FFN is repacked into per-neuron blocks,
// the file's copies of those matrices must leave the process (a 7b file otherwise peaks at
// 1.67x its size): measured on the model file's own mapping in /proc/self/smaps.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Model, sequenceBatch } from '../../server/engine/engine.js';
import { makeModel } from '../../server/cli/make-model.js';
import { testDir } from './models.js';
import { relErr } from './compare.js';

/** Resident kB of every mapping of `path` in this process. */
function residentKb(path: string): number {
  const lines = readFileSync('/proc/self/smaps', 'utf8').split('\n');
  let inFile = false;
  let kb = 0;
  for (const line of lines) {
    if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) inFile = line.trimEnd().endsWith(path);
    else if (inFile && line.startsWith('Rss:')) kb += Number(line.split(/\s+/)[1]);
  }
  return kb;
}

const FFN = /ffn_(gate|up|down|down_t)\.weight$/;

test("after repacking, the FFN's file pages are not resident; a dense step reads them back", { skip: process.platform !== 'linux' && 'needs /proc/self/smaps' }, async () => {
  const path = join(testDir, 'memory-powerinfer-f32.gguf');
  await makeModel({ arch: 'llama', size: 'small', type: 'f32', seed: 9, out: path, sparse: true, sparsity: 0.9 });
  const m = await Model.load(path);
  try {
    const ffnKb = m.tensors.filter((t) => FFN.test(t.name)).reduce((a, t) => a + t.bytes, 0) / 1024;
    const fileKb = m.info.fileBytes / 1024;
    const after = residentKb(path);
    assert.ok(ffnKb > 0.3 * fileKb, `the test needs an FFN-heavy file (${ffnKb} of ${fileKb} kB)`);
    // Loading maps the file and reads its metadata and the matrices it copies (the FFN's
    // blocks; attention and output, dense_repack.cpp): with their pages released, little of
    // the file is left resident.
    assert.ok(after <= ffnKb / 2, `${after} kB of the file resident after load (its FFN is ${ffnKb} kB)`);
    // Sparse decoding reads the blocks, not the file's FFN...
    const sparse = await m.createContext({ nSeq: 1, nCtx: 16, ffnMode: 'predictor' });
    const sparseLogits = await sparse.decode(sequenceBatch([1, 2, 3], 0, 0));
    sparse.dispose();
    // (The kernel maps up to 64 kB of cached neighbours around each page we touch, so the
    // edges of the FFN's tensors may show up: at most half of it, not all.)
    const sparseKb = residentKb(path);
    assert.ok(sparseKb <= fileKb - ffnKb / 2, `predictor mode touched the file FFN: ${sparseKb} kB resident`);
    // ...while dense mode still reads it, from the page cache.
    const dense = await m.createContext({ nSeq: 1, nCtx: 16, ffnMode: 'dense' });
    const logits = await dense.decode(sequenceBatch([1, 2, 3], 0, 0));
    dense.dispose();
    // (The other matrices are heap copies made at load, dense_repack.cpp: the file's pages
    // that come back are the FFN's.)
    const denseKb = residentKb(path);
    assert.ok(denseKb > sparseKb + ffnKb / 2, `dense mode should have read the FFN back: ${sparseKb} -> ${denseKb} kB resident, FFN ${ffnKb} kB`);
    // Both read the right bytes: dense equals the plain reference forward, and the exact
    // predictor (make-model's default) makes predictor mode equal dense.
    const ref = await m.createContext({ nSeq: 1, nCtx: 16, backend: 'ref' });
    const want = await ref.decode(sequenceBatch([1, 2, 3], 0, 0));
    ref.dispose();
    assert.ok(relErr(logits, want) < 1e-4, `dense vs reference: ${relErr(logits, want)}`);
    assert.ok(relErr(sparseLogits, want) < 1e-4, `predictor mode vs reference: ${relErr(sparseLogits, want)}`);
  } finally {
    m.dispose();
  }
});
