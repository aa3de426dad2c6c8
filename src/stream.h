/*
 * Non-temporal (streaming) stores: the compiler never emits them, so they are
 * written with SSE2 intrinsics, which every x86-64 CPU has and which reach
 * full bandwidth (the write-combining buffer fills a whole line either way).
 * Elsewhere they fall back to ordinary stores.
 */
#ifndef FASTACT_STREAM_H
#define FASTACT_STREAM_H

#include <stdint.h>
#include <string.h>

/* Bytes of a cache line; streamed blocks start on and cover whole lines. */
#define FA_LINE 64

#if defined(__x86_64__)
#include <emmintrin.h>
#define FA_HAVE_STREAM 1

/* dst: FA_LINE-aligned; src: any alignment; nbytes: a multiple of FA_LINE */
static inline void fa_stream_block(void *dst, const void *src, size_t nbytes)
{
    char *d = (char *)dst;
    const char *s = (const char *)src;
    for (size_t i = 0; i < nbytes; i += 16) {
        _mm_stream_si128((__m128i *)(d + i), _mm_loadu_si128((const __m128i *)(s + i)));
    }
}

/* Streaming stores are weakly ordered: fence before others may read them. */
static inline void fa_stream_fence(void) { _mm_sfence(); }

#else
#define FA_HAVE_STREAM 0
static inline void fa_stream_block(void *dst, const void *src, size_t nbytes)
{
    memcpy(dst, src, nbytes);
}
static inline void fa_stream_fence(void) {}
#endif

/* GNU C: fastact is built with GCC or Clang (parallel.c is POSIX) */
#define FA_ALIGNED(n) __attribute__((aligned(n)))

/* Elements of size elsize before p reaches a FA_LINE boundary (p must be
 * elsize-aligned). */
static inline int64_t fa_elems_to_line(const void *p, size_t elsize)
{
    uintptr_t mis = (uintptr_t)p % FA_LINE;
    return mis == 0 ? 0 : (int64_t)((FA_LINE - mis) / elsize);
}

#endif
