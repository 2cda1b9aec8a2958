"""The CSR file: access rules, read views and write rules (WARL) of every CSR.

Privileged spec 20211203: 2.1 (who may access a CSR: bits 11:8 of its number), 2.3
(field behaviours WPRI/WLRL/WARL), 3.1 (machine-level CSRs), 3.1.10-3.1.12 (counters
and counter-enable), 3.7.1 (PMP CSRs and locking), 4.1 (supervisor views: sstatus,
sie and sip are restricted views of mstatus, mie and mip), and chapter 8, the
hypervisor extension, version 1.0: 8.2 (hypervisor and VS CSRs; with V=1 the
supervisor CSR numbers reach the VS CSRs), 8.4 (mstatush.MPV/GVA, mideleg, mip/mie,
mtval2, mtinst) and 8.6.1 (which accesses raise a virtual-instruction exception).

The CSR array holds the raw value of every CSR that is plain storage. Views and
counters are computed here on read and decomposed here on write, so the rest of the
core can read ``csr[CSR_MSTATUS]`` directly and trust that it holds legal values only.

Choices the spec leaves to an implementation: GEILEN = 0 (no guest external
interrupts, so hgeip, hgeie and hstatus.VGEIN are read-only zero), VMIDLEN = 7 (the
most Sv32x4 allows), little-endian only (hstatus.VSBE and vsstatus.UBE are zero), and
misa.H hardwired to 1.
"""

from __future__ import annotations

import numpy as np

from virtkit.cpu import mmu
from virtkit.cpu import state as S
from virtkit.cpu.jitcache import njit
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
CSR_MEPC = _n("mepc")
CSR_MIP = _n("mip")
CSR_SSTATUS = _n("sstatus")
CSR_SIE = _n("sie")
CSR_STVEC = _n("stvec")
CSR_SCOUNTEREN = _n("scounteren")
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
CSR_MSTATUSH = _n("mstatush")
CSR_MTVAL2 = _n("mtval2")
CSR_MTINST = _n("mtinst")
CSR_HSTATUS = _n("hstatus")
CSR_HEDELEG = _n("hedeleg")
CSR_HIDELEG = _n("hideleg")
CSR_HIE = _n("hie")
CSR_HTIMEDELTA = _n("htimedelta")
CSR_HTIMEDELTAH = _n("htimedeltah")
CSR_HCOUNTEREN = _n("hcounteren")
CSR_HTVAL = _n("htval")
CSR_HIP = _n("hip")
CSR_HVIP = _n("hvip")
CSR_HTINST = _n("htinst")
CSR_HGATP = _n("hgatp")
CSR_VSSTATUS = _n("vsstatus")
CSR_VSIE = _n("vsie")
CSR_VSTVEC = _n("vstvec")
CSR_VSEPC = _n("vsepc")
CSR_VSCAUSE = _n("vscause")
CSR_VSTVAL = _n("vstval")
CSR_VSIP = _n("vsip")
CSR_VSATP = _n("vsatp")

# misa (3.1.1): MXL = 1 (32-bit); extensions A, H, I, M, S, U.
MISA_VALUE = (1 << 30) | sum(1 << (ord(ext) - ord("A")) for ext in "AHIMSU")

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
VSSTATUS_WRITABLE = _m("vsstatus", "SIE", "SPIE", "SPP", "SUM", "MXR")
VSSTATUS_SIE = _m("vsstatus", "SIE")
VSSTATUS_SPIE = _m("vsstatus", "SPIE")
VSSTATUS_SPP = _m("vsstatus", "SPP")
VSSTATUS_SPP_SHIFT = csrs.shift("vsstatus", "SPP")
MSTATUSH_MPV = _m("mstatush", "MPV")
MSTATUSH_GVA = _m("mstatush", "GVA")
MSTATUSH_WRITABLE = MSTATUSH_MPV | MSTATUSH_GVA  # SBE and MBE: little-endian only
HSTATUS_GVA = _m("hstatus", "GVA")
HSTATUS_SPV = _m("hstatus", "SPV")
HSTATUS_SPVP = _m("hstatus", "SPVP")
HSTATUS_SPVP_SHIFT = csrs.shift("hstatus", "SPVP")
HSTATUS_HU = _m("hstatus", "HU")
HSTATUS_VTVM = _m("hstatus", "VTVM")
HSTATUS_VTW = _m("hstatus", "VTW")
HSTATUS_VTSR = _m("hstatus", "VTSR")
# VSBE (little-endian only) and VGEIN (GEILEN = 0) are read-only zero.
HSTATUS_WRITABLE = _m("hstatus", "GVA", "SPV", "SPVP", "HU", "VTVM", "VTW", "VTSR")
# hgatp (8.2.10): MODE, a 7-bit VMID, and a PPN whose two low bits are read-only zero
# because the Sv32x4 root table is 16 KiB and 16 KiB aligned.
HGATP_WRITABLE = _m("hgatp", "MODE", "VMID") | (_m("hgatp", "PPN") & ~3)

# Interrupt bits (3.1.9).
MIP_SSIP = _m("mip", "SSIP")
MIP_MSIP = _m("mip", "MSIP")
MIP_STIP = _m("mip", "STIP")
MIP_MTIP = _m("mip", "MTIP")
MIP_SEIP = _m("mip", "SEIP")
MIP_MEIP = _m("mip", "MEIP")
MIP_VSSIP = _m("mip", "VSSIP")
MIP_VSTIP = _m("mip", "VSTIP")
MIP_VSEIP = _m("mip", "VSEIP")
MIP_SGEIP = _m("mip", "SGEIP")
S_INTERRUPTS = MIP_SSIP | MIP_STIP | MIP_SEIP
VS_INTERRUPTS = MIP_VSSIP | MIP_VSTIP | MIP_VSEIP
# hip/hie (8.2.3) hold the VS-level bits and SGEIP, which stays zero with GEILEN = 0.
HIP_BITS = VS_INTERRUPTS | MIP_SGEIP
MIE_WRITABLE = S_INTERRUPTS | VS_INTERRUPTS | MIP_MSIP | MIP_MTIP | MIP_MEIP
# What the CSR array's mip holds: MSIP, MTIP and MEIP come from the CLINT and the PLIC,
# the VS-level bits from hvip (mip.VSSIP is an alias of hvip.VSSIP, 8.4.3).
MIP_WRITABLE = S_INTERRUPTS
MIDELEG_WRITABLE = S_INTERRUPTS
# 8.4.2: VS-level interrupts are always delegated past M-mode (read-only one).
MIDELEG_READ_ONLY_ONE = VS_INTERRUPTS
HIDELEG_WRITABLE = VS_INTERRUPTS  # 8.2.2: the S-level bits are read-only zero
# medeleg (3.1.8, 8.6.2): every exception HS-mode can take may be delegated, except
# ECALL from M-mode, which is read-only zero.
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
        C.CAUSE_VIRTUAL_SUPERVISOR_ECALL,
        C.CAUSE_FETCH_PAGE_FAULT,
        C.CAUSE_LOAD_PAGE_FAULT,
        C.CAUSE_STORE_PAGE_FAULT,
        C.CAUSE_FETCH_GUEST_PAGE_FAULT,
        C.CAUSE_LOAD_GUEST_PAGE_FAULT,
        C.CAUSE_VIRTUAL_INSTRUCTION,
        C.CAUSE_STORE_GUEST_PAGE_FAULT,
    )
)
# hedeleg (8.2.2): the exceptions a VS-mode guest may take itself. ECALL
# from HS, VS and M, guest-page faults and virtual instructions are read-only zero:
# they belong to the hypervisor.
HEDELEG_WRITABLE = sum(
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
        C.CAUSE_FETCH_PAGE_FAULT,
        C.CAUSE_LOAD_PAGE_FAULT,
        C.CAUSE_STORE_PAGE_FAULT,
    )
)
ENVCFG_WRITABLE = _m("menvcfg", "FIOM")

# With V=1 the supervisor CSR numbers reach the VS CSRs (8.2): VS_ALIAS[number] is the
# CSR an instruction in VS- or VU-mode really accesses. scounteren and senvcfg have no
# VS copy and keep their own numbers.
_VS_CSRS = ("sstatus", "sie", "stvec", "sscratch", "sepc", "scause", "stval", "sip", "satp")
VS_ALIAS = np.arange(4096, dtype=np.int64)
for _name in _VS_CSRS:
    VS_ALIAS[_n(_name)] = _n("vs" + _name[1:])


def _warl_tables() -> tuple[np.ndarray, np.ndarray]:
    """WRITABLE[n] and READ_ONLY_ONE[n]: a write stores (value & WRITABLE) | READ_ONLY_ONE.

    This is the WARL rule of every CSR that is plain storage with fixed legal bits;
    ``write`` handles the views, counters and CSRs with side effects itself. By
    default all 32 bits are writable.
    """
    writable = np.full(4096, 0xFFFFFFFF, dtype=np.int64)
    ones = np.zeros(4096, dtype=np.int64)
    for name, mask in (
        ("misa", 0),  # WARL; this hart cannot turn extensions off (read gives MISA_VALUE)
        ("mstatush", MSTATUSH_WRITABLE),
        ("hstatus", HSTATUS_WRITABLE),
        ("medeleg", MEDELEG_WRITABLE),
        ("mideleg", MIDELEG_WRITABLE),
        ("hedeleg", HEDELEG_WRITABLE),
        ("hideleg", HIDELEG_WRITABLE),
        ("mie", MIE_WRITABLE),
        ("hvip", VS_INTERRUPTS),
        ("hgatp", HGATP_WRITABLE),  # no flush: V=1 TLB tags carry the VMID (see mmu)
        ("hgeie", 0),  # GEILEN = 0
        ("hgeip", 0),
        ("menvcfg", ENVCFG_WRITABLE),
        ("senvcfg", ENVCFG_WRITABLE),
        ("henvcfg", ENVCFG_WRITABLE),
        ("henvcfgh", 0),  # PBMTE, STCE and the other upper fields are not implemented
        ("mepc", ~3 & 0xFFFFFFFF),  # IALIGN = 32: bits 1:0 are always zero
        ("sepc", ~3 & 0xFFFFFFFF),
        ("vsepc", ~3 & 0xFFFFFFFF),
        ("tselect", 0),  # no triggers: tselect can only select trigger 0
        ("tdata1", 0),  # tdata1.type = 0: no trigger
        ("mcountinhibit", 0),  # counters are never inhibited
    ):
        writable[_n(name)] = mask
    ones[_n("mideleg")] = MIDELEG_READ_ONLY_ONE
    # Hardware performance monitor counters and events are hardwired to zero.
    for n in range(3, 32):
        for name in (f"mhpmcounter{n}", f"mhpmcounter{n}h", f"mhpmevent{n}"):
            writable[_n(name)] = 0
    return writable, ones


WRITABLE, READ_ONLY_ONE = _warl_tables()

# Results of check_access.
CSR_OK = 0
CSR_ILLEGAL = 1  # illegal-instruction exception
CSR_VIRTUAL = 2  # virtual-instruction exception (8.6.1)


def _implemented() -> np.ndarray:
    """Which CSR numbers exist: every CSR of the table (M, HS, VS and U levels)."""
    exists = np.zeros(4096, dtype=np.bool_)
    for csr in csrs.CSRS:
        exists[csr.number] = True
    return exists


CSR_EXISTS = _implemented()


@njit(cache=True)
def mip_value(st, csr):
    """mip as software sees it: writable bits, device lines, the CLINT's bits, and
    the VS-level interrupts the hypervisor injects through hvip (8.2.3)."""
    value = csr[CSR_MIP] | csr[CSR_HVIP] | st[S.EXT_IRQ]
    if st[S.MSIP]:
        value |= MIP_MSIP
    if st[S.MTIMECMP] >= 0 and mmu.mtime(st) >= st[S.MTIMECMP]:
        value |= MIP_MTIP
    return value


@njit(cache=True)
def check_access(st, csr, number, priv, virt, write):
    """Whether ``priv`` (with V = ``virt``) may access CSR ``number``: CSR_OK, or the
    exception it raises, CSR_ILLEGAL or CSR_VIRTUAL.

    With V=1 the rule of 8.6.1 applies: an access that HS-mode could make (taking
    mstatus.TVM as 0) but VS- or VU-mode may not is a virtual-instruction exception;
    one that HS-mode could not make either (M-level CSRs, writes to read-only CSRs,
    counters mcounteren disables) stays an illegal-instruction exception.
    """
    if not CSR_EXISTS[number]:
        return CSR_ILLEGAL
    if write and (number >> 10) == 3:
        return CSR_ILLEGAL  # read-only in every mode
    level = (number >> 8) & 3  # 0 U, 1 S, 2 hypervisor and VS, 3 M (2.1)
    if priv == S.PRV_M:
        return CSR_OK
    if level == csrs.PRIV_M:
        return CSR_ILLEGAL
    if (0xC00 <= number <= 0xC1F) or (0xC80 <= number <= 0xC9F):  # the counters
        bit = 1 << (number & 0x1F)
        if not (csr[CSR_MCOUNTEREN] & bit):
            return CSR_ILLEGAL
        if virt:
            if not (csr[CSR_HCOUNTEREN] & bit):
                return CSR_VIRTUAL
            if priv == S.PRV_U and not (csr[CSR_SCOUNTEREN] & bit):
                return CSR_VIRTUAL
            return CSR_OK
        if priv == S.PRV_U and not (csr[CSR_SCOUNTEREN] & bit):
            return CSR_ILLEGAL
        return CSR_OK
    if level == csrs.PRIV_U:
        return CSR_OK
    if virt:
        # HS-qualified from here on: supervisor, hypervisor and VS CSRs.
        if priv == S.PRV_U or level == csrs.PRIV_H:
            return CSR_VIRTUAL
        if number == CSR_SATP and (csr[CSR_HSTATUS] & HSTATUS_VTVM):
            return CSR_VIRTUAL
        return CSR_OK
    if priv == S.PRV_U:
        return CSR_ILLEGAL
    if (number == CSR_SATP or number == CSR_HGATP) and (csr[CSR_MSTATUS] & MSTATUS_TVM):
        return CSR_ILLEGAL  # mstatus.TVM traps HS-mode's satp and hgatp (3.1.6.5, 8.4.1)
    return CSR_OK


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
        return mip_value(st, csr) & csr[CSR_MIDELEG] & S_INTERRUPTS
    if number == CSR_SIE:
        return csr[CSR_MIE] & csr[CSR_MIDELEG] & S_INTERRUPTS
    if number == CSR_HIP:
        return mip_value(st, csr) & HIP_BITS
    if number == CSR_HIE:
        return csr[CSR_MIE] & HIP_BITS
    # vsip and vsie (8.2.12): the VS-level bits hideleg delegates, one place lower,
    # where a guest expects SSIP, STIP and SEIP.
    if number == CSR_VSIP:
        return (mip_value(st, csr) & csr[CSR_HIDELEG] & VS_INTERRUPTS) >> 1
    if number == CSR_VSIE:
        return (csr[CSR_MIE] & csr[CSR_HIDELEG] & VS_INTERRUPTS) >> 1
    if number == CSR_CYCLE or number == CSR_MCYCLE:
        return (st[S.TICKS] + st[S.MCYCLE_OFFSET]) & 0xFFFFFFFF
    if number == CSR_CYCLEH or number == CSR_MCYCLEH:
        return ((st[S.TICKS] + st[S.MCYCLE_OFFSET]) >> 32) & 0xFFFFFFFF
    if number == CSR_INSTRET or number == CSR_MINSTRET:
        return (st[S.RETIRED] + st[S.MINSTRET_OFFSET]) & 0xFFFFFFFF
    if number == CSR_INSTRETH or number == CSR_MINSTRETH:
        return ((st[S.RETIRED] + st[S.MINSTRET_OFFSET]) >> 32) & 0xFFFFFFFF
    if number == CSR_TIME or number == CSR_TIMEH:
        # mtime, plus the 64-bit htimedelta when read with V=1 (8.2.7). Only the low
        # 64 bits matter, so int64 wrap-around is harmless.
        time = mmu.mtime(st)
        if st[S.VIRT]:
            time += (csr[CSR_HTIMEDELTAH] << 32) | csr[CSR_HTIMEDELTA]
        return (time >> 32 if number == CSR_TIMEH else time) & 0xFFFFFFFF
    return csr[number]


@njit(cache=True, inline="always")  # compiled into its one caller (see jitcache)
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
    elif number == CSR_VSSTATUS:
        old = csr[CSR_VSSTATUS]
        new = (old & ~VSSTATUS_WRITABLE) | (value & VSSTATUS_WRITABLE)
        csr[CSR_VSSTATUS] = new
        if (old ^ new) & (MSTATUS_SUM | MSTATUS_MXR):
            mmu.tlb_flush_virtual(tlb_tag)
    elif number == CSR_HIE:
        csr[CSR_MIE] = (csr[CSR_MIE] & ~VS_INTERRUPTS) | (value & VS_INTERRUPTS)
    elif number == CSR_MIP:
        csr[number] = value & MIP_WRITABLE
        csr[CSR_HVIP] = (csr[CSR_HVIP] & ~MIP_VSSIP) | (value & MIP_VSSIP)
    elif number == CSR_HIP:
        csr[CSR_HVIP] = (csr[CSR_HVIP] & ~MIP_VSSIP) | (value & MIP_VSSIP)
    elif number == CSR_SIE:
        mask = csr[CSR_MIDELEG] & S_INTERRUPTS
        csr[CSR_MIE] = (csr[CSR_MIE] & ~mask) | (value & mask)
    elif number == CSR_SIP:
        mask = csr[CSR_MIDELEG] & MIP_SSIP  # only SSIP is writable through sip (4.1.3)
        csr[CSR_MIP] = (csr[CSR_MIP] & ~mask) | (value & mask)
    elif number == CSR_VSIE:
        mask = csr[CSR_HIDELEG] & VS_INTERRUPTS
        csr[CSR_MIE] = (csr[CSR_MIE] & ~mask) | ((value << 1) & mask)
    elif number == CSR_VSIP:
        mask = csr[CSR_HIDELEG] & MIP_VSSIP  # vsip.SSIP is hvip.VSSIP (8.2.12)
        csr[CSR_HVIP] = (csr[CSR_HVIP] & ~mask) | ((value << 1) & mask)
    elif number == CSR_MTVEC or number == CSR_STVEC or number == CSR_VSTVEC:
        # MODE 0 (direct) and 1 (vectored) are legal; 2 and 3 are reserved.
        csr[number] = value if (value & 3) < 2 else value & ~3
    elif number == CSR_SATP:
        # TLB entries carry satp's ASID (mmu.tlb_tag_bias), so a switch to another
        # address space needs no flush: what ASIDs are for (4.1.11). A write that keeps
        # the ASID flushes, so software that uses no ASIDs sees the new table at once.
        old = csr[number]
        csr[number] = value
        if ((old ^ value) >> mmu.SATP_ASID_SHIFT) & mmu.SATP_ASID == 0:
            mmu.tlb_flush(tlb_tag)
    elif number == CSR_VSATP:
        csr[number] = value
        mmu.tlb_flush_virtual(tlb_tag)
    # The 64-bit counters: the written half replaces that half of the current count.
    elif number == CSR_MCYCLE:
        now = st[S.TICKS] + st[S.MCYCLE_OFFSET]
        st[S.MCYCLE_OFFSET] += ((now & ~0xFFFFFFFF) | value) - now
    elif number == CSR_MCYCLEH:
        now = st[S.TICKS] + st[S.MCYCLE_OFFSET]
        st[S.MCYCLE_OFFSET] += ((now & 0xFFFFFFFF) | (value << 32)) - now
    elif number == CSR_MINSTRET:
        now = st[S.RETIRED] + st[S.MINSTRET_OFFSET]
        st[S.MINSTRET_OFFSET] += ((now & ~0xFFFFFFFF) | value) - now
    elif number == CSR_MINSTRETH:
        now = st[S.RETIRED] + st[S.MINSTRET_OFFSET]
        st[S.MINSTRET_OFFSET] += ((now & 0xFFFFFFFF) | (value << 32)) - now
    elif CSR_PMPCFG0 <= number < CSR_PMPCFG0 + 4:
        _write_pmpcfg(st, csr, number, value)
        mmu.tlb_flush(tlb_tag)
    elif CSR_PMPADDR0 <= number < CSR_PMPADDR0 + 16:
        # A locked entry's address ignores writes, and so does the address below a
        # locked TOR entry, which is that entry's lower bound (3.7.1.2).
        entry = number - CSR_PMPADDR0
        above = mmu.pmp_cfg(csr, entry + 1) if entry + 1 < 16 else 0
        locked_tor_above = (above & mmu.PMP_L) != 0 and (
            (above >> mmu.PMP_A_SHIFT) & 3
        ) == mmu.PMP_TOR
        if (mmu.pmp_cfg(csr, entry) & mmu.PMP_L) == 0 and not locked_tor_above:
            csr[number] = value
        mmu.tlb_flush(tlb_tag)
    else:
        csr[number] = (value & WRITABLE[number]) | READ_ONLY_ONE[number]
