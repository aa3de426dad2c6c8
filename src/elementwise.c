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
    const char *g;      /* backward: grad_output */
    const char *x;
    char *y;            /* forward: y; backward: grad_input */
    int64_t n;
    int streaming;
} unary_job;

static void forward_items(void *ctx, int64_t begin, int64_t end)
{
    const unary_job *job = (const unary_job *)ctx;
    const size_t es = job->k->elsize;
    for (int64_t j = begin; j < end; j++) {
        const int64_t off = j * FA_UNARY_ITEM;
        const int64_t len = job->n - off < FA_UNARY_ITEM ? job->n - off : FA_UNARY_ITEM;
        if (job->y == job->x) {
            job->k->unary_fwd_inplace(job->op, job->params, job->y + off * es, len);
        }
        else {
            job->k->unary_fwd(job->op, job->params, job->x + off * es,
                              job->y + off * es, len, job->streaming);
        }
    }
}

static void backward_items(void *ctx, int64_t begin, int64_t end)
{
    const unary_job *job = (const unary_job *)ctx;
    const size_t es = job->k->elsize;
    for (int64_t j = begin; j < end; j++) {
        const int64_t off = j * FA_UNARY_ITEM;
        const int64_t len = job->n - off < FA_UNARY_ITEM ? job->n - off : FA_UNARY_ITEM;
        if (job->y == job->g) {
            job->k->unary_bwd_inplace(job->op, job->params, job->y + off * es,
                                      job->x + off * es, len);
        }
        else {
            job->k->unary_bwd(job->op, job->params, job->g + off * es,
                              job->x + off * es, job->y + off * es, len,
                              job->streaming);
        }
    }
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
    unary_job job = {fa_kernels_for(dtype), op, params, 0, (const char *)x,
                     (char *)y, n, 0};
    job.streaming = y != x && n * (int64_t)job.k->elsize >= fa_streaming_threshold_bytes();
    fa_parallel_for((n + FA_UNARY_ITEM - 1) / FA_UNARY_ITEM,
                    2 * n * (int64_t)job.k->elsize, forward_items, &job);
    return 0;
}

int fa_unary_backward(int dtype, int op, const double params[3],
                      const void *grad_output, const void *x, void *grad_input,
                      int64_t n)
{
    if (check(dtype, op) != 0) {
        return -2;
    }
    unary_job job = {fa_kernels_for(dtype), op, params, (const char *)grad_output,
                     (const char *)x, (char *)grad_input, n, 0};
    job.streaming = grad_input != grad_output
                    && n * (int64_t)job.k->elsize >= fa_streaming_threshold_bytes();
    fa_parallel_for((n + FA_UNARY_ITEM - 1) / FA_UNARY_ITEM,
                    3 * n * (int64_t)job.k->elsize, backward_items, &job);
    return 0;
}
