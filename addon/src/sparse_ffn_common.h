// Pieces shared by the two sparse FFN paths of the CPU backend (backend_cpu_sparse.cpp:
// active set and several rows; backend_cpu_sparse_row.cpp: one row).
#pragma once

#include <cstddef>
#include <cstdint>

#include "rs_kernels.h"

namespace rs::sparse {

// Each row's down projection is summed in partial sums of this many of its active
// neurons (in neuron order), which are then added in order: the same operations
// whichever path runs the row and however many threads share the work, so results are
// bit-identical across thread counts and between a row alone and a row in a batch.
constexpr int64_t kChunk = 64;

constexpr int kMaxRows = 64;  // rows per sparse step: one bit each in a uint64 mask

inline float activate(rs_act act, float g, float u) {
  if (g <= 0.f) return 0.f;
  if (act == RS_ACT_DRELU) return u > 0.f ? g * u : 0.f;
  return g * u;  // relu_glu
}

// Every cache line of [p, p + bytes). Each active neuron is a jump the hardware
// prefetcher cannot predict, so its block is requested explicitly some neurons ahead.
inline void prefetch_l1(const uint8_t *p, size_t bytes) {
  for (size_t o = 0; o < bytes; o += 64) __builtin_prefetch(p + o, 0, 3);
}
inline void prefetch_nta(const uint8_t *p, size_t bytes) {
  for (size_t o = 0; o < bytes; o += 64) __builtin_prefetch(p + o, 0, 0);
}

}  // namespace rs::sparse
