/*
 * The tinyos application binary interface: what a user program and the kernel agree on.
 *
 * Shared by virtkit/guests/src/tinyos (the kernel) and virtkit/guests/src/user (the
 * programs). Everything here is either Linux's RISC-V ABI, cited, or a tinyos extension,
 * marked as such.
 *
 * System calls (Linux, arch/riscv and Documentation/process/adding-syscalls): the program
 * executes ECALL from U-mode with the call number in a7 and arguments in a0..a5; the
 * kernel returns the result in a0, a negative errno on failure. Numbers are those of
 * include/uapi/asm-generic/unistd.h, as RV64 Linux uses them. RV32 Linux dropped the
 * 32-bit time calls (nanosleep, clock_gettime) for their _time64 forms; tinyos keeps the
 * generic numbers and uses the time64 layout of struct timespec below.
 */
#ifndef TINYOS_ABI_H
#define TINYOS_ABI_H

/* -- system call numbers (asm-generic/unistd.h) -------------------------------------- */
#define SYS_read            63
#define SYS_write           64
#define SYS_exit            93
#define SYS_exit_group      94
#define SYS_nanosleep       101
#define SYS_clock_gettime   113
#define SYS_sched_yield     124
#define SYS_uname           160
#define SYS_getpid          172
#define SYS_getppid         173
#define SYS_brk             214
#define SYS_clone           220     /* fork is clone(SIGCHLD, 0, 0, 0, 0) */
#define SYS_execve          221     /* path is a program name from the built-in table */
#define SYS_wait4           260

/* -- tinyos extensions (not in Linux) ------------------------------------------------ */
#define SYS_tinyos_blk_read     1000 /* (unsigned sector, void *buf, unsigned count) */
#define SYS_tinyos_blk_write    1001 /* (unsigned sector, const void *buf, unsigned count) */
#define SYS_tinyos_blk_capacity 1002 /* () -> sectors on the disk, -ENODEV without one */
#define SYS_tinyos_ps           1003 /* (struct tinyos_proc_info *out, int max) -> count */

#define BLK_SECTOR_SIZE 512         /* virtio-blk sectors (virtio 1.2, 5.2.6) */

/* -- errno values (asm-generic/errno-base.h, errno.h) --------------------------------- */
#define EPERM    1
#define ENOENT   2
#define ESRCH    3
#define EINTR    4
#define EIO      5
#define E2BIG    7
#define ENOEXEC  8
#define EBADF    9
#define ECHILD  10
#define EAGAIN  11
#define ENOMEM  12
#define EFAULT  14
#define ENODEV  19
#define EINVAL  22
#define ENOSYS  38

/* -- signals, for clone's flags and wait4's status (asm-generic/signal.h) ------------- */
#define SIGILL   4
#define SIGTRAP  5
#define SIGKILL  9
#define SIGSEGV 11
#define SIGCHLD 17

/* wait4 status words as Linux encodes them (include/uapi/linux/wait.h, the W* macros):
   a normal exit puts the code in bits 8..15; a process killed by a signal has the signal
   number in bits 0..6. */
#define W_EXITCODE(code) (((code) & 0xff) << 8)
#define WIFEXITED(s)   (((s) & 0x7f) == 0)
#define WEXITSTATUS(s) (((s) >> 8) & 0xff)
#define WIFSIGNALED(s) (((s) & 0x7f) != 0)
#define WTERMSIG(s)    ((s) & 0x7f)

#define CLOCK_REALTIME  0
#define CLOCK_MONOTONIC 1

struct timespec {               /* the time64 layout of RV32 Linux */
    long long tv_sec;
    long tv_nsec;
    long pad;
};

struct utsname {                /* include/uapi/linux/utsname.h: new_utsname */
    char sysname[65];
    char nodename[65];
    char release[65];
    char version[65];
    char machine[65];
    char domainname[65];
};

enum tinyos_proc_state {        /* tinyos extension: what SYS_tinyos_ps reports */
    PROC_RUNNABLE = 1,
    PROC_RUNNING = 2,
    PROC_SLEEPING = 3,
    PROC_ZOMBIE = 4,
};

struct tinyos_proc_info {
    int pid;
    int ppid;
    int state;                  /* enum tinyos_proc_state */
    char name[16];              /* the program name, NUL-terminated */
};

/* -- user address space ---------------------------------------------------------------- */
/* User programs are static ELF32 executables linked at USER_BASE with entry _start. At
   entry sp points at argc, then argv[0..argc-1], NULL, envp NULL (no environment), and
   an auxiliary vector holding only AT_NULL, as Linux lays out the initial stack (the
   System V psABI, "Process Initialization"). The heap starts at the page after the
   program's last segment and grows with brk; its pages, and the stack's, are allocated
   on first touch (demand-zero). */
#define USER_BASE       0x00010000u
#define USER_STACK_TOP  0x7ffff000u
#define USER_STACK_MAX  (256u * 1024u)

/* -- boot ---------------------------------------------------------------------------- */
/* The loader (virtkit.guests, or QEMU's `-device loader,...,force-raw=on`) places the
   boot command line, a NUL-terminated string of at most CMDLINE_SIZE - 1 bytes, at this
   physical address: the last page below the kernel (0x8020_0000), which no firmware uses.
   Zeroed memory there means an empty command line. Words the kernel knows:
     init=<program>   the first process (default sh)
     quantum=<N>ms    the round-robin time slice (default 10ms)
     mem=<N>M         RAM the kernel uses from 0x8000_0000 (default 16M)
   Every other word is passed to init as an argument: `init=forkwait n=200` runs
   forkwait with argv = {"forkwait", "n=200"}. */
#define CMDLINE_BASE    0x801ff000u
#define CMDLINE_SIZE    4096u

#define TIMEBASE_HZ     10000000u   /* mtime ticks per second, QEMU virt's timebase */

#define TINYOS_MAX_PROCS 16         /* fork beyond this returns -EAGAIN */

#endif
