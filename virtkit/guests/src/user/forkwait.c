/*
 * forkwait: N times, fork a child that exits at once, and wait for it.
 *
 * The process-creation microbenchmark of Adams and Agesen, "A comparison of software
 * and hardware techniques for x86 virtualization" (ASPLOS 2006): forkwait stresses
 * what a monitor finds hardest, the page-table work of copying an address space and
 * tearing it down, plus the system calls and context switches around it. They report
 * it 40,000 forks long; here n defaults to 200. Each child exits with its number mod
 * 256, and the parent checks the wait status it gets back.
 *
 * Prints: forkwait: n=<N> children forked and reaped, exit codes sum <S>
 */
#include "ulib.h"

int main(int argc, char **argv)
{
    unsigned n = arg_n(argc, argv, 200, 1000000);
    unsigned sum = 0;
    for (unsigned i = 0; i < n; i++) {
        pid_t child = fork();
        if (child < 0) {
            printf("forkwait: fork %u of %u failed: %s\n", i + 1, n, errno_name(child));
            return 1;
        }
        if (child == 0)
            exit(i & 0xff);
        int status = -1;
        pid_t reaped = wait4(child, &status, 0, NULL);
        if (reaped != child) {
            printf("forkwait: wait4(%d) returned %d (%s)\n", child, reaped,
                   errno_name(reaped));
            return 1;
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != (i & 0xff)) {
            printf("forkwait: child %u ended with wait status 0x%x, expected exit code %u\n",
                   i, status, i & 0xff);
            return 1;
        }
        sum += WEXITSTATUS(status);
    }
    printf("forkwait: n=%u children forked and reaped, exit codes sum %u\n", n, sum);
    return 0;
}
