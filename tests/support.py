"""Helpers for the hart's tests: assemble a micro-program, load it, run it."""

from __future__ import annotations

from virtkit.cpu import Hart
from virtkit.cpu import exits as E
from virtkit.isa.asm import assemble

RAM_BASE = 0x8000_0000


def make_hart(source: str, *, ram_size: int = 1 << 20, **options) -> Hart:
    """A hart with ``source`` assembled at the start of RAM, pc at its entry.

    EBREAK exits to Python, so a micro-program ends with ``ebreak``.
    """
    options.setdefault("ebreak_exits", True)
    hart = Hart(ram_size, **options)
    program = assemble(source, filename="<test>", base=RAM_BASE)
    for address, data in program.segments():
        hart.write_memory(address, data)
    hart.pc = program.entry
    hart.program = program
    return hart


def run_program(source: str, *, budget: int = 1_000_000, **options) -> Hart:
    """Assemble and run ``source`` until it reaches its final ebreak."""
    hart = make_hart(source, **options)
    exit = hart.run(budget)
    assert exit.reason == E.EXIT_EBREAK, f"expected the program to end at ebreak, got {exit}"
    return hart


def symbol(hart: Hart, name: str) -> int:
    return hart.program.symbols[name]
