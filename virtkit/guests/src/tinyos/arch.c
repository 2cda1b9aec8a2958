/*
 * The arch layer for a kernel that owns S-mode (the unmodified build): CSR accesses,
 * SFENCE.VMA, WFI, device register accesses and SBI calls. See arch.h for the contract.
 *
 * RISC-V privileged spec 1.12: 4.1.1 sstatus, 4.1.3 sie, 4.1.9 scause, 4.1.10 stval,
 * 4.1.11 satp, 4.2.1 SFENCE.VMA, 3.3.3 WFI. SBI spec 2.0: chapter 3 (calling
 * convention), 6 (TIME), 10 (SRST).
 */
#include "arch.h"
#include "kernel.h"

#define SSTATUS_SIE (1u << 1)   /* S-mode interrupts enabled */
#define SIE_STIE (1u << 5)      /* supervisor timer interrupt enable */
#define SIE_SEIE (1u << 9)      /* supervisor external interrupt enable (the PLIC) */
#define SATP_MODE_SV32 (1u << 31)

#define SBI_EXT_TIME 0x54494D45 /* "TIME" */
#define SBI_EXT_SRST 0x53525354 /* "SRST" */
#define SBI_SRST_SHUTDOWN 0
#define SBI_SRST_REASON_NONE 0
#define SBI_SRST_REASON_SYSTEM_FAILURE 1

#define csr_read(name) ({ uint32_t v_; __asm__ volatile("csrr %0, " #name : "=r"(v_)); v_; })
#define csr_write(name, v) __asm__ volatile("csrw " #name ", %0" ::"r"(v))
#define csr_set(name, v) __asm__ volatile("csrs " #name ", %0" ::"r"(v))
#define csr_clear(name, v) __asm__ volatile("csrc " #name ", %0" ::"r"(v))

/* An SBI call (SBI 2.0, chapter 3): extension in a7, function in a6, arguments in a0..,
   error back in a0. No call tinyos makes needs the value in a1. */
static long sbi_call(long extension, long function, long arg0, long arg1)
{
    register long a0 __asm__("a0") = arg0;
    register long a1 __asm__("a1") = arg1;
    register long a6 __asm__("a6") = function;
    register long a7 __asm__("a7") = extension;
    __asm__ volatile("ecall" : "+r"(a0), "+r"(a1) : "r"(a6), "r"(a7) : "memory");
    return a0;
}

extern char trap_vector[];  /* entry.S */

void arch_trap_init(void)
{
    csr_write(stvec, (uint32_t)trap_vector);   /* direct mode: bits 1:0 = 0 (4.1.2) */
    csr_write(sscratch, 0);                    /* 0 means "the trap came from the kernel" */
    csr_set(sie, SIE_STIE | SIE_SEIE);
}

uint32_t arch_trap_cause(void)
{
    return csr_read(scause);
}

uint32_t arch_trap_value(void)
{
    return csr_read(stval);
}

uint32_t arch_trap_pc(void)
{
    return csr_read(sepc);
}

/* WFI resumes when an interrupt is pending even while sstatus.SIE is 0 (3.3.3); setting
   SIE then takes it, and the trap handler's SRET comes back here. */
void arch_idle(void)
{
    __asm__ volatile("wfi");
    csr_set(sstatus, SSTATUS_SIE);
    csr_clear(sstatus, SSTATUS_SIE);
}

/* The 64-bit time CSR on RV32 (Zicntr): read the high half twice so a carry out of
   the low half between the reads cannot go unnoticed. */
uint64_t arch_read_time(void)
{
    uint32_t high, low;
    do {
        high = csr_read(timeh);
        low = csr_read(time);
    } while (high != csr_read(timeh));
    return (uint64_t)high << 32 | low;
}

/* sbi_set_timer (SBI 6.1): the deadline in a0 (low) and a1 (high) on RV32. It also
   clears the pending supervisor timer interrupt. */
void arch_set_timer(uint64_t deadline)
{
    sbi_call(SBI_EXT_TIME, 0, (long)(uint32_t)deadline, (long)(uint32_t)(deadline >> 32));
}

/* satp (4.1.11): MODE = Sv32, ASID 0, PPN of the root table. tinyos uses no ASIDs, so
   a switch flushes every translation (4.2.1). */
void arch_set_pagetable(uint32_t *root)
{
    csr_write(satp, SATP_MODE_SV32 | (uint32_t)root >> PAGE_SHIFT);
    __asm__ volatile("sfence.vma zero, zero" ::: "memory");
}

/* A PTE went from invalid to valid or back: a hart may have cached the old entry, so
   flush that page's translation (4.2.1). */
void arch_flush_page(uint32_t va)
{
    __asm__ volatile("sfence.vma %0, zero" ::"r"(va) : "memory");
}

uint8_t arch_read8(uint32_t address)
{
    return *(volatile uint8_t *)address;
}

void arch_write8(uint32_t address, uint8_t value)
{
    *(volatile uint8_t *)address = value;
}

uint32_t arch_read32(uint32_t address)
{
    return *(volatile uint32_t *)address;
}

void arch_write32(uint32_t address, uint32_t value)
{
    *(volatile uint32_t *)address = value;
}

/* sbi_system_reset (SBI 10.1): shutdown, with "no reason" or "system failure". */
void arch_shutdown(int failure)
{
    sbi_call(SBI_EXT_SRST, 0, SBI_SRST_SHUTDOWN,
             failure ? SBI_SRST_REASON_SYSTEM_FAILURE : SBI_SRST_REASON_NONE);
    for (;;)   /* SRST does not return when it succeeds (SBI 10.1) */
        __asm__ volatile("wfi");
}
