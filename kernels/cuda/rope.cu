// Rotary embedding in the engine's pair layout: pairs (2i, 2i + 1) of each head rotated
// by pos * base^(-2i / head_dim). The angle in double, as the CPU reference computes it,
// so both sides rotate by the same float cos and sin. One thread per pair.
#include "rs_cuda_compat.cuh"

namespace {

__global__ void rope_kernel(float *q, float *k, const int32_t *pos, int n, int n_head, int n_head_kv, int head_dim,
                            float freq_base) {
  const int half_dim = head_dim / 2, heads = n_head + n_head_kv;
  const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= static_cast<int64_t>(n) * heads * half_dim) return;
  const int i = static_cast<int>(t % half_dim);
  const int h = static_cast<int>((t / half_dim) % heads);
  const int j = static_cast<int>(t / (static_cast<int64_t>(half_dim) * heads));
  float *x = h < n_head ? q + (static_cast<size_t>(j) * n_head + h) * head_dim
                        : k + (static_cast<size_t>(j) * n_head_kv + (h - n_head)) * head_dim;
  const double theta = pos[j] * pow(static_cast<double>(freq_base), -2.0 * i / head_dim);
  const float c = static_cast<float>(cos(theta)), s = static_cast<float>(sin(theta));
  const float x0 = x[2 * i], x1 = x[2 * i + 1];
  x[2 * i] = x0 * c - x1 * s;
  x[2 * i + 1] = x0 * s + x1 * c;
}

}  // namespace

extern "C" int rs_cuda_rope(float *q, float *k, const int32_t *pos, int n, int n_head, int n_head_kv, int head_dim,
                            float freq_base, void *stream) {
  const int64_t total = static_cast<int64_t>(n) * (n_head + n_head_kv) * (head_dim / 2);
  if (total <= 0) return 0;
  RS_LAUNCH(rope_kernel, static_cast<unsigned>((total + 255) / 256), 256, static_cast<cudaStream_t>(stream), q, k, pos,
            n, n_head, n_head_kv, head_dim, freq_base);
  return rs_cuda::status(cudaGetLastError());
}
