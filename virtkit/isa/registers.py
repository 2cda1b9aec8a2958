"""Integer register names: x0..x31 and their ABI names.

Volume I, chapter 25 "RISC-V Assembly Programmer's Handbook", table 25.1.
"""

from __future__ import annotations

ABI_NAMES: tuple[str, ...] = (
    "zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2",
    "s0", "s1", "a0", "a1", "a2", "a3", "a4", "a5",
    "a6", "a7", "s2", "s3", "s4", "s5", "s6", "s7",
    "s8", "s9", "s10", "s11", "t3", "t4", "t5", "t6",
)  # fmt: skip

# Every accepted spelling -> register number ("fp" is the frame pointer alias of s0).
REGISTER_NUMBERS: dict[str, int] = {name: n for n, name in enumerate(ABI_NAMES)}
REGISTER_NUMBERS.update({f"x{n}": n for n in range(32)})
REGISTER_NUMBERS["fp"] = 8


def register_number(name: str) -> int | None:
    """The register number of ``name`` (ABI or xN), or None if it is not a register."""
    return REGISTER_NUMBERS.get(name.lower())
