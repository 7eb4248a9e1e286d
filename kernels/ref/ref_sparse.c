/* Reference twin of the sparse FFN kernels: dequantise, then multiply-add. */
#include <math.h>
#include <string.h>

#include "rs_blocks.h"
#include "rs_sparse.h"

void rs_ref_axpy_row(rs_type type, float *y, float h, const void *row, int64_t n) {
  float buf[256];
  const rs_type_traits *tr = rs_type_get_traits(type);
  const int64_t bs = tr->block_size;
  /* Dequantise in whole blocks of up to 256 elements. */
  const int64_t chunk = (256 / bs) * bs;
  const char *p = (const char *)row;
  for (int64_t k0 = 0; k0 < n; k0 += chunk) {
    const int64_t m = n - k0 < chunk ? n - k0 : chunk;
    rs_ref_to_float(type, p + (size_t)(k0 / bs) * tr->type_size, buf, m);
    for (int64_t k = 0; k < m; k++) y[k0 + k] += h * buf[k];
  }
}

void rs_ref_dot_rows(rs_type type, int64_t n, int nr, const void *const *w, const void *a, float *out) {
  for (int r = 0; r < nr; r++) out[r] = rs_ref_vec_dot(type, n, w[r], a);
}

void rs_ref_axpy_rows(rs_type type, float *y, int nr, const float *h, const void *const *row, int64_t n) {
  for (int r = 0; r < nr; r++) rs_ref_axpy_row(type, y, h[r], row[r], n);
}

int64_t rs_ref_select_ge(const float *x, int64_t n, float threshold, int32_t base, int32_t *list) {
  int64_t m = 0;
  for (int64_t i = 0; i < n; i++)
    if (x[i] >= threshold) list[m++] = base + (int32_t)i;
  return m;
}

void rs_q4_0_split_row(const void *src, void *dst, int64_t nbt) {
  const char *s = (const char *)src;
  char *d = (char *)dst;
  for (int64_t b = 0; b < nbt; b++) {
    memcpy(d + 2 * b, s + b * sizeof(rs_block_q4_0), 2);
    memcpy(d + 2 * nbt + 16 * b, s + b * sizeof(rs_block_q4_0) + 2, 16);
  }
}

void rs_q4_0_unsplit_row(const void *src, void *dst, int64_t nbt) {
  const char *s = (const char *)src;
  char *d = (char *)dst;
  for (int64_t b = 0; b < nbt; b++) {
    memcpy(d + b * sizeof(rs_block_q4_0), s + 2 * b, 2);
    memcpy(d + b * sizeof(rs_block_q4_0) + 2, s + 2 * nbt + 16 * b, 16);
  }
}

void rs_ref_axpy_q4_0s_i8(float *y, int nr, const float *h, const void *const *row, int64_t nbt, int64_t b0,
                          int64_t nb) {
  for (int64_t b = b0; b < b0 + nb; b++) {
    float c[RS_I8_GROUP], amax = 0.f;
    for (int r = 0; r < nr; r++) {
      uint16_t s;
      memcpy(&s, (const char *)row[r] + 2 * b, 2);
      c[r] = h[r] * rs_fp16_to_fp32(s);
      amax = fmaxf(amax, fabsf(c[r]));
    }
    const float step = amax * (1.f / 127.f), inv = amax > 0.f ? 127.f / amax : 0.f;
    int32_t k[RS_I8_GROUP], sumk = 0;
    for (int r = 0; r < nr; r++) {
      k[r] = (int32_t)lrintf(c[r] * inv);
      sumk += k[r];
    }
    float *yb = y + 32 * (b - b0);
    for (int j = 0; j < 32; j++) {
      int32_t acc = 0;
      for (int r = 0; r < nr; r++) {
        const uint8_t q = ((const uint8_t *)row[r])[2 * nbt + 16 * b + (j & 15)];
        acc += k[r] * (j < 16 ? (q & 0x0F) : (q >> 4));
      }
      yb[j] = fmaf(step, (float)(acc - 8 * sumk), yb[j]);
    }
  }
}
