/*
 * The system calls of abi.h as C functions.
 *
 * Linux's RISC-V convention (arch/riscv/kernel/entry.S): the call number in a7, up to
 * six arguments in a0..a5, ECALL from U-mode; the result, or a negative errno, comes
 * back in a0. Every wrapper goes through syscall6, whose inline assembly names the
 * registers so that the compiler leaves them alone across the ECALL.
 */
#include "ulib.h"

long syscall6(long number, long a0, long a1, long a2, long a3, long a4, long a5)
{
    register long r_a0 asm("a0") = a0;
    register long r_a1 asm("a1") = a1;
    register long r_a2 asm("a2") = a2;
    register long r_a3 asm("a3") = a3;
    register long r_a4 asm("a4") = a4;
    register long r_a5 asm("a5") = a5;
    register long r_a7 asm("a7") = number;
    asm volatile("ecall"
                 : "+r"(r_a0)
                 : "r"(r_a1), "r"(r_a2), "r"(r_a3), "r"(r_a4), "r"(r_a5), "r"(r_a7)
                 : "memory");
    return r_a0;
}

#define syscall0(n) syscall6((n), 0, 0, 0, 0, 0, 0)
#define syscall1(n, a) syscall6((n), (long)(a), 0, 0, 0, 0, 0)
#define syscall2(n, a, b) syscall6((n), (long)(a), (long)(b), 0, 0, 0, 0)
#define syscall3(n, a, b, c) syscall6((n), (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define syscall4(n, a, b, c, d) \
    syscall6((n), (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)

ssize_t read(int fd, void *buf, size_t count) { return syscall3(SYS_read, fd, buf, count); }

ssize_t write(int fd, const void *buf, size_t count)
{
    return syscall3(SYS_write, fd, buf, count);
}

void exit(int code)
{
    for (;;)
        syscall1(SYS_exit, code);
}

pid_t getpid(void) { return syscall0(SYS_getpid); }

pid_t getppid(void) { return syscall0(SYS_getppid); }

int sched_yield(void) { return syscall0(SYS_sched_yield); }

/* fork is clone with only the signal the parent gets when the child ends (Linux's
   kernel/fork.c: fork() is kernel_clone with .exit_signal = SIGCHLD). */
pid_t fork(void) { return syscall6(SYS_clone, SIGCHLD, 0, 0, 0, 0, 0); }

int execve(const char *program, char *const argv[], char *const envp[])
{
    return syscall3(SYS_execve, program, argv, envp);
}

pid_t wait4(pid_t pid, int *status, int options, void *rusage)
{
    return syscall4(SYS_wait4, pid, status, options, rusage);
}

/* The raw brk of Linux (mm/mmap.c): returns the new break, or the old one when it
   cannot move; brk(0) asks where the break is. */
long brk(void *address) { return syscall1(SYS_brk, address); }

int nanosleep(const struct timespec *request, struct timespec *remaining)
{
    return syscall2(SYS_nanosleep, request, remaining);
}

int clock_gettime(int clock, struct timespec *now)
{
    return syscall2(SYS_clock_gettime, clock, now);
}

int uname(struct utsname *name) { return syscall1(SYS_uname, name); }

int blk_read(unsigned sector, void *buf, unsigned count)
{
    return syscall3(SYS_tinyos_blk_read, sector, buf, count);
}

int blk_write(unsigned sector, const void *buf, unsigned count)
{
    return syscall3(SYS_tinyos_blk_write, sector, buf, count);
}

int blk_capacity(void) { return syscall0(SYS_tinyos_blk_capacity); }

int tinyos_ps(struct tinyos_proc_info *out, int max) { return syscall2(SYS_tinyos_ps, out, max); }

const char *errno_name(long error)
{
    switch (-error) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case ESRCH: return "ESRCH";
    case EINTR: return "EINTR";
    case EIO: return "EIO";
    case E2BIG: return "E2BIG";
    case ENOEXEC: return "ENOEXEC";
    case EBADF: return "EBADF";
    case ECHILD: return "ECHILD";
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    case EFAULT: return "EFAULT";
    case ENODEV: return "ENODEV";
    case EINVAL: return "EINVAL";
    case ENOSYS: return "ENOSYS";
    default: return error >= 0 ? "no error" : "an unknown errno";
    }
}
