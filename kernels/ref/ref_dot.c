/* Reference dot products: one weight row against one activation row in the weight
 * type's vec-dot format. Integer sums within a block are exact; the float part is
 * accumulated in double so the oracle is at least as accurate as the kernels. */
#include "rs_blocks.h"
#include "rs_kernels.h"

static double dot_q4_0(int64_t n, const rs_block_q4_0 *w, const rs_block_q8_0 *a) {
  double sum = 0.0;
  for (int64_t b = 0; b < n / RS_QK; b++) {
    int isum = 0;
    for (int j = 0; j < 16; j++) {
      isum += ((w[b].qs[j] & 0xF) - 8) * a[b].qs[j];
      isum += ((w[b].qs[j] >> 4) - 8) * a[b].qs[j + 16];
    }
    sum += (double)(rs_fp16_to_fp32(w[b].d) * rs_fp16_to_fp32(a[b].d)) * isum;
  }
  return sum;
}

static double dot_q8_0(int64_t n, const rs_block_q8_0 *w, const rs_block_q8_0 *a) {
  double sum = 0.0;
  for (int64_t b = 0; b < n / RS_QK; b++) {
    int isum = 0;
    for (int j = 0; j < RS_QK; j++) isum += w[b].qs[j] * a[b].qs[j];
    sum += (double)(rs_fp16_to_fp32(w[b].d) * rs_fp16_to_fp32(a[b].d)) * isum;
  }
  return sum;
}

/* Q4_K and Q5_K: sum_j d*sc_j*dot(q_j, a_j) - dmin*m_j*sum(a_j), all times a.d. The
 * per-sub-block activation sums come from bsums, as in the optimised kernels. */
static double dot_q45_k(int64_t n, const void *wv, const rs_block_q8_k *a, int five) {
  double sum = 0.0;
  for (int64_t b = 0; b < n / RS_QK_K; b++) {
    const rs_block_q4_k *w4 = (const rs_block_q4_k *)wv + b;
    const rs_block_q5_k *w5 = (const rs_block_q5_k *)wv + b;
    const uint8_t *scales = five ? w5->scales : w4->scales;
    const uint8_t *qs = five ? w5->qs : w4->qs;
    int isum = 0, msum = 0;
    for (int j = 0; j < 8; j++) {
      uint8_t sc, m;
      rs_get_scale_min_k4(j, scales, &sc, &m);
      int dot = 0;
      for (int l = 0; l < 32; l++) {
        int q = (qs[32 * (j / 2) + l] >> (4 * (j & 1))) & 0xF;
        if (five) q |= ((w5->qh[l] >> j) & 1) << 4;
        dot += q * a[b].qs[32 * j + l];
      }
      isum += sc * dot;
      msum += m * (a[b].bsums[2 * j] + a[b].bsums[2 * j + 1]);
    }
    const float d = rs_fp16_to_fp32(five ? w5->d : w4->d) * a[b].d;
    const float dmin = rs_fp16_to_fp32(five ? w5->dmin : w4->dmin) * a[b].d;
    sum += (double)d * isum - (double)dmin * msum;
  }
  return sum;
}

static double dot_q6_k(int64_t n, const rs_block_q6_k *w, const rs_block_q8_k *a) {
  double sum = 0.0;
  float deq[RS_QK_K];
  for (int64_t b = 0; b < n / RS_QK_K; b++) {
    /* decode through the reference dequantiser with d = 1 to get sc * (q - 32) */
    rs_block_q6_k unit = w[b];
    unit.d = 0x3C00; /* f16 1.0 */
    rs_ref_to_float(RS_TYPE_Q6_K, &unit, deq, RS_QK_K);
    int isum = 0;
    for (int e = 0; e < RS_QK_K; e++) isum += (int)deq[e] * a[b].qs[e];
    sum += (double)(rs_fp16_to_fp32(w[b].d) * a[b].d) * isum;
  }
  return sum;
}

float rs_ref_vec_dot(rs_type type, int64_t n, const void *w, const void *a) {
  const float *af = (const float *)a;
  double sum = 0.0;
  switch (type) {
    case RS_TYPE_F32:
      for (int64_t i = 0; i < n; i++) sum += (double)((const float *)w)[i] * af[i];
      break;
    case RS_TYPE_F16:
      for (int64_t i = 0; i < n; i++)
        sum += (double)rs_fp16_to_fp32(((const uint16_t *)w)[i]) * af[i];
      break;
    case RS_TYPE_BF16:
      for (int64_t i = 0; i < n; i++)
        sum += (double)rs_bf16_to_fp32(((const uint16_t *)w)[i]) * af[i];
      break;
    case RS_TYPE_Q4_0: sum = dot_q4_0(n, w, a); break;
    case RS_TYPE_Q8_0: sum = dot_q8_0(n, w, a); break;
    case RS_TYPE_Q4_K: sum = dot_q45_k(n, w, a, 0); break;
    case RS_TYPE_Q5_K: sum = dot_q45_k(n, w, a, 1); break;
    case RS_TYPE_Q6_K: sum = dot_q6_k(n, w, a); break;
    default: break;
  }
  return (float)sum;
}
