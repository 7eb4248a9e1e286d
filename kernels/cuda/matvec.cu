// y[n][rows] = x[n][cols] . W^T for a few rows of x (n <= 8): one warp per weight row,
// each lane dequantising 8 weights at a time and multiplying them into every row of x,
// so each weight is read once whatever n. f32 accumulation.
#include "rs_cuda_compat.cuh"

namespace {

constexpr int kWarps = 4;  // weight rows per block
constexpr int kMaxN = 8;

template <int T>
__global__ void matvec_kernel(const uint8_t *w, int64_t rows, int64_t cols, size_t stride, const float *x, int n,
                              float *y) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kWarps + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (r >= rows) return;  // whole warps leave together: no shuffle is left waiting
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

template <int T>
int launch(rs_cuda_matrix w, const float *x, int n, float *y, cudaStream_t s) {
  const int blocks = static_cast<int>((w.rows + kWarps - 1) / kWarps);
  auto *k = matvec_kernel<T>;
  for (int j0 = 0; j0 < n; j0 += kMaxN) {
    const int m = n - j0 < kMaxN ? n - j0 : kMaxN;
    RS_LAUNCH(k, blocks, 32 * kWarps, s, static_cast<const uint8_t *>(w.data), w.rows, w.cols, w.row_stride,
              x + static_cast<size_t>(j0) * w.cols, m, y + static_cast<size_t>(j0) * w.rows);
  }
  return rs_cuda::status(cudaGetLastError());
}

}  // namespace

// Any n (in passes of 8 rows of x); cols must be a multiple of 8 (of the block size for
// quantised types).
extern "C" int rs_cuda_matvec(rs_cuda_matrix w, const float *x, int n, float *y, void *stream) {
  if (n <= 0 || w.rows <= 0) return 0;
  if (w.cols % 8 != 0 || !rs_cuda::supported(w.type)) return cudaErrorInvalidValue;
  const cudaStream_t s = static_cast<cudaStream_t>(stream);
  using namespace rs_cuda;
  switch (w.type) {
    case kF32: return launch<kF32>(w, x, n, y, s);
    case kF16: return launch<kF16>(w, x, n, y, s);
    case kBF16: return launch<kBF16>(w, x, n, y, s);
    case kQ8_0: return launch<kQ8_0>(w, x, n, y, s);
    case kQ4_0: return launch<kQ4_0>(w, x, n, y, s);
    case kQ4_K: return launch<kQ4_K>(w, x, n, y, s);
    case kQ5_K: return launch<kQ5_K>(w, x, n, y, s);
    default: return launch<kQ6_K>(w, x, n, y, s);
  }
}
