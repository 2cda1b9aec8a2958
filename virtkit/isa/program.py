"""An assembled program: sections placed at addresses, symbols, entry point, source map.

This is what the assembler (virtkit.isa.asm) produces and what the machine loads. It
can be written out as a flat image (what ``objcopy -O binary`` gives) or as an ELF32
executable that GNU binutils, pyelftools and QEMU read.

ELF layout: System V ABI, "gABI" chapter 4 (ELF header, sections, symbol table) and
chapter 5 (program headers); RISC-V ELF psABI 1.0, "ELF Object Files" (EM_RISCV = 243;
e_flags 0 means the soft-float ABI ilp32 without compressed instructions, which is what
RV32IMA code is).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

# -- ELF constants (gABI chapter 4 and 5) ----------------------------------------------
ELFCLASS32 = 1
ELFDATA2LSB = 1
EV_CURRENT = 1
ET_EXEC = 2
EM_RISCV = 243
SHT_PROGBITS = 1
SHT_SYMTAB = 2
SHT_STRTAB = 3
SHT_NOBITS = 8
SHF_WRITE = 0x1
SHF_ALLOC = 0x2
SHF_EXECINSTR = 0x4
SHN_ABS = 0xFFF1
STB_LOCAL = 0
STB_GLOBAL = 1
STT_NOTYPE = 0
PT_LOAD = 1
PF_X = 0x1
PF_W = 0x2
PF_R = 0x4

_EHDR = struct.Struct("<16sHHIIIIIHHHHHH")
_PHDR = struct.Struct("<8I")  # type offset vaddr paddr filesz memsz flags align
_SHDR = struct.Struct("<10I")  # name type flags addr offset size link info addralign entsize
_SYM = struct.Struct("<IIIBBH")  # name value size info other shndx


@dataclass(frozen=True)
class SourceLine:
    """Where an instruction came from: file name, 1-based line number and its text."""

    file: str
    line: int
    text: str


@dataclass(frozen=True)
class Section:
    """A named block of memory: ``size`` bytes at ``address``.

    ``flags`` is a subset of "awx" (allocated, writable, executable), as in GNU as's
    ``.section`` directive. A ``nobits`` section (.bss) occupies memory but no file
    space: its ``data`` is empty and it loads as zeros.
    """

    name: str
    address: int
    data: bytes
    size: int
    align: int
    flags: str
    nobits: bool = False

    @property
    def end(self) -> int:
        return self.address + self.size

    def __contains__(self, address: int) -> bool:
        return self.address <= address < self.end


@dataclass
class Program:
    """The output of the assembler.

    ``symbols`` maps label names to addresses, ``constants`` the names set with .equ,
    .set or ``=`` to their values, ``global_names`` the symbols made visible with .globl.
    ``source_map`` maps the address of every instruction to the source line it came from.
    """

    sections: tuple[Section, ...]
    symbols: dict[str, int]
    entry: int
    source_map: dict[int, SourceLine]
    constants: dict[str, int] = field(default_factory=dict)
    global_names: frozenset[str] = frozenset()

    def section(self, name: str) -> Section:
        for section in self.sections:
            if section.name == name:
                return section
        known = ", ".join(s.name for s in self.sections) or "none"
        raise KeyError(f"no section {name!r} in this program (sections: {known})")

    def segments(self) -> list[tuple[int, bytes]]:
        """What a loader writes to memory: (address, bytes), .bss included as zeros."""
        return [(s.address, bytes(s.size) if s.nobits else s.data) for s in self.sections]

    def to_binary(self) -> bytes:
        """The flat image from the lowest loaded address, gaps filled with zeros.

        Like ``objcopy -O binary``, trailing .bss is not part of the image.
        """
        loaded = [s for s in self.sections if not s.nobits and s.size]
        if not loaded:
            return b""
        start = min(s.address for s in loaded)
        image = bytearray(max(s.end for s in loaded) - start)
        for s in loaded:
            image[s.address - start : s.end - start] = s.data
        return bytes(image)

    def to_elf(self) -> bytes:
        """An ELF32 little-endian RISC-V executable with one PT_LOAD per section."""
        return _ElfWriter(self).write()


class _StringTable:
    """An ELF string table: NUL-separated names, offset 0 being the empty name."""

    def __init__(self) -> None:
        self.data = bytearray(b"\0")

    def add(self, name: str) -> int:
        offset = len(self.data)
        self.data += name.encode() + b"\0"
        return offset


def _align(value: int, alignment: int) -> int:
    return -(-value // alignment) * alignment


class _ElfWriter:
    """File layout: ELF header, program headers, section contents, symbol table,
    string tables, section header table."""

    def __init__(self, program: Program) -> None:
        self.program = program
        self.sections = program.sections
        self.image = bytearray()
        self.section_headers: list[bytes] = [bytes(_SHDR.size)]
        self.names = _StringTable()

    def write(self) -> bytes:
        phnum = len(self.sections)
        self.image = bytearray(_EHDR.size + phnum * _PHDR.size)
        program_headers = [self._add_section(s) for s in self.sections]
        self.image[_EHDR.size : _EHDR.size + phnum * _PHDR.size] = b"".join(program_headers)

        symtab, strtab, first_global = self._symbol_table()
        strtab_index = len(self.section_headers) + 1
        self._add_table(".symtab", SHT_SYMTAB, symtab, link=strtab_index, info=first_global)
        self._add_table(".strtab", SHT_STRTAB, strtab)
        shstrndx = len(self.section_headers)
        self._add_table(".shstrtab", SHT_STRTAB, None)

        shoff = _align(len(self.image), 4)
        self.image += bytes(shoff - len(self.image)) + b"".join(self.section_headers)
        ident = bytes((0x7F, ord("E"), ord("L"), ord("F"), ELFCLASS32, ELFDATA2LSB, EV_CURRENT))
        self.image[: _EHDR.size] = _EHDR.pack(
            ident,  # e_ident
            ET_EXEC,  # e_type
            EM_RISCV,  # e_machine
            EV_CURRENT,  # e_version
            self.program.entry,  # e_entry
            _EHDR.size,  # e_phoff: program headers follow the ELF header
            shoff,  # e_shoff
            0,  # e_flags: ilp32 soft-float ABI, no RVC
            _EHDR.size,  # e_ehsize
            _PHDR.size,  # e_phentsize
            phnum,  # e_phnum
            _SHDR.size,  # e_shentsize
            len(self.section_headers),  # e_shnum
            shstrndx,  # e_shstrndx
        )
        return bytes(self.image)

    def _add_section(self, section: Section) -> bytes:
        """Append a section's contents and header; return its program header."""
        offset = _align(len(self.image), section.align)
        self.image += bytes(offset - len(self.image))
        flags = SHF_ALLOC
        segment_flags = PF_R
        if "w" in section.flags:
            flags |= SHF_WRITE
            segment_flags |= PF_W
        if "x" in section.flags:
            flags |= SHF_EXECINSTR
            segment_flags |= PF_X
        kind = SHT_NOBITS if section.nobits else SHT_PROGBITS
        self.image += section.data
        self.section_headers.append(
            _SHDR.pack(
                self.names.add(section.name),
                kind,
                flags,
                section.address,
                offset,
                section.size,
                0,  # sh_link
                0,  # sh_info
                section.align,
                0,  # sh_entsize
            )
        )
        return _PHDR.pack(
            PT_LOAD,
            offset,
            section.address,  # p_vaddr
            section.address,  # p_paddr: loaded where it runs
            len(section.data),
            section.size,
            segment_flags,
            section.align,
        )

    def _add_table(self, name: str, kind: int, data, link: int = 0, info: int = 0) -> None:
        name_offset = self.names.add(name)
        if data is None:  # .shstrtab holds its own name, so it is complete only now
            data = self.names.data
        offset = _align(len(self.image), 4)
        self.image += bytes(offset - len(self.image)) + data
        entry_size = _SYM.size if kind == SHT_SYMTAB else 0
        self.section_headers.append(
            _SHDR.pack(name_offset, kind, 0, 0, offset, len(data), link, info, 4, entry_size)
        )

    def _symbol_table(self) -> tuple[bytes, bytes, int]:
        """Local symbols first, then global ones (gABI 4, "Symbol Table").

        Assembler-local labels (.L...) are left out, as GNU as leaves them out.
        """
        program = self.program
        strings = _StringTable()
        entries = [
            (name, value, self._section_index(value)) for name, value in program.symbols.items()
        ]
        entries += [(name, value, SHN_ABS) for name, value in program.constants.items()]
        entries = [e for e in entries if not e[0].startswith(".L")]
        entries.sort(key=lambda e: (e[0] in program.global_names, e[1], e[0]))
        table = bytearray(_SYM.size)
        first_global = 1 + sum(1 for e in entries if e[0] not in program.global_names)
        for name, value, shndx in entries:
            binding = STB_GLOBAL if name in program.global_names else STB_LOCAL
            info = binding << 4 | STT_NOTYPE
            table += _SYM.pack(strings.add(name), value & 0xFFFFFFFF, 0, info, 0, shndx)
        return bytes(table), bytes(strings.data), first_global

    def _section_index(self, address: int) -> int:
        """The header index of the section holding ``address`` (or ending at it)."""
        for index, section in enumerate(self.sections, start=1):
            if address in section:
                return index
        for index, section in enumerate(self.sections, start=1):
            if address == section.end:
                return index
        return SHN_ABS
