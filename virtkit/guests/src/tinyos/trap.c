/*
 * Traps: what happens after entry.S has saved the registers (RISC-V privileged spec
 * 1.12, 4.1.9 "scause", table 4.2 for the causes).
 *
 * From user mode: a system call (ECALL), the timer (preempt when the slice is over),
 * a device interrupt through the PLIC, or an exception. A page fault in the heap or
 * stack maps a zeroed page (vm.c); any other exception kills the process with a
 * message, and its parent's wait4 sees the signal. The kernel keeps running.
 *
 * In the kernel, interrupts arrive only while the scheduler idles; an exception there
 * is a kernel bug, and the kernel panics.
 */
#include "arch.h"
#include "kernel.h"
#include "proc.h"

static const char *const exception_names[] = {
    [CAUSE_FETCH_MISALIGNED] = "instruction address misaligned",
    [CAUSE_FETCH_ACCESS] = "instruction access fault",
    [CAUSE_ILLEGAL_INSTRUCTION] = "illegal instruction",
    [CAUSE_BREAKPOINT] = "breakpoint",
    [CAUSE_LOAD_MISALIGNED] = "load address misaligned",
    [CAUSE_LOAD_ACCESS] = "load access fault",
    [CAUSE_STORE_MISALIGNED] = "store address misaligned",
    [CAUSE_STORE_ACCESS] = "store access fault",
    [CAUSE_USER_ECALL] = "environment call from U-mode",
    [CAUSE_FETCH_PAGE_FAULT] = "instruction page fault",
    [CAUSE_LOAD_PAGE_FAULT] = "load page fault",
    [CAUSE_STORE_PAGE_FAULT] = "store page fault",
};

const char *cause_name(uint32_t cause)
{
    if (cause == CAUSE_S_TIMER_INTERRUPT)
        return "supervisor timer interrupt";
    if (cause == CAUSE_S_EXTERNAL_INTERRUPT)
        return "supervisor external interrupt";
    if (cause < ARRAY_SIZE(exception_names) && exception_names[cause])
        return exception_names[cause];
    return "unknown cause";
}

/* The signal Linux would send for an exception: SIGILL for an instruction it cannot
   run, SIGTRAP for EBREAK, SIGSEGV for a bad memory access. */
static int signal_for(uint32_t cause)
{
    if (cause == CAUSE_ILLEGAL_INSTRUCTION)
        return SIGILL;
    if (cause == CAUSE_BREAKPOINT)
        return SIGTRAP;
    return SIGSEGV;
}

static int has_address(uint32_t cause)
{
    return cause != CAUSE_ILLEGAL_INSTRUCTION && cause != CAUSE_BREAKPOINT;
}

static void user_exception(struct trapframe *tf, uint32_t cause)
{
    unsigned va = arch_trap_value(), pc = tf->epc;
    int error = -EFAULT;
    if (cause == CAUSE_FETCH_PAGE_FAULT || cause == CAUSE_LOAD_PAGE_FAULT ||
        cause == CAUSE_STORE_PAGE_FAULT)
        error = as_fault(&current->as, va);
    if (error == 0)
        return;     /* a demand-zero page is there now: run the access again */
    kprintf("tinyos: pid %d (%s) killed: ", current->pid, current->name);
    if (error == -ENOMEM) {
        kprintf("out of memory at va 0x%08x pc 0x%08x\n", va, pc);
        proc_exit(SIGKILL);
    }
    if (has_address(cause))
        kprintf("%s at va 0x%08x pc 0x%08x\n", cause_name(cause), va, pc);
    else
        kprintf("%s at pc 0x%08x\n", cause_name(cause), pc);
    proc_exit(signal_for(cause));
}

void user_trap(struct trapframe *tf)
{
    uint32_t cause = arch_trap_cause();
    switch (cause) {
    case CAUSE_USER_ECALL:
        tf->epc += 4;       /* return past the ECALL */
        syscall(tf);
        break;
    case CAUSE_S_TIMER_INTERRUPT:
        if (timer_interrupt())
            yield();
        break;
    case CAUSE_S_EXTERNAL_INTERRUPT:
        plic_interrupt();
        break;
    default:
        if (cause & CAUSE_INTERRUPT)    /* sie enables no other interrupt */
            panic_trap("unexpected interrupt", tf->epc, cause, 0);
        user_exception(tf, cause);
        break;
    }
}

void kernel_trap(void)
{
    uint32_t cause = arch_trap_cause();
    if (cause == CAUSE_S_TIMER_INTERRUPT)
        timer_interrupt();
    else if (cause == CAUSE_S_EXTERNAL_INTERRUPT)
        plic_interrupt();
    else
        panic_trap("exception in the kernel", arch_trap_pc(), cause, arch_trap_value());
}
