#include "backend_cpu.h"

#include "fault_guard.h"

#include "rs_sparse.h"
#include "sparse_ffn_common.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>

namespace rs {

namespace {
// Per-row steps over at most this many rows run on the calling thread: cheaper than a
// pool barrier (~0.1-0.2 ms on a busy 2-core machine, measured).
constexpr int kInlineRows = 8;
}  // namespace

CpuBackend::CpuBackend(int n_threads, rs_isa isa, int max_ctx)
    : pool_(n_threads), isa_(isa), thread_scratch_(pool_.size()) {
  for (auto &s : thread_scratch_) s.resize(static_cast<size_t>(std::max(max_ctx, 1)));
}

int64_t CpuBackend::gen_chunk_rows(int64_t rows) const {
  // Bandwidth-bound (one activation row): two long chunks per thread. Each chunk is one
  // sequential stream for the hardware prefetcher and one hand-out of the pool's shared
  // task counter; 16 chunks per thread cost 2.7x the time of 2 on a 0.6 MB matrix and
  // 10% on a 9 MB one (measured, 2 threads, cold cache). Two rather than one leaves some
  // balance when a thread is descheduled.
  return std::max<int64_t>(16, (rows / (pool_.size() * 2) + 15) / 16 * 16);
}

const rs_matmul_kernels &CpuBackend::kernels(rs_type t) {
  const rs_matmul_kernels *k = rs_cpu_matmul_kernels(t, isa_);
  if (!k) throw UnsupportedError(std::string("no CPU kernels for weight type ") + rs_type_get_traits(t)->name);
  return *k;
}

const void *CpuBackend::convert_activations(rs_type type, const float *x, int n, int64_t cols, size_t *stride) {
  rs_type vt = rs_type_get_traits(type)->vec_dot_type;
  if (vt == RS_TYPE_F32) {
    *stride = cols * sizeof(float);
    return x;
  }
  size_t rs = rs_row_size(vt, cols);
  if (act_buf_.size() < rs * n) act_buf_.resize(rs * n);
  uint8_t *dst = act_buf_.data();
  rs_from_float_fn conv = kernels(type).from_float;
  // A few rows are cheaper inline than a pool barrier (~0.1-0.2 ms on a busy machine).
  if (n <= kInlineRows) {
    for (int r = 0; r < n; r++) conv(x + r * cols, dst + r * rs, cols);
  } else {
    pool_.run(n, [&](int r, int) { conv(x + r * cols, dst + r * rs, cols); });
  }
  *stride = rs;
  return dst;
}

void CpuBackend::matmul(const Weight &W, const float *x, int n, float *y) { matmul_rows(W, x, n, nullptr, y); }

void CpuBackend::matmul_rows(const Weight &W, const float *x, int n, const uint8_t *skip, float *y) {
  // Rows flagged in skip (may be null) are left alone; the others get the same kernels
  // on the same rows, so the same bits (gemm equals vec_dot per value).
  const rs_matmul_kernels &k = kernels(W.type);
  size_t astride;
  const uint8_t *a = static_cast<const uint8_t *>(convert_activations(W.type, x, n, W.cols, &astride));
  const int64_t rows = W.rows;
  if (W.plain_discarded && !(k.gemm_x8 && !skip))  // every ISA with a kernel table for Q4_0 has gemm_x8 today
    throw std::logic_error("matmul: the plain rows of a repacked matrix were discarded (--no-mmap) and this ISA has no x8 kernel");
  if (W.x8 && k.gemm_x8 && !skip) {  // (skip: only exact mode's gate, never repacked)
    matmul_x8(W, k, a, astride, n, y);
    return;
  }
  if (n == 1) {
    const int64_t chunk = gen_chunk_rows(rows);
    const int n_chunks = static_cast<int>((rows + chunk - 1) / chunk);
    // Runs of rows not skipped through gemm with one activation row: the same bits as
    // vec_dot per row, and a kernel may take several rows side by side (rows_f).
    pool_.run(n_chunks, [&](int c, int) {
      const int64_t r0 = c * chunk, r1 = std::min(rows, r0 + chunk);
      for (int64_t r = r0; r < r1;) {
        if (skip && skip[r]) {
          r++;
          continue;
        }
        int64_t e = r + 1;
        while (e < r1 && !(skip && skip[e])) e++;
        k.gemm(W.cols, static_cast<int>(e - r), 1, W.row(r), W.stride, a, astride, y + r, static_cast<size_t>(rows));
        r = e;
      }
    });
    return;
  }
  // Compute-bound: tiles of 32 weight rows x activation rows; a tile's runs of rows
  // not skipped.
  prompt_tiles(rows, 32, n, [&](int64_t rstart, int64_t r1, int c0, int c1) {
    for (int64_t r0 = rstart; r0 < r1;) {
      if (skip && skip[r0]) {
        r0++;
        continue;
      }
      int64_t e = r0 + 1;
      while (e < r1 && !(skip && skip[e])) e++;
      k.gemm(W.cols, static_cast<int>(e - r0), c1 - c0, W.row(r0), W.stride, a + c0 * astride, astride,
             y + static_cast<size_t>(c0) * rows + r0, static_cast<size_t>(rows));
      r0 = e;
    }
  });
}

void CpuBackend::matmul_x8(const Weight &W, const rs_matmul_kernels &k, const uint8_t *a, size_t astride, int n,
                           float *y) {
  // W.x8 holds groups of 8 rows; the kernel computes whole groups, each output in one
  // order whatever the shape, so decode and prompt give a row the same bits.
  const int64_t rows = W.rows, ng = rows / 8;
  const size_t gbytes = 8 * W.row_bytes;
  auto run = [&](int64_t g0, int64_t g1, int c0, int c1) {  // groups g0..g1 x activation rows c0..c1
    k.gemm_x8(W.cols, static_cast<int>(g1 - g0), c1 - c0, W.x8 + g0 * gbytes, a + static_cast<size_t>(c0) * astride,
              astride, y + static_cast<size_t>(c0) * rows + 8 * g0, rows);
  };
  if (n == 1) {
    const int64_t chunk = std::max<int64_t>(1, gen_chunk_rows(rows) / 8);
    const int n_chunks = static_cast<int>((ng + chunk - 1) / chunk);
    pool_.run(n_chunks, [&](int c, int) { run(c * chunk, std::min(ng, (c + 1) * chunk), 0, 1); });
    return;
  }
  prompt_tiles(ng, 4, n, run);  // tiles of 4 groups (32 rows, as matmul_rows' tiles)
}

void CpuBackend::prompt_tiles(int64_t units, int64_t chunk, int n,
                              const std::function<void(int64_t, int64_t, int, int)> &fn) {
  // Each chunk of weight rows stays in cache while a block of 64 activation rows passes
  // over it; one task per (chunk, block).
  const int col_block = 64;
  const int n_row_chunks = static_cast<int>((units + chunk - 1) / chunk);
  const int n_col_blocks = (n + col_block - 1) / col_block;
  pool_.run(n_row_chunks * n_col_blocks, [&](int t, int) {
    const int rc = t % n_row_chunks, cb = t / n_row_chunks;
    fn(rc * chunk, std::min(units, (rc + 1) * chunk), cb * col_block, std::min(n, (cb + 1) * col_block));
  });
}

void CpuBackend::matmul_multi(const Weight *const *W, int count, const float *x, int n, float *const *y) {
  // One job for all matrices (one activation conversion, one barrier, and the threads
  // move from one matrix to the next without waiting): generation only, where the small
  // attention matrices are dominated by those fixed costs. Needs one activation type.
  bool same = n == 1 && count <= 4;
  for (int m = 1; same && m < count; m++)
    same = rs_type_get_traits(W[m]->type)->vec_dot_type == rs_type_get_traits(W[0]->type)->vec_dot_type &&
           W[m]->cols == W[0]->cols;
  if (!same) {
    Backend::matmul_multi(W, count, x, n, y);
    return;
  }
  const rs_matmul_kernels *k[4];
  int64_t chunk[4];
  int first[5] = {0};
  size_t astride;
  const uint8_t *a = static_cast<const uint8_t *>(convert_activations(W[0]->type, x, 1, W[0]->cols, &astride));
  for (int m = 0; m < count; m++) {
    k[m] = &kernels(W[m]->type);
    if (W[m]->plain_discarded && !k[m]->gemm_x8)
      throw std::logic_error("matmul: the plain rows of a repacked matrix were discarded (--no-mmap) and this ISA has no x8 kernel");
    chunk[m] = gen_chunk_rows(W[m]->rows);  // a multiple of 16: whole groups of x8 rows
    first[m + 1] = first[m] + static_cast<int>((W[m]->rows + chunk[m] - 1) / chunk[m]);
  }
  pool_.run(first[count], [&](int t, int) {
    int m = 0;
    while (t >= first[m + 1]) m++;
    const Weight &w = *W[m];
    const int64_t r0 = (t - first[m]) * chunk[m], r1 = std::min(w.rows, r0 + chunk[m]);
    if (w.x8 && k[m]->gemm_x8)
      k[m]->gemm_x8(w.cols, static_cast<int>((r1 - r0) / 8), 1, w.x8 + r0 * w.row_bytes, a, 0, &y[m][r0], 0);
    else
      for (int64_t r = r0; r < r1; r++) k[m]->vec_dot(w.cols, &y[m][r], w.row(r), a);
  });
}

void CpuBackend::matmul_t(const Weight &Wt, const float *h, int n, float *y) {
  // y[j] = sum_i h[j][i] * Wt.row(i): the dense down projection of PowerInfer files,
  // whose rows are neurons. Split by slices of the output dimension (whole quantisation
  // blocks, multiples of 16 floats): each thread reads its slice of every row, and each
  // output float is summed by one thread, in chunks of neurons exactly as the sparse FFN
  // sums it (sparse::kChunk), so the sparse modes can equal this bit for bit and no
  // result depends on the thread count. A neuron whose activation is zero adds nothing:
  // its row is skipped (in ReLU models that is most of them).
  const int64_t d = Wt.cols, n_ff = Wt.rows;
  const sparse::OutputSlices slices(Wt.type, d, 4 * pool_.size());
  const rs_isa isa = isa_;
  std::memset(y, 0, static_cast<size_t>(n) * d * sizeof(float));
  mt_part_.resize(static_cast<size_t>(pool_.size()));
  pool_.run(slices.count, [&](int s, int th) {
    const int64_t o0 = slices.begin(s), o1 = slices.end(s);
    const size_t off = rs_row_size(Wt.type, o0);
    sparse::ChunkedRows acc(mt_part_[static_cast<size_t>(th)], y, n, d, o0, o1);
    for (int64_t i = 0; i < n_ff; i++) {
      const uint8_t *row = Wt.row(i) + off;
      for (int j = 0; j < n; j++) {
        const float hv = h[static_cast<size_t>(j) * n_ff + i];
        if (hv != 0.f) rs_axpy_row(isa, Wt.type, acc.partial(j, static_cast<int32_t>(i)), hv, row, o1 - o0);
      }
    }
    acc.finish();
  });
}

void CpuBackend::get_rows(const Weight &W, const int32_t *ids, int n, float *y) {
  const rs_matmul_kernels &k = kernels(W.type);
  // On the caller's thread, outside the pool's tasks: guarded on its own (fault_guard.h).
  if (!guarded_reads([&] {
        for (int r = 0; r < n; r++) k.to_float(W.row(ids[r]), y + static_cast<size_t>(r) * W.cols, W.cols);
      }))
    throw ModelFileError(fault::kFaultedMessage);
}

void CpuBackend::rmsnorm(const float *x, const float *w, int n, int d, float eps, float *y) {
  if (n <= kInlineRows) {
    for (int r = 0; r < n; r++) rs_rmsnorm(y + static_cast<size_t>(r) * d, x + static_cast<size_t>(r) * d, w, d, eps);
    return;
  }
  pool_.run(n, [&](int r, int) { rs_rmsnorm(y + static_cast<size_t>(r) * d, x + static_cast<size_t>(r) * d, w, d, eps); });
}

void CpuBackend::rope(float *q, float *k, const BatchView &b, int n_head, int n_head_kv, int head_dim,
                      float freq_base) {
  if (b.n <= kInlineRows) {
    for (int r = 0; r < b.n; r++) {
      rs_rope(q + static_cast<size_t>(r) * n_head * head_dim, n_head, head_dim, b.pos[r], freq_base);
      rs_rope(k + static_cast<size_t>(r) * n_head_kv * head_dim, n_head_kv, head_dim, b.pos[r], freq_base);
    }
    return;
  }
  pool_.run(b.n, [&](int r, int) {
    rs_rope(q + static_cast<size_t>(r) * n_head * head_dim, n_head, head_dim, b.pos[r], freq_base);
    rs_rope(k + static_cast<size_t>(r) * n_head_kv * head_dim, n_head_kv, head_dim, b.pos[r], freq_base);
  });
}

void CpuBackend::kv_store(const KvView &cache, int layer, const BatchView &b, const float *k, const float *v) {
  const int kvd = cache.kv_dim, hd = cache.head_dim;
  for (int r = 0; r < b.n; r++)
    for (int h = 0; h < cache.n_head_kv; h++) {
      const size_t src = static_cast<size_t>(r) * kvd + static_cast<size_t>(h) * hd;
      const size_t dst = static_cast<size_t>(b.pos[r]) * hd;
      rs_f32_to_f16_row(k + src, cache.k_head(layer, b.seq[r], h) + dst, hd);
      rs_f32_to_f16_row(v + src, cache.v_head(layer, b.seq[r], h) + dst, hd);
    }
}

void CpuBackend::attention(const KvView &cache, int layer, const BatchView &b, const float *q, int n_head,
                           int n_head_kv, int head_dim, float *out) {
  // One task per (row, KV head): the query heads sharing a KV head run together
  // (rs_attention_gqa reads each cached row once for the group).
  const int group = n_head / n_head_kv;
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  int max_len = 1;
  for (int r = 0; r < b.n; r++) max_len = std::max(max_len, b.pos[r] + 1);
  for (auto &sc : thread_scratch_)
    if (sc.size() < static_cast<size_t>(group) * max_len) sc.resize(static_cast<size_t>(group) * max_len);
  const rs_isa isa = isa_;
  pool_.run(b.n * n_head_kv, [&](int t, int th) {
    const int r = t / n_head_kv, hk = t % n_head_kv;
    const int seq = b.seq[r], len = b.pos[r] + 1;
    const size_t h0 = static_cast<size_t>(r) * n_head + static_cast<size_t>(hk) * group;
    rs_attention_gqa(isa, out + h0 * head_dim, q + h0 * head_dim, group, cache.k_head(layer, seq, hk),
                     cache.v_head(layer, seq, hk), len, head_dim, static_cast<size_t>(head_dim), scale,
                     thread_scratch_[static_cast<size_t>(th)].data());
  });
}

void CpuBackend::ffn_act(rs_act act, const float *gate, const float *up, int n, int n_ff, float *h) {
  if (n <= kInlineRows) {
    for (int r = 0; r < n; r++) {
      const size_t o = static_cast<size_t>(r) * n_ff;
      rs_ffn_act(act, h + o, gate + o, up + o, n_ff);
    }
    return;
  }
  pool_.run(n, [&](int r, int) {
    size_t o = static_cast<size_t>(r) * n_ff;
    rs_ffn_act(act, h + o, gate + o, up + o, n_ff);
  });
}

void CpuBackend::add(float *x, const float *y, int64_t n) {
  for (int64_t i = 0; i < n; i++) x[i] += y[i];
}

}  // namespace rs
