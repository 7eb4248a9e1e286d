/* Reference float kernels: the textbook formulas, accumulating in double. */
#include <math.h>

#include "rs_kernels.h"

void rs_ref_rmsnorm(float *y, const float *x, const float *w, int n, float eps) {
  double ss = 0.0;
  for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
  const float scale = (float)(1.0 / sqrt(ss / n + eps));
  for (int i = 0; i < n; i++) y[i] = x[i] * scale * w[i];
}

/* Pair (x[2i], x[2i+1]) of every head is rotated by pos * base^(-2i/head_dim). */
void rs_ref_rope(float *x, int n_head, int head_dim, int pos, float freq_base) {
  for (int h = 0; h < n_head; h++) {
    float *xh = x + (size_t)h * head_dim;
    for (int i = 0; i < head_dim / 2; i++) {
      const double theta = pos * pow((double)freq_base, -2.0 * i / head_dim);
      const float c = (float)cos(theta), s = (float)sin(theta);
      const float x0 = xh[2 * i], x1 = xh[2 * i + 1];
      xh[2 * i] = x0 * c - x1 * s;
      xh[2 * i + 1] = x0 * s + x1 * c;
    }
  }
}

void rs_ref_softmax(float *x, int n) {
  float mx = -INFINITY;
  for (int i = 0; i < n; i++) mx = fmaxf(mx, x[i]);
  double sum = 0.0;
  for (int i = 0; i < n; i++) {
    x[i] = expf(x[i] - mx);
    sum += x[i];
  }
  const float inv = (float)(1.0 / sum);
  for (int i = 0; i < n; i++) x[i] *= inv;
}

void rs_ref_ffn_act(rs_act act, float *h, const float *gate, const float *up, int n) {
  for (int i = 0; i < n; i++) {
    const float g = gate[i], u = up[i];
    switch (act) {
      case RS_ACT_SWIGLU: h[i] = g / (1.0f + expf(-g)) * u; break;
      case RS_ACT_RELU_GLU: h[i] = (g > 0.0f ? g : 0.0f) * u; break;
      case RS_ACT_DRELU: h[i] = (g > 0.0f ? g : 0.0f) * (u > 0.0f ? u : 0.0f); break;
    }
  }
}

void rs_ref_attention_head(float *out, const float *q, const uint16_t *k, const uint16_t *v,
                           int t_len, int head_dim, size_t row_stride, float scale,
                           float *scratch) {
  for (int t = 0; t < t_len; t++) {
    double s = 0.0;
    for (int i = 0; i < head_dim; i++) s += (double)q[i] * rs_fp16_to_fp32(k[t * row_stride + i]);
    scratch[t] = (float)s * scale;
  }
  rs_ref_softmax(scratch, t_len);
  for (int i = 0; i < head_dim; i++) {
    double o = 0.0;
    for (int t = 0; t < t_len; t++) o += (double)scratch[t] * rs_fp16_to_fp32(v[t * row_stride + i]);
    out[i] = (float)o;
  }
}

void rs_ref_attention_gqa(float *out, const float *q, int n_q, const uint16_t *k, const uint16_t *v, int t_len,
                          int head_dim, size_t row_stride, float scale, float *scratch) {
  for (int g = 0; g < n_q; g++)
    rs_ref_attention_head(out + (size_t)g * head_dim, q + (size_t)g * head_dim, k, v, t_len, head_dim, row_stride,
                          scale, scratch + (size_t)g * t_len);
}
