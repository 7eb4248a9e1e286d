/* The portable ISA: what any CPU runs (and the only one off x86-64). The matmul
 * kernels are the reference dots behind a generic tile loop; the float kernels are
 * the reference ones. */
#include <string.h>

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
static void from_float_q8_0(const float *x, void *y, int64_t n) { rs_ref_from_float(RS_TYPE_Q8_0, x, y, n); }
static void from_float_q8_k(const float *x, void *y, int64_t n) { rs_ref_from_float(RS_TYPE_Q8_K, x, y, n); }
static void from_float_q8_0x(const float *x, void *y, int64_t n) { rs_ref_from_float(RS_TYPE_Q8_0X, x, y, n); }

#define VEC_DOT(name, type)                                                     \
  static void vec_dot_##name(int64_t n, float *out, const void *w, const void *a) { \
    *out = rs_ref_vec_dot(type, n, w, a);                                       \
  }                                                                             \
  static void gemm_##name(int64_t n, int nr, int nc, const void *w, size_t ws, const void *a, \
                          size_t as, float *out, size_t os) {                   \
    for (int c = 0; c < nc; c++)                                                \
      for (int r = 0; r < nr; r++)                                              \
        out[c * os + r] = rs_ref_vec_dot(type, n, (const char *)w + r * ws, (const char *)a + c * as); \
  }
VEC_DOT(f32, RS_TYPE_F32)
VEC_DOT(f16, RS_TYPE_F16)
VEC_DOT(bf16, RS_TYPE_BF16)
VEC_DOT(q4_0, RS_TYPE_Q4_0)
VEC_DOT(q8_0, RS_TYPE_Q8_0)
VEC_DOT(q4_k, RS_TYPE_Q4_K)
VEC_DOT(q5_k, RS_TYPE_Q5_K)
VEC_DOT(q6_k, RS_TYPE_Q6_K)

static float dot_f32(const float *a, const float *b, int n) {
  float s = 0.0f;
  for (int i = 0; i < n; i++) s += a[i] * b[i];
  return s;
}
static float dot_f32_f16(const float *a, const uint16_t *b, int n) {
  float s = 0.0f;
  for (int i = 0; i < n; i++) s += a[i] * rs_fp16_to_fp32(b[i]);
  return s;
}
static void axpy_f16(float *y, float a, const uint16_t *x, int n) {
  for (int i = 0; i < n; i++) y[i] += a * rs_fp16_to_fp32(x[i]);
}
static void f32_to_f16_row(const float *x, uint16_t *y, int n) {
  for (int i = 0; i < n; i++) y[i] = rs_fp32_to_fp16(x[i]);
}
static uint64_t stream_read(const void *p, size_t bytes) {
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

#define MM(name, ff) {ff, rs_scalar_to_float_##name, vec_dot_##name, gemm_##name}
const rs_isa_tables rs_tables_scalar = {
    .mm = {
        [RS_TYPE_F32] = MM(f32, rs_scalar_from_float_f32),
        [RS_TYPE_F16] = MM(f16, rs_scalar_from_float_f32),
        [RS_TYPE_BF16] = MM(bf16, rs_scalar_from_float_f32),
        [RS_TYPE_Q4_0] = MM(q4_0, from_float_q8_0x),
        [RS_TYPE_Q8_0] = MM(q8_0, from_float_q8_0),
        [RS_TYPE_Q4_K] = MM(q4_k, from_float_q8_k),
        [RS_TYPE_Q5_K] = MM(q5_k, from_float_q8_k),
        [RS_TYPE_Q6_K] = MM(q6_k, from_float_q8_k),
    },
    .fk = {RS_ISA_SCALAR, rs_ref_rmsnorm, rs_ref_rope, rs_ref_softmax, dot_f32, dot_f32_f16,
           axpy_f16, f32_to_f16_row, rs_ref_ffn_act, stream_read},
};
