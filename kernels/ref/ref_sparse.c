/* Reference twin of the sparse FFN kernels: dequantise, then multiply-add. */
#include <math.h>

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
