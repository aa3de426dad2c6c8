/*
 * The serial building blocks each ISA provides, and the table the drivers
 * dispatch through.  Pointers are untyped so one driver serves every dtype;
 * each table holds the functions of one dtype and one ISA.
 *
 *   run: n contiguous elements sharing one slope (*slope)
 *   vec: n contiguous elements, element j with slope slopes[j]
 *   "inplace" variants write into their first operand; the others take
 *   outputs that do not overlap their inputs.
 *   unary_*: the family's elementwise ops (src/ops.h) over n elements, op and
 *   its 3 parameters (as double; rounded to the compute type inside).
 * Slopes are held in the compute type (float for float16 and bfloat16), of
 * size csize.
 *   streaming: use non-temporal stores for the output.
 *
 * The backward kernels add x * g where not (x > 0) into float64 sums with a
 * fixed association (lane k of FA_LANES sums elements k, k + FA_LANES, ...
 * in order), so the result does not depend on the ISA, the alignment or the
 * thread count.
 */
#ifndef FASTACT_KERNELS_H
#define FASTACT_KERNELS_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#define FA_LANES 16
/* the most elements of a row of slopes along the contiguous axis (prelu.c's
 * tiles): the w of the vec kernels is at most this */
#define FA_TILE_W 1024

typedef struct {
    size_t elsize;      /* bytes of an element in memory */
    size_t csize;       /* bytes of the compute type (slopes, expand_slopes) */
    void (*fwd_run)(const void *x, const void *slope, void *y, int64_t n, int streaming);
    void (*fwd_run_inplace)(void *xy, const void *slope, int64_t n);
    /* prelu's forward, or affine_prelu's where scale is not NULL, over the
     * planes [p0, p0 + np) of inner elements each (plane p is of channel
     * p % channels), in place when y == x, unstreamed: fwd_run (affine_run)
     * without a call per plane, for many small planes */
    void (*fwd_planes)(const void *x, const void *slopes, const void *scale,
                       const void *shift, void *y, int64_t p0, int64_t np,
                       int64_t channels, int64_t inner);
    void (*fwd_vec)(const void *x, const void *slopes, void *y, int64_t n);
    void (*fwd_vec_inplace)(void *xy, const void *slopes, int64_t n);
    double (*bwd_run)(const void *g, const void *x, const void *slope, void *gi,
                      int64_t n, int streaming);
    double (*bwd_run_inplace)(void *g, const void *x, const void *slope, int64_t n);
    /* a small call's planes (outer, channels, inner) in order, in place when
     * gi == g, unstreamed: each plane's sum (bwd_run's) added to
     * grad_slopes[channel] */
    void (*bwd_planes)(const void *g, const void *x, const void *slopes, void *gi,
                       double *grad_slopes, int64_t outer, int64_t channels,
                       int64_t inner);
    /* rows contiguous rows of w elements; acc and slopes: w values, w at
     * most FA_TILE_W */
    void (*bwd_vec)(const void *g, const void *x, const void *slopes, void *gi,
                    double *acc, int64_t w, int64_t rows);
    void (*bwd_vec_inplace)(void *g, const void *x, const void *slopes,
                            double *acc, int64_t w, int64_t rows);
    /* sv[k * inner + i] = slopes[k] for k < nchan, i < inner */
    void (*expand_slopes)(const void *slopes, int64_t nchan, int64_t inner, void *sv);
    /* affine_prelu (ops.h): run: n elements of one channel, params = its
     * (scale, shift, slope); vec: element j with scale[j], shift[j] and
     * slopes[j]; all in the compute type */
    void (*affine_run)(const void *x, const void *params, void *y, int64_t n,
                       int streaming);
    void (*affine_run_inplace)(void *xy, const void *params, int64_t n);
    void (*affine_vec)(const void *x, const void *scale, const void *shift,
                       const void *slopes, void *y, int64_t n);
    void (*affine_vec_inplace)(void *xy, const void *scale, const void *shift,
                               const void *slopes, int64_t n);
    void (*unary_fwd)(int op, const double *params, const void *x, void *y,
                      int64_t n, int streaming);
    void (*unary_fwd_inplace)(int op, const double *params, void *xy, int64_t n);
    void (*unary_bwd)(int op, const double *params, const void *g, const void *x,
                      void *gi, int64_t n, int streaming);
    void (*unary_bwd_inplace)(int op, const double *params, void *g, const void *x,
                              int64_t n);
} fa_kernels;

/* The table of dtype (FA_DT_*, src/ops.h) for the active ISA (dispatch.c). */
const fa_kernels *fa_kernels_for(int dtype);

/* Whether all n sums are finite: the check after a pass of scaled slope
 * terms (kernels_impl.h's FA_SCALED_TERM), which is redone unscaled where
 * one is not. */
static inline int fa_all_finite(const double *v, int64_t n)
{
    int finite = 1;
    for (int64_t i = 0; i < n; i++) { /* not hot: once per kernel call */
        finite &= isfinite(v[i]) != 0;
    }
    return finite;
}

/* Lane sums combined pairwise in a fixed order.  Unrolled to the end, so
 * that the sums stay in registers: a loop over the widths kept them on the
 * stack, where loads of halves of vector stores stall (a small call's planes
 * each paid it). */
static inline double fa_sum_lanes(const double lane[FA_LANES])
{
    double s[FA_LANES];
#pragma GCC unroll 16
    for (int k = 0; k < FA_LANES; k++) {
        s[k] = lane[k];
    }
#pragma GCC unroll 4
    for (int width = FA_LANES / 2; width >= 1; width /= 2) {
#pragma GCC unroll 8
        for (int k = 0; k < width; k++) {
            s[k] = s[k] + s[k + width];
        }
    }
    return s[0];
}

#endif
