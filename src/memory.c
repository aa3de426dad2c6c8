/*
 * Memory advice for outputs another library allocates (torch tensors).
 *
 * A large allocation of glibc's malloc (and so of torch's CPU allocator) is
 * fresh memory from mmap, and the first write to each 4 KiB page costs a page
 * fault (the kernel zeroes the page): on a 51 MB output, 12,500 faults that
 * take longer than the kernel that writes it.  In Linux's transparent huge
 * page mode "madvise" (the default of many distributions), memory asks for
 * 2 MiB pages with madvise(MADV_HUGEPAGE): 512 times fewer faults.  numpy's
 * allocator does this for arrays of 4 MiB or more.
 */
#include <stddef.h>
#include <stdint.h>

#include "fastact.h"

#if defined(__linux__)
#include <sys/mman.h>
#endif

/* x86-64's huge page; an aligned range is page-aligned on any Linux */
#define FA_HUGE_PAGE ((uintptr_t)1 << 21)

size_t fa_advise_huge_pages(void *ptr, size_t nbytes)
{
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    /* only the whole huge pages inside the block: the pages at its ends may
     * hold other allocations */
    const uintptr_t start = (uintptr_t)ptr;
    if (nbytes < FA_HUGE_PAGE || start > UINTPTR_MAX - nbytes) {
        return 0;
    }
    const uintptr_t lo = (start + FA_HUGE_PAGE - 1) & ~(FA_HUGE_PAGE - 1);
    const uintptr_t hi = (start + nbytes) & ~(FA_HUGE_PAGE - 1);
    if (hi > lo && madvise((void *)lo, hi - lo, MADV_HUGEPAGE) == 0) {
        return hi - lo;
    }
#else
    (void)ptr;
    (void)nbytes;
#endif
    return 0;
}
