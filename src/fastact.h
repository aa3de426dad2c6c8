/*
 * fastact's C interface: kernels over raw contiguous blocks, the thread
 * policy and the run-time ISA choice.  No Python here.
 *
 * Layout convention: an array is viewed as (outer, channels, inner)
 * contiguous blocks.  NCHW per-channel: outer = N, channels = C,
 * inner = H*W (product of the spatial dims).  A shared slope is
 * outer = 1, channels = 1, inner = size.
 *
 * Aliasing: an output may be exactly its input (in place), never a partial
 * overlap of it.  prelu_backward's grad_input may be exactly grad_output, but
 * must not overlap x.
 */
#ifndef FASTACT_H
#define FASTACT_H

#include <stddef.h>
#include <stdint.h>

/* --- PReLU ------------------------------------------------------------- */
/*
 * y = x > 0 ? x : slope[c] * x
 * grad_input = x > 0 ? grad_output : slope[c] * grad_output
 * grad_slopes[c] = sum over channel c of (x > 0 ? 0 : x * grad_output), in
 * float64, bitwise the same for any thread count and any ISA.
 * For any dtype code FA_DT_* (src/ops.h): float16 and bfloat16 arrays hold
 * uint16_t and take float slopes.  Return 0, -1 (backward: no workspace,
 * nothing written) or -2 (unknown dtype). */
int fa_prelu_forward(int dtype, const void *x, const void *slopes, void *y,
                     int64_t outer, int64_t channels, int64_t inner);
int fa_prelu_backward(int dtype, const void *grad_output, const void *x,
                      const void *slopes, void *grad_input, double *grad_slopes,
                      int64_t outer, int64_t channels, int64_t inner);

/* --- affine_prelu: a BatchNorm folded into PReLU (prelu.c) --------------- */
/*
 * t = x * scale[c] + shift[c]  (rounded after the product and after the sum:
 *                                no FMA, the same on every ISA)
 * y = t > 0 ? t : slope[c] * t
 * in the compute type (float for float32, float16 and bfloat16, double for
 * float64; scale, shift and slopes are held in it, `channels` values each),
 * rounded once to the dtype.  Layout, aliasing (y may be x), threads and
 * streaming stores as fa_prelu_forward.  Returns 0, or -2 (unknown dtype, or
 * scale or shift NULL: nothing written). */
int fa_affine_prelu_forward(int dtype, const void *x, const void *scale, const void *shift,
                            const void *slopes, void *y, int64_t outer, int64_t channels,
                            int64_t inner);

/* --- the family: elementwise ops (elementwise.c) ------------------------- */
/*
 * y = f(x) over n contiguous elements, f the op FA_OP_* with parameters
 * params[0..2] as src/ops.h defines them; y may be x (in place).
 * grad_input = grad_output * f'(x); grad_input may be grad_output.
 * Return 0, or -2 for an unknown dtype or op, or a forward of a
 * backward-only op (nothing written).
 */
int fa_unary_forward(int dtype, int op, const double params[3], const void *x,
                     void *y, int64_t n);
int fa_unary_backward(int dtype, int op, const double params[3],
                      const void *grad_output, const void *x, void *grad_input,
                      int64_t n);
/* The op's name in src/ops.h's list ("leaky_relu", ...), NULL for no op. */
const char *fa_op_name(int op);

/* --- thread policy (parallel.c) ----------------------------------------- */
void fa_init(void);                 /* idempotent; registers the fork handler */
int fa_have_openmp(void);
void fa_set_num_threads(int n);     /* n <= 0: follow OpenMP's setting again */
int fa_get_num_threads(void);       /* threads a large call would use now */
int fa_cpu_limit(void);             /* CPUs this process may use */
int fa_forked_serial(void);         /* 1 when a fork switched this process to serial */
int64_t fa_forked_serial_calls(void); /* large calls a fork made serial (see parallel.c) */
int fa_wanted_threads(void);        /* fa_get_num_threads, were it not for a fork */
int64_t fa_streaming_threshold_bytes(void);
/* outputs of at least this many bytes use streaming stores (default: the
 * last-level cache size, counting at most 16 MiB per usable CPU); tests
 * lower it to reach that path on small arrays */
void fa_set_streaming_threshold_bytes(int64_t nbytes);
/* Backing off to serial calls while a thread team costs more than it saves
 * (a busy machine; see parallel.c).  On by default; off: every large call
 * runs its full team (the back-off's state is kept for when it is on again). */
void fa_set_thread_backoff(int on);
int fa_get_thread_backoff(void);
/* run the next calls that would take a team serially, for budget_ns of their
 * time, as after a bad team call (tests); 0: try the team at the next call */
void fa_force_thread_backoff(int64_t budget_ns);
/* team calls, bad team calls, calls run serially by the back-off, the
 * back-off's serial budget left (ns) and its doublings */
void fa_thread_stats(int64_t stats[5]);

/* --- run-time ISA choice (dispatch.c) ------------------------------------ */
/* ISAs are indices FA_ISA_<name>, 0 (FA_ISA_baseline) to FA_ISA_COUNT - 1:
 * src/isa.h lists them.  The active one is chosen once, thread-safely, at the
 * first kernel call or call of fa_get_isa, fa_set_isa or fa_isa_environment:
 * the one FASTACT_ISA names, if this CPU runs it (unset, blank, "auto" or
 * "best": the highest it runs). */
#include "isa.h"
int fa_isa_supported(int isa);      /* compiled in and supported by this CPU */
int fa_isa_best(void);
int fa_set_isa(int isa);            /* 0, or -1 when not supported */
int fa_get_isa(void);
const char *fa_isa_name(int isa);   /* "unknown" when out of range */
int fa_isa_from_name(const char *name); /* the ISA of that name, or -1 */
/* How FASTACT_ISA was taken: one of the FA_ISA_ENV_* below; *value (when
 * value is not NULL) is the variable's value then, or NULL if unset. */
enum {
    FA_ISA_ENV_UNSET = 0,           /* unset, blank, "auto" or "best" */
    FA_ISA_ENV_APPLIED = 1,         /* names an ISA this CPU runs: active */
    FA_ISA_ENV_UNKNOWN = -1,        /* names no ISA: ignored */
    FA_ISA_ENV_UNSUPPORTED = -2     /* an ISA this CPU or build lacks: ignored */
};
int fa_isa_environment(const char **value);

/* --- memory (memory.c) --------------------------------------------------- */
/* Asks Linux for transparent huge pages on the 2 MiB-aligned part of
 * [ptr, ptr + nbytes) (madvise MADV_HUGEPAGE), before anything touches it:
 * fresh memory then faults in 2 MiB pages instead of 4 KiB ones.  A hint:
 * returns the bytes advised, 0 where nothing was (a block too small, another
 * OS, THP not in the kernel). */
size_t fa_advise_huge_pages(void *ptr, size_t nbytes);

#endif
