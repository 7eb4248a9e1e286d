#include "forward_ref.h"

#include <cmath>
#include <cstring>

namespace rs {

void RefForward::matvec(const Weight &W, const float *x, float *y) {
  rs_type vt = rs_type_get_traits(W.type)->vec_dot_type;
  const void *a = x;
  if (vt != RS_TYPE_F32) {
    qbuf_.resize(rs_row_size(vt, W.cols));
    rs_ref_from_float(vt, x, qbuf_.data(), W.cols);
    a = qbuf_.data();
  }
  // --no-mmap keeps only the repacked rows of some matrices: rebuilt here (an oracle's cost).
  std::vector<uint8_t> scratch;
  const uint8_t *rows = plain_rows(W, scratch);
  for (int64_t r = 0; r < W.rows; r++) y[r] = rs_ref_vec_dot(W.type, W.cols, rows + r * W.stride, a);
}

void RefForward::token(int32_t tok, int pos, int seq, float *logits) {
  const HParams &hp = m_.hp();
  const int d = hp.n_embd, kvd = hp.kv_dim(), hd = hp.head_dim, ff = hp.n_ff;
  std::vector<float> x(d), xb(d), q(d), k(kvd), v(kvd), att(d), g(ff), u(ff), h(ff), row(d), sc(pos + 1);
  rs_ref_to_float(m_.tok_embd().type, m_.tok_embd().row(tok), x.data(), d);
  for (int il = 0; il < hp.n_layer; il++) {
    const Layer &L = m_.layers()[il];
    rs_ref_rmsnorm(xb.data(), x.data(), L.attn_norm.data(), d, hp.rms_eps);
    matvec(L.wq, xb.data(), q.data());
    matvec(L.wk, xb.data(), k.data());
    matvec(L.wv, xb.data(), v.data());
    rs_ref_rope(q.data(), hp.n_head, hd, pos, hp.rope_freq_base);
    rs_ref_rope(k.data(), hp.n_head_kv, hd, pos, hp.rope_freq_base);
    for (int c = 0; c < kvd; c++) {
      cache_.k_head(il, seq, c / hd)[static_cast<size_t>(pos) * hd + c % hd] = rs_fp32_to_fp16(k[c]);
      cache_.v_head(il, seq, c / hd)[static_cast<size_t>(pos) * hd + c % hd] = rs_fp32_to_fp16(v[c]);
    }
    const int group = hp.n_head / hp.n_head_kv;
    for (int hh = 0; hh < hp.n_head; hh++) {
      int hk = hh / group;
      rs_ref_attention_head(&att[hh * hd], &q[hh * hd], cache_.k_head(il, seq, hk), cache_.v_head(il, seq, hk),
                            pos + 1, hd, hd,
                            1.0f / std::sqrt(static_cast<float>(hd)), sc.data());
    }
    matvec(L.wo, att.data(), xb.data());
    for (int c = 0; c < d; c++) x[c] += xb[c];

    rs_ref_rmsnorm(xb.data(), x.data(), L.ffn_norm.data(), d, hp.rms_eps);
    matvec(L.gate, xb.data(), g.data());
    matvec(L.up, xb.data(), u.data());
    rs_ref_ffn_act(m_.ffn_act(), h.data(), g.data(), u.data(), ff);
    if (L.down) {
      matvec(L.down, h.data(), xb.data());
    } else {
      std::fill(xb.begin(), xb.end(), 0.f);
      for (int i = 0; i < ff; i++) {
        if (h[i] == 0.f) continue;
        rs_ref_to_float(L.down_t.type, L.down_t.row(i), row.data(), d);
        for (int c = 0; c < d; c++) xb[c] += h[i] * row[c];
      }
    }
    for (int c = 0; c < d; c++) x[c] += xb[c];
  }
  if (!logits) return;
  rs_ref_rmsnorm(xb.data(), x.data(), m_.output_norm().data(), d, hp.rms_eps);
  matvec(m_.output(), xb.data(), logits);
}

void RefForward::decode(int n, const int32_t *tokens, const int32_t *pos, const int32_t *seq,
                        const uint8_t *want, float *logits) {
  int out = 0;
  for (int j = 0; j < n; j++) {
    float *dst = want[j] ? logits + static_cast<size_t>(out++) * m_.hp().n_vocab : nullptr;
    token(tokens[j], pos[j], seq[j], dst);
  }
}

}  // namespace rs
