"""Traps: which level takes them, trap entry, MRET and SRET, pending interrupts.

Privileged spec 20211203: 3.1.6.1 (the xIE/xPIE/xPP stack), 3.1.7 (mtvec direct and
vectored modes), 3.1.8 (medeleg and mideleg), 3.1.9 (when an interrupt is taken, and
its priority: MEI, MSI, MTI, SEI, SSI, STI), 3.3.2 (MRET, SRET), 4.1.1-4.1.2
(supervisor trap entry), and for the hypervisor extension 8.6 "Traps": delegation
through hedeleg and hideleg (8.6.2), trap entry into M-, HS- and VS-mode with MPV,
SPV, SPVP, GVA, htval/mtval2 and htinst/mtinst (8.6.2, 8.6.3), MRET and SRET across
V (8.6.4), and the VS-level interrupts (8.2.3, 8.2.12).

A trap goes to one of three levels, named here by their context (privilege + 4 * V,
see virtkit.cpu.state): M-mode (``LEVEL_M``), HS-mode (``LEVEL_HS``) or VS-mode
(``LEVEL_VS``). Before a trap changes any architectural state the core asks
``owned_by_python``: when the level it targets belongs to Python (a firmware or a
hypervisor written in Python), the core exits instead, and Python decides what
happens. ``enter`` is what ``Hart.take_trap`` calls to deliver such a trap
architecturally afterwards.
"""

from __future__ import annotations

import numpy as np

from virtkit.cpu import csrfile as F
from virtkit.cpu import exits as E
from virtkit.cpu import state as S
from virtkit.cpu.jitcache import njit
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

# The levels a trap can go to, as contexts.
LEVEL_M = S.PRV_M
LEVEL_HS = S.PRV_S
LEVEL_VS = S.PRV_S + S.CONTEXT_V

# The exceptions that write a faulting address (or, for a breakpoint, the pc) to
# mtval/stval: when it is a guest virtual address, the trap sets GVA (8.2.1, 8.4.1).
GVA_CAUSES = sum(
    1 << cause
    for cause in (
        C.CAUSE_MISALIGNED_FETCH,
        C.CAUSE_FETCH_ACCESS,
        C.CAUSE_BREAKPOINT,
        C.CAUSE_MISALIGNED_LOAD,
        C.CAUSE_LOAD_ACCESS,
        C.CAUSE_MISALIGNED_STORE,
        C.CAUSE_STORE_ACCESS,
        C.CAUSE_FETCH_PAGE_FAULT,
        C.CAUSE_LOAD_PAGE_FAULT,
        C.CAUSE_STORE_PAGE_FAULT,
        C.CAUSE_FETCH_GUEST_PAGE_FAULT,
        C.CAUSE_LOAD_GUEST_PAGE_FAULT,
        C.CAUSE_STORE_GUEST_PAGE_FAULT,
    )
)


@njit(cache=True)
def target_level(st, csr, cause, interrupt):
    """The level that takes this trap (3.1.8, 8.6.2: delegation never lowers it).

    From HS- or U-mode a trap goes to M-mode unless medeleg/mideleg delegates it to
    HS-mode; from VS- or VU-mode it may be delegated further, by hedeleg/hideleg, to
    VS-mode. VS-level interrupts are delegated past M-mode always (mideleg reads one).
    """
    if st[S.PRIV] == S.PRV_M:
        return LEVEL_M
    if interrupt:
        if not (csr[F.CSR_MIDELEG] >> cause) & 1:
            return LEVEL_M
        if st[S.VIRT] and (csr[F.CSR_HIDELEG] >> cause) & 1:
            return LEVEL_VS
        return LEVEL_HS
    if not (csr[F.CSR_MEDELEG] >> cause) & 1:
        return LEVEL_M
    if st[S.VIRT] and (csr[F.CSR_HEDELEG] >> cause) & 1:
        return LEVEL_VS
    return LEVEL_HS


@njit(cache=True, inline="always")  # compiled into its one caller (see jitcache)
def owned_by_python(st, level):
    exits = st[S.TRAP_EXITS]
    if exits & S.TRAP_EXIT_ALL:
        return True
    if level == LEVEL_M:
        return (exits & S.TRAP_EXIT_M) != 0
    if level == LEVEL_HS:
        return (exits & S.TRAP_EXIT_S) != 0
    return False  # a trap into VS-mode belongs to the guest


@njit(cache=True)
def enter(st, csr, cause, interrupt, tval, pc, tval2, tinst, gva):
    """Take a trap architecturally: save pc, cause and tval, stack xIE, jump to xtvec.

    ``tval2`` (guest physical address >> 2), ``tinst`` and ``gva`` are what the
    hypervisor extension adds; a trap into VS-mode has no place for them.
    """
    level = target_level(st, csr, cause, interrupt)
    priv = st[S.PRIV]
    virt = st[S.VIRT]
    code = cause | (1 << 31) if interrupt else cause
    vector = cause
    if level == LEVEL_VS:
        # 8.6.2: a VS-level interrupt reaches VS-mode as the matching S-level one
        # (VSSI 2 -> SSI 1, VSTI 6 -> STI 5, VSEI 10 -> SEI 9).
        if interrupt:
            vector = cause - 1
            code = vector | (1 << 31)
        csr[F.CSR_VSEPC] = pc & ~3
        csr[F.CSR_VSCAUSE] = code
        csr[F.CSR_VSTVAL] = tval & 0xFFFFFFFF
        vsstatus = csr[F.CSR_VSSTATUS]
        spie = F.VSSTATUS_SPIE if vsstatus & F.VSSTATUS_SIE else 0
        vsstatus = (vsstatus & ~(F.VSSTATUS_SPIE | F.VSSTATUS_SIE | F.VSSTATUS_SPP)) | spie
        csr[F.CSR_VSSTATUS] = vsstatus | (priv << F.VSSTATUS_SPP_SHIFT)
        tvec = csr[F.CSR_VSTVEC]
        st[S.PRIV] = S.PRV_S  # V stays 1
    elif level == LEVEL_HS:
        csr[F.CSR_SEPC] = pc & ~3
        csr[CSR_SCAUSE] = code
        csr[CSR_STVAL] = tval & 0xFFFFFFFF
        csr[F.CSR_HTVAL] = tval2
        csr[F.CSR_HTINST] = tinst
        mstatus = csr[F.CSR_MSTATUS]
        spie = F.MSTATUS_SPIE if mstatus & F.MSTATUS_SIE else 0
        mstatus = (mstatus & ~(F.MSTATUS_SPIE | F.MSTATUS_SIE | F.MSTATUS_SPP)) | spie
        csr[F.CSR_MSTATUS] = mstatus | (priv << F.MSTATUS_SPP_SHIFT)
        hstatus = csr[F.CSR_HSTATUS] & ~(F.HSTATUS_SPV | F.HSTATUS_GVA)
        if virt:
            hstatus = (hstatus & ~F.HSTATUS_SPVP) | F.HSTATUS_SPV
            hstatus |= priv << F.HSTATUS_SPVP_SHIFT  # SPVP changes only when V was 1
        if gva:
            hstatus |= F.HSTATUS_GVA
        csr[F.CSR_HSTATUS] = hstatus
        tvec = csr[F.CSR_STVEC]
        st[S.PRIV] = S.PRV_S
        st[S.VIRT] = 0
    else:
        csr[F.CSR_MEPC] = pc & ~3
        csr[CSR_MCAUSE] = code
        csr[CSR_MTVAL] = tval & 0xFFFFFFFF
        csr[F.CSR_MTVAL2] = tval2
        csr[F.CSR_MTINST] = tinst
        mstatus = csr[F.CSR_MSTATUS]
        mpie = F.MSTATUS_MPIE if mstatus & F.MSTATUS_MIE else 0
        mstatus = (mstatus & ~(F.MSTATUS_MPIE | F.MSTATUS_MIE | F.MSTATUS_MPP)) | mpie
        csr[F.CSR_MSTATUS] = mstatus | (priv << F.MSTATUS_MPP_SHIFT)
        mstatush = csr[F.CSR_MSTATUSH] & ~(F.MSTATUSH_MPV | F.MSTATUSH_GVA)
        if virt:
            mstatush |= F.MSTATUSH_MPV
        if gva:
            mstatush |= F.MSTATUSH_GVA
        csr[F.CSR_MSTATUSH] = mstatush
        tvec = csr[F.CSR_MTVEC]
        st[S.PRIV] = S.PRV_M
        st[S.VIRT] = 0
    base = tvec & ~3
    if interrupt and (tvec & 3) == 1:
        base += 4 * vector  # vectored mode: interrupts jump to BASE + 4 * cause
    st[S.PC] = base & 0xFFFFFFFF


@njit(cache=True)
def take(st, csr, stats, cause, interrupt, tval, pc, insn):
    """Deliver a trap, or exit to Python if Python owns its target level.

    An exception's hypervisor details (EXC_TVAL2, EXC_TINST, EXC_GVA) are consumed
    here. Returns EXIT_NONE when the trap was taken, EXIT_TRAP when the core must exit.
    """
    tval2 = 0
    tinst = 0
    gva = 0
    if interrupt:
        stats[S.STAT_INTERRUPTS + cause] += 1
    else:
        stats[S.STAT_TRAPS + cause] += 1
        tval2 = st[S.EXC_TVAL2]
        tinst = st[S.EXC_TINST]
        if (GVA_CAUSES >> cause) & 1 and (st[S.VIRT] or st[S.EXC_GVA]):
            gva = 1
        st[S.EXC_TVAL2] = 0
        st[S.EXC_TINST] = 0
        st[S.EXC_GVA] = 0
    if owned_by_python(st, target_level(st, csr, cause, interrupt)):
        # The hart stops at the trapping instruction, the trap not taken: hart.pc and
        # the exit's pc agree, whichever helper raised it.
        st[S.PC] = pc
        st[S.EXIT_REASON] = E.EXIT_TRAP
        st[S.EXIT_CAUSE] = cause
        st[S.EXIT_INTERRUPT] = 1 if interrupt else 0
        st[S.EXIT_TVAL] = tval & 0xFFFFFFFF
        st[S.EXIT_PC] = pc
        st[S.EXIT_INSN] = insn
        st[S.EXIT_HTVAL] = tval2
        st[S.EXIT_HTINST] = tinst
        st[S.EXIT_GVA] = gva
        return E.EXIT_TRAP
    enter(st, csr, cause, interrupt, tval, pc, tval2, tinst, gva)
    return E.EXIT_NONE


@njit(cache=True)
def _highest_priority(pending):
    """3.1.9 and 8.2.3: MEI, MSI, MTI, SEI, SSI, STI, SGEI, VSEI, VSSI, VSTI."""
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
    if pending & F.MIP_SGEIP:
        return C.IRQ_S_GEXT
    if pending & F.MIP_VSEIP:
        return C.IRQ_VS_EXT
    if pending & F.MIP_VSSIP:
        return C.IRQ_VS_SOFT
    if pending & F.MIP_VSTIP:
        return C.IRQ_VS_TIMER
    return NO_INTERRUPT


@njit(cache=True)
def pending_interrupt(st, csr):
    """The interrupt to take now, or NO_INTERRUPT (3.1.9, 8.2.3).

    An interrupt i traps to M-mode if it is pending and enabled in mie, not delegated,
    and either the hart runs below M or mstatus.MIE is set; to HS-mode if delegated by
    mideleg but not by hideleg, and the hart runs in U, VS or VU, or in HS with
    sstatus.SIE set; to VS-mode if hideleg delegates it too and the hart runs in VU,
    or in VS with vsstatus.SIE set. Higher levels come first.
    """
    pending = F.mip_value(st, csr) & csr[F.CSR_MIE]
    if pending == 0:
        return NO_INTERRUPT
    priv = st[S.PRIV]
    virt = st[S.VIRT]
    mstatus = csr[F.CSR_MSTATUS]
    deleg = csr[F.CSR_MIDELEG]
    m_enabled = priv < S.PRV_M or (mstatus & F.MSTATUS_MIE) != 0
    if m_enabled:
        cause = _highest_priority(pending & ~deleg)
        if cause != NO_INTERRUPT:
            return cause
    hs_enabled = (
        virt != 0 or priv == S.PRV_U or (priv == S.PRV_S and (mstatus & F.MSTATUS_SIE) != 0)
    )
    if hs_enabled:
        cause = _highest_priority(pending & deleg & ~csr[F.CSR_HIDELEG])
        if cause != NO_INTERRUPT:
            return cause
    vs_enabled = virt != 0 and (priv == S.PRV_U or (csr[F.CSR_VSSTATUS] & F.VSSTATUS_SIE) != 0)
    if vs_enabled:
        return _highest_priority(pending & deleg & csr[F.CSR_HIDELEG])
    return NO_INTERRUPT


@njit(cache=True)
def mret(st, csr):
    """MRET (3.3.2, 8.6.4): privilege from MPP and V from MPV (V stays 0 when MPP is
    M), MIE from MPIE, MPIE = 1, MPP = U, MPV = 0, MPRV = 0 unless returning to M."""
    mstatus = csr[F.CSR_MSTATUS]
    mpp = (mstatus & F.MSTATUS_MPP) >> F.MSTATUS_MPP_SHIFT
    mpv = (csr[F.CSR_MSTATUSH] & F.MSTATUSH_MPV) != 0
    mie = F.MSTATUS_MIE if mstatus & F.MSTATUS_MPIE else 0
    mstatus = (mstatus & ~(F.MSTATUS_MIE | F.MSTATUS_MPP)) | mie | F.MSTATUS_MPIE
    if mpp != S.PRV_M:
        mstatus &= ~F.MSTATUS_MPRV
    csr[F.CSR_MSTATUS] = mstatus
    csr[F.CSR_MSTATUSH] &= ~F.MSTATUSH_MPV
    st[S.PRIV] = mpp
    st[S.VIRT] = 1 if mpv and mpp != S.PRV_M else 0
    st[S.PC] = csr[F.CSR_MEPC]


@njit(cache=True)
def sret(st, csr):
    """SRET (3.3.2, 8.6.4).

    In M- or HS-mode (V=0): privilege from sstatus.SPP and V from hstatus.SPV, SIE
    from SPIE, SPIE = 1, SPP = U, SPV = 0, MPRV = 0. In VS-mode (V=1) the guest
    returns within itself: privilege from vsstatus.SPP, the same stack in vsstatus,
    pc from vsepc, V stays 1.
    """
    mstatus = csr[F.CSR_MSTATUS] & ~F.MSTATUS_MPRV
    if st[S.VIRT]:
        vsstatus = csr[F.CSR_VSSTATUS]
        spp = (vsstatus & F.VSSTATUS_SPP) >> F.VSSTATUS_SPP_SHIFT
        sie = F.VSSTATUS_SIE if vsstatus & F.VSSTATUS_SPIE else 0
        vsstatus = (vsstatus & ~(F.VSSTATUS_SIE | F.VSSTATUS_SPP)) | sie
        csr[F.CSR_VSSTATUS] = vsstatus | F.VSSTATUS_SPIE
        csr[F.CSR_MSTATUS] = mstatus
        st[S.PRIV] = spp
        st[S.PC] = csr[F.CSR_VSEPC]
        return
    spp = (mstatus & F.MSTATUS_SPP) >> F.MSTATUS_SPP_SHIFT
    spv = (csr[F.CSR_HSTATUS] & F.HSTATUS_SPV) != 0
    sie = F.MSTATUS_SIE if mstatus & F.MSTATUS_SPIE else 0
    mstatus = (mstatus & ~(F.MSTATUS_SIE | F.MSTATUS_SPP)) | sie
    csr[F.CSR_MSTATUS] = mstatus | F.MSTATUS_SPIE
    csr[F.CSR_HSTATUS] &= ~F.HSTATUS_SPV
    st[S.PRIV] = spp
    st[S.VIRT] = 1 if spv else 0
    st[S.PC] = csr[F.CSR_SEPC]
