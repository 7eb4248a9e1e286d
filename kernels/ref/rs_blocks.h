/* Block layouts of the quantised types, bit-exact with ggml's (ggml-common.h) so that
 * tensors written by llama.cpp's quantizer are read as-is. Internal to kernels/. */
#ifndef RS_BLOCKS_H
#define RS_BLOCKS_H

#include <stdint.h>

#define RS_QK 32   /* elements per Q4_0 / Q8_0 block */
#define RS_QK_K 256 /* elements per K-quant super-block */

/* Q4_0: x[i] = (nibble - 8) * d; low nibbles of qs[j] hold elements j (0..15), high
 * nibbles hold elements j + 16. */
typedef struct {
  uint16_t d; /* f16 */
  uint8_t qs[RS_QK / 2];
} rs_block_q4_0;

/* Q8_0: x[i] = qs[i] * d. Also the activation format of Q4_0 and Q8_0 weights. */
typedef struct {
  uint16_t d; /* f16 */
  int8_t qs[RS_QK];
} rs_block_q8_0;

/* Q4_K: 8 sub-blocks of 32; x = d * sc[j] * q - dmin * m[j], with sc/m 6-bit values
 * packed into scales[12] (see rs_get_scale_min_k4). Each 64-element chunk k uses
 * qs[32k .. 32k+31]: low nibbles are sub-block 2k, high nibbles sub-block 2k+1. */
typedef struct {
  uint16_t d;    /* f16: scale of the sub-block scales */
  uint16_t dmin; /* f16: scale of the sub-block mins */
  uint8_t scales[12];
  uint8_t qs[RS_QK_K / 2];
} rs_block_q4_k;

/* Q5_K: as Q4_K plus a fifth bit: bit (2k) of qh[l] is the high bit of element l of
 * sub-block 2k, bit (2k+1) that of element l of sub-block 2k+1. */
typedef struct {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qh[RS_QK_K / 8];
  uint8_t qs[RS_QK_K / 2];
} rs_block_q5_k;

/* Q6_K: 16 sub-blocks of 16 with int8 scales; x = d * scales[s] * (q - 32), q 6-bit:
 * low 4 bits in ql, high 2 bits in qh (element order in rs_ref_to_float). */
typedef struct {
  uint8_t ql[RS_QK_K / 2];
  uint8_t qh[RS_QK_K / 4];
  int8_t scales[RS_QK_K / 16];
  uint16_t d; /* f16 */
} rs_block_q6_k;

/* Q8_K: activation format of the K-quants. bsums[j] = sum of qs[16j .. 16j+15], which
 * lets the kernels apply the K-quant mins without touching qs again. */
typedef struct {
  float d;
  int8_t qs[RS_QK_K];
  int16_t bsums[RS_QK_K / 16];
} rs_block_q8_k;

/* Extra part of a Q8_0X activation row, one per group of 4 Q8_0 blocks b0..b3. Laid
 * out for the AVX-512 Q4_0 kernel, which splits 4 weight blocks' nibbles into a
 * "low" and a "high" 64-byte register: lo/hi hold elements 0..15 / 16..31 of each
 * block, block-major, to line up with them; each block spans 4 int32 lanes of the
 * vpdpbusd result, so off[] seeds lane i with -2 * sum(a of block i/4) (4 lanes
 * remove the Q4_0 offset 8 * sum(a)) and d[i] is that block's scale. */
typedef struct {
  int8_t lo[64];
  int8_t hi[64];
  int32_t off[16];
  float d[16];
} rs_q8_0x_group;

_Static_assert(sizeof(rs_q8_0x_group) == 256, "q8_0x group layout");
_Static_assert(sizeof(rs_block_q4_0) == 18, "q4_0 layout");
_Static_assert(sizeof(rs_block_q8_0) == 34, "q8_0 layout");
_Static_assert(sizeof(rs_block_q4_k) == 144, "q4_K layout");
_Static_assert(sizeof(rs_block_q5_k) == 176, "q5_K layout");
_Static_assert(sizeof(rs_block_q6_k) == 210, "q6_K layout");
_Static_assert(sizeof(rs_block_q8_k) == 292, "q8_K layout");

/* Sub-block j (0..7) scale and min of a Q4_K/Q5_K block: j < 4 are the low 6 bits of
 * bytes j and j+4; j >= 4 take 4 bits from byte j+4 and their top 2 bits from the
 * high bits of bytes j-4 (scale) and j (min). */
static inline void rs_get_scale_min_k4(int j, const uint8_t *q, uint8_t *sc, uint8_t *m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = (uint8_t)((q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4));
    *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

#endif
