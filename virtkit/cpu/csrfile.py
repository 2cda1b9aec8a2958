"""The CSR file: access rules, read views and write rules (WARL) of every CSR.

Privileged spec 20211203: 2.1 (who may access a CSR: bits 11:8 of its number), 2.3
(field behaviours WPRI/WLRL/WARL), 3.1 (machine-level CSRs), 3.1.10-3.1.12 (counters
and counter-enable), 3.7.1 (PMP CSRs and locking), 4.1 (supervisor views: sstatus,
sie and sip are restricted views of mstatus, mie and mip).

The CSR array holds the raw value of every CSR that is plain storage. Views and
counters are computed here on read and decomposed here on write, so the rest of the
core can read ``csr[CSR_MSTATUS]`` directly and trust that it holds legal values only.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from virtkit.cpu import mmu
from virtkit.cpu import state as S
from virtkit.isa import causes as C
from virtkit.isa import csrs

_n = csrs.number
CSR_MSTATUS = _n("mstatus")
CSR_MISA = _n("misa")
CSR_MEDELEG = _n("medeleg")
CSR_MIDELEG = _n("mideleg")
CSR_MIE = _n("mie")
CSR_MTVEC = _n("mtvec")
CSR_MCOUNTEREN = _n("mcounteren")
CSR_MENVCFG = _n("menvcfg")
CSR_MCOUNTINHIBIT = _n("mcountinhibit")
CSR_MEPC = _n("mepc")
CSR_MIP = _n("mip")
CSR_SSTATUS = _n("sstatus")
CSR_SIE = _n("sie")
CSR_STVEC = _n("stvec")
CSR_SCOUNTEREN = _n("scounteren")
CSR_SENVCFG = _n("senvcfg")
CSR_SEPC = _n("sepc")
CSR_SIP = _n("sip")
CSR_SATP = _n("satp")
CSR_CYCLE = _n("cycle")
CSR_TIME = _n("time")
CSR_INSTRET = _n("instret")
CSR_CYCLEH = _n("cycleh")
CSR_TIMEH = _n("timeh")
CSR_INSTRETH = _n("instreth")
CSR_MCYCLE = _n("mcycle")
CSR_MINSTRET = _n("minstret")
CSR_MCYCLEH = _n("mcycleh")
CSR_MINSTRETH = _n("minstreth")
CSR_PMPCFG0 = _n("pmpcfg0")
CSR_PMPADDR0 = _n("pmpaddr0")
CSR_TSELECT = _n("tselect")
CSR_TDATA1 = _n("tdata1")

# misa (3.1.1): MXL = 1 (32-bit); extensions A, I, M, S, U.
MISA_VALUE = (1 << 30) | sum(1 << (ord(ext) - ord("A")) for ext in "AIMSU")

# mstatus fields that hold state; the rest (FS, VS, XS, SD, UBE...) are read-only zero
# because there is no F, V or custom state and the hart is little-endian only.
_m = csrs.mask
MSTATUS_MIE = _m("mstatus", "MIE")
MSTATUS_SIE = _m("mstatus", "SIE")
MSTATUS_MPIE = _m("mstatus", "MPIE")
MSTATUS_SPIE = _m("mstatus", "SPIE")
MSTATUS_SPP = _m("mstatus", "SPP")
MSTATUS_MPP = _m("mstatus", "MPP")
MSTATUS_MPP_SHIFT = csrs.shift("mstatus", "MPP")
MSTATUS_SPP_SHIFT = csrs.shift("mstatus", "SPP")
MSTATUS_MPRV = _m("mstatus", "MPRV")
MSTATUS_SUM = _m("mstatus", "SUM")
MSTATUS_MXR = _m("mstatus", "MXR")
MSTATUS_TVM = _m("mstatus", "TVM")
MSTATUS_TW = _m("mstatus", "TW")
MSTATUS_TSR = _m("mstatus", "TSR")
MSTATUS_WRITABLE = _m(
    "mstatus", "SIE", "MIE", "SPIE", "MPIE", "SPP", "MPP", "MPRV", "SUM", "MXR", "TVM", "TW", "TSR"
)
SSTATUS_WRITABLE = _m("sstatus", "SIE", "SPIE", "SPP", "SUM", "MXR")
SSTATUS_VISIBLE = _m("sstatus", "SIE", "SPIE", "UBE", "SPP", "VS", "FS", "XS", "SUM", "MXR", "SD")

# Interrupt bits (3.1.9).
MIP_SSIP = _m("mip", "SSIP")
MIP_MSIP = _m("mip", "MSIP")
MIP_STIP = _m("mip", "STIP")
MIP_MTIP = _m("mip", "MTIP")
MIP_SEIP = _m("mip", "SEIP")
MIP_MEIP = _m("mip", "MEIP")
S_INTERRUPTS = MIP_SSIP | MIP_STIP | MIP_SEIP
MIE_WRITABLE = S_INTERRUPTS | MIP_MSIP | MIP_MTIP | MIP_MEIP
MIP_WRITABLE = S_INTERRUPTS  # MSIP, MTIP and MEIP come from the CLINT and the PLIC
MIDELEG_WRITABLE = S_INTERRUPTS
# medeleg (3.1.8): every exception S-mode can take may be delegated, except ECALL
# from M-mode, which is read-only zero.
MEDELEG_WRITABLE = sum(
    1 << cause
    for cause in (
        C.CAUSE_MISALIGNED_FETCH,
        C.CAUSE_FETCH_ACCESS,
        C.CAUSE_ILLEGAL_INSTRUCTION,
        C.CAUSE_BREAKPOINT,
        C.CAUSE_MISALIGNED_LOAD,
        C.CAUSE_LOAD_ACCESS,
        C.CAUSE_MISALIGNED_STORE,
        C.CAUSE_STORE_ACCESS,
        C.CAUSE_USER_ECALL,
        C.CAUSE_SUPERVISOR_ECALL,
        C.CAUSE_FETCH_PAGE_FAULT,
        C.CAUSE_LOAD_PAGE_FAULT,
        C.CAUSE_STORE_PAGE_FAULT,
    )
)
ENVCFG_WRITABLE = _m("menvcfg", "FIOM")


def _implemented() -> np.ndarray:
    """Which CSR numbers exist: the M, S and U CSRs of the table (H comes with H)."""
    exists = np.zeros(4096, dtype=np.bool_)
    for csr in csrs.CSRS:
        if csr.privilege != csrs.PRIV_H:
            exists[csr.number] = True
    return exists


CSR_EXISTS = _implemented()


@njit(cache=True)
def mip_value(st, csr):
    """mip as software sees it: writable bits, device lines, and the CLINT's bits."""
    value = csr[CSR_MIP] | st[S.EXT_IRQ]
    if st[S.MSIP]:
        value |= MIP_MSIP
    if st[S.MTIMECMP] >= 0 and mmu.mtime(st) >= st[S.MTIMECMP]:
        value |= MIP_MTIP
    return value


@njit(cache=True)
def is_counter(number):
    return (0xC00 <= number <= 0xC1F) or (0xC80 <= number <= 0xC9F)


@njit(cache=True)
def accessible(st, csr, number, priv, write):
    """Whether ``priv`` may access CSR ``number`` (else: illegal instruction)."""
    if not CSR_EXISTS[number]:
        return False
    if priv < (number >> 8) & 3:
        return False
    if write and (number >> 10) == 3:
        return False
    if number == CSR_SATP and priv == S.PRV_S and (csr[CSR_MSTATUS] & MSTATUS_TVM):
        return False
    if is_counter(number):
        bit = 1 << (number & 0x1F)
        if priv < S.PRV_M and not (csr[CSR_MCOUNTEREN] & bit):
            return False
        if priv == S.PRV_U and not (csr[CSR_SCOUNTEREN] & bit):
            return False
    return True


@njit(cache=True)
def read(st, csr, number):
    """The value software reads from CSR ``number`` (access already checked)."""
    if number == CSR_MSTATUS:
        return csr[CSR_MSTATUS]
    if number == CSR_SSTATUS:
        return csr[CSR_MSTATUS] & SSTATUS_VISIBLE
    if number == CSR_MISA:
        return MISA_VALUE
    if number == CSR_MIP:
        return mip_value(st, csr)
    if number == CSR_SIP:
        return mip_value(st, csr) & csr[CSR_MIDELEG]
    if number == CSR_SIE:
        return csr[CSR_MIE] & csr[CSR_MIDELEG]
    if number == CSR_CYCLE or number == CSR_MCYCLE:
        return (st[S.TICKS] + st[S.MCYCLE_OFFSET]) & 0xFFFFFFFF
    if number == CSR_CYCLEH or number == CSR_MCYCLEH:
        return ((st[S.TICKS] + st[S.MCYCLE_OFFSET]) >> 32) & 0xFFFFFFFF
    if number == CSR_INSTRET or number == CSR_MINSTRET:
        return (st[S.RETIRED] + st[S.MINSTRET_OFFSET]) & 0xFFFFFFFF
    if number == CSR_INSTRETH or number == CSR_MINSTRETH:
        return ((st[S.RETIRED] + st[S.MINSTRET_OFFSET]) >> 32) & 0xFFFFFFFF
    if number == CSR_TIME:
        return mmu.mtime(st) & 0xFFFFFFFF
    if number == CSR_TIMEH:
        return (mmu.mtime(st) >> 32) & 0xFFFFFFFF
    return csr[number]


@njit(cache=True)
def _set_low(value64, low):
    return (value64 & ~0xFFFFFFFF) | low


@njit(cache=True)
def _set_high(value64, high):
    return (value64 & 0xFFFFFFFF) | (high << 32)


@njit(cache=True)
def _write_pmpcfg(st, csr, number, value):
    old = csr[number]
    new = 0
    for byte in range(4):
        shift = 8 * byte
        old_cfg = (old >> shift) & 0xFF
        cfg = (value >> shift) & 0xFF
        if old_cfg & mmu.PMP_L:
            cfg = old_cfg  # a locked entry ignores writes until reset (3.7.1.2)
        else:
            cfg &= 0x9F  # bits 6:5 are reserved, read as zero
            if (cfg & mmu.PMP_W) and not (cfg & mmu.PMP_R):
                cfg &= ~mmu.PMP_W  # W without R is reserved: keep a legal value
        new |= cfg << shift
    csr[number] = new
    locked = 0
    for i in range(4):
        if csr[CSR_PMPCFG0 + i] & 0x80808080:
            locked = 1
    st[S.PMP_LOCKED] = locked


@njit(cache=True)
def _pmp_entry_locked(csr, entry):
    return (csr[CSR_PMPCFG0 + (entry >> 2)] >> ((entry & 3) * 8)) & mmu.PMP_L


@njit(cache=True)
def _pmp_entry_is_tor(csr, entry):
    cfg = (csr[CSR_PMPCFG0 + (entry >> 2)] >> ((entry & 3) * 8)) & 0xFF
    return ((cfg >> mmu.PMP_A_SHIFT) & 3) == mmu.PMP_TOR


@njit(cache=True)
def write(st, csr, tlb_tag, number, value):
    """Write ``value`` to CSR ``number`` by its WARL rules (access already checked)."""
    value &= 0xFFFFFFFF
    if number == CSR_MSTATUS or number == CSR_SSTATUS:
        writable = MSTATUS_WRITABLE if number == CSR_MSTATUS else SSTATUS_WRITABLE
        old = csr[CSR_MSTATUS]
        new = (old & ~writable) | (value & writable)
        if ((new & MSTATUS_MPP) >> MSTATUS_MPP_SHIFT) == 2:
            new = (new & ~MSTATUS_MPP) | (old & MSTATUS_MPP)  # 2 is reserved: keep old
        csr[CSR_MSTATUS] = new
        if (old ^ new) & (MSTATUS_SUM | MSTATUS_MXR):
            mmu.tlb_flush(tlb_tag)
    elif number == CSR_MISA:
        pass  # misa is WARL; this hart cannot turn extensions off
    elif number == CSR_MEDELEG:
        csr[number] = value & MEDELEG_WRITABLE
    elif number == CSR_MIDELEG:
        csr[number] = value & MIDELEG_WRITABLE
    elif number == CSR_MIE:
        csr[number] = value & MIE_WRITABLE
    elif number == CSR_MIP:
        csr[number] = value & MIP_WRITABLE
    elif number == CSR_SIE:
        mask = csr[CSR_MIDELEG] & S_INTERRUPTS
        csr[CSR_MIE] = (csr[CSR_MIE] & ~mask) | (value & mask)
    elif number == CSR_SIP:
        mask = csr[CSR_MIDELEG] & MIP_SSIP  # only SSIP is writable through sip (4.1.3)
        csr[CSR_MIP] = (csr[CSR_MIP] & ~mask) | (value & mask)
    elif number == CSR_MTVEC or number == CSR_STVEC:
        # MODE 0 (direct) and 1 (vectored) are legal; 2 and 3 are reserved.
        csr[number] = value if (value & 3) < 2 else value & ~3
    elif number == CSR_MEPC or number == CSR_SEPC:
        csr[number] = value & ~3  # IALIGN = 32: bits 1:0 are always zero
    elif number == CSR_SATP:
        csr[number] = value
        mmu.tlb_flush(tlb_tag)
    elif number == CSR_MENVCFG or number == CSR_SENVCFG:
        csr[number] = value & ENVCFG_WRITABLE
    elif number == CSR_MCYCLE:
        now = st[S.TICKS] + st[S.MCYCLE_OFFSET]
        st[S.MCYCLE_OFFSET] += _set_low(now, value) - now
    elif number == CSR_MCYCLEH:
        now = st[S.TICKS] + st[S.MCYCLE_OFFSET]
        st[S.MCYCLE_OFFSET] += _set_high(now, value) - now
    elif number == CSR_MINSTRET:
        now = st[S.RETIRED] + st[S.MINSTRET_OFFSET]
        st[S.MINSTRET_OFFSET] += _set_low(now, value) - now
    elif number == CSR_MINSTRETH:
        now = st[S.RETIRED] + st[S.MINSTRET_OFFSET]
        st[S.MINSTRET_OFFSET] += _set_high(now, value) - now
    elif CSR_PMPCFG0 <= number < CSR_PMPCFG0 + 4:
        _write_pmpcfg(st, csr, number, value)
        mmu.tlb_flush(tlb_tag)
    elif CSR_PMPADDR0 <= number < CSR_PMPADDR0 + 16:
        entry = number - CSR_PMPADDR0
        locked_above = entry + 1 < 16 and _pmp_entry_locked(csr, entry + 1)
        if not _pmp_entry_locked(csr, entry) and not (
            locked_above and _pmp_entry_is_tor(csr, entry + 1)
        ):
            csr[number] = value
        mmu.tlb_flush(tlb_tag)
    elif number == CSR_TSELECT:
        csr[number] = 0  # no triggers: tselect can only select trigger 0
    elif number == CSR_TDATA1 or number == CSR_MCOUNTINHIBIT:
        pass  # tdata1.type = 0 (no trigger); counters are never inhibited
    elif (0xB03 <= number <= 0xB1F) or (0xB83 <= number <= 0xB9F) or (0x323 <= number <= 0x33F):
        pass  # hardware performance monitor counters and events are hardwired to zero
    else:
        csr[number] = value
