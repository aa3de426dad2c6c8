/*
 * Thread policy: the thread count, the serial threshold and the switch to
 * serial after fork.
 *
 * Thread count: set_num_threads wins; otherwise OpenMP's own setting read at
 * each call (so OMP_NUM_THREADS and threadpoolctl's limits apply), capped by
 * the CPUs the process may use (affinity mask and cgroup CPU quota), which
 * libgomp does not know about.
 *
 * Fork: libgomp is not fork-safe.  A child forked after its parent ran a
 * thread team inherits the pool's bookkeeping but not its threads, and hangs
 * at its first parallel region.  A pthread_atfork child handler makes such a
 * child run every kernel serially.  A child whose parent never started a
 * team keeps its threads.  An explicit num_threads(n) clause overrides
 * omp_set_num_threads, so the flag is ours and is checked on every call.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "fa_omp.h"
#include "fastact.h"
#include "parallel.h"

/* The most last-level cache one CPU can count on (servers have 1.5 to 5
 * MiB of L3 per core; a 2-CPU share of a 32 MiB L3 is 32 MiB). */
#define FA_LLC_PER_CPU ((int64_t)16 << 20)

static int user_threads = 0;          /* 0: follow OpenMP's setting */
static int cpu_limit = 1;
static volatile int team_started = 0; /* this process ran a team of > 1 */
static volatile int forked_serial = 0;
static int64_t streaming_threshold = (int64_t)32 << 20;

static void child_after_fork(void)
{
    if (team_started) {
        forked_serial = 1;
    }
}

/* ceil(quota / period) from cgroup v2 cpu.max or v1 cfs files; 0 if none */
static int cgroup_cpu_quota(void)
{
    long long quota = -1, period = 0;
    FILE *f = fopen("/sys/fs/cgroup/cpu.max", "r");
    if (f != NULL) {
        char word[32];
        if (fscanf(f, "%31s %lld", word, &period) == 2 && word[0] != 'm') {
            quota = atoll(word);
        }
        fclose(f);
    }
    else {
        f = fopen("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "r");
        if (f != NULL) {
            if (fscanf(f, "%lld", &quota) != 1) {
                quota = -1;
            }
            fclose(f);
        }
        f = fopen("/sys/fs/cgroup/cpu/cpu.cfs_period_us", "r");
        if (f != NULL) {
            if (fscanf(f, "%lld", &period) != 1) {
                period = 0;
            }
            fclose(f);
        }
    }
    if (quota <= 0 || period <= 0) {
        return 0;
    }
    return (int)((quota + period - 1) / period);
}

static int detect_cpu_limit(void)
{
    int n = 0;
#ifdef CPU_COUNT
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        n = CPU_COUNT(&set);
    }
#endif
    if (n <= 0) {
        long online = sysconf(_SC_NPROCESSORS_ONLN);
        n = online > 0 ? (int)online : 1;
    }
    int quota = cgroup_cpu_quota();
    if (quota > 0 && quota < n) {
        n = quota;
    }
    return n;
}

/* Size of the last-level cache, falling back to 32 MiB when unknown. */
static int64_t detect_llc_bytes(void)
{
    long size = 0;
#ifdef _SC_LEVEL3_CACHE_SIZE
    size = sysconf(_SC_LEVEL3_CACHE_SIZE);
#endif
    if (size <= 0) {
        FILE *f = fopen("/sys/devices/system/cpu/cpu0/cache/index3/size", "r");
        if (f != NULL) {
            long kib;
            if (fscanf(f, "%ldK", &kib) == 1) {
                size = kib * 1024;
            }
            fclose(f);
        }
    }
    return size > 0 ? (int64_t)size : (int64_t)32 << 20;
}

void fa_init(void)
{
    static int done = 0;
    if (done) {
        return;
    }
    done = 1;
    cpu_limit = detect_cpu_limit();
    /* Streaming (non-temporal) stores bypass the cache: worth it only for
     * outputs the cache could not hold anyway, where the next layer would
     * miss the cache whatever we do.  A virtual machine reports the whole
     * socket's LLC (hundreds of MiB shared with other tenants), so count at
     * most FA_LLC_PER_CPU of it for each CPU this process may use. */
    streaming_threshold = detect_llc_bytes();
    if (streaming_threshold > (int64_t)cpu_limit * FA_LLC_PER_CPU) {
        streaming_threshold = (int64_t)cpu_limit * FA_LLC_PER_CPU;
    }
    pthread_atfork(NULL, NULL, child_after_fork);
}

int fa_have_openmp(void) { return FA_HAVE_OPENMP; }

void fa_set_num_threads(int n) { user_threads = n > 0 ? n : 0; }

int fa_cpu_limit(void) { return cpu_limit; }

int fa_forked_serial(void) { return forked_serial; }

int64_t fa_streaming_threshold_bytes(void) { return streaming_threshold; }

void fa_set_streaming_threshold_bytes(int64_t nbytes)
{
    streaming_threshold = nbytes > 0 ? nbytes : 0;
}

int fa_get_num_threads(void)
{
    if (!FA_HAVE_OPENMP || forked_serial) {
        return 1;
    }
    if (user_threads > 0) {
        return user_threads;
    }
    int n = omp_get_max_threads();
    if (n > cpu_limit) {
        n = cpu_limit;
    }
    return n > 0 ? n : 1;
}

void fa_parallel_for(int64_t nitems, int64_t traffic_bytes, fa_body body,
                     void *ctx)
{
    if (nitems <= 0) {
        return;
    }
    int64_t nthreads = 1;
    if (traffic_bytes >= FA_PARALLEL_MIN_BYTES) {
        /* at least half the serial threshold for each thread */
        int64_t by_size = traffic_bytes / (FA_PARALLEL_MIN_BYTES / 2);
        nthreads = fa_get_num_threads();
        if (nthreads > by_size) {
            nthreads = by_size;
        }
        if (nthreads > nitems) {
            nthreads = nitems;
        }
    }
    if (nthreads <= 1) {
        body(ctx, 0, nitems);
        return;
    }
    team_started = 1;
#if FA_HAVE_OPENMP
#pragma omp parallel num_threads((int)nthreads)
    {
        int64_t t = omp_get_thread_num();
        int64_t n = omp_get_num_threads();
        int64_t per = nitems / n, extra = nitems % n;
        int64_t begin = t * per + (t < extra ? t : extra);
        int64_t end = begin + per + (t < extra ? 1 : 0);
        body(ctx, begin, end);
    }
#endif
}
