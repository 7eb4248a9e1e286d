// Flags between the stream and the host, in host-visible memory: the stream raises one
// when the work before it is done (signal), or holds its later work until the host has
// raised one (wait). One thread each; the waiting thread sleeps between polls. The value
// is *base + k, with base read when the kernel runs: a recorded step (CUDA graph) keeps
// its kernels' arguments, so what changes from step to step has to come from memory.
#include "rs_cuda_compat.cuh"

namespace {

__device__ uint64_t flag_value(const uint64_t *base, uint64_t k) {
  return (base ? *reinterpret_cast<const volatile uint64_t *>(base) : 0) + k;
}

__global__ void signal_kernel(uint64_t *flag, const uint64_t *base, uint64_t k) {
  const uint64_t v = flag_value(base, k);
  __threadfence_system();  // earlier writes to host memory land before the flag
  *reinterpret_cast<volatile uint64_t *>(flag) = v;
  __threadfence_system();
}

__global__ void wait_kernel(const uint64_t *flag, const uint64_t *base, uint64_t k, const uint32_t *abort,
                            uint64_t *wait_ns) {
  const uint64_t v = flag_value(base, k);
  const volatile uint64_t *f = flag;
  const volatile uint32_t *a = abort;
  const uint64_t t0 = rs_cuda::globaltimer();
  while (*f < v && *a == 0) __nanosleep(500);
  __threadfence_system();  // the host's writes before its flag are visible after it
  *wait_ns += rs_cuda::globaltimer() - t0;
}

}  // namespace

extern "C" int rs_cuda_signal(uint64_t *flag, const uint64_t *base, uint64_t k, void *stream) {
  RS_LAUNCH(signal_kernel, 1, 1, static_cast<cudaStream_t>(stream), flag, base, k);
  return rs_cuda::status(cudaGetLastError());
}

extern "C" int rs_cuda_wait(const uint64_t *flag, const uint64_t *base, uint64_t k, const uint32_t *abort,
                            uint64_t *wait_ns, void *stream) {
  RS_LAUNCH(wait_kernel, 1, 1, static_cast<cudaStream_t>(stream), flag, base, k, abort, wait_ns);
  return rs_cuda::status(cudaGetLastError());
}
