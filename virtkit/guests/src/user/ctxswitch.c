/*
 * ctxswitch: two processes hand the processor to each other N times each.
 *
 * Measures the context switch: the parent forks a child and both call sched_yield in
 * a loop, so each call switches to the other process (round robin with two runnable
 * processes): the trap, the scheduler, a change of address space (satp and a TLB
 * flush) and the return. This is the cost that process-level and OS-level
 * virtualization share, and that a monitor multiplies when it must see every satp
 * write (lmbench's lat_ctx measures it the same way, with pipes).
 *
 * Prints: ctxswitch: n=<N> yields in each of 2 processes
 */
#include "ulib.h"

static int yield_n(unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        int result = sched_yield();
        if (result != 0)
            return result;
    }
    return 0;
}

int main(int argc, char **argv)
{
    unsigned n = arg_n(argc, argv, 1000, 10000000);
    pid_t child = fork();
    if (child < 0) {
        printf("ctxswitch: fork failed: %s\n", errno_name(child));
        return 1;
    }
    if (child == 0)
        exit(yield_n(n) == 0 ? 0 : 1);
    int result = yield_n(n);
    int status = -1;
    pid_t reaped = wait4(child, &status, 0, NULL);
    if (result != 0 || reaped != child || status != W_EXITCODE(0)) {
        printf("ctxswitch: sched_yield returned %d; wait4 %d, status 0x%x\n", result, reaped,
               status);
        return 1;
    }
    printf("ctxswitch: n=%u yields in each of 2 processes\n", n);
    return 0;
}
