#!/usr/bin/python3
"""Train the default model on CPU within a wall-clock budget.

The learning rate follows a cosine over *elapsed time* (after a short warm-up in
steps), so a run on a loaded, shared machine still ends on schedule with a fully
decayed learning rate. An L1 penalty on the dReLU FFN activations, ramped in over
the first part of training, pushes activation sparsity up as ProSparse does.
"""
import argparse
import json
import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

from corpus import Tokenizer, token_stream, eval_windows
from model import Config, Decoder


def evaluate(model, windows, batch=8):
    """Mean NLL over scored tokens, and per-layer fraction of exactly-zero FFN neurons."""
    model.eval()
    nll, n = 0.0, 0
    zeros = torch.zeros(model.cfg.n_layer, dtype=torch.float64)
    seen = 0
    with torch.no_grad():
        for i in range(0, len(windows), batch):
            x = torch.tensor(windows[i:i + batch], dtype=torch.long)
            logits, acts = model(x[:, :-1], want_acts=True)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1),
                                   reduction='sum')
            nll += loss.item()
            n += x[:, 1:].numel()
            for li, a in enumerate(acts):
                zeros[li] += (a == 0).double().mean(-1).sum()
            seen += x.shape[0] * (x.shape[1] - 1)
    model.train()
    return nll / n, (zeros / seen).tolist()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--data', default='models/.cache/train')
    ap.add_argument('--tokenizer', default='models/bamboo-kjv-mini.tokenizer.model')
    ap.add_argument('--out', default='models/.cache/train/ckpt.pt')
    ap.add_argument('--minutes', type=float, default=40)
    ap.add_argument('--batch', type=int, default=16)
    ap.add_argument('--lr', type=float, default=2e-3)
    ap.add_argument('--min-lr-frac', type=float, default=0.05)
    ap.add_argument('--warmup', type=int, default=100)
    ap.add_argument('--weight-decay', type=float, default=0.1)
    ap.add_argument('--l1', type=float, default=0.0, help='L1 weight on mean FFN activation')
    ap.add_argument('--l1-ramp', type=float, default=0.3, help='fraction of the budget to ramp L1 in')
    ap.add_argument('--n-embd', type=int, default=256)
    ap.add_argument('--n-layer', type=int, default=6)
    ap.add_argument('--n-head', type=int, default=4)
    ap.add_argument('--n-head-kv', type=int, default=2)
    ap.add_argument('--n-ff', type=int, default=1024)
    ap.add_argument('--n-ctx', type=int, default=256)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--seed', type=int, default=1234)
    ap.add_argument('--eval-windows', type=int, default=64)
    ap.add_argument('--init', help='start from this checkpoint\'s weights (a second, continued run)')
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    sp = Tokenizer(args.tokenizer)
    train = token_stream(sp, os.path.join(args.data, 'train.txt'), os.path.join(args.data, 'train_ids.npy'))
    held = token_stream(sp, os.path.join(args.data, 'heldout.txt'), os.path.join(args.data, 'heldout_ids.npy'))
    cfg = Config(n_vocab=sp.vocab_size(), n_embd=args.n_embd, n_layer=args.n_layer, n_head=args.n_head,
                 n_head_kv=args.n_head_kv, n_ff=args.n_ff, n_ctx=args.n_ctx)
    model = Decoder(cfg)
    if args.init:
        ck = torch.load(args.init, map_location='cpu')
        if ck['cfg'] != cfg.to_dict():
            raise ValueError(f'--init checkpoint has config {ck["cfg"]}, this run {cfg.to_dict()}')
        model.load_state_dict(ck['model'])
    n_params = sum(p.numel() for p in model.parameters())
    print(f'train tokens {len(train)}, held-out tokens {len(held)}, params {n_params}', flush=True)
    windows = eval_windows(held, cfg.n_ctx, args.eval_windows)

    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{'params': decay, 'weight_decay': args.weight_decay},
                             {'params': no_decay, 'weight_decay': 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8)
    budget = args.minutes * 60
    t0 = time.time()
    step, tokens, log = 0, 0, []
    last_ckpt = t0
    train_t = torch.from_numpy(train.astype(np.int64))
    while True:
        frac = (time.time() - t0) / budget
        if frac >= 1:
            break
        warm = min(1.0, (step + 1) / args.warmup)
        cos = args.min_lr_frac + (1 - args.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * frac))
        lr = args.lr * warm * cos
        for g in opt.param_groups:
            g['lr'] = lr
        starts = rng.integers(0, len(train) - cfg.n_ctx - 1, size=args.batch)
        x = torch.stack([train_t[s:s + cfg.n_ctx + 1] for s in starts])
        logits, acts = model(x[:, :-1], want_acts=args.l1 > 0)
        ce = F.cross_entropy(logits.reshape(-1, cfg.n_vocab), x[:, 1:].reshape(-1))
        l1w = args.l1 * min(1.0, frac / args.l1_ramp) if args.l1 > 0 else 0.0
        l1 = sum(a.mean() for a in acts) / cfg.n_layer if acts else torch.zeros(())
        loss = ce + l1w * l1
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        tokens += x[:, 1:].numel()
        if step % 25 == 0:
            el = time.time() - t0
            print(f'step {step} t {el:.0f}s lr {lr:.2e} ce {ce.item():.3f} l1 {l1.item():.4f} '
                  f'tok/s {tokens / el:.0f}', flush=True)
        if time.time() - last_ckpt > 300:
            nll, zeros = evaluate(model, windows[:16])
            print(f'  eval step {step}: held-out ppl {math.exp(nll):.2f} zero-frac '
                  + ' '.join(f'{z:.3f}' for z in zeros), flush=True)
            log.append({'step': step, 'seconds': time.time() - t0, 'heldout_ppl': math.exp(nll), 'zero_frac': zeros})
            torch.save({'cfg': cfg.to_dict(), 'model': model.state_dict(), 'step': step}, args.out)
            last_ckpt = time.time()
    elapsed = time.time() - t0
    nll, zeros = evaluate(model, windows)
    summary = {'config': cfg.to_dict(), 'params': n_params, 'steps': step, 'tokens_seen': tokens,
               'train_seconds': elapsed, 'final_train_ce': ce.item(), 'heldout_nll': nll,
               'heldout_ppl': math.exp(nll), 'heldout_eval_tokens': len(windows) * (cfg.n_ctx - 1),
               'zero_frac_per_layer': zeros, 'args': vars(args), 'log': log}
    torch.save({'cfg': cfg.to_dict(), 'model': model.state_dict(), 'step': step}, args.out)
    with open(os.path.splitext(args.out)[0] + '_summary.json', 'w') as f:
        json.dump(summary, f, indent=1)
    print(json.dumps({k: v for k, v in summary.items() if k != 'log'}, indent=1), flush=True)


if __name__ == '__main__':
    main()
