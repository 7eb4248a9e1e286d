// Pieces shared by the two sparse FFN paths of the CPU backend (backend_cpu_sparse.cpp:
// active set and several rows; backend_cpu_sparse_row.cpp: one row).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "rs_kernels.h"

namespace rs::sparse {

// The down projection y = sum_i h_i * down_i of every FFN path of PowerInfer-layout
// files (one row, several rows, and the dense matmul_t) is summed the same way: neuron
// i's term goes into the partial sum of its chunk, neurons [kChunk * c, kChunk * (c + 1)),
// in neuron order; the partial sums of the chunks that received a term are then added to
// y in chunk order. Neurons with h = 0 add nothing on any path. So results are
// bit-identical across thread counts, between a row alone and in a batch, and between
// exact mode and dense (and predictor mode with a predictor that misses nothing).
constexpr int64_t kChunk = 512;

constexpr int kMaxRows = 64;  // rows per sparse step: one bit each in a uint64 mask

inline float activate(rs_act act, float g, float u) {
  if (g <= 0.f) return 0.f;
  if (act == RS_ACT_DRELU) return u > 0.f ? g * u : 0.f;
  return g * u;  // relu_glu
}

// The neurons a sparse FFN step computes, in increasing neuron id: entry k is block
// blk[k] of a NeuronBlocks; its neuron id (which decides its chunk, kChunk) is
// id_of[blk[k]], or blk[k] itself when id_of is null (a layer's whole FFN, where block
// and neuron are the same). mask[k] has bit j set when row j computes the entry (null:
// a one-row step).
struct NeuronList {
  const int32_t *blk = nullptr;
  int64_t n = 0;
  const int32_t *id_of = nullptr;
  const uint64_t *mask = nullptr;
  int32_t id(int64_t k) const { return id_of ? id_of[blk[k]] : blk[k]; }
};

// Where the gate values come from: the blocks' gate rows (v null), or values computed
// beforehand (exact mode, where the gate decides which neurons run): v[row * stride + b]
// for block b.
struct GateValues {
  const float *v = nullptr;
  int64_t stride = 0;
};

// Every cache line of [p, p + bytes). Each active neuron is a jump the hardware
// prefetcher cannot predict, so its block is requested explicitly some neurons ahead.
inline void prefetch_l1(const uint8_t *p, size_t bytes) {
  for (size_t o = 0; o < bytes; o += 64) __builtin_prefetch(p + o, 0, 3);
}
// prefetcht2: into the outer cache levels only, so a request made further ahead does not
// push out of L1 the lines about to be used.
inline void prefetch_far(const uint8_t *p, size_t bytes) {
  for (size_t o = 0; o < bytes; o += 64) __builtin_prefetch(p + o, 0, 1);
}

// Slices of the output dimension d of a down projection stored as `type` rows, for
// splitting it across threads: whole quantisation blocks and multiples of 16 floats, so
// every element takes the same axpy-kernel operations as in a full-width row.
struct OutputSlices {
  int64_t d, gran, n_gran;
  int count;
  OutputSlices(rs_type type, int64_t d_, int max_slices) : d(d_) {
    const int64_t bs = rs_type_get_traits(type)->block_size;
    gran = bs >= 16 ? bs : 16 / bs * bs;
    n_gran = d / gran;
    count = static_cast<int>(n_gran < max_slices ? (n_gran > 0 ? n_gran : 1) : max_slices);
  }
  int64_t begin(int s) const { return n_gran * s / count * gran; }
  int64_t end(int s) const { return s + 1 == count ? d : n_gran * (s + 1) / count * gran; }
};

// The chunked sum (see kChunk) of n rows over the output slice [o0, o1) of y[n][d]:
// partial(j, i) is where row j adds neuron i's term (after folding the partial sum of
// the row's previous chunk into y, if i is in a later one); finish() folds the last
// ones. Each row's neurons must come in increasing order; y must start at zero.
class ChunkedRows {
 public:
  ChunkedRows(std::vector<float> &buf, float *y, int n, int64_t d, int64_t o0, int64_t o1)
      : buf_(buf), y_(y), d_(d), o0_(o0), len_(o1 - o0), cur_(static_cast<size_t>(n), -1) {
    buf_.assign(static_cast<size_t>(n) * len_, 0.f);
  }
  float *partial(int j, int32_t neuron) {
    const int64_t c = neuron / kChunk;
    if (c != cur_[j]) {
      if (cur_[j] >= 0) fold(j);
      cur_[j] = c;
    }
    return buf_.data() + static_cast<size_t>(j) * len_;
  }
  void finish() {
    for (size_t j = 0; j < cur_.size(); j++)
      if (cur_[j] >= 0) fold(static_cast<int>(j));
  }

 private:
  void fold(int j) {  // y_j += partial_j; partial_j = 0
    float *yj = y_ + static_cast<size_t>(j) * d_ + o0_, *pj = buf_.data() + static_cast<size_t>(j) * len_;
    for (int64_t o = 0; o < len_; o++) yj[o] += pj[o];
    std::memset(pj, 0, static_cast<size_t>(len_) * sizeof(float));
  }
  std::vector<float> &buf_;
  float *y_;
  int64_t d_, o0_, len_;
  std::vector<int64_t> cur_;  // each row's open chunk (-1: none)
};

}  // namespace rs::sparse
