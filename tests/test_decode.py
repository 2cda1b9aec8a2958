"""Pre-decoding (virtkit.cpu.decode) and the decode cache of the compiled core.

The cache is validated by the instruction word, so it must never run a stale
decoding: code that rewrites itself, Python writing RAM, or another program loaded
at the same addresses all execute their new instructions.
"""

from __future__ import annotations

import random

import pytest
from support import RAM_BASE, make_hart, run_program, symbol

from virtkit.cpu import decode as D
from virtkit.cpu import exits as E
from virtkit.cpu import state as S
from virtkit.isa import causes as C
from virtkit.isa import instructions as I
from virtkit.isa.asm import assemble

INLINE_FORMATS = ("U", "JAL", "JALR", "BRANCH", "LOAD", "STORE", "I", "I_SHIFT", "R")


def encode(text: str) -> int:
    return int.from_bytes(assemble(text, base=RAM_BASE).segments()[0][1][:4], "little")


def fields(form: int) -> tuple[str, int, int, int, int]:
    """(operation, rd, rs1, byte 3, immediate) of a decoded form, registers by number."""
    imm = form >> 32
    return (
        D.OP_NAMES[form & D.OP_MASK],
        ((form >> 8) & 0xFF) - D.X_SLOT,
        ((form >> 16) & 0xFF) - D.X_SLOT,
        (form >> 24) & 0xFF,
        imm,
    )


@pytest.mark.parametrize(
    "insn", [i for i in I.INSTRUCTIONS if i.format in INLINE_FORMATS], ids=lambda i: i.name
)
def test_every_inline_instruction_decodes_to_its_own_operation(insn):
    word = insn.match | (5 << 7) | (6 << 15) | (7 << 20) if insn.format != "U" else insn.match
    if insn.format in ("U", "JAL"):
        word |= 5 << 7
    name, rd, *_ = fields(D.decode(word))
    assert name == insn.name
    if insn.format not in ("BRANCH", "STORE"):
        assert rd == 5


@pytest.mark.parametrize(
    "text, expected",
    [
        ("addi a0, a1, -5", ("addi", 10, 11, -5)),
        ("slli t0, t1, 31", ("slli", 5, 6, 31)),
        ("srai t0, t1, 7", ("srai", 5, 6, 7)),
        ("lui a0, 0xfffff", ("lui", 10, None, -4096)),
        ("lhu s0, -2(sp)", ("lhu", 8, 2, -2)),
        ("jal ra, 0x80000000 - 8", ("jal", 1, 0, -8)),
    ],
)
def test_fields_and_immediates(text, expected):
    name, rd, rs1, _, imm = fields(D.decode(encode(text)))
    if expected[2] is None:  # LUI has no rs1: its field is part of the immediate
        rs1 = None
    assert (name, rd, rs1, imm) == expected


def test_branch_and_store_immediates_are_put_together():
    # A branch back 4096 bytes: the most negative 13-bit offset.
    program = assemble("target:\n.skip 4096\nbeq a0, a1, target\n", base=RAM_BASE)
    word = int.from_bytes(program.segments()[0][1][4096:4100], "little")
    assert fields(D.decode(word))[4] == -4096
    name, _, rs1, rs2_slot, imm = fields(D.decode(encode("sw a5, -2048(a4)")))
    assert (name, rs1, rs2_slot - D.X_SLOT, imm) == ("sw", 14, 15, -2048)
    assert fields(D.decode(encode("lb a0, 0(a1)")))[3] == 0  # a load keeps funct3 in byte 3
    assert fields(D.decode(encode("lhu a0, 0(a1)")))[3] == 5


def test_alu_instructions_to_x0_decode_to_nop_but_loads_do_not():
    assert fields(D.decode(encode("add x0, a1, a2")))[0] == "nop"
    assert fields(D.decode(encode("lui x0, 1")))[0] == "nop"
    assert fields(D.decode(encode("lw x0, 0(a1)")))[0] == "lw"  # it may fault or reach MMIO


def test_results_of_loads_and_jumps_for_x0_go_to_the_sink():
    sink = D.SINK_SLOT - D.X_SLOT  # as a register number, as fields() gives it
    for text in ("lw x0, 0(a1)", "lbu x0, 0(a1)", "jal x0, 0x80000000", "jalr x0, 0(ra)"):
        assert fields(D.decode(encode(text)))[1] == sink, text
    assert fields(D.decode(encode("jalr ra, 0(a0)")))[1] == 1  # a real rd is kept


def test_loads_and_jumps_to_x0_leave_x0_zero():
    hart = run_program(
        """
        la   a1, data
        lw   x0, 0(a1)
        lbu  x0, 0(a1)
        jal  x0, 1f
    1:  la   t0, 2f
        jalr x0, 0(t0)
    2:  mv   a0, x0
        ebreak
    data:
        .word 0x12345678
        """
    )
    assert hart.x[0] == 0 and hart.x["a0"] == 0


def test_words_that_are_no_instruction_decode_to_the_all_zero_form():
    assert D.decode(0) == D.ILLEGAL_FORM == 0  # an all-zero cache slot is correct as it is
    assert D.decode(encode("add a0, a1, a2") | (1 << 26)) == 0  # funct7 not 0, 0x20 or 1
    assert D.decode(0x00003003) == 0  # LOAD with funct3 = 3 (LD is RV64)
    assert D.decode(0x00003023) == 0  # STORE with funct3 = 3
    assert D.decode(0x00002063) == 0  # BRANCH with funct3 = 2
    assert D.decode(0x02001013 | (5 << 7)) == 0  # SLLI with shamt[5] set (RV64 only)


def test_random_words_never_decode_to_an_operation_the_table_does_not_have():
    """A decoded operation always names an instruction whose mask and match fit."""
    by_name = {i.name: i for i in I.INSTRUCTIONS}
    generator = random.Random(20261124)
    for _ in range(20000):
        word = generator.getrandbits(32) | 0b11
        name = fields(D.decode(word))[0]
        if name in ("illegal", "amo", "system"):
            continue
        if name == "nop":
            continue
        assert word & by_name[name].mask == by_name[name].match, hex(word)


# -- The decode cache in the core ------------------------------------------------------


def test_code_that_rewrites_itself_runs_its_new_instruction():
    hart = run_program(
        """
        li   s0, 3
        la   t0, patched
        la   t2, replacement
        lw   t1, 0(t2)
    loop:
    patched:
        addi a0, a0, 1          # becomes addi a0, a0, 100 after the first pass
        sw   t1, 0(t0)
        fence.i
        addi s0, s0, -1
        bnez s0, loop
        ebreak
    replacement:
        addi a0, a0, 100
        """
    )
    assert hart.x["a0"] == 1 + 100 + 100


def test_python_writing_code_is_seen_on_the_next_run():
    hart = make_hart("addi a0, a0, 1\nebreak\n")
    assert hart.run(10).reason == E.EXIT_EBREAK
    assert hart.x["a0"] == 1
    hart.write_memory(RAM_BASE, encode("addi a0, a0, 41").to_bytes(4, "little"))
    hart.pc = RAM_BASE
    assert hart.run(10).reason == E.EXIT_EBREAK
    assert hart.x["a0"] == 42


def test_two_words_in_one_cache_slot_both_run_correctly():
    """Words DECODE_ENTRIES words apart share a slot and keep evicting each other."""
    distance = 4 * S.DECODE_ENTRIES
    hart = run_program(
        f"""
        li   s0, 5
        la   t0, far
    loop:
        addi a0, a0, 1
        jalr ra, 0(t0)
        addi s0, s0, -1
        bnez s0, loop
        ebreak
        .skip {distance - 20}
    far:
        addi a1, a1, 2          # the same slot as "addi a0, a0, 1"
        ret
        """,
        ram_size=1 << 20,
    )
    assert symbol(hart, "far") - RAM_BASE == distance + 12
    assert (hart.x["a0"], hart.x["a1"]) == (5, 10)


def test_a_misaligned_pc_faults_at_the_fetch():
    hart = make_hart("nop\nnop\nebreak\n", trap_exits="all")
    hart.pc = RAM_BASE + 2
    exit = hart.run(10)
    assert exit.reason == E.EXIT_TRAP
    misaligned = RAM_BASE + 2
    assert (exit.cause, exit.tval, exit.pc) == (C.CAUSE_MISALIGNED_FETCH, misaligned, misaligned)


def test_a_jump_to_a_misaligned_target_faults_on_the_jump_and_keeps_rd():
    hart = make_hart("li t0, 0x80000002\nli ra, 7\njalr ra, 0(t0)\nebreak\n", trap_exits="all")
    exit = hart.run(10)
    assert exit.reason == E.EXIT_TRAP
    assert exit.cause == C.CAUSE_MISALIGNED_FETCH
    assert exit.tval == 0x80000002
    assert hart.x["ra"] == 7
