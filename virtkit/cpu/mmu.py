"""Address translation and physical memory: Sv32, two-stage translation, PMP, the TLB.

Sources: privileged spec 20211203, 4.3 "Sv32: Page-Based 32-bit Virtual-Memory
Systems" (the walk in 4.3.2 is followed step by step in ``first_stage_walk``), 8.5
"Two-Stage Address Translation" of the hypervisor extension (VS-stage from vsatp,
G-stage Sv32x4 from hgatp in ``g_stage_walk``, guest-page faults), 3.7 "Physical
Memory Protection", 3.1.6.3 (MPRV, MXR, SUM), and the CLINT layout of QEMU's virt
board (msip at 0x0, mtimecmp at 0x4000, mtime at 0xBFF8).

The TLB is a cache of successful translations, one direct-mapped array per
(context, access type), where the context is the effective privilege plus 4 when
the access is made with V=1 (see virtkit.cpu.state). Keeping fetch, load and store
apart means a store always misses until the page's D bit is set, and a page with
execute-only permission never serves a load. An S or U entry's tag carries satp.ASID
above the page number, so the entries of one address space never match another's. A
V=1 entry maps a guest virtual page straight to RAM through both stages, and its tag
carries hgatp.VMID, so one virtual machine's entries never match another's; V=0 and
V=1 entries live in different arrays and cannot mix either. Only RAM pages whose
whole 4 KiB passes the PMP check are cached, so a TLB hit needs no further check.
Everything that is not a hit takes the slow path here: walk, PMP, then RAM, the
CLINT, an MMIO exit to Python, or an access fault. Any change that could invalidate
an entry flushes all entries it could touch: SFENCE.VMA in HS-mode, SUM, MXR and PMP
the whole TLB; vsatp, vsstatus.SUM/MXR, SFENCE.VMA in VS-mode, HFENCE.VVMA and
HFENCE.GVMA the V=1 arrays. A TLB is a cache, so flushing more than the spec requires
is always allowed. Writing satp with a new ASID, or hgatp, flushes nothing: entries
of other ASIDs or VMIDs cannot match, and the spec asks for SFENCE.VMA (HFENCE.GVMA)
when the tables of one ASID (VMID) change (4.2.1, 8.2.10). Writing satp with the same
ASID flushes the whole TLB, as if the tables had changed: software that uses no ASIDs
sees its new table at once, whether it fences or not.
"""

from __future__ import annotations

import numpy as np

from virtkit.cpu import state as S
from virtkit.cpu.jitcache import njit
from virtkit.isa import causes as C
from virtkit.isa import csrs

# Constants that are passed as arguments to compiled helpers are np.int64: Numba
# compiles one copy of a helper per distinct literal int argument, np.int64 values
# are typed as plain int64 and share one.
ACCESS_FETCH = np.int64(0)
ACCESS_LOAD = np.int64(1)
ACCESS_STORE = np.int64(2)
# HLVX.HU/HLVX.WU (8.3.1): a load that needs execute permission instead of read
# permission at both stages; it faults like a load and is never cached in the TLB.
ACCESS_LOAD_X = np.int64(3)

# Access sizes in bytes.
BYTE = np.int64(1)
WORD = np.int64(4)
DOUBLEWORD = np.int64(8)

# Results of the slow-path access functions.
ACCESS_OK = 0
ACCESS_TRAP = 1  # an exception is recorded in st[EXC_CAUSE], st[EXC_TVAL]
ACCESS_MMIO = 2  # the access leaves the core: exit information is recorded
ACCESS_HTIF = 3  # a store reached HTIF's tohost word: the host must look at it

CSR_SATP = csrs.number("satp")
CSR_VSATP = csrs.number("vsatp")
CSR_HGATP = csrs.number("hgatp")
CSR_MSTATUS = csrs.number("mstatus")
CSR_VSSTATUS = csrs.number("vsstatus")
CSR_PMPCFG0 = csrs.number("pmpcfg0")
CSR_PMPADDR0 = csrs.number("pmpaddr0")
MSTATUS_SUM = csrs.mask("mstatus", "SUM")
MSTATUS_MXR = csrs.mask("mstatus", "MXR")
ATP_MODE_SHIFT = csrs.shift("satp", "MODE")  # satp, vsatp, hgatp: 1 = Sv32 / Sv32x4
ATP_PPN = csrs.mask("satp", "PPN")
HGATP_VMID_SHIFT = csrs.shift("hgatp", "VMID")
HGATP_VMID = csrs.mask("hgatp", "VMID") >> HGATP_VMID_SHIFT
SATP_ASID_SHIFT = csrs.shift("satp", "ASID")
SATP_ASID = csrs.mask("satp", "ASID") >> SATP_ASID_SHIFT
# A tag is vpn + 1 (up to 2^20), with the ID of the translation's address space above
# it: satp's ASID in the S and U contexts, the VMID in the V=1 contexts.
TLB_ID_SHIFT = 21

# The trap instruction value of a guest-page fault (8.6.3): the
# implicit reads and writes of the VS-stage walk get these pseudoinstructions; a fault
# on the explicit access of a load, store or AMO gets the transformed instruction,
# which only the core can compute (it knows the instruction): TINST_TRANSFORM asks it.
TINST_VS_READ = np.int64(0x00002000)
TINST_VS_WRITE = np.int64(0x00002020)
TINST_TRANSFORM = np.int64(-1)
NO_TINST = np.int64(0)

# Flags passed to the walks (np.int64 rather than bool literals, for the same reason).
NO_STAGE = np.int64(-1)  # no first stage: M-mode, or satp/vsatp Bare
HS_STAGE = np.int64(0)  # first_stage_walk from satp, V=0
VS_STAGE = np.int64(1)  # first_stage_walk from vsatp, V=1
G_STAGE_USER = np.int64(1)  # every G-stage access is a U-level one (8.5.1) ...
G_STAGE_SUM = np.int64(0)  # ... so SUM has nothing to do there
IMPLICIT_MXR = np.int64(0)  # MXR is for explicit loads, not the VS-stage walk's reads

# Sv32 page table entry bits (4.3.1, figure 4.18).
PTE_V = 1 << 0
PTE_R = 1 << 1
PTE_W = 1 << 2
PTE_X = 1 << 3
PTE_U = 1 << 4
PTE_G = 1 << 5
PTE_A = 1 << 6
PTE_D = 1 << 7
PAGE_SIZE = np.int64(4096)
PTE_SIZE = np.int64(4)
LEVELS = 2
SV32X4_ROOT_VPN = 0xFFF  # Sv32x4 (8.5.1): vpn[1] of a guest physical address is 12 bits

# PMP configuration bits (3.7.1).
PMP_R = 1
PMP_W = 2
PMP_X = 4
PMP_A_SHIFT = 3
PMP_L = 0x80
PMP_OFF = 0
PMP_TOR = 1
PMP_NA4 = 2
PMP_NAPOT = 3
PMP_ENTRIES = 16


def causes_by_access(fetch: int, load: int, store: int) -> np.ndarray:
    """A table of the cause of one kind of fault, indexed by the access type: fetch,
    load, store, and HLVX, which faults like a load (ACCESS_LOAD_X)."""
    return np.array([fetch, load, store, load], dtype=np.int64)


PAGE_FAULT = causes_by_access(
    C.CAUSE_FETCH_PAGE_FAULT, C.CAUSE_LOAD_PAGE_FAULT, C.CAUSE_STORE_PAGE_FAULT
)
ACCESS_FAULT = causes_by_access(C.CAUSE_FETCH_ACCESS, C.CAUSE_LOAD_ACCESS, C.CAUSE_STORE_ACCESS)
GUEST_PAGE_FAULT = causes_by_access(
    C.CAUSE_FETCH_GUEST_PAGE_FAULT, C.CAUSE_LOAD_GUEST_PAGE_FAULT, C.CAUSE_STORE_GUEST_PAGE_FAULT
)


@njit(cache=True)
def raise_exception(st, cause, tval):
    """Record an exception for the core to take once the helper returns."""
    st[S.EXC_CAUSE] = cause
    st[S.EXC_TVAL] = tval & 0xFFFFFFFF


@njit(cache=True)
def raise_guest_page_fault(st, access, va, gpa, tinst):
    """A G-stage fault (8.5.1): tval gets the guest virtual address, htval/mtval2 the
    guest physical address >> 2, htinst/mtinst ``tinst``."""
    raise_exception(st, GUEST_PAGE_FAULT[access], va)
    st[S.EXC_TVAL2] = gpa >> 2
    st[S.EXC_TINST] = tinst


# -- PMP ----------------------------------------------------------------------------


@njit(cache=True)
def pmp_cfg(csr, i):
    """The configuration byte of PMP entry i (3.7.1: four to a pmpcfg register)."""
    return (csr[CSR_PMPCFG0 + (i >> 2)] >> ((i & 3) * 8)) & 0xFF


@njit(cache=True, inline="always")  # compiled into its one caller (see jitcache)
def pmp_range(csr, i):
    """The byte range [low, high) that PMP entry i covers, or (0, 0) when OFF."""
    mode = (pmp_cfg(csr, i) >> PMP_A_SHIFT) & 3
    addr = csr[CSR_PMPADDR0 + i]
    if mode == PMP_TOR:
        low = csr[CSR_PMPADDR0 + i - 1] << 2 if i > 0 else 0
        return low, addr << 2
    if mode == PMP_NA4:
        return addr << 2, (addr << 2) + 4
    if mode == PMP_NAPOT:
        # With n trailing ones in addr, the region is 2**(n+3) bytes. addr ^ (addr + 1)
        # is those n ones and the zero above them: the mask of the offset in the region,
        # in units of 4 bytes. (A loop counting the ones unrolls into much more code.)
        mask = addr ^ (addr + 1)
        low = (addr & ~mask) << 2
        return low, low + ((mask + 1) << 2)
    return 0, 0


@njit(cache=True)
def pmp_allows(st, csr, pa, size, priv, access):
    """Whether [pa, pa+size) may be accessed (3.7.1: the lowest-numbered match wins).

    M-mode needs no check while no entry is locked.
    """
    if priv == S.PRV_M and st[S.PMP_LOCKED] == 0:
        return True
    for i in range(PMP_ENTRIES):
        low, high = pmp_range(csr, i)
        if high <= low or pa + size <= low or pa >= high:
            continue
        if pa < low or pa + size > high:
            return False  # only some bytes match: the access fails
        cfg = pmp_cfg(csr, i)
        if priv == S.PRV_M and not (cfg & PMP_L):
            return True
        if access == ACCESS_FETCH:
            return (cfg & PMP_X) != 0
        if access == ACCESS_LOAD:
            return (cfg & PMP_R) != 0
        if access == ACCESS_LOAD_X:  # HLVX needs both (8.3.1)
            return (cfg & PMP_R) != 0 and (cfg & PMP_X) != 0
        return (cfg & PMP_W) != 0
    # No entry matches: M-mode succeeds, S and U fail since PMP entries exist.
    return priv == S.PRV_M


# -- RAM ------------------------------------------------------------------------------


@njit(cache=True)
def in_ram(st, pa, size):
    return pa >= S.RAM_BASE and pa + size <= S.RAM_BASE + st[S.RAM_SIZE]


@njit(cache=True)
def ram_read(ram, pa, size):
    """The ``size`` bytes at ``pa``, little-endian: the last byte is the most
    significant, so it is read first and shifted up as the others come in. (A loop
    in which each byte goes to its own shift compiles, unrolled and vectorized for any
    size, to ten times the code, which every caller links and compiles again.)"""
    offset = pa - S.RAM_BASE
    value = np.int64(0)
    for k in range(size - 1, -1, -1):
        value = (value << 8) | ram[offset + k]
    return value


@njit(cache=True)
def ram_write(ram, pa, size, value):
    """Store the low ``size`` bytes of ``value`` at ``pa``, little-endian (one byte
    after the other, for the reason given in ``ram_read``)."""
    offset = pa - S.RAM_BASE
    for k in range(size):
        ram[offset + k] = value & 0xFF
        value >>= 8


# -- TLB ------------------------------------------------------------------------------


@njit(cache=True)
def tlb_flush(tlb_tag):
    tlb_tag[:] = 0


@njit(cache=True)
def tlb_flush_virtual(tlb_tag):
    """Forget the translations of accesses made with V=1 (VU and VS contexts)."""
    tlb_tag[S.CONTEXT_V * S.TLB_ACCESS_TYPES * S.TLB_ENTRIES :] = 0


@njit(cache=True)
def tlb_base(context, access):
    """Index of the first entry of the (context, access type) array."""
    return (context * S.TLB_ACCESS_TYPES + access) * S.TLB_ENTRIES


@njit(cache=True)
def tlb_tag_bias(csr, context):
    """What a page number is added to to make its tag in this context's arrays: 1
    (0 marks an empty entry), and above the vpn the address space's ID: satp's ASID
    in S and U (4.1.11), the current VMID with V=1 (8.2.10). M-mode does not
    translate, so its entries carry no ID."""
    if context < S.CONTEXT_V:
        if context == S.PRV_M:
            return np.int64(1)
        return 1 + (((csr[CSR_SATP] >> SATP_ASID_SHIFT) & SATP_ASID) << TLB_ID_SHIFT)
    return 1 + (((csr[CSR_HGATP] >> HGATP_VMID_SHIFT) & HGATP_VMID) << TLB_ID_SHIFT)


# -- Sv32 and two-stage translation -----------------------------------------------------


@njit(cache=True)
def leaf_allows(pte, access, user, sum_, mxr):
    """4.3.2 step 5: whether a leaf PTE grants ``access``.

    ``user`` (non-zero): the access is U-level (U-mode, VU-mode, and every G-stage
    access, 8.5.1); otherwise it is S-level, which may touch U pages only with ``sum_``,
    and never execute them. ``mxr``: execute permission also grants loads.
    """
    if access == ACCESS_FETCH:
        allowed = (pte & PTE_X) != 0
    elif access == ACCESS_LOAD:
        allowed = (pte & PTE_R) != 0 or (mxr != 0 and (pte & PTE_X) != 0)
    elif access == ACCESS_LOAD_X:
        allowed = (pte & PTE_X) != 0
    else:
        allowed = (pte & PTE_W) != 0
    if pte & PTE_U:
        if user == 0 and (access == ACCESS_FETCH or sum_ == 0):
            allowed = False
    elif user != 0:
        allowed = False
    return allowed


@njit(cache=True)
def leaf_address(pte, level, address):
    """4.3.2 step 8: the translated address; a megapage keeps vpn[0] from ``address``."""
    ppn = pte >> 10
    if level > 0:
        return ((ppn >> 10) << 22) | (address & 0x3FFFFF)
    return (ppn << 12) | (address & 0xFFF)


@njit(cache=True)
def first_stage_walk(st, csr, ram, va, access, priv, stage):
    """Translate ``va`` by the Sv32 algorithm of 4.3.2 from satp (``HS_STAGE``), or as
    the VS-stage of 8.5 from vsatp (``VS_STAGE``); returns the (guest) physical address,
    or -1.

    In the VS-stage the page tables live in guest physical memory: every PTE address
    goes through the G-stage as an implicit load (an implicit store to set A or D),
    and a G-stage fault there is reported for the original access with htval holding
    the PTE's guest physical address (8.5.1, 8.6.3). vsstatus.SUM applies instead of
    sstatus.SUM; vsstatus.MXR and HS-level MXR both make executable pages readable.

    Sets A, and D on stores, in hardware (4.3.1 allows either this or a page fault;
    this is simpler for software and is what QEMU does).
    """
    mstatus = csr[CSR_MSTATUS]
    if stage == VS_STAGE:
        atp = csr[CSR_VSATP]
        sum_ = csr[CSR_VSSTATUS] & MSTATUS_SUM
        mxr = (csr[CSR_VSSTATUS] | mstatus) & MSTATUS_MXR
    else:
        atp = csr[CSR_SATP]
        sum_ = mstatus & MSTATUS_SUM
        mxr = mstatus & MSTATUS_MXR
    # Step 1: a = satp.ppn * PAGESIZE, i = LEVELS - 1.
    a = (atp & ATP_PPN) * PAGE_SIZE
    i = LEVELS - 1
    while True:
        # Step 2: pte = the PTE at a + va.vpn[i] * PTESIZE, a PMP-checked S-mode read.
        pte_address = a + ((va >> (12 + 10 * i)) & 0x3FF) * PTE_SIZE
        pte_pa = pte_address
        if stage == VS_STAGE:
            pte_pa = g_stage_walk(
                st, csr, ram, pte_address, ACCESS_LOAD, IMPLICIT_MXR, va, access, TINST_VS_READ
            )
            if pte_pa < 0:
                return -1
        if not in_ram(st, pte_pa, PTE_SIZE) or not pmp_allows(
            st, csr, pte_pa, PTE_SIZE, S.PRV_S, ACCESS_LOAD
        ):
            raise_exception(st, ACCESS_FAULT[access], va)
            return -1
        pte = ram_read(ram, pte_pa, PTE_SIZE)
        # Step 3: invalid, or the reserved W-without-R combination.
        if not (pte & PTE_V) or (not (pte & PTE_R) and (pte & PTE_W)):
            raise_exception(st, PAGE_FAULT[access], va)
            return -1
        # Step 4: a pointer to the next level, unless this is a leaf.
        if (pte & PTE_R) or (pte & PTE_X):
            break
        i -= 1
        if i < 0:
            raise_exception(st, PAGE_FAULT[access], va)
            return -1
        a = (pte >> 10) * PAGE_SIZE
    # Step 5: a leaf; check its permissions against the access and the privilege.
    user = 1 if priv == S.PRV_U else 0
    allowed = leaf_allows(pte, access, user, sum_, mxr)
    # Step 6: a megapage's ppn[0] must be zero.
    if i > 0 and ((pte >> 10) & 0x3FF) != 0:
        allowed = False
    if not allowed:
        raise_exception(st, PAGE_FAULT[access], va)
        return -1
    # Step 7: A and D, updated in hardware.
    wanted = PTE_A | (PTE_D if access == ACCESS_STORE else 0)
    if (pte & wanted) != wanted:
        if stage == VS_STAGE:
            pte_pa = g_stage_walk(
                st, csr, ram, pte_address, ACCESS_STORE, IMPLICIT_MXR, va, access, TINST_VS_WRITE
            )
            if pte_pa < 0:
                return -1
        if not pmp_allows(st, csr, pte_pa, PTE_SIZE, S.PRV_S, ACCESS_STORE):
            raise_exception(st, ACCESS_FAULT[access], va)
            return -1
        ram_write(ram, pte_pa, PTE_SIZE, pte | wanted)
    # Step 8: the physical address.
    return leaf_address(pte, i, va)


@njit(cache=True)
def g_stage_walk(st, csr, ram, gpa, check, mxr, va, access, tinst):
    """G-stage translation (8.5.1): guest physical ``gpa`` to supervisor physical, or -1.

    hgatp.MODE Bare maps each address to itself; Sv32x4 is the Sv32 walk of 4.3.2 from
    a 16 KiB root whose vpn[1] is gpa bits 33:22, with these changes: every access is
    a U-level one, HS-level MXR is the only MXR, and a failed check is a guest-page
    fault. ``check`` is the access whose permission the leaf must grant (a load or
    store for the VS-stage walk's own accesses); ``access`` is the original one, whose
    cause is reported, with tval = ``va`` and htinst/mtinst = ``tinst``.
    """
    hgatp = csr[CSR_HGATP]
    if (hgatp >> ATP_MODE_SHIFT) == 0:
        return gpa
    # Step 1: the root's PPN is a multiple of 4 (PPN[1:0] are read-only zero in hgatp).
    a = (hgatp & ATP_PPN) * PAGE_SIZE
    i = LEVELS - 1
    while True:
        if i == LEVELS - 1:
            vpn_i = (gpa >> 22) & SV32X4_ROOT_VPN
        else:
            vpn_i = (gpa >> 12) & 0x3FF
        pte_address = a + vpn_i * PTE_SIZE
        if not in_ram(st, pte_address, PTE_SIZE) or not pmp_allows(
            st, csr, pte_address, PTE_SIZE, S.PRV_S, ACCESS_LOAD
        ):
            raise_exception(st, ACCESS_FAULT[access], va)
            return -1
        pte = ram_read(ram, pte_address, PTE_SIZE)
        if not (pte & PTE_V) or (not (pte & PTE_R) and (pte & PTE_W)):
            raise_guest_page_fault(st, access, va, gpa, tinst)
            return -1
        if (pte & PTE_R) or (pte & PTE_X):
            break
        i -= 1
        if i < 0:
            raise_guest_page_fault(st, access, va, gpa, tinst)
            return -1
        a = (pte >> 10) * PAGE_SIZE
    allowed = leaf_allows(pte, check, G_STAGE_USER, G_STAGE_SUM, mxr)
    if i > 0 and ((pte >> 10) & 0x3FF) != 0:
        allowed = False
    if not allowed:
        raise_guest_page_fault(st, access, va, gpa, tinst)
        return -1
    wanted = PTE_A | (PTE_D if check == ACCESS_STORE else 0)
    if (pte & wanted) != wanted:
        if not pmp_allows(st, csr, pte_address, PTE_SIZE, S.PRV_S, ACCESS_STORE):
            raise_exception(st, ACCESS_FAULT[access], va)
            return -1
        ram_write(ram, pte_address, PTE_SIZE, pte | wanted)
    return leaf_address(pte, i, gpa)


@njit(cache=True)
def translate(st, csr, ram, tlb_tag, tlb_delta, stats, va, size, access, context):
    """Virtual to physical for an access in ``context`` (privilege + 4 * V).

    Returns the physical address, or -1 after recording an exception. Fills the
    TLB when the page is RAM and its whole 4 KiB passes PMP.
    """
    stats[S.STAT_TLB_MISSES] += 1
    priv = context & 3
    virtual = context >= S.CONTEXT_V
    # The first stage: Sv32 from satp (V=0, below M), or the VS-stage from vsatp (V=1).
    # One call site each for the walks keeps the compiled code small.
    if virtual:
        stage = VS_STAGE if csr[CSR_VSATP] >> ATP_MODE_SHIFT else NO_STAGE
    elif priv != S.PRV_M and csr[CSR_SATP] >> ATP_MODE_SHIFT:
        stage = HS_STAGE
    else:
        stage = NO_STAGE
    pa = va
    if stage != NO_STAGE:
        pa = first_stage_walk(st, csr, ram, va, access, priv, stage)
        if pa < 0:
            return -1
    if virtual:
        # The G-stage (8.5) with the access's own type; only HS-level MXR reaches it.
        mxr = csr[CSR_MSTATUS] & MSTATUS_MXR if access == ACCESS_LOAD else 0
        tinst = NO_TINST if access == ACCESS_FETCH else TINST_TRANSFORM
        pa = g_stage_walk(st, csr, ram, pa, access, mxr, va, access, tinst)
        if pa < 0:
            return -1
    if not pmp_allows(st, csr, pa, size, priv, access):
        raise_exception(st, ACCESS_FAULT[access], va)
        return -1
    page = pa & ~0xFFF
    if (
        access != ACCESS_LOAD_X
        and in_ram(st, page, PAGE_SIZE)
        and pmp_allows(st, csr, page, PAGE_SIZE, priv, access)
    ):
        vpn = va >> 12
        index = tlb_base(context, access) + (vpn & (S.TLB_ENTRIES - 1))
        tlb_tag[index] = vpn + tlb_tag_bias(csr, context)
        tlb_delta[index] = (page - S.RAM_BASE) - (vpn << 12)
    return pa


# -- Physical accesses: RAM, CLINT, MMIO exits, access faults -------------------------


@njit(cache=True)
def mtime(st):
    return st[S.TICKS] // st[S.TICKS_PER_MTIME] + st[S.MTIME_OFFSET]


@njit(cache=True)
def clint_read(st, offset):
    """A 32-bit read of the CLINT register word at ``offset`` (aligned)."""
    if offset == S.CLINT_MSIP:
        return st[S.MSIP]
    if offset == S.CLINT_MTIMECMP:
        return st[S.MTIMECMP] & 0xFFFFFFFF
    if offset == S.CLINT_MTIMECMP + 4:
        return (st[S.MTIMECMP] >> 32) & 0xFFFFFFFF
    if offset == S.CLINT_MTIME or offset == S.CLINT_MTIME + 4:
        now = mtime(st)  # (one division in the compiled code, not one per half)
        return (now >> 32 if offset == S.CLINT_MTIME + 4 else now) & 0xFFFFFFFF
    return 0


@njit(cache=True)
def clint_write(st, offset, value):
    if offset == S.CLINT_MSIP:
        st[S.MSIP] = value & 1
    elif offset == S.CLINT_MTIMECMP:
        st[S.MTIMECMP] = (st[S.MTIMECMP] & ~0xFFFFFFFF) | value
    elif offset == S.CLINT_MTIMECMP + 4:
        st[S.MTIMECMP] = (st[S.MTIMECMP] & 0xFFFFFFFF) | (value << 32)
    elif offset == S.CLINT_MTIME or offset == S.CLINT_MTIME + 4:
        now = mtime(st)
        if offset == S.CLINT_MTIME:
            new = (now & ~0xFFFFFFFF) | value
        else:
            new = (now & 0xFFFFFFFF) | (value << 32)
        st[S.MTIME_OFFSET] += new - now


@njit(cache=True)
def in_mmio_region(st, pa, size):
    for i in range(st[S.N_MMIO_REGIONS]):
        start = st[S.MMIO_REGION_BASE + 2 * i]
        end = st[S.MMIO_REGION_BASE + 2 * i + 1]
        if pa >= start and pa + size <= end:
            return True
    return False


@njit(cache=True)
def load_physical(st, ram, pa, size, va, access):
    """Returns (status, value) for a load of ``size`` bytes at physical ``pa``."""
    if in_ram(st, pa, size):
        return ACCESS_OK, ram_read(ram, pa, size)
    if pa >= S.CLINT_BASE and pa + size <= S.CLINT_BASE + S.CLINT_SIZE:
        offset = pa - S.CLINT_BASE
        word = clint_read(st, offset & ~3)
        return ACCESS_OK, (word >> (8 * (offset & 3))) & ((1 << (8 * size)) - 1)
    if access == ACCESS_LOAD and in_mmio_region(st, pa, size):
        st[S.EXIT_ADDR] = pa
        st[S.EXIT_SIZE] = size
        return ACCESS_MMIO, 0
    raise_exception(st, ACCESS_FAULT[access], va)
    return ACCESS_TRAP, 0


@njit(cache=True)
def store_physical(st, ram, pa, size, value, va):
    """Returns the status of a store of ``size`` bytes at physical ``pa``."""
    if in_ram(st, pa, size):
        ram_write(ram, pa, size, value)
        tohost = st[S.TOHOST]
        if tohost >= 0 and pa < tohost + 4 and tohost < pa + size:
            # A write to the low word of tohost hands the 64-bit value to the host.
            st[S.EXIT_ADDR] = tohost
            st[S.EXIT_VALUE] = ram_read(ram, tohost, DOUBLEWORD)
            return ACCESS_HTIF
        return ACCESS_OK
    if pa >= S.CLINT_BASE and pa + size <= S.CLINT_BASE + S.CLINT_SIZE:
        offset = pa - S.CLINT_BASE
        word = offset & ~3
        shift = 8 * (offset & 3)
        mask = ((1 << (8 * size)) - 1) << shift
        merged = (clint_read(st, word) & ~mask) | ((value << shift) & mask)
        clint_write(st, word, merged & 0xFFFFFFFF)
        return ACCESS_OK
    if in_mmio_region(st, pa, size):
        st[S.EXIT_ADDR] = pa
        st[S.EXIT_SIZE] = size
        st[S.EXIT_VALUE] = value & ((1 << (8 * size)) - 1)
        return ACCESS_MMIO
    raise_exception(st, C.CAUSE_STORE_ACCESS, va)
    return ACCESS_TRAP
