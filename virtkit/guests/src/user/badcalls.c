/*
 * badcalls: system calls with bad arguments (bad input for the kernel).
 *
 * Checks that the kernel validates what user mode hands it, the first duty of any
 * privileged layer (Saltzer and Schroeder 1975, "complete mediation"): a pointer
 * outside the caller's memory, or into the kernel, is refused with -EFAULT and never
 * followed; an unknown call number gives -ENOSYS; and so on, with Linux's errno for
 * each. The program has no children, so wait4 must answer -ECHILD.
 *
 * Prints: badcalls: <K> bad calls refused with the expected errno
 * or, for each call that was not: badcalls: <call> returned <value>, expected <errno>
 */
#include "ulib.h"

#define KERNEL_ADDRESS 0x80200000u  /* mapped in every address space, for S-mode only */
#define UNMAPPED_ADDRESS 0x40000000u /* between the heap and the stack */
#define TOO_MANY_ARGS 1000          /* far more arguments than execve takes */

static int failures;
static int checks;

static void expect(const char *call, long result, long expected)
{
    checks++;
    if (result != expected) {
        failures++;
        printf("badcalls: %s returned %d (%s), expected %d (%s)\n", call, (int)result,
               errno_name(result), (int)expected, errno_name(expected));
    }
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        eprintf("badcalls: unknown argument '%s' (usage: badcalls)\n", argv[1]);
        return 2;
    }
    char *const no_args[] = {"no-such-program", NULL};
    char *const no_env[] = {NULL};
    struct timespec now;

    expect("write(1, NULL, 8)", write(STDOUT, NULL, 8), -EFAULT);
    expect("write(1, <unmapped>, 8)", write(STDOUT, (void *)UNMAPPED_ADDRESS, 8), -EFAULT);
    expect("write(1, <kernel>, 8)", write(STDOUT, (void *)KERNEL_ADDRESS, 8), -EFAULT);
    expect("syscall 9999", syscall6(9999, 0, 0, 0, 0, 0, 0), -ENOSYS);
    expect("execve(\"no-such-program\")", execve("no-such-program", no_args, no_env), -ENOENT);
    expect("execve(<kernel>)", execve((const char *)KERNEL_ADDRESS, no_args, no_env), -EFAULT);
    expect("wait4(-1) without children", wait4(-1, NULL, 0, NULL), -ECHILD);
    expect("clock_gettime(MONOTONIC, <kernel>)",
           clock_gettime(CLOCK_MONOTONIC, (void *)KERNEL_ADDRESS), -EFAULT);
    expect("clock_gettime(99)", clock_gettime(99, &now), -EINVAL);
    expect("uname(NULL)", uname(NULL), -EFAULT);
    expect("tinyos_ps(<kernel>, 16)", tinyos_ps((void *)KERNEL_ADDRESS, 16), -EFAULT);
    long heap = brk(0);
    expect("brk(<kernel>) moves nothing", brk((void *)KERNEL_ADDRESS), heap);
    expect("read(1)", read(STDOUT, &now, 1), -EBADF);
    expect("write(0)", write(STDIN, "x", 1), -EBADF);
    expect("nanosleep(<kernel>)", nanosleep((void *)KERNEL_ADDRESS, NULL), -EFAULT);
    struct timespec unnormalized = {0, 1000000000, 0};
    expect("nanosleep(1e9 ns)", nanosleep(&unnormalized, NULL), -EINVAL);
    expect("clone(<threads>)", syscall6(SYS_clone, 0x100 | SIGCHLD, 0, 0, 0, 0, 0), -EINVAL);
    static char *too_many[TOO_MANY_ARGS + 1];
    for (int i = 0; i < TOO_MANY_ARGS; i++)
        too_many[i] = "x";
    expect("execve(<1000 arguments>)", execve("hello", too_many, no_env), -E2BIG);
    if (failures != 0)
        return 1;
    printf("badcalls: %d bad calls refused with the expected errno\n", checks);
    return 0;
}
