// The few numeric primitives of the TypeScript generator whose bits matter, in C++ that
// gives the same bits: the seeded RNG (server/sampling/rng.ts), JS's Math.round, and the
// portable log / exp / pow (server/gguf/portable-math.ts, fdlibm 5.3).
//
// Double arithmetic matches JS's as long as every operation is rounded on its own, in the
// same order as in the TS source: this directory is compiled with -ffp-contract=off (no
// fused multiply-add), and every expression below keeps the TS order of operations. Values
// stored into a Float32Array in TS are static_cast<float> here (both round to nearest even).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace mm {

// ---------- xoshiro128** seeded by splitmix64 (server/sampling/rng.ts) ----------

class Rng {
 public:
  // seed: the u64 seed; stream: which independent stream (tensor index + 1, or a layer's
  // design stream), as `new Rng(seed, stream)` in TS.
  Rng(uint64_t seed, uint64_t stream) {
    uint64_t st = seed ^ (stream * 0xd1342543de82ef95ull);
    const uint64_t a = splitmix64(st);
    const uint64_t b = splitmix64(st);
    s_[0] = static_cast<uint32_t>(a);
    s_[1] = static_cast<uint32_t>(a >> 32);
    s_[2] = static_cast<uint32_t>(b);
    s_[3] = static_cast<uint32_t>(b >> 32);
    if ((s_[0] | s_[1] | s_[2] | s_[3]) == 0) s_[0] = 1;  // the one state xoshiro cannot leave
  }

  uint32_t next_u32() {
    const uint32_t r = rotl(s_[1] * 5u, 7) * 9u;
    const uint32_t t = s_[1] << 9;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 11);
    return r;
  }

  // Rng.fillUniform: floats uniform in [lo, hi) from 24 random bits each, computed in
  // double (lo + bits * scale) and rounded once to float, as a Float32Array store does.
  void fill_uniform(float *dst, int64_t n, double lo, double hi) {
    const double scale = (hi - lo) / 16777216.0;
    for (int64_t i = 0; i < n; i++) dst[i] = static_cast<float>(lo + static_cast<double>(next_u32() >> 8) * scale);
  }

 private:
  static uint32_t rotl(uint32_t x, int k) { return (x << k) | (x >> (32 - k)); }
  static uint64_t splitmix64(uint64_t &state) {
    state += 0x9e3779b97f4a7c15ull;
    uint64_t z = state;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  uint32_t s_[4];
};

// ---------- JS Math.round: nearest, ties towards +infinity (C's round goes away from 0) ----------

inline double js_round(double x) {
  // V8's way: ceil, then step back if that went more than half up. Exact for every double
  // (floor(x + 0.5) is not: 0.49999999999999994 + 0.5 rounds to 1).
  double r = std::ceil(x);
  if (r - 0.5 > x) r -= 1.0;
  return r;
}

// ---------- fdlibm log / exp (portable-math.ts) ----------
//   Copyright (C) 1993 by Sun Microsystems, Inc. All rights reserved.
//   Developed at SunSoft, a Sun Microsystems, Inc. business.
//   Permission to use, copy, modify, and distribute this software is freely granted,
//   provided that this notice is preserved.

inline int32_t hi_word(double x) {
  uint64_t b;
  std::memcpy(&b, &x, 8);
  return static_cast<int32_t>(static_cast<uint32_t>(b >> 32));
}
inline uint32_t lo_word(double x) {
  uint64_t b;
  std::memcpy(&b, &x, 8);
  return static_cast<uint32_t>(b);
}
inline double with_hi_word(double x, int32_t hi) {
  uint64_t b;
  std::memcpy(&b, &x, 8);
  b = (static_cast<uint64_t>(static_cast<uint32_t>(hi)) << 32) | (b & 0xffffffffull);
  std::memcpy(&x, &b, 8);
  return x;
}

inline double fd_log(double x) {
  const double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;
  const double two54 = 1.80143985094819840000e+16;
  const double Lg1 = 6.666666666666735130e-01, Lg2 = 3.999999999940941908e-01, Lg3 = 2.857142874366239149e-01,
               Lg4 = 2.222219843214978396e-01, Lg5 = 1.818357216161805012e-01, Lg6 = 1.531383769920937332e-01,
               Lg7 = 1.479819860511658591e-01;
  int32_t hx = hi_word(x);
  const uint32_t lx = lo_word(x);
  int32_t k = 0;
  if (hx < 0x00100000) {  // x < 2^-1022: zero, negative or subnormal
    if (((hx & 0x7fffffff) | static_cast<int32_t>(lx)) == 0) return -HUGE_VAL;
    if (hx < 0) return std::nan("");
    k -= 54;
    x *= two54;
    hx = hi_word(x);
  }
  if (hx >= 0x7ff00000) return x + x;
  k += (hx >> 20) - 1023;
  hx &= 0x000fffff;
  const int32_t i0 = (hx + 0x95f64) & 0x100000;
  x = with_hi_word(x, hx | (i0 ^ 0x3ff00000));  // x or x/2 in [sqrt(2)/2, sqrt(2))
  k += i0 >> 20;
  const double f = x - 1.0;
  if ((0x000fffff & (2 + hx)) < 3) {  // |f| < 2^-20
    if (f == 0.0) {
      if (k == 0) return 0.0;
      const double dk = k;
      return dk * ln2_hi + dk * ln2_lo;
    }
    const double R = f * f * (0.5 - 0.33333333333333333 * f);
    if (k == 0) return f - R;
    const double dk = k;
    return dk * ln2_hi - ((R - dk * ln2_lo) - f);
  }
  const double s = f / (2.0 + f);
  const double dk = k;
  const double z = s * s;
  int32_t i = hx - 0x6147a;
  const double w = z * z;
  const int32_t j = 0x6b851 - hx;
  const double t1 = w * (Lg2 + w * (Lg4 + w * Lg6));
  const double t2 = z * (Lg1 + w * (Lg3 + w * (Lg5 + w * Lg7)));
  i |= j;
  const double R = t2 + t1;
  if (i > 0) {
    const double hfsq = 0.5 * f * f;
    if (k == 0) return f - (hfsq - s * (hfsq + R));
    return dk * ln2_hi - ((hfsq - (s * (hfsq + R) + dk * ln2_lo)) - f);
  }
  if (k == 0) return f - s * (f - R);
  return dk * ln2_hi - ((s * (f - R) - dk * ln2_lo) - f);
}

inline double fd_exp(double x) {
  const double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;
  const double o_threshold = 7.09782712893383973096e+02, u_threshold = -7.45133219101941108420e+02;
  const double twom1000 = 9.33263618503218878990e-302, invln2 = 1.44269504088896338700e+00;
  const double P1 = 1.66666666666666019037e-01, P2 = -2.77777777770155933842e-03, P3 = 6.61375632143793436117e-05,
               P4 = -1.65339022054652515390e-06, P5 = 4.13813679705723846039e-08;
  int32_t hx = hi_word(x);
  const int xsb = static_cast<int>((static_cast<uint32_t>(hx) >> 31) & 1);
  hx &= 0x7fffffff;
  if (hx >= 0x40862e42) {  // |x| >= 709.78...
    if (hx >= 0x7ff00000) {
      if (((hx & 0xfffff) | static_cast<int32_t>(lo_word(x))) != 0) return x + x;  // NaN
      return xsb == 0 ? x : 0.0;
    }
    if (x > o_threshold) return HUGE_VAL;
    if (x < u_threshold) return 0.0;
  }
  double hi = 0, lo = 0;
  int32_t k = 0;
  if (hx > 0x3fd62e42) {  // |x| > 0.5 ln2
    if (hx < 0x3ff0a2b2) {  // and < 1.5 ln2
      hi = xsb == 0 ? x - ln2_hi : x + ln2_hi;
      lo = xsb == 0 ? ln2_lo : -ln2_lo;
      k = 1 - xsb - xsb;
    } else {
      k = static_cast<int32_t>(std::trunc(invln2 * x + (xsb == 0 ? 0.5 : -0.5)));
      const double t = k;
      hi = x - t * ln2_hi;  // exact
      lo = t * ln2_lo;
    }
    x = hi - lo;
  } else if (hx < 0x3e300000) {  // |x| < 2^-28
    return 1.0 + x;
  }
  const double t = x * x;
  const double c = x - t * (P1 + t * (P2 + t * (P3 + t * (P4 + t * P5))));
  if (k == 0) return 1.0 - ((x * c) / (c - 2.0) - x);
  const double y = 1.0 - ((lo - (x * c) / (2.0 - c)) - hi);
  // Add k to the exponent with 32-bit wraparound, as the TS does with int32 arithmetic.
  if (k >= -1021) return with_hi_word(y, static_cast<int32_t>(static_cast<uint32_t>(hi_word(y)) + (static_cast<uint32_t>(k) << 20)));
  return with_hi_word(y, static_cast<int32_t>(static_cast<uint32_t>(hi_word(y)) + (static_cast<uint32_t>(k + 1000) << 20))) *
         twom1000;
}

// x^y for x > 0 as exp(y log x), as portable-math.ts's pow (NaN for x <= 0).
inline double fd_pow(double x, double y) {
  if (!(x > 0)) return std::nan("");
  if (y == 0 || x == 1) return 1.0;
  return fd_exp(y * fd_log(x));
}

}  // namespace mm
