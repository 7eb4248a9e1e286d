/* Type traits (GGUF / ggml type ids) and the scalar f16/bf16 conversions. */
#include <string.h>

#include "rs_blocks.h"
#include "rs_kernels.h"

/* Block sizes and bytes per block follow ggml's block structs; only the types with
 * supported = 1 have kernels. The others are listed so the loader can name them in
 * its refusal and still compute tensor sizes. */
static const rs_type_traits k_traits[RS_TYPE_COUNT] = {
    [RS_TYPE_F32] = {"f32", 1, 4, RS_TYPE_F32, 1},
    [RS_TYPE_F16] = {"f16", 1, 2, RS_TYPE_F32, 1},
    [RS_TYPE_Q4_0] = {"q4_0", 32, 18, RS_TYPE_Q8_0X, 1},
    [RS_TYPE_Q4_1] = {"q4_1", 32, 20, RS_TYPE_Q8_1, 0},
    [RS_TYPE_Q5_0] = {"q5_0", 32, 22, RS_TYPE_Q8_0, 0},
    [RS_TYPE_Q5_1] = {"q5_1", 32, 24, RS_TYPE_Q8_1, 0},
    [RS_TYPE_Q8_0] = {"q8_0", 32, 34, RS_TYPE_Q8_0X, 1},
    [RS_TYPE_Q8_1] = {"q8_1", 32, 36, RS_TYPE_Q8_1, 0},
    [RS_TYPE_Q2_K] = {"q2_K", 256, 84, RS_TYPE_Q8_K, 0},
    [RS_TYPE_Q3_K] = {"q3_K", 256, 110, RS_TYPE_Q8_K, 0},
    [RS_TYPE_Q4_K] = {"q4_K", 256, 144, RS_TYPE_Q8_K, 1},
    [RS_TYPE_Q5_K] = {"q5_K", 256, 176, RS_TYPE_Q8_K, 1},
    [RS_TYPE_Q6_K] = {"q6_K", 256, 210, RS_TYPE_Q8_K, 1},
    /* Q8_K is an activation format only (ggml has no Q8_K weights either). */
    [RS_TYPE_Q8_K] = {"q8_K", 256, 292, RS_TYPE_Q8_K, 0},
    [16] = {"iq2_xxs", 256, 66, RS_TYPE_Q8_K, 0},
    [17] = {"iq2_xs", 256, 74, RS_TYPE_Q8_K, 0},
    [18] = {"iq3_xxs", 256, 98, RS_TYPE_Q8_K, 0},
    [19] = {"iq1_s", 256, 50, RS_TYPE_Q8_K, 0},
    [20] = {"iq4_nl", 32, 18, RS_TYPE_Q8_0, 0},
    [21] = {"iq3_s", 256, 110, RS_TYPE_Q8_K, 0},
    [22] = {"iq2_s", 256, 82, RS_TYPE_Q8_K, 0},
    [23] = {"iq4_xs", 256, 136, RS_TYPE_Q8_K, 0},
    [RS_TYPE_I8] = {"i8", 1, 1, RS_TYPE_I8, 0},
    [RS_TYPE_I16] = {"i16", 1, 2, RS_TYPE_I16, 0},
    [RS_TYPE_I32] = {"i32", 1, 4, RS_TYPE_I32, 0},
    [RS_TYPE_I64] = {"i64", 1, 8, RS_TYPE_I64, 0},
    [RS_TYPE_F64] = {"f64", 1, 8, RS_TYPE_F64, 0},
    [29] = {"iq1_m", 256, 56, RS_TYPE_Q8_K, 0},
    [RS_TYPE_BF16] = {"bf16", 1, 2, RS_TYPE_F32, 1},
    [34] = {"tq1_0", 256, 54, RS_TYPE_Q8_K, 0},
    [35] = {"tq2_0", 256, 66, RS_TYPE_Q8_K, 0},
};

static const rs_type_traits k_unknown = {NULL, 0, 0, RS_TYPE_F32, 0};
/* type_size is the Q8_0 prefix only; rs_row_size adds the group part. */
static const rs_type_traits k_q8_0x = {"q8_0x", 32, 34, RS_TYPE_Q8_0X, 0};

const rs_type_traits *rs_type_get_traits(int type) {
  if (type == RS_TYPE_Q8_0X) return &k_q8_0x;
  if (type < 0 || type >= RS_TYPE_COUNT || k_traits[type].name == NULL) return &k_unknown;
  return &k_traits[type];
}

size_t rs_row_size(rs_type type, int64_t n) {
  const rs_type_traits *t = rs_type_get_traits((int)type);
  if (t->name == NULL || n < 0 || n % t->block_size != 0) return 0;
  size_t bytes = (size_t)(n / t->block_size) * t->type_size;
  if (type == RS_TYPE_Q8_0X) bytes += (size_t)(n / 128) * sizeof(rs_q8_0x_group);
  return bytes;
}

static inline uint32_t f32_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}
static inline float bits_f32(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

float rs_fp16_to_fp32(uint16_t h) {
  const uint32_t sign = (uint32_t)(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1F;
  const uint32_t man = h & 0x3FF;
  if (exp == 0x1F) return bits_f32(sign | 0x7F800000u | (man << 13)); /* inf / nan */
  if (exp != 0) return bits_f32(sign | ((exp + 112) << 23) | (man << 13));
  /* zero or subnormal: man * 2^-24, exact in f32 */
  const float v = (float)man * 5.9604644775390625e-8f;
  return sign ? -v : v;
}

uint16_t rs_fp32_to_fp16(float f) {
  const uint32_t x = f32_bits(f);
  const uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
  const uint32_t ax = x & 0x7FFFFFFFu;
  if (ax >= 0x7F800000u) /* inf stays inf, nan stays a (quiet) nan */
    return (uint16_t)(sign | 0x7C00 | (ax > 0x7F800000u ? 0x200 : 0));
  if (ax >= 0x477FF000u) return (uint16_t)(sign | 0x7C00); /* rounds past 65504 */
  if (ax < 0x38800000u) {
    /* result is subnormal in f16 (or zero): scale so the f16 ulp 2^-24 becomes 1 and
     * let the FPU round to nearest even. */
    const float v = bits_f32(ax) * 16777216.0f; /* 2^24 */
    const uint32_t r = (uint32_t)__builtin_nearbyintf(v);
    return (uint16_t)(sign | r); /* r == 0x400 carries into the smallest normal */
  }
  /* normal: drop 13 mantissa bits, round to nearest even */
  uint32_t m = ax + 0xFFFu + ((ax >> 13) & 1u);
  m -= (uint32_t)(112u << 23);
  return (uint16_t)(sign | (m >> 13));
}

float rs_bf16_to_fp32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

uint16_t rs_fp32_to_bf16(float f) {
  const uint32_t x = f32_bits(f);
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((x >> 16) | 0x40); /* quiet nan */
  return (uint16_t)((x + 0x7FFFu + ((x >> 16) & 1u)) >> 16); /* nearest even */
}
