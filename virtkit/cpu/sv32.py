"""The Sv32 walk, explained: every step of a translation, in plain Python, for people.

RISC-V privileged spec 20211203, 4.3 "Sv32: Page-Based 32-bit Virtual-Memory Systems",
the algorithm of 4.3.2. The compiled core translates with ``virtkit.cpu.mmu.sv32_walk``;
``walk`` here follows the same steps on the hart's current state but records what it
read and decided at each level, so a lesson or a widget can show it:

    result = walk(hart, 0x0040_1234, "load")
    print(result)                      # one line per level, then the physical address
    result.pa, result.fault            # (0x80012234, None) or (None, 13)

``walk`` only looks: it does not set the A and D bits the hardware would set, and it
does not touch the TLB. The tests check that it agrees with the hart.
"""

from __future__ import annotations

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
ACCESS_FAULT = {
    "fetch": C.CAUSE_FETCH_ACCESS,
    "load": C.CAUSE_LOAD_ACCESS,
    "store": C.CAUSE_STORE_ACCESS,
}
PRIVILEGE = {"U": S.PRV_U, "S": S.PRV_S, "M": S.PRV_M}

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
MSTATUS = csrs.BY_NAME["mstatus"]


def vpn(va: int, level: int) -> int:
    """va.vpn[level]: bits 31:22 for level 1, 21:12 for level 0."""
    return (va >> (12 + 10 * level)) & 0x3FF


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
    """One step of the walk: the PTE read at ``pte_address`` and what it meant."""

    level: int
    table: int  # physical address of the page table
    vpn: int  # the index into it, va.vpn[level]
    pte_address: int
    pte: Pte | None  # None when the PTE could not be read
    decision: str

    def __str__(self) -> str:
        pte = str(self.pte) if self.pte is not None else "(not readable)"
        return (
            f"level {self.level}: table {self.table:#010x} + vpn[{self.level}]={self.vpn:#x} * 4"
            f" -> PTE at {self.pte_address:#010x} = {pte}: {self.decision}"
        )


@dataclass(frozen=True)
class Walk:
    """A whole translation: the levels visited and the physical address or the fault."""

    va: int
    access: str
    mode: str  # the effective privilege of the access
    satp: int
    levels: tuple[Level, ...]
    pa: int | None
    fault: int | None  # the exception cause, when the access faults
    summary: str

    @property
    def ok(self) -> bool:
        return self.fault is None

    @property
    def fault_name(self) -> str | None:
        return None if self.fault is None else C.cause_name(self.fault)

    def __str__(self) -> str:
        head = f"{self.access} of va {self.va:#010x} in {self.mode}-mode, satp={self.satp:#010x}"
        return "\n".join([head, *(str(level) for level in self.levels), self.summary])


def effective_mode(hart, access: str, mode: str | None = None) -> str:
    """The privilege a memory access uses: mstatus.MPP for M-mode loads and stores
    when mstatus.MPRV is set (3.1.6.3), otherwise the current mode."""
    mode = hart.mode if mode is None else mode
    if mode == "M" and access != "fetch":
        mstatus = hart.csr["mstatus"]
        if MSTATUS.field("MPRV").get(mstatus):
            return S.MODE_NAMES[MSTATUS.field("MPP").get(mstatus)]
    return mode


def walk(hart, va: int, access: str = "load", mode: str | None = None) -> Walk:
    """Translate ``va`` for an ``access`` ("fetch", "load" or "store") as the hart would.

    ``mode`` is the privilege of the access ("U", "S" or "M"); by default the hart's
    current mode, with mstatus.MPRV applied to loads and stores.
    """
    if access not in ACCESSES:
        raise ValueError(f"access must be 'fetch', 'load' or 'store', got {access!r}")
    if mode is not None and mode not in PRIVILEGE:
        raise ValueError(f"mode must be 'U', 'S' or 'M', got {mode!r}")
    va &= 0xFFFFFFFF
    mode = effective_mode(hart, access, mode)
    satp = hart.csr["satp"]
    mstatus = hart.csr["mstatus"]

    def done(levels, pa, fault, summary):
        return Walk(va, access, mode, satp, tuple(levels), pa, fault, summary)

    if mode == "M":
        return _physical(hart, done, [], va, access, "M", "M-mode accesses are not translated")
    if not SATP.field("MODE").get(satp):
        return _physical(hart, done, [], va, access, mode, "satp.MODE is Bare: no translation")

    # Step 1: a = satp.ppn * PAGESIZE, i = LEVELS - 1.
    table = SATP.field("PPN").get(satp) * mmu.PAGE_SIZE
    levels: list[Level] = []
    for i in (1, 0):
        index = vpn(va, i)
        pte_address = table + index * mmu.PTE_SIZE

        def step(pte, decision, i=i, index=index, table=table, pte_address=pte_address):
            levels.append(Level(i, table, index, pte_address, pte, decision))

        # Step 2: the PTE is read with a PMP-checked physical access.
        if not _readable(hart, pte_address):
            step(None, "the PTE is outside RAM or PMP forbids reading it: access fault")
            return done(levels, None, ACCESS_FAULT[access], _fault_summary(ACCESS_FAULT[access]))
        pte = Pte(hart.read_word(pte_address))
        # Step 3: invalid, or the reserved combination W without R.
        if not pte.has("V"):
            step(pte, "V = 0, the entry is invalid: page fault")
            return done(levels, None, PAGE_FAULT[access], _fault_summary(PAGE_FAULT[access]))
        if pte.has("W") and not pte.has("R"):
            step(pte, "W without R is reserved: page fault")
            return done(levels, None, PAGE_FAULT[access], _fault_summary(PAGE_FAULT[access]))
        # Step 4: a pointer to the next level, unless R or X makes it a leaf.
        if not pte.is_leaf:
            if i == 0:
                step(pte, "a pointer at the last level: page fault")
                return done(levels, None, PAGE_FAULT[access], _fault_summary(PAGE_FAULT[access]))
            table = pte.ppn * mmu.PAGE_SIZE
            step(pte, f"a pointer to the next table at {table:#010x}")
            continue
        # Steps 5 and 6: a leaf; check its permissions and, for a megapage, alignment.
        refusal = _permission_refusal(pte, access, mode, mstatus, i)
        if refusal:
            step(pte, f"a leaf, but {refusal}: page fault")
            return done(levels, None, PAGE_FAULT[access], _fault_summary(PAGE_FAULT[access]))
        # Step 8: the physical address; a megapage keeps va.vpn[0] as well as the offset.
        if i == 1:
            pa = (pte.ppn1 << 22) | (va & 0x3FFFFF)
            step(pte, "a leaf: a 4 MiB megapage")
        else:
            pa = (pte.ppn << 12) | (va & 0xFFF)
            step(pte, "a leaf: a 4 KiB page")
        return _physical(hart, done, levels, pa, access, mode, f"va {va:#010x} -> pa {pa:#010x}")
    raise AssertionError("unreachable: level 0 always decides")


def _readable(hart, pa: int) -> bool:
    a = hart.arrays
    in_ram = hart.ram_base <= pa and pa + 4 <= hart.ram_base + hart.ram_size
    return in_ram and bool(mmu.pmp_allows(a.st, a.csr, pa, mmu.PTE_SIZE, S.PRV_S, mmu.ACCESS_LOAD))


def _physical(hart, done, levels, pa, access, mode, summary) -> Walk:
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


def _permission_refusal(pte: Pte, access: str, mode: str, mstatus: int, level: int) -> str:
    """Why a leaf refuses the access (4.3.2 steps 5 and 6), or "" when it allows it."""
    mxr = MSTATUS.field("MXR").get(mstatus)
    sum_ = MSTATUS.field("SUM").get(mstatus)
    if access == "fetch" and not pte.has("X"):
        return "X = 0 (not executable)"
    if access == "load" and not (pte.has("R") or (mxr and pte.has("X"))):
        return "R = 0 (not readable)"
    if access == "store" and not pte.has("W"):
        return "W = 0 (not writable)"
    if pte.has("U"):
        if mode == "S" and access == "fetch":
            return "U = 1 and S-mode never executes user pages"
        if mode == "S" and not sum_:
            return "U = 1 and mstatus.SUM = 0 (S-mode may not touch user pages)"
    elif mode == "U":
        return "U = 0 (a supervisor page, and the access is from U-mode)"
    if level == 1 and pte.ppn0:
        return "ppn[0] != 0 in a megapage (misaligned superpage)"
    return ""


def _fault_summary(cause: int) -> str:
    return f"fault: {C.cause_name(cause)} (cause {cause})"
