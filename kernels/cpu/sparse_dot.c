/* rs_dot_rows: several weight rows against one activation row in one pass, the phase-B
 * step of the sparse FFN (gate and up rows of one or two active neurons). Why fused: in
 * a sparse step each neuron is a random jump, so the cost is memory latency; walking
 * the rows side by side issues their cache misses together (more misses in flight) and
 * loads each activation group once for all rows.
 *
 * The AVX-512 Q4_0 variant (the Q4_0 generation path) runs, per row, exactly the
 * operations of avx512.c's vec_dot (same accumulator, same order, same reduction), so
 * each output is bit for bit what vec_dot gives: the sparse FFN with the exact predictor
 * still equals the dense one. The AVX2 Q4_0 variant lives in avx2.c (compiled for
 * AVX2), where it runs the operations of that file's Q4_0 tile. Other types and ISAs
 * call the type's vec_dot per row. */
#include <string.h>

#include "../ref/rs_blocks.h"
#include "rs_cpu_internal.h"
#include "rs_sparse.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define RS_X86 1
#endif

static void dot_rows_generic(rs_isa isa, rs_type type, int64_t n, int nr, const void *const *w, const void *a,
                             float *out) {
  const rs_matmul_kernels *k = rs_cpu_matmul_kernels(type, isa);
  for (int r = 0; r < nr; r++) k->vec_dot(n, out + r, w[r], a);
}

#ifdef RS_X86

static inline uint16_t half_at(const char *p) {
  uint16_t h;
  memcpy(&h, p, 2);
  return h;
}

/* ---------- AVX-512 VNNI: Q4_0 x Q8_0X groups (as avx512.c's tile_x0) ---------- */

#define T5                                                                                    \
  __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni"),      \
                 always_inline)) static inline

static const uint32_t k_d_idx[16] = {0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3};

T5 __m512i load4x16(const char *p, size_t stride) {
  return _mm512_inserti64x4(
      _mm512_castsi256_si512(_mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)p)),
                                                     _mm_loadu_si128((const __m128i *)(p + stride)), 1)),
      _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(p + 2 * stride))),
                              _mm_loadu_si128((const __m128i *)(p + 3 * stride)), 1),
      1);
}

/* Tail block (n not a multiple of 128): 256-bit VNNI integer dot, as avx512.c. */
T5 int idot1_q4(const char *wb, const rs_block_q8_0 *ab) {
  const __m128i v = _mm_loadu_si128((const __m128i *)(wb + 2));
  const __m256i wq = _mm256_and_si256(_mm256_inserti128_si256(_mm256_castsi128_si256(v), _mm_srli_epi16(v, 4), 1),
                                      _mm256_set1_epi8(0x0F));
  const __m256i av = _mm256_loadu_si256((const __m256i *)ab->qs);
  const __m256i z = _mm256_setzero_si256();
  const __m256i d = _mm256_sub_epi32(_mm256_dpbusd_epi32(z, wq, av), _mm256_dpbusd_epi32(z, _mm256_set1_epi8(8), av));
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(d), _mm256_extracti128_si256(d, 1));
  s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 1));
  return _mm_cvtsi128_si32(s);
}

T5 void q4_rows_avx512(int RM, int64_t nb, const char *const *w, const char *a, float *out) {
  const int64_t ng = nb / 4;
  const size_t bs = sizeof(rs_block_q4_0), gb = 4 * sizeof(rs_block_q4_0);
  const rs_q8_0x_group *grp = (const rs_q8_0x_group *)(a + (size_t)nb * sizeof(rs_block_q8_0));
  const __m512i d_idx = _mm512_loadu_si512(k_d_idx), m4 = _mm512_set1_epi8(0x0F);
  __m512 acc[4];
  for (int r = 0; r < RM; r++) acc[r] = _mm512_setzero_ps();
  for (int64_t gi = 0; gi < ng; gi++) {
    const rs_q8_0x_group *g = grp + gi;
    const __m512i off = _mm512_loadu_si512(g->off), alo = _mm512_loadu_si512(g->lo),
                  ahi = _mm512_loadu_si512(g->hi);
    const __m512 da = _mm512_loadu_ps(g->d);
    for (int r = 0; r < RM; r++) {
      const char *p = w[r] + gi * gb;
      const __m512i qs = load4x16(p + 2, bs);
      const __m512i lo = _mm512_and_si512(qs, m4), hi = _mm512_and_si512(_mm512_srli_epi16(qs, 4), m4);
      const __m128i h = _mm_setr_epi16((short)half_at(p), (short)half_at(p + bs), (short)half_at(p + 2 * bs),
                                       (short)half_at(p + 3 * bs), 0, 0, 0, 0);
      const __m512 dw = _mm512_permutexvar_ps(d_idx, _mm512_castps128_ps512(_mm_cvtph_ps(h)));
      __m512i s = _mm512_dpbusd_epi32(off, lo, alo);
      s = _mm512_dpbusd_epi32(s, hi, ahi);
      acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw, da), acc[r]);
    }
  }
  const rs_block_q8_0 *ab = (const rs_block_q8_0 *)a;
  for (int r = 0; r < RM; r++) {
    float t = 0.0f;
    for (int64_t b = ng * 4; b < nb; b++)
      t += _cvtsh_ss(half_at(w[r] + b * bs)) * _cvtsh_ss(ab[b].d) * (float)idot1_q4(w[r] + b * bs, ab + b);
    out[r] = _mm512_reduce_add_ps(acc[r]) + t;
  }
}

__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni"))) static void q4_avx512(
    int nr, int64_t nb, const char *const *w, const char *a, float *out) {
  switch (nr) {
    case 4: q4_rows_avx512(4, nb, w, a, out); break;
    case 3: q4_rows_avx512(3, nb, w, a, out); break;
    case 2: q4_rows_avx512(2, nb, w, a, out); break;
    default: q4_rows_avx512(1, nb, w, a, out); break;
  }
}

#endif /* RS_X86 */

void rs_dot_rows(rs_isa isa, rs_type type, int64_t n, int nr, const void *const *w, const void *a, float *out) {
  isa = rs_cpu_resolve_isa(isa);
  if (nr < 1) return;
  if (nr > 4) {  /* in runs of 4: each output's operations do not depend on the grouping */
    for (int r0 = 0; r0 < nr; r0 += 4) rs_dot_rows(isa, type, n, nr - r0 < 4 ? nr - r0 : 4, w + r0, a, out + r0);
    return;
  }
#ifdef RS_X86
  if (type == RS_TYPE_Q4_0 && n % RS_QK == 0) {
    if (isa == RS_ISA_AVX512) {
      q4_avx512(nr, n / RS_QK, (const char *const *)w, (const char *)a, out);
      return;
    }
    if (isa == RS_ISA_AVX2) {
      rs_avx2_dot_rows_q4_0(nr, n / RS_QK, (const char *const *)w, (const char *)a, out);
      return;
    }
  }
#endif
  dot_rows_generic(isa, type, n, nr, w, a, out);
}
