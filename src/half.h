/*
 * float16 and bfloat16 <-> float32 conversions in plain C.
 *
 * Branch-free integer and float arithmetic, so that the compiler vectorises
 * the kernels' loops around them for every ISA (the F16C instructions would
 * tie the float16 kernels to one ISA and bfloat16 has none before AVX-512
 * BF16).  Both directions are exact IEEE conversions: widening is exact, and
 * narrowing rounds to nearest, ties to even, with overflow to inf, gradual
 * underflow to subnormals and zero, and NaN kept as a quiet NaN of the same
 * sign.  They need round-to-nearest float arithmetic without contraction
 * (-ffp-contract=off, no -ffast-math), which the build guarantees.
 *
 * The float16 conversions follow the well-known magic-number construction
 * (as in the FP16 library by M. Dukhan): widening rebiases the exponent with
 * a multiply by 2^-112 (subnormals come from a subtraction instead);
 * narrowing lets the float adder do the rounding at the right bit position.
 */
#ifndef FASTACT_HALF_H
#define FASTACT_HALF_H

#include <stdint.h>
#include <string.h>

static inline float fa_bits_to_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline uint32_t fa_f32_to_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float fa_f16_to_f32(uint16_t h)
{
    const uint32_t w = (uint32_t)h << 16;
    const uint32_t sign = w & 0x80000000u;
    const uint32_t two_w = w + w;                   /* exponent and mantissa, sign dropped */
    /* normal, inf and NaN: move exponent/mantissa into place, rebias by 2^-112 */
    const float normal = fa_bits_to_f32((two_w >> 4) + (0xE0u << 23)) * 0x1.0p-112f;
    /* subnormal: mantissa as the low bits of 0.5's mantissa, minus 0.5 */
    const float subnormal = fa_bits_to_f32((two_w >> 17) | (126u << 23)) - 0.5f;
    const uint32_t mag = two_w < (1u << 27) ? fa_f32_to_bits(subnormal)
                                            : fa_f32_to_bits(normal);
    return fa_bits_to_f32(sign | mag);
}

static inline uint16_t fa_f32_to_f16(float f)
{
    const uint32_t w = fa_f32_to_bits(f);
    const uint32_t shl1_w = w + w;
    const uint32_t sign = w & 0x80000000u;
    /* |f| scaled so that overflow becomes inf and the value sits where the
     * adder below rounds it to float16's precision */
    float base = (fa_bits_to_f32(shl1_w >> 1) * 0x1.0p+112f) * 0x1.0p-110f;
    uint32_t bias = shl1_w & 0xFF000000u;
    bias = bias < 0x71000000u ? 0x71000000u : bias;
    base = fa_bits_to_f32((bias >> 1) + 0x07800000u) + base;
    const uint32_t bits = fa_f32_to_bits(base);
    const uint32_t nonsign = ((bits >> 13) & 0x00007C00u) + (bits & 0x00000FFFu);
    return (uint16_t)((sign >> 16) | (shl1_w > 0xFF000000u ? 0x7E00u : nonsign));
}

static inline float fa_bf16_to_f32(uint16_t h)
{
    return fa_bits_to_f32((uint32_t)h << 16);
}

static inline uint16_t fa_f32_to_bf16(float f)
{
    const uint32_t u = fa_f32_to_bits(f);
    const uint32_t rounded = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
    const uint32_t nan = (u >> 16) | 0x0040u;       /* quiet, sign kept */
    return (uint16_t)((u & 0x7FFFFFFFu) > 0x7F800000u ? nan : rounded);
}

#endif
