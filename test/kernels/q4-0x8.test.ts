// The Q4_0 x8 layout (rs_q4_0x8_pack) and its products (rs_gemm_x8_fn), through a C
// driver (c-driver.ts). Three properties, for every ISA that has the kernel:
//   - each output equals rs_ref_q4_0x8_gemm bit for bit (one summation order), for any
//     number of groups and activation rows, tails of odd block counts and of blocks
//     after the last whole Q8_0X group, and more activation rows than a column block;
//   - so a decode (one activation row) and a prompt (many) give a row the same bits;
//   - each output is within 1e-5 of rs_ref_vec_dot on the plain rows, relative to
//     sum |w * a|: the packing moves every nibble and scale to where the product reads it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runKernelDriver } from './c-driver.js';

const DRIVER = String.raw`
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "rs_kernels.h"

static unsigned s = 777u;
static float rnd(void) { s ^= s << 13; s ^= s >> 17; s ^= s << 5; return (float)s / 4294967296.0f * 2.0f - 1.0f; }

int main(void) {
  const int64_t ns[] = {32, 64, 96, 160, 544, 4096};
  const int ncs[] = {1, 2, 3, 4, 5, 9, 130};
  const rs_isa isas[] = {RS_ISA_SCALAR, RS_ISA_AVX2, RS_ISA_AVX512};
  int checked = 0, fails = 0, kernels = 0;
  for (int ni = 0; ni < 6; ni++)
    for (int ng = 1; ng <= 3; ng += 2)
      for (int ci = 0; ci < 7; ci++) {
        const int64_t n = ns[ni];
        const int nc = ncs[ci], rows = 8 * ng;
        if (nc == 130 && n != 4096) continue; /* one shape past the column block */
        const size_t rb = rs_row_size(RS_TYPE_Q4_0, n), ab = rs_row_size(RS_TYPE_Q8_0X, n);
        float *wf = malloc(rows * n * sizeof(float)), *x = malloc(nc * n * sizeof(float));
        for (int64_t k = 0; k < rows * n; k++) wf[k] = rnd() * 0.5f + (k % 89 == 0 ? 3.0f : 0.0f);
        for (int64_t k = 0; k < nc * n; k++) x[k] = rnd() * 2.0f;
        char *wq = malloc(rb * rows), *w8 = malloc(rb * rows), *aq = malloc(ab * nc);
        for (int r = 0; r < rows; r++) rs_quantize_row(RS_TYPE_Q4_0, wf + r * n, wq + r * rb, n);
        rs_q4_0x8_pack(wq, rb, rows, n, w8);
        for (int c = 0; c < nc; c++) rs_ref_from_float(RS_TYPE_Q8_0X, x + c * n, aq + c * ab, n);
        float *ref = malloc(rows * nc * sizeof(float)), *got = malloc(rows * nc * sizeof(float));
        rs_ref_q4_0x8_gemm(n, ng, nc, w8, aq, ab, ref, rows);
        for (int r = 0; r < rows; r++)
          for (int c = 0; c < nc; c++) {
            const float want = rs_ref_vec_dot(RS_TYPE_Q4_0, n, wq + r * rb, aq + c * ab);
            double mag = 0;
            for (int64_t k = 0; k < n; k++) mag += fabs(wf[r * n + k] * x[c * n + k]);
            checked++;
            if (fabs(ref[c * rows + r] - want) > 1e-5 * mag + 1e-6) {
              fails++;
              printf("FAIL ref n=%ld r=%d c=%d: %g vs vec_dot %g\n", (long)n, r, c, ref[c * rows + r], want);
            }
          }
        for (int ii = 0; ii < 3; ii++) {
          const rs_matmul_kernels *k = rs_cpu_matmul_kernels(RS_TYPE_Q4_0, isas[ii]);
          if (!k->gemm_x8 || rs_cpu_resolve_isa(isas[ii]) != isas[ii]) continue;
          kernels++;
          k->gemm_x8(n, ng, nc, w8, aq, ab, got, rows);
          for (int i = 0; i < rows * nc; i++) {
            checked++;
            if (memcmp(&got[i], &ref[i], 4) != 0) {
              fails++;
              printf("FAIL isa=%d n=%ld ng=%d nc=%d r=%d c=%d: %.9g vs ref %.9g\n", (int)isas[ii], (long)n, ng, nc,
                     i % rows, i / rows, got[i], ref[i]);
            }
          }
          /* the decode shape: one activation row at a time, and one group at a time */
          for (int c = 0; c < nc && c < 5; c++)
            for (int g = 0; g < ng; g++) {
              float one[8];
              k->gemm_x8(n, 1, 1, w8 + (size_t)g * 8 * rb, aq + c * ab, ab, one, 8);
              checked++;
              if (memcmp(one, ref + c * rows + 8 * g, sizeof one) != 0) {
                fails++;
                printf("FAIL isa=%d n=%ld decode shape g=%d c=%d differs from the batch\n", (int)isas[ii], (long)n, g, c);
              }
            }
        }
        free(wf); free(x); free(wq); free(w8); free(aq); free(ref); free(got);
      }
  printf("kernels %d\n", kernels);
  printf("checked %d fails %d\n", checked, fails);
  return 0;
}
`;

test('Q4_0 x8: every ISA equals the reference order bit for bit, and the plain dot within 1e-5', () => {
  const checked = runKernelDriver(DRIVER);
  assert.ok(checked > 5000, `only ${checked} checks ran`);
});
