// The sparse FFN for one row (generation), phases B and C of backend_cpu_sparse.cpp in
// one pass over any NeuronBlocks: each listed neuron's block [gate | up | down] is read once, its h computed
// and h * down added at once, while the block is in L1.
//
// Work split: each chunk of neurons (sparse::kChunk) has its own partial sum; each
// thread takes one contiguous run of chunks holding about its share of the active
// neurons (one long prefetch stream, one hand-out of the pool's task counter); the
// partial sums are then added in chunk order by output slices. Bit-identical for any
// thread count (see kChunk).
//
// The down rows of 4 neurons at a time go into the partial sum in one pass over it
// (rs_axpy_rows: same bits as one row at a time). Split Q4_0 down rows (down_int8) go in
// groups of up to RS_I8_GROUP consecutive neurons of a chunk with h != 0
// (rs_axpy_q4_0s_i8), the grouping the several-rows path uses too.
//
// Prefetching: each block is requested twice, into L1 4 neurons ahead and into the outer
// caches (prefetcht2) 8 ahead; re-requesting lines recovers the ones dropped while the
// core's miss buffers were full. Measured on the 1b Q4_0 shape (2 threads, 885 of 8192
// neurons of 3.4 KB): on the AVX2 EPYC (Zen 1), 165 us per layer with the L1 request
// alone, 115-120 us with a non-temporal second request 8 ahead (135 us with that alone);
// on the AVX-512 EPYC, predictor-mode decode 105 tok/s with prefetcht2 8 ahead, 96 with
// the non-temporal request, 95 with no prefetch (alternated runs, relu-serve-native).
#include <algorithm>
#include <cstring>

#include "backend_cpu.h"
#include "rs_sparse.h"
#include "sparse_ffn_common.h"

namespace rs {

using sparse::kChunk;

namespace {
constexpr int kAhead = 4;  // neurons ahead: L1 request
constexpr int kFar = 8;    // neurons ahead: outer-cache request
// Tasks per thread in the fused job: with one per thread, a thread the OS deschedules
// mid-job holds up the step with its whole share; smaller tasks let the others take it.
constexpr int kTasksPerThread = 4;
}  // namespace

void CpuBackend::ffn_blocks_row(const NeuronBlocks &B, const sparse::NeuronList &list,
                                const sparse::GateValues &gates, rs_act act, const uint8_t *a, float *y) {
  const int64_t d = B.up.cols;
  const int64_t n_act = list.n;
  const bool gate_from_blocks = gates.v == nullptr;
  // Chunk c's entries are bounds[c] .. bounds[c + 1] - 1 (entries are in id order).
  const int64_t last_id = list.id(n_act - 1);
  const int n_chunks = static_cast<int>(last_id / kChunk + 1);
  sp_bounds_.resize(static_cast<size_t>(n_chunks) + 1);
  int64_t *bounds = sp_bounds_.data();
  for (int64_t c = 0, k = 0; c <= n_chunks; c++) {
    while (k < n_act && list.id(k) < c * kChunk) k++;
    bounds[c] = k;
  }
  sp_part_.resize(static_cast<size_t>(n_chunks) * d);
  sp_touched_.assign(static_cast<size_t>(n_chunks), 0);
  float *part = sp_part_.data();
  uint8_t *touched = sp_touched_.data();
  const rs_isa isa = isa_;
  const rs_type dt = B.down.type;
  const bool split = B.down_split;
  const int32_t *blk = list.blk;
  const int n_tasks = static_cast<int>(std::min<int64_t>(n_act, kTasksPerThread * pool_.size()));
  // Task t: the chunks starting from list position n_act * t / n_tasks on, so the
  // threads get about as many active neurons each.
  auto first_chunk = [&](int t) {
    if (t == n_tasks) return n_chunks;
    const int64_t p = n_act * t / n_tasks;
    int c = 0;
    while (bounds[c] < p) c++;
    return c;
  };
  // A block's rows, for prefetching: from its first row to the end of its down row.
  const uint8_t *(*first_row)(const NeuronBlocks &, int32_t) = [](const NeuronBlocks &nb, int32_t b) {
    return nb.has_gate ? nb.gate.row(b) : nb.up.row(b);
  };
  const size_t span = static_cast<size_t>(B.down.row(0) + B.down.row_bytes - first_row(B, 0));
  constexpr int kGroup = 4;  // neurons per step: their dots in one or two passes, their down rows in one
  pool_.run(n_tasks, [&](int t, int) {
    const int c0 = first_chunk(t), c1 = first_chunk(t + 1);
    const int64_t kend = bounds[c1];
    for (int c = c0; c < c1; c++) {
      const int64_t k1 = bounds[c + 1];
      if (bounds[c] == k1) continue;
      float *acc = part + static_cast<size_t>(c) * d;
      std::memset(acc, 0, d * sizeof(float));
      float ih[RS_I8_GROUP];
      const void *irow[RS_I8_GROUP];
      int ni = 0;
      for (int64_t k0 = bounds[c]; k0 < k1; k0 += kGroup) {
        const int m = static_cast<int>(std::min<int64_t>(kGroup, k1 - k0));
        for (int q = 0; q < m; q++) {
          if (k0 + q + kAhead < kend) sparse::prefetch_l1(first_row(B, blk[k0 + q + kAhead]), span);
          if (k0 + q + kFar < kend) sparse::prefetch_far(first_row(B, blk[k0 + q + kFar]), span);
        }
        const void *rows[2 * kGroup];
        float dots[2 * kGroup];
        int nr = 0;
        for (int q = 0; q < m; q++) {
          if (gate_from_blocks) rows[nr++] = B.gate.row(blk[k0 + q]);
          rows[nr++] = B.up.row(blk[k0 + q]);
        }
        // Each equals vec_dot bit for bit; up to 4 rows per pass.
        rs_dot_rows(isa, B.up.type, d, nr, rows, a, dots);
        const void *down[kGroup];
        float hs[kGroup];
        int nd = 0;
        for (int q = 0; q < m; q++) {
          const int32_t b = blk[k0 + q];
          const float g = gate_from_blocks ? dots[2 * q] : gates.v[b];
          const float h = sparse::activate(act, g, gate_from_blocks ? dots[2 * q + 1] : dots[q]);
          if (h != 0.f) {
            hs[nd] = h;
            down[nd++] = B.down.row(b);
          }
        }
        if (nd > 0 && split) {
          for (int q = 0; q < nd; q++) {
            ih[ni] = hs[q];
            irow[ni++] = down[q];
            if (ni == RS_I8_GROUP) {
              rs_axpy_q4_0s_i8(isa, acc, ni, ih, irow, d / 32, 0, d / 32);
              ni = 0;
            }
          }
          touched[c] = 1;
        } else if (nd > 0) {
          rs_axpy_rows(isa, dt, acc, nd, hs, down, d);  // == one rs_axpy_row per neuron, in order
          touched[c] = 1;
        }
      }
      if (ni > 0) rs_axpy_q4_0s_i8(isa, acc, ni, ih, irow, d / 32, 0, d / 32);
    }
  });
  // y = the touched chunks' partial sums added in chunk order, by output slices.
  const int n_slices = static_cast<int>(std::min<int64_t>(std::max<int64_t>(d / 16, 1), pool_.size()));
  pool_.run(n_slices, [&](int s, int) {
    const int64_t o0 = d * s / n_slices / 16 * 16, o1 = s + 1 == n_slices ? d : d * (s + 1) / n_slices / 16 * 16;
    std::memset(y + o0, 0, (o1 - o0) * sizeof(float));
    for (int c = 0; c < n_chunks; c++) {
      if (!touched[c]) continue;
      const float *pc = part + static_cast<size_t>(c) * d;
      for (int64_t o = o0; o < o1; o++) y[o] += pc[o];
    }
  });
}

}  // namespace rs
