/*
 * The arch layer: every privileged operation tinyos performs, and nothing else.
 *
 * The rest of the kernel never touches a CSR, never executes SFENCE.VMA, WFI, SRET or
 * ECALL, and reaches device registers only through arch_read32/arch_write32 and their
 * byte-wide twins. A para-virtualized build replaces exactly this layer (arch.c and
 * entry.S) with hypercalls; nothing else has to change.
 *
 * It follows the RISC-V privileged spec 1.12 (chapter 4, "Supervisor-Level ISA") and
 * the SBI spec 2.0 for what S-mode asks of the firmware (TIME and SRST extensions).
 */
#ifndef TINYOS_ARCH_H
#define TINYOS_ARCH_H

#include <stdint.h>

struct trapframe;

/* -- boot and traps (entry.S, arch.c) ------------------------------------------------- */

/* Point stvec at the trap vector, mark "in the kernel" (sscratch = 0) and enable the
   timer and external interrupts in sie. They are taken only in user mode and while
   arch_idle waits: the kernel itself runs with sstatus.SIE clear. */
void arch_trap_init(void);

/* Why the last trap happened (scause, 4.1.9), its extra word (stval, 4.1.10) and
   where (sepc, 4.1.8). A trap from user mode finds its pc in the trap frame. */
uint32_t arch_trap_cause(void);
uint32_t arch_trap_value(void);
uint32_t arch_trap_pc(void);

/* scause values (privileged spec 1.12, table 4.2). Interrupts have bit 31 set. */
#define CAUSE_INTERRUPT                 0x80000000u
#define CAUSE_S_TIMER_INTERRUPT         (CAUSE_INTERRUPT | 5)
#define CAUSE_S_EXTERNAL_INTERRUPT      (CAUSE_INTERRUPT | 9)
#define CAUSE_FETCH_MISALIGNED          0
#define CAUSE_FETCH_ACCESS              1
#define CAUSE_ILLEGAL_INSTRUCTION       2
#define CAUSE_BREAKPOINT                3
#define CAUSE_LOAD_MISALIGNED           4
#define CAUSE_LOAD_ACCESS               5
#define CAUSE_STORE_MISALIGNED          6
#define CAUSE_STORE_ACCESS              7
#define CAUSE_USER_ECALL                8
#define CAUSE_FETCH_PAGE_FAULT          12
#define CAUSE_LOAD_PAGE_FAULT           13
#define CAUSE_STORE_PAGE_FAULT          15

/* Enter user mode with the registers in tf (entry.S). sscratch then holds tf, so the
   next trap from user mode saves the registers there again. */
void arch_return_to_user(struct trapframe *tf) __attribute__((noreturn));

/* -- interrupts ------------------------------------------------------------------------ */

/* Sleep until an interrupt is pending (WFI, 3.3.3), then take it. Called with
   interrupts off, so none can slip in between "nothing to do" and the WFI. */
void arch_idle(void);

/* -- time (SBI TIME extension, chapter 6) ---------------------------------------------- */

uint64_t arch_read_time(void);          /* the time CSR, TIMEBASE_HZ ticks a second */
void arch_set_timer(uint64_t deadline); /* also clears a pending timer interrupt */
#define ARCH_TIME_NEVER 0xffffffffffffffffull

/* -- address translation (4.1.11 satp, 4.2.1 SFENCE.VMA) ------------------------------ */

void arch_set_pagetable(uint32_t *root); /* Sv32 root page table, then flush the TLB */
void arch_flush_page(uint32_t va);       /* after changing one user mapping */

/* -- device registers ------------------------------------------------------------------- */

uint8_t arch_read8(uint32_t address);
void arch_write8(uint32_t address, uint8_t value);
uint32_t arch_read32(uint32_t address);
void arch_write32(uint32_t address, uint32_t value);

/* -- the firmware (SBI SRST extension, chapter 10) ------------------------------------- */

void arch_shutdown(int failure) __attribute__((noreturn));

#endif
