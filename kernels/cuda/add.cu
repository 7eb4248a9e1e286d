// x[i] += y[i] (the attention block's residual).
#include "rs_cuda_compat.cuh"

namespace {

__global__ void add_kernel(float *x, const float *y, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) x[i] += y[i];
}

}  // namespace

extern "C" int rs_cuda_add(float *x, const float *y, int64_t n, void *stream) {
  if (n <= 0) return 0;
  RS_LAUNCH(add_kernel, static_cast<unsigned>((n + 255) / 256), 256, static_cast<cudaStream_t>(stream), x, y, n);
  return rs_cuda::status(cudaGetLastError());
}
