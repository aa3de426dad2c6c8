/*
 * The elementwise activations of the family, one scalar definition each,
 * shared by the CPU kernels (plain C, vectorised by the compiler) and the
 * CUDA kernels (src/cuda).  These few lines are the semantics; the float64
 * oracles in fastact/_reference.py implement the same table.
 *
 * Every op is y = f(x; p) forward and grad_input = g * f'(x; p) backward,
 * where f' is the derivative of the branch f takes at x (the "negative" side
 * at a kink, 0 at and above max_value).  Branches are written as selects, not
 * as products with 0 or 1, so that inf and NaN in the unused branch never
 * leak into the result.
 *
 * Parameters arrive as the p[0..2] of fa_params, already validated and held
 * in the compute type (float for float32/float16/bfloat16, double for
 * float64):
 *   FA_OP_LEAKY_RELU   p0 = negative_slope
 *   FA_OP_RELU         p0 = negative_slope, p1 = max_value (+inf: none),
 *                      p2 = threshold (Keras's relu; relu6, thresholded_relu)
 *   FA_OP_RELU_PLAIN   none: max(x, 0) with NaN kept (relu's fast case)
 *   FA_OP_ELU          p0 = alpha
 *   FA_OP_SQUARE       none
 *   FA_OP_ELU_OUTPUT   backward only, p0 = alpha > 0: the gradient read off
 *                      the output y = elu(x) (after an in-place forward):
 *                      y > 0 ? g : g * (y + alpha)
 */
#ifndef FASTACT_OPS_H
#define FASTACT_OPS_H

#if defined(__CUDACC__)
#define FA_HD __host__ __device__ __forceinline__
#else
#define FA_HD static inline
#endif

enum {
    FA_OP_LEAKY_RELU = 0,
    FA_OP_RELU = 1,
    FA_OP_RELU_PLAIN = 2,
    FA_OP_ELU = 3,
    FA_OP_SQUARE = 4,
    FA_OP_ELU_OUTPUT = 5,
    FA_OP_COUNT = 6
};

/* Element types, the same codes on the CPU and the GPU.  float16 and
 * bfloat16 are computed in float32 and rounded once to the type. */
enum {
    FA_DT_F32 = 0,
    FA_DT_F64 = 1,
    FA_DT_F16 = 2,
    FA_DT_BF16 = 3,
    FA_DT_COUNT = 4
};

/* The op's parameters as the caller gives them (float64); the kernels
 * round them once to their compute type. */
typedef struct {
    double p[3];
} fa_params;

/*
 * The definitions, generic over the compute type T (float or double), as
 * macros so that one text serves C and CUDA, float and double.  `expm1_`
 * and `exp_` name the exponential functions of the compute type.
 */

/* leaky_relu: x > 0 ? x : a * x  (NaN takes the slope's branch, as torch) */
#define FA_LEAKY_F(x, a) ((x) > 0 ? (x) : (a) * (x))
#define FA_LEAKY_B(g, x, a) ((x) > 0 ? (g) : (a) * (g))

/*
 * relu (Keras and torch, with the strict comparison both really compute):
 *   max_value                  for x >= max_value
 *   negative_slope * (x - t)   for x <= t  (exactly 0 when negative_slope == 0)
 *   x                          otherwise, NaN included
 * max_value +inf means none: x = +inf then takes the identity's gradient, 1
 * (m - m == 0 holds exactly for finite m).
 */
#define FA_RELU_F(x, ns, m, t) \
    ((x) >= (m) ? (m) : ((x) <= (t) ? ((ns) == 0 ? 0 : (ns) * ((x) - (t))) : (x)))
#define FA_RELU_B(g, x, ns, m, t) \
    ((x) >= (m) && (m) - (m) == 0 ? 0 : ((x) <= (t) ? ((ns) == 0 ? 0 : (ns) * (g)) : (g)))

/* relu's common case: x <= 0 ? 0 : x (-0.0 and -inf give +0.0, NaN stays) */
#define FA_RELU_PLAIN_F(x) ((x) <= 0 ? 0 : (x))
#define FA_RELU_PLAIN_B(g, x) ((x) <= 0 ? 0 : (g))

/* elu: x <= 0 ? alpha * expm1(x) : x; gradient alpha * exp(x) there (torch).
 * scaled_expm1_(x, alpha) is alpha * expm1(x) for x < 0 (the function decides
 * how it rounds); at x = +-0 the value is alpha * x, so that the sign of
 * zero does not depend on how expm1 treats -0.0. */
#define FA_ELU_F(x, alpha, scaled_expm1_) \
    ((x) > 0 ? (x) : ((x) < 0 ? scaled_expm1_(x, alpha) : (alpha) * (x)))
#define FA_ELU_B(g, x, alpha, exp_) ((x) <= 0 ? (g) * ((alpha) * exp_(x)) : (g))
#define FA_ELU_OUTPUT_B(g, y, alpha) ((y) <= 0 ? (g) * ((y) + (alpha)) : (g))

/* square: x * x; gradient 2x */
#define FA_SQUARE_F(x) ((x) * (x))
#define FA_SQUARE_B(g, x) ((g) * ((x) + (x)))

#endif
