// RMSNorm: one block per row; a block-wide sum of squares, then the scaled copy.
#include "rs_cuda_compat.cuh"

namespace {

constexpr int kThreads = 256;

__global__ void rmsnorm_kernel(float *y, const float *x, const float *w, int d, float eps) {
  const float *xr = x + static_cast<size_t>(blockIdx.x) * d;
  float *yr = y + static_cast<size_t>(blockIdx.x) * d;
  float ss = 0.f;
  for (int i = threadIdx.x; i < d; i += blockDim.x) ss += xr[i] * xr[i];
  // Warp reduction, then one value per warp through shared memory.
  ss = rs_cuda::warp_sum(ss);
  __shared__ float warp_sums[kThreads / 32];
  if ((threadIdx.x & 31) == 0) warp_sums[threadIdx.x >> 5] = ss;
  __syncthreads();
  if (threadIdx.x < 32) {
    ss = threadIdx.x < blockDim.x / 32 ? warp_sums[threadIdx.x] : 0.f;
    ss = rs_cuda::warp_sum(ss);
    if (threadIdx.x == 0) warp_sums[0] = ss;
  }
  __syncthreads();
  const float scale = rsqrtf(warp_sums[0] / d + eps);
  for (int i = threadIdx.x; i < d; i += blockDim.x) yr[i] = xr[i] * scale * w[i];
}

}  // namespace

extern "C" int rs_cuda_rmsnorm(float *y, const float *x, const float *w, int n_rows, int d, float eps,
                               void *stream) {
  if (n_rows <= 0 || d <= 0) return 0;
  RS_LAUNCH(rmsnorm_kernel, n_rows, kThreads, static_cast<cudaStream_t>(stream), y, x, w, d, eps);
  return rs_cuda::status(cudaGetLastError());
}
