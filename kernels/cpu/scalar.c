/* The portable ISA: what any CPU runs (and the only one off x86-64). Plain C matmul
 * kernels (integer block sums, float accumulation, a generic tile loop) and, for the
 * float kernels, the reference twins. */
#include <string.h>

#include "../ref/rs_blocks.h"
#include "rs_cpu_internal.h"

#define TO_FLOAT(name, type) \
  void rs_scalar_to_float_##name(const void *x, float *y, int64_t n) { rs_ref_to_float(type, x, y, n); }
TO_FLOAT(f32, RS_TYPE_F32)
TO_FLOAT(f16, RS_TYPE_F16)
TO_FLOAT(bf16, RS_TYPE_BF16)
TO_FLOAT(q4_0, RS_TYPE_Q4_0)
TO_FLOAT(q8_0, RS_TYPE_Q8_0)
TO_FLOAT(q4_k, RS_TYPE_Q4_K)
TO_FLOAT(q5_k, RS_TYPE_Q5_K)
TO_FLOAT(q6_k, RS_TYPE_Q6_K)

void rs_scalar_from_float_f32(const float *x, void *y, int64_t n) {
  memcpy(y, x, (size_t)n * sizeof(float));
}
static void from_float_q8_k(const float *x, void *y, int64_t n) { rs_ref_from_float(RS_TYPE_Q8_K, x, y, n); }
static void from_float_q8_0x(const float *x, void *y, int64_t n) { rs_ref_from_float(RS_TYPE_Q8_0X, x, y, n); }

/* ---------- matmul: plain C, but integer block sums and float accumulators (the
 * reference accumulates in double and decodes through floats) ---------- */

/* f16 -> f32 without branches (random signs made a branchy version mispredict every
 * other element): shifting the 15 low bits into f32 position and scaling by 2^112
 * re-biases the exponent (15 -> 127) and turns f16 subnormals into exact f32
 * normals; inf/nan only need the exponent forced, which compiles to a select. */
static inline float h2f(uint16_t h) {
  const uint32_t u = (uint32_t)(h & 0x7FFF) << 13;
  float f;
  memcpy(&f, &u, 4);
  f *= 0x1p112f;
  uint32_t r;
  memcpy(&r, &f, 4);
  r = ((h & 0x7C00) == 0x7C00) ? (u | 0x7F800000u) : r;
  r |= (uint32_t)(h & 0x8000) << 16;
  memcpy(&f, &r, 4);
  return f;
}

static inline float bf2f(uint16_t h) {
  const uint32_t u = (uint32_t)h << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}

static void vec_dot_f32(int64_t n, float *out, const void *w, const void *a) {
  const float *x = (const float *)w, *y = (const float *)a;
  float s[8] = {0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; k++) s[k] += x[i + k] * y[i + k];
  for (; i < n; i++) s[0] += x[i] * y[i];
  *out = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

static void vec_dot_f16(int64_t n, float *out, const void *w, const void *a) {
  const uint16_t *x = (const uint16_t *)w;
  const float *y = (const float *)a;
  float s[4] = {0};
  int64_t i = 0;
  for (; i + 4 <= n; i += 4)
    for (int k = 0; k < 4; k++) s[k] += h2f(x[i + k]) * y[i + k];
  for (; i < n; i++) s[0] += h2f(x[i]) * y[i];
  *out = (s[0] + s[1]) + (s[2] + s[3]);
}

static void vec_dot_bf16(int64_t n, float *out, const void *w, const void *a) {
  const uint16_t *x = (const uint16_t *)w;
  const float *y = (const float *)a;
  float s[4] = {0};
  int64_t i = 0;
  for (; i + 4 <= n; i += 4)
    for (int k = 0; k < 4; k++) s[k] += bf2f(x[i + k]) * y[i + k];
  for (; i < n; i++) s[0] += bf2f(x[i]) * y[i];
  *out = (s[0] + s[1]) + (s[2] + s[3]);
}

static void vec_dot_q4_0(int64_t n, float *out, const void *wv, const void *av) {
  const rs_block_q4_0 *w = (const rs_block_q4_0 *)wv;
  const rs_block_q8_0 *a = (const rs_block_q8_0 *)av; /* the Q8_0 prefix of Q8_0X */
  float sum = 0.0f;
  for (int64_t b = 0; b < n / RS_QK; b++) {
    int isum = 0;
    for (int j = 0; j < 16; j++)
      isum += ((w[b].qs[j] & 0xF) - 8) * a[b].qs[j] + ((w[b].qs[j] >> 4) - 8) * a[b].qs[j + 16];
    sum += h2f(w[b].d) * h2f(a[b].d) * (float)isum;
  }
  *out = sum;
}

static void vec_dot_q8_0(int64_t n, float *out, const void *wv, const void *av) {
  const rs_block_q8_0 *w = (const rs_block_q8_0 *)wv, *a = (const rs_block_q8_0 *)av;
  float sum = 0.0f;
  for (int64_t b = 0; b < n / RS_QK; b++) {
    int isum = 0;
    for (int j = 0; j < RS_QK; j++) isum += w[b].qs[j] * a[b].qs[j];
    sum += h2f(w[b].d) * h2f(a[b].d) * (float)isum;
  }
  *out = sum;
}

/* K-quants: per super-block, the levels of each 32 (Q4_K/Q5_K) or 16 (Q6_K) elements
 * are dotted in int, scaled by the integer sub-block scale, and the mins / the Q6_K
 * offset of 32 are applied through the activation's bsums. */
static void vec_dot_q45_k(int64_t n, float *out, const void *wv, const void *av, int five) {
  const rs_block_q8_k *a = (const rs_block_q8_k *)av;
  float sum = 0.0f;
  for (int64_t b = 0; b < n / RS_QK_K; b++) {
    const rs_block_q4_k *w4 = (const rs_block_q4_k *)wv + b;
    const rs_block_q5_k *w5 = (const rs_block_q5_k *)wv + b;
    const uint8_t *scales = five ? w5->scales : w4->scales, *qs = five ? w5->qs : w4->qs;
    int isum = 0, msum = 0;
    for (int j = 0; j < 8; j++) {
      uint8_t sc, m;
      rs_get_scale_min_k4(j, scales, &sc, &m);
      const uint8_t *q = qs + 32 * (j / 2);
      const int8_t *y = a[b].qs + 32 * j;
      const int shift = 4 * (j & 1);
      int dot = 0;
      if (five) {
        for (int l = 0; l < 32; l++) dot += (((q[l] >> shift) & 0xF) | (((w5->qh[l] >> j) & 1) << 4)) * y[l];
      } else {
        for (int l = 0; l < 32; l++) dot += ((q[l] >> shift) & 0xF) * y[l];
      }
      isum += sc * dot;
      msum += m * (a[b].bsums[2 * j] + a[b].bsums[2 * j + 1]);
    }
    const float d = h2f(five ? w5->d : w4->d) * a[b].d, dmin = h2f(five ? w5->dmin : w4->dmin) * a[b].d;
    sum += d * (float)isum - dmin * (float)msum;
  }
  *out = sum;
}
static void vec_dot_q4_k(int64_t n, float *out, const void *w, const void *a) { vec_dot_q45_k(n, out, w, a, 0); }
static void vec_dot_q5_k(int64_t n, float *out, const void *w, const void *a) { vec_dot_q45_k(n, out, w, a, 1); }

static void vec_dot_q6_k(int64_t n, float *out, const void *wv, const void *av) {
  const rs_block_q6_k *w = (const rs_block_q6_k *)wv;
  const rs_block_q8_k *a = (const rs_block_q8_k *)av;
  float sum = 0.0f;
  for (int64_t b = 0; b < n / RS_QK_K; b++) {
    int8_t lv[RS_QK_K]; /* levels 0..63, element order (the -32 goes through bsums) */
    for (int c = 0; c < 2; c++)
      for (int l = 0; l < 32; l++) {
        const uint8_t l0 = w[b].ql[64 * c + l], l1 = w[b].ql[64 * c + l + 32], h = w[b].qh[32 * c + l];
        lv[128 * c + l] = (int8_t)((l0 & 0xF) | ((h & 3) << 4));
        lv[128 * c + l + 32] = (int8_t)((l1 & 0xF) | (((h >> 2) & 3) << 4));
        lv[128 * c + l + 64] = (int8_t)((l0 >> 4) | (((h >> 4) & 3) << 4));
        lv[128 * c + l + 96] = (int8_t)((l1 >> 4) | (((h >> 6) & 3) << 4));
      }
    int isum = 0, msum = 0;
    for (int g = 0; g < 16; g++) {
      int dot = 0;
      for (int l = 0; l < 16; l++) dot += lv[16 * g + l] * a[b].qs[16 * g + l];
      isum += w[b].scales[g] * dot;
      msum += w[b].scales[g] * a[b].bsums[g];
    }
    sum += h2f(w[b].d) * a[b].d * (float)(isum - 32 * msum);
  }
  *out = sum;
}

/* gemm is vec_dot per output, so each result is the same whatever the batch (see
 * rs_cpu_internal.h); weight row outermost, so each row is read from memory once and
 * from L1 for the other activation rows. */
#define GEMM(name)                                                                              \
  static void gemm_##name(int64_t n, int nr, int nc, const void *w, size_t ws, const void *a,  \
                          size_t as, float *out, size_t os) {                                  \
    for (int r = 0; r < nr; r++)                                                               \
      for (int c = 0; c < nc; c++)                                                             \
        vec_dot_##name(n, &out[c * os + r], (const char *)w + r * ws, (const char *)a + c * as); \
  }
GEMM(f32)
GEMM(f16)
GEMM(bf16)
GEMM(q4_0)
GEMM(q8_0)
GEMM(q4_k)
GEMM(q5_k)
GEMM(q6_k)

static float dot_f32(const float *a, const float *b, int n) {
  float s = 0.0f;
  for (int i = 0; i < n; i++) s += a[i] * b[i];
  return s;
}
static float dot_f32_f16(const float *a, const uint16_t *b, int n) {
  float s = 0.0f;
  for (int i = 0; i < n; i++) s += a[i] * h2f(b[i]);
  return s;
}
static void axpy_f16(float *y, float a, const uint16_t *x, int n) {
  for (int i = 0; i < n; i++) y[i] += a * h2f(x[i]);
}
static void f32_to_f16_row(const float *x, uint16_t *y, int n) {
  for (int i = 0; i < n; i++) y[i] = rs_fp32_to_fp16(x[i]);
}
/* Without vector loads there is one way to read: every pattern is the plain loop. */
static uint64_t stream_read(const void *p, size_t bytes, rs_read_pattern pattern) {
  (void)pattern;
  const uint64_t *q = (const uint64_t *)p;
  uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  size_t i = 0, n = bytes / 8;
  for (; i + 4 <= n; i += 4) {
    s0 += q[i];
    s1 ^= q[i + 1];
    s2 += q[i + 2];
    s3 ^= q[i + 3];
  }
  for (; i < n; i++) s0 += q[i];
  for (size_t j = n * 8; j < bytes; j++) s1 += ((const uint8_t *)p)[j];
  return s0 ^ s1 ^ s2 ^ s3;
}

const rs_isa_tables rs_tables_scalar = {
    .mm = {
        [RS_TYPE_F32] = RS_MM_ENTRY(f32, rs_scalar_from_float_f32),
        [RS_TYPE_F16] = RS_MM_ENTRY(f16, rs_scalar_from_float_f32),
        [RS_TYPE_BF16] = RS_MM_ENTRY(bf16, rs_scalar_from_float_f32),
        [RS_TYPE_Q4_0] = RS_MM_X8_ENTRY(q4_0, from_float_q8_0x, rs_ref_q4_0x8_gemm),
        [RS_TYPE_Q8_0] = RS_MM_ENTRY(q8_0, from_float_q8_0x),
        [RS_TYPE_Q4_K] = RS_MM_ENTRY(q4_k, from_float_q8_k),
        [RS_TYPE_Q5_K] = RS_MM_ENTRY(q5_k, from_float_q8_k),
        [RS_TYPE_Q6_K] = RS_MM_ENTRY(q6_k, from_float_q8_k),
    },
    .fk = {RS_ISA_SCALAR, rs_ref_rmsnorm, rs_ref_rope, rs_ref_softmax, dot_f32, dot_f32_f16,
           axpy_f16, f32_to_f16_row, rs_ref_ffn_act, stream_read},
};
