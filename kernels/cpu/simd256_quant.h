/* 256-bit activation quantisers (f32 -> Q8_0 / Q8_K) and the K-quant kernels, shared
 * by avx2.c and avx512.c. The K-quants are handled in two steps: a super-block is
 * decoded once into plain bytes plus per-16 integer multipliers (kq_decoded), then
 * dotted with as many Q8_K activation rows as the tile has. One decoded form serves
 * Q4_K, Q5_K and Q6_K:
 *   dot = a.d * (d * sum_g sc[g] * dot16(q, a.qs)[g] - dmin * sum_g mn[g] * a.bsums[g])
 * Q4_K/Q5_K: sc, mn are the 6-bit scale/min of the 32-element sub-block holding group
 * g; Q6_K: q is the raw 6-bit level, sc = mn = the int8 scale, dmin = 32 * d (the -32
 * offset applied through the activation sums). */
#ifndef RS_SIMD256_QUANT_H
#define RS_SIMD256_QUANT_H

#include <immintrin.h>
#include <string.h>

#include "../ref/rs_blocks.h"
#include "rs_cpu_internal.h"
#include "simd256_float.h"

static inline float hmax256_ps(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

/* 32 int32 (4 vectors, rounded already) -> 32 int8 in element order. */
static inline __m256i pack_4x8_epi32(__m256i i0, __m256i i1, __m256i i2, __m256i i3) {
  const __m256i p01 = _mm256_packs_epi32(i0, i1), p23 = _mm256_packs_epi32(i2, i3);
  const __m256i p = _mm256_packs_epi16(p01, p23);
  /* the packs work per 128-bit lane; this restores element order */
  return _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/* Quantises 32 floats with multiplier id; rounding is cvtps's nearest-even, the same
 * as the reference's nearbyintf, so the bytes match the reference exactly. */
static inline __m256i quant32(const float *x, __m256 vid, __m256i s16[2]) {
  const __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x), vid));
  const __m256i i1 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 8), vid));
  const __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 16), vid));
  const __m256i i3 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 24), vid));
  if (s16) {
    s16[0] = _mm256_add_epi32(i0, i1);
    s16[1] = _mm256_add_epi32(i2, i3);
  }
  return pack_4x8_epi32(i0, i1, i2, i3);
}

static inline float absmax_f32(const float *x, int n) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  __m256 m = _mm256_setzero_ps();
  for (int i = 0; i < n; i += 8) m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + i)));
  return hmax256_ps(m);
}

static inline void s256_from_float_q8_0(const float *x, void *yv, int64_t n) {
  rs_block_q8_0 *y = (rs_block_q8_0 *)yv;
  for (int64_t b = 0; b < n / RS_QK; b++) {
    const float *xb = x + b * RS_QK;
    const float d = absmax_f32(xb, RS_QK) / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = rs_fp32_to_fp16(d);
    _mm256_storeu_si256((__m256i *)y[b].qs, quant32(xb, _mm256_set1_ps(id), NULL));
  }
}

static inline void s256_from_float_q8_k(const float *x, void *yv, int64_t n) {
  rs_block_q8_k *y = (rs_block_q8_k *)yv;
  for (int64_t b = 0; b < n / RS_QK_K; b++) {
    const float *xb = x + b * RS_QK_K;
    const float d = absmax_f32(xb, RS_QK_K) / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = d;
    const __m256 vid = _mm256_set1_ps(id);
    for (int g = 0; g < 8; g++) {
      __m256i s16[2];
      _mm256_storeu_si256((__m256i *)(y[b].qs + 32 * g), quant32(xb + 32 * g, vid, s16));
      y[b].bsums[2 * g] = (int16_t)hsum256_epi32(s16[0]);
      y[b].bsums[2 * g + 1] = (int16_t)hsum256_epi32(s16[1]);
    }
  }
}

typedef struct {
  __m256i q[8];   /* 256 levels, element order */
  __m256i scx[8]; /* int16 multipliers for q[k]: lanes 0-7 group 2k, 8-15 group 2k+1 */
  __m256i mn;     /* 16 int16 multipliers of the activation group sums */
  float d, dmin;
} kq_decoded;

/* Unpacks the 12 scale bytes of Q4_K/Q5_K without a per-sub-block loop, following
 * rs_get_scale_min_k4 four bytes at a time: with the bytes as little-endian words
 * W0 = q[0..3], W1 = q[4..7], W2 = q[8..11]:
 *   sc[0..3] = W0 & 0x3f..             sc[4..7] = W2 & 0x0f.. | (W0 >> 6 & 0x03..) << 4
 *   m[0..3]  = W1 & 0x3f..             m[4..7]  = W2 >> 4 & 0x0f.. | (W1 >> 6 & 0x03..) << 4 */
/* Returns int16 lanes 0..7: the scales, 8..15: the mins; *mn gets each min twice (one
 * lane per 16-element group, the multipliers of a.bsums). Also used by avx512_kquant.c. */
static inline __m256i k4_unpack(const uint8_t *scales, __m256i *mn) {
  uint32_t w[3];
  memcpy(w, scales, 12);
  const uint32_t k1 = 0x3f3f3f3fu, k2 = 0x0f0f0f0fu, k3 = 0x03030303u;
  const uint32_t s_lo = w[0] & k1, s_hi = (w[2] & k2) | (((w[0] >> 6) & k3) << 4);
  const uint32_t m_lo = w[1] & k1, m_hi = ((w[2] >> 4) & k2) | (((w[1] >> 6) & k3) << 4);
  const __m256i sm = _mm256_cvtepu8_epi16(_mm_setr_epi32((int)s_lo, (int)s_hi, (int)m_lo, (int)m_hi));
  const __m128i m8 = _mm256_extracti128_si256(sm, 1);
  *mn = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_unpacklo_epi16(m8, m8)), _mm_unpackhi_epi16(m8, m8), 1);
  return sm;
}

static inline void k4_scales(const uint8_t *scales, kq_decoded *o) {
  const __m256i sm = k4_unpack(scales, &o->mn);
  const __m256i sc = _mm256_permute2x128_si256(sm, sm, 0x00);
  for (int k = 0; k < 8; k++) /* a 32-element sub-block is both of its 16-groups */
    o->scx[k] = _mm256_shuffle_epi8(sc, _mm256_set1_epi16((short)(((2 * k + 1) << 8) | (2 * k))));
}

static inline void decode_q4_k(const rs_block_q4_k *w, kq_decoded *o) {
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  for (int c = 0; c < 4; c++) {
    const __m256i v = _mm256_loadu_si256((const __m256i *)(w->qs + 32 * c));
    o->q[2 * c] = _mm256_and_si256(v, m4);
    o->q[2 * c + 1] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
  }
  k4_scales(w->scales, o);
  o->d = _cvtsh_ss(w->d);
  o->dmin = _cvtsh_ss(w->dmin);
}

static inline void decode_q5_k(const rs_block_q5_k *w, kq_decoded *o) {
  const __m256i m4 = _mm256_set1_epi8(0x0F), b4 = _mm256_set1_epi8(0x10);
  const __m256i qh = _mm256_loadu_si256((const __m256i *)w->qh);
  for (int c = 0; c < 4; c++) {
    const __m256i v = _mm256_loadu_si256((const __m256i *)(w->qs + 32 * c));
    const __m256i bit0 = _mm256_set1_epi8((char)(1 << (2 * c)));
    const __m256i bit1 = _mm256_set1_epi8((char)(2 << (2 * c)));
    const __m256i h0 = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, bit0), bit0), b4);
    const __m256i h1 = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, bit1), bit1), b4);
    o->q[2 * c] = _mm256_or_si256(_mm256_and_si256(v, m4), h0);
    o->q[2 * c + 1] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(v, 4), m4), h1);
  }
  k4_scales(w->scales, o);
  o->d = _cvtsh_ss(w->d);
  o->dmin = _cvtsh_ss(w->dmin);
}

static inline void decode_q6_k(const rs_block_q6_k *w, kq_decoded *o) {
  const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(3);
  for (int c = 0; c < 2; c++) {
    const __m256i l0 = _mm256_loadu_si256((const __m256i *)(w->ql + 64 * c));
    const __m256i l1 = _mm256_loadu_si256((const __m256i *)(w->ql + 64 * c + 32));
    const __m256i h = _mm256_loadu_si256((const __m256i *)(w->qh + 32 * c));
    /* high 2 bits of quarter k sit at bits 2k of qh; move them to bits 4-5 */
    const __m256i h0 = _mm256_slli_epi16(_mm256_and_si256(h, m2), 4);
    const __m256i h1 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2), m2), 4);
    const __m256i h2 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 4), m2), 4);
    const __m256i h3 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 6), m2), 4);
    o->q[4 * c] = _mm256_or_si256(_mm256_and_si256(l0, m4), h0);
    o->q[4 * c + 1] = _mm256_or_si256(_mm256_and_si256(l1, m4), h1);
    o->q[4 * c + 2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), h2);
    o->q[4 * c + 3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4), h3);
  }
  o->mn = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)w->scales));
  /* scx[k]: int16 scale 2k over the low 128 bits, 2k+1 over the high: broadcast the
   * 32-bit pair k, then pick its first / second half per 128-bit lane */
  const __m256i pick = _mm256_setr_epi8(0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1,
                                        2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3);
  for (int k = 0; k < 8; k++)
    o->scx[k] = _mm256_shuffle_epi8(_mm256_permutevar8x32_epi32(o->mn, _mm256_set1_epi32(k)), pick);
  o->d = _cvtsh_ss(w->d);
  o->dmin = 32.0f * o->d;
}

/* Integer parts of one super-block dot as 8 int32 lanes each: sum_g sc[g]*dot16 and
 * sum_g mn[g]*bsums[g]. Levels are at most 63, so maddubs's int16 pair sums
 * (<= 2*63*127) never saturate. */
static inline void kq_dot_parts(const kq_decoded *w, const rs_block_q8_k *a, __m256i *isum, __m256i *msum) {
  __m256i acc = _mm256_setzero_si256();
  for (int k = 0; k < 8; k++) {
    const __m256i p = _mm256_maddubs_epi16(w->q[k], _mm256_loadu_si256((const __m256i *)(a->qs + 32 * k)));
    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, w->scx[k]));
  }
  *isum = acc;
  *msum = _mm256_madd_epi16(w->mn, _mm256_loadu_si256((const __m256i *)a->bsums));
}

/* acc += a.d * (d * isum - dmin * msum), lane-wise; one horizontal sum at the end. */
static inline __m256 kq_accumulate(const kq_decoded *w, const rs_block_q8_k *a, __m256 acc) {
  __m256i isum, msum;
  kq_dot_parts(w, a, &isum, &msum);
  acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(w->d * a->d), acc);
  return _mm256_fnmadd_ps(_mm256_cvtepi32_ps(msum), _mm256_set1_ps(w->dmin * a->d), acc);
}

/* K-quant tiles: one weight row x RN <= 8 activation rows; each super-block is
 * decoded once (into L1: 17 registers' worth does not fit the 16 ymm) and dotted with
 * the RN rows. Every output runs the same operations whatever RN (kq_accumulate per
 * super-block in order, one reduction), and vec_dot is RN = 1, so results do not
 * depend on the batch (see rs_cpu_internal.h). `kind` (4 = Q4_K, 5 = Q5_K, 6 = Q6_K)
 * and RN are compile-time constants after inlining, so the accumulators stay in
 * registers (the earlier gemm, with run-time tile shapes and a decode function
 * pointer, measured 2-5x slower than vec_dot at nc = 1). */
static inline __attribute__((always_inline)) void kq_decode(int kind, const char *w, kq_decoded *o) {
  if (kind == 4) decode_q4_k((const rs_block_q4_k *)w, o);
  else if (kind == 5) decode_q5_k((const rs_block_q5_k *)w, o);
  else decode_q6_k((const rs_block_q6_k *)w, o);
}

static inline __attribute__((always_inline)) void kq_tile(int kind, int64_t nb, int RN, const char *w,
                                                          const char *a, size_t as, float *out, size_t os) {
  const size_t wblock = kind == 4 ? sizeof(rs_block_q4_k) : kind == 5 ? sizeof(rs_block_q5_k) : sizeof(rs_block_q6_k);
  __m256 acc[8];
  _Pragma("GCC unroll 8")
  for (int c = 0; c < RN; c++) acc[c] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; b++) {
    kq_decoded dec;
    kq_decode(kind, w + b * wblock, &dec);
    _Pragma("GCC unroll 8")
    for (int c = 0; c < RN; c++) acc[c] = kq_accumulate(&dec, (const rs_block_q8_k *)(a + (size_t)c * as) + b, acc[c]);
  }
  _Pragma("GCC unroll 8")
  for (int c = 0; c < RN; c++) out[(size_t)c * os] = hsum256_ps(acc[c]);
}

/* Weight rows in address order, each against the activation rows 8 at a time (the
 * decode is a large part of the work, so each serves as many rows as the registers
 * allow: 8 accumulators), over column blocks that stay in L2 (rs_gemm_col_block). */
#define KQ_CASE(rn) \
  case rn: kq_tile(kind, nb, rn, wr, ap, as, op, os); break;
static inline __attribute__((always_inline)) void kq_gemm(int kind, int64_t n, int nr, int nc, const void *w,
                                                          size_t ws, const void *a, size_t as, float *out,
                                                          size_t os) {
  const int64_t nb = n / RS_QK_K;
  for (int cb = 0, cbn = rs_gemm_col_block(as, 8); cb < nc; cb += cbn) {
    const int cend = nc - cb < cbn ? nc : cb + cbn;
    for (int r = 0; r < nr; r++) {
      const char *wr = (const char *)w + (size_t)r * ws;
      for (int c0 = cb; c0 < cend; c0 += 8) {
        const char *ap = (const char *)a + (size_t)c0 * as;
        float *op = out + (size_t)c0 * os + r;
        switch (cend - c0 < 8 ? cend - c0 : 8) {
          KQ_CASE(8) KQ_CASE(7) KQ_CASE(6) KQ_CASE(5) KQ_CASE(4) KQ_CASE(3) KQ_CASE(2)
          default: kq_tile(kind, nb, 1, wr, ap, as, op, os); break;
        }
      }
    }
  }
}
#undef KQ_CASE

#define KQ_KERNELS(name, kind)                                                             \
  static void vec_dot_##name(int64_t n, float *out, const void *w, const void *a) {        \
    kq_tile(kind, n / RS_QK_K, 1, (const char *)w, (const char *)a, 0, out, 0);            \
  }                                                                                        \
  static void gemm_##name(int64_t n, int nr, int nc, const void *w, size_t ws, const void *a, \
                          size_t as, float *out, size_t os) {                              \
    kq_gemm(kind, n, nr, nc, w, ws, a, as, out, os);                                       \
  }
KQ_KERNELS(q5_k, 5)

/* Q4_K against one activation row, decoded in registers as vec_dot_q6_k below does (the
 * K-quant files' most common type: a Q4_K_M model's decode). Bit for bit kq_tile's
 * result: the same int32 lanes, then the same float steps. */
static void vec_dot_q4_k(int64_t n, float *out, const void *wv, const void *av) {
  const rs_block_q4_k *w = (const rs_block_q4_k *)wv;
  const rs_block_q8_k *a = (const rs_block_q8_k *)av;
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / RS_QK_K; b++) {
    const rs_block_q4_k *wb = w + b;
    const rs_block_q8_k *ab = a + b;
    __m256i mn;
    const __m256i sm = k4_unpack(wb->scales, &mn);
    /* the 8 scales in both lanes (an insert, not a lane permute: 8 uops on Zen 1) */
    const __m256i sc = _mm256_inserti128_si256(sm, _mm256_castsi256_si128(sm), 1);
    __m256i isum = _mm256_setzero_si256();
    for (int c = 0; c < 4; c++) {
      const __m256i v = _mm256_loadu_si256((const __m256i *)(wb->qs + 32 * c));
      const int8_t *aq = ab->qs + 64 * c;
      const __m256i s0 = _mm256_shuffle_epi8(sc, _mm256_set1_epi16((short)(((4 * c + 1) << 8) | (4 * c))));
      const __m256i s1 = _mm256_shuffle_epi8(sc, _mm256_set1_epi16((short)(((4 * c + 3) << 8) | (4 * c + 2))));
      isum = _mm256_add_epi32(isum, _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_and_si256(v, m4),
                                                                           _mm256_loadu_si256((const __m256i *)aq)), s0));
      isum = _mm256_add_epi32(isum, _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(v, 4), m4),
                                                                           _mm256_loadu_si256((const __m256i *)(aq + 32))), s1));
    }
    const __m256i msum = _mm256_madd_epi16(mn, _mm256_loadu_si256((const __m256i *)ab->bsums));
    const float d = _cvtsh_ss(wb->d), dmin = _cvtsh_ss(wb->dmin);
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(d * ab->d), acc);
    acc = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(msum), _mm256_set1_ps(dmin * ab->d), acc);
  }
  *out = hsum256_ps(acc);
}
/* gemm for a K-quant with a fused one-row kernel: that kernel row by row for one
 * activation row (the same bits as the tile), the tiles otherwise. */
static inline __attribute__((always_inline)) void kq_gemm_fused(int kind, rs_vec_dot_fn dot, int64_t n, int nr, int nc,
                                                                const void *w, size_t ws, const void *a, size_t as,
                                                                float *out, size_t os) {
  if (nc == 1) {
    for (int r = 0; r < nr; r++) dot(n, out + r, (const char *)w + (size_t)r * ws, a);
    return;
  }
  kq_gemm(kind, n, nr, nc, w, ws, a, as, out, os);
}
static void gemm_q4_k(int64_t n, int nr, int nc, const void *w, size_t ws, const void *a, size_t as, float *out,
                      size_t os) {
  kq_gemm_fused(4, vec_dot_q4_k, n, nr, nc, w, ws, a, as, out, os);
}

/* Q6_K against one activation row (the output head of a Q4_0 model at decode: a fifth
 * of a token's time went to it). Why not kq_tile(RN = 1): with one row the decoded
 * form is stored and loaded again, and its multipliers take 8 lane-crossing permutes
 * (3 uops each on Zen 1). Here each 32-level chunk is decoded in registers and used at
 * once, and the multipliers come from in-lane shuffles of the scales broadcast per
 * half. Bit for bit kq_tile's result: every int32 lane sums the same products (exact
 * integers, order free), then the same float steps in the same order. The high bits
 * need no shift back: ((h >> 2j) & 3) << 4 is (h << (4 - 2j)) & 0x30 per byte. */
static inline __m256i q6k_chunk(__m256i lo4, __m256i h, int shift_left, __m256i a, __m256i scx) {
  const __m256i m30 = _mm256_set1_epi8(0x30);
  __m256i hb = shift_left > 0 ? _mm256_slli_epi16(h, shift_left) : shift_left < 0 ? _mm256_srli_epi16(h, -shift_left) : h;
  const __m256i q = _mm256_or_si256(lo4, _mm256_and_si256(hb, m30));
  return _mm256_madd_epi16(_mm256_maddubs_epi16(q, a), scx);
}

static void vec_dot_q6_k(int64_t n, float *out, const void *wv, const void *av) {
  const rs_block_q6_k *w = (const rs_block_q6_k *)wv;
  const rs_block_q8_k *a = (const rs_block_q8_k *)av;
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  /* scx for chunk 4h + j: int16 scale 2j of half h in lanes 0-7, 2j+1 in lanes 8-15 */
  const __m256i pick[4] = {
      _mm256_setr_epi8(0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3),
      _mm256_setr_epi8(4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7),
      _mm256_setr_epi8(8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11,
                       10, 11, 10, 11),
      _mm256_setr_epi8(12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 14, 15, 14, 15, 14, 15, 14, 15,
                       14, 15, 14, 15, 14, 15, 14, 15)};
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / RS_QK_K; b++) {
    const rs_block_q6_k *wb = w + b;
    const rs_block_q8_k *ab = a + b;
    const __m128i sc8 = _mm_loadu_si128((const __m128i *)wb->scales);
    const __m128i s16lo = _mm_cvtepi8_epi16(sc8), s16hi = _mm_cvtepi8_epi16(_mm_srli_si128(sc8, 8));
    const __m256i mn = _mm256_set_m128i(s16hi, s16lo);
    __m256i isum = _mm256_setzero_si256();
    for (int c = 0; c < 2; c++) {
      const __m128i s16 = c == 0 ? s16lo : s16hi;
      const __m256i sb = _mm256_set_m128i(s16, s16);
      const __m256i l0 = _mm256_loadu_si256((const __m256i *)(wb->ql + 64 * c));
      const __m256i l1 = _mm256_loadu_si256((const __m256i *)(wb->ql + 64 * c + 32));
      const __m256i h = _mm256_loadu_si256((const __m256i *)(wb->qh + 32 * c));
      const int8_t *aq = ab->qs + 128 * c;
      isum = _mm256_add_epi32(isum, q6k_chunk(_mm256_and_si256(l0, m4), h, 4,
                                              _mm256_loadu_si256((const __m256i *)aq), _mm256_shuffle_epi8(sb, pick[0])));
      isum = _mm256_add_epi32(isum, q6k_chunk(_mm256_and_si256(l1, m4), h, 2,
                                              _mm256_loadu_si256((const __m256i *)(aq + 32)), _mm256_shuffle_epi8(sb, pick[1])));
      isum = _mm256_add_epi32(isum, q6k_chunk(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), h, 0,
                                              _mm256_loadu_si256((const __m256i *)(aq + 64)), _mm256_shuffle_epi8(sb, pick[2])));
      isum = _mm256_add_epi32(isum, q6k_chunk(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4), h, -2,
                                              _mm256_loadu_si256((const __m256i *)(aq + 96)), _mm256_shuffle_epi8(sb, pick[3])));
    }
    const __m256i msum = _mm256_madd_epi16(mn, _mm256_loadu_si256((const __m256i *)ab->bsums));
    const float d = _cvtsh_ss(wb->d), dmin = 32.0f * d;
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(d * ab->d), acc);
    acc = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(msum), _mm256_set1_ps(dmin * ab->d), acc);
  }
  *out = hsum256_ps(acc);
}
static void gemm_q6_k(int64_t n, int nr, int nc, const void *w, size_t ws, const void *a, size_t as, float *out,
                      size_t os) {
  kq_gemm_fused(6, vec_dot_q6_k, n, nr, nc, w, ws, a, as, out, os);
}

#endif
