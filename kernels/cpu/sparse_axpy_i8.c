/* rs_axpy_q4_0s_i8 (see rs_sparse.h): the sparse down projection of Q4_0 rows with each
 * term's coefficient rounded to 8 bits, so that 16 rows of a block are summed with
 * integer multiply-adds (pmaddubsw over byte pairs of two rows) instead of being
 * converted to floats one row at a time. Why: the f32 kernel (sparse_axpy.c) widens every
 * nibble to a float and spends ~30 vector operations per row and block, which leaves the
 * one-row sparse pass bound by compute at a fraction of the memory bandwidth.
 *
 * Written with 128-bit integer operations: on CPUs that split 256-bit operations in two
 * (AMD Zen 1) they cost the same per byte, and the byte-pair interleave stays in-lane. */
#include <string.h>

#include "../ref/rs_blocks.h"
#include "rs_sparse.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

enum { kTile = 64 }; /* blocks whose coefficients are prepared at a time (stack bound) */

/* Blocks [b0, b0 + nb), nb <= kTile and a multiple of 8, of the rows into y. */
__attribute__((target("avx2,fma,f16c"))) static void tile_avx2(float *y, int nr, const float *h,
                                                                const char *const *row, int64_t nbt, int64_t b0,
                                                                int64_t nb) {
  float c[RS_I8_GROUP][kTile] __attribute__((aligned(32)));
  float step[kTile] __attribute__((aligned(32)));
  int32_t sumk[kTile] __attribute__((aligned(32)));
  uint16_t kpair[RS_I8_GROUP / 2][kTile] __attribute__((aligned(32)));
  const __m256 sign = _mm256_set1_ps(-0.f), zero = _mm256_setzero_ps();
  const __m256i lo8 = _mm256_set1_epi32(0xFF);
  /* Coefficients, 8 blocks at a time: c = h * scale, step and k as in the reference. */
  for (int64_t t = 0; t < nb; t += 8) {
    __m256 amax = zero;
    for (int r = 0; r < nr; r++) {
      const __m256 v =
          _mm256_mul_ps(_mm256_set1_ps(h[r]), _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(row[r] + 2 * (b0 + t)))));
      _mm256_store_ps(&c[r][t], v);
      amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, v));
    }
    const __m256 inv = _mm256_and_ps(_mm256_cmp_ps(amax, zero, _CMP_GT_OQ), _mm256_div_ps(_mm256_set1_ps(127.f), amax));
    _mm256_store_ps(&step[t], _mm256_mul_ps(amax, _mm256_set1_ps(1.f / 127.f)));
    __m256i s = _mm256_setzero_si256();
    for (int r = 0; r < nr; r += 2) {
      const __m256i k0 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_load_ps(&c[r][t]), inv));
      const __m256i k1 =
          r + 1 < nr ? _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_load_ps(&c[r + 1][t]), inv)) : _mm256_setzero_si256();
      s = _mm256_add_epi32(s, _mm256_add_epi32(k0, k1));
      /* k0 in the low byte, k1 in the high one: pmaddubsw's signed operand for a byte pair */
      const __m256i pr = _mm256_or_si256(_mm256_and_si256(k0, lo8), _mm256_slli_epi32(_mm256_and_si256(k1, lo8), 8));
      _mm_store_si128((__m128i *)&kpair[r / 2][t],
                      _mm_packus_epi32(_mm256_castsi256_si128(pr), _mm256_extracti128_si256(pr, 1)));
    }
    _mm256_store_si256((__m256i *)&sumk[t], s);
  }
  const __m128i m4 = _mm_set1_epi8(0x0F);
  const int np = (nr + 1) / 2;
  for (int64_t t = 0; t < nb; t++) {
    const int64_t off = 2 * nbt + 16 * (b0 + t);
    __m128i a0 = _mm_setzero_si128(), a1 = a0, a2 = a0, a3 = a0; /* elements 0-7, 8-15, 16-23, 24-31 */
    for (int p = 0; p < np; p++) {
      const __m128i A = _mm_loadu_si128((const __m128i *)(row[2 * p] + off));
      const __m128i B = 2 * p + 1 < nr ? _mm_loadu_si128((const __m128i *)(row[2 * p + 1] + off)) : A;
      const __m128i k = _mm_set1_epi16((short)kpair[p][t]);
      const __m128i la = _mm_and_si128(A, m4), lb = _mm_and_si128(B, m4);
      const __m128i ha = _mm_and_si128(_mm_srli_epi16(A, 4), m4), hb = _mm_and_si128(_mm_srli_epi16(B, 4), m4);
      a0 = _mm_add_epi16(a0, _mm_maddubs_epi16(_mm_unpacklo_epi8(la, lb), k));
      a1 = _mm_add_epi16(a1, _mm_maddubs_epi16(_mm_unpackhi_epi8(la, lb), k));
      a2 = _mm_add_epi16(a2, _mm_maddubs_epi16(_mm_unpacklo_epi8(ha, hb), k));
      a3 = _mm_add_epi16(a3, _mm_maddubs_epi16(_mm_unpackhi_epi8(ha, hb), k));
    }
    const __m256 st = _mm256_set1_ps(step[t]);
    const __m256i corr = _mm256_set1_epi32(-8 * sumk[t]);
    const __m128i acc[4] = {a0, a1, a2, a3};
    float *yb = y + 32 * t;
    for (int q = 0; q < 4; q++) {
      const __m256 v = _mm256_cvtepi32_ps(_mm256_add_epi32(_mm256_cvtepi16_epi32(acc[q]), corr));
      _mm256_storeu_ps(yb + 8 * q, _mm256_fmadd_ps(st, v, _mm256_loadu_ps(yb + 8 * q)));
    }
  }
}
#define RS_HAVE_I8_AVX2 1
#endif

void rs_axpy_q4_0s_i8(rs_isa isa, float *y, int nr, const float *h, const void *const *row, int64_t nbt, int64_t b0,
                      int64_t nb) {
  if (nr < 1) return;
#ifdef RS_HAVE_I8_AVX2
  const rs_isa use = rs_cpu_resolve_isa(isa);
  if (use == RS_ISA_AVX2 || use == RS_ISA_AVX512) {
    int64_t t = 0;
    for (; t + 8 <= nb; t += kTile) {
      const int64_t m = nb - t < kTile ? (nb - t) / 8 * 8 : kTile;
      tile_avx2(y + 32 * t, nr, h, (const char *const *)row, nbt, b0 + t, m);
      if (m < kTile) {
        t += m;
        break;
      }
    }
    if (t < nb) rs_ref_axpy_q4_0s_i8(y + 32 * t, nr, h, row, nbt, b0 + t, nb - t);
    return;
  }
#else
  (void)isa;
#endif
  rs_ref_axpy_q4_0s_i8(y, nr, h, row, nbt, b0, nb);
}
