/*
 * hello: the smallest program; shows that the kernel can load an ELF, build the
 * initial stack (argc, argv) and carry a write and an exit.
 *
 * Prints: hello, world from pid <P> (argc=<A>)
 * n=<N> greets N times (default 1), one line each.
 */
#include "ulib.h"

int main(int argc, char **argv)
{
    unsigned n = arg_n(argc, argv, 1, 1000);
    for (unsigned i = 0; i < n; i++)
        printf("hello, world from pid %d (argc=%d)\n", getpid(), argc);
    return 0;
}
