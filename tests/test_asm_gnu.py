"""Differential tests: virtkit's assembler against GNU as on the corpus in tests/asm/.

GNU as writes an object file; GNU ld, given a linker script that puts every section at
the address virtkit chose, resolves its relocations. Every section must then hold the
same bytes, and every label the same address. The corpus files start with
``.option norelax`` (and as runs with ``-mno-relax``) so GNU as emits no relaxable
sequences. binutils 2.40 accepts ``-march=rv32ima_zicsr_zifencei_h`` as written.

The corpus is also checked to use every instruction of the table, every
pseudo-instruction, directive and relocation operator, so that "identical bytes"
covers the whole assembler.
"""

from __future__ import annotations

import io
import random
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile
from test_asm import instruction_text, random_fields

from virtkit.isa.asm import (
    DIRECTIVES,
    PSEUDO_INSTRUCTIONS,
    RELOCATION_OPERATORS,
    assemble,
    assemble_file,
)
from virtkit.isa.instructions import INSTRUCTIONS, lookup

AS = "riscv64-unknown-elf-as"
LD = "riscv64-unknown-elf-ld"
MARCH = "rv32ima_zicsr_zifencei_h"
CORPUS = sorted((Path(__file__).parent / "asm").glob("*.s"))


def gnu_link(source: Path, program, tmp_path: Path) -> ELFFile:
    """Assemble ``source`` with GNU as and link it with the sections where ``program``
    has them; anything else GNU as makes (.eh_frame, .riscv.attributes) is dropped."""
    for tool in (AS, LD):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not found; apt-get install binutils-riscv64-unknown-elf")
    obj, exe, script = tmp_path / "gnu.o", tmp_path / "gnu.elf", tmp_path / "link.ld"
    placements = "".join(
        f"  {s.name} {s.address:#x} : {{ *({s.name}) }}\n" for s in program.sections
    )
    script.write_text(f"SECTIONS {{\n{placements}  /DISCARD/ : {{ *(*) }}\n}}\n")
    for command in (
        [AS, f"-march={MARCH}", "-mabi=ilp32", "-mno-relax", str(source), "-o", str(obj)],
        [
            LD,
            "-m",
            "elf32lriscv",
            "--no-relax",
            "-nostdlib",
            "-T",
            str(script),
            str(obj),
            "-o",
            str(exe),
        ],
    ):
        result = subprocess.run(command, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
    return ELFFile(io.BytesIO(exe.read_bytes()))


def assert_same_as_gnu(program, elf: ELFFile) -> None:
    for section in program.sections:
        gnu = elf.get_section_by_name(section.name)
        assert gnu is not None, f"GNU ld made no {section.name}"
        assert (gnu["sh_addr"], gnu["sh_size"]) == (section.address, section.size), section.name
        if not section.nobits:
            ours, theirs = section.data, gnu.data()
            for offset in range(0, len(ours), 4):
                if ours[offset : offset + 4] != theirs[offset : offset + 4]:
                    address = section.address + offset
                    line = program.source_map.get(address)
                    pytest.fail(
                        f"{section.name}+{offset:#x}: virtkit {ours[offset : offset + 4].hex()}, "
                        f"GNU as {theirs[offset : offset + 4].hex()} (source: {line})"
                    )
    symbols = {s.name: s["st_value"] for s in elf.get_section_by_name(".symtab").iter_symbols()}
    for name, address in program.symbols.items():
        if name in symbols:
            assert symbols[name] == address, name


@pytest.mark.parametrize("path", CORPUS, ids=[p.name for p in CORPUS])
def test_corpus_matches_gnu_as(path, tmp_path):
    program = assemble_file(path)
    assert_same_as_gnu(program, gnu_link(path, program, tmp_path))


def test_random_instructions_match_gnu_as(tmp_path):
    rng = random.Random(20240601)
    lines = [".option norelax"]
    for _ in range(3000):
        insn = rng.choice(INSTRUCTIONS)
        lines.append(instruction_text(insn, random_fields(insn, rng.randint)))
    source = tmp_path / "random.s"
    source.write_text("\n".join(lines) + "\n")
    program = assemble(source.read_text(), str(source))
    assert_same_as_gnu(program, gnu_link(source, program, tmp_path))


# -- coverage of the corpus ----------------------------------------------------------------


def corpus_statements() -> list[str]:
    """Every statement of the corpus with labels and comments removed."""
    statements = []
    for path in CORPUS:
        text = re.sub(r"/\*.*?\*/", " ", path.read_text(), flags=re.DOTALL)
        for line in text.splitlines():
            for statement in line.split("#")[0].split(";"):
                statement = re.sub(r"^\s*(?:[\w.$]+:\s*)*", "", statement).strip()
                if statement:
                    statements.append(statement)
    return statements


def test_corpus_uses_every_instruction():
    used = set()
    for path in CORPUS:
        for section in assemble_file(path).sections:
            if "x" in section.flags:
                for offset in range(0, section.size, 4):
                    insn = lookup(int.from_bytes(section.data[offset : offset + 4], "little"))
                    used.add(insn.name if insn else None)
    assert {insn.name for insn in INSTRUCTIONS} - used == set()


def test_corpus_uses_every_pseudo_instruction_directive_and_relocation():
    statements = corpus_statements()
    mnemonics = {s.split()[0].lower() for s in statements}
    assert set(PSEUDO_INSTRUCTIONS) - mnemonics == set()
    # GNU as has no .rodata directive (it needs .section .rodata); test_asm.py covers it.
    assert set(DIRECTIVES) - mnemonics == {".rodata"}
    text = "\n".join(statements)
    assert {r for r in RELOCATION_OPERATORS if r + "(" not in text} == set()
