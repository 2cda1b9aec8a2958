"""The disassembler against independent implementations: GNU objdump and capstone.

A corpus of words covers every instruction of the table with edge and random operand
values, and every CSR of the CSR table plus numbers from the custom ranges that no
tool names (privileged spec 20211203, table 2.1).

objdump: a raw binary (``objdump -b binary``) would be disassembled without the H
extension, so the corpus is written as ``.insn 0x...`` lines, assembled with
``riscv64-unknown-elf-as -march=rv32ima_zicsr_zifencei_h`` (whose .riscv.attributes
section tells objdump the extensions), and disassembled with ``objdump -d --adjust-vma
-M priv-spec=1.12`` (the CSR names of the privileged spec the CSR table follows), with
and without ``-M no-aliases``. The comparison collapses whitespace, ignores objdump's
``# address`` hints (a listing feature, compared in the listing test), and reads
objdump's "unknown" for an empty FENCE set as "0" (see virtkit.isa.disasm).

capstone (CS_ARCH_RISCV, CS_MODE_RISCV32) has no H extension and another syntax and
alias set, so it is compared on mnemonic and operand values, not text.
"""

from __future__ import annotations

import random
import re
import shutil
import struct
import subprocess

import pytest

from virtkit.isa import csrs
from virtkit.isa.disasm import ALIASES, disassemble, disassemble_file
from virtkit.isa.encoding import FIELDS, decode_fields, encode, operand_fields
from virtkit.isa.instructions import INSTRUCTIONS, lookup
from virtkit.isa.registers import ABI_NAMES

BASE = 0x8000_0000
CORPUS_LABEL = "_corpus"
MARCH = "rv32ima_zicsr_zifencei_h"
OBJDUMP = "riscv64-unknown-elf-objdump"
AS = "riscv64-unknown-elf-as"
LD = "riscv64-unknown-elf-ld"
RANDOM_WORDS_PER_INSTRUCTION = 64
CUSTOM_CSR_RANGES = (0x7C0, 0x5C0, 0x6C0, 0x800, 0x9C0, 0xAC0, 0xBC0, 0xCC0, 0xDC0, 0xFC0)


def _interesting_values(name: str) -> list[int]:
    field = FIELDS[name]
    values = {field.low, field.high, 0, field.align, field.low + field.align}
    if field.low < 0:
        values |= {-field.align, field.high - field.align}
    if name in ("rd", "rs1", "rs2"):
        values |= {1, 2, 3, 4}  # ra, sp, gp, tp: the registers aliases and hints single out
    if name == "imm12":
        values |= {1, -1, 0xFF}  # seqz, not, zext.b
    if name in ("pred", "succ"):
        values.add(0b1111)  # the plain "fence"
    return sorted(v for v in values if field.low <= v <= field.high)


def _random_value(name: str, rng: random.Random) -> int:
    field = FIELDS[name]
    if rng.random() < 0.5:
        return rng.choice(_interesting_values(name))
    return rng.randrange(field.low, field.high + 1, field.align)


def _corpus() -> list[int]:
    rng = random.Random(20241)
    known_csrs = [csr.number for csr in csrs.CSRS]
    custom_csrs = [start + offset for start in CUSTOM_CSR_RANGES for offset in (0, 0x15, 0x3F)]
    words = []
    for insn in INSTRUCTIONS:
        names = list(decode_fields(insn, insn.match))
        for _ in range(RANDOM_WORDS_PER_INSTRUCTION):
            fields = {name: _random_value(name, rng) for name in names}
            if "csr" in fields:
                fields["csr"] = rng.choice(known_csrs + custom_csrs)
            words.append(encode(insn, **fields))
        if "csr" in names:
            for number in known_csrs + custom_csrs:
                fields = {name: _random_value(name, rng) for name in names}
                words.append(encode(insn, **{**fields, "csr": number}))
    return words


CORPUS = _corpus()


def _require(tool: str, package: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} not found; apt-get install {package}")
    return path


def _objdump_lines(obj, options: str, *extra: str) -> list[tuple[int, int, str]]:
    """(address, word, text) of each instruction objdump prints, whitespace collapsed."""
    objdump = _require(OBJDUMP, "binutils-riscv64-unknown-elf")
    listing = subprocess.run(
        [objdump, "-d", "-M", options, *extra, str(obj)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    lines = []
    for match in re.finditer(r"^\s*([0-9a-f]+):\s+([0-9a-f]{8})\s+(.*)$", listing, re.MULTILINE):
        address, word, text = match.groups()
        lines.append((int(address, 16), int(word, 16), " ".join(text.split())))
    return lines


@pytest.fixture(scope="module")
def corpus_object(tmp_path_factory):
    assembler = _require(AS, "binutils-riscv64-unknown-elf")
    folder = tmp_path_factory.mktemp("corpus")
    source = folder / "corpus.s"
    source.write_text(
        f".text\n.globl {CORPUS_LABEL}\n{CORPUS_LABEL}:\n"
        + "".join(f".insn 0x{word:08x}\n" for word in CORPUS)
    )
    obj = folder / "corpus.o"
    subprocess.run([assembler, f"-march={MARCH}", "-o", str(obj), str(source)], check=True)
    return obj


def _normalise_objdump(text: str) -> str:
    text = text.split(" # ")[0]
    return re.sub(r"\bunknown\b", "0", text)


@pytest.mark.parametrize("aliases", [True, False], ids=["aliases", "no-aliases"])
def test_every_instruction_prints_as_objdump_prints_it(corpus_object, aliases):
    options = "priv-spec=1.12" + ("" if aliases else ",no-aliases")
    lines = _objdump_lines(corpus_object, options, f"--adjust-vma={BASE:#x}")
    assert [word for _, word, _ in lines] == CORPUS
    symbols = {BASE: CORPUS_LABEL}
    differences = [
        f"{word:08x}: objdump {_normalise_objdump(text)!r}, virtkit {ours!r}"
        for address, word, text in lines
        if (ours := disassemble(word, address, aliases=aliases, symbols=symbols))
        != _normalise_objdump(text)
    ]
    assert differences == [], f"{len(differences)} differences:\n" + "\n".join(differences[:30])


def test_every_table_instruction_is_in_the_corpus():
    assert {lookup(word) for word in CORPUS} == set(INSTRUCTIONS)


# A program with the idioms whose address hints objdump prints: la, call, lui+lw,
# gp-relative accesses after linker relaxation, an absolute address, a far jump.
LISTING_PROGRAM = """
.text
.globl _start
_start:
    la a0, message
    call puts
    lui a1, %hi(counter)
    lw a2, %lo(counter)(a1)
    addi a2, a2, 1
    sw a2, %lo(counter)(a1)
    lw a3, -2040(gp)
    sw a2, 4(zero)
    beqz a0, 1f
    j _start
1:  csrr a0, mhartid
    csrw mtvec, a0
    li a0, 0x12345678
    jr a0
    .type puts, @function
puts:
    lbu t0, 0(a0)
    beqz t0, 2f
    addi a0, a0, 1
    j puts
2:  ret
.data
message: .string "hi"
.align 2
counter: .word 0
"""


def test_a_linked_program_lists_as_objdump_lists_it(tmp_path):
    assembler = _require(AS, "binutils-riscv64-unknown-elf")
    linker = _require(LD, "binutils-riscv64-unknown-elf")
    source, obj, elf = tmp_path / "prog.s", tmp_path / "prog.o", tmp_path / "prog.elf"
    source.write_text(LISTING_PROGRAM)
    subprocess.run([assembler, "-march=rv32ima_zicsr_zifencei", "-o", obj, source], check=True)
    subprocess.run([linker, "-m", "elf32lriscv", f"-Ttext={BASE:#x}", "-o", elf, obj], check=True)
    theirs = [f"{a:08x}:\t{w:08x}\t{t}" for a, w, t in _objdump_lines(elf, "priv-spec=1.12")]
    ours = [
        line for line in disassemble_file(elf).splitlines() if re.match(r"[0-9a-f]{8}:\t", line)
    ]
    assert [" ".join(line.split()) for line in ours] == [" ".join(t.split()) for t in theirs]
    labels = re.findall(r"^[0-9a-f]{8} <(\S+)>:$", disassemble_file(elf), re.MULTILINE)
    assert labels == ["_start", "puts"]


# -- capstone ---------------------------------------------------------------------------


def _operand_atoms(operands: tuple[str, ...], fields: dict[str, int]) -> list:
    """Operands as capstone reports them: registers by name, immediates as numbers, a
    memory operand as its base register then its offset; the CSR number and FENCE
    sets, which capstone does not list, left out."""
    atoms = []
    for operand in operands:
        names = operand_fields(operand)
        if len(names) == 2:  # "imm12(rs1)": capstone lists the base register first
            names = (names[1], names[0])
        for name in names:
            if name in ("rd", "rs1", "rs2"):
                atoms.append(("reg", ABI_NAMES[fields[name]]))
            elif name not in ("csr", "pred", "succ"):
                atoms.append(("imm", fields[name]))
    return atoms


def _printed_forms(insn, word: int) -> list[tuple[str, tuple[str, ...]]]:
    """(mnemonic, operands) of the base instruction and of the alias objdump picks."""
    fields = decode_fields(insn, word)
    forms = [(disassemble(word, aliases=False).split(" ")[0], insn.operands)]
    for alias in ALIASES:
        if alias.base == insn.name and alias.applies(fields):
            forms.append((disassemble(word).split(" ")[0], alias.operands))
            break
    return forms


def _capstone_atoms(instruction) -> list:
    from capstone import riscv

    atoms = []
    for operand in instruction.operands:
        if operand.type == riscv.RISCV_OP_REG:
            atoms.append(("reg", instruction.reg_name(operand.reg)))
        elif operand.type == riscv.RISCV_OP_IMM:
            atoms.append(("imm", operand.imm))
        elif operand.type == riscv.RISCV_OP_MEM:
            atoms.append(("reg", instruction.reg_name(operand.mem.base)))
            atoms.append(("imm", operand.mem.disp))
    return atoms


# capstone spells some aliases as the spec's table 25.3 does; objdump, and so virtkit,
# write "csrw mstatus,1" for "csrwi mstatus,1".
CAPSTONE_SPELLING = {"csrwi": "csrw", "csrsi": "csrs", "csrci": "csrc"}


def test_capstone_agrees_on_mnemonic_and_operands():
    capstone = pytest.importorskip("capstone", reason="capstone not found; pip install capstone")
    disassembler = capstone.Cs(capstone.CS_ARCH_RISCV, capstone.CS_MODE_RISCV32)
    disassembler.detail = True
    differences = []
    for word in CORPUS:
        insn = lookup(word)
        decoded = list(disassembler.disasm(struct.pack("<I", word), BASE))
        if not decoded:
            if insn.extension != "H":  # capstone 5 has no hypervisor extension
                differences.append(f"{word:08x}: capstone does not decode {insn.name}")
            continue
        (theirs,) = decoded
        fields = decode_fields(insn, word)
        forms = _printed_forms(insn, word)
        mnemonic = CAPSTONE_SPELLING.get(theirs.mnemonic, theirs.mnemonic)
        candidates = [_operand_atoms(ops, fields) for name, ops in forms if name == mnemonic]
        if _capstone_atoms(theirs) not in candidates:
            differences.append(
                f"{word:08x}: capstone {theirs.mnemonic} {_capstone_atoms(theirs)}, virtkit {forms}"
            )
    assert differences == [], f"{len(differences)} differences:\n" + "\n".join(differences[:30])
