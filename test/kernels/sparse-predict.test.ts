// The predictor-stage kernels (kernels/cpu/sparse_predict.c) and rs_axpy_rows
// (kernels/cpu/sparse_axpy.c) against their reference twins, through a C driver:
//   - rs_select_ge: the twin's list exactly (values equal to the threshold count, NaN
//     does not), for lengths around the vector widths;
//   - rs_axpy_rows: bit for bit what successive rs_axpy_row calls of the same ISA give,
//     for 0..6 rows, and within 1e-5 (of sum |h * row|) of the twin.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runKernelDriver } from './c-driver.js';

const DRIVER = String.raw`
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "rs_kernels.h"
#include "rs_sparse.h"

static unsigned s = 777u;
static float rnd(void) { s ^= s << 13; s ^= s >> 17; s ^= s << 5; return (float)s / 4294967296.0f * 2.0f - 1.0f; }
static const rs_isa isas[] = {RS_ISA_SCALAR, RS_ISA_AVX2, RS_ISA_AVX512};
static int checked = 0, fails = 0;

static void select_ge(void) {
  const int64_t ns[] = {0, 1, 7, 8, 9, 16, 31, 33, 500};
  for (int ni = 0; ni < 9; ni++) {
    const int64_t n = ns[ni];
    float x[500];
    for (int64_t i = 0; i < n; i++) x[i] = i % 11 == 0 ? 0.25f : (i % 13 == 0 ? NAN : rnd());
    int32_t ref[500], out[500];
    const int64_t m = rs_ref_select_ge(x, n, 0.25f, 1000, ref);
    for (int ii = 0; ii < 3; ii++) {
      const int64_t got = rs_select_ge(isas[ii], x, n, 0.25f, 1000, out);
      checked++;
      if (got != m || memcmp(out, ref, sizeof(int32_t) * m) != 0) {
        fails++;
        printf("FAIL select n=%lld isa=%d got %lld want %lld\n", (long long)n, (int)isas[ii], (long long)got, (long long)m);
      }
    }
  }
}

static void axpy_rows(void) {
  const rs_type types[] = {RS_TYPE_Q4_0, RS_TYPE_Q8_0, RS_TYPE_F16, RS_TYPE_F32, RS_TYPE_Q6_K};
  const int64_t ns[] = {256, 2048, 264};
  for (int ti = 0; ti < 5; ti++)
    for (int ni = 0; ni < 3; ni++) {
      const rs_type t = types[ti];
      const int64_t n = ns[ni];
      if (n % rs_type_get_traits(t)->block_size != 0) continue;
      const size_t rb = rs_row_size(t, n);
      float *wf = malloc(sizeof(float) * n), *y0 = malloc(sizeof(float) * n);
      char *rows = malloc((rb + 3) * 6);
      const void *rp[6];
      float h[6];
      for (int r = 0; r < 6; r++) {
        for (int64_t k = 0; k < n; k++) wf[k] = rnd();
        rs_quantize_row(t, wf, rows + r * (rb + 3), n);
        rp[r] = rows + r * (rb + 3);
        h[r] = rnd() * 2.0f;
      }
      for (int64_t k = 0; k < n; k++) y0[k] = rnd();
      float *want = malloc(sizeof(float) * n), *got = malloc(sizeof(float) * n), *ref = malloc(sizeof(float) * n);
      float *dq = malloc(sizeof(float) * n);
      for (int ii = 0; ii < 3; ii++)
        for (int nr = 0; nr <= 6; nr++) {
          memcpy(want, y0, sizeof(float) * n);
          memcpy(got, y0, sizeof(float) * n);
          memcpy(ref, y0, sizeof(float) * n);
          for (int r = 0; r < nr; r++) rs_axpy_row(isas[ii], t, want, h[r], rp[r], n);
          rs_axpy_rows(isas[ii], t, got, nr, h, rp, n);
          rs_ref_axpy_rows(t, ref, nr, h, rp, n);
          checked++;
          if (memcmp(want, got, sizeof(float) * n) != 0) {
            fails++;
            printf("FAIL axpy_rows bits type=%d n=%lld isa=%d nr=%d\n", (int)t, (long long)n, (int)isas[ii], nr);
          }
          for (int64_t k = 0; k < n; k++) {
            double scale = fabs(y0[k]);
            for (int r = 0; r < nr; r++) {
              rs_cpu_matmul_kernels(t, RS_ISA_SCALAR)->to_float(rp[r], dq, n);
              scale += fabs((double)h[r] * dq[k]);
            }
            if (fabs((double)got[k] - ref[k]) > 1e-5 * scale + 1e-30) {
              fails++;
              printf("FAIL axpy_rows ref type=%d n=%lld isa=%d nr=%d k=%lld\n", (int)t, (long long)n, (int)isas[ii], nr, (long long)k);
              break;
            }
          }
        }
      free(wf); free(y0); free(rows); free(want); free(got); free(ref); free(dq);
    }
}

int main(void) {
  select_ge();
  axpy_rows();
  printf("checked %d fails %d\n", checked, fails);
  return 0;
}
`;

test('rs_select_ge and rs_axpy_rows against their twins (bit-exact where promised)', () => {
  // select: 9 lengths x 3 ISAs;
  // axpy_rows: (f16, f32: 3 lengths incl. 264, a vector tail; q4_0, q8_0, q6_K: the 2
  // lengths that are whole blocks) x 3 ISAs x 7 row counts
  assert.equal(runKernelDriver(DRIVER), 9 * 3 + 12 * 3 * 7);
});
