/*
 * The serial kernels of one dtype, compiled once per ISA: kernels_isa.h
 * (included by kernels_<isa>.c, which sets the target) defines
 *   FA_T          the element type in memory,
 *   FA_C          the compute type (float for float16 and bfloat16),
 *   FA_LOAD(v), FA_STORE(c)  conversions between them,
 *   FA_C_IS_DOUBLE  1 for float64,
 *   FA_NAME(name) a unique name for this dtype and ISA,
 * includes this file, and gets the static table FA_NAME(table).  Slopes and
 * parameters are held in FA_C.
 *
 * Plain C loops the compiler vectorises.  Four build flags make that
 * possible without changing results: -fno-trapping-math lets `x > 0 ? x :
 * a * x` compute a * x on every lane (NaN, inf and signed zeros behave the
 * same), -ffp-contract=off keeps a * b + c from becoming an FMA, so every
 * ISA rounds the same way (FMAs are written as fmaf where wanted: exact
 * everywhere), -fno-thread-jumps stops gcc from splitting the in-place loops
 * on x > 0 into a path whose store it then drops (a conditional store SSE2
 * cannot vectorise), and -fno-math-errno lets fmaf become an instruction
 * (fastact never reads errno).  tools/check_vectorization.py checks that
 * every loop here is vectorised for every ISA.
 */
#include <math.h>

#include "kernels.h"
#include "ops.h"
#include "stream.h"

#define FA_PRELU(v, a) FA_STORE(FA_LEAKY_F(FA_LOAD(v), a))
/* grad_input of one element: the slope's branch wherever x is not > 0 */
#define FA_DPRELU(xv, gv, a) FA_STORE(FA_LEAKY_B(FA_LOAD(gv), FA_LOAD(xv), a))
/* one element's share of the slope gradient (NaN in x propagates) */
#define FA_SLOPE_TERM(xv, gv) \
    (FA_LOAD(xv) > 0 ? 0.0 : (double)FA_LOAD(xv) * (double)FA_LOAD(gv))
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

static void FA_NAME(fwd_run)(const void *xv, const void *slope, void *yv,
                             int64_t n, int streaming)
{
    const FA_T *restrict x = (const FA_T *)xv;
    FA_T *restrict y = (FA_T *)yv;
    const FA_C a = *(const FA_C *)slope;
    int64_t i = 0;
    if (FA_HAVE_STREAM && streaming) {
        int64_t head = fa_elems_to_line(y, sizeof(FA_T));
        if (head > n) {
            head = n;
        }
        for (; i < head; i++) {
            y[i] = FA_PRELU(x[i], a);
        }
        /* compute a block into L1, then stream it out in whole lines */
        for (int64_t len; (len = FA_STREAM_LEN(n - i)) > 0; i += len) {
            FA_ALIGNED(FA_LINE) FA_T tmp[FA_BLOCK];
            const FA_T *restrict xb = x + i;
            for (int64_t j = 0; j < len; j++) {
                tmp[j] = FA_PRELU(xb[j], a);
            }
            fa_stream_block(y + i, tmp, (size_t)len * sizeof(FA_T));
        }
        fa_stream_fence();
    }
    for (; i < n; i++) {
        y[i] = FA_PRELU(x[i], a);
    }
}

static void FA_NAME(fwd_run_inplace)(void *xyv, const void *slope, int64_t n)
{
    FA_T *restrict xy = (FA_T *)xyv;
    const FA_C a = *(const FA_C *)slope;
    for (int64_t i = 0; i < n; i++) {
        xy[i] = FA_PRELU(xy[i], a);
    }
}

static void FA_NAME(fwd_vec)(const void *xv, const void *slopesv, void *yv,
                             int64_t n)
{
    const FA_T *restrict x = (const FA_T *)xv;
    const FA_C *restrict s = (const FA_C *)slopesv;
    FA_T *restrict y = (FA_T *)yv;
    for (int64_t i = 0; i < n; i++) {
        const FA_C a = s[i]; /* loaded on every lane, so SSE2 can if-convert */
        y[i] = FA_PRELU(x[i], a);
    }
}

static void FA_NAME(fwd_vec_inplace)(void *xyv, const void *slopesv, int64_t n)
{
    FA_T *restrict xy = (FA_T *)xyv;
    const FA_C *restrict s = (const FA_C *)slopesv;
    for (int64_t i = 0; i < n; i++) {
        const FA_C a = s[i];
        xy[i] = FA_PRELU(xy[i], a);
    }
}

/*
 * Element i always goes to lane i % FA_LANES, and each lane sums its elements
 * in order, whether or not a head is peeled for streaming.  The main loops
 * keep acc[j] = lane (head + j) % FA_LANES so that they can start at i = head.
 */
static double FA_NAME(bwd_run)(const void *gv, const void *xv, const void *slope,
                               void *giv, int64_t n, int streaming)
{
    const FA_T *restrict g = (const FA_T *)gv;
    const FA_T *restrict x = (const FA_T *)xv;
    FA_T *restrict gi = (FA_T *)giv;
    const FA_C a = *(const FA_C *)slope;
    double lane[FA_LANES] = {0};
    double acc[FA_LANES];
    int64_t i = 0, head = 0;
    const int stream = FA_HAVE_STREAM && streaming;

    if (stream) {
        head = fa_elems_to_line(gi, sizeof(FA_T)); /* < FA_GRAIN */
        if (head > n) {
            head = n;
        }
        for (; i < head; i++) { /* not hot: less than a line */
            gi[i] = FA_DPRELU(x[i], g[i], a);
            lane[i % FA_LANES] += FA_SLOPE_TERM(x[i], g[i]);
        }
    }
    for (int j = 0; j < FA_LANES; j++) { /* not hot: once per run */
        acc[j] = lane[(head + j) % FA_LANES];
    }
    if (stream) {
        for (int64_t len; (len = FA_STREAM_LEN(n - i)) > 0; i += len) {
            FA_ALIGNED(FA_LINE) FA_T tmp[FA_BLOCK];
            const FA_T *restrict xb = x + i;
            const FA_T *restrict gb = g + i;
            for (int64_t b = 0; b < len; b += FA_LANES) {
                for (int j = 0; j < FA_LANES; j++) {
                    tmp[b + j] = FA_DPRELU(xb[b + j], gb[b + j], a);
                    acc[j] += FA_SLOPE_TERM(xb[b + j], gb[b + j]);
                }
            }
            fa_stream_block(gi + i, tmp, (size_t)len * sizeof(FA_T));
        }
        fa_stream_fence();
    }
    for (; i + FA_LANES <= n; i += FA_LANES) {
        for (int j = 0; j < FA_LANES; j++) {
            gi[i + j] = FA_DPRELU(x[i + j], g[i + j], a);
            acc[j] += FA_SLOPE_TERM(x[i + j], g[i + j]);
        }
    }
    for (int j = 0; i < n; i++, j++) {
        gi[i] = FA_DPRELU(x[i], g[i], a);
        acc[j] += FA_SLOPE_TERM(x[i], g[i]);
    }
    for (int j = 0; j < FA_LANES; j++) { /* not hot: once per run */
        lane[(head + j) % FA_LANES] = acc[j];
    }
    return fa_sum_lanes(lane);
}

static double FA_NAME(bwd_run_inplace)(void *gv, const void *xv,
                                       const void *slope, int64_t n)
{
    FA_T *restrict g = (FA_T *)gv; /* read and written: the only pointer to it */
    const FA_T *restrict x = (const FA_T *)xv;
    const FA_C a = *(const FA_C *)slope;
    double acc[FA_LANES];
    int64_t i = 0;
    for (int j = 0; j < FA_LANES; j++) {
        acc[j] = 0.0;
    }
    for (; i + FA_LANES <= n; i += FA_LANES) {
        for (int j = 0; j < FA_LANES; j++) {
            const FA_T xe = x[i + j], ge = g[i + j];
            g[i + j] = FA_DPRELU(xe, ge, a);
            acc[j] += FA_SLOPE_TERM(xe, ge);
        }
    }
    for (int j = 0; i < n; i++, j++) {
        const FA_T ge = g[i];
        acc[j] += FA_SLOPE_TERM(x[i], ge);
        g[i] = FA_DPRELU(x[i], ge, a);
    }
    return fa_sum_lanes(acc);
}

/* rows rows of w contiguous elements, element j of a row with slope
 * slopes[j] and its slope term added to acc[j]: the w sums stay in L1 (the
 * tile of a channels-last array is many short rows) */
static void FA_NAME(bwd_vec)(const void *gv, const void *xv, const void *slopesv,
                             void *giv, double *restrict acc, int64_t w,
                             int64_t rows)
{
    const FA_C *restrict s = (const FA_C *)slopesv;
    for (int64_t r = 0; r < rows; r++) { /* not hot: rows of the tile */
        const FA_T *restrict g = (const FA_T *)gv + r * w;
        const FA_T *restrict x = (const FA_T *)xv + r * w;
        FA_T *restrict gi = (FA_T *)giv + r * w;
        for (int64_t i = 0; i < w; i++) {
            const FA_C a = s[i];
            gi[i] = FA_DPRELU(x[i], g[i], a);
            acc[i] += FA_SLOPE_TERM(x[i], g[i]);
        }
    }
}

static void FA_NAME(bwd_vec_inplace)(void *gv, const void *xv,
                                     const void *slopesv, double *restrict acc,
                                     int64_t w, int64_t rows)
{
    const FA_C *restrict s = (const FA_C *)slopesv;
    for (int64_t r = 0; r < rows; r++) { /* not hot: rows of the tile */
        FA_T *restrict g = (FA_T *)gv + r * w;
        const FA_T *restrict x = (const FA_T *)xv + r * w;
        for (int64_t i = 0; i < w; i++) {
            const FA_T ge = g[i];
            const FA_C a = s[i];
            acc[i] += FA_SLOPE_TERM(x[i], ge);
            g[i] = FA_DPRELU(x[i], ge, a);
        }
    }
}

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

static void FA_NAME(copy)(const void *srcv, void *dstv, int64_t n, int streaming)
{
    const FA_T *restrict src = (const FA_T *)srcv;
    FA_T *restrict dst = (FA_T *)dstv;
    int64_t i = 0;
    if (FA_HAVE_STREAM && streaming) {
        int64_t head = fa_elems_to_line(dst, sizeof(FA_T));
        if (head > n) {
            head = n;
        }
        for (; i < head; i++) {
            dst[i] = src[i];
        }
        for (int64_t len; (len = FA_STREAM_LEN(n - i)) > 0; i += len) { /* not hot: SIMD inside */
            fa_stream_block(dst + i, src + i, (size_t)len * sizeof(FA_T));
        }
        fa_stream_fence();
    }
    for (; i < n; i++) {
        dst[i] = src[i];
    }
}

static void FA_NAME(scale_inplace)(void *xv, double factor, int64_t n)
{
    FA_T *x = (FA_T *)xv;
    const FA_C f = (FA_C)factor;
    for (int64_t i = 0; i < n; i++) {
        x[i] = FA_STORE(FA_LOAD(x[i]) * f);
    }
}

static void FA_NAME(add)(const void *av, const void *bv, void *zv, int64_t n,
                         int streaming)
{
    const FA_T *restrict a = (const FA_T *)av;
    const FA_T *restrict b = (const FA_T *)bv;
    FA_T *restrict z = (FA_T *)zv;
    int64_t i = 0;
    if (FA_HAVE_STREAM && streaming) {
        int64_t head = fa_elems_to_line(z, sizeof(FA_T));
        if (head > n) {
            head = n;
        }
        for (; i < head; i++) {
            z[i] = FA_STORE(FA_LOAD(a[i]) + FA_LOAD(b[i]));
        }
        for (int64_t len; (len = FA_STREAM_LEN(n - i)) > 0; i += len) {
            FA_ALIGNED(FA_LINE) FA_T tmp[FA_BLOCK];
            for (int64_t j = 0; j < len; j++) {
                tmp[j] = FA_STORE(FA_LOAD(a[i + j]) + FA_LOAD(b[i + j]));
            }
            fa_stream_block(z + i, tmp, (size_t)len * sizeof(FA_T));
        }
        fa_stream_fence();
    }
    for (; i < n; i++) {
        z[i] = FA_STORE(FA_LOAD(a[i]) + FA_LOAD(b[i]));
    }
}

/* --- the family's elementwise ops (src/ops.h) ------------------------------
 *
 * One loop per op, chosen outside the loop; in-place versions have a single
 * pointer to the array they rewrite.  ELU for a float compute type:
 * fa_math.h's vectorisable alpha * expm1 (float with FMA, within an ulp) and
 * exp (double, the gradient rounded once); for float64, libm's expm1/exp
 * (scalar), which keep float64 within an ulp.
 */
#if FA_C_IS_DOUBLE
#define FA_SCALED_EXPM1(v, a) ((a) * expm1(v))
#define FA_EXP(v) exp(v)
#else
#define FA_SCALED_EXPM1(v, a) fa_scaled_expm1_f(v, a)
#define FA_EXP(v) fa_exp_nonpos((double)(v))
#endif

/* the op's parameters in the compute type; ELU's alpha also in double, so
 * that its gradient g * (alpha * exp(x)) is rounded once.  Loops load their operands into
 * locals first: a load inside a select would be a conditional load, which
 * only some ISAs can vectorise. */
#define FA_UNARY_PARAMS                     \
    const FA_C p0 = (FA_C)p[0];             \
    const FA_C p1 = (FA_C)p[1];             \
    const FA_C p2 = (FA_C)p[2];             \
    const double alpha = (double)p0;        \
    (void)p1;                               \
    (void)p2;                               \
    (void)alpha

static inline void FA_NAME(unary_fwd_block)(int op, const double *p, const FA_T *restrict x, FA_T *restrict y, int64_t n)
{
    FA_UNARY_PARAMS;
    switch (op) {
    case FA_OP_LEAKY_RELU:
        for (int64_t i = 0; i < n; i++) {
            const FA_C v = FA_LOAD(x[i]);
            y[i] = FA_STORE(FA_LEAKY_F(v, p0));
        }
        break;
    case FA_OP_RELU:
        for (int64_t i = 0; i < n; i++) {
            const FA_C v = FA_LOAD(x[i]);
            y[i] = FA_STORE(FA_RELU_F(v, p0, p1, p2));
        }
        break;
    case FA_OP_RELU_PLAIN:
        for (int64_t i = 0; i < n; i++) {
            const FA_C v = FA_LOAD(x[i]);
            y[i] = FA_STORE(FA_RELU_PLAIN_F(v));
        }
        break;
    case FA_OP_ELU:
#if FA_C_IS_DOUBLE
        for (int64_t i = 0; i < n; i++) { /* scalar: libm's exp, expm1 */
            const FA_C v = FA_LOAD(x[i]);
            y[i] = FA_STORE(FA_ELU_F(v, p0, FA_SCALED_EXPM1));
        }
#else
        if (!fa_alpha_is_ordinary_f(p0)) {
            for (int64_t i = 0; i < n; i++) {
                const FA_C v = FA_LOAD(x[i]);
                y[i] = FA_STORE(FA_ELU_F(v, p0, fa_scaled_expm1_special_f));
            }
            break;
        }
        for (int64_t i = 0; i < n; i++) { /* scalar on baseline: fmaf is a library call without FMA */
            const FA_C v = FA_LOAD(x[i]);
            y[i] = FA_STORE(FA_ELU_F(v, p0, FA_SCALED_EXPM1));
        }
#endif
        break;
    case FA_OP_SQUARE:
        for (int64_t i = 0; i < n; i++) {
            const FA_C v = FA_LOAD(x[i]);
            y[i] = FA_STORE(FA_SQUARE_F(v));
        }
        break;
    default:
        break;
    }
}

static inline void FA_NAME(unary_fwd_inplace_block)(int op, const double *p, FA_T *restrict xy, int64_t n)
{
    FA_UNARY_PARAMS;
    switch (op) {
    case FA_OP_LEAKY_RELU:
        for (int64_t i = 0; i < n; i++) {
            const FA_C v = FA_LOAD(xy[i]);
            xy[i] = FA_STORE(FA_LEAKY_F(v, p0));
        }
        break;
    case FA_OP_RELU:
        for (int64_t i = 0; i < n; i++) {
            const FA_C v = FA_LOAD(xy[i]);
            xy[i] = FA_STORE(FA_RELU_F(v, p0, p1, p2));
        }
        break;
    case FA_OP_RELU_PLAIN:
        for (int64_t i = 0; i < n; i++) {
            const FA_C v = FA_LOAD(xy[i]);
            xy[i] = FA_STORE(FA_RELU_PLAIN_F(v));
        }
        break;
    case FA_OP_ELU:
#if FA_C_IS_DOUBLE
        for (int64_t i = 0; i < n; i++) { /* scalar: libm's exp, expm1 */
            const FA_C v = FA_LOAD(xy[i]);
            xy[i] = FA_STORE(FA_ELU_F(v, p0, FA_SCALED_EXPM1));
        }
#else
        if (!fa_alpha_is_ordinary_f(p0)) {
            for (int64_t i = 0; i < n; i++) {
                const FA_C v = FA_LOAD(xy[i]);
                xy[i] = FA_STORE(FA_ELU_F(v, p0, fa_scaled_expm1_special_f));
            }
            break;
        }
        for (int64_t i = 0; i < n; i++) { /* scalar on baseline: fmaf is a library call without FMA */
            const FA_C v = FA_LOAD(xy[i]);
            xy[i] = FA_STORE(FA_ELU_F(v, p0, FA_SCALED_EXPM1));
        }
#endif
        break;
    case FA_OP_SQUARE:
        for (int64_t i = 0; i < n; i++) {
            const FA_C v = FA_LOAD(xy[i]);
            xy[i] = FA_STORE(FA_SQUARE_F(v));
        }
        break;
    default:
        break;
    }
}

static inline void FA_NAME(unary_bwd_block)(int op, const double *p, const FA_T *restrict g, const FA_T *restrict x,
                                            FA_T *restrict gi, int64_t n)
{
    FA_UNARY_PARAMS;
    switch (op) {
    case FA_OP_LEAKY_RELU:
        for (int64_t i = 0; i < n; i++) {
            const FA_C gv = FA_LOAD(g[i]);
            const FA_C v = FA_LOAD(x[i]);
            gi[i] = FA_STORE(FA_LEAKY_B(gv, v, p0));
        }
        break;
    case FA_OP_RELU:
        for (int64_t i = 0; i < n; i++) {
            const FA_C gv = FA_LOAD(g[i]);
            const FA_C v = FA_LOAD(x[i]);
            gi[i] = FA_STORE(FA_RELU_B(gv, v, p0, p1, p2));
        }
        break;
    case FA_OP_RELU_PLAIN:
        for (int64_t i = 0; i < n; i++) {
            const FA_C gv = FA_LOAD(g[i]);
            const FA_C v = FA_LOAD(x[i]);
            gi[i] = FA_STORE(FA_RELU_PLAIN_B(gv, v));
        }
        break;
    case FA_OP_ELU:
#if FA_C_IS_DOUBLE
        for (int64_t i = 0; i < n; i++) { /* scalar: libm's exp, expm1 */
            const FA_C gv = FA_LOAD(g[i]);
            const FA_C v = FA_LOAD(x[i]);
            gi[i] = FA_STORE((FA_C)FA_ELU_B((double)gv, v, alpha, FA_EXP));
        }
#else
        for (int64_t i = 0; i < n; i++) {
            const FA_C gv = FA_LOAD(g[i]);
            const FA_C v = FA_LOAD(x[i]);
            gi[i] = FA_STORE((FA_C)FA_ELU_B((double)gv, v, alpha, FA_EXP));
        }
#endif
        break;
    case FA_OP_SQUARE:
        for (int64_t i = 0; i < n; i++) {
            const FA_C gv = FA_LOAD(g[i]);
            const FA_C v = FA_LOAD(x[i]);
            gi[i] = FA_STORE(FA_SQUARE_B(gv, v));
        }
        break;
    case FA_OP_ELU_OUTPUT:
        for (int64_t i = 0; i < n; i++) {
            const FA_C gv = FA_LOAD(g[i]);
            const FA_C v = FA_LOAD(x[i]);
            gi[i] = FA_STORE((FA_C)FA_ELU_OUTPUT_B((double)gv, v, alpha));
        }
        break;
    default:
        break;
    }
}

static inline void FA_NAME(unary_bwd_inplace_block)(int op, const double *p, FA_T *restrict g, const FA_T *restrict x,
                                                    int64_t n)
{
    FA_UNARY_PARAMS;
    switch (op) {
    case FA_OP_LEAKY_RELU:
        for (int64_t i = 0; i < n; i++) {
            const FA_C gv = FA_LOAD(g[i]);
            const FA_C v = FA_LOAD(x[i]);
            g[i] = FA_STORE(FA_LEAKY_B(gv, v, p0));
        }
        break;
    case FA_OP_RELU:
        for (int64_t i = 0; i < n; i++) {
            const FA_C gv = FA_LOAD(g[i]);
            const FA_C v = FA_LOAD(x[i]);
            g[i] = FA_STORE(FA_RELU_B(gv, v, p0, p1, p2));
        }
        break;
    case FA_OP_RELU_PLAIN:
        for (int64_t i = 0; i < n; i++) {
            const FA_C gv = FA_LOAD(g[i]);
            const FA_C v = FA_LOAD(x[i]);
            g[i] = FA_STORE(FA_RELU_PLAIN_B(gv, v));
        }
        break;
    case FA_OP_ELU:
#if FA_C_IS_DOUBLE
        for (int64_t i = 0; i < n; i++) { /* scalar: libm's exp, expm1 */
            const FA_C gv = FA_LOAD(g[i]);
            const FA_C v = FA_LOAD(x[i]);
            g[i] = FA_STORE((FA_C)FA_ELU_B((double)gv, v, alpha, FA_EXP));
        }
#else
        for (int64_t i = 0; i < n; i++) {
            const FA_C gv = FA_LOAD(g[i]);
            const FA_C v = FA_LOAD(x[i]);
            g[i] = FA_STORE((FA_C)FA_ELU_B((double)gv, v, alpha, FA_EXP));
        }
#endif
        break;
    case FA_OP_SQUARE:
        for (int64_t i = 0; i < n; i++) {
            const FA_C gv = FA_LOAD(g[i]);
            const FA_C v = FA_LOAD(x[i]);
            g[i] = FA_STORE(FA_SQUARE_B(gv, v));
        }
        break;
    case FA_OP_ELU_OUTPUT:
        for (int64_t i = 0; i < n; i++) {
            const FA_C gv = FA_LOAD(g[i]);
            const FA_C v = FA_LOAD(x[i]);
            g[i] = FA_STORE((FA_C)FA_ELU_OUTPUT_B((double)gv, v, alpha));
        }
        break;
    default:
        break;
    }
}

/* Compute-bound ops (ELU: over 30 instructions per vector) consume their
 * input too slowly for the hardware prefetchers to run ahead of them from
 * memory: ELU took twice as long per element on arrays past the cache.  On
 * such arrays (those that get streaming stores) they fetch FA_AHEAD elements
 * ahead by hand.  Prefetches never fault, past the end of an array included. */
#define FA_AHEAD 512
#define FA_HEAVY(op) ((op) == FA_OP_ELU)

static inline void FA_NAME(prefetch)(const FA_T *a, int64_t len)
{
    for (int64_t j = 0; j < len; j += FA_LINE / (int64_t)sizeof(FA_T)) { /* not hot: one per line */
        __builtin_prefetch(a + FA_AHEAD + j, 0, 0);
    }
}

/* Out of place, with streaming stores for large outputs: each block is
 * computed into L1 and streamed out in whole lines (see fwd_run). */
static void FA_NAME(unary_fwd)(int op, const double *p, const void *xv, void *yv,
                               int64_t n, int streaming)
{
    const FA_T *x = (const FA_T *)xv;
    FA_T *y = (FA_T *)yv;
    const int heavy = FA_HEAVY(op);
    int64_t i = 0;
    if (FA_HAVE_STREAM && streaming) {
        int64_t head = fa_elems_to_line(y, sizeof(FA_T));
        i = head > n ? n : head;
        FA_NAME(unary_fwd_block)(op, p, x, y, i);
        for (int64_t len; (len = FA_STREAM_LEN(n - i)) > 0; i += len) { /* not hot: blocks */
            FA_ALIGNED(FA_LINE) FA_T tmp[FA_BLOCK];
            if (heavy) {
                FA_NAME(prefetch)(x + i, len);
            }
            FA_NAME(unary_fwd_block)(op, p, x + i, tmp, len);
            fa_stream_block(y + i, tmp, (size_t)len * sizeof(FA_T));
        }
        fa_stream_fence();
    }
    FA_NAME(unary_fwd_block)(op, p, x + i, y + i, n - i);
}

static void FA_NAME(unary_fwd_inplace)(int op, const double *p, void *xyv, int64_t n)
{
    FA_NAME(unary_fwd_inplace_block)(op, p, (FA_T *)xyv, n);
}

static void FA_NAME(unary_bwd)(int op, const double *p, const void *gv,
                               const void *xv, void *giv, int64_t n, int streaming)
{
    const FA_T *g = (const FA_T *)gv;
    const FA_T *x = (const FA_T *)xv;
    FA_T *gi = (FA_T *)giv;
    const int heavy = FA_HEAVY(op);
    int64_t i = 0;
    if (FA_HAVE_STREAM && streaming) {
        int64_t head = fa_elems_to_line(gi, sizeof(FA_T));
        i = head > n ? n : head;
        FA_NAME(unary_bwd_block)(op, p, g, x, gi, i);
        for (int64_t len; (len = FA_STREAM_LEN(n - i)) > 0; i += len) { /* not hot: blocks */
            FA_ALIGNED(FA_LINE) FA_T tmp[FA_BLOCK];
            if (heavy) {
                FA_NAME(prefetch)(g + i, len);
                FA_NAME(prefetch)(x + i, len);
            }
            FA_NAME(unary_bwd_block)(op, p, g + i, x + i, tmp, len);
            fa_stream_block(gi + i, tmp, (size_t)len * sizeof(FA_T));
        }
        fa_stream_fence();
    }
    FA_NAME(unary_bwd_block)(op, p, g + i, x + i, gi + i, n - i);
}

static void FA_NAME(unary_bwd_inplace)(int op, const double *p, void *gv,
                                       const void *xv, int64_t n)
{
    FA_NAME(unary_bwd_inplace_block)(op, p, (FA_T *)gv, (const FA_T *)xv, n);
}

static const fa_kernels FA_NAME(table) = {
    sizeof(FA_T),
    sizeof(FA_C),
    FA_NAME(fwd_run),
    FA_NAME(fwd_run_inplace),
    FA_NAME(fwd_vec),
    FA_NAME(fwd_vec_inplace),
    FA_NAME(bwd_run),
    FA_NAME(bwd_run_inplace),
    FA_NAME(bwd_vec),
    FA_NAME(bwd_vec_inplace),
    FA_NAME(expand_slopes),
    FA_NAME(copy),
    FA_NAME(scale_inplace),
    FA_NAME(add),
    FA_NAME(unary_fwd),
    FA_NAME(unary_fwd_inplace),
    FA_NAME(unary_bwd),
    FA_NAME(unary_bwd_inplace),
};

#undef FA_PRELU
#undef FA_DPRELU
#undef FA_SLOPE_TERM
#undef FA_BLOCK
#undef FA_STREAM_LEN
#undef FA_GRAIN
#undef FA_SCALED_EXPM1
#undef FA_EXP
#undef FA_UNARY_PARAMS
#undef FA_AHEAD
#undef FA_HEAVY
