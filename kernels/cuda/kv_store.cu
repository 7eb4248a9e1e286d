// K and V rows into the cache (f16, round to nearest even like the CPU's conversion),
// at each row's sequence and position in the by-head layout. One thread per element.
#include "rs_cuda_compat.cuh"

namespace {

__global__ void kv_store_kernel(rs_cuda_kv kv, int layer, const int32_t *pos, const int32_t *seq, int n,
                                const float *k, const float *v) {
  const int kv_dim = kv.n_head_kv * kv.head_dim;
  const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= static_cast<int64_t>(n) * kv_dim) return;
  const int j = static_cast<int>(t / kv_dim), c = static_cast<int>(t % kv_dim);
  const int head = c / kv.head_dim, e = c % kv.head_dim;
  const size_t at = ((static_cast<size_t>(layer) * kv.n_seq + seq[j]) * kv.n_head_kv + head) * kv.n_ctx * kv.head_dim +
                    static_cast<size_t>(pos[j]) * kv.head_dim + e;
  kv.k[at] = rs_cuda::f2h(k[t]);
  kv.v[at] = rs_cuda::f2h(v[t]);
}

}  // namespace

extern "C" int rs_cuda_kv_store(rs_cuda_kv kv, int layer, const int32_t *pos, const int32_t *seq, int n, const float *k,
                                const float *v, void *stream) {
  const int64_t total = static_cast<int64_t>(n) * kv.n_head_kv * kv.head_dim;
  if (total <= 0) return 0;
  RS_LAUNCH(kv_store_kernel, static_cast<unsigned>((total + 255) / 256), 256, static_cast<cudaStream_t>(stream), kv,
            layer, pos, seq, n, k, v);
  return rs_cuda::status(cudaGetLastError());
}
