/* rs_axpy_row: y += h * dequant(row), the inner step of the sparse down projection.
 * The AVX2 and AVX-512 variants live in this one file as functions compiled for their
 * instruction set (GCC target attributes), chosen at run time like the other kernels. */
#include <string.h>

#include "../ref/rs_blocks.h"
#include "rs_sparse.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define RS_X86 1
#endif

static inline uint16_t ld16(const char *p) {
  uint16_t v;
  memcpy(&v, p, 2);
  return v;
}

/* ---------- scalar ---------- */

static void axpy_scalar(rs_type type, float *y, float h, const void *row, int64_t n) {
  const char *p = (const char *)row;
  switch (type) {
    case RS_TYPE_F32: {
      for (int64_t k = 0; k < n; k++) {
        float v;
        memcpy(&v, p + 4 * k, 4);
        y[k] += h * v;
      }
      return;
    }
    case RS_TYPE_F16:
      for (int64_t k = 0; k < n; k++) y[k] += h * rs_fp16_to_fp32(ld16(p + 2 * k));
      return;
    case RS_TYPE_Q4_0:
      for (int64_t b = 0; b < n / RS_QK; b++) {
        const char *blk = p + b * sizeof(rs_block_q4_0);
        const float s = h * rs_fp16_to_fp32(ld16(blk));
        const uint8_t *qs = (const uint8_t *)blk + 2;
        float *yb = y + b * RS_QK;
        for (int j = 0; j < 16; j++) {
          yb[j] += s * (float)((qs[j] & 0x0F) - 8);
          yb[j + 16] += s * (float)((qs[j] >> 4) - 8);
        }
      }
      return;
    case RS_TYPE_Q8_0:
      for (int64_t b = 0; b < n / RS_QK; b++) {
        const char *blk = p + b * sizeof(rs_block_q8_0);
        const float s = h * rs_fp16_to_fp32(ld16(blk));
        const int8_t *qs = (const int8_t *)blk + 2;
        for (int j = 0; j < RS_QK; j++) y[b * RS_QK + j] += s * (float)qs[j];
      }
      return;
    default:
      rs_ref_axpy_row(type, y, h, row, n);
  }
}

#ifdef RS_X86

/* ---------- AVX2 + F16C + FMA ---------- */

__attribute__((target("avx2,fma,f16c"))) static void axpy_avx2(rs_type type, float *y, float h, const void *row,
                                                                 int64_t n) {
  const char *p = (const char *)row;
  const __m256 hv = _mm256_set1_ps(h);
  switch (type) {
    case RS_TYPE_F32: {
      int64_t k = 0;
      for (; k + 8 <= n; k += 8)
        _mm256_storeu_ps(y + k, _mm256_fmadd_ps(hv, _mm256_loadu_ps((const float *)(p + 4 * k)), _mm256_loadu_ps(y + k)));
      axpy_scalar(type, y + k, h, p + 4 * k, n - k);
      return;
    }
    case RS_TYPE_F16: {
      int64_t k = 0;
      for (; k + 8 <= n; k += 8) {
        __m256 w = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 2 * k)));
        _mm256_storeu_ps(y + k, _mm256_fmadd_ps(hv, w, _mm256_loadu_ps(y + k)));
      }
      axpy_scalar(type, y + k, h, p + 2 * k, n - k);
      return;
    }
    case RS_TYPE_Q4_0: {
      const __m128i m4 = _mm_set1_epi8(0x0F), eight = _mm_set1_epi8(8);
      for (int64_t b = 0; b < n / RS_QK; b++) {
        const char *blk = p + b * sizeof(rs_block_q4_0);
        const __m256 s = _mm256_set1_ps(h * _cvtsh_ss(ld16(blk)));
        const __m128i q = _mm_loadu_si128((const __m128i *)(blk + 2));
        const __m128i lo = _mm_sub_epi8(_mm_and_si128(q, m4), eight);
        const __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(q, 4), m4), eight);
        float *yb = y + b * RS_QK;
        const __m128i parts[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
        for (int t = 0; t < 4; t++) {
          __m256 w = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(parts[t]));
          _mm256_storeu_ps(yb + 8 * t, _mm256_fmadd_ps(s, w, _mm256_loadu_ps(yb + 8 * t)));
        }
      }
      return;
    }
    case RS_TYPE_Q8_0:
      for (int64_t b = 0; b < n / RS_QK; b++) {
        const char *blk = p + b * sizeof(rs_block_q8_0);
        const __m256 s = _mm256_set1_ps(h * _cvtsh_ss(ld16(blk)));
        float *yb = y + b * RS_QK;
        for (int t = 0; t < 4; t++) {
          __m256 w = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(blk + 2 + 8 * t))));
          _mm256_storeu_ps(yb + 8 * t, _mm256_fmadd_ps(s, w, _mm256_loadu_ps(yb + 8 * t)));
        }
      }
      return;
    default:
      rs_ref_axpy_row(type, y, h, row, n);
  }
}

/* ---------- AVX-512 ---------- */

__attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c"))) static void axpy_avx512(rs_type type, float *y,
                                                                                            float h, const void *row,
                                                                                            int64_t n) {
  const char *p = (const char *)row;
  const __m512 hv = _mm512_set1_ps(h);
  switch (type) {
    case RS_TYPE_F32: {
      int64_t k = 0;
      for (; k + 16 <= n; k += 16)
        _mm512_storeu_ps(y + k, _mm512_fmadd_ps(hv, _mm512_loadu_ps((const float *)(p + 4 * k)), _mm512_loadu_ps(y + k)));
      axpy_scalar(type, y + k, h, p + 4 * k, n - k);
      return;
    }
    case RS_TYPE_F16: {
      int64_t k = 0;
      for (; k + 16 <= n; k += 16) {
        __m512 w = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p + 2 * k)));
        _mm512_storeu_ps(y + k, _mm512_fmadd_ps(hv, w, _mm512_loadu_ps(y + k)));
      }
      axpy_scalar(type, y + k, h, p + 2 * k, n - k);
      return;
    }
    case RS_TYPE_Q4_0: {
      const __m128i m4 = _mm_set1_epi8(0x0F), eight = _mm_set1_epi8(8);
      for (int64_t b = 0; b < n / RS_QK; b++) {
        const char *blk = p + b * sizeof(rs_block_q4_0);
        const __m512 s = _mm512_set1_ps(h * _cvtsh_ss(ld16(blk)));
        const __m128i q = _mm_loadu_si128((const __m128i *)(blk + 2));
        const __m128i lo = _mm_sub_epi8(_mm_and_si128(q, m4), eight);
        const __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(q, 4), m4), eight);
        float *yb = y + b * RS_QK;
        _mm512_storeu_ps(yb, _mm512_fmadd_ps(s, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(lo)), _mm512_loadu_ps(yb)));
        _mm512_storeu_ps(yb + 16,
                         _mm512_fmadd_ps(s, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(hi)), _mm512_loadu_ps(yb + 16)));
      }
      return;
    }
    case RS_TYPE_Q8_0:
      for (int64_t b = 0; b < n / RS_QK; b++) {
        const char *blk = p + b * sizeof(rs_block_q8_0);
        const __m512 s = _mm512_set1_ps(h * _cvtsh_ss(ld16(blk)));
        float *yb = y + b * RS_QK;
        for (int t = 0; t < 2; t++) {
          __m512 w = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(blk + 2 + 16 * t))));
          _mm512_storeu_ps(yb + 16 * t, _mm512_fmadd_ps(s, w, _mm512_loadu_ps(yb + 16 * t)));
        }
      }
      return;
    default:
      rs_ref_axpy_row(type, y, h, row, n);
  }
}

/* ---------- several rows into one accumulator (rs_axpy_rows) ----------
 * Per element: the operations of axpy_avx512 / axpy_avx2 for row 0, then row 1, ...;
 * only the loads and stores of y between rows are gone. */

__attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c"))) static int axpy_rows_avx512(
    rs_type type, float *y, int nr, const float *h, const void *const *row, int64_t n) {
  const __m128i m4 = _mm_set1_epi8(0x0F), eight = _mm_set1_epi8(8);
  switch (type) {
    case RS_TYPE_Q4_0:
      for (int64_t b = 0; b < n / RS_QK; b++) {
        float *yb = y + b * RS_QK;
        __m512 y0 = _mm512_loadu_ps(yb), y1 = _mm512_loadu_ps(yb + 16);
        for (int r = 0; r < nr; r++) {
          const char *blk = (const char *)row[r] + b * sizeof(rs_block_q4_0);
          const __m512 s = _mm512_set1_ps(h[r] * _cvtsh_ss(ld16(blk)));
          const __m128i q = _mm_loadu_si128((const __m128i *)(blk + 2));
          const __m128i lo = _mm_sub_epi8(_mm_and_si128(q, m4), eight);
          const __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(q, 4), m4), eight);
          y0 = _mm512_fmadd_ps(s, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(lo)), y0);
          y1 = _mm512_fmadd_ps(s, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(hi)), y1);
        }
        _mm512_storeu_ps(yb, y0);
        _mm512_storeu_ps(yb + 16, y1);
      }
      return 1;
    case RS_TYPE_Q8_0:
      for (int64_t b = 0; b < n / RS_QK; b++) {
        float *yb = y + b * RS_QK;
        __m512 y0 = _mm512_loadu_ps(yb), y1 = _mm512_loadu_ps(yb + 16);
        for (int r = 0; r < nr; r++) {
          const char *blk = (const char *)row[r] + b * sizeof(rs_block_q8_0);
          const __m512 s = _mm512_set1_ps(h[r] * _cvtsh_ss(ld16(blk)));
          y0 = _mm512_fmadd_ps(s, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(blk + 2)))), y0);
          y1 = _mm512_fmadd_ps(s, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(blk + 18)))), y1);
        }
        _mm512_storeu_ps(yb, y0);
        _mm512_storeu_ps(yb + 16, y1);
      }
      return 1;
    case RS_TYPE_F16: {
      int64_t k = 0;
      for (; k + 16 <= n; k += 16) {
        __m512 acc = _mm512_loadu_ps(y + k);
        for (int r = 0; r < nr; r++)
          acc = _mm512_fmadd_ps(_mm512_set1_ps(h[r]),
                                _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const char *)row[r] + 2 * k))), acc);
        _mm512_storeu_ps(y + k, acc);
      }
      for (int r = 0; r < nr; r++) axpy_scalar(type, y + k, h[r], (const char *)row[r] + 2 * k, n - k);
      return 1;
    }
    default:
      return 0;
  }
}

__attribute__((target("avx2,fma,f16c"))) static int axpy_rows_avx2(rs_type type, float *y, int nr, const float *h,
                                                                   const void *const *row, int64_t n) {
  switch (type) {
    case RS_TYPE_Q4_0: {
      const __m128i m4 = _mm_set1_epi8(0x0F), eight = _mm_set1_epi8(8);
      for (int64_t b = 0; b < n / RS_QK; b++) {
        float *yb = y + b * RS_QK;
        __m256 acc[4];
        for (int t = 0; t < 4; t++) acc[t] = _mm256_loadu_ps(yb + 8 * t);
        for (int r = 0; r < nr; r++) {
          const char *blk = (const char *)row[r] + b * sizeof(rs_block_q4_0);
          const __m256 s = _mm256_set1_ps(h[r] * _cvtsh_ss(ld16(blk)));
          const __m128i q = _mm_loadu_si128((const __m128i *)(blk + 2));
          const __m128i lo = _mm_sub_epi8(_mm_and_si128(q, m4), eight);
          const __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(q, 4), m4), eight);
          const __m128i parts[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
          for (int t = 0; t < 4; t++)
            acc[t] = _mm256_fmadd_ps(s, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(parts[t])), acc[t]);
        }
        for (int t = 0; t < 4; t++) _mm256_storeu_ps(yb + 8 * t, acc[t]);
      }
      return 1;
    }
    case RS_TYPE_F16: {
      int64_t k = 0;
      for (; k + 8 <= n; k += 8) {
        __m256 acc = _mm256_loadu_ps(y + k);
        for (int r = 0; r < nr; r++)
          acc = _mm256_fmadd_ps(_mm256_set1_ps(h[r]),
                                _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const char *)row[r] + 2 * k))), acc);
        _mm256_storeu_ps(y + k, acc);
      }
      for (int r = 0; r < nr; r++) axpy_scalar(type, y + k, h[r], (const char *)row[r] + 2 * k, n - k);
      return 1;
    }
    default:
      return 0;
  }
}

#endif /* RS_X86 */

void rs_axpy_rows(rs_isa isa, rs_type type, float *y, int nr, const float *h, const void *const *row, int64_t n) {
#ifdef RS_X86
  switch (rs_cpu_resolve_isa(isa)) {
    case RS_ISA_AVX512:
      if (axpy_rows_avx512(type, y, nr, h, row, n)) return;
      break;
    case RS_ISA_AVX2:
      if (axpy_rows_avx2(type, y, nr, h, row, n)) return;
      break;
    default: break;
  }
#endif
  for (int r = 0; r < nr; r++) rs_axpy_row(isa, type, y, h[r], row[r], n);
}

void rs_axpy_row(rs_isa isa, rs_type type, float *y, float h, const void *row, int64_t n) {
#ifdef RS_X86
  switch (rs_cpu_resolve_isa(isa)) {
    case RS_ISA_AVX512: axpy_avx512(type, y, h, row, n); return;
    case RS_ISA_AVX2: axpy_avx2(type, y, h, row, n); return;
    default: break;
  }
#else
  (void)isa;
#endif
  axpy_scalar(type, y, h, row, n);
}
