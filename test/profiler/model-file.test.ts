// describeModelFile on small GGUF files written here: the hyper-parameters it reads (and
// their fallbacks), the content digest over each tensor's first bytes, and each refusal.
// Also the built-in sample text's label and size.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeGguf } from '../../server/gguf/writer.js';
import { describeModelFile } from '../../server/profiler/model-file.js';
import { modelIdentity } from '../../server/profiler/model-identity.js';
import { SAMPLE_TEXT, SAMPLE_TEXT_NAME } from '../../server/profiler/sample-text.js';

const dir = mkdtempSync(join(tmpdir(), 'rs-mfile-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const msg = (re: RegExp) => (e: Error) => (assert.match(e.message, re), true);

type Meta = [string, { type: string; value: unknown }][];
const u32 = (value: number) => ({ type: 'u32', value });
function meta(over: Record<string, { type: string; value: unknown } | undefined> = {}): Meta {
  const base: Record<string, { type: string; value: unknown } | undefined> = {
    'general.architecture': { type: 'string', value: 'llama' },
    'general.name': { type: 'string', value: 'Tiny' },
    'llama.block_count': u32(1),
    'llama.feed_forward_length': u32(2000),
    'llama.embedding_length': u32(4),
    'llama.attention.head_count': u32(2),
    ...over,
  };
  return Object.entries(base).filter((e): e is [string, { type: string; value: unknown }] => e[1] !== undefined);
}
// The up matrix is 4 x 2000 f32 = 32000 bytes: its digest sample is its first 4096.
const emb = Uint8Array.from({ length: 4 * 10 * 4 }, (_, i) => i);
const up = Uint8Array.from({ length: 4 * 2000 * 4 }, (_, i) => (i * 7) & 255);
let n = 0;
async function gguf(m: Meta, o: { magic?: string; truncateAt?: number; noEmbd?: boolean; embdLast?: boolean } = {}): Promise<string> {
  const path = join(dir, `m${n++}.gguf`);
  await writeGguf(path, {
    magic: o.magic,
    metadata: m as never,
    tensors: (() => {
      const e = { name: 'token_embd.weight', dims: [4, 10], type: 'f32', data: emb };
      const u = { name: 'blk.0.ffn_up.weight', dims: [4, 2000], type: 'f32', data: up };
      return o.noEmbd ? [u] : o.embdLast ? [u, e] : [e, u];
    })(),
    overrides: o.truncateAt ? { truncateAt: o.truncateAt } : undefined,
  });
  return path;
}

test('reads the hyper-parameters, the tensors and a digest of each tensor\'s first 4 KiB', async () => {
  const path = await gguf(meta());
  const d = await describeModelFile(path);
  assert.deepEqual([d.name, d.fileName, d.arch, d.nLayer, d.nFf, d.nEmbd, d.nHead, d.nHeadKv, d.nVocab, d.isPowerInfer, d.path], ['Tiny', 'Tiny', 'llama', 1, 2000, 4, 2, 2, 10, false, path]);
  assert.deepEqual(d.tensors, [
    { name: 'token_embd.weight', type: 0, typeName: 'f32', shape: [4, 10], bytes: 160 },
    { name: 'blk.0.ffn_up.weight', type: 0, typeName: 'f32', shape: [4, 2000], bytes: 32000 },
  ]);
  assert.equal(d.contentDigest, createHash('sha256').update(emb).update(up.subarray(0, 4096)).digest('hex'));
  const { identity, path: _p, isPowerInfer: _i, ...desc } = d;
  assert.deepEqual(identity, modelIdentity(desc));
  // The vocabulary is the embedding's second dimension wherever it is listed; 0 without one.
  assert.equal((await describeModelFile(await gguf(meta(), { embdLast: true }))).nVocab, 10);
  assert.equal((await describeModelFile(await gguf(meta(), { noEmbd: true }))).nVocab, 0);
  // KV heads from the file when given (a u64 too), PowerInfer magic noted.
  const kv = await describeModelFile(await gguf(meta({ 'llama.attention.head_count_kv': { type: 'u64', value: 1n } }), { magic: 'PWRI' }));
  assert.equal(kv.nHeadKv, 1);
  assert.equal(kv.isPowerInfer, true);
  // No (or an empty) general.name: the file's base name, and no name in the fingerprint.
  for (const name of [undefined, { type: 'string', value: '' }]) {
    const p = await gguf(meta({ 'general.name': name }));
    const x = await describeModelFile(p);
    assert.equal(x.name, p.slice(dir.length + 1));
    assert.equal(x.fileName, undefined);
  }
});

test('refusals: unreadable, not a model, missing or bad hyper-parameters, truncated data', async () => {
  await assert.rejects(describeModelFile(join(dir, 'none.gguf')), msg(/^cannot read model .*none\.gguf: /));
  await assert.rejects(describeModelFile(await gguf(meta({ 'general.architecture': undefined }))), msg(/: general\.architecture is missing$/));
  await assert.rejects(describeModelFile(await gguf(meta({ 'general.architecture': u32(1) }))), msg(/: general\.architecture is missing$/));
  for (const bad of [u32(0), { type: 'u64', value: 0n }, { type: 'u64', value: 1n << 60n }, { type: 'i64', value: -(1n << 60n) }, { type: 'f32', value: 1.5 }, { type: 'string', value: '2' }]) {
    await assert.rejects(describeModelFile(await gguf(meta({ 'llama.attention.head_count_kv': bad }))), msg(/: metadata key llama\.attention\.head_count_kv is missing or not a positive integer$/), JSON.stringify(bad, (_, v) => (typeof v === 'bigint' ? String(v) : v)));
  }
  assert.equal((await describeModelFile(await gguf(meta({ 'llama.block_count': { type: 'u64', value: 3n } })))).nLayer, 3);
  await assert.rejects(describeModelFile(await gguf(meta({ 'llama.block_count': undefined }))), msg(/: metadata key llama\.block_count is missing or not a positive integer$/));
  const whole = await gguf(meta());
  const { statSync } = await import('node:fs');
  const size = statSync(whole).size;
  await assert.rejects(describeModelFile(await gguf(meta(), { truncateAt: size - 32000 + 100 })), msg(/: tensor blk\.0\.ffn_up\.weight lies past the end of the file \(truncated\?\)$/));
});

test('the file is closed after reading, whether the digest succeeds or finds the data truncated', { skip: !existsSync('/proc/self/fd') && 'needs /proc/self/fd' }, async () => {
  const whole = await gguf(meta());
  const cut = await gguf(meta(), { truncateAt: statSync(whole).size - 32000 + 100 });
  const open = () => readdirSync('/proc/self/fd').length;
  const before = open();
  for (let i = 0; i < 4; i++) {
    await describeModelFile(whole);
    await assert.rejects(describeModelFile(cut), msg(/lies past the end of the file/));
  }
  assert.equal(open(), before);
});

test('the built-in sample text: about 4,000 characters of prose and code, labelled as built in', () => {
  assert.ok(SAMPLE_TEXT.length > 3500 && SAMPLE_TEXT.length < 5000, `${SAMPLE_TEXT.length} characters`);
  assert.match(SAMPLE_TEXT, /^The harbour town woke slowly\./);
  assert.match(SAMPLE_TEXT, /def moving_average\(values, window\):/);
  assert.equal(SAMPLE_TEXT_NAME, 'built-in sample (server/profiler/sample-text.ts)');
});
