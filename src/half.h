/*
 * float16 and bfloat16 <-> float32 conversions: element functions in plain
 * C, and whole tiles (below), which use the CPU's float16 conversions where
 * the ISA being compiled has them.
 *
 * The element functions are branch-free integer and float arithmetic, so
 * that the compiler vectorises loops around them for every ISA.  Both
 * directions are exact IEEE conversions: widening is exact, and narrowing
 * rounds to nearest, ties to even, with overflow to inf, gradual underflow
 * to subnormals and zero, and NaN made the quiet NaN of its sign (float16
 * 0x7E00, bfloat16 0x7FC0, as ml_dtypes gives).  They need round-to-nearest float arithmetic without contraction
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

/* v where x > 0 is false (NaN included), +0.0 where it is true */
static inline float fa_unless_positive_f(float x, float v)
{
    const uint32_t keep = (uint32_t)0 - (uint32_t)!(x > 0);
    return fa_bits_to_f32(fa_f32_to_bits(v) & keep);
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

/* NaN becomes the quiet NaN 0x7FC0 with its sign, as in ml_dtypes (and
 * Eigen): the payload is dropped, as fa_f32_to_f16 drops it */
static inline uint16_t fa_f32_to_bf16(float f)
{
    const uint32_t u = fa_f32_to_bits(f);
    const uint32_t rounded = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
    const uint32_t nan = ((u >> 16) & 0x8000u) | 0x7FC0u;
    return (uint16_t)((u & 0x7FFFFFFFu) > 0x7F800000u ? nan : rounded);
}

/* --- whole tiles --------------------------------------------------------
 *
 * The kernels convert their float16 and bfloat16 operands a tile at a time
 * (kernels_impl.h), with these: n elements from h into f (widen) or from f
 * into h (narrow), with the same results as the element functions above.
 * Where the unit's target has them (its compile macros say so), float16
 * uses the CPU's conversions: F16C's vcvtph2ps and vcvtps2ph (8 lanes) or
 * AVX-512F's (16 lanes), rounding to nearest even whatever MXCSR says, and
 * NaN made the one quiet NaN of its sign as fa_f32_to_f16 makes it.  The
 * instruction keeps the top of a NaN's payload and sets the quiet bit, so a
 * NaN result is 0x7E00-0x7FFF, or 0xFE00-0xFFFF with the sign: a signed
 * 16-bit min with 0x7E00 clears the positive ones (negative lanes are below
 * it as signed numbers), then an unsigned min with 0xFE00 the negative ones
 * (every other result is below both bounds); a tail of fewer lanes and other
 * targets use the element functions, in loops the compiler vectorises.
 * bfloat16 has no conversion before AVX512-BF16, whose vcvtneps2bf16 flushes
 * subnormal inputs to zero (not IEEE rounding, so not used): widening is a
 * 16-bit shift; narrowing, the rounding add, NaN select and pack of
 * fa_f32_to_bf16, is written with intrinsics, as the compiler's own
 * vectorisation of it took half as many instructions again.  With AVX-512F
 * on 16 lanes in order (zero extension and shift; the rounding on 32-bit
 * lanes, then vpmovdw), the width of the op's vectors, so that the tile's
 * vectors pass between the loops in registers: the AVX2 code's 8-lane
 * stores, reloaded as 16-lane vectors, cost a failed store forwarding each
 * (on AMD Zen 5, in cache, 5.8x the time of this code per element).  With
 * AVX2 on 8 lanes, the NaN select only for 16 lanes that hold a NaN.
 */
#if defined(__AVX512F__) || defined(__F16C__) || defined(__AVX2__)
#include <immintrin.h>
#endif

/* FA_NARROW_NT_<suffix>: 1 where fa_narrow_<suffix> with nt set writes
 * whole vectors with streaming stores (then h must be aligned to them and
 * n a multiple of 16; the caller fences); elsewhere nt changes nothing. */
#if defined(__AVX512F__) || defined(__F16C__)
#define FA_NARROW_NT_f16 1
#else
#define FA_NARROW_NT_f16 0
#endif
#if defined(__AVX2__)
#define FA_NARROW_NT_bf16 1
#else
#define FA_NARROW_NT_bf16 0
#endif

/* Inlined into every tile (a few vectors): with the tile's length a
 * constant, the compiler then keeps the converted vectors in registers
 * between these loops and the op's. */
#if defined(__GNUC__) || defined(__clang__)
#define FA_TILE_FN static inline __attribute__((always_inline, unused))
#else
#define FA_TILE_FN static inline
#endif

FA_TILE_FN void fa_widen_f16(const uint16_t *restrict h, float *restrict f, int64_t n)
{
    int64_t i = 0;
#if defined(__AVX512F__)
    for (; i + 16 <= n; i += 16) {
        const __m256i v = _mm256_loadu_si256((const __m256i *)(h + i));
        _mm512_storeu_ps(f + i, _mm512_cvtph_ps(v));
    }
#elif defined(__F16C__)
    for (; i + 8 <= n; i += 8) {
        const __m128i v = _mm_loadu_si128((const __m128i *)(h + i));
        _mm256_storeu_ps(f + i, _mm256_cvtph_ps(v));
    }
#endif
    for (; i < n; i++) { /* the tail, or every element without F16C */
        f[i] = fa_f16_to_f32(h[i]);
    }
}

FA_TILE_FN void fa_narrow_f16(const float *restrict f, uint16_t *restrict h, int64_t n, int nt)
{
    int64_t i = 0;
    (void)nt; /* without the vector path: ordinary stores */
#if defined(__AVX512F__)
    const __m256i pos_nan = _mm256_set1_epi16(0x7E00), neg_nan = _mm256_set1_epi16(-0x200);
    for (; i + 16 <= n; i += 16) {
        const __m256i r = _mm512_cvtps_ph(_mm512_loadu_ps(f + i),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        const __m256i v = _mm256_min_epu16(_mm256_min_epi16(r, pos_nan), neg_nan);
        if (nt)
            _mm256_stream_si256((__m256i *)(h + i), v);
        else
            _mm256_storeu_si256((__m256i *)(h + i), v);
    }
#elif defined(__F16C__)
    const __m128i pos_nan = _mm_set1_epi16(0x7E00), neg_nan = _mm_set1_epi16(-0x200);
    for (; i + 8 <= n; i += 8) {
        const __m128i r = _mm256_cvtps_ph(_mm256_loadu_ps(f + i),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        const __m128i v = _mm_min_epu16(_mm_min_epi16(r, pos_nan), neg_nan);
        if (nt)
            _mm_stream_si128((__m128i *)(h + i), v);
        else
            _mm_storeu_si128((__m128i *)(h + i), v);
    }
#endif
    for (; i < n; i++) { /* the tail, or every element without F16C */
        h[i] = fa_f32_to_f16(f[i]);
    }
}

FA_TILE_FN void fa_widen_bf16(const uint16_t *restrict h, float *restrict f, int64_t n)
{
    int64_t i = 0;
#if defined(__AVX512F__)
    for (; i + 16 <= n; i += 16) {
        const __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(h + i)));
        _mm512_storeu_si512(f + i, _mm512_slli_epi32(w, 16));
    }
#endif
    for (; i < n; i++) { /* the tail, or every element without AVX-512F */
        f[i] = fa_bf16_to_f32(h[i]);
    }
}

#if defined(__AVX512F__)
/* fa_f32_to_bf16 on 16 lanes: NaN replaced by the quiet NaN of its sign
 * (one masked ternary op: (u & sign) | quiet), which the rounding add then
 * leaves as it is, then vpmovdw */
static inline __m256i fa_bf16_narrow16(__m512 v)
{
    const __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    const __m512i w = _mm512_mask_ternarylogic_epi32(_mm512_castps_si512(v), nan,
                                                     _mm512_set1_epi32(INT32_MIN),
                                                     _mm512_set1_epi32(0x7FC00000), 0xEA);
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(w, 16), _mm512_set1_epi32(1));
    const __m512i r = _mm512_srli_epi32(
        _mm512_add_epi32(_mm512_add_epi32(w, _mm512_set1_epi32(0x7FFF)), lsb), 16);
    return _mm512_cvtepi32_epi16(r);
}
#endif

#if defined(__AVX2__)
/* fa_f32_to_bf16 on 8 lanes, as 32-bit lanes, of which none is NaN: the
 * rounding add (a NaN's payload could carry into its exponent and sign) */
static inline __m256i fa_bf16_round8(__m256i w)
{
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(w, 16), _mm256_set1_epi32(1));
    return _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(w, _mm256_set1_epi32(0x7FFF)),
                                              lsb), 16);
}

/* NaN replaced by the quiet NaN of its sign, which the rounding add then
 * leaves as it is */
static inline __m256i fa_bf16_quieten8(__m256 v)
{
    const __m256i u = _mm256_castps_si256(v);
    const __m256i quiet = _mm256_or_si256(_mm256_and_si256(u, _mm256_set1_epi32(INT32_MIN)),
                                          _mm256_set1_epi32(0x7FC00000));
    return _mm256_castps_si256(
        _mm256_blendv_ps(v, _mm256_castsi256_ps(quiet), _mm256_cmp_ps(v, v, _CMP_UNORD_Q)));
}

/* fa_f32_to_bf16 on the 16 lanes of lo and hi, packed: the pack takes
 * 128-bit halves in turn, so the result holds lo's lanes 0-3, hi's 0-3,
 * lo's 4-7, hi's 4-7 */
static inline __m256i fa_bf16_pack16(__m256 lo, __m256 hi)
{
    const __m256 nan = _mm256_or_ps(_mm256_cmp_ps(lo, lo, _CMP_UNORD_Q),
                                    _mm256_cmp_ps(hi, hi, _CMP_UNORD_Q));
    /* NaN is rare: one test for 16 lanes, and the select only where one is
     * NaN (both branches give fa_f32_to_bf16's bits) */
    __m256i rlo, rhi;
    if (_mm256_testz_ps(nan, nan)) {
        rlo = fa_bf16_round8(_mm256_castps_si256(lo));
        rhi = fa_bf16_round8(_mm256_castps_si256(hi));
    } else {
        rlo = fa_bf16_round8(fa_bf16_quieten8(lo));
        rhi = fa_bf16_round8(fa_bf16_quieten8(hi));
    }
    return _mm256_packus_epi32(rlo, rhi);
}

static inline void fa_store16(uint16_t *h, __m256i v, int nt)
{
    if (nt)
        _mm256_stream_si256((__m256i *)h, v);
    else
        _mm256_storeu_si256((__m256i *)h, v);
}
#endif

FA_TILE_FN void fa_narrow_bf16(const float *restrict f, uint16_t *restrict h, int64_t n, int nt)
{
    int64_t i = 0;
    (void)nt; /* without the vector path: ordinary stores */
#if defined(__AVX512F__)
    for (; i + 16 <= n; i += 16) {
        fa_store16(h + i, fa_bf16_narrow16(_mm512_loadu_ps(f + i)), nt);
    }
#elif defined(__AVX2__)
    for (; i + 16 <= n; i += 16) {
        /* the pack's order of 64-bit quarters put back in the array's */
        fa_store16(h + i, _mm256_permute4x64_epi64(
                              fa_bf16_pack16(_mm256_loadu_ps(f + i), _mm256_loadu_ps(f + i + 8)),
                              0xD8), nt);
    }
#endif
    for (; i < n; i++) { /* the tail, or every element without AVX2 */
        h[i] = fa_f32_to_bf16(f[i]);
    }
}

/* --- tiles in any order ----------------------------------------------------
 *
 * For the tiles whose elements are independent of one another (an op with
 * the same parameters for every element: kernels_impl.h's FA_IN_ANY_ORDER),
 * widening may put the elements in the buffer in another order, as long as
 * narrowing puts them back: fa_widen_any_order_<suffix> and
 * fa_narrow_any_order_<suffix> agree on it for every n.  bfloat16 with AVX2
 * orders each 16 elements as the unpack and pack instructions do, within
 * 128-bit halves (0-3, 8-11, then 4-7, 12-15), which saves the widening's
 * shifts and the narrowing's permute across halves (a quarter of a
 * forward's time in cache); the tail, fewer than 16, stays in order.
 * float16's conversion instructions keep the order, as bfloat16's do with
 * AVX-512F and without AVX2.
 */
#define fa_widen_any_order_f16 fa_widen_f16
#define fa_narrow_any_order_f16 fa_narrow_f16
/* FA_ANY_ORDER_ELEMENT_<suffix>(j): which element of its 16 the buffer holds
 * at position j (an involution: the position of element j too) */
#define FA_ANY_ORDER_ELEMENT_f16(j) (j)
#if defined(__AVX2__) && !defined(__AVX512F__)
#define FA_ANY_ORDER_ELEMENT_bf16(j) (((j) & 3) | ((j) & 4) << 1 | ((j) & 8) >> 1 | ((j) & ~15))

FA_TILE_FN void fa_widen_any_order_bf16(const uint16_t *restrict h, float *restrict f,
                                        int64_t n)
{
    int64_t i = 0;
    const __m256i zero = _mm256_setzero_si256();
    for (; i + 16 <= n; i += 16) {
        /* a bfloat16 as the high half of a 32-bit lane is its float */
        const __m256i v = _mm256_loadu_si256((const __m256i *)(h + i));
        _mm256_storeu_si256((__m256i *)(f + i), _mm256_unpacklo_epi16(zero, v));
        _mm256_storeu_si256((__m256i *)(f + i + 8), _mm256_unpackhi_epi16(zero, v));
    }
    for (; i < n; i++) { /* the tail */
        f[i] = fa_bf16_to_f32(h[i]);
    }
}

FA_TILE_FN void fa_narrow_any_order_bf16(const float *restrict f, uint16_t *restrict h,
                                         int64_t n, int nt)
{
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        fa_store16(h + i, fa_bf16_pack16(_mm256_loadu_ps(f + i), _mm256_loadu_ps(f + i + 8)),
                   nt);
    }
    for (; i < n; i++) { /* the tail */
        h[i] = fa_f32_to_bf16(f[i]);
    }
}
#else
#define FA_ANY_ORDER_ELEMENT_bf16(j) (j)
#define fa_widen_any_order_bf16 fa_widen_bf16
#define fa_narrow_any_order_bf16 fa_narrow_bf16
#endif

#endif
