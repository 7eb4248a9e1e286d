// The sparse FFN on the CPU, in three phases:
//   A. which neurons: the predictor (fc2 . relu(fc1 . resid) >= threshold), or, in exact
//      mode, the dense gate (> 0). The list of neurons any row computes, sorted, with
//      each entry's bit mask of rows.
//   B. h for each (neuron, row) pair in the list: gate and up dot products from the
//      neuron's block (one contiguous read), then the activation.
//   C. y += h * down row, by slices of the output dimension: each thread walks all
//      listed neurons in order over its slice.
// One row (generation) runs B and C fused (backend_cpu_sparse_row.cpp). Phases B and C
// (ffn_blocks) work over any NeuronBlocks: the layer's own packed FFN here, the cold
// neurons of a hybrid step, or an emulated device's hot neurons. Each row's sum over its
// neurons is formed the same way on both paths and in the dense matmul_t (see
// sparse::kChunk), so every output is bit-identical for any thread count, whether or not
// the row shares a step, and between the sparse modes and dense where they compute the
// same neurons.
#include <algorithm>
#include <chrono>
#include <cstring>
#include <stdexcept>

#include "backend_cpu.h"
#include "rs_sparse.h"
#include "sparse_ffn_common.h"

namespace rs {

using sparse::ChunkedRows;
using sparse::GateValues;
using sparse::kMaxRows;
using sparse::NeuronList;

namespace {
constexpr int kAhead = 4;  // neurons to prefetch ahead (phases B and C)
}  // namespace

void CpuBackend::predictor_hidden(const Layer &L, const float *resid, int n) {
  // z1 = relu(fc1 . resid), in the file's type with the matmul kernels (for a quantized
  // fc1 the rows' vec-dot type, as any matmul).
  sp_z1_.resize(static_cast<size_t>(n) * L.fc1.rows);
  matmul(L.fc1, resid, n, sp_z1_.data());
  for (float &v : sp_z1_) v = v > 0.f ? v : 0.f;
}

void CpuBackend::predictor_logits(const Layer &L, const float *resid, int n, float *logits) {
  // scores = fc2 . z1: n_ff dot products of rank r, each with the fc2 row in the file's
  // type (Q4_0 and Q8_0 as integer dot products against z1 quantized to Q8_0), so a
  // token reads exactly the file's predictor bytes. Each score is matmul's value,
  // whatever the thread count.
  predictor_hidden(L, resid, n);
  matmul(L.fc2, sp_z1_.data(), n, logits);
}

void CpuBackend::predict_active_row(const Layer &L, const float *resid, float threshold) {
  // As predictor_logits for one row (the same scores: the same vec_dot per neuron), with
  // the active list built in the same job: each task scores a chunk of neurons and lists
  // its own, and the chunks' lists joined in order are the sorted list.
  predictor_hidden(L, resid, 1);
  const Weight &fc2 = L.fc2;
  const int64_t n_ff = fc2.rows;
  const rs_matmul_kernels &k = kernels(fc2.type);
  size_t astride;
  const void *a = convert_activations(fc2.type, sp_z1_.data(), 1, fc2.cols, &astride);
  // With fc2 repacked 8 rows at a time (dense_repack.cpp), whole groups per chunk, each
  // score in the kernel's one order: matmul's value for any number of rows.
  const bool x8 = fc2.x8 && k.gemm_x8;
  if (fc2.plain_discarded && !x8) throw std::logic_error("predictor fc2: its plain rows were given back (--no-mmap) and this ISA has no 8-row kernel");
  const int64_t chunk = x8 ? gen_chunk_rows(n_ff) / 8 * 8 : gen_chunk_rows(n_ff);
  const int n_chunks = static_cast<int>((n_ff + chunk - 1) / chunk);
  sp_logits_.resize(static_cast<size_t>(n_ff));
  sp_list_.resize(static_cast<size_t>(n_ff));
  sp_slice_n_.assign(static_cast<size_t>(n_chunks), 0);
  float *logits = sp_logits_.data();
  int32_t *list = sp_list_.data();
  const rs_isa isa = isa_;
  pool_.run(n_chunks, [&](int c, int) {
    const int64_t i0 = c * chunk, i1 = std::min(n_ff, i0 + chunk);
    if (x8)
      k.gemm_x8(fc2.cols, static_cast<int>((i1 - i0) / 8), 1, fc2.x8 + i0 * fc2.row_bytes, a, astride, logits + i0, n_ff);
    else  // gemm with one activation row: vec_dot's value per neuron, rows side by side
      k.gemm(fc2.cols, static_cast<int>(i1 - i0), 1, fc2.row(i0), fc2.stride, a, astride, logits + i0,
             static_cast<size_t>(n_ff));
    // Each chunk lists into its own stretch of the list; compacted below.
    sp_slice_n_[static_cast<size_t>(c)] =
        rs_select_ge(isa, logits + i0, i1 - i0, threshold, static_cast<int32_t>(i0), list + i0);
  });
  int64_t m = 0;
  for (int c = 0; c < n_chunks; c++) {
    std::memmove(list + m, list + c * chunk, static_cast<size_t>(sp_slice_n_[static_cast<size_t>(c)]) * sizeof(int32_t));
    m += sp_slice_n_[static_cast<size_t>(c)];
  }
  sp_list_.resize(static_cast<size_t>(m));
}

uint64_t CpuBackend::list_selected(const float *sel, int n, int64_t n_ff, float threshold, bool strict,
                                   const uint8_t *skip) {
  // sel[j][i] passes when > threshold (strict) or >= threshold; neurons with skip[i] set
  // are left out. One row: the list alone; several: each entry's mask of rows.
  sp_list_.clear();
  sp_emask_.clear();
  auto pass = [&](float v) { return strict ? v > threshold : v >= threshold; };
  if (n == 1) {
    for (int64_t i = 0; i < n_ff; i++)
      if ((!skip || !skip[i]) && pass(sel[i])) sp_list_.push_back(static_cast<int32_t>(i));
    return sp_list_.size();
  }
  // Row by row (each row's scores are contiguous), into a mask per neuron.
  sp_nmask_.assign(static_cast<size_t>(n_ff), 0);
  uint64_t *mask = sp_nmask_.data();
  for (int j = 0; j < n; j++) {
    const float *s = sel + static_cast<size_t>(j) * n_ff;
    const uint64_t bit = 1ull << j;
    for (int64_t i = 0; i < n_ff; i++)
      if (pass(s[i])) mask[i] |= bit;
  }
  uint64_t pairs = 0;
  for (int64_t i = 0; i < n_ff; i++) {
    if (!mask[i] || (skip && skip[i])) continue;
    sp_list_.push_back(static_cast<int32_t>(i));
    sp_emask_.push_back(mask[i]);
    pairs += static_cast<uint64_t>(__builtin_popcountll(mask[i]));
  }
  return pairs;
}

uint64_t CpuBackend::ffn_sparse(const Layer &L, FfnMode mode, float threshold, rs_act act, const float *resid,
                                const float *xn, int n, float *y) {
  if (n < 1 || n > kMaxRows) throw InvalidArgError("sparse FFN takes 1 to 64 rows per step");
  if (act == RS_ACT_SWIGLU) throw InvalidArgError("the sparse FFN needs a ReLU-type activation");
  const PackedFfn &P = L.packed;
  const int64_t n_ff = P.up.rows;

  // ---- A: the active set ----
  const auto t_select = std::chrono::steady_clock::now();
  uint64_t pairs = 0;
  GateValues gates;
  if (n == 1 && mode == FfnMode::Predictor && P.gate.type == P.up.type) {
    predict_active_row(L, resid, threshold);
    pairs = sp_list_.size();
  } else {
    sp_logits_.resize(static_cast<size_t>(n) * n_ff);
    float *sel = sp_logits_.data();
    if (mode == FfnMode::Predictor) {
      predictor_logits(L, resid, n, sel);
    } else {
      // Exact mode: the gate itself (the file's contiguous matrix), reused in phase B.
      matmul(L.gate, xn, n, sel);
      threshold = 0.f;
      gates = {sel, n_ff};
    }
    pairs = list_selected(sel, n, n_ff, threshold, mode == FfnMode::Exact, nullptr);  // exact: gate > 0
  }
  select_ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t_select).count();
  NeuronList list;
  list.blk = sp_list_.data();
  list.n = static_cast<int64_t>(sp_list_.size());
  list.mask = n == 1 ? nullptr : sp_emask_.data();
  ffn_blocks(P, list, gates, act, xn, n, y);
  return pairs;
}

uint64_t CpuBackend::ffn_cold_exact(const Layer &L, const uint8_t *hot, rs_act act, const float *xn, int n,
                                    float *y) {
  // Exact mode's selection over the neurons not flagged in hot[] (a hybrid step's CPU
  // side): their gate rows only, each value as the dense gate product computes it.
  const int64_t n_ff = L.gate.rows;
  sp_logits_.resize(static_cast<size_t>(n) * n_ff);
  float *sel = sp_logits_.data();
  matmul_rows(L.gate, xn, n, hot, sel);
  const uint64_t pairs = list_selected(sel, n, n_ff, 0.f, true, hot);
  NeuronList list;
  list.blk = sp_list_.data();
  list.n = static_cast<int64_t>(sp_list_.size());
  list.mask = n == 1 ? nullptr : sp_emask_.data();
  ffn_blocks(L.packed, list, GateValues{sel, n_ff}, act, xn, n, y);
  return pairs;
}

void CpuBackend::ffn_blocks(const NeuronBlocks &B, const NeuronList &list, const GateValues &gates, rs_act act,
                            const float *xn, int n, float *y) {
  const int64_t d = B.up.cols, n_act = list.n;
  if (n_act == 0) {
    std::memset(y, 0, static_cast<size_t>(n) * d * sizeof(float));
    return;
  }
  const bool gate_from_blocks = gates.v == nullptr;
  size_t ustride = 0, gstride = 0;
  const uint8_t *uq = static_cast<const uint8_t *>(convert_activations(B.up.type, xn, n, d, &ustride));
  // One row with gate and up of one type: the fused path.
  if (n == 1 && (!gate_from_blocks || B.gate.type == B.up.type)) {
    ffn_blocks_row(B, list, gates, act, uq, y);
    return;
  }

  // ---- B: h per (entry, row) ----
  const uint8_t *gq = uq;
  gstride = ustride;
  if (gate_from_blocks &&
      rs_type_get_traits(B.gate.type)->vec_dot_type != rs_type_get_traits(B.up.type)->vec_dot_type) {
    // Gate and up quantised differently: keep the up activations, convert again for the gate.
    sp_act2_.assign(uq, uq + ustride * n);
    uq = sp_act2_.data();
    gq = static_cast<const uint8_t *>(convert_activations(B.gate.type, xn, n, d, &gstride));
  }
  const rs_matmul_kernels &ku = kernels(B.up.type);
  const rs_matmul_kernels &kg = kernels(gate_from_blocks ? B.gate.type : B.up.type);
  sp_h_.resize(static_cast<size_t>(n_act) * n);
  float *hb = sp_h_.data();
  const uint64_t one = 1;
  const uint64_t *mask = list.mask;
  const int64_t chunk = 32;
  const int n_chunks = static_cast<int>((n_act + chunk - 1) / chunk);
  const rs_isa isa = isa_;
  pool_.run(n_chunks, [&](int c, int) {
    const int64_t k1 = std::min(n_act, (c + 1) * chunk);
    for (int64_t k = c * chunk; k < k1; k++) {
      const int32_t b = list.blk[k];
      if (k + kAhead < k1) {
        const int32_t nb = list.blk[k + kAhead];
        if (gate_from_blocks) sparse::prefetch_l1(B.gate.row(nb), B.gate.row_bytes);
        sparse::prefetch_l1(B.up.row(nb), B.up.row_bytes);
      }
      for (uint64_t m = mask ? mask[k] : one; m; m &= m - 1) {
        const int j = __builtin_ctzll(m);
        float g, u;
        if (gate_from_blocks) kg.vec_dot(d, &g, B.gate.row(b), gq + j * gstride);
        else g = gates.v[static_cast<size_t>(j) * gates.stride + b];
        ku.vec_dot(d, &u, B.up.row(b), uq + j * ustride);
        hb[k * n + j] = sparse::activate(act, g, u);
      }
    }
  });

  // ---- C: y += h * down row, by output slices ----
  // Each row's terms go into a partial sum per chunk of neurons, added to y when the
  // row's next neuron is in a later chunk (sparse::kChunk).
  const Weight &D = B.down;
  const sparse::OutputSlices slices(D.type, d, pool_.size());
  std::memset(y, 0, static_cast<size_t>(n) * d * sizeof(float));  // ChunkedRows adds into y
  sp_tpart_.resize(static_cast<size_t>(pool_.size()));
  pool_.run(slices.count, [&](int s, int th) {
    const int64_t o0 = slices.begin(s), o1 = slices.end(s);
    const size_t off = rs_row_size(D.type, o0);
    const size_t slice_bytes = rs_row_size(D.type, o1 - o0);
    ChunkedRows acc(sp_tpart_[static_cast<size_t>(th)], y, n, d, o0, o1);
    if (D.type == RS_TYPE_Q4_0 && B.down_split) {
      down_int8_slice(D, list, hb, n, acc, o0, o1);
      acc.finish();
      return;
    }
    for (int64_t k = 0; k < n_act; k++) {
      const int32_t i = list.id(k);
      const uint8_t *row = D.row(list.blk[k]) + off;
      if (k + kAhead < n_act) sparse::prefetch_l1(D.row(list.blk[k + kAhead]) + off, slice_bytes);
      for (uint64_t m = mask ? mask[k] : one; m; m &= m - 1) {
        const int j = __builtin_ctzll(m);
        const float h = hb[k * n + j];
        if (h != 0.f) rs_axpy_row(isa, D.type, acc.partial(j, i), h, row, o1 - o0);
      }
    }
    acc.finish();
  });
}

// Phase C over split Q4_0 down rows (down_int8): each row's terms in groups of up to
// RS_I8_GROUP consecutive neurons of one chunk with h != 0, in neuron order — the groups
// the one-row path forms (backend_cpu_sparse_row.cpp), so a row's bits do not depend on
// the step it shares.
void CpuBackend::down_int8_slice(const Weight &D, const NeuronList &list, const float *hb, int n,
                                 ChunkedRows &acc, int64_t o0, int64_t o1) {
  struct Pending {
    float h[RS_I8_GROUP];
    const void *row[RS_I8_GROUP];
    int count = 0;
    int32_t neuron = 0;  // the group's first neuron (decides its chunk)
  };
  std::vector<Pending> pend(static_cast<size_t>(n));
  const int64_t nbt = D.cols / 32, b0 = o0 / 32, nb = (o1 - o0) / 32;
  auto flush = [&](int j) {
    Pending &p = pend[static_cast<size_t>(j)];
    if (p.count == 0) return;
    rs_axpy_q4_0s_i8(isa_, acc.partial(j, p.neuron), p.count, p.h, p.row, nbt, b0, nb);
    p.count = 0;
  };
  const uint64_t one = 1;
  const size_t slice_bytes = rs_row_size(D.type, o1 - o0);
  for (int64_t k = 0; k < list.n; k++) {
    const int32_t i = list.id(k);
    const uint8_t *row = D.row(list.blk[k]);
    if (k + kAhead < list.n) {  // this slice's scales and nibbles of a later neuron
      const uint8_t *next = D.row(list.blk[k + kAhead]);
      sparse::prefetch_l1(next + 2 * b0, 2 * static_cast<size_t>(nb));
      sparse::prefetch_l1(next + 2 * nbt + 16 * b0, slice_bytes - 2 * static_cast<size_t>(nb));
    }
    for (uint64_t m = list.mask ? list.mask[k] : one; m; m &= m - 1) {
      const int j = __builtin_ctzll(m);
      const float h = hb[k * n + j];
      if (h == 0.f) continue;
      Pending &p = pend[static_cast<size_t>(j)];
      if (p.count > 0 && p.neuron / sparse::kChunk != i / sparse::kChunk) flush(j);
      if (p.count == 0) p.neuron = i;
      p.h[p.count] = h;
      p.row[p.count++] = row;
      if (p.count == RS_I8_GROUP) flush(j);
    }
  }
  for (int j = 0; j < n; j++) flush(j);
}

}  // namespace rs
