/* The predictor stage of the sparse FFN: scores of 16-neuron tiles (rs_lowrank_scores)
 * and the list of neurons at or above the threshold (rs_select_ge). Why tiles: the
 * predictor's second layer has a few tens of inputs per neuron; stored as [rank][16]
 * per 16 neurons, one register holds 16 neurons' scores through the whole sum, so the
 * stage reads its weights once, in order, and writes each score once.
 *
 * Every variant computes each score as the same chain of fused multiply-adds in input
 * order, so all ISAs give the same bits (and the reference twin too). */
#include "../ref/rs_blocks.h"
#include "rs_sparse.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define RS_X86 1
#endif

#ifdef RS_X86

#define T512 __attribute__((target("avx512f,avx512vl,avx2,fma,f16c")))
#define T256 __attribute__((target("avx2,fma,f16c")))

T512 static inline __m512 ld16x(const uint16_t *p) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p)); }

T512 static void scores_avx512(int64_t n, int64_t rank, const uint16_t *w, int nz, const int32_t *ridx,
                               const float *zv, float *out) {
  const size_t ts = (size_t)rank * 16; /* one tile */
  const int64_t full = n / 16, nt = (n + 15) / 16;
  int64_t t = 0;
  for (; t + 4 <= full; t += 4) { /* 4 tiles: 4 independent FMA chains */
    const uint16_t *w0 = w + (size_t)t * ts;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int k = 0; k < nz; k++) {
      const __m512 z = _mm512_set1_ps(zv[k]);
      const size_t o = (size_t)ridx[k] * 16;
      a0 = _mm512_fmadd_ps(z, ld16x(w0 + o), a0);
      a1 = _mm512_fmadd_ps(z, ld16x(w0 + ts + o), a1);
      a2 = _mm512_fmadd_ps(z, ld16x(w0 + 2 * ts + o), a2);
      a3 = _mm512_fmadd_ps(z, ld16x(w0 + 3 * ts + o), a3);
    }
    _mm512_storeu_ps(out + 16 * t, a0);
    _mm512_storeu_ps(out + 16 * t + 16, a1);
    _mm512_storeu_ps(out + 16 * t + 32, a2);
    _mm512_storeu_ps(out + 16 * t + 48, a3);
  }
  for (; t < nt; t++) {
    const uint16_t *w0 = w + (size_t)t * ts;
    __m512 a = _mm512_setzero_ps();
    for (int k = 0; k < nz; k++) a = _mm512_fmadd_ps(_mm512_set1_ps(zv[k]), ld16x(w0 + (size_t)ridx[k] * 16), a);
    const int64_t m = n - 16 * t;
    _mm512_mask_storeu_ps(out + 16 * t, m >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << m) - 1), a);
  }
}

T512 static int64_t select_avx512(const float *x, int64_t n, float threshold, int32_t base, int32_t *list) {
  const __m512 thr = _mm512_set1_ps(threshold);
  __m512i idx = _mm512_add_epi32(_mm512_set1_epi32(base),
                                 _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
  const __m512i step = _mm512_set1_epi32(16);
  int64_t m = 0, i = 0;
  for (; i + 16 <= n; i += 16) {
    const __mmask16 k = _mm512_cmp_ps_mask(_mm512_loadu_ps(x + i), thr, _CMP_GE_OQ);
    /* Compress in a register and store all 16 lanes (m + 16 <= i + 16 <= n: in bounds);
     * the memory form of compress is microcoded and slow on some cores. */
    _mm512_storeu_si512(list + m, _mm512_maskz_compress_epi32(k, idx));
    m += __builtin_popcount((unsigned)k);
    idx = _mm512_add_epi32(idx, step);
  }
  for (; i < n; i++)
    if (x[i] >= threshold) list[m++] = base + (int32_t)i;
  return m;
}

T256 static void scores_avx2(int64_t n, int64_t rank, const uint16_t *w, int nz, const int32_t *ridx,
                             const float *zv, float *out) {
  const size_t ts = (size_t)rank * 16;
  const int64_t nt = (n + 15) / 16;
  for (int64_t t = 0; t < nt; t++) {
    const uint16_t *w0 = w + (size_t)t * ts;
    __m256 lo = _mm256_setzero_ps(), hi = lo;
    for (int k = 0; k < nz; k++) {
      const __m256 z = _mm256_set1_ps(zv[k]);
      const uint16_t *p = w0 + (size_t)ridx[k] * 16;
      lo = _mm256_fmadd_ps(z, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)), lo);
      hi = _mm256_fmadd_ps(z, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 8))), hi);
    }
    const int64_t m = n - 16 * t;
    if (m >= 16) {
      _mm256_storeu_ps(out + 16 * t, lo);
      _mm256_storeu_ps(out + 16 * t + 8, hi);
    } else {
      float tmp[16];
      _mm256_storeu_ps(tmp, lo);
      _mm256_storeu_ps(tmp + 8, hi);
      for (int64_t c = 0; c < m; c++) out[16 * t + c] = tmp[c];
    }
  }
}

T256 static int64_t select_avx2(const float *x, int64_t n, float threshold, int32_t base, int32_t *list) {
  const __m256 thr = _mm256_set1_ps(threshold);
  int64_t m = 0, i = 0;
  for (; i + 8 <= n; i += 8) {
    unsigned k = (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(x + i), thr, _CMP_GE_OQ));
    for (; k; k &= k - 1) list[m++] = base + (int32_t)(i + __builtin_ctz(k));
  }
  for (; i < n; i++)
    if (x[i] >= threshold) list[m++] = base + (int32_t)i;
  return m;
}

#endif /* RS_X86 */

void rs_lowrank_scores(rs_isa isa, int64_t n, int64_t rank, const uint16_t *w, int nz, const int32_t *ridx,
                       const float *zv, float *out) {
#ifdef RS_X86
  switch (rs_cpu_resolve_isa(isa)) {
    case RS_ISA_AVX512: scores_avx512(n, rank, w, nz, ridx, zv, out); return;
    case RS_ISA_AVX2: scores_avx2(n, rank, w, nz, ridx, zv, out); return;
    default: break;
  }
#else
  (void)isa;
#endif
  rs_ref_lowrank_scores(n, rank, w, nz, ridx, zv, out);
}

int64_t rs_select_ge(rs_isa isa, const float *x, int64_t n, float threshold, int32_t base, int32_t *list) {
#ifdef RS_X86
  switch (rs_cpu_resolve_isa(isa)) {
    case RS_ISA_AVX512: return select_avx512(x, n, threshold, base, list);
    case RS_ISA_AVX2: return select_avx2(x, n, threshold, base, list);
    default: break;
  }
#else
  (void)isa;
#endif
  return rs_ref_select_ge(x, n, threshold, base, list);
}
