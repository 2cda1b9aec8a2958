"""Exercise 00.1: decode an instruction word into its name and operand fields.

The words come from the instruction table (virtkit.isa.instructions): one RV32I
instruction per seed, with random operands, encoded by virtkit.isa.encoding. Field names
are the table's: rd, rs1, rs2, imm12 (I), simm12 (S), bimm13 (B), imm20 (U), jimm21 (J),
shamt; immediates are the signed values the assembler writes (Volume I, 2.3).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from virtkit.exercises import Exercise, register, shown
from virtkit.isa.disasm import disassemble
from virtkit.isa.encoding import FIELDS, decode_fields, encode, operand_fields
from virtkit.isa.instructions import BY_NAME, lookup
from virtkit.isa.registers import ABI_NAMES

# The RV32I instructions a first lesson decodes: every base format once or more.
NAMES = (
    "add", "sub", "and", "or", "xor", "sll", "slt",
    "addi", "andi", "ori", "xori", "slti", "slli", "srli", "srai",
    "lw", "lb", "lbu", "sw", "sb",
    "beq", "bne", "blt", "bge",
    "lui", "auipc", "jal", "jalr",
)  # fmt: skip
REGISTER_FIELDS = ("rd", "rs1", "rs2")


@dataclass(frozen=True)
class DecodeProblem:
    """Decode ``word``: its mnemonic and each operand field."""

    seed: int
    word: int

    def __repr__(self) -> str:
        return (
            f"Exercise 00.1 (seed {self.seed}): decode the instruction word "
            f"{self.word:#010x} = {self.word:032b}"
        )


def generate(seed: int) -> DecodeProblem:
    rng = random.Random(f"00.1/{seed}")
    insn = BY_NAME[rng.choice(NAMES)]
    values = {}
    for operand in insn.operands:
        for name in operand_fields(operand):
            spec = FIELDS[name]
            values[name] = rng.randrange(spec.low, spec.high + 1, spec.align)
    return DecodeProblem(seed, encode(insn, **values))


def solve(problem: DecodeProblem) -> dict[str, int | str]:
    insn = lookup(problem.word)
    return {"name": insn.name, **decode_fields(insn, problem.word)}


def _describe(name: str, value) -> str:
    if name in REGISTER_FIELDS and isinstance(value, int) and 0 <= value < 32:
        return f"{value} ({ABI_NAMES[value]})"
    return shown(value)


def mistakes(problem: DecodeProblem, answer) -> list[str]:
    expected = solve(problem)
    word = f"{problem.word:#010x}"
    if callable(answer):
        try:
            answer = answer(problem.word)
        except Exception as exc:
            return [f"your function raised {type(exc).__name__}: {exc} when called with {word}"]
    if not isinstance(answer, dict):
        return [
            f"expected a dict such as {{'name': 'addi', 'rd': 10, 'rs1': 0, 'imm12': 5}} "
            f"(or a function returning one), got {type(answer).__name__}"
        ]
    if answer.get("name") != expected["name"]:
        return [
            f"name of {word}: expected {expected['name']!r}, got {shown(answer.get('name'))}; "
            "look at the opcode (bits 6:0) first, then funct3 (14:12) and funct7 (31:25)"
        ]
    wrong = []
    fields = list(expected)[1:]
    for name in fields:
        if name not in answer:
            wrong.append(
                f"field {name} of {word} is missing: {expected['name']} has fields "
                f"{', '.join(fields)}"
            )
        elif answer[name] != expected[name]:
            wrong.append(
                f"field {name} of {word}: expected {_describe(name, expected[name])}, "
                f"got {_describe(name, answer[name])}"
            )
    extra = sorted(set(answer) - set(expected))
    if extra:
        wrong.append(
            f"{expected['name']} has no field {', '.join(extra)}; its fields are "
            f"{', '.join(fields)}"
        )
    return wrong


def solved(problem: DecodeProblem) -> str:
    return f"{problem.word:#010x} is {disassemble(problem.word, aliases=False)}"


EXERCISE = register(
    Exercise(
        id="00.1",
        generate=generate,
        solve=solve,
        mistakes=mistakes,
        solved=solved,
        hints=(
            "The opcode is the low 7 bits: word & 0x7f. It tells you the format "
            "(R, I, S, B, U, J) and so where the other fields are.",
            "rd is bits 11:7, rs1 bits 19:15, rs2 bits 24:20: (word >> 7) & 0x1f, and so on.",
            "Immediates are signed: imm12 = word >> 20 as a 12-bit two's complement number "
            "(subtract 4096 when it is 2048 or more).",
            "B and J immediates are scattered (Volume I, figure 2.4) and always even; "
            "imm20 of lui/auipc is the 20-bit value before the shift by 12.",
        ),
    )
)
