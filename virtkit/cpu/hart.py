"""``Hart``: the Python face of one RISC-V hart, with names for everything.

    hart = Hart(ram_size=1 << 20)
    hart.write_memory(0x8000_0000, program_bytes)
    hart.pc = 0x8000_0000
    exit = hart.run(1_000_000)        # an Exit, modelled on KVM_RUN's exits
    hart.x[10], hart.csr["mcause"], hart.mode

The state lives in NumPy arrays (virtkit.cpu.state) that the compiled core
(virtkit.cpu.core) updates in place; this class only reads and writes them.
"""

from __future__ import annotations

from collections.abc import Iterable
from time import perf_counter

import numba
import numpy as np

from virtkit.cpu import core, csrfile, exits, mmu, trap
from virtkit.cpu import state as S
from virtkit.cpu.exits import Exit
from virtkit.isa import csrs
from virtkit.isa.causes import EXCEPTION_NAMES, INTERRUPT_NAMES
from virtkit.isa.registers import ABI_NAMES, register_number

# Which trap targets Python owns, by name (see Hart.trap_exits). With the hypervisor
# extension S-mode is HS-mode, so "HS" and "M+HS" are other names of "S" and "M+S".
TRAP_OWNERS = {
    "none": 0,
    "M": S.TRAP_EXIT_M,
    "S": S.TRAP_EXIT_S,
    "M+S": S.TRAP_EXIT_M | S.TRAP_EXIT_S,
    "all": S.TRAP_EXIT_ALL,
    "HS": S.TRAP_EXIT_S,
    "M+HS": S.TRAP_EXIT_M | S.TRAP_EXIT_S,
}
# hart.mode names: the privileged spec's modes (8.1), HS-mode being "S" (or "HS").
_MODE_LEVELS = {
    "U": (S.PRV_U, 0),
    "S": (S.PRV_S, 0),
    "HS": (S.PRV_S, 0),
    "M": (S.PRV_M, 0),
    "VU": (S.PRV_U, 1),
    "VS": (S.PRV_S, 1),
}


# Exits after which run() must look before it resumes (the rest resume directly: a
# monitor calls run() once per exit, so this check is kept off their path).
_CHECK_BEFORE_RESUMING = frozenset(
    {exits.EXIT_MMIO_READ, exits.EXIT_MMIO_WRITE, exits.EXIT_BREAKPOINT}
)

# The statistics slot of each mode's retired instructions (``stats`` and ``retired_in``).
_MODE_STAT_SLOTS = {
    S.mode_name(priv, virt): int(S.STAT_INSNS_BY_MODE + priv + S.CONTEXT_V * virt)
    for priv in S.MODE_NAMES
    for virt in (0, 1)
    if not virt or priv in S.VIRTUAL_MODE_NAMES
}


_REGISTER_INDEX = {number: number for number in range(32)}  # see Registers.__getitem__
_new_exit = tuple.__new__  # see Hart.run


# -- Calling the core ------------------------------------------------------------------------
def compiled(function, *args):
    """The machine code Numba compiled from core ``function`` for the types of ``args``
    (compiled now, or loaded from the cache, if need be), to call without the dispatcher.

    Numba's dispatcher works out the types of the arguments on every call, which costs
    about as much as a short run of the core: a monitor runs the core once per exit.
    The hart always passes the same types. Without the JIT (NUMBA_DISABLE_JIT=1),
    ``function`` is plain Python and is returned as it is.
    """
    if not isinstance(function, numba.core.dispatcher.Dispatcher):
        return function
    return function.compile(tuple(numba.typeof(arg) for arg in args))


# The core's two entry points from Python. Each is first a function that compiles it on
# the first call and puts its machine code in its place for every later call.
def _run_core(state, ram, budget):
    global _run_core
    _run_core = compiled(core.run, state, ram, budget)
    return _run_core(state, ram, budget)


def _flush_retired(st, stats, count):
    global _flush_retired
    _flush_retired = compiled(core.flush_retired, st, stats, count)
    return _flush_retired(st, stats, count)


class Registers:
    """``hart.x[10]`` or ``hart.x["a0"]``: the integer registers; x0 stays zero."""

    def __init__(self, array: np.ndarray):
        self._x = array
        self._values = memoryview(array)  # one element, as a Python int, quicker than NumPy

    def _index(self, key) -> int:
        if isinstance(key, str):
            number = register_number(key)
            if number is None:
                raise KeyError(f"unknown register {key!r}; use x0..x31 or an ABI name")
            return number
        if not 0 <= key < 32:
            raise IndexError(f"register index {key} out of range 0..31")
        return key

    # A monitor reads and writes registers by number on every exit: one dict lookup
    # finds a number 0..31, and anything else takes the slower way through _index.
    def __getitem__(self, key) -> int:
        try:
            index = _REGISTER_INDEX[key]
        except (KeyError, TypeError):
            index = self._index(key)
        return self._values[index]

    def __setitem__(self, key, value: int) -> None:
        try:
            index = _REGISTER_INDEX[key]
        except (KeyError, TypeError):
            index = self._index(key)
        if index:
            self._values[index] = value & 0xFFFFFFFF

    def __len__(self) -> int:
        return 32

    def __iter__(self):
        return (int(v) for v in self._x)

    def as_dict(self) -> dict[str, int]:
        return {name: int(self._x[i]) for i, name in enumerate(ABI_NAMES)}


class CSRs:
    """``hart.csr["mstatus"]``: CSRs by name or number, with their read/write rules.

    Reads and writes go through the same code as the CSR instructions, so views such
    as sstatus and WARL fields behave exactly as software sees them, but without the
    privilege checks: this is the debugger's view.
    """

    def __init__(self, hart: Hart):
        self._hart = hart

    @staticmethod
    def number(key) -> int:
        if isinstance(key, str):
            return csrs.number(key)
        if key not in csrs.BY_NUMBER:
            raise KeyError(f"unknown CSR number {key:#x}")
        return key

    def __getitem__(self, key) -> int:
        h = self._hart
        return int(csrfile.read(h.arrays.st, h.arrays.csr, self.number(key)))

    def __setitem__(self, key, value: int) -> None:
        h = self._hart
        csrfile.write(h.arrays.st, h.arrays.csr, h.arrays.tlb_tag, self.number(key), value)

    def fields(self, key) -> dict[str, int]:
        """The named fields of a CSR's current value."""
        return csrs.BY_NUMBER[self.number(key)].decode(self[key])


class Hart:
    """One RV32IMA hart with M, S and U modes, the H extension, Sv32 and PMP.

    ``trap_exits`` says which traps exit to Python instead of being taken: "none"
    (bare-metal code handles its own traps), "M" (a Python firmware owns M-mode),
    "S" (a Python hypervisor or kernel owns HS-mode; also called "HS"), "M+S" (or
    "M+HS"), or "all" (trap-and-emulate, including traps a guest takes in VS-mode).
    ``ticks_per_mtime`` is how many instructions make one tick of mtime.
    """

    def __init__(
        self,
        ram_size: int = 128 << 20,
        *,
        trap_exits: str = "none",
        ticks_per_mtime: int = 10,
        wfi_exits: bool = False,
        ebreak_exits: bool = False,
    ):
        self.arrays = S.HartArrays(ram_size)
        # The pc, read and written on every exit, as a Python int: a memoryview of the
        # state slots is quicker than NumPy for one element.
        self._st = memoryview(self.arrays.st)
        self.x = Registers(self.arrays.x)
        self.csr = CSRs(self)
        if ticks_per_mtime < 1:
            raise ValueError(f"ticks_per_mtime must be >= 1, got {ticks_per_mtime}")
        self.arrays.st[S.TICKS_PER_MTIME] = ticks_per_mtime
        self.trap_exits = trap_exits
        self.wfi_exits = wfi_exits
        self.ebreak_exits = ebreak_exits
        self.reset()
        self.host_seconds = 0.0
        self._breakpoints: set[int] = set()
        self._last_exit = Exit(exits.EXIT_NONE, self.pc)

    # -- configuration ----------------------------------------------------------------
    @property
    def trap_exits(self) -> str:
        value = int(self.arrays.st[S.TRAP_EXITS])
        return next(name for name, bits in TRAP_OWNERS.items() if bits == value)

    @trap_exits.setter
    def trap_exits(self, owner: str) -> None:
        if owner not in TRAP_OWNERS:
            allowed = ", ".join(repr(k) for k in TRAP_OWNERS)
            raise ValueError(f"trap_exits must be one of {allowed}, got {owner!r}")
        self.arrays.st[S.TRAP_EXITS] = TRAP_OWNERS[owner]

    @property
    def wfi_exits(self) -> bool:
        return bool(self.arrays.st[S.WFI_EXITS])

    @wfi_exits.setter
    def wfi_exits(self, value: bool) -> None:
        self.arrays.st[S.WFI_EXITS] = int(bool(value))

    @property
    def ebreak_exits(self) -> bool:
        return bool(self.arrays.st[S.EBREAK_EXITS])

    @ebreak_exits.setter
    def ebreak_exits(self, value: bool) -> None:
        self.arrays.st[S.EBREAK_EXITS] = int(bool(value))

    @property
    def sstatus_unprivileged(self) -> bool:
        """The Popek-Goldberg switch, off by default.

        On, it breaks the rule that every sensitive instruction is privileged (Popek and
        Goldberg, CACM 17(7), 1974): a U-mode CSR instruction on sstatus no longer raises
        illegal-instruction; it reads the real sstatus and its write is silently
        dropped. This is x86's POPF/PUSHF in user mode, which changes or reads the
        interrupt flag without trapping, and which is why classic x86 could not be
        virtualized by trap-and-emulate alone (Robin and Irvine, USENIX Security 2000).
        A deprivileged guest kernel's "disable interrupts" then goes unseen by its
        monitor. The setting survives reset, like the other exit configuration.
        """
        return bool(self.arrays.st[S.SSTATUS_UNPRIVILEGED])

    @sstatus_unprivileged.setter
    def sstatus_unprivileged(self, value: bool) -> None:
        self.arrays.st[S.SSTATUS_UNPRIVILEGED] = int(bool(value))

    def reset(self, pc: int = S.RAM_BASE) -> None:
        """Reset state (3.4): M-mode, MIE = 0, MPRV = 0, misa at its value, pc set.

        RAM keeps its contents, as after a warm reset, and so does the configuration
        that belongs to the board and the debugger rather than to the hart: RAM size,
        the time base, which exits go to Python, breakpoints and MMIO regions.
        """
        a = self.arrays
        a.x[:] = 0
        a.csr[:] = 0
        a.csr[csrfile.CSR_MIDELEG] = csrfile.MIDELEG_READ_ONLY_ONE
        a.tlb_tag[:] = 0
        st = a.st
        configuration = (
            S.RAM_SIZE,
            S.TICKS_PER_MTIME,
            S.TRAP_EXITS,
            S.WFI_EXITS,
            S.EBREAK_EXITS,
            S.SSTATUS_UNPRIVILEGED,
            S.N_BREAKPOINTS,
            S.N_MMIO_REGIONS,
        )
        keep = {slot: st[slot] for slot in configuration}
        st[: S.BREAKPOINT_BASE] = 0  # breakpoints and MMIO regions live above this
        for slot, value in keep.items():
            st[slot] = value
        st[S.PC] = pc
        st[S.PRIV] = S.PRV_M
        st[S.RESERVATION] = -1
        st[S.TOHOST] = -1
        st[S.MTIMECMP] = np.iinfo(np.int64).max
        st[S.SKIP_BREAKPOINT] = -1

    # -- architectural state by name ------------------------------------------------------
    @property
    def pc(self) -> int:
        return self._st[S.PC]

    @pc.setter
    def pc(self, value: int) -> None:
        self._st[S.PC] = value & 0xFFFFFFFF

    @property
    def mode(self) -> str:
        """The mode: "M", "S" (HS-mode), "U", or with V=1 "VS" or "VU"."""
        st = self.arrays.st
        return S.mode_name(int(st[S.PRIV]), int(st[S.VIRT]))

    @mode.setter
    def mode(self, name: str) -> None:
        if name not in _MODE_LEVELS:
            allowed = ", ".join(repr(k) for k in _MODE_LEVELS)
            raise ValueError(f"mode must be one of {allowed}, got {name!r}")
        self.arrays.st[S.PRIV], self.arrays.st[S.VIRT] = _MODE_LEVELS[name]

    @property
    def virtual(self) -> bool:
        """The V bit of the hypervisor extension: the hart runs a guest (VS or VU)."""
        return bool(self.arrays.st[S.VIRT])

    @virtual.setter
    def virtual(self, value: bool) -> None:
        if value and self.arrays.st[S.PRIV] == S.PRV_M:
            raise ValueError("M-mode has no V=1 counterpart: set hart.mode first")
        self.arrays.st[S.VIRT] = int(bool(value))

    @property
    def mtime(self) -> int:
        return int(mmu.mtime(self.arrays.st))

    @property
    def instret(self) -> int:
        return int(self.arrays.st[S.RETIRED] + self.arrays.st[S.MINSTRET_OFFSET])

    def set_interrupt_line(self, mip_bit: int, level: bool) -> None:
        """Drive a device interrupt line into mip (e.g. SEIP from the PLIC)."""
        if level:
            self.arrays.st[S.EXT_IRQ] |= mip_bit
        else:
            self.arrays.st[S.EXT_IRQ] &= ~mip_bit

    # -- memory ---------------------------------------------------------------------------
    def sfence_vma(self) -> None:
        """What SFENCE.VMA with rs1 = rs2 = x0 does in M-mode: forget every cached
        translation. For a Python kernel or firmware that changed page tables."""
        mmu.tlb_flush(self.arrays.tlb_tag)

    def hfence_gvma(self) -> None:
        """What HFENCE.GVMA does (8.3.2): forget the guests' cached translations. For a
        Python hypervisor that changed or removed a G-stage PTE; making an invalid
        PTE valid needs no fence, since failed translations are never cached."""
        mmu.tlb_flush_virtual(self.arrays.tlb_tag)

    @property
    def ram_base(self) -> int:
        return S.RAM_BASE

    @property
    def ram_size(self) -> int:
        return int(self.arrays.st[S.RAM_SIZE])

    def _ram_offset(self, address: int, size: int) -> int:
        offset = address - S.RAM_BASE
        if offset < 0 or offset + size > self.ram_size:
            raise ValueError(
                f"physical range {address:#x}..{address + size:#x} is outside RAM "
                f"({S.RAM_BASE:#x}..{S.RAM_BASE + self.ram_size:#x})"
            )
        return offset

    def write_memory(self, address: int, data: bytes) -> None:
        offset = self._ram_offset(address, len(data))
        self.arrays.ram[offset : offset + len(data)] = np.frombuffer(bytes(data), dtype=np.uint8)

    def read_memory(self, address: int, size: int) -> bytes:
        offset = self._ram_offset(address, size)
        return self.arrays.ram[offset : offset + size].tobytes()

    def read_word(self, address: int) -> int:
        return int.from_bytes(self.read_memory(address, 4), "little")

    def write_word(self, address: int, value: int) -> None:
        self.write_memory(address, (value & 0xFFFFFFFF).to_bytes(4, "little"))

    def add_mmio_region(self, start: int, size: int) -> None:
        """Accesses to [start, start + size) exit to Python as MMIO_READ/MMIO_WRITE."""
        st = self.arrays.st
        count = int(st[S.N_MMIO_REGIONS])
        if count == S.MAX_MMIO_REGIONS:
            raise ValueError(f"at most {S.MAX_MMIO_REGIONS} MMIO regions")
        st[S.MMIO_REGION_BASE + 2 * count] = start
        st[S.MMIO_REGION_BASE + 2 * count + 1] = start + size
        st[S.N_MMIO_REGIONS] = count + 1

    @property
    def tohost(self) -> int | None:
        """Physical address of HTIF's tohost word, or None."""
        value = int(self.arrays.st[S.TOHOST])
        return None if value < 0 else value

    @tohost.setter
    def tohost(self, address: int | None) -> None:
        self.arrays.st[S.TOHOST] = -1 if address is None else address

    # -- breakpoints --------------------------------------------------------------------------
    @property
    def breakpoints(self) -> frozenset[int]:
        return frozenset(self._breakpoints)

    @breakpoints.setter
    def breakpoints(self, pcs: Iterable[int]) -> None:
        pcs = set(pcs)
        if len(pcs) > S.MAX_BREAKPOINTS:
            raise ValueError(f"at most {S.MAX_BREAKPOINTS} breakpoints, got {len(pcs)}")
        self._breakpoints = pcs
        st = self.arrays.st
        for i, pc in enumerate(sorted(pcs)):
            st[S.BREAKPOINT_BASE + i] = pc
        st[S.N_BREAKPOINTS] = len(pcs)

    # -- running ------------------------------------------------------------------------------
    def run(self, budget: int = 1 << 62) -> Exit:
        """Run until an exit; at most ``budget`` instructions."""
        if self._last_exit.reason in _CHECK_BEFORE_RESUMING:
            self._check_resume(self._last_exit)
        a = self.arrays
        start = perf_counter()
        record = _run_core(a.state, a.ram, budget)
        self.host_seconds += perf_counter() - start
        # The core returns exactly Exit's fields: make the named tuple without _make's
        # check of their number (a Python call on every exit).
        self._last_exit = exit = _new_exit(Exit, record)
        return exit

    def _check_resume(self, last: Exit) -> None:
        st = self.arrays.st
        if st[S.MMIO_PENDING]:
            raise RuntimeError(
                "the last exit was an MMIO access that was never completed: "
                "call hart.complete_mmio(value) (reads) or hart.complete_mmio() (writes)"
            )
        if last.reason == exits.EXIT_BREAKPOINT and last.pc == self.pc:
            st[S.SKIP_BREAKPOINT] = last.pc  # resume past the breakpoint we stopped at

    def step(self) -> Exit:
        """Execute one instruction (or take one pending interrupt)."""
        return self.run(1)

    def last_exit(self) -> Exit:
        """The exit the last run() returned."""
        return self._last_exit

    def complete_mmio(self, value: int = 0) -> None:
        """Finish the MMIO access of the last exit: a read puts ``value`` in rd."""
        st = self.arrays.st
        pending = int(st[S.MMIO_PENDING])
        if not pending:
            raise RuntimeError("no MMIO access is waiting to be completed")
        if pending == 1:
            size = int(st[S.EXIT_SIZE])
            value &= (1 << (8 * size)) - 1
            if st[S.EXIT_SIGNED] and value >> (8 * size - 1):
                value -= 1 << (8 * size)
            self.x[int(st[S.EXIT_RD])] = value
        st[S.MMIO_PENDING] = 0
        st[S.PC] = (st[S.PC] + 4) & 0xFFFFFFFF
        self.retire(1)

    def retire(self, count: int) -> None:
        """Count ``count`` instructions that Python completed for the hart (an MMIO access,
        an instruction a monitor emulated) as retired in the current mode: instret, the
        clock and the statistics move on as if the core had run them."""
        a = self.arrays
        _flush_retired(a.st, a.stats, count)

    def take_trap(
        self,
        cause: int,
        tval: int = 0,
        *,
        interrupt: bool = False,
        htval: int = 0,
        htinst: int = 0,
        gva: bool | None = None,
    ) -> None:
        """Deliver a trap architecturally at the current pc (e.g. after a TRAP exit).

        ``htval``, ``htinst`` and ``gva`` are what the hypervisor extension records on
        a trap into M- or HS-mode (pass those of the exit to deliver it unchanged);
        ``gva`` by default says whether ``tval`` is a guest virtual address because
        the hart runs with V=1 and the cause writes an address to tval.
        """
        names = INTERRUPT_NAMES if interrupt else EXCEPTION_NAMES
        if cause not in names:
            kind = "interrupt" if interrupt else "exception"
            raise ValueError(f"{cause} is not an {kind} cause; known: {sorted(names)}")
        st = self.arrays.st
        if gva is None:
            gva = not interrupt and self.virtual and (trap.GVA_CAUSES >> cause) & 1
        st[S.MMIO_PENDING] = 0
        trap.enter(
            st,
            self.arrays.csr,
            cause,
            trap.INTERRUPT if interrupt else trap.EXCEPTION,
            tval,
            self.pc,
            htval,
            htinst,
            1 if gva else 0,
        )

    # -- statistics ----------------------------------------------------------------------------
    def retired_in(self, mode: str) -> int:
        """Instructions retired so far in ``mode``: "M", "S", "U", "VS" or "VU" (one
        entry of ``stats["instructions_by_mode"]``, without building the rest)."""
        try:
            slot = _MODE_STAT_SLOTS[mode]
        except KeyError:
            raise ValueError(
                f"mode must be one of {', '.join(_MODE_STAT_SLOTS)}, got {mode!r}"
            ) from None
        return self.arrays.stats.item(slot)

    @property
    def stats(self) -> dict:
        """Instructions by mode, traps by cause, exits by reason (non-zero entries)."""
        s = self.arrays.stats
        by_mode = {name: int(s[slot]) for name, slot in _MODE_STAT_SLOTS.items() if s[slot]}
        traps = {}
        for cause, name in EXCEPTION_NAMES.items():
            if s[S.STAT_TRAPS + cause]:
                traps[name] = int(s[S.STAT_TRAPS + cause])
        for cause, name in INTERRUPT_NAMES.items():
            if s[S.STAT_INTERRUPTS + cause]:
                traps[name] = int(s[S.STAT_INTERRUPTS + cause])
        exit_counts = {
            name: int(s[S.STAT_EXITS + reason])
            for reason, name in exits.EXIT_NAMES.items()
            if s[S.STAT_EXITS + reason]
        }
        return {
            "instructions": sum(by_mode.values()),
            "instructions_by_mode": by_mode,
            "traps_by_cause": traps,
            "exits_by_reason": exit_counts,
            "tlb_misses": int(s[S.STAT_TLB_MISSES]),
        }
