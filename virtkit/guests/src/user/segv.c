/*
 * segv: a program that touches memory it does not have (bad input for the kernel).
 *
 * Checks the kernel's isolation: a user page fault the kernel cannot satisfy must kill
 * the process (SIGSEGV, as Linux does), print why, and leave the kernel and every other
 * process running; the parent sees WIFSIGNALED with WTERMSIG == SIGSEGV. The argument
 * says what to touch (default write):
 *   read    a load from address 0 (below USER_BASE, never mapped)
 *   write   a store to address 0
 *   exec    a jump to address 0
 *   kernel  a load from the kernel's first page, 0x80200000: mapped, but not for U-mode
 *   stack   a store just below the largest stack (USER_STACK_TOP - USER_STACK_MAX)
 *
 * Prints: segv: <what> at 0x<address>, expecting to be killed
 * and, only if the kernel failed to stop it: segv: still running after <what> ...
 */
#include "ulib.h"

typedef void (*function)(void);

int main(int argc, char **argv)
{
    const char *what = argc > 1 ? argv[1] : "write";
    unsigned address = 0;
    if (strcmp(what, "kernel") == 0)
        address = 0x80200000u;
    else if (strcmp(what, "stack") == 0)
        address = USER_STACK_TOP - USER_STACK_MAX - 4;
    if (argc > 2 || (address == 0 && strcmp(what, "read") != 0 && strcmp(what, "write") != 0 &&
                     strcmp(what, "exec") != 0)) {
        eprintf("segv: unknown argument '%s' (usage: segv [read|write|exec|kernel|stack])\n",
                argv[argc > 2 ? 2 : 1]);
        return 2;
    }
    printf("segv: %s at 0x%08x, expecting to be killed\n", what, address);
    volatile uint32_t *pointer = (volatile uint32_t *)address;
    if (strcmp(what, "read") == 0 || strcmp(what, "kernel") == 0)
        printf("segv: still running after reading 0x%x there\n", *pointer);
    else if (strcmp(what, "exec") == 0)
        ((function)address)();
    else
        *pointer = 0x5e65e65e;
    printf("segv: still running after %s at 0x%08x: the kernel did not stop it\n", what,
           address);
    return 1;
}
