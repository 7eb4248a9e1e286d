// Copies and fills done by kernels rather than the runtime's memcpy/memset, for data in
// host-visible (pinned, mapped) memory that the host writes or reads while the stream
// runs: a kernel reads and writes it when the kernel runs. (Measured on an H200: a
// cudaMemcpyAsync from pinned memory, enqueued behind a kernel waiting for a host flag,
// did not return until that kernel ended - the host was the one to raise the flag, so
// the step deadlocked.) 16-byte accesses where both ends and the size allow, else 4 or 1.
#include "rs_cuda_compat.cuh"

namespace {

template <typename T>
__global__ void copy_kernel(T *dst, const T *src, size_t n) {
  for (size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x)
    dst[i] = src[i];
}

template <typename T>
__global__ void zero_kernel(T *dst, size_t n) {
  for (size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x)
    dst[i] = T{};
}

unsigned blocks_for(size_t n) {
  const size_t b = (n + 255) / 256;
  return static_cast<unsigned>(b < 1024 ? (b > 0 ? b : 1) : 1024);
}

template <typename T>
int copy_as(void *dst, const void *src, size_t bytes, cudaStream_t s) {
  const size_t n = bytes / sizeof(T);
  auto *k = copy_kernel<T>;
  RS_LAUNCH(k, blocks_for(n), 256, s, static_cast<T *>(dst), static_cast<const T *>(src), n);
  return rs_cuda::status(cudaGetLastError());
}

}  // namespace

extern "C" int rs_cuda_copy(void *dst, const void *src, size_t bytes, void *stream) {
  if (bytes == 0) return 0;
  const cudaStream_t s = static_cast<cudaStream_t>(stream);
  const uintptr_t all = reinterpret_cast<uintptr_t>(dst) | reinterpret_cast<uintptr_t>(src) | bytes;
  if (all % 16 == 0) return copy_as<float4>(dst, src, bytes, s);
  if (all % 4 == 0) return copy_as<float>(dst, src, bytes, s);
  return copy_as<uint8_t>(dst, src, bytes, s);
}

extern "C" int rs_cuda_zero(float *dst, size_t n, void *stream) {
  if (n == 0) return 0;
  auto *k = zero_kernel<float>;
  RS_LAUNCH(k, blocks_for(n), 256, static_cast<cudaStream_t>(stream), dst, n);
  return rs_cuda::status(cudaGetLastError());
}
