#!/usr/bin/python3
"""Export a trained checkpoint plus its SentencePiece model as a GGUF v3 file with
architecture "bamboo" and llama tensor names.

Matrices are stored F16 (or F32 with --f32), norms F32. A PyTorch Linear weight [out, in]
is written as is: its GGUF ne is {in, out}, ne[0] being the fastest dimension.
"""
import argparse
import os

import sentencepiece as spm
import torch

import gguf_writer as g
from model import Config

# Trained as plain prose: the template just lays the messages' text out as paragraphs
# and leaves the model to continue with the next one. It follows no instructions.
CHAT_TEMPLATE = ("{% for m in messages %}{% if m['role'] != 'system' %}"
                 "{{ m['content'] }}\n{% endif %}{% endfor %}")


def token_type(sp, i):
    if sp.is_unknown(i):
        return 2
    if sp.is_control(i):
        return 3
    if sp.is_byte(i):
        return 6
    if sp.is_unused(i):
        return 5
    return 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--ckpt', default='models/.cache/train/ckpt.pt')
    ap.add_argument('--tokenizer', default='models/bamboo-kjv-mini.tokenizer.model')
    ap.add_argument('--out', default='models/bamboo-kjv-mini.gguf')
    ap.add_argument('--name', default='bamboo-kjv-mini')
    ap.add_argument('--f32', action='store_true', help='store matrices as F32 instead of F16')
    args = ap.parse_args()

    ck = torch.load(args.ckpt, map_location='cpu')
    cfg = Config(**ck['cfg'])
    sd = {k: v.float().numpy() for k, v in ck['model'].items()}
    sp = spm.SentencePieceProcessor(model_file=args.tokenizer)
    if sp.vocab_size() != cfg.n_vocab:
        raise ValueError(f'tokenizer has {sp.vocab_size()} pieces but the model {cfg.n_vocab}')
    mat = g.GGML_F32 if args.f32 else g.GGML_F16

    w = g.GgufWriter()
    arch = 'bamboo'
    w.add('general.architecture', g.STRING, arch)
    w.add('general.name', g.STRING, args.name)
    w.add('general.file_type', g.U32, 0 if args.f32 else 1)  # ALL_F32 / MOSTLY_F16
    w.add('general.alignment', g.U32, g.ALIGN)
    w.add('general.license', g.STRING, 'MIT (weights); training text public domain')
    w.add(f'{arch}.context_length', g.U32, cfg.n_ctx)
    w.add(f'{arch}.embedding_length', g.U32, cfg.n_embd)
    w.add(f'{arch}.feed_forward_length', g.U32, cfg.n_ff)
    w.add(f'{arch}.block_count', g.U32, cfg.n_layer)
    w.add(f'{arch}.attention.head_count', g.U32, cfg.n_head)
    w.add(f'{arch}.attention.head_count_kv', g.U32, cfg.n_head_kv)
    w.add(f'{arch}.rope.freq_base', g.F32, cfg.rope_base)
    w.add(f'{arch}.rope.dimension_count', g.U32, cfg.head_dim)
    w.add(f'{arch}.attention.layer_norm_rms_epsilon', g.F32, cfg.rms_eps)
    w.add('tokenizer.ggml.model', g.STRING, 'llama')
    w.add_array('tokenizer.ggml.tokens', g.STRING, [sp.id_to_piece(i) for i in range(cfg.n_vocab)])
    w.add_array('tokenizer.ggml.scores', g.F32, [sp.get_score(i) for i in range(cfg.n_vocab)])
    w.add_array('tokenizer.ggml.token_type', g.I32, [token_type(sp, i) for i in range(cfg.n_vocab)])
    w.add('tokenizer.ggml.bos_token_id', g.U32, sp.bos_id())
    w.add('tokenizer.ggml.eos_token_id', g.U32, sp.eos_id())
    w.add('tokenizer.ggml.unknown_token_id', g.U32, sp.unk_id())
    w.add('tokenizer.ggml.add_bos_token', g.BOOL, True)
    w.add('tokenizer.ggml.add_eos_token', g.BOOL, False)
    w.add('tokenizer.ggml.add_space_prefix', g.BOOL, True)
    w.add('tokenizer.chat_template', g.STRING, CHAT_TEMPLATE)

    w.add_tensor('token_embd.weight', sd['tok.weight'], mat)
    for i in range(cfg.n_layer):
        p, b = f'blk.{i}.', f'blocks.{i}.'
        w.add_tensor(p + 'attn_norm.weight', sd[b + 'attn_norm.weight'], g.GGML_F32)
        w.add_tensor(p + 'attn_q.weight', sd[b + 'wq.weight'], mat)
        w.add_tensor(p + 'attn_k.weight', sd[b + 'wk.weight'], mat)
        w.add_tensor(p + 'attn_v.weight', sd[b + 'wv.weight'], mat)
        w.add_tensor(p + 'attn_output.weight', sd[b + 'wo.weight'], mat)
        w.add_tensor(p + 'ffn_norm.weight', sd[b + 'ffn_norm.weight'], g.GGML_F32)
        w.add_tensor(p + 'ffn_gate.weight', sd[b + 'gate.weight'], mat)
        w.add_tensor(p + 'ffn_up.weight', sd[b + 'up.weight'], mat)
        w.add_tensor(p + 'ffn_down.weight', sd[b + 'down.weight'], mat)
    w.add_tensor('output_norm.weight', sd['norm.weight'], g.GGML_F32)
    if not cfg.tied_output:
        w.add_tensor('output.weight', sd['out.weight'], mat)
    n = w.write(args.out)
    print(f'wrote {args.out}: {n} bytes, {len(w.tensors)} tensors, {len(w.kv)} metadata keys')


if __name__ == '__main__':
    main()
