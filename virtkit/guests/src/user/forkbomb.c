/*
 * forkbomb: forks until fork fails (bad input for the kernel).
 *
 * Checks that the kernel bounds the number of processes (TINYOS_MAX_PROCS in abi.h)
 * and says so with -EAGAIN, as Linux does at RLIMIT_NPROC, instead of running out of
 * memory or crashing. Each child exits at once; as a zombie it keeps its slot until
 * the parent reaps it, so the table fills. Then the parent reaps every child. How many
 * forks succeed depends on how many processes already exist (the shell, init), so the
 * line is the same on every run from the same place. n=<N> stops after N children
 * even if fork still succeeds (default 1000).
 *
 * Prints: forkbomb: fork failed with EAGAIN after <C> children, <C> reaped
 */
#include "ulib.h"

int main(int argc, char **argv)
{
    unsigned n = arg_n(argc, argv, 1000, 1000000);
    unsigned children = 0;
    pid_t result = 0;
    while (children < n) {
        result = fork();
        if (result < 0)
            break;
        if (result == 0)
            exit(0);
        children++;
    }
    unsigned reaped = 0;
    int status;
    while (wait4(-1, &status, 0, NULL) > 0)
        reaped++;
    if (result >= 0) {
        printf("forkbomb: %u forks all succeeded: the process table has no limit below %u\n",
               children, n);
        return 1;
    }
    printf("forkbomb: fork failed with %s after %u children, %u reaped\n", errno_name(result),
           children, reaped);
    return result == -EAGAIN && reaped == children ? 0 : 1;
}
