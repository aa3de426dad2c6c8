/*
 * The memory ceilings (membench.h), compiled once per ISA of isa.h: each
 * ISA's work-item functions are the same inlined loops under that ISA's
 * target, and a call runs those of the ISA the kernels use now.  Work items
 * of FA_ITEM elements and the traffic passed to parallel_for are those of
 * the kernels (prelu.c), and the streamed blocks those of kernels_impl.h.
 */
#include "isa.h"
#include "membench.h"
#include "stream.h"

#define FA_ITEM ((int64_t)16384)
/* floats per streamed block, of a whole line, and the next block's length
 * when rem are left (see kernels_impl.h's FA_BLOCK and FA_STREAM_LEN) */
#define FA_BLOCK ((int64_t)(512 / sizeof(float)))
#define FA_GRAIN ((int64_t)(FA_LINE / sizeof(float)))
#define FA_STREAM_LEN(rem) ((rem) >= FA_BLOCK ? FA_BLOCK : (rem) / FA_GRAIN * FA_GRAIN)

#define FA_INLINE static inline __attribute__((always_inline))

typedef struct {
    const float *a, *b;
    float *z;
    int64_t n;
    int streaming;
    float factor;
} membench_job;

/* z = a (sum 0), or z = a + b (sum 1); sum is a constant in each caller, so
 * that its tests fold away.  streaming == 1: z's whole lines with
 * non-temporal stores (a copy's straight from a, a sum's through a block in
 * L1), the head before z's first whole line and the tail ordinarily. */
FA_INLINE void stream_run(int sum, const float *restrict a, const float *restrict b,
                          float *restrict z, int64_t n, int streaming)
{
    int64_t i = 0;
    if (FA_HAVE_STREAM && streaming) {
        int64_t head = fa_elems_to_line(z, sizeof(float));
        if (head > n) {
            head = n;
        }
        for (; i < head; i++) {
            z[i] = sum ? a[i] + b[i] : a[i];
        }
        for (int64_t len; (len = FA_STREAM_LEN(n - i)) > 0; i += len) {
            if (!sum) {
                fa_stream_block(z + i, a + i, (size_t)len * sizeof(float));
                continue;
            }
            FA_ALIGNED(FA_LINE) float tmp[FA_BLOCK];
            for (int64_t j = 0; j < len; j++) {
                tmp[j] = a[i + j] + b[i + j];
            }
            fa_stream_block(z + i, tmp, (size_t)len * sizeof(float));
        }
        fa_stream_fence();
    }
    for (; i < n; i++) {
        z[i] = sum ? a[i] + b[i] : a[i];
    }
}

FA_INLINE void scale_run(float *restrict x, float factor, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        x[i] = x[i] * factor;
    }
}

static inline int64_t item_len(const membench_job *job, int64_t j)
{
    return job->n - j * FA_ITEM < FA_ITEM ? job->n - j * FA_ITEM : FA_ITEM;
}

FA_INLINE void copy_items(void *ctx, int64_t begin, int64_t end)
{
    const membench_job *job = (const membench_job *)ctx;
    for (int64_t j = begin; j < end; j++) {
        stream_run(0, job->a + j * FA_ITEM, NULL, job->z + j * FA_ITEM, item_len(job, j),
                   job->streaming);
    }
}

FA_INLINE void scale_items(void *ctx, int64_t begin, int64_t end)
{
    const membench_job *job = (const membench_job *)ctx;
    for (int64_t j = begin; j < end; j++) {
        scale_run(job->z + j * FA_ITEM, job->factor, item_len(job, j));
    }
}

FA_INLINE void add_items(void *ctx, int64_t begin, int64_t end)
{
    const membench_job *job = (const membench_job *)ctx;
    for (int64_t j = begin; j < end; j++) {
        stream_run(1, job->a + j * FA_ITEM, job->b + j * FA_ITEM, job->z + j * FA_ITEM,
                   item_len(job, j), job->streaming);
    }
}

/* each ISA's work-item functions, the loops above compiled for its target */
typedef struct {
    fa_body copy, scale, add;
} membench_isa;

#define FA_MEMBENCH_ISA_(name, target, cpu_test)                                   \
    static FA_TARGET_ATTRIBUTE(target) void copy_items_##name(void *ctx, int64_t begin,  \
                                                              int64_t end)              \
    {                                                                                   \
        copy_items(ctx, begin, end);                                                    \
    }                                                                                   \
    static FA_TARGET_ATTRIBUTE(target) void scale_items_##name(void *ctx, int64_t begin, \
                                                               int64_t end)             \
    {                                                                                   \
        scale_items(ctx, begin, end);                                                   \
    }                                                                                   \
    static FA_TARGET_ATTRIBUTE(target) void add_items_##name(void *ctx, int64_t begin,   \
                                                             int64_t end)               \
    {                                                                                   \
        add_items(ctx, begin, end);                                                     \
    }
FA_ISA_LIST(FA_MEMBENCH_ISA_)

#define FA_MEMBENCH_ROW_(name, target, cpu_test) \
    {copy_items_##name, scale_items_##name, add_items_##name},
static const membench_isa isas[FA_ISA_COUNT] = {FA_ISA_LIST(FA_MEMBENCH_ROW_)};

static int64_t nitems(int64_t n) { return (n + FA_ITEM - 1) / FA_ITEM; }

void membench_copy_f32(const fa_runtime *rt, const float *src, float *dst, int64_t n,
                       int streaming)
{
    membench_job job = {src, NULL, dst, n, streaming, 0.0f};
    rt->parallel_for(nitems(n), 8 * n, isas[rt->get_isa()].copy, &job);
}

void membench_scale_inplace_f32(const fa_runtime *rt, float *x, float factor, int64_t n)
{
    membench_job job = {NULL, NULL, x, n, 0, factor};
    rt->parallel_for(nitems(n), 8 * n, isas[rt->get_isa()].scale, &job);
}

void membench_add_f32(const fa_runtime *rt, const float *a, const float *b, float *z,
                      int64_t n, int streaming)
{
    membench_job job = {a, b, z, n, streaming, 0.0f};
    rt->parallel_for(nitems(n), 12 * n, isas[rt->get_isa()].add, &job);
}
