/*
 * fastact's XLA FFI handlers (src/xla_ffi.h): the kernels of fastact.h run
 * on buffers XLA owns (fastact.jax registers them with jax.ffi).  Compiled
 * into fastact._cpu; compiled again with FA_XLA_CUDA into fastact._cuda,
 * where the same handlers launch fastact's CUDA kernels on XLA's stream.
 *
 * Targets (arguments -> results; attributes):
 *   fastact_prelu_forward   x, slopes -> y;  channels, inner, x_rank
 *   fastact_prelu_backward  g, x, slopes -> grad_input, grad_slopes;
 *                           channels, inner, x_rank, span, span_slopes
 *   fastact_unary_forward   x -> y;  op, p0, p1, p2
 *   fastact_unary_backward  g, x -> grad_input;  op, p0, p1, p2
 * slopes: the `channels` slope values of x's (outer, channels, inner)
 * layout (fastact/_layout.py), in the compute dtype (float32 for float16
 * and bfloat16); x_rank: x's rank before vmap.  Leading dims beyond x_rank
 * (slopes: beyond 1) are vmap's (vmap_method "expand_dims"): each operand's
 * are the result's or 1 (broadcast).  When only x carries them, the forward
 * folds them into outer: one kernel call.  grad_slopes: per vmapped index,
 * prod(span_slopes) values, the kernel's float64 channel sums reduced over
 * the dims where span_slopes is 1 and span is not, in channel order, in
 * float64, then rounded once to the compute dtype: as fastact.prelu_backward.
 * The unary targets are vmapped with "broadcast_all": operands of one size.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fastact.h"
#include "ops.h"
#include "xla_ffi.h"
#ifdef FA_XLA_CUDA
#include "fastact_cuda.h"
#endif

#define FA_FFI_MAX_DIMS 64

/* An error for XLA, with a printf-style message (XLA copies it). */
static fa_ffi_error *fail(const fa_ffi_api *api, int errc, const char *fmt, ...)
{
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    fa_ffi_error_create_args args;
    memset(&args, 0, sizeof args);
    args.struct_size = FA_FFI_STRUCT_SIZE(fa_ffi_error_create_args, errc);
    args.message = message;
    args.errc = errc;
    return api->error_create(&args);
}

/* The API table is usable: the version this file follows and room for
 * error_create.  NULL when it is; otherwise a static description (no error
 * can be made through a table that is not). */
static const char *api_mismatch(const fa_ffi_api *api)
{
    if (api == NULL) {
        return "fastact XLA FFI: no API table in the call frame";
    }
    if (api->api_version.major_version != FA_FFI_API_MAJOR) {
        return "fastact XLA FFI: XLA's FFI API major version is not 0, the one "
               "fastact's handlers are built for";
    }
    if (!FA_FFI_API_HAS(api, error_create)) {
        return "fastact XLA FFI: XLA's FFI API table is smaller than fastact's "
               "declaration of it";
    }
    return NULL;
}

/* Answers the registration's metadata query (api version, traits): 1 when
 * call_frame was that query (*err set), 0 for an ordinary call. */
static int metadata_query(fa_ffi_call_frame *cf, fa_ffi_error **err)
{
    *err = NULL;
    for (fa_ffi_extension *e = cf->extension_start; e != NULL; e = e->next) {
        if (e->type != FA_FFI_EXTENSION_METADATA) {
            continue;
        }
        fa_ffi_metadata *m = ((fa_ffi_metadata_extension *)e)->metadata;
        if (e->struct_size < FA_FFI_STRUCT_SIZE(fa_ffi_metadata_extension, metadata) || m == NULL ||
                m->struct_size < FA_FFI_METADATA_SIZE) {
            *err = fail(cf->api, FA_FFI_FAILED_PRECONDITION,
                        "fastact XLA FFI: XLA's metadata extension (%zu bytes) or "
                        "metadata (%zu bytes) is smaller than fastact's declaration "
                        "(%zu, %zu bytes)", e->struct_size, m ? m->struct_size : 0,
                        FA_FFI_STRUCT_SIZE(fa_ffi_metadata_extension, metadata), (size_t)FA_FFI_METADATA_SIZE);
            return 1;
        }
        m->api_version.struct_size = FA_FFI_STRUCT_SIZE(fa_ffi_api_version, minor_version);
        m->api_version.extension_start = NULL;
        m->api_version.major_version = FA_FFI_API_MAJOR;
        m->api_version.minor_version = FA_FFI_API_MINOR;
        m->traits = 0;
        return 1;
    }
    return 0;
}

/* The call frame's checks common to every handler; returns an error or NULL,
 * and sets *done for a metadata query (answered). */
static fa_ffi_error *begin(fa_ffi_call_frame *cf, int64_t nargs, int64_t nrets,
                           const char *target, int *done)
{
    *done = 0;
    const char *bad = api_mismatch(cf->api);
    if (bad != NULL) {
        /* nothing can carry an error back through such a table */
        fprintf(stderr, "%s (target %s); aborting\n", bad, target);
        abort();
    }
    if (cf->struct_size < FA_FFI_CALL_FRAME_SIZE) {
        return fail(cf->api, FA_FFI_FAILED_PRECONDITION,
                    "fastact XLA FFI (%s): XLA's call frame has %zu bytes, fewer than "
                    "the %zu of fastact's declaration of XLA_FFI_CallFrame (FFI API "
                    "%d.%d)", target, cf->struct_size, (size_t)FA_FFI_CALL_FRAME_SIZE,
                    FA_FFI_API_MAJOR, FA_FFI_API_MINOR);
    }
    fa_ffi_error *err;
    if (metadata_query(cf, &err)) {
        *done = 1;
        return err;
    }
    if (cf->args.size != nargs || cf->rets.size != nrets) {
        return fail(cf->api, FA_FFI_INVALID_ARGUMENT,
                    "fastact XLA FFI (%s): called with %lld arguments and %lld results, "
                    "expected %lld and %lld", target, (long long)cf->args.size,
                    (long long)cf->rets.size, (long long)nargs, (long long)nrets);
    }
    for (int64_t i = 0; i < nargs + nrets; i++) {
        const int type = i < nargs ? cf->args.types[i] : cf->rets.types[i - nargs];
        const fa_ffi_buffer *b = (const fa_ffi_buffer *)(i < nargs ? cf->args.args[i]
                                                         : cf->rets.rets[i - nargs]);
        if (type != FA_FFI_BUFFER || b->struct_size < FA_FFI_STRUCT_SIZE(fa_ffi_buffer, dims) ||
                b->rank > FA_FFI_MAX_DIMS) {
            return fail(cf->api, FA_FFI_INVALID_ARGUMENT,
                        "fastact XLA FFI (%s): %s %lld is not a buffer of fastact's "
                        "declared XLA_FFI_Buffer layout (type %d, %zu bytes, expected "
                        "%zu) of at most %d dims", target, i < nargs ? "argument" : "result",
                        (long long)(i < nargs ? i : i - nargs), type, b->struct_size,
                        FA_FFI_STRUCT_SIZE(fa_ffi_buffer, dims), FA_FFI_MAX_DIMS);
        }
    }
    return NULL;
}

static const fa_ffi_buffer *arg(const fa_ffi_call_frame *cf, int i)
{
    return (const fa_ffi_buffer *)cf->args.args[i];
}

static const fa_ffi_buffer *ret(const fa_ffi_call_frame *cf, int i)
{
    return (const fa_ffi_buffer *)cf->rets.rets[i];
}

/* The attribute called name (its type in *type), or NULL. */
static void *attr(const fa_ffi_call_frame *cf, const char *name, int *type)
{
    const size_t len = strlen(name);
    for (int64_t i = 0; i < cf->attrs.size; i++) {
        const fa_ffi_bytespan *n = cf->attrs.names[i];
        if (n->len == len && memcmp(n->ptr, name, len) == 0) {
            *type = cf->attrs.types[i];
            return cf->attrs.attrs[i];
        }
    }
    return NULL;
}

static fa_ffi_error *attr_i64(const fa_ffi_call_frame *cf, const char *target,
                              const char *name, int64_t *value)
{
    int type;
    const fa_ffi_scalar *s = (const fa_ffi_scalar *)attr(cf, name, &type);
    if (s == NULL || type != FA_FFI_ATTR_SCALAR || s->dtype != FA_FFI_S64) {
        return fail(cf->api, FA_FFI_INVALID_ARGUMENT,
                    "fastact XLA FFI (%s): attribute %s must be an int64 scalar",
                    target, name);
    }
    *value = *(const int64_t *)s->value;
    return NULL;
}

static fa_ffi_error *attr_f64(const fa_ffi_call_frame *cf, const char *target,
                              const char *name, double *value)
{
    int type;
    const fa_ffi_scalar *s = (const fa_ffi_scalar *)attr(cf, name, &type);
    if (s == NULL || type != FA_FFI_ATTR_SCALAR || s->dtype != FA_FFI_F64) {
        return fail(cf->api, FA_FFI_INVALID_ARGUMENT,
                    "fastact XLA FFI (%s): attribute %s must be a float64 scalar",
                    target, name);
    }
    *value = *(const double *)s->value;
    return NULL;
}

/* An int64 array attribute of at most FA_FFI_MAX_DIMS values. */
static fa_ffi_error *attr_dims(const fa_ffi_call_frame *cf, const char *target,
                               const char *name, const int64_t **values, int64_t *n)
{
    int type;
    const fa_ffi_array *a = (const fa_ffi_array *)attr(cf, name, &type);
    if (a == NULL || type != FA_FFI_ATTR_ARRAY || (a->size > 0 && a->dtype != FA_FFI_S64) ||
            a->size > FA_FFI_MAX_DIMS) {
        return fail(cf->api, FA_FFI_INVALID_ARGUMENT,
                    "fastact XLA FFI (%s): attribute %s must be an int64 array of at "
                    "most %d values", target, name, FA_FFI_MAX_DIMS);
    }
    *values = (const int64_t *)a->data;
    *n = (int64_t)a->size;
    return NULL;
}

/* fastact's dtype code of an XLA dtype, -1 for others */
static int code_of(int xla_dtype)
{
    switch (xla_dtype) {
    case FA_FFI_F32: return FA_DT_F32;
    case FA_FFI_F64: return FA_DT_F64;
    case FA_FFI_F16: return FA_DT_F16;
    case FA_FFI_BF16: return FA_DT_BF16;
    default: return -1;
    }
}

static size_t elsize(int code)
{
    return code == FA_DT_F64 ? 8 : code == FA_DT_F32 ? 4 : 2;
}

/* the XLA dtype slopes and grad_slopes have for x's code */
static int compute_dtype(int code)
{
    return code == FA_DT_F64 ? FA_FFI_F64 : FA_FFI_F32;
}

static int64_t prod(const int64_t *dims, int64_t n)
{
    int64_t p = 1;
    for (int64_t i = 0; i < n; i++) {
        p *= dims[i];
    }
    return p;
}

/* --- the backend: CPU kernels, or CUDA launches on XLA's stream ---------- */

typedef struct {
#ifdef FA_XLA_CUDA
    int device;
    uintptr_t stream;
#else
    int unused;
#endif
} backend;

static fa_ffi_error *backend_open(const fa_ffi_call_frame *cf, const char *target,
                                  backend *be)
{
#ifdef FA_XLA_CUDA
    const fa_ffi_api *api = cf->api;
    if (!FA_FFI_API_HAS(api, stream_get) || !FA_FFI_API_HAS(api, device_ordinal_get)) {
        return fail(api, FA_FFI_FAILED_PRECONDITION,
                    "fastact XLA FFI (%s): XLA's FFI API table (%zu bytes) lacks "
                    "XLA_FFI_Stream_Get or XLA_FFI_DeviceOrdinal_Get", target,
                    api->struct_size);
    }
    fa_ffi_stream_get_args s;
    memset(&s, 0, sizeof s);
    s.struct_size = FA_FFI_STRUCT_SIZE(fa_ffi_stream_get_args, stream);
    s.ctx = cf->ctx;
    fa_ffi_error *err = api->stream_get(&s);
    if (err != NULL) {
        return err;
    }
    fa_ffi_device_ordinal_get_args d;
    memset(&d, 0, sizeof d);
    d.struct_size = FA_FFI_STRUCT_SIZE(fa_ffi_device_ordinal_get_args, device_ordinal);
    d.ctx = cf->ctx;
    err = api->device_ordinal_get(&d);
    if (err != NULL) {
        return err;
    }
    be->device = d.device_ordinal;
    be->stream = (uintptr_t)s.stream;
#else
    (void)cf;
    (void)target;
    be->unused = 0;
#endif
    return NULL;
}

/* XLA's CPU outputs are fresh memory of its allocator: a large one is
 * advised into transparent huge pages before the kernel touches it (as
 * numpy's allocator does and fastact.torch does for torch's), so that it
 * faults in 2 MiB pages rather than 4 KiB ones */
#define FA_XLA_HUGE_PAGES_MIN_BYTES ((size_t)1 << 22)

static void advise_output(const fa_ffi_buffer *b, int code)
{
#ifdef FA_XLA_CUDA
    (void)b;
    (void)code;
#else
    const size_t nbytes = (size_t)prod(b->dims, b->rank) * elsize(code);
    if (nbytes >= FA_XLA_HUGE_PAGES_MIN_BYTES) {
        fa_advise_huge_pages(b->data, nbytes);
    }
#endif
}

/* a kernel's status as an error (NULL for 0) */
static fa_ffi_error *status(const fa_ffi_call_frame *cf, const char *target, int rc)
{
    if (rc == 0) {
        return NULL;
    }
#ifdef FA_XLA_CUDA
    return fail(cf->api, FA_FFI_INTERNAL, "fastact XLA FFI (%s): %s", target,
                fa_cuda_error_message());
#else
    return fail(cf->api, rc == -1 ? FA_FFI_RESOURCE_EXHAUSTED : FA_FFI_INTERNAL,
                "fastact XLA FFI (%s): the kernel failed (%s)", target,
                rc == -1 ? "out of memory" : "unknown dtype or op");
#endif
}

static int run_prelu_forward(const backend *be, int code, const void *x, const void *s,
                             void *y, int64_t outer, int64_t channels, int64_t inner)
{
#ifdef FA_XLA_CUDA
    return fa_cuda_prelu_forward(be->device, code, x, s, 0, 0.0, y, outer, channels, inner,
                                 be->stream);
#else
    (void)be;
    return fa_prelu_forward(code, x, s, y, outer, channels, inner);
#endif
}

static int run_unary(const backend *be, int code, int op, const double p[3], const void *g,
                     const void *x, void *y, int64_t n)
{
#ifdef FA_XLA_CUDA
    return g == NULL ? fa_cuda_unary_forward(be->device, op, code, p, x, y, n, be->stream)
                     : fa_cuda_unary_backward(be->device, op, code, p, g, x, y, n,
                                              be->stream);
#else
    (void)be;
    return g == NULL ? fa_unary_forward(code, op, p, x, y, n)
                     : fa_unary_backward(code, op, p, g, x, y, n);
#endif
}

/* --- vmap's leading dims ---------------------------------------------------- */

/* An operand's vmapped dims against the result's: elements per vmapped index
 * (block) and, per result dim, the operand's stride in blocks (0: broadcast). */
typedef struct {
    int64_t block;
    int64_t stride[FA_FFI_MAX_DIMS];
    int batched;                    /* any stride not 0 */
    int64_t count;                  /* the operand's vmapped indices */
} batch_view;

static fa_ffi_error *view(const fa_ffi_call_frame *cf, const char *target,
                          const char *name, const fa_ffi_buffer *b, int64_t rank,
                          const int64_t *bdims, int64_t nb, batch_view *v)
{
    const int64_t own = b->rank - rank;   /* the operand's vmapped dims */
    if (own < 0 || own > nb) {
        return fail(cf->api, FA_FFI_INVALID_ARGUMENT,
                    "fastact XLA FFI (%s): %s has rank %lld, expected %lld plus at most "
                    "%lld vmapped dims", target, name, (long long)b->rank, (long long)rank,
                    (long long)nb);
    }
    v->block = prod(b->dims + own, rank);
    v->batched = 0;
    int64_t stride = 1;
    for (int64_t d = nb - 1; d >= 0; d--) {
        const int64_t k = d - (nb - own);   /* right-aligned */
        const int64_t size = k >= 0 ? b->dims[k] : 1;
        if (size != 1 && size != bdims[d]) {
            return fail(cf->api, FA_FFI_INVALID_ARGUMENT,
                        "fastact XLA FFI (%s): %s's vmapped dim %lld has size %lld, the "
                        "result's %lld", target, name, (long long)d, (long long)size,
                        (long long)bdims[d]);
        }
        v->stride[d] = size == 1 ? 0 : stride;
        v->batched |= size != 1;
        stride *= size;
    }
    v->count = stride;
    return NULL;
}

/* the block index of vmapped index i (row-major over bdims) in view v */
static int64_t block_of(const batch_view *v, const int64_t *bdims, int64_t nb, int64_t i)
{
    int64_t at = 0;
    for (int64_t d = nb - 1; d >= 0; d--) {
        at += (i % bdims[d]) * v->stride[d];
        i /= bdims[d];
    }
    return at;
}

/* --- PReLU ------------------------------------------------------------------ */

typedef struct {
    int code;
    int64_t channels, inner, x_rank;
    int64_t nb;                     /* vmapped dims of the result */
    const int64_t *bdims;
    int64_t nbatch;                 /* their product */
} prelu_frame;

static fa_ffi_error *prelu_common(const fa_ffi_call_frame *cf, const char *target,
                                  const fa_ffi_buffer *x, const fa_ffi_buffer *slopes,
                                  const fa_ffi_buffer *out, prelu_frame *p)
{
    fa_ffi_error *err;
    if ((err = attr_i64(cf, target, "channels", &p->channels)) != NULL ||
            (err = attr_i64(cf, target, "inner", &p->inner)) != NULL ||
            (err = attr_i64(cf, target, "x_rank", &p->x_rank)) != NULL) {
        return err;
    }
    p->code = code_of(x->dtype);
    if (p->code < 0 || out->dtype != x->dtype) {
        return fail(cf->api, FA_FFI_INVALID_ARGUMENT,
                    "fastact XLA FFI (%s): x must be float32, float64, float16 or "
                    "bfloat16 and the result of its dtype (XLA dtypes %d, %d)", target,
                    x->dtype, out->dtype);
    }
    if (slopes->dtype != compute_dtype(p->code)) {
        return fail(cf->api, FA_FFI_INVALID_ARGUMENT,
                    "fastact XLA FFI (%s): slopes must be %s for x of this dtype",
                    target, p->code == FA_DT_F64 ? "float64" : "float32");
    }
    if (p->x_rank < 0 || p->x_rank > out->rank || p->channels < 1 || p->inner < 0) {
        return fail(cf->api, FA_FFI_INVALID_ARGUMENT,
                    "fastact XLA FFI (%s): bad layout attributes", target);
    }
    p->nb = out->rank - p->x_rank;
    p->bdims = out->dims;
    p->nbatch = prod(out->dims, p->nb);
    const int64_t block = prod(out->dims + p->nb, p->x_rank);
    if (block % (p->channels * (p->inner > 0 ? p->inner : 1)) != 0 ||
            slopes->rank < 1 || slopes->dims[slopes->rank - 1] != p->channels) {
        return fail(cf->api, FA_FFI_INVALID_ARGUMENT,
                    "fastact XLA FFI (%s): x (%lld elements per vmapped index) and "
                    "slopes (%lld per index) do not fit channels=%lld, inner=%lld",
                    target, (long long)block,
                    (long long)(slopes->rank ? slopes->dims[slopes->rank - 1] : 1),
                    (long long)p->channels, (long long)p->inner);
    }
    return NULL;
}

static fa_ffi_error *prelu_forward(fa_ffi_call_frame *cf)
{
    static const char target[] = "fastact_prelu_forward";
    int done;
    fa_ffi_error *err = begin(cf, 2, 1, target, &done);
    if (err != NULL || done) {
        return err;
    }
    const fa_ffi_buffer *x = arg(cf, 0), *slopes = arg(cf, 1), *y = ret(cf, 0);
    prelu_frame p;
    batch_view vx = {0}, vs = {0};
    backend be;
    if ((err = prelu_common(cf, target, x, slopes, y, &p)) != NULL ||
            (err = view(cf, target, "x", x, p.x_rank, p.bdims, p.nb, &vx)) != NULL ||
            (err = view(cf, target, "slopes", slopes, 1, p.bdims, p.nb, &vs)) != NULL ||
            (err = backend_open(cf, target, &be)) != NULL) {
        return err;
    }
    const size_t es = elsize(p.code), cs = elsize(p.code == FA_DT_F64 ? FA_DT_F64 : FA_DT_F32);
    const int64_t block = vx.block, per = p.channels * p.inner;
    if (per == 0 || block == 0 || p.nbatch == 0) {
        return NULL;
    }
    advise_output(y, p.code);
    if (!vs.batched && (vx.count == p.nbatch || !vx.batched)) {
        /* slopes shared by every vmapped index: x's vmapped dims (all the
         * result's) fold into outer; an x shared by every index is run once
         * per index */
        const int full = vx.count == p.nbatch;
        const int64_t outer = (full ? p.nbatch : 1) * (block / per);
        const char *xp = (const char *)x->data;
        for (int64_t rep = 0; rep < (full ? 1 : p.nbatch); rep++) {
            int rc = run_prelu_forward(&be, p.code, xp, slopes->data,
                                       (char *)y->data + rep * block * es, outer,
                                       p.channels, p.inner);
            if ((err = status(cf, target, rc)) != NULL) {
                return err;
            }
        }
        return NULL;
    }
    for (int64_t i = 0; i < p.nbatch; i++) {
        const char *xp = (const char *)x->data + block_of(&vx, p.bdims, p.nb, i) * block * es;
        const char *sp = (const char *)slopes->data +
            block_of(&vs, p.bdims, p.nb, i) * p.channels * cs;
        int rc = run_prelu_forward(&be, p.code, xp, sp, (char *)y->data + i * block * es,
                                   block / per, p.channels, p.inner);
        if ((err = status(cf, target, rc)) != NULL) {
            return err;
        }
    }
    return NULL;
}

#ifndef FA_XLA_CUDA
/* grad_slopes of one vmapped index: the channel sums reduced over the dims
 * where span_slopes is 1 and span is not, in channel order, in float64,
 * rounded once to the compute dtype */
static void reduce_sums(const double *sums, int64_t channels, const int64_t *span,
                        const int64_t *span_slopes, int64_t nspan, double *acc,
                        int64_t nout, void *grad, int code)
{
    if (nout == channels) {
        memcpy(acc, sums, (size_t)channels * sizeof(double));
    }
    else {
        memset(acc, 0, (size_t)nout * sizeof(double));
        for (int64_t c = 0; c < channels; c++) {
            int64_t rest = c, at = 0, stride = 1;
            for (int64_t d = nspan - 1; d >= 0; d--) {
                const int64_t k = rest % span[d];
                rest /= span[d];
                if (span_slopes[d] != 1) {
                    at += k * stride;
                    stride *= span_slopes[d];
                }
            }
            acc[at] += sums[c];
        }
    }
    for (int64_t r = 0; r < nout; r++) {
        if (code == FA_DT_F64) {
            ((double *)grad)[r] = acc[r];
        }
        else {
            ((float *)grad)[r] = (float)acc[r];
        }
    }
}
#endif

static fa_ffi_error *prelu_backward(fa_ffi_call_frame *cf)
{
    static const char target[] = "fastact_prelu_backward";
    int done;
    fa_ffi_error *err = begin(cf, 3, 2, target, &done);
    if (err != NULL || done) {
        return err;
    }
    const fa_ffi_buffer *g = arg(cf, 0), *x = arg(cf, 1), *slopes = arg(cf, 2);
    const fa_ffi_buffer *gi = ret(cf, 0), *gs = ret(cf, 1);
    prelu_frame p;
    batch_view vg = {0}, vx = {0}, vs = {0};
    backend be;
    const int64_t *span, *span_slopes;
    int64_t nspan, nspan_slopes;
    if ((err = prelu_common(cf, target, x, slopes, gi, &p)) != NULL ||
            (err = attr_dims(cf, target, "span", &span, &nspan)) != NULL ||
            (err = attr_dims(cf, target, "span_slopes", &span_slopes, &nspan_slopes)) != NULL ||
            (err = view(cf, target, "grad_output", g, p.x_rank, p.bdims, p.nb, &vg)) != NULL ||
            (err = view(cf, target, "x", x, p.x_rank, p.bdims, p.nb, &vx)) != NULL ||
            (err = view(cf, target, "slopes", slopes, 1, p.bdims, p.nb, &vs)) != NULL) {
        return err;
    }
    if (g->dtype != x->dtype || gs->dtype != compute_dtype(p.code)) {
        return fail(cf->api, FA_FFI_INVALID_ARGUMENT,
                    "fastact XLA FFI (%s): grad_output must have x's dtype and "
                    "grad_slopes the compute dtype", target);
    }
    const int64_t nout = nspan ? prod(span_slopes, nspan) : 1;
    if (nspan != nspan_slopes || prod(span, nspan) != (nspan ? p.channels : 1) ||
            gs->rank != p.nb + 1 || gs->dims[p.nb] != nout) {
        return fail(cf->api, FA_FFI_INVALID_ARGUMENT,
                    "fastact XLA FFI (%s): span, span_slopes and grad_slopes's shape do "
                    "not fit channels=%lld", target, (long long)p.channels);
    }
    if ((err = backend_open(cf, target, &be)) != NULL) {
        return err;
    }
    const size_t es = elsize(p.code), cs = elsize(p.code == FA_DT_F64 ? FA_DT_F64 : FA_DT_F32);
    const int64_t block = vx.block, per = p.channels * p.inner;
    if (p.nbatch == 0) {
        return NULL;
    }
    advise_output(gi, p.code);
#ifdef FA_XLA_CUDA
    if (nout != p.channels) {
        return fail(cf->api, FA_FFI_INVALID_ARGUMENT,
                    "fastact XLA FFI (%s): on the GPU, grad_slopes is not reduced over "
                    "broadcast dims (fastact.jax does that reduction)", target);
    }
#else
    double *sums = (double *)malloc((size_t)(p.channels + nout) * sizeof(double));
    if (sums == NULL) {
        return fail(cf->api, FA_FFI_RESOURCE_EXHAUSTED,
                    "fastact XLA FFI (%s): cannot allocate %lld sums", target,
                    (long long)(p.channels + nout));
    }
#endif
    for (int64_t i = 0; i < p.nbatch && err == NULL; i++) {
        const char *gp = (const char *)g->data + block_of(&vg, p.bdims, p.nb, i) * block * es;
        const char *xp = (const char *)x->data + block_of(&vx, p.bdims, p.nb, i) * block * es;
        const char *sp = (const char *)slopes->data +
            block_of(&vs, p.bdims, p.nb, i) * p.channels * cs;
        char *gip = (char *)gi->data + i * block * es;
        char *gsp = (char *)gs->data + i * nout * cs;
        const int64_t outer = per ? block / per : 0;
#ifdef FA_XLA_CUDA
        int rc = fa_cuda_prelu_backward(be.device, p.code, gp, xp, sp, 0, 0.0, gip, gsp,
                                        p.code == FA_DT_F64 ? FA_DT_F64 : FA_DT_F32, 0,
                                        outer, p.channels, p.inner, be.stream);
        err = status(cf, target, rc);
#else
        int rc = fa_prelu_backward(p.code, gp, xp, sp, gip, sums, outer, p.channels, p.inner);
        err = status(cf, target, rc);
        if (err == NULL) {
            reduce_sums(sums, p.channels, span, span_slopes, nspan, sums + p.channels, nout,
                        gsp, p.code);
        }
#endif
    }
#ifndef FA_XLA_CUDA
    free(sums);
#endif
    return err;
}

/* --- the family's elementwise ops ------------------------------------------- */

static fa_ffi_error *unary(fa_ffi_call_frame *cf, int backward)
{
    const char *target = backward ? "fastact_unary_backward" : "fastact_unary_forward";
    int done;
    fa_ffi_error *err = begin(cf, backward ? 2 : 1, 1, target, &done);
    if (err != NULL || done) {
        return err;
    }
    int64_t op;
    double p[3];
    backend be;
    if ((err = attr_i64(cf, target, "op", &op)) != NULL ||
            (err = attr_f64(cf, target, "p0", &p[0])) != NULL ||
            (err = attr_f64(cf, target, "p1", &p[1])) != NULL ||
            (err = attr_f64(cf, target, "p2", &p[2])) != NULL) {
        return err;
    }
    const fa_ffi_buffer *g = backward ? arg(cf, 0) : NULL, *x = arg(cf, backward ? 1 : 0);
    const fa_ffi_buffer *y = ret(cf, 0);
    const int code = code_of(x->dtype);
    const int64_t n = prod(y->dims, y->rank);
    if (code < 0 || y->dtype != x->dtype || (g != NULL && g->dtype != x->dtype)) {
        return fail(cf->api, FA_FFI_INVALID_ARGUMENT,
                    "fastact XLA FFI (%s): x must be float32, float64, float16 or "
                    "bfloat16, and the other operands of its dtype", target);
    }
    if (prod(x->dims, x->rank) != n || (g != NULL && prod(g->dims, g->rank) != n)) {
        return fail(cf->api, FA_FFI_INVALID_ARGUMENT,
                    "fastact XLA FFI (%s): operands of different sizes", target);
    }
    if (op < 0 || op >= (backward ? FA_OP_COUNT : FA_OP_FORWARD_COUNT)) {
        return fail(cf->api, FA_FFI_INVALID_ARGUMENT, "fastact XLA FFI (%s): no op %lld",
                    target, (long long)op);
    }
    if ((err = backend_open(cf, target, &be)) != NULL) {
        return err;
    }
    if (n == 0) {
        return NULL;
    }
    advise_output(y, code);
    return status(cf, target, run_unary(&be, code, (int)op, p, g ? g->data : NULL, x->data,
                                        y->data, n));
}

static fa_ffi_error *unary_forward(fa_ffi_call_frame *cf)
{
    return unary(cf, 0);
}

static fa_ffi_error *unary_backward(fa_ffi_call_frame *cf)
{
    return unary(cf, 1);
}

#ifdef FA_XLA_CUDA
const fa_ffi_target fa_xla_cuda_targets[] = {
#else
const fa_ffi_target fa_xla_cpu_targets[] = {
#endif
    {"fastact_prelu_forward", prelu_forward},
    {"fastact_prelu_backward", prelu_backward},
    {"fastact_unary_forward", unary_forward},
    {"fastact_unary_backward", unary_backward},
    {NULL, NULL},
};
