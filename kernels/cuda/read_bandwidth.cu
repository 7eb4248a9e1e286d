// The GPU's memory read bandwidth, measured: the limit decode is judged against. Every
// thread streams 16-byte loads over a buffer far larger than the caches, grid-stride,
// several blocks per multiprocessor, and the loaded values are summed into one word per
// thread so the loads cannot be optimised away. Best of several passes.
#include "rs_cuda_compat.cuh"

namespace {

__global__ void read_kernel(const float4 *p, size_t n, float *sink) {
  float acc = 0.f;
  for (size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const float4 v = p[i];
    acc += v.x + v.y + v.z + v.w;
  }
  if (acc == 1234.5f) sink[0] = acc;  // practically never: only keeps the loads
}

}  // namespace

extern "C" int rs_cuda_read_bandwidth(size_t bytes, int reps, double *gb_per_s) {
  float4 *buf = nullptr;
  float *sink = nullptr;
  cudaError_t e = cudaMalloc(reinterpret_cast<void **>(&buf), bytes);
  if (e == cudaSuccess) e = cudaMalloc(reinterpret_cast<void **>(&sink), sizeof(float));
  if (e == cudaSuccess) e = cudaMemset(buf, 0, bytes);
  int sms = 1;
#ifndef RS_CUDA_EMU
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
#endif
  cudaEvent_t a = nullptr, b = nullptr;
  cudaEventCreateWithFlags(&a, 0);
  cudaEventCreateWithFlags(&b, 0);
  double best = 0;
  const size_t n = bytes / sizeof(float4);
  for (int r = 0; r < reps && e == cudaSuccess; r++) {
    cudaEventRecord(a, nullptr);
    RS_LAUNCH(read_kernel, static_cast<unsigned>(sms * 8), 512, static_cast<cudaStream_t>(nullptr), buf, n, sink);
    cudaEventRecord(b, nullptr);
    e = cudaEventSynchronize(b);
    float ms = 0;
    if (e == cudaSuccess) e = cudaEventElapsedTime(&ms, a, b);
    if (e == cudaSuccess && ms > 0) best = std::max(best, static_cast<double>(bytes) / (ms * 1e6));
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  cudaFree(buf);
  cudaFree(sink);
  *gb_per_s = best;
  return rs_cuda::status(e);
}
