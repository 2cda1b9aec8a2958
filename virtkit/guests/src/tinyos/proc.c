/*
 * Processes and the scheduler, after xv6's proc.c, for one hart.
 *
 * The process table has TINYOS_MAX_PROCS slots; fork beyond them fails with -EAGAIN,
 * so a fork bomb only fills the table. Each process has one page of kernel stack with
 * its trap frame on top, and its own address space (vm.c).
 *
 * The kernel is not preemptible: it runs with interrupts off, and takes them only in
 * user mode and while the scheduler idles (arch_idle). So there are no locks, and a
 * condition checked before sleep() cannot change before the sleep begins. A process
 * gives up the hart by switching (swtch) to the scheduler's context, which runs on the
 * boot stack and picks the next RUNNABLE process round-robin. The timer preempts a
 * process whose time slice is over when it traps (trap.c, timer.c).
 *
 * Orphans are handed to init (pid 1). When init exits, the system shuts down through
 * SBI SRST, with "system failure" unless init exited with status 0.
 */
#include "arch.h"
#include "kernel.h"
#include "proc.h"

struct proc *current;                       /* the running process, NULL while idle */
static struct proc procs[TINYOS_MAX_PROCS];
static struct proc *init_proc;
static struct context scheduler_context;
static int next_pid = 1;

/* A new process starts here, on its own kernel stack, when first scheduled. */
static void first_run(void)
{
    arch_return_to_user(current->tf);
}

/* A free slot with a kernel stack and a pid. The caller fills it in without sleeping
   and then makes it RUNNABLE: until then nothing else can claim the slot. */
static int proc_alloc(struct proc **out)
{
    struct proc *p = NULL;
    for (int i = 0; i < TINYOS_MAX_PROCS && !p; i++) {
        if (procs[i].state == PROC_UNUSED)
            p = &procs[i];
    }
    if (!p)
        return -EAGAIN;
    void *kstack = kalloc();
    if (!kstack)
        return -ENOMEM;
    memset(p, 0, sizeof *p);
    p->pid = next_pid++;
    p->kstack = kstack;
    p->tf = (struct trapframe *)((uint8_t *)kstack + PAGE_SIZE) - 1;
    p->context.ra = (uint32_t)first_run;
    p->context.sp = (uint32_t)p->tf;
    *out = p;
    return 0;
}

static void proc_free(struct proc *p)
{
    if (p->as.root)
        as_destroy(&p->as);
    kfree(p->kstack);
    p->state = PROC_UNUSED;
}

int proc_start_init(const struct boot_options *options)
{
    static struct exec_args args;
    struct proc *p;
    int error = proc_alloc(&p);
    if (error)
        return error;
    args.argc = options->argc;
    for (int i = 0; i <= options->argc; i++)
        args.argv[i] = options->argv[i];
    error = exec(p, options->init, &args);
    if (error) {
        proc_free(p);
        return error;
    }
    init_proc = p;
    p->state = PROC_RUNNABLE;
    return 0;
}

void scheduler(void)
{
    int next = 0;
    for (;;) {
        struct proc *p = NULL;
        for (int n = 0; n < TINYOS_MAX_PROCS && !p; n++) {
            struct proc *candidate = &procs[(next + n) % TINYOS_MAX_PROCS];
            if (candidate->state == PROC_RUNNABLE)
                p = candidate;
        }
        if (!p) {
            arch_idle();    /* an interrupt may wake someone; then look again */
            continue;
        }
        next = (p - procs + 1) % TINYOS_MAX_PROCS;
        p->state = PROC_RUNNING;
        current = p;
        as_activate(&p->as);
        timer_start_slice();
        swtch(&scheduler_context, &p->context);
        current = NULL;
    }
}

/* Back to the scheduler; the caller has set current's state. */
static void sched(void)
{
    swtch(&current->context, &scheduler_context);
}

void yield(void)
{
    current->state = PROC_RUNNABLE;
    sched();
}

void sleep(const void *channel)
{
    current->channel = channel;
    current->state = PROC_SLEEPING;
    sched();
    current->channel = NULL;
}

void wakeup(const void *channel)
{
    for (int i = 0; i < TINYOS_MAX_PROCS; i++) {
        if (procs[i].state == PROC_SLEEPING && procs[i].channel == channel)
            procs[i].state = PROC_RUNNABLE;
    }
}

/* Wake the processes whose nanosleep deadline has come; the earliest deadline still
   ahead, or ARCH_TIME_NEVER. */
uint64_t proc_wake_sleepers(uint64_t now)
{
    uint64_t next = ARCH_TIME_NEVER;
    for (int i = 0; i < TINYOS_MAX_PROCS; i++) {
        struct proc *p = &procs[i];
        if (p->state != PROC_SLEEPING || !p->wake_time)
            continue;
        if (p->wake_time <= now) {
            p->wake_time = 0;
            p->state = PROC_RUNNABLE;
        } else if (p->wake_time < next) {
            next = p->wake_time;
        }
    }
    return next;
}

int proc_fork(void)
{
    struct proc *child;
    int error = proc_alloc(&child);
    if (error)
        return error;
    if ((error = as_create(&child->as)) || (error = as_copy(&child->as, &current->as))) {
        proc_free(child);
        return error;
    }
    *child->tf = *current->tf;
    child->tf->a0 = 0;      /* fork returns 0 in the child */
    strlcpy(child->name, current->name, sizeof child->name);
    child->parent = current;
    child->state = PROC_RUNNABLE;
    return child->pid;
}

/* End the current process with a wait4 status word (abi.h). */
void proc_exit(int wait_status)
{
    struct proc *p = current;
    if (p == init_proc) {
        if (WIFSIGNALED(wait_status))
            kprintf("tinyos: init killed by signal %d\n", WTERMSIG(wait_status));
        else if (WEXITSTATUS(wait_status))
            kprintf("tinyos: init exited with status %d\n", WEXITSTATUS(wait_status));
        arch_shutdown(wait_status != 0);
    }
    /* The user pages go now; the root table and kernel stack are still in use until
       the switch away, so the parent frees them in wait4. */
    as_free_user(&p->as);
    for (int i = 0; i < TINYOS_MAX_PROCS; i++) {
        if (procs[i].state != PROC_UNUSED && procs[i].parent == p) {
            procs[i].parent = init_proc;
            if (procs[i].state == PROC_ZOMBIE)
                wakeup(init_proc);
        }
    }
    p->wait_status = wait_status;
    p->state = PROC_ZOMBIE;
    wakeup(p->parent);      /* a parent in wait4 sleeps on itself */
    sched();
    panic("a zombie ran");
}

/* wait4 without options: pid -1 for any child, or one child's pid. */
int proc_wait(int pid, uint32_t status_va)
{
    if (pid != -1 && pid <= 0)
        return -EINVAL;     /* process groups: tinyos has none */
    for (;;) {
        int have_child = 0;
        for (int i = 0; i < TINYOS_MAX_PROCS; i++) {
            struct proc *p = &procs[i];
            if (p->state == PROC_UNUSED || p->parent != current || (pid != -1 && p->pid != pid))
                continue;
            have_child = 1;
            if (p->state != PROC_ZOMBIE)
                continue;
            if (status_va && copyout(&current->as, status_va, &p->wait_status, sizeof(int)))
                return -EFAULT;
            int child_pid = p->pid;
            proc_free(p);
            return child_pid;
        }
        if (!have_child)
            return -ECHILD;
        sleep(current);
    }
}

/* The tinyos_ps system call: up to max entries, in process table order. */
int proc_snapshot(uint32_t out_va, int max)
{
    if (max < 0)
        return -EINVAL;
    int count = 0;
    for (int i = 0; i < TINYOS_MAX_PROCS && count < max; i++) {
        struct proc *p = &procs[i];
        if (p->state == PROC_UNUSED)
            continue;
        struct tinyos_proc_info info;
        memset(&info, 0, sizeof info);
        info.pid = p->pid;
        info.ppid = p->parent ? p->parent->pid : 0;
        info.state = p->state;
        strlcpy(info.name, p->name, sizeof info.name);
        if (copyout(&current->as, out_va + count * sizeof info, &info, sizeof info))
            return -EFAULT;
        count++;
    }
    return count;
}
