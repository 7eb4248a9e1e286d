// Causal attention over the KV cache (by KV head, f16), decode and prefill alike: each
// row attends its own sequence's positions [0, pos]. Grid: (row, KV head, split of the
// positions); a block's four warps take its positions in turn, each keeping an online
// softmax (running max, sum, weighted V) for the query heads of that KV head, read each
// K and V row once for all of them; the warps' states are combined in warp order, and a
// second kernel combines the splits in split order. No atomics: the same bits every run.
#include "rs_cuda_compat.cuh"

namespace {

constexpr int kWarps = 4;
constexpr int kMaxGroup = 8;  // query heads per KV head
constexpr int kMaxDims = 8;   // head dims per lane: head_dim <= 256

struct State {
  float m, l, acc[kMaxDims];
};

__global__ void attention_kernel(rs_cuda_kv kv, int layer, const int32_t *pos, const int32_t *seq, const float *q,
                                 int n_head, int splits, float *part) {
  const int j = blockIdx.x, hk = blockIdx.y, s = blockIdx.z;
  const int hd = kv.head_dim, group = n_head / kv.n_head_kv, dpl = (hd + 31) / 32;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int len = pos[j] + 1;
  const int t0 = static_cast<int>(static_cast<int64_t>(len) * s / splits);
  const int t1 = static_cast<int>(static_cast<int64_t>(len) * (s + 1) / splits);
  const size_t head0 = ((static_cast<size_t>(layer) * kv.n_seq + seq[j]) * kv.n_head_kv + hk) * kv.n_ctx * hd;
  const uint16_t *K = kv.k + head0, *V = kv.v + head0;
  const float scale = rsqrtf(static_cast<float>(hd));

  float qv[kMaxGroup][kMaxDims];
  State st[kMaxGroup];
  for (int g = 0; g < group; g++) {
    const float *qg = q + (static_cast<size_t>(j) * n_head + hk * group + g) * hd;
    for (int i = 0; i < dpl; i++) {
      const int d = lane + 32 * i;
      qv[g][i] = d < hd ? qg[d] : 0.f;
      st[g].acc[i] = 0.f;
    }
    st[g].m = -INFINITY;
    st[g].l = 0.f;
  }
  for (int t = t0 + warp; t < t1; t += kWarps) {
    float kf[kMaxDims], vf[kMaxDims];
    for (int i = 0; i < dpl; i++) {
      const int d = lane + 32 * i;
      kf[i] = d < hd ? rs_cuda::h2f(K[static_cast<size_t>(t) * hd + d]) : 0.f;
      vf[i] = d < hd ? rs_cuda::h2f(V[static_cast<size_t>(t) * hd + d]) : 0.f;
    }
    for (int g = 0; g < group; g++) {
      float dot = 0.f;
      for (int i = 0; i < dpl; i++) dot += qv[g][i] * kf[i];
      const float sc = rs_cuda::warp_sum(dot) * scale;
      const float m = fmaxf(st[g].m, sc);
      const float corr = __expf(st[g].m - m), p = __expf(sc - m);
      st[g].l = st[g].l * corr + p;
      for (int i = 0; i < dpl; i++) st[g].acc[i] = st[g].acc[i] * corr + p * vf[i];
      st[g].m = m;
    }
  }
  // Combine the warps in order, one query head at a time, through shared memory.
  __shared__ float sm[kWarps], sl[kWarps], sacc[kWarps][256];
  for (int g = 0; g < group; g++) {
    if (lane == 0) {
      sm[warp] = st[g].m;
      sl[warp] = st[g].l;
    }
    for (int i = 0; i < dpl; i++)
      if (lane + 32 * i < hd) sacc[warp][lane + 32 * i] = st[g].acc[i];
    __syncthreads();
    float *out = part + ((static_cast<size_t>(j) * n_head + hk * group + g) * splits + s) * (hd + 2);
    float mb = -INFINITY;
    for (int w = 0; w < kWarps; w++) mb = fmaxf(mb, sm[w]);
    for (int d = threadIdx.x; d < hd + 2; d += blockDim.x) {
      float v = 0.f;
      if (d == 0) {
        v = mb;
      } else {
        for (int w = 0; w < kWarps; w++) {
          const float wgt = sm[w] == -INFINITY ? 0.f : __expf(sm[w] - mb);
          v += wgt * (d == 1 ? sl[w] : sacc[w][d - 2]);
        }
      }
      out[d] = v;
    }
    __syncthreads();
  }
}

// out[j][h] = the splits' states combined in split order.
__global__ void combine_kernel(const float *part, int n_head, int hd, int splits, float *out) {
  const int j = blockIdx.x, h = blockIdx.y;
  const float *p = part + (static_cast<size_t>(j) * n_head + h) * splits * (hd + 2);
  float mb = -INFINITY;
  for (int s = 0; s < splits; s++) mb = fmaxf(mb, p[static_cast<size_t>(s) * (hd + 2)]);
  float l = 0.f;
  for (int s = 0; s < splits; s++) {
    const float m = p[static_cast<size_t>(s) * (hd + 2)];
    if (m != -INFINITY) l += __expf(m - mb) * p[static_cast<size_t>(s) * (hd + 2) + 1];
  }
  for (int d = threadIdx.x; d < hd; d += blockDim.x) {
    float v = 0.f;
    for (int s = 0; s < splits; s++) {
      const float m = p[static_cast<size_t>(s) * (hd + 2)];
      if (m != -INFINITY) v += __expf(m - mb) * p[static_cast<size_t>(s) * (hd + 2) + 2 + d];
    }
    out[(static_cast<size_t>(j) * n_head + h) * hd + d] = v / l;
  }
}

}  // namespace

extern "C" int rs_cuda_attention(rs_cuda_kv kv, int layer, const int32_t *pos, const int32_t *seq, int n,
                                 const float *q, int n_head, float *part, int part_states, float *out, void *stream) {
  if (n <= 0) return 0;
  const int group = n_head / kv.n_head_kv;
  if (group > kMaxGroup || kv.head_dim > 32 * kMaxDims || n_head % kv.n_head_kv != 0 || part_states < 1)
    return cudaErrorInvalidValue;
  const cudaStream_t s = static_cast<cudaStream_t>(stream);
  // part holds part_states (row, split) states per head: up to kMaxSplits splits of the
  // positions for few rows (decode: many blocks over one long sequence), one for many,
  // and rows in chunks when there are more of them than states.
  constexpr int kMaxSplits = 16;
  const int max_splits = kMaxSplits;
  const int cap = part_states;
  for (int j0 = 0; j0 < n; j0 += cap) {
    const int m = n - j0 < cap ? n - j0 : cap;
    const int splits = cap / m < max_splits ? cap / m : max_splits;
    RS_LAUNCH(attention_kernel, dim3(m, kv.n_head_kv, splits), 32 * kWarps, s, kv, layer, pos + j0, seq + j0,
              q + static_cast<size_t>(j0) * n_head * kv.head_dim, n_head, splits, part);
    RS_LAUNCH(combine_kernel, dim3(m, n_head), 128, s, part, n_head, kv.head_dim, splits,
              out + static_cast<size_t>(j0) * n_head * kv.head_dim);
  }
  return rs_cuda::status(cudaGetLastError());
}
