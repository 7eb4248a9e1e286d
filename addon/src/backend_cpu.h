// CPU backend: the kernels of kernels/cpu driven by a thread pool. Work is split by
// output rows (matmul), by (row, head) pairs (attention) or by token rows, so each
// output float is computed by one thread in a fixed order: results do not depend on
// the thread count.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "backend.h"
#include "sparse_ffn_common.h"
#include "thread_pool.h"

namespace rs {

class CpuBackend : public Backend {
 public:
  CpuBackend(int n_threads, rs_isa isa, int max_ctx);

  const char *name() const override { return "cpu"; }
  int n_threads() const override { return pool_.size(); }
  rs_isa isa() const { return isa_; }
  ThreadPool &pool() { return pool_; }

  void matmul(const Weight &W, const float *x, int n, float *y) override;
  void matmul_multi(const Weight *const *W, int count, const float *x, int n, float *const *y) override;
  void matmul_t(const Weight &Wt, const float *h, int n, float *y) override;
  void get_rows(const Weight &W, const int32_t *ids, int n, float *y) override;
  void rmsnorm(const float *x, const float *w, int n, int d, float eps, float *y) override;
  void rope(float *q, float *k, const BatchView &b, int n_head, int n_head_kv, int head_dim,
            float freq_base) override;
  void kv_store(const KvView &cache, int layer, const BatchView &b, const float *k, const float *v) override;
  void attention(const KvView &cache, int layer, const BatchView &b, const float *q, int n_head,
                 int n_head_kv, int head_dim, float *out) override;
  void ffn_act(rs_act act, const float *gate, const float *up, int n, int n_ff, float *h) override;
  void add(float *x, const float *y, int64_t n) override;
  uint64_t ffn_sparse(const Layer &L, FfnMode mode, float threshold, rs_act act, const float *resid, const float *xn,
                      int n, float *y) override;
  void predictor_logits(const Layer &L, const float *resid, int n, float *logits) override;

  // Phases B and C of the sparse FFN over listed neurons of any set of blocks:
  // y[n][d] = sum over entries k and rows j in the entry's mask of
  // act(gate, up . xn[j]) * down, each row's terms summed by chunks (sparse::kChunk).
  // Used for a layer's own FFN, a hybrid step's cold neurons and an emulated device's
  // hot ones, so all of them add the same terms the same way.
  void ffn_blocks(const NeuronBlocks &B, const sparse::NeuronList &list, const sparse::GateValues &gates,
                  rs_act act, const float *xn, int n, float *y);
  // Exact mode over the neurons not flagged in hot[n_ff] (a hybrid step's CPU side):
  // their gates, then ffn_blocks over those with gate > 0. Returns the (row, neuron)
  // pairs computed.
  uint64_t ffn_cold_exact(const Layer &L, const uint8_t *hot, rs_act act, const float *xn, int n, float *y);
  // y[n][W.rows] = x . W^T for the rows not flagged in skip[W.rows] (the others are left
  // as they were); each value bit-identical to matmul's.
  void matmul_rows(const Weight &W, const float *x, int n, const uint8_t *skip, float *y);

 private:
  const rs_matmul_kernels &kernels(rs_type t);
  // Rows per task of a one-row matmul.
  int64_t gen_chunk_rows(int64_t rows) const;
  // matmul_rows over W.x8 (the 8-row repacked layout) with its kernel.
  void matmul_x8(const Weight &W, const rs_matmul_kernels &k, const uint8_t *a, size_t astride, int n, float *y);
  // Prompt (many activation rows) matmul work split into tasks: chunks of `chunk` row
  // units (rows or x8 groups) x blocks of 64 activation rows; fn(u0, u1, c0, c1).
  void prompt_tiles(int64_t units, int64_t chunk, int n, const std::function<void(int64_t, int64_t, int, int)> &fn);
  // Converts x[n][cols] to the vec-dot type of `type`; returns the rows and their stride.
  const void *convert_activations(rs_type type, const float *x, int n, int64_t cols, size_t *stride);

  ThreadPool pool_;
  rs_isa isa_;
  std::vector<uint8_t> act_buf_;
  std::vector<std::vector<float>> mt_part_;  // per thread: matmul_t's partial sums
  std::vector<std::vector<float>> thread_scratch_;  // per thread: attention scores / dequantised rows
  // Sparse FFN (backend_cpu_sparse.cpp, backend_cpu_sparse_row.cpp): one row's active
  // list from the predictor, and phases B and C fused for one row.
  void predict_active_row(const Layer &L, const float *resid, float threshold);
  // The predictor's first stage for n rows: sp_z1_ = relu(fc1 . resid).
  void predictor_hidden(const Layer &L, const float *resid, int n);
  // Phases B and C fused for one row; a: xn converted to the up rows' vec-dot type.
  void ffn_blocks_row(const NeuronBlocks &B, const sparse::NeuronList &list, const sparse::GateValues &gates,
                      rs_act act, const uint8_t *a, float *y);
  // Phase C for split Q4_0 down rows (down_int8), one thread's output slice [o0, o1).
  void down_int8_slice(const Weight &D, const sparse::NeuronList &list, const float *hb, int n,
                       sparse::ChunkedRows &acc, int64_t o0, int64_t o1);
  // Phase A's list from scores sel[n][n_ff] (> threshold when strict, else >=), leaving
  // out neurons flagged in skip (may be null): sp_list_, and for several rows each
  // entry's row mask in sp_emask_. Returns the (row, neuron) pairs.
  uint64_t list_selected(const float *sel, int n, int64_t n_ff, float threshold, bool strict, const uint8_t *skip);
  std::vector<float> sp_z1_, sp_logits_, sp_h_;
  std::vector<float> sp_part_;                    // one row: partial sums per chunk of neurons
  std::vector<int64_t> sp_bounds_;                // one row: where each chunk starts in the list
  std::vector<uint8_t> sp_touched_;               // one row: chunks whose partial sum got a term
  std::vector<std::vector<float>> sp_tpart_;      // several rows: partial sums per thread
  std::vector<int64_t> sp_slice_n_;               // one row: active neurons per slice
  std::vector<uint64_t> sp_emask_;                // several rows: each list entry's rows
  std::vector<uint64_t> sp_nmask_;                // several rows: each neuron's rows
  std::vector<int32_t> sp_list_;
  std::vector<uint8_t> sp_act2_;
};

}  // namespace rs
