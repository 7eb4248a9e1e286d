/* The predictor stage's last step: the list of neurons whose scores are at or above the
 * threshold (rs_select_ge), in order. (The scores themselves are the matmul kernels'
 * dot products over fc2 in the file's type: backend_cpu_sparse.cpp.) */
#include "../ref/rs_blocks.h"
#include "rs_sparse.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define RS_X86 1
#endif

#ifdef RS_X86

#define T512 __attribute__((target("avx512f,avx512vl,avx2,fma,f16c")))
#define T256 __attribute__((target("avx2,fma,f16c")))

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
