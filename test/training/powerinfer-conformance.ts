// What PowerInfer's own loader demands of a PowerInfer GGUF model (llama or bamboo
// architecture), checked with our own GGUF reader: the rules below were read from the
// public PowerInfer sources (SJTU-IPADS/PowerInfer: ggml.h, ggml.c, llama.cpp) and from
// shared/docs/powerinfer-gguf.md, and are restated here in our words with the place
// each comes from. PowerInfer itself cannot be installed here, so this is how a test
// shows that `train-predictor`'s output would load there. Returns every violation found
// (an empty list: conforming), so a test can both accept good files and name what is
// wrong with a bad one.

import { statSync } from 'node:fs';
import { readGgufHeader, type ReadMetaValue } from '../../server/gguf/header-reader.js';
import { ggmlTypeById, tensorByteSize } from '../../server/gguf/constants.js';

// ggml.h (enum ggml_type): PowerInfer's ggml knows these ids as weight types: F32 0, F16 1,
// Q4_0 2, Q4_1 3, Q5_0 6, Q5_1 7, Q8_0 8, Q8_1 9 and the k-quants 10..15. Newer ids such as
// BF16 (30) do not exist there (GGML_TYPE_COUNT is 19), so a tensor of that type cannot load.
const POWERINFER_WEIGHT_TYPES = new Set([0, 1, 2, 3, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);

// llama.cpp (LLM_ARCH_NAMES, llm_load_sparse_model_tensors): the sparse (PWRI) loader
// builds tensors for llama, refact, bamboo and falcon only; this checker covers the two
// llama-layout ones our trainer writes.
const ARCHS = new Set(['llama', 'bamboo']);

export async function powerInferViolations(path: string): Promise<string[]> {
  const bad: string[] = [];
  const h = await readGgufHeader(path);
  const meta = h.metadata;
  const fileSize = statSync(path).size;

  // ggml.c gguf_init_from_file: magic "PWRI" selects sparse inference (predictors,
  // ffn_down_t); "GGUF" would send the file down the dense path, which wants ffn_down.
  if (h.magic !== 'PWRI') bad.push(`magic is ${JSON.stringify(h.magic)}, not "PWRI"`);
  // ggml.c gguf_init_from_file: version 1 is refused; the format it reads is v2/v3 (u64 counts).
  if (h.version !== 2 && h.version !== 3) bad.push(`GGUF version ${h.version}`);

  // ggml.c gguf_init_from_file: alignment comes from general.alignment read with
  // gguf_get_val_u32 (which asserts the type is u32), default 32; GGML_PAD rounds with a
  // bit mask, so it must be a power of two.
  const align = meta.get('general.alignment');
  if (align && (align.type !== 'u32' || !isPow2(Number(align.value)))) bad.push(`general.alignment must be a u32 power of two (${align.type} ${align.value})`);
  const alignment = align && align.type === 'u32' ? Number(align.value) : 32;

  // ggml.c gguf_init_from_file: an array of arrays is an assertion failure (abort).
  for (const [k, v] of meta) if (v.type === 'array' && v.elemType === 'array') bad.push(`key ${k} is an array of arrays`);

  // llama.cpp llama_model_loader::get_key -> GGUFMeta::GKV::get_kv: a key read with the
  // wrong GGUF type throws ("key ... has wrong type"); a missing required key throws too.
  const archV = meta.get('general.architecture');
  const arch = archV?.type === 'string' ? String(archV.value) : '';
  if (!ARCHS.has(arch)) {
    bad.push(`general.architecture ${JSON.stringify(archV?.value)} is not a string naming llama or bamboo`);
    return bad;
  }
  const key = (k: string, type: string, required: boolean): ReadMetaValue | undefined => {
    const v = meta.get(k);
    if (!v) {
      if (required) bad.push(`required key ${k} is missing`);
      return undefined;
    }
    if (v.type !== type) {
      bad.push(`key ${k} is ${v.type}, PowerInfer reads it as ${type}`);
      return undefined;
    }
    return v;
  };
  const num = (v: ReadMetaValue | undefined) => (v === undefined ? undefined : Number(v.value));
  // llama.cpp llm_load_hparams: these hparams are uint32_t / float and read as such.
  const nCtx = num(key(`${arch}.context_length`, 'u32', true));
  const nEmbd = num(key(`${arch}.embedding_length`, 'u32', true));
  const nFf = num(key(`${arch}.feed_forward_length`, 'u32', true));
  const nHead = num(key(`${arch}.attention.head_count`, 'u32', true));
  const nLayer = num(key(`${arch}.block_count`, 'u32', true));
  key(`${arch}.attention.layer_norm_rms_epsilon`, 'f32', true); // required for llama and bamboo
  const nHeadKv = num(key(`${arch}.attention.head_count_kv`, 'u32', false)) ?? nHead;
  key(`${arch}.rope.freq_base`, 'f32', false);
  key(`${arch}.rope.scaling.factor`, 'f32', false);
  key(`${arch}.rope.scale_linear`, 'f32', false);
  key(`${arch}.rope.scaling.original_context_length`, 'u32', false);
  key(`${arch}.rope.scaling.finetuned`, 'bool', false);
  key('general.name', 'string', false);
  // llama_model_loader's constructor reads general.file_type with gguf_get_val_u32 (asserts u32).
  key('general.file_type', 'u32', false);
  // llm_load_hparams: an unknown rope scaling name fails an assertion.
  const scaling = key(`${arch}.rope.scaling.type`, 'string', false);
  if (scaling && !['none', 'linear', 'yarn'].includes(String(scaling.value))) bad.push(`rope scaling type ${scaling.value} is unknown to PowerInfer`);
  // llm_load_hparams + the sparse loader: experts need ffn_gate_inp, which the sparse
  // loader never creates, so a PowerInfer file has none.
  const nExpert = num(key(`${arch}.expert_count`, 'u32', false)) ?? 0;
  if (nExpert !== 0) bad.push(`${arch}.expert_count is ${nExpert}; the sparse loader has no expert tensors`);
  // llm_load_hparams: the threshold is read only for PWRI files, as a float (f32), no
  // architecture prefix; default 0. Our own rule on top: finite (NaN would compare false
  // against every score and switch every neuron off).
  const thr = key('powerinfer.sparse_threshold', 'f32', false);
  if (thr && !Number.isFinite(Number(thr.value))) bad.push(`powerinfer.sparse_threshold is ${thr.value}`);

  // llm_load_hparams: n_rot (rope.dimension_count, default n_embd/n_head) must equal
  // n_embd/n_head for llama; build_llama_variants asserts n_embd_head == n_rot for bamboo too.
  if (nEmbd !== undefined && nHead !== undefined && nHeadKv !== undefined) {
    if (nHead === 0 || nEmbd % nHead !== 0) bad.push(`n_embd ${nEmbd} is not a multiple of n_head ${nHead}`);
    else {
      const nRot = num(key(`${arch}.rope.dimension_count`, 'u32', false)) ?? nEmbd / nHead;
      if (nRot !== nEmbd / nHead) bad.push(`rope.dimension_count ${nRot} differs from the head size ${nEmbd / nHead}`);
    }
    // n_gqa() = n_head / n_head_kv and n_embd_gqa() = n_embd / n_gqa() are integer divisions.
    if (nHeadKv === 0 || nHead % nHeadKv !== 0) bad.push(`n_head ${nHead} is not a multiple of n_head_kv ${nHeadKv}`);
  }
  if (nCtx === 0) bad.push('context_length is 0');

  // llama.cpp llm_load_vocab: tokenizer.ggml.model (string) and tokenizer.ggml.tokens
  // (string array; its length is n_vocab) are required; an empty token text fails an
  // assertion; scores / token types are read as raw f32 / i32 arrays indexed by token;
  // special ids are u32; for a "llama" (SentencePiece) vocabulary the newline byte token
  // <0x0A> is looked up with .at() and its absence throws.
  const tokModel = key('tokenizer.ggml.model', 'string', true);
  const tokens = key('tokenizer.ggml.tokens', 'array', true);
  let nVocab: number | undefined;
  if (tokens) {
    const list = tokens.value as unknown[];
    nVocab = list.length;
    if (tokens.elemType !== 'string') bad.push(`tokenizer.ggml.tokens holds ${tokens.elemType}, not strings`);
    else if (list.some((t) => t === '')) bad.push('a token text is empty');
    if (tokModel?.value === 'llama' && !list.includes('<0x0A>')) bad.push('the SentencePiece vocabulary has no <0x0A> byte token');
  }
  for (const [k, elem] of [['tokenizer.ggml.scores', 'f32'], ['tokenizer.ggml.token_type', 'i32']] as const) {
    const v = key(k, 'array', false);
    if (v && (v.elemType !== elem || (v.value as unknown[]).length !== nVocab)) bad.push(`${k} must be ${elem}[${nVocab}] (is ${v.elemType}[${(v.value as unknown[]).length}])`);
  }
  for (const k of ['bos', 'eos', 'unknown', 'seperator', 'padding']) key(`tokenizer.ggml.${k}_token_id`, 'u32', false);
  for (const k of ['add_bos_token', 'add_eos_token']) key(`tokenizer.ggml.${k}`, 'bool', false);

  // ggml.c gguf_init_from_file and ggml.h: each tensor has 1..4 dims, a type PowerInfer's
  // ggml knows, and a whole number of blocks per row (ggml's row stride assumes ne[0] is a
  // multiple of the block size; the loader itself checks the element count). Offsets are
  // relative to the data section, multiples of the alignment (the PowerInfer writer pads
  // every tensor), and llama_model_loader::load_data_for reads ggml_nbytes from there.
  const spans: [number, number, string][] = [];
  for (const t of h.tensors) {
    if (t.dims.length < 1 || t.dims.length > 4) bad.push(`${t.name}: ${t.dims.length} dimensions`);
    const type = ggmlTypeById(t.typeId);
    if (!POWERINFER_WEIGHT_TYPES.has(t.typeId) || !type) {
      bad.push(`${t.name}: type ${t.typeName ?? t.typeId} does not exist in PowerInfer's ggml`);
      continue;
    }
    if (t.dims[0] % type.blockSize !== 0) {
      bad.push(`${t.name}: rows of ${t.dims[0]} are not whole ${type.name} blocks`);
      continue;
    }
    const off = Number(t.offset);
    const size = Number(tensorByteSize(t.dims, type));
    if (off % alignment !== 0) bad.push(`${t.name}: offset ${off} is not a multiple of the alignment ${alignment}`);
    if (h.dataOffset + off + size > fileSize) bad.push(`${t.name}: data runs past the end of the file`);
    spans.push([off, off + size, t.name]);
  }
  spans.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < spans.length; i++) if (spans[i][0] < spans[i - 1][1]) bad.push(`${spans[i][2]} overlaps ${spans[i - 1][2]}`);

  // llama.cpp llm_load_sparse_model_tensors (llama / refact / bamboo case) with
  // llama_model_loader::create_tensor and done_getting_tensors: exactly these tensors,
  // each found by name with this shape (ne order, fastest first); any other tensor in the
  // file makes the created count differ from the file's count and the load fails. The
  // predictor's rank r is a wildcard; fc2's second dimension sizes the GPU neuron index
  // (mlp_pre_w2->ne[1]) and fc2 multiplies relu(fc1 x), so it must be n_ff and fc1's r.
  if (nEmbd === undefined || nFf === undefined || nHead === undefined || nLayer === undefined || nVocab === undefined || !nHeadKv) return bad;
  const nEmbdGqa = nEmbd / (nHead / nHeadKv);
  const want = new Map<string, number[]>([
    ['token_embd.weight', [nEmbd, nVocab]],
    ['output_norm.weight', [nEmbd]],
    ['output.weight', [nEmbd, nVocab]],
  ]);
  const byName = new Map(h.tensors.map((t) => [t.name, t]));
  for (let l = 0; l < nLayer; l++) {
    const b = `blk.${l}.`;
    want.set(`${b}attn_norm.weight`, [nEmbd]);
    want.set(`${b}attn_q.weight`, [nEmbd, nEmbd]);
    want.set(`${b}attn_k.weight`, [nEmbd, nEmbdGqa]);
    want.set(`${b}attn_v.weight`, [nEmbd, nEmbdGqa]);
    want.set(`${b}attn_output.weight`, [nEmbd, nEmbd]);
    want.set(`${b}ffn_norm.weight`, [nEmbd]);
    want.set(`${b}ffn_gate.weight`, [nEmbd, nFf]);
    want.set(`${b}ffn_up.weight`, [nEmbd, nFf]);
    want.set(`${b}ffn_down_t.weight`, [nEmbd, nFf]);
    const r = byName.get(`${b}fc1.weight`)?.dims[1] ?? -1;
    if (!(r >= 1)) bad.push(`${b}fc1.weight has no rank`);
    want.set(`${b}fc1.weight`, [nEmbd, r]);
    want.set(`${b}fc2.weight`, [r, nFf]);
  }
  for (const [name, dims] of want) {
    const t = byName.get(name);
    if (!t) bad.push(`tensor ${name} is missing`);
    else if (t.dims.length !== dims.length || t.dims.some((d, i) => d !== dims[i])) bad.push(`tensor ${name} has shape [${t.dims}], PowerInfer expects [${dims}]`);
  }
  for (const t of h.tensors) if (!want.has(t.name)) bad.push(`tensor ${t.name} is not one PowerInfer's sparse loader creates`);
  if (byName.size !== h.tensors.length) bad.push('a tensor name occurs twice');
  return bad;
}

function isPow2(n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
}
