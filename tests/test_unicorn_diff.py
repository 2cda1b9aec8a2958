"""Differential tests: the hart and Unicorn run the same user-level code to the same state.

Unicorn (unicorn-engine.org) is QEMU's RISC-V translator, an implementation written
independently of virtkit. Both run the same instruction words from the same registers
and memory, in M-mode without paging; afterwards x1..x31 and a data buffer must be
identical. Covered (RISC-V unprivileged spec 20191213):

  - 2.4 integer computational instructions: every OP and OP-IMM instruction, shifts by
    every shamt, LUI and AUIPC;
  - 2.5 control transfer: forward branches taken and not taken, JAL, JALR (including a
    target with bit 0 set, which JALR clears);
  - 2.6 loads and stores of every width, with sign and zero extension;
  - 7.1-7.2 M: MUL, MULH, MULHSU, MULHU, DIV, DIVU, REM, REMU, with division by zero
    and the INT_MIN / -1 overflow (table 7.1).

Random sequences come from seeded generators, so every run tests the same programs.
Instructions are encoded from virtkit.isa's table (not by the assembler under test).
Loads and stores use one base register, x31, that points into the middle of the data
buffer and is never written; their offsets are aligned to the access width, so no
access is misaligned and every one stays inside the buffer. Branches and jumps only go
forward and land on the start of an instruction group, so every sequence ends.

When the two disagree, the test single-steps both to the first instruction after which
their registers differ and names it with its operands.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest

unicorn = pytest.importorskip(
    "unicorn", reason="unicorn is not installed: pip install unicorn (or virtkit[test])"
)
from unicorn import riscv_const  # noqa: E402

from virtkit.cpu import Hart  # noqa: E402
from virtkit.cpu import exits as E  # noqa: E402
from virtkit.isa.encoding import encode  # noqa: E402
from virtkit.isa.instructions import BY_NAME  # noqa: E402

RAM_BASE = 0x8000_0000
RAM_SIZE = 2 << 20
CODE = RAM_BASE
BUFFER = RAM_BASE + (1 << 20)
BUFFER_SIZE = 4096
BASE_REGISTER = 31  # holds BUFFER + 2048: every imm12 offset lands in the buffer
BASE_VALUE = BUFFER + 2048
DESTINATIONS = range(1, 31)  # every register except x0 and the base may be written
MASK32 = 0xFFFF_FFFF
INT_MIN = 0x8000_0000
EBREAK = encode(BY_NAME["ebreak"])

# Values that find the edges of arithmetic: signs, overflow, shift amounts in bits 4:0
# and above, division by zero and INT_MIN / -1.
INTERESTING = (
    0, 1, 2, 3, 31, 32, 33, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x1_0000,
    0x7FFF_FFFF, INT_MIN, INT_MIN + 1, MASK32, MASK32 - 1, 0xFFFF_FF80, 0xFFFF_8000,
    0x5555_5555, 0xAAAA_AAAA, 0x1234_5678,
)  # fmt: skip
INTERESTING_IMM12 = (0, 1, -1, 2047, -2048, 0x7FF, 31, 32, -32, 0x555, -0x556)

OP = ("add", "sub", "sll", "slt", "sltu", "xor", "srl", "sra", "or", "and")
MULDIV = ("mul", "mulh", "mulhsu", "mulhu", "div", "divu", "rem", "remu")
OP_IMM = ("addi", "slti", "sltiu", "xori", "ori", "andi")
SHIFT_IMM = ("slli", "srli", "srai")
LOADS = {"lb": 1, "lh": 2, "lw": 4, "lbu": 1, "lhu": 2}
STORES = {"sb": 1, "sh": 2, "sw": 4}
BRANCHES = ("beq", "bne", "blt", "bge", "bltu", "bgeu")

UNICORN_X1 = riscv_const.UC_RISCV_REG_X1  # X1..X31 are numbered consecutively


# -- Programs -------------------------------------------------------------------------------


@dataclass
class Instruction:
    """One instruction: its name and fields, or a jump resolved once the layout is known."""

    name: str
    fields: dict[str, int] = field(default_factory=dict)
    skip: int | None = None  # a forward branch or jump: how many groups to skip
    pc_offset: int = 0  # jalr: added to the distance from its auipc to the target

    def text(self) -> str:
        operands = ", ".join(f"{k}={v}" for k, v in self.fields.items())
        return f"{self.name} {operands}"


@dataclass
class Program:
    """Instruction groups (branch targets are group starts), initial registers, buffer."""

    groups: list[list[Instruction]]
    registers: list[int]  # x0..x31
    buffer: bytes

    def layout(self) -> tuple[list[int], list[Instruction]]:
        """The instruction words from CODE, ending with EBREAK, and the instructions."""
        starts = []
        address = CODE
        for group in self.groups:
            starts.append(address)
            address += 4 * len(group)
        starts.append(address)  # the final ebreak
        words, flat = [], []
        for index, group in enumerate(self.groups):
            for position, insn in enumerate(group):
                pc = starts[index] + 4 * position
                values = dict(insn.fields)
                if insn.skip is not None:
                    target = starts[index + 1 + insn.skip]
                    if insn.name == "jalr":  # relative to its auipc, the group's start
                        values["imm12"] = target - starts[index] + insn.pc_offset
                    else:
                        values["bimm13" if insn.name in BRANCHES else "jimm21"] = target - pc
                words.append(encode(BY_NAME[insn.name], **values))
                flat.append(Instruction(insn.name, values))
        words.append(EBREAK)
        flat.append(Instruction("ebreak"))
        return words, flat


def random_register_value(rng: random.Random) -> int:
    return rng.choice(INTERESTING) if rng.random() < 0.5 else rng.getrandbits(32)


def random_imm12(rng: random.Random) -> int:
    return rng.choice(INTERESTING_IMM12) if rng.random() < 0.3 else rng.randint(-2048, 2047)


def random_group(rng: random.Random, groups_left: int) -> list[Instruction]:
    """One instruction, or the auipc + jalr pair that makes a safe indirect jump."""
    rd = rng.choice(DESTINATIONS)
    rs1, rs2 = rng.randrange(32), rng.randrange(32)
    kind = rng.choices(
        ("op", "muldiv", "op_imm", "shift", "upper", "load", "store", "branch", "jal", "jalr"),
        weights=(20, 15, 15, 10, 4, 12, 10, 8, 3, 3),
    )[0]
    skip = rng.randint(0, min(3, groups_left - 1))  # never past the final ebreak
    if kind == "op":
        return [Instruction(rng.choice(OP), {"rd": rd, "rs1": rs1, "rs2": rs2})]
    if kind == "muldiv":
        return [Instruction(rng.choice(MULDIV), {"rd": rd, "rs1": rs1, "rs2": rs2})]
    if kind == "op_imm":
        return [Instruction(rng.choice(OP_IMM), {"rd": rd, "rs1": rs1, "imm12": random_imm12(rng)})]
    if kind == "shift":
        fields = {"rd": rd, "rs1": rs1, "shamt": rng.randrange(32)}
        return [Instruction(rng.choice(SHIFT_IMM), fields)]
    if kind == "upper":
        return [Instruction(rng.choice(("lui", "auipc")), {"rd": rd, "imm20": rng.getrandbits(20)})]
    if kind == "load":
        name = rng.choice(tuple(LOADS))
        offset = rng.randrange(-2048, 2048, LOADS[name])
        return [Instruction(name, {"rd": rd, "rs1": BASE_REGISTER, "imm12": offset})]
    if kind == "store":
        name = rng.choice(tuple(STORES))
        offset = rng.randrange(-2048, 2048, STORES[name])
        return [Instruction(name, {"rs2": rs2, "rs1": BASE_REGISTER, "simm12": offset})]
    if kind == "branch":
        # Comparing a register with itself decides the branch for certain; mix both.
        rs2 = rs1 if rng.random() < 0.2 else rs2
        return [Instruction(rng.choice(BRANCHES), {"rs1": rs1, "rs2": rs2}, skip=skip)]
    if kind == "jal":
        return [Instruction("jal", {"rd": rng.choice((0, 1, rd))}, skip=skip)]
    # jalr: auipc puts the group's address in a register; jalr adds the distance, plus 1
    # sometimes, because JALR clears bit 0 of the target (2.5).
    link = rng.choice((0, 1, rd))
    return [
        Instruction("auipc", {"rd": rd, "imm20": 0}),
        Instruction("jalr", {"rd": link, "rs1": rd}, skip=skip, pc_offset=rng.choice((0, 1))),
    ]


def random_program(seed: int) -> Program:
    rng = random.Random(seed)
    count = rng.randint(50, 200)
    groups = [random_group(rng, count - i) for i in range(count)]
    registers = [0] + [random_register_value(rng) for _ in range(1, 32)]
    registers[BASE_REGISTER] = BASE_VALUE
    return Program(groups, registers, rng.randbytes(BUFFER_SIZE))


def directed_program(instructions: list[Instruction], values: list[int], seed: int) -> Program:
    """``instructions`` with x1.. holding ``values`` and the rest of x1..x30 random."""
    rng = random.Random(seed)
    registers = [0] + [random_register_value(rng) for _ in range(1, 32)]
    registers[1 : 1 + len(values)] = values
    registers[BASE_REGISTER] = BASE_VALUE
    return Program([[insn] for insn in instructions], registers, rng.randbytes(BUFFER_SIZE))


# -- The two machines ----------------------------------------------------------------------


class HartRunner:
    def __init__(self, program: Program, words: list[int]):
        self.hart = Hart(RAM_SIZE, trap_exits="all", ebreak_exits=True)
        self.hart.write_memory(CODE, b"".join(w.to_bytes(4, "little") for w in words))
        self.hart.write_memory(BUFFER, program.buffer)
        for number, value in enumerate(program.registers):
            self.hart.x[number] = value
        self.hart.pc = CODE

    def run(self) -> None:
        exit = self.hart.run(100_000)
        assert exit.reason == E.EXIT_EBREAK, f"the hart stopped with {exit}, not at the ebreak"

    def step(self) -> None:
        self.hart.step()

    @property
    def pc(self) -> int:
        return self.hart.pc

    def registers(self) -> list[int]:
        return list(self.hart.x)[1:]

    def buffer(self) -> bytes:
        return self.hart.read_memory(BUFFER, BUFFER_SIZE)


class UnicornRunner:
    def __init__(self, program: Program, words: list[int]):
        self.end = CODE + 4 * (len(words) - 1)  # the ebreak, which Unicorn does not execute
        self.uc = unicorn.Uc(unicorn.UC_ARCH_RISCV, unicorn.UC_MODE_RISCV32)
        self.uc.mem_map(RAM_BASE, RAM_SIZE)
        self.uc.mem_write(CODE, b"".join(w.to_bytes(4, "little") for w in words))
        self.uc.mem_write(BUFFER, program.buffer)
        for number, value in enumerate(program.registers[1:], start=1):
            self.uc.reg_write(UNICORN_X1 + number - 1, value)
        self.uc.reg_write(riscv_const.UC_RISCV_REG_PC, CODE)

    def run(self) -> None:
        self.uc.emu_start(CODE, self.end)

    def step(self) -> None:
        self.uc.emu_start(self.pc, self.end, count=1)

    @property
    def pc(self) -> int:
        return self.uc.reg_read(riscv_const.UC_RISCV_REG_PC)

    def registers(self) -> list[int]:
        return [self.uc.reg_read(UNICORN_X1 + i) & MASK32 for i in range(31)]

    def buffer(self) -> bytes:
        return bytes(self.uc.mem_read(BUFFER, BUFFER_SIZE))


def first_divergence(program: Program, words: list[int], flat: list[Instruction]) -> str:
    """Single-step both machines; describe the first instruction after which they differ."""
    hart, uc = HartRunner(program, words), UnicornRunner(program, words)
    while hart.pc == uc.pc and uc.pc != uc.end:
        before = hart.registers()
        pc = hart.pc
        insn = flat[(pc - CODE) // 4]
        hart.step()
        uc.step()
        if (hart.pc, hart.registers(), hart.buffer()) != (uc.pc, uc.registers(), uc.buffer()):
            operands = {
                f"x{insn.fields[name]}": before[insn.fields[name] - 1]
                for name in ("rs1", "rs2")
                if insn.fields.get(name)
            }
            differing = {
                f"x{i + 1}": (f"{a:#x}", f"{b:#x}")
                for i, (a, b) in enumerate(zip(hart.registers(), uc.registers(), strict=True))
                if a != b
            }
            return (
                f"first difference after {insn.text()} at {pc:#x} with "
                f"{ {k: hex(v) for k, v in operands.items()} }: registers (hart, unicorn) "
                f"{differing}, next pc hart {hart.pc:#x} unicorn {uc.pc:#x}"
            )
    return "no difference found when single-stepping"


def assert_same_result(program: Program) -> None:
    words, flat = program.layout()
    hart, uc = HartRunner(program, words), UnicornRunner(program, words)
    hart.run()
    uc.run()
    if hart.registers() != uc.registers() or hart.buffer() != uc.buffer():
        pytest.fail(first_divergence(program, words, flat))


# -- Tests -----------------------------------------------------------------------------------

SEEDS = range(20)
SEQUENCES_PER_SEED = 20  # 400 random sequences of 50 to 200 instruction groups


@pytest.mark.parametrize("seed", SEEDS)
def test_random_sequences_agree(seed):
    for sequence in range(SEQUENCES_PER_SEED):
        assert_same_result(random_program(seed * SEQUENCES_PER_SEED + sequence))


def results_to_buffer(name: str, pairs: list[tuple[int, int]], first_offset: int = -2048):
    """``name rd, rs1, rs2`` for each register pair, each result stored in the buffer."""
    instructions = []
    offset = first_offset
    for rs1, rs2 in pairs:
        rd = 30
        instructions.append(Instruction(name, {"rd": rd, "rs1": rs1, "rs2": rs2}))
        instructions.append(Instruction("sw", {"rs2": rd, "rs1": BASE_REGISTER, "simm12": offset}))
        offset += 4
    return instructions


CORNER_VALUES = [0, 1, MASK32, INT_MIN, 0x7FFF_FFFF, 2, MASK32 - 1, 0x8000_0001, 7, 0xFFFF_FFF9]


@pytest.mark.parametrize("name", OP + MULDIV)
def test_every_register_operation_on_corner_values(name):
    """All pairs of CORNER_VALUES (x1..x10), including x/0, INT_MIN/-1 and INT_MIN*INT_MIN."""
    registers = range(1, len(CORNER_VALUES) + 1)
    pairs = [(a, b) for a in registers for b in registers]
    assert_same_result(directed_program(results_to_buffer(name, pairs), CORNER_VALUES, seed=1))


@pytest.mark.parametrize("name", SHIFT_IMM)
def test_shift_immediates_with_every_shamt(name):
    instructions = []
    offset = -2048
    for source in range(1, 5):
        for shamt in range(32):
            instructions.append(Instruction(name, {"rd": 30, "rs1": source, "shamt": shamt}))
            store = {"rs2": 30, "rs1": BASE_REGISTER, "simm12": offset}
            instructions.append(Instruction("sw", store))
            offset += 4
    values = [INT_MIN, MASK32, 0x8765_4321, 0x1234_5678]
    assert_same_result(directed_program(instructions, values, seed=2))


@pytest.mark.parametrize("name", tuple(LOADS))
def test_loads_of_every_width_and_alignment(name):
    """Each width at every aligned offset of 128 random bytes, half with the top bit set."""
    width = LOADS[name]
    instructions = []
    for index, offset in enumerate(range(-64, 64, width)):
        instructions.append(Instruction(name, {"rd": 30, "rs1": BASE_REGISTER, "imm12": offset}))
        store = {"rs2": 30, "rs1": BASE_REGISTER, "simm12": 1024 + 4 * index}
        instructions.append(Instruction("sw", store))
    assert_same_result(directed_program(instructions, [], seed=3))
