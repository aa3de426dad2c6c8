/*
 * Drivers for the family's elementwise ops (src/ops.h): split n elements
 * into fixed items, run the active ISA's serial kernel of the dtype over
 * them in parallel.  No reductions, so any split gives the same result; the
 * fixed item size keeps every item a whole number of cache lines (except the
 * last) and large enough to amortise a call.
 */
#include "fastact.h"
#include "kernels.h"
#include "ops.h"
#include "parallel.h"

#define FA_UNARY_ITEM ((int64_t)16384)

typedef struct {
    const fa_kernels *k;
    int op;
    const double *params;
    const char *g;      /* backward: grad_output; forward: NULL */
    const char *x;
    char *y;            /* forward: y; backward: grad_input */
    int64_t n;
    int streaming;
} unary_job;

/* fa_parallel_for's body: items [begin, end) of the job, the forward's or,
 * when there is a grad_output, the backward's */
static void run_items(void *ctx, int64_t begin, int64_t end)
{
    const unary_job *job = (const unary_job *)ctx;
    const fa_kernels *k = job->k;
    const size_t es = k->elsize;
    for (int64_t j = begin; j < end; j++) {
        const int64_t off = j * FA_UNARY_ITEM;
        const int64_t len = job->n - off < FA_UNARY_ITEM ? job->n - off : FA_UNARY_ITEM;
        const char *x = job->x + off * es;
        char *y = job->y + off * es;
        if (job->g == NULL) {
            if (job->y == job->x) {
                k->unary_fwd_inplace(job->op, job->params, y, len);
            }
            else {
                k->unary_fwd(job->op, job->params, x, y, len, job->streaming);
            }
        }
        else if (job->y == job->g) {
            k->unary_bwd_inplace(job->op, job->params, y, x, len);
        }
        else {
            k->unary_bwd(job->op, job->params, job->g + off * es, x, y, len,
                         job->streaming);
        }
    }
}

/* Runs op over x (and g, the backward's grad_output; NULL for the forward)
 * into y.  y streams (bypasses the cache) when it is a large output of its
 * own, not an input overwritten in place; the traffic is each input read
 * once and y written once. */
static void run(int dtype, int op, const double *params, const void *g, const void *x,
                void *y, int64_t n)
{
    const void *in = g != NULL ? g : x;
    unary_job job = {fa_kernels_for(dtype), op, params, (const char *)g, (const char *)x,
                     (char *)y, n, 0};
    const int64_t bytes = n * (int64_t)job.k->elsize;
    job.streaming = y != in && bytes >= fa_streaming_threshold_bytes();
    fa_parallel_for((n + FA_UNARY_ITEM - 1) / FA_UNARY_ITEM, (g != NULL ? 3 : 2) * bytes,
                    run_items, &job);
}

#define FA_OP_NAME_(NAME, name, heavy) #name,
static const char *const op_names[FA_OP_COUNT] = {
    FA_OPS(FA_OP_NAME_) FA_BACKWARD_ONLY_OPS(FA_OP_NAME_)
};
#undef FA_OP_NAME_

const char *fa_op_name(int op)
{
    return op >= 0 && op < FA_OP_COUNT ? op_names[op] : NULL;
}

static int check(int dtype, int op)
{
    return dtype >= 0 && dtype < FA_DT_COUNT && op >= 0 && op < FA_OP_COUNT ? 0 : -2;
}

int fa_unary_forward(int dtype, int op, const double params[3], const void *x,
                     void *y, int64_t n)
{
    if (check(dtype, op) != 0 || op >= FA_OP_FORWARD_COUNT) {
        return -2;
    }
    run(dtype, op, params, NULL, x, y, n);
    return 0;
}

int fa_unary_backward(int dtype, int op, const double params[3],
                      const void *grad_output, const void *x, void *grad_input,
                      int64_t n)
{
    if (check(dtype, op) != 0) {
        return -2;
    }
    run(dtype, op, params, grad_output, x, grad_input, n);
    return 0;
}
