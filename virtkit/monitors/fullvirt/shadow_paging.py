"""Shadow page tables: the tables the real satp points to while the guest runs.

The guest kernel builds Sv32 page tables that map its virtual addresses to what it
believes are physical addresses: guest-physical ones. The hart cannot use them, for
two reasons: their "physical" page numbers are guest-physical, not host-physical (the
monitor's map, virtkit.monitors.memory, says where each guest page really is), and the
guest kernel itself runs in real U-mode, where a page without the U bit is forbidden.
So the monitor composes the two maps, guest virtual -> guest physical (the guest's
tables) and guest physical -> host physical (its own), into shadow tables that the
real satp points to (Adams and Agesen, ASPLOS 2006, 4.1 "shadow page tables"; the
RISC-V walk they follow is privileged spec 20211203, 4.3.2).

Filling. The shadow starts empty. The first access to a page faults on the real hart;
the monitor walks the guest's tables for that address, and either the guest would have
faulted too (the monitor reflects the page fault into the guest, with the guest's
cause and stval) or it would not (the monitor writes the shadow PTE and resumes the
guest, which never learns of this "hidden" fault).

Coherence: rebuilt lazily, at SFENCE.VMA. When the guest changes a PTE, its shadow is
stale. This monitor does not write-protect the guest's page tables to catch each
change (what VMware's x86 monitor had to do); it drops shadow entries when the guest
executes SFENCE.VMA or writes satp, and refills them on demand. That is exact on RISC-V:
the architecture lets a hart keep using an old translation until SFENCE.VMA (4.2.1),
so a guest kernel must execute SFENCE.VMA after it changes a mapping that may be
cached, and SFENCE.VMA is privileged: it traps to the monitor. A new mapping (invalid
-> valid) needs no SFENCE.VMA, and none is needed here either: an absent shadow entry
faults and is filled from the guest's current tables. x86 gave the VMM no such
instruction for every change (a TLB miss walks the tables and INVLPG is not required
after every update), which is why VMware traced page-table writes instead.

The U-bit problem. Guest kernel and guest user code both run in real U-mode, so the
U bit of a real PTE cannot tell them apart. The monitor keeps two shadow tables per
guest address space and switches the real satp between them when the virtual mode
changes: the *user view* maps only the guest's U pages, so a guest process cannot
reach a guest-kernel page; the *kernel view* maps the guest's supervisor pages, and its
U pages only while sstatus.SUM is set, and never executable (4.3.2 step 5: S-mode
never executes U pages). A change of SUM or MXR drops the views it shaped.

A and D bits. The guest's PTEs get their A bit when the monitor fills a shadow entry
for an access, and D on the first store, as the hart does for its own tables: a page
not yet dirty in the guest's PTE is mapped read-only in the shadow, so the first store
faults, and the monitor sets D and maps it writable. The shadow PTEs themselves carry
A and D from the start, so the hart never writes them.

Guest megapages are split into 4 KiB shadow pages: the guest's physical pages need not
be contiguous in host memory.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from virtkit.cpu import mmu
from virtkit.isa import causes as C
from virtkit.monitors.fullvirt.vcpu import SSTATUS_MXR, SSTATUS_SUM
from virtkit.monitors.memory import PAGE_SHIFT, PAGE_SIZE

PTE_V, PTE_R, PTE_W, PTE_X, PTE_U = mmu.PTE_V, mmu.PTE_R, mmu.PTE_W, mmu.PTE_X, mmu.PTE_U
PTE_A, PTE_D = mmu.PTE_A, mmu.PTE_D
PTE_PERMISSIONS = PTE_R | PTE_W | PTE_X
SATP_MODE_SV32 = 1 << 31
SATP_PPN = 0x3F_FFFF
ENTRIES = 1024  # PTEs in one Sv32 table
PREFETCH = 8  # shadow entries filled around a hidden fault (an aligned group)

ACCESSES = ("fetch", "load", "store")
PAGE_FAULT = {
    "fetch": C.CAUSE_FETCH_PAGE_FAULT,
    "load": C.CAUSE_LOAD_PAGE_FAULT,
    "store": C.CAUSE_STORE_PAGE_FAULT,
}
ACCESS_FAULT = {
    "fetch": C.CAUSE_FETCH_ACCESS,
    "load": C.CAUSE_LOAD_ACCESS,
    "store": C.CAUSE_STORE_ACCESS,
}
ACCESS_OF_PAGE_FAULT = {cause: access for access, cause in PAGE_FAULT.items()}


class ShadowPagingError(RuntimeError):
    """A shadow PTE that does not do what the guest's PTE says; the message says how."""


# -- The guest's side: its Sv32 walk ------------------------------------------------------------


class GuestLeaf(NamedTuple):
    """The leaf PTE a guest walk ended at: its value, guest-physical address and level."""

    pte: int
    address: int
    level: int
    steps: int  # PTEs read


class GuestFault(NamedTuple):
    """The exception the guest's own hardware would raise for the access."""

    cause: int
    steps: int


def walk_guest(memory, satp: int, va: int, access: str) -> GuestLeaf | GuestFault:
    """Steps 1-4 of the Sv32 walk (4.3.2) through the guest's tables, in guest-physical
    memory: the leaf PTE for ``va``, or the fault the guest would take."""
    table = (satp & SATP_PPN) << PAGE_SHIFT
    for level in (1, 0):
        address = table + ((va >> (12 + 10 * level)) & 0x3FF) * 4
        steps = 2 - level
        if address not in memory:  # the PTE is not in RAM: an access fault (step 2)
            return GuestFault(ACCESS_FAULT[access], steps)
        pte = memory.read_word(address)
        if not pte & PTE_V or (pte & PTE_W and not pte & PTE_R):  # step 3
            return GuestFault(PAGE_FAULT[access], steps)
        if pte & (PTE_R | PTE_X):  # step 4: a leaf
            return GuestLeaf(pte, address, level, steps)
        table = (pte >> 10) << PAGE_SHIFT
    return GuestFault(PAGE_FAULT[access], 2)  # a pointer at level 0


def guest_allows(pte: int, level: int, access: str, mode: str, sstatus: int) -> bool:
    """Steps 5 and 6 of 4.3.2: does the leaf let ``mode`` ("S" or "U") make ``access``?"""
    if access == "fetch":
        allowed = bool(pte & PTE_X)
    elif access == "load":
        allowed = bool(pte & PTE_R or (sstatus & SSTATUS_MXR and pte & PTE_X))
    else:
        allowed = bool(pte & PTE_W)
    if pte & PTE_U:
        if mode == "S" and (access == "fetch" or not sstatus & SSTATUS_SUM):
            allowed = False
    elif mode == "U":
        allowed = False
    if level == 1 and (pte >> 10) & 0x3FF:
        allowed = False  # a misaligned megapage
    return allowed


def guest_page(pte: int, level: int, va: int) -> int:
    """The guest-physical page number that ``va`` reaches through the leaf (step 8)."""
    if level == 1:
        return ((pte >> 20) << 10) | ((va >> PAGE_SHIFT) & 0x3FF)
    return pte >> 10


# -- The shadow PTE -----------------------------------------------------------------------------


def shadow_pte(
    guest_pte: int,
    hppn: int,
    *,
    view: str,
    sstatus: int,
    write_protected: bool = False,
) -> int:
    """The shadow PTE for one 4 KiB page: host page ``hppn``, the guest's permissions.

    ``guest_pte`` is the guest's leaf (its A and D as the access left them); ``view``
    is "kernel" or "user", the shadow table it goes in; ``sstatus`` gives SUM and MXR;
    ``write_protected`` pages (guest code the binary translator has translated) are
    never writable. Returns 0 when the page must not be reachable in this view.

    The result always has U (the guest runs in real U-mode), and A and D (so the hart
    never writes the shadow); W only if the guest's D is already set (so its first
    store faults and the monitor can set D); X never for a user page in the kernel view.
    """
    user_page = bool(guest_pte & PTE_U)
    if view == "user" and not user_page:
        return 0
    if view == "kernel" and user_page and not sstatus & SSTATUS_SUM:
        return 0
    readable = guest_pte & PTE_R or (sstatus & SSTATUS_MXR and guest_pte & PTE_X)
    writable = guest_pte & PTE_W and guest_pte & PTE_D and not write_protected
    executable = guest_pte & PTE_X and not (view == "kernel" and user_page)
    flags = (PTE_R if readable else 0) | (PTE_W if writable else 0) | (PTE_X if executable else 0)
    if not flags:
        return 0  # V with no R, W or X would be a pointer to a table
    return (hppn << 10) | flags | PTE_V | PTE_U | PTE_A | PTE_D


def allows(spte: int, access: str) -> bool:
    """Whether the hart, in U-mode, can make ``access`` through shadow PTE ``spte``."""
    bit = {"fetch": PTE_X, "load": PTE_R, "store": PTE_W}[access]
    return bool(spte & PTE_V and spte & PTE_U and spte & bit)


# -- Shadow tables in host memory -----------------------------------------------------------------


class FramePool:
    """Host pages for shadow tables, taken and given back."""

    def __init__(self, frames: list[int]):
        self._free = list(reversed(frames))
        self.capacity = len(frames)

    def take(self) -> int | None:
        return self._free.pop() if self._free else None

    def give(self, frame: int) -> None:
        self._free.append(frame)


class ShadowTable:
    """One two-level Sv32 table in host pages: a root and level-0 tables made on demand.

    ``window`` is (vpn1, host page of a level-0 table) that stays in the root across
    clears: the binary translator's pages in the kernel view.
    """

    def __init__(self, name: str, ram32: np.ndarray, ram_base: int, pool: FramePool, window=None):
        self.name = name
        self._ram32 = ram32
        self._ram_base = ram_base
        self._pool = pool
        self.window = window
        root = pool.take()
        if root is None:
            raise ShadowPagingError("no host page left for a shadow root table")
        self.root = root
        self.level0: dict[int, int] = {}  # vpn1 -> host page of its level-0 table
        self.split_regions: set[int] = set()  # vpn1s holding pieces of guest megapages
        self.clear()

    def _index(self, hppn: int, entry: int) -> int:
        return ((hppn << PAGE_SHIFT) - self._ram_base) // 4 + entry

    def _zero(self, hppn: int) -> None:
        start = self._index(hppn, 0)
        self._ram32[start : start + ENTRIES] = 0

    def clear(self) -> None:
        """Drop every entry (the level-0 tables go back to the pool)."""
        for hppn in self.level0.values():
            self._pool.give(hppn)
        self.level0.clear()
        self.split_regions.clear()
        self._zero(self.root)
        if self.window is not None:
            vpn1, hppn = self.window
            self._ram32[self._index(self.root, vpn1)] = (hppn << 10) | PTE_V

    def clear_region(self, vpn1: int) -> None:
        """Drop the entries of one 4 MiB region."""
        hppn = self.level0.pop(vpn1, None)
        if hppn is not None:
            self._ram32[self._index(self.root, vpn1)] = 0
            self._pool.give(hppn)
        self.split_regions.discard(vpn1)

    def clear_page(self, va: int) -> None:
        hppn = self.level0.get(va >> 22)
        if hppn is not None:
            self._ram32[self._index(hppn, (va >> PAGE_SHIFT) & 0x3FF)] = 0

    def get(self, va: int) -> int:
        hppn = self.level0.get(va >> 22)
        return 0 if hppn is None else int(self._ram32[self._index(hppn, (va >> 12) & 0x3FF)])

    def set(self, va: int, pte: int, *, from_megapage: bool = False) -> bool:
        """Write the leaf for ``va``; False when no host page is left for a table."""
        vpn1 = va >> 22
        hppn = self.level0.get(vpn1)
        if hppn is None:
            hppn = self._pool.take()
            if hppn is None:
                return False
            self._zero(hppn)
            self.level0[vpn1] = hppn
            self._ram32[self._index(self.root, vpn1)] = (hppn << 10) | PTE_V
        self._ram32[self._index(hppn, (va >> PAGE_SHIFT) & 0x3FF)] = pte
        if from_megapage:
            self.split_regions.add(vpn1)
        return True

    def entries(self):
        """(va, shadow PTE) of every valid leaf, for looking at and checking."""
        for vpn1, hppn in sorted(self.level0.items()):
            start = self._index(hppn, 0)
            table = self._ram32[start : start + ENTRIES]
            for vpn0 in np.flatnonzero(table):
                yield (vpn1 << 22) | (int(vpn0) << 12), int(table[vpn0])


# -- The monitor's side: filling and dropping shadow entries --------------------------------------


class Fill(NamedTuple):
    """What ``ShadowMMU.fill`` decided for one real page fault.

    ``kind``: "hidden" (the shadow entry is written: resume the guest), "guest" (the
    guest itself faults: reflect ``cause``), or "code" (a store to a write-protected
    page of translated guest code: page ``gppn``).
    """

    kind: str
    cause: int = 0
    gppn: int = -1


HIDDEN = Fill("hidden")


class ShadowMMU:
    """The kernel and user shadow tables of one guest, and the rules that fill them.

    ``host_page(gppn)`` maps a guest-physical page to a host page (RAM through the
    guest-physical map, device pages to themselves) or None. ``compute_shadow_pte``
    is ``shadow_pte`` unless an exercise replaces it. ``meter`` gets the events
    (page walk steps, shadow PTE updates, TLB flushes).
    """

    def __init__(
        self,
        hart,
        vcpu,
        memory,
        host_page: Callable[[int], int | None],
        pool: FramePool,
        meter,
        compute_shadow_pte=shadow_pte,
    ):
        self.hart = hart
        self.vcpu = vcpu
        self.memory = memory
        self.host_page = host_page
        self.meter = meter
        self.compute_shadow_pte = compute_shadow_pte
        self._ram32 = hart.arrays.ram.view(np.uint32)
        self._pool = pool
        self.kernel = ShadowTable("kernel", self._ram32, hart.ram_base, pool)
        self.user = ShadowTable("user", self._ram32, hart.ram_base, pool)
        self.protected: set[int] = set()  # guest pages of translated code
        self.reserved_vpn1: int | None = None  # the translator's 4 MiB, kernel view only
        self._real_satp: int | None = None  # what the monitor last wrote to the real satp
        self.statistics = {
            "hidden faults": 0,
            "reflected faults": 0,
            "prefetched entries": 0,
            "shadow flushes": 0,
        }
        self._last_fill: tuple[int, str, str] | None = None

    # -- which table the hart uses -----------------------------------------------------------------
    def view(self) -> str:
        return "kernel" if self.vcpu.mode == "S" else "user"

    def table(self, view: str | None = None) -> ShadowTable:
        return self.kernel if (view or self.view()) == "kernel" else self.user

    def activate(self, *, after_reset: bool = False) -> None:
        """Point the real satp at the view of the current virtual mode (``after_reset``:
        the hart was reset, so whatever satp it had is gone)."""
        satp = SATP_MODE_SV32 | self.table().root
        if satp != self._real_satp or after_reset:
            self.hart.csr["satp"] = satp  # a satp write flushes the hart's TLB
            self._real_satp = satp
            self.meter.charge("tlb_flush")

    def reserve_window(self, vpn1: int, level0_hppn: int) -> None:
        """Map the binary translator's pages at ``vpn1`` in the kernel view, for good."""
        self.reserved_vpn1 = vpn1
        self.kernel.window = (vpn1, level0_hppn)
        self.kernel.clear()
        self._flush_tlb()

    # -- dropping entries --------------------------------------------------------------------------
    def _flush_tlb(self) -> None:
        self.hart.arrays.tlb_tag[:] = 0
        self.meter.charge("tlb_flush")

    def flush(self, va: int | None = None, views=("kernel", "user")) -> None:
        """Drop shadow entries: all of them, or those of ``va`` (SFENCE.VMA's rs1)."""
        for name in views:
            table = self.table(name)
            if va is None:
                table.clear()
            elif (va >> 22) in table.split_regions:
                table.clear_region(va >> 22)  # pieces of a guest megapage: drop them all
            else:
                table.clear_page(va)
        if va is None:
            self.statistics["shadow flushes"] += 1
        self._flush_tlb()

    def sstatus_changed(self, old: int, new: int) -> None:
        """SUM shapes the kernel view and MXR both: drop what they shaped."""
        if (old ^ new) & SSTATUS_MXR:
            self.flush()
        elif (old ^ new) & SSTATUS_SUM:
            self.flush(views=("kernel",))

    def protect(self, gppn: int) -> None:
        """Make guest page ``gppn`` read-only in every shadow (its code was translated)."""
        if gppn not in self.protected:
            self.protected.add(gppn)
            self.flush()

    def unprotect(self, gppn: int) -> None:
        self.protected.discard(gppn)

    # -- filling entries ---------------------------------------------------------------------------
    def fill(self, va: int, access: str) -> Fill:
        """Handle a real page fault at ``va``: fill the shadow, or say what the guest gets."""
        vcpu = self.vcpu
        view = self.view()
        satp = vcpu.slot("satp")
        sstatus = vcpu.slot("sstatus")
        if satp & SATP_MODE_SV32:
            leaf = walk_guest(self.memory, satp, va, access)
            self.meter.charge("page_walk_step", leaf.steps)
            if isinstance(leaf, GuestFault):
                return self._guest_fault(leaf.cause)
            if not guest_allows(leaf.pte, leaf.level, access, vcpu.mode, sstatus):
                return self._guest_fault(PAGE_FAULT[access])
            gppn = guest_page(leaf.pte, leaf.level, va)
            hppn = self.host_page(gppn)
            if hppn is None:
                return self._guest_fault(ACCESS_FAULT[access])  # no memory or device there
            if access == "store" and gppn in self.protected:
                return Fill("code", gppn=gppn)
            pte = leaf.pte | PTE_A | (PTE_D if access == "store" else 0)
            if pte != leaf.pte:
                self.memory.write_word(leaf.address, pte)  # A and D, as the hart sets them
            from_megapage = leaf.level == 1
        else:
            # satp.MODE = Bare: guest virtual = guest physical, every page allowed.
            gppn = va >> PAGE_SHIFT
            hppn = self.host_page(gppn)
            if hppn is None:
                return self._guest_fault(ACCESS_FAULT[access])
            if access == "store" and gppn in self.protected:
                return Fill("code", gppn=gppn)
            # As if the guest had one PTE allowing everything, of the view's own kind.
            pte = PTE_V | PTE_R | PTE_W | PTE_X | PTE_A | PTE_D | (PTE_U if view == "user" else 0)
            from_megapage = False
        if view == "kernel" and va >> 22 == self.reserved_vpn1:
            raise ShadowPagingError(
                f"the guest kernel uses va {va:#010x}, in the top 4 MiB that the binary "
                "translator keeps for its own code and the virtual CPU (as VMware's monitor "
                "kept the top 4 MiB of every guest address space): run this guest with "
                "trap-and-emulate"
            )
        spte = self.compute_shadow_pte(
            pte, hppn, view=view, sstatus=sstatus, write_protected=gppn in self.protected
        )
        self._check(spte, hppn, va, access, view)
        table = self.table(view)
        if not table.set(va & ~(PAGE_SIZE - 1), spte, from_megapage=from_megapage):
            self.flush()  # out of host pages for tables: start over, the shadow is a cache
            table.set(va & ~(PAGE_SIZE - 1), spte, from_megapage=from_megapage)
        self.meter.charge("shadow_pte_update")
        self.statistics["hidden faults"] += 1
        self._prefetch(
            table,
            va,
            view,
            sstatus,
            pte if satp & SATP_MODE_SV32 else None,
            leaf if satp & SATP_MODE_SV32 else None,
        )
        return HIDDEN

    def _prefetch(self, table, va, view, sstatus, pte, leaf) -> None:
        """Fill the neighbours of a filled entry that the guest has already used, so
        that walking through a buffer costs one hidden fault per PREFETCH pages, not
        one per page (KVM's shadow MMU does the same: PTE_PREFETCH_NUM = 8 in
        arch/x86/kvm/mmu/mmu.c). Only entries the guest's tables allow without a change
        qualify: a megapage the access just marked accessed, neighbouring 4 KiB PTEs
        whose A bit is already set, or any page when guest paging is off."""
        group = va & ~(PREFETCH * PAGE_SIZE - 1)
        for k in range(PREFETCH):
            neighbour = group + k * PAGE_SIZE
            if neighbour == va & ~(PAGE_SIZE - 1) or table.get(neighbour):
                continue
            if leaf is None:  # Bare
                gppn = neighbour >> PAGE_SHIFT
                guest_pte = PTE_V | PTE_R | PTE_W | PTE_X | PTE_A | PTE_D
                guest_pte |= PTE_U if view == "user" else 0
            elif leaf.level == 1:
                gppn, guest_pte = guest_page(pte, 1, neighbour), pte
            else:
                address = (leaf.address & ~0xFFF) | (((neighbour >> PAGE_SHIFT) & 0x3FF) * 4)
                guest_pte = self.memory.read_word(address)
                if guest_pte & (PTE_V | PTE_A) != PTE_V | PTE_A or not guest_pte & (PTE_R | PTE_X):
                    continue
                if guest_pte & PTE_W and not guest_pte & PTE_R:
                    continue
                gppn = guest_pte >> 10
            hppn = self.host_page(gppn)
            if hppn is None:
                continue
            spte = self.compute_shadow_pte(
                guest_pte, hppn, view=view, sstatus=sstatus, write_protected=gppn in self.protected
            )
            if (
                spte
                and spte >> 10 == hppn
                and table.set(neighbour, spte, from_megapage=leaf is not None and leaf.level == 1)
            ):
                self.meter.charge("shadow_pte_update")
                self.statistics["prefetched entries"] += 1

    def instruction_page(self, va: int, *, fetching: bool = True) -> int | GuestFault:
        """The guest page an instruction fetch from guest S reaches at ``va`` (for the
        binary translator, which reads guest code itself), or the guest's fault. Sets
        the A bit, as the fetch would, unless the monitor is only ``fetching=False``
        checking a mapping."""
        satp = self.vcpu.slot("satp")
        if satp & SATP_MODE_SV32:
            leaf = walk_guest(self.memory, satp, va, "fetch")
            self.meter.charge("page_walk_step", leaf.steps)
            if isinstance(leaf, GuestFault):
                return leaf
            if not guest_allows(leaf.pte, leaf.level, "fetch", "S", self.vcpu.slot("sstatus")):
                return GuestFault(PAGE_FAULT["fetch"], leaf.steps)
            if fetching and not leaf.pte & PTE_A:
                self.memory.write_word(leaf.address, leaf.pte | PTE_A)
            gppn = guest_page(leaf.pte, leaf.level, va)
        else:
            gppn = va >> PAGE_SHIFT
        if self.memory.host_page(gppn) is None:
            return GuestFault(ACCESS_FAULT["fetch"], 0)  # code runs from RAM only
        return gppn

    def _guest_fault(self, cause: int) -> Fill:
        self.statistics["reflected faults"] += 1
        return Fill("guest", cause)

    def _check(self, spte: int, hppn: int, va: int, access: str, view: str) -> None:
        """The monitor never trusts a shadow PTE it did not check: it must point at the
        guest's own page and allow the access the guest's tables allow."""
        if spte >> 10 != hppn:
            raise ShadowPagingError(
                f"the shadow PTE {spte:#010x} for va {va:#010x} points at host page "
                f"{spte >> 10:#x}, but the guest's page is at host page {hppn:#x}: a shadow "
                "PTE must never reach memory outside the guest"
            )
        if not allows(spte, access):
            raise ShadowPagingError(
                f"the shadow PTE {spte:#010x} for va {va:#010x} ({view} view) does not allow "
                f"the {access} the guest's page table allows: the guest would fault again "
                "and again. It needs V, U and the permission bit for this access"
            )

    # -- looking -----------------------------------------------------------------------------------
    def mappings(self, view: str) -> list[tuple[int, int]]:
        """(va, shadow PTE) of every entry of a view, for a widget or a test."""
        return list(self.table(view).entries())

    def frames(self) -> set[int]:
        """Host pages the shadow tables themselves occupy."""
        pages = {self.kernel.root, self.user.root}
        pages.update(self.kernel.level0.values(), self.user.level0.values())
        return pages
