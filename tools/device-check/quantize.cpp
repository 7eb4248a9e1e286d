// Encoders for the weight types (see quantize.h). The block quantisers follow
// kernels/ref/ref_quantize.c and ref_convert.c statement by statement in float
// arithmetic (both compiled with -ffp-contract=off), so each block comes out with the
// same bytes; the F16 encoder is float16.ts's halfFromBits.
#include "quantize.h"

#include <cmath>
#include <cstring>

namespace mm {
namespace {

const TypeInfo kTypes[] = {
    {"f32", 0, 1, 4, 0},       {"f16", 1, 1, 2, 1},       {"bf16", 30, 1, 2, 32},    {"q8_0", 8, 32, 34, 7},
    {"q4_0", 2, 32, 18, 2},    {"q4_k", 12, 256, 144, 14}, {"q5_k", 13, 256, 176, 16}, {"q6_k", 14, 256, 210, 18},
};

uint32_t f32_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float bits_f32(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
void put_u16(uint8_t *p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
}

// float16.ts halfFromBits: f32 bits -> f16 bits, nearest even (the F16 tensors' encoder).
uint16_t half_from_bits(uint32_t x) {
  const uint32_t sign = (x >> 16) & 0x8000;
  const uint32_t exp = (x >> 23) & 0xff;
  uint32_t mant = x & 0x7fffff;
  if (exp == 0xff) return static_cast<uint16_t>(sign | 0x7c00 | (mant != 0 ? 0x200 | (mant >> 13) : 0));
  const int e = static_cast<int>(exp) - 112;
  if (e >= 0x1f) return static_cast<uint16_t>(sign | 0x7c00);
  if (e <= 0) {
    if (e < -10) return static_cast<uint16_t>(sign);
    mant |= 0x800000;
    const int shift = 14 - e;
    uint32_t r = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (r & 1) != 0)) r++;
    return static_cast<uint16_t>(sign | r);
  }
  uint32_t r = (static_cast<uint32_t>(e) << 10) | (mant >> 13);
  const uint32_t rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (r & 1) != 0)) r++;
  return static_cast<uint16_t>(sign | r);
}

// float16.ts bf16FromBits.
uint16_t bf16_from_bits(uint32_t x) {
  if ((x & 0x7fffffff) > 0x7f800000) return static_cast<uint16_t>(((x >> 16) | 0x40) & 0xffff);
  return static_cast<uint16_t>(((x + 0x7fff + ((x >> 16) & 1)) >> 16) & 0xffff);
}

// ref_types.c rs_fp32_to_fp16 / rs_fp16_to_fp32: the block scales' conversions.
uint16_t fp32_to_fp16(float f) {
  const uint32_t x = f32_bits(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000);
  const uint32_t ax = x & 0x7FFFFFFFu;
  if (ax >= 0x7F800000u) return static_cast<uint16_t>(sign | 0x7C00 | (ax > 0x7F800000u ? 0x200 : 0));
  if (ax >= 0x477FF000u) return static_cast<uint16_t>(sign | 0x7C00);
  if (ax < 0x38800000u) {
    const float v = bits_f32(ax) * 16777216.0f;
    const uint32_t r = static_cast<uint32_t>(std::nearbyint(v));
    return static_cast<uint16_t>(sign | r);
  }
  uint32_t m = ax + 0xFFFu + ((ax >> 13) & 1u);
  m -= static_cast<uint32_t>(112u << 23);
  return static_cast<uint16_t>(sign | (m >> 13));
}

float fp16_to_fp32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1F;
  const uint32_t man = h & 0x3FF;
  if (exp == 0x1F) return bits_f32(sign | 0x7F800000u | (man << 13));
  if (exp != 0) return bits_f32(sign | ((exp + 112) << 23) | (man << 13));
  const float v = static_cast<float>(man) * 5.9604644775390625e-8f;
  return sign ? -v : v;
}

int clampi(int v, int lo, int hi) { return v < lo ? lo : (v > hi ? hi : v); }
int nearest(float v) { return static_cast<int>(std::lrint(v)); }        // ref_quantize.c: lrintf
int round_even(float v) { return static_cast<int>(std::nearbyint(v)); }  // ref_convert.c: nearbyintf

void quantize_q4_0(const float *x, uint8_t *y, int64_t n) {
  for (int64_t b = 0; b < n / 32; b++, y += 18) {
    const float *xb = x + b * 32;
    float vmax = 0.0f;
    for (int i = 0; i < 32; i++)
      if (std::fabs(xb[i]) > std::fabs(vmax)) vmax = xb[i];
    const float d = vmax / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    put_u16(y, fp32_to_fp16(d));
    for (int j = 0; j < 16; j++) {
      const int lo = clampi(nearest(xb[j] * id) + 8, 0, 15);
      const int hi = clampi(nearest(xb[j + 16] * id) + 8, 0, 15);
      y[2 + j] = static_cast<uint8_t>(lo | (hi << 4));
    }
  }
}

void quantize_q8_0(const float *x, uint8_t *y, int64_t n) {
  for (int64_t b = 0; b < n / 32; b++, y += 34) {
    const float *xb = x + b * 32;
    float amax = 0.0f;
    for (int i = 0; i < 32; i++) amax = std::fmax(amax, std::fabs(xb[i]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    put_u16(y, fp32_to_fp16(d));
    for (int i = 0; i < 32; i++) y[2 + i] = static_cast<uint8_t>(static_cast<int8_t>(round_even(xb[i] * id)));
  }
}

void pack_scales_k4(const uint8_t sc[8], const uint8_t m[8], uint8_t out[12]) {
  for (int j = 0; j < 4; j++) {
    out[j] = static_cast<uint8_t>(sc[j] | ((sc[j + 4] >> 4) << 6));
    out[j + 4] = static_cast<uint8_t>(m[j] | ((m[j + 4] >> 4) << 6));
    out[j + 8] = static_cast<uint8_t>((sc[j + 4] & 0xF) | ((m[j + 4] & 0xF) << 4));
  }
}

// ref_quantize.c fit_sub, including its squared-error formula's exact operation order.
float sqerr(float sc, float off, float sq, float sqq, float sqx, float sx, float sxx) {
  return sc * sc * sqq + 2 * sc * off * sq + 32 * off * off - 2 * sc * sqx - 2 * off * sx + sxx;
}

void fit_sub(const float *x, int levels, float *s_out, float *m_out) {
  float lo = 0.0f, hi = 0.0f, sx = 0.0f, sxx = 0.0f;
  for (int l = 0; l < 32; l++) {
    lo = std::fmin(lo, x[l]);
    hi = std::fmax(hi, x[l]);
    sx += x[l];
    sxx += x[l] * x[l];
  }
  *s_out = (hi - lo) / levels;
  *m_out = -lo;
  if (hi - lo <= 0.0f) return;
  const float iscale = levels / (hi - lo);
  float sq = 0, sqq = 0, sqx = 0;
  for (int l = 0; l < 32; l++) {
    const float q = static_cast<float>(clampi(nearest((x[l] - lo) * iscale), 0, levels));
    sq += q;
    sqq += q * q;
    sqx += q * x[l];
  }
  const float det = 32 * sqq - sq * sq;
  if (det <= 0.0f) return;
  float sc = (32 * sqx - sq * sx) / det, off = (sqq * sx - sq * sqx) / det;
  if (off > 0.0f) {
    off = 0.0f;
    sc = sqx / sqq;
  }
  if (sc > 0.0f && sqerr(sc, off, sq, sqq, sqx, sx, sxx) < sqerr(*s_out, lo, sq, sqq, sqx, sx, sxx)) {
    *s_out = sc;
    *m_out = -off;
  }
}

void fit_k4(const float *x, int levels, uint16_t *d_out, uint16_t *dmin_out, uint8_t scales[12], uint8_t q[256]) {
  float sub_s[8], sub_m[8], max_scale = 0.0f, max_min = 0.0f;
  for (int j = 0; j < 8; j++) {
    fit_sub(x + 32 * j, levels, &sub_s[j], &sub_m[j]);
    max_scale = std::fmax(max_scale, sub_s[j]);
    max_min = std::fmax(max_min, sub_m[j]);
  }
  *d_out = fp32_to_fp16(max_scale / 63.0f);
  *dmin_out = fp32_to_fp16(max_min / 63.0f);
  const float dq = fp16_to_fp32(*d_out), dmq = fp16_to_fp32(*dmin_out);
  uint8_t sc[8], m[8];
  for (int j = 0; j < 8; j++) {
    const float *xs = x + 32 * j;
    m[j] = static_cast<uint8_t>(dmq > 0.0f ? clampi(nearest(sub_m[j] / dmq), 0, 63) : 0);
    const float dm = dmq * m[j];
    sc[j] = static_cast<uint8_t>(dq > 0.0f ? clampi(nearest(sub_s[j] / dq), 0, 63) : 0);
    float best_e = HUGE_VALF;
    int best = sc[j];
    for (int cand = sc[j] - 1; cand <= sc[j] + 1; cand++) {
      if (cand < 0 || cand > 63) continue;
      const float ds = dq * cand, ids = ds > 0.0f ? 1.0f / ds : 0.0f;
      float e = 0.0f;
      for (int l = 0; l < 32; l++) {
        const float r = ds * clampi(nearest((xs[l] + dm) * ids), 0, levels) - dm - xs[l];
        e += r * r;
      }
      if (e < best_e) {
        best_e = e;
        best = cand;
      }
    }
    sc[j] = static_cast<uint8_t>(best);
    const float ds = dq * sc[j], ids = ds > 0.0f ? 1.0f / ds : 0.0f;
    for (int l = 0; l < 32; l++) q[32 * j + l] = static_cast<uint8_t>(clampi(nearest((xs[l] + dm) * ids), 0, levels));
  }
  pack_scales_k4(sc, m, scales);
}

// Q4_K block: d, dmin (f16), scales[12], qs[128].
void quantize_q4_k(const float *x, uint8_t *y, int64_t n) {
  uint8_t q[256];
  for (int64_t b = 0; b < n / 256; b++, y += 144) {
    uint16_t d, dmin;
    fit_k4(x + b * 256, 15, &d, &dmin, y + 4, q);
    put_u16(y, d);
    put_u16(y + 2, dmin);
    uint8_t *qs = y + 16;
    for (int c = 0; c < 4; c++)
      for (int l = 0; l < 32; l++) qs[32 * c + l] = static_cast<uint8_t>(q[64 * c + l] | (q[64 * c + 32 + l] << 4));
  }
}

// Q5_K block: d, dmin (f16), scales[12], qh[32], qs[128].
void quantize_q5_k(const float *x, uint8_t *y, int64_t n) {
  uint8_t q[256];
  for (int64_t b = 0; b < n / 256; b++, y += 176) {
    uint16_t d, dmin;
    fit_k4(x + b * 256, 31, &d, &dmin, y + 4, q);
    put_u16(y, d);
    put_u16(y + 2, dmin);
    uint8_t *qh = y + 16, *qs = y + 48;
    std::memset(qh, 0, 32);
    for (int c = 0; c < 4; c++)
      for (int l = 0; l < 32; l++) {
        const int v0 = q[64 * c + l], v1 = q[64 * c + 32 + l];
        qs[32 * c + l] = static_cast<uint8_t>((v0 & 0xF) | ((v1 & 0xF) << 4));
        qh[l] |= static_cast<uint8_t>(((v0 >> 4) << (2 * c)) | ((v1 >> 4) << (2 * c + 1)));
      }
  }
}

// Q6_K block: ql[128], qh[64], scales[16] (int8), d (f16).
void quantize_q6_k(const float *x, uint8_t *y, int64_t n) {
  for (int64_t b = 0; b < n / 256; b++, y += 210) {
    const float *xb = x + b * 256;
    float scale[16], max_abs_scale = 0.0f;
    for (int s = 0; s < 16; s++) {
      float vmax = 0.0f;
      for (int l = 0; l < 16; l++)
        if (std::fabs(xb[16 * s + l]) > std::fabs(vmax)) vmax = xb[16 * s + l];
      scale[s] = vmax / -32.0f;
      max_abs_scale = std::fmax(max_abs_scale, std::fabs(scale[s]));
    }
    const float d = max_abs_scale / 127.0f;
    const uint16_t dh = fp32_to_fp16(d);
    put_u16(y + 208, dh);
    const float dq = fp16_to_fp32(dh);
    uint8_t q[256];
    for (int s = 0; s < 16; s++) {
      const int sc = dq > 0.0f ? clampi(nearest(scale[s] / dq), -127, 127) : 0;
      y[192 + s] = static_cast<uint8_t>(static_cast<int8_t>(sc));
      const float ds = dq * sc, ids = ds != 0.0f ? 1.0f / ds : 0.0f;
      for (int l = 0; l < 16; l++) q[16 * s + l] = static_cast<uint8_t>(clampi(nearest(xb[16 * s + l] * ids), -32, 31) + 32);
    }
    uint8_t *ql = y, *qh = y + 128;
    for (int c = 0; c < 2; c++)
      for (int l = 0; l < 32; l++) {
        const int q1 = q[128 * c + l], q2 = q[128 * c + l + 32];
        const int q3 = q[128 * c + l + 64], q4 = q[128 * c + l + 96];
        ql[64 * c + l] = static_cast<uint8_t>((q1 & 0xF) | ((q3 & 0xF) << 4));
        ql[64 * c + l + 32] = static_cast<uint8_t>((q2 & 0xF) | ((q4 & 0xF) << 4));
        qh[32 * c + l] = static_cast<uint8_t>((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
      }
  }
}

}  // namespace

const TypeInfo *weight_type(const std::string &name) {
  for (const TypeInfo &t : kTypes)
    if (name == t.name) return &t;
  return nullptr;
}

void encode_row(const TypeInfo &t, const float *src, uint8_t *dst, int64_t n) {
  switch (t.id) {
    case 0: std::memcpy(dst, src, static_cast<size_t>(n) * 4); break;  // little-endian hosts only (see make_model.cpp)
    case 1:
      for (int64_t i = 0; i < n; i++) put_u16(dst + 2 * i, half_from_bits(f32_bits(src[i])));
      break;
    case 30:
      for (int64_t i = 0; i < n; i++) put_u16(dst + 2 * i, bf16_from_bits(f32_bits(src[i])));
      break;
    case 8: quantize_q8_0(src, dst, n); break;
    case 2: quantize_q4_0(src, dst, n); break;
    case 12: quantize_q4_k(src, dst, n); break;
    case 13: quantize_q5_k(src, dst, n); break;
    case 14: quantize_q6_k(src, dst, n); break;
    default: break;  // weight_type() hands out only the types above
  }
}

}  // namespace mm
