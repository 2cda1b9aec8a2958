"""Exercise 00.3: write an M-mode trap handler that counts ecalls from U-mode.

RISC-V privileged spec 20211203, 3.1.7 (mtvec), 3.1.14 (mepc), 3.1.15 (mcause), 3.3.1
(ECALL) and 3.3.2 (MRET). The student writes a handler at the label ``trap_handler``; a
fixed harness points mtvec at it, drops to U-mode with MRET and runs a user program that
makes a few ecalls (how many, and the values in its registers, depend on the seed).
The handler must add one to the word ``ecall_count`` for each ecall and resume the user
program at the instruction after the ecall, changing no register but t0 and t1.

Checking runs the harness on a Hart twice, with the reference handler and with the
student's, stops both just after each ecall returns, and reports the first register,
CSR or memory word that differs.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from virtkit.cpu import Hart
from virtkit.cpu import exits as E
from virtkit.exercises import Exercise, register
from virtkit.isa.asm import AssemblerError, assemble
from virtkit.isa.causes import cause_name
from virtkit.isa.registers import ABI_NAMES

RAM_BASE = 0x8000_0000
HARNESS_BASE = RAM_BASE  # the harness: M-mode setup, then the user program
HANDLER_BASE = RAM_BASE + 0x1000  # the student's source
COUNT_ADDRESS = RAM_BASE + 0x3000  # the word ecall_count
HANDLER_LIMIT = COUNT_ADDRESS - HANDLER_BASE
RAM_SIZE = 1 << 16
BUDGET_PER_ECALL = 2_000
SCRATCH = ("t0", "t1")  # the registers a handler may change
CHECKED_REGISTERS = tuple(n for n in ABI_NAMES[1:] if n not in SCRATCH)
CHECKED_CSRS = ("mepc", "mcause", "mstatus", "mtval")

REFERENCE_HANDLER = """\
trap_handler:
    la t0, ecall_count      # ecall_count += 1
    lw t1, 0(t0)
    addi t1, t1, 1
    sw t1, 0(t0)
    csrr t0, mepc           # resume after the ecall: mepc += 4
    addi t0, t0, 4
    csrw mepc, t0
    mret
"""


@dataclass(frozen=True)
class HandlerProblem:
    """The user program of one seed: register values, then ``ecalls`` ecalls."""

    seed: int
    ecalls: int
    registers: tuple[tuple[str, int], ...]  # (ABI name, value) set before the first ecall

    def __repr__(self) -> str:
        return (
            f"Exercise 00.3 (seed {self.seed}): a U-mode program makes {self.ecalls} ecalls; "
            "your handler at trap_handler must count them in the word ecall_count and "
            "return to the instruction after each ecall, changing no register but t0 and t1."
        )


def generate(seed: int) -> HandlerProblem:
    rng = random.Random(f"00.3/{seed}")
    registers = tuple((name, rng.getrandbits(32)) for name in CHECKED_REGISTERS)
    return HandlerProblem(seed, rng.randint(2, 4), registers)


def solve(problem: HandlerProblem) -> str:
    return REFERENCE_HANDLER


def harness_source(problem: HandlerProblem, handler_address: int) -> str:
    """M-mode setup that enters the user program in U-mode, and the user program."""
    lines = [
        f".equ trap_handler, {handler_address:#x}",
        "_start:",
        "    li t0, -1               # PMP entry 0: all of memory, RWX, for U-mode",
        "    csrw pmpaddr0, t0",
        "    li t0, 0x1f",
        "    csrw pmpcfg0, t0",
        "    la t0, trap_handler",
        "    csrw mtvec, t0",
        "    la t0, user",
        "    csrw mepc, t0",
        "    li t0, 0x1800           # mstatus.MPP = U",
        "    csrc mstatus, t0",
        "    mret",
        "user:",
    ]
    lines += [f"    li {name}, {value:#x}" for name, value in problem.registers]
    for k in range(problem.ecalls):
        lines += ["    ecall", f"after_ecall_{k + 1}:"]
    lines.append("    ebreak")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Snapshot:
    """What the checker compares after each ecall returns (or where the run stopped)."""

    stop: str  # "" when the hart reached the instruction after the ecall
    mode: str
    pc: int
    count: int
    values: tuple[tuple[str, int], ...]  # checked registers, then checked CSRs


class HandlerError(Exception):
    """The student's source cannot run: it does not assemble, or lacks trap_handler."""


def _load(problem: HandlerProblem, handler: str) -> tuple[Hart, dict[int, int]]:
    """A hart with the handler and the harness in RAM; and the pc after each ecall -> k."""
    try:
        student = assemble(
            handler + f"\n.equ ecall_count, {COUNT_ADDRESS:#x}\n",
            filename="<your handler>",
            base=HANDLER_BASE,
        )
    except AssemblerError as exc:
        raise HandlerError(f"your handler does not assemble:\n{exc}") from None
    if "trap_handler" not in student.symbols:
        raise HandlerError(
            "your source has no label trap_handler: start the handler with a line 'trap_handler:'"
        )
    size = sum(len(data) for _, data in student.segments())
    if size > HANDLER_LIMIT:
        raise HandlerError(f"your handler is {size} bytes; it must fit in {HANDLER_LIMIT}")
    harness = assemble(
        harness_source(problem, student.symbols["trap_handler"]),
        filename="<harness>",
        base=HARNESS_BASE,
    )
    hart = Hart(RAM_SIZE, ebreak_exits=True)
    for program in (student, harness):
        for address, data in program.segments():
            hart.write_memory(address, data)
    hart.pc = harness.entry
    after = {harness.symbols[f"after_ecall_{k}"]: k for k in range(1, problem.ecalls + 1)}
    hart.breakpoints = after
    return hart, after


def _snapshot(hart: Hart, stop: str) -> Snapshot:
    values = tuple((name, hart.x[name]) for name in CHECKED_REGISTERS)
    values += tuple((name, hart.csr[name]) for name in CHECKED_CSRS)
    return Snapshot(stop, hart.mode, hart.pc, hart.read_word(COUNT_ADDRESS), values)


def run(problem: HandlerProblem, handler: str) -> list[Snapshot]:
    """Run the harness with ``handler``; a snapshot after each ecall, up to the first stop."""
    hart, after = _load(problem, handler)
    snapshots = []
    for k in range(1, problem.ecalls + 1):
        exit = hart.run(BUDGET_PER_ECALL)
        if exit.reason != E.EXIT_BREAKPOINT or after.get(hart.pc) != k:
            snapshots.append(_snapshot(hart, _describe_stop(exit)))
            break
        snapshots.append(_snapshot(hart, ""))
    return snapshots


def _describe_stop(exit: E.Exit) -> str:
    if exit.reason == E.EXIT_BUDGET:
        return f"still running after {BUDGET_PER_ECALL} instructions"
    if exit.reason == E.EXIT_BREAKPOINT:
        return "back in the user program, but not at the instruction after the ecall"
    return f"stopped with {exit.name}"


def _ordinal(n: int) -> str:
    return {1: "1st", 2: "2nd", 3: "3rd"}.get(n, f"{n}th")


def mistakes(problem: HandlerProblem, answer) -> list[str]:
    if not isinstance(answer, str):
        return [f"expected the handler's assembly source as a string, got {type(answer).__name__}"]
    try:
        got = run(problem, answer)
    except HandlerError as exc:
        return str(exc).splitlines()
    expected = run(problem, REFERENCE_HANDLER)
    for k, (want, have) in enumerate(zip(expected, got, strict=False), start=1):
        where = f"after the {_ordinal(k)} ecall"
        if have.stop:
            wrong = [
                f"{where} the hart did not return to the instruction after the ecall: it was "
                f"{have.stop}, in {have.mode}-mode at pc {have.pc:#010x}, with "
                f"mcause = {cause_name(dict(have.values)['mcause'])}"
            ]
            if have.count > want.count:
                wrong.append(
                    f"ecall_count is {have.count} after {k} ecall(s): mret returns to mepc, "
                    "which still points at the ecall, so it runs again; add 4 to mepc"
                )
            return wrong
        if have.mode != want.mode:
            return [
                f"{where} the hart runs the user program in {have.mode}-mode, expected "
                f"{want.mode}-mode: mret returns to the mode in mstatus.MPP, leave it as it is"
            ]
        if have.count != want.count:
            return [f"{where}, ecall_count: expected {want.count}, got {have.count}"]
        for (name, value), (_, value_got) in zip(want.values, have.values, strict=True):
            if value != value_got:
                kind = "CSR" if name in CHECKED_CSRS else "register"
                wrong = [f"{where}, {kind} {name}: expected {value:#010x}, got {value_got:#010x}"]
                if kind == "register":
                    wrong.append(
                        "the handler may change only t0 and t1; save any other register "
                        "it uses (in mscratch, or in memory) and restore it before mret"
                    )
                return wrong
    return []


def solved(problem: HandlerProblem) -> str:
    return f"{problem.ecalls} ecalls counted, and the user program resumed after each one"


EXERCISE = register(
    Exercise(
        id="00.3",
        generate=generate,
        solve=solve,
        mistakes=mistakes,
        solved=solved,
        hints=(
            "The harness already points mtvec at trap_handler; the handler runs in M-mode "
            "with mepc = the address of the ecall.",
            "Count: la t0, ecall_count / lw t1, 0(t0) / addi t1, t1, 1 / sw t1, 0(t0).",
            "mret jumps to mepc. An ecall is 4 bytes: add 4 to mepc (csrr, addi, csrw) or "
            "the same ecall runs again forever.",
        ),
        generalizes=lambda answer: isinstance(answer, str),
    )
)
