/* AVX2 + FMA + F16C kernels (compiled with those flags only; dispatch.c calls them
 * only on CPUs that have them). Q4_0/Q8_0 use the maddubs idiom: u8 x s8 pairs summed
 * to int16, then to int32, one block per 256-bit register. */
#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#include "../ref/rs_ref_internal.h"
#include "rs_cpu_internal.h"
#include "simd256_float.h"
#include "simd256_quant.h"

/* ---------- Q4_0 / Q8_0 x Q8_0 ---------- */

/* Q4_0 block -> 32 unsigned levels 0..15 in element order. */
static inline __m256i unpack_q4_0(const rs_block_q4_0 *w) {
  const __m128i v = _mm_loadu_si128((const __m128i *)w->qs);
  const __m256i both = _mm256_inserti128_si256(_mm256_castsi128_si256(v), _mm_srli_epi16(v, 4), 1);
  return _mm256_and_si256(both, _mm256_set1_epi8(0x0F));
}

/* int32x8 partial sums of (level - 8) * a: the offset is applied as 8 * sum(a) in
 * int16 (|maddubs| <= 2*15*127 and 2*8*127, so the difference cannot overflow). */
static inline __m256i dot_q4_0_i32(__m256i wq, __m256i av) {
  const __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(wq, av),
                                     _mm256_maddubs_epi16(_mm256_set1_epi8(8), av));
  return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

/* Signed x signed via |w| and a carrying w's sign (maddubs's first operand is
 * unsigned); |w| <= 128 keeps the int16 pair sums below 2^15. */
static inline __m256i dot_q8_0_i32(__m256i wq, __m256i av) {
  const __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(wq, wq), _mm256_sign_epi8(av, wq));
  return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

#define LOADA(a) _mm256_loadu_si256((const __m256i *)(a)->qs)

static inline uint16_t half_at(const char *p) {
  uint16_t h;
  memcpy(&h, p, 2);
  return h;
}

/* Multi-row tiles read their rows side by side, which the hardware prefetchers follow
 * poorly (measured with the AVX-512 kernels: a 4 x 1 Q4_0 tile streamed at half the
 * rate of vec_dot). Each step of a tile prefetches its share of the next tile's rows
 * (contiguous in memory) in address order, into L2, so memory sees one sequential
 * stream. After the last row it prefetches whatever follows: prefetches never fault. */
static inline __attribute__((always_inline)) void prefetch_next_rows(const char *p, size_t bytes) {
  for (size_t l = 0; l < bytes; l += 64) _mm_prefetch(p + l, _MM_HINT_T1);
}

/* Register tile of RM weight rows x RN activation rows: each weight block is unpacked
 * once and used RN times. RM = 4, RN = 2 keeps 8 accumulators + 4 weights in the 16
 * ymm registers. `q4` is a compile-time constant after inlining. Every output (r, c)
 * runs the same operations whatever the tile shape (one accumulator, one FMA per block
 * in order, one reduction), and vec_dot is the 1 x 1 tile: results do not depend on
 * the batch (see rs_cpu_internal.h). */
static inline __attribute__((always_inline)) void tile_q_0(int q4, int64_t nb, int RM, int RN,
                                                           const char *w, size_t ws, const char *a,
                                                           size_t as, float *out, size_t os) {
  __m256 acc[4][2];
  _Pragma("GCC unroll 8")
  for (int r = 0; r < RM; r++)
    _Pragma("GCC unroll 8")
    for (int c = 0; c < RN; c++) acc[r][c] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; b++) {
    __m256i wq[4];
    float dw[4];
    _Pragma("GCC unroll 8")
    for (int r = 0; r < RM; r++) {
      if (q4) {
        const rs_block_q4_0 *wb = (const rs_block_q4_0 *)(w + r * ws) + b;
        wq[r] = unpack_q4_0(wb);
        dw[r] = _cvtsh_ss(wb->d);
      } else {
        const rs_block_q8_0 *wb = (const rs_block_q8_0 *)(w + r * ws) + b;
        wq[r] = LOADA(wb);
        dw[r] = _cvtsh_ss(wb->d);
      }
    }
    if (RM > 1) prefetch_next_rows(w + RM * ws + b * RM * (q4 ? sizeof(rs_block_q4_0) : sizeof(rs_block_q8_0)),
                                   RM * (q4 ? sizeof(rs_block_q4_0) : sizeof(rs_block_q8_0)));
    _Pragma("GCC unroll 8")
    for (int c = 0; c < RN; c++) {
      const rs_block_q8_0 *ab = (const rs_block_q8_0 *)(a + c * as) + b;
      const __m256i av = LOADA(ab);
      const float da = _cvtsh_ss(ab->d);
      _Pragma("GCC unroll 8")
      for (int r = 0; r < RM; r++) {
        const __m256i s = q4 ? dot_q4_0_i32(wq[r], av) : dot_q8_0_i32(wq[r], av);
        acc[r][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(dw[r] * da), acc[r][c]);
      }
    }
  }
  _Pragma("GCC unroll 8")
  for (int c = 0; c < RN; c++)
    _Pragma("GCC unroll 8")
    for (int r = 0; r < RM; r++) out[c * os + r] = hsum256_ps(acc[r][c]);
}

#define TILE_SWITCH(fn, q4, nb, rm, rn, w, ws, a, as, out, os)  \
  switch ((rm) * 4 + (rn)) {                                      \
    case 4 * 4 + 2: fn(q4, nb, 4, 2, w, ws, a, as, out, os); break; \
    case 4 * 4 + 1: fn(q4, nb, 4, 1, w, ws, a, as, out, os); break; \
    case 3 * 4 + 2: fn(q4, nb, 3, 2, w, ws, a, as, out, os); break; \
    case 3 * 4 + 1: fn(q4, nb, 3, 1, w, ws, a, as, out, os); break; \
    case 2 * 4 + 2: fn(q4, nb, 2, 2, w, ws, a, as, out, os); break; \
    case 2 * 4 + 1: fn(q4, nb, 2, 1, w, ws, a, as, out, os); break; \
    case 1 * 4 + 2: fn(q4, nb, 1, 2, w, ws, a, as, out, os); break; \
    default: fn(q4, nb, 1, 1, w, ws, a, as, out, os); break;       \
  }

static inline __attribute__((always_inline)) void gemm_q_0(int q4, int64_t n, int nr, int nc,
                                                           const void *w, size_t ws, const void *a,
                                                           size_t as, float *out, size_t os) {
  if (nc == 1) { /* vec_dot per row, in address order */
    for (int r = 0; r < nr; r++)
      tile_q_0(q4, n / RS_QK, 1, 1, (const char *)w + (size_t)r * ws, ws, (const char *)a, as, out + r, os);
    return;
  }
  /* column blocks that stay in L2 (see rs_gemm_col_block) */
  for (int cb = 0, cbn = rs_gemm_col_block(as, 2); cb < nc; cb += cbn)
    for (int r0 = 0; r0 < nr; r0 += 4) {
      const int rm = nr - r0 < 4 ? nr - r0 : 4;
      const int cend = nc - cb < cbn ? nc : cb + cbn;
      for (int c0 = cb; c0 < cend; c0 += 2) {
        const int rn = cend - c0 < 2 ? cend - c0 : 2;
        const char *wp = (const char *)w + (size_t)r0 * ws, *ap = (const char *)a + (size_t)c0 * as;
        float *op = out + (size_t)c0 * os + r0;
        TILE_SWITCH(tile_q_0, q4, n / RS_QK, rm, rn, wp, ws, ap, as, op, os)
      }
    }
}

/* Two Q4_0 blocks at wb (half a group): their nibbles split into the low and high halves
 * that line up with a Q8_0X group's lo/hi arrays, and their scales, one per 128-bit lane. */
static inline __attribute__((always_inline)) void q4_0_pair(const char *wb, __m256i m4, __m256i *lo, __m256i *hi,
                                                            __m256 *dw) {
  const __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(wb + 2))),
                                            _mm_loadu_si128((const __m128i *)(wb + 20)), 1);
  *lo = _mm256_and_si256(v, m4);
  *hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
  *dw = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_set1_ps(_cvtsh_ss(half_at(wb)))),
                             _mm_set1_ps(_cvtsh_ss(half_at(wb + 18))), 1);
}

/* Half a Q8_0X group (two blocks) of an activation row: lo/hi values, offset seeds, scales. */
typedef struct {
  __m256i lo, hi, off;
  __m256 d;
} q8_0x_half;

static inline __attribute__((always_inline)) q8_0x_half load_q8_0x_half(const rs_q8_0x_group *g, int h) {
  q8_0x_half x;
  x.lo = _mm256_loadu_si256((const __m256i *)(g->lo + 32 * h));
  x.hi = _mm256_loadu_si256((const __m256i *)(g->hi + 32 * h));
  x.off = _mm256_loadu_si256((const __m256i *)(g->off + 8 * h));
  x.d = _mm256_loadu_ps(g->d + 8 * h);
  return x;
}

/* acc + (the two blocks' integer dots, offset) * (weight scale * activation scale). */
static inline __attribute__((always_inline)) __m256 acc_q4_0_pair(__m256 acc, __m256i lo, __m256i hi, __m256 dw,
                                                                  q8_0x_half a) {
  const __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(lo, a.lo), _mm256_maddubs_epi16(hi, a.hi));
  const __m256i s = _mm256_add_epi32(_mm256_madd_epi16(p, _mm256_set1_epi16(1)), a.off);
  return _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(dw, a.d), acc);
}

/* Q4_0 x Q8_0X tile of RM <= 2 weight rows x RN <= 4 activation rows, two blocks
 * (half a group) per step: the two blocks' nibble arrays are split into low and high
 * halves, which line up with the activation's lo/hi arrays, and the int32 lanes start
 * from the activation's offset seeds (-2 * sum(a) per lane, so 4 lanes remove
 * 8 * sum(a)). Each weight row's nibbles are split once and used RN times (8
 * accumulators + 6 weight registers fit the 16 ymm). Every output (r, c) runs the same
 * operations whatever the tile shape (one accumulator, two FMAs per group, one
 * reduction, then the blocks after the last whole group in order), and vec_dot is the
 * 1 x 1 tile, so results do not depend on the batch. */
static inline __attribute__((always_inline)) void tile_q4_0g(int unused, int64_t nb, int RM, int RN,
                                                             const char *w, size_t ws, const char *a,
                                                             size_t as, float *out, size_t os) {
  (void)unused;
  const int64_t ng = nb / 4;
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  __m256 acc[2][4];
  _Pragma("GCC unroll 8")
  for (int r = 0; r < RM; r++)
    _Pragma("GCC unroll 8")
    for (int c = 0; c < RN; c++) acc[r][c] = _mm256_setzero_ps();
  for (int64_t gi = 0; gi < ng; gi++)
    _Pragma("GCC unroll 8")
    for (int h = 0; h < 2; h++) {
      __m256i lo[2], hi[2];
      __m256 dw[2];
      _Pragma("GCC unroll 8")
      for (int r = 0; r < RM; r++) q4_0_pair(w + r * ws + gi * 72 + h * 36, m4, &lo[r], &hi[r], &dw[r]);
      if (RM > 1) prefetch_next_rows(w + RM * ws + (gi * 2 + h) * RM * 36, RM * 36);
      _Pragma("GCC unroll 8")
      for (int c = 0; c < RN; c++) {
        const q8_0x_half ah = load_q8_0x_half(
            (const rs_q8_0x_group *)(a + c * as + (size_t)nb * sizeof(rs_block_q8_0)) + gi, h);
        _Pragma("GCC unroll 8")
        for (int r = 0; r < RM; r++) acc[r][c] = acc_q4_0_pair(acc[r][c], lo[r], hi[r], dw[r], ah);
      }
    }
  _Pragma("GCC unroll 8")
  for (int c = 0; c < RN; c++)
    _Pragma("GCC unroll 8")
    for (int r = 0; r < RM; r++) {
      float sum = hsum256_ps(acc[r][c]);
      for (int64_t b = ng * 4; b < nb; b++) { /* blocks after the last whole group */
        const rs_block_q4_0 *wb = (const rs_block_q4_0 *)(w + r * ws) + b;
        const rs_block_q8_0 *ab = (const rs_block_q8_0 *)(a + c * as) + b;
        sum += _cvtsh_ss(wb->d) * _cvtsh_ss(ab->d) * (float)hsum256_epi32(dot_q4_0_i32(unpack_q4_0(wb), LOADA(ab)));
      }
      out[c * os + r] = sum;
    }
}

/* rs_dot_rows for Q4_0 (sparse_dot.c): tile_q4_0g's one-column operations over up to
 * 4 weight rows at any addresses (the sparse FFN's active neurons), so each output is
 * vec_dot_q4_0's bit for bit. The rows' cache misses overlap, and each activation
 * group is loaded once for all of them. */
static inline __attribute__((always_inline)) void rows_q4_0g(int RM, int64_t nb, const char *const *w, const char *a,
                                                             float *out) {
  const int64_t ng = nb / 4;
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  __m256 acc[4];
  _Pragma("GCC unroll 8")
  for (int r = 0; r < RM; r++) acc[r] = _mm256_setzero_ps();
  const rs_q8_0x_group *grp = (const rs_q8_0x_group *)(a + (size_t)nb * sizeof(rs_block_q8_0));
  for (int64_t gi = 0; gi < ng; gi++)
    _Pragma("GCC unroll 8")
    for (int h = 0; h < 2; h++) {
      const q8_0x_half ah = load_q8_0x_half(grp + gi, h);
      _Pragma("GCC unroll 8")
      for (int r = 0; r < RM; r++) {
        __m256i lo, hi;
        __m256 dw;
        q4_0_pair(w[r] + gi * 72 + h * 36, m4, &lo, &hi, &dw);
        acc[r] = acc_q4_0_pair(acc[r], lo, hi, dw, ah);
      }
    }
  _Pragma("GCC unroll 8")
  for (int r = 0; r < RM; r++) {
    float sum = hsum256_ps(acc[r]);
    for (int64_t b = ng * 4; b < nb; b++) {
      const rs_block_q4_0 *wb = (const rs_block_q4_0 *)w[r] + b;
      const rs_block_q8_0 *ab = (const rs_block_q8_0 *)a + b;
      sum += _cvtsh_ss(wb->d) * _cvtsh_ss(ab->d) * (float)hsum256_epi32(dot_q4_0_i32(unpack_q4_0(wb), LOADA(ab)));
    }
    out[r] = sum;
  }
}

void rs_avx2_dot_rows_q4_0(int nr, int64_t nb, const char *const *w, const char *a, float *out) {
  switch (nr) {
    case 4: rows_q4_0g(4, nb, w, a, out); break;
    case 3: rows_q4_0g(3, nb, w, a, out); break;
    case 2: rows_q4_0g(2, nb, w, a, out); break;
    default: rows_q4_0g(1, nb, w, a, out); break;
  }
}

static void vec_dot_q4_0(int64_t n, float *out, const void *w, const void *a) {
  tile_q4_0g(0, n / RS_QK, 1, 1, (const char *)w, 0, (const char *)a, 0, out, 0);
}

static void gemm_q4_0(int64_t n, int nr, int nc, const void *w, size_t ws, const void *a,
                      size_t as, float *out, size_t os) {
  if (nc == 1) { /* vec_dot per row, in address order */
    for (int r = 0; r < nr; r++) vec_dot_q4_0(n, out + r, (const char *)w + (size_t)r * ws, a);
    return;
  }
  for (int cb = 0, cbn = rs_gemm_col_block(as, 4); cb < nc; cb += cbn)
    for (int r0 = 0; r0 < nr; r0 += 2) {
      const int rm = nr - r0 < 2 ? nr - r0 : 2;
      const int cend = nc - cb < cbn ? nc : cb + cbn;
      for (int c0 = cb; c0 < cend; c0 += 4) {
        const int rn = cend - c0 < 4 ? cend - c0 : 4;
        const char *wp = (const char *)w + (size_t)r0 * ws, *ap = (const char *)a + (size_t)c0 * as;
        float *op = out + (size_t)c0 * os + r0;
        const int64_t nb = n / RS_QK;
        switch (rm * 8 + rn) {
          case 2 * 8 + 4: tile_q4_0g(0, nb, 2, 4, wp, ws, ap, as, op, os); break;
          case 2 * 8 + 3: tile_q4_0g(0, nb, 2, 3, wp, ws, ap, as, op, os); break;
          case 2 * 8 + 2: tile_q4_0g(0, nb, 2, 2, wp, ws, ap, as, op, os); break;
          case 2 * 8 + 1: tile_q4_0g(0, nb, 2, 1, wp, ws, ap, as, op, os); break;
          case 1 * 8 + 4: tile_q4_0g(0, nb, 1, 4, wp, ws, ap, as, op, os); break;
          case 1 * 8 + 3: tile_q4_0g(0, nb, 1, 3, wp, ws, ap, as, op, os); break;
          case 1 * 8 + 2: tile_q4_0g(0, nb, 1, 2, wp, ws, ap, as, op, os); break;
          default: tile_q4_0g(0, nb, 1, 1, wp, ws, ap, as, op, os); break;
        }
      }
    }
}
static void vec_dot_q8_0(int64_t n, float *out, const void *w, const void *a) {
  tile_q_0(0, n / RS_QK, 1, 1, (const char *)w, 0, (const char *)a, 0, out, 0);
}
static void gemm_q8_0(int64_t n, int nr, int nc, const void *w, size_t ws, const void *a,
                      size_t as, float *out, size_t os) {
  gemm_q_0(0, n, nr, nc, w, ws, a, as, out, os);
}

/* ---------- F32 / F16 / BF16 weights x F32 activations ---------- */

enum { WF32 = 0, WF16 = 1, WBF16 = 2 };

static inline __m256 load_w8(int t, const void *w, int64_t i) {
  if (t == WF32) return _mm256_loadu_ps((const float *)w + i);
  if (t == WF16) return load_f16x8((const uint16_t *)w + i);
  const __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)w + i));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}
static inline float load_w1(int t, const void *w, int64_t i) {
  if (t == WF32) return ((const float *)w)[i];
  if (t == WF16) return _cvtsh_ss(((const uint16_t *)w)[i]);
  return rs_bf16_to_fp32(((const uint16_t *)w)[i]);
}

/* RM x RN tile (RM, RN <= 2). The accumulation every output (r, c) runs, whatever the
 * tile shape (vec_dot is the 1 x 1 tile, so results do not depend on the batch): two
 * accumulators, 8-element steps alternating between them, reduced as acc0 + acc1,
 * then the last n % 8 products added in order. Two chains keep one row's dot
 * streaming from memory; 8 accumulators + 4 weights + 2 activations fit the 16 ymm. */
static inline __attribute__((always_inline)) void tile_f(int t, int64_t n, int RM, int RN,
                                                         const char *w, size_t ws, const char *a,
                                                         size_t as, float *out, size_t os) {
  const size_t esize = t == WF32 ? 4 : 2;
  __m256 acc[2][2][2];
  _Pragma("GCC unroll 8")
  for (int r = 0; r < RM; r++)
    _Pragma("GCC unroll 8")
    for (int c = 0; c < RN; c++) acc[r][c][0] = acc[r][c][1] = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m256 w0[2], w1[2];
    _Pragma("GCC unroll 8")
    for (int r = 0; r < RM; r++) {
      w0[r] = load_w8(t, w + r * ws, i);
      w1[r] = load_w8(t, w + r * ws, i + 8);
    }
    if (RM > 1) prefetch_next_rows(w + RM * ws + (size_t)i * RM * esize, 16 * RM * esize);
    _Pragma("GCC unroll 8")
    for (int c = 0; c < RN; c++) {
      const float *ac = (const float *)(a + c * as) + i;
      const __m256 a0 = _mm256_loadu_ps(ac), a1 = _mm256_loadu_ps(ac + 8);
      _Pragma("GCC unroll 8")
      for (int r = 0; r < RM; r++) {
        acc[r][c][0] = _mm256_fmadd_ps(w0[r], a0, acc[r][c][0]);
        acc[r][c][1] = _mm256_fmadd_ps(w1[r], a1, acc[r][c][1]);
      }
    }
  }
  if (i + 8 <= n) {
    _Pragma("GCC unroll 8")
    for (int r = 0; r < RM; r++) {
      const __m256 wv = load_w8(t, w + r * ws, i);
      _Pragma("GCC unroll 8")
      for (int c = 0; c < RN; c++)
        acc[r][c][0] = _mm256_fmadd_ps(wv, _mm256_loadu_ps((const float *)(a + c * as) + i), acc[r][c][0]);
    }
    i += 8;
  }
  _Pragma("GCC unroll 8")
  for (int c = 0; c < RN; c++)
    _Pragma("GCC unroll 8")
    for (int r = 0; r < RM; r++) {
      float s = hsum256_ps(_mm256_add_ps(acc[r][c][0], acc[r][c][1]));
      for (int64_t j = i; j < n; j++) s += load_w1(t, w + r * ws, j) * ((const float *)(a + c * as))[j];
      out[c * os + r] = s;
    }
}

/* tile_f's one-row operations for up to 4 rows at any addresses, side by side, so each
 * output is vec_dot's bit for bit. Why: one row's two FMA chains wait on each other's
 * latency (16 values per 5 cycles on Zen 1, below what memory delivers for F16); four
 * rows' eight chains keep the FMA unit busy. Used by gemm_f for one activation row and
 * by rs_dot_rows for F16 (sparse_dot.c). */
static inline __attribute__((always_inline)) void rows_f(int t, int RM, int64_t n, const void *const *w, const float *a,
                                                         float *out) {
  __m256 acc[4][2];
  _Pragma("GCC unroll 4")
  for (int r = 0; r < RM; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 a0 = _mm256_loadu_ps(a + i), a1 = _mm256_loadu_ps(a + i + 8);
    _Pragma("GCC unroll 4")
    for (int r = 0; r < RM; r++) {
      acc[r][0] = _mm256_fmadd_ps(load_w8(t, w[r], i), a0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(load_w8(t, w[r], i + 8), a1, acc[r][1]);
    }
  }
  if (i + 8 <= n) {
    const __m256 a0 = _mm256_loadu_ps(a + i);
    _Pragma("GCC unroll 4")
    for (int r = 0; r < RM; r++) acc[r][0] = _mm256_fmadd_ps(load_w8(t, w[r], i), a0, acc[r][0]);
    i += 8;
  }
  _Pragma("GCC unroll 4")
  for (int r = 0; r < RM; r++) {
    float s = hsum256_ps(_mm256_add_ps(acc[r][0], acc[r][1]));
    for (int64_t j = i; j < n; j++) s += load_w1(t, w[r], j) * a[j];
    out[r] = s;
  }
}

static inline __attribute__((always_inline)) void rows_f_any(int t, int nr, int64_t n, const void *const *w,
                                                             const float *a, float *out) {
  switch (nr) {
    case 4: rows_f(t, 4, n, w, a, out); break;
    case 3: rows_f(t, 3, n, w, a, out); break;
    case 2: rows_f(t, 2, n, w, a, out); break;
    default: rows_f(t, 1, n, w, a, out); break;
  }
}

void rs_avx2_dot_rows_f16(int nr, int64_t n, const void *const *w, const float *a, float *out) {
  rows_f_any(WF16, nr, n, w, a, out);
}

/* One activation row: rows_f, 4 weight rows at a time (vec_dot's bits). Otherwise 2 x 2 tiles
 * (smaller at the edges) over column blocks that stay in L2: the F32 activations are
 * as many bytes as the weights or more, and sharing them between weight rows is what
 * keeps small batches near the cost of one. */
static inline __attribute__((always_inline)) void gemm_f(int t, int64_t n, int nr, int nc, const void *w,
                                                         size_t ws, const void *a, size_t as, float *out,
                                                         size_t os) {
  if (nc == 1) {
    for (int r0 = 0; r0 < nr; r0 += 4) {
      const void *rows[4];
      const int m = nr - r0 < 4 ? nr - r0 : 4;
      for (int q = 0; q < m; q++) rows[q] = (const char *)w + (size_t)(r0 + q) * ws;
      rows_f_any(t, m, n, rows, (const float *)a, out + r0);
    }
    return;
  }
  for (int cb = 0, cbn = rs_gemm_col_block(as, 2); cb < nc; cb += cbn) {
    const int cend = nc - cb < cbn ? nc : cb + cbn;
    for (int r0 = 0; r0 < nr; r0 += 2) {
      const int rm = nr - r0 < 2 ? 1 : 2;
      const char *wp = (const char *)w + (size_t)r0 * ws;
      for (int c0 = cb; c0 < cend; c0 += 2) {
        const char *ap = (const char *)a + (size_t)c0 * as;
        float *op = out + (size_t)c0 * os + r0;
        switch (rm * 2 + (cend - c0 < 2 ? 1 : 2)) {
          case 2 * 2 + 2: tile_f(t, n, 2, 2, wp, ws, ap, as, op, os); break;
          case 2 * 2 + 1: tile_f(t, n, 2, 1, wp, ws, ap, as, op, os); break;
          case 1 * 2 + 2: tile_f(t, n, 1, 2, wp, ws, ap, as, op, os); break;
          default: tile_f(t, n, 1, 1, wp, ws, ap, as, op, os); break;
        }
      }
    }
  }
}

RS_FLOAT_MATMUL_KERNELS(f32, WF32)
RS_FLOAT_MATMUL_KERNELS(f16, WF16)
RS_FLOAT_MATMUL_KERNELS(bf16, WBF16)

/* ---------- table ---------- */

static void from_float_q8_k(const float *x, void *y, int64_t n) { s256_from_float_q8_k(x, y, n); }
static void from_float_q8_0x(const float *x, void *y, int64_t n) {
  s256_from_float_q8_0(x, y, n);
  rs_q8_0x_build_groups(y, n);
}
static void rmsnorm(float *y, const float *x, const float *w, int n, float eps) { s256_rmsnorm(y, x, w, n, eps); }
static void rope(float *x, int nh, int hd, int pos, float fb) { s256_rope(x, nh, hd, pos, fb); }
static void softmax(float *x, int n) { s256_softmax(x, n); }
static float dot_f32(const float *a, const float *b, int n) { return s256_dot_f32(a, b, n); }
static float dot_f32_f16(const float *a, const uint16_t *b, int n) { return s256_dot_f32_f16(a, b, n); }
static void axpy_f16(float *y, float a, const uint16_t *x, int n) { s256_axpy_f16(y, a, x, n); }
static void f32_to_f16_row(const float *x, uint16_t *y, int n) { s256_f32_to_f16_row(x, y, n); }
static void ffn_act(rs_act act, float *h, const float *g, const float *u, int n) { s256_ffn_act(act, h, g, u, n); }
static uint64_t stream_read(const void *p, size_t bytes, rs_read_pattern pattern) {
  return s256_stream_read(p, bytes, pattern);
}

const rs_isa_tables rs_tables_avx2 = {
    .mm = {
        [RS_TYPE_F32] = RS_MM_ENTRY(f32, rs_scalar_from_float_f32),
        [RS_TYPE_F16] = RS_MM_ENTRY(f16, rs_scalar_from_float_f32),
        [RS_TYPE_BF16] = RS_MM_ENTRY(bf16, rs_scalar_from_float_f32),
        [RS_TYPE_Q4_0] = RS_MM_X8_ENTRY(q4_0, from_float_q8_0x, rs_avx2_gemm_q4_0x8),
        [RS_TYPE_Q8_0] = RS_MM_ENTRY(q8_0, from_float_q8_0x),
        [RS_TYPE_Q4_K] = RS_MM_ENTRY(q4_k, from_float_q8_k),
        [RS_TYPE_Q5_K] = RS_MM_ENTRY(q5_k, from_float_q8_k),
        [RS_TYPE_Q6_K] = RS_MM_ENTRY(q6_k, from_float_q8_k),
    },
    .fk = {RS_ISA_AVX2, rmsnorm, rope, softmax, dot_f32, dot_f32_f16, axpy_f16, f32_to_f16_row,
           ffn_act, stream_read},
};
#endif
