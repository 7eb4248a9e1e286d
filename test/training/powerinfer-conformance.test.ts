// train-predictor's output against the rules PowerInfer's own loader applies
// (test/training/powerinfer-conformance.ts, read from PowerInfer's sources): files written
// from f32, f16, bf16, tied-embedding and bamboo inputs conform; and each rule the
// checker states is shown to fire on a file broken in that one way, so a conforming
// verdict means something. Needs the native addon (npm run build).

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Model } from '../../server/engine/engine.js';
import { readGgufHeader } from '../../server/gguf/header-reader.js';
import { resolveGgmlType, tensorByteSize } from '../../server/gguf/constants.js';
import type { TypedValue } from '../../server/gguf/encoder.js';
import { writeGguf, type TensorSpec } from '../../server/gguf/writer.js';
import { syntheticModelSpec } from '../../server/gguf/synthetic-model.js';
import { SpmTokenizer } from '../../server/tokenizer/spm.js';
import { trainPredictors } from '../../server/training/train-predictors.js';
import { buildPowerLawModel, writePowerLawModel } from '../profiler/powerlaw-model.js';
import { seededRandom } from '../profiler/synthetic.js';
import { powerInferViolations } from './powerinfer-conformance.js';

const dir = mkdtempSync(join(tmpdir(), 'rs-pi-conform-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const rand = seededRandom(21);
const text = Array.from({ length: 1500 }, () => String.fromCharCode(97 + Math.floor(rand() * 26))).join('');

/** Train a small predictor for `model` and return the written PowerInfer file. */
async function trainFile(model: string, out: string, log?: (s: string) => void): Promise<string> {
  const m = await Model.load(model);
  try {
    const tokens = Int32Array.from(SpmTokenizer.fromMetadata(m.metadata).encode(text));
    await trainPredictors(m, {
      modelPath: model, out, tokens, rank: 16, targetRecall: 0.99, seed: 3, epochs: 1,
      heldoutShare: 0.2, nCtx: 256, nBatch: 64, threads: 2, log,
    });
  } finally {
    m.dispose();
  }
  return out;
}

interface Editable {
  magic: string;
  metadata: [string, TypedValue][];
  tensors: TensorSpec[];
}

/** Copy a GGUF file through an edit of its header (tensor data copied as is). */
async function rewrite(src: string, dst: string, edit: (f: Editable) => void): Promise<string> {
  const h = await readGgufHeader(src);
  const bytes = readFileSync(src);
  const f: Editable = {
    magic: h.magic,
    metadata: [...h.metadata].map(([k, v]) => [k, (v.type === 'array' ? { type: 'array', elemType: v.elemType, value: v.value } : { type: v.type, value: v.value }) as unknown as TypedValue]),
    tensors: h.tensors.map((t) => {
      const n = Number(tensorByteSize(t.dims, resolveGgmlType(t.typeId)));
      const at = h.dataOffset + Number(t.offset);
      return { name: t.name, dims: t.dims, type: t.typeId, data: bytes.subarray(at, at + n) };
    }),
  };
  edit(f);
  await writeGguf(dst, { magic: f.magic, version: 3, metadata: f.metadata, tensors: f.tensors });
  return dst;
}

const ready = (async () => {
  const powerlaw = join(dir, 'powerlaw.gguf');
  await writePowerLawModel(powerlaw, buildPowerLawModel({ nLayer: 2, nFf: 128, nEmbd: 32, alpha: 0.5, seed: 3 }));
  return { powerlaw, good: await trainFile(powerlaw, join(dir, 'powerlaw.powerinfer.gguf')) };
})();

test('files written from f32, f16 bamboo, bf16 and tied-embedding models pass every PowerInfer rule', async () => {
  const { good } = await ready;
  assert.deepEqual(await powerInferViolations(good), []);
  const inputs: [string, Parameters<typeof syntheticModelSpec>[0]][] = [
    ['bamboo-f16', { arch: 'bamboo', size: 'tiny', type: 'f16', seed: 4 }],
    // bf16 does not exist in PowerInfer's ggml: the writer must store those tensors as f16.
    ['bamboo-bf16', { arch: 'bamboo', size: 'tiny', type: 'bf16', seed: 5 }],
    // PowerInfer's sparse loader requires output.weight: a tied model gets one written.
    ['relu-llama-tied', { arch: 'llama', relu: true, tied: true, size: 'tiny', type: 'f16', seed: 6 }],
  ];
  for (const [name, spec] of inputs) {
    const path = join(dir, `${name}.gguf`);
    await writeGguf(path, await syntheticModelSpec(spec));
    const out = await trainFile(path, join(dir, `${name}.powerinfer.gguf`));
    assert.deepEqual(await powerInferViolations(out), [], name);
    // And our own engine still loads what it wrote.
    const m = await Model.load(out);
    m.dispose();
  }
});

test('tied and bf16 inputs: the written output.weight and f16 tensors hold the input values', async () => {
  // output.weight must be the token embedding itself (the model ties them), byte for byte.
  const tied = join(dir, 'relu-llama-tied.powerinfer.gguf');
  const h = await readGgufHeader(tied);
  const fd = openSync(tied, 'r');
  try {
    const read = (name: string) => {
      const t = h.tensors.find((x) => x.name === name)!;
      const b = Buffer.alloc(Number(tensorByteSize(t.dims, resolveGgmlType(t.typeId))));
      readSync(fd, b, 0, b.length, h.dataOffset + Number(t.offset));
      return { t, b };
    };
    const e = read('token_embd.weight');
    const o = read('output.weight');
    assert.deepEqual([o.t.dims, o.t.typeId], [e.t.dims, e.t.typeId]);
    assert.ok(o.b.equals(e.b), 'output.weight is a copy of token_embd.weight');
  } finally {
    closeSync(fd);
  }
  const bf = await readGgufHeader(join(dir, 'bamboo-bf16.powerinfer.gguf'));
  assert.ok(bf.tensors.every((t) => t.typeName !== 'bf16'), 'no bf16 tensor left');
  assert.equal(bf.metadata.get('general.file_type')?.value, 1, 'file type: mostly f16 (was 32, bf16)');
  // The bf16 -> f16 conversion keeps the model: both files score the same text alike.
  const a = await Model.load(join(dir, 'bamboo-bf16.gguf'));
  const b = await Model.load(join(dir, 'bamboo-bf16.powerinfer.gguf'));
  try {
    const ids = Array.from(SpmTokenizer.fromMetadata(a.metadata).encode(text.slice(0, 40)));
    const logits = async (m: Model, mode: 'dense' | 'exact') => {
      const ctx = await m.createContext({ nSeq: 1, nCtx: 64, threads: 2, ffnMode: mode });
      try {
        const { sequenceBatch } = await import('../../server/engine/engine.js');
        return await ctx.decode(sequenceBatch(ids, 0, 0, true));
      } finally {
        ctx.dispose();
      }
    };
    const la = await logits(a, 'dense');
    const lb = await logits(b, 'exact');
    let max = 0;
    let scale = 0;
    for (let i = 0; i < la.length; i++) {
      max = Math.max(max, Math.abs(la[i] - lb[i]));
      scale = Math.max(scale, Math.abs(la[i]));
    }
    assert.ok(max < 2e-2 * Math.max(1, scale), `bf16 vs its f16 copy: max logit difference ${max} (scale ${scale})`);
  } finally {
    a.dispose();
    b.dispose();
  }
});

test('each rule fires on a file broken in that one way', async () => {
  const { good } = await ready;
  let n = 0;
  const broken = async (edit: (f: Editable) => void, expect: RegExp) => {
    const p = await rewrite(good, join(dir, `broken-${n++}.gguf`), edit);
    const v = await powerInferViolations(p);
    assert.ok(v.some((s) => expect.test(s)), `expected ${expect}, got ${JSON.stringify(v)}`);
  };
  const setKey = (f: Editable, k: string, v: TypedValue) => {
    const i = f.metadata.findIndex(([kk]) => kk === k);
    if (i >= 0) f.metadata[i] = [k, v];
    else f.metadata.push([k, v]);
  };
  const dropKey = (f: Editable, k: string) => { f.metadata = f.metadata.filter(([kk]) => kk !== k); };
  const tensor = (f: Editable, name: string) => f.tensors.find((t) => t.name === name)!;
  // Control: the unedited copy conforms (the edits below are the only differences).
  assert.deepEqual(await powerInferViolations(await rewrite(good, join(dir, 'copy.gguf'), () => {})), []);
  await broken((f) => { f.magic = 'GGUF'; }, /magic/);
  await broken((f) => setKey(f, 'powerinfer.sparse_threshold', { type: 'f64', value: -1 }), /sparse_threshold is f64/);
  await broken((f) => setKey(f, 'powerinfer.sparse_threshold', { type: 'f32', value: NaN }), /sparse_threshold is NaN/);
  await broken((f) => setKey(f, 'llama.embedding_length', { type: 'u64', value: 32n } as unknown as TypedValue), /embedding_length is u64/);
  await broken((f) => dropKey(f, 'llama.attention.layer_norm_rms_epsilon'), /layer_norm_rms_epsilon is missing/);
  await broken((f) => setKey(f, 'llama.rope.dimension_count', { type: 'u32', value: 4 }), /dimension_count 4 differs/);
  await broken((f) => setKey(f, 'llama.expert_count', { type: 'u32', value: 8 }), /expert_count/);
  await broken((f) => setKey(f, 'llama.rope.scaling.type', { type: 'string', value: 'ntk' }), /scaling type/);
  await broken((f) => {
    const i = f.metadata.findIndex(([k]) => k === 'tokenizer.ggml.tokens');
    const toks = [...(f.metadata[i][1] as unknown as { value: string[] }).value];
    toks[toks.indexOf('<0x0A>')] = '<0x0a>';
    f.metadata[i] = ['tokenizer.ggml.tokens', { type: 'array', elemType: 'string', value: toks } as TypedValue];
  }, /<0x0A>/);
  await broken((f) => {
    const i = f.metadata.findIndex(([k]) => k === 'tokenizer.ggml.scores');
    const v = (f.metadata[i][1] as unknown as { value: number[] }).value;
    f.metadata[i] = ['tokenizer.ggml.scores', { type: 'array', elemType: 'f32', value: v.slice(1) } as TypedValue];
  }, /tokenizer\.ggml\.scores must be f32\[259\]/);
  await broken((f) => {
    const i = f.metadata.findIndex(([k]) => k === 'tokenizer.ggml.tokens');
    const toks = [...(f.metadata[i][1] as unknown as { value: string[] }).value];
    toks[5] = '';
    f.metadata[i] = ['tokenizer.ggml.tokens', { type: 'array', elemType: 'string', value: toks } as TypedValue];
  }, /token text is empty/);
  await broken((f) => setKey(f, 'llama.attention.head_count_kv', { type: 'u32', value: 3 }), /not a multiple of n_head_kv 3/);
  await broken((f) => { f.tensors = f.tensors.filter((t) => t.name !== 'output.weight'); }, /output\.weight is missing/);
  await broken((f) => { tensor(f, 'blk.1.ffn_down_t.weight').name = 'blk.1.ffn_down.weight'; }, /ffn_down_t.weight is missing/);
  await broken((f) => {
    const t = tensor(f, 'blk.0.ffn_down_t.weight');
    f.tensors.push({ ...t, name: 'rope_freqs.weight' });
  }, /rope_freqs.weight is not one/);
  await broken((f) => {
    const t = tensor(f, 'blk.0.fc2.weight');
    t.dims = [t.dims[0] * 2, t.dims[1] / 2];
  }, /fc2.weight has shape/);
  await broken((f) => { tensor(f, 'blk.0.fc1.weight').type = 'bf16'; tensor(f, 'blk.0.fc1.weight').data = new Uint8Array(32 * 16 * 2); }, /type bf16 does not exist/);
  await broken((f) => { tensor(f, 'blk.1.ffn_up.weight').offsetOverride = 8; }, /offset 8 is not a multiple/);
});

test('the checker also accepts a PowerInfer file written by hand to the rules (no train-predictor involved)', async () => {
  // A second, independent producer guards against the checker merely echoing our writer:
  // the same good file with its tensors in another order and an extra unknown key (both
  // allowed by PowerInfer's loader, which looks tensors up by name and ignores keys it
  // does not read) still conforms.
  const { good } = await ready;
  const p = await rewrite(good, join(dir, 'reordered.gguf'), (f) => {
    f.tensors.reverse();
    f.metadata.push(['some.tool.note', { type: 'string', value: 'ignored by PowerInfer' }]);
  });
  assert.deepEqual(await powerInferViolations(p), []);
});

test("an input tensor PowerInfer's sparse loader would not create is reported while writing", async () => {
  const { powerlaw } = await ready;
  const extra = await rewrite(powerlaw, join(dir, 'extra.gguf'), (f) => {
    f.tensors.push({ name: 'rope_freqs.weight', dims: [4], type: 'f32', data: new Uint8Array(16) });
  });
  const logs: string[] = [];
  const out = await trainFile(extra, join(dir, 'extra.powerinfer.gguf'), (s) => logs.push(s));
  assert.ok(logs.some((s) => /PowerInfer's loader will refuse this file: .*\(rope_freqs\.weight\)/.test(s)), logs.join(''));
  assert.ok((await powerInferViolations(out)).some((v) => /rope_freqs/.test(v)));
  // A file without such tensors gets no such note.
  const quiet: string[] = [];
  await trainFile(powerlaw, join(dir, 'quiet.powerinfer.gguf'), (s) => quiet.push(s));
  assert.ok(!quiet.some((s) => /will refuse/.test(s)), quiet.join(''));
});
