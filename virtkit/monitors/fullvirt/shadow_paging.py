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

Coherence: checked at SFENCE.VMA. When the guest changes a PTE, its shadow is stale.
This monitor does not write-protect the guest's page tables to catch each change (what
VMware's x86 monitor had to do); it looks again when the guest executes SFENCE.VMA.
That is exact on RISC-V: the architecture lets a hart keep using an old translation
until SFENCE.VMA (4.2.1), so a guest kernel must execute SFENCE.VMA after it changes a
mapping that may be cached, and SFENCE.VMA is privileged: it traps to the monitor. A
new mapping (invalid -> valid) needs no SFENCE.VMA, and none is needed here either: an
absent shadow entry faults and is filled from the guest's current tables. x86 gave the
VMM no such instruction for every change (a TLB miss walks the tables and INVLPG is not
required after every update), which is why VMware traced page-table writes instead.

The shadow page table cache. Writing satp orders nothing either (4.1.11: it "does not
imply any ordering constraints between page-table updates and subsequent address
translations"): a hart may keep the translations it cached for an address space, under
its ASID, until an SFENCE.VMA covers them. So the monitor keeps the shadow tables of
every guest root it has seen, keyed by satp's ASID and PPN, and a switch back to a root
finds its kernel and user views as they were: a *shadow page table cache* (KVM keeps
its recent shadow roots across CR3 writes in the same way). SFENCE.VMA then decides
what a cached table must give up, by its operands (4.2.1):

    rs1 = x0, rs2 = x0   every table may be stale anywhere: each is checked against the
                         guest's tables before it is used again (below)
    rs1 = x0, rs2 = ASID the same, for the tables of that ASID only
    rs1 = va             the entry of va goes, in every table (of that ASID, if rs2 != x0)

A table does not have to be thrown away to be exact after a full fence: every shadow
entry was made from one or two guest PTEs (the root entry of its 4 MiB region, and the
level-0 leaf), and the table remembers their values. Before the table is used again the
monitor reads those PTEs in the guest's tables and drops exactly the entries whose PTEs
changed ("sync", as KVM calls what it does to its *unsync* shadow pages when the guest
flushes its TLB: arch/x86/kvm/mmu/mmu.c, Documentation/virt/kvm/x86/mmu.rst). An entry
whose PTEs are unchanged is what a new fill would write, so keeping it is the same as
refilling it, without the hidden faults. This matters because tinyos, which uses no
ASIDs, executes SFENCE.VMA x0, x0 after every satp write, at every switch to another
process, and the processes it switches between keep most of their pages. Entries
depend on more than the guest's PTEs: on sstatus.SUM and MXR, and on which guest
pages hold translated code (write-protected); a change of those drops the entries of
every cached table. The cache is bounded by the monitor's pool of host pages: when it
is empty, the least recently used root's tables are evicted (never the current one's).

The U-bit problem. Guest kernel and guest user code both run in real U-mode, so the
U bit of a real PTE cannot tell them apart. The monitor keeps two shadow tables per
guest address space and switches the real satp between them when the virtual mode
changes: the *user view* maps only the guest's U pages, so a guest process cannot
reach a guest-kernel page; the *kernel view* maps the guest's supervisor pages, and its
U pages only while sstatus.SUM is set, and never executable (4.3.2 step 5: S-mode
never executes U pages). A change of SUM or MXR drops the views it shaped.

Real ASIDs. Every shadow table gets an ASID of its own on the real hart, whatever ASID
the guest uses, so that the switch between the two views at every trap and SRET, and
between cached roots, needs no TLB flush: the hart's TLB entries carry the ASID
(virtkit.cpu.mmu). Sv32 has 511 of them besides 0; when they run out, the monitor
flushes the TLB and starts a new *generation*, and a table gets a new ASID the next
time it is used (Linux hands out the ASIDs of its address spaces the same way,
arch/riscv/mm/context.c). Since no satp write flushes now, everything that drops or
narrows shadow entries flushes the TLB itself.

A and D bits. The guest's PTEs get their A bit when the monitor fills a shadow entry
for an access, and D on the first store, as the hart does for its own tables: a page
not yet dirty in the guest's PTE is mapped read-only in the shadow, so the first store
faults, and the monitor sets D and maps it writable. The shadow PTEs themselves carry
A and D from the start, so the hart never writes them.

Guest megapages are split into 4 KiB shadow pages: the guest's physical pages need not
be contiguous in host memory.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from virtkit.cpu import mmu
from virtkit.isa import causes as C
from virtkit.isa import csrs
from virtkit.monitors.fullvirt.vcpu import SSTATUS_MXR, SSTATUS_SUM
from virtkit.monitors.memory import PAGE_SHIFT, PAGE_SIZE

PTE_V, PTE_R, PTE_W, PTE_X, PTE_U = mmu.PTE_V, mmu.PTE_R, mmu.PTE_W, mmu.PTE_X, mmu.PTE_U
PTE_A, PTE_D = mmu.PTE_A, mmu.PTE_D
PTE_PERMISSIONS = PTE_R | PTE_W | PTE_X
SATP_MODE_SV32 = 1 << 31
SATP_ASID = csrs.mask("satp", "ASID")  # bits 30:22 (4.1.11); the virtual CPU keeps all nine
SATP_ASID_SHIFT = csrs.shift("satp", "ASID")
ASID_MAX = SATP_ASID >> SATP_ASID_SHIFT  # 511: the real ASIDs are 1..ASID_MAX
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
    """The leaf PTE a guest walk ended at: its value, guest-physical address and level,
    and for a level-0 leaf the root entry (a pointer) the walk went through."""

    pte: int
    address: int
    level: int
    steps: int  # PTEs read
    pointer: int = 0


class GuestFault(NamedTuple):
    """The exception the guest's own hardware would raise for the access."""

    cause: int
    steps: int


def walk_guest(memory, satp: int, va: int, access: str) -> GuestLeaf | GuestFault:
    """Steps 1-4 of the Sv32 walk (4.3.2) through the guest's tables, in guest-physical
    memory: the leaf PTE for ``va``, or the fault the guest would take."""
    table = (satp & SATP_PPN) << PAGE_SHIFT
    pointer = 0
    for level in (1, 0):
        address = table + ((va >> (12 + 10 * level)) & 0x3FF) * 4
        steps = 2 - level
        if address not in memory:  # the PTE is not in RAM: an access fault (step 2)
            return GuestFault(ACCESS_FAULT[access], steps)
        pte = memory.read_word(address)
        if not pte & PTE_V or (pte & PTE_W and not pte & PTE_R):  # step 3
            return GuestFault(PAGE_FAULT[access], steps)
        if pte & (PTE_R | PTE_X):  # step 4: a leaf
            return GuestLeaf(pte, address, level, steps, pointer)
        pointer = pte
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
    """Host pages for shadow tables, taken and given back.

    ``reclaim`` is called when the pool is empty, to give some back (the shadow page
    table cache evicts a root); it returns False when it has nothing to give."""

    def __init__(self, frames: list[int]):
        self._free = list(reversed(frames))
        self.capacity = len(frames)
        self.reclaim: Callable[[], bool] | None = None

    def take(self) -> int | None:
        if not self._free and self.reclaim is not None:
            self.reclaim()
        return self._free.pop() if self._free else None

    def give(self, frame: int) -> None:
        self._free.append(frame)


class GuestRegion:
    """What the shadow entries of one 4 MiB region were made from, for the sync.

    ``root_pte``: the guest's root entry for the region, a megapage leaf or a pointer
    to a level-0 table. ``guest_table``: the host page of that level-0 table (None for
    a megapage, whose pieces come from the root entry alone). ``leaf_ptes[vpn0]``: the
    guest's level-0 PTE that the shadow entry vpn0 was made from.
    """

    def __init__(self, root_pte: int, guest_table: int | None):
        self.root_pte = root_pte
        self.guest_table = guest_table
        self.leaf_ptes = None if guest_table is None else np.zeros(ENTRIES, dtype=np.uint32)


class ShadowTable:
    """One two-level Sv32 table in host pages: a root and level-0 tables made on demand.

    ``window`` is (vpn1, host page of a level-0 table) that stays in the root across
    clears: the binary translator's pages in the kernel view. ``regions`` says what the
    entries of each 4 MiB region were made from; ``synced`` is False from a full
    SFENCE.VMA until ShadowMMU has checked the entries against the guest's tables.
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
        self.asid = 0  # the real ASID (ShadowMMU._real_asid), from generation asid_generation
        self.asid_generation = 0  # never one of ShadowMMU's: the first use hands one out
        self.level0: dict[int, int] = {}  # vpn1 -> host page of its level-0 table
        self.regions: dict[int, GuestRegion] = {}  # vpn1 -> what its entries came from
        self.watched = None  # the sync's (word indices, values) of those guest PTEs, or None
        self.synced = True
        self.clear()

    def _index(self, hppn: int, entry: int) -> int:
        return ((hppn << PAGE_SHIFT) - self._ram_base) // 4 + entry

    def _zero(self, hppn: int) -> None:
        start = self._index(hppn, 0)
        self._ram32[start : start + ENTRIES] = 0

    def level0_entries(self, vpn1: int) -> np.ndarray | None:
        """The level-0 table of region ``vpn1`` (a view of host RAM), or None."""
        hppn = self.level0.get(vpn1)
        if hppn is None:
            return None
        start = self._index(hppn, 0)
        return self._ram32[start : start + ENTRIES]

    def clear(self) -> None:
        """Drop every entry (the level-0 tables go back to the pool)."""
        for hppn in self.level0.values():
            self._pool.give(hppn)
        self.level0.clear()
        self.regions.clear()
        self.watched = None
        self.synced = True
        self._zero(self.root)
        if self.window is not None:
            vpn1, hppn = self.window
            self._ram32[self._index(self.root, vpn1)] = (hppn << 10) | PTE_V

    def release(self) -> None:
        """Give every host page of the table back to the pool: the table is gone."""
        self.clear()
        self._pool.give(self.root)

    def clear_region(self, vpn1: int) -> int:
        """Drop the entries of one 4 MiB region; returns how many there were."""
        entries = self.level0_entries(vpn1)
        dropped = 0 if entries is None else int(np.count_nonzero(entries))
        hppn = self.level0.pop(vpn1, None)
        if hppn is not None:
            self._ram32[self._index(self.root, vpn1)] = 0
            self._pool.give(hppn)
        self.regions.pop(vpn1, None)
        self.watched = None
        return dropped

    def clear_page(self, va: int) -> None:
        """Drop the entry of ``va``, and with a guest megapage's piece all its pieces: a
        fence for one page of a megapage is a fence for its leaf, the megapage PTE."""
        region = self.regions.get(va >> 22)
        if region is not None and region.guest_table is None:
            self.clear_region(va >> 22)
            return
        hppn = self.level0.get(va >> 22)
        if hppn is not None:
            self._ram32[self._index(hppn, (va >> PAGE_SHIFT) & 0x3FF)] = 0

    def get(self, va: int) -> int:
        hppn = self.level0.get(va >> 22)
        return 0 if hppn is None else int(self._ram32[self._index(hppn, (va >> 12) & 0x3FF)])

    def set(self, va: int, pte: int) -> bool:
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
        return True

    def forget_if_changed(self, vpn1: int, root_pte: int) -> None:
        """Before a fill: if the guest's root entry for the region is no longer the one
        its entries were made from, drop them (one region, one root entry)."""
        region = self.regions.get(vpn1)
        if region is not None and region.root_pte != root_pte:
            self.clear_region(vpn1)

    def made_from(
        self, va: int, root_pte: int, guest_table: int | None, leaf_pte: int | None = None
    ) -> None:
        """After a fill: remember the guest PTEs the entry of ``va`` was made from, as
        they are now (with the A and D bits the fill set)."""
        vpn1 = va >> 22
        region = self.regions.get(vpn1)
        if region is None:
            region = self.regions[vpn1] = GuestRegion(root_pte, guest_table)
        region.root_pte = root_pte
        if leaf_pte is not None:
            region.leaf_ptes[(va >> PAGE_SHIFT) & 0x3FF] = leaf_pte
        self.watched = None

    def entries(self):
        """(va, shadow PTE) of every valid leaf, for looking at and checking."""
        for vpn1, hppn in sorted(self.level0.items()):
            start = self._index(hppn, 0)
            table = self._ram32[start : start + ENTRIES]
            for vpn0 in np.flatnonzero(table):
                yield (vpn1 << 22) | (int(vpn0) << 12), int(table[vpn0])


def space_key(satp: int) -> tuple[int, int] | None:
    """The shadow page table cache's key for a guest satp: (ASID, root PPN), or None
    when satp.MODE is Bare (no guest tables: one shadow for every Bare satp)."""
    if not satp & SATP_MODE_SV32:
        return None
    return (satp & SATP_ASID) >> SATP_ASID_SHIFT, satp & SATP_PPN


class ShadowAddressSpace:
    """The cached shadow of one guest address space: its kernel and user views.

    ``key`` is ``space_key`` of the guest's satp; ``guest_root`` the host page of the
    guest's root table (None for Bare, or a root outside guest RAM, which maps nothing).
    """

    def __init__(self, key, guest_root: int | None, kernel: ShadowTable, user: ShadowTable):
        self.key = key
        self.asid = None if key is None else key[0]
        self.guest_root = guest_root
        self.kernel = kernel
        self.user = user

    def tables(self) -> tuple[ShadowTable, ShadowTable]:
        return self.kernel, self.user

    def release(self) -> None:
        self.kernel.release()
        self.user.release()


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
    """The shadow tables of one guest, cached per guest root, and the rules that fill them.

    ``host_page(gppn)`` maps a guest-physical page to a host page (RAM through the
    guest-physical map, device pages to themselves) or None. ``compute_shadow_pte``
    is ``shadow_pte`` unless an exercise replaces it. ``meter`` gets the events
    (page walk steps, shadow PTE updates, TLB flushes).

    ``cache`` holds a ShadowAddressSpace for each guest root seen (by ``space_key``),
    least recently used first; ``space`` is the one of the guest's satp now.
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
        pool.reclaim = self._evict_least_recently_used
        self.protected: set[int] = set()  # guest pages of translated code
        self.reserved_vpn1: int | None = None  # the translator's 4 MiB, kernel view only
        self._window: tuple[int, int] | None = None  # its level-0 table, in every kernel view
        self._real_satp: int | None = None  # what the monitor last wrote to the real satp
        self._asid_generation = 1  # of the real ASIDs handed out (see _real_asid)
        self._next_asid = 1
        self.statistics = {
            "hidden faults": 0,
            "reflected faults": 0,
            "prefetched entries": 0,
            "shadow flushes": 0,
            "shadow cache hits": 0,
            "shadow cache misses": 0,
            "shadow cache evictions": 0,
            "shadow syncs": 0,
            "stale entries dropped": 0,
        }
        self.cache: OrderedDict[tuple[int, int] | None, ShadowAddressSpace] = OrderedDict()
        self.space = self._new_space(space_key(vcpu.slot("satp")))

    # -- the shadow page table cache ---------------------------------------------------------------
    def _new_space(self, key) -> ShadowAddressSpace:
        """Empty shadow tables for guest root ``key``, put in the cache."""
        ram_base = self.hart.ram_base
        kernel = ShadowTable("kernel", self._ram32, ram_base, self._pool, self._window)
        user = ShadowTable("user", self._ram32, ram_base, self._pool)
        guest_root = None if key is None else self.memory.host_page(key[1])
        space = self.cache[key] = ShadowAddressSpace(key, guest_root, kernel, user)
        return space

    def _current_space(self) -> ShadowAddressSpace:
        """The shadow of the guest's satp now: from the cache if its root was seen."""
        key = space_key(self.vcpu.slot("satp"))
        if key != self.space.key:
            space = self.cache.get(key)
            if space is None:
                self.statistics["shadow cache misses"] += 1
                space = self._new_space(key)
            else:
                self.statistics["shadow cache hits"] += 1
                self.cache.move_to_end(key)
            self.space = space
        return self.space

    def _evict_least_recently_used(self) -> bool:
        """The pool of host pages is empty: give back those of the least recently used
        cached root, never the current one's. False when there is no other root."""
        for key, space in self.cache.items():
            if space is not self.space:
                del self.cache[key]
                space.release()
                self.statistics["shadow cache evictions"] += 1
                return True
        return False

    def _sync(self, space: ShadowAddressSpace, table: ShadowTable) -> int:
        """Check ``table`` against the guest's tables after a full SFENCE.VMA, and drop
        the entries whose guest PTEs changed since they were made (KVM syncs its unsync
        shadow pages so). Returns how many entries were dropped.

        Usually nothing changed (tinyos fences at every process switch), so the guest PTEs
        behind the entries are first compared all at once; only if one differs does
        the check go region by region to find the entries it made."""
        if table.watched is None:
            table.watched = self._watched_ptes(space, table)
        addresses, values = table.watched
        self.meter.charge("page_walk_step", len(addresses))  # guest PTEs read
        dropped = 0
        if not np.array_equal(self._ram32[addresses], values):
            dropped = self._drop_stale(space, table)
        table.synced = True
        self.statistics["shadow syncs"] += 1
        self.statistics["stale entries dropped"] += dropped
        return dropped

    def _watched_ptes(self, space: ShadowAddressSpace, table: ShadowTable):
        """(host RAM word indices, values) of the guest PTEs ``table``'s entries were
        made from: each region's root entry, and the level-0 PTE behind each entry."""
        addresses, values = [], []
        for vpn1, region in table.regions.items():
            addresses.append([table._index(space.guest_root, vpn1)])
            values.append([region.root_pte])
            if region.guest_table is not None:
                present = np.flatnonzero(table.level0_entries(vpn1))
                addresses.append(table._index(region.guest_table, 0) + present)
                values.append(region.leaf_ptes[present])
        if not addresses:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.uint32)
        return np.concatenate(addresses).astype(np.int64), np.concatenate(values).astype(np.uint32)

    def _drop_stale(self, space: ShadowAddressSpace, table: ShadowTable) -> int:
        """Drop the entries of ``table`` whose guest PTEs changed; returns how many."""
        dropped = 0
        for vpn1, region in list(table.regions.items()):
            if self._ram32[table._index(space.guest_root, vpn1)] != region.root_pte:
                dropped += table.clear_region(vpn1)  # a new root entry: the whole region
                continue
            if region.guest_table is None:
                continue  # pieces of a megapage come from the root entry alone
            start = table._index(region.guest_table, 0)
            guest = self._ram32[start : start + ENTRIES]
            shadow = table.level0_entries(vpn1)
            stale = (shadow != 0) & (guest != region.leaf_ptes)
            dropped += int(np.count_nonzero(stale))
            shadow[stale] = 0
        table.watched = None
        return dropped

    # -- which table the hart uses -----------------------------------------------------------------
    @property
    def kernel(self) -> ShadowTable:
        """The kernel view of the current guest address space."""
        return self.space.kernel

    @property
    def user(self) -> ShadowTable:
        """The user view of the current guest address space."""
        return self.space.user

    def view(self) -> str:
        return "kernel" if self.vcpu.mode == "S" else "user"

    def table(self, view: str | None = None) -> ShadowTable:
        space = self._current_space()
        return space.kernel if (view or self.view()) == "kernel" else space.user

    def activate(self, *, after_reset: bool = False) -> None:
        """Point the real satp at the view of the current virtual mode, of the current
        guest root, checked against the guest's tables if a fence asked for it
        (``after_reset``: the hart was reset, so whatever satp it had is gone)."""
        space = self._current_space()
        table = space.kernel if self.vcpu.mode == "S" else space.user
        dropped = 0 if table.synced else self._sync(space, table)
        satp = SATP_MODE_SV32 | self._real_asid(table) << SATP_ASID_SHIFT | table.root
        if satp != self._real_satp or after_reset:
            self.hart.csr["satp"] = satp  # another ASID: the TLB keeps every table's entries
            self._real_satp = satp
        if dropped or after_reset:
            self._flush_tlb()

    def _real_asid(self, table: ShadowTable) -> int:
        """The ASID ``table`` runs under on the real hart: its own, of this generation."""
        if table.asid_generation != self._asid_generation:
            if self._next_asid > ASID_MAX:
                # Out of ASIDs: forget every translation, so that each ASID can be given
                # to a new table; the other tables get theirs when next used.
                self._asid_generation += 1
                self._next_asid = 1
                self._flush_tlb()
            table.asid = self._next_asid
            table.asid_generation = self._asid_generation
            self._next_asid += 1
        return table.asid

    def reserve_window(self, vpn1: int, level0_hppn: int) -> None:
        """Map the binary translator's pages at ``vpn1`` in every kernel view, for good."""
        self.reserved_vpn1 = vpn1
        self._window = (vpn1, level0_hppn)
        for space in self.cache.values():
            space.kernel.window = self._window
            space.kernel.clear()
        self._flush_tlb()

    # -- dropping entries --------------------------------------------------------------------------
    def _flush_tlb(self) -> None:
        self.hart.arrays.tlb_tag[:] = 0
        self.meter.charge("tlb_flush")

    def sfence_vma(self, va: int | None = None, asid: int | None = None) -> None:
        """The guest's SFENCE.VMA (4.2.1): ``va`` from rs1 (None for x0), ``asid`` from
        rs2 (None for x0). For one address its entry goes; for all, the tables are
        checked against the guest's tables before their next use. With an ASID, only
        the tables of roots with that ASID; the hart's TLB is flushed either way."""
        for space in self.cache.values():
            if asid is not None and space.asid != asid:
                continue
            for table in space.tables():
                if va is not None:
                    table.clear_page(va)
                elif table.regions:
                    table.synced = False
        self._flush_tlb()

    def flush(self, views=("kernel", "user")) -> None:
        """Drop every entry of these views, of every cached root: what they were made
        from other than the guest's PTEs changed (SUM, MXR, translated code, a reset)."""
        for space in self.cache.values():
            for name in views:
                (space.kernel if name == "kernel" else space.user).clear()
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
        leaf = None  # the guest's leaf PTE, with paging on
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
        page = va & ~(PAGE_SIZE - 1)
        if leaf is not None:
            table.forget_if_changed(va >> 22, leaf.pte if leaf.level == 1 else leaf.pointer)
        if not table.set(page, spte):
            self.flush()  # out of host pages for tables: start over, the shadow is a cache
            table.set(page, spte)
        if leaf is not None and leaf.level == 1:
            table.made_from(page, pte, None)  # a piece of a megapage: its root entry
        elif leaf is not None:
            guest_table = self.memory.host_page(leaf.address >> PAGE_SHIFT)
            table.made_from(page, leaf.pointer, guest_table, pte)
        self.meter.charge("shadow_pte_update")
        self.statistics["hidden faults"] += 1
        self._prefetch(table, va, view, sstatus, pte, leaf)
        return HIDDEN

    def _prefetch(self, table, va, view, sstatus, pte, leaf) -> None:
        """Fill the neighbours of a filled entry that the guest has already used, so
        that walking through a buffer costs one hidden fault per PREFETCH pages, not
        one per page (KVM's shadow MMU does the same: PTE_PREFETCH_NUM = 8 in
        arch/x86/kvm/mmu/mmu.c). Only entries the guest's tables allow without a change
        qualify: a megapage the access just marked accessed, neighbouring 4 KiB PTEs
        whose A bit is already set, or any page when guest paging is off. ``pte`` is
        the guest PTE of the fill, with its new A and D; ``leaf`` the walk's (None: Bare)."""
        group = va & ~(PREFETCH * PAGE_SIZE - 1)
        if leaf is not None and leaf.level == 0:
            guest_table = self.memory.host_page(leaf.address >> PAGE_SHIFT)
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
            if spte and spte >> 10 == hppn and table.set(neighbour, spte):
                if leaf is not None and leaf.level == 0:
                    table.made_from(neighbour, leaf.pointer, guest_table, guest_pte)
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
        """(va, shadow PTE) of every entry of a view of the current guest address space,
        for a widget or a test. In the view the guest is not in, entries may wait for
        their sync (a fence came since): they are checked before the view is used."""
        return list(self.table(view).entries())

    def frames(self) -> set[int]:
        """Host pages the shadow tables themselves occupy, of every cached root."""
        pages = set()
        for space in self.cache.values():
            for table in space.tables():
                pages.add(table.root)
                pages.update(table.level0.values())
        return pages
