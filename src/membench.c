/*
 * Memory ceilings for the benchmark: a copy, an in-place read-modify-write
 * and a read-two-write-one, through the same kernels table, work items and
 * thread policy as the real kernels, so the ratios compare like with like.
 */
#include "fastact.h"
#include "kernels.h"
#include "ops.h"
#include "parallel.h"

#define FA_ITEM ((int64_t)16384)

typedef struct {
    const fa_kernels *k;
    const char *a, *b;
    char *z;
    int64_t n;
    int streaming;
    double factor;
} membench_job;

static inline int64_t item_len(const membench_job *job, int64_t j)
{
    return job->n - j * FA_ITEM < FA_ITEM ? job->n - j * FA_ITEM : FA_ITEM;
}

static void copy_items(void *ctx, int64_t begin, int64_t end)
{
    const membench_job *job = (const membench_job *)ctx;
    const size_t es = job->k->elsize;
    for (int64_t j = begin; j < end; j++) {
        job->k->copy(job->a + j * FA_ITEM * es, job->z + j * FA_ITEM * es,
                     item_len(job, j), job->streaming);
    }
}

static void scale_items(void *ctx, int64_t begin, int64_t end)
{
    const membench_job *job = (const membench_job *)ctx;
    const size_t es = job->k->elsize;
    for (int64_t j = begin; j < end; j++) {
        job->k->scale_inplace(job->z + j * FA_ITEM * es, job->factor,
                              item_len(job, j));
    }
}

static void add_items(void *ctx, int64_t begin, int64_t end)
{
    const membench_job *job = (const membench_job *)ctx;
    const size_t es = job->k->elsize;
    for (int64_t j = begin; j < end; j++) {
        job->k->add(job->a + j * FA_ITEM * es, job->b + j * FA_ITEM * es,
                    job->z + j * FA_ITEM * es, item_len(job, j), job->streaming);
    }
}

static int64_t nitems(int64_t n) { return (n + FA_ITEM - 1) / FA_ITEM; }

void membench_copy_f32(const float *src, float *dst, int64_t n, int streaming)
{
    membench_job job = {fa_kernels_for(FA_DT_F32), (const char *)src, 0, (char *)dst, n,
                        streaming, 0.0};
    fa_parallel_for(nitems(n), 8 * n, copy_items, &job);
}

void membench_scale_inplace_f32(float *x, float factor, int64_t n)
{
    membench_job job = {fa_kernels_for(FA_DT_F32), 0, 0, (char *)x, n, 0, factor};
    fa_parallel_for(nitems(n), 8 * n, scale_items, &job);
}

void membench_add_f32(const float *a, const float *b, float *z, int64_t n,
                      int streaming)
{
    membench_job job = {fa_kernels_for(FA_DT_F32), (const char *)a, (const char *)b,
                        (char *)z, n, streaming, 0.0};
    fa_parallel_for(nitems(n), 12 * n, add_items, &job);
}
