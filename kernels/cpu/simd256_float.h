/* Float kernels with 256-bit AVX2/FMA/F16C intrinsics. Included by avx2.c and
 * avx512.c (which overrides the memory-bound ones with 512-bit versions), so every
 * function is static inline and compiled with the including file's flags. */
#ifndef RS_SIMD256_FLOAT_H
#define RS_SIMD256_FLOAT_H

#include <immintrin.h>
#include <math.h>

#include "rs_kernels.h"

static inline float hsum256_ps(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

static inline int hsum256_epi32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

/* e^x to about 2 ulp: x = n ln2 + r with |r| <= ln2/2, a degree-6 polynomial for e^r
 * (Cephes coefficients), then 2^n through the exponent bits. Inputs are clamped to
 * the range where the result is a normal float (below it, softmax weights are 0 in
 * any case). */
static inline __m256 exp256_ps(__m256 x) {
  x = _mm256_min_ps(x, _mm256_set1_ps(88.0f));
  x = _mm256_max_ps(x, _mm256_set1_ps(-87.33f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

static inline float s256_dot_f32(const float *a, const float *b, int n) {
  __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  int i = 0;
  for (; i + 32 <= n; i += 32) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
    s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
  }
  for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
  float s = hsum256_ps(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
  for (; i < n; i++) s += a[i] * b[i];
  return s;
}

static inline __m256 load_f16x8(const uint16_t *p) {
  return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

static inline float s256_dot_f32_f16(const float *a, const uint16_t *b, int n) {
  __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  int i = 0;
  for (; i + 32 <= n; i += 32) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), load_f16x8(b + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), load_f16x8(b + i + 8), s1);
    s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), load_f16x8(b + i + 16), s2);
    s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), load_f16x8(b + i + 24), s3);
  }
  for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), load_f16x8(b + i), s0);
  float s = hsum256_ps(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
  for (; i < n; i++) s += a[i] * _cvtsh_ss(b[i]);
  return s;
}

static inline void s256_axpy_f16(float *y, float a, const uint16_t *x, int n) {
  const __m256 va = _mm256_set1_ps(a);
  int i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, load_f16x8(x + i), _mm256_loadu_ps(y + i)));
  for (; i < n; i++) y[i] += a * _cvtsh_ss(x[i]);
}

static inline void s256_f32_to_f16_row(const float *x, uint16_t *y, int n) {
  int i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128((__m128i *)(y + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
  for (; i < n; i++) y[i] = rs_fp32_to_fp16(x[i]);
}

static inline void s256_rmsnorm(float *y, const float *x, const float *w, int n, float eps) {
  const float ss = s256_dot_f32(x, x, n);
  const float scale = 1.0f / sqrtf(ss / n + eps);
  const __m256 vs = _mm256_set1_ps(scale);
  int i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), vs), _mm256_loadu_ps(w + i)));
  for (; i < n; i++) y[i] = x[i] * scale * w[i];
}

/* The rotation angles are the same for every head: one table of (cos, sin) per call,
 * computed like the reference (double precision), then applied 4 pairs at a time. */
static inline void s256_rope(float *x, int n_head, int head_dim, int pos, float freq_base) {
  if (head_dim > 1024 || head_dim % 8 != 0) {
    rs_ref_rope(x, n_head, head_dim, pos, freq_base);
    return;
  }
  float cs[1024], sn[1024]; /* cs = (c, c), sn = (-s, s) per pair */
  for (int i = 0; i < head_dim / 2; i++) {
    const double theta = pos * pow((double)freq_base, -2.0 * i / head_dim);
    const float c = (float)cos(theta), s = (float)sin(theta);
    cs[2 * i] = c;
    cs[2 * i + 1] = c;
    sn[2 * i] = -s;
    sn[2 * i + 1] = s;
  }
  for (int h = 0; h < n_head; h++) {
    float *xh = x + (size_t)h * head_dim;
    for (int i = 0; i < head_dim; i += 8) {
      const __m256 v = _mm256_loadu_ps(xh + i);
      const __m256 swapped = _mm256_permute_ps(v, 0xB1); /* (x1, x0) per pair */
      _mm256_storeu_ps(xh + i, _mm256_fmadd_ps(v, _mm256_loadu_ps(cs + i),
                                               _mm256_mul_ps(swapped, _mm256_loadu_ps(sn + i))));
    }
  }
}

static inline void s256_softmax(float *x, int n) {
  __m256 vmax = _mm256_set1_ps(-INFINITY);
  int i = 0;
  for (; i + 8 <= n; i += 8) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(x + i));
  __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
  m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
  m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
  float mx = _mm_cvtss_f32(m4);
  for (; i < n; i++) mx = fmaxf(mx, x[i]);
  const __m256 vm = _mm256_set1_ps(mx);
  __m256 vsum = _mm256_setzero_ps();
  for (i = 0; i + 8 <= n; i += 8) {
    const __m256 e = exp256_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
    _mm256_storeu_ps(x + i, e);
    vsum = _mm256_add_ps(vsum, e);
  }
  float sum = hsum256_ps(vsum);
  for (; i < n; i++) {
    x[i] = expf(x[i] - mx);
    sum += x[i];
  }
  const float inv = 1.0f / sum;
  const __m256 vi = _mm256_set1_ps(inv);
  for (i = 0; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), vi));
  for (; i < n; i++) x[i] *= inv;
}

static inline void s256_ffn_act(rs_act act, float *h, const float *gate, const float *up, int n) {
  const __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f);
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 g = _mm256_loadu_ps(gate + i), u = _mm256_loadu_ps(up + i);
    __m256 r;
    switch (act) {
      case RS_ACT_SWIGLU: {
        const __m256 e = exp256_ps(_mm256_sub_ps(zero, g));
        r = _mm256_div_ps(_mm256_mul_ps(g, u), _mm256_add_ps(one, e));
        break;
      }
      case RS_ACT_RELU_GLU: r = _mm256_mul_ps(_mm256_max_ps(g, zero), u); break;
      default: r = _mm256_mul_ps(_mm256_max_ps(g, zero), _mm256_max_ps(u, zero)); break;
    }
    _mm256_storeu_ps(h + i, r);
  }
  if (i < n) rs_ref_ffn_act(act, h + i, gate + i, up + i, n - i);
}

/* The read loops behind rs_stream_read (see rs_read_pattern). Four accumulators, two
 * adds and two xors, so the loads never wait on one dependency chain. */
#define S256_READ4(LOAD, b)                                                  \
  do {                                                                       \
    s0 = _mm256_add_epi64(s0, LOAD((b)));                                    \
    s1 = _mm256_xor_si256(s1, LOAD((b) + 32));                               \
    s2 = _mm256_add_epi64(s2, LOAD((b) + 64));                               \
    s3 = _mm256_xor_si256(s3, LOAD((b) + 96));                               \
  } while (0)
#define S256_LOAD(q) _mm256_load_si256((const __m256i *)(q))
#define S256_LOAD_NT(q) _mm256_stream_load_si256((__m256i *)(q))

static inline uint64_t s256_stream_read(const void *p, size_t bytes, rs_read_pattern pattern) {
  const uint8_t *b = (const uint8_t *)p;
  uint64_t r = 0;
  /* An unaligned head byte by byte: the vector loops use aligned (and streaming) loads. */
  for (; bytes > 0 && ((uintptr_t)b & 63) != 0; b++, bytes--) r += *b;
  __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
  size_t i = 0;
  const size_t n = bytes / 256 * 256;
  switch (pattern) {
    case RS_READ_PREFETCH:
      for (; i < n; i += 128) {
        _mm_prefetch((const char *)b + i + RS_READ_PREFETCH_AHEAD, _MM_HINT_T0);
        _mm_prefetch((const char *)b + i + RS_READ_PREFETCH_AHEAD + 64, _MM_HINT_T0);
        S256_READ4(S256_LOAD, b + i);
      }
      break;
    case RS_READ_NONTEMPORAL:
      for (; i < n; i += 128) {
        _mm_prefetch((const char *)b + i + RS_READ_PREFETCH_AHEAD, _MM_HINT_NTA);
        _mm_prefetch((const char *)b + i + RS_READ_PREFETCH_AHEAD + 64, _MM_HINT_NTA);
        S256_READ4(S256_LOAD_NT, b + i);
      }
      break;
    case RS_READ_TWO_STREAMS: {
      const size_t h = n / 2;
      const uint8_t *c = b + h;
      for (; i < h; i += 64) {
        s0 = _mm256_add_epi64(s0, S256_LOAD(b + i));
        s1 = _mm256_xor_si256(s1, S256_LOAD(b + i + 32));
        s2 = _mm256_add_epi64(s2, S256_LOAD(c + i));
        s3 = _mm256_xor_si256(s3, S256_LOAD(c + i + 32));
      }
      i = n;
      break;
    }
    default:
      for (; i < n; i += 128) S256_READ4(S256_LOAD, b + i);
      break;
  }
  const __m256i s = _mm256_xor_si256(_mm256_add_epi64(s0, s2), _mm256_add_epi64(s1, s3));
  r ^= (uint64_t)_mm256_extract_epi64(s, 0) ^ (uint64_t)_mm256_extract_epi64(s, 1) ^
       (uint64_t)_mm256_extract_epi64(s, 2) ^ (uint64_t)_mm256_extract_epi64(s, 3);
  for (; i < bytes; i++) r += b[i];
  return r;
}

#endif
