"""Loading RV32 ELF executables with pyelftools.

Reads the loadable segments (PT_LOAD), the entry point and the symbol table of an
ELF32 little-endian RISC-V executable (ELF psABI for RISC-V: EM_RISCV = 243, the
e_flags bit EF_RISCV_RVC marks compressed code). Anything this machine cannot run is
rejected with a message that says why: a 64-bit file, another architecture, code
built for an extension the hart lacks (C above all), an entry point or a segment
outside RAM.
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass, field

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import RISCVAttributesSection

from virtkit.isa.program import Program

EM_RISCV = 243
# What the hart implements (virtkit.cpu): RV32IMA, Zicsr, Zifencei, Zicntr and the
# extensions GNU tools list as implied by these (Zmmul by M, Zaamo and Zalrsc by A).
SUPPORTED_EXTENSIONS = {
    *("i", "m", "a", "zicsr", "zifencei", "zicntr", "zmmul", "zaamo", "zalrsc"),
}
EF_RISCV_RVC = 0x0001
PT_LOAD = "PT_LOAD"


class ElfLoadError(ValueError):
    """An ELF file this machine cannot load; the message names the file and why."""


@dataclass
class Segment:
    address: int  # physical load address (p_paddr)
    data: bytes  # file contents, zero-filled to p_memsz
    executable: bool


@dataclass
class ElfImage:
    name: str
    entry: int
    segments: list[Segment]
    symbols: dict[str, int] = field(default_factory=dict)

    def symbol(self, name: str) -> int | None:
        return self.symbols.get(name)


def read_elf(source: str | os.PathLike | bytes, name: str | None = None) -> ElfImage:
    """Parse an ELF file (a path or its bytes) into segments, entry and symbols."""
    if isinstance(source, bytes | bytearray):
        data = bytes(source)
        name = name or "<bytes>"
    else:
        name = name or os.fspath(source)
        try:
            with open(source, "rb") as f:
                data = f.read()
        except OSError as error:
            raise ElfLoadError(f"{name}: cannot read: {error.strerror}") from None
    if data[:4] != b"\x7fELF":
        raise ElfLoadError(f"{name}: not an ELF file (it does not start with 0x7f 'ELF')")
    try:
        elf = ELFFile(io.BytesIO(data))
        return _image(elf, name)
    except ELFError as error:
        raise ElfLoadError(f"{name}: malformed ELF: {error}") from None


def _image(elf: ELFFile, name: str) -> ElfImage:
    if elf.elfclass != 32:
        raise ElfLoadError(
            f"{name}: a {elf.elfclass}-bit ELF file; this machine is RV32 "
            "(build with -march=rv32ima_zicsr_zifencei -mabi=ilp32)"
        )
    if elf["e_machine"] not in ("EM_RISCV", EM_RISCV):
        raise ElfLoadError(f"{name}: built for {elf['e_machine']}, not RISC-V")
    if not elf.little_endian:
        raise ElfLoadError(f"{name}: big-endian ELF; RISC-V is little-endian")
    _check_extensions(elf, name)
    segments = []
    for segment in elf.iter_segments():
        if segment["p_type"] != PT_LOAD or segment["p_memsz"] == 0:
            continue
        body = segment.data().ljust(segment["p_memsz"], b"\0")
        executable = bool(segment["p_flags"] & 1)
        segments.append(Segment(segment["p_paddr"], body, executable))
    if not segments:
        raise ElfLoadError(f"{name}: no loadable segments")
    symbols = {}
    symtab = elf.get_section_by_name(".symtab")
    if symtab is not None:
        for sym in symtab.iter_symbols():
            if sym.name and sym["st_info"]["type"] in ("STT_NOTYPE", "STT_OBJECT", "STT_FUNC"):
                symbols.setdefault(sym.name, sym["st_value"])
    return ElfImage(name, elf["e_entry"], segments, symbols)


def _arch_string(elf: ELFFile) -> str | None:
    """Tag_RISCV_arch of the .riscv.attributes section (psABI, "Attributes"), if any."""
    section = elf.get_section_by_name(".riscv.attributes")
    if not isinstance(section, RISCVAttributesSection):
        return None
    for subsection in section.iter_subsections():
        for subsubsection in subsection.iter_subsubsections():
            for attribute in subsubsection.iter_attributes():
                if attribute.tag == "TAG_ARCH":
                    return attribute.value
    return None


def _extensions(arch: str) -> set[str]:
    """The extensions an ISA string names, e.g. "rv32i2p1_m2p0_zicsr2p0" -> {i, m, zicsr}."""
    names: set[str] = set()
    first, *rest = arch.lower().split("_")
    names.update(letter for letter, _ in re.findall(r"([a-z])(\d+(?:p\d+)?)?", first[4:]))
    names.update(re.sub(r"\d+(p\d+)?$", "", item) for item in rest if item)
    return names


def _check_extensions(elf: ELFFile, name: str) -> None:
    """Reject code built for extensions the hart lacks (C above all: a 16-bit parcel is
    an illegal instruction here). The arch attribute says what the code was built for;
    without one, the EF_RISCV_RVC flag says it may contain compressed instructions."""
    arch = _arch_string(elf)
    if arch is None:
        missing = {"c"} if elf["e_flags"] & EF_RISCV_RVC else set()
    else:
        missing = _extensions(arch) - SUPPORTED_EXTENSIONS
    if missing:
        listed = ", ".join(sorted(missing))
        hint = " (compressed instructions)" if "c" in missing else ""
        raise ElfLoadError(
            f"{name}: built for extensions this hart does not implement: {listed}{hint}; "
            "build with -march=rv32ima_zicsr_zifencei"
        )


def check_fits(image: ElfImage, ram_base: int, ram_size: int) -> None:
    """Raise ElfLoadError unless the entry point and every segment lie in RAM."""
    end = ram_base + ram_size
    for seg in image.segments:
        if seg.address < ram_base or seg.address + len(seg.data) > end:
            raise ElfLoadError(
                f"{image.name}: segment {seg.address:#010x}..{seg.address + len(seg.data):#010x} "
                f"is outside RAM ({ram_base:#010x}..{end:#010x}); link it at {ram_base:#x}"
            )
    if not ram_base <= image.entry < end:
        raise ElfLoadError(
            f"{image.name}: entry point {image.entry:#010x} is outside RAM "
            f"({ram_base:#010x}..{end:#010x})"
        )


def as_image(program) -> ElfImage:
    """What a machine or a monitor loads: an ELF file's path or bytes, an assembled
    Program, or an ElfImage already read."""
    if isinstance(program, ElfImage):
        return program
    if isinstance(program, Program):
        return read_elf(program.to_elf(), name="<assembled program>")
    if isinstance(program, bytes | bytearray | str | os.PathLike):
        return read_elf(program)
    raise TypeError(
        f"load() takes an ELF file's path or bytes, a Program or an ElfImage, "
        f"not {type(program).__name__}"
    )


def image_record(image: ElfImage) -> dict:
    """The loaded image as plain data, for a snapshot (kept for a reboot)."""
    segments = [(s.address, s.data, s.executable) for s in image.segments]
    return {
        "name": image.name,
        "entry": image.entry,
        "segments": segments,
        "symbols": image.symbols,
    }


def image_from_record(record: dict) -> ElfImage:
    """The image ``image_record`` saved."""
    segments = [Segment(*fields) for fields in record["segments"]]
    return ElfImage(record["name"], record["entry"], segments, record["symbols"])
