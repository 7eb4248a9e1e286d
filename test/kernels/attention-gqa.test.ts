// rs_attention_gqa (kernels/cpu/attention.c: a KV head's query heads attended together)
// against its reference twin, through a C driver (c-driver.ts): group sizes 1-8 (the
// AVX-512 path takes 4 heads at a time), head sizes that are and are not multiples of
// 16 and 64, strided KV rows, 1 to 300 positions; every ISA within 1e-5 relative
// (+1e-6 absolute) of the twin, which sums in double.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runKernelDriver } from './c-driver.js';

const DRIVER = String.raw`
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "rs_kernels.h"

static unsigned s = 4242u;
static float rnd(void) { s ^= s << 13; s ^= s >> 17; s ^= s << 5; return (float)s / 4294967296.0f * 2.0f - 1.0f; }

int main(void) {
  const rs_isa isas[] = {RS_ISA_SCALAR, RS_ISA_AVX2, RS_ISA_AVX512};
  const int groups[] = {1, 2, 3, 4, 5, 8}, dims[] = {6, 16, 48, 64, 80, 128}, lens[] = {1, 7, 300};
  int checked = 0, fails = 0;
  for (int gi = 0; gi < 6; gi++)
    for (int di = 0; di < 6; di++)
      for (int li = 0; li < 3; li++) {
        const int G = groups[gi], hd = dims[di], T = lens[li];
        const size_t stride = (size_t)hd * 3 + 5; /* rows of a wider KV cache */
        float *q = malloc(sizeof(float) * G * hd), *ref = malloc(sizeof(float) * G * hd), *out = malloc(sizeof(float) * G * hd);
        float *scratch = malloc(sizeof(float) * G * T);
        uint16_t *k = malloc(sizeof(uint16_t) * T * stride), *v = malloc(sizeof(uint16_t) * T * stride);
        for (int i = 0; i < G * hd; i++) q[i] = rnd() * 2.0f;
        for (size_t i = 0; i < T * stride; i++) { k[i] = rs_fp32_to_fp16(rnd()); v[i] = rs_fp32_to_fp16(rnd() * 3.0f); }
        const float scale = 1.0f / sqrtf((float)hd);
        rs_ref_attention_gqa(ref, q, G, k, v, T, hd, stride, scale, scratch);
        for (int ii = 0; ii < 3; ii++) {
          rs_attention_gqa(isas[ii], out, q, G, k, v, T, hd, stride, scale, scratch);
          checked++;
          for (int i = 0; i < G * hd; i++)
            if (!(fabsf(out[i] - ref[i]) <= 1e-5f * fabsf(ref[i]) + 1e-6f)) {
              fails++;
              printf("FAIL G=%d hd=%d T=%d isa=%d [%d] got %.9g ref %.9g\n", G, hd, T, (int)isas[ii], i, out[i], ref[i]);
              break;
            }
        }
        free(q); free(ref); free(out); free(scratch); free(k); free(v);
      }
  printf("checked %d fails %d\n", checked, fails);
  return 0;
}
`;

test('rs_attention_gqa matches its reference twin for every ISA, group and head size', () => {
  assert.equal(runKernelDriver(DRIVER), 6 * 6 * 3 * 3);
});
