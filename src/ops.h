/*
 * The elementwise activations of the family: the op list and one scalar
 * definition of each op's forward and backward, shared by the CPU kernels
 * (src/kernels_impl.h, plain C the compiler vectorises) and the CUDA kernels
 * (src/cuda).  These few lines are the semantics; the float64 oracles in
 * fastact/_reference.py implement the same table.
 *
 * Every op is y = f(x; p) forward and grad_input = g * f'(x; p) backward,
 * where f' is the derivative of the branch f takes at x (the "negative" side
 * at a kink, 0 at and above max_value).  Branches are written as selects, not
 * as products with 0 or 1, so that inf and NaN in the unused branch never
 * leak into the result.
 *
 * Each op X(NAME, name, HEAVY) of FA_OPS has
 *   FA_OP_NAME                  its code (the enum below),
 *   FA_NAME_FWD(x, p0, p1, p2)  y for x,
 *   FA_NAME_BWD(g, x, p0, p1, p2)  grad_input for grad_output g at x,
 * x, g and the parameters p0..p2 in the compute type C (float for float32,
 * float16 and bfloat16, double for float64); a definition's value is C, or
 * double where it is rounded once to C after a float64 computation.  HEAVY:
 * 1 for compute-bound ops (the CPU kernels prefetch their input by hand).
 * The parameters arrive as double, validated by the caller, and are rounded
 * once to C:
 *   leaky_relu   p0 = negative_slope
 *   relu         p0 = negative_slope, p1 = max_value (+inf: none),
 *                p2 = threshold (Keras's relu; relu6, thresholded_relu)
 *   relu_plain   none: max(x, 0) with NaN kept (relu's fast case)
 *   elu          p0 = alpha
 *   square       none
 *   hardtanh     p0 = min_val, p1 = max_val (min_val <= max_val)
 *   elu_output   backward only (FA_BACKWARD_ONLY_OPS), p0 = alpha > 0: the
 *                gradient read off the output y = elu(x) (after an in-place
 *                forward), the x argument being y
 * Adding an op: one X entry and its two definitions here; the C and CUDA
 * kernels expand them.
 *
 * The definitions are macros, generic over C, so that one text serves C and
 * CUDA, float and double.  They may call the compute type's
 *   FA_SCALED_EXPM1(x, a)   a * expm1(x) for x < 0
 *   FA_ELU_GRAD(g, x, a)    g * a * exp(x) for x <= 0, rounded once from a
 *                           value within 2^-25 relative (within an ulp)
 * which the including code names (fa_math.h's functions for float, libm's
 * for double).
 */
#ifndef FASTACT_OPS_H
#define FASTACT_OPS_H

#include "fa_math.h"

#define FA_OPS(X)                   \
    X(LEAKY_RELU, leaky_relu, 0)    \
    X(RELU, relu, 0)                \
    X(RELU_PLAIN, relu_plain, 0)    \
    X(ELU, elu, 1)                  \
    X(SQUARE, square, 0)            \
    X(HARDTANH, hardtanh, 0)
#define FA_BACKWARD_ONLY_OPS(X)     \
    X(ELU_OUTPUT, elu_output, 0)

#define FA_OP_ENUM_(NAME, name, heavy) FA_OP_##NAME,
enum { FA_OPS(FA_OP_ENUM_) FA_BACKWARD_ONLY_OPS(FA_OP_ENUM_) FA_OP_COUNT };
#undef FA_OP_ENUM_
/* the ops with a forward come first: codes below FA_OP_FORWARD_COUNT */
#define FA_OP_ONE_(NAME, name, heavy) +1
enum { FA_OP_FORWARD_COUNT = 0 FA_OPS(FA_OP_ONE_) };
#undef FA_OP_ONE_

/* Element types, the same codes on the CPU and the GPU.  float16 and
 * bfloat16 are computed in float32 and rounded once to the type. */
enum {
    FA_DT_F32 = 0,
    FA_DT_F64 = 1,
    FA_DT_F16 = 2,
    FA_DT_BF16 = 3,
    FA_DT_COUNT = 4
};

/* leaky_relu: x > 0 ? x : a * x  (NaN takes the slope's branch, as torch) */
#define FA_LEAKY_RELU_FWD(x, a, p1, p2) ((x) > 0 ? (x) : (a) * (x))
#define FA_LEAKY_RELU_BWD(g, x, a, p1, p2) ((x) > 0 ? (g) : (a) * (g))

/* affine_prelu (a BatchNorm folded into PReLU, fa_affine_prelu_forward):
 * t = x * scale + shift, rounded after the product and after the sum (the
 * build keeps a * b + c from becoming an FMA: -ffp-contract=off), then
 * leaky_relu(t; a).  Forward only. */
#define FA_AFFINE_PRELU_FWD(x, scale, shift, a) \
    FA_LEAKY_RELU_FWD((x) * (scale) + (shift), a, 0, 0)

/*
 * relu (Keras and torch, with the strict comparison both really compute):
 *   max_value                  for x >= max_value
 *   negative_slope * (x - t)   for x <= t  (exactly 0 when negative_slope == 0)
 *   x                          otherwise, NaN included
 * max_value +inf means none: x = +inf then takes the identity's gradient, 1
 * (m - m == 0 holds exactly for finite m).
 */
#define FA_RELU_FWD(x, ns, m, t) \
    ((x) >= (m) ? (m) : ((x) <= (t) ? ((ns) == 0 ? 0 : (ns) * ((x) - (t))) : (x)))
#define FA_RELU_BWD(g, x, ns, m, t) \
    ((x) >= (m) && (m) - (m) == 0 ? 0 : ((x) <= (t) ? ((ns) == 0 ? 0 : (ns) * (g)) : (g)))

/* relu's common case: x <= 0 ? 0 : x (-0.0 and -inf give +0.0, NaN stays) */
#define FA_RELU_PLAIN_FWD(x, p0, p1, p2) ((x) <= 0 ? 0 : (x))
#define FA_RELU_PLAIN_BWD(g, x, p0, p1, p2) ((x) <= 0 ? 0 : (g))

/* elu: x <= 0 ? alpha * expm1(x) : x; gradient g * alpha * exp(x) there
 * (torch).  FA_SCALED_EXPM1 decides how alpha * expm1(x) rounds; at x = +-0
 * the value is alpha * x, so that the sign of zero does not depend on how
 * expm1 treats -0.0.  FA_ELU_GRAD rounds the gradient once. */
#define FA_ELU_FWD(x, alpha, p1, p2) \
    ((x) > 0 ? (x) : ((x) < 0 ? FA_SCALED_EXPM1(x, alpha) : (alpha) * (x)))
#define FA_ELU_BWD(g, x, alpha, p1, p2) ((x) <= 0 ? FA_ELU_GRAD(g, x, alpha) : (g))

/* elu_output: y <= 0 ? g * (y + alpha) : g, in double, rounded once */
#define FA_ELU_OUTPUT_BWD(g, y, alpha, p1, p2) \
    ((y) <= 0 ? (double)(g) * ((double)(y) + (double)(alpha)) : (double)(g))

/* square: x * x; gradient g * 2x rounded once: g * (x + x), x + x being
 * exact, except where x + x overflows (|x| >= max / 2; the test is false for
 * inf and NaN too): there (g * x) * 2, g * x being normal (or 0) for such x,
 * so doubling it is exact */
#define FA_SQUARE_FWD(x, p0, p1, p2) ((x) * (x))
#define FA_SQUARE_BWD(g, x, p0, p1, p2) \
    ((x) + (x) - (x) == (x) ? (g) * ((x) + (x)) : (g) * (x) * 2)

/* hardtanh (torch): lo where x < lo, hi where x > hi, else x (NaN and the
 * sign of zero kept); gradient g strictly inside (lo, hi) and for NaN, 0 at
 * and beyond both kinks */
#define FA_HARDTANH_FWD(x, lo, hi, p2) ((x) < (lo) ? (lo) : ((x) > (hi) ? (hi) : (x)))
#define FA_HARDTANH_BWD(g, x, lo, hi, p2) ((x) <= (lo) || (x) >= (hi) ? 0 : (g))

#endif
