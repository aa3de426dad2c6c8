/*
 * exp and expm1 of x <= 0, branch-free so that loops calling them vectorise
 * (libm's are scalar calls), for ELU on float compute types, whose result is
 * then rounded once to float: exp in double for the gradient, alpha * expm1
 * in float for the forward.
 *
 * Both reduce x = k ln2 + r (each with its own range for r) and use
 *   expm1(x) = 2^k expm1(r) - (1 - 2^k),   exp(x) = 2^k expm1(r) + 2^k,
 * where no cancellation occurs for x <= 0.  NaN gives NaN (callers select it
 * away anyway).
 */
#ifndef FASTACT_MATH_H
#define FASTACT_MATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* Shared by the C kernels and the CUDA kernels: on the GPU these are the
 * same functions, so that both compute the same bits. */
#if defined(__CUDACC__)
#define FA_HD static __host__ __device__ __forceinline__
#else
#define FA_HD static inline
#endif

#define FA_LN2_HI 6.93147180369123816490e-01 /* fdlibm: 32 significant bits */
#define FA_LN2_LO 1.90821492927058770002e-10
#define FA_INV_LN2 1.44269504088896338700e+00
#define FA_EXP_FLOOR -745.5 /* below -1075 ln2 = -745.133..., exp(x) rounds to 0 */
#define FA_ROUND_MAGIC 0x1.8p52 /* adding it rounds to an integer, kept in the low bits */

/*
 * In double, ~2e-14 relative from the exact value (for ELU's gradient, whose
 * product with two floats must be good to a half ulp of float): Cody and
 * Waite's two-part ln2, so k ln2 is exact, and expm1(r) by its Taylor series
 * to r^11 / 11!.  exp is right down to its last subnormal: 2^k is built as
 * 2^(k + 54), a normal double for every k >= -1076, and the result scaled by
 * 2^-54 at the end (exact, or one rounding where the result is subnormal,
 * below x = -708.4).  That matters where the gradient is inf * exp(x), which
 * is inf for every x >= -745.13 (the float64 kernels and the oracle say so),
 * not inf * 0.  Below FA_EXP_FLOOR, where exp(x) rounds to 0, the lanes
 * compute exp(0) and select 0: no lane makes a subnormal there (each costs a
 * microcode assist), and exp(-inf) * inf is NaN as it should be.  Lanes of
 * x > 0 compute a value the callers select away (for x > 673 it can be
 * subnormal: slow for such lanes, never wrong).
 */

/* expm1(r) for the reduced argument of x >= FA_EXP_FLOOR; *scale = 2^(k + 54) */
FA_HD double fa_expm1_reduced(double x, double *scale)
{
    const double t = x * FA_INV_LN2 + FA_ROUND_MAGIC;
    const double k = t - FA_ROUND_MAGIC;
    uint64_t bits;
    memcpy(&bits, &t, sizeof bits);
    bits = (bits + 1023 + 54) << 52;     /* k sits in the low bits of t */
    memcpy(scale, &bits, sizeof bits);
    const double r = (x - k * FA_LN2_HI) - k * FA_LN2_LO;
    return r * (1.0 + r * (1.0 / 2 + r * (1.0 / 6 + r * (1.0 / 24 + r * (1.0 / 120
           + r * (1.0 / 720 + r * (1.0 / 5040 + r * (1.0 / 40320 + r * (1.0 / 362880
           + r * (1.0 / 3628800 + r * (1.0 / 39916800)))))))))));
}

FA_HD double fa_exp_nonpos(double x)
{
    const int below = x < FA_EXP_FLOOR;
    double scale;
    const double p = fa_expm1_reduced(below ? 0.0 : x, &scale);
    const double e = (scale * p + scale) * 0x1p-54;
    return below ? 0.0 : e;
}

/*
 * alpha * expm1(x) for a float x < 0 and a finite, nonzero alpha (see
 * fa_alpha_is_ordinary_f), rounded once to float and within one ulp of the
 * exact value rounded, in float arithmetic with fused multiply-adds (fmaf:
 * one instruction where the ISA has FMA, the C library's exact software
 * version elsewhere, so every ISA gives the same bits).  With x = k ln2 + r:
 *   - x is clamped to [-17.4, 0]: below -17.4, e^x < 2^-25 and alpha
 *     expm1(x) rounds to -alpha, which the clamped value gives too;
 *   - k = round(x * 45/32) by a rounding trick, 45/32 a little below 1/ln2
 *     so that k >= -24 on the clamped range: then 1 - 2^k is exact.  r lies
 *     in [-0.356 - 0.018 |k|, 0.356 - 0.018 |k|];
 *   - r = x - k ln2_f is exact (an FMA of ln2 rounded to float).  ln2's
 *     remaining 2^-29 is left out: it would move the result by under 0.05
 *     ulp (2^k e^r |k| 2^-29, largest at k = -1);
 *   - expm1(r) = r + u with u = r^2 q(r), q a degree-5 polynomial fitted to
 *     (e^r - 1 - r) / r^2 on [-0.43, 0.36] (relative error 2^-27, float
 *     coefficients; Horner's scheme): u is at most 0.09, and 2^k scales its
 *     few roundings down with the result;
 *   - alpha expm1(x) = alpha (2^k r - (1 - 2^k)) + alpha 2^k u, with
 *     2^k r - (1 - 2^k) split exactly into hi + lo (a Fast2Sum: |1 - 2^k| is
 *     the larger or 0), so that only the small tail is rounded before the
 *     final fmaf(alpha, hi, alpha * tail).
 * Checked against the exact value on every negative float32 for several
 * alphas by tools/elu_accuracy.c (tests/test_family.py checks samples).  The clamps also keep every
 * intermediate a normal float: subnormals cost a microcode assist each.
 */
FA_HD float fa_scaled_expm1_f(float x, float alpha)
{
    const float ln2_f = 0x1.62e430p-1f;
    /* the lanes of x >= 0 and NaN, computed and then not selected, take
     * -17.4 too (with this order, compilers merge the two selects) */
    x = x < 0.0f ? x : 0.0f;
    x = x < -17.4f ? -17.4f : x;
    const float t = fmaf(x, 1.40625f, 0x1.8p23f);          /* rounds x * 45/32 to k */
    const float k = t - 0x1.8p23f;
    uint32_t bits;
    memcpy(&bits, &t, sizeof bits);
    bits = (bits + 127) << 23;                               /* k sits in the low bits */
    float s;
    memcpy(&s, &bits, sizeof s);
    const float r = fmaf(k, -ln2_f, x);
    const float q = fmaf(r, fmaf(r, fmaf(r, fmaf(r, fmaf(r, 0x1.94f4p-13f, 0x1.6d5626p-10f),
                                                  0x1.11183p-7f), 0x1.5554e8p-5f),
                                 0x1.555552p-3f), 0.5f);
    const float u = (r * r) * q;
    const float c = 1.0f - s;                                /* exact: k >= -24 */
    const float a = s * r;
    const float hi = a - c;
    const float lo = a - (hi + c);                           /* hi + lo == a - c exactly */
    const float tail = fmaf(s, u, lo);
    return fmaf(alpha, hi, alpha * tail);
}

/*
 * The alphas fa_scaled_expm1_f does not take: 0, infinite (a float64
 * parameter past float32's range) or NaN.  There the sum above would say
 * inf - inf or +0.0, while the product alpha * expm1(x), expm1(x) in
 * [-1, 0), is exactly alpha * -1 as IEEE signs it.  The kernels test alpha
 * once per call, outside their loops.
 */
FA_HD int fa_alpha_is_ordinary_f(float alpha)
{
    return alpha - alpha == 0 && alpha != 0;
}

FA_HD float fa_scaled_expm1_special_f(float x, float alpha)
{
    (void)x;
    return -alpha;
}

/*
 * ELU's gradient g * alpha * exp(x) for float g, x <= 0 and alpha, rounded
 * once to float from a value within 2^-29 of the exact one relative (so
 * within one ulp of the exact value rounded, for every g), in float
 * arithmetic with fused multiply-adds: eight lanes per AVX2 vector where the
 * float64 exp took four, at over twice the speed.  For the lanes of
 * x >= fa_elu_grad_xmin_f(alpha) (below it alpha * exp(x) nears float's
 * subnormals, and the callers use fa_elu_grad_dbl_f).  With x = k ln2 + r:
 *   - k = round(x / ln2) (the rounding trick; x is clamped to [-86, 0], so
 *     that 2^k is a normal float), r = x - k ln2_f exact (an FMA, ln2_f
 *     having 21 bits) and rl = -k (ln2 - ln2_f) its small correction;
 *   - e^(r + rl) = (1 + r + r^2/2 + r^3 q(r)) (1 + rl), q the Taylor
 *     polynomial of (e^r - 1 - r - r^2/2) / r^3 to r^5 (error below 2^-32
 *     on |r| <= ln2/2), as a float sum hi + lo: 1 + r and + r^2/2 are each
 *     split exactly (Fast2Sum, r^2 by an FMA), so that only terms below
 *     0.008 are rounded;
 *   - alpha (hi + lo) split again (an FMA gives alpha * hi's rounding
 *     error), both parts scaled by 2^k (exact: they stay normal above
 *     xmin), and g times them summed by one final FMA.
 * Where g times the small part is not finite (g infinite or NaN, or a
 * product far past float's range) it is left out, so that g * sh alone
 * decides: inf * 0 and inf - inf would make NaN, an overflow of the wrong
 * sign.  A zero g gives a zero whose sign can differ from the product's.  tools/elu_accuracy.c measures the relative error on every
 * negative float32 above xmin for several alphas.
 */
/* alpha * exp(x) = *sh + *sl, for fa_elu_grad_f (and tools/elu_accuracy.c) */
FA_HD void fa_elu_grad_parts_f(float x, float alpha, float *sh, float *sl)
{
    const float ln2_f = 0x1.62e430p-1f;
    const float ln2_lo = -0x1.05c610p-29f;                 /* ln2 - ln2_f */
    /* in this order, so that the lanes of x > 0 and NaN, computed and then
     * not selected, take 0 (where compilers merge these selects with the
     * caller's x <= 0, the other order gave them -86 and subnormal
     * products, each a microcode assist: twice the time on random data) */
    x = x < -86.0f ? -86.0f : x;
    x = x < 0.0f ? x : 0.0f;
    const float t = fmaf(x, 0x1.715476p+0f, 0x1.8p23f);     /* rounds x / ln2 to k */
    const float k = t - 0x1.8p23f;
    uint32_t bits;
    memcpy(&bits, &t, sizeof bits);
    bits = (bits + 127) << 23;                               /* k sits in the low bits */
    float s;
    memcpy(&s, &bits, sizeof s);
    const float r = fmaf(k, -ln2_f, x);
    const float rl = k * -ln2_lo;
    const float q = fmaf(r, fmaf(r, fmaf(r, fmaf(r, fmaf(r, 0x1.a01a02p-16f, 0x1.a01a02p-13f),
                                                  0x1.6c16c2p-10f), 0x1.111112p-7f),
                                 0x1.555556p-5f), 0x1.555556p-3f);
    const float r2 = r * r;
    const float r2l = fmaf(r, r, -r2);                       /* r^2 = r2 + r2l exactly */
    const float u = (r2 * r) * q;
    const float s1 = 1.0f + r;
    const float e1 = (1.0f - s1) + r;                        /* 1 + r = s1 + e1 */
    const float h = 0.5f * r2;
    const float s2 = s1 + h;
    const float e2 = (s1 - s2) + h;                          /* s1 + h = s2 + e2 */
    const float lo = fmaf(rl, s2, (e1 + e2) + fmaf(0.5f, r2l, u));
    const float ah = alpha * s2;
    const float al = fmaf(alpha, lo, fmaf(alpha, s2, -ah));  /* alpha (s2 + lo) = ah + al */
    *sh = ah * s;
    *sl = al * s;
}

FA_HD float fa_elu_grad_f(float g, float x, float alpha)
{
    float sh, sl;
    fa_elu_grad_parts_f(x, alpha, &sh, &sl);
    float tail = g * sl;
    tail = fabsf(tail) < INFINITY ? tail : 0.0f;
    return fmaf(g, sh, tail);
}

/*
 * Below this x (and for every x when alpha is 0, not finite or beyond
 * 2^+-100: then +inf), fa_elu_grad_f does not hold its bound: alpha * exp(x)
 * is below 2^-99 or 2^k would not be normal.  From alpha's exponent e
 * (|alpha| >= 2^e): -(99 + e) * 0.6931 lies above -(99 + e) ln2, so above it
 * |alpha| exp(x) >= 2^-99.
 */
FA_HD float fa_elu_grad_xmin_f(float alpha)
{
    uint32_t bits;
    memcpy(&bits, &alpha, sizeof bits);
    const int e = (int)((bits >> 23) & 0xff) - 127;
    if (!(e >= -100 && e < 100)) {
        return INFINITY;
    }
    const float m = (float)-(99 + e) * 0.6931f;
    return m > -86.0f ? m : -86.0f;
}

/* the same gradient from a float64 exp, rounded once: for the lanes below
 * fa_elu_grad_xmin_f (right down to exp's subnormals, and where alpha is 0
 * or infinite IEEE's products) */
FA_HD float fa_elu_grad_dbl_f(float g, float x, float alpha)
{
    return (float)((double)g * ((double)alpha * fa_exp_nonpos((double)x)));
}

#endif
