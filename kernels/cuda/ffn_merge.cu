// The step's one merge per layer: x += (hot + cold), the device's half of the FFN and the
// host's added first, always in that order.
#include "rs_cuda_compat.cuh"

namespace {

__global__ void merge_kernel(float *x, const float *hot, const float *cold, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) x[i] += hot[i] + cold[i];
}

}  // namespace

extern "C" int rs_cuda_ffn_merge(float *x, const float *hot, const float *cold, int n, int d, void *stream) {
  const int64_t total = static_cast<int64_t>(n) * d;
  if (total <= 0) return 0;
  RS_LAUNCH(merge_kernel, static_cast<unsigned>((total + 255) / 256), 256, static_cast<cudaStream_t>(stream), x, hot,
            cold, total);
  return rs_cuda::status(cudaGetLastError());
}
