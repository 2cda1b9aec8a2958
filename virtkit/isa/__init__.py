"""The RISC-V ISA as data: instructions, CSRs, causes, and the tools built on them.

Everything architectural is written down once here (instructions.py, csrs.py,
causes.py, registers.py) and read by the assembler (asm.py), the disassembler
(disasm.py), the hart and the widgets.
"""

from virtkit.isa.causes import cause_name
from virtkit.isa.csrs import CSRS, Csr, CsrField
from virtkit.isa.instructions import INSTRUCTIONS, Instruction, lookup
from virtkit.isa.registers import ABI_NAMES

__all__ = [
    "ABI_NAMES",
    "CSRS",
    "INSTRUCTIONS",
    "Csr",
    "CsrField",
    "Instruction",
    "cause_name",
    "lookup",
]
