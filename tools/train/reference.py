#!/usr/bin/python3
"""PyTorch reference numbers for the shipped GGUF, for comparison with the engine.

Weights are read back from the GGUF itself (F16 matrices widened to F32), so both sides
compute with the same numbers. Writes tools/train/reference.json:
  * perplexity over tools/train/heldout.txt with the protocol below;
  * the fraction of exactly-zero dReLU FFN neurons per layer on that text;
  * greedy continuations of a few prompts as token ids, with the top-1/top-2 logit
    margin at each step (a tiny margin means a legitimate near-tie, not a bug);
and tools/train/tokenizer_samples.json: SentencePiece ids for held-out lines and edge cases.

Perplexity protocol (the engine's `relu-serve perplexity` follows the same one): encode
the whole text (no <s>), cut the ids into consecutive chunks of n_ctx-1 tokens (the last
may be shorter), put <s> in front of each chunk, evaluate each chunk from position 0, and
score every chunk token given the ones before it. ppl = exp(mean NLL over scored tokens).
"""
import argparse
import hashlib
import json
import math
import os

import sentencepiece as spm
import torch
import torch.nn.functional as F

from gguf_reader import read_gguf
from model import Config, Decoder

HERE = os.path.dirname(os.path.abspath(__file__))
PROMPTS = [
    'In the beginning',
    'And the LORD said unto Moses,',
    'It is a truth universally acknowledged, that',
    'Elizabeth looked at her sister and',
    'The king of Israel',
    'My dear Emma,',
]


def file_sha256(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def model_from_gguf(path):
    meta, t = read_gguf(path)
    a = meta['general.architecture']
    n_embd, n_head = meta[f'{a}.embedding_length'], meta[f'{a}.attention.head_count']
    cfg = Config(n_vocab=t['token_embd.weight'].shape[0], n_embd=n_embd,
                 n_layer=meta[f'{a}.block_count'], n_head=n_head,
                 n_head_kv=meta[f'{a}.attention.head_count_kv'], n_ff=meta[f'{a}.feed_forward_length'],
                 n_ctx=meta[f'{a}.context_length'], rope_base=meta[f'{a}.rope.freq_base'],
                 rms_eps=meta[f'{a}.attention.layer_norm_rms_epsilon'],
                 tied_output='output.weight' not in t)
    m = Decoder(cfg)
    sd = {'tok.weight': t['token_embd.weight'], 'norm.weight': t['output_norm.weight']}
    if not cfg.tied_output:
        sd['out.weight'] = t['output.weight']
    names = {'attn_norm': 'attn_norm', 'attn_q': 'wq', 'attn_k': 'wk', 'attn_v': 'wv',
             'attn_output': 'wo', 'ffn_norm': 'ffn_norm', 'ffn_gate': 'gate', 'ffn_up': 'up',
             'ffn_down': 'down'}
    for i in range(cfg.n_layer):
        for gname, pname in names.items():
            sd[f'blocks.{i}.{pname}.weight'] = t[f'blk.{i}.{gname}.weight']
    m.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in sd.items()})
    m.eval()
    return m, meta


def perplexity(model, ids, bos):
    n_ctx = model.cfg.n_ctx
    nll, n = 0.0, 0
    zeros = torch.zeros(model.cfg.n_layer, dtype=torch.float64)
    positions = 0
    with torch.no_grad():
        for s in range(0, len(ids), n_ctx - 1):
            chunk = [bos] + ids[s:s + n_ctx - 1]
            x = torch.tensor([chunk])
            logits, acts = model(x, want_acts=True)
            lp = F.log_softmax(logits[0, :-1].double(), dim=-1)
            tgt = x[0, 1:]
            nll -= lp[torch.arange(len(tgt)), tgt].sum().item()
            n += len(tgt)
            for li, a in enumerate(acts):
                zeros[li] += (a[0] == 0).double().mean(-1).sum()
            positions += len(chunk)
    return nll / n, n, (zeros / positions).tolist()


def greedy(model, ids, n_new):
    out, margins = [], []
    with torch.no_grad():
        for _ in range(n_new):
            x = torch.tensor([(ids + out)[-model.cfg.n_ctx:]])
            logits, _ = model(x)
            top = torch.topk(logits[0, -1], 2)
            out.append(int(top.indices[0]))
            margins.append(round(float(top.values[0] - top.values[1]), 5))
    return out, margins


def sample(model, ids, n_new, seed, temperature=0.8, top_k=40):
    """A sampled continuation, for the README only (engine agreement uses greedy)."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    with torch.no_grad():
        for _ in range(n_new):
            x = torch.tensor([(ids + out)[-model.cfg.n_ctx:]])
            logits, _ = model(x)
            top = torch.topk(logits[0, -1] / temperature, top_k)
            pick = torch.multinomial(top.values.softmax(-1), 1, generator=gen)
            out.append(int(top.indices[pick]))
    return out


def tokenizer_samples(sp, heldout_text, n_lines=150):
    lines = [l for l in heldout_text.split('\n') if l.strip()]
    step = max(1, len(lines) // n_lines)
    texts = lines[::step][:n_lines]
    texts += [
        '', ' ', '  two  spaces', 'Hello world', ' leading space', 'trailing space ',
        'Numbers 1611 and 3.14159', 'line one\nline two\n\nline four', 'tab\tseparated',
        'Unicode: café, naïve, Ærø, 日本語, emoji 🙂', 'MIXED case AND Punctuation!?;:', '____',
        'Mr. Darcy\'s "reply" -- was short.', '\n', 'a' * 40,
    ]
    return [{'text': t, 'ids': sp.encode(t)} for t in texts]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--gguf', default='models/bamboo-kjv-mini.gguf')
    ap.add_argument('--tokenizer', default='models/bamboo-kjv-mini.tokenizer.model')
    ap.add_argument('--heldout', default=os.path.join(HERE, 'heldout.txt'))
    ap.add_argument('--n-new', type=int, default=40)
    ap.add_argument('--threads', type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    sp = spm.SentencePieceProcessor(model_file=args.tokenizer)
    model, meta = model_from_gguf(args.gguf)
    with open(args.heldout, encoding='utf-8') as f:
        text = f.read()
    ids = sp.encode(text)
    nll, n, zeros = perplexity(model, ids, sp.bos_id())
    # A short figure for the node test (test/perplexity), which must stay quick.
    nll_1k, _, _ = perplexity(model, ids[:1000], sp.bos_id())
    gens = []
    for p in PROMPTS:
        pid = [sp.bos_id()] + sp.encode(p)
        out, margins = greedy(model, pid, args.n_new)
        gens.append({'prompt': p, 'prompt_ids': pid, 'greedy_ids': out, 'top2_margins': margins,
                     'text': sp.decode(out)})
        print(f'{p!r} -> {sp.decode(out)!r}', flush=True)
    sampled = []
    for i, p in enumerate(PROMPTS):
        out = sample(model, [sp.bos_id()] + sp.encode(p), 60, seed=i)
        sampled.append({'prompt': p, 'temperature': 0.8, 'top_k': 40, 'seed': i, 'text': sp.decode(out)})
    ref = {
        'gguf': os.path.basename(args.gguf),
        'gguf_sha256': file_sha256(args.gguf),
        'heldout_file': os.path.relpath(os.path.abspath(args.heldout), os.path.dirname(os.path.dirname(HERE))),
        'heldout_sha256': hashlib.sha256(text.encode('utf-8')).hexdigest(),
        'protocol': 'encode whole text without <s>; chunks of n_ctx-1 ids each preceded by <s>; '
                    'score every chunk token; ppl = exp(mean NLL)',
        'n_ctx': model.cfg.n_ctx,
        'text_tokens': len(ids),
        'scored_tokens': n,
        'mean_nll': nll,
        'perplexity': math.exp(nll),
        'ffn_zero_fraction_per_layer': zeros,
        'perplexity_first_1000_tokens': math.exp(nll_1k),
        'greedy': gens,
        'sampled_for_readme': sampled,
    }
    with open(os.path.join(HERE, 'reference.json'), 'w') as f:
        json.dump(ref, f, indent=1)
    samples = tokenizer_samples(sp, text)
    with open(os.path.join(HERE, 'tokenizer_samples.json'), 'w', encoding='utf-8') as f:
        json.dump({'tokenizer': os.path.basename(args.tokenizer), 'add_bos': False,
                   'note': 'ids as SentencePiece encode() gives them: no <s>, dummy prefix applied',
                   'samples': samples}, f, ensure_ascii=False, indent=0)
    print(f'perplexity {math.exp(nll):.3f} over {n} tokens; zero fraction per layer '
          + ' '.join(f'{z:.3f}' for z in zeros))


if __name__ == '__main__':
    main()
