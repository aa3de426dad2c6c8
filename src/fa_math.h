/*
 * exp and expm1 of x <= 0, branch-free so that loops calling them vectorise
 * (libm's are scalar calls), for ELU on float compute types, whose result is
 * then rounded once to float.
 *
 * Both reduce x = k ln2 + r with |r| <= ln2 / 2 and use
 *   expm1(x) = 2^k expm1(r) - (1 - 2^k),   exp(x) = 2^k expm1(r) + 2^k,
 * where 1 - 2^k is exact and no cancellation occurs for x <= 0.  NaN gives
 * NaN (callers select it away anyway).
 */
#ifndef FASTACT_MATH_H
#define FASTACT_MATH_H

#include <stdint.h>
#include <string.h>

#define FA_LN2_HI 6.93147180369123816490e-01 /* fdlibm: 32 significant bits */
#define FA_LN2_LO 1.90821492927058770002e-10
#define FA_INV_LN2 1.44269504088896338700e+00
#define FA_EXP_FLOOR -700.0
#define FA_ROUND_MAGIC 0x1.8p52 /* adding it rounds to an integer, kept in the low bits */

/*
 * In double, ~2e-14 relative from the exact value (for ELU's gradient, whose
 * product with two floats must be good to a half ulp of float): Cody and
 * Waite's two-part ln2, so k ln2 is exact, and expm1(r) by its Taylor series
 * to r^11 / 11!.  x below -700 is clamped (2^k stays a normal double;
 * exp(-700) times any product of two floats still rounds to 0 in float32)
 * and exp returns 0 there, so that exp(-inf) * inf is NaN as it should be.
 */

/* expm1(r) for the reduced argument; *scale = 2^k */
static inline double fa_expm1_reduced(double x, double *scale)
{
    x = x < FA_EXP_FLOOR ? FA_EXP_FLOOR : x;
    const double t = x * FA_INV_LN2 + FA_ROUND_MAGIC;
    const double k = t - FA_ROUND_MAGIC;
    uint64_t bits;
    memcpy(&bits, &t, sizeof bits);
    bits = (bits + 1023) << 52;          /* k sits in the low bits of t */
    memcpy(scale, &bits, sizeof bits);
    const double r = (x - k * FA_LN2_HI) - k * FA_LN2_LO;
    return r * (1.0 + r * (1.0 / 2 + r * (1.0 / 6 + r * (1.0 / 24 + r * (1.0 / 120
           + r * (1.0 / 720 + r * (1.0 / 5040 + r * (1.0 / 40320 + r * (1.0 / 362880
           + r * (1.0 / 3628800 + r * (1.0 / 39916800)))))))))));
}

static inline double fa_exp_nonpos(double x)
{
    double scale;
    const double p = fa_expm1_reduced(x, &scale);
    return x < FA_EXP_FLOOR ? 0.0 : scale * p + scale;
}

/*
 * expm1 of a float x <= 0, as a double within ~2e-9 relative of the exact
 * value: enough for ELU's float32 result, alpha * expm1(x) rounded once, to
 * stay within one ulp of the exact value rounded (the error is far below the
 * half ulp, 3e-8, that rounding allows).  Cheaper than the double version: k
 * and 2^k come from float arithmetic, only r = x - k ln2 and the final
 * combination are double, and the series beyond r (r^2 (1/2 + r/6 + ...),
 * at most 0.07 for |r| <= ln2 / 2) is summed in float with Estrin's scheme,
 * which float's 16 lanes per vector do twice as fast and whose short
 * dependency chains keep the units busy.  x below -87 is clamped: 2^k stays
 * a normal float, and expm1 rounds to -1 there anyway.
 */
static inline double fa_expm1_nonpos_f(float x)
{
    x = x < -87.0f ? -87.0f : x;
    const float t = x * 1.44269504f + 0x1.8p23f;     /* rounds x / ln2 to k */
    const float k = t - 0x1.8p23f;
    uint32_t bits;
    memcpy(&bits, &t, sizeof bits);
    bits = (bits + 127) << 23;                       /* k sits in the low bits */
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    const double r = (double)x - (double)k * 0x1.62e42fefa39efp-1;
    const float rf = (float)r, r2 = rf * rf, r4 = r2 * r2;
    const float q = ((1.0f / 2 + rf * (1.0f / 6)) + r2 * (1.0f / 24 + rf * (1.0f / 120)))
                    + r4 * ((1.0f / 720 + rf * (1.0f / 5040)) + r2 * (1.0f / 40320));
    const double p = r + (double)(r2 * q);           /* expm1(r) */
    const double s = (double)scale;
    return s * p - (1.0 - s);   /* a subtraction keeps expm1(-0.0) == -0.0 */
}

#endif
