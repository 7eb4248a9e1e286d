/* Q4_0 weights repacked eight rows at a time (layout in rs_kernels.h): the packer and
 * the plain product that defines the summation order the SIMD versions keep. */
#include <math.h>
#include <string.h>

#include "rs_blocks.h"
#include "rs_kernels.h"

enum { X8_BLOCK = 16 + 128 }; /* 8 f16 scales + 8 x 16 bytes of nibbles */

void rs_q4_0x8_pack(const void *w, size_t w_stride, int64_t rows, int64_t n, void *dst) {
  const int64_t nb = n / RS_QK;
  for (int64_t g = 0; g < rows / 8; g++)
    for (int64_t b = 0; b < nb; b++) {
      uint8_t *o = (uint8_t *)dst + (size_t)(g * nb + b) * X8_BLOCK;
      for (int r = 0; r < 8; r++) {
        const rs_block_q4_0 *src = (const rs_block_q4_0 *)((const char *)w + (size_t)(8 * g + r) * w_stride) + b;
        memcpy(o + 2 * r, &src->d, 2);
        for (int k = 0; k < 4; k++) memcpy(o + 16 + 32 * k + 4 * r, src->qs + 4 * k, 4);
      }
    }
}

/* Block b of row r (0..7) of one group's repacked bytes . activation block ab. */
static int32_t block_isum(const uint8_t *blk, int r, const rs_block_q8_0 *ab) {
  int32_t isum = 0;
  for (int k = 0; k < 4; k++)
    for (int j = 0; j < 4; j++) {
      const uint8_t q = blk[16 + 32 * k + 4 * r + j];
      isum += ((q & 0xF) - 8) * ab->qs[4 * k + j] + ((q >> 4) - 8) * ab->qs[16 + 4 * k + j];
    }
  return isum;
}

void rs_ref_q4_0x8_gemm(int64_t n, int ng, int nc, const void *w8, const void *a, size_t a_stride, float *out,
                        size_t out_stride) {
  const int64_t nb = n / RS_QK;
  for (int c = 0; c < nc; c++) {
    const rs_block_q8_0 *ac = (const rs_block_q8_0 *)((const char *)a + (size_t)c * a_stride);
    for (int g = 0; g < ng; g++)
      for (int r = 0; r < 8; r++) {
        float acc[2] = {0.0f, 0.0f};
        for (int64_t b = 0; b < nb; b++) {
          const uint8_t *blk = (const uint8_t *)w8 + (size_t)((int64_t)g * nb + b) * X8_BLOCK;
          uint16_t dw;
          memcpy(&dw, blk + 2 * r, 2);
          const float d = rs_fp16_to_fp32(dw) * rs_fp16_to_fp32(ac[b].d);
          acc[b & 1] = fmaf((float)block_isum(blk, r, &ac[b]), d, acc[b & 1]);
        }
        out[(size_t)c * out_stride + 8 * (size_t)g + r] = acc[0] + acc[1];
      }
  }
}
