/*
 * A host emulation of the little of CUDA that src/cuda/fastact_cuda.cu uses,
 * so that its kernels can be compiled by a C++ compiler and checked on a
 * machine without a GPU (tests/test_cuda_emulated.py):
 *
 *   g++ -std=c++20 -O1 -shared -fPIC -DFASTACT_CUDA_EMULATE -include tools/cuda_emulation.h \
 *       -x c++ src/cuda/fastact_cuda.cu -o libfastact_cuda_emu.so
 *
 * Each block runs as blockDim fibers (ucontext) in one OS thread: every
 * fiber runs until its next __syncthreads (or its end) before any fiber
 * passes that barrier, which is the barrier's meaning; blocks run one after
 * another, so __shared__ arrays can be function statics.  "Device" memory is host
 * memory.  This checks indexing, vector paths, the reduction orders and the
 * launch arithmetic; it says nothing about speed or the real memory model.
 */
#ifndef FASTACT_CUDA_EMULATION_H
#define FASTACT_CUDA_EMULATION_H

#include <ucontext.h>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(n)
#define __shared__ static

struct dim3 {
    unsigned x, y, z;
    dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct alignas(16) uint4 { unsigned x, y, z, w; };

inline dim3 threadIdx, blockIdx, blockDim, gridDim;

struct FaEmuFiber {
    ucontext_t ctx;
    unsigned tx, ty;
    bool done;
};
inline ucontext_t fa_emu_main;
inline FaEmuFiber *fa_emu_current = nullptr;
inline const std::function<void()> *fa_emu_body = nullptr;

inline void __syncthreads() { swapcontext(&fa_emu_current->ctx, &fa_emu_main); }

inline void fa_emu_entry()
{
    (*fa_emu_body)();
    fa_emu_current->done = true;     /* uc_link returns to the scheduler */
}

typedef int cudaError_t;
typedef void *cudaStream_t;
typedef void *cudaEvent_t;
enum { cudaSuccess = 0, cudaErrorInvalidValue = 1, cudaErrorMemoryAllocation = 2 };
enum { cudaDevAttrMultiProcessorCount = 16 };
enum { cudaMemcpyHostToDevice = 1 };
enum { cudaEventDisableTiming = 2 };
enum { cudaMemoryTypeHost = 1, cudaMemoryTypeDevice = 2, cudaMemoryTypeManaged = 3 };
struct cudaDeviceProp { char name[256]; int major, minor; };
struct cudaPointerAttributes { int type; int device; };

/* a small "GPU": few multiprocessors, so grid-stride loops take many turns */
inline int fa_emu_sms = 2;
inline cudaError_t cudaGetDevice(int *d) { *d = 0; return cudaSuccess; }
inline cudaError_t cudaSetDevice(int) { return cudaSuccess; }
inline cudaError_t cudaDeviceGetAttribute(int *v, int, int) { *v = fa_emu_sms; return cudaSuccess; }
inline cudaError_t cudaGetLastError() { return cudaSuccess; }
inline const char *cudaGetErrorString(cudaError_t) { return "emulated error"; }
inline cudaError_t cudaMallocAsync(void **p, size_t n, cudaStream_t)
{
    *p = std::malloc(n ? n : 1);
    if (!*p)
        return cudaErrorMemoryAllocation;
    std::memset(*p, 0x7f, n);   /* poison: partials must all be written */
    return cudaSuccess;
}
inline cudaError_t cudaFreeAsync(void *p, cudaStream_t) { std::free(p); return cudaSuccess; }
inline cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t n, int, cudaStream_t)
{
    std::memcpy(d, s, n);
    return cudaSuccess;
}
inline cudaError_t cudaGetDeviceCount(int *n) { *n = 1; return cudaSuccess; }
inline cudaError_t cudaDriverGetVersion(int *v) { *v = 13000; return cudaSuccess; }
inline cudaError_t cudaRuntimeGetVersion(int *v) { *v = 13000; return cudaSuccess; }
inline cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int)
{
    std::strcpy(p->name, "host emulation");
    p->major = 0;
    p->minor = 0;
    return cudaSuccess;
}
inline cudaError_t cudaPointerGetAttributes(cudaPointerAttributes *a, const void *)
{
    a->type = cudaMemoryTypeDevice;
    a->device = 0;
    return cudaSuccess;
}
inline cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, int) { *e = nullptr; return cudaSuccess; }
inline cudaError_t cudaEventRecord(cudaEvent_t, cudaStream_t) { return cudaSuccess; }
inline cudaError_t cudaStreamWaitEvent(cudaStream_t, cudaEvent_t, int) { return cudaSuccess; }
inline cudaError_t cudaEventDestroy(cudaEvent_t) { return cudaSuccess; }

inline void fa_emu_launch(dim3 grid, dim3 block, const std::function<void()> &body)
{
    const unsigned nt = block.x * block.y;
    const size_t stack = 128 * 1024;
    std::vector<FaEmuFiber> fibers(nt);
    std::vector<char> stacks(stack * nt);
    fa_emu_body = &body;
    blockDim = block;
    gridDim = grid;
    for (unsigned b = 0; b < grid.x; b++) {
        blockIdx = dim3(b);
        for (unsigned t = 0; t < nt; t++) {
            FaEmuFiber &f = fibers[t];
            f.tx = t % block.x;
            f.ty = t / block.x;
            f.done = false;
            getcontext(&f.ctx);
            f.ctx.uc_stack.ss_sp = &stacks[t * stack];
            f.ctx.uc_stack.ss_size = stack;
            f.ctx.uc_link = &fa_emu_main;
            makecontext(&f.ctx, fa_emu_entry, 0);
        }
        /* one round per barrier phase: every fiber runs to its next barrier */
        for (bool pending = true; pending;) {
            pending = false;
            for (FaEmuFiber &f : fibers) {
                if (f.done)
                    continue;
                threadIdx = dim3(f.tx, f.ty);
                fa_emu_current = &f;
                swapcontext(&fa_emu_main, &f.ctx);
                pending = pending || !f.done;
            }
        }
    }
    fa_emu_current = nullptr;
}

#define FA_LAUNCH_IMPL(kernel, grid, block, stream, ...) \
    fa_emu_launch(dim3(grid), dim3(block), [&] { kernel(__VA_ARGS__); })

/* float16 and bfloat16 as bit patterns, converted as the CUDA intrinsics do
 * (round to nearest even; _Float16 is GCC's IEEE binary16) */
struct __half { unsigned short bits; };
struct __nv_bfloat16 { unsigned short bits; };
inline __half __ushort_as_half(unsigned short b) { return __half{b}; }
inline unsigned short __half_as_ushort(__half h) { return h.bits; }
inline float __half2float(__half h)
{
    _Float16 v;
    std::memcpy(&v, &h.bits, 2);
    return (float)v;
}
inline __half __float2half_rn(float f)
{
    _Float16 v = (_Float16)f;
    __half h;
    std::memcpy(&h.bits, &v, 2);
    return h;
}
inline __nv_bfloat16 __ushort_as_bfloat16(unsigned short b) { return __nv_bfloat16{b}; }
inline unsigned short __bfloat16_as_ushort(__nv_bfloat16 h) { return h.bits; }
inline float __bfloat162float(__nv_bfloat16 h)
{
    uint32_t u = (uint32_t)h.bits << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}
inline __nv_bfloat16 __float2bfloat16_rn(float f)
{
    uint32_t u;
    std::memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return __nv_bfloat16{(unsigned short)((u >> 16) | 0x40)};   /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return __nv_bfloat16{(unsigned short)(u >> 16)};
}

inline float expm1f(float v) { return std::expm1(v); }
inline float expf(float v) { return std::exp(v); }
using std::exp;
using std::expm1;

#endif
