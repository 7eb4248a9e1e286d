// rs_dot_rows (the sparse FFN's fused gate/up dots, kernels/cpu/sparse_dot.c) against
// its reference twin and against vec_dot, through a C driver (c-driver.ts). Two properties:
//   - each output equals the same ISA's vec_dot bit for bit, for any number of rows
//     (the sparse FFN with the exact predictor must decode exactly like the dense one);
//   - each output is within 1e-5 of rs_ref_dot_rows, relative to sum |w * a|.
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

static unsigned s = 12345u;
static float rnd(void) { s ^= s << 13; s ^= s >> 17; s ^= s << 5; return (float)s / 4294967296.0f * 2.0f - 1.0f; }

int main(void) {
  const rs_type types[] = {RS_TYPE_Q4_0, RS_TYPE_Q8_0, RS_TYPE_F16, RS_TYPE_F32, RS_TYPE_BF16};
  /* the float types also at lengths with an 8-wide and a scalar tail (AVX2), and with
   * one or two masked 16-wide tail steps (AVX-512: 40, 45, 7; 61, 29) */
  const int64_t ns[] = {32, 96, 128, 160, 544, 2048, 4096, 40, 45, 7, 61, 29};
  const rs_isa isas[] = {RS_ISA_SCALAR, RS_ISA_AVX2, RS_ISA_AVX512};
  int checked = 0, fails = 0;
  for (int ti = 0; ti < 5; ti++)
    for (int ni = 0; ni < (ti < 2 ? 7 : 12); ni++) {
      const rs_type t = types[ti];
      const int64_t n = ns[ni];
      const rs_type vt = rs_type_get_traits(t)->vec_dot_type;
      const size_t rb = rs_row_size(t, n);
      float *x = malloc(n * sizeof(float)), *wf = malloc(n * 9 * sizeof(float));
      for (int64_t k = 0; k < n; k++) x[k] = rnd() * 2.0f;
      for (int64_t k = 0; k < n * 9; k++) wf[k] = rnd() * 0.5f + (k % 97 == 0 ? 2.0f : 0.0f);
      /* 9 rows, 3 bytes apart beyond their size: rows at unaligned, scattered addresses */
      char *wq = malloc((rb + 3) * 9);
      const void *rows[9];
      for (int r = 0; r < 9; r++) {
        rs_quantize_row(t, wf + r * n, wq + r * (rb + 3), n);
        rows[8 - r] = wq + r * (rb + 3); /* out of address order */
      }
      void *a = malloc(rs_row_size(vt, n));
      rs_ref_from_float(vt, x, a, n);
      float ref[9];
      rs_ref_dot_rows(t, n, 9, rows, a, ref);
      for (int ii = 0; ii < 3; ii++) {
        const rs_isa isa = isas[ii];
        const rs_matmul_kernels *k = rs_cpu_matmul_kernels(t, isa);
        for (int nr = 0; nr <= 9; nr++) {
          float out[9], want;
          rs_dot_rows(isa, t, n, nr, rows, a, out);
          for (int r = 0; r < nr; r++) {
            k->vec_dot(n, &want, rows[r], a);
            checked++;
            if (memcmp(&want, out + r, 4) != 0) {
              fails++;
              printf("FAIL bits type=%d n=%lld isa=%d nr=%d r=%d got %.9g vec_dot %.9g\n", (int)t, (long long)n, (int)isa, nr, r, out[r], want);
            }
            float wd[4096];
            k->to_float(rows[r], wd, n);
            double scale = 0;
            for (int64_t e = 0; e < n; e++) scale += fabs((double)wd[e] * x[e]);
            if (fabs((double)out[r] - ref[r]) > 1e-5 * scale + 1e-30) {
              fails++;
              printf("FAIL ref type=%d n=%lld isa=%d nr=%d r=%d got %.9g ref %.9g scale %.3g\n", (int)t, (long long)n, (int)isa, nr, r, out[r], ref[r], scale);
            }
          }
        }
      }
      free(x); free(wf); free(wq); free(a);
    }
  printf("checked %d fails %d\n", checked, fails);
  return 0;
}
`;

test('rs_dot_rows equals vec_dot bit for bit and its reference twin within 1e-5', () => {
  // (2 quantised types x 7 lengths + 3 float types x 12) x 3 ISAs x (1 + ... + 9) rows
  assert.equal(runKernelDriver(DRIVER), (2 * 7 + 3 * 12) * 3 * 45);
});
