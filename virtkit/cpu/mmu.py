"""Address translation and physical memory: Sv32, PMP, the TLB, RAM, the CLINT.

Sources: privileged spec 20211203, 4.3 "Sv32: Page-Based 32-bit Virtual-Memory
Systems" (the walk in 4.3.2 is followed step by step in ``sv32_walk``), 3.7
"Physical Memory Protection", 3.1.6.3 (MPRV, MXR, SUM), and the CLINT layout of QEMU's
virt board (msip at 0x0, mtimecmp at 0x4000, mtime at 0xBFF8).

The TLB is a cache of successful translations, one direct-mapped array per
(context, access type), where the context is the effective privilege. Keeping fetch,
load and store apart means a store always misses until the page's D bit is set, and a
page with execute-only permission never serves a load. Only RAM pages whose whole 4 KiB
passes the PMP check are cached, so a TLB hit needs no further check. Everything that
is not a hit takes the slow path here: walk, PMP, then RAM, the CLINT, an MMIO exit
to Python, or an access fault. Any change that could invalidate an entry (satp,
SFENCE.VMA, SUM, MXR, PMP) flushes the whole TLB: a TLB is a cache, so flushing more
than the spec requires is always allowed.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from virtkit.cpu import state as S
from virtkit.isa import causes as C
from virtkit.isa import csrs

# Constants that are passed as arguments to compiled helpers are np.int64: Numba
# compiles one copy of a helper per distinct literal int argument, np.int64 values
# are typed as plain int64 and share one.
ACCESS_FETCH = np.int64(0)
ACCESS_LOAD = np.int64(1)
ACCESS_STORE = np.int64(2)

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
CSR_MSTATUS = csrs.number("mstatus")
CSR_PMPCFG0 = csrs.number("pmpcfg0")
CSR_PMPADDR0 = csrs.number("pmpaddr0")
MSTATUS_SUM = csrs.mask("mstatus", "SUM")
MSTATUS_MXR = csrs.mask("mstatus", "MXR")

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


@njit(cache=True)
def page_fault(access):
    if access == ACCESS_FETCH:
        return C.CAUSE_FETCH_PAGE_FAULT
    if access == ACCESS_LOAD:
        return C.CAUSE_LOAD_PAGE_FAULT
    return C.CAUSE_STORE_PAGE_FAULT


@njit(cache=True)
def access_fault(access):
    if access == ACCESS_FETCH:
        return C.CAUSE_FETCH_ACCESS
    if access == ACCESS_LOAD:
        return C.CAUSE_LOAD_ACCESS
    return C.CAUSE_STORE_ACCESS


@njit(cache=True)
def raise_exception(st, cause, tval):
    """Record an exception for the core to take once the helper returns."""
    st[S.EXC_CAUSE] = cause
    st[S.EXC_TVAL] = tval & 0xFFFFFFFF


# -- PMP ----------------------------------------------------------------------------


@njit(cache=True)
def pmp_range(csr, i):
    """The byte range [low, high) that PMP entry i covers, or (0, 0) when OFF."""
    cfg = (csr[CSR_PMPCFG0 + (i >> 2)] >> ((i & 3) * 8)) & 0xFF
    mode = (cfg >> PMP_A_SHIFT) & 3
    addr = csr[CSR_PMPADDR0 + i]
    if mode == PMP_TOR:
        low = csr[CSR_PMPADDR0 + i - 1] << 2 if i > 0 else 0
        return low, addr << 2
    if mode == PMP_NA4:
        return addr << 2, (addr << 2) + 4
    if mode == PMP_NAPOT:
        ones = 0
        while ones < 32 and (addr >> ones) & 1:
            ones += 1
        size = 1 << (ones + 3)
        low = (addr & ~((1 << (ones + 1)) - 1)) << 2
        return low, low + size
    return 0, 0


@njit(cache=True)
def pmp_check(csr, pa, size, priv, access):
    """Whether [pa, pa+size) may be accessed (3.7.1: the lowest-numbered match wins)."""
    for i in range(PMP_ENTRIES):
        cfg = (csr[CSR_PMPCFG0 + (i >> 2)] >> ((i & 3) * 8)) & 0xFF
        low, high = pmp_range(csr, i)
        if high <= low or pa + size <= low or pa >= high:
            continue
        if pa < low or pa + size > high:
            return False  # only some bytes match: the access fails
        if priv == S.PRV_M and not (cfg & PMP_L):
            return True
        if access == ACCESS_FETCH:
            return (cfg & PMP_X) != 0
        if access == ACCESS_LOAD:
            return (cfg & PMP_R) != 0
        return (cfg & PMP_W) != 0
    # No entry matches: M-mode succeeds, S and U fail since PMP entries exist.
    return priv == S.PRV_M


@njit(cache=True)
def pmp_allows(st, csr, pa, size, priv, access):
    if priv == S.PRV_M and st[S.PMP_LOCKED] == 0:
        return True
    return pmp_check(csr, pa, size, priv, access)


# -- RAM ------------------------------------------------------------------------------


@njit(cache=True)
def in_ram(st, pa, size):
    return pa >= S.RAM_BASE and pa + size <= S.RAM_BASE + st[S.RAM_SIZE]


@njit(cache=True)
def ram_read(ram, pa, size):
    offset = pa - S.RAM_BASE
    value = 0
    for k in range(size):
        value |= np.int64(ram[offset + k]) << (8 * k)
    return value


@njit(cache=True)
def ram_write(ram, pa, size, value):
    offset = pa - S.RAM_BASE
    for k in range(size):
        ram[offset + k] = (value >> (8 * k)) & 0xFF


# -- TLB ------------------------------------------------------------------------------


@njit(cache=True)
def tlb_flush(tlb_tag):
    tlb_tag[:] = 0


@njit(cache=True)
def tlb_base(context, access):
    """Index of the first entry of the (context, access type) array."""
    return (context * S.TLB_ACCESS_TYPES + access) * S.TLB_ENTRIES


# -- Sv32 -----------------------------------------------------------------------------


@njit(cache=True)
def sv32_walk(st, csr, ram, va, access, priv):
    """Translate ``va`` by the Sv32 algorithm of 4.3.2; returns the physical address.

    Returns -1 after recording a page fault or access fault. Sets A, and D on
    stores, in hardware (4.3.1 allows either this or a page fault; this is simpler
    for software and is what QEMU does).
    """
    satp = csr[CSR_SATP]
    mstatus = csr[CSR_MSTATUS]
    # Step 1: a = satp.ppn * PAGESIZE, i = LEVELS - 1.
    a = (satp & 0x3FFFFF) * PAGE_SIZE
    i = LEVELS - 1
    while True:
        # Step 2: pte = the PTE at a + va.vpn[i] * PTESIZE, a PMP-checked S-mode read.
        vpn_i = (va >> (12 + 10 * i)) & 0x3FF
        pte_addr = a + vpn_i * PTE_SIZE
        if not in_ram(st, pte_addr, PTE_SIZE) or not pmp_allows(
            st, csr, pte_addr, PTE_SIZE, S.PRV_S, ACCESS_LOAD
        ):
            raise_exception(st, access_fault(access), va)
            return -1
        pte = ram_read(ram, pte_addr, PTE_SIZE)
        # Step 3: invalid, or the reserved W-without-R combination.
        if not (pte & PTE_V) or (not (pte & PTE_R) and (pte & PTE_W)):
            raise_exception(st, page_fault(access), va)
            return -1
        # Step 4: a pointer to the next level, unless this is a leaf.
        if (pte & PTE_R) or (pte & PTE_X):
            break
        i -= 1
        if i < 0:
            raise_exception(st, page_fault(access), va)
            return -1
        a = (pte >> 10) * PAGE_SIZE
    # Step 5: a leaf; check its permissions against the access and the privilege.
    allowed = True
    if access == ACCESS_FETCH:
        allowed = (pte & PTE_X) != 0
    elif access == ACCESS_LOAD:
        allowed = (pte & PTE_R) != 0 or ((mstatus & MSTATUS_MXR) != 0 and (pte & PTE_X) != 0)
    else:
        allowed = (pte & PTE_W) != 0
    if pte & PTE_U:
        if priv == S.PRV_S and (access == ACCESS_FETCH or not (mstatus & MSTATUS_SUM)):
            allowed = False
    elif priv == S.PRV_U:
        allowed = False
    # Step 6: a megapage's ppn[0] must be zero.
    if i > 0 and ((pte >> 10) & 0x3FF) != 0:
        allowed = False
    if not allowed:
        raise_exception(st, page_fault(access), va)
        return -1
    # Step 7: A and D, updated in hardware.
    wanted = PTE_A | (PTE_D if access == ACCESS_STORE else 0)
    if (pte & wanted) != wanted:
        if not pmp_allows(st, csr, pte_addr, PTE_SIZE, S.PRV_S, ACCESS_STORE):
            raise_exception(st, access_fault(access), va)
            return -1
        ram_write(ram, pte_addr, PTE_SIZE, pte | wanted)
    # Step 8: the physical address; a megapage takes vpn[0] from the virtual address.
    ppn = pte >> 10
    if i > 0:
        return ((ppn >> 10) << 22) | (va & 0x3FFFFF)
    return (ppn << 12) | (va & 0xFFF)


@njit(cache=True)
def translate(st, csr, ram, tlb_tag, tlb_delta, stats, va, size, access, priv):
    """Virtual to physical for an access at effective privilege ``priv``.

    Returns the physical address, or -1 after recording an exception. Fills the
    TLB when the page is RAM and its whole 4 KiB passes PMP.
    """
    stats[S.STAT_TLB_MISSES] += 1
    satp = csr[CSR_SATP]
    if priv == S.PRV_M or (satp >> 31) == 0:
        pa = va
    else:
        pa = sv32_walk(st, csr, ram, va, access, priv)
        if pa < 0:
            return -1
    if not pmp_allows(st, csr, pa, size, priv, access):
        raise_exception(st, access_fault(access), va)
        return -1
    page = pa & ~0xFFF
    if in_ram(st, page, PAGE_SIZE) and pmp_allows(st, csr, page, PAGE_SIZE, priv, access):
        vpn = va >> 12
        index = tlb_base(priv, access) + (vpn & (S.TLB_ENTRIES - 1))
        tlb_tag[index] = vpn + 1
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
    if offset == S.CLINT_MTIME:
        return mtime(st) & 0xFFFFFFFF
    if offset == S.CLINT_MTIME + 4:
        return (mtime(st) >> 32) & 0xFFFFFFFF
    return 0


@njit(cache=True)
def clint_write(st, offset, value):
    if offset == S.CLINT_MSIP:
        st[S.MSIP] = value & 1
    elif offset == S.CLINT_MTIMECMP:
        st[S.MTIMECMP] = (st[S.MTIMECMP] & ~0xFFFFFFFF) | value
    elif offset == S.CLINT_MTIMECMP + 4:
        st[S.MTIMECMP] = (st[S.MTIMECMP] & 0xFFFFFFFF) | (value << 32)
    elif offset == S.CLINT_MTIME:
        now = mtime(st)
        st[S.MTIME_OFFSET] += ((now & ~0xFFFFFFFF) | value) - now
    elif offset == S.CLINT_MTIME + 4:
        now = mtime(st)
        st[S.MTIME_OFFSET] += ((now & 0xFFFFFFFF) | (value << 32)) - now


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
    raise_exception(st, access_fault(access), va)
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
