// y[n][rows] = x[n][cols] . W^T for many rows of x (prompts): 64 x 64 output tiles on the
// tensor cores. Each K step dequantises a 64 x 32 tile of W and converts a 64 x 32 tile
// of x to f16 in shared memory; four warps each multiply-accumulate a 32 x 32 quarter
// (2 x 2 fragments of 16 x 16 x 16) in f32. cols must be a multiple of 32.
#include "rs_cuda_compat.cuh"
#ifndef RS_CUDA_EMU
#include <mma.h>
#endif

namespace {

using namespace nvcuda;

constexpr int BM = 64, BN = 64, BK = 32;
constexpr int LDS = BK + 8;   // f16 row pitch in shared memory (16-byte multiple, fewer bank conflicts)
constexpr int LDC = BN + 4;   // f32 pitch of the output tile

template <int T>
__global__ void matmul_tc_kernel(const uint8_t *w, int64_t rows, int64_t cols, size_t stride, const float *x, int n,
                                 float *y) {
  __shared__ half As[BM * LDS];  // x tile [m][k]
  __shared__ half Bs[BN * LDS];  // W tile [n][k]: column-major B for C = A . B
  __shared__ float Cs[BM * LDC];
  const int m0 = blockIdx.y * BM;
  const int64_t n0 = static_cast<int64_t>(blockIdx.x) * BN;
  const int warp = threadIdx.x / 32, wm = warp / 2, wn = warp % 2;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 2; j++) wmma::fill_fragment(acc[i][j], 0.0f);

  for (int64_t k0 = 0; k0 < cols; k0 += BK) {
    // x tile: 64 x 32 floats, 16 per thread.
    for (int t = threadIdx.x; t < BM * BK; t += blockDim.x) {
      const int r = t / BK, c = t % BK;
      const float v = m0 + r < n ? x[static_cast<size_t>(m0 + r) * cols + k0 + c] : 0.f;
      As[r * LDS + c] = __float2half(v);
    }
    // W tile: 64 rows x 4 groups of 8, two groups per thread.
    for (int t = threadIdx.x; t < BN * (BK / 8); t += blockDim.x) {
      const int r = t / (BK / 8), g = t % (BK / 8);
      float v[8];
      if (n0 + r < rows) rs_cuda::dequant8<T>(w + (n0 + r) * stride, k0 + 8 * g, v);
      else
        for (int i = 0; i < 8; i++) v[i] = 0.f;
      for (int i = 0; i < 8; i++) Bs[r * LDS + 8 * g + i] = __float2half(v[i]);
    }
    __syncthreads();
    for (int kk = 0; kk < BK; kk += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, half, wmma::row_major> a[2];
      wmma::fragment<wmma::matrix_b, 16, 16, 16, half, wmma::col_major> b[2];
      for (int i = 0; i < 2; i++) wmma::load_matrix_sync(a[i], As + (wm * 32 + i * 16) * LDS + kk, LDS);
      for (int j = 0; j < 2; j++) wmma::load_matrix_sync(b[j], Bs + (wn * 32 + j * 16) * LDS + kk, LDS);
      for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) wmma::mma_sync(acc[i][j], a[i], b[j], acc[i][j]);
    }
    __syncthreads();
  }
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 2; j++)
      wmma::store_matrix_sync(Cs + (wm * 32 + i * 16) * LDC + wn * 32 + j * 16, acc[i][j], LDC, wmma::mem_row_major);
  __syncthreads();
  for (int t = threadIdx.x; t < BM * BN; t += blockDim.x) {
    const int r = t / BN, c = t % BN;
    if (m0 + r < n && n0 + c < rows) y[static_cast<size_t>(m0 + r) * rows + n0 + c] = Cs[r * LDC + c];
  }
}

template <int T>
int launch(rs_cuda_matrix w, const float *x, int n, float *y, cudaStream_t s) {
  const dim3 grid(static_cast<unsigned>((w.rows + BN - 1) / BN), static_cast<unsigned>((n + BM - 1) / BM));
  auto *k = matmul_tc_kernel<T>;
  RS_LAUNCH(k, grid, 128, s, static_cast<const uint8_t *>(w.data), w.rows, w.cols, w.row_stride, x, n, y);
  return rs_cuda::status(cudaGetLastError());
}

}  // namespace

extern "C" int rs_cuda_matmul_tc(rs_cuda_matrix w, const float *x, int n, float *y, void *stream) {
  if (n <= 0 || w.rows <= 0) return 0;
  if (w.cols % BK != 0) return cudaErrorInvalidValue;
  const cudaStream_t s = static_cast<cudaStream_t>(stream);
  using namespace rs_cuda;
  switch (w.type) {
    case kF16: return launch<kF16>(w, x, n, y, s);
    case kQ8_0: return launch<kQ8_0>(w, x, n, y, s);
    case kQ4_0: return launch<kQ4_0>(w, x, n, y, s);
    case kQ4_K: return launch<kQ4_K>(w, x, n, y, s);
    case kQ5_K: return launch<kQ5_K>(w, x, n, y, s);
    case kQ6_K: return launch<kQ6_K>(w, x, n, y, s);
    default: return cudaErrorInvalidValue;  // F32 / BF16: CUDA cores (matmul.cu)
  }
}
