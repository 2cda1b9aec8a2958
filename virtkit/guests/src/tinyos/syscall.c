/*
 * System calls, with Linux's RISC-V numbers and calling convention (abi.h): the number
 * in a7, arguments in a0..a5, the result in a0, -errno on failure. Unknown numbers get
 * -ENOSYS. Every user pointer goes through copyin/copyout (vm.c), so a bad one is an
 * -EFAULT and never a kernel trap.
 *
 * Where tinyos does less than Linux, the call refuses rather than ignores: clone only
 * forks, wait4 keeps no resource usage, and there are only the console's descriptors
 * 0, 1 and 2. execve takes a program name from the kernel's program table (exec.c)
 * and no environment: envp is not read.
 */
#include "kernel.h"
#include "proc.h"

#define WRITE_CHUNK 128     /* bytes copied in per step: the kernel stack is one page */

static int sys_write(int fd, uint32_t buf, uint32_t size)
{
    char chunk[WRITE_CHUNK];
    if (fd != 1 && fd != 2)
        return -EBADF;
    for (uint32_t done = 0; done < size;) {
        uint32_t n = size - done < WRITE_CHUNK ? size - done : WRITE_CHUNK;
        if (copyin(&current->as, chunk, buf + done, n))
            return -EFAULT;
        console_write(chunk, n);
        done += n;
    }
    return (int)size;
}

static int sys_read(int fd, uint32_t buf, uint32_t size)
{
    if (fd != 0)
        return -EBADF;
    return console_read(buf, size);
}

static int sys_clone(uint32_t flags, uint32_t stack)
{
    if (flags != SIGCHLD || stack != 0)
        return -EINVAL;     /* fork only: no threads, no shared anything */
    return proc_fork();
}

static int sys_execve(uint32_t path, uint32_t argv)
{
    char name[PROC_NAME_SIZE];
    int length = copyin_string(&current->as, name, path, sizeof name);
    if (length == -E2BIG)
        return -ENOENT;     /* longer than any program name */
    if (length < 0)
        return length;

    struct exec_args *args = kalloc();  /* too big for the kernel stack */
    if (!args)
        return -ENOMEM;
    uint32_t used = 0;
    int error = 0;
    args->argc = 0;
    for (uint32_t pointer; argv && !error; args->argc++) {
        if ((error = copyin(&current->as, &pointer, argv + 4 * args->argc, 4)) || !pointer)
            break;
        if (args->argc == MAX_ARGS) {
            error = -E2BIG;
            break;
        }
        length = copyin_string(&current->as, args->strings + used, pointer,
                               MAX_ARG_BYTES - used);
        if (length < 0) {
            error = length;
            break;
        }
        args->argv[args->argc] = args->strings + used;
        used += length + 1;
    }
    if (!error) {
        args->argv[args->argc] = NULL;
        error = exec(current, name, args);
    }
    kfree(args);
    return error;
}

static int sys_wait4(int pid, uint32_t status, int options, uint32_t rusage)
{
    if (options != 0 || rusage != 0)
        return -EINVAL;
    return proc_wait(pid, status);
}

static int sys_nanosleep(uint32_t request)
{
    struct timespec duration;
    if (copyin(&current->as, &duration, request, sizeof duration))
        return -EFAULT;
    return timer_sleep(&duration);
}

static int sys_clock_gettime(int clock, uint32_t out)
{
    struct timespec now;
    if (clock != CLOCK_REALTIME && clock != CLOCK_MONOTONIC)
        return -EINVAL;
    timer_now(&now);    /* both count from boot: tinyos has no calendar */
    return copyout(&current->as, out, &now, sizeof now) ? -EFAULT : 0;
}

static int sys_uname(uint32_t out)
{
    static const struct utsname name = {
        .sysname = "tinyos",
        .nodename = "tinyos",
        .release = "1.0",
        .version = "virtkit teaching kernel",
        .machine = "riscv32",
        .domainname = "(none)",
    };
    return copyout(&current->as, out, &name, sizeof name) ? -EFAULT : 0;
}

static int sys_blk_capacity(void)
{
    uint32_t sectors = virtio_blk_capacity();
    return sectors ? (int)sectors : -ENODEV;
}

void syscall(struct trapframe *tf)
{
    int result;
    switch (tf->a7) {
    case SYS_read:
        result = sys_read(tf->a0, tf->a1, tf->a2);
        break;
    case SYS_write:
        result = sys_write(tf->a0, tf->a1, tf->a2);
        break;
    case SYS_exit:
    case SYS_exit_group:    /* one thread per process: the same thing */
        proc_exit(W_EXITCODE(tf->a0));
    case SYS_nanosleep:     /* never interrupted (no signals), so rem is never written */
        result = sys_nanosleep(tf->a0);
        break;
    case SYS_clock_gettime:
        result = sys_clock_gettime(tf->a0, tf->a1);
        break;
    case SYS_sched_yield:
        yield();
        result = 0;
        break;
    case SYS_uname:
        result = sys_uname(tf->a0);
        break;
    case SYS_getpid:
        result = current->pid;
        break;
    case SYS_getppid:
        result = current->parent ? current->parent->pid : 0;
        break;
    case SYS_brk:
        result = (int)as_set_brk(&current->as, tf->a0);
        break;
    case SYS_clone:
        result = sys_clone(tf->a0, tf->a1);
        break;
    case SYS_execve:
        result = sys_execve(tf->a0, tf->a1);
        break;
    case SYS_wait4:
        result = sys_wait4(tf->a0, tf->a1, tf->a2, tf->a3);
        break;
    case SYS_tinyos_blk_read:
        result = virtio_blk_rw(0, tf->a0, tf->a1, tf->a2);
        break;
    case SYS_tinyos_blk_write:
        result = virtio_blk_rw(1, tf->a0, tf->a1, tf->a2);
        break;
    case SYS_tinyos_blk_capacity:
        result = sys_blk_capacity();
        break;
    case SYS_tinyos_ps:
        result = proc_snapshot(tf->a0, tf->a1);
        break;
    default:
        result = -ENOSYS;
        break;
    }
    tf->a0 = (uint32_t)result;
}
