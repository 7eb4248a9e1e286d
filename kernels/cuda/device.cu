// Device discovery: decides at run time whether a GPU can be used.
#include <cstdio>

#include "rs_cuda_compat.cuh"

extern "C" int rs_cuda_device_count(void) {
  int n = 0;
  // Without a driver this returns cudaErrorNoDevice / InsufficientDriver: that means 0.
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error so later calls are unaffected
    return 0;
  }
  return n;
}

extern "C" int rs_cuda_device_info(int dev, char *name, size_t name_len, size_t *total_mem) {
  cudaDeviceProp p;
  cudaError_t e = cudaGetDeviceProperties(&p, dev);
  if (e != cudaSuccess) return static_cast<int>(e);
  if (name && name_len) std::snprintf(name, name_len, "%s", p.name);
  if (total_mem) *total_mem = p.totalGlobalMem;
  return 0;
}
