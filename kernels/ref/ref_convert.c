/* Reference conversions: activations to their vec-dot formats (rs_ref_from_float) and
 * every supported weight type back to f32 (rs_ref_to_float). Plain loops that follow
 * the block layouts in rs_blocks.h literally. */
#include <math.h>
#include <string.h>

#include "rs_blocks.h"
#include "rs_kernels.h"
#include "rs_ref_internal.h"

/* Rounding used by every activation quantiser, reference and SIMD alike: the IEEE
 * default (nearest, ties to even), which is what the SIMD round instructions do, so
 * optimised and reference activations are bit-identical. */
static inline int round_even(float v) { return (int)nearbyintf(v); }

static void ref_from_float_q8_0(const float *x, rs_block_q8_0 *y, int64_t n) {
  for (int64_t b = 0; b < n / RS_QK; b++) {
    const float *xb = x + b * RS_QK;
    float amax = 0.0f;
    for (int i = 0; i < RS_QK; i++) amax = fmaxf(amax, fabsf(xb[i]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = rs_fp32_to_fp16(d);
    for (int i = 0; i < RS_QK; i++) y[b].qs[i] = (int8_t)round_even(xb[i] * id);
  }
}

static void ref_from_float_q8_k(const float *x, rs_block_q8_k *y, int64_t n) {
  for (int64_t b = 0; b < n / RS_QK_K; b++) {
    const float *xb = x + b * RS_QK_K;
    float amax = 0.0f;
    for (int i = 0; i < RS_QK_K; i++) amax = fmaxf(amax, fabsf(xb[i]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = d;
    for (int i = 0; i < RS_QK_K; i++) y[b].qs[i] = (int8_t)round_even(xb[i] * id);
    for (int j = 0; j < RS_QK_K / 16; j++) {
      int s = 0;
      for (int i = 0; i < 16; i++) s += y[b].qs[16 * j + i];
      y[b].bsums[j] = (int16_t)s;
    }
  }
}

void rs_q8_0x_build_groups(void *row, int64_t n) {
  const rs_block_q8_0 *blk = (const rs_block_q8_0 *)row;
  rs_q8_0x_group *g = (rs_q8_0x_group *)((char *)row + (size_t)(n / RS_QK) * sizeof(rs_block_q8_0));
  for (int64_t gi = 0; gi < n / 128; gi++) {
    for (int b = 0; b < 4; b++) {
      const rs_block_q8_0 *ab = blk + 4 * gi + b;
      int sum = 0;
      for (int i = 0; i < RS_QK; i++) sum += ab->qs[i];
      memcpy(g[gi].lo + 16 * b, ab->qs, 16);
      memcpy(g[gi].hi + 16 * b, ab->qs + 16, 16);
      const float d = rs_fp16_to_fp32(ab->d);
      for (int l = 0; l < 4; l++) {
        g[gi].off[4 * b + l] = -2 * sum;
        g[gi].d[4 * b + l] = d;
      }
    }
  }
}

void rs_ref_from_float(rs_type vec_dot_type, const float *x, void *y, int64_t n) {
  switch (vec_dot_type) {
    case RS_TYPE_F32: memcpy(y, x, (size_t)n * sizeof(float)); break;
    case RS_TYPE_Q8_0: ref_from_float_q8_0(x, (rs_block_q8_0 *)y, n); break;
    case RS_TYPE_Q8_0X:
      ref_from_float_q8_0(x, (rs_block_q8_0 *)y, n);
      rs_q8_0x_build_groups(y, n);
      break;
    case RS_TYPE_Q8_K: ref_from_float_q8_k(x, (rs_block_q8_k *)y, n); break;
    default: break; /* not an activation format; callers check the traits first */
  }
}

static void ref_to_float_q4_k(const rs_block_q4_k *x, float *y, int64_t n) {
  for (int64_t b = 0; b < n / RS_QK_K; b++) {
    const float d = rs_fp16_to_fp32(x[b].d), dmin = rs_fp16_to_fp32(x[b].dmin);
    float *yb = y + b * RS_QK_K;
    for (int j = 0; j < 8; j++) {
      uint8_t sc, m;
      rs_get_scale_min_k4(j, x[b].scales, &sc, &m);
      const uint8_t *q = x[b].qs + 32 * (j / 2);
      const int shift = (j & 1) ? 4 : 0;
      for (int l = 0; l < 32; l++) yb[32 * j + l] = d * sc * ((q[l] >> shift) & 0xF) - dmin * m;
    }
  }
}

static void ref_to_float_q5_k(const rs_block_q5_k *x, float *y, int64_t n) {
  for (int64_t b = 0; b < n / RS_QK_K; b++) {
    const float d = rs_fp16_to_fp32(x[b].d), dmin = rs_fp16_to_fp32(x[b].dmin);
    float *yb = y + b * RS_QK_K;
    for (int j = 0; j < 8; j++) {
      uint8_t sc, m;
      rs_get_scale_min_k4(j, x[b].scales, &sc, &m);
      const uint8_t *q = x[b].qs + 32 * (j / 2);
      const int shift = (j & 1) ? 4 : 0;
      for (int l = 0; l < 32; l++) {
        const int v = ((q[l] >> shift) & 0xF) | (((x[b].qh[l] >> j) & 1) << 4);
        yb[32 * j + l] = d * sc * v - dmin * m;
      }
    }
  }
}

/* Q6_K element e of a super-block: chunk c = e / 128, r = e % 128, l = r % 32, k = r / 32.
 * Low 4 bits: ql[64c + l + 32*(k & 1)], nibble (k >> 1); high 2 bits: qh[32c + l] bits 2k. */
static int q6_k_value(const rs_block_q6_k *x, int e) {
  const int c = e / 128, r = e % 128, l = r % 32, k = r / 32;
  const int lo = (x->ql[64 * c + l + 32 * (k & 1)] >> (4 * (k >> 1))) & 0xF;
  const int hi = (x->qh[32 * c + l] >> (2 * k)) & 3;
  return (lo | (hi << 4)) - 32;
}

static void ref_to_float_q6_k(const rs_block_q6_k *x, float *y, int64_t n) {
  for (int64_t b = 0; b < n / RS_QK_K; b++) {
    const float d = rs_fp16_to_fp32(x[b].d);
    for (int e = 0; e < RS_QK_K; e++)
      y[b * RS_QK_K + e] = d * x[b].scales[e / 16] * q6_k_value(&x[b], e);
  }
}

void rs_ref_to_float(rs_type type, const void *x, float *y, int64_t n) {
  switch (type) {
    case RS_TYPE_F32: memcpy(y, x, (size_t)n * sizeof(float)); break;
    case RS_TYPE_F16:
      for (int64_t i = 0; i < n; i++) y[i] = rs_fp16_to_fp32(((const uint16_t *)x)[i]);
      break;
    case RS_TYPE_BF16:
      for (int64_t i = 0; i < n; i++) y[i] = rs_bf16_to_fp32(((const uint16_t *)x)[i]);
      break;
    case RS_TYPE_Q4_0: {
      const rs_block_q4_0 *b = (const rs_block_q4_0 *)x;
      for (int64_t i = 0; i < n / RS_QK; i++) {
        const float d = rs_fp16_to_fp32(b[i].d);
        for (int j = 0; j < 16; j++) {
          y[i * RS_QK + j] = ((b[i].qs[j] & 0xF) - 8) * d;
          y[i * RS_QK + j + 16] = ((b[i].qs[j] >> 4) - 8) * d;
        }
      }
      break;
    }
    case RS_TYPE_Q8_0: {
      const rs_block_q8_0 *b = (const rs_block_q8_0 *)x;
      for (int64_t i = 0; i < n / RS_QK; i++) {
        const float d = rs_fp16_to_fp32(b[i].d);
        for (int j = 0; j < RS_QK; j++) y[i * RS_QK + j] = b[i].qs[j] * d;
      }
      break;
    }
    case RS_TYPE_Q8_K: {
      const rs_block_q8_k *b = (const rs_block_q8_k *)x;
      for (int64_t i = 0; i < n / RS_QK_K; i++)
        for (int j = 0; j < RS_QK_K; j++) y[i * RS_QK_K + j] = b[i].qs[j] * b[i].d;
      break;
    }
    case RS_TYPE_Q4_K: ref_to_float_q4_k((const rs_block_q4_k *)x, y, n); break;
    case RS_TYPE_Q5_K: ref_to_float_q5_k((const rs_block_q5_k *)x, y, n); break;
    case RS_TYPE_Q6_K: ref_to_float_q6_k((const rs_block_q6_k *)x, y, n); break;
    default: break;
  }
}
