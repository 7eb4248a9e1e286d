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

/* Q4_0 x Q8_0X, two blocks per 256-bit step: the two blocks' nibble arrays are split
 * into low and high halves, which line up with the activation's lo/hi arrays; the
 * int32 lanes start from the activation's offset seeds (-2 * sum(a) per lane, so 4
 * lanes remove 8 * sum(a)). Half the work of the one-block-at-a-time loop. */
static inline __m256 q4_0_half_group(const char *w, const rs_q8_0x_group *g, int h, __m256 dw, __m256 acc) {
  const __m256i v = _mm256_inserti128_si256(
      _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(w + 2))), _mm_loadu_si128((const __m128i *)(w + 20)), 1);
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  const __m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
  /* each maddubs pair sum is <= 2*15*127, so the int16 sum of both cannot overflow */
  const __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)(g->lo + 32 * h))),
                                     _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(g->hi + 32 * h))));
  const __m256i s = _mm256_add_epi32(_mm256_madd_epi16(p, _mm256_set1_epi16(1)),
                                     _mm256_loadu_si256((const __m256i *)(g->off + 8 * h)));
  return _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(dw, _mm256_loadu_ps(g->d + 8 * h)), acc);
}

static inline uint16_t half_at(const char *p) {
  uint16_t h;
  memcpy(&h, p, 2);
  return h;
}

static void vec_dot_q4_0(int64_t n, float *out, const void *wv, const void *av) {
  const char *w = (const char *)wv;
  const rs_block_q8_0 *a = (const rs_block_q8_0 *)av;
  const int64_t nb = n / RS_QK, ng = nb / 4;
  const rs_q8_0x_group *g = (const rs_q8_0x_group *)((const char *)av + (size_t)nb * sizeof(rs_block_q8_0));
  const __m256i lo_idx = _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1);
  const __m256i hi_idx = _mm256_setr_epi32(2, 2, 2, 2, 3, 3, 3, 3);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  for (int64_t gi = 0; gi < ng; gi++) {
    const char *wg = w + gi * 72;
    const __m128i h = _mm_setr_epi16((short)half_at(wg), (short)half_at(wg + 18), (short)half_at(wg + 36),
                                     (short)half_at(wg + 54), 0, 0, 0, 0);
    const __m256 d4 = _mm256_castps128_ps256(_mm_cvtph_ps(h));
    acc0 = q4_0_half_group(wg, g + gi, 0, _mm256_permutevar8x32_ps(d4, lo_idx), acc0);
    acc1 = q4_0_half_group(wg + 36, g + gi, 1, _mm256_permutevar8x32_ps(d4, hi_idx), acc1);
  }
  float sum = hsum256_ps(_mm256_add_ps(acc0, acc1));
  for (int64_t b = ng * 4; b < nb; b++) {
    const __m256i s = dot_q4_0_i32(unpack_q4_0((const rs_block_q4_0 *)(w + b * 18)), LOADA(a + b));
    sum += _cvtsh_ss(half_at(w + b * 18)) * _cvtsh_ss(a[b].d) * (float)hsum256_epi32(s);
  }
  *out = sum;
}

static void vec_dot_q8_0(int64_t n, float *out, const void *wv, const void *av) {
  const rs_block_q8_0 *w = (const rs_block_q8_0 *)wv;
  const rs_block_q8_0 *a = (const rs_block_q8_0 *)av;
  const int64_t nb = n / RS_QK;
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    const __m256i s0 = dot_q8_0_i32(LOADA(w + b), LOADA(a + b));
    const __m256i s1 = dot_q8_0_i32(LOADA(w + b + 1), LOADA(a + b + 1));
    acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s0), _mm256_set1_ps(_cvtsh_ss(w[b].d) * _cvtsh_ss(a[b].d)), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s1),
                           _mm256_set1_ps(_cvtsh_ss(w[b + 1].d) * _cvtsh_ss(a[b + 1].d)), acc1);
  }
  for (; b < nb; b++) {
    const __m256i s0 = dot_q8_0_i32(LOADA(w + b), LOADA(a + b));
    acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s0), _mm256_set1_ps(_cvtsh_ss(w[b].d) * _cvtsh_ss(a[b].d)), acc0);
  }
  *out = hsum256_ps(_mm256_add_ps(acc0, acc1));
}

/* Register tile of RM weight rows x RN activation rows: each weight block is unpacked
 * once and used RN times. RM = 4, RN = 2 keeps 8 accumulators + 4 weights in the 16
 * ymm registers. `q4` is a compile-time constant after inlining. */
static inline __attribute__((always_inline)) void tile_q_0(int q4, int64_t nb, int RM, int RN,
                                                           const char *w, size_t ws, const char *a,
                                                           size_t as, float *out, size_t os) {
  __m256 acc[4][2];
  for (int r = 0; r < RM; r++)
    for (int c = 0; c < RN; c++) acc[r][c] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; b++) {
    __m256i wq[4];
    float dw[4];
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
    for (int c = 0; c < RN; c++) {
      const rs_block_q8_0 *ab = (const rs_block_q8_0 *)(a + c * as) + b;
      const __m256i av = LOADA(ab);
      const float da = _cvtsh_ss(ab->d);
      for (int r = 0; r < RM; r++) {
        const __m256i s = q4 ? dot_q4_0_i32(wq[r], av) : dot_q8_0_i32(wq[r], av);
        acc[r][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(dw[r] * da), acc[r][c]);
      }
    }
  }
  for (int c = 0; c < RN; c++)
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

/* Q4_0 x Q8_0X tile of RM <= 2 weight rows x RN <= 4 activation rows, two blocks
 * (half a group) per step: each weight row's nibbles are split once into lo/hi and
 * used RN times (8 accumulators + 6 weight registers fit the 16 ymm). */
static inline __attribute__((always_inline)) void tile_q4_0g(int unused, int64_t nb, int RM, int RN,
                                                             const char *w, size_t ws, const char *a,
                                                             size_t as, float *out, size_t os) {
  (void)unused;
  const int64_t ng = nb / 4;
  const __m256i m4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
  __m256 acc[2][4];
  for (int r = 0; r < RM; r++)
    for (int c = 0; c < RN; c++) acc[r][c] = _mm256_setzero_ps();
  for (int64_t gi = 0; gi < ng; gi++)
    for (int h = 0; h < 2; h++) {
      __m256i lo[2], hi[2];
      __m256 dw[2];
      for (int r = 0; r < RM; r++) {
        const char *wb = w + r * ws + gi * 72 + h * 36;
        const __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(wb + 2))),
                                                  _mm_loadu_si128((const __m128i *)(wb + 20)), 1);
        lo[r] = _mm256_and_si256(v, m4);
        hi[r] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
        dw[r] = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_set1_ps(_cvtsh_ss(half_at(wb)))),
                                     _mm_set1_ps(_cvtsh_ss(half_at(wb + 18))), 1);
      }
      for (int c = 0; c < RN; c++) {
        const rs_q8_0x_group *g =
            (const rs_q8_0x_group *)(a + c * as + (size_t)nb * sizeof(rs_block_q8_0)) + gi;
        const __m256i alo = _mm256_loadu_si256((const __m256i *)(g->lo + 32 * h));
        const __m256i ahi = _mm256_loadu_si256((const __m256i *)(g->hi + 32 * h));
        const __m256i off = _mm256_loadu_si256((const __m256i *)(g->off + 8 * h));
        const __m256 da = _mm256_loadu_ps(g->d + 8 * h);
        for (int r = 0; r < RM; r++) {
          const __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(lo[r], alo), _mm256_maddubs_epi16(hi[r], ahi));
          const __m256i s = _mm256_add_epi32(_mm256_madd_epi16(p, ones), off);
          acc[r][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(dw[r], da), acc[r][c]);
        }
      }
    }
  for (int c = 0; c < RN; c++)
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

static void gemm_q4_0(int64_t n, int nr, int nc, const void *w, size_t ws, const void *a,
                      size_t as, float *out, size_t os) {
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

static inline __attribute__((always_inline)) void tile_f(int t, int64_t n, int RM, int RN,
                                                         const char *w, size_t ws, const char *a,
                                                         size_t as, float *out, size_t os) {
  __m256 acc[4][2];
  for (int r = 0; r < RM; r++)
    for (int c = 0; c < RN; c++) acc[r][c] = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 wv[4];
    for (int r = 0; r < RM; r++) wv[r] = load_w8(t, w + r * ws, i);
    for (int c = 0; c < RN; c++) {
      const __m256 av = _mm256_loadu_ps((const float *)(a + c * as) + i);
      for (int r = 0; r < RM; r++) acc[r][c] = _mm256_fmadd_ps(wv[r], av, acc[r][c]);
    }
  }
  for (int c = 0; c < RN; c++)
    for (int r = 0; r < RM; r++) {
      float s = hsum256_ps(acc[r][c]);
      for (int64_t j = i; j < n; j++) s += load_w1(t, w + r * ws, j) * ((const float *)(a + c * as))[j];
      out[c * os + r] = s;
    }
}

static inline __attribute__((always_inline)) void vec_dot_f(int t, int64_t n, float *out,
                                                            const void *w, const float *a) {
  __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    s0 = _mm256_fmadd_ps(load_w8(t, w, i), _mm256_loadu_ps(a + i), s0);
    s1 = _mm256_fmadd_ps(load_w8(t, w, i + 8), _mm256_loadu_ps(a + i + 8), s1);
    s2 = _mm256_fmadd_ps(load_w8(t, w, i + 16), _mm256_loadu_ps(a + i + 16), s2);
    s3 = _mm256_fmadd_ps(load_w8(t, w, i + 24), _mm256_loadu_ps(a + i + 24), s3);
  }
  for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(load_w8(t, w, i), _mm256_loadu_ps(a + i), s0);
  float s = hsum256_ps(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
  for (; i < n; i++) s += load_w1(t, w, i) * a[i];
  *out = s;
}

#define FLOAT_KERNELS(name, t)                                                                  \
  static void vec_dot_##name(int64_t n, float *out, const void *w, const void *a) {             \
    vec_dot_f(t, n, out, w, (const float *)a);                                                  \
  }                                                                                             \
  static void gemm_##name(int64_t n, int nr, int nc, const void *w, size_t ws, const void *a,   \
                          size_t as, float *out, size_t os) {                                   \
    for (int cb = 0, cbn = rs_gemm_col_block(as, 2); cb < nc; cb += cbn)                       \
    for (int r0 = 0; r0 < nr; r0 += 4) {                                                        \
      const int rm = nr - r0 < 4 ? nr - r0 : 4;                                                 \
      const int cend = nc - cb < cbn ? nc : cb + cbn;                                           \
      for (int c0 = cb; c0 < cend; c0 += 2) {                                                   \
        const int rn = cend - c0 < 2 ? cend - c0 : 2;                                           \
        const char *wp = (const char *)w + (size_t)r0 * ws, *ap = (const char *)a + (size_t)c0 * as; \
        float *op = out + (size_t)c0 * os + r0;                                                 \
        TILE_SWITCH(tile_f, t, n, rm, rn, wp, ws, ap, as, op, os)                               \
      }                                                                                         \
    }                                                                                           \
  }
FLOAT_KERNELS(f32, WF32)
FLOAT_KERNELS(f16, WF16)
FLOAT_KERNELS(bf16, WBF16)

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
static uint64_t stream_read(const void *p, size_t bytes) { return s256_stream_read(p, bytes); }

#define MM(name, ff) {ff, rs_scalar_to_float_##name, vec_dot_##name, gemm_##name}
const rs_isa_tables rs_tables_avx2 = {
    .mm = {
        [RS_TYPE_F32] = MM(f32, rs_scalar_from_float_f32),
        [RS_TYPE_F16] = MM(f16, rs_scalar_from_float_f32),
        [RS_TYPE_BF16] = MM(bf16, rs_scalar_from_float_f32),
        [RS_TYPE_Q4_0] = MM(q4_0, from_float_q8_0x),
        [RS_TYPE_Q8_0] = MM(q8_0, from_float_q8_0x),
        [RS_TYPE_Q4_K] = MM(q4_k, from_float_q8_k),
        [RS_TYPE_Q5_K] = MM(q5_k, from_float_q8_k),
        [RS_TYPE_Q6_K] = MM(q6_k, from_float_q8_k),
    },
    .fk = {RS_ISA_AVX2, rmsnorm, rope, softmax, dot_f32, dot_f32_f16, axpy_f16, f32_to_f16_row,
           ffn_act, stream_read},
};
#endif
