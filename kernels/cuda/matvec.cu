// y[n][rows] = x[n][cols] . W^T for a few rows of x (n <= 8 per pass): one warp per
// weight row, so each weight is read once whatever n.
//
// Quantised weights meet quantised activations, as on the CPU: x is first quantised to
// 8-bit blocks exactly as the CPU's vec-dot format does (q8_act.cuh), and each 32-value
// unit is an exact integer dot product (dp4a) scaled by the two d's. So the GPU's products differ from the CPU's only
// in the order the scaled units are added (~1e-7 relative), not in what is added.
// Float weights (F32, F16, BF16) take f32 x, as the CPU does.
#include "q8_act.cuh"

namespace {

using rs_cuda::Act;
using rs_cuda::unit_dot;
constexpr int kWarps = 4;  // weight rows per block
constexpr int kMaxN = 8;

template <int T>
__global__ void matvec_q_kernel(const uint8_t *w, int64_t rows, int64_t cols, size_t stride, const Act *act, int n,
                                float *y) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kWarps + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (r >= rows) return;  // whole warps leave together: no shuffle is left waiting
  const uint8_t *row = w + r * stride;
  const int64_t units = cols / 32;
  float acc[kMaxN];
  for (int j = 0; j < kMaxN; j++) acc[j] = 0.f;
  for (int64_t u = lane; u < units; u += 32)
    for (int j = 0; j < n; j++) acc[j] += unit_dot<T>(row, u, act[j * units + u]);
  for (int j = 0; j < n; j++) {
    const float s = rs_cuda::warp_sum(acc[j]);
    if (lane == 0) y[j * rows + r] = s;
  }
}

template <int T>
__global__ void matvec_f_kernel(const uint8_t *w, int64_t rows, int64_t cols, size_t stride, const float *x, int n,
                                float *y) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kWarps + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (r >= rows) return;
  const uint8_t *row = w + r * stride;
  float acc[kMaxN];
  for (int j = 0; j < kMaxN; j++) acc[j] = 0.f;
  float wv[8];
  for (int64_t e = 8 * lane; e < cols; e += 8 * 32) {
    rs_cuda::dequant8<T>(row, e, wv);
    for (int j = 0; j < n; j++) {
      const float *xj = x + j * cols + e;
      float s = 0.f;
      for (int i = 0; i < 8; i++) s += wv[i] * xj[i];
      acc[j] += s;
    }
  }
  for (int j = 0; j < n; j++) {
    const float s = rs_cuda::warp_sum(acc[j]);
    if (lane == 0) y[j * rows + r] = s;
  }
}

}  // namespace

// Any n (in passes of 8 rows of x). Quantised types need `act` scratch of
// n * cols / 32 * 36 bytes; cols a multiple of the block size.
extern "C" int rs_cuda_matvec(rs_cuda_matrix w, const float *x, int n, float *y, void *act, void *stream) {
  if (n <= 0 || w.rows <= 0) return 0;
  if (w.cols % 8 != 0 || !rs_cuda::supported(w.type)) return cudaErrorInvalidValue;
  const cudaStream_t s = static_cast<cudaStream_t>(stream);
  const unsigned blocks = static_cast<unsigned>((w.rows + kWarps - 1) / kWarps);
  const uint8_t *wd = static_cast<const uint8_t *>(w.data);
  if (rs_cuda::quantised(w.type)) {
    if (!act || w.cols % 32 != 0) return cudaErrorInvalidValue;
    Act *a = static_cast<Act *>(act);
    rs_cuda::quantize_rows(x, n, w.cols, rs_cuda::act_block(w.type), a, s);
    for (int j0 = 0; j0 < n; j0 += kMaxN) {
      const int m = n - j0 < kMaxN ? n - j0 : kMaxN;
      const Act *aj = a + static_cast<size_t>(j0) * (w.cols / 32);
      float *yj = y + static_cast<size_t>(j0) * w.rows;
#define RS_Q(T)                                                                  \
  {                                                                              \
    auto *k = matvec_q_kernel<T>;                                                \
    RS_LAUNCH(k, blocks, 32 * kWarps, s, wd, w.rows, w.cols, w.row_stride, aj, m, yj); \
  }
      switch (w.type) {
        case rs_cuda::kQ4_0: RS_Q(rs_cuda::kQ4_0); break;
        case rs_cuda::kQ8_0: RS_Q(rs_cuda::kQ8_0); break;
        case rs_cuda::kQ4_K: RS_Q(rs_cuda::kQ4_K); break;
        case rs_cuda::kQ5_K: RS_Q(rs_cuda::kQ5_K); break;
        default: RS_Q(rs_cuda::kQ6_K); break;
      }
#undef RS_Q
    }
    return rs_cuda::status(cudaGetLastError());
  }
  for (int j0 = 0; j0 < n; j0 += kMaxN) {
    const int m = n - j0 < kMaxN ? n - j0 : kMaxN;
    const float *xj = x + static_cast<size_t>(j0) * w.cols;
    float *yj = y + static_cast<size_t>(j0) * w.rows;
#define RS_F(T)                                                                  \
  {                                                                              \
    auto *k = matvec_f_kernel<T>;                                                \
    RS_LAUNCH(k, blocks, 32 * kWarps, s, wd, w.rows, w.cols, w.row_stride, xj, m, yj); \
  }
    switch (w.type) {
      case rs_cuda::kF32: RS_F(rs_cuda::kF32); break;
      case rs_cuda::kF16: RS_F(rs_cuda::kF16); break;
      default: RS_F(rs_cuda::kBF16); break;
    }
#undef RS_F
  }
  return rs_cuda::status(cudaGetLastError());
}
