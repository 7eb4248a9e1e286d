/* AVX-512 (F/BW/VL/DQ + VNNI) kernels. The memory-bound ones (Q4_0, Q8_0, F32/F16/BF16
 * weights, the f16 KV-cache helpers, stream reads) use 512-bit registers; the rest
 * reuse the 256-bit code compiled with these flags.
 *
 * Q4_0 and Q8_0 use vpdpbusd (u8 x s8 -> int32) on four 32-element blocks per pair
 * of registers, against Q8_0X activations (see x0_group). */
#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#include "../ref/rs_ref_internal.h"
#include "rs_cpu_internal.h"
#include "simd256_float.h"
#include "simd256_quant.h"

/* Multi-row tiles read RM rows side by side, which the hardware prefetchers follow
 * poorly: measured here, a 4 x 1 tile of Q4_0 streamed at half the rate of vec_dot.
 * So each step of a tile prefetches its share of the next tile's rows (the next RM
 * rows, contiguous in memory), in address order, into L2: the memory sees one
 * sequential stream and the tile itself reads from cache. After the last row it
 * prefetches whatever follows, harmlessly: prefetches never fault. */
static inline __attribute__((always_inline)) void prefetch_next_rows(const char *p, size_t bytes) {
  for (size_t l = 0; l < bytes; l += 64) _mm_prefetch(p + l, _MM_HINT_T1);
}

static inline uint16_t half_at(const char *p) {
  uint16_t h;
  memcpy(&h, p, 2);
  return h;
}

/* ---------- Q4_0 / Q8_0 x Q8_0 ---------- */

/* Integer dot of one block pair with 256-bit VNNI (tails). */
static inline int idot1(int q4, const char *wb, const rs_block_q8_0 *ab) {
  __m256i wq;
  if (q4) {
    const __m128i v = _mm_loadu_si128((const __m128i *)(wb + 2));
    wq = _mm256_and_si256(_mm256_inserti128_si256(_mm256_castsi128_si256(v), _mm_srli_epi16(v, 4), 1),
                          _mm256_set1_epi8(0x0F));
  } else {
    wq = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(wb + 2)), _mm256_set1_epi8((char)0x80));
  }
  const __m256i av = _mm256_loadu_si256((const __m256i *)ab->qs);
  const __m256i z = _mm256_setzero_si256();
  const __m256i d = _mm256_sub_epi32(_mm256_dpbusd_epi32(z, wq, av),
                                     _mm256_dpbusd_epi32(z, _mm256_set1_epi8(q4 ? 8 : (char)0x80), av));
  return hsum256_epi32(d);
}

/* Q4_0 and Q8_0 against Q8_0X activations, 4 blocks per step. The 4 blocks' 16-byte
 * halves are gathered with 16-byte loads (64-byte loads at the 72- or 136-byte group
 * stride straddle cache lines and, measured here, halved the streaming rate from
 * memory) into a "lo" register (elements 0..15 of each block) and a "hi" register
 * (16..31), which line up with the activation's lo/hi arrays, so each block owns 4
 * int32 lanes of the vpdpbusd result. The weights go in as unsigned bytes: Q4_0's
 * nibbles are 0..15 (true value + 8); Q8_0 gets +128 by flipping the sign bit. The
 * lanes start from the activation's seeds, -2 * sum(a) per lane, times 16 for Q8_0,
 * which removes the 8 * sum(a) or 128 * sum(a) the offset added. The 4 weight scales
 * are converted together and spread over their 4 lanes. */
static const uint32_t k_d_idx[16] = {0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3};

#define GROUP_BYTES(q4) ((q4) ? 4 * sizeof(rs_block_q4_0) : 4 * sizeof(rs_block_q8_0))

static inline __m512i load4x16(const char *p, size_t stride) {
  return _mm512_inserti64x4(
      _mm512_castsi256_si512(_mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)p)),
                                                     _mm_loadu_si128((const __m128i *)(p + stride)), 1)),
      _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(p + 2 * stride))),
                              _mm_loadu_si128((const __m128i *)(p + 3 * stride)), 1),
      1);
}

static inline __attribute__((always_inline)) void x0_group(int q4, const char *p, __m512i d_idx, __m512i *lo,
                                                           __m512i *hi, __m512 *dw) {
  const size_t bs = q4 ? sizeof(rs_block_q4_0) : sizeof(rs_block_q8_0);
  if (q4) {
    const __m512i qs = load4x16(p + 2, bs), m4 = _mm512_set1_epi8(0x0F);
    *lo = _mm512_and_si512(qs, m4);
    *hi = _mm512_and_si512(_mm512_srli_epi16(qs, 4), m4);
  } else {
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    *lo = _mm512_xor_si512(load4x16(p + 2, bs), flip);
    *hi = _mm512_xor_si512(load4x16(p + 18, bs), flip);
  }
  const __m128i h = _mm_setr_epi16((short)half_at(p), (short)half_at(p + bs), (short)half_at(p + 2 * bs),
                                   (short)half_at(p + 3 * bs), 0, 0, 0, 0);
  *dw = _mm512_permutexvar_ps(d_idx, _mm512_castps128_ps512(_mm_cvtph_ps(h)));
}

static inline __attribute__((always_inline)) __m512 x0_group_dot(int q4, __m512i lo, __m512i hi, __m512 dw,
                                                                 const rs_q8_0x_group *g, __m512 acc) {
  __m512i s = _mm512_loadu_si512(g->off);
  if (!q4) s = _mm512_slli_epi32(s, 4);
  s = _mm512_dpbusd_epi32(s, lo, _mm512_loadu_si512(g->lo));
  s = _mm512_dpbusd_epi32(s, hi, _mm512_loadu_si512(g->hi));
  return _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw, _mm512_loadu_ps(g->d)), acc);
}

static inline const rs_q8_0x_group *q8_0x_groups(const void *a, int64_t nb) {
  return (const rs_q8_0x_group *)((const char *)a + (size_t)nb * sizeof(rs_block_q8_0));
}

/* dw * da * integer dot of the blocks after the last whole group */
static inline float x0_tail(int q4, const char *w, const rs_block_q8_0 *a, int64_t b0, int64_t nb) {
  const size_t bs = q4 ? sizeof(rs_block_q4_0) : sizeof(rs_block_q8_0);
  float s = 0.0f;
  for (int64_t b = b0; b < nb; b++)
    s += _cvtsh_ss(half_at(w + b * bs)) * _cvtsh_ss(a[b].d) * (float)idot1(q4, w + b * bs, a + b);
  return s;
}

/* RM x RN tile (RM <= 4, RN <= 4 when RM > 1, RN <= 8 when RM == 1): each weight group
 * is unpacked once per tile row and used RN times. Every output (r, c) runs the same
 * operations whatever the tile shape: one accumulator, one FMA per group in group
 * order, one reduction, then the tail blocks. vec_dot is the 1 x 1 tile, so a row's
 * result does not depend on how many activation rows share the call (batch
 * independence; see rs_cpu_internal.h). One accumulator is enough for speed: the
 * chain is one FMA per 128 elements, far below the group's other work. */
static inline __attribute__((always_inline)) void tile_x0(int q4, int64_t nb, int RM, int RN, const char *w,
                                                          size_t ws, const char *a, size_t as, float *out,
                                                          size_t os) {
  const int64_t ng = nb / 4;
  const size_t gb = GROUP_BYTES(q4);
  const __m512i d_idx = _mm512_loadu_si512(k_d_idx);
  __m512 acc[4][4];
  _Pragma("GCC unroll 8")
  for (int r = 0; r < RM; r++)
    _Pragma("GCC unroll 8")
    for (int c = 0; c < RN; c++) acc[r][c] = _mm512_setzero_ps();
  for (int64_t gi = 0; gi < ng; gi++) {
    __m512i lo[4], hi[4];
    __m512 dw[4];
    _Pragma("GCC unroll 8")
    for (int r = 0; r < RM; r++) x0_group(q4, w + r * ws + gi * gb, d_idx, &lo[r], &hi[r], &dw[r]);
    if (RM > 1) prefetch_next_rows(w + RM * ws + gi * RM * gb, RM * gb);
    _Pragma("GCC unroll 8")
    for (int c = 0; c < RN; c++) {
      const rs_q8_0x_group *g = q8_0x_groups(a + c * as, nb) + gi;
      _Pragma("GCC unroll 8")
      for (int r = 0; r < RM; r++) acc[r][c] = x0_group_dot(q4, lo[r], hi[r], dw[r], g, acc[r][c]);
    }
  }
  _Pragma("GCC unroll 8")
  for (int c = 0; c < RN; c++)
    _Pragma("GCC unroll 8")
    for (int r = 0; r < RM; r++)
      out[c * os + r] = _mm512_reduce_add_ps(acc[r][c]) +
                        x0_tail(q4, w + r * ws, (const rs_block_q8_0 *)(a + c * as), ng * 4, nb);
}

/* rs_dot_rows for Q4_0 (sparse_dot.c): tile_x0's one-column operations over up to 8
 * weight rows at any addresses (the sparse FFN's active neurons), so each output is
 * vec_dot_q4_0's bit for bit; the rows' cache misses overlap. */
static inline __attribute__((always_inline)) void rows_x0(int RM, int64_t nb, const char *const *w, const char *a,
                                                          float *out) {
  const int64_t ng = nb / 4;
  const size_t gb = GROUP_BYTES(1);
  const __m512i d_idx = _mm512_loadu_si512(k_d_idx);
  const rs_q8_0x_group *grp = q8_0x_groups(a, nb);
  __m512 acc[8];
  _Pragma("GCC unroll 8")
  for (int r = 0; r < RM; r++) acc[r] = _mm512_setzero_ps();
  for (int64_t gi = 0; gi < ng; gi++)
    _Pragma("GCC unroll 8")
    for (int r = 0; r < RM; r++) {
      __m512i lo, hi;
      __m512 dw;
      x0_group(1, w[r] + gi * gb, d_idx, &lo, &hi, &dw);
      acc[r] = x0_group_dot(1, lo, hi, dw, grp + gi, acc[r]);
    }
  _Pragma("GCC unroll 8")
  for (int r = 0; r < RM; r++)
    out[r] = _mm512_reduce_add_ps(acc[r]) + x0_tail(1, w[r], (const rs_block_q8_0 *)a, ng * 4, nb);
}

void rs_avx512_dot_rows_q4_0(int nr, int64_t nb, const char *const *w, const char *a, float *out) {
  switch (nr) {
    case 8: rows_x0(8, nb, w, a, out); break;
    case 7: rows_x0(7, nb, w, a, out); break;
    case 6: rows_x0(6, nb, w, a, out); break;
    case 5: rows_x0(5, nb, w, a, out); break;
    case 4: rows_x0(4, nb, w, a, out); break;
    case 3: rows_x0(3, nb, w, a, out); break;
    case 2: rows_x0(2, nb, w, a, out); break;
    default: rows_x0(1, nb, w, a, out); break;
  }
}

static void vec_dot_q4_0(int64_t n, float *out, const void *w, const void *a) {
  tile_x0(1, n / RS_QK, 1, 1, (const char *)w, 0, (const char *)a, 0, out, 0);
}
static void vec_dot_q8_0(int64_t n, float *out, const void *w, const void *a) {
  tile_x0(0, n / RS_QK, 1, 1, (const char *)w, 0, (const char *)a, 0, out, 0);
}

#define TILE_CASE(fn, k, rm, rn, ...) \
  case (rm) * 16 + (rn): fn(k, __VA_ARGS__, rm, rn, w_, ws, a_, as, o_, os); break;
#define TILE_SWITCH(fn, k, x, rm, rn)                                                    \
  switch ((rm) * 16 + (rn)) {                                                            \
    TILE_CASE(fn, k, 4, 4, x) TILE_CASE(fn, k, 4, 3, x) TILE_CASE(fn, k, 4, 2, x)        \
    TILE_CASE(fn, k, 4, 1, x) TILE_CASE(fn, k, 3, 4, x) TILE_CASE(fn, k, 3, 3, x)        \
    TILE_CASE(fn, k, 3, 2, x) TILE_CASE(fn, k, 3, 1, x) TILE_CASE(fn, k, 2, 4, x)        \
    TILE_CASE(fn, k, 2, 3, x) TILE_CASE(fn, k, 2, 2, x) TILE_CASE(fn, k, 2, 1, x)        \
    TILE_CASE(fn, k, 1, 4, x) TILE_CASE(fn, k, 1, 3, x) TILE_CASE(fn, k, 1, 2, x)        \
    default: fn(k, x, 1, 1, w_, ws, a_, as, o_, os); break;                              \
  }

/* One activation row: vec_dot per weight row, in address order. Otherwise the output
 * is walked in 4 x 4 tiles (smaller at the edges): sharing each activation load
 * between 4 weight rows matters even at nc = 2, as Q8_0X is 2 bytes per element (3.6x a
 * Q4_0 weight) and would otherwise dominate the reads. The tiles prefetch the next
 * tile's rows in address order (see prefetch_next_rows); past nc = 4, the output is walked in
 * 4 x 4 tiles (smaller at the edges), a block of activation rows that fits in L2 at a
 * time (rs_gemm_col_block), so that long prompts do not re-read activations from L3
 * for every 4 weight rows. */
#define GEMM_TILES(fn, k, x)                                                       \
  if (nc == 1) {                                                                   \
    for (int r0 = 0; r0 < nr; r0++) {                                              \
      const char *w_ = (const char *)w + (size_t)r0 * ws, *a_ = (const char *)a;   \
      float *o_ = out + r0;                                                        \
      TILE_SWITCH(fn, k, x, 1, nc)                                                 \
    }                                                                              \
    return;                                                                        \
  }                                                                                \
  for (int cb = 0, cbn = rs_gemm_col_block(as, 4); cb < nc; cb += cbn)             \
  for (int r0 = 0; r0 < nr; r0 += 4) {                                             \
    const int rm = nr - r0 < 4 ? nr - r0 : 4;                                      \
    const int cend = nc - cb < cbn ? nc : cb + cbn;                                \
    for (int c0 = cb; c0 < cend; c0 += 4) {                                        \
      const int rn = cend - c0 < 4 ? cend - c0 : 4;                                \
      const char *w_ = (const char *)w + (size_t)r0 * ws;                          \
      const char *a_ = (const char *)a + (size_t)c0 * as;                          \
      float *o_ = out + (size_t)c0 * os + r0;                                      \
      TILE_SWITCH(fn, k, x, rm, rn)                                                \
    }                                                                              \
  }

static void gemm_q4_0(int64_t n, int nr, int nc, const void *w, size_t ws, const void *a,
                      size_t as, float *out, size_t os) {
  GEMM_TILES(tile_x0, 1, n / RS_QK)
}
static void gemm_q8_0(int64_t n, int nr, int nc, const void *w, size_t ws, const void *a,
                      size_t as, float *out, size_t os) {
  GEMM_TILES(tile_x0, 0, n / RS_QK)
}

/* ---------- F32 / F16 / BF16 weights x F32 activations ---------- */

enum { WF32 = 0, WF16 = 1, WBF16 = 2 };

/* 16 weights from element i; `m` masks the tail (all ones otherwise). */
static inline __m512 load_w16(int t, const void *w, int64_t i, __mmask16 m) {
  if (t == WF32) return _mm512_maskz_loadu_ps(m, (const float *)w + i);
  const __m256i h = _mm256_maskz_loadu_epi16(m, (const uint16_t *)w + i);
  if (t == WF16) return _mm512_cvtph_ps(h);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/* RM x RN tile (RM <= 4, RN <= 3). The accumulation every output (r, c) runs, whatever
 * the tile shape (vec_dot is the 1 x 1 tile): two accumulators, 16-element steps
 * alternating between them (the masked tail steps continue the alternation), reduced
 * as acc0 + acc1. Two chains keep one row's dot streaming from memory. Weights are
 * loaded one step at a time, so 2 * 4 * 3 accumulators + 4 weights + 1 activation fit
 * the 32 zmm registers. */
static inline __attribute__((always_inline)) void tile_f_step(int t, int RM, int RN, const char *w, size_t ws,
                                                              const char *a, size_t as, int64_t i, __mmask16 m,
                                                              __m512 acc[4][3][2], int k) {
  __m512 wv[4];
  _Pragma("GCC unroll 8")
  for (int r = 0; r < RM; r++) wv[r] = load_w16(t, w + r * ws, i, m);
  _Pragma("GCC unroll 8")
  for (int c = 0; c < RN; c++) {
    const __m512 av = _mm512_maskz_loadu_ps(m, (const float *)(a + c * as) + i);
    _Pragma("GCC unroll 8")
    for (int r = 0; r < RM; r++) acc[r][c][k] = _mm512_fmadd_ps(wv[r], av, acc[r][c][k]);
  }
}

static inline __attribute__((always_inline)) void tile_f(int t, int64_t n, int RM, int RN, const char *w,
                                                         size_t ws, const char *a, size_t as, float *out,
                                                         size_t os) {
  const size_t esize = t == WF32 ? 4 : 2;
  __m512 acc[4][3][2];
  _Pragma("GCC unroll 8")
  for (int r = 0; r < RM; r++)
    _Pragma("GCC unroll 8")
    for (int c = 0; c < RN; c++) acc[r][c][0] = acc[r][c][1] = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    if (RM > 1) prefetch_next_rows(w + RM * ws + (size_t)i * RM * esize, 32 * RM * esize);
    tile_f_step(t, RM, RN, w, ws, a, as, i, 0xFFFF, acc, 0);
    tile_f_step(t, RM, RN, w, ws, a, as, i + 16, 0xFFFF, acc, 1);
  }
  /* the last (up to two) masked steps */
  if (i < n) {
    tile_f_step(t, RM, RN, w, ws, a, as, i, n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1), acc, 0);
    i += 16;
  }
  if (i < n) tile_f_step(t, RM, RN, w, ws, a, as, i, (__mmask16)((1u << (n - i)) - 1), acc, 1);
  _Pragma("GCC unroll 8")
  for (int c = 0; c < RN; c++)
    _Pragma("GCC unroll 8")
    for (int r = 0; r < RM; r++)
      out[c * os + r] = _mm512_reduce_add_ps(_mm512_add_ps(acc[r][c][0], acc[r][c][1]));
}

/* rs_dot_rows for float weights (sparse_dot.c): tile_f's 1 x 1 accumulation over up to 4
 * rows at any addresses (the sparse FFN's active neurons), side by side so their misses
 * overlap; each output is vec_dot's bit for bit. */
static inline __attribute__((always_inline)) void rows_f_step(int t, int RM, const char *const *w, const float *a,
                                                              int64_t i, __mmask16 m, __m512 acc[4][2], int k) {
  const __m512 av = _mm512_maskz_loadu_ps(m, a + i);
  _Pragma("GCC unroll 4")
  for (int r = 0; r < RM; r++) acc[r][k] = _mm512_fmadd_ps(load_w16(t, w[r], i, m), av, acc[r][k]);
}

static inline __attribute__((always_inline)) void rows_f(int t, int RM, int64_t n, const char *const *w,
                                                         const float *a, float *out) {
  __m512 acc[4][2];
  _Pragma("GCC unroll 4")
  for (int r = 0; r < RM; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    rows_f_step(t, RM, w, a, i, 0xFFFF, acc, 0);
    rows_f_step(t, RM, w, a, i + 16, 0xFFFF, acc, 1);
  }
  if (i < n) {
    rows_f_step(t, RM, w, a, i, n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1), acc, 0);
    i += 16;
  }
  if (i < n) rows_f_step(t, RM, w, a, i, (__mmask16)((1u << (n - i)) - 1), acc, 1);
  _Pragma("GCC unroll 4")
  for (int r = 0; r < RM; r++) out[r] = _mm512_reduce_add_ps(_mm512_add_ps(acc[r][0], acc[r][1]));
}

void rs_avx512_dot_rows_f(int t, int nr, int64_t n, const void *const *w, const float *a, float *out) {
  const char *const *wc = (const char *const *)w;
  const int k = t == RS_TYPE_F32 ? WF32 : t == RS_TYPE_F16 ? WF16 : WBF16;
  switch (nr) {
    case 4: rows_f(k, 4, n, wc, a, out); break;
    case 3: rows_f(k, 3, n, wc, a, out); break;
    case 2: rows_f(k, 2, n, wc, a, out); break;
    default: rows_f(k, 1, n, wc, a, out); break;
  }
}

/* One activation row: 4 x 1 tiles (each output's accumulation is vec_dot's, so the
 * same bits): four rows' streams and chains side by side, measured 1.1-1.4x dense F16
 * decode of a 1b llama on the 2-core AVX-512 EPYC (alternated runs; the same tiles over
 * Q4_0 plain rows measured 2-3% slower there, so the quantized types keep one row at a
 * time). Otherwise 4 x 3 tiles (smaller at the edges), over column blocks that stay in
 * L2: F32 activations are 2x
 * (F16) to 1x (F32) the weight bytes per row, so sharing them between 4 weight rows
 * is what keeps small batches near the cost of one. */
#define TILE_F_CASE(rm, rn) \
  case (rm) * 4 + (rn): tile_f(t, n, rm, rn, wp, ws, ap, as, op, os); break;
static inline __attribute__((always_inline)) void gemm_f(int t, int64_t n, int nr, int nc, const void *w,
                                                         size_t ws, const void *a, size_t as, float *out,
                                                         size_t os) {
  if (nc == 1) {
    for (int r0 = 0; r0 < nr; r0 += 4) {
      const char *wp = (const char *)w + (size_t)r0 * ws, *ap = (const char *)a;
      float *op = out + r0;
      switch ((nr - r0 < 4 ? nr - r0 : 4) * 4 + 1) {
        TILE_F_CASE(4, 1) TILE_F_CASE(3, 1) TILE_F_CASE(2, 1) default: tile_f(t, n, 1, 1, wp, ws, ap, as, op, os); break;
      }
    }
    return;
  }
  for (int cb = 0, cbn = rs_gemm_col_block(as, 3); cb < nc; cb += cbn) {
    const int cend = nc - cb < cbn ? nc : cb + cbn;
    for (int r0 = 0; r0 < nr; r0 += 4) {
      const int rm = nr - r0 < 4 ? nr - r0 : 4;
      const char *wp = (const char *)w + (size_t)r0 * ws;
      for (int c0 = cb; c0 < cend; c0 += 3) {
        const char *ap = (const char *)a + (size_t)c0 * as;
        float *op = out + (size_t)c0 * os + r0;
        switch (rm * 4 + (cend - c0 < 3 ? cend - c0 : 3)) {
          TILE_F_CASE(4, 3) TILE_F_CASE(4, 2) TILE_F_CASE(4, 1) TILE_F_CASE(3, 3) TILE_F_CASE(3, 2)
          TILE_F_CASE(3, 1) TILE_F_CASE(2, 3) TILE_F_CASE(2, 2) TILE_F_CASE(2, 1) TILE_F_CASE(1, 3)
          TILE_F_CASE(1, 2) default: tile_f(t, n, 1, 1, wp, ws, ap, as, op, os); break;
        }
      }
    }
  }
}

/* dot of n floats with n f32/f16 values: the attention kernels (not the matmul). */
static inline __attribute__((always_inline)) float vdot_f(int t, int64_t n, const void *w,
                                                          const float *a) {
  __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    s0 = _mm512_fmadd_ps(load_w16(t, w, i, 0xFFFF), _mm512_loadu_ps(a + i), s0);
    s1 = _mm512_fmadd_ps(load_w16(t, w, i + 16, 0xFFFF), _mm512_loadu_ps(a + i + 16), s1);
    s2 = _mm512_fmadd_ps(load_w16(t, w, i + 32, 0xFFFF), _mm512_loadu_ps(a + i + 32), s2);
    s3 = _mm512_fmadd_ps(load_w16(t, w, i + 48, 0xFFFF), _mm512_loadu_ps(a + i + 48), s3);
  }
  for (; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
    s0 = _mm512_fmadd_ps(load_w16(t, w, i, m), _mm512_maskz_loadu_ps(m, a + i), s0);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

RS_FLOAT_MATMUL_KERNELS(f32, WF32)
RS_FLOAT_MATMUL_KERNELS(f16, WF16)
RS_FLOAT_MATMUL_KERNELS(bf16, WBF16)

/* ---------- float kernels ---------- */

static float dot_f32_f16(const float *a, const uint16_t *b, int n) { return vdot_f(WF16, n, b, a); }
static float dot_f32(const float *a, const float *b, int n) { return vdot_f(WF32, n, b, a); }

static void axpy_f16(float *y, float a, const uint16_t *x, int n) {
  const __m512 va = _mm512_set1_ps(a);
  for (int i = 0; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
    const __m512 xv = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, x + i));
    _mm512_mask_storeu_ps(y + i, m, _mm512_fmadd_ps(va, xv, _mm512_maskz_loadu_ps(m, y + i)));
  }
}

#define Z_READ4(LOAD, q)                                       \
  do {                                                         \
    s0 = _mm512_add_epi64(s0, LOAD((q)));                      \
    s1 = _mm512_xor_si512(s1, LOAD((q) + 64));                 \
    s2 = _mm512_add_epi64(s2, LOAD((q) + 128));                \
    s3 = _mm512_xor_si512(s3, LOAD((q) + 192));                \
  } while (0)
#define Z_LOAD(q) _mm512_load_si512((const void *)(q))
#define Z_LOAD_NT(q) _mm512_stream_load_si512((void *)(q))

/* rs_stream_read with 64-byte loads (see rs_read_pattern). */
static uint64_t stream_read(const void *p, size_t bytes, rs_read_pattern pattern) {
  const uint8_t *b = (const uint8_t *)p;
  uint64_t r = 0;
  /* An unaligned head byte by byte: the vector loops use aligned (and streaming) loads. */
  for (; bytes > 0 && ((uintptr_t)b & 63) != 0; b++, bytes--) r += *b;
  __m512i s0 = _mm512_setzero_si512(), s1 = s0, s2 = s0, s3 = s0;
  size_t i = 0;
  const size_t n = bytes / 256 * 256;
  switch (pattern) {
    case RS_READ_PREFETCH:
      for (; i < n; i += 256) {
        for (int k = 0; k < 256; k += 64) _mm_prefetch((const char *)b + i + RS_READ_PREFETCH_AHEAD + k, _MM_HINT_T0);
        Z_READ4(Z_LOAD, b + i);
      }
      break;
    case RS_READ_NONTEMPORAL:
      for (; i < n; i += 256) {
        for (int k = 0; k < 256; k += 64) _mm_prefetch((const char *)b + i + RS_READ_PREFETCH_AHEAD + k, _MM_HINT_NTA);
        Z_READ4(Z_LOAD_NT, b + i);
      }
      break;
    case RS_READ_TWO_STREAMS: {
      const size_t h = n / 2;
      const uint8_t *c = b + h;
      for (; i < h; i += 128) {
        s0 = _mm512_add_epi64(s0, Z_LOAD(b + i));
        s1 = _mm512_xor_si512(s1, Z_LOAD(b + i + 64));
        s2 = _mm512_add_epi64(s2, Z_LOAD(c + i));
        s3 = _mm512_xor_si512(s3, Z_LOAD(c + i + 64));
      }
      i = n;
      break;
    }
    default:
      for (; i < n; i += 256) Z_READ4(Z_LOAD, b + i);
      break;
  }
  const __m512i s = _mm512_xor_si512(_mm512_add_epi64(s0, s2), _mm512_add_epi64(s1, s3));
  r ^= (uint64_t)_mm512_reduce_add_epi64(s);
  for (; i < bytes; i++) r += b[i];
  return r;
}

static void from_float_q8_k(const float *x, void *y, int64_t n) { s256_from_float_q8_k(x, y, n); }
static void from_float_q8_0x(const float *x, void *y, int64_t n) {
  s256_from_float_q8_0(x, y, n);
  rs_q8_0x_build_groups(y, n);
}
static void rmsnorm(float *y, const float *x, const float *w, int n, float eps) { s256_rmsnorm(y, x, w, n, eps); }
static void rope(float *x, int nh, int hd, int pos, float fb) { s256_rope(x, nh, hd, pos, fb); }
static void softmax(float *x, int n) { s256_softmax(x, n); }
static void f32_to_f16_row(const float *x, uint16_t *y, int n) { s256_f32_to_f16_row(x, y, n); }
static void ffn_act(rs_act act, float *h, const float *g, const float *u, int n) { s256_ffn_act(act, h, g, u, n); }

const rs_isa_tables rs_tables_avx512 = {
    .mm = {
        [RS_TYPE_F32] = RS_MM_ENTRY(f32, rs_scalar_from_float_f32),
        [RS_TYPE_F16] = RS_MM_ENTRY(f16, rs_scalar_from_float_f32),
        [RS_TYPE_BF16] = RS_MM_ENTRY(bf16, rs_scalar_from_float_f32),
        [RS_TYPE_Q4_0] = RS_MM_X8_ENTRY(q4_0, from_float_q8_0x, rs_avx512_gemm_q4_0x8),
        [RS_TYPE_Q8_0] = RS_MM_ENTRY(q8_0, from_float_q8_0x),
        [RS_TYPE_Q4_K] = {from_float_q8_k, rs_scalar_to_float_q4_k, rs_avx512_vec_dot_q4_k, rs_avx512_gemm_q4_k},
        [RS_TYPE_Q5_K] = {from_float_q8_k, rs_scalar_to_float_q5_k, rs_avx512_vec_dot_q5_k, rs_avx512_gemm_q5_k},
        [RS_TYPE_Q6_K] = {from_float_q8_k, rs_scalar_to_float_q6_k, rs_avx512_vec_dot_q6_k, rs_avx512_gemm_q6_k},
    },
    .fk = {RS_ISA_AVX512, rmsnorm, rope, softmax, dot_f32, dot_f32_f16, axpy_f16, f32_to_f16_row,
           ffn_act, stream_read},
};
#endif
