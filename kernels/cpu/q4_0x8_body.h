/* The body of the Q4_0 x8 products (rs_q4_0x8_pack's layout; rs_gemm_x8_fn), shared by
 * the ISA files that include it: X8_GEMM_NAME names the function, X8_VNNI (0 or 1) picks
 * the integer dot: maddubs + int16 sums (AVX2) or vpdpbusd into int32 (AVX-512 VNNI).
 * Each 32-bit lane of a register is one row: a block's nibbles come as 4 registers of 4
 * bytes per row, each multiplied by the activation's matching 4 bytes broadcast to all
 * lanes, so the 8 rows' dots need no horizontal sums, and one vcvtph2ps converts their 8
 * scales. Either way the integer sums are exact, so per output both keep the order of
 * rs_ref_q4_0x8_gemm bit for bit (two accumulators by block parity, one FMA per block).
 * Included by a file compiled for the ISA (immintrin.h, rs_blocks.h, rs_cpu_internal.h
 * already included). */
#if !defined(X8_GEMM_NAME) || !defined(X8_VNNI)
#error "define X8_GEMM_NAME and X8_VNNI before including q4_0x8_body.h"
#endif

enum { X8_BLOCK = 16 + 128 };

/* 4 bytes read at any alignment, as the asm operand below names them. */
typedef int32_t x8_i32u __attribute__((may_alias, aligned(1)));
/* 4 activation bytes in every 32-bit lane. */
static inline __m256i bcast4(const int8_t *p) { return _mm256_set1_epi32(*(const x8_i32u *)p); }

#if X8_VNNI
/* acc += dpbusd(w, the 4 bytes at p in every lane), the broadcast folded into the
 * instruction ({1to8}), which gcc does not do from the intrinsics: one thread from L2
 * 39.5-40.7 -> 45.8 GB/s on the AVX-512 EPYC (from memory, unchanged). */
static inline __m256i dpbusd_bcast4(__m256i acc, __m256i w, const int8_t *p) {
  __asm__("vpdpbusd %2%{1to8%}, %1, %0" : "+v"(acc) : "v"(w), "m"(*(const x8_i32u *)p));
  return acc;
}
#endif

/* -8 * sum(a) of activation block b: from the Q8_0X group's offset seeds (each lane
 * holds -2 * sum(a) of its block) where the block is in a whole group, else summed. */
static inline int32_t block_offset(const char *arow, int64_t nb, int64_t b) {
  if (b < nb / 4 * 4) {
    const rs_q8_0x_group *g = (const rs_q8_0x_group *)(arow + (size_t)nb * sizeof(rs_block_q8_0)) + b / 4;
    return 4 * g->off[4 * (b % 4)];
  }
  const rs_block_q8_0 *ab = (const rs_block_q8_0 *)arow + b;
  int32_t s = 0;
  for (int i = 0; i < RS_QK; i++) s += ab->qs[i];
  return -8 * s;
}

/* One block of one group against RN activation rows into acc[c][p]. The integer sums
 * stay in int16 across the block's 8 maddubs: each pair sum is at most 2*15*128 = 3840
 * in magnitude, 8 of them 30720 < 2^15. */
static inline __attribute__((always_inline)) void x8_block(int RN, int p, const uint8_t *blk, const char *a,
                                                           size_t as, int64_t nb, int64_t b, __m256 acc[4][2]) {
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)blk));
#if X8_VNNI
  /* vpdpbusd sums each lane's 4 products into int32 directly; seeding the sums with the
   * block's offset gives the same integers as the int16 path below. */
  __m256i s32[4];
  _Pragma("GCC unroll 4")
  for (int c = 0; c < RN; c++) s32[c] = _mm256_set1_epi32(block_offset(a + c * as, nb, b));
#else
  __m256i s16[4];
  _Pragma("GCC unroll 4")
  for (int c = 0; c < RN; c++) s16[c] = _mm256_setzero_si256();
#endif
  _Pragma("GCC unroll 4")
  for (int k = 0; k < 4; k++) {
    const __m256i v = _mm256_loadu_si256((const __m256i *)(blk + 16 + 32 * k));
    const __m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
    _Pragma("GCC unroll 4")
    for (int c = 0; c < RN; c++) {
      const rs_block_q8_0 *ab = (const rs_block_q8_0 *)(a + c * as) + b;
#if X8_VNNI
      s32[c] = dpbusd_bcast4(s32[c], lo, ab->qs + 4 * k);
      s32[c] = dpbusd_bcast4(s32[c], hi, ab->qs + 16 + 4 * k);
#else
      s16[c] = _mm256_add_epi16(s16[c], _mm256_maddubs_epi16(lo, bcast4(ab->qs + 4 * k)));
      s16[c] = _mm256_add_epi16(s16[c], _mm256_maddubs_epi16(hi, bcast4(ab->qs + 16 + 4 * k)));
#endif
    }
  }
  _Pragma("GCC unroll 4")
  for (int c = 0; c < RN; c++) {
    const char *arow = a + c * as;
    const rs_block_q8_0 *ab = (const rs_block_q8_0 *)arow + b;
#if X8_VNNI
    const __m256i s = s32[c];
#else
    const __m256i s = _mm256_add_epi32(_mm256_madd_epi16(s16[c], _mm256_set1_epi16(1)),
                                       _mm256_set1_epi32(block_offset(arow, nb, b)));
#endif
    const __m256 d = _mm256_mul_ps(dw, _mm256_set1_ps(_cvtsh_ss(ab->d)));
    acc[c][p] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), d, acc[c][p]);
  }
}

/* One group (8 rows) x RN <= 4 activation rows. */
static inline __attribute__((always_inline)) void x8_tile(int RN, int64_t nb, const uint8_t *w, const char *a,
                                                          size_t as, float *out, size_t os) {
  __m256 acc[4][2];
  _Pragma("GCC unroll 4")
  for (int c = 0; c < RN; c++) acc[c][0] = acc[c][1] = _mm256_setzero_ps();
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    x8_block(RN, 0, w + (size_t)b * X8_BLOCK, a, as, nb, b, acc);
    x8_block(RN, 1, w + (size_t)(b + 1) * X8_BLOCK, a, as, nb, b + 1, acc);
  }
  if (b < nb) x8_block(RN, 0, w + (size_t)b * X8_BLOCK, a, as, nb, b, acc);
  _Pragma("GCC unroll 4")
  for (int c = 0; c < RN; c++) _mm256_storeu_ps(out + c * os, _mm256_add_ps(acc[c][0], acc[c][1]));
}

void X8_GEMM_NAME(int64_t n, int ng, int nc, const void *w8, const void *a, size_t as, float *out,
                         size_t os) {
  const int64_t nb = n / RS_QK;
  const size_t gbytes = (size_t)nb * X8_BLOCK;
  /* Column blocks that stay in L2 while the groups pass over them (rs_gemm_col_block). */
  for (int cb = 0, cbn = rs_gemm_col_block(as, 4); cb < nc; cb += cbn) {
    const int cend = nc - cb < cbn ? nc : cb + cbn;
    for (int g = 0; g < ng; g++) {
      const uint8_t *wg = (const uint8_t *)w8 + (size_t)g * gbytes;
      for (int c0 = cb; c0 < cend; c0 += 4) {
        const char *ap = (const char *)a + (size_t)c0 * as;
        float *op = out + (size_t)c0 * os + 8 * (size_t)g;
        switch (cend - c0 < 4 ? cend - c0 : 4) {
          case 4: x8_tile(4, nb, wg, ap, as, op, os); break;
          case 3: x8_tile(3, nb, wg, ap, as, op, os); break;
          case 2: x8_tile(2, nb, wg, ap, as, op, os); break;
          default: x8_tile(1, nb, wg, ap, as, op, os); break;
        }
      }
    }
  }
}
