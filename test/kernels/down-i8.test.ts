// The split Q4_0 layout (rs_q4_0_split_row) and the 8-bit down accumulation
// (rs_axpy_q4_0s_i8), through a C driver (c-driver.ts). For every ISA the CPU has, every
// group size 1..16, row lengths with tails (not a multiple of 8 blocks, more than one
// 64-block tile) and slices [b0, b0 + nb) of the rows:
//   - the output equals rs_ref_axpy_q4_0s_i8 bit for bit, into an accumulator that
//     already holds values;
//   - it is within the rounding the method promises of the exact sum of h_r * row_r
//     (the plain rows, dequantised, in double): per element, half a step of the block
//     times sum_r |q - 8|, where step = max_r |h_r * scale_rb| / 127 — so a wrong
//     scale, nibble, pairing or offset correction fails it;
//   - rows whose h is 0 add nothing, a group of only zeros leaves y as it was.
import { test } from 'node:test';
import { runKernelDriver } from './c-driver.js';

const DRIVER = String.raw`
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "rs_kernels.h"
#include "rs_sparse.h"

static unsigned s = 4242u;
static float rnd(void) { s ^= s << 13; s ^= s >> 17; s ^= s << 5; return (float)s / 4294967296.0f * 2.0f - 1.0f; }

int main(void) {
  const int64_t nbts[] = {1, 7, 8, 9, 64, 72, 130};
  const rs_isa isas[] = {RS_ISA_SCALAR, RS_ISA_AVX2, RS_ISA_AVX512};
  int checked = 0, fails = 0;
  for (int ni = 0; ni < 7; ni++)
    for (int nr = 1; nr <= RS_I8_GROUP; nr++)
      for (int hz = 0; hz < 3; hz++) { /* hz 1: some h zero; 2: all zero */
        const int64_t nbt = nbts[ni], n = 32 * nbt;
        const size_t rb = rs_row_size(RS_TYPE_Q4_0, n);
        char *plain = malloc(rb * nr), *split = malloc(rb * nr);
        float *wf = malloc(n * sizeof(float)), h[RS_I8_GROUP];
        const void *rows[RS_I8_GROUP];
        for (int r = 0; r < nr; r++) {
          const float mag = r % 3 == 0 ? 4.0f : 0.25f; /* rows of different scales */
          for (int64_t k = 0; k < n; k++) wf[k] = rnd() * mag;
          rs_quantize_row(RS_TYPE_Q4_0, wf, plain + r * rb, n);
          rs_q4_0_split_row(plain + r * rb, split + r * rb, nbt);
          rows[r] = split + r * rb;
          h[r] = hz == 2 || (hz == 1 && r % 2) ? 0.0f : rnd() * (r % 4 == 1 ? 8.0f : 1.0f);
        }
        /* exact sums in double, from the plain rows */
        double *want = calloc(n, sizeof(double)), *tol = calloc(n, sizeof(double));
        float *deq = malloc(n * sizeof(float)), *y0 = malloc(n * sizeof(float));
        for (int64_t k = 0; k < n; k++) y0[k] = rnd();
        for (int r = 0; r < nr; r++) {
          rs_ref_to_float(RS_TYPE_Q4_0, plain + r * rb, deq, n);
          for (int64_t k = 0; k < n; k++) want[k] += (double)h[r] * deq[k];
        }
        for (int64_t b = 0; b < nbt; b++) {
          double amax = 0;
          for (int r = 0; r < nr; r++) {
            const float sc = rs_fp16_to_fp32(*(const uint16_t *)(plain + r * rb + b * 18));
            amax = fmax(amax, fabs((double)(h[r] * sc)));
          }
          for (int j = 0; j < 32; j++) {
            double q = 0;
            for (int r = 0; r < nr; r++) {
              const unsigned char byte = (unsigned char)plain[r * rb + b * 18 + 2 + (j & 15)];
              q += fabs((double)((j < 16 ? byte & 15 : byte >> 4) - 8));
            }
            tol[32 * b + j] = 0.5 * amax / 127 * q * (1 + 1e-5) + 1e-5 * (fabs(want[32 * b + j]) + fabs(y0[32 * b + j]));
          }
        }
        /* slices: the whole row, and a middle part */
        const int64_t b0s[2] = {0, nbt > 2 ? 1 : 0}, nbs[2] = {nbt, nbt > 2 ? nbt - 2 : nbt};
        float *ref = malloc(n * sizeof(float)), *got = malloc(n * sizeof(float));
        for (int sl = 0; sl < 2; sl++) {
          const int64_t b0 = b0s[sl], nb = nbs[sl];
          memcpy(ref, y0 + 32 * b0, 32 * nb * sizeof(float));
          rs_ref_axpy_q4_0s_i8(ref, nr, h, rows, nbt, b0, nb);
          for (int64_t k = 0; k < 32 * nb; k++) {
            const int64_t e = 32 * b0 + k;
            checked++;
            if (fabs((double)ref[k] - (y0[e] + want[e])) > tol[e]) {
              fails++;
              printf("FAIL bound nbt=%ld nr=%d hz=%d b0=%ld k=%ld: %.9g want %.9g tol %.3g\n", (long)nbt, nr, hz,
                     (long)b0, (long)k, ref[k], y0[e] + want[e], tol[e]);
            }
            if (hz == 2 && ref[k] != y0[e]) {
              fails++;
              printf("FAIL zeros changed y: nbt=%ld k=%ld\n", (long)nbt, (long)k);
            }
          }
          for (int ii = 0; ii < 3; ii++) {
            if (rs_cpu_resolve_isa(isas[ii]) != isas[ii]) continue;
            memcpy(got, y0 + 32 * b0, 32 * nb * sizeof(float));
            rs_axpy_q4_0s_i8(isas[ii], got, nr, h, rows, nbt, b0, nb);
            checked++;
            if (memcmp(got, ref, 32 * nb * sizeof(float)) != 0) {
              fails++;
              for (int64_t k = 0; k < 32 * nb; k++)
                if (got[k] != ref[k]) {
                  printf("FAIL isa %d nbt=%ld nr=%d hz=%d b0=%ld k=%ld: %.9g vs ref %.9g\n", (int)isas[ii], (long)nbt, nr,
                         hz, (long)b0, (long)k, got[k], ref[k]);
                  break;
                }
            }
          }
        }
        free(plain); free(split); free(wf); free(want); free(tol); free(deq); free(y0); free(ref); free(got);
      }
  printf("checked %d fails %d\n", checked, fails);
  return 0;
}
`;

test('split Q4_0 down rows, 8-bit accumulation: every ISA equals the reference, within the stated rounding', () => {
  runKernelDriver(DRIVER);
});
