// The seam between the forward pass and the hardware that runs it. The forward pass
// (forward.cpp) is written only against this interface; the CPU backend implements it
// with the kernels in kernels/cpu, and a CUDA backend (kernels/cuda) will implement the
// same calls. Row-major activations throughout: x[n][d] is n token rows of d floats.
#pragma once

#include <cstdint>

#include "kv_cache.h"
#include "model.h"

namespace rs {

struct BatchView {
  int n = 0;                       // rows (tokens) in this step
  const int32_t *pos = nullptr;    // [n] position of each row
  const int32_t *seq = nullptr;    // [n] sequence of each row
};

// How the FFN of a step is computed.
//   Dense:     every neuron.
//   Exact:     gate densely, then up and down only where the gate is positive (ReLU
//              models without predictors; equals dense up to float rounding).
//   Predictor: PowerInfer's predictor picks the neurons; only those are computed.
enum class FfnMode { Dense = 0, Exact = 1, Predictor = 2 };

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char *name() const = 0;
  virtual int n_threads() const = 0;

  // y[n][W.rows] = x[n][W.cols] . W^T
  virtual void matmul(const Weight &W, const float *x, int n, float *y) = 0;
  // y_m[n][W_m.rows] = x[n][cols] . W_m^T for m < count: several matrices over one input
  // (q/k/v, gate/up). The default runs them one by one; a backend may run them as one job.
  virtual void matmul_multi(const Weight *const *W, int count, const float *x, int n, float *const *y) {
    for (int m = 0; m < count; m++) matmul(*W[m], x, n, y[m]);
  }
  // y[n][Wt.cols] = h[n][Wt.rows] . Wt: the down projection of PowerInfer files, whose
  // row i is neuron i's output vector.
  virtual void matmul_t(const Weight &Wt, const float *h, int n, float *y) = 0;
  // y[r] = embedding row ids[r], r < n
  virtual void get_rows(const Weight &W, const int32_t *ids, int n, float *y) = 0;
  // y[n][d] = rmsnorm(x[n][d]) * w[d]
  virtual void rmsnorm(const float *x, const float *w, int n, int d, float eps, float *y) = 0;
  // Rotary embedding in place on q[n][n_head*hd] and k[n][n_head_kv*hd] at each row's position.
  virtual void rope(float *q, float *k, const BatchView &b, int n_head, int n_head_kv, int head_dim,
                    float freq_base) = 0;
  // Writes k and v rows into the cache at (layer, seq, pos) of each row.
  virtual void kv_store(const KvView &cache, int layer, const BatchView &b, const float *k, const float *v) = 0;
  // out[n][n_head*hd] = causal attention of each row over its sequence's cache [0, pos].
  virtual void attention(const KvView &cache, int layer, const BatchView &b, const float *q,
                         int n_head, int n_head_kv, int head_dim, float *out) = 0;
  // h[n][n_ff] = act(gate, up), elementwise
  virtual void ffn_act(rs_act act, const float *gate, const float *up, int n, int n_ff, float *h) = 0;
  // Sparse FFN: y[n][n_embd] = down(act(gate.xn, up.xn)) over the neurons the mode picks
  // (see FfnMode). resid[n][n_embd] is the residual entering the FFN block (predictor
  // input), xn the normed input. Needs L.sparse_ready(). Returns the (row, neuron) pairs
  // computed.
  virtual uint64_t ffn_sparse(const Layer &L, FfnMode mode, float threshold, rs_act act, const float *resid,
                              const float *xn, int n, float *y) = 0;
  // Predictor logits[n][n_ff] = fc2 . relu(fc1 . resid) (for statistics of its quality).
  virtual void predictor_logits(const Layer &L, const float *resid, int n, float *logits) = 0;
  // x[i] += y[i] over n floats
  virtual void add(float *x, const float *y, int64_t n) = 0;

  // Milliseconds ffn_sparse spent choosing the neurons (the predictor, or exact mode's
  // gate product and its threshold), cumulative: forward() splits its FFN time with it.
  double select_ms = 0;
};

}  // namespace rs
