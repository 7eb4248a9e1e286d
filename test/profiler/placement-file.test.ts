// The .rspl placement file field by field (a file cut anywhere names the field it was
// reading; each refusal's message), PowerInfer's group rule for .gpuidx, and the model
// fingerprint: stable across versions, independent of tensor order, sensitive to what it
// covers. formats.test.ts has the round trips and the .gpuidx layout.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { createHash } from 'node:crypto';
import { decodePlacement, encodePlacement, readPlacementFile, writePlacementFile, writePowerInferGpuIdx, type PlacementFile } from '../../server/profiler/placement-format.js';
import { assertSameModel, identityHex, modelIdentity, sameIdentity, type ModelDescription } from '../../server/profiler/model-identity.js';

const dir = mkdtempSync(join(tmpdir(), 'rs-plfile-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const msg = (re: RegExp) => (e: Error) => (assert.match(e.message, re), true);

const identity = { name: 'mo', arch: 'llama', hash: new Uint8Array(32).fill(3) };
const file = (layers: PlacementFile['layers']): PlacementFile => ({ identity, budget: 1000, nCtx: 64, nSeq: 2, fixedBytes: 300, ffnBytes: 600, covered: 50, total: 80, layers });
const withCrc = (body: Buffer) => {
  const t = Buffer.alloc(4);
  t.writeUInt32LE(crc32(body) >>> 0);
  return Buffer.concat([body, t]);
};

test('a placement file cut at any field names that field', () => {
  const good = encodePlacement(file([{ nFf: 4, neuronCost: 7, gpuNeurons: Uint32Array.of(1, 3) }]));
  const body = good.subarray(0, good.length - 4);
  const fields: [string, number][] = [
    ['flags', 4], ['layer count', 4], ['budget', 8], ['context size', 8], ['sequence count', 8], ['fixed bytes', 8],
    ['FFN bytes', 8], ['covered activations', 8], ['total activations', 8], ['model fingerprint', 32],
    ['model name length', 4], ['model name', 2], ['architecture length', 4], ['architecture', 5],
    ['layer 0 n_ff', 4], ['layer 0 GPU neuron count', 4], ['layer 0 bytes per neuron', 4], ['layer 0 neuron ids', 8],
  ];
  let at = 8;
  for (const [name, size] of fields) {
    const esc = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    assert.throws(() => decodePlacement(withCrc(body.subarray(0, at)), 'p'), msg(new RegExp(`^p: truncated reading ${esc} \\(`)), `cut at ${at}`);
    at += size;
  }
  assert.equal(at, body.length);
  assert.deepEqual([...decodePlacement(good).layers[0].gpuNeurons], [1, 3]);
});

test('placement refusals: ids out of range or out of order, too many ids, flags, layer count, trailing bytes', () => {
  for (const [ids, re] of [
    [[4], /^layer 0: neuron id 4 is not below n_ff = 4$/],
    [[2, 2], /^layer 0: neuron ids are not strictly ascending$/],
    [[3, 1], /^layer 0: neuron ids are not strictly ascending$/],
  ] as const) {
    assert.throws(() => encodePlacement(file([{ nFf: 4, neuronCost: 1, gpuNeurons: Uint32Array.from(ids) }])), msg(re));
  }
  assert.deepEqual([...decodePlacement(encodePlacement(file([{ nFf: 4, neuronCost: 1, gpuNeurons: Uint32Array.of(0, 3) }]))).layers[0].gpuNeurons], [0, 3]);
  const body = (o: { flags?: number; nLayer?: number; k?: number; ids?: number[]; tail?: number }) => {
    const b = encodePlacement(file([{ nFf: 4, neuronCost: 1, gpuNeurons: Uint32Array.of(1) }]));
    const head = Buffer.from(b.subarray(0, b.length - 4 - 16)); // up to the layer record
    head.writeUInt32LE(o.flags ?? 0, 8);
    head.writeUInt32LE(o.nLayer ?? 1, 12);
    const ids = o.ids ?? [1];
    const layer = Buffer.alloc(12 + 4 * ids.length);
    layer.writeUInt32LE(4, 0);
    layer.writeUInt32LE(o.k ?? ids.length, 4);
    layer.writeUInt32LE(1, 8);
    ids.forEach((v, i) => layer.writeUInt32LE(v, 12 + 4 * i));
    return withCrc(Buffer.concat([head, layer, Buffer.alloc(o.tail ?? 0)]));
  };
  const d = (b: Buffer, re: RegExp) => assert.throws(() => decodePlacement(b, 'p.rspl'), msg(re));
  assert.deepEqual([...decodePlacement(body({})).layers[0].gpuNeurons], [1]);
  d(body({ flags: 1 }), /^p\.rspl: unknown flags 0x1$/);
  d(body({ nLayer: 4097 }), /^p\.rspl: layer count 4097 is implausible$/);
  d(body({ nLayer: 4096 }), /^p\.rspl: truncated reading layer 1 n_ff /);
  d(body({ k: 5, ids: [0, 1, 2, 3, 3] }), /^p\.rspl: layer 0 places 5 of only 4 neurons$/);
  d(body({ ids: [2, 1] }), /^p\.rspl: layer 0: neuron ids are not strictly ascending$/);
  d(body({ ids: [9] }), /^p\.rspl: layer 0: neuron id 9 is not below n_ff = 4$/);
  assert.equal(decodePlacement(body({ ids: [0, 1, 2, 3] })).layers[0].gpuNeurons.length, 4); // a whole layer: k = n_ff
  assert.throws(() => decodePlacement(Buffer.alloc(12)), msg(/^placement file: not a relu-serve placement file \(magic/));
  d(body({ tail: 3 }), /^p\.rspl: 3 unexpected bytes at the end$/);
});

test('readPlacementFile: unreadable path, another model', () => {
  assert.throws(() => readPlacementFile(join(dir, 'none.rspl')), msg(/^cannot read placement file .*none\.rspl: ENOENT/));
  const path = join(dir, 'a.rspl');
  writePlacementFile(path, file([{ nFf: 4, neuronCost: 1, gpuNeurons: Uint32Array.of(1) }]));
  assert.equal(readPlacementFile(path, identity).budget, 1000);
  assert.equal(readPlacementFile(path).budget, 1000);
  assert.throws(() => readPlacementFile(path, { name: 'other', arch: 'opt', hash: new Uint8Array(32) }), msg(/^placement file .*a\.rspl was made for a different model/));
  writeFileSync(path, 'RSPL');
  assert.throws(() => readPlacementFile(path), msg(/^placement file .*a\.rspl: too short/));
});

test('.gpuidx: a layer may hold none, all, or a multiple of 256 of its neurons', async () => {
  const ids = (n: number) => Uint32Array.from({ length: n }, (_, i) => i);
  for (const [nFf, k] of [[300, 0], [300, 300], [600, 256], [600, 512]]) {
    await writePowerInferGpuIdx(join(dir, `ok${nFf}-${k}.gpuidx`), file([{ nFf, neuronCost: 1, gpuNeurons: ids(k) }]));
  }
  for (const [nFf, k] of [[300, 100], [600, 257], [600, 300]]) {
    await assert.rejects(
      writePowerInferGpuIdx(join(dir, 'bad.gpuidx'), file([{ nFf: 4, neuronCost: 1, gpuNeurons: new Uint32Array(0) }, { nFf, neuronCost: 1, gpuNeurons: ids(k) }])),
      msg(new RegExp(`^layer 1 places ${k} of ${nFf} neurons: PowerInfer's kernels need a multiple of 256 \\(or none, or all\\); solve the placement with that granularity \\(relu-serve place --powerinfer-gpuidx does\\)$`)),
    );
  }
});

const desc = (over: Partial<ModelDescription> = {}): ModelDescription => ({
  name: 'tiny', arch: 'llama', nLayer: 2, nFf: 8, nEmbd: 4, nHead: 2, nHeadKv: 1, nVocab: 32,
  tensors: [
    { name: 'blk.0.ffn_up.weight', type: 0, typeName: 'F32', shape: [4, 8], bytes: 128 },
    { name: 'blk.0.attn_q.weight', type: 1, typeName: 'F16', shape: [4, 4], bytes: 32 },
    { name: 'output.weight', type: 0, typeName: 'F32', shape: [4, 32], bytes: 512 },
  ],
  ...over,
});

test('model fingerprint: the v1 hash is stable, tensor order does not matter, each covered field does', () => {
  // Fingerprints are stored in every stats and placement file: changing how they are
  // computed would make every existing file "for a different model".
  const spec =
    'relu-serve model identity v1\narch=llama\nn_layer=2\nn_ff=8\nn_embd=4\nn_head=2\nn_head_kv=1\nn_vocab=32\n' +
    'blk.0.attn_q.weight\t1\t4x4\t32\nblk.0.ffn_up.weight\t0\t4x8\t128\noutput.weight\t0\t4x32\t512\n';
  assert.equal(identityHex(modelIdentity(desc())), createHash('sha256').update(spec).digest('hex'));
  assert.equal(
    identityHex(modelIdentity(desc({ fileName: 'F', contentDigest: 'cd' }))),
    createHash('sha256').update(spec.replace('blk.0.attn', 'general.name=F\ncontent=cd\nblk.0.attn')).digest('hex'),
  );
  const base = identityHex(modelIdentity(desc()));
  assert.equal(identityHex(modelIdentity(desc({ tensors: [...desc().tensors].reverse() }))), base);
  const variants: Partial<ModelDescription>[] = [
    { arch: 'opt' }, { nLayer: 3 }, { nFf: 9 }, { nEmbd: 5 }, { nHead: 4 }, { nHeadKv: 2 }, { nVocab: 33 },
    { fileName: 'tiny' }, { fileName: '' }, { contentDigest: 'ab' }, { contentDigest: '' },
    { tensors: desc().tensors.map((t, i) => (i === 0 ? { ...t, type: 2 } : t)) },
    { tensors: desc().tensors.map((t, i) => (i === 0 ? { ...t, shape: [8, 4] } : t)) },
    { tensors: desc().tensors.map((t, i) => (i === 0 ? { ...t, bytes: 64 } : t)) },
    { tensors: desc().tensors.map((t, i) => (i === 0 ? { ...t, name: 'blk.0.ffn_gate.weight' } : t)) },
  ];
  const seen = new Set([base]);
  for (const v of variants) {
    const h = identityHex(modelIdentity(desc(v)));
    assert.ok(!seen.has(h), `${JSON.stringify(v)} changes the fingerprint`);
    seen.add(h);
  }
  // The display name and the type's name are not part of it.
  assert.equal(identityHex(modelIdentity(desc({ name: 'renamed' }))), base);
  const id = modelIdentity(desc());
  assert.deepEqual([id.name, id.arch, id.hash.length], ['tiny', 'llama', 32]);
  assert.equal(identityHex(id.hash), base);
});

test('sameIdentity compares whole fingerprints; assertSameModel says which model each side is', () => {
  assert.equal(sameIdentity(Uint8Array.of(1, 2), Uint8Array.of(1, 2)), true);
  assert.equal(sameIdentity(Uint8Array.of(1, 2), Uint8Array.of(1, 3)), false);
  assert.equal(sameIdentity(Uint8Array.of(1, 2), Uint8Array.of(1, 2, 3)), false);
  assert.equal(sameIdentity(Uint8Array.of(1, 2, 3), Uint8Array.of(1, 2)), false);
  const a = { name: 'A', arch: 'llama', hash: new Uint8Array(32).fill(0xab) };
  const b = { name: 'B', arch: 'opt', hash: new Uint8Array(32).fill(0x01) };
  assertSameModel('x', a, { ...a, name: 'other name' });
  assert.throws(() => assertSameModel('stats file s', a, b), (e: Error) => {
    assert.equal(
      e.message,
      'stats file s was made for a different model: it is for "A" (llama, fingerprint abababababababab…) but the model given is "B" ' +
        '(opt, fingerprint 0101010101010101…); profile this model again (relu-serve profile) to get matching statistics',
    );
    return true;
  });
});
