// log, exp and pow that give the same bits everywhere. make-model's bytes depend on a few
// logarithms and powers (firing probabilities, probit), and Math.log / Math.exp / Math.pow
// may differ by an ulp between JS engines and from C's libm, while the C++ port of the
// generator (tools/device-check/js_math.h) must write the same file. These use only IEEE
// basic operations (+ - * /, correctly rounded everywhere) and exact bit manipulation, in an
// order the C++ copy follows line for line (compiled with -ffp-contract=off).
//
// log and exp are fdlibm 5.3's e_log.c and e_exp.c (error < 1 ulp), whose notice follows:
//   Copyright (C) 1993 by Sun Microsystems, Inc. All rights reserved.
//   Developed at SunSoft, a Sun Microsystems, Inc. business.
//   Permission to use, copy, modify, and distribute this software is freely granted,
//   provided that this notice is preserved.

const view = new DataView(new ArrayBuffer(8));

function hiWord(x: number): number {
  view.setFloat64(0, x);
  return view.getInt32(0);
}
function loWord(x: number): number {
  view.setFloat64(0, x);
  return view.getUint32(4);
}
/** x with its high 32 bits replaced. */
function withHiWord(x: number, hi: number): number {
  view.setFloat64(0, x);
  view.setInt32(0, hi);
  return view.getFloat64(0);
}

const LN2_HI = 6.93147180369123816490e-1; // 0x3fe62e42 fee00000: k * LN2_HI is exact for |k| < 2^11
const LN2_LO = 1.90821492927058770002e-10; // 0x3dea39ef 35793c76
const TWO54 = 1.8014398509481984e16;
const LG1 = 6.666666666666735130e-1;
const LG2 = 3.999999999940941908e-1;
const LG3 = 2.857142874366239149e-1;
const LG4 = 2.222219843214978396e-1;
const LG5 = 1.818357216161805012e-1;
const LG6 = 1.531383769920937332e-1;
const LG7 = 1.479819860511658591e-1;

/** Natural logarithm (fdlibm __ieee754_log). */
export function log(x: number): number {
  let hx = hiWord(x);
  const lx = loWord(x);
  let k = 0;
  if (hx < 0x00100000) {
    // x < 2^-1022: zero, negative, or subnormal (scaled up into the normal range)
    if (((hx & 0x7fffffff) | lx) === 0) return -Infinity;
    if (hx < 0) return NaN;
    k -= 54;
    x *= TWO54;
    hx = hiWord(x);
  }
  if (hx >= 0x7ff00000) return x + x; // inf or NaN
  k += (hx >> 20) - 1023;
  hx &= 0x000fffff;
  const i0 = (hx + 0x95f64) & 0x100000;
  x = withHiWord(x, hx | (i0 ^ 0x3ff00000)); // x or x/2 in [sqrt(2)/2, sqrt(2))
  k += i0 >> 20;
  const f = x - 1.0;
  if ((0x000fffff & (2 + hx)) < 3) {
    // |f| < 2^-20
    if (f === 0) {
      if (k === 0) return 0;
      const dk = k;
      return dk * LN2_HI + dk * LN2_LO;
    }
    const R = f * f * (0.5 - 0.33333333333333333 * f);
    if (k === 0) return f - R;
    const dk = k;
    return dk * LN2_HI - (R - dk * LN2_LO - f);
  }
  const s = f / (2.0 + f);
  const dk = k;
  const z = s * s;
  let i = hx - 0x6147a;
  const w = z * z;
  const j = 0x6b851 - hx;
  const t1 = w * (LG2 + w * (LG4 + w * LG6));
  const t2 = z * (LG1 + w * (LG3 + w * (LG5 + w * LG7)));
  i |= j;
  const R = t2 + t1;
  if (i > 0) {
    const hfsq = 0.5 * f * f;
    if (k === 0) return f - (hfsq - s * (hfsq + R));
    return dk * LN2_HI - (hfsq - (s * (hfsq + R) + dk * LN2_LO) - f);
  }
  if (k === 0) return f - s * (f - R);
  return dk * LN2_HI - (s * (f - R) - dk * LN2_LO - f);
}

const O_THRESHOLD = 7.09782712893383973096e2;
const U_THRESHOLD = -7.45133219101941108420e2;
const TWOM1000 = 9.33263618503218878990e-302; // 2^-1000
const INV_LN2 = 1.44269504088896338700;
const P1 = 1.66666666666666019037e-1;
const P2 = -2.77777777770155933842e-3;
const P3 = 6.61375632143793436117e-5;
const P4 = -1.65339022054652515390e-6;
const P5 = 4.13813679705723846039e-8;

/** e^x (fdlibm __ieee754_exp). */
export function exp(x: number): number {
  let hx = hiWord(x);
  const xsb = (hx >>> 31) & 1;
  hx &= 0x7fffffff;
  if (hx >= 0x40862e42) {
    // |x| >= 709.78...
    if (hx >= 0x7ff00000) {
      if (((hx & 0xfffff) | loWord(x)) !== 0) return x + x; // NaN
      return xsb === 0 ? x : 0.0; // exp(+-inf) = inf, 0
    }
    if (x > O_THRESHOLD) return Infinity;
    if (x < U_THRESHOLD) return 0;
  }
  let hi = 0;
  let lo = 0;
  let k = 0;
  if (hx > 0x3fd62e42) {
    // |x| > 0.5 ln2: x = k ln2 + r, |r| <= 0.5 ln2
    if (hx < 0x3ff0a2b2) {
      // and |x| < 1.5 ln2
      hi = xsb === 0 ? x - LN2_HI : x + LN2_HI;
      lo = xsb === 0 ? LN2_LO : -LN2_LO;
      k = 1 - xsb - xsb;
    } else {
      k = Math.trunc(INV_LN2 * x + (xsb === 0 ? 0.5 : -0.5));
      hi = x - k * LN2_HI; // exact: k has at most 11 bits, LN2_HI's low 32 bits are zero
      lo = k * LN2_LO;
    }
    x = hi - lo;
  } else if (hx < 0x3e300000) {
    // |x| < 2^-28
    return 1 + x;
  }
  const t = x * x;
  const c = x - t * (P1 + t * (P2 + t * (P3 + t * (P4 + t * P5))));
  if (k === 0) return 1 - ((x * c) / (c - 2.0) - x);
  const y = 1 - (lo - (x * c) / (2.0 - c) - hi);
  if (k >= -1021) return withHiWord(y, hiWord(y) + (k << 20));
  return withHiWord(y, hiWord(y) + ((k + 1000) << 20)) * TWOM1000;
}

/**
 * x^y for x > 0 as exp(y log x) (NaN for x <= 0, which make-model never asks for). Not
 * correctly rounded: log's error and the product's rounding are scaled by |y ln x| through
 * exp, about 1 + 3 |y ln x| ulps (1e-14 relative for make-model's r^-alpha), which is
 * plenty for a firing probability; what matters is the same bits everywhere.
 */
export function pow(x: number, y: number): number {
  if (!(x > 0)) return NaN;
  if (y === 0 || x === 1) return 1;
  return exp(y * log(x));
}

/** x * 2^n, exactly (while the result is a normal number), by multiplying with powers of two. */
export function ldexp(x: number, n: number): number {
  if (!Number.isInteger(n)) throw new RangeError(`ldexp: exponent ${n} is not an integer`);
  while (n > 1023) {
    x *= 8.98846567431158e307; // 2^1023
    n -= 1023;
  }
  while (n < -1022) {
    x *= 2.2250738585072014e-308; // 2^-1022
    n += 1022;
  }
  return x * withHiWord(0, (n + 1023) << 20);
}

/** JS's Math.round (ties towards +infinity), named here for the C++ port's sake. */
export const roundHalfUp = Math.round;
