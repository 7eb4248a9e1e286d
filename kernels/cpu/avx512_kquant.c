/* AVX-512 K-quant kernels (Q4_K, Q5_K, Q6_K against Q8_K activations). Same scheme as
 * the 256-bit version in simd256_quant.h (decode a super-block once into unsigned
 * levels plus int16 multipliers, then dot it with each activation row), with 64
 * levels per register: half the instructions per element. Compiled with the AVX-512
 * flags, called only where dispatch.c found AVX-512.
 *   dot = a.d * (d * sum_g sc[g] * dot16(q, a.qs)[g] - dmin * sum_g mn[g] * a.bsums[g]) */
#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#include "../ref/rs_blocks.h"
#include "rs_cpu_internal.h"
#include "simd256_quant.h"

typedef struct {
  __m512i q[4];  /* 256 levels, element order, 64 per register */
  __m512i sc[4]; /* int16 multiplier per maddubs lane of q[z] (8 lanes per 16-group) */
  __m256i mn;    /* 16 int16 multipliers of a.bsums */
  float d, dmin;
} kq512;

/* Per-16-bit-lane shift counts: low 256 bits by lo, high 256 bits by hi. */
static inline __m512i shifts(short lo, short hi) {
  return _mm512_inserti64x4(_mm512_set1_epi16(lo), _mm256_set1_epi16(hi), 1);
}

/* sc[z] for Q4_K/Q5_K: z-th register holds sub-blocks 2z (low half) and 2z+1 (high). */
static inline void k4_scales512(const uint8_t *scales, kq512 *o) {
  const __m512i s = _mm512_zextsi256_si512(k4_unpack(scales, &o->mn));
  for (int z = 0; z < 4; z++) o->sc[z] = _mm512_permutexvar_epi16(shifts((short)(2 * z), (short)(2 * z + 1)), s);
}

static inline void decode_q4_k512(const rs_block_q4_k *w, kq512 *o) {
  const __m512i m4 = _mm512_set1_epi8(0x0F), sh = shifts(0, 4);
  for (int z = 0; z < 4; z++) {
    /* the 32 bytes twice: low nibbles are sub-block 2z, high nibbles 2z+1 */
    const __m512i v = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(w->qs + 32 * z)));
    o->q[z] = _mm512_and_si512(_mm512_srlv_epi16(v, sh), m4);
  }
  k4_scales512(w->scales, o);
  o->d = _cvtsh_ss(w->d);
  o->dmin = _cvtsh_ss(w->dmin);
}

static inline void decode_q5_k512(const rs_block_q5_k *w, kq512 *o) {
  const __m512i m4 = _mm512_set1_epi8(0x0F), one = _mm512_set1_epi8(1), sh = shifts(0, 4);
  const __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)w->qh));
  for (int z = 0; z < 4; z++) {
    const __m512i v = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(w->qs + 32 * z)));
    /* fifth bit: bit 2z of qh[l] for sub-block 2z, bit 2z+1 for sub-block 2z+1 */
    const __m512i h = _mm512_and_si512(_mm512_srlv_epi16(qh, shifts((short)(2 * z), (short)(2 * z + 1))), one);
    o->q[z] = _mm512_or_si512(_mm512_and_si512(_mm512_srlv_epi16(v, sh), m4), _mm512_slli_epi16(h, 4));
  }
  k4_scales512(w->scales, o);
  o->d = _cvtsh_ss(w->d);
  o->dmin = _cvtsh_ss(w->dmin);
}

static inline void decode_q6_k512(const rs_block_q6_k *w, kq512 *o) {
  const __m512i m4 = _mm512_set1_epi8(0x0F), m2 = _mm512_set1_epi8(3);
  for (int c = 0; c < 2; c++) {
    /* 128 elements: quarters k0..k3 from ql[64c..64c+63] and qh[32c..32c+31] */
    const __m512i l = _mm512_loadu_si512(w->ql + 64 * c);
    const __m512i h = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(w->qh + 32 * c)));
    const __m512i h01 = _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi16(h, shifts(0, 2)), m2), 4);
    const __m512i h23 = _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi16(h, shifts(4, 6)), m2), 4);
    o->q[2 * c] = _mm512_or_si512(_mm512_and_si512(l, m4), h01);
    o->q[2 * c + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), m4), h23);
  }
  o->mn = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)w->scales));
  const __m512i s = _mm512_zextsi256_si512(o->mn);
  for (int z = 0; z < 4; z++) {
    /* maddubs lanes 8g..8g+7 of register z are group 4z+g */
    const __m512i idx = _mm512_inserti64x4(
        _mm512_castsi256_si512(_mm256_inserti128_si256(_mm256_castsi128_si256(_mm_set1_epi16((short)(4 * z))),
                                                       _mm_set1_epi16((short)(4 * z + 1)), 1)),
        _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_set1_epi16((short)(4 * z + 2))),
                                _mm_set1_epi16((short)(4 * z + 3)), 1),
        1);
    o->sc[z] = _mm512_permutexvar_epi16(idx, s);
  }
  o->d = _cvtsh_ss(w->d);
  o->dmin = 32.0f * o->d;
}

/* Levels <= 63: maddubs pair sums <= 2*63*127 fit int16. */
static inline void kq512_accumulate(const kq512 *w, const rs_block_q8_k *a, __m512 *acc, __m256 *accm) {
  __m512i isum = _mm512_setzero_si512();
  for (int z = 0; z < 4; z++) {
    const __m512i p = _mm512_maddubs_epi16(w->q[z], _mm512_loadu_si512(a->qs + 64 * z));
    isum = _mm512_add_epi32(isum, _mm512_madd_epi16(p, w->sc[z]));
  }
  *acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_set1_ps(w->d * a->d), *acc);
  const __m256i msum = _mm256_madd_epi16(w->mn, _mm256_loadu_si256((const __m256i *)a->bsums));
  *accm = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(msum), _mm256_set1_ps(w->dmin * a->d), *accm);
}

static inline float reduce(__m512 acc, __m256 accm) {
  return _mm512_reduce_add_ps(_mm512_add_ps(acc, _mm512_zextps256_ps512(accm)));
}

/* kind: 4 = Q4_K, 5 = Q5_K, 6 = Q6_K; a compile-time constant after inlining, so the
 * decoded super-block can stay in registers. (The earlier gemm, with a decode function
 * pointer and run-time tile shapes, measured 3-8x slower than vec_dot at nc = 1.) */
static inline __attribute__((always_inline)) void kq512_decode(int kind, const char *w, kq512 *o) {
  if (kind == 4) decode_q4_k512((const rs_block_q4_k *)w, o);
  else if (kind == 5) decode_q5_k512((const rs_block_q5_k *)w, o);
  else decode_q6_k512((const rs_block_q6_k *)w, o);
}

static inline size_t kq512_block_bytes(int kind) {
  return kind == 4 ? sizeof(rs_block_q4_k) : kind == 5 ? sizeof(rs_block_q5_k) : sizeof(rs_block_q6_k);
}

/* activation rows per tile: 4 keeps the 9 registers of a decoded super-block and the
 * 8 accumulators well inside the 32 zmm; wider tiles measured no faster here */
enum { KQ_TC = 4 };

/* One weight row x RN <= KQ_TC activation rows: each super-block is decoded once and
 * dotted with the RN rows. Every output runs the same operations (acc and accm per
 * super-block in order, one reduction), and vec_dot is RN = 1, so results do not
 * depend on the batch (see rs_cpu_internal.h). One weight row per tile keeps the
 * reads in address order. */
static inline __attribute__((always_inline)) void kq512_tile(int kind, int64_t nb, int RN, const char *w,
                                                             const char *a, size_t as, float *out, size_t os) {
  const size_t wblock = kq512_block_bytes(kind);
  __m512 acc[KQ_TC];
  __m256 accm[KQ_TC];
  _Pragma("GCC unroll 8")
  for (int c = 0; c < RN; c++) {
    acc[c] = _mm512_setzero_ps();
    accm[c] = _mm256_setzero_ps();
  }
  for (int64_t b = 0; b < nb; b++) {
    kq512 dec;
    kq512_decode(kind, w + b * wblock, &dec);
    _Pragma("GCC unroll 8")
    for (int c = 0; c < RN; c++)
      kq512_accumulate(&dec, (const rs_block_q8_k *)(a + (size_t)c * as) + b, &acc[c], &accm[c]);
  }
  _Pragma("GCC unroll 8")
  for (int c = 0; c < RN; c++) out[(size_t)c * os] = reduce(acc[c], accm[c]);
}

/* More activation rows than one tile: rows are taken KQ_RM at a time, and their
 * super-blocks decoded KQ_SEG at a time into an L1 buffer, which RM x 2 tiles then
 * read: each decode serves every activation row, and each activation load serves RM
 * weight rows (with one weight row per tile, re-reading all activations from L2 for
 * every row made nc = 8 cost 5-6x nc = 1). The accumulators of all tiles are parked
 * in memory between segments (a store and reload is exact), so each output still sees
 * kq512_accumulate over its super-blocks in order, as vec_dot does. */
enum { KQ_RM = 4, KQ_SEG = 4, KQ_MAX_COLS = 64 }; /* ~33 KiB of stack in all */

static inline __attribute__((always_inline)) void kq512_tile_dec(int RM, int RN, const kq512 *dec, int64_t b0,
                                                                 int64_t nbs, const char *a, size_t as,
                                                                 __m512 *pacc, __m256 *paccm) {
  __m512 acc[KQ_RM][2];
  __m256 accm[KQ_RM][2];
  _Pragma("GCC unroll 8")
  for (int r = 0; r < RM; r++)
    _Pragma("GCC unroll 8")
    for (int c = 0; c < RN; c++) {
      acc[r][c] = pacc[r * KQ_MAX_COLS + c];
      accm[r][c] = paccm[r * KQ_MAX_COLS + c];
    }
  for (int64_t b = 0; b < nbs; b++) {
    _Pragma("GCC unroll 8")
    for (int c = 0; c < RN; c++) {
      const rs_block_q8_k *ab = (const rs_block_q8_k *)(a + (size_t)c * as) + b0 + b;
      _Pragma("GCC unroll 8")
      for (int r = 0; r < RM; r++) kq512_accumulate(&dec[r * KQ_SEG + b], ab, &acc[r][c], &accm[r][c]);
    }
  }
  _Pragma("GCC unroll 8")
  for (int r = 0; r < RM; r++)
    _Pragma("GCC unroll 8")
    for (int c = 0; c < RN; c++) {
      pacc[r * KQ_MAX_COLS + c] = acc[r][c];
      paccm[r * KQ_MAX_COLS + c] = accm[r][c];
    }
}

/* Q6_K past one tile: tiles of 4 weight rows x 8 activation rows with run-time shapes;
 * each super-block of the 4 rows is decoded once per tile (out of line, into L1) and
 * used 8 times, and each activation block serves 4 rows. Measured here, this beat the
 * segmented scheme for Q6_K at nc = 8..64 (3.2x vs 5.5x vec_dot at nc = 8), and lost
 * to it for Q4_K (7.2x vs 5.2x); with the decode inlined it lost for Q6_K as well.
 * Per output, the same kq512_accumulate sequence over its super-blocks as vec_dot. */
enum { KQ8_RM = 4, KQ8_RN = 8 };
static __attribute__((noinline)) void kq512_decode_q4_k(const char *w, kq512 *o) { kq512_decode(4, w, o); }
static __attribute__((noinline)) void kq512_decode_q5_k(const char *w, kq512 *o) { kq512_decode(5, w, o); }
static __attribute__((noinline)) void kq512_decode_q6_k(const char *w, kq512 *o) { kq512_decode(6, w, o); }
static inline __attribute__((always_inline)) void kq512_decode_outofline(int kind, const char *w, kq512 *o) {
  if (kind == 4) kq512_decode_q4_k(w, o);
  else if (kind == 5) kq512_decode_q5_k(w, o);
  else kq512_decode_q6_k(w, o);
}


static inline __attribute__((always_inline)) void kq512_gemm_4x8(int kind, int64_t nb, int nr, int cb, int cend,
                                                                 const void *w, size_t ws, const void *a, size_t as,
                                                                 float *out, size_t os) {
  const size_t wblock = kq512_block_bytes(kind);
  kq512 dec[KQ8_RM];
  for (int r0 = 0; r0 < nr; r0 += KQ8_RM) {
    const int rm = nr - r0 < KQ8_RM ? nr - r0 : KQ8_RM;
    for (int c0 = cb; c0 < cend; c0 += KQ8_RN) {
      const int cm = cend - c0 < KQ8_RN ? cend - c0 : KQ8_RN;
      __m512 acc[KQ8_RM][KQ8_RN];
      __m256 accm[KQ8_RM][KQ8_RN];
      for (int r = 0; r < rm; r++)
        for (int c = 0; c < cm; c++) {
          acc[r][c] = _mm512_setzero_ps();
          accm[r][c] = _mm256_setzero_ps();
        }
      for (int64_t b = 0; b < nb; b++) {
        for (int r = 0; r < rm; r++) kq512_decode_outofline(kind, (const char *)w + (size_t)(r0 + r) * ws + b * wblock, &dec[r]);
        for (int c = 0; c < cm; c++) {
          const rs_block_q8_k *ab = (const rs_block_q8_k *)((const char *)a + (size_t)(c0 + c) * as) + b;
          for (int r = 0; r < rm; r++) kq512_accumulate(&dec[r], ab, &acc[r][c], &accm[r][c]);
        }
      }
      for (int c = 0; c < cm; c++)
        for (int r = 0; r < rm; r++) out[(size_t)(c0 + c) * os + r0 + r] = reduce(acc[r][c], accm[r][c]);
    }
  }
}

#define KQ_CASE(rn) \
  case rn: kq512_tile(kind, nb, rn, wr, ap, as, out + (size_t)cb * os + r, os); break;
#define KQ_DEC_CASE(rm, rn)                                                                            \
  case (rm) * 4 + (rn):                                                                                \
    kq512_tile_dec(rm, rn, dec, b0, nbs, ap, as, pacc + (c0 - cb), paccm + (c0 - cb));                 \
    break;
/* Up to KQ_TC activation rows: weight rows in address order, one tile each, decoding as
 * it goes. More: the segmented scheme above. Both over column blocks that stay in L2
 * (rs_gemm_col_block, at most KQ_MAX_COLS rows). */
static inline __attribute__((always_inline)) void kq512_gemm(int kind, int64_t n, int nr, int nc, const void *w,
                                                             size_t ws, const void *a, size_t as, float *out,
                                                             size_t os) {
  const int64_t nb = n / RS_QK_K;
  const size_t wblock = kq512_block_bytes(kind);
  int cbn = rs_gemm_col_block(as, KQ_TC);
  if (cbn > KQ_MAX_COLS) cbn = KQ_MAX_COLS;
  for (int cb = 0; cb < nc; cb += cbn) {
    const int cend = nc - cb < cbn ? nc : cb + cbn;
    const char *ab = (const char *)a + (size_t)cb * as;
    if (cend - cb <= KQ_TC) {
      for (int r = 0; r < nr; r++) {
        const char *wr = (const char *)w + (size_t)r * ws, *ap = ab;
        switch (cend - cb) {
          KQ_CASE(4) KQ_CASE(3) KQ_CASE(2)
          default: kq512_tile(kind, nb, 1, wr, ap, as, out + (size_t)cb * os + r, os);
        }
      }
      continue;
    }
    if (kind == 6) {
      kq512_gemm_4x8(kind, nb, nr, cb, cend, w, ws, a, as, out, os);
      continue;
    }
    kq512 dec[KQ_RM * KQ_SEG];
    __m512 pacc[KQ_RM * KQ_MAX_COLS];
    __m256 paccm[KQ_RM * KQ_MAX_COLS];
    for (int r0 = 0; r0 < nr; r0 += KQ_RM) {
      const int rm = nr - r0 < KQ_RM ? nr - r0 : KQ_RM;
      for (int r = 0; r < rm; r++)
        for (int c = 0; c < cend - cb; c++) {
          pacc[r * KQ_MAX_COLS + c] = _mm512_setzero_ps();
          paccm[r * KQ_MAX_COLS + c] = _mm256_setzero_ps();
        }
      for (int64_t b0 = 0; b0 < nb; b0 += KQ_SEG) {
        const int64_t nbs = nb - b0 < KQ_SEG ? nb - b0 : KQ_SEG;
        for (int r = 0; r < rm; r++)
          for (int64_t b = 0; b < nbs; b++)
            kq512_decode(kind, (const char *)w + (size_t)(r0 + r) * ws + (b0 + b) * wblock, &dec[r * KQ_SEG + b]);
        for (int c0 = cb; c0 < cend; c0 += 2) {
          const char *ap = (const char *)a + (size_t)c0 * as;
          switch (rm * 4 + (cend - c0 < 2 ? 1 : 2)) {
            KQ_DEC_CASE(4, 2) KQ_DEC_CASE(4, 1) KQ_DEC_CASE(3, 2) KQ_DEC_CASE(3, 1)
            KQ_DEC_CASE(2, 2) KQ_DEC_CASE(2, 1) KQ_DEC_CASE(1, 2)
            default: kq512_tile_dec(1, 1, dec, b0, nbs, ap, as, pacc + (c0 - cb), paccm + (c0 - cb));
          }
        }
      }
      for (int r = 0; r < rm; r++)
        for (int c = 0; c < cend - cb; c++)
          out[(size_t)(cb + c) * os + r0 + r] = reduce(pacc[r * KQ_MAX_COLS + c], paccm[r * KQ_MAX_COLS + c]);
    }
  }
}

#define KQ512(name, kind)                                                                                 \
  void rs_avx512_vec_dot_##name(int64_t n, float *out, const void *w, const void *a) {                   \
    kq512_tile(kind, n / RS_QK_K, 1, (const char *)w, (const char *)a, 0, out, 0);                        \
  }                                                                                                       \
  void rs_avx512_gemm_##name(int64_t n, int nr, int nc, const void *w, size_t ws, const void *a, size_t as, \
                             float *out, size_t os) {                                                     \
    kq512_gemm(kind, n, nr, nc, w, ws, a, as, out, os);                                                   \
  }
KQ512(q4_k, 4)
KQ512(q5_k, 5)
KQ512(q6_k, 6)
#endif
