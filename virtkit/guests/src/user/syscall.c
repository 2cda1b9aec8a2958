/*
 * syscall: N getpid calls, the cheapest system call there is.
 *
 * Measures the round trip user -> kernel -> user: ECALL, the trap entry, the dispatch
 * and SRET, with no work in between. Under trap-and-emulate every one of them is also
 * a trip through the monitor, so this is where virtualization overhead shows first
 * (Adams and Agesen 2006, the "syscall" microbenchmark: a software monitor pays for
 * every system call, hardware-assisted virtualization lets them run without an exit).
 *
 * Prints: syscall: n=<N> getpid calls returned pid <P>
 */
#include "ulib.h"

int main(int argc, char **argv)
{
    unsigned n = arg_n(argc, argv, 10000, 10000000);
    pid_t first = getpid();
    for (unsigned i = 1; i < n; i++) {
        pid_t pid = getpid();
        if (pid != first) {
            printf("syscall: getpid call %u returned %d, the first returned %d\n", i + 1, pid,
                   first);
            return 1;
        }
    }
    printf("syscall: n=%u getpid calls returned pid %d\n", n, first);
    return 0;
}
