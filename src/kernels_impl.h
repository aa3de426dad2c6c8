/*
 * The serial kernels of one dtype, compiled once per ISA: kernels_isa.h
 * (included by kernels_<isa>.c, which sets the target and names the ISA
 * FA_ISA) defines FA_DTYPE(X) as
 *   X(suffix, element type, compute type, compute type is double, tiled,
 *     product scale)
 * includes this file, and gets the static table FA_NAME(table).  Read off
 * FA_DTYPE here are
 *   FA_T          the element type in memory,
 *   FA_C          the compute type (float for float16 and bfloat16),
 *   FA_C_IS_DOUBLE  1 for float64,
 *   FA_TILED      1 where FA_T is not FA_C (float16, bfloat16): the loops
 *                 run over tiles converted by half.h's fa_widen_<suffix> and
 *                 fa_narrow_<suffix> (see "tiles" below),
 *   FA_PRODUCT_SCALE_EXP  k >= 0 where the product of two elements, one of
 *                 them scaled by 2^k, is exact in the compute type unless it
 *                 overflows (float16's in float with k = 0: 22 significant
 *                 bits, within float's normal range; bfloat16's with k = 117,
 *                 see FA_SCALED_TERM), -1 where it is not (float32),
 *   FA_EXACT_PRODUCTS  1 where k = 0, FA_SCALED_PRODUCTS 1 where k > 0,
 *   FA_NAME(name) a unique name for this dtype and ISA (name_suffix_isa).
 * Slopes and parameters are held in FA_C.  The end of this file undefines
 * them and FA_DTYPE, for the next dtype.
 *
 * Plain C loops the compiler vectorises, made possible without changing
 * results by the flags setup.py passes (EXACTNESS_FLAGS and SPEED_FLAGS,
 * each documented there): -fno-trapping-math lets `x > 0 ? x : a * x`
 * compute a * x on every lane (NaN, inf and signed zeros behave the same);
 * -ffp-contract=off keeps a * b + c from becoming an FMA, so every ISA
 * rounds the same way (FMAs are written as fmaf where wanted: exact
 * everywhere); -fno-thread-jumps stops gcc from splitting the in-place loops
 * on x > 0 into a path whose store it then drops (a conditional store SSE2
 * cannot vectorise); -fno-tree-loop-distribute-patterns keeps loops of plain
 * copies loops rather than calls to memcpy; -fno-math-errno lets fmaf become
 * an instruction (fastact never reads errno).  tools/check_vectorization.py
 * checks that every innermost loop here is vectorised for every ISA.
 *
 * The ops are those of src/ops.h, expanded from its list FA_OPS: one loop
 * skeleton per kernel shape (fwd_loop, bwd_loop), instantiated per op with
 * the op a constant.
 */
#include <math.h>
#include <string.h>

#include "kernels.h"
#include "ops.h"
#include "stream.h"

#ifndef FA_ALWAYS_INLINE
/* FA_ALWAYS_INLINE: the skeletons, inlined so that their op and in-place
 * flags are constants.  FA_KERNEL: each op's kernels, kept whole (one call
 * per block or call, not per element), so that they stay small and
 * tools/check_vectorization.py can name the op of each loop. */
#if defined(__GNUC__) || defined(__clang__)
#define FA_ALWAYS_INLINE static inline __attribute__((always_inline))
#define FA_KERNEL static __attribute__((noinline))
#else
#define FA_ALWAYS_INLINE static inline
#define FA_KERNEL static
#endif
/* FA_NO_CARRIED_DEPS, before a loop: no iteration reads what another
 * writes (an element may be read and then written by its own iteration, as
 * in place), so the loop needs no run-time overlap check */
#if defined(__clang__)
#define FA_NO_CARRIED_DEPS _Pragma("clang loop vectorize(assume_safety)")
#elif defined(__GNUC__)
#define FA_NO_CARRIED_DEPS _Pragma("GCC ivdep")
#else
#define FA_NO_CARRIED_DEPS
#endif
#endif

#ifndef FA_DT_SUFFIX_
#define FA_DT_SUFFIX_(suffix, t, c, c_is_double, tiled, scale) suffix
#define FA_DT_T_(suffix, t, c, c_is_double, tiled, scale) t
#define FA_DT_C_(suffix, t, c, c_is_double, tiled, scale) c
#define FA_DT_C_IS_DOUBLE_(suffix, t, c, c_is_double, tiled, scale) c_is_double
#define FA_DT_TILED_(suffix, t, c, c_is_double, tiled, scale) tiled
#define FA_DT_PRODUCT_SCALE_(suffix, t, c, c_is_double, tiled, scale) scale
#endif
#define FA_T FA_DTYPE(FA_DT_T_)
#define FA_C FA_DTYPE(FA_DT_C_)
#define FA_C_IS_DOUBLE FA_DTYPE(FA_DT_C_IS_DOUBLE_)
#define FA_TILED FA_DTYPE(FA_DT_TILED_)
#define FA_PRODUCT_SCALE_EXP FA_DTYPE(FA_DT_PRODUCT_SCALE_)
#define FA_EXACT_PRODUCTS (FA_PRODUCT_SCALE_EXP == 0)
#define FA_SCALED_PRODUCTS (FA_PRODUCT_SCALE_EXP > 0)
#define FA_NAME(name) FA_CAT(FA_CAT(name##_, FA_DTYPE(FA_DT_SUFFIX_)), FA_CAT(_, FA_ISA))

/* --- tiles ------------------------------------------------------------------
 *
 * Every loop below runs over arrays of the compute type, a tile at a time:
 *   FA_EACH_TILE(b, m, n, call)  runs call (an expression of b and m) for
 *                     each tile [b, b + m) of [0, n),
 *   FA_IN(k, p, m)    the tile's m inputs at p, as const FA_C *,
 *   FA_OUT(k, p)      where the tile's outputs (for p) are written,
 *   FA_FLUSH(k, p, m, nt) puts those m outputs at p (nt: with streaming
 *                     stores, for a streamed block; see FA_DIRECT_NT),
 *   FA_IN_ANY_ORDER, FA_FLUSH_ANY_ORDER  the same for tiles whose elements
 *                     are independent (no per-element parameter, no lanes):
 *                     the buffers may hold them in another order,
 * k naming one of the FA_TILE_BUFFERS(count) the tile's function declares.
 * For float32 and float64 the one tile is the whole run and the macros are
 * the pointers themselves (no copy).  For float16 and bfloat16 a tile is
 * FA_TILE elements (a few vectors), widened into a float buffer and
 * narrowed from one by half.h, with the CPU's conversion instructions
 * where the ISA has them.  Every tile but the last has exactly FA_TILE
 * elements, and FA_EACH_TILE gives it that m as a constant: the tile's op
 * loop is then the float32 loop with a constant trip count, which gcc
 * vectorises, unrolls, and joins with the inlined conversions, so that the
 * buffers vanish and each element goes from memory through registers to
 * memory (a tile buffer in L1, written and read back between three loops,
 * cost more than the conversions).  The last tile, shorter, runs the same
 * function with its m.  FA_TILE is a multiple of FA_LANES (the slope
 * gradient's lanes stay in step across tiles) and divides FA_BLOCK.
 */
#if FA_TILED
#define FA_TILE ((int64_t)32)
#define FA_TILE_BUFFERS(count) FA_ALIGNED(FA_LINE) FA_C fa_tile_[count][FA_TILE]
#define FA_EACH_TILE(b, m, n, call)                                         \
    do {                                                                    \
        int64_t b = 0;                                                      \
        for (; (n) - b >= FA_TILE; b += FA_TILE) { /* not hot: tiles */     \
            const int64_t m = FA_TILE;                                      \
            call;                                                           \
        }                                                                   \
        if (b < (n)) {                                                      \
            const int64_t m = (n) - b;                                      \
            call;                                                           \
        }                                                                   \
    } while (0)
#define FA_IN(k, p, m) \
    (FA_CAT(fa_widen_, FA_DTYPE(FA_DT_SUFFIX_))((p), fa_tile_[k], (m)), (const FA_C *)fa_tile_[k])
#define FA_OUT(k, p) (fa_tile_[k])
#define FA_FLUSH(k, p, m, nt) \
    FA_CAT(fa_narrow_, FA_DTYPE(FA_DT_SUFFIX_))(fa_tile_[k], (p), (m), (nt))
/* the same, for tiles whose elements are independent of one another: the
 * buffers may hold the elements in another order (half.h, "tiles in any
 * order"), the same for every operand of a tile */
#define FA_IN_ANY_ORDER(k, p, m)                                                 \
    (FA_CAT(fa_widen_any_order_, FA_DTYPE(FA_DT_SUFFIX_))((p), fa_tile_[k], (m)), \
     (const FA_C *)fa_tile_[k])
#define FA_FLUSH_ANY_ORDER(k, p, m, nt) \
    FA_CAT(fa_narrow_any_order_, FA_DTYPE(FA_DT_SUFFIX_))(fa_tile_[k], (p), (m), (nt))
/* which element of its 16 an FA_IN_ANY_ORDER buffer holds at position j
 * (and the position of element j) */
#define FA_ANY_ORDER_ELEMENT(j) FA_CAT(FA_ANY_ORDER_ELEMENT_, FA_DTYPE(FA_DT_SUFFIX_))(j)
_Static_assert(FA_LANES == 16 && FA_TILE % 16 == 0,
               "half.h orders tiles by 16 elements: the slope lanes follow that");
/* whether a streamed block's tiles narrow straight into the output with
 * streaming stores (FA_FLUSH's nt), rather than into a block in L1 copied
 * out by fa_stream_block: where half.h's narrowing has such stores */
#define FA_DIRECT_NT FA_CAT(FA_NARROW_NT_, FA_DTYPE(FA_DT_SUFFIX_))
#else
#define FA_TILE_BUFFERS(count) (void)0
/* one tile, the whole run: no loop (a loop run once left gcc's ELU loops
 * unvectorised in one of their instances) */
#define FA_EACH_TILE(b, m, n, call)                                         \
    do {                                                                    \
        const int64_t b = 0, m = (n);                                       \
        call;                                                               \
    } while (0)
#define FA_IN(k, p, m) ((const FA_C *)(p))
#define FA_OUT(k, p) (p)
#define FA_FLUSH(k, p, m, nt) (void)(nt)
#define FA_IN_ANY_ORDER(k, p, m) FA_IN(k, p, m)
#define FA_FLUSH_ANY_ORDER(k, p, m, nt) FA_FLUSH(k, p, m, nt)
#define FA_ANY_ORDER_ELEMENT(j) (j)
#define FA_DIRECT_NT 0
#endif

/* one element's share of the slope gradient, 0 where x > 0 (NaN in x
 * propagates): the product in float64, or where it is exact, in the
 * compute type and then widened (the same value, fewer conversions per
 * element).  For float, the zeroing is a mask on the float operands' bits
 * (fa_unless_positive_f): written as a select with a constant arm, gcc
 * moved it past the widening and widened the comparison's mask to the
 * double lanes, three more instructions per vector. */
#if FA_C_IS_DOUBLE
#define FA_SLOPE_TERM(xc, gc) ((xc) > 0 ? 0.0 : (xc) * (gc))
#elif FA_EXACT_PRODUCTS
#define FA_SLOPE_TERM(xc, gc) ((double)fa_unless_positive_f(xc, (xc) * (gc)))
#else
#define FA_SLOPE_TERM(xc, gc) \
    ((double)fa_unless_positive_f(xc, xc) * (double)fa_unless_positive_f(xc, gc))
#endif
/* the same term scaled by 2^FA_PRODUCT_SCALE_EXP, its product in the compute
 * type: for bfloat16, one float multiply and one widening where
 * FA_SLOPE_TERM has two widenings and a double multiply (the AVX2 backward's
 * slope terms were over a third of its instructions).  A bfloat16 value has
 * 8 significant bits and is a whole multiple of 2^-133, so x * 2^117 is
 * exact in float for |x| < 2^11, and (x * 2^117) * g, 16 significant bits
 * and a whole multiple of 2^-149 (float's smallest subnormal), is exact in
 * float unless it overflows (|x g| >= 2^11): then it is inf or NaN, as it is
 * for an inf or NaN input.  bwd_lanes_loop adds these terms into lanes
 * scaled alike, which is exact (every term and partial sum is a whole
 * multiple of 2^-266 unscaled, far inside double's normal range, where
 * scaling by a power of two commutes with rounding), and adds its piece's
 * terms again with FA_SLOPE_TERM where a lane comes out inf or NaN. */
/* the shortest plane worth scaling in a small call (bwd_planes): scaling,
 * checking and unscaling the lanes cost about 10 ns per plane, the scaled
 * terms save about 0.02 ns per element (AVX2, bfloat16, one thread: a
 * (1, 16, 8, 8) call took 4% longer scaled, a (1, 64, 56, 56) one 14% less) */
#define FA_SCALED_PLANE_MIN 512
/* the fewest rows worth scaling in a bwd_vec call: copying, scaling,
 * checking and unscaling its w sums are four passes over them (AVX2,
 * bfloat16, one thread: 4 rows of 1024 took 4% longer scaled, 8 rows about
 * the same) */
#define FA_SCALED_VEC_ROWS_MIN 16
#if FA_SCALED_PRODUCTS
#define FA_TERM_SCALE ldexp(1.0, FA_PRODUCT_SCALE_EXP)
#define FA_SCALED_TERM(xc, gc) \
    ((double)fa_unless_positive_f(xc, ((xc) * ldexpf(1.0f, FA_PRODUCT_SCALE_EXP)) * (gc)))
#else
#define FA_TERM_SCALE 1.0
#define FA_SCALED_TERM(xc, gc) FA_SLOPE_TERM(xc, gc)
#endif
/* elements per streamed block: a whole number of lines and of FA_LANES.
 * Small (8 lines) so that loads and streaming stores interleave finely:
 * 2 KiB blocks ran 20% below a streaming copy, 512 bytes match it. */
#define FA_BLOCK ((int64_t)(512 / sizeof(FA_T)))
/* elements of a whole line, and of FA_LANES: both powers of two */
#define FA_GRAIN ((int64_t)(FA_LINE / sizeof(FA_T) > FA_LANES ? FA_LINE / sizeof(FA_T) : FA_LANES))
/* the next block's length when rem elements are left: FA_BLOCK, or the whole
 * grains (whole lines) of a shorter rest, so that only a tail of less than a
 * line is written with ordinary stores (a partly written line costs a read
 * for ownership) */
#define FA_STREAM_LEN(rem) ((rem) >= FA_BLOCK ? FA_BLOCK : (rem) / FA_GRAIN * FA_GRAIN)

/* --- the compute type's exponentials (ops.h) ------------------------------
 *
 * float: fa_math.h's vectorisable alpha * expm1 and g * alpha * exp (float
 * with FMA, each within an ulp); float64: libm's expm1 and exp (scalar),
 * which keep float64 within an ulp.  fa_scaled_expm1_f takes ordinary alphas
 * only: ELU with another alpha runs its own instance of the loop (`special`,
 * a constant there), chosen once per call, so that no test is left inside a
 * loop.  The gradient's fa_elu_grad_f holds for x >= lim =
 * fa_elu_grad_xmin_f(alpha) (below about -70 for alpha = 1): the backward
 * scans each block's x for smaller values, and the rare block with one runs
 * the `special` instance, which selects the float64 gradient lane by lane
 * (each element's result depends on its own operands alone).  For
 * tools/check_vectorization.py:
 *   scalar kernels: fwd_elu bwd_elu for f64 on all (libm's expm1 and exp are calls)
 *   scalar kernels: fwd_elu bwd_elu for f32 f16 bf16 on baseline (fmaf is a library call without FMA)
 */
#if FA_C_IS_DOUBLE
#define FA_SCALED_EXPM1(v, a) ((a) * expm1(v))
#define FA_ELU_GRAD(g, v, a) ((g) * ((a) * exp(v)))
#define FA_SPECIAL(op, p0) 0
#else
#define FA_SCALED_EXPM1(v, a) \
    (special ? fa_scaled_expm1_special_f(v, a) : fa_scaled_expm1_f(v, a))
#define FA_ELU_GRAD(g, v, a) \
    (special && (v) < lim ? fa_elu_grad_dbl_f(g, v, a) : fa_elu_grad_f(g, v, a))
#define FA_SPECIAL(op, p0) ((op) == FA_OP_ELU && !fa_alpha_is_ordinary_f(p0))
#endif
/* elements per block of ELU's backward scan: 4 KiB of float32 x */
#define FA_ELU_SCAN ((int64_t)1024)

/* op's forward and backward of one element (op a constant: the switch folds
 * away) */
FA_ALWAYS_INLINE FA_C FA_NAME(fwd_one)(int op, int special, FA_C x, FA_C p0,
                                       FA_C p1, FA_C p2)
{
    (void)special;
    switch (op) {
#define FA_CASE_(NAME, name, heavy) \
    case FA_OP_##NAME: return (FA_C)FA_##NAME##_FWD(x, p0, p1, p2);
    FA_OPS(FA_CASE_)
#undef FA_CASE_
    default: return x;
    }
}

FA_ALWAYS_INLINE FA_C FA_NAME(bwd_one)(int op, int special, FA_C lim, FA_C g,
                                       FA_C x, FA_C p0, FA_C p1, FA_C p2)
{
    (void)special;
    (void)lim;
    switch (op) {
#define FA_CASE_(NAME, name, heavy) \
    case FA_OP_##NAME: return (FA_C)FA_##NAME##_BWD(g, x, p0, p1, p2);
    FA_OPS(FA_CASE_)
    FA_BACKWARD_ONLY_OPS(FA_CASE_)
#undef FA_CASE_
    default: return g;
    }
}

/* --- the loop skeletons ---------------------------------------------------
 *
 * Each serves out of place and in place, `inplace` being a constant of each
 * instance.  Out of place, the output overlaps no input, and restrict tells
 * the compiler so (no overlap check at run time).  In place, the output is
 * also the first input and the loop reaches both through the one pointer
 * (src = out), reading each element before writing it; the restrict on out
 * still holds, as no other pointer reaches that array.  Operands are loaded
 * into locals first: a load inside a select would be a conditional load,
 * which only some ISAs can vectorise.
 */

/* y[i] = op(x[i]), one tile */
FA_ALWAYS_INLINE void FA_NAME(fwd_tile)(int op, int special, int inplace, int nt,
                                        const FA_T *restrict x, FA_T *restrict y,
                                        int64_t m, FA_C p0, FA_C p1, FA_C p2)
{
    FA_TILE_BUFFERS(2);
    const FA_C *xs = FA_IN_ANY_ORDER(0, inplace ? y : x, m);
    FA_C *ys = FA_OUT(1, y);
    for (int64_t i = 0; i < m; i++) { /* op: forward */
        ys[i] = FA_NAME(fwd_one)(op, special, xs[i], p0, p1, p2);
    }
    FA_FLUSH_ANY_ORDER(1, y, m, nt);
}

FA_ALWAYS_INLINE void FA_NAME(fwd_loop)(int op, int special, int inplace, int nt,
                                        const FA_T *restrict x, FA_T *restrict y,
                                        int64_t n, FA_C p0, FA_C p1, FA_C p2)
{
    FA_EACH_TILE(b, m, n, FA_NAME(fwd_tile)(op, special, inplace, nt, inplace ? NULL : x + b,
                                            y + b, m, p0, p1, p2));
}

/* gi[i] = op'(g[i], x[i]), one tile; in place, gi is g.  elu_table: for
 * ELU on float compute types, fa_elu_grad_table_f's table for alpha = p0,
 * for fa_elu_grad_v where the ISA has it */
FA_ALWAYS_INLINE void FA_NAME(bwd_tile)(int op, int special, FA_C lim,
                                        const float *elu_table, int inplace, int nt,
                                        const FA_T *restrict g, const FA_T *restrict x,
                                        FA_T *restrict gi, int64_t m, FA_C p0, FA_C p1,
                                        FA_C p2)
{
    FA_TILE_BUFFERS(3);
    const FA_C *gs = FA_IN_ANY_ORDER(0, inplace ? gi : g, m);
    const FA_C *xs = FA_IN_ANY_ORDER(1, x, m);
    FA_C *gis = FA_OUT(2, gi);
    int64_t i = 0;
    (void)elu_table;
#if !FA_C_IS_DOUBLE && FA_ELU_GRAD_LANES > 1
    if (op == FA_OP_ELU && !special) {
        const fa_v ah = fa_v_table8(elu_table), al = fa_v_table8(elu_table + 8);
        for (; i + FA_ELU_GRAD_LANES <= m; i += FA_ELU_GRAD_LANES) { /* scalar: intrinsics */
            FA_V(storeu_ps)(gis + i, fa_elu_grad_v(FA_V(loadu_ps)(gs + i),
                                                   FA_V(loadu_ps)(xs + i), ah, al));
        }
    }
#endif
    for (; i < m; i++) { /* op: backward */
        gis[i] = FA_NAME(bwd_one)(op, special, lim, gs[i], xs[i], p0, p1, p2);
    }
    FA_FLUSH_ANY_ORDER(2, gi, m, nt);
}

FA_ALWAYS_INLINE void FA_NAME(bwd_loop)(int op, int special, FA_C lim,
                                        const float *elu_table, int inplace, int nt,
                                        const FA_T *restrict g, const FA_T *restrict x,
                                        FA_T *restrict gi, int64_t n, FA_C p0, FA_C p1,
                                        FA_C p2)
{
    FA_EACH_TILE(b, m, n, FA_NAME(bwd_tile)(op, special, lim, elu_table, inplace, nt,
                                            inplace ? NULL : g + b, x + b, gi + b, m,
                                            p0, p1, p2));
}

/* whether one tile of x holds a value below lim (ELU's backward scan) */
FA_ALWAYS_INLINE int FA_NAME(below_tile)(const FA_T *restrict x, int64_t m, FA_C lim)
{
    FA_TILE_BUFFERS(1);
    const FA_C *xs = FA_IN_ANY_ORDER(0, x, m);
    int below = 0;
    for (int64_t i = 0; i < m; i++) { /* op: scan */
        below |= xs[i] < lim;
    }
    return below;
}

/* bwd_loop, for float ELU block by block: the `special` instance where a
 * block holds an x below lim (see FA_ELU_GRAD) */
FA_ALWAYS_INLINE void FA_NAME(bwd_blocks)(int op, int inplace, int nt, const FA_T *restrict g,
                                          const FA_T *restrict x, FA_T *restrict gi,
                                          int64_t n, FA_C p0, FA_C p1, FA_C p2)
{
#if !FA_C_IS_DOUBLE
    if (op == FA_OP_ELU) {
        const FA_C lim = fa_elu_grad_xmin_f(p0);
        float elu_table[16];
        fa_elu_grad_table_f(p0, elu_table);
        for (int64_t b = 0; b < n; b += FA_ELU_SCAN) { /* not hot: blocks */
            const int64_t len = n - b < FA_ELU_SCAN ? n - b : FA_ELU_SCAN;
            const FA_T *xb = x + b;
            int below = 0;
            FA_EACH_TILE(t, m, len, below |= FA_NAME(below_tile)(xb + t, m, lim));
            if (below)
                FA_NAME(bwd_loop)(op, 1, lim, elu_table, inplace, nt, inplace ? NULL : g + b,
                                  xb, gi + b, len, p0, p1, p2);
            else
                FA_NAME(bwd_loop)(op, 0, lim, elu_table, inplace, nt, inplace ? NULL : g + b,
                                  xb, gi + b, len, p0, p1, p2);
        }
        return;
    }
#endif
    FA_NAME(bwd_loop)(op, 0, 0, NULL, inplace, nt, g, x, gi, n, p0, p1, p2);
}

/* prelu with a slope per element: y[i] = leaky_relu(x[i]; s[i]), one tile */
FA_ALWAYS_INLINE void FA_NAME(fwd_vec_tile)(int inplace, const FA_T *restrict x,
                                            const FA_C *restrict s, FA_T *restrict y,
                                            int64_t m)
{
    FA_TILE_BUFFERS(2);
    const FA_C *xs = FA_IN(0, inplace ? y : x, m);
    FA_C *ys = FA_OUT(1, y);
    for (int64_t i = 0; i < m; i++) {
        const FA_C v = xs[i];
        const FA_C a = s[i]; /* loaded on every lane, so SSE2 can if-convert */
        ys[i] = FA_LEAKY_RELU_FWD(v, a, 0, 0);
    }
    FA_FLUSH(1, y, m, 0);
}

FA_ALWAYS_INLINE void FA_NAME(fwd_vec_loop)(int inplace, const FA_T *restrict x,
                                            const FA_C *restrict s, FA_T *restrict y,
                                            int64_t n)
{
    FA_EACH_TILE(b, m, n, FA_NAME(fwd_vec_tile)(inplace, inplace ? NULL : x + b, s + b,
                                                y + b, m));
}

/* affine_prelu: y[i] = leaky_relu(x[i] * scale + shift; slope) (ops.h),
 * with one (scale, shift, slope) = (s0, b0, a0) for the whole run (vec 0),
 * or one of each per element from sc, sh and sl (vec 1); one tile */
FA_ALWAYS_INLINE void FA_NAME(affine_tile)(int inplace, int nt, int vec, const FA_T *restrict x,
                                           const FA_C *restrict sc, const FA_C *restrict sh,
                                           const FA_C *restrict sl, FA_T *restrict y,
                                           int64_t m, FA_C s0, FA_C b0, FA_C a0)
{
    FA_TILE_BUFFERS(2);
    /* with one channel's parameters for the whole run (not vec), the
     * elements are independent of one another */
    const FA_C *xs = vec ? FA_IN(0, inplace ? y : x, m) : FA_IN_ANY_ORDER(0, inplace ? y : x, m);
    FA_C *ys = FA_OUT(1, y);
    for (int64_t i = 0; i < m; i++) {
        const FA_C v = xs[i];
        const FA_C s = vec ? sc[i] : s0;
        const FA_C b = vec ? sh[i] : b0;
        const FA_C a = vec ? sl[i] : a0;
        ys[i] = FA_AFFINE_PRELU_FWD(v, s, b, a);
    }
    if (vec)
        FA_FLUSH(1, y, m, nt);
    else
        FA_FLUSH_ANY_ORDER(1, y, m, nt);
}

FA_ALWAYS_INLINE void FA_NAME(affine_loop)(int inplace, int nt, int vec, const FA_T *restrict x,
                                           const FA_C *restrict sc, const FA_C *restrict sh,
                                           const FA_C *restrict sl, FA_T *restrict y,
                                           int64_t n, FA_C s0, FA_C b0, FA_C a0)
{
    FA_EACH_TILE(t, m, n, FA_NAME(affine_tile)(inplace, nt, vec, inplace ? NULL : x + t,
                                               vec ? sc + t : NULL, vec ? sh + t : NULL,
                                               vec ? sl + t : NULL, y + t, m, s0, b0, a0));
}

/*
 * prelu's backward with one slope a: gi[i] = leaky_relu'(g[i], x[i]; a), and
 * the slope terms added into lanes: element i to lane[i % FA_LANES], each
 * lane in order, so that the sum does not depend on the ISA, the alignment
 * or the thread count.  Here acc[j] is the lane of the element at position
 * j of each FA_LANES in the tile's buffers (FA_ANY_ORDER_ELEMENT(j), mod
 * FA_LANES, for the FA_LANES elements from the tile's start):
 * bwd_lanes_loop orders the lanes so, and its callers rotate them so that
 * its lane j is that of element j.  One tile: tiles hold whole lanes, so
 * only the last has a tail, which the buffers hold in order.  scaled: the
 * terms are FA_SCALED_TERM's; write_gi 0: the terms alone (gi unused).
 */
FA_ALWAYS_INLINE void FA_NAME(bwd_lanes_tile)(int inplace, int nt, int scaled, int write_gi,
                                              const FA_T *restrict g, const FA_T *restrict x,
                                              FA_T *restrict gi, FA_C a,
                                              double acc[FA_LANES], int64_t m)
{
    FA_TILE_BUFFERS(3);
    const FA_C *gs = FA_IN_ANY_ORDER(0, inplace ? gi : g, m);
    const FA_C *xs = FA_IN_ANY_ORDER(1, x, m);
    FA_C *gis = write_gi ? FA_OUT(2, gi) : NULL;
    int64_t b = 0;
    for (; b + FA_LANES <= m; b += FA_LANES) {
        /* kept a loop for the vectoriser (a tile's constant length would
         * have it unrolled first, into code the vectoriser leaves scalar).
         * FA_NO_CARRIED_DEPS: gs is gi or g by the in-place flag, a choice
         * that hid their restrict from gcc, which versioned the loop on
         * their overlap; the scalar version's lanes indexed by j kept them
         * on the stack in both (a store and a load per vector per step) */
#pragma GCC unroll 1
        FA_NO_CARRIED_DEPS
        for (int j = 0; j < FA_LANES; j++) {
            const FA_C gv = gs[b + j];
            const FA_C v = xs[b + j];
            if (write_gi)
                gis[b + j] = FA_LEAKY_RELU_BWD(gv, v, a, 0, 0);
            acc[j] += scaled ? FA_SCALED_TERM(v, gv) : FA_SLOPE_TERM(v, gv);
        }
    }
    for (int j = 0; b < m; b++, j++) { /* not hot: less than FA_LANES */
        const FA_C gv = gs[b];
        const FA_C v = xs[b];
        if (write_gi)
            gis[b] = FA_LEAKY_RELU_BWD(gv, v, a, 0, 0);
        acc[FA_ANY_ORDER_ELEMENT(j)] += scaled ? FA_SCALED_TERM(v, gv) : FA_SLOPE_TERM(v, gv);
    }
    if (write_gi)
        FA_FLUSH_ANY_ORDER(2, gi, m, nt);
}

FA_ALWAYS_INLINE void FA_NAME(bwd_lanes_loop)(int inplace, int nt, int want_scaled,
                                              const FA_T *restrict g, const FA_T *restrict x,
                                              FA_T *restrict gi, FA_C a,
                                              double acc_io[FA_LANES], int64_t n)
{
    /* FA_SCALED_TERM's terms where the caller wants them (a run long enough
     * to repay scaling the lanes and checking them) and g stays to be read
     * again (not in place) */
    const int scaled = FA_SCALED_PRODUCTS && want_scaled && !inplace;
    const double scale = scaled ? FA_TERM_SCALE : 1.0;
    /* a local array: the compiler keeps it in registers; in the order of
     * the tiles' buffers */
    double acc[FA_LANES];
    for (int j = 0; j < FA_LANES; j++) { /* not hot: once per call */
        acc[j] = acc_io[FA_ANY_ORDER_ELEMENT(j)] * scale;
    }
    FA_EACH_TILE(t, m, n, FA_NAME(bwd_lanes_tile)(inplace, nt, scaled, 1,
                                                  inplace ? NULL : g + t, x + t, gi + t, a,
                                                  acc, m));
    const int finite = fa_all_finite(acc, FA_LANES);
    if (scaled && !finite) {
        /* a product overflowed, or an input is inf or NaN: the terms again,
         * unscaled, from the lanes this call started with */
        for (int j = 0; j < FA_LANES; j++) { /* not hot: rare */
            acc[j] = acc_io[FA_ANY_ORDER_ELEMENT(j)];
        }
        FA_EACH_TILE(t, m, n, FA_NAME(bwd_lanes_tile)(0, 0, 0, 0, g + t, x + t, NULL, a,
                                                      acc, m));
    }
    for (int j = 0; j < FA_LANES; j++) { /* not hot: once per call */
        acc_io[FA_ANY_ORDER_ELEMENT(j)] = scaled && finite ? acc[j] / scale : acc[j];
    }
}

/* prelu's backward with a slope per element, one tile of a row: element i
 * with slope s[i] and its slope term added to acc[i]; scaled and write_gi
 * as bwd_lanes_tile's */
FA_ALWAYS_INLINE void FA_NAME(bwd_vec_tile)(int inplace, int scaled, int write_gi,
                                            const FA_T *restrict g, const FA_T *restrict x,
                                            const FA_C *restrict s, FA_T *restrict gi,
                                            double *restrict acc, int64_t m)
{
    FA_TILE_BUFFERS(3);
    const FA_C *gs = FA_IN(0, inplace ? gi : g, m);
    const FA_C *xs = FA_IN(1, x, m);
    FA_C *gis = write_gi ? FA_OUT(2, gi) : NULL;
    for (int64_t i = 0; i < m; i++) {
        const FA_C gv = gs[i];
        const FA_C v = xs[i];
        const FA_C a = s[i];
        if (write_gi)
            gis[i] = FA_LEAKY_RELU_BWD(gv, v, a, 0, 0);
        acc[i] += scaled ? FA_SCALED_TERM(v, gv) : FA_SLOPE_TERM(v, gv);
    }
    if (write_gi)
        FA_FLUSH(2, gi, m, 0);
}

/* prelu's backward with a slope per element, rows rows of w contiguous
 * elements (the w sums stay in L1: the tile of a channels-last array is
 * many short rows) */
FA_ALWAYS_INLINE void FA_NAME(bwd_vec_loop)(int inplace, int scaled, int write_gi,
                                            const FA_T *restrict g, const FA_T *restrict x,
                                            const FA_C *restrict s, FA_T *restrict gi,
                                            double *restrict acc, int64_t w, int64_t rows)
{
    for (int64_t r = 0; r < rows; r++) { /* not hot: rows of the tile */
        const FA_T *xr = x + r * w;
        FA_EACH_TILE(t, m, w, FA_NAME(bwd_vec_tile)(inplace, scaled, write_gi,
                                                    inplace ? NULL : g + r * w + t, xr + t,
                                                    s + t, write_gi ? gi + r * w + t : NULL,
                                                    acc + t, m));
    }
}

/* --- streaming --------------------------------------------------------------
 *
 * Compute-bound ops (ops.h's HEAVY: ELU, over 30 instructions per vector)
 * consume their input too slowly for the hardware prefetchers to run ahead
 * of them from memory: ELU took twice as long per element on arrays past the
 * cache.  On such arrays (those that get streaming stores) they fetch
 * FA_AHEAD elements ahead by hand.  Prefetches never fault, past the end of
 * an array included.
 */
#define FA_AHEAD 512
/* and every op's backward where the compiler folds a load into a zeroing
 * select as an AVX-512 masked load (gcc, for x <= 0 ? 0 : g and the like):
 * the hardware prefetchers do not run ahead of masked loads (AMD Zen 5:
 * relu's and hardtanh's streamed backward took 1.5x AVX2's time, and the
 * time of a plain load's loop once prefetched) */
#if defined(__AVX512F__)
#define FA_PREFETCH_EVERY_BWD 1
#else
#define FA_PREFETCH_EVERY_BWD 0
#endif

typedef struct {
    const FA_T *in[2];      /* the inputs, at the output's offsets */
    int nprefetch;          /* how many of them to prefetch (heavy ops) */
    FA_C p[3];              /* the op's parameters, or the slope */
    double acc[FA_LANES];   /* bwd_run: acc[j] is lane (rot + j) % FA_LANES */
    int rot;
    int nt;                 /* the piece writes a streamed block (FA_DIRECT_NT) */
} FA_NAME(job);

/* computes the job's elements [begin, begin + len) into dst */
typedef void (*FA_NAME(piece_fn))(FA_NAME(job) *job, int64_t begin,
                                  FA_T *restrict dst, int64_t len);

static inline void FA_NAME(prefetch)(const FA_T *a, int64_t len)
{
    for (int64_t j = 0; j < len; j += FA_LINE / (int64_t)sizeof(FA_T)) { /* not hot: one per line */
        __builtin_prefetch(a + FA_AHEAD + j, 0, 0);
    }
}

/*
 * Every out-of-place kernel: n elements of out computed by piece.  With
 * streaming stores (for outputs larger than the cache): a head up to out's
 * first line boundary, then blocks of whole lines computed into L1 and
 * streamed out, a fence (streaming stores are weakly ordered), and a tail
 * of less than a line; otherwise all of it at once.
 */
FA_ALWAYS_INLINE void FA_NAME(stream)(FA_NAME(piece_fn) piece, FA_NAME(job) *job,
                                      FA_T *out, int64_t n, int streaming)
{
    int64_t i = 0;
    if (FA_HAVE_STREAM && streaming) {
        const int64_t head = fa_elems_to_line(out, sizeof(FA_T));
        i = head > n ? n : head;
        piece(job, 0, out, i);
        for (int64_t len; (len = FA_STREAM_LEN(n - i)) > 0; i += len) { /* not hot: blocks */
            for (int k = 0; k < job->nprefetch; k++) { /* not hot: inputs */
                FA_NAME(prefetch)(job->in[k] + i, len);
            }
            if (FA_DIRECT_NT) {
                job->nt = 1;
                piece(job, i, out + i, len);
                job->nt = 0;
            } else {
                FA_ALIGNED(FA_LINE) FA_T tmp[FA_BLOCK];
                piece(job, i, tmp, len);
                fa_stream_block(out + i, tmp, (size_t)len * sizeof(FA_T));
            }
        }
        fa_stream_fence();
    }
    piece(job, i, out + i, n - i);
}

/* --- the family's elementwise ops, and prelu's kernels ---------------------
 *
 * Per op of FA_OPS: fwd_<op> and bwd_<op>, the pieces of the streaming
 * kernels, and the in-place kernels fwd_<op>_inplace, bwd_<op>_inplace.
 */
#define FA_DEFINE_FWD_(NAME, name, heavy)                                             \
    FA_KERNEL void FA_NAME(fwd_##name)(FA_NAME(job) *job, int64_t begin,              \
                                       FA_T *restrict dst, int64_t len)               \
    {                                                                                 \
        const FA_C p0 = job->p[0], p1 = job->p[1], p2 = job->p[2];                    \
        if (FA_SPECIAL(FA_OP_##NAME, p0))                                             \
            FA_NAME(fwd_loop)(FA_OP_##NAME, 1, 0, job->nt, job->in[0] + begin, dst,  \
                              len, p0, p1, p2);                                       \
        else                                                                          \
            FA_NAME(fwd_loop)(FA_OP_##NAME, 0, 0, job->nt, job->in[0] + begin, dst,  \
                              len, p0, p1, p2);                                       \
    }                                                                                 \
    FA_KERNEL void FA_NAME(fwd_##name##_inplace)(FA_T *xy, int64_t n, FA_C p0,       \
                                                 FA_C p1, FA_C p2)                    \
    {                                                                                 \
        if (FA_SPECIAL(FA_OP_##NAME, p0))                                             \
            FA_NAME(fwd_loop)(FA_OP_##NAME, 1, 1, 0, NULL, xy, n, p0, p1, p2);        \
        else                                                                          \
            FA_NAME(fwd_loop)(FA_OP_##NAME, 0, 1, 0, NULL, xy, n, p0, p1, p2);        \
    }
#define FA_DEFINE_BWD_(NAME, name, heavy)                                             \
    FA_KERNEL void FA_NAME(bwd_##name)(FA_NAME(job) *job, int64_t begin,              \
                                       FA_T *restrict dst, int64_t len)               \
    {                                                                                 \
        FA_NAME(bwd_blocks)(FA_OP_##NAME, 0, job->nt, job->in[0] + begin,             \
                            job->in[1] + begin, dst, len, job->p[0], job->p[1],       \
                            job->p[2]);                                               \
    }                                                                                 \
    FA_KERNEL void FA_NAME(bwd_##name##_inplace)(FA_T *g, const FA_T *x, int64_t n,   \
                                                 FA_C p0, FA_C p1, FA_C p2)           \
    {                                                                                 \
        FA_NAME(bwd_blocks)(FA_OP_##NAME, 1, 0, NULL, x, g, n, p0, p1, p2);           \
    }
FA_OPS(FA_DEFINE_FWD_)
FA_OPS(FA_DEFINE_BWD_)
FA_BACKWARD_ONLY_OPS(FA_DEFINE_BWD_)
#undef FA_DEFINE_FWD_
#undef FA_DEFINE_BWD_

static void FA_NAME(unary_fwd)(int op, const double *p, const void *x, void *y,
                               int64_t n, int streaming)
{
    FA_NAME(job) job = {{(const FA_T *)x, NULL}, 0, {(FA_C)p[0], (FA_C)p[1], (FA_C)p[2]},
                        {0}, 0, 0};
    switch (op) {
#define FA_CASE_(NAME, name, heavy)                                                   \
    case FA_OP_##NAME:                                                                \
        job.nprefetch = heavy;                                                        \
        FA_NAME(stream)(FA_NAME(fwd_##name), &job, (FA_T *)y, n, streaming);          \
        break;
    FA_OPS(FA_CASE_)
#undef FA_CASE_
    default: break;
    }
}

static void FA_NAME(unary_fwd_inplace)(int op, const double *p, void *xy, int64_t n)
{
    const FA_C p0 = (FA_C)p[0], p1 = (FA_C)p[1], p2 = (FA_C)p[2];
    switch (op) {
#define FA_CASE_(NAME, name, heavy) \
    case FA_OP_##NAME: FA_NAME(fwd_##name##_inplace)((FA_T *)xy, n, p0, p1, p2); break;
    FA_OPS(FA_CASE_)
#undef FA_CASE_
    default: break;
    }
}

static void FA_NAME(unary_bwd)(int op, const double *p, const void *g, const void *x,
                               void *gi, int64_t n, int streaming)
{
    FA_NAME(job) job = {{(const FA_T *)g, (const FA_T *)x}, 0,
                        {(FA_C)p[0], (FA_C)p[1], (FA_C)p[2]}, {0}, 0, 0};
    switch (op) {
#define FA_CASE_(NAME, name, heavy)                                                   \
    case FA_OP_##NAME:                                                                \
        job.nprefetch = heavy || FA_PREFETCH_EVERY_BWD ? 2 : 0;                       \
        FA_NAME(stream)(FA_NAME(bwd_##name), &job, (FA_T *)gi, n, streaming);         \
        break;
    FA_OPS(FA_CASE_)
    FA_BACKWARD_ONLY_OPS(FA_CASE_)
#undef FA_CASE_
    default: break;
    }
}

static void FA_NAME(unary_bwd_inplace)(int op, const double *p, void *g, const void *x,
                                       int64_t n)
{
    const FA_C p0 = (FA_C)p[0], p1 = (FA_C)p[1], p2 = (FA_C)p[2];
    switch (op) {
#define FA_CASE_(NAME, name, heavy)                                                   \
    case FA_OP_##NAME:                                                                \
        FA_NAME(bwd_##name##_inplace)((FA_T *)g, (const FA_T *)x, n, p0, p1, p2);     \
        break;
    FA_OPS(FA_CASE_)
    FA_BACKWARD_ONLY_OPS(FA_CASE_)
#undef FA_CASE_
    default: break;
    }
}

/* prelu with one slope over a run: leaky_relu with that slope */
static void FA_NAME(fwd_run)(const void *x, const void *slope, void *y, int64_t n,
                             int streaming)
{
    FA_NAME(job) job = {{(const FA_T *)x, NULL}, 0, {*(const FA_C *)slope, 0, 0},
                        {0}, 0, 0};
    FA_NAME(stream)(FA_NAME(fwd_leaky_relu), &job, (FA_T *)y, n, streaming);
}

static void FA_NAME(fwd_run_inplace)(void *xy, const void *slope, int64_t n)
{
    FA_NAME(fwd_leaky_relu_inplace)((FA_T *)xy, n, *(const FA_C *)slope, 0, 0);
}

static void FA_NAME(fwd_vec)(const void *x, const void *slopes, void *y, int64_t n)
{
    FA_NAME(fwd_vec_loop)(0, (const FA_T *)x, (const FA_C *)slopes, (FA_T *)y, n);
}

static void FA_NAME(fwd_vec_inplace)(void *xy, const void *slopes, int64_t n)
{
    FA_NAME(fwd_vec_loop)(1, NULL, (const FA_C *)slopes, (FA_T *)xy, n);
}

/* fwd_run and affine_run (unstreamed) and their in-place forms over whole
 * planes, without a call per plane: the same loops */
static void FA_NAME(fwd_planes)(const void *x, const void *slopes, const void *scale,
                                const void *shift, void *y, int64_t p0, int64_t np,
                                int64_t channels, int64_t inner)
{
    const FA_C *s = (const FA_C *)slopes;
    const FA_C *sc = (const FA_C *)scale, *sh = (const FA_C *)shift;
    FA_NAME(job) job = {{(const FA_T *)x, NULL}, 0, {0, 0, 0}, {0}, 0, 0};
    for (int64_t p = p0; p < p0 + np; p++) { /* not hot: planes */
        const int64_t c = p % channels, off = p * inner;
        FA_T *dst = (FA_T *)y + off;
        if (sc != NULL && x == y)
            FA_NAME(affine_loop)(1, 0, 0, NULL, NULL, NULL, NULL, dst, inner, sc[c], sh[c],
                                 s[c]);
        else if (sc != NULL)
            FA_NAME(affine_loop)(0, 0, 0, (const FA_T *)x + off, NULL, NULL, NULL, dst,
                                 inner, sc[c], sh[c], s[c]);
        else if (x == y)
            FA_NAME(fwd_leaky_relu_inplace)(dst, inner, s[c], 0, 0);
        else {
            job.p[0] = s[c];
            FA_NAME(fwd_leaky_relu)(&job, off, dst, inner);
        }
    }
}

/* affine_prelu over a run of one channel, params = (scale, shift, slope):
 * streamed like every out-of-place kernel */
FA_KERNEL void FA_NAME(affine_run_piece)(FA_NAME(job) *job, int64_t begin,
                                      FA_T *restrict dst, int64_t len)
{
    FA_NAME(affine_loop)(0, job->nt, 0, job->in[0] + begin, NULL, NULL, NULL, dst, len,
                         job->p[0], job->p[1], job->p[2]);
}

static void FA_NAME(affine_run)(const void *x, const void *params, void *y, int64_t n,
                                int streaming)
{
    const FA_C *p = (const FA_C *)params;
    FA_NAME(job) job = {{(const FA_T *)x, NULL}, 0, {p[0], p[1], p[2]}, {0}, 0, 0};
    FA_NAME(stream)(FA_NAME(affine_run_piece), &job, (FA_T *)y, n, streaming);
}

FA_KERNEL void FA_NAME(affine_run_inplace)(void *xy, const void *params, int64_t n)
{
    const FA_C *p = (const FA_C *)params;
    FA_NAME(affine_loop)(1, 0, 0, NULL, NULL, NULL, NULL, (FA_T *)xy, n, p[0], p[1], p[2]);
}

FA_KERNEL void FA_NAME(affine_vec)(const void *x, const void *scale, const void *shift,
                                   const void *slopes, void *y, int64_t n)
{
    FA_NAME(affine_loop)(0, 0, 1, (const FA_T *)x, (const FA_C *)scale, (const FA_C *)shift,
                         (const FA_C *)slopes, (FA_T *)y, n, 0, 0, 0);
}

FA_KERNEL void FA_NAME(affine_vec_inplace)(void *xy, const void *scale, const void *shift,
                                           const void *slopes, int64_t n)
{
    FA_NAME(affine_loop)(1, 0, 1, NULL, (const FA_C *)scale, (const FA_C *)shift,
                         (const FA_C *)slopes, (FA_T *)xy, n, 0, 0, 0);
}

/* a piece of bwd_run: rotates the lanes (not hot: once, after a streamed
 * head) so that acc[0] is the lane of element begin */
FA_KERNEL void FA_NAME(bwd_run_piece)(FA_NAME(job) *job, int64_t begin,
                                   FA_T *restrict dst, int64_t len)
{
    const int rot = (int)(begin % FA_LANES);
    if (rot != job->rot) {
        double lane[FA_LANES];
        for (int j = 0; j < FA_LANES; j++) { /* not hot */
            lane[(job->rot + j) % FA_LANES] = job->acc[j];
        }
        for (int j = 0; j < FA_LANES; j++) { /* not hot */
            job->acc[j] = lane[(rot + j) % FA_LANES];
        }
        job->rot = rot;
    }
    FA_NAME(bwd_lanes_loop)(0, job->nt, 1, job->in[0] + begin, job->in[1] + begin, dst,
                            job->p[0], job->acc, len);
}

static double FA_NAME(bwd_run)(const void *g, const void *x, const void *slope,
                               void *gi, int64_t n, int streaming)
{
    FA_NAME(job) job = {{(const FA_T *)g, (const FA_T *)x}, 0, {*(const FA_C *)slope, 0, 0},
                        {0}, 0, 0};
    double lane[FA_LANES];
    FA_NAME(stream)(FA_NAME(bwd_run_piece), &job, (FA_T *)gi, n, streaming);
    for (int j = 0; j < FA_LANES; j++) { /* not hot: once per run */
        lane[(job.rot + j) % FA_LANES] = job.acc[j];
    }
    return fa_sum_lanes(lane);
}

static double FA_NAME(bwd_run_inplace)(void *g, const void *x, const void *slope,
                                       int64_t n)
{
    double acc[FA_LANES] = {0};
    FA_NAME(bwd_lanes_loop)(1, 0, 0, NULL, (const FA_T *)x, (FA_T *)g, *(const FA_C *)slope,
                            acc, n);
    return fa_sum_lanes(acc);
}

/* bwd_run (unstreamed) and bwd_run_inplace over every plane of a small call,
 * without a call per plane: the same lanes and sums */
static void FA_NAME(bwd_planes)(const void *g, const void *x, const void *slopes,
                                void *gi, double *grad_slopes, int64_t outer,
                                int64_t channels, int64_t inner)
{
    const FA_C *s = (const FA_C *)slopes;
    /* FA_SCALED_TERM's terms on planes of FA_SCALED_PLANE_MIN elements or
     * more */
    const int scaled_planes = FA_SCALED_PRODUCTS && inner >= FA_SCALED_PLANE_MIN;
    int64_t off = 0;
    for (int64_t n = 0; n < outer; n++) { /* not hot: planes */
        for (int64_t c = 0; c < channels; c++, off += inner) { /* not hot: planes */
            double acc[FA_LANES] = {0};
            if (gi == g)
                FA_NAME(bwd_lanes_loop)(1, 0, 0, NULL, (const FA_T *)x + off,
                                        (FA_T *)gi + off, s[c], acc, inner);
            else if (scaled_planes)
                FA_NAME(bwd_lanes_loop)(0, 0, 1, (const FA_T *)g + off, (const FA_T *)x + off,
                                        (FA_T *)gi + off, s[c], acc, inner);
            else
                FA_NAME(bwd_lanes_loop)(0, 0, 0, (const FA_T *)g + off, (const FA_T *)x + off,
                                        (FA_T *)gi + off, s[c], acc, inner);
            grad_slopes[c] += fa_sum_lanes(acc);
        }
    }
}

static void FA_NAME(bwd_vec)(const void *g, const void *x, const void *slopes, void *gi,
                             double *restrict acc, int64_t w, int64_t rows)
{
    /* FA_SCALED_TERM's terms, as bwd_lanes_loop takes them, where the rows
     * are many enough to repay scaling the sums */
    if (!FA_SCALED_PRODUCTS || rows < FA_SCALED_VEC_ROWS_MIN) {
        FA_NAME(bwd_vec_loop)(0, 0, 1, (const FA_T *)g, (const FA_T *)x,
                              (const FA_C *)slopes, (FA_T *)gi, acc, w, rows);
        return;
    }
    double start[FA_TILE_W];
    for (int64_t i = 0; i < w; i++) { /* not hot: once per call */
        start[i] = acc[i];
        acc[i] *= FA_TERM_SCALE;
    }
    FA_NAME(bwd_vec_loop)(0, 1, 1, (const FA_T *)g, (const FA_T *)x, (const FA_C *)slopes,
                          (FA_T *)gi, acc, w, rows);
    if (!fa_all_finite(acc, w)) {
        /* a product overflowed, or an input is inf or NaN: the terms again,
         * unscaled, from the sums this call started with */
        memcpy(acc, start, (size_t)w * sizeof(double));
        FA_NAME(bwd_vec_loop)(0, 0, 0, (const FA_T *)g, (const FA_T *)x,
                              (const FA_C *)slopes, NULL, acc, w, rows);
        return;
    }
    for (int64_t i = 0; i < w; i++) { /* not hot: once per call */
        acc[i] /= FA_TERM_SCALE;
    }
}

static void FA_NAME(bwd_vec_inplace)(void *g, const void *x, const void *slopes,
                                     double *restrict acc, int64_t w, int64_t rows)
{
    FA_NAME(bwd_vec_loop)(1, 0, 1, NULL, (const FA_T *)x, (const FA_C *)slopes, (FA_T *)g,
                          acc, w, rows);
}

/* --- memory ceilings for the benchmark ------------------------------------ */

static void FA_NAME(expand_slopes)(const void *slopesv, int64_t nchan,
                                   int64_t inner, void *svv)
{
    const FA_C *restrict s = (const FA_C *)slopesv;
    FA_C *restrict sv = (FA_C *)svv;
    for (int64_t k = 0; k < nchan; k++) {
        for (int64_t i = 0; i < inner; i++) {
            sv[k * inner + i] = s[k];
        }
    }
}

static const fa_kernels FA_NAME(table) = {
    .elsize = sizeof(FA_T),
    .csize = sizeof(FA_C),
    .fwd_run = FA_NAME(fwd_run),
    .fwd_run_inplace = FA_NAME(fwd_run_inplace),
    .fwd_planes = FA_NAME(fwd_planes),
    .fwd_vec = FA_NAME(fwd_vec),
    .fwd_vec_inplace = FA_NAME(fwd_vec_inplace),
    .bwd_run = FA_NAME(bwd_run),
    .bwd_run_inplace = FA_NAME(bwd_run_inplace),
    .bwd_planes = FA_NAME(bwd_planes),
    .bwd_vec = FA_NAME(bwd_vec),
    .bwd_vec_inplace = FA_NAME(bwd_vec_inplace),
    .expand_slopes = FA_NAME(expand_slopes),
    .affine_run = FA_NAME(affine_run),
    .affine_run_inplace = FA_NAME(affine_run_inplace),
    .affine_vec = FA_NAME(affine_vec),
    .affine_vec_inplace = FA_NAME(affine_vec_inplace),
    .unary_fwd = FA_NAME(unary_fwd),
    .unary_fwd_inplace = FA_NAME(unary_fwd_inplace),
    .unary_bwd = FA_NAME(unary_bwd),
    .unary_bwd_inplace = FA_NAME(unary_bwd_inplace),
};

#undef FA_SLOPE_TERM
#undef FA_BLOCK
#undef FA_STREAM_LEN
#undef FA_GRAIN
#undef FA_SCALED_EXPM1
#undef FA_ELU_GRAD
#undef FA_ELU_SCAN
#undef FA_SPECIAL
#undef FA_AHEAD
#undef FA_NAME
#undef FA_TILE
#undef FA_TILE_BUFFERS
#undef FA_EACH_TILE
#undef FA_IN
#undef FA_OUT
#undef FA_FLUSH
#undef FA_IN_ANY_ORDER
#undef FA_FLUSH_ANY_ORDER
#undef FA_ANY_ORDER_ELEMENT
#undef FA_DIRECT_NT
#undef FA_TILED
#undef FA_EXACT_PRODUCTS
#undef FA_SCALED_PRODUCTS
#undef FA_PRODUCT_SCALE_EXP
#undef FA_TERM_SCALE
#undef FA_SCALED_PLANE_MIN
#undef FA_SCALED_VEC_ROWS_MIN
#undef FA_SCALED_TERM
#undef FA_C_IS_DOUBLE
#undef FA_C
#undef FA_T
#undef FA_DTYPE
