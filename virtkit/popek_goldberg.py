"""Popek and Goldberg's classification of RV32's instructions, measured on the hart.

Popek and Goldberg, "Formal requirements for virtualizable third generation
architectures", Communications of the ACM 17(7), 1974, sort a machine's instructions by
two questions:

- **privileged**: does it trap when run in user mode (and run in supervisor mode)?
- **sensitive**: *control sensitive*, it changes the configuration of the machine (the
  mode, the relocation, the resources the monitor owns), or *behaviour sensitive*, what
  it does depends on that configuration or on the mode.

Their theorem 1: a virtual machine monitor in the trap-and-emulate style can be built
when every sensitive instruction is privileged. The guest kernel then runs deprivileged,
and each sensitive instruction it executes traps to the monitor, which emulates it on
the virtual machine's state.

The table here is not typed in: every instruction of ``virtkit.isa.instructions`` (and,
for the CSR instructions, a read and a write of every CSR of ``virtkit.isa.csrs``) is
encoded with fixed operands and executed once on a fresh hart in each of five *worlds*:
U-mode, and S- or M-mode in machine state A or B. State B differs from A in every
supervisor- and machine-level CSR that leaves translation, protection, delegation and
interrupt delivery alone (``state_b``). Then:

- *traps in U* (what trap-and-emulate needs; RISC-V's U-mode is P&G's user mode) is
  whether the run in U-mode trapped;
- *control sensitive*: run where it is legal (S-mode, else M-mode) and with its trap
  taken if it is a trap instruction (ECALL, EBREAK), it changed the mode, a supervisor-
  or machine-level CSR, the TLB, or it stopped the hart until an interrupt (WFI);
- *behaviour sensitive*: its visible result (trap and cause, rd, memory, next pc)
  differed between states A and B in S- or M-mode, or between S- and M-mode.

U-mode is left out of the behaviour comparison on purpose: every instruction that traps
in U but not in S "depends on the mode" there, and that is the privilege question.

Counters (cycle, time, instret) read the same in every world: their values depend on
time, which P&G leave out of their equivalence property ("except for timing"), and
the worlds run the same number of instructions. The hypervisor extension's instructions
and CSRs belong to lesson 05 and are left out; so are the numbered copies of the
performance counters and PMP registers beyond the first of each.

``classify()`` gives the whole table (cached); ``classify_word(word)`` one instruction.
With ``sstatus_unprivileged=True`` the measurement runs on a hart with the
Popek-Goldberg switch on (``Hart.sstatus_unprivileged``: U-mode reads of sstatus give
the real value and writes are ignored, as x86's PUSHF/POPF did): the table then shows
the instructions that break the theorem.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from virtkit.cpu import Hart
from virtkit.cpu import exits as E
from virtkit.isa import causes as C
from virtkit.isa import csrs
from virtkit.isa import instructions as I
from virtkit.isa.disasm import disassemble
from virtkit.isa.encoding import encode, operand_fields

RAM_BASE = 0x8000_0000
CODE = RAM_BASE  # the one instruction measured
SCRATCH = RAM_BASE + 0x1000  # the word loads, stores and atomics reach (a1)
RAM_SIZE = 1 << 14
RD_BEFORE = 0x0BAD_F00D  # a0 before the instruction: a result shows as a change
SCRATCH_BEFORE = 0x1234_5678
RS2_VALUE = 0xFFFF_FFFF  # a2: the value CSR writes and stores write
MODES = ("U", "S", "M")
# (mode, state) of each run. U-mode only in state A: with state B's pending supervisor
# interrupt, U-mode (where supervisor interrupts are always enabled) would take it.
WORLDS = (("U", "A"), ("S", "A"), ("S", "B"), ("M", "A"), ("M", "B"))

# The operands every instruction is measured with: rd = a0, rs1 = a1 (the scratch
# address), rs2 = a2, zero offsets, and branches and jumps to the next instruction.
OPERANDS = {
    "rd": 10,
    "rs1": 11,
    "rs2": 12,
    "imm12": 0,
    "simm12": 0,
    "bimm13": 4,
    "jimm21": 4,
    "imm20": 0x12345,
    "shamt": 1,
    "zimm": 0,
    "pred": 0b1111,
    "succ": 0b1111,
    "aqrl": 0,
}
FENCE_VMA_OPERANDS = {"rs1": 0, "rs2": 0}  # sfence.vma with no address: flush everything

EXTENSIONS = ("I", "M", "A", "Zicsr", "Zifencei", "priv")  # not H: that is lesson 05
CSR_READ, CSR_WRITE = "csrrs", "csrrw"  # csrr rd, csr / csrw csr, rs1 (the other four
#                                         CSR instructions classify as these two do)

# CSRs left out of the table: the hypervisor's (lesson 05), the performance counters
# beyond cycle and instret (virtkit has none: they read 0), and PMP beyond entry 0.
_LEFT_OUT = ("hpmcounter", "mhpmcounter", "mhpmevent", "pmpaddr", "pmpcfg")


def _table_csr(csr: csrs.Csr) -> bool:
    if csr.privilege == csrs.PRIV_H:
        return False
    if csr.name in ("pmpaddr0", "pmpcfg0"):
        return True
    return not csr.name.startswith(_LEFT_OUT)


# -- The machine states A and B ---------------------------------------------------------------

# CSRs that state B leaves as in A: protection (PMP), who takes traps and interrupts
# (delegation, enables, pending bits: set apart below), the counters and what enables
# them in S-mode, and misa (this hart cannot turn extensions off). satp does change:
# PATTERN has MODE = 0 (Bare), so B has another ASID and PPN and still no translation.
_KEPT_IN_B = {"medeleg", "mideleg", "mie", "mip", "sie", "sip", "mstatus", "sstatus"}
_KEPT_IN_B |= {"mcounteren", "mcountinhibit", "misa", "mcycle", "minstret"}
_KEPT_IN_B |= {"mcycleh", "minstreth"}
PATTERN = 0x5A5A_5A5D  # B's value for the CSRs it changes, before their field rules
assert not PATTERN >> 31, "PATTERN must leave satp.MODE Bare"
COUNTERS = csrs.mask("mcounteren", "CY", "TM", "IR")  # cycle, time, instret: readable

# mstatus in B: the stacked fields (SPP, SPIE, MPIE, MPP = S) and SUM, MXR; not the
# enables (an interrupt could be taken), MPRV, TVM, TW or TSR (they change what traps).
MPP_S = csrs.PRIV_S << csrs.shift("mstatus", "MPP")
MSTATUS_B = csrs.mask("mstatus", "SPP", "SPIE", "MPIE", "SUM", "MXR") | MPP_S
# Supervisor interrupts are delegated to S in both states, as firmware does. B enables
# them and makes one pending (SSIP), so it shows in sip; no world of B takes it: S-mode
# has SIE = 0 and M-mode never takes a delegated interrupt.
S_INTERRUPTS = csrs.mask("mip", "SSIP", "STIP", "SEIP")
SSIP = csrs.mask("mip", "SSIP")


def state_b_csrs() -> tuple[str, ...]:
    """The CSRs that state B writes with PATTERN (the rest of B is set in ``_set_state``)."""
    return tuple(
        csr.name
        for csr in csrs.CSRS
        if csr.privilege in (csrs.PRIV_S, csrs.PRIV_M)
        and not csr.read_only
        and csr.name not in _KEPT_IN_B
        and not csr.name.startswith(("pmp", "mhpmcounter"))
    )


def _privileged_state_csrs() -> tuple[str, ...]:
    """What control sensitivity looks at: every S- and M-level CSR but the counters."""
    return tuple(
        csr.name
        for csr in csrs.CSRS
        if csr.privilege in (csrs.PRIV_S, csrs.PRIV_M)
        and not csr.name.startswith(("mcycle", "minstret", "mhpmcounter"))
    )


# -- What one run shows ---------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What one instruction did in one world."""

    trap: int | None  # the exception cause, None when it did not trap
    waits: bool  # WFI: the hart stopped until an interrupt
    rd: int  # a0 afterwards
    scratch: int  # the scratch word afterwards
    next_pc: int
    mode: str  # the mode afterwards (after taking the trap, for the control run)
    changed: tuple[str, ...]  # privileged CSRs it changed
    tlb_flushed: bool

    def visible(self) -> tuple:
        """The result a program sees: trap and cause, rd, memory, where it goes next."""
        return (self.trap, self.waits, self.rd, self.scratch, self.next_pc)

    def describe(self) -> str:
        if self.trap is not None:
            return f"traps ({C.cause_name(self.trap)})"
        if self.waits:
            return "waits for an interrupt"
        effects = []
        if self.rd != RD_BEFORE:
            effects.append(f"a0 = {self.rd:#010x}")
        if self.scratch != SCRATCH_BEFORE:
            effects.append(f"memory = {self.scratch:#010x}")
        if self.next_pc != CODE + 4:
            effects.append(f"next pc {self.next_pc:#010x}")
        return ", ".join(effects) or "runs"


@dataclass(frozen=True)
class Classification:
    """One instruction, classified by what it did in the five worlds.

    ``traps`` is the exception cause in U-, S- and M-mode (None: no trap), state A;
    ``control`` and ``behaviour`` say why it is sensitive that way ("" when it is not).
    """

    text: str  # disassembled: "csrr a0,sstatus", "addi a0,a1,0" (no aliases but for SYSTEM)
    word: int
    name: str  # the mnemonic of the instruction table
    extension: str
    csr: str | None  # the CSR of a CSR row
    traps: tuple[int | None, int | None, int | None]
    control: str
    behaviour: str

    @property
    def sensitive(self) -> bool:
        return bool(self.control or self.behaviour)

    @property
    def privileged(self) -> bool:
        """Traps when run in U-mode: the guest kernel cannot run it unseen."""
        return self.traps[0] is not None

    def trap_in(self, mode: str) -> int | None:
        return self.traps[MODES.index(mode)]

    @property
    def category(self) -> str:
        if self.sensitive and self.privileged:
            return "sensitive, privileged"
        if self.sensitive:
            return "sensitive, NOT privileged"
        if self.privileged:
            return "privileged, not sensitive"
        return "innocuous"

    @property
    def answer(self) -> dict[str, bool]:
        """The classification as exercise 04.1 asks for it."""
        return {"sensitive": self.sensitive, "privileged": self.privileged}


class ClassificationError(RuntimeError):
    """The measurement cannot be made as asked (e.g. the hart lacks the switch)."""


# -- Measuring ------------------------------------------------------------------------------


def _encode_row(insn: I.Instruction, csr: csrs.Csr | None = None) -> int:
    values = {}
    for operand in insn.operands:
        for name in operand_fields(operand):
            values[name] = OPERANDS.get(name, 0)
    if insn.format == "FENCE_VMA":
        values.update(FENCE_VMA_OPERANDS)
    if insn.format in ("AMO", "LR"):
        values["aqrl"] = 0
    if csr is not None:
        values["csr"] = csr.number
        if insn.name == CSR_READ:
            values["rs1"] = 0  # csrr a0, csr: read, do not write
        else:
            values["rd"] = 0  # csrw csr, a2: write, do not read
            values["rs1"] = 12
    return encode(insn, **values)


@dataclass(frozen=True)
class Probe:
    """An instruction word to measure, and where it comes from."""

    word: int
    name: str
    extension: str
    csr: str | None = None


def probes() -> tuple[Probe, ...]:
    """Every instruction the table classifies, in the instruction table's order."""
    rows = []
    for insn in I.INSTRUCTIONS:
        if insn.extension not in EXTENSIONS:
            continue
        if insn.extension == "Zicsr":
            if insn.name not in (CSR_READ, CSR_WRITE):
                continue
            for csr in csrs.CSRS:
                if not _table_csr(csr) or (insn.name == CSR_WRITE and csr.read_only):
                    continue
                rows.append(Probe(_encode_row(insn, csr), insn.name, insn.extension, csr.name))
            continue
        rows.append(Probe(_encode_row(insn), insn.name, insn.extension))
    return tuple(rows)


class _Bench:
    """One hart, reset before every run, and the worlds it is put in."""

    def __init__(self, sstatus_unprivileged: bool):
        self.hart = Hart(RAM_SIZE, trap_exits="all", wfi_exits=True)
        self.sstatus_unprivileged = sstatus_unprivileged
        self.state_b = state_b_csrs()
        self.watched = _privileged_state_csrs()

    def _set_state(self, state: str) -> None:
        csr = self.hart.csr
        csr["pmpaddr0"] = 0xFFFF_FFFF  # all memory, read/write/execute, for S and U
        csr["pmpcfg0"] = 0x1F
        csr["mcounteren"] = COUNTERS  # counters readable in S and U, as firmware does
        csr["scounteren"] = COUNTERS
        csr["mideleg"] = S_INTERRUPTS
        if state == "B":
            for name in self.state_b:
                csr[name] = PATTERN
            csr["mstatus"] = MSTATUS_B
            csr["mie"] = S_INTERRUPTS
            csr["mip"] = SSIP

    def _snapshot(self) -> dict[str, int]:
        csr = self.hart.csr
        return {name: csr[name] for name in self.watched}

    def run(self, word: int, mode: str, state: str, *, take_trap: bool = False) -> Outcome:
        hart = self.hart
        hart.reset(CODE)
        hart.sstatus_unprivileged = self.sstatus_unprivileged
        hart.write_word(CODE, word)
        hart.write_word(SCRATCH, SCRATCH_BEFORE)
        hart.x["a0"] = RD_BEFORE
        hart.x["a1"] = SCRATCH
        hart.x["a2"] = RS2_VALUE
        self._set_state(state)
        hart.mode = mode
        before = self._snapshot()
        hart.arrays.tlb_tag[0] = 1  # a marked TLB entry: does the instruction flush it?
        exit = hart.run(1)
        trap = exit.cause if exit.reason == E.EXIT_TRAP and not exit.interrupt else None
        if exit.reason == E.EXIT_TRAP and exit.interrupt:
            raise ClassificationError(f"an interrupt was taken in world {mode}/{state}: {exit}")
        if trap is not None and take_trap:
            hart.take_trap(trap, exit.tval)
        after = self._snapshot()
        changed = tuple(name for name in self.watched if after[name] != before[name])
        return Outcome(
            trap=trap,
            waits=exit.reason == E.EXIT_WFI,
            rd=hart.x["a0"],
            scratch=hart.read_word(SCRATCH),
            next_pc=hart.pc,
            mode=hart.mode,
            changed=changed,
            tlb_flushed=hart.arrays.tlb_tag[0] == 0,
        )


def _control(bench: _Bench, word: int, runs: dict) -> str:
    """Why running ``word`` changes the machine's configuration, or ""."""
    legal = "S" if runs["S", "A"].trap != C.CAUSE_ILLEGAL_INSTRUCTION else "M"
    if runs[legal, "A"].trap == C.CAUSE_ILLEGAL_INSTRUCTION:
        return ""  # legal nowhere: it changes nothing
    outcome = bench.run(word, legal, "A", take_trap=True)
    reasons = []
    if outcome.trap is not None:
        reasons.append(f"its trap ({C.cause_name(outcome.trap)}) enters {outcome.mode}-mode")
    elif outcome.mode != legal:
        reasons.append(f"changes the mode ({legal} -> {outcome.mode})")
    changed = [name for name in outcome.changed if outcome.trap is None]
    if changed:
        reasons.append("writes " + ", ".join(changed))
    if outcome.tlb_flushed and not changed:
        reasons.append("flushes the TLB")
    if outcome.waits:
        reasons.append("stops the hart until an interrupt")
    return "; ".join(reasons)


def _behaviour(runs: dict) -> str:
    """Why what ``word`` does depends on the mode or the machine state, or ""."""
    for mode in ("S", "M"):
        a, b = runs[mode, "A"], runs[mode, "B"]
        if a.visible() != b.visible():
            return (
                f"in {mode}-mode it depends on the machine state: {a.describe()} in "
                f"state A, {b.describe()} in state B"
            )
    s, m = runs["S", "A"], runs["M", "A"]
    if s.visible() != m.visible():
        return f"depends on the mode: {s.describe()} in S-mode, {m.describe()} in M-mode"
    return ""


def _measure(bench: _Bench, probe: Probe) -> Classification:
    runs = {world: bench.run(probe.word, *world) for world in WORLDS}
    return Classification(
        text=disassemble(probe.word, CODE, aliases=probe.extension in ("Zicsr", "priv")),
        word=probe.word,
        name=probe.name,
        extension=probe.extension,
        csr=probe.csr,
        traps=tuple(runs[mode, "A"].trap for mode in MODES),
        control=_control(bench, probe.word, runs),
        behaviour=_behaviour(runs),
    )


@functools.cache
def _bench(sstatus_unprivileged: bool) -> _Bench:
    return _Bench(sstatus_unprivileged)


@functools.cache
def classify(*, sstatus_unprivileged: bool = False) -> tuple[Classification, ...]:
    """Every instruction of the table (see ``probes``), measured in the five worlds."""
    bench = _bench(sstatus_unprivileged)
    return tuple(_measure(bench, probe) for probe in probes())


@functools.lru_cache(maxsize=1024)
def classify_word(word: int, *, sstatus_unprivileged: bool = False) -> Classification:
    """One instruction word, measured as the table's are (with its own operands)."""
    insn = I.lookup(word)
    if insn is None or insn.extension not in EXTENSIONS:
        raise ClassificationError(
            f"{word:#010x} is not an instruction of RV32IMA, Zicsr, Zifencei or the "
            "privileged architecture"
        )
    csr = None
    if insn.extension == "Zicsr":
        number = (word >> 20) & 0xFFF
        csr = csrs.BY_NUMBER[number].name if number in csrs.BY_NUMBER else f"{number:#x}"
    probe = Probe(word, insn.name, insn.extension, csr)
    return _measure(_bench(sstatus_unprivileged), probe)


def violations(table) -> list[Classification]:
    """The rows that break theorem 1: sensitive, yet they do not trap in U-mode."""
    return [row for row in table if row.sensitive and not row.privileged]


def trap_text(cause: int | None) -> str:
    return "-" if cause is None else C.cause_name(cause)


def rows(table) -> list[list[str]]:
    """The table as text cells, for printing or a widget."""
    return [
        [
            row.text,
            row.extension,
            *(trap_text(cause) for cause in row.traps),
            row.control or "-",
            row.behaviour or "-",
            row.category,
        ]
        for row in table
    ]


HEADER = [
    "instruction",
    "extension",
    "in U-mode",
    "in S-mode",
    "in M-mode",
    "control sensitive",
    "behaviour sensitive",
    "class",
]
