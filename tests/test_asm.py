"""The assembler (virtkit.isa.asm) and its output (virtkit.isa.program).

Expected words are built with virtkit.isa.encoding.encode from the instruction table,
so these tests check the assembler's reading of source text, not the table itself
(test_asm_gnu.py holds both to GNU as).
"""

from __future__ import annotations

import io
import time

import pytest
from elftools.elf.elffile import ELFFile
from hypothesis import given
from hypothesis import strategies as st

from virtkit.isa import csrs
from virtkit.isa.asm import (
    DEFAULT_BASE,
    DIRECTIVES,
    PSEUDO_INSTRUCTIONS,
    AssemblerError,
    assemble,
    assemble_file,
)
from virtkit.isa.encoding import FIELDS, encode
from virtkit.isa.instructions import BY_NAME, INSTRUCTIONS
from virtkit.isa.program import EM_RISCV
from virtkit.isa.registers import ABI_NAMES

BASE = DEFAULT_BASE


def text_words(source: str, **options) -> list[int]:
    data = assemble(source, **options).section(".text").data
    return [int.from_bytes(data[i : i + 4], "little") for i in range(0, len(data), 4)]


def enc(name: str, **fields) -> int:
    return encode(BY_NAME[name], **fields)


def reg(name: str) -> int:
    return ABI_NAMES.index(name)


def error_of(source: str) -> AssemblerError:
    with pytest.raises(AssemblerError) as caught:
        assemble(source, filename="t.s")
    return caught.value


def run_lui_addi(words: list[int]) -> int:
    """The value a lui/addi sequence leaves in its register."""
    value = 0
    for word in words:
        insn = next(i for i in INSTRUCTIONS if word & i.mask == i.match)
        if insn.name == "lui":
            value = (word & 0xFFFFF000) & 0xFFFFFFFF
        else:
            base = value if (word >> 15) & 0x1F else 0
            value = (base + FIELDS["imm12"].decode(word)) & 0xFFFFFFFF
    return value


# -- operands ------------------------------------------------------------------------


def test_registers_by_abi_name_and_number():
    assert (
        text_words("add x10, x11, x12\nadd a0, a1, a2\nadd A0, A1, A2")
        == [enc("add", rd=10, rs1=11, rs2=12)] * 3
    )
    assert text_words("mv fp, s0") == [enc("addi", rd=8, rs1=8, imm12=0)]
    assert text_words("add zero, ra, sp") == [enc("add", rd=0, rs1=1, rs2=2)]


def test_csr_by_name_or_number():
    mstatus = csrs.number("mstatus")
    expected = enc("csrrs", rd=reg("a0"), csr=mstatus, rs1=0)
    assert text_words("csrrs a0, mstatus, zero") == [expected]
    assert text_words("csrrs a0, 0x300, zero") == [expected]
    assert text_words(".equ MSTATUS, 0x300\ncsrrs a0, MSTATUS, zero") == [expected]
    assert text_words("csrrs a0, hgatp, zero") == [enc("csrrs", rd=10, csr=0x680, rs1=0)]


def test_memory_operands():
    assert text_words("lw a0, 8(sp)") == [enc("lw", rd=10, rs1=2, imm12=8)]
    assert text_words("lw a0, (sp)") == [enc("lw", rd=10, rs1=2, imm12=0)]
    assert text_words("lw a0, -4 + 8( sp )") == [enc("lw", rd=10, rs1=2, imm12=4)]
    assert text_words("sw a0, -2048(t0)") == [enc("sw", rs2=10, rs1=5, simm12=-2048)]
    assert text_words("amoadd.w a0, a1, 0(a2)") == [enc("amoadd.w", rd=10, rs2=11, rs1=12, aqrl=0)]


@pytest.mark.parametrize("suffix, bits", [("", 0), (".aq", 2), (".rl", 1), (".aqrl", 3)])
def test_atomic_ordering_suffixes(suffix, bits):
    assert text_words(f"amoswap.w{suffix} a0, a1, (a2)") == [
        enc("amoswap.w", rd=10, rs2=11, rs1=12, aqrl=bits)
    ]
    assert text_words(f"lr.w{suffix} t0, (t1)") == [enc("lr.w", rd=5, rs1=6, aqrl=bits)]


def test_fence_sets():
    assert text_words("fence rw, w") == [enc("fence", pred=0b0011, succ=0b0001)]
    assert text_words("fence iorw, iorw") == [enc("fence", pred=15, succ=15)]
    assert text_words("fence wr, oi") == [enc("fence", pred=0b0011, succ=0b1100)]


def test_branch_and_jump_targets_are_pc_relative():
    source = "start: nop\nbeq a0, a1, start\njal ra, end\nnop\nend: nop"
    assert text_words(source)[1:3] == [
        enc("beq", rs1=10, rs2=11, bimm13=-4),
        enc("jal", rd=1, jimm21=8),
    ]
    assert text_words("j .") == [enc("jal", rd=0, jimm21=0)]
    assert text_words("bne a0, zero, . + 4094") == [enc("bne", rs1=10, rs2=0, bimm13=4094)]


# -- pseudo-instructions ---------------------------------------------------------------

A0, A1, A2, T0, T1, RA = 10, 11, 12, 5, 6, 1

PSEUDO_CASES = [
    ("nop", [("addi", dict(rd=0, rs1=0, imm12=0))]),
    ("mv a0, a1", [("addi", dict(rd=A0, rs1=A1, imm12=0))]),
    ("not a0, a1", [("xori", dict(rd=A0, rs1=A1, imm12=-1))]),
    ("neg a0, a1", [("sub", dict(rd=A0, rs1=0, rs2=A1))]),
    ("seqz a0, a1", [("sltiu", dict(rd=A0, rs1=A1, imm12=1))]),
    ("zext.b a0, a1", [("andi", dict(rd=A0, rs1=A1, imm12=255))]),
    ("add a0, a1, -5", [("addi", dict(rd=A0, rs1=A1, imm12=-5))]),
    ("sra a0, a1, 7", [("srai", dict(rd=A0, rs1=A1, shamt=7))]),
    ("snez a0, a1", [("sltu", dict(rd=A0, rs1=0, rs2=A1))]),
    ("sltz a0, a1", [("slt", dict(rd=A0, rs1=A1, rs2=0))]),
    ("sgtz a0, a1", [("slt", dict(rd=A0, rs1=0, rs2=A1))]),
    ("sgt a0, a1, a2", [("slt", dict(rd=A0, rs1=A2, rs2=A1))]),
    ("sgtu a0, a1, a2", [("sltu", dict(rd=A0, rs1=A2, rs2=A1))]),
    ("beqz a0, .", [("beq", dict(rs1=A0, rs2=0, bimm13=0))]),
    ("bnez a0, .", [("bne", dict(rs1=A0, rs2=0, bimm13=0))]),
    ("blez a0, .", [("bge", dict(rs1=0, rs2=A0, bimm13=0))]),
    ("bgez a0, .", [("bge", dict(rs1=A0, rs2=0, bimm13=0))]),
    ("bltz a0, .", [("blt", dict(rs1=A0, rs2=0, bimm13=0))]),
    ("bgtz a0, .", [("blt", dict(rs1=0, rs2=A0, bimm13=0))]),
    ("bgt a0, a1, .", [("blt", dict(rs1=A1, rs2=A0, bimm13=0))]),
    ("ble a0, a1, .", [("bge", dict(rs1=A1, rs2=A0, bimm13=0))]),
    ("bgtu a0, a1, .", [("bltu", dict(rs1=A1, rs2=A0, bimm13=0))]),
    ("bleu a0, a1, .", [("bgeu", dict(rs1=A1, rs2=A0, bimm13=0))]),
    ("j . + 8", [("jal", dict(rd=0, jimm21=8))]),
    ("jal . + 8", [("jal", dict(rd=RA, jimm21=8))]),
    ("jal t0, . - 8", [("jal", dict(rd=T0, jimm21=-8))]),
    ("jr a0", [("jalr", dict(rd=0, rs1=A0, imm12=0))]),
    ("jr 4(a0)", [("jalr", dict(rd=0, rs1=A0, imm12=4))]),
    ("jr a0, 4", [("jalr", dict(rd=0, rs1=A0, imm12=4))]),
    ("jalr a0", [("jalr", dict(rd=RA, rs1=A0, imm12=0))]),
    ("jalr -4(a0)", [("jalr", dict(rd=RA, rs1=A0, imm12=-4))]),
    ("jalr a0, 12", [("jalr", dict(rd=RA, rs1=A0, imm12=12))]),
    ("jalr t0, a0", [("jalr", dict(rd=T0, rs1=A0, imm12=0))]),
    ("jalr t0, 8(a0)", [("jalr", dict(rd=T0, rs1=A0, imm12=8))]),
    ("jalr t0, a0, 8", [("jalr", dict(rd=T0, rs1=A0, imm12=8))]),
    ("ret", [("jalr", dict(rd=0, rs1=RA, imm12=0))]),
    (
        "call . + 0x12345",
        [("auipc", dict(rd=RA, imm20=0x12)), ("jalr", dict(rd=RA, rs1=RA, imm12=0x345))],
    ),
    (
        "tail . - 0x800",
        [("auipc", dict(rd=T1, imm20=0)), ("jalr", dict(rd=0, rs1=T1, imm12=-0x800))],
    ),
    ("csrr a0, mepc", [("csrrs", dict(rd=A0, csr=0x341, rs1=0))]),
    ("csrw mepc, a0", [("csrrw", dict(rd=0, csr=0x341, rs1=A0))]),
    ("csrs mie, a0", [("csrrs", dict(rd=0, csr=0x304, rs1=A0))]),
    ("csrc mie, a0", [("csrrc", dict(rd=0, csr=0x304, rs1=A0))]),
    ("csrw mie, 8", [("csrrwi", dict(rd=0, csr=0x304, zimm=8))]),
    ("csrs mie, 8", [("csrrsi", dict(rd=0, csr=0x304, zimm=8))]),
    ("csrc mie, 8", [("csrrci", dict(rd=0, csr=0x304, zimm=8))]),
    ("csrwi mie, 31", [("csrrwi", dict(rd=0, csr=0x304, zimm=31))]),
    ("csrsi mie, 1", [("csrrsi", dict(rd=0, csr=0x304, zimm=1))]),
    ("csrci mie, 2", [("csrrci", dict(rd=0, csr=0x304, zimm=2))]),
    ("csrrw a0, mie, 3", [("csrrwi", dict(rd=A0, csr=0x304, zimm=3))]),
    ("csrrs a0, mie, 3", [("csrrsi", dict(rd=A0, csr=0x304, zimm=3))]),
    ("csrrc a0, mie, 3", [("csrrci", dict(rd=A0, csr=0x304, zimm=3))]),
    ("rdcycle a0", [("csrrs", dict(rd=A0, csr=0xC00, rs1=0))]),
    ("rdtime a0", [("csrrs", dict(rd=A0, csr=0xC01, rs1=0))]),
    ("rdinstret a0", [("csrrs", dict(rd=A0, csr=0xC02, rs1=0))]),
    ("rdcycleh a0", [("csrrs", dict(rd=A0, csr=0xC80, rs1=0))]),
    ("rdtimeh a0", [("csrrs", dict(rd=A0, csr=0xC81, rs1=0))]),
    ("rdinstreth a0", [("csrrs", dict(rd=A0, csr=0xC82, rs1=0))]),
    ("fence", [("fence", dict(pred=15, succ=15))]),
    ("sfence.vma", [("sfence.vma", dict(rs1=0, rs2=0))]),
    ("sfence.vma a0", [("sfence.vma", dict(rs1=A0, rs2=0))]),
    ("sfence.vma a0, a1", [("sfence.vma", dict(rs1=A0, rs2=A1))]),
    ("hfence.vvma", [("hfence.vvma", dict(rs1=0, rs2=0))]),
    ("hfence.vvma a0", [("hfence.vvma", dict(rs1=A0, rs2=0))]),
    ("hfence.gvma", [("hfence.gvma", dict(rs1=0, rs2=0))]),
    ("hfence.gvma a0, a1", [("hfence.gvma", dict(rs1=A0, rs2=A1))]),
    ("unimp", [("csrrw", dict(rd=0, csr=0xC00, rs1=0))]),
    ("li a0, 5", [("addi", dict(rd=A0, rs1=0, imm12=5))]),
    (
        "la a0, . + 0x1800",
        [("auipc", dict(rd=A0, imm20=2)), ("addi", dict(rd=A0, rs1=A0, imm12=-0x800))],
    ),
    ("lla a0, 0x10000000", [("lui", dict(rd=A0, imm20=0x10000))]),
]


@pytest.mark.parametrize("source, expansion", PSEUDO_CASES, ids=[c[0] for c in PSEUDO_CASES])
def test_pseudo_instruction(source, expansion):
    assert text_words(source) == [enc(name, **fields) for name, fields in expansion]


def test_every_pseudo_instruction_has_a_case():
    written = {source.split()[0] for source, _ in PSEUDO_CASES}
    assert set(PSEUDO_INSTRUCTIONS) <= written


@pytest.mark.parametrize(
    "value, expansion",
    [
        (0, [("addi", 0)]),
        (2047, [("addi", 2047)]),
        (-2048, [("addi", -2048)]),
        (2048, [("lui", 1), ("addi", -2048)]),
        (0x1000, [("lui", 1)]),
        (0x12345678, [("lui", 0x12345), ("addi", 0x678)]),
        (0x7FFFF800, [("lui", 0x80000), ("addi", -2048)]),
        (0x80000000, [("lui", 0x80000)]),
        (0xFFFFFFFF, [("addi", -1)]),
        (-1, [("addi", -1)]),
        (0xFFFFF800, [("addi", -2048)]),
        (0xFFFFF000, [("lui", 0xFFFFF)]),
    ],
)
def test_li_picks_the_shortest_sequence(value, expansion):
    words = []
    for name, imm in expansion:
        if name == "lui":
            words.append(enc("lui", rd=A0, imm20=imm))
        else:
            words.append(enc("addi", rd=A0, rs1=A0 if len(expansion) == 2 else 0, imm12=imm))
    assert text_words(f"li a0, {value}") == words


@given(st.integers(-(1 << 31), (1 << 32) - 1))
def test_li_loads_any_32_bit_value(value):
    words = text_words(f"li a0, {value}")
    assert len(words) <= 2
    assert run_lui_addi(words) == value & 0xFFFFFFFF


def test_li_with_a_label_or_later_constant_is_always_lui_addi():
    words = text_words("li a0, LATER\nli a1, here\nhere: nop\n.equ LATER, 5")
    assert len(words) == 5
    assert run_lui_addi(words[0:2]) == 5
    assert run_lui_addi(words[2:4]) == BASE + 16


def test_la_is_pc_relative_and_li_for_constants():
    program = assemble("la a0, msg\n.data\nmsg: .word 0")
    words = text_words("la a0, msg\n.data\nmsg: .word 0")
    offset = program.symbols["msg"] - BASE
    hi = (offset + 0x800) >> 12
    assert words == [
        enc("auipc", rd=A0, imm20=hi),
        enc("addi", rd=A0, rs1=A0, imm12=offset - (hi << 12)),
    ]
    assert text_words(".equ UART, 0x10000000\nla a0, UART") == [enc("lui", rd=A0, imm20=0x10000)]
    # A constant defined after its use is not known in pass 1: auipc + addi reach it too.
    later = assemble("la a0, UART\n.equ UART, 0x10000000")
    assert len(later.section(".text").data) == 8


# -- directives ----------------------------------------------------------------------


def test_data_directives():
    program = assemble(
        ".data\n.byte 1, -1, 255, 'a'\n.half 0x1234, -2\n.short 7\n.2byte 8\n"
        ".word 0xdeadbeef, -1\n.long 2\n.4byte 3"
    )
    assert program.section(".data").data == bytes.fromhex(
        "01ffff613412feff07000800efbeaddeffffffff0200000003000000"
    )


def test_strings():
    program = assemble('.data\n.ascii "ab", "c"\n.asciz "d"\n.string "\\t\\"\\\\\\n\\x41\\101"')
    assert program.section(".data").data == b'abcd\0\t"\\\nAA\0'


def test_alignment_is_a_power_of_two_and_code_is_padded_with_nops():
    data = assemble(".data\n.byte 1\n.align 2\n.byte 2\n.p2align 3\n.byte 3\n.balign 4\n.byte 4")
    assert data.section(".data").data == bytes.fromhex("01000000020000000300000004")
    nop = enc("addi", rd=0, rs1=0, imm12=0)
    # As under GNU as, a code section also ends padded to its alignment.
    assert text_words("nop\n.align 4\nnop") == [nop] * 8
    padded = assemble(".byte 1\n.align 3\nnop").section(".text").data
    assert padded == bytes.fromhex("01000000") + nop.to_bytes(4, "little") * 3


def test_alignment_fill_and_maximum():
    program = assemble(".data\n.byte 1\n.p2align 2, 0xaa\n.byte 2\n.balign 8, 0x55, 2\n.byte 3")
    assert program.section(".data").data == bytes.fromhex("01aaaaaa0203")
    assert program.section(".data").align == 8


def test_space_zero_skip_and_org():
    program = assemble(".data\n.zero 2\n.space 2, 7\n.skip 1\n.org 8\n.byte 9\n.org . + 2, 0xff")
    assert program.section(".data").data == bytes.fromhex("000007070000000009ffff")


def test_equ_set_and_assignment():
    words = text_words(
        ".equ A, 3\n.set B, A * 2\nC = B + 1\naddi a0, a0, C\n.set B, 100\naddi a0, a0, B"
    )
    assert words == [enc("addi", rd=A0, rs1=A0, imm12=7), enc("addi", rd=A0, rs1=A0, imm12=100)]
    assert assemble(".set N, 1\n.set N, N + 1\n").constants == {"N": 2}


def test_equ_of_a_label_difference_and_forward_use():
    program = assemble(
        "start: nop\nnop\nend:\n.equ SIZE, end - start\naddi a0, a0, LATE\n.equ LATE, SIZE * 2"
    )
    assert program.constants == {"SIZE": 8, "LATE": 16}
    assert program.section(".text").data[8:12] == enc("addi", rd=A0, rs1=A0, imm12=16).to_bytes(
        4, "little"
    )


def test_sections_are_laid_out_in_order_and_aligned():
    program = assemble(
        '.section .extra, "aw"\n.word 9\n.bss\n.zero 8\n.data\n.byte 1\n'
        ".rodata\n.byte 2\n.text\nnop",
        base=0x1000,
    )
    layout = [(s.name, s.address, s.size, s.nobits) for s in program.sections]
    assert layout == [
        (".text", 0x1000, 4, False),
        (".rodata", 0x1004, 1, False),
        (".data", 0x1008, 1, False),
        (".bss", 0x100C, 8, True),
        (".extra", 0x1014, 4, False),
    ]
    assert program.section(".bss").data == b""


def test_section_flags_and_types():
    program = assemble(
        '.section .boot, "ax"\nnop\n.section .stack, "aw", @nobits\n.zero 16\n'
        ".section .rodata.str\n.byte 1\n.section .text.init\nnop"
    )
    flags = {s.name: (s.flags, s.nobits) for s in program.sections}
    assert flags[".boot"] == ("ax", False)
    assert flags[".stack"] == ("aw", True)
    assert flags[".rodata.str"] == ("a", False)
    assert flags[".text.init"] == ("ax", False)


def test_globl_and_ignored_metadata_directives():
    program = assemble(
        '.file "x.c"\n.ident "gcc"\n.attribute arch, "rv32i"\n.globl main\n.global f\n'
        ".type main, @function\nmain: f: nop\n.size main, . - main\n.cfi_startproc\n"
        ".loc 1 2 3\n.option push\n.option norelax\n.option nopic\n.option pop"
    )
    assert program.global_names == {"main", "f"}
    assert program.symbols == {"main": BASE, "f": BASE}


def test_directive_list_is_covered():
    handled = {".word", ".half", ".short", ".byte", ".ascii", ".asciz", ".string", ".align"}
    assert handled | {".p2align", ".balign", ".zero", ".space", ".skip", ".org"} <= set(DIRECTIVES)
    assert {".text", ".data", ".rodata", ".bss", ".section", ".globl", ".global"} <= set(DIRECTIVES)
    assert {".equ", ".set", ".option", ".type", ".size", ".file", ".ident"} <= set(DIRECTIVES)


# -- expressions and labels --------------------------------------------------------------


@pytest.mark.parametrize(
    "expression, value",
    [
        ("1 + 2", 3),
        ("10 - 3", 7),
        ("6 * 7", 42),
        ("100 / 7", 14),
        ("-100 / 7", -14),
        ("100 % 7", 2),
        ("-100 % 7", -2),
        ("1 << 10", 1024),
        ("1024 >> 3", 128),
        ("0xf0 & 0x3c", 0x30),
        ("0xf0 | 0x3c", 0xFC),
        ("0xf0 ^ 0x3c", 0xCC),
        ("~5", -6),
        ("-(3 - 10)", 7),
        ("--3", 3),
        ("+4", 4),
        ("(1 + 2) * 3", 9),
        ("1 + 2 * 3", 7),
        ("1 + 2 << 3", 17),  # GNU as: << binds tighter than +
        ("1 | 2 + 4", 7),  # GNU as: | binds tighter than +
        ("2 * 3 & 7", 6),  # GNU as: * binds tighter than &
        ("010", 8),
        ("0b1011", 11),
        ("0X1F", 31),
        ("'A'", 65),
        ("'A", 65),
        ("'\\n'", 10),
        ("'#'", 35),
    ],
)
def test_expression(expression, value):
    assert text_words(f"addi a0, zero, {expression}") == [enc("addi", rd=A0, rs1=0, imm12=value)]


def test_location_counter_and_label_arithmetic():
    program = assemble(".data\na: .word 0\nb: .word b - a, ., end - a\nend:")
    assert program.section(".data").data[4:16] == (
        (4).to_bytes(4, "little")
        + (program.symbols["b"] + 4).to_bytes(4, "little")
        + (16).to_bytes(4, "little")
    )


def test_numeric_local_labels():
    words = text_words("1: j 1f\n1: j 1b\nj 1b\n2: bnez a0, 2b\n1: nop")
    assert words == [
        enc("jal", rd=0, jimm21=4),
        enc("jal", rd=0, jimm21=0),
        enc("jal", rd=0, jimm21=-4),
        enc("bne", rs1=A0, rs2=0, bimm13=0),
        enc("addi", rd=0, rs1=0, imm12=0),
    ]
    assert assemble("1: nop\nlocal: nop").symbols == {"local": BASE + 4}


def test_hi_lo_rebuild_any_address():
    program = assemble(".data\n.zero 0x7f8\nx: .word 0\n.text\nlui a0, %hi(x)\naddi a0, a0, %lo(x)")
    words = text_words(".data\n.zero 0x7f8\nx: .word 0\n.text\nlui a0, %hi(x)\naddi a0, a0, %lo(x)")
    assert run_lui_addi(words) == program.symbols["x"]
    assert text_words("lui a0, %hi(0x12345fff)\naddi a0, a0, %lo(0x12345fff)") == [
        enc("lui", rd=A0, imm20=0x12346),
        enc("addi", rd=A0, rs1=A0, imm12=-1),
    ]


def test_pcrel_hi_and_pcrel_lo_name_the_auipc():
    source = (
        "nop\n.Lhere: auipc a0, %pcrel_hi(target)\naddi a0, a0, %pcrel_lo(.Lhere)\n"
        "1: auipc a1, %pcrel_hi(target + 4)\nlw a1, %pcrel_lo(1b)(a1)\nsw a1, %pcrel_lo(1b)(a1)\n"
        ".zero 0x1000\ntarget: nop"
    )
    words = text_words(source)
    # .Lhere is at offset 4, 1: at 12, target at 24 + 0x1000.
    assert words[1:6] == [
        enc("auipc", rd=A0, imm20=1),
        enc("addi", rd=A0, rs1=A0, imm12=0x1018 - 4 - 0x1000),
        enc("auipc", rd=A1, imm20=1),
        enc("lw", rd=A1, rs1=A1, imm12=0x101C - 12 - 0x1000),
        enc("sw", rs2=A1, rs1=A1, simm12=0x101C - 12 - 0x1000),
    ]


# -- source text -----------------------------------------------------------------------


def test_comments_and_statement_separators():
    source = (
        "nop # a comment; with a separator\n"
        "nop; nop   /* inline */ ; nop\n"
        "/* a comment\n over lines */ nop\n"
        '.data\n.ascii "#;/*"  # strings keep their characters\n'
        ".byte ';'\n"
    )
    program = assemble(source)
    assert program.section(".text").size == 20
    assert program.section(".data").data == b"#;/*;"


def test_source_map_points_at_lines():
    program = assemble("_start:\n  li a0, 0x12345678\n  nop\n.data\n.word 1", filename="m.s")
    lines = {address - BASE: (s.file, s.line, s.text) for address, s in program.source_map.items()}
    assert lines == {
        0: ("m.s", 2, "  li a0, 0x12345678"),
        4: ("m.s", 2, "  li a0, 0x12345678"),
        8: ("m.s", 3, "  nop"),
    }


def test_entry_is_start_or_text(tmp_path):
    assert assemble("nop\n_start: nop").entry == BASE + 4
    assert assemble("nop", base=0x2000).entry == 0x2000
    path = tmp_path / "prog.s"
    path.write_text("nop\nfoo\n")
    with pytest.raises(AssemblerError) as caught:
        assemble_file(path)
    assert caught.value.file == str(path)
    assert caught.value.line == 2


def test_base_must_be_an_aligned_32_bit_address():
    with pytest.raises(ValueError, match="base"):
        assemble("nop", base=0x80000002)


# -- Program output ------------------------------------------------------------------


def test_segments_and_flat_binary():
    program = assemble("nop\n.data\n.byte 7\n.bss\n.zero 4", base=0x100)
    assert program.segments() == [
        (0x100, enc("addi", rd=0, rs1=0, imm12=0).to_bytes(4, "little")),
        (0x104, b"\x07"),
        (0x108, bytes(4)),
    ]
    assert program.to_binary() == program.section(".text").data + b"\x07"


def test_elf_is_readable_by_pyelftools():
    program = assemble(
        ".globl _start\n_start: la a0, msg\n.Llocal: j _start\n.equ N, 3\n"
        '.rodata\nmsg: .asciz "hi"\n.data\nvalue: .word 5\n.bss\nbuf: .zero 32'
    )
    elf = ELFFile(io.BytesIO(program.to_elf()))
    assert elf.elfclass == 32 and elf.little_endian
    assert elf["e_machine"] == "EM_RISCV" and elf.header["e_type"] == "ET_EXEC"
    assert elf.header["e_flags"] == 0
    assert elf["e_entry"] == program.entry == BASE
    for section in program.sections:
        found = elf.get_section_by_name(section.name)
        assert found["sh_addr"] == section.address
        assert found["sh_size"] == section.size
        if not section.nobits:
            assert found.data() == section.data
    assert elf.get_section_by_name(".bss")["sh_type"] == "SHT_NOBITS"
    segments = [(s["p_vaddr"], s["p_filesz"], s["p_memsz"]) for s in elf.iter_segments()]
    assert segments == [(s.address, len(s.data), s.size) for s in program.sections]
    symbols = {s.name: s for s in elf.get_section_by_name(".symtab").iter_symbols() if s.name}
    assert set(symbols) == {"_start", "msg", "value", "buf", "N"}
    assert symbols["_start"]["st_info"]["bind"] == "STB_GLOBAL"
    assert symbols["msg"]["st_info"]["bind"] == "STB_LOCAL"
    assert symbols["msg"]["st_value"] == program.symbols["msg"]
    assert symbols["N"]["st_shndx"] == "SHN_ABS" and symbols["N"]["st_value"] == 3
    assert elf.get_section(symbols["buf"]["st_shndx"]).name == ".bss"
    assert EM_RISCV == 243


# -- errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source, line, column, message",
    [
        ("nop\n  adi a0, a0, 1", 2, 3, "unknown instruction 'adi', did you mean 'addi'?"),
        (
            "addi a0, a0, 5000",
            1,
            14,
            "immediate 5000 out of range for addi (-2048..2047); use li",
        ),
        ("andi a0, a0, 4096", 1, 14, "out of range for andi (-2048..2047); load it into"),
        ("lw a0, 4096(sp)", 1, 8, "offset 4096 out of range for lw"),
        ("slli a0, a0, 32", 1, 14, "shift amount 32 out of range for slli (0..31)"),
        ("lui a0, 0x100000", 1, 9, "immediate 0x100000 out of range for lui"),
        ("csrrwi a0, mstatus, 32", 1, 21, "immediate 32 out of range for csrrwi (0..31)"),
        ("csrrs a0, 0x1000, zero", 1, 11, "CSR number 0x1000 out of range"),
        (
            "beq a0, a1, far\n.zero 5996\nfar: nop",
            1,
            13,
            "branch target 6000 bytes away, beyond +-4 KiB",
        ),
        ("j far\n.zero 0x100000\nfar: nop", 1, 3, "jump target 1048580 bytes away, beyond +-1 MiB"),
        ("beq a0, a1, . + 3", 1, 13, "branch target 3 bytes away is not 2-byte aligned"),
        ("add a0, zer0, a1", 1, 9, "unknown register 'zer0', did you mean 'zero'?"),
        ("add a0, a9, a1", 1, 9, "unknown register 'a9'; registers are x0-x31"),
        ("add a0, 5, a1", 1, 9, "expected a register (x0-x31 or an ABI name"),
        ("nop\nj nowhere\nnowhere2: nop", 2, 3, "undefined symbol 'nowhere', did you mean"),
        ("csrr a0, mstatsu", 1, 10, "unknown CSR 'mstatsu', did you mean 'mstatus'?"),
        ("  .wrod 5", 1, 3, "unknown directive '.wrod', did you mean '.word'?"),
        ("addi a0, a1", 1, 1, "wrong number of operands for addi (2): write 'addi rd, rs1, imm'"),
        ("ecall a0", 1, 1, "ecall takes no operands"),
        ("li a0, 1 << 32", 1, 8, "li value 0x100000000 does not fit in 32 bits"),
        ("lw a0, sym", 1, 8, "expected an address such as 8(sp) or (a0)"),
        ("addi a0, a0, 1 @ 2", 1, 16, "unexpected character '@'"),
        ("addi a0, a0, (1 + 2", 1, 20, "missing ')'"),
        ("addi a0, a0, 1 / 0", 1, 16, "division by zero"),
        ("addi a0, a0, 1 +", 1, 17, "expression ends too early"),
        ("addi a0, a0, 12ab", 1, 14, "bad number '12ab'"),
        ("addi a0, a0, 09", 1, 14, "bad octal number '09'"),
        ("lui a0, %high(x)", 1, 9, "unknown relocation operator '%high'"),
        ("addi a0, a0, %pcrel_lo(x)\nx: nop", 1, 14, "%pcrel_lo needs the label of an auipc"),
        ("bnez a0, 1b", 1, 10, "'1b' refers back to a '1:' label, but there is none above"),
        ("bnez a0, 1f", 1, 10, "'1f' refers forward to a '1:' label, but there is none below"),
        ("x: nop\n  x: nop", 2, 3, "'x' is already defined on line 1"),
        (".data\n.byte 256", 2, 7, "value 0x100 does not fit in .byte (8 bits)"),
        (".data\n.half -32769", 2, 7, "does not fit in .half (16 bits)"),
        (".bss\n.word 1", 2, 7, ".bss holds only zeros; put initialised data in .data"),
        (".bss\nnop", 2, 1, "instruction in .bss, which holds only zeros"),
        (".byte 1\nnop", 2, 1, "is not 4-byte aligned; put '.align 2' before it"),
        (".data\n.zero 8\n.org 4", 3, 6, ".org 0x4 would move backwards from offset 0x8"),
        (".org 0x80001000", 1, 6, ".org takes an offset from the start of the section"),
        (".zero later - here\nhere: nop\nlater:", 1, 7, "the .zero size must be known"),
        (".option rvc", 1, 9, "without the C extension"),
        (".option pic", 1, 9, "not supported"),
        (".option arch, +c", 1, 1, "unsupported .option 'arch'"),
        (".balign 3", 1, 9, ".balign takes a power of two"),
        (".globl main\nnop", 1, 8, "'main' is declared global but never defined"),
        (".equ A, B\n.equ B, A\nli a0, A", 1, 9, "is defined in terms of itself"),
        ('.ascii "\\q"', 1, 9, "unknown escape '\\q'"),
        (".ascii abc", 1, 8, ".ascii takes strings in double quotes"),
        (".section .x, ax", 1, 14, "section flags are a quoted string"),
        ("amoadd.w a0, a1, 4(a2)", 1, 18, "amoadd.w takes no offset"),
        ("fence rw, q", 1, 11, "fence sets are written with the letters i, o, r, w"),
        ("jalr a0, a1, 4, 5", 1, 1, "wrong number of operands for jalr"),
        ("sfence.vma a0, a1, a2", 1, 1, "wrong number of operands for sfence.vma"),
        ("  : nop", 1, 3, "expected an instruction, directive or label, found ': nop'"),
    ],
)
def test_error_names_line_and_column(source, line, column, message):
    error = error_of(source)
    first = error.errors[0]
    assert message in first.message
    assert (first.file, first.line, first.column) == ("t.s", line, column)
    assert (error.file, error.line, error.column) == ("t.s", line, column)
    assert isinstance(error, ValueError)


def test_error_text_shows_source_line_and_caret():
    error = error_of("nop\n\taddi a0, a0, 5000")
    assert str(error) == (
        "t.s:2:15: error: immediate 5000 out of range for addi (-2048..2047); use li\n"
        "    \taddi a0, a0, 5000\n"
        "    \t             ^"
    )
    assert error.source == "\taddi a0, a0, 5000"


def test_every_error_of_a_file_is_reported():
    source = (
        "start:\n"
        "    adi a0, a0, 1\n"  # 2: unknown instruction
        "    addi a0, a0, 5000\n"  # 3: immediate out of range
        "    add a0, a9, a1\n"  # 4: unknown register
        "    j nowhere\n"  # 5: undefined symbol (found in pass 2)
        "    csrr a0, mstatsu\n"  # 6: unknown CSR
        "    nop\n"
        "    .wrod 5\n"  # 8: unknown directive
    )
    error = error_of(source)
    assert [(e.line, e.column) for e in error.errors] == [
        (2, 5),
        (3, 18),
        (4, 13),
        (5, 7),
        (6, 14),
        (8, 5),
    ]
    text = str(error)
    assert text.endswith("6 errors")
    for diagnostic in error.errors:
        assert f"t.s:{diagnostic.line}:{diagnostic.column}: error: {diagnostic.message}" in text


# -- every instruction of the table, with random operands -------------------------------


def random_fields(insn, integer) -> dict[str, int]:
    """Legal operand values for ``insn``; ``integer(low, high)`` draws an integer."""
    fields = {}
    for operand in insn.operands:
        for name in (operand[:-5], "rs1") if operand.endswith("(rs1)") else (operand,):
            if not name:
                continue
            spec = FIELDS[name]
            if name in ("pred", "succ"):
                fields[name] = integer(1, spec.high)  # an empty set cannot be written
            else:
                fields[name] = integer(spec.low // spec.align, spec.high // spec.align) * spec.align
    if insn.format in ("AMO", "LR"):
        fields["aqrl"] = integer(0, 3)
    return fields


def instruction_text(insn, fields: dict[str, int]) -> str:
    """The instruction written in GNU as syntax."""
    name = insn.name + {0: "", 1: ".rl", 2: ".aq", 3: ".aqrl"}[fields.get("aqrl", 0)]
    operands = []
    for operand in insn.operands:
        if operand.endswith("(rs1)"):
            offset = operand[:-5]
            base = ABI_NAMES[fields["rs1"]]
            operands.append(f"{fields[offset]}({base})" if offset else f"({base})")
        elif operand in ("rd", "rs1", "rs2"):
            operands.append(ABI_NAMES[fields[operand]])
        elif operand in ("bimm13", "jimm21"):
            operands.append(
                f". + {fields[operand]}" if fields[operand] >= 0 else f". - {-fields[operand]}"
            )
        elif operand in ("pred", "succ"):
            operands.append(
                "".join(
                    c for c, bit in zip("iorw", (8, 4, 2, 1), strict=True) if fields[operand] & bit
                )
            )
        elif operand == "csr":
            operands.append(hex(fields[operand]))
        else:
            operands.append(str(fields[operand]))
    return f"{name} {', '.join(operands)}".strip()


@st.composite
def instructions(draw):
    insn = draw(st.sampled_from(INSTRUCTIONS))
    return insn, random_fields(insn, lambda low, high: draw(st.integers(low, high)))


@given(instructions())
def test_random_instruction_assembles_to_its_encoding(case):
    insn, fields = case
    assert text_words(instruction_text(insn, fields)) == [encode(insn, **fields)]


# -- size ------------------------------------------------------------------------------


def generated_source(lines: int) -> str:
    """A program of ``lines`` lines mixing instructions, pseudo-instructions and labels."""
    body = [".text", "_start:"]
    for i in range(lines - 2):
        match i % 8:
            case 0:
                body.append(f"L{i}: addi a0, a0, {i % 2048}")
            case 1:
                body.append(f"    lw t0, {(i % 512) * 4}(sp)   # a comment")
            case 2:
                body.append(f"    beq a0, a1, L{i - 2}")
            case 3:
                body.append(f"    li a2, {i * 7919}")
            case 4:
                body.append(f"    la a3, L{i - 4}")
            case 5:
                body.append("    csrrw a0, mscratch, a0")
            case 6:
                body.append(f"    jal ra, L{i - 6}")
            case 7:
                body.append("1:  bnez a0, 1b")
    return "\n".join(body) + "\n"


def test_ten_thousand_lines_assemble():
    source = generated_source(10_000)
    started = time.perf_counter()
    program = assemble(source)
    elapsed = time.perf_counter() - started
    print(f"assembled 10,000 lines in {elapsed:.3f} s")
    assert len(program.source_map) > 10_000
