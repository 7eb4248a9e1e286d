/* rs_attention_gqa: the query heads that share one KV head (grouped-query attention),
 * attended together, so each cached K and V row is converted from f16 once for the
 * group instead of once per head, and the group's outputs stay in registers over all
 * positions. AVX-512 for head_dim a multiple of 16; otherwise (and on other ISAs) one
 * head at a time through that ISA's dot/axpy kernels. */
#include <string.h>

#include "rs_kernels.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define RS_X86 1
#endif

static void gqa_per_head(const rs_float_kernels *fk, float *out, const float *q, int n_q, const uint16_t *k,
                         const uint16_t *v, int t_len, int head_dim, size_t row_stride, float scale, float *scratch) {
  for (int g = 0; g < n_q; g++)
    rs_attention_head_with(fk, out + (size_t)g * head_dim, q + (size_t)g * head_dim, k, v, t_len, head_dim, row_stride,
                           scale, scratch + (size_t)g * t_len);
}

#ifdef RS_X86

#define T512 __attribute__((target("avx512f,avx512vl,avx2,fma,f16c")))

T512 static inline __m512 ldh(const uint16_t *p) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p)); }

/* Up to 4 heads (G) over one 64-wide slice of the head (4 vectors): out += p[g][t] * v[t]. */
T512 static void out_slice4(float *out, int G, int head_dim, const float *p, int t_len, const uint16_t *v,
                            size_t row_stride) {
  __m512 o[4][4];
  for (int g = 0; g < 4; g++)
    for (int c = 0; c < 4; c++) o[g][c] = _mm512_setzero_ps();
  for (int t = 0; t < t_len; t++) {
    const uint16_t *vt = v + (size_t)t * row_stride;
    const __m512 v0 = ldh(vt), v1 = ldh(vt + 16), v2 = ldh(vt + 32), v3 = ldh(vt + 48);
    for (int g = 0; g < 4; g++) {
      if (g >= G) break;
      const __m512 s = _mm512_set1_ps(p[(size_t)g * t_len + t]);
      o[g][0] = _mm512_fmadd_ps(s, v0, o[g][0]);
      o[g][1] = _mm512_fmadd_ps(s, v1, o[g][1]);
      o[g][2] = _mm512_fmadd_ps(s, v2, o[g][2]);
      o[g][3] = _mm512_fmadd_ps(s, v3, o[g][3]);
    }
  }
  for (int g = 0; g < G; g++)
    for (int c = 0; c < 4; c++) _mm512_storeu_ps(out + (size_t)g * head_dim + 16 * c, o[g][c]);
}

/* One vector (16 dims) of the head at a time, for a slice narrower than 64. */
T512 static void out_slice1(float *out, int G, int head_dim, const float *p, int t_len, const uint16_t *v,
                            size_t row_stride) {
  __m512 o[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
  for (int t = 0; t < t_len; t++) {
    const __m512 vt = ldh(v + (size_t)t * row_stride);
    for (int g = 0; g < 4; g++) {
      if (g >= G) break;
      o[g] = _mm512_fmadd_ps(_mm512_set1_ps(p[(size_t)g * t_len + t]), vt, o[g]);
    }
  }
  for (int g = 0; g < G; g++) _mm512_storeu_ps(out + (size_t)g * head_dim, o[g]);
}

T512 static void gqa_avx512(const rs_float_kernels *fk, float *out, const float *q, int n_q, const uint16_t *k,
                            const uint16_t *v, int t_len, int head_dim, size_t row_stride, float scale,
                            float *scratch) {
  for (int g0 = 0; g0 < n_q; g0 += 4) {
    const int G = n_q - g0 < 4 ? n_q - g0 : 4;
    const float *qg = q + (size_t)g0 * head_dim;
    float *p = scratch + (size_t)g0 * t_len, *og = out + (size_t)g0 * head_dim;
    /* scores p[g][t] = scale * q[g] . k[t] */
    for (int t = 0; t < t_len; t++) {
      const uint16_t *kt = k + (size_t)t * row_stride;
      __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
      for (int c = 0; c < head_dim; c += 16) {
        const __m512 kc = ldh(kt + c);
        for (int g = 0; g < 4; g++) {
          if (g >= G) break;
          acc[g] = _mm512_fmadd_ps(_mm512_loadu_ps(qg + (size_t)g * head_dim + c), kc, acc[g]);
        }
      }
      for (int g = 0; g < G; g++) p[(size_t)g * t_len + t] = _mm512_reduce_add_ps(acc[g]) * scale;
    }
    for (int g = 0; g < G; g++) fk->softmax(p + (size_t)g * t_len, t_len);
    int c0 = 0;
    for (; c0 + 64 <= head_dim; c0 += 64) out_slice4(og + c0, G, head_dim, p, t_len, v + c0, row_stride);
    for (; c0 < head_dim; c0 += 16) out_slice1(og + c0, G, head_dim, p, t_len, v + c0, row_stride);
  }
}

#endif /* RS_X86 */

void rs_attention_gqa(rs_isa isa, float *out, const float *q, int n_q, const uint16_t *k, const uint16_t *v,
                      int t_len, int head_dim, size_t row_stride, float scale, float *scratch) {
  const rs_float_kernels *fk = rs_cpu_float_kernels(isa);
#ifdef RS_X86
  if (fk->isa == RS_ISA_AVX512 && head_dim % 16 == 0) {
    gqa_avx512(fk, out, q, n_q, k, v, t_len, head_dim, row_stride, scale, scratch);
    return;
  }
#endif
  gqa_per_head(fk, out, q, n_q, k, v, t_len, head_dim, row_stride, scale, scratch);
}
