"""Exercise 04.1: classify instructions as Popek and Goldberg do.

Popek and Goldberg (CACM 1974) call an instruction *sensitive* when it changes the
machine's configuration (control sensitive) or when what it does depends on the mode or
the configuration (behaviour sensitive), and *privileged* when it traps in user mode.
A trap-and-emulate monitor works when every sensitive instruction is privileged.

Each seed picks eight instructions of RV32 (ordinary ones, CSR reads and writes of
supervisor and machine CSRs, and the system instructions). The student writes
``classify(word)`` returning ``{"sensitive": bool, "privileged": bool}``. The expected
answer is what virtkit.popek_goldberg measures on the hart; the check also boots a
small guest kernel made of the eight instructions under the full-virtualization
monitor (trap-and-emulate), where "privileged" is what the monitor sees: the
instructions that trap to it, while the rest run on the hart unseen. A wrong answer is
told what the measurement and the monitor saw for that instruction.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass

from virtkit import popek_goldberg as PG
from virtkit.exercises import Exercise, register, shown
from virtkit.exercises.in_monitor import LIMIT, Guest, boot
from virtkit.isa import csrs
from virtkit.isa.causes import (
    CAUSE_BREAKPOINT,
    CAUSE_ILLEGAL_INSTRUCTION,
    CAUSE_USER_ECALL,
    cause_name,
)
from virtkit.monitors.inspect import ExitRecorder

SYSTEM = ("ecall", "ebreak", "sret", "mret", "wfi", "sfence.vma")
PICKS = (("plain", 3), ("S CSR", 2), ("M CSR", 1), ("system", 2))  # eight in all
EID_BASE, EID_TIME, EID_SRST = 0x10, 0x54494D45, 0x53525354
# Causes that mean "this instruction needs the monitor" (page faults there are the
# monitor filling shadow entries, which any instruction can meet).
TRAPPING = (CAUSE_ILLEGAL_INSTRUCTION, CAUSE_USER_ECALL, CAUSE_BREAKPOINT)
KEYS = ("sensitive", "privileged")


def _kind(probe: PG.Probe) -> str:
    if probe.name in SYSTEM:
        return "system"
    if probe.csr is None or csrs.BY_NAME[probe.csr].privilege == csrs.PRIV_U:
        return "plain"  # counters are read like any register
    return "S CSR" if csrs.BY_NAME[probe.csr].privilege == csrs.PRIV_S else "M CSR"


@dataclass(frozen=True)
class ClassifyProblem:
    seed: int
    words: tuple[int, ...]

    def texts(self) -> list[str]:
        return [PG.classify_word(word).text for word in self.words]

    def __repr__(self) -> str:
        lines = [
            f"Exercise 04.1 (seed {self.seed}): is each instruction sensitive? privileged "
            "(does it trap in U-mode)?"
        ]
        lines += [
            f"  {k}. {word:#010x}  {text}"
            for k, (word, text) in enumerate(zip(self.words, self.texts(), strict=True), 1)
        ]
        return "\n".join(lines)


def generate(seed: int) -> ClassifyProblem:
    rng = random.Random(f"04.1/{seed}")
    by_kind: dict[str, list[PG.Probe]] = {}
    for probe in PG.probes():
        by_kind.setdefault(_kind(probe), []).append(probe)
    chosen = [p for kind, count in PICKS for p in rng.sample(by_kind[kind], count)]
    rng.shuffle(chosen)
    return ClassifyProblem(seed, tuple(probe.word for probe in chosen))


def solve(problem: ClassifyProblem):
    """The reference: the measured classification of any word."""
    return reference_classify


def reference_classify(word: int) -> dict[str, bool]:
    return PG.classify_word(word).answer


# -- The guest kernel made of the problem's instructions ----------------------------------


def guest_source(problem: ClassifyProblem) -> str:
    """An S-mode kernel that runs each instruction once, each after the setup that makes
    it harmless (a CSR write writes the CSR's own value, jumps land on the next
    instruction, sret returns to S-mode there, wfi has a timer to wake it), with a trap
    handler that skips what traps (M-level CSRs, mret, ebreak)."""
    lines = ["_start:", "    la t0, trap", "    csrw stvec, t0", "    la a1, scratch"]
    lines += ["    lw t0, 0(a1)  # the scratch page is mapped before the instructions run"]
    for k, word in enumerate(problem.words, 1):
        probe = PG.classify_word(word)
        lines += [f"    {line}" for line in _setup(probe, f"after_{k}")]
        lines += [f"probe_{k}:", f"    .word {word:#010x}  # {probe.text}", f"after_{k}:"]
        lines += ["    la a1, scratch", "    li a2, -1"]
    lines += [
        f"    li a7, {EID_SRST:#x}",
        "    li a6, 0",
        "    li a0, 0",
        "    li a1, 0",
        "    ecall",
        "    .align 2",
        "trap:",
        "    csrr t0, sepc",
        "    addi t0, t0, 4",
        "    csrw sepc, t0",
        "    sret",
        "    .align 4",
        "scratch:",
        "    .word 0",
    ]
    return "\n".join(lines) + "\n"


def _setup(probe: PG.Classification, after: str) -> list[str]:
    if probe.csr is not None and probe.name == PG.CSR_WRITE:
        return [f"csrr a2, {probe.csr}"]  # write back what is there
    match probe.name:
        case "jalr":
            return [f"la a1, {after}"]
        case "ecall":
            return [f"li a7, {EID_BASE:#x}", "li a6, 0"]  # SBI get_spec_version
        case "sret":
            return [f"la t0, {after}", "csrw sepc, t0", "li t0, 0x100", "csrs sstatus, t0"]
        case "wfi":
            return [
                "rdtime a0",
                "addi a0, a0, 1",
                "li a1, 0",
                f"li a7, {EID_TIME:#x}",
                "li a6, 0",
                "ecall",
            ]
    return []


@dataclass(frozen=True)
class Seen:
    """What the monitor saw of one instruction of the guest."""

    pc: int
    trapped: str  # the exit's cause and what the monitor did, or "" when it ran unseen


@functools.lru_cache(maxsize=32)
def monitor_run(problem: ClassifyProblem) -> tuple[Seen, ...]:
    """Boot the guest under trap-and-emulate; for each instruction, whether it trapped."""
    guest = Guest.program(f"the kernel of seed {problem.seed}", guest_source(problem))
    monitor = boot(guest)
    recorder = ExitRecorder(monitor, limit=LIMIT)
    result = monitor.run(until=LIMIT)
    if result.reason != "halt":
        raise RuntimeError(f"the classification guest did not halt: {result}")
    symbols = guest.image().symbols
    rows = recorder.rows
    seen = []
    for k in range(1, len(problem.words) + 1):
        pc = symbols[f"probe_{k}"]
        traps = [
            row
            for row in rows
            if row.pc == pc
            and row.kind == "trap"
            and any(row.cause == cause_name(cause) for cause in TRAPPING)
        ]
        trapped = f"{traps[0].cause}; the monitor: {traps[0].handled_by}" if traps else ""
        seen.append(Seen(pc, trapped))
    return tuple(seen)


# -- Checking -----------------------------------------------------------------------------


def _answer_for(answer, word: int, text: str):
    if callable(answer):
        return answer(word)
    if isinstance(answer, dict):
        for key in (word, text):
            if key in answer:
                return answer[key]
        return None
    return None


def mistakes(problem: ClassifyProblem, answer) -> list[str]:
    if not (callable(answer) or isinstance(answer, dict)):
        return [
            "expected a function classify(word) returning {'sensitive': ..., 'privileged': "
            f"...}} (or a dict of those by word), got {type(answer).__name__}"
        ]
    for number, (word, text) in enumerate(zip(problem.words, problem.texts(), strict=True), 1):
        measured = PG.classify_word(word)
        where = f"instruction {number}, `{text}` ({word:#010x})"
        try:
            given = _answer_for(answer, word, text)
        except Exception as error:
            return [f"{where}: your function raised {type(error).__name__}: {error}"]
        if not (isinstance(given, dict) and all(isinstance(given.get(k), bool) for k in KEYS)):
            return [
                f"{where}: expected a dict with True or False under 'sensitive' and "
                f"'privileged', got {shown(given)}"
            ]
        if given["privileged"] != measured.privileged:
            return [f"{where}:", *_privilege_feedback(problem, number, measured)]
        if given["sensitive"] != measured.sensitive:
            return [f"{where}:", *_sensitivity_feedback(measured)]
    return []


def _privilege_feedback(problem: ClassifyProblem, number: int, measured) -> list[str]:
    seen = monitor_run(problem)[number - 1]
    at = f"at pc {seen.pc:#010x}"
    if measured.privileged:
        return [
            f"  you said it is not privileged, but it traps in U-mode "
            f"({cause_name(measured.traps[0])})",
            f"  under the monitor the guest kernel ran it {at} in real U-mode, and it "
            f"trapped to the monitor: {seen.trapped or 'no exit (a virtkit bug: report it)'}",
        ]
    return [
        "  you said it is privileged, but in U-mode it runs without trapping",
        f"  under the monitor the guest kernel ran it {at} in real U-mode: no exit, the "
        "monitor never saw it" + (f" (but it saw: {seen.trapped})" if seen.trapped else ""),
    ]


def _sensitivity_feedback(measured) -> list[str]:
    if measured.sensitive:
        reasons = []
        if measured.control:
            reasons.append(f"  control sensitive: {measured.control}")
        if measured.behaviour:
            reasons.append(f"  behaviour sensitive: {measured.behaviour}")
        return ["  you said it is not sensitive, but it is:", *reasons]
    return [
        "  you said it is sensitive, but it is innocuous: it did the same in S- and M-mode "
        "and in both machine states the measurement tried, and changed no privileged "
        "state (mode, supervisor or machine CSRs, TLB)"
    ]


def solved(problem: ClassifyProblem) -> str:
    table = [PG.classify_word(word) for word in problem.words]
    sensitive = sum(row.sensitive for row in table)
    trapped = sum(bool(seen.trapped) for seen in monitor_run(problem))
    return (
        f"{len(table)} instructions classified: {sensitive} sensitive, all of them "
        f"privileged; under the monitor {trapped} trapped and {len(table) - trapped} ran unseen"
    )


EXERCISE = register(
    Exercise(
        id="04.1",
        generate=generate,
        solve=solve,
        mistakes=mistakes,
        solved=solved,
        hints=(
            "Privileged means: executed in U-mode, it traps. Which instructions can U-mode "
            "code run? Ordinary arithmetic, loads, stores, jumps, and counters that the "
            "kernel allows (cycle, time, instret).",
            "A CSR's number says the lowest mode that may touch it (bits 9:8: 0 U, 1 S, "
            "3 M): csr = word >> 20. Anything above U traps in U-mode.",
            "Sensitive: it changes something only the kernel (or the monitor) should "
            "control, or its result reveals such state. Reading or writing a supervisor or "
            "machine CSR is both; so are sret, mret, wfi, sfence.vma.",
            "ecall and ebreak trap in every mode (they enter a more privileged mode on "
            "purpose): they are sensitive, and they trap in U-mode.",
        ),
        generalizes=lambda answer: callable(answer),
    )
)
