"""Traps: which level takes them, trap entry, MRET and SRET, pending interrupts.

Privileged spec 20211203: 3.1.6.1 (the xIE/xPIE/xPP stack), 3.1.7 (mtvec direct and
vectored modes), 3.1.8 (medeleg and mideleg), 3.1.9 (when an interrupt is taken, and
its priority: MEI, MSI, MTI, SEI, SSI, STI), 3.3.2 (MRET, SRET), 4.1.1-4.1.2
(supervisor trap entry).

Before a trap changes any architectural state the core asks ``owned_by_python``:
when the level the trap targets belongs to Python (a firmware or a monitor written
in Python), the core exits instead, and Python decides what happens. ``enter``
is what ``Hart.take_trap`` calls to deliver such a trap architecturally afterwards.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from virtkit.cpu import csrfile as F
from virtkit.cpu import exits as E
from virtkit.cpu import state as S
from virtkit.isa import causes as C
from virtkit.isa import csrs

CSR_MCAUSE = csrs.number("mcause")
CSR_MTVAL = csrs.number("mtval")
CSR_SCAUSE = csrs.number("scause")
CSR_STVAL = csrs.number("stval")

NO_INTERRUPT = -1
# The ``interrupt`` argument of take and enter (np.int64: see virtkit.cpu.mmu).
EXCEPTION = np.int64(0)
INTERRUPT = np.int64(1)


@njit(cache=True)
def target_level(st, csr, cause, interrupt):
    """The privilege level that takes this trap (3.1.8: delegation never lowers it)."""
    deleg = csr[F.CSR_MIDELEG] if interrupt else csr[F.CSR_MEDELEG]
    if st[S.PRIV] <= S.PRV_S and (deleg >> cause) & 1:
        return S.PRV_S
    return S.PRV_M


@njit(cache=True)
def owned_by_python(st, level):
    exits = st[S.TRAP_EXITS]
    if exits & S.TRAP_EXIT_ALL:
        return True
    if level == S.PRV_M:
        return (exits & S.TRAP_EXIT_M) != 0
    return (exits & S.TRAP_EXIT_S) != 0


@njit(cache=True)
def enter(st, csr, cause, interrupt, tval, pc):
    """Take a trap architecturally: save pc, cause and tval, stack xIE, jump to xtvec."""
    level = target_level(st, csr, cause, interrupt)
    priv = st[S.PRIV]
    mstatus = csr[F.CSR_MSTATUS]
    code = cause | (1 << 31) if interrupt else cause
    if level == S.PRV_S:
        csr[F.CSR_SEPC] = pc & ~3
        csr[CSR_SCAUSE] = code
        csr[CSR_STVAL] = tval & 0xFFFFFFFF
        spie = F.MSTATUS_SPIE if mstatus & F.MSTATUS_SIE else 0
        mstatus = (mstatus & ~(F.MSTATUS_SPIE | F.MSTATUS_SIE | F.MSTATUS_SPP)) | spie
        mstatus |= priv << F.MSTATUS_SPP_SHIFT
        tvec = csr[F.CSR_STVEC]
    else:
        csr[F.CSR_MEPC] = pc & ~3
        csr[CSR_MCAUSE] = code
        csr[CSR_MTVAL] = tval & 0xFFFFFFFF
        mpie = F.MSTATUS_MPIE if mstatus & F.MSTATUS_MIE else 0
        mstatus = (mstatus & ~(F.MSTATUS_MPIE | F.MSTATUS_MIE | F.MSTATUS_MPP)) | mpie
        mstatus |= priv << F.MSTATUS_MPP_SHIFT
        tvec = csr[F.CSR_MTVEC]
    csr[F.CSR_MSTATUS] = mstatus
    base = tvec & ~3
    if interrupt and (tvec & 3) == 1:
        base += 4 * cause  # vectored mode: interrupts jump to BASE + 4 * cause
    st[S.PC] = base & 0xFFFFFFFF
    st[S.PRIV] = level


@njit(cache=True)
def record_trap_exit(st, cause, interrupt, tval, pc, insn):
    st[S.EXIT_REASON] = E.EXIT_TRAP
    st[S.EXIT_CAUSE] = cause
    st[S.EXIT_INTERRUPT] = 1 if interrupt else 0
    st[S.EXIT_TVAL] = tval & 0xFFFFFFFF
    st[S.EXIT_PC] = pc
    st[S.EXIT_INSN] = insn


@njit(cache=True)
def take(st, csr, stats, cause, interrupt, tval, pc, insn):
    """Deliver a trap, or exit to Python if Python owns its target level.

    Returns EXIT_NONE when the trap was taken, EXIT_TRAP when the core must exit.
    """
    if interrupt:
        stats[S.STAT_INTERRUPTS + cause] += 1
    else:
        stats[S.STAT_TRAPS + cause] += 1
    if owned_by_python(st, target_level(st, csr, cause, interrupt)):
        record_trap_exit(st, cause, interrupt, tval, pc, insn)
        return E.EXIT_TRAP
    enter(st, csr, cause, interrupt, tval, pc)
    return E.EXIT_NONE


@njit(cache=True)
def _highest_priority(pending):
    if pending & F.MIP_MEIP:
        return C.IRQ_M_EXT
    if pending & F.MIP_MSIP:
        return C.IRQ_M_SOFT
    if pending & F.MIP_MTIP:
        return C.IRQ_M_TIMER
    if pending & F.MIP_SEIP:
        return C.IRQ_S_EXT
    if pending & F.MIP_SSIP:
        return C.IRQ_S_SOFT
    if pending & F.MIP_STIP:
        return C.IRQ_S_TIMER
    return NO_INTERRUPT


@njit(cache=True)
def pending_interrupt(st, csr):
    """The interrupt to take now, or NO_INTERRUPT (3.1.9).

    An interrupt i traps to M-mode if it is pending and enabled in mie, not delegated,
    and either the hart runs below M or mstatus.MIE is set; to S-mode if delegated and
    the hart runs in U, or in S with sstatus.SIE set. M-level interrupts come first.
    """
    pending = F.mip_value(st, csr) & csr[F.CSR_MIE]
    if pending == 0:
        return NO_INTERRUPT
    priv = st[S.PRIV]
    mstatus = csr[F.CSR_MSTATUS]
    deleg = csr[F.CSR_MIDELEG]
    m_enabled = priv < S.PRV_M or (mstatus & F.MSTATUS_MIE) != 0
    if m_enabled:
        cause = _highest_priority(pending & ~deleg)
        if cause != NO_INTERRUPT:
            return cause
    s_enabled = priv < S.PRV_S or (priv == S.PRV_S and (mstatus & F.MSTATUS_SIE) != 0)
    if s_enabled:
        return _highest_priority(pending & deleg)
    return NO_INTERRUPT


@njit(cache=True)
def mret(st, csr):
    """MRET (3.3.2): privilege from MPP, MIE from MPIE, MPIE = 1, MPP = U."""
    mstatus = csr[F.CSR_MSTATUS]
    mpp = (mstatus & F.MSTATUS_MPP) >> F.MSTATUS_MPP_SHIFT
    mie = F.MSTATUS_MIE if mstatus & F.MSTATUS_MPIE else 0
    mstatus = (mstatus & ~(F.MSTATUS_MIE | F.MSTATUS_MPP)) | mie | F.MSTATUS_MPIE
    if mpp != S.PRV_M:
        mstatus &= ~F.MSTATUS_MPRV
    csr[F.CSR_MSTATUS] = mstatus
    st[S.PRIV] = mpp
    st[S.PC] = csr[F.CSR_MEPC]


@njit(cache=True)
def sret(st, csr):
    """SRET (3.3.2): privilege from SPP, SIE from SPIE, SPIE = 1, SPP = U, MPRV = 0."""
    mstatus = csr[F.CSR_MSTATUS]
    spp = (mstatus & F.MSTATUS_SPP) >> F.MSTATUS_SPP_SHIFT
    sie = F.MSTATUS_SIE if mstatus & F.MSTATUS_SPIE else 0
    mstatus = (mstatus & ~(F.MSTATUS_SIE | F.MSTATUS_SPP | F.MSTATUS_MPRV)) | sie
    csr[F.CSR_MSTATUS] = mstatus | F.MSTATUS_SPIE
    st[S.PRIV] = spp
    st[S.PC] = csr[F.CSR_SEPC]
