// Activations quantised as the CPU quantises them for quantised weights, and the exact
// integer dot product of one 32-value unit of weights with them (matvec.cu, ffn_hot.cu).
// Q8_0 format for Q4_0 and Q8_0 weights: per 32 values d = amax / 127, rounded to f16;
// Q8_K for the K-quants: per 256 values, d in f32; values rounded to nearest even.
#pragma once

#include "rs_cuda_compat.cuh"

namespace rs_cuda {

// One 32-value unit of quantised activations: the d its dot product is scaled by, and the
// values. Row r's units are act + r * (cols / 32).
struct Act {
  float d;
  int8_t q[32];
};
static_assert(sizeof(Act) == 36, "36 bytes per 32 activations (the workspace's act_q)");

// block (= 32 for Q8_0 activations, 256 for Q8_K): grid (cols / 256 rounded up, n), 256
// threads, one value each.
static __global__ void quantize_kernel(const float *x, int64_t cols, int block, Act *act) {
  const int j = blockIdx.y;
  const int64_t e = static_cast<int64_t>(blockIdx.x) * 256 + threadIdx.x;
  const bool in = e < cols;
  const float v = in ? x[j * cols + e] : 0.f;
  float amax = rs_cuda::warp_max(fabsf(v));  // per 32 values
  if (block == 256) {
    __shared__ float wmax[8];
    if (threadIdx.x % 32 == 0) wmax[threadIdx.x / 32] = amax;
    __syncthreads();
    amax = 0.f;
    for (int w = 0; w < 8; w++) amax = fmaxf(amax, wmax[w]);
  }
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  if (!in) return;
  Act &a = act[(j * cols + e) / 32];
  a.q[e % 32] = static_cast<int8_t>(__float2int_rn(v * id));
  if (e % 32 == 0) a.d = block == 32 ? rs_cuda::h2f(rs_cuda::f2h(d)) : d;
}

__device__ __forceinline__ int pack4(int a, int b, int c, int d) {
  return (a & 0xff) | ((b & 0xff) << 8) | ((c & 0xff) << 16) | (static_cast<int>(static_cast<unsigned>(d & 0xff)) << 24);
}
__device__ __forceinline__ int act4(const Act &a, int i) {
  return pack4(a.q[4 * i], a.q[4 * i + 1], a.q[4 * i + 2], a.q[4 * i + 3]);
}

// One weight unit (32 values) of type T dotted with one activation unit, scaled.
template <int T>
__device__ __forceinline__ float unit_dot(const uint8_t *row, int64_t u, const Act &a) {
  if (T == rs_cuda::kQ4_0) {
    const uint8_t *b = row + u * 18, *qs = b + 2;
    int isum = 0;
    for (int i = 0; i < 4; i++) {
      isum = __dp4a(pack4((qs[4 * i] & 0xF) - 8, (qs[4 * i + 1] & 0xF) - 8, (qs[4 * i + 2] & 0xF) - 8, (qs[4 * i + 3] & 0xF) - 8),
                    act4(a, i), isum);
      isum = __dp4a(pack4((qs[4 * i] >> 4) - 8, (qs[4 * i + 1] >> 4) - 8, (qs[4 * i + 2] >> 4) - 8, (qs[4 * i + 3] >> 4) - 8),
                    act4(a, i + 4), isum);
    }
    return rs_cuda::h2f(rs_cuda::load_u16(b)) * a.d * static_cast<float>(isum);
  } else if (T == rs_cuda::kQ8_0) {
    const uint8_t *b = row + u * 34;
    const int8_t *qs = reinterpret_cast<const int8_t *>(b + 2);
    int isum = 0;
    for (int i = 0; i < 8; i++) isum = __dp4a(pack4(qs[4 * i], qs[4 * i + 1], qs[4 * i + 2], qs[4 * i + 3]), act4(a, i), isum);
    return rs_cuda::h2f(rs_cuda::load_u16(b)) * a.d * static_cast<float>(isum);
  } else if (T == rs_cuda::kQ4_K || T == rs_cuda::kQ5_K) {
    // Sub-block j of its super-block: d * sc_j * dot(q, a) - dmin * m_j * sum(a).
    const uint8_t *b = row + (u / 8) * (T == rs_cuda::kQ4_K ? 144 : 176);
    const int j = static_cast<int>(u % 8);
    int sc, m;
    rs_cuda::k4_scale_min(j, b + 4, &sc, &m);
    const uint8_t *qs = b + (T == rs_cuda::kQ4_K ? 16 : 48) + 32 * (j / 2);
    const int shift = (j & 1) * 4;
    int dot = 0, asum = 0;
    for (int i = 0; i < 8; i++) {
      int q[4];
      for (int k = 0; k < 4; k++) {
        q[k] = (qs[4 * i + k] >> shift) & 0xF;
        if (T == rs_cuda::kQ5_K) q[k] |= ((b[16 + 4 * i + k] >> j) & 1) << 4;
      }
      dot = __dp4a(pack4(q[0], q[1], q[2], q[3]), act4(a, i), dot);
      asum = __dp4a(0x01010101, act4(a, i), asum);
    }
    return rs_cuda::h2f(rs_cuda::load_u16(b)) * a.d * static_cast<float>(sc * dot) -
           rs_cuda::h2f(rs_cuda::load_u16(b + 2)) * a.d * static_cast<float>(m * asum);
  } else {  // Q6_K: two 16-value halves with their own scales
    const uint8_t *b = row + (u / 8) * 210;
    int isum = 0;
    for (int half = 0; half < 2; half++) {
      int dot = 0;
      const int r0 = static_cast<int>(u % 8) * 32 + 16 * half;
      for (int i = 0; i < 4; i++) {
        int q[4];
        for (int k = 0; k < 4; k++) {
          const int r = r0 + 4 * i + k, c = r / 128, rr = r % 128, l = rr % 32, kk = rr / 32;
          const int lo = (b[64 * c + l + 32 * (kk & 1)] >> (4 * (kk >> 1))) & 0xF, hi = (b[128 + 32 * c + l] >> (2 * kk)) & 3;
          q[k] = (lo | (hi << 4)) - 32;
        }
        dot = __dp4a(pack4(q[0], q[1], q[2], q[3]), act4(a, 4 * half + i), dot);
      }
      isum += static_cast<int8_t>(b[192 + r0 / 16]) * dot;
    }
    return rs_cuda::h2f(rs_cuda::load_u16(b + 208)) * a.d * static_cast<float>(isum);
  }
}

__host__ __device__ constexpr bool quantised(int t) {
  return t == kQ4_0 || t == kQ8_0 || t == kQ4_K || t == kQ5_K || t == kQ6_K;
}
// Activation block size for weights of type t: 32 (Q8_0) or 256 (Q8_K).
__host__ __device__ constexpr int act_block(int t) { return t == kQ4_0 || t == kQ8_0 ? 32 : 256; }

// Quantises x[n][cols] into act (cols a multiple of the block).
inline void quantize_rows(const float *x, int n, int64_t cols, int block, Act *act, cudaStream_t s) {
  RS_LAUNCH(quantize_kernel, dim3(static_cast<unsigned>((cols + 255) / 256), static_cast<unsigned>(n)), 256, s, x, cols, block, act);
}

}  // namespace rs_cuda
