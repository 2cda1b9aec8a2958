"""Trap causes: the exception and interrupt codes of mcause/scause/vscause.

RISC-V privileged spec 20211203, table 3.6 (mcause values) and table 8.6 (the
hypervisor extension's additions: ECALL from VS-mode, guest-page faults, virtual
instruction, and the VS-level and supervisor guest external interrupts).
"""

from __future__ import annotations

# -- Exceptions (mcause.Interrupt = 0) -------------------------------------------------
CAUSE_MISALIGNED_FETCH = 0
CAUSE_FETCH_ACCESS = 1
CAUSE_ILLEGAL_INSTRUCTION = 2
CAUSE_BREAKPOINT = 3
CAUSE_MISALIGNED_LOAD = 4
CAUSE_LOAD_ACCESS = 5
CAUSE_MISALIGNED_STORE = 6
CAUSE_STORE_ACCESS = 7
CAUSE_USER_ECALL = 8
CAUSE_SUPERVISOR_ECALL = 9
CAUSE_VIRTUAL_SUPERVISOR_ECALL = 10
CAUSE_MACHINE_ECALL = 11
CAUSE_FETCH_PAGE_FAULT = 12
CAUSE_LOAD_PAGE_FAULT = 13
CAUSE_STORE_PAGE_FAULT = 15
CAUSE_FETCH_GUEST_PAGE_FAULT = 20
CAUSE_LOAD_GUEST_PAGE_FAULT = 21
CAUSE_VIRTUAL_INSTRUCTION = 22
CAUSE_STORE_GUEST_PAGE_FAULT = 23

# -- Interrupts (mcause.Interrupt = 1); the code is also the bit in mip/mie -----------
IRQ_S_SOFT = 1
IRQ_VS_SOFT = 2
IRQ_M_SOFT = 3
IRQ_S_TIMER = 5
IRQ_VS_TIMER = 6
IRQ_M_TIMER = 7
IRQ_S_EXT = 9
IRQ_VS_EXT = 10
IRQ_M_EXT = 11
IRQ_S_GEXT = 12

INTERRUPT_BIT = 1 << 31

EXCEPTION_NAMES: dict[int, str] = {
    CAUSE_MISALIGNED_FETCH: "instruction address misaligned",
    CAUSE_FETCH_ACCESS: "instruction access fault",
    CAUSE_ILLEGAL_INSTRUCTION: "illegal instruction",
    CAUSE_BREAKPOINT: "breakpoint",
    CAUSE_MISALIGNED_LOAD: "load address misaligned",
    CAUSE_LOAD_ACCESS: "load access fault",
    CAUSE_MISALIGNED_STORE: "store/AMO address misaligned",
    CAUSE_STORE_ACCESS: "store/AMO access fault",
    CAUSE_USER_ECALL: "environment call from U-mode or VU-mode",
    CAUSE_SUPERVISOR_ECALL: "environment call from S-mode",
    CAUSE_VIRTUAL_SUPERVISOR_ECALL: "environment call from VS-mode",
    CAUSE_MACHINE_ECALL: "environment call from M-mode",
    CAUSE_FETCH_PAGE_FAULT: "instruction page fault",
    CAUSE_LOAD_PAGE_FAULT: "load page fault",
    CAUSE_STORE_PAGE_FAULT: "store/AMO page fault",
    CAUSE_FETCH_GUEST_PAGE_FAULT: "instruction guest-page fault",
    CAUSE_LOAD_GUEST_PAGE_FAULT: "load guest-page fault",
    CAUSE_VIRTUAL_INSTRUCTION: "virtual instruction",
    CAUSE_STORE_GUEST_PAGE_FAULT: "store/AMO guest-page fault",
}

INTERRUPT_NAMES: dict[int, str] = {
    IRQ_S_SOFT: "supervisor software interrupt",
    IRQ_VS_SOFT: "virtual supervisor software interrupt",
    IRQ_M_SOFT: "machine software interrupt",
    IRQ_S_TIMER: "supervisor timer interrupt",
    IRQ_VS_TIMER: "virtual supervisor timer interrupt",
    IRQ_M_TIMER: "machine timer interrupt",
    IRQ_S_EXT: "supervisor external interrupt",
    IRQ_VS_EXT: "virtual supervisor external interrupt",
    IRQ_M_EXT: "machine external interrupt",
    IRQ_S_GEXT: "supervisor guest external interrupt",
}

# Priority when several enabled interrupts are pending at one level, highest first
# (privileged spec 3.1.9: MEI, MSI, MTI, SEI, SSI, STI; 8.4.3 for SGEI and VS-level).
INTERRUPT_PRIORITY: tuple[int, ...] = (
    IRQ_M_EXT,
    IRQ_M_SOFT,
    IRQ_M_TIMER,
    IRQ_S_EXT,
    IRQ_S_SOFT,
    IRQ_S_TIMER,
    IRQ_S_GEXT,
    IRQ_VS_EXT,
    IRQ_VS_SOFT,
    IRQ_VS_TIMER,
)


def cause_name(mcause: int) -> str:
    """Spec name of an mcause value, e.g. ``cause_name(0x80000007)``."""
    code = mcause & ~INTERRUPT_BIT
    table = INTERRUPT_NAMES if mcause & INTERRUPT_BIT else EXCEPTION_NAMES
    return table.get(code, f"reserved cause {code}")
