/*
 * expm1 and exp of x <= 0 in double, branch-free so that loops calling them
 * vectorise (libm's are scalar calls).  Used for ELU on float compute types:
 * the result is ~1e-13 relative from the exact value, far inside the half
 * ulp of float32 that rounding it once then costs.
 *
 * x = k ln2 + r with |r| <= ln2 / 2 (Cody and Waite's two-part ln2, so k ln2
 * is exact), expm1(r) by its Taylor series to r^11 / 11!, and
 *   expm1(x) = 2^k expm1(r) - (1 - 2^k),   exp(x) = 2^k expm1(r) + 2^k,
 * where 1 - 2^k is exact and no cancellation occurs for x <= 0.  x below
 * -700 is clamped (2^k stays a normal double; exp(-700) times any product of
 * two floats still rounds to 0 in float32) and exp returns 0 there, so that
 * exp(-inf) * inf is NaN as it should be; expm1(-inf) is -1.  NaN gives NaN
 * (callers select it away anyway).
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

static inline double fa_expm1_nonpos(double x)
{
    double scale;
    const double p = fa_expm1_reduced(x, &scale);
    return scale * p - (1.0 - scale);   /* a subtraction keeps expm1(-0.0) == -0.0 */
}

static inline double fa_exp_nonpos(double x)
{
    double scale;
    const double p = fa_expm1_reduced(x, &scale);
    return x < FA_EXP_FLOOR ? 0.0 : scale * p + scale;
}

#endif
