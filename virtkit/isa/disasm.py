"""The disassembler: instruction words to text in GNU objdump's syntax.

Everything about an encoding comes from the ISA tables: ``instructions.lookup`` names
the instruction, ``encoding.decode_fields`` takes its operands apart, ``FORMATS``
gives their order and syntax, ``csrs.BY_NUMBER`` and ``registers.ABI_NAMES`` give the
names. This module adds only what is a matter of printing:

- The operand syntax of The RISC-V Instruction Set Manual, Volume I, version 20191213,
  chapter 25 "RISC-V Assembly Programmer's Handbook", as GNU binutils 2.40 prints it
  (``riscv64-unknown-elf-objdump -d``): operands separated by "," without a space,
  immediates in decimal except the ``lui``/``auipc`` immediate and shift amounts
  (hex), branch and jump targets as absolute addresses, CSRs by name.
- The pseudo-instructions of table 25.2 ("li", "mv", "ret", "beqz", "csrr", ...) that
  objdump prints unless given ``-M no-aliases``: ``ALIASES`` below, in the precedence
  objdump gives them. Like objdump, "unimp" (``csrrw zero,cycle,zero``) is printed even
  without aliases.
- In listings, objdump's address hints: after ``lui``/``auipc`` set a register, an
  ``addi``, ``jalr``, load or store based on it is followed by ``# <address>``, which is
  how an ``la`` or ``call`` shows what it reaches; so are accesses relative to ``gp``
  (when ``__global_pointer$`` is among the symbols) and to ``zero``.

Deliberate differences from objdump 2.40, each because objdump's choice would mislead
a student:

- A FENCE with an empty predecessor or successor set prints "0" for it (as LLVM does,
  and as the spec writes PAUSE, "FENCE W,0"); objdump prints the word "unknown".
- Unknown words print as ``.word 0x0000abcd  # unknown instruction`` (objdump:
  ``.4byte 0xabcd``). virtkit's hart has no C extension, so 16-bit encodings are
  unknown words too, and every instruction is 4 bytes.
- An address hint is dropped when its register is written again before use (objdump
  keeps it and prints a wrong address), and a ``tp``-based access gets no hint
  (objdump prints the bare offset, assuming thread-local storage, which virtkit has
  not).
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from virtkit.isa import csrs
from virtkit.isa.encoding import decode_fields
from virtkit.isa.instructions import BY_NAME, Instruction, lookup
from virtkit.isa.registers import ABI_NAMES, REGISTER_NUMBERS

WORD_BYTES = 4
WORD_MASK = 0xFFFF_FFFF
DEFAULT_BASE = 0x8000_0000  # RAM of the virt board, where virtkit loads flat binaries
# GNU ld's default linker script defines this symbol; startup code loads it into gp.
GLOBAL_POINTER_SYMBOL = "__global_pointer$"
GP = REGISTER_NUMBERS["gp"]


@dataclass(frozen=True)
class Alias:
    """A pseudo-instruction objdump prints for ``base`` when its fields have given values.

    ``operands`` uses the operand syntax of ``instructions.FORMATS``. ``always`` marks
    the ones objdump prints even with ``-M no-aliases``.
    """

    name: str
    base: str
    operands: tuple[str, ...]
    when: tuple[tuple[str, int], ...] = ()
    always: bool = False

    def applies(self, fields: Mapping[str, int]) -> bool:
        return all(fields[name] == value for name, value in self.when)


def _alias(name: str, base: str, operands: str, *, always: bool = False, **when: int) -> Alias:
    return Alias(name, base, tuple(operands.split()), tuple(when.items()), always)


_ZERO, _RA = REGISTER_NUMBERS["zero"], REGISTER_NUMBERS["ra"]
_IORW = 0b1111  # a FENCE set naming all four of i, o, r, w
_COUNTERS = ("cycle", "time", "instret", "cycleh", "timeh", "instreth")

# objdump tries these in order, the first that applies wins (binutils 2.40,
# opcodes/riscv-opc.c); the order matters where two could apply, as for
# "addi a0,zero,0" (li, not mv) or "bge zero,zero" (blez, not bgez).
ALIASES: tuple[Alias, ...] = (
    _alias("ret", "jalr", "", rd=_ZERO, rs1=_RA, imm12=0),
    _alias("jr", "jalr", "rs1", rd=_ZERO, imm12=0),
    _alias("jr", "jalr", "imm12(rs1)", rd=_ZERO),
    _alias("jalr", "jalr", "rs1", rd=_RA, imm12=0),
    _alias("jalr", "jalr", "imm12(rs1)", rd=_RA),
    _alias("jalr", "jalr", "rd rs1", imm12=0),
    _alias("j", "jal", "jimm21", rd=_ZERO),
    _alias("jal", "jal", "jimm21", rd=_RA),
    _alias("beqz", "beq", "rs1 bimm13", rs2=_ZERO),
    _alias("bnez", "bne", "rs1 bimm13", rs2=_ZERO),
    _alias("blez", "bge", "rs2 bimm13", rs1=_ZERO),
    _alias("bgez", "bge", "rs1 bimm13", rs2=_ZERO),
    _alias("bltz", "blt", "rs1 bimm13", rs2=_ZERO),
    _alias("bgtz", "blt", "rs2 bimm13", rs1=_ZERO),
    _alias("nop", "addi", "", rd=_ZERO, rs1=_ZERO, imm12=0),
    _alias("li", "addi", "rd imm12", rs1=_ZERO),
    _alias("mv", "addi", "rd rs1", imm12=0),
    _alias("add", "addi", "rd rs1 imm12"),
    _alias("seqz", "sltiu", "rd rs1", imm12=1),
    _alias("not", "xori", "rd rs1", imm12=-1),
    _alias("xor", "xori", "rd rs1 imm12"),
    _alias("or", "ori", "rd rs1 imm12"),
    _alias("zext.b", "andi", "rd rs1", imm12=0xFF),
    _alias("and", "andi", "rd rs1 imm12"),
    _alias("sll", "slli", "rd rs1 shamt"),
    _alias("srl", "srli", "rd rs1 shamt"),
    _alias("sra", "srai", "rd rs1 shamt"),
    _alias("neg", "sub", "rd rs2", rs1=_ZERO),
    _alias("snez", "sltu", "rd rs2", rs1=_ZERO),
    _alias("sltz", "slt", "rd rs1", rs2=_ZERO),
    _alias("sgtz", "slt", "rd rs2", rs1=_ZERO),
    _alias("fence", "fence", "", pred=_IORW, succ=_IORW),
    _alias("unimp", "csrrw", "", always=True, rd=_ZERO, csr=csrs.number("cycle"), rs1=_ZERO),
    *(
        _alias(f"rd{counter}", "csrrs", "rd", csr=csrs.number(counter), rs1=_ZERO)
        for counter in _COUNTERS
    ),
    _alias("csrr", "csrrs", "rd csr", rs1=_ZERO),
    _alias("csrw", "csrrw", "csr rs1", rd=_ZERO),
    _alias("csrs", "csrrs", "csr rs1", rd=_ZERO),
    _alias("csrc", "csrrc", "csr rs1", rd=_ZERO),
    _alias("csrw", "csrrwi", "csr zimm", rd=_ZERO),
    _alias("csrs", "csrrsi", "csr zimm", rd=_ZERO),
    _alias("csrc", "csrrci", "csr zimm", rd=_ZERO),
    _alias("csrrw", "csrrwi", "rd csr zimm"),
    _alias("csrrs", "csrrsi", "rd csr zimm"),
    _alias("csrrc", "csrrci", "rd csr zimm"),
    *(
        alias
        for fence in ("sfence.vma", "hfence.vvma", "hfence.gvma")
        for alias in (
            _alias(fence, fence, "", rs1=_ZERO, rs2=_ZERO),
            _alias(fence, fence, "rs1", rs2=_ZERO),
        )
    ),
)

_ALIASES_OF: dict[str, list[Alias]] = {}
for _a in ALIASES:
    assert _a.base in BY_NAME, f"alias {_a.name} of unknown instruction {_a.base}"
    _ALIASES_OF.setdefault(_a.base, []).append(_a)


class _SymbolTable:
    """Addresses to names, for printing an address as ``80000010 <label+0x4>``."""

    def __init__(self, symbols: Mapping[int, str] | None) -> None:
        self.names = dict(symbols or {})
        self.addresses = sorted(self.names)
        gp = [address for address, name in self.names.items() if name == GLOBAL_POINTER_SYMBOL]
        self.global_pointer = gp[0] if gp else None

    def format(self, address: int) -> str:
        """objdump's way: the nearest symbol at or below, else the first one above.

        Without symbols objdump prints the bare address with a 0x prefix.
        """
        if not self.addresses:
            return f"0x{address:x}"
        index = bisect.bisect_right(self.addresses, address) - 1
        symbol_address = self.addresses[max(index, 0)]
        name = self.names[symbol_address]
        offset = address - symbol_address
        if offset > 0:
            name += f"+0x{offset:x}"
        elif offset < 0:
            name += f"-0x{-offset:x}"
        return f"{address:x} <{name}>"


_NO_SYMBOLS = _SymbolTable(None)


@dataclass(frozen=True)
class _Rendered:
    """One instruction printed: its text, and the (base register, offset) it addresses."""

    text: str
    address_operand: tuple[int, int] | None = None


def _fence_set(bits: int) -> str:
    """A FENCE predecessor or successor set: i, o, r, w from bit 3 down (Volume I, 2.7)."""
    return (
        "".join(letter for letter, bit in zip("iorw", (8, 4, 2, 1), strict=True) if bits & bit)
        or "0"
    )


def _operand_text(operand: str, fields: Mapping[str, int], pc: int, symbols: _SymbolTable) -> str:
    """One operand written in ``FORMATS`` syntax ("rd", "imm12(rs1)", ...) as text."""
    if operand.endswith(")"):
        offset, register = operand[:-1].split("(")
        shown = _operand_text(offset, fields, pc, symbols) if offset else ""
        return f"{shown}({ABI_NAMES[fields[register]]})"
    value = fields[operand]
    match operand:
        case "rd" | "rs1" | "rs2":
            return ABI_NAMES[value]
        case "bimm13" | "jimm21":
            return symbols.format((pc + value) & WORD_MASK)
        case "imm20" | "shamt":
            return f"0x{value:x}"
        case "csr":
            csr = csrs.BY_NUMBER.get(value)
            return csr.name if csr else f"0x{value:x}"
        case "pred" | "succ":
            return _fence_set(value)
        case _:
            return str(value)


def _address_operand(
    insn: Instruction, operands: tuple[str, ...], fields: Mapping[str, int]
) -> tuple[int, int] | None:
    """The (base register, offset) objdump would annotate with ``# <address>``.

    binutils 2.40, opcodes/riscv-dis.c, maybe_print_address: loads, stores and jalr
    whose base register is printed, and addi with a printed immediate and a base other
    than zero (``li`` is a constant, not an address).
    """
    if insn.format in ("LOAD", "STORE", "JALR"):
        base_shown = any(op in ("rs1", "imm12(rs1)", "simm12(rs1)") for op in operands)
        offset = fields.get("imm12", fields.get("simm12"))
        return (fields["rs1"], offset) if base_shown else None
    if insn.name == "addi" and "imm12" in operands and fields["rs1"] != _ZERO:
        return fields["rs1"], fields["imm12"]
    return None


def _render(word: int, pc: int, aliases: bool, symbols: _SymbolTable) -> _Rendered:
    insn = lookup(word)
    if insn is None:
        return _Rendered(f".word 0x{word:08x}  # unknown instruction")
    fields = decode_fields(insn, word)
    name, operands = insn.name, insn.operands
    for alias in _ALIASES_OF.get(insn.name, ()):
        if (aliases or alias.always) and alias.applies(fields):
            name, operands = alias.name, alias.operands
            break
    if "aqrl" in fields:
        name += ("", ".rl", ".aq", ".aqrl")[fields["aqrl"]]
    text = name
    if operands:
        text += " " + ",".join(_operand_text(op, fields, pc, symbols) for op in operands)
    return _Rendered(text, _address_operand(insn, operands, fields))


def disassemble(
    word: int, pc: int = 0, *, aliases: bool = True, symbols: Mapping[int, str] | None = None
) -> str:
    """One instruction word as objdump prints it, e.g. ``disassemble(0x00a00513) == "li a0,10"``.

    ``pc`` is the word's address, needed for branch and jump targets; ``symbols`` maps
    addresses to labels for printing them. ``aliases=False`` prints base instructions,
    as ``objdump -M no-aliases``. An unknown word gives ``.word 0x...  # unknown
    instruction``; this never raises.
    """
    table = _SymbolTable(symbols) if symbols else _NO_SYMBOLS
    return _render(word & WORD_MASK, pc & WORD_MASK, aliases, table).text


@dataclass(frozen=True)
class Line:
    """One line of a listing: ``size`` bytes at ``address``, as ``text``.

    ``label`` is the symbol at this address, if any; ``hint`` the address an ``la``,
    ``call`` or gp-relative access reaches, as objdump writes it after ``#``.
    """

    address: int
    word: int
    text: str
    label: str | None = None
    hint: str | None = None
    size: int = WORD_BYTES

    def __str__(self) -> str:
        hint = f" # {self.hint}" if self.hint else ""
        return f"{self.address:08x}:\t{self.word:0{2 * self.size}x}\t{self.text}{hint}"


class _AddressTracker:
    """What objdump knows about register values while it walks a listing.

    ``lui`` and ``auipc`` make a register's value known until it is used as a base or
    written again; ``gp`` holds ``__global_pointer$`` and ``zero`` holds 0 throughout.
    Nothing is assumed of other registers, ``tp`` included.
    """

    def __init__(self, global_pointer: int | None) -> None:
        self.global_pointer = global_pointer
        self.upper: dict[int, int] = {}

    def resolve(self, base: int, offset: int) -> int | None:
        if base in self.upper:
            return (self.upper.pop(base) + offset) & WORD_MASK
        if base == GP and self.global_pointer is not None:
            return (self.global_pointer + offset) & WORD_MASK
        if base == _ZERO:
            return offset & WORD_MASK
        return None

    def retire(self, word: int, pc: int) -> None:
        insn = lookup(word)
        if insn is None or "rd" not in insn.operands:
            return
        fields = decode_fields(insn, word)
        self.upper.pop(fields["rd"], None)
        if fields["rd"] == _ZERO:
            return
        if insn.name == "lui":
            self.upper[fields["rd"]] = fields["imm20"] << 12
        elif insn.name == "auipc":
            self.upper[fields["rd"]] = (pc + (fields["imm20"] << 12)) & WORD_MASK


def disassemble_bytes(
    data: bytes,
    base: int,
    symbols: Mapping[int, str] | None = None,
    *,
    aliases: bool = True,
) -> list[Line]:
    """A listing of ``data`` loaded at ``base``: one Line per 4-byte little-endian word.

    Trailing bytes that do not make a whole word become a last ``.byte`` line.
    """
    table = _SymbolTable(symbols)
    tracker = _AddressTracker(table.global_pointer)
    lines = []
    whole = len(data) - len(data) % WORD_BYTES
    for offset in range(0, whole, WORD_BYTES):
        address = (base + offset) & WORD_MASK
        word = int.from_bytes(data[offset : offset + WORD_BYTES], "little")
        rendered = _render(word, address, aliases, table)
        hint = None
        if rendered.address_operand is not None:
            target = tracker.resolve(*rendered.address_operand)
            hint = None if target is None else table.format(target)
        tracker.retire(word, address)
        lines.append(Line(address, word, rendered.text, table.names.get(address), hint))
    if tail := data[whole:]:
        address = (base + whole) & WORD_MASK
        text = ".byte " + ",".join(f"0x{byte:02x}" for byte in tail)
        word = int.from_bytes(tail, "little")
        lines.append(Line(address, word, text, table.names.get(address), size=len(tail)))
    return lines


def _listing(lines: list[Line]) -> list[str]:
    out = []
    for line in lines:
        if line.label is not None:
            out += ["", f"{line.address:08x} <{line.label}>:"]
        out.append(str(line))
    return out


def disassemble_file(path: str | Path, base: int | None = None, *, aliases: bool = True) -> str:
    """An objdump-like listing of an ELF file's executable sections or of a flat binary.

    ELF files (RV32, as ``e_machine`` EM_RISCV and ELFCLASS32 say) are listed section by
    section at their own addresses, labelled with their ``.symtab`` symbols. Any other
    file is a flat binary loaded at ``base`` (default 0x80000000).
    """
    path = Path(path)
    data = path.read_bytes()
    if not data.startswith(b"\x7fELF"):
        start = DEFAULT_BASE if base is None else base
        return "\n".join(_listing(disassemble_bytes(data, start, aliases=aliases))) + "\n"
    if base is not None:
        raise ValueError(
            f"{path}: an ELF file's sections carry their own addresses; "
            "a base address applies only to a flat binary"
        )
    return _elf_listing(path, aliases)


def _elf_listing(path: Path, aliases: bool) -> str:
    from elftools.elf.constants import SH_FLAGS
    from elftools.elf.elffile import ELFFile

    with path.open("rb") as stream:
        elf = ELFFile(stream)
        if elf["e_machine"] != "EM_RISCV" or elf.elfclass != 32:
            raise ValueError(
                f"{path}: not an RV32 ELF file (machine {elf['e_machine']}, "
                f"{elf.elfclass}-bit); virtkit disassembles 32-bit RISC-V code"
            )
        symbols = _elf_symbols(elf)
        out = []
        for section in elf.iter_sections():
            executable = section["sh_flags"] & SH_FLAGS.SHF_EXECINSTR
            if not executable or section["sh_type"] != "SHT_PROGBITS":
                continue
            out += ["", f"Disassembly of section {section.name}:"]
            lines = disassemble_bytes(section.data(), section["sh_addr"], symbols, aliases=aliases)
            out += _listing(lines)
    return "\n".join(out).lstrip("\n") + "\n"


_BINDING_ORDER = {"STB_GLOBAL": 0, "STB_WEAK": 1, "STB_LOCAL": 2}


def _elf_symbols(elf) -> dict[int, str]:
    """Address -> name from ``.symtab``, one name per address, chosen as objdump does.

    Of several names at one address objdump shows the first in its symbol order
    (binutils 2.40, binutils/objdump.c, compare_symbols): functions first, then global
    before weak before local, names starting with "." last, then by name. Section and
    file symbols, undefined ones, and the RISC-V mapping symbols ``$x`` and ``$d``
    (psABI, "Mapping Symbol") name no code, so they are left out.
    """
    symtab = elf.get_section_by_name(".symtab")
    if symtab is None:
        return {}
    best: dict[int, tuple] = {}
    for symbol in symtab.iter_symbols():
        kind, binding = symbol["st_info"]["type"], symbol["st_info"]["bind"]
        if (
            not symbol.name
            or symbol.name.startswith("$")
            or kind in ("STT_SECTION", "STT_FILE")
            or symbol["st_shndx"] == "SHN_UNDEF"
        ):
            continue
        order = (
            kind != "STT_FUNC",
            _BINDING_ORDER.get(binding, len(_BINDING_ORDER)),
            symbol.name.startswith("."),
            symbol.name,
        )
        address = symbol["st_value"]
        if address not in best or order < best[address]:
            best[address] = order
    return {address: order[-1] for address, order in best.items()}


def instruction_fields(word: int) -> dict[str, int | str | None]:
    """What a word encodes: name, extension, format, opcode and each operand field.

    ``instruction_fields(0x00a00513)`` is ``{"name": "addi", "extension": "I", "format":
    "I", "opcode": 0x13, "rd": 10, "rs1": 0, "imm12": 10}``. For an unknown word, name,
    extension and format are None and only the opcode is given.
    """
    word &= WORD_MASK
    insn = lookup(word)
    if insn is None:
        return {"name": None, "extension": None, "format": None, "opcode": word & 0x7F}
    return {
        "name": insn.name,
        "extension": insn.extension,
        "format": insn.format,
        "opcode": insn.opcode,
        **decode_fields(insn, word),
    }
