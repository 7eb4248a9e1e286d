#include "forward.h"

#include <algorithm>
#include <chrono>

namespace rs {

Scratch::Scratch(const HParams &hp, int nb) : n_batch(nb) {
  size_t n = static_cast<size_t>(nb);
  x.resize(n * hp.n_embd);
  xb.resize(n * hp.n_embd);
  q.resize(n * hp.n_embd);
  k.resize(n * hp.kv_dim());
  v.resize(n * hp.kv_dim());
  att.resize(n * hp.n_embd);
  gate.resize(n * hp.n_ff);
  up.resize(n * hp.n_ff);
  h.resize(n * hp.n_ff);
  gx.resize(n * hp.n_embd);
  gxb.resize(n * hp.n_embd);
}

namespace {

// Counts non-zero activations per neuron and, where the layer has a predictor, how its
// choice compares with them.
void count_activations(Backend &be, const Layer &L, int il, const float *resid, Scratch &s, int n, int n_ff,
                       float threshold, ActivationCounts &c) {
  uint32_t *cnt = c.counts[il].data();
  for (int j = 0; j < n; j++) {
    const float *hj = s.h.data() + static_cast<size_t>(j) * n_ff;
    for (int i = 0; i < n_ff; i++) cnt[i] += hj[i] != 0.f;
  }
  if (c.capture) {
    const int d = static_cast<int>(L.ffn_norm.size());
    std::vector<float> &cx = c.cap_x[il];
    cx.insert(cx.end(), resid, resid + static_cast<size_t>(n) * d);
    const size_t mb = (static_cast<size_t>(n_ff) + 7) / 8;
    std::vector<uint8_t> &cm = c.cap_mask[il];
    const size_t o = cm.size();
    cm.resize(o + mb * n, 0);
    for (int j = 0; j < n; j++) {
      const float *hj = s.h.data() + static_cast<size_t>(j) * n_ff;
      uint8_t *mj = cm.data() + o + mb * j;
      for (int i = 0; i < n_ff; i++) mj[i >> 3] |= static_cast<uint8_t>((hj[i] != 0.f) << (i & 7));
    }
  }
  if (!L.fc1) return;
  be.predictor_logits(L, resid, n, s.gate.data());  // the gate buffer is free again here
  uint64_t tp = 0, fp = 0, fn = 0;
  for (size_t k = 0; k < static_cast<size_t>(n) * n_ff; k++) {
    const bool pred = s.gate[k] >= threshold, on = s.h[k] != 0.f;
    tp += pred && on;
    fp += pred && !on;
    fn += !pred && on;
  }
  c.tp[il] += tp;
  c.fp[il] += fp;
  c.fn[il] += fn;
}

}  // namespace

void forward(const Model &model, Backend &be, KvCache &cache, Scratch &s, const int32_t *tokens,
             const BatchView &b, const uint8_t *want, float *logits, const ForwardOptions &opt) {
  ActivationCounts *counts = opt.counts;
  const HParams &hp = model.hp();
  const int n = b.n, d = hp.n_embd;
  float *x = s.x.data(), *xb = s.xb.data();

  be.get_rows(model.tok_embd(), tokens, n, x);

  // Which rows take the sparse FFN: those of sequences that bring at most
  // sparse_max_batch rows to this step (generation, short prompts); long prompt chunks run
  // dense, where matrix-matrix products win. The choice depends only on the row's own
  // sequence, never on what else shares the step, so a request's results do not change
  // with the server's load.
  std::vector<int> sparse_rows, dense_rows;
  {
    std::vector<int> per_seq(cache.n_seq, 0);
    for (int j = 0; j < n; j++) per_seq[b.seq[j]]++;
    const bool can = opt.mode != FfnMode::Dense && !counts;
    for (int j = 0; j < n; j++)
      (can && per_seq[b.seq[j]] <= opt.sparse_max_batch ? sparse_rows : dense_rows).push_back(j);
  }
  if (opt.stats) {
    opt.stats->last_pairs.assign(hp.n_layer, 0);
    opt.stats->last_rows = n;
    opt.stats->total_rows += n;
    (sparse_rows.empty() ? opt.stats->dense_steps : opt.stats->sparse_steps)++;
  }
  const bool mixed = !sparse_rows.empty() && !dense_rows.empty();

  // Part timing (SparsityStats): a clock read at each boundary, a few per layer; the
  // embedding lookup and the row split above are left out.
  using Clock = std::chrono::steady_clock;
  auto lap = [t = Clock::now()](double *acc) mutable {
    const Clock::time_point now = Clock::now();
    *acc += std::chrono::duration<double, std::milli>(now - t).count();
    t = now;
  };
  double attention_ms = 0, ffn_ms = 0, output_ms = 0;
  const double select_before = be.select_ms;
  for (int il = 0; il < hp.n_layer; il++) {
    const Layer &L = model.layers()[il];
    // Attention block: x += Wo . attn(rope(Wq.n(x)), rope(Wk.n(x)), Wv.n(x))
    be.rmsnorm(x, L.attn_norm.data(), n, d, hp.rms_eps, xb);
    {
      const Weight *qkv[3] = {&L.wq, &L.wk, &L.wv};
      float *qkv_out[3] = {s.q.data(), s.k.data(), s.v.data()};
      be.matmul_multi(qkv, 3, xb, n, qkv_out);
    }
    be.rope(s.q.data(), s.k.data(), b, hp.n_head, hp.n_head_kv, hp.head_dim, hp.rope_freq_base);
    be.kv_store(cache, il, b, s.k.data(), s.v.data());
    be.attention(cache, il, b, s.q.data(), hp.n_head, hp.n_head_kv, hp.head_dim, s.att.data());
    be.matmul(L.wo, s.att.data(), n, xb);
    be.add(x, xb, static_cast<int64_t>(n) * d);
    lap(&attention_ms);

    // FFN block: x += down(act(gate.n(x), up.n(x)))
    be.rmsnorm(x, L.ffn_norm.data(), n, d, hp.rms_eps, xb);
    const bool layer_sparse = L.sparse_ready() && (opt.mode == FfnMode::Exact || L.fc1);
    uint64_t pairs = 0;
    // Runs the FFN over m rows held contiguously in (rx: residual, rxb: normed) and adds
    // its output into rx.
    auto dense_ffn = [&](float *rx, const float *rxb, int m) {
      const Weight *gu[2] = {&L.gate, &L.up};
      float *gu_out[2] = {s.gate.data(), s.up.data()};
      be.matmul_multi(gu, 2, rxb, m, gu_out);
      be.ffn_act(model.ffn_act(), s.gate.data(), s.up.data(), m, hp.n_ff, s.h.data());
      if (counts) count_activations(be, L, il, rx, s, m, hp.n_ff, opt.threshold, *counts);
      if (L.down) be.matmul(L.down, s.h.data(), m, s.att.data());
      else be.matmul_t(L.down_t, s.h.data(), m, s.att.data());
      be.add(rx, s.att.data(), static_cast<int64_t>(m) * d);
      pairs += static_cast<uint64_t>(m) * hp.n_ff;
    };
    auto sparse_ffn = [&](float *rx, const float *rxb, int m) {
      for (int j0 = 0; j0 < m; j0 += 64) {  // the sparse kernel takes up to 64 rows
        const int g = std::min(64, m - j0);
        pairs += be.ffn_sparse(L, opt.mode, opt.threshold, model.ffn_act(), rx + static_cast<size_t>(j0) * d,
                               rxb + static_cast<size_t>(j0) * d, g, s.att.data());
        be.add(rx + static_cast<size_t>(j0) * d, s.att.data(), static_cast<int64_t>(g) * d);
      }
    };
    if (!layer_sparse || sparse_rows.empty()) {
      dense_ffn(x, xb, n);
    } else if (!mixed) {
      sparse_ffn(x, xb, n);
    } else {
      // Mixed step: gather each group's rows, run it, scatter the updated residual back.
      for (const std::vector<int> *rows : {&dense_rows, &sparse_rows}) {
        const int m = static_cast<int>(rows->size());
        for (int r = 0; r < m; r++) {
          std::copy_n(x + static_cast<size_t>((*rows)[r]) * d, d, s.gx.data() + static_cast<size_t>(r) * d);
          std::copy_n(xb + static_cast<size_t>((*rows)[r]) * d, d, s.gxb.data() + static_cast<size_t>(r) * d);
        }
        if (rows == &dense_rows) dense_ffn(s.gx.data(), s.gxb.data(), m);
        else sparse_ffn(s.gx.data(), s.gxb.data(), m);
        for (int r = 0; r < m; r++)
          std::copy_n(s.gx.data() + static_cast<size_t>(r) * d, d, x + static_cast<size_t>((*rows)[r]) * d);
      }
    }
    if (opt.stats) {
      opt.stats->last_pairs[il] = pairs;
      opt.stats->total_pairs[il] += pairs;
    }
    lap(&ffn_ms);
  }
  auto record_times = [&] {
    if (!opt.stats) return;
    const double sel = be.select_ms - select_before;
    opt.stats->attention_ms += attention_ms;
    opt.stats->select_ms += sel;
    opt.stats->ffn_ms += ffn_ms - sel;
    opt.stats->output_ms += output_ms;
  };

  if (counts) counts->rows += n;
  // Output head only for the rows whose logits are wanted.
  int n_out = 0;
  for (int j = 0; j < n; j++) {
    if (!want[j]) continue;
    if (n_out != j) std::copy(x + static_cast<size_t>(j) * d, x + static_cast<size_t>(j + 1) * d,
                              x + static_cast<size_t>(n_out) * d);
    n_out++;
  }
  if (n_out == 0) return record_times();
  be.rmsnorm(x, model.output_norm().data(), n_out, d, hp.rms_eps, xb);
  be.matmul(model.output(), xb, n_out, logits);
  lap(&output_ms);
  record_times();
}

}  // namespace rs
