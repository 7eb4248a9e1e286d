// What every kernel file includes: CUDA itself under nvcc, or the CPU emulator
// (emu/cuda_emu.h) when compiled as C++ with RS_CUDA_EMU; and the pieces the kernels
// share: launches, f16/bf16 from raw bits, and dequantisation of the weight types in
// the ggml block layouts (kernels/ref/rs_blocks.h is the authority on those layouts).
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <algorithm>

#ifdef RS_CUDA_EMU
#include "emu/cuda_emu.h"
#else
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#define RS_LAUNCH(kernel, grid, block, stream, ...) kernel<<<(grid), (block), 0, (stream)>>>(__VA_ARGS__)
#endif

#include "rs_cuda.h"

namespace rs_cuda {

// GGUF type ids (kernels/include/rs_kernels.h).
enum Type : int { kF32 = 0, kF16 = 1, kQ4_0 = 2, kQ8_0 = 8, kQ4_K = 12, kQ5_K = 13, kQ6_K = 14, kBF16 = 30 };

inline bool supported(int t) {
  return t == kF32 || t == kF16 || t == kBF16 || t == kQ8_0 || t == kQ4_0 || t == kQ4_K || t == kQ5_K || t == kQ6_K;
}

__device__ __forceinline__ float h2f(uint16_t h) {
#ifdef RS_CUDA_EMU
  return rs_emu::half_to_float(h);
#else
  return __half2float(__ushort_as_half(h));
#endif
}

// Float to half, round to nearest even (what the CPU's F16C conversion does).
__device__ __forceinline__ uint16_t f2h(float f) {
#ifdef RS_CUDA_EMU
  return rs_emu::float_to_half(f);
#else
  return __half_as_ushort(__float2half_rn(f));
#endif
}

__device__ __forceinline__ float bf2f(uint16_t b) { return __uint_as_float(static_cast<uint32_t>(b) << 16); }

__device__ __forceinline__ uint16_t load_u16(const uint8_t *p) {
  return static_cast<uint16_t>(p[0] | (p[1] << 8));
}

// Bytes of one row of n elements of type t, and elements per block.
__host__ __device__ inline int block_elems(int t) {
  return t == kQ4_0 || t == kQ8_0 ? 32 : (t == kQ4_K || t == kQ5_K || t == kQ6_K) ? 256 : 1;
}
__host__ __device__ inline int block_bytes(int t) {
  switch (t) {
    case kF32: return 4;
    case kF16: case kBF16: return 2;
    case kQ4_0: return 18;
    case kQ8_0: return 34;
    case kQ4_K: return 144;
    case kQ5_K: return 176;
    case kQ6_K: return 210;
    default: return 0;
  }
}
__host__ __device__ inline size_t row_bytes(int t, int64_t n) {
  return static_cast<size_t>(n / block_elems(t)) * static_cast<size_t>(block_bytes(t));
}

__device__ __forceinline__ void k4_scale_min(int j, const uint8_t *q, int *sc, int *m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// out[0..8) = elements [e, e + 8) of a row of type T (e a multiple of 8).
template <int T>
__device__ __forceinline__ void dequant8(const uint8_t *row, int64_t e, float *out) {
  if (T == kF32) {
    const float *r = reinterpret_cast<const float *>(row) + e;
    for (int i = 0; i < 8; i++) out[i] = r[i];
  } else if (T == kF16 || T == kBF16) {
    const uint8_t *r = row + 2 * e;
    for (int i = 0; i < 8; i++) out[i] = T == kF16 ? h2f(load_u16(r + 2 * i)) : bf2f(load_u16(r + 2 * i));
  } else if (T == kQ8_0) {
    const uint8_t *b = row + (e / 32) * 34;
    const float d = h2f(load_u16(b));
    const int8_t *q = reinterpret_cast<const int8_t *>(b + 2) + (e % 32);
    for (int i = 0; i < 8; i++) out[i] = q[i] * d;
  } else if (T == kQ4_0) {
    // Low nibbles of qs[0..15] are elements 0..15, high nibbles 16..31.
    const uint8_t *b = row + (e / 32) * 18;
    const float d = h2f(load_u16(b));
    const int g = static_cast<int>(e % 32) / 8;  // which 8 of the 32
    const uint8_t *q = b + 2 + (g & 1) * 8;
    const int shift = (g >> 1) * 4;
    for (int i = 0; i < 8; i++) out[i] = (((q[i] >> shift) & 0xF) - 8) * d;
  } else if (T == kQ4_K || T == kQ5_K) {
    const int stride = T == kQ4_K ? 144 : 176;
    const uint8_t *b = row + (e / 256) * stride;
    const float d = h2f(load_u16(b)), dmin = h2f(load_u16(b + 2));
    const int r = static_cast<int>(e % 256), j = r / 32, l = r % 32;
    int sc, m;
    k4_scale_min(j, b + 4, &sc, &m);
    const uint8_t *qs = b + (T == kQ4_K ? 16 : 48) + 32 * (j / 2) + l;
    const int shift = (j & 1) * 4;
    for (int i = 0; i < 8; i++) {
      int v = (qs[i] >> shift) & 0xF;
      if (T == kQ5_K) v |= ((b[16 + l + i] >> j) & 1) << 4;
      out[i] = d * sc * v - dmin * m;
    }
  } else if (T == kQ6_K) {
    const uint8_t *b = row + (e / 256) * 210;
    const int r = static_cast<int>(e % 256), c = r / 128, rr = r % 128, l = rr % 32, k = rr / 32;
    const float d = h2f(load_u16(b + 208)) * static_cast<int8_t>(b[192 + r / 16]);
    const uint8_t *ql = b + 64 * c + l + 32 * (k & 1);
    const uint8_t *qh = b + 128 + 32 * c + l;
    for (int i = 0; i < 8; i++) {
      const int lo = (ql[i] >> (4 * (k >> 1))) & 0xF, hi = (qh[i] >> (2 * k)) & 3;
      out[i] = d * ((lo | (hi << 4)) - 32);
    }
  }
}

// Element e of a row of type T.
template <int T>
__device__ __forceinline__ float dequant1(const uint8_t *row, int64_t e) {
  if (T == kF32) return reinterpret_cast<const float *>(row)[e];
  if (T == kF16) return h2f(load_u16(row + 2 * e));
  if (T == kBF16) return bf2f(load_u16(row + 2 * e));
  if (T == kQ8_0) {
    const uint8_t *b = row + (e / 32) * 34;
    return reinterpret_cast<const int8_t *>(b + 2)[e % 32] * h2f(load_u16(b));
  }
  if (T == kQ4_0) {
    const uint8_t *b = row + (e / 32) * 18;
    const int i = static_cast<int>(e % 32);
    const int q = i < 16 ? b[2 + i] & 0xF : b[2 + i - 16] >> 4;
    return (q - 8) * h2f(load_u16(b));
  }
  if (T == kQ4_K || T == kQ5_K) {
    const uint8_t *b = row + (e / 256) * (T == kQ4_K ? 144 : 176);
    const int r = static_cast<int>(e % 256), j = r / 32, l = r % 32;
    int sc, m;
    k4_scale_min(j, b + 4, &sc, &m);
    int v = (b[(T == kQ4_K ? 16 : 48) + 32 * (j / 2) + l] >> ((j & 1) * 4)) & 0xF;
    if (T == kQ5_K) v |= ((b[16 + l] >> j) & 1) << 4;
    return h2f(load_u16(b)) * sc * v - h2f(load_u16(b + 2)) * m;
  }
  // Q6_K
  const uint8_t *b = row + (e / 256) * 210;
  const int r = static_cast<int>(e % 256), c = r / 128, rr = r % 128, l = rr % 32, k = rr / 32;
  const int lo = (b[64 * c + l + 32 * (k & 1)] >> (4 * (k >> 1))) & 0xF, hi = (b[128 + 32 * c + l] >> (2 * k)) & 3;
  return h2f(load_u16(b + 208)) * static_cast<int8_t>(b[192 + r / 16]) * ((lo | (hi << 4)) - 32);
}

// The same, with the type chosen at run time (for kernels where one switch per call is cheap).
__device__ __forceinline__ void dequant8_any(int t, const uint8_t *row, int64_t e, float *out) {
  switch (t) {
    case kF32: dequant8<kF32>(row, e, out); break;
    case kF16: dequant8<kF16>(row, e, out); break;
    case kBF16: dequant8<kBF16>(row, e, out); break;
    case kQ8_0: dequant8<kQ8_0>(row, e, out); break;
    case kQ4_0: dequant8<kQ4_0>(row, e, out); break;
    case kQ4_K: dequant8<kQ4_K>(row, e, out); break;
    case kQ5_K: dequant8<kQ5_K>(row, e, out); break;
    default: dequant8<kQ6_K>(row, e, out); break;
  }
}

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

__device__ __forceinline__ uint64_t globaltimer() {
#ifdef RS_CUDA_EMU
  return rs_emu::globaltimer_ns();
#else
  uint64_t t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
#endif
}

inline int status(cudaError_t e) { return static_cast<int>(e); }

// A launcher's body for every weight type: RS_FOR_TYPE(t, CALL) expands to a switch
// whose case for type T runs CALL(T) (a macro taking the type id as a constant).
#define RS_FOR_TYPE(t, CALL)                              \
  switch (t) {                                            \
    case rs_cuda::kF32: CALL(rs_cuda::kF32); break;       \
    case rs_cuda::kF16: CALL(rs_cuda::kF16); break;       \
    case rs_cuda::kBF16: CALL(rs_cuda::kBF16); break;     \
    case rs_cuda::kQ8_0: CALL(rs_cuda::kQ8_0); break;     \
    case rs_cuda::kQ4_0: CALL(rs_cuda::kQ4_0); break;     \
    case rs_cuda::kQ4_K: CALL(rs_cuda::kQ4_K); break;     \
    case rs_cuda::kQ5_K: CALL(rs_cuda::kQ5_K); break;     \
    case rs_cuda::kQ6_K: CALL(rs_cuda::kQ6_K); break;     \
    default: return cudaErrorInvalidValue;                \
  }

}  // namespace rs_cuda
