/*
 * PReLU drivers: split an (outer, channels, inner) array into work items,
 * run the active ISA's serial kernels over them in parallel, and reduce the
 * slope gradient.  affine_prelu (prelu of x * scale + shift, per channel)
 * is prelu's forward with two more per-channel vectors: the same items,
 * threads and streaming.
 *
 * Two layouts of work items, neither depending on the thread count:
 *  - planes (inner >= FA_PLANE_MIN): item = a segment of at most FA_ITEM
 *    elements of one (n, c) plane, all with one slope; the forward's small
 *    planes (up to FA_GROUP / 2 elements) go by groups of whole planes, as
 *    many as fit in FA_GROUP elements, one kernel call each (a call and a
 *    claimed item per plane of 196 elements cost about what its elements
 *    do);
 *  - tiles (small inner, e.g. (N, C), channels-last (N*H*W, C, 1), or a
 *    shared slope on a tiny array): item = a block of rows times a run of
 *    whole channels, with the slopes expanded once per item into a vector
 *    along the contiguous axis.  When a tile spans whole rows (all channels),
 *    one kernel call covers many rows, so that channels-last arrays with few
 *    channels do not pay a call per row of C elements: the forward repeats
 *    the row's slopes along a vector of FA_TILE_W elements, the backward
 *    along FA_BWD_W and loops over such groups of rows inside the kernel, so
 *    that its per-position float64 sums stay few and in L1.
 * The backward writes one float64 partial sum per item (plane) or per
 * (row block, channel) (tile) and adds them in a fixed order, so the slope
 * gradient is bitwise the same whatever the number of threads.
 */
#include <stdlib.h>
#include <string.h>

#include "fastact.h"
#include "kernels.h"
#include "ops.h"
#include "parallel.h"
#include "stream.h"

#define FA_ITEM ((int64_t)16384)
#define FA_PLANE_MIN 64
/* the forward's items of small planes: whole planes, up to this many
 * elements; planes from FA_GROUP_PLANE_MIN elements (a tile's expanded
 * vectors cost more than a short loop per plane from there, affine_prelu's
 * three of them most) */
#define FA_GROUP ((int64_t)4096)
#define FA_GROUP_PLANE_MIN 16
/* the backward's rows per call span at least this many elements */
#define FA_BWD_W 64
/* partial sums up to this many live on the stack: no malloc for small calls */
#define FA_STACK_PARTIALS 256

typedef struct {
    const fa_kernels *k;
    const char *x;      /* forward: x; backward: x */
    const char *g;      /* backward: grad_output; forward: NULL */
    const char *slopes;
    const char *scale, *shift; /* affine_prelu's; NULL for prelu */
    char *y;            /* forward: y; backward: grad_input */
    int64_t outer, channels, inner;
    int64_t nseg;       /* planes: segments per plane */
    int64_t ppi;        /* planes: whole planes per item (forward), else 1 */
    int64_t cpt, rpt, ncolt; /* tiles: channels and rows per tile, tiles across */
    int tiles;
    int streaming;
    double *partial;
} prelu_job;

/* Fills the layout fields and returns the number of items. */
static int64_t plan(prelu_job *job)
{
    /* only unstreamed forwards group planes: a streamed output keeps its
     * blocks of whole lines (tiles below FA_PLANE_MIN, a run per plane) */
    const int grouped = job->g == NULL && !job->streaming &&
                        job->inner >= FA_GROUP_PLANE_MIN && job->inner <= FA_GROUP / 2;
    if (grouped || job->inner >= FA_PLANE_MIN) {
        job->tiles = 0;
        job->nseg = (job->inner + FA_ITEM - 1) / FA_ITEM;
        job->ppi = grouped ? FA_GROUP / job->inner : 1;
        const int64_t planes = job->outer * job->channels;
        return (planes + job->ppi - 1) / job->ppi * job->nseg;
    }
    job->tiles = 1;
    job->cpt = FA_TILE_W / job->inner;
    if (job->cpt > job->channels) {
        job->cpt = job->channels;
    }
    job->rpt = FA_ITEM / (job->cpt * job->inner);
    if (job->rpt < 1) {
        job->rpt = 1;
    }
    job->ncolt = (job->channels + job->cpt - 1) / job->cpt;
    return ((job->outer + job->rpt - 1) / job->rpt) * job->ncolt;
}

/* Plane item j: returns its channel, and sets its elements' offset and count. */
static inline int64_t plane_item(const prelu_job *job, int64_t j, int64_t *off,
                                 int64_t *len)
{
    int64_t p = j / job->nseg, s = j % job->nseg;
    int64_t start = s * FA_ITEM;
    *off = p * job->inner + start;
    *len = job->inner - start < FA_ITEM ? job->inner - start : FA_ITEM;
    return p % job->channels;
}

/* The values of channels [c0, c0 + nch) of a per-channel vector, expanded
 * into sv along the contiguous axis and repeated reps times (tile_item). */
static void expand_tile(const prelu_job *job, const char *values, int64_t c0,
                        int64_t nch, int64_t reps, char *sv)
{
    const fa_kernels *k = job->k;
    const int64_t w = nch * job->inner;
    k->expand_slopes(values + c0 * k->csize, nch, job->inner, sv);
    for (int64_t rep = 1; rep < reps; rep++) {
        memcpy(sv + rep * w * k->csize, sv, (size_t)w * k->csize);
    }
}

/* Tile item j: sets its channels [*c0, *c0 + *nch) and rows [*r0, *r1), and
 * expands their slopes into sv along the contiguous axis, repeated for as
 * many whole rows as fit in width elements when the tile spans every
 * channel; returns the number of rows sv covers. */
static int64_t tile_item(const prelu_job *job, int64_t j, int64_t width, char *sv,
                         int64_t *c0, int64_t *nch, int64_t *r0, int64_t *r1)
{
    int64_t rt = j / job->ncolt, ct = j % job->ncolt;
    *c0 = ct * job->cpt;
    *nch = job->channels - *c0 < job->cpt ? job->channels - *c0 : job->cpt;
    *r0 = rt * job->rpt;
    *r1 = *r0 + job->rpt < job->outer ? *r0 + job->rpt : job->outer;
    const int64_t w = *nch * job->inner;
    const int64_t reps = *nch == job->channels && width > w ? width / w : 1;
    expand_tile(job, job->slopes, *c0, *nch, reps, sv);
    return reps;
}

static void forward_plane(const prelu_job *job, int64_t j)
{
    const fa_kernels *k = job->k;
    const size_t es = k->elsize, cs = k->csize;
    if (job->ppi > 1) {
        const int64_t p0 = j * job->ppi, planes = job->outer * job->channels;
        k->fwd_planes(job->x, job->slopes, job->scale, job->shift, job->y, p0,
                      planes - p0 < job->ppi ? planes - p0 : job->ppi, job->channels,
                      job->inner);
        return;
    }
    int64_t off, len;
    const int64_t c = plane_item(job, j, &off, &len);
    const char *slope = job->slopes + c * cs;
    if (job->scale != NULL) {
        /* (scale, shift, slope) of the channel, as affine_run takes them */
        FA_ALIGNED(16) char p[3 * sizeof(double)];
        memcpy(p, job->scale + c * cs, cs);
        memcpy(p + cs, job->shift + c * cs, cs);
        memcpy(p + 2 * cs, slope, cs);
        if (job->y == job->x) {
            k->affine_run_inplace(job->y + off * es, p, len);
        }
        else {
            k->affine_run(job->x + off * es, p, job->y + off * es, len, job->streaming);
        }
    }
    else if (job->y == job->x) {
        job->k->fwd_run_inplace(job->y + off * es, slope, len);
    }
    else {
        job->k->fwd_run(job->x + off * es, slope, job->y + off * es, len, job->streaming);
    }
}

static void forward_tile(const prelu_job *job, int64_t j)
{
    const size_t es = job->k->elsize;
    int64_t c0, nch, r0, r1;
    FA_ALIGNED(FA_LINE) char sv[FA_TILE_W * sizeof(double)];
    FA_ALIGNED(FA_LINE) char scv[FA_TILE_W * sizeof(double)];
    FA_ALIGNED(FA_LINE) char shv[FA_TILE_W * sizeof(double)];
    const int64_t reps = tile_item(job, j, FA_TILE_W, sv, &c0, &nch, &r0, &r1);
    const int64_t w = nch * job->inner;
    if (job->scale != NULL) {
        expand_tile(job, job->scale, c0, nch, reps, scv);
        expand_tile(job, job->shift, c0, nch, reps, shv);
    }
    for (int64_t r = r0; r < r1; r += reps) {
        const int64_t off = (r * job->channels + c0) * job->inner;
        const int64_t len = (r1 - r < reps ? r1 - r : reps) * w;
        if (job->scale != NULL) {
            if (job->y == job->x) {
                job->k->affine_vec_inplace(job->y + off * es, scv, shv, sv, len);
            }
            else {
                job->k->affine_vec(job->x + off * es, scv, shv, sv, job->y + off * es, len);
            }
        }
        else if (job->y == job->x) {
            job->k->fwd_vec_inplace(job->y + off * es, sv, len);
        }
        else {
            job->k->fwd_vec(job->x + off * es, sv, job->y + off * es, len);
        }
    }
}

static void backward_plane(const prelu_job *job, int64_t j)
{
    const size_t es = job->k->elsize;
    int64_t off, len;
    const char *slope = job->slopes + plane_item(job, j, &off, &len) * job->k->csize;
    if (job->y == job->g) {
        job->partial[j] = job->k->bwd_run_inplace(job->y + off * es, job->x + off * es,
                                                  slope, len);
    }
    else {
        job->partial[j] = job->k->bwd_run(job->g + off * es, job->x + off * es, slope,
                                          job->y + off * es, len, job->streaming);
    }
}

/* bwd_vec over rows contiguous rows of w elements from element off, into
 * grad_output itself when in place */
static void tile_rows_backward(const prelu_job *job, int64_t off, int64_t w,
                               int64_t rows, const char *sv, double *acc)
{
    const size_t es = job->k->elsize;
    if (job->y == job->g) {
        job->k->bwd_vec_inplace(job->y + off * es, job->x + off * es, sv, acc, w, rows);
    }
    else {
        job->k->bwd_vec(job->g + off * es, job->x + off * es, sv, job->y + off * es,
                        acc, w, rows);
    }
}

static void backward_tile(const prelu_job *job, int64_t j)
{
    int64_t c0, nch, r0, r1;
    FA_ALIGNED(FA_LINE) char sv[FA_TILE_W * sizeof(double)];
    double acc[FA_TILE_W];
    /* whole rows (all channels) are contiguous: one call covers groups
     * of reps rows (at least FA_BWD_W elements wide, so short rows do not
     * make short loops), looping over the groups inside the kernel, so
     * that the reps * w float64 sums stay few and in L1 */
    const int64_t reps = tile_item(job, j, FA_BWD_W, sv, &c0, &nch, &r0, &r1);
    const int64_t w = nch * job->inner;
    const int64_t wr = reps * w;
    memset(acc, 0, (size_t)wr * sizeof(double));
    if (nch == job->channels) {           /* always so when reps > 1 */
        const int64_t groups = (r1 - r0) / reps;
        const int64_t off = (r0 * job->channels + c0) * job->inner;
        tile_rows_backward(job, off, wr, groups, sv, acc);
        /* the rows left over, fewer than reps */
        tile_rows_backward(job, off + groups * wr, (r1 - r0 - groups * reps) * w, 1, sv, acc);
    }
    else {
        for (int64_t r = r0; r < r1; r++) {
            tile_rows_backward(job, (r * job->channels + c0) * job->inner, w, 1, sv, acc);
        }
    }
    double *out = job->partial + (j / job->ncolt) * job->channels + c0;
    for (int64_t ch = 0; ch < nch; ch++) {
        double s = 0.0;
        for (int64_t rep = 0; rep < reps; rep++) {
            for (int64_t i = 0; i < job->inner; i++) {
                s += acc[rep * w + ch * job->inner + i];
            }
        }
        out[ch] = s;
    }
}

/* fa_parallel_for's body: items [begin, end) of the job, the forward's or,
 * when there is a grad_output, the backward's */
static void run_items(void *ctx, int64_t begin, int64_t end)
{
    const prelu_job *job = (const prelu_job *)ctx;
    for (int64_t j = begin; j < end; j++) {
        if (job->g == NULL) {
            if (job->tiles) {
                forward_tile(job, j);
            }
            else {
                forward_plane(job, j);
            }
        }
        else if (job->tiles) {
            backward_tile(job, j);
        }
        else {
            backward_plane(job, j);
        }
    }
}

/* A job over x (and g for the backward) into y, planned: returns the number
 * of items.  y streams (bypasses the cache) when it is a large output of its
 * own, not an input overwritten in place. */
static int64_t start_job(prelu_job *job, const fa_kernels *k, const void *g,
                         const void *x, const void *slopes, void *y, int64_t outer,
                         int64_t channels, int64_t inner)
{
    const void *in = g != NULL ? g : x;
    *job = (prelu_job){0};
    job->k = k;
    job->g = (const char *)g;
    job->x = (const char *)x;
    job->slopes = (const char *)slopes;
    job->y = (char *)y;
    job->outer = outer;
    job->channels = channels;
    job->inner = inner;
    job->streaming = y != in &&
        outer * channels * inner * (int64_t)k->elsize >= fa_streaming_threshold_bytes();
    return plan(job);
}

/* prelu's forward, or affine_prelu's when scale and shift are not NULL */
static void prelu_forward(const fa_kernels *k, const void *x, const void *scale,
                          const void *shift, const void *slopes, void *y, int64_t outer,
                          int64_t channels, int64_t inner)
{
    const int64_t total = outer * channels * inner;
    if (total == 0) {
        return;
    }
    prelu_job job;
    const int64_t nitems = start_job(&job, k, NULL, x, slopes, y, outer, channels, inner);
    job.scale = (const char *)scale;
    job.shift = (const char *)shift;
    fa_parallel_for(nitems, 2 * total * (int64_t)k->elsize, run_items, &job);
}

static int prelu_backward(const fa_kernels *k, const void *g, const void *x,
                          const void *slopes, void *gi, double *grad_slopes,
                          int64_t outer, int64_t channels, int64_t inner)
{
    const int64_t total = outer * channels * inner;
    for (int64_t c = 0; c < channels; c++) {
        grad_slopes[c] = 0.0;
    }
    if (total == 0) {
        return 0;
    }
    /* A small call of planes of one item each (below the serial threshold,
     * as a (1, 16, 8, 8) array): one kernel call for all its planes, in order
     * on the calling thread, each plane's sum added to its channel's gradient
     * as it comes.  These are the sums the general path computes, added in
     * its order (over n for each channel), so the results are the same bits;
     * the job, the item arithmetic, the partial sums, the thread policy and
     * a call per plane are left out, which cost more than the work on such
     * arrays.  (Streaming stores, which only the largest outputs get, are
     * left out too.) */
    const int64_t traffic = 3 * total * (int64_t)k->elsize;
    if (inner >= FA_PLANE_MIN && inner <= FA_ITEM && traffic < FA_PARALLEL_MIN_BYTES) {
        k->bwd_planes(g, x, slopes, gi, grad_slopes, outer, channels, inner);
        return 0;
    }
    prelu_job job;
    const int64_t nitems = start_job(&job, k, g, x, slopes, gi, outer, channels, inner);
    const int64_t nrowt = job.tiles ? nitems / job.ncolt : 0;
    const int64_t npartial = job.tiles ? nrowt * channels : nitems;

    double stack_partial[FA_STACK_PARTIALS];
    double *partial = stack_partial;
    if (npartial > FA_STACK_PARTIALS) {
        partial = (double *)malloc((size_t)npartial * sizeof(double));
        if (partial == NULL) {
            return -1;
        }
    }
    job.partial = partial;
    fa_parallel_for(nitems, traffic, run_items, &job);

    /* fixed order: for each channel, over n (row blocks), then segments */
    if (job.tiles) {
        for (int64_t rt = 0; rt < nrowt; rt++) {
            for (int64_t c = 0; c < channels; c++) {
                grad_slopes[c] += partial[rt * channels + c];
            }
        }
    }
    else {
        for (int64_t n = 0; n < outer; n++) {
            for (int64_t c = 0; c < channels; c++) {
                const double *p = partial + (n * channels + c) * job.nseg;
                for (int64_t s = 0; s < job.nseg; s++) {
                    grad_slopes[c] += p[s];
                }
            }
        }
    }
    if (partial != stack_partial) {
        free(partial);
    }
    return 0;
}

int fa_prelu_forward(int dtype, const void *x, const void *slopes, void *y,
                     int64_t outer, int64_t channels, int64_t inner)
{
    if (dtype < 0 || dtype >= FA_DT_COUNT) {
        return -2;
    }
    prelu_forward(fa_kernels_for(dtype), x, NULL, NULL, slopes, y, outer, channels, inner);
    return 0;
}

int fa_affine_prelu_forward(int dtype, const void *x, const void *scale, const void *shift,
                            const void *slopes, void *y, int64_t outer, int64_t channels,
                            int64_t inner)
{
    if (dtype < 0 || dtype >= FA_DT_COUNT || scale == NULL || shift == NULL) {
        return -2;
    }
    prelu_forward(fa_kernels_for(dtype), x, scale, shift, slopes, y, outer, channels,
                  inner);
    return 0;
}

int fa_prelu_backward(int dtype, const void *grad_output, const void *x,
                      const void *slopes, void *grad_input, double *grad_slopes,
                      int64_t outer, int64_t channels, int64_t inner)
{
    if (dtype < 0 || dtype >= FA_DT_COUNT) {
        return -2;
    }
    return prelu_backward(fa_kernels_for(dtype), grad_output, x, slopes, grad_input,
                          grad_slopes, outer, channels, inner);
}
