// Encoders for the weight types (see quantize.h). The block types are the addon's own
// reference quantisers (kernels/ref, compiled into this tool with the same flags as in
// the kernel library), so each block comes out with the same bytes; the F16 and BF16
// encoders are float16.ts's.
#include "quantize.h"

#include <cmath>
#include <cstring>

extern "C" {
#include "rs_ref_internal.h"
}

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
    case 8: rs_ref_quantize_q8_0(src, dst, n); break;
    case 2: rs_ref_quantize_q4_0(src, dst, n); break;
    case 12: rs_ref_quantize_q4_k(src, dst, n); break;
    case 13: rs_ref_quantize_q5_k(src, dst, n); break;
    case 14: rs_ref_quantize_q6_k(src, dst, n); break;
    default: break;  // weight_type() hands out only the types above
  }
}

}  // namespace mm
