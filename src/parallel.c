/*
 * Thread policy: the thread count, the serial threshold, the back-off to
 * serial calls on a busy machine and the switch to serial after fork.
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
 * Such a child counts the large calls that would have run a team
 * (fa_forked_serial_calls): the Python layer warns once when it sees one.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "fa_omp.h"
#include "fastact.h"
#include "parallel.h"
#include "stream.h"

/* The most last-level cache one CPU can count on (servers have 1.5 to 5
 * MiB of L3 per core; a 2-CPU share of a 32 MiB L3 is 32 MiB). */
#define FA_LLC_PER_CPU ((int64_t)16 << 20)

static int user_threads = 0;          /* 0: follow OpenMP's setting */
static int cpu_limit = 1;
static volatile int team_started = 0; /* this process ran a team of > 1 */
static volatile int forked_serial = 0;
/* large calls that ran serially only because of the fork (they would have
 * run a team of > 1 threads): the Python layer warns once when it sees one */
static int64_t forked_serial_calls = 0;
static int64_t streaming_threshold = (int64_t)32 << 20;

static void child_after_fork(void)
{
    if (team_started) {
        forked_serial = 1;
    }
    forked_serial_calls = 0;
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

int64_t fa_forked_serial_calls(void)
{
    return __atomic_load_n(&forked_serial_calls, __ATOMIC_RELAXED);
}

/* the threads a large call would use, were this process not forked serial */
int fa_wanted_threads(void)
{
    if (user_threads > 0) {
        return user_threads;
    }
    int n = omp_get_max_threads();
    if (n > cpu_limit) {
        n = cpu_limit;
    }
    return n > 0 ? n : 1;
}

int fa_get_num_threads(void)
{
    if (!FA_HAVE_OPENMP || forked_serial) {
        return 1;
    }
    return fa_wanted_threads();
}

/* --- backing off while a team costs more than it saves ----------------------
 *
 * A parallel region ends when the last thread of its team arrives.  On a
 * machine whose CPUs other processes keep busy, a team thread may wait
 * several scheduler time slices (milliseconds) before it runs at all, and a
 * call that takes 0.3 ms on one thread took 10-60 ms with two (and the
 * spinning of the threads that wait eats the time slices of those that work).
 * Items are claimed one at a time, so the threads that run do all the work,
 * but the join still waits for the others.  So each team call is timed, and
 * compared with its serial cost as the fastest thread's time per item
 * estimates it (judge_team).  A call that took longer than that by more than
 * 1/8 (and more than FA_BACKOFF_MIN_LOSS_NS) was a bad team: the calls after
 * it that would take a team run serially instead, until they have spent
 * FA_BACKOFF_FACTOR times the time it lost (twice that after each further bad
 * team in a row, up to FA_BACKOFF_MAX_DOUBLINGS times; FA_BACKOFF_MAX_NS at
 * most).  Then a call tries the team again.  So the tries cost at most about 1/16 of the
 * time of the calls on a busy machine, and a machine that becomes idle gets
 * its threads back soon. */
#define FA_BACKOFF_FACTOR 16
#define FA_BACKOFF_MAX_DOUBLINGS 4
#define FA_BACKOFF_MAX_NS ((int64_t)2000000000)
/* noise is not a bad team: on an idle machine, interrupts and late wake-ups
 * cost in-cache calls (20-30 us) 10-50 us now and then, and at 10 us the
 * back-off ran 1 call in 5 serially there (7-12% slower than a team); a
 * descheduled team thread costs a time slice, milliseconds */
#define FA_BACKOFF_MIN_LOSS_NS 50000

static int backoff_enabled = 1;
static int64_t backoff_budget_ns = 0;  /* > 0: run serially, spending this */
static int backoff_doublings = 0;
static int64_t stat_teams = 0, stat_bad_teams = 0, stat_backoff_calls = 0;

#define LOAD(p) __atomic_load_n(p, __ATOMIC_RELAXED)
#define STORE(p, v) __atomic_store_n(p, v, __ATOMIC_RELAXED)
#define ADD(p, v) __atomic_fetch_add(p, v, __ATOMIC_RELAXED)

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void fa_set_thread_backoff(int on) { STORE(&backoff_enabled, on ? 1 : 0); }

int fa_get_thread_backoff(void) { return LOAD(&backoff_enabled); }

void fa_force_thread_backoff(int64_t budget_ns)
{
    STORE(&backoff_budget_ns, budget_ns > 0 ? budget_ns : 0);
    STORE(&backoff_doublings, 0);
}

void fa_thread_stats(int64_t stats[5])
{
    stats[0] = LOAD(&stat_teams);
    stats[1] = LOAD(&stat_bad_teams);
    stats[2] = LOAD(&stat_backoff_calls);
    stats[3] = LOAD(&backoff_budget_ns);
    stats[4] = LOAD(&backoff_doublings);
}

#if FA_HAVE_OPENMP   /* only a team call is judged */
/* Judges a team call of nitems items that took wall_ns, the fastest of its
 * threads having spent item_ns per item it ran (from its first item to its
 * last): nitems * item_ns is about the call's cost on one thread (more for
 * memory-bound work, whose threads share the bandwidth).  A thread that was
 * preempted looks slow and does not count. */
static void judge_team(int64_t wall_ns, double item_ns, int64_t nitems)
{
    ADD(&stat_teams, 1);
    if (!LOAD(&backoff_enabled)) {
        return;
    }
    const int64_t serial_ns = (int64_t)(item_ns * (double)nitems);
    const int64_t loss_ns = wall_ns - serial_ns;
    if (loss_ns > serial_ns / 8 && loss_ns > FA_BACKOFF_MIN_LOSS_NS) {
        int d = LOAD(&backoff_doublings);
        int64_t budget = (loss_ns * FA_BACKOFF_FACTOR) << d;
        STORE(&backoff_budget_ns, budget < FA_BACKOFF_MAX_NS ? budget : FA_BACKOFF_MAX_NS);
        STORE(&backoff_doublings, d < FA_BACKOFF_MAX_DOUBLINGS ? d + 1 : d);
        ADD(&stat_bad_teams, 1);
    }
    else {
        STORE(&backoff_doublings, 0);
    }
}
#endif

/* the most ranges a team's items are split into (threads beyond start on
 * another thread's range) */
#define FA_MAX_RANGES 64

/* items [next, end) of one range not claimed yet; one cache line each */
typedef struct {
    int64_t next, end;
    char pad[FA_LINE - 2 * sizeof(int64_t)];
} claim_range;

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
        if (forked_serial && FA_HAVE_OPENMP && fa_wanted_threads() > 1 && by_size > 1
            && nitems > 1) {
            ADD(&forked_serial_calls, 1);   /* a team the fork took away */
        }
    }
    if (nthreads <= 1) {
        body(ctx, 0, nitems);
        return;
    }
    if (LOAD(&backoff_budget_ns) > 0 && LOAD(&backoff_enabled)) {
        const int64_t t0 = now_ns();
        body(ctx, 0, nitems);
        ADD(&backoff_budget_ns, -(now_ns() - t0));
        ADD(&stat_backoff_calls, 1);
        return;
    }
    team_started = 1;
#if FA_HAVE_OPENMP
    /* The items are split into one contiguous range per thread, as a static
     * schedule would, but claimed one at a time: a thread takes the items of
     * its own range in order (on an idle machine every thread streams
     * through its own part of the arrays), then those left in the others'
     * ranges.  So a thread the scheduler has not run yet leaves its items to
     * the threads that run, instead of holding the whole call up.  Which
     * thread runs an item does not change what the item computes (the
     * kernels write partial sums by item, added in item order). */
    const int nranges = nthreads < FA_MAX_RANGES ? (int)nthreads : FA_MAX_RANGES;
    FA_ALIGNED(FA_LINE) claim_range ranges[FA_MAX_RANGES];
    for (int r = 0; r < nranges; r++) {
        const int64_t per = nitems / nranges, extra = nitems % nranges;
        ranges[r].next = r * per + (r < extra ? r : extra);
        ranges[r].end = ranges[r].next + per + (r < extra ? 1 : 0);
    }
    /* the fastest thread's time per item, in picoseconds (so that an int64
     * holds it and its minimum is taken with a compare-and-swap) */
    int64_t item_ps = INT64_MAX;
    const int64_t t0 = now_ns();
#pragma omp parallel num_threads((int)nthreads)
    {
        const int first = omp_get_thread_num() % nranges;
        int64_t start = 0, done = 0;
        for (int k = 0; k < nranges; k++) {
            claim_range *range = &ranges[(first + k) % nranges];
            while (LOAD(&range->next) < range->end) {
                const int64_t j = ADD(&range->next, 1);
                if (j >= range->end) {
                    break;
                }
                if (done++ == 0) {
                    start = now_ns();
                }
                body(ctx, j, j + 1);
            }
        }
        if (done > 0) {
            int64_t mine = (now_ns() - start) * 1000 / done;
            int64_t seen = LOAD(&item_ps);
            while (mine < seen && !__atomic_compare_exchange_n(&item_ps, &seen, mine, 0,
                                                                __ATOMIC_RELAXED,
                                                                __ATOMIC_RELAXED)) {
            }
        }
    }
    judge_team(now_ns() - t0, item_ps / 1000.0, nitems);
#endif
}
