// The hot half of a split FFN over the active hot entries, in two passes that each read
// their part of an active block once (inactive hot neurons are not touched at all):
//   1. a warp per entry: gate . xn and up . xn for each row of its mask (xn quantised as
//      the CPU does for quantised weights, q8_act.cuh), h = act(g, u);
//   2. a grid of (256-column slice, range of entries): each thread owns a column and adds
//      h * down over its range's entries, for up to 8 rows at a time, into the range's
//      partial sum; a last kernel adds the ranges' partial sums in range order.
// The ranges split the entry list evenly (its length is read on the device), so the sums
// are formed the same way every run: no atomics.
#include "q8_act.cuh"

namespace {

constexpr int kWarps = 4;
constexpr int kRows = 8;      // rows of x per pass
constexpr int kCols = 256;    // columns per block in pass 2
constexpr int kMaxRanges = 32;

__device__ __forceinline__ float activate(int act, float g, float u) {
  if (g <= 0.f) return 0.f;
  if (act == 2) return u > 0.f ? g * u : 0.f;  // dReLU: relu(gate) * relu(up)
  return g * u;                                 // ReLU-gated: relu(gate) * up
}

// Gate and up of entry e for up to kRows rows of x at a time. Quantised weights take xn
// quantised as the CPU does (act: its units, row j at act + j * (d / 32)), exact integer
// dot products per 32 values, as the CPU's sparse FFN computes them; float weights take
// the f32 rows.
template <int T>
__global__ void h_kernel(rs_cuda_neurons hot, const int32_t *list, const uint64_t *masks, const int64_t *counts,
                         const float *gates, int act_kind, int n, const float *xn, const rs_cuda::Act *act, float *h) {
  const int64_t e = static_cast<int64_t>(blockIdx.x) * kWarps + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (e >= counts[0]) return;
  const int32_t slot = list[e];
  const uint64_t mask = n == 1 ? 1 : masks[e];
  const int64_t d = hot.up.cols, units = d / 32;
  const uint8_t *grow = static_cast<const uint8_t *>(hot.gate.data) + slot * hot.gate.row_stride;
  const uint8_t *urow = static_cast<const uint8_t *>(hot.up.data) + slot * hot.up.row_stride;
  for (int j0 = 0; j0 < n; j0 += kRows) {
    const int m = n - j0 < kRows ? n - j0 : kRows;
    float ag[kRows], au[kRows];
    for (int j = 0; j < kRows; j++) ag[j] = au[j] = 0.f;
    if (rs_cuda::quantised(T)) {
      for (int64_t u = lane; u < units; u += 32)
        for (int j = 0; j < m; j++) {
          if (!((mask >> (j0 + j)) & 1)) continue;
          const rs_cuda::Act &a = act[(j0 + j) * units + u];
          if (!gates) ag[j] += rs_cuda::unit_dot<T>(grow, u, a);
          au[j] += rs_cuda::unit_dot<T>(urow, u, a);
        }
    } else {
      float gv[8], uv[8];
      for (int64_t c = 8 * lane; c < d; c += 8 * 32) {
        if (!gates) rs_cuda::dequant8<T>(grow, c, gv);
        rs_cuda::dequant8<T>(urow, c, uv);
        for (int j = 0; j < m; j++) {
          if (!((mask >> (j0 + j)) & 1)) continue;
          const float *x = xn + static_cast<size_t>(j0 + j) * d + c;
          float sg = 0.f, su = 0.f;
          for (int i = 0; i < 8; i++) {
            if (!gates) sg += gv[i] * x[i];
            su += uv[i] * x[i];
          }
          ag[j] += sg;
          au[j] += su;
        }
      }
    }
    for (int j = 0; j < m; j++) {
      const float g = gates ? gates[static_cast<size_t>(j0 + j) * hot.n_hot + slot] : rs_cuda::warp_sum(ag[j]);
      const float u = rs_cuda::warp_sum(au[j]);
      if (lane == 0) h[e * n + j0 + j] = (mask >> (j0 + j)) & 1 ? activate(act_kind, g, u) : 0.f;
    }
  }
}

template <int TD>
__global__ void down_kernel(rs_cuda_neurons hot, const int32_t *list, const uint64_t *masks, const int64_t *counts,
                            int n, const float *h, int ranges, float *part) {
  const int64_t d = hot.down.cols;
  const int64_t o = static_cast<int64_t>(blockIdx.x) * kCols + threadIdx.x;
  const int r = blockIdx.y;
  const int64_t count = counts[0], per = (count + ranges - 1) / ranges;
  const int64_t e0 = r * per, e1 = e0 + per < count ? e0 + per : count;
  for (int j0 = 0; j0 < n; j0 += kRows) {
    const int m = n - j0 < kRows ? n - j0 : kRows;
    float acc[kRows];
    for (int j = 0; j < kRows; j++) acc[j] = 0.f;
    if (o < d)
      for (int64_t e = e0; e < e1; e++) {
        const uint64_t mask = n == 1 ? 1 : masks[e] >> j0;
        if (!(mask & ((1ull << m) - 1))) continue;  // none of these rows computes it
        const float w = rs_cuda::dequant1<TD>(static_cast<const uint8_t *>(hot.down.data) + list[e] * hot.down.row_stride, o);
        for (int j = 0; j < m; j++) acc[j] += h[e * n + j0 + j] * w;  // h is 0 outside the mask
      }
    if (o < d)
      for (int j = 0; j < m; j++) part[(static_cast<size_t>(r) * n + j0 + j) * d + o] = acc[j];
  }
}

__global__ void reduce_kernel(const float *part, int ranges, int64_t total, float *y) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= total) return;
  float s = 0.f;
  for (int r = 0; r < ranges; r++) s += part[static_cast<size_t>(r) * total + i];
  y[i] = s;
}

}  // namespace

extern "C" int rs_cuda_ffn_hot(rs_cuda_neurons hot, const int32_t *hot_list, const uint64_t *hot_mask,
                               const int64_t *counts, const float *gates, int act, int n, const float *xn, float *h,
                               float *part, int64_t part_floats, float *y, void *act_q, void *stream) {
  const int64_t d = hot.up.cols;
  if (n < 1 || n > 64 || d % 8 != 0) return cudaErrorInvalidValue;
  const cudaStream_t s = static_cast<cudaStream_t>(stream);
  const int64_t total = static_cast<int64_t>(n) * d;
  if (hot.n_hot == 0) return rs_cuda_zero(y, static_cast<size_t>(total), stream);
  const int64_t fit = part_floats / total;
  const int ranges = static_cast<int>(fit < kMaxRanges ? fit : kMaxRanges);
  if (ranges < 1) return cudaErrorInvalidValue;
  const unsigned hblocks = static_cast<unsigned>((hot.n_hot + kWarps - 1) / kWarps);
  // Gate and up of one type (every file we load: they are quantised alike).
  if (hot.gate.type != hot.up.type) return cudaErrorInvalidValue;
  rs_cuda::Act *aq = static_cast<rs_cuda::Act *>(act_q);
  if (rs_cuda::quantised(hot.up.type)) {
    if (!aq || d % 32 != 0) return cudaErrorInvalidValue;
    rs_cuda::quantize_rows(xn, n, d, rs_cuda::act_block(hot.up.type), aq, s);
  }
#define RS_H(T)                                                                                        \
  {                                                                                                    \
    auto *k = h_kernel<T>;                                                                             \
    RS_LAUNCH(k, hblocks, 32 * kWarps, s, hot, hot_list, hot_mask, counts, gates, act, n, xn, aq, h);  \
  }
  RS_FOR_TYPE(hot.up.type, RS_H)
#undef RS_H
  const dim3 grid(static_cast<unsigned>((d + kCols - 1) / kCols), static_cast<unsigned>(ranges));
#define RS_DOWN(T)                                                                        \
  {                                                                                       \
    auto *k = down_kernel<T>;                                                             \
    RS_LAUNCH(k, grid, kCols, s, hot, hot_list, hot_mask, counts, n, h, ranges, part);    \
  }
  RS_FOR_TYPE(hot.down.type, RS_DOWN)
#undef RS_DOWN
  RS_LAUNCH(reduce_kernel, static_cast<unsigned>((total + 255) / 256), 256, s, part, ranges, total, y);
  return rs_cuda::status(cudaGetLastError());
}
