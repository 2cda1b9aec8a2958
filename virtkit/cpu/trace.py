"""``TrapRecorder``: a log of every trap and exit of a hart, one row each.

    recorder = TrapRecorder(hart)
    exit = recorder.run(1_000_000)     # like hart.run, but every trap is written down
    for row in recorder.rows: print(row)

To see traps that software handles itself, the recorder asks the hart to exit on
every trap (``trap_exits="all"``), writes the trap down, and then does what the hart
would have done: it delivers the trap to the level that takes it (privileged spec
20211203, 3.1.8: medeleg/mideleg decide, and from VS- or VU-mode 8.6.2: hedeleg/hideleg
may hand it on to VS-mode; delegation never lowers the privilege), or,
when Python owns that level under the hart's original ``trap_exits``, returns the
exit to the caller as ``hart.run`` would. Nothing about the program's behaviour
changes; only who looks at the trap first.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from virtkit.cpu import exits as E
from virtkit.cpu import trap
from virtkit.isa.disasm import disassemble


@dataclass(frozen=True)
class TrapRow:
    sequence: int
    instret: int  # instructions retired when it happened
    pc: int
    mode: str  # the mode the hart was in: "U", "S", "M", "VU" or "VS"
    kind: str  # "trap" or the exit's name ("EBREAK", "MMIO_WRITE", ...)
    cause: str  # the cause name for traps, a short description for other exits
    tval: int
    instruction: str  # the instruction at pc, disassembled ("" for interrupts)
    handled_by: str

    def __str__(self) -> str:
        return (
            f"#{self.sequence} pc={self.pc:#010x} {self.mode}-mode {self.kind}: {self.cause}"
            f" tval={self.tval:#x} [{self.instruction}] -> {self.handled_by}"
        )


# Target modes by trap level; HS-mode is "S", as in hart.mode and hart.trap_exits.
_TARGET_NAMES = {int(trap.LEVEL_M): "M", int(trap.LEVEL_HS): "S", int(trap.LEVEL_VS): "VS"}


def target_mode(hart, exit: E.Exit) -> str:
    """The mode that takes the trap of a TRAP exit: "M", "S" (HS) or "VS" (3.1.8, 8.6.2)."""
    a = hart.arrays
    interrupt = trap.INTERRUPT if exit.interrupt else trap.EXCEPTION
    return _TARGET_NAMES[int(trap.target_level(a.st, a.csr, exit.cause, interrupt))]


class TrapRecorder:
    """Runs a hart like ``hart.run`` and keeps one ``TrapRow`` per trap or exit.

    ``owners`` is the set of modes whose traps Python owns, read from the hart's
    ``trap_exits`` when the recorder is made. Exits that are not traps (EBREAK, WFI,
    MMIO, HALT) are recorded and returned; BUDGET is returned but not recorded.
    """

    def __init__(self, hart, limit: int = 10_000):
        self.hart = hart
        self.limit = limit  # rows kept, oldest dropped first; ``dropped`` counts them
        self.rows: list[TrapRow] = []
        self.dropped = 0
        self.owners = {"none": set(), "M": {"M"}, "S": {"S"}, "M+S": {"M", "S"}}.get(
            hart.trap_exits, {"M", "S", "VS"}
        )
        self._sequence = 0

    def clear(self) -> None:
        self.rows.clear()
        self.dropped = 0
        self._sequence = 0

    def run(self, budget: int = 1 << 62) -> E.Exit:
        """Run at most ``budget`` instructions; returns the first exit the caller must see."""
        hart = self.hart
        start = hart.instret
        delivered = 0  # traps delivered here: a step each, as in hart.run's budget
        original = hart.trap_exits
        hart.trap_exits = "all"
        try:
            while True:
                exit = hart.run(max(budget - (hart.instret - start) - delivered, 1))
                if exit.reason != E.EXIT_TRAP:
                    if exit.reason != E.EXIT_BUDGET:
                        self._record(exit, exit.name, _exit_description(exit), "the caller")
                    return exit
                mode = target_mode(hart, exit)
                if mode in self.owners:
                    self._record(exit, "trap", exit.cause_name, f"Python ({mode}-mode exit)")
                    return exit
                row = self._record(exit, "trap", exit.cause_name, "")
                hart.take_trap(
                    exit.cause,
                    exit.tval,
                    interrupt=bool(exit.interrupt),
                    htval=exit.htval,
                    htinst=exit.htinst,
                    gva=bool(exit.gva),
                )
                self.rows[-1] = replace(row, handled_by=f"{mode}-mode handler at {hart.pc:#010x}")
                delivered += 1
                if hart.instret - start + delivered >= budget:
                    return E.Exit(E.EXIT_BUDGET, hart.pc)
        finally:
            hart.trap_exits = original

    def _record(self, exit: E.Exit, kind: str, cause: str, handled_by: str) -> TrapRow:
        self._sequence += 1
        text = "" if exit.interrupt else disassemble(exit.instruction, exit.pc)
        row = TrapRow(
            self._sequence,
            self.hart.instret,
            exit.pc,
            self.hart.mode,
            kind,
            cause,
            exit.tval if exit.reason == E.EXIT_TRAP else 0,
            text,
            handled_by,
        )
        self.rows.append(row)
        if len(self.rows) > self.limit:
            del self.rows[0]
            self.dropped += 1
        return row

    def counts(self) -> dict[str, int]:
        """Rows by cause, for a bar chart."""
        counts: dict[str, int] = {}
        for row in self.rows:
            counts[row.cause] = counts.get(row.cause, 0) + 1
        return counts


def _exit_description(exit: E.Exit) -> str:
    if exit.reason in (E.EXIT_MMIO_READ, E.EXIT_MMIO_WRITE):
        return f"{exit.size}-byte access to {exit.address:#010x}"
    if exit.reason == E.EXIT_HALT:
        return f"exit code {exit.value}"
    return exit.name.lower()
