// The sparse FFN on the CPU. Three phases, each split across threads so that every
// output float is produced by one thread in a fixed order (bit-identical results for
// any thread count, no reduction buffers):
//   A. which neurons: the predictor (fc2 . relu(fc1 . resid) >= threshold), or, in exact
//      mode, the dense gate (> 0). A bit mask of rows per neuron; their union, sorted.
//   B. h for each (neuron, row) pair in the union: gate and up dot products from the
//      neuron's packed block (one contiguous read), then the activation.
//   C. y += h * down row, by slices of the output dimension: each thread walks all
//      active neurons in order over its slice.
#include <algorithm>
#include <cstring>

#include "backend_cpu.h"
#include "rs_sparse.h"

namespace rs {

namespace {

constexpr int kMaxRows = 64;  // rows per sparse step: one bit each in a uint64 mask

inline float activate(rs_act act, float g, float u) {
  if (g <= 0.f) return 0.f;
  if (act == RS_ACT_DRELU) return u > 0.f ? g * u : 0.f;
  return g * u;  // relu_glu
}

inline void prefetch_bytes(const uint8_t *p, size_t bytes) {
  // Every line of a neuron's rows a few neurons ahead: each active neuron is a jump the
  // hardware prefetcher cannot predict.
  for (size_t o = 0; o < bytes; o += 64) __builtin_prefetch(p + o, 0, 3);  // into L1: measured best (vs L2/NTA)
}

constexpr int kAhead = 4;  // neurons to prefetch ahead (phase B)

}  // namespace

void CpuBackend::predictor_logits(const Layer &L, const float *resid, int n, float *logits) {
  const int64_t rank = L.fc1.rows, n_ff = L.fc2.rows;
  sp_z1_.resize(static_cast<size_t>(n) * rank);
  matmul(L.fc1, resid, n, sp_z1_.data());
  for (float &v : sp_z1_) v = v > 0.f ? v : 0.f;
  const std::vector<uint16_t> &t = L.packed.fc2t;
  if (t.empty()) {  // not repacked: the file's layout
    matmul(L.fc2, sp_z1_.data(), n, logits);
    return;
  }
  // logits[j] = sum_r z1[j][r] * fc2t[r], by slices of the neurons (each float summed in
  // rank order by one thread).
  const int n_slices = std::min<int>(pool_.size(), static_cast<int>(n_ff / 16));
  const rs_isa isa = isa_;
  pool_.run(n_slices, [&](int s, int) {
    const int64_t i0 = n_ff * s / n_slices / 16 * 16, i1 = s + 1 == n_slices ? n_ff : n_ff * (s + 1) / n_slices / 16 * 16;
    for (int j = 0; j < n; j++) {
      float *out = logits + static_cast<size_t>(j) * n_ff;
      std::memset(out + i0, 0, (i1 - i0) * sizeof(float));
      const float *z = sp_z1_.data() + static_cast<size_t>(j) * rank;
      for (int64_t r = 0; r < rank; r++)
        if (z[r] != 0.f) rs_axpy_row(isa, RS_TYPE_F16, out + i0, z[r], t.data() + r * n_ff + i0, i1 - i0);
    }
  });
}

uint64_t CpuBackend::ffn_sparse(const Layer &L, FfnMode mode, float threshold, rs_act act, const float *resid,
                                const float *xn, int n, float *y) {
  if (n < 1 || n > kMaxRows) throw InvalidArgError("sparse FFN takes 1 to 64 rows per step");
  if (act == RS_ACT_SWIGLU) throw InvalidArgError("the sparse FFN needs a ReLU-type activation");
  const PackedFfn &P = L.packed;
  const int64_t n_ff = P.up.rows, d = P.up.cols;

  // ---- A: the active set ----
  sp_logits_.resize(static_cast<size_t>(n) * n_ff);
  float *sel = sp_logits_.data();
  if (mode == FfnMode::Predictor) {
    predictor_logits(L, resid, n, sel);
  } else {
    matmul(L.gate, xn, n, sel);  // exact mode: the gate itself (the file's contiguous matrix), reused in phase B
    threshold = 0.f;
  }
  sp_mask_.assign(static_cast<size_t>(n_ff), 0);
  uint64_t *mask = sp_mask_.data();
  const bool strict = mode == FfnMode::Exact;  // gate > 0 (a zero gate gives h = 0)
  sp_list_.clear();
  uint64_t pairs = 0;
  if (n == 1) {
    // One row (generation): the list directly, in one pass.
    for (int64_t i = 0; i < n_ff; i++)
      if (strict ? sel[i] > threshold : sel[i] >= threshold) {
        mask[i] = 1;
        sp_list_.push_back(static_cast<int32_t>(i));
      }
    pairs = sp_list_.size();
  } else {
    for (int j = 0; j < n; j++) {
      const float *s = sel + static_cast<size_t>(j) * n_ff;
      const uint64_t bit = 1ull << j;
      for (int64_t i = 0; i < n_ff; i++)
        if (strict ? s[i] > threshold : s[i] >= threshold) mask[i] |= bit;
    }
    for (int64_t i = 0; i < n_ff; i++)
      if (mask[i]) {
        sp_list_.push_back(static_cast<int32_t>(i));
        pairs += static_cast<uint64_t>(__builtin_popcountll(mask[i]));
      }
  }
  const int64_t n_act = static_cast<int64_t>(sp_list_.size());
  for (int j = 0; j < n; j++) std::memset(y + static_cast<size_t>(j) * d, 0, d * sizeof(float));
  if (n_act == 0) return 0;

  // ---- B: h per (neuron, row) ----
  size_t ustride = 0, gstride = 0;
  const uint8_t *uq = static_cast<const uint8_t *>(convert_activations(P.up.type, xn, n, d, &ustride));
  const uint8_t *gq = uq;
  gstride = ustride;
  if (mode == FfnMode::Predictor &&
      rs_type_get_traits(P.gate.type)->vec_dot_type != rs_type_get_traits(P.up.type)->vec_dot_type) {
    // Gate and up quantised differently: keep the up activations, convert again for the gate.
    sp_act2_.assign(uq, uq + ustride * n);
    uq = sp_act2_.data();
    gq = static_cast<const uint8_t *>(convert_activations(P.gate.type, xn, n, d, &gstride));
  }
  const rs_matmul_kernels &ku = kernels(P.up.type);
  const rs_matmul_kernels &kg = kernels(mode == FfnMode::Predictor ? P.gate.type : P.up.type);
  sp_h_.resize(static_cast<size_t>(n_act) * n);
  float *hb = sp_h_.data();
  const int32_t *list = sp_list_.data();
  const size_t block = P.block;
  const int64_t chunk = 32;
  const int n_chunks = static_cast<int>((n_act + chunk - 1) / chunk);
  const bool fused = n == 1 && (mode == FfnMode::Exact || P.gate.type == P.up.type);
  const rs_isa isa = isa_;
  pool_.run(n_chunks, [&](int c, int) {
    const int64_t k1 = std::min(n_act, (c + 1) * chunk);
    if (fused) {
      // One row (generation): the rows of `group` neurons in one pass (rs_dot_rows), so
      // their cache misses overlap; each result equals vec_dot's bit for bit.
      const int group = mode == FfnMode::Predictor ? 2 : 4;  // 4 rows per call either way
      for (int64_t k0 = c * chunk; k0 < k1; k0 += group) {
        const int m = static_cast<int>(std::min<int64_t>(group, k1 - k0));
        for (int q = 0; q < m; q++) {
          const int64_t k = k0 + q + kAhead;
          if (k < k1) {
            if (mode == FfnMode::Predictor) prefetch_bytes(P.gate.row(list[k]), P.gate.row_bytes + P.up.row_bytes);
            else prefetch_bytes(P.up.row(list[k]), P.up.row_bytes);
          }
        }
        const void *rows[4];
        float dots[4];
        int nr = 0;
        for (int q = 0; q < m; q++) {
          if (mode == FfnMode::Predictor) rows[nr++] = P.gate.row(list[k0 + q]);
          rows[nr++] = P.up.row(list[k0 + q]);
        }
        rs_dot_rows(isa, P.up.type, d, nr, rows, uq, dots);
        for (int q = 0; q < m; q++) {
          const int32_t i = list[k0 + q];
          const float g = mode == FfnMode::Predictor ? dots[2 * q] : sel[i];
          const float u = mode == FfnMode::Predictor ? dots[2 * q + 1] : dots[q];
          hb[k0 + q] = activate(act, g, u);
        }
      }
      return;
    }
    for (int64_t k = c * chunk; k < k1; k++) {
      const int32_t i = list[k];
      if (k + kAhead < k1) {
        const uint8_t *nb = P.mem.get() + static_cast<size_t>(list[k + kAhead]) * block;
        // Predictor mode reads gate and up; exact mode only up (the gate came from the dense matrix).
        if (mode == FfnMode::Predictor) prefetch_bytes(nb, P.gate.row_bytes + P.up.row_bytes);
        else prefetch_bytes(P.up.row(list[k + kAhead]), P.up.row_bytes);
      }
      for (uint64_t m = mask[i]; m; m &= m - 1) {
        const int j = __builtin_ctzll(m);
        float g, u;
        if (mode == FfnMode::Predictor) kg.vec_dot(d, &g, P.gate.row(i), gq + j * gstride);
        else g = sel[static_cast<size_t>(j) * n_ff + i];
        ku.vec_dot(d, &u, P.up.row(i), uq + j * ustride);
        hb[k * n + j] = activate(act, g, u);
      }
    }
  });

  // ---- C: y += h * down_t row, by output slices ----
  const Weight &D = P.down;
  const int64_t bs = rs_type_get_traits(D.type)->block_size;
  const int64_t n_blocks = d / bs;
  // One slice per thread: long contiguous reads of each down row.
  const int n_slices = static_cast<int>(std::min<int64_t>(n_blocks, pool_.size()));
  pool_.run(n_slices, [&](int s, int) {
    const int64_t o0 = n_blocks * s / n_slices * bs, o1 = n_blocks * (s + 1) / n_slices * bs;
    const size_t off = rs_row_size(D.type, o0);
    const size_t slice_bytes = rs_row_size(D.type, o1 - o0);
    for (int64_t k = 0; k < n_act; k++) {
      const int32_t i = list[k];
      const uint8_t *row = D.row(i) + off;
      if (k + kAhead < n_act) prefetch_bytes(D.row(list[k + kAhead]) + off, slice_bytes);
      for (uint64_t m = mask[i]; m; m &= m - 1) {
        const int j = __builtin_ctzll(m);
        const float h = hb[k * n + j];
        if (h != 0.f) rs_axpy_row(isa, D.type, y + static_cast<size_t>(j) * d + o0, h, row, o1 - o0);
      }
    }
  });
  return pairs;
}

}  // namespace rs
