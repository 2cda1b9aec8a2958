"""The Sv32 walk, explained: every step of a translation, in plain Python, for people.

RISC-V privileged spec 20211203, 4.3 "Sv32: Page-Based 32-bit Virtual-Memory Systems",
the algorithm of 4.3.2, and 8.5 "Two-Stage Address Translation" of the hypervisor
extension. The compiled core translates with ``virtkit.cpu.mmu``; ``walk`` here
follows the same steps on the hart's current state but records what it read and
decided at each level, so a lesson or a widget can show it:

    result = walk(hart, 0x0040_1234, "load")
    print(result)                      # one line per level, then the physical address
    result.pa, result.fault            # (0x80012234, None) or (None, 13)

For a guest (VS- or VU-mode, or MPRV with MPV) the walk has two stages. The VS-stage
walks the guest's tables from vsatp; each of its PTE addresses is a guest physical
address, so each level carries the G-stage walk that found it (``Level.g_stage``);
the guest physical address it ends with goes through the G-stage (``Walk.g_stage``),
the Sv32x4 walk from hgatp, to a supervisor physical address:

    result = walk(hart, 0x4000_0010, "store", "VS")
    result.gpa, result.g_stage.pa      # guest physical, supervisor physical
    result.fault, result.fault_gpa     # e.g. (23, 0x9000_0010): a guest-page fault

``walk`` only looks: it does not set the A and D bits the hardware would set, and it
does not touch the TLB. The tests check that it agrees with the hart.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from dataclasses import dataclass

from virtkit.cpu import mmu
from virtkit.cpu import state as S
from virtkit.isa import causes as C
from virtkit.isa import csrs

ACCESSES = {"fetch": mmu.ACCESS_FETCH, "load": mmu.ACCESS_LOAD, "store": mmu.ACCESS_STORE}
PAGE_FAULT = {
    "fetch": C.CAUSE_FETCH_PAGE_FAULT,
    "load": C.CAUSE_LOAD_PAGE_FAULT,
    "store": C.CAUSE_STORE_PAGE_FAULT,
}
GUEST_PAGE_FAULT = {
    "fetch": C.CAUSE_FETCH_GUEST_PAGE_FAULT,
    "load": C.CAUSE_LOAD_GUEST_PAGE_FAULT,
    "store": C.CAUSE_STORE_GUEST_PAGE_FAULT,
}
ACCESS_FAULT = {
    "fetch": C.CAUSE_FETCH_ACCESS,
    "load": C.CAUSE_LOAD_ACCESS,
    "store": C.CAUSE_STORE_ACCESS,
}
UNREADABLE = "the PTE is outside RAM or PMP forbids reading it: access fault"
PRIVILEGE = {"U": S.PRV_U, "S": S.PRV_S, "M": S.PRV_M, "VU": S.PRV_U, "VS": S.PRV_S}
MODES = tuple(PRIVILEGE)

# The flag bits of a PTE, lowest first, as figure 4.18 names them.
PTE_FLAGS = (
    ("V", mmu.PTE_V),
    ("R", mmu.PTE_R),
    ("W", mmu.PTE_W),
    ("X", mmu.PTE_X),
    ("U", mmu.PTE_U),
    ("G", mmu.PTE_G),
    ("A", mmu.PTE_A),
    ("D", mmu.PTE_D),
)
SATP = csrs.BY_NAME["satp"]
HGATP = csrs.BY_NAME["hgatp"]
MSTATUS = csrs.BY_NAME["mstatus"]
MSTATUSH = csrs.BY_NAME["mstatush"]
VSSTATUS = csrs.BY_NAME["vsstatus"]

# The three kinds of walk: Sv32 from satp (V=0), the VS-stage from vsatp and the
# G-stage (Sv32x4) from hgatp.
STAGE_SV32 = "Sv32"
STAGE_VS = "VS"
STAGE_G = "G"


def vpn(va: int, level: int) -> int:
    """va.vpn[level]: bits 31:22 for level 1, 21:12 for level 0."""
    return (va >> (12 + 10 * level)) & 0x3FF


def g_vpn(gpa: int, level: int) -> int:
    """Sv32x4 (8.5.1): vpn[1] of a guest physical address is bits 33:22, 12 bits."""
    return (gpa >> 22) & 0xFFF if level else (gpa >> 12) & 0x3FF


@dataclass(frozen=True)
class Pte:
    """A decoded Sv32 page table entry (figure 4.18): ppn[1], ppn[0], RSW and flags."""

    value: int

    @property
    def ppn(self) -> int:
        return self.value >> 10

    @property
    def ppn1(self) -> int:
        return (self.value >> 20) & 0xFFF

    @property
    def ppn0(self) -> int:
        return (self.value >> 10) & 0x3FF

    def has(self, flag: str) -> bool:
        return bool(self.value & dict(PTE_FLAGS)[flag])

    @property
    def flags(self) -> str:
        """The flags as letters in bit order, V first, "-" for a clear bit: "VRWXU-AD"."""
        return "".join(name if self.value & bit else "-" for name, bit in PTE_FLAGS)

    @property
    def is_leaf(self) -> bool:
        return self.has("R") or self.has("X")

    def __str__(self) -> str:
        return f"{self.value:#010x} (ppn={self.ppn:#x}, flags {self.flags})"


@dataclass(frozen=True)
class Level:
    """One step of the walk: the PTE read at ``pte_address`` and what it meant.

    In the VS-stage ``table`` and ``pte_address`` are guest physical addresses, and
    ``g_stage`` is the G-stage walk that found where the PTE really is.
    """

    level: int
    table: int  # (guest) physical address of the page table
    vpn: int  # the index into it, va.vpn[level]
    pte_address: int
    pte: Pte | None  # None when the PTE could not be read
    decision: str
    g_stage: Walk | None = None

    def __str__(self) -> str:
        pte = str(self.pte) if self.pte is not None else "(not readable)"
        text = (
            f"level {self.level}: table {self.table:#010x} + vpn[{self.level}]={self.vpn:#x} * 4"
            f" -> PTE at {self.pte_address:#010x} = {pte}: {self.decision}"
        )
        if self.g_stage is not None:
            text += "\n" + textwrap.indent(str(self.g_stage), "    ")
        return text


@dataclass(frozen=True)
class Walk:
    """A whole translation: the levels visited and the physical address or the fault.

    ``stage`` says which walk this is: "Sv32" (from satp), "VS" (a guest's VS-stage
    from vsatp, followed by the G-stage walk ``g_stage`` of the guest physical address
    ``gpa`` it produced) or "G" (the G-stage from hgatp, whose ``va`` is a guest
    physical address). ``satp`` is the value of the register the walk started from.
    ``fault_gpa`` is the guest physical address of a guest-page fault (what htval
    holds, shifted left by 2).
    """

    va: int
    access: str
    mode: str  # the effective privilege of the access
    satp: int
    levels: tuple[Level, ...]
    pa: int | None
    fault: int | None  # the exception cause, when the access faults
    summary: str
    stage: str = STAGE_SV32
    gpa: int | None = None
    g_stage: Walk | None = None
    fault_gpa: int | None = None

    @property
    def ok(self) -> bool:
        return self.fault is None

    @property
    def fault_name(self) -> str | None:
        return None if self.fault is None else C.cause_name(self.fault)

    def __str__(self) -> str:
        if self.stage == STAGE_G:
            head = (
                f"G-stage (Sv32x4) of guest physical address {self.va:#x} for a {self.access},"
                f" hgatp={self.satp:#010x}"
            )
        elif self.stage == STAGE_VS:
            head = (
                f"{self.access} of guest va {self.va:#010x} in {self.mode}-mode,"
                f" VS-stage from vsatp={self.satp:#010x}"
            )
        else:
            head = (
                f"{self.access} of va {self.va:#010x} in {self.mode}-mode, satp={self.satp:#010x}"
            )
        lines = [head, *(str(level) for level in self.levels)]
        if self.g_stage is not None:
            lines.append(textwrap.indent(str(self.g_stage), "    "))
        lines.append(self.summary)
        return "\n".join(lines)


def effective_mode(hart, access: str, mode: str | None = None) -> str:
    """The mode a memory access uses: for M-mode loads and stores with mstatus.MPRV
    set, the mode MPP (and, with the hypervisor extension, MPV) names (3.1.6.3, 8.4.1);
    otherwise the current mode."""
    mode = hart.mode if mode is None else mode
    if mode == "M" and access != "fetch":
        mstatus = hart.csr["mstatus"]
        if MSTATUS.field("MPRV").get(mstatus):
            mpp = MSTATUS.field("MPP").get(mstatus)
            virtual = MSTATUSH.field("MPV").get(hart.csr["mstatush"])
            return S.mode_name(mpp, virtual if mpp != S.PRV_M else 0)
    return mode


def walk(hart, va: int, access: str = "load", mode: str | None = None) -> Walk:
    """Translate ``va`` for an ``access`` ("fetch", "load" or "store") as the hart would.

    ``mode`` is the mode of the access ("U", "S", "M", or a guest's "VU" or "VS"); by
    default the hart's current mode, with mstatus.MPRV applied to loads and stores.
    """
    if access not in ACCESSES:
        raise ValueError(f"access must be 'fetch', 'load' or 'store', got {access!r}")
    if mode is not None and mode not in PRIVILEGE:
        allowed = ", ".join(repr(name) for name in MODES)
        raise ValueError(f"mode must be one of {allowed}, got {mode!r}")
    va &= 0xFFFFFFFF
    mode = effective_mode(hart, access, mode)
    if mode in ("VS", "VU"):
        return _guest_walk(hart, va, access, mode)
    satp = hart.csr["satp"]

    def done(levels, pa, fault, summary):
        return Walk(va, access, mode, satp, tuple(levels), pa, fault, summary)

    if mode == "M":
        return _physical(hart, done, [], va, access, "M", "M-mode accesses are not translated")
    if not SATP.field("MODE").get(satp):
        return _physical(hart, done, [], va, access, mode, "satp.MODE is Bare: no translation")
    mstatus = hart.csr["mstatus"]
    sum_, mxr = MSTATUS.field("SUM").get(mstatus), MSTATUS.field("MXR").get(mstatus)
    table = SATP.field("PPN").get(satp) * mmu.PAGE_SIZE

    def read_pte(pte_address: int) -> tuple[int | None, Walk | None, str, int]:
        if not _readable(hart, pte_address):
            return None, None, UNREADABLE, ACCESS_FAULT[access]
        return pte_address, None, "", 0

    levels, leaf, level, fault, summary = _first_stage(
        hart, va, access, mode, table, sum_, mxr, read_pte
    )
    if leaf is None:
        return done(levels, None, fault, summary)
    pa = _leaf_address(leaf, level, va)
    return _physical(hart, done, levels, pa, access, mode, f"va {va:#010x} -> pa {pa:#010x}")


def _first_stage(hart, va, access, mode, table, sum_, mxr, read_pte):
    """Steps 1-6 of 4.3.2 from ``table``. ``read_pte(address)`` says where a PTE
    really is: (physical address or None, the G-stage walk that found it or None, why
    it cannot be read, the fault then). Returns (levels, leaf PTE or None, level of
    the leaf, fault cause, summary)."""
    page_fault = PAGE_FAULT[access]
    levels: list[Level] = []
    for i in (1, 0):
        index = vpn(va, i)
        pte_address = table + index * mmu.PTE_SIZE

        def step(pte, decision, g_stage=None, i=i, index=index, table=table, at=pte_address):
            levels.append(Level(i, table, index, at, pte, decision, g_stage))

        # Step 2: the PTE is read with a PMP-checked physical access (through the
        # G-stage in the VS-stage).
        where, g_stage, reason, cause = read_pte(pte_address)
        if where is None:
            step(None, reason, g_stage)
            return levels, None, i, cause, _fault_summary(cause)
        pte = Pte(hart.read_word(where))
        # Step 3: invalid, or the reserved combination W without R.
        if not pte.has("V"):
            step(pte, "V = 0, the entry is invalid: page fault", g_stage)
            return levels, None, i, page_fault, _fault_summary(page_fault)
        if pte.has("W") and not pte.has("R"):
            step(pte, "W without R is reserved: page fault", g_stage)
            return levels, None, i, page_fault, _fault_summary(page_fault)
        # Step 4: a pointer to the next level, unless R or X makes it a leaf.
        if not pte.is_leaf:
            if i == 0:
                step(pte, "a pointer at the last level: page fault", g_stage)
                return levels, None, i, page_fault, _fault_summary(page_fault)
            table = pte.ppn * mmu.PAGE_SIZE
            step(pte, f"a pointer to the next table at {table:#010x}", g_stage)
            continue
        # Steps 5 and 6: a leaf; check its permissions and, for a megapage, alignment.
        refusal = _permission_refusal(pte, access, mode, sum_, mxr, i)
        if refusal:
            step(pte, f"a leaf, but {refusal}: page fault", g_stage)
            return levels, None, i, page_fault, _fault_summary(page_fault)
        step(pte, "a leaf: a 4 MiB megapage" if i == 1 else "a leaf: a 4 KiB page", g_stage)
        return levels, pte, i, None, ""
    raise AssertionError("unreachable: level 0 always decides")


def _leaf_address(pte: Pte, level: int, address: int) -> int:
    """Step 8: a megapage keeps vpn[0] of the address as well as the offset."""
    if level == 1:
        return (pte.ppn1 << 22) | (address & 0x3FFFFF)
    return (pte.ppn << 12) | (address & 0xFFF)


def _guest_walk(hart, va: int, access: str, mode: str) -> Walk:
    """Two-stage translation (8.5): the VS-stage from vsatp, then the G-stage."""
    vsatp = hart.csr["vsatp"]
    mstatus = hart.csr["mstatus"]
    vsstatus = hart.csr["vsstatus"]
    hs_mxr = MSTATUS.field("MXR").get(mstatus)

    def done(levels, pa, fault, summary, gpa=None, g_stage=None, fault_gpa=None):
        return Walk(
            va,
            access,
            mode,
            vsatp,
            tuple(levels),
            pa,
            fault,
            summary,
            STAGE_VS,
            gpa,
            g_stage,
            fault_gpa,
        )

    levels: list[Level] = []
    if not SATP.field("MODE").get(vsatp):
        gpa = va
        head = "vsatp.MODE is Bare: guest physical = guest virtual; "
    else:
        sum_ = VSSTATUS.field("SUM").get(vsstatus)
        mxr = VSSTATUS.field("MXR").get(vsstatus) or hs_mxr

        def read_pte(pte_address: int) -> tuple[int | None, Walk | None, str, int]:
            # The VS-stage's own read of its table: an implicit load in the G-stage.
            g = _g_stage(hart, pte_address, "load", access, 0)
            if not g.ok:
                return None, g, "the G-stage cannot read this PTE (see below)", g.fault
            if not _readable(hart, g.pa):
                return None, g, UNREADABLE, ACCESS_FAULT[access]
            return g.pa, g, "", 0

        table = SATP.field("PPN").get(vsatp) * mmu.PAGE_SIZE
        levels, leaf, level, fault, summary = _first_stage(
            hart, va, access, mode, table, sum_, mxr, read_pte
        )
        if leaf is None:
            # Every VS-stage level has the G-stage walk that read its PTE.
            return done(levels, None, fault, summary, fault_gpa=levels[-1].g_stage.fault_gpa)
        # Step 7: setting A (and D for a store) is an implicit store to the PTE, which
        # the G-stage must allow (8.5.1, 8.6.3).
        wanted = "AD" if access == "store" else "A"
        if not all(leaf.has(flag) for flag in wanted):
            g = _g_stage(hart, levels[-1].pte_address, "store", access, 0)
            if not g.ok:
                last = levels[-1]
                levels[-1] = Level(
                    last.level,
                    last.table,
                    last.vpn,
                    last.pte_address,
                    last.pte,
                    f"a leaf, but setting {wanted} is a store the G-stage refuses",
                    g,
                )
                return done(levels, None, g.fault, g.summary, fault_gpa=g.fault_gpa)
        gpa = _leaf_address(leaf, level, va)
        head = f"guest va {va:#010x} -> guest pa {gpa:#x}; "
    g = _g_stage(hart, gpa, access, access, hs_mxr if access == "load" else 0)
    if not g.ok:
        return done(levels, None, g.fault, g.summary, gpa, g, g.fault_gpa)
    return _physical(
        hart,
        lambda _levels, pa, fault, summary: done(levels, pa, fault, summary, gpa, g),
        levels,
        g.pa,
        access,
        mode,
        head + f"supervisor pa {g.pa:#010x}",
    )


def _g_stage(hart, gpa: int, check: str, access: str, mxr: int) -> Walk:
    """The G-stage (8.5.1): Sv32x4 from hgatp, every access U-level, guest-page faults.

    ``check`` is the access the leaf must allow (a load or store for the VS-stage's
    own accesses), ``access`` the original one, whose fault is reported.
    """
    hgatp = hart.csr["hgatp"]
    fault_cause = GUEST_PAGE_FAULT[access]

    def done(levels, pa, fault, summary):
        fault_gpa = gpa if fault == fault_cause else None
        return Walk(
            gpa,
            check,
            "U",
            hgatp,
            tuple(levels),
            pa,
            fault,
            summary,
            STAGE_G,
            None,
            None,
            fault_gpa,
        )

    if not HGATP.field("MODE").get(hgatp):
        return done([], gpa, None, "hgatp.MODE is Bare: supervisor pa = guest pa")
    table = (HGATP.field("PPN").get(hgatp) & ~3) * mmu.PAGE_SIZE
    levels: list[Level] = []
    for i in (1, 0):
        index = g_vpn(gpa, i)
        pte_address = table + index * mmu.PTE_SIZE

        def step(pte, decision, i=i, index=index, table=table, at=pte_address):
            levels.append(Level(i, table, index, at, pte, decision))

        if not _readable(hart, pte_address):
            step(None, UNREADABLE)
            cause = ACCESS_FAULT[access]
            return done(levels, None, cause, _fault_summary(cause))
        pte = Pte(hart.read_word(pte_address))
        if not pte.has("V") or (pte.has("W") and not pte.has("R")):
            why = "V = 0, the entry is invalid" if not pte.has("V") else "W without R"
            step(pte, f"{why}: guest-page fault")
            return done(levels, None, fault_cause, _fault_summary(fault_cause))
        if not pte.is_leaf:
            if i == 0:
                step(pte, "a pointer at the last level: guest-page fault")
                return done(levels, None, fault_cause, _fault_summary(fault_cause))
            table = pte.ppn * mmu.PAGE_SIZE
            step(pte, f"a pointer to the next table at {table:#010x}")
            continue
        refusal = _permission_refusal(pte, check, "U", 0, mxr, i)
        if refusal:
            refusal = refusal.replace("from U-mode", "and every G-stage access is U-level")
            step(pte, f"a leaf, but {refusal}: guest-page fault")
            return done(levels, None, fault_cause, _fault_summary(fault_cause))
        step(pte, "a leaf: a 4 MiB megapage" if i == 1 else "a leaf: a 4 KiB page")
        pa = _leaf_address(pte, i, gpa)
        return done(levels, pa, None, f"guest pa {gpa:#x} -> supervisor pa {pa:#010x}")
    raise AssertionError("unreachable: level 0 always decides")


def _readable(hart, pa: int) -> bool:
    a = hart.arrays
    in_ram = hart.ram_base <= pa and pa + 4 <= hart.ram_base + hart.ram_size
    return in_ram and bool(mmu.pmp_allows(a.st, a.csr, pa, mmu.PTE_SIZE, S.PRV_S, mmu.ACCESS_LOAD))


def _physical(hart, done: Callable, levels, pa, access, mode, summary) -> Walk:
    """The PMP check (3.7) on the physical address the access reaches."""
    a = hart.arrays
    if not mmu.pmp_allows(a.st, a.csr, pa, mmu.WORD, PRIVILEGE[mode], ACCESSES[access]):
        cause = ACCESS_FAULT[access]
        return done(
            levels,
            None,
            cause,
            f"PMP forbids this {access} of pa {pa:#010x}: " + _fault_summary(cause),
        )
    return done(levels, pa, None, summary)


def _permission_refusal(pte: Pte, access: str, mode: str, sum_: int, mxr: int, level: int) -> str:
    """Why a leaf refuses the access (4.3.2 steps 5 and 6), or "" when it allows it."""
    user = mode in ("U", "VU")
    if access == "fetch" and not pte.has("X"):
        return "X = 0 (not executable)"
    if access == "load" and not (pte.has("R") or (mxr and pte.has("X"))):
        return "R = 0 (not readable)"
    if access == "store" and not pte.has("W"):
        return "W = 0 (not writable)"
    if pte.has("U"):
        if not user and access == "fetch":
            return f"U = 1 and {mode}-mode never executes user pages"
        if not user and not sum_:
            status = "vsstatus" if mode == "VS" else "mstatus"
            return f"U = 1 and {status}.SUM = 0 ({mode}-mode may not touch user pages)"
    elif user:
        return f"U = 0 (a supervisor page, and the access is from {mode}-mode)"
    if level == 1 and pte.ppn0:
        return "ppn[0] != 0 in a megapage (misaligned superpage)"
    return ""


def _fault_summary(cause: int) -> str:
    return f"fault: {C.cause_name(cause)} (cause {cause})"
