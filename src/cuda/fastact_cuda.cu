/*
 * fastact's CUDA kernels: PReLU forward and fused backward, and the
 * elementwise family of src/ops.h, and affine_prelu (prelu of x * scale +
 * shift per channel: an inference BatchNorm and PReLU fused), for float32,
 * float64, float16 and bfloat16.
 *
 * Design notes (why the code looks the way it does):
 *   - Memory-bound kernels: each thread moves 16-byte vectors when every
 *     pointer of the call is 16-byte aligned, through grid-stride loops with
 *     64-bit indices (a tensor may hold more than 2^31 elements).
 *   - float16 and bfloat16 are stored as their 16-bit patterns, computed in
 *     float and rounded once to nearest-even (__float2half_rn,
 *     __float2bfloat16_rn), as the CPU kernels do.
 *   - The slope gradient is summed in float64 in two stages whose order
 *     depends on the shape only (fixed chunks, fixed tree reductions in
 *     shared memory, a second kernel summing the partials in index order):
 *     no float atomics, so the result is bitwise reproducible.
 *   - The kernels use nothing but __syncthreads and shared memory for
 *     cooperation (no warp shuffles), which keeps one source simple enough
 *     to read against the CPU kernels.
 *   - Built with -fmad=false: the float64 accumulation must round x * g
 *     before the add, as the CPU kernels (-ffp-contract=off) do.
 */
#ifndef FASTACT_CUDA_EMULATE     /* tools/cuda_emulation.h stands in for these */
#include <cuda_runtime.h>
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#endif

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../ops.h"
#include "fastact_cuda.h"

#define FA_THREADS 256          /* threads per block, a power of two */
#ifndef FA_UNROLL
/* Vectors each thread loads before it stores any: one 16-byte load per
 * thread in flight is not enough to saturate HBM. */
#define FA_UNROLL 4
#endif
#ifndef FA_ROW_CHUNK
#define FA_ROW_CHUNK 16384      /* elements per work item of the row strategy */
#endif
#define FA_ROW_MIN_INNER 512    /* rows at least this long use the row strategy */
#define FA_COL_TARGET_GROUPS 2048
#define FA_MAX_WORKSPACE_DOUBLES (1 << 24)

/* ------------------------------------------------------------------------ */
/* error reporting                                                           */
/* ------------------------------------------------------------------------ */

static thread_local char fa_message[512] = "no error";

static int fa_fail(const char *what, cudaError_t err)
{
    snprintf(fa_message, sizeof fa_message, "%s: %s (CUDA error %d)", what,
             cudaGetErrorString(err), (int)err);
    return (int)err;
}

#define FA_CHECK(call)                                   \
    do {                                                 \
        cudaError_t fa_err_ = (call);                    \
        if (fa_err_ != cudaSuccess)                      \
            return fa_fail(#call, fa_err_);              \
    } while (0)

/* A launch reports bad configurations through cudaGetLastError.  (A host
 * emulation for tests, tools/cuda_emulation.h, supplies its own launch.) */
#ifndef FA_LAUNCH_IMPL
#define FA_LAUNCH_IMPL(kernel, grid, block, stream, ...) \
    kernel<<<(grid), (block), 0, (stream)>>>(__VA_ARGS__)
#endif
#define FA_LAUNCH(kernel, grid, block, stream, ...)                         \
    do {                                                                    \
        auto fa_kernel_ = kernel;                                           \
        FA_LAUNCH_IMPL(fa_kernel_, grid, block, stream, __VA_ARGS__);       \
        cudaError_t fa_err_ = cudaGetLastError();                           \
        if (fa_err_ != cudaSuccess)                                         \
            return fa_fail("launch of " #kernel, fa_err_);                  \
    } while (0)

extern "C" const char *fa_cuda_error_message(void) { return fa_message; }

/* Makes `device` current for one call and restores the caller's device. */
struct DeviceGuard {
    int previous = -1;
    cudaError_t err = cudaSuccess;
    explicit DeviceGuard(int device)
    {
        if (device < 0)
            return;
        err = cudaGetDevice(&previous);
        if (err == cudaSuccess && previous != device)
            err = cudaSetDevice(device);
        else
            previous = -1;
    }
    ~DeviceGuard()
    {
        if (previous >= 0)
            cudaSetDevice(previous);
    }
};

#define FA_ON_DEVICE(device)                                             \
    DeviceGuard fa_guard_(device);                                       \
    if (fa_guard_.err != cudaSuccess)                                    \
        return fa_fail("cudaSetDevice", fa_guard_.err)

/* Resident blocks the grid-stride kernels aim for: 8 per multiprocessor. */
static int fa_max_blocks(int device)
{
    static int cache[64];
    int sms = 0;
    if (device >= 0 && device < 64 && cache[device] > 0)
        return cache[device];
    int d = device;
    if (d < 0 && cudaGetDevice(&d) != cudaSuccess)
        d = 0;
    if (cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, d) != cudaSuccess
        || sms <= 0) {
        cudaGetLastError();
        sms = 132;
    }
    if (device >= 0 && device < 64)
        cache[device] = sms * 8;
    return sms * 8;
}

static __host__ __device__ __forceinline__ int64_t fa_min64(int64_t a, int64_t b) { return a < b ? a : b; }
static __host__ __device__ __forceinline__ int64_t fa_ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

static int fa_aligned(const void *p) { return p == NULL || ((uintptr_t)p & 15) == 0; }

/* ------------------------------------------------------------------------ */
/* element types                                                             */
/* ------------------------------------------------------------------------ */

/* S: how an element is stored; C: the type it is computed in. */
struct TrF32 {
    typedef float S;
    typedef float C;
    static __device__ __forceinline__ C load(S v) { return v; }
    static __device__ __forceinline__ S store(C v) { return v; }
};
struct TrF64 {
    typedef double S;
    typedef double C;
    static __device__ __forceinline__ C load(S v) { return v; }
    static __device__ __forceinline__ S store(C v) { return v; }
};
struct TrF16 {
    typedef unsigned short S;
    typedef float C;
    static __device__ __forceinline__ C load(S v) { return __half2float(__ushort_as_half(v)); }
    static __device__ __forceinline__ S store(C v) { return __half_as_ushort(__float2half_rn(v)); }
};
struct TrBF16 {
    typedef unsigned short S;
    typedef float C;
    static __device__ __forceinline__ C load(S v) { return __bfloat162float(__ushort_as_bfloat16(v)); }
    static __device__ __forceinline__ S store(C v) { return __bfloat16_as_ushort(__float2bfloat16_rn(v)); }
};

/* fn(Tr()) for the element type of dtype: the one dtype switch. */
template <typename F>
static int fa_with_dtype(int dtype, const char *unknown, F &&fn)
{
    switch (dtype) {
    case FA_DT_F32: return fn(TrF32());
    case FA_DT_F64: return fn(TrF64());
    case FA_DT_F16: return fn(TrF16());
    case FA_DT_BF16: return fn(TrBF16());
    }
    return fa_fail(unknown, cudaErrorInvalidValue);
}

/* V elements of type S: one 16-byte access when V * sizeof(S) == 16. */
template <typename S, int V>
union Pack {
    uint4 u;
    S s[V];
};
template <typename S>
union Pack<S, 1> {
    S s[1];
};

template <typename S, int V>
__device__ __forceinline__ void load_pack(Pack<S, V> &p, const S *ptr)
{
    if constexpr (V == 1)
        p.s[0] = *ptr;
    else
        p.u = *reinterpret_cast<const uint4 *>(ptr);
}

template <typename S, int V>
__device__ __forceinline__ void store_pack(S *ptr, const Pack<S, V> &p)
{
    if constexpr (V == 1)
        *ptr = p.s[0];
    else
        *reinterpret_cast<uint4 *>(ptr) = p.u;
}

template <typename S, bool VEC>
struct Width {
    static constexpr int V = VEC ? (int)(16 / sizeof(S)) : 1;
};

/* ------------------------------------------------------------------------ */
/* the elementwise loop                                                      */
/* ------------------------------------------------------------------------ */

/*
 * The one loop of the elementwise kernels: a grid-stride loop over the
 * vectors of out, FA_UNROLL vectors per thread per turn, i, i + step, ...
 * (so a warp's accesses stay coalesced), all loaded before any is computed
 * and stored, then the elements past the last whole vector one by one.
 * Loads and stores of one turn touch the same elements only, so out may be
 * in[0] (in place).  f(v) computes one element from its NIN inputs, called
 * in element order within each thread; f.next_vector() follows each vector
 * and f.seek(e) precedes tail element e (for prelu's channel tracking).
 */
template <typename S, int V, int NIN, typename F>
__device__ __forceinline__ void fa_elementwise(const S *const (&in)[NIN], S *out, int64_t n,
                                               F &f)
{
    const int64_t start = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    const int64_t step = (int64_t)gridDim.x * blockDim.x;
    const int64_t nv = n / V;
    for (int64_t i = start; i < nv; i += FA_UNROLL * step) {
        Pack<S, V> p[FA_UNROLL][NIN];
#pragma unroll
        for (int u = 0; u < FA_UNROLL; u++) {
            if (i + u * step < nv) {
#pragma unroll
                for (int k = 0; k < NIN; k++)
                    load_pack<S, V>(p[u][k], in[k] + (i + u * step) * V);
            }
        }
#pragma unroll
        for (int u = 0; u < FA_UNROLL; u++) {
            if (i + u * step < nv) {
#pragma unroll
                for (int l = 0; l < V; l++) {
                    S v[NIN];
#pragma unroll
                    for (int k = 0; k < NIN; k++)
                        v[k] = p[u][k].s[l];
                    p[u][0].s[l] = f(v);
                }
                f.next_vector();
                store_pack<S, V>(out + (i + u * step) * V, p[u][0]);
            }
        }
    }
    for (int64_t e = nv * V + start; e < n; e += step) {
        S v[NIN];
#pragma unroll
        for (int k = 0; k < NIN; k++)
            v[k] = in[k][e];
        f.seek(e);
        out[e] = f(v);
    }
}

/* the element functions of fa_elementwise that keep no position */
struct Stateless {
    __device__ __forceinline__ void next_vector() {}
    __device__ __forceinline__ void seek(int64_t) {}
};

/* ------------------------------------------------------------------------ */
/* the family (src/ops.h)                                                    */
/* ------------------------------------------------------------------------ */

/* The compute type's exponentials ops.h calls: fa_math.h's functions, the
 * CPU kernels' own, so that float32, float16 and bfloat16 results are the
 * CPU's bit for bit (the gradient takes the float64 formula below
 * fa_elu_grad_xmin_f, lane by lane as the CPU does).  float64 uses CUDA's
 * expm1 and exp where the CPU uses the C library's: each within an ulp, not
 * always the same (README). */
__device__ __forceinline__ float fa_scaled_expm1(float v, float a)
{
    return fa_alpha_is_ordinary_f(a) ? fa_scaled_expm1_f(v, a) : fa_scaled_expm1_special_f(v, a);
}
__device__ __forceinline__ double fa_scaled_expm1(double v, double a) { return a * expm1(v); }
__device__ __forceinline__ float fa_elu_grad(float g, float v, float a)
{
    return v < fa_elu_grad_xmin_f(a) ? fa_elu_grad_dbl_f(g, v, a) : fa_elu_grad_f(g, v, a);
}
__device__ __forceinline__ double fa_elu_grad(double g, double v, double a)
{
    return g * (a * exp(v));
}
#define FA_SCALED_EXPM1(v, a) fa_scaled_expm1(v, a)
#define FA_ELU_GRAD(g, v, a) fa_elu_grad(g, v, a)

template <int OP, typename C>
__device__ __forceinline__ C op_forward(C x, C p0, C p1, C p2)
{
#define FA_CASE_(NAME, name, heavy) \
    if constexpr (OP == FA_OP_##NAME) return (C)FA_##NAME##_FWD(x, p0, p1, p2); else
    FA_OPS(FA_CASE_)
#undef FA_CASE_
    return x;
}

template <int OP, typename C>
__device__ __forceinline__ C op_backward(C g, C x, C p0, C p1, C p2)
{
#define FA_CASE_(NAME, name, heavy) \
    if constexpr (OP == FA_OP_##NAME) return (C)FA_##NAME##_BWD(g, x, p0, p1, p2); else
    FA_OPS(FA_CASE_)
    FA_BACKWARD_ONLY_OPS(FA_CASE_)
#undef FA_CASE_
    return g;
}

template <typename Tr, int OP>
struct UnaryForward : Stateless {
    typename Tr::C p0, p1, p2;
    __device__ __forceinline__ typename Tr::S operator()(const typename Tr::S *v) const
    {
        return Tr::store(op_forward<OP>(Tr::load(v[0]), p0, p1, p2));
    }
};

template <typename Tr, int OP>
struct UnaryBackward : Stateless {
    typename Tr::C p0, p1, p2;
    __device__ __forceinline__ typename Tr::S operator()(const typename Tr::S *v) const
    {
        return Tr::store(op_backward<OP>(Tr::load(v[0]), Tr::load(v[1]), p0, p1, p2));
    }
};

template <typename Tr, int OP, bool VEC>
__global__ void __launch_bounds__(FA_THREADS)
unary_forward_kernel(const typename Tr::S *x, typename Tr::S *y, int64_t n,
                     typename Tr::C p0, typename Tr::C p1, typename Tr::C p2)
{
    typedef typename Tr::S S;
    UnaryForward<Tr, OP> f;
    f.p0 = p0, f.p1 = p1, f.p2 = p2;
    const S *const in[1] = {x};
    fa_elementwise<S, Width<S, VEC>::V, 1>(in, y, n, f);
}

template <typename Tr, int OP, bool VEC>
__global__ void __launch_bounds__(FA_THREADS)
unary_backward_kernel(const typename Tr::S *g, const typename Tr::S *x,
                      typename Tr::S *gi, int64_t n, typename Tr::C p0,
                      typename Tr::C p1, typename Tr::C p2)
{
    typedef typename Tr::S S;
    UnaryBackward<Tr, OP> f;
    f.p0 = p0, f.p1 = p1, f.p2 = p2;
    const S *const in[2] = {g, x};
    fa_elementwise<S, Width<S, VEC>::V, 2>(in, gi, n, f);
}

/* Grid for a grid-stride loop over n elements in vectors of V. */
static unsigned fa_grid(int device, int64_t n, int V)
{
    int64_t blocks = fa_ceil_div(fa_ceil_div(n, V), FA_THREADS);
    blocks = fa_min64(blocks, fa_max_blocks(device));
    return (unsigned)(blocks < 1 ? 1 : blocks);
}

template <typename Tr, int OP>
static int unary_forward_t(int device, const double *params, const void *x,
                           void *y, int64_t n, cudaStream_t stream)
{
    typedef typename Tr::S S;
    typedef typename Tr::C C;
    const C p0 = (C)params[0], p1 = (C)params[1], p2 = (C)params[2];
    if (fa_aligned(x) && fa_aligned(y)) {
        FA_LAUNCH((unary_forward_kernel<Tr, OP, true>), fa_grid(device, n, 16 / sizeof(S)),
                  FA_THREADS, stream, (const S *)x, (S *)y, n, p0, p1, p2);
    } else {
        FA_LAUNCH((unary_forward_kernel<Tr, OP, false>), fa_grid(device, n, 1),
                  FA_THREADS, stream, (const S *)x, (S *)y, n, p0, p1, p2);
    }
    return 0;
}

template <typename Tr, int OP>
static int unary_backward_t(int device, const double *params, const void *g,
                            const void *x, void *gi, int64_t n, cudaStream_t stream)
{
    typedef typename Tr::S S;
    typedef typename Tr::C C;
    const C p0 = (C)params[0], p1 = (C)params[1], p2 = (C)params[2];
    if (fa_aligned(g) && fa_aligned(x) && fa_aligned(gi)) {
        FA_LAUNCH((unary_backward_kernel<Tr, OP, true>), fa_grid(device, n, 16 / sizeof(S)),
                  FA_THREADS, stream, (const S *)g, (const S *)x, (S *)gi, n, p0, p1, p2);
    } else {
        FA_LAUNCH((unary_backward_kernel<Tr, OP, false>), fa_grid(device, n, 1),
                  FA_THREADS, stream, (const S *)g, (const S *)x, (S *)gi, n, p0, p1, p2);
    }
    return 0;
}

template <typename Tr>
static int unary_forward_op(int device, int op, const double *params, const void *x,
                            void *y, int64_t n, cudaStream_t stream)
{
    switch (op) {
#define FA_CASE_(NAME, name, heavy) \
    case FA_OP_##NAME: return unary_forward_t<Tr, FA_OP_##NAME>(device, params, x, y, n, stream);
    FA_OPS(FA_CASE_)
#undef FA_CASE_
    }
    return fa_fail("fa_cuda_unary_forward: unknown op", cudaErrorInvalidValue);
}

template <typename Tr>
static int unary_backward_op(int device, int op, const double *params, const void *g,
                             const void *x, void *gi, int64_t n, cudaStream_t stream)
{
    switch (op) {
#define FA_CASE_(NAME, name, heavy) \
    case FA_OP_##NAME: \
        return unary_backward_t<Tr, FA_OP_##NAME>(device, params, g, x, gi, n, stream);
    FA_OPS(FA_CASE_)
    FA_BACKWARD_ONLY_OPS(FA_CASE_)
#undef FA_CASE_
    }
    return fa_fail("fa_cuda_unary_backward: unknown op", cudaErrorInvalidValue);
}

extern "C" int fa_cuda_unary_forward(int device, int op, int dtype, const double *params,
                                     const void *x, void *y, int64_t n, uintptr_t stream)
{
    if (n <= 0)
        return 0;
    FA_ON_DEVICE(device);
    cudaStream_t s = (cudaStream_t)stream;
    return fa_with_dtype(dtype, "fa_cuda_unary_forward: unknown dtype", [&](auto tr) {
        return unary_forward_op<decltype(tr)>(device, op, params, x, y, n, s);
    });
}

extern "C" int fa_cuda_unary_backward(int device, int op, int dtype, const double *params,
                                      const void *g, const void *x, void *gi, int64_t n,
                                      uintptr_t stream)
{
    if (n <= 0)
        return 0;
    FA_ON_DEVICE(device);
    cudaStream_t s = (cudaStream_t)stream;
    return fa_with_dtype(dtype, "fa_cuda_unary_backward: unknown dtype", [&](auto tr) {
        return unary_backward_op<decltype(tr)>(device, op, params, g, x, gi, n, s);
    });
}

/* ------------------------------------------------------------------------ */
/* PReLU forward: y = x > 0 ? x : slope[c] * x over (outer, channels, inner)  */
/* ------------------------------------------------------------------------ */

/*
 * prelu's element function for fa_elementwise over (outer, channels, inner).
 * Each thread tracks its position as (r, c): r the offset inside the current
 * run of `inner` elements, c the channel, so that the loop needs no 64-bit
 * division: one step advances the element index by `stride`, which is
 * dr = stride % inner elements within a run and dc = (stride / inner) %
 * channels channels, plus a carry.  The lanes of a vector advance one
 * element at a time.  inner == 1 is channels-last.
 */
template <typename Tr, bool AFFINE = false>
struct PreluForward {
    typedef typename Tr::S S;
    typedef typename Tr::C C;
    const C *slopes;
    const C *scale = NULL, *shift = NULL;   /* AFFINE: one of each per channel */
    C shared;
    int64_t channels, inner;
    int64_t r, c, dr, dc;   /* the current vector's first element; the step */
    int64_t rr, cc;         /* the current element */
    __device__ __forceinline__ PreluForward(const C *slopes_, C shared_, int64_t channels_,
                                            int64_t inner_, int V)
        : slopes(slopes_), shared(shared_), channels(channels_), inner(inner_)
    {
        const int64_t start = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
        const int64_t stride = (int64_t)gridDim.x * blockDim.x * V;
        r = rr = start * V % inner;
        c = cc = start * V / inner % channels;
        dr = stride % inner;
        dc = stride / inner % channels;
    }
    __device__ __forceinline__ S operator()(const S *v)
    {
        const C s = slopes ? slopes[cc] : shared;
        const int64_t c0 = cc;
        if (++rr == inner) {
            rr = 0;
            if (++cc == channels)
                cc = 0;
        }
        if (AFFINE)
            return Tr::store(FA_AFFINE_PRELU_FWD(Tr::load(v[0]), scale[c0], shift[c0], s));
        return Tr::store(FA_LEAKY_RELU_FWD(Tr::load(v[0]), s, 0, 0));
    }
    __device__ __forceinline__ void next_vector()
    {
        r += dr;
        c += dc;
        if (r >= inner) {
            r -= inner;
            c += 1;
        }
        if (c >= channels)
            c -= channels;
        rr = r;
        cc = c;
    }
    __device__ __forceinline__ void seek(int64_t e)
    {
        rr = e % inner;
        cc = e / inner % channels;
    }
};

template <typename Tr, bool VEC>
__global__ void __launch_bounds__(FA_THREADS)
prelu_forward_kernel(const typename Tr::S *x, typename Tr::S *y,
                     const typename Tr::C *slopes, typename Tr::C shared,
                     int64_t n, int64_t channels, int64_t inner)
{
    typedef typename Tr::S S;
    constexpr int V = Width<S, VEC>::V;
    PreluForward<Tr> f(slopes, shared, channels, inner, V);
    const S *const in[1] = {x};
    fa_elementwise<S, V, 1>(in, y, n, f);
}

/* fa_slopes's copy of host slopes on the device, if it made one: freed
 * (stream ordered) with this. */
struct Slopes {
    void *owned = NULL;
    cudaStream_t stream = 0;
    ~Slopes()
    {
        if (owned)
            cudaFreeAsync(owned, stream);
    }
};

/* Sets *device to the channels slopes of type C on the device, which out
 * holds (and frees) when they had to be copied there. */
template <typename C>
static int fa_slopes(Slopes &out, const C **device, const void *slopes, int on_host,
                     int64_t channels, cudaStream_t stream)
{
    const int64_t nbytes = channels * (int64_t)sizeof(C);
    out.stream = stream;
    *device = (const C *)slopes;
    if (slopes == NULL || !on_host)
        return 0;
    FA_CHECK(cudaMallocAsync(&out.owned, (size_t)nbytes, stream));
    /* From pageable host memory the copy is staged before this returns, so
     * the caller may free its buffer at once; no device synchronisation. */
    FA_CHECK(cudaMemcpyAsync(out.owned, slopes, (size_t)nbytes, cudaMemcpyHostToDevice,
                             stream));
    *device = (const C *)out.owned;
    return 0;
}

template <typename Tr>
static int prelu_forward_t(int device, const void *x, const void *slopes_in, int on_host,
                           double shared, void *y, int64_t outer, int64_t channels,
                           int64_t inner, cudaStream_t stream)
{
    typedef typename Tr::S S;
    typedef typename Tr::C C;
    const int64_t n = outer * channels * inner;
    Slopes sl;
    const C *slopes;
    if (int rc = fa_slopes(sl, &slopes, slopes_in, on_host, channels, stream))
        return rc;
    if (fa_aligned(x) && fa_aligned(y)) {
        FA_LAUNCH((prelu_forward_kernel<Tr, true>), fa_grid(device, n, 16 / sizeof(S)),
                  FA_THREADS, stream, (const S *)x, (S *)y, slopes, (C)shared, n,
                  channels, inner);
    } else {
        FA_LAUNCH((prelu_forward_kernel<Tr, false>), fa_grid(device, n, 1), FA_THREADS,
                  stream, (const S *)x, (S *)y, slopes, (C)shared, n, channels, inner);
    }
    return 0;
}

/* affine_prelu: prelu's kernel with per-channel scale and shift (device
 * memory: fa_slopes copies host values there) */
template <typename Tr, bool VEC>
__global__ void __launch_bounds__(FA_THREADS)
affine_prelu_forward_kernel(const typename Tr::S *x, typename Tr::S *y,
                            const typename Tr::C *scale, const typename Tr::C *shift,
                            const typename Tr::C *slopes, int64_t n, int64_t channels,
                            int64_t inner)
{
    typedef typename Tr::S S;
    constexpr int V = Width<S, VEC>::V;
    PreluForward<Tr, true> f(slopes, 0, channels, inner, V);
    f.scale = scale;
    f.shift = shift;
    const S *const in[1] = {x};
    fa_elementwise<S, V, 1>(in, y, n, f);
}

template <typename Tr>
static int affine_prelu_forward_t(int device, const void *x, const void *scale_in,
                                  const void *shift_in, const void *slopes_in, int on_host,
                                  void *y, int64_t outer, int64_t channels, int64_t inner,
                                  cudaStream_t stream)
{
    typedef typename Tr::S S;
    typedef typename Tr::C C;
    const int64_t n = outer * channels * inner;
    Slopes keep[3];
    const C *scale, *shift, *slopes;
    if (int rc = fa_slopes(keep[0], &scale, scale_in, on_host, channels, stream))
        return rc;
    if (int rc = fa_slopes(keep[1], &shift, shift_in, on_host, channels, stream))
        return rc;
    if (int rc = fa_slopes(keep[2], &slopes, slopes_in, on_host, channels, stream))
        return rc;
    if (fa_aligned(x) && fa_aligned(y)) {
        FA_LAUNCH((affine_prelu_forward_kernel<Tr, true>), fa_grid(device, n, 16 / sizeof(S)),
                  FA_THREADS, stream, (const S *)x, (S *)y, scale, shift, slopes, n,
                  channels, inner);
    } else {
        FA_LAUNCH((affine_prelu_forward_kernel<Tr, false>), fa_grid(device, n, 1),
                  FA_THREADS, stream, (const S *)x, (S *)y, scale, shift, slopes, n,
                  channels, inner);
    }
    return 0;
}

extern "C" int fa_cuda_affine_prelu_forward(int device, int dtype, const void *x,
                                            const void *scale, const void *shift,
                                            const void *slopes, int on_host, void *y,
                                            int64_t outer, int64_t channels, int64_t inner,
                                            uintptr_t stream)
{
    if (outer <= 0 || channels <= 0 || inner <= 0)
        return 0;
    if (scale == NULL || shift == NULL || slopes == NULL)
        return fa_fail("fa_cuda_affine_prelu_forward: scale, shift and slopes are required",
                       cudaErrorInvalidValue);
    FA_ON_DEVICE(device);
    cudaStream_t s = (cudaStream_t)stream;
    return fa_with_dtype(dtype, "fa_cuda_affine_prelu_forward: unknown dtype", [&](auto tr) {
        return affine_prelu_forward_t<decltype(tr)>(device, x, scale, shift, slopes, on_host,
                                                    y, outer, channels, inner, s);
    });
}

extern "C" int fa_cuda_prelu_forward(int device, int dtype, const void *x,
                                     const void *slopes, int slopes_on_host,
                                     double shared_slope, void *y, int64_t outer,
                                     int64_t channels, int64_t inner, uintptr_t stream)
{
    if (outer <= 0 || channels <= 0 || inner <= 0)
        return 0;
    FA_ON_DEVICE(device);
    cudaStream_t s = (cudaStream_t)stream;
    return fa_with_dtype(dtype, "fa_cuda_prelu_forward: unknown dtype", [&](auto tr) {
        return prelu_forward_t<decltype(tr)>(device, x, slopes, slopes_on_host, shared_slope,
                                             y, outer, channels, inner, s);
    });
}

/* ------------------------------------------------------------------------ */
/* PReLU backward                                                            */
/* ------------------------------------------------------------------------ */

/* The sum of v over the block's threads (blockDim.x * blockDim.y, a power of
 * two), in a fixed tree order; every thread gets it. */
__device__ __forceinline__ double block_sum(double v, double *red)
{
    const int t = threadIdx.y * blockDim.x + threadIdx.x;
    const int nt = blockDim.x * blockDim.y;
    red[t] = v;
    __syncthreads();
    for (int half = nt / 2; half > 0; half >>= 1) {
        if (t < half)
            red[t] += red[t + half];
        __syncthreads();
    }
    const double total = red[0];
    __syncthreads();
    return total;
}

template <typename Tr>
__device__ __forceinline__ typename Tr::S prelu_backward_one(typename Tr::S gs,
                                                             typename Tr::S xs,
                                                             typename Tr::C s, double &acc)
{
    typedef typename Tr::C C;
    const C g = Tr::load(gs), xv = Tr::load(xs);
    if (!(xv > 0))
        acc += (double)xv * (double)g;   /* NaN in x makes the sum NaN */
    return Tr::store(FA_LEAKY_RELU_BWD(g, xv, s, 0, 0));
}

/*
 * Row strategy (long runs: NCHW with a large H*W, a shared slope): each run
 * of `inner` elements has one channel.  Work item w is chunk j of row
 * (o * channels + c); its partial sum goes to partial[w], w = row * cpr + j,
 * cpr chunks per row.  Within a chunk the vector loop starts at the first
 * 16-byte boundary (head and tail elements are handled one by one).
 */
template <typename Tr, bool VEC>
__global__ void __launch_bounds__(FA_THREADS)
prelu_backward_rows(const typename Tr::S *g, const typename Tr::S *x,
                    typename Tr::S *gi, const typename Tr::C *slopes,
                    typename Tr::C shared, int64_t channels, int64_t inner, int64_t cpr,
                    int64_t nwork, double *partial)
{
    typedef typename Tr::S S;
    typedef typename Tr::C C;
    constexpr int V = Width<S, VEC>::V;
    __shared__ double red[FA_THREADS];
    const int t = threadIdx.x;
    for (int64_t w = blockIdx.x; w < nwork; w += gridDim.x) {
        const int64_t row = w / cpr, j = w - (w / cpr) * cpr;
        const C s = slopes ? slopes[row % channels] : shared;
        const int64_t begin = row * inner + j * FA_ROW_CHUNK;
        const int64_t end = fa_min64(begin + FA_ROW_CHUNK, (row + 1) * inner);
        double acc = 0.0;
        int64_t vbegin = begin, nvec = 0;
        if (VEC) {
            const int64_t mis = (int64_t)(((uintptr_t)(x + begin) & 15) / sizeof(S));
            vbegin = fa_min64(begin + (mis ? V - mis : 0), end);
            nvec = (end - vbegin) / V;
        }
        for (int64_t e = begin + t; e < vbegin; e += blockDim.x)
            gi[e] = prelu_backward_one<Tr>(g[e], x[e], s, acc);
        for (int64_t k0 = t; k0 < nvec; k0 += FA_UNROLL * blockDim.x) {
            Pack<S, V> pg[FA_UNROLL], px[FA_UNROLL];
#pragma unroll
            for (int u = 0; u < FA_UNROLL; u++) {
                const int64_t k = k0 + u * blockDim.x;
                if (k < nvec) {
                    load_pack<S, V>(pg[u], g + vbegin + k * V);
                    load_pack<S, V>(px[u], x + vbegin + k * V);
                }
            }
#pragma unroll
            for (int u = 0; u < FA_UNROLL; u++) {
                const int64_t k = k0 + u * blockDim.x;
                if (k < nvec) {
#pragma unroll
                    for (int l = 0; l < V; l++)
                        pg[u].s[l] = prelu_backward_one<Tr>(pg[u].s[l], px[u].s[l], s, acc);
                    store_pack<S, V>(gi + vbegin + k * V, pg[u]);
                }
            }
        }
        for (int64_t e = vbegin + nvec * V + t; e < end; e += blockDim.x)
            gi[e] = prelu_backward_one<Tr>(g[e], x[e], s, acc);
        const double total = block_sum(acc, red);
        if (t == 0)
            partial[w] = total;
    }
}

/*
 * Column strategy (short runs: channels-last, small H*W): x is `rows`
 * contiguous rows of `cols` = channels * inner elements, column col holding
 * channel col / inner.  A block is TX column-threads (each V adjacent
 * columns) by TY row-threads; work item w covers row group grp (RG rows) and
 * column tile tile; the TY row-threads' sums are combined in a fixed tree,
 * giving partial[grp * cols + col].  Vectors need cols % V == 0 and aligned
 * bases, so that every row starts on a 16-byte boundary.
 */
template <typename Tr, bool VEC>
__global__ void __launch_bounds__(FA_THREADS)
prelu_backward_cols(const typename Tr::S *g, const typename Tr::S *x,
                    typename Tr::S *gi, const typename Tr::C *slopes,
                    typename Tr::C shared, int64_t rows, int64_t cols, int64_t inner,
                    int64_t rg, int64_t ngroups, int64_t ntiles, double *partial)
{
    typedef typename Tr::S S;
    typedef typename Tr::C C;
    constexpr int V = Width<S, VEC>::V;
    __shared__ double red[FA_THREADS * V];
    const int tx = threadIdx.x, ty = threadIdx.y;
    const int TX = blockDim.x, TY = blockDim.y;
    const int t = ty * TX + tx;
    for (int64_t w = blockIdx.x; w < ngroups * ntiles; w += gridDim.x) {
        const int64_t grp = w / ntiles, tile = w - (w / ntiles) * ntiles;
        const int64_t col0 = (tile * TX + tx) * V;
        const bool active = col0 < cols;
        C s[V];
        double acc[V];
#pragma unroll
        for (int l = 0; l < V; l++) {
            acc[l] = 0.0;
            s[l] = shared;
            if (slopes && active)
                s[l] = slopes[(col0 + l) / inner];
        }
        const int64_t rend = fa_min64((grp + 1) * rg, rows);
        if (active) {
            for (int64_t row = grp * rg + ty; row < rend; row += TY) {
                const int64_t e = row * cols + col0;
                Pack<S, V> pg, px;
                load_pack<S, V>(pg, g + e);
                load_pack<S, V>(px, x + e);
#pragma unroll
                for (int l = 0; l < V; l++)
                    pg.s[l] = prelu_backward_one<Tr>(pg.s[l], px.s[l], s[l], acc[l]);
                store_pack<S, V>(gi + e, pg);
            }
        }
        /* combine the TY row-threads of each column: red[(ty*TX + tx)*V + l] */
#pragma unroll
        for (int l = 0; l < V; l++)
            red[t * V + l] = acc[l];
        __syncthreads();
        for (int half = TY / 2; half > 0; half >>= 1) {
            if (ty < half) {
#pragma unroll
                for (int l = 0; l < V; l++)
                    red[t * V + l] += red[(t + half * TX) * V + l];
            }
            __syncthreads();
        }
        if (ty == 0 && active) {
#pragma unroll
            for (int l = 0; l < V; l++)
                partial[grp * cols + col0 + l] = red[tx * V + l];
        }
        __syncthreads();
    }
}

/*
 * Second stage: grad_slopes[c] = the sum of channel c's partials, in index
 * order (a fixed tree over the block), optionally divided by slope[c].
 * Row strategy: partials (o * channels + c) * a + j for k = o * a + j;
 * column strategy: partials grp * b + c * a + i for k = grp * a + i.
 */
template <typename C, typename O>
__global__ void __launch_bounds__(FA_THREADS)
prelu_grad_finish(const double *partial, O *grad, const C *slopes, C shared, int divide,
                  int columns, int64_t channels, int64_t nk, int64_t a, int64_t b)
{
    __shared__ double red[FA_THREADS];
    for (int64_t c = blockIdx.x; c < channels; c += gridDim.x) {
        double acc = 0.0;
        for (int64_t k = threadIdx.x; k < nk; k += blockDim.x) {
            const int64_t hi = k / a, lo = k - (k / a) * a;
            const int64_t idx = columns ? hi * b + c * a + lo : (hi * channels + c) * a + lo;
            acc += partial[idx];
        }
        double total = block_sum(acc, red);
        if (threadIdx.x == 0) {
            if (divide)
                total = total / (double)(slopes ? slopes[c] : shared);
            grad[c] = (O)total;
        }
    }
}

struct Workspace {
    void *ptr = NULL;
    cudaStream_t stream = 0;
    ~Workspace()
    {
        if (ptr)
            cudaFreeAsync(ptr, stream);
    }
};

static int fa_pow2_floor(int64_t v)
{
    int p = 1;
    while ((int64_t)p * 2 <= v && p < FA_THREADS)
        p *= 2;
    return p;
}

template <typename Tr>
static int prelu_backward_t(int device, const void *g, const void *x, const void *slopes_in,
                            int on_host, double shared_d, void *gi, void *grad,
                            int grad_dtype, int divide, int64_t outer, int64_t channels,
                            int64_t inner, cudaStream_t stream)
{
    typedef typename Tr::S S;
    typedef typename Tr::C C;
    constexpr int VV = 16 / sizeof(S);
    const C shared = (C)shared_d;
    const int64_t n = outer * channels * inner;
    Slopes sl;
    const C *slopes;
    if (int rc = fa_slopes(sl, &slopes, slopes_in, on_host, channels, stream))
        return rc;
    const bool aligned = fa_aligned(g) && fa_aligned(x) && fa_aligned(gi);

    Workspace ws;
    ws.stream = stream;
    const bool columns = inner < FA_ROW_MIN_INNER;
    int64_t nk, a, b = 0;
    if (!columns) {
        const int64_t cpr = fa_ceil_div(inner, FA_ROW_CHUNK);
        const int64_t nwork = outer * channels * cpr;
        nk = outer * cpr;
        a = cpr;
        FA_CHECK(cudaMallocAsync(&ws.ptr, (size_t)(nwork > 0 ? nwork : 1) * sizeof(double), stream));
        if (nwork > 0) {
            const unsigned grid = (unsigned)fa_min64(nwork, fa_max_blocks(device));
            if (aligned)
                FA_LAUNCH((prelu_backward_rows<Tr, true>), grid, FA_THREADS, stream,
                          (const S *)g, (const S *)x, (S *)gi, slopes, shared, channels,
                          inner, cpr, nwork, (double *)ws.ptr);
            else
                FA_LAUNCH((prelu_backward_rows<Tr, false>), grid, FA_THREADS, stream,
                          (const S *)g, (const S *)x, (S *)gi, slopes, shared, channels,
                          inner, cpr, nwork, (double *)ws.ptr);
        }
    } else {
        const int64_t cols = channels * inner, rows = outer;
        const bool vec = aligned && cols % VV == 0;
        const int V = vec ? VV : 1;
        const int tx = fa_pow2_floor(fa_min64(32, fa_ceil_div(cols, V) * 2 - 1));
        const int ty = FA_THREADS / tx;
        const int64_t ntiles = fa_ceil_div(fa_ceil_div(cols, V), tx);
        int64_t groups = fa_min64(FA_COL_TARGET_GROUPS, fa_ceil_div(rows, ty));
        groups = fa_min64(groups, FA_MAX_WORKSPACE_DOUBLES / cols);
        if (groups < 1)
            groups = 1;
        const int64_t rg = fa_ceil_div(fa_ceil_div(rows, groups), ty) * ty;
        const int64_t ngroups = rows > 0 ? fa_ceil_div(rows, rg) : 0;
        nk = ngroups * inner;
        a = inner;
        b = cols;
        FA_CHECK(cudaMallocAsync(&ws.ptr, (size_t)(ngroups * cols > 0 ? ngroups * cols : 1)
                                              * sizeof(double), stream));
        const int64_t nwork = ngroups * ntiles;
        if (nwork > 0) {
            const unsigned grid = (unsigned)fa_min64(nwork, fa_max_blocks(device));
            const dim3 block(tx, ty);
            if (vec)
                FA_LAUNCH((prelu_backward_cols<Tr, true>), grid, block, stream,
                          (const S *)g, (const S *)x, (S *)gi, slopes, shared, rows, cols,
                          inner, rg, ngroups, ntiles, (double *)ws.ptr);
            else
                FA_LAUNCH((prelu_backward_cols<Tr, false>), grid, block, stream,
                          (const S *)g, (const S *)x, (S *)gi, slopes, shared, rows, cols,
                          inner, rg, ngroups, ntiles, (double *)ws.ptr);
        }
    }
    (void)n;
    const unsigned grid = (unsigned)fa_min64(channels, fa_max_blocks(device));
    if (grad_dtype == FA_DT_F32)
        FA_LAUNCH((prelu_grad_finish<C, float>), grid, FA_THREADS, stream,
                  (const double *)ws.ptr, (float *)grad, slopes, shared, divide, columns,
                  channels, nk, a, b);
    else if (grad_dtype == FA_DT_F64)
        FA_LAUNCH((prelu_grad_finish<C, double>), grid, FA_THREADS, stream,
                  (const double *)ws.ptr, (double *)grad, slopes, shared, divide, columns,
                  channels, nk, a, b);
    else
        return fa_fail("fa_cuda_prelu_backward: grad_dtype must be float32 or float64",
                       cudaErrorInvalidValue);
    return 0;
}

extern "C" int fa_cuda_prelu_backward(int device, int dtype, const void *g, const void *x,
                                      const void *slopes, int slopes_on_host,
                                      double shared_slope, void *gi, void *grad_slopes,
                                      int grad_dtype, int divide_by_slopes, int64_t outer,
                                      int64_t channels, int64_t inner, uintptr_t stream)
{
    if (channels <= 0)
        return 0;
    if (outer < 0 || inner < 0)
        return fa_fail("fa_cuda_prelu_backward: negative size", cudaErrorInvalidValue);
    if (inner == 0)
        outer = 0;   /* no elements: every channel's sum is 0 */
    if (inner == 0)
        inner = FA_ROW_MIN_INNER;
    FA_ON_DEVICE(device);
    cudaStream_t s = (cudaStream_t)stream;
    return fa_with_dtype(dtype, "fa_cuda_prelu_backward: unknown dtype", [&](auto tr) {
        return prelu_backward_t<decltype(tr)>(device, g, x, slopes, slopes_on_host, shared_slope,
                                              gi, grad_slopes, grad_dtype, divide_by_slopes,
                                              outer, channels, inner, s);
    });
}

/* ------------------------------------------------------------------------ */
/* device discovery and streams                                              */
/* ------------------------------------------------------------------------ */

extern "C" int fa_cuda_device_count(int *count)
{
    *count = 0;
    cudaError_t err = cudaGetDeviceCount(count);
    if (err != cudaSuccess) {
        *count = 0;
        cudaGetLastError();
        return fa_fail("cudaGetDeviceCount", err);
    }
    return 0;
}

extern "C" int fa_cuda_driver_version(int *version)
{
    *version = 0;
    FA_CHECK(cudaDriverGetVersion(version));
    return 0;
}

extern "C" int fa_cuda_runtime_version(int *version)
{
    *version = 0;
    FA_CHECK(cudaRuntimeGetVersion(version));
    return 0;
}

extern "C" int fa_cuda_device_name(int device, char *name, int len, int *major, int *minor)
{
    cudaDeviceProp prop;
    FA_CHECK(cudaGetDeviceProperties(&prop, device));
    snprintf(name, (size_t)len, "%s", prop.name);
    *major = prop.major;
    *minor = prop.minor;
    return 0;
}

extern "C" int fa_cuda_pointer_device(const void *ptr, int *device, int *is_device)
{
    cudaPointerAttributes attr;
    *device = -1;
    *is_device = 0;
    FA_CHECK(cudaPointerGetAttributes(&attr, ptr));
    *device = attr.device;
    *is_device = attr.type == cudaMemoryTypeDevice || attr.type == cudaMemoryTypeManaged;
    return 0;
}

extern "C" int fa_cuda_stream_wait(int device, uintptr_t waiting, uintptr_t producer)
{
    if (waiting == producer)
        return 0;
    FA_ON_DEVICE(device);
    cudaEvent_t ev;
    FA_CHECK(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming));
    cudaError_t err = cudaEventRecord(ev, (cudaStream_t)producer);
    if (err == cudaSuccess)
        err = cudaStreamWaitEvent((cudaStream_t)waiting, ev, 0);
    cudaEventDestroy(ev);   /* released once the wait is satisfied */
    if (err != cudaSuccess)
        return fa_fail("cudaEventRecord/cudaStreamWaitEvent", err);
    return 0;
}
