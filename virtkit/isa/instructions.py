"""The instruction table: every instruction virtkit implements, with its encoding.

One row per instruction: mnemonic, extension, format, the fixed bits (``match`` under
``mask``) and the operand fields in assembly order. The assembler, the disassembler,
the hart's decoder constants and the widgets all read this table, so an encoding is
written down exactly once.

Sources: The RISC-V Instruction Set Manual, Volume I: Unprivileged ISA, version
20191213 (chapters 2 RV32I, 3 Zifencei, 7 M, 8 A, 9 Zicsr, 24 opcode map), and
Volume II: Privileged Architecture, version 20211203 (3.3 and 4.2.1 for MRET, SRET,
WFI and SFENCE.VMA; 8.2 for the hypervisor instructions HLV, HLVX, HSV,
HFENCE.VVMA and HFENCE.GVMA).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

# -- Major opcodes (Volume I, table 24.1) ----------------------------------------------
OPCODE_LOAD = 0b0000011
OPCODE_MISC_MEM = 0b0001111
OPCODE_OP_IMM = 0b0010011
OPCODE_AUIPC = 0b0010111
OPCODE_STORE = 0b0100011
OPCODE_AMO = 0b0101111
OPCODE_OP = 0b0110011
OPCODE_LUI = 0b0110111
OPCODE_BRANCH = 0b1100011
OPCODE_JALR = 0b1100111
OPCODE_JAL = 0b1101111
OPCODE_SYSTEM = 0b1110011

# -- Operand fields ----------------------------------------------------------------------
# Each operand name used in FORMATS below; the assembler and disassembler know how to
# place and extract each one (see virtkit.isa.encoding).
#   rd rs1 rs2     registers in bits 11:7, 19:15, 24:20
#   imm12          I-type signed immediate, bits 31:20
#   simm12         S-type signed immediate, bits 31:25 and 11:7
#   bimm13         B-type signed byte offset (even), bits 31, 7, 30:25, 11:8
#   imm20          U-type upper immediate (the 20-bit value, not shifted), bits 31:12
#   jimm21         J-type signed byte offset (even), bits 31, 19:12, 20, 30:21
#   shamt          5-bit shift amount, bits 24:20
#   csr            CSR number, bits 31:20
#   zimm           5-bit unsigned immediate of the CSR*I instructions, bits 19:15
#   pred succ      FENCE predecessor and successor sets (iorw), bits 27:24 and 23:20
#   aqrl           A-extension ordering bits aq (26) and rl (25), written as a suffix

# The assembly syntax of each format: operands in order; "imm12(rs1)" is a memory
# operand; "(rs1)" an address register without offset.
FORMATS: dict[str, tuple[str, ...]] = {
    "R": ("rd", "rs1", "rs2"),
    "I": ("rd", "rs1", "imm12"),
    "I_SHIFT": ("rd", "rs1", "shamt"),
    "LOAD": ("rd", "imm12(rs1)"),
    "STORE": ("rs2", "simm12(rs1)"),
    "BRANCH": ("rs1", "rs2", "bimm13"),
    "U": ("rd", "imm20"),
    "JAL": ("rd", "jimm21"),
    "JALR": ("rd", "imm12(rs1)"),
    "CSR": ("rd", "csr", "rs1"),
    "CSRI": ("rd", "csr", "zimm"),
    "FENCE": ("pred", "succ"),
    "NONE": (),
    "AMO": ("rd", "rs2", "(rs1)"),
    "LR": ("rd", "(rs1)"),
    "FENCE_VMA": ("rs1", "rs2"),
    "HLV": ("rd", "(rs1)"),
    "HSV": ("rs2", "(rs1)"),
}

# Bits of the word each format leaves to its operands; the rest are fixed by ``match``.
_RD = 0x1F << 7
_RS1 = 0x1F << 15
_RS2 = 0x1F << 20
_IMM12 = 0xFFF << 20
_OPERAND_BITS: dict[str, int] = {
    "R": _RD | _RS1 | _RS2,
    "I": _RD | _RS1 | _IMM12,
    "I_SHIFT": _RD | _RS1 | _RS2,
    "LOAD": _RD | _RS1 | _IMM12,
    "STORE": _RS1 | _RS2 | (0x7F << 25) | _RD,
    "BRANCH": _RS1 | _RS2 | (0x7F << 25) | _RD,
    "U": _RD | (0xFFFFF << 12),
    "JAL": _RD | (0xFFFFF << 12),
    "JALR": _RD | _RS1 | _IMM12,
    "CSR": _RD | _RS1 | _IMM12,
    "CSRI": _RD | _RS1 | _IMM12,
    "FENCE": 0xFF << 20,
    "NONE": 0,
    "AMO": _RD | _RS1 | _RS2 | (0b11 << 25),
    "LR": _RD | _RS1 | (0b11 << 25),
    "FENCE_VMA": _RS1 | _RS2,
    "HLV": _RD | _RS1,
    "HSV": _RS1 | _RS2,
}


@dataclass(frozen=True)
class Instruction:
    """One instruction: ``word & mask == match`` identifies it."""

    name: str
    extension: str
    format: str
    match: int
    mask: int

    @property
    def operands(self) -> tuple[str, ...]:
        return FORMATS[self.format]

    @property
    def opcode(self) -> int:
        return self.match & 0x7F


def _encode(opcode: int, funct3: int = 0, funct7: int = 0, rs2: int = 0) -> int:
    return opcode | (funct3 << 12) | (rs2 << 20) | (funct7 << 25)


def _row(name: str, extension: str, fmt: str, match: int) -> Instruction:
    return Instruction(name, extension, fmt, match, 0xFFFFFFFF & ~_OPERAND_BITS[fmt])


def _build_table() -> tuple[Instruction, ...]:
    rows: list[Instruction] = []

    def add(name, ext, fmt, match):
        rows.append(_row(name, ext, fmt, match))

    # RV32I (Volume I, chapter 2 and table 24.2).
    add("lui", "I", "U", OPCODE_LUI)
    add("auipc", "I", "U", OPCODE_AUIPC)
    add("jal", "I", "JAL", OPCODE_JAL)
    add("jalr", "I", "JALR", _encode(OPCODE_JALR, 0b000))
    for funct3, name in enumerate(("beq", "bne", None, None, "blt", "bge", "bltu", "bgeu")):
        if name:
            add(name, "I", "BRANCH", _encode(OPCODE_BRANCH, funct3))
    for funct3, name in ((0, "lb"), (1, "lh"), (2, "lw"), (4, "lbu"), (5, "lhu")):
        add(name, "I", "LOAD", _encode(OPCODE_LOAD, funct3))
    for funct3, name in ((0, "sb"), (1, "sh"), (2, "sw")):
        add(name, "I", "STORE", _encode(OPCODE_STORE, funct3))
    for funct3, name in (
        (0, "addi"),
        (2, "slti"),
        (3, "sltiu"),
        (4, "xori"),
        (6, "ori"),
        (7, "andi"),
    ):
        add(name, "I", "I", _encode(OPCODE_OP_IMM, funct3))
    add("slli", "I", "I_SHIFT", _encode(OPCODE_OP_IMM, 0b001, 0b0000000))
    add("srli", "I", "I_SHIFT", _encode(OPCODE_OP_IMM, 0b101, 0b0000000))
    add("srai", "I", "I_SHIFT", _encode(OPCODE_OP_IMM, 0b101, 0b0100000))
    for funct3, funct7, name in (
        (0, 0b0000000, "add"),
        (0, 0b0100000, "sub"),
        (1, 0b0000000, "sll"),
        (2, 0b0000000, "slt"),
        (3, 0b0000000, "sltu"),
        (4, 0b0000000, "xor"),
        (5, 0b0000000, "srl"),
        (5, 0b0100000, "sra"),
        (6, 0b0000000, "or"),
        (7, 0b0000000, "and"),
    ):
        add(name, "I", "R", _encode(OPCODE_OP, funct3, funct7))
    # FENCE with fm=0000; FENCE.TSO is fm=1000 pred=rw succ=rw (fully fixed).
    add("fence", "I", "FENCE", _encode(OPCODE_MISC_MEM, 0b000))
    rows.append(Instruction("fence.tso", "I", "NONE", 0x8330000F, 0xFFFFFFFF))
    add("ecall", "I", "NONE", _encode(OPCODE_SYSTEM, 0, 0, 0))
    add("ebreak", "I", "NONE", _encode(OPCODE_SYSTEM, 0, 0, 1))

    # Zifencei (Volume I, chapter 3).
    add("fence.i", "Zifencei", "NONE", _encode(OPCODE_MISC_MEM, 0b001))

    # M (Volume I, chapter 7): funct7 = 0000001.
    for funct3, name in enumerate(("mul", "mulh", "mulhsu", "mulhu", "div", "divu", "rem", "remu")):
        add(name, "M", "R", _encode(OPCODE_OP, funct3, 0b0000001))

    # A (Volume I, chapter 8): funct5 in bits 31:27, aq/rl in 26:25, funct3 = 010 (.w).
    add("lr.w", "A", "LR", _encode(OPCODE_AMO, 0b010, 0b00010 << 2))
    for funct5, name in (
        (0b00011, "sc.w"),
        (0b00001, "amoswap.w"),
        (0b00000, "amoadd.w"),
        (0b00100, "amoxor.w"),
        (0b01100, "amoand.w"),
        (0b01000, "amoor.w"),
        (0b10000, "amomin.w"),
        (0b10100, "amomax.w"),
        (0b11000, "amominu.w"),
        (0b11100, "amomaxu.w"),
    ):
        add(name, "A", "AMO", _encode(OPCODE_AMO, 0b010, funct5 << 2))

    # Zicsr (Volume I, chapter 9).
    for funct3, name in ((1, "csrrw"), (2, "csrrs"), (3, "csrrc")):
        add(name, "Zicsr", "CSR", _encode(OPCODE_SYSTEM, funct3))
    for funct3, name in ((5, "csrrwi"), (6, "csrrsi"), (7, "csrrci")):
        add(name, "Zicsr", "CSRI", _encode(OPCODE_SYSTEM, funct3))

    # Privileged (Volume II, 3.3.2, 3.3.3, 4.2.1).
    add("sret", "priv", "NONE", _encode(OPCODE_SYSTEM, 0, 0b0001000, 0b00010))
    add("mret", "priv", "NONE", _encode(OPCODE_SYSTEM, 0, 0b0011000, 0b00010))
    add("wfi", "priv", "NONE", _encode(OPCODE_SYSTEM, 0, 0b0001000, 0b00101))
    add("sfence.vma", "priv", "FENCE_VMA", _encode(OPCODE_SYSTEM, 0, 0b0001001))

    # Hypervisor extension (Volume II, 8.2): funct7 selects width and signedness,
    # rs2 field distinguishes HLV (00000) from HLVX (00011), funct3 = 100.
    add("hfence.vvma", "H", "FENCE_VMA", _encode(OPCODE_SYSTEM, 0, 0b0010001))
    add("hfence.gvma", "H", "FENCE_VMA", _encode(OPCODE_SYSTEM, 0, 0b0110001))
    for funct7, rs2, name in (
        (0b0110000, 0b00000, "hlv.b"),
        (0b0110000, 0b00001, "hlv.bu"),
        (0b0110010, 0b00000, "hlv.h"),
        (0b0110010, 0b00001, "hlv.hu"),
        (0b0110010, 0b00011, "hlvx.hu"),
        (0b0110100, 0b00000, "hlv.w"),
        (0b0110100, 0b00011, "hlvx.wu"),
    ):
        add(name, "H", "HLV", _encode(OPCODE_SYSTEM, 0b100, funct7, rs2))
    for funct7, name in ((0b0110001, "hsv.b"), (0b0110011, "hsv.h"), (0b0110101, "hsv.w")):
        add(name, "H", "HSV", _encode(OPCODE_SYSTEM, 0b100, funct7))
    return tuple(rows)


INSTRUCTIONS: tuple[Instruction, ...] = _build_table()
BY_NAME: dict[str, Instruction] = {insn.name: insn for insn in INSTRUCTIONS}
EXTENSIONS: tuple[str, ...] = ("I", "M", "A", "Zicsr", "Zifencei", "priv", "H")


def _check_table() -> None:
    """No two rows may both match one word: the table must decode unambiguously."""
    for i, a in enumerate(INSTRUCTIONS):
        assert a.match & ~a.mask == 0, a.name
        for b in INSTRUCTIONS[i + 1 :]:
            common = a.mask & b.mask
            assert (a.match & common) != (b.match & common), (a.name, b.name)


_check_table()


# Cached: the monitors look up every instruction their guests trap on, several times
# (to name it, to emulate it), and a kernel traps on few distinct words.
@lru_cache(maxsize=4096)
def lookup(word: int) -> Instruction | None:
    """The instruction that encodes ``word``, or None for an unknown or reserved word."""
    for insn in _BY_OPCODE.get(word & 0x7F, ()):
        if word & insn.mask == insn.match:
            return insn
    return None


_BY_OPCODE: dict[int, list[Instruction]] = {}
for _insn in INSTRUCTIONS:
    _BY_OPCODE.setdefault(_insn.opcode, []).append(_insn)
