/* Run-time choice of instruction set, and the public entry points that dispatch on
 * it. The SIMD tables live in translation units compiled with their own -m flags;
 * nothing from them is called unless cpuid (and the OS's saved-state support, which
 * gcc's __builtin_cpu_supports checks through xgetbv) says the CPU can run it. */
#include <stdlib.h>
#include <string.h>

#include "../ref/rs_ref_internal.h"
#include "rs_cpu_internal.h"

static rs_isa detect_cpu_isa(void) {
#if defined(__x86_64__)
  __builtin_cpu_init();
  const int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                   __builtin_cpu_supports("f16c");
  /* The AVX-512 kernels use VNNI (vpdpbusd) as well as F/BW/VL/DQ. */
  const int avx512 = avx2 && __builtin_cpu_supports("avx512f") &&
                     __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
                     __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vnni");
  if (avx512) return RS_ISA_AVX512;
  if (avx2) return RS_ISA_AVX2;
#endif
  return RS_ISA_SCALAR;
}

static rs_isa env_cap(void) {
  const char *s = getenv("RELU_SERVE_ISA");
  if (s == NULL || *s == '\0') return RS_ISA_BEST;
  if (strcmp(s, "scalar") == 0) return RS_ISA_SCALAR;
  if (strcmp(s, "avx2") == 0) return RS_ISA_AVX2;
  if (strcmp(s, "avx512") == 0) return RS_ISA_AVX512;
  return RS_ISA_BEST; /* unknown values do not cap; the server validates the variable */
}

rs_isa rs_cpu_best_isa(void) {
  /* -1: not computed yet. Computing twice from two threads gives the same answer, so
   * a relaxed atomic is enough. */
  static int cached = -1;
  int v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
  if (v < 0) {
    rs_isa hw = detect_cpu_isa(), cap = env_cap();
    v = (int)(cap != RS_ISA_BEST && cap < hw ? cap : hw);
    __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
  }
  return (rs_isa)v;
}

const char *rs_isa_name(rs_isa isa) {
  switch (isa) {
    case RS_ISA_SCALAR: return "scalar";
    case RS_ISA_AVX2: return "avx2";
    case RS_ISA_AVX512: return "avx512";
    case RS_ISA_BEST: return "best";
  }
  return "unknown";
}

rs_isa rs_cpu_resolve_isa(rs_isa isa) {
  const rs_isa best = rs_cpu_best_isa();
  if (isa == RS_ISA_SCALAR || isa == RS_ISA_AVX2 || isa == RS_ISA_AVX512)
    return isa < best ? isa : best;
  return best;
}

static const rs_isa_tables *tables(rs_isa isa) {
  switch (rs_cpu_resolve_isa(isa)) {
#if defined(__x86_64__)
    case RS_ISA_AVX512: return &rs_tables_avx512;
    case RS_ISA_AVX2: return &rs_tables_avx2;
#endif
    default: return &rs_tables_scalar;
  }
}

/* The best ISA's table, cached: the public float kernels are called per attention
 * row, so they skip re-resolving the ISA each time. */
static const rs_isa_tables *best_tables(void) {
  static const rs_isa_tables *cached = NULL;
  const rs_isa_tables *t = __atomic_load_n(&cached, __ATOMIC_ACQUIRE);
  if (t == NULL) {
    t = tables(RS_ISA_BEST);
    __atomic_store_n(&cached, t, __ATOMIC_RELEASE);
  }
  return t;
}

const rs_matmul_kernels *rs_cpu_matmul_kernels(rs_type type, rs_isa isa) {
  if ((int)type < 0 || (int)type >= RS_TYPE_COUNT) return NULL;
  const rs_matmul_kernels *k = &tables(isa)->mm[type];
  return k->vec_dot != NULL ? k : NULL;
}

const rs_float_kernels *rs_cpu_float_kernels(rs_isa isa) { return &tables(isa)->fk; }

void rs_quantize_row(rs_type type, const float *src, void *dst, int64_t n) {
  switch (type) {
    case RS_TYPE_F32: memcpy(dst, src, (size_t)n * sizeof(float)); break;
    case RS_TYPE_F16: {
      /* f32_to_f16_row takes an int count; convert in chunks for huge rows */
      const rs_float_kernels *fk = rs_cpu_float_kernels(RS_ISA_BEST);
      for (int64_t i = 0; i < n; i += 1 << 30) {
        const int64_t m = n - i < (1 << 30) ? n - i : (1 << 30);
        fk->f32_to_f16_row(src + i, (uint16_t *)dst + i, (int)m);
      }
      break;
    }
    case RS_TYPE_BF16:
      for (int64_t i = 0; i < n; i++) ((uint16_t *)dst)[i] = rs_fp32_to_bf16(src[i]);
      break;
    case RS_TYPE_Q4_0: rs_ref_quantize_q4_0(src, dst, n); break;
    case RS_TYPE_Q8_0: rs_ref_quantize_q8_0(src, dst, n); break;
    case RS_TYPE_Q4_K: rs_ref_quantize_q4_k(src, dst, n); break;
    case RS_TYPE_Q5_K: rs_ref_quantize_q5_k(src, dst, n); break;
    case RS_TYPE_Q6_K: rs_ref_quantize_q6_k(src, dst, n); break;
    default: break; /* unsupported: callers check rs_type_get_traits()->supported */
  }
}

void rs_rmsnorm(float *y, const float *x, const float *w, int n, float eps) {
  best_tables()->fk.rmsnorm(y, x, w, n, eps);
}
void rs_rope(float *x, int n_head, int head_dim, int pos, float freq_base) {
  best_tables()->fk.rope(x, n_head, head_dim, pos, freq_base);
}
void rs_softmax(float *x, int n) { best_tables()->fk.softmax(x, n); }
float rs_dot_f32(const float *a, const float *b, int n) { return best_tables()->fk.dot_f32(a, b, n); }
float rs_dot_f32_f16(const float *a, const uint16_t *b, int n) {
  return best_tables()->fk.dot_f32_f16(a, b, n);
}
void rs_axpy_f16(float *y, float a, const uint16_t *x, int n) { best_tables()->fk.axpy_f16(y, a, x, n); }
void rs_f32_to_f16_row(const float *x, uint16_t *y, int n) { best_tables()->fk.f32_to_f16_row(x, y, n); }
void rs_ffn_act(rs_act act, float *h, const float *gate, const float *up, int n) {
  best_tables()->fk.ffn_act(act, h, gate, up, n);
}
uint64_t rs_stream_read(const void *p, size_t bytes, rs_read_pattern pattern) {
  return best_tables()->fk.stream_read(p, bytes, pattern);
}

const char *rs_read_pattern_name(rs_read_pattern pattern) {
  switch (pattern) {
    case RS_READ_PLAIN: return "plain";
    case RS_READ_PREFETCH: return "prefetch";
    case RS_READ_NONTEMPORAL: return "nontemporal";
    case RS_READ_TWO_STREAMS: return "two-streams";
    default: return "?";
  }
}

void rs_attention_head_with(const rs_float_kernels *fk, float *out, const float *q,
                            const uint16_t *k, const uint16_t *v, int t_len, int head_dim,
                            size_t row_stride, float scale, float *scratch) {
  for (int t = 0; t < t_len; t++) scratch[t] = fk->dot_f32_f16(q, k + t * row_stride, head_dim) * scale;
  fk->softmax(scratch, t_len);
  memset(out, 0, (size_t)head_dim * sizeof(float));
  for (int t = 0; t < t_len; t++) fk->axpy_f16(out, scratch[t], v + t * row_stride, head_dim);
}

void rs_attention_head(float *out, const float *q, const uint16_t *k, const uint16_t *v,
                       int t_len, int head_dim, size_t row_stride, float scale, float *scratch) {
  rs_attention_head_with(&best_tables()->fk, out, q, k, v, t_len, head_dim, row_stride,
                         scale, scratch);
}
