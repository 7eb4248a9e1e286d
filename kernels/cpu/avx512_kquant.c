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
  uint32_t w[3];
  memcpy(w, scales, 12);
  /* same unpacking as k4_scales in simd256_quant.h (rs_get_scale_min_k4, 4 at a time) */
  const uint32_t k1 = 0x3f3f3f3fu, k2 = 0x0f0f0f0fu, k3 = 0x03030303u;
  const uint32_t s_lo = w[0] & k1, s_hi = (w[2] & k2) | (((w[0] >> 6) & k3) << 4);
  const uint32_t m_lo = w[1] & k1, m_hi = ((w[2] >> 4) & k2) | (((w[1] >> 6) & k3) << 4);
  const __m256i sm = _mm256_cvtepu8_epi16(_mm_setr_epi32((int)s_lo, (int)s_hi, (int)m_lo, (int)m_hi));
  const __m128i m8 = _mm256_extracti128_si256(sm, 1);
  o->mn = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_unpacklo_epi16(m8, m8)), _mm_unpackhi_epi16(m8, m8), 1);
  const __m512i s = _mm512_zextsi256_si512(sm);
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

typedef void (*kq512_decode_fn)(const void *w, kq512 *o);

static inline void kq512_vec_dot(kq512_decode_fn decode, size_t wblock, int64_t n, float *out, const void *w,
                                 const void *a) {
  kq512 dec;
  __m512 acc = _mm512_setzero_ps();
  __m256 accm = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / RS_QK_K; b++) {
    decode((const char *)w + b * wblock, &dec);
    kq512_accumulate(&dec, (const rs_block_q8_k *)a + b, &acc, &accm);
  }
  *out = reduce(acc, accm);
}

/* Tiles of 4 weight rows x 8 activation rows over L2-sized column blocks; each
 * super-block is decoded once per tile row. */
static inline void kq512_gemm(kq512_decode_fn decode, size_t wblock, int64_t n, int nr, int nc, const void *w,
                              size_t ws, const void *a, size_t as, float *out, size_t os) {
  enum { TR = 4, TC = 8 };
  const int64_t nb = n / RS_QK_K;
  kq512 dec[TR];
  for (int cb = 0, cbn = rs_gemm_col_block(as, TC); cb < nc; cb += cbn)
    for (int r0 = 0; r0 < nr; r0 += TR) {
      const int rm = nr - r0 < TR ? nr - r0 : TR;
      const int cend = nc - cb < cbn ? nc : cb + cbn;
      for (int c0 = cb; c0 < cend; c0 += TC) {
        const int cm = cend - c0 < TC ? cend - c0 : TC;
        __m512 acc[TR][TC];
        __m256 accm[TR][TC];
        for (int r = 0; r < rm; r++)
          for (int c = 0; c < cm; c++) {
            acc[r][c] = _mm512_setzero_ps();
            accm[r][c] = _mm256_setzero_ps();
          }
        for (int64_t b = 0; b < nb; b++) {
          for (int r = 0; r < rm; r++) decode((const char *)w + (size_t)(r0 + r) * ws + b * wblock, &dec[r]);
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

static void dec_q4_k(const void *w, kq512 *o) { decode_q4_k512((const rs_block_q4_k *)w, o); }
static void dec_q5_k(const void *w, kq512 *o) { decode_q5_k512((const rs_block_q5_k *)w, o); }
static void dec_q6_k(const void *w, kq512 *o) { decode_q6_k512((const rs_block_q6_k *)w, o); }

#define KQ512(name, block_t)                                                                              \
  void rs_avx512_vec_dot_##name(int64_t n, float *out, const void *w, const void *a) {                   \
    kq512_vec_dot(dec_##name, sizeof(block_t), n, out, w, a);                                             \
  }                                                                                                       \
  void rs_avx512_gemm_##name(int64_t n, int nr, int nc, const void *w, size_t ws, const void *a, size_t as, \
                             float *out, size_t os) {                                                     \
    kq512_gemm(dec_##name, sizeof(block_t), n, nr, nc, w, ws, a, as, out, os);                            \
  }
KQ512(q4_k, rs_block_q4_k)
KQ512(q5_k, rs_block_q5_k)
KQ512(q6_k, rs_block_q6_k)
#endif
