/*
 * pagefault: grow the heap with brk by N pages and touch each one once.
 *
 * Measures demand paging: every first touch of a new page is a page fault that the
 * kernel answers by allocating a zeroed frame and mapping it (abi.h: heap pages are
 * demand-zero). Under a monitor each fault and each page-table update may also cost a
 * trip through the monitor (shadow page tables), which makes this the workload where
 * software and hardware MMU virtualization differ most (Adams and Agesen 2006, the
 * "pgfault" microbenchmark; Bhargava et al. 2008 on two-dimensional page walks). The
 * program checks that each page reads as zero before it writes it, then reads every
 * page back, and finally gives the pages back with brk.
 *
 * Prints: pagefault: n=<N> fresh pages touched, zero-filled, checksum 0x<8 hex digits>
 */
#include "ulib.h"

int main(int argc, char **argv)
{
    unsigned n = arg_n(argc, argv, 256, 16384);
    unsigned start = (unsigned)brk(0);
    unsigned base = (start + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
    unsigned end = base + n * PAGE_SIZE;
    long moved = brk((void *)end);
    if ((unsigned)moved != end) {
        printf("pagefault: brk(0x%x) for %u pages returned 0x%x\n", end, n, (unsigned)moved);
        return 1;
    }
    for (unsigned page = 0; page < n; page++) {
        uint32_t *word = (uint32_t *)(base + page * PAGE_SIZE) + (page % (PAGE_SIZE / 4));
        if (*word != 0) {
            printf("pagefault: page %u of the heap is not zero-filled: 0x%x at %p\n", page,
                   *word, word);
            return 1;
        }
        *word = page * 2654435761u;     /* Knuth's multiplicative hash, so no two agree */
    }
    uint32_t checksum = 0;
    for (unsigned page = 0; page < n; page++) {
        uint32_t *word = (uint32_t *)(base + page * PAGE_SIZE) + (page % (PAGE_SIZE / 4));
        checksum = crc32_update(checksum, word, sizeof *word);
    }
    if ((unsigned)brk((void *)start) != start) {
        printf("pagefault: brk could not give the %u pages back\n", n);
        return 1;
    }
    printf("pagefault: n=%u fresh pages touched, zero-filled, checksum 0x%08x\n", n, checksum);
    return 0;
}
