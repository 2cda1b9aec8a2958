/*
 * Processes: the trap frame that holds a process's user registers while it is in the
 * kernel, the callee-saved registers a context switch keeps, and the process itself.
 */
#ifndef TINYOS_PROC_H
#define TINYOS_PROC_H

#include "kernel.h"

/* The user registers, saved by entry.S on every trap from user mode. Slot n holds
   register xn; x0 is always zero, so its slot holds the user pc (sepc) instead.
   entry.S uses the offsets 4 * n: keep the order. */
struct trapframe {
    uint32_t epc;                                       /* x0's slot: sepc */
    uint32_t ra, sp, gp, tp, t0, t1, t2, s0, s1;        /* x1..x9 */
    uint32_t a0, a1, a2, a3, a4, a5, a6, a7;            /* x10..x17 */
    uint32_t s2, s3, s4, s5, s6, s7, s8, s9, s10, s11;  /* x18..x27 */
    uint32_t t3, t4, t5, t6;                            /* x28..x31 */
};

/* What swtch.S saves: the registers a called function must preserve (RISC-V psABI,
   "Integer Register Convention"), plus ra, where the switched-to code resumes. */
struct context {
    uint32_t ra, sp;
    uint32_t s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11;
};

/* States are abi.h's enum tinyos_proc_state, which ps reports, and PROC_UNUSED. */
#define PROC_UNUSED 0

struct proc {
    int state;
    int pid;
    struct proc *parent;
    char name[PROC_NAME_SIZE];
    struct addrspace as;
    void *kstack;               /* one page: the kernel stack, the trap frame on top */
    struct trapframe *tf;
    struct context context;     /* where swtch resumes it */
    const void *channel;        /* what it sleeps on */
    uint64_t wake_time;         /* nanosleep's deadline, 0 when not sleeping on time */
    int wait_status;            /* for wait4, once it is a zombie */
};

void swtch(struct context *old, struct context *new); /* swtch.S */

#endif
