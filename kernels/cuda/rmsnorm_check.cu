// Host-side round trip for tests: copies rows to the device, runs rs_cuda_rmsnorm and
// copies the result back, so the op can be checked against the CPU reference.
#include "rs_cuda_compat.cuh"

extern "C" int rs_cuda_rmsnorm_host(float *y, const float *x, const float *w, int n_rows, int d, float eps) {
  float *dx = nullptr, *dw = nullptr, *dy = nullptr;
  const size_t bytes = static_cast<size_t>(n_rows) * d * sizeof(float);
  cudaError_t e = cudaMalloc(reinterpret_cast<void **>(&dx), bytes);
  if (e == cudaSuccess) e = cudaMalloc(reinterpret_cast<void **>(&dy), bytes);
  if (e == cudaSuccess) e = cudaMalloc(reinterpret_cast<void **>(&dw), d * sizeof(float));
  if (e == cudaSuccess) e = cudaMemcpy(dx, x, bytes, cudaMemcpyHostToDevice);
  if (e == cudaSuccess) e = cudaMemcpy(dw, w, d * sizeof(float), cudaMemcpyHostToDevice);
  if (e == cudaSuccess) e = static_cast<cudaError_t>(rs_cuda_rmsnorm(dy, dx, dw, n_rows, d, eps, nullptr));
  if (e == cudaSuccess) e = cudaMemcpy(y, dy, bytes, cudaMemcpyDeviceToHost);
  cudaFree(dx);
  cudaFree(dy);
  cudaFree(dw);
  if (e != cudaSuccess) cudaGetLastError();
  return static_cast<int>(e);
}
