"""Exercise 00.2: translate an Sv32 virtual address by hand.

RISC-V privileged spec 20211203, 4.3.2 "Virtual Address Translation Process". Each seed
builds a two-level page table in RAM (with some unrelated entries, so indexing matters)
and asks for the physical address that an S-mode load from ``va`` reaches, with
mstatus.SUM = MXR = 0, or "page fault" when the walk faults. The scenarios cover a 4 KiB
page, a 4 MiB megapage, and the faults of steps 3, 5 and 6 of the walk.
"""

from __future__ import annotations

import numbers
import random
from dataclasses import dataclass

from virtkit.cpu import Hart
from virtkit.cpu.mmu import (
    PMP_A_SHIFT,
    PMP_NAPOT,
    PMP_R,
    PMP_W,
    PMP_X,
    PTE_A,
    PTE_R,
    PTE_U,
    PTE_V,
    PTE_W,
    PTE_X,
)
from virtkit.cpu.sv32 import Level
from virtkit.cpu.sv32 import walk as explained_walk
from virtkit.exercises import Exercise, register, shown

RAM_BASE = 0x8000_0000
PAGE_SIZE = 4096
RAM_SIZE = 1 << 20  # the tables and every page they map lie in the first MiB of RAM
SATP_MODE_SV32 = 1 << 31
PTE_SIZE = 4
PAGE_FAULT = "page fault"
SCENARIOS = (
    "page",
    "megapage",
    "invalid at level 1",
    "invalid at level 0",
    "user page",
    "not readable",
    "misaligned megapage",
)
_RAM_PAGES = RAM_SIZE // PAGE_SIZE


@dataclass(frozen=True)
class TranslateProblem:
    """Translate ``va`` for an S-mode load, with ``satp`` and the words in ``memory``."""

    seed: int
    satp: int
    va: int
    memory: tuple[tuple[int, int], ...]  # (physical address, word), sorted

    def read_word(self, address: int) -> int:
        """The 32-bit word of physical memory at ``address`` (0 where nothing is written)."""
        if address % 4:
            raise ValueError(f"{address:#x} is not word aligned: PTEs sit at multiples of 4")
        if not RAM_BASE <= address < RAM_BASE + RAM_SIZE:
            raise ValueError(
                f"{address:#x} is outside RAM ({RAM_BASE:#x}..{RAM_BASE + RAM_SIZE:#x}); "
                "a table address is ppn * 4096, with the ppn taken from satp or the PTE"
            )
        return dict(self.memory).get(address, 0)

    def hart(self) -> Hart:
        """A hart with these page tables in its RAM and this satp, to explore with.

        PMP entry 0 opens all memory to S and U (3.7.1), so the walk's only faults are
        the page faults the exercise is about.
        """
        hart = Hart(RAM_SIZE)
        for address, word in self.memory:
            hart.write_word(address, word)
        hart.csr["pmpaddr0"] = 0xFFFF_FFFF  # NAPOT: all ones covers the whole space
        hart.csr["pmpcfg0"] = PMP_NAPOT << PMP_A_SHIFT | PMP_R | PMP_W | PMP_X
        hart.csr["satp"] = self.satp
        return hart

    def __repr__(self) -> str:
        lines = [
            f"Exercise 00.2 (seed {self.seed}): an S-mode load from va = {self.va:#010x}",
            f"satp = {self.satp:#010x} (MODE = Sv32, PPN = {self.satp & 0x3FFFFF:#x})",
            "mstatus.SUM = 0, mstatus.MXR = 0; the non-zero words of memory:",
        ]
        lines += [f"  {address:#010x}: {word:#010x}" for address, word in self.memory]
        return "\n".join(lines)


def _pte(ppn: int, bits: int) -> int:
    return (ppn << 10) | bits


def generate(seed: int) -> TranslateProblem:
    rng = random.Random(f"00.2/{seed}")
    scenario = SCENARIOS[seed % len(SCENARIOS)] if seed < len(SCENARIOS) else rng.choice(SCENARIOS)
    ram_ppn = RAM_BASE // PAGE_SIZE
    pages = rng.sample(range(1, _RAM_PAGES), 6)
    root, table, leaf, *others = (ram_ppn + page for page in pages)
    vpn1, vpn0, offset = rng.randrange(1 << 10), rng.randrange(1 << 10), rng.randrange(1 << 12)
    data = PTE_V | PTE_R | PTE_A | rng.choice((0, PTE_W))
    memory = {}
    # Unrelated valid entries in both tables: a walk that indexes wrongly finds these.
    for other in others:
        memory[root * PAGE_SIZE + rng.randrange(1 << 10) * PTE_SIZE] = _pte(other, PTE_V)
        memory[table * PAGE_SIZE + rng.randrange(1 << 10) * PTE_SIZE] = _pte(other, data)
    level1 = root * PAGE_SIZE + vpn1 * PTE_SIZE
    level0 = table * PAGE_SIZE + vpn0 * PTE_SIZE
    memory[level1] = _pte(table, PTE_V)
    memory[level0] = _pte(leaf, data)
    if scenario in ("megapage", "misaligned megapage"):
        # RAM starts on a 4 MiB boundary, so ppn[0] = 0 maps the megapage holding RAM;
        # va[21:0] stays inside the first MiB so that the load reaches RAM.
        vpn0 = rng.randrange(RAM_SIZE // PAGE_SIZE)
        ppn0 = rng.randrange(1, 1 << 10) if scenario == "misaligned megapage" else 0
        memory[level1] = _pte(ram_ppn | ppn0, data)
        del memory[level0]
    elif scenario == "invalid at level 1":
        memory[level1] &= ~PTE_V
    elif scenario == "invalid at level 0":
        memory[level0] &= ~PTE_V
    elif scenario == "user page":
        memory[level0] |= PTE_U
    elif scenario == "not readable":
        memory[level0] = _pte(leaf, PTE_V | PTE_X | PTE_A)
    va = (vpn1 << 22) | (vpn0 << 12) | offset
    return TranslateProblem(seed, SATP_MODE_SV32 | root, va, tuple(sorted(memory.items())))


def walk(problem: TranslateProblem) -> tuple[tuple[Level, ...], int | str]:
    """The walk of 4.3.2 for an S-mode load: each level visited, and the result.

    The explained walk of ``virtkit.cpu.sv32`` does it on the problem's hart, so the
    answer a student is checked against is the one the hart itself gives (the tests
    also run the load on the hart)."""
    result = explained_walk(problem.hart(), problem.va, "load", "S")
    return result.levels, (result.pa if result.ok else PAGE_FAULT)


def solve(problem: TranslateProblem) -> int | str:
    return walk(problem)[1]


def _normalize(answer) -> int | str | None:
    if isinstance(answer, str) and "page fault" in answer.lower():
        return PAGE_FAULT
    if isinstance(answer, numbers.Integral) and not isinstance(answer, bool):
        return int(answer)
    return None


def _known_slip(problem: TranslateProblem, steps: tuple[Level, ...], answer: int) -> str | None:
    """Which common slip gives ``answer``, if one does; said at the level it happens."""
    offset = problem.va & 0xFFF
    last = steps[-1]
    pte = last.pte.value
    ppn = pte >> 10
    if answer == last.pte_address:
        return f"that is the address of the level {last.level} PTE, not of the data"
    if answer == (pte << 2) | offset or answer == (pte << 2) + offset:
        return (
            f"level {last.level}: the low 10 bits of a PTE are flags; the ppn is pte >> 10, "
            "and the physical address is ppn << 12 | offset"
        )
    if answer == ppn << 12:
        return f"level {last.level}: the page offset va[11:0] = {offset:#x} is missing"
    if last.level == 1 and answer == (ppn << 12) | offset:
        return (
            "level 1: this PTE is a leaf, so it maps a 4 MiB megapage: the physical address "
            "is ppn[1] << 22 | va[21:0], not ppn << 12 | va[11:0]"
        )
    swapped = TranslateProblem(
        problem.seed,
        problem.satp,
        ((problem.va >> 12 & 0x3FF) << 22) | ((problem.va >> 22) << 12) | offset,
        problem.memory,
    )
    try:
        if solve(swapped) == answer:
            return "level 1 indexes the root table with vpn[1] = va[31:22], level 0 with vpn[0]"
    except ValueError:
        pass
    return None


def mistakes(problem: TranslateProblem, answer) -> list[str]:
    if callable(answer):
        try:
            answer = answer(problem)
        except Exception as exc:
            return [f"your function raised {type(exc).__name__}: {exc}"]
    given = _normalize(answer)
    steps, expected = walk(problem)
    if given is None:
        return [
            'expected a physical address (an int such as 0x80012345) or the string "page '
            f'fault", got {shown(answer)}'
        ]
    if given == expected:
        return []
    show = f"{expected:#010x}" if isinstance(expected, int) else expected
    got = f"{given:#010x}" if isinstance(given, int) else given
    wrong = [f"for va {problem.va:#010x}: expected {show}, got {got}"]
    if expected == PAGE_FAULT:
        wrong.append(f"the walk faults at {steps[-1]}")
    elif given == PAGE_FAULT:
        wrong.append("the walk does not fault:")
        wrong += [f"  {step}" for step in steps]
    else:
        slip = _known_slip(problem, steps, given)
        if slip:
            wrong.append(slip)
        wrong.append("the walk:")
        wrong += [f"  {step}" for step in steps]
    return wrong


def solved(problem: TranslateProblem) -> str:
    steps, result = walk(problem)
    shown = f"{result:#010x}" if isinstance(result, int) else result
    return f"va {problem.va:#010x} -> {shown} in {len(steps)} level(s)"


EXERCISE = register(
    Exercise(
        id="00.2",
        generate=generate,
        solve=solve,
        mistakes=mistakes,
        solved=solved,
        hints=(
            "Split the va: vpn[1] = va >> 22, vpn[0] = (va >> 12) & 0x3ff, offset = va & 0xfff.",
            "The root table is at satp.PPN * 4096; its PTE for this va is at "
            "root + vpn[1] * 4. problem.read_word(address) reads it.",
            "A PTE's ppn is pte >> 10. R = W = X = 0 means 'pointer to the next table' at "
            "ppn * 4096; otherwise the PTE is a leaf.",
            "Before using a leaf, check V, R (this is a load), U (S-mode with SUM = 0 may "
            "not use U pages) and, for a level 1 leaf, that ppn[0] is 0.",
        ),
    )
)
