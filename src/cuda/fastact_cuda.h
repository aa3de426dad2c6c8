/*
 * fastact's CUDA entry points: launchers over raw device pointers, callable
 * from C (the Cython glue in fastact/_cuda.pyx).  No Python here.
 *
 * Conventions (as the CPU kernels in src/fastact.h):
 *   - arrays are contiguous (outer, channels, inner) blocks; sizes are int64_t;
 *   - an output may be exactly one of its inputs (in place), never a partial
 *     overlap of one;
 *   - dtype codes and op codes are those of src/ops.h (FA_DT_*, FA_OP_*);
 *   - `stream` is a cudaStream_t passed as an integer (0: the default stream,
 *     1: cudaStreamLegacy, 2: cudaStreamPerThread, as in
 *     __cuda_array_interface__ v3); every launch goes on it and nothing here
 *     synchronises the device or the stream;
 *   - `device` is the CUDA device that holds the arrays; the launcher makes
 *     it current for the call and restores the caller's device afterwards.
 *
 * Every function returns 0 on success or a cudaError_t code (a positive
 * int); fa_cuda_error_message() then describes the failing call in this
 * thread, with the CUDA runtime's own message.
 */
#ifndef FASTACT_CUDA_H
#define FASTACT_CUDA_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The last failure in this thread: "<call>: <cudaGetErrorString> (<code>)". */
const char *fa_cuda_error_message(void);

/* Device discovery.  fa_cuda_device_count returns cudaGetDeviceCount's code:
 * 35 (insufficient driver: no driver, or one too old for this runtime) and
 * 100 (no device) are the usual reasons for "no GPU". */
int fa_cuda_device_count(int *count);
int fa_cuda_driver_version(int *version);   /* 0 when no driver is installed */
int fa_cuda_runtime_version(int *version);
int fa_cuda_device_name(int device, char *name, int len, int *major, int *minor);
/* The device that holds ptr; *is_device is 0 for host or unregistered memory. */
int fa_cuda_pointer_device(const void *ptr, int *device, int *is_device);

/* Make `waiting` wait (on the device, not the host) for the work queued so
 * far on `producer`: an event recorded on one, waited on by the other. */
int fa_cuda_stream_wait(int device, uintptr_t waiting, uintptr_t producer);

/* --- the family: y = f(x), grad_input = g * f'(x) ------------------------ */
/* params[0..2] as float64; rounded once to the compute type (float for
 * float32/float16/bfloat16, double for float64). */
int fa_cuda_unary_forward(int device, int op, int dtype, const double *params,
                          const void *x, void *y, int64_t n, uintptr_t stream);
/* op FA_OP_ELU_OUTPUT reads y = elu(x) in place of x. */
int fa_cuda_unary_backward(int device, int op, int dtype, const double *params,
                           const void *grad_output, const void *x,
                           void *grad_input, int64_t n, uintptr_t stream);

/* --- PReLU ----------------------------------------------------------------
 * slopes: `channels` values of the compute type (float, or double for
 * float64) in device memory, or in host memory when slopes_on_host is 1 (then
 * copied to the device in stream order), or NULL: one shared slope,
 * shared_slope, rounded to the compute type. */
int fa_cuda_prelu_forward(int device, int dtype, const void *x,
                          const void *slopes, int slopes_on_host,
                          double shared_slope, void *y, int64_t outer,
                          int64_t channels, int64_t inner, uintptr_t stream);

/* affine_prelu: y = prelu(x * scale[c] + shift[c], slopes[c]), the product
 * and the sum each rounded (built with -fmad=false, as the CPU kernels with
 * -ffp-contract=off); scale, shift and slopes: `channels` values each of the
 * compute type, in device memory, or in host memory when on_host is 1
 * (copied to the device in stream order). */
int fa_cuda_affine_prelu_forward(int device, int dtype, const void *x,
                                 const void *scale, const void *shift,
                                 const void *slopes, int on_host, void *y,
                                 int64_t outer, int64_t channels, int64_t inner,
                                 uintptr_t stream);

/* grad_input = x > 0 ? g : slope[c] * g, and
 * grad_slopes[c] = sum over channel c of x * g where not (x > 0), summed in
 * float64 in two stages in an order fixed by the shape (no atomics: the same
 * inputs give bitwise the same result), optionally divided by slope[c], and
 * written to device memory as float32 (grad_dtype FA_DT_F32) or float64
 * (FA_DT_F64).  The partial sums live in stream-ordered memory
 * (cudaMallocAsync/cudaFreeAsync): no device-wide synchronisation. */
int fa_cuda_prelu_backward(int device, int dtype, const void *grad_output,
                           const void *x, const void *slopes, int slopes_on_host,
                           double shared_slope, void *grad_input,
                           void *grad_slopes, int grad_dtype,
                           int divide_by_slopes, int64_t outer,
                           int64_t channels, int64_t inner, uintptr_t stream);

#ifdef __cplusplus
}
#endif

#endif
