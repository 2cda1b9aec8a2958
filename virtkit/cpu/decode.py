"""Pre-decoding: each instruction word is decoded once into a compact form the hot
loop can dispatch on with one switch.

An instruction's meaning depends on its bits only (pc-relative targets are formed
when it executes), so a decoded form is a pure function of the 32-bit word. The
decode cache (the DECODE_* slots of the state buffer, see virtkit.cpu.state) is
direct-mapped by the word's RAM address and keeps, per entry, the word it decoded and
the decoded form. The core fetches the word as before and uses the entry only when
the two words are equal; otherwise it decodes again. There is therefore nothing to
invalidate: code that rewrites itself, a DMA transfer, or Python writing RAM all
change the word, and the next fetch decodes the new one. FENCE.I has nothing to do.

A decoded form is one int64, in bytes so that each field takes one instruction to
extract:
  byte 0       the operation: one of the OP_* numbers below, one per instruction the
               hot loop executes inline; OP_AMO and OP_SYSTEM go to the helpers with
               the raw word; OP_ILLEGAL is every word that is no instruction here,
               and its form is all zero
  byte 1       rd, as the register's slot in the state buffer (X_BASE + rd); for a
               load, JAL or JALR whose rd is x0, the sink slot
               (virtkit.cpu.state.SINK), which is never read
  byte 2       rs1, as its slot
  byte 3       rs2, as its slot; for a load, which has no rs2, funct3 (size and sign)
  bytes 4..7   the immediate, sign-extended (branch and jump offsets already put
               together from their scattered bits, Volume I, 2.3; shift amounts
               for SLLI, SRLI and SRAI)
Fields of an instruction that has no such operand name x0's slot, which the core may
read to no effect.

A cache entry keeps the form in three slots (ENTRY_* below): bytes 0 and 1, bytes 2
and 3, and the immediate. The hot loop then takes each field with one load or one
byte move, where from one int64 it needed shifts and copies for bytes 2 to 7.
The fields come from Volume I, chapter 2 (RV32I), 7 (M), 8 (A) and 9 (Zicsr); the
encodings are those of virtkit.isa.instructions.

An ALU instruction whose rd is x0 has no effect at all, so it decodes to OP_NOP and
the inline ALU cases can write rd without testing it. Loads to x0 still access memory
(they may fault or reach a device) and JAL and JALR to x0 still jump (j, ret): they
keep their operation and write their result to the sink, so that the core tests no
rd either.
"""

from __future__ import annotations

import numpy as np

from virtkit.cpu import state as S
from virtkit.cpu.jitcache import njit
from virtkit.isa import instructions as I

# -- The operations --------------------------------------------------------------------
OP_ILLEGAL = 0
OP_NOP = 1  # FENCE, FENCE.I, and every ALU instruction that writes x0
OP_LUI = 2
OP_AUIPC = 3
OP_JAL = 4
OP_JALR = 5
OP_BEQ = 6
OP_BNE = 7
OP_BLT = 8
OP_BGE = 9
OP_BLTU = 10
OP_BGEU = 11
OP_LB = 12
OP_LH = 13
OP_LW = 14
OP_LBU = 15
OP_LHU = 16
OP_SB = 17
OP_SH = 18
OP_SW = 19
OP_ADDI = 20
OP_SLTI = 21
OP_SLTIU = 22
OP_XORI = 23
OP_ORI = 24
OP_ANDI = 25
OP_SLLI = 26
OP_SRLI = 27
OP_SRAI = 28
OP_ADD = 29
OP_SUB = 30
OP_SLL = 31
OP_SLT = 32
OP_SLTU = 33
OP_XOR = 34
OP_SRL = 35
OP_SRA = 36
OP_OR = 37
OP_AND = 38
OP_MUL = 39
OP_MULH = 40  # the M extension in funct3 order: OP_MUL + funct3
OP_MULHSU = 41
OP_MULHU = 42
OP_DIV = 43
OP_DIVU = 44
OP_REM = 45
OP_REMU = 46
OP_AMO = 47
OP_SYSTEM = 48
OP_MASK = 0xFF  # op = form & OP_MASK

OP_NAMES = {
    value: name[3:].lower()
    for name, value in globals().items()
    if name.startswith("OP_") and name != "OP_MASK"
}

# Loads and branches by funct3 (loads 3, 6 and 7 and branches 2 and 3 do not exist);
# stores are OP_SB + funct3.
_LOADS = (OP_LB, OP_LH, OP_LW, OP_ILLEGAL, OP_LBU, OP_LHU, OP_ILLEGAL, OP_ILLEGAL)
_BRANCHES = (OP_BEQ, OP_BNE, OP_ILLEGAL, OP_ILLEGAL, OP_BLT, OP_BGE, OP_BLTU, OP_BGEU)
LOAD_OPS = np.array(_LOADS, dtype=np.int64)
BRANCH_OPS = np.array(_BRANCHES, dtype=np.int64)
# OP-IMM by funct3; the shifts (funct3 1 and 5) are decided by funct7.
OP_IMM_OPS = np.array(
    (OP_ADDI, OP_SLLI, OP_SLTI, OP_SLTIU, OP_XORI, OP_SRLI, OP_ORI, OP_ANDI), dtype=np.int64
)
# OP with funct7 = 0, by funct3.
OP_OPS = np.array((OP_ADD, OP_SLL, OP_SLT, OP_SLTU, OP_XOR, OP_SRL, OP_OR, OP_AND), dtype=np.int64)

FUNCT7_SUB_SRA = 0b0100000
FUNCT7_MULDIV = 0b0000001

NO_IMMEDIATE = 0
ILLEGAL_FORM = 0
X_SLOT = S.X_BASE  # register r lives in state[X_SLOT + r]
SINK_SLOT = S.ST_BASE + S.SINK
assert X_SLOT + 31 <= 0xFF, "a register's slot must fit a byte of the decoded form"
assert SINK_SLOT <= 0xFF, "the sink's slot must fit a byte of the decoded form"

# The slots of a decode cache entry (virtkit.cpu.state.DECODE_SLOTS of them).
ENTRY_WORD = 0  # the instruction word the entry was decoded from
ENTRY_OP_RD = 1  # bytes 0 and 1 of the form: the operation and rd
ENTRY_SOURCES = 2  # bytes 2 and 3: rs1 and rs2 (funct3 for a load)
ENTRY_IMM = 3  # bytes 4..7: the immediate
assert ENTRY_IMM < S.DECODE_SLOTS


@njit(cache=True)
def decode(insn):
    """The decoded form of the 32-bit instruction word ``insn``."""
    opcode = insn & 0x7F
    funct3 = (insn >> 12) & 7
    funct7 = insn >> 25
    shamt = (insn >> 20) & 31
    # Registers as their slots in state (a register field of an instruction that
    # has none reads x0's slot, to no effect).
    rd = X_SLOT + ((insn >> 7) & 31)
    rs1 = X_SLOT + ((insn >> 15) & 31)
    rs2 = X_SLOT + ((insn >> 20) & 31)
    x0 = X_SLOT
    i_imm = (((insn >> 20) & 0xFFF) ^ 0x800) - 0x800
    # The fields of the form (see the module docstring); the cases below name x0
    # for the operands their instructions do not have.
    op = OP_ILLEGAL
    byte1, byte2, byte3 = rd, rs1, rs2
    imm = NO_IMMEDIATE
    alu = False  # ALU instructions become OP_NOP when rd = x0
    if opcode == I.OPCODE_OP_IMM:
        alu = True
        if funct3 == 1:
            op = OP_SLLI if funct7 == 0 else OP_ILLEGAL
        elif funct3 == 5:
            if funct7 == 0:
                op = OP_SRLI
            elif funct7 == FUNCT7_SUB_SRA:
                op = OP_SRAI
        else:
            op = OP_IMM_OPS[funct3]
        imm = shamt if funct3 == 1 or funct3 == 5 else i_imm
    elif opcode == I.OPCODE_OP:
        alu = True
        if funct7 == 0:
            op = OP_OPS[funct3]
        elif funct7 == FUNCT7_SUB_SRA and funct3 == 0:
            op = OP_SUB
        elif funct7 == FUNCT7_SUB_SRA and funct3 == 5:
            op = OP_SRA
        elif funct7 == FUNCT7_MULDIV:
            op = OP_MUL + funct3
    elif opcode == I.OPCODE_LUI or opcode == I.OPCODE_AUIPC:
        alu = True
        op = OP_LUI if opcode == I.OPCODE_LUI else OP_AUIPC
        imm = ((insn & 0xFFFFF000) ^ 0x80000000) - 0x80000000
    elif opcode == I.OPCODE_LOAD:
        op = LOAD_OPS[funct3]
        byte1 = SINK_SLOT if rd == x0 else rd
        byte3 = funct3
        imm = i_imm
    elif opcode == I.OPCODE_STORE:
        if funct3 <= 2:
            op = OP_SB + funct3
        byte1 = x0
        imm = ((((funct7 << 5) | ((insn >> 7) & 31)) & 0xFFF) ^ 0x800) - 0x800
    elif opcode == I.OPCODE_BRANCH:
        op = BRANCH_OPS[funct3]
        byte1 = x0
        offset = (
            ((insn >> 31) << 12)
            | (((insn >> 7) & 1) << 11)
            | (((insn >> 25) & 0x3F) << 5)
            | (((insn >> 8) & 0xF) << 1)
        )
        imm = (offset ^ 0x1000) - 0x1000
    elif opcode == I.OPCODE_JAL:
        op = OP_JAL
        byte1 = SINK_SLOT if rd == x0 else rd
        byte2, byte3 = x0, x0
        offset = (
            ((insn >> 31) << 20)
            | (((insn >> 12) & 0xFF) << 12)
            | (((insn >> 20) & 1) << 11)
            | (((insn >> 21) & 0x3FF) << 1)
        )
        imm = (offset ^ 0x100000) - 0x100000
    elif opcode == I.OPCODE_JALR:
        if funct3 == 0:
            op = OP_JALR
        byte1 = SINK_SLOT if rd == x0 else rd
        byte3 = x0
        imm = i_imm
    elif opcode == I.OPCODE_MISC_MEM:
        # FENCE orders nothing on one in-order hart; FENCE.I has no stale instruction
        # cache to discard (see the module docstring).
        if funct3 <= 1:
            op = OP_NOP
    elif opcode == I.OPCODE_AMO:
        op = OP_AMO  # the helpers decode the word themselves
    elif opcode == I.OPCODE_SYSTEM:
        op = OP_SYSTEM
    if op == OP_ILLEGAL:
        return ILLEGAL_FORM
    if alu and rd == x0:
        op = OP_NOP
    if op == OP_NOP or op == OP_AMO or op == OP_SYSTEM:
        byte1, byte2, byte3 = x0, x0, x0  # nothing for the core to read
        imm = NO_IMMEDIATE
    return op | (byte1 << 8) | (byte2 << 16) | (byte3 << 24) | (imm << 32)
