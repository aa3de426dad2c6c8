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

#include <float.h>
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
 * arithmetic with fused multiply-adds, for the lanes of
 * x >= fa_elu_grad_xmin_f(alpha) (below it alpha * exp(x) nears float's
 * subnormals, and the callers use fa_elu_grad_dbl_f).  With
 * x = (8k + j) ln2/8 + r, j in 0..7:
 *   - k8 = 8k + j = round(8x / ln2) (the rounding trick; x is clamped to
 *     [-86, 0], so that 2^k >= 2^-125 is a normal float), j its low three
 *     bits; r0 = x - k8 ln2_8 exact (an FMA, ln2_8 = ln2/8 rounded to 21
 *     bits), rl = k8 (ln2_8 - ln2/8) its correction (|rl| <= 2^-22), and
 *     r = r0 + rl rounded, |r| <= 0.0434 (an eighth of the usual range: a
 *     shorter polynomial, and fewer bits to carry);
 *   - e^(r0 + rl) = 1 + r0 + q, q = rl + r^2 c(r), c the Taylor polynomial
 *     of (e^r - 1 - r) / r^2 to r^3 (error below 2^-36); |q| <= 0.001, so
 *     its roundings stay below 2^-34;
 *   - alpha 2^(j/8) = ah + al to 2^-48, from fa_elu_grad_entry_f (in
 *     double): the vector path looks the pair up in fa_elu_grad_table_f's
 *     table, made once per call, the scalar path makes its one entry, so
 *     both give the same bits;
 *   - alpha 2^(j/8) (1 + r0 + q) = hi + lo: hi = ah (1 + r0) rounded by an
 *     FMA, e its rounding error by a second FMA (ah - hi is exact), and
 *     lo = ah q + al r0 + al + e, whose roundings are below 2^-30 of the sum;
 *   - both parts scaled by 2^k (exact: they stay normal above xmin), and g
 *     times them summed by one final FMA.
 * Where g times the small part is not finite (g infinite or NaN, or a
 * product far past float's range) it is clamped to float's range (NaN, from
 * inf * 0, to -FLT_MAX), so that g * sh decides, being then infinite or NaN
 * itself: left as it is, inf * 0 and inf - inf would make NaN, and an
 * overflow could take the wrong sign.  (Two selects, where a test for
 * infinity took three operations in a row.)  A zero g gives a zero whose
 * sign can differ from the product's.
 * tools/elu_grad_accuracy.c measures the relative error on every negative
 * float32 above xmin for several alphas (largest 2^-31.6), and checks the
 * vector path against the scalar one bit for bit.
 */
#define FA_LN2_8_F 0x1.62e430p-4f  /* ln2/8 to 21 bits: k8 ln2_8 is exact */
#define FA_LN2_8_LO 0x1.05c610p-32f /* ln2_8 - ln2/8 */
/* 1.5 * 2^23 + 8 * 127: the rounding trick's constant, with float's exponent
 * bias in the eighths (the shift in fa_elu_grad_parts_f drops the bits
 * above them) */
#define FA_ELU_GRAD_MAGIC 0x1.8007f0p23f

/* alpha * 2^(j/8) = *ah + *al for j in 0..7, an entry of fa_elu_grad_f's
 * table: 2^(j/8) as a product of 2^(1/8), 2^(1/4) and 2^(1/2) picked by j's
 * bits (within 2^-50; selects, not a table in memory, so that loops calling
 * this vectorise) */
FA_HD void fa_elu_grad_entry_f(float alpha, unsigned j, float *ah, float *al)
{
    const double t = (j & 1 ? 0x1.172b83c7d517bp+0 : 1.0) * (j & 2 ? 0x1.306fe0a31b715p+0 : 1.0) *
                     (j & 4 ? 0x1.6a09e667f3bcdp+0 : 1.0);
    *ah = (float)((double)alpha * t);
    *al = (float)fma((double)alpha, t, -(double)*ah);
}

/* the whole table for alpha, as fa_elu_grad_v takes it: the eight ah, then
 * the eight al */
FA_HD void fa_elu_grad_table_f(float alpha, float table[16])
{
    for (unsigned j = 0; j < 8; j++) { /* not hot: once per call */
        fa_elu_grad_entry_f(alpha, j, &table[j], &table[8 + j]);
    }
}

/* alpha * exp(x) = *sh + *sl, for fa_elu_grad_f (and tools/elu_grad_accuracy.c) */
FA_HD void fa_elu_grad_parts_f(float x, float alpha, float *sh, float *sl)
{
    /* in this order, so that the lanes of x > 0 and NaN, computed and then
     * not selected, take 0 (where compilers merge these selects with the
     * caller's x <= 0, the other order gave them -86 and subnormal
     * products, each a microcode assist: twice the time on random data) */
    x = x < -86.0f ? -86.0f : x;
    x = x < 0.0f ? x : 0.0f;
    /* rounds 8x / ln2 to k8, leaving 8 * 127 + k8 in t's low bits */
    const float t = fmaf(x, 0x1.715476p+3f, FA_ELU_GRAD_MAGIC);
    const float k8 = t - FA_ELU_GRAD_MAGIC;
    uint32_t bits;
    memcpy(&bits, &t, sizeof bits);
    const unsigned j = bits & 7;                             /* k8's low bits */
    bits = (bits >> 3) << 23;                                /* 2^k, k = (k8 - j) / 8 */
    float s;
    memcpy(&s, &bits, sizeof s);
    const float r0 = fmaf(k8, -FA_LN2_8_F, x);
    const float rl = k8 * FA_LN2_8_LO;
    const float r = r0 + rl;
    const float r2 = r * r;
    const float c = fmaf(r2, fmaf(r, 0x1.111112p-7f, 0x1.555556p-5f),
                         fmaf(r, 0x1.555556p-3f, 0.5f)); /* Estrin: a shorter chain */
    const float q = fmaf(r2, c, rl);
    float ah, al;
    fa_elu_grad_entry_f(alpha, j, &ah, &al);
    const float hi = fmaf(ah, r0, ah);
    const float e = fmaf(ah, r0, ah - hi);                   /* ah (1 + r0) = hi + e */
    const float lo = fmaf(ah, q, fmaf(al, r0, al + e));
    *sh = hi * s;
    *sl = lo * s;
}

FA_HD float fa_elu_grad_f(float g, float x, float alpha)
{
    float sh, sl;
    fa_elu_grad_parts_f(x, alpha, &sh, &sl);
    /* clamped to float's range (NaN to -FLT_MAX): g * sh then decides */
    float tail = g * sl;
    tail = tail > -FLT_MAX ? tail : -FLT_MAX;
    tail = tail < FLT_MAX ? tail : FLT_MAX;
    return fmaf(g, sh, tail);
}

/*
 * ELU's backward on a vector of lanes: x <= 0 ? fa_elu_grad_f(g, x, alpha)
 * : g, the same operations in the same order, so the same bits, with the
 * table looked up by a permute (the compilers vectorise the scalar
 * function's lookup, if at all, as a gather: several times slower).  One
 * body for the widths, through fa_v (FA_V(op) is the intrinsic _mm<w>_op):
 *   FA_ELU_GRAD_LANES  the lanes (16 with AVX-512F, 8 with AVX2 and FMA; 1:
 *                      no vector path)
 *   fa_v_table8(t)     t's 8 floats, in both halves with AVX-512F, whose
 *                      permute takes 4 index bits (k8's lowest 3 pick)
 *   fa_v_permute       lane j of a table of 8, by the low bits of the index
 *   fa_v_select_le0    g where x <= 0 is false, else v
 * ah_table and al_table: fa_elu_grad_table_f's two halves, by fa_v_table8.
 */
#if defined(__AVX512F__) && defined(__FMA__) && !defined(__CUDACC__)
#include <immintrin.h>
#define FA_ELU_GRAD_LANES 16
typedef __m512 fa_v;
typedef __m512i fa_vi;
#define FA_V(op) _mm512_##op
#define fa_v_bits _mm512_castps_si512
#define fa_v_from_bits _mm512_castsi512_ps
static inline fa_v fa_v_table8(const float *t)
{
    return _mm512_castpd_ps(_mm512_broadcast_f64x4(_mm256_castps_pd(_mm256_loadu_ps(t))));
}
#define fa_v_permute(table, index) _mm512_permutexvar_ps((index), (table))
#define fa_v_select_le0(x, g, v) \
    _mm512_mask_blend_ps(_mm512_cmp_ps_mask((x), _mm512_setzero_ps(), _CMP_LE_OQ), (g), (v))
#elif defined(__AVX2__) && defined(__FMA__) && !defined(__CUDACC__)
#include <immintrin.h>
#define FA_ELU_GRAD_LANES 8
typedef __m256 fa_v;
typedef __m256i fa_vi;
#define FA_V(op) _mm256_##op
#define fa_v_bits _mm256_castps_si256
#define fa_v_from_bits _mm256_castsi256_ps
#define fa_v_table8 _mm256_loadu_ps
#define fa_v_permute(table, index) _mm256_permutevar8x32_ps((table), (index))
#define fa_v_select_le0(x, g, v) \
    _mm256_blendv_ps((g), (v), _mm256_cmp_ps((x), _mm256_setzero_ps(), _CMP_LE_OQ))
#else
#define FA_ELU_GRAD_LANES 1
#endif

#if FA_ELU_GRAD_LANES > 1
static inline fa_v fa_elu_grad_v(fa_v g, fa_v x, fa_v ah_table, fa_v al_table)
{
    /* min(x, 0) in this operand order is the scalar select, NaN to 0
     * included; the clamp to -86 changes none of the x >= xmin this is for */
    const fa_v xc = FA_V(min_ps)(x, FA_V(setzero_ps)());
    const fa_v magic = FA_V(set1_ps)(FA_ELU_GRAD_MAGIC);
    const fa_v t = FA_V(fmadd_ps)(xc, FA_V(set1_ps)(0x1.715476p+3f), magic);
    const fa_v k8 = FA_V(sub_ps)(t, magic);
    const fa_vi bits = fa_v_bits(t);
    const fa_v s = fa_v_from_bits(FA_V(slli_epi32)(FA_V(srli_epi32)(bits, 3), 23));
    const fa_v r0 = FA_V(fmadd_ps)(k8, FA_V(set1_ps)(-FA_LN2_8_F), xc);
    const fa_v rl = FA_V(mul_ps)(k8, FA_V(set1_ps)(FA_LN2_8_LO));
    const fa_v r = FA_V(add_ps)(r0, rl);
    const fa_v r2 = FA_V(mul_ps)(r, r);
    const fa_v c = FA_V(fmadd_ps)(
        r2, FA_V(fmadd_ps)(r, FA_V(set1_ps)(0x1.111112p-7f), FA_V(set1_ps)(0x1.555556p-5f)),
        FA_V(fmadd_ps)(r, FA_V(set1_ps)(0x1.555556p-3f), FA_V(set1_ps)(0.5f)));
    const fa_v q = FA_V(fmadd_ps)(r2, c, rl);
    const fa_v ah = fa_v_permute(ah_table, bits); /* by j, the low 3 bits */
    const fa_v al = fa_v_permute(al_table, bits);
    const fa_v hi = FA_V(fmadd_ps)(ah, r0, ah);
    const fa_v e = FA_V(fmadd_ps)(ah, r0, FA_V(sub_ps)(ah, hi));
    const fa_v lo = FA_V(fmadd_ps)(ah, q, FA_V(fmadd_ps)(al, r0, FA_V(add_ps)(al, e)));
    const fa_v sh = FA_V(mul_ps)(hi, s), sl = FA_V(mul_ps)(lo, s);
    const fa_v tail = FA_V(min_ps)(FA_V(max_ps)(FA_V(mul_ps)(g, sl), FA_V(set1_ps)(-FLT_MAX)),
                                   FA_V(set1_ps)(FLT_MAX));
    return fa_v_select_le0(x, g, FA_V(fmadd_ps)(g, sh, tail));
}
#endif

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
