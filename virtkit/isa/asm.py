"""The assembler: RV32IMA + Zicsr + Zifencei + H source in GNU ``as`` syntax to a Program.

Course material and compiler output (``gcc -S``) read the same here as under GNU as,
and the differential tests hold the two to identical bytes. Sources:

- The RISC-V Instruction Set Manual, Volume I (20191213), chapter 25 "RISC-V Assembly
  Programmer's Handbook": register names (table 25.1) and pseudo-instructions (tables
  25.2 and 25.3).
- RISC-V Assembly Programmer's Manual (github.com/riscv-non-isa/riscv-asm-manual):
  ``li``, ``la``, ``call``, ``tail``, ``%hi``/``%lo``/``%pcrel_hi``/``%pcrel_lo``
  (``%pcrel_lo`` names the label of its ``auipc``), the ``.option`` directive.
- RISC-V ELF psABI 1.0, "Relocations": ``%hi(x) = (x + 0x800) >> 12`` and
  ``%lo(x) = x - (%hi(x) << 12)``, so that ``lui`` + ``addi`` rebuild ``x`` exactly.
- GNU as manual (binutils 2.40): numeric local labels ``1:``/``1b``/``1f`` (5.3),
  integers (decimal, 0x hex, 0b binary, leading-0 octal, 'c' characters) (3.6.2),
  and operator precedence (6.2.2 "Infix Operators"): ``* / % << >>`` bind tightest,
  then ``| & ^``, then ``+ -``. Note ``1 + 2 << 3`` is 17 there, not C's 24.

Instruction encodings come from the table in virtkit.isa.instructions and are placed by
virtkit.isa.encoding; nothing here repeats an encoding.

How it works: pass 1 reads every statement once, in order. It places labels at offsets
in their section, sizes everything, and encodes what it already can (registers,
constants, backward branches). What still waits for a later label or for the section
addresses is kept as a fixup, which pass 2 finishes once the sections are placed. Sizes
never change in pass 2: ``li`` picks its shortest form only when its value is known in
pass 1 (otherwise it is always ``lui`` + ``addi``), and .align, .org and .zero need
values known where they stand.

Differences from GNU as, all deliberate: the output is a finished image, not an object
file, so expressions may mix labels of different sections and ``li`` accepts a label;
``.rodata`` switches sections like ``.data`` does (GNU as needs ``.section .rodata``);
padding to align code uses zero bytes, not ``c.nop``, below 4-byte granularity (there
is no C extension); .byte/.half/.word values that do not fit are errors, not warnings;
``>>`` is an arithmetic shift of unbounded integers.
"""

from __future__ import annotations

import difflib
import operator
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from virtkit.isa import csrs
from virtkit.isa.encoding import FIELDS, encode, sign_extend
from virtkit.isa.instructions import BY_NAME, Instruction
from virtkit.isa.program import Program, Section, SourceLine
from virtkit.isa.registers import REGISTER_NUMBERS, register_number

DEFAULT_BASE = 0x8000_0000

# Sections laid out in this order from the base address; any other section follows them.
STANDARD_SECTIONS: dict[str, tuple[str, bool]] = {
    ".text": ("ax", False),
    ".rodata": ("a", False),
    ".data": ("aw", False),
    ".bss": ("aw", True),
}
# Flags of a section named without flags: by name prefix, as GNU as gives them; any
# other name is writable data (GNU as would leave it out of memory altogether).
_SECTION_PREFIXES = (
    (".text", "ax", False),
    (".rodata", "a", False),
    (".srodata", "a", False),
    (".bss", "aw", True),
    (".sbss", "aw", True),
)
# A section may grow to this size: a larger one is almost always ".org <address>"
# written where .org wants an offset, and would fill memory with zeros.
MAX_SECTION_SIZE = 256 << 20
_MIN_SECTION_ALIGN = 4
_NOP = encode(BY_NAME["addi"], rd=0, rs1=0, imm12=0).to_bytes(4, "little")
_REGISTER_LIST = "registers are x0-x31, zero, ra, sp, gp, tp, fp, t0-t6, s0-s11 and a0-a7"
_AQRL_SUFFIXES = {"aq": 0b10, "rl": 0b01, "aqrl": 0b11}
_FENCE_BITS = {"i": 0b1000, "o": 0b0100, "r": 0b0010, "w": 0b0001}

# -- Diagnostics -------------------------------------------------------------------------


@dataclass(frozen=True)
class Diagnostic:
    """One error: where it is (1-based line and column) and what is wrong."""

    file: str
    line: int
    column: int
    message: str
    source: str

    def __str__(self) -> str:
        # Keep tabs so that the caret lines up under the source as the terminal shows it.
        indent = "".join(c if c == "\t" else " " for c in self.source[: self.column - 1])
        return (
            f"{self.file}:{self.line}:{self.column}: error: {self.message}\n"
            f"    {self.source}\n    {indent}^"
        )


class AssemblerError(ValueError):
    """Every error found in a source file; ``errors`` lists them in source order.

    ``file``, ``line``, ``column``, ``message`` and ``source`` are those of the first.
    """

    def __init__(self, errors: list[Diagnostic]) -> None:
        self.errors = errors
        first = errors[0]
        self.file, self.line, self.column = first.file, first.line, first.column
        self.message, self.source = first.message, first.source
        super().__init__(str(self))

    def __str__(self) -> str:
        text = "\n".join(str(e) for e in self.errors)
        if len(self.errors) > 1:
            text += f"\n{len(self.errors)} errors"
        return text


class _Error(Exception):
    """An error in the statement being assembled; ``column`` None means its mnemonic."""

    def __init__(self, message: str, column: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.column = column


class _NotYet(Exception):
    """Pass 1 cannot evaluate this yet: it needs a later label or the section addresses."""


# -- Expressions -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Num:
    value: int


@dataclass(frozen=True, slots=True)
class _Sym:
    name: str
    column: int


@dataclass(frozen=True, slots=True)
class _Dot:
    """The location counter ``.``: the address of the instruction or datum being emitted."""


@dataclass(frozen=True, slots=True)
class _Unary:
    op: str
    operand: object


@dataclass(frozen=True, slots=True)
class _Binary:
    op: str
    left: object
    right: object
    column: int


@dataclass(frozen=True, slots=True)
class _Reloc:
    """``%hi``, ``%lo``, ``%pcrel_hi`` or ``%pcrel_lo`` applied to an expression."""

    op: str
    operand: object
    column: int


_DOT = _Dot()
_RELOCATIONS = ("hi", "lo", "pcrel_hi", "pcrel_lo")


class _Value(NamedTuple):
    """A value in pass 1: ``number`` bytes into ``section``, or absolute if section is
    None. In pass 2 every value is absolute."""

    number: int
    section: object


def _c_divide(a: int, b: int) -> int:
    quotient = abs(a) // abs(b)
    return quotient if (a < 0) == (b < 0) else -quotient


_BINARY_OPS = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": _c_divide,
    "%": lambda a, b: a - b * _c_divide(a, b),
    "<<": operator.lshift,
    ">>": operator.rshift,
    "&": operator.and_,
    "|": operator.or_,
    "^": operator.xor,
}
_UNARY_OPS = {"-": operator.neg, "~": operator.invert, "+": operator.pos}
# GNU as precedence levels, loosest first (GNU as manual 6.2.2).
_PRECEDENCE = (("+", "-"), ("|", "&", "^"), ("*", "/", "%", "<<", ">>"))


def _apply(op: str, a: int, b: int, column: int) -> int:
    if op in ("/", "%") and b == 0:
        raise _Error("division by zero", column)
    if op in ("<<", ">>") and not 0 <= b < 64:
        raise _Error(f"shift by {b}: the amount must be 0..63", column)
    return _BINARY_OPS[op](a, b)


def _hi20(value: int) -> int:
    return ((value + 0x800) >> 12) & 0xFFFFF


def _lo12(value: int) -> int:
    return sign_extend(value, 12)


_TOKEN = re.compile(
    r"""
      (?P<space>\s+)
    | (?P<number>0[xX][0-9a-fA-F]+|0[bB][01]+|[0-9]+)(?P<suffix>[\w.$]*)
    | (?P<char>'(?:\\(?:[0-7]{1,3}|x[0-9a-fA-F]+|.)|[^\\])'?)
    | (?P<reloc>%[A-Za-z_]\w*)(?=\s*\()
    | (?P<name>[A-Za-z_.$][\w.$]*)
    | (?P<op><<|>>|[-+*/%&|^~()])
    """,
    re.VERBOSE,
)
_PLAIN_NUMBER = re.compile(r"-?(?:0[xX][0-9a-fA-F]+|[1-9][0-9]*|0)")
_IDENTIFIER = re.compile(r"[A-Za-z_.$][\w.$]*")
_ESCAPES = {"n": 10, "t": 9, "r": 13, "b": 8, "f": 12, "v": 11, "a": 7, "\\": 92, '"': 34, "'": 39}
_ESCAPE = re.compile(r"\\(?:([0-7]{1,3})|x([0-9a-fA-F]+)|(.))", re.DOTALL)


def _unescape(text: str, column: int) -> bytes:
    """The bytes of a string or character literal body, with GNU as's escapes."""
    out = bytearray()
    position = 0
    for match in _ESCAPE.finditer(text):
        out += text[position : match.start()].encode()
        octal, hexadecimal, char = match.groups()
        if octal:
            out.append(int(octal, 8) & 0xFF)
        elif hexadecimal:
            out.append(int(hexadecimal, 16) & 0xFF)
        elif char in _ESCAPES:
            out.append(_ESCAPES[char])
        else:
            raise _Error(f"unknown escape '\\{char}' in string", column + match.start())
        position = match.end()
    out += text[position:].encode()
    return bytes(out)


class _ExpressionParser:
    """Recursive descent over GNU as's three precedence levels; constant parts fold."""

    def __init__(self, text: str, column: int, symbol) -> None:
        self.symbol = symbol  # (kind, text, column) -> node, for names and local labels
        self.tokens: list[tuple[str, str, int]] = []
        self.end = column + len(text)
        position = 0
        while position < len(text):
            match = _TOKEN.match(text, position)
            if match is None:
                raise _Error(f"unexpected character '{text[position]}'", column + position)
            kind = match.lastgroup
            at = column + position
            if kind == "suffix":  # a number: the suffix group matched last
                digits, suffix = match["number"], match["suffix"]
                if suffix in ("b", "f") and digits.isdigit():
                    self.tokens.append(("local", digits + suffix, at))
                elif suffix:
                    raise _Error(f"bad number '{digits}{suffix}'", at)
                else:
                    self.tokens.append(("number", digits, at))
            elif kind != "space":
                self.tokens.append((kind, match[kind], at))
            position = match.end()
        self.position = 0

    def parse(self):
        node = self.binary(0)
        if self.position < len(self.tokens):
            _, text, column = self.tokens[self.position]
            raise _Error(f"unexpected '{text}' in expression", column)
        return node

    def peek(self) -> tuple[str, str, int]:
        if self.position < len(self.tokens):
            return self.tokens[self.position]
        return ("end", "", self.end)

    def binary(self, level: int):
        if level == len(_PRECEDENCE):
            return self.unary()
        left = self.binary(level + 1)
        while (token := self.peek())[0] == "op" and token[1] in _PRECEDENCE[level]:
            self.position += 1
            right = self.binary(level + 1)
            if isinstance(left, _Num) and isinstance(right, _Num):
                left = _Num(_apply(token[1], left.value, right.value, token[2]))
            else:
                left = _Binary(token[1], left, right, token[2])
        return left

    def unary(self):
        kind, text, column = self.peek()
        if kind == "op" and text in _UNARY_OPS:
            self.position += 1
            operand = self.unary()
            if isinstance(operand, _Num):
                return _Num(_UNARY_OPS[text](operand.value))
            return _Unary(text, operand)
        return self.primary()

    def primary(self):
        kind, text, column = self.peek()
        self.position += 1
        match kind:
            case "number":
                if len(text) > 1 and text[0] == "0" and text.isdigit():
                    if not set(text) <= set("01234567"):
                        raise _Error(f"bad octal number '{text}' (a leading 0 means octal)", column)
                    return _Num(int(text, 8))
                return _Num(int(text, 0))
            case "char":
                body = text[1:-1] if len(text) > 2 and text.endswith("'") else text[1:]
                return _Num(_unescape(body, column + 1)[0])
            case "name" | "local":
                return self.symbol(kind, text, column)
            case "reloc":
                name = text[1:]
                if name not in _RELOCATIONS:
                    known = ", ".join(f"%{r}" for r in _RELOCATIONS)
                    raise _Error(f"unknown relocation operator '{text}' (known: {known})", column)
                self.position += 1  # the '(' the token pattern looked ahead for
                operand = self.binary(0)
                self.expect_close(column)
                return _Reloc(name, operand, column)
            case "op" if text == "(":
                node = self.binary(0)
                self.expect_close(column)
                return node
            case "end":
                raise _Error("expression ends too early", column)
        raise _Error(f"unexpected '{text}' in expression", column)

    def expect_close(self, open_column: int) -> None:
        kind, text, column = self.peek()
        if (kind, text) != ("op", ")"):
            raise _Error(f"missing ')' for the '(' at column {open_column}", column)
        self.position += 1


# -- Source text -------------------------------------------------------------------------


class _Arg(NamedTuple):
    """One operand as written (stripped) and the column of its first character."""

    text: str
    column: int


class _Where(NamedTuple):
    """The statement being assembled: its source line and the column of its mnemonic."""

    source: SourceLine
    column: int


_SPECIAL_CHARS = re.compile(r"[\"';/]")
_NESTING_CHARS = re.compile(r"[\"'(]")
_LABEL = re.compile(r"\s*([A-Za-z_.$][\w.$]*|[0-9]+)\s*:")
_ASSIGNMENT = re.compile(r"\s*([A-Za-z_.$][\w.$]*)\s*=(?!=)")
_WORD = re.compile(r"\s*([A-Za-z_.$][\w.$]*)")


def _skip_quoted(text: str, start: int) -> int:
    """The index after the string (from '"') or character literal (from "'") at start."""
    if text[start] == "'":
        end = start + (3 if text[start + 1 : start + 2] == "\\" else 2)
        return end + 1 if text[end : end + 1] == "'" else end
    position = start + 1
    while position < len(text) and text[position] != '"':
        position += 2 if text[position] == "\\" else 1
    return position + 1


def _split_statements(text: str, in_comment: bool) -> tuple[list[tuple[int, str]], bool]:
    """Cut one source line into statements (GNU as on RISC-V separates them with ';').

    '#' starts a comment to the end of the line; /* ... */ comments may span lines and
    are replaced by spaces so columns stay right. Returns (start index, text) pairs and
    whether a /* comment is still open at the end of the line.
    """
    if not in_comment and _SPECIAL_CHARS.search(text) is None:
        return [(0, text.partition("#")[0])], False
    statements = []
    start = position = 0
    pieces: list[str] = []
    while position < len(text):
        if in_comment:
            end = text.find("*/", position)
            stop = len(text) if end < 0 else end + 2
            pieces.append(" " * (stop - position))
            in_comment, position = end < 0, stop
            continue
        char = text[position]
        if char in "\"'":
            end = _skip_quoted(text, position)
            pieces.append(text[position:end])
            position = end
        elif char == "#":
            break
        elif text.startswith("/*", position):
            in_comment = True
            pieces.append("  ")
            position += 2
        elif char == ";":
            statements.append((start, "".join(pieces)))
            pieces, start, position = [], position + 1, position + 1
        else:
            pieces.append(char)
            position += 1
    statements.append((start, "".join(pieces)))
    return statements, in_comment


def _split_args(text: str, column: int) -> list[_Arg]:
    """Operands separated by commas outside parentheses, strings and characters."""
    if not text.strip():
        return []
    if _NESTING_CHARS.search(text) is None:
        pieces = text.split(",")
    else:
        pieces, depth, start, position = [], 0, 0, 0
        while position < len(text):
            char = text[position]
            if char in "\"'":
                position = _skip_quoted(text, position)
                continue
            if char == "(":
                depth += 1
            elif char == ")":
                depth -= 1
            elif char == "," and depth == 0:
                pieces.append(text[start:position])
                start = position + 1
            position += 1
        pieces.append(text[start:])
    args, offset = [], 0
    for piece in pieces:
        stripped = piece.strip()
        lead = len(piece) - len(piece.lstrip())
        args.append(_Arg(stripped, column + offset + lead))
        offset += len(piece) + 1
    return args


# -- Sections, symbols and fixups ----------------------------------------------------------


@dataclass(eq=False)
class _Section:
    name: str
    flags: str
    nobits: bool
    data: bytearray
    align: int = _MIN_SECTION_ALIGN
    address: int = 0

    def __post_init__(self) -> None:
        self.lines: list[tuple[int, SourceLine]] = []  # (offset of an instruction, its line)


class _Imm(NamedTuple):
    """An operand whose value is an expression, and the column it was written at."""

    node: object
    column: int


@dataclass(slots=True)
class _Equate:
    """A symbol set with .equ/.set/=; ``.`` in its expression means where it was set."""

    node: object
    section: _Section
    offset: int
    where: _Where
    value: _Value | None = None
    busy: bool = False


@dataclass(slots=True)
class _PendingInsn:
    section: _Section
    offset: int
    insn: Instruction
    fields: dict
    where: _Where


@dataclass(slots=True)
class _PendingData:
    section: _Section
    offset: int
    width: int
    value: _Imm
    directive: str
    where: _Where


# -- Messages --------------------------------------------------------------------------

# The register-register instruction that takes the place of an immediate one.
_REGISTER_FORMS = {"slti": "slt", "sltiu": "sltu", "xori": "xor", "ori": "or", "andi": "and"}
_SYNTAX_WORDS = {
    "imm12": "imm",
    "simm12": "imm",
    "bimm13": "label",
    "jimm21": "label",
    "zimm": "uimm5",
    "imm12(rs1)": "offset(rs1)",
    "simm12(rs1)": "offset(rs1)",
}


def _range_message(field: str, value: int, insn: Instruction) -> str:
    spec = FIELDS[field]
    bounds = f"({spec.low}..{spec.high})"
    match field:
        case "bimm13" | "jimm21":
            kind, reach = ("branch", "4 KiB") if field == "bimm13" else ("jump", "1 MiB")
            if value % spec.align:
                return f"{kind} target {value} bytes away is not 2-byte aligned"
            if kind == "branch":
                hint = "branch on the opposite condition over a 'j' to the target"
            else:
                hint = "'call' or 'tail' reach any address"
            return f"{kind} target {value} bytes away, beyond +-{reach}; {hint}"
        case "imm12" | "simm12" if insn.format in ("LOAD", "STORE", "JALR"):
            return (
                f"offset {value} out of range for {insn.name} {bounds}; add the rest to "
                "the base register first (lui/addi or li)"
            )
        case "imm12" if insn.name == "addi":
            return f"immediate {value} out of range for addi {bounds}; use li"
        case "imm12":
            other = _REGISTER_FORMS.get(insn.name, insn.name)
            return (
                f"immediate {value} out of range for {insn.name} {bounds}; load it into "
                f"a register with li and use '{other}'"
            )
        case "shamt":
            return f"shift amount {value} out of range for {insn.name} {bounds}"
        case "imm20":
            return (
                f"immediate {value:#x} out of range for {insn.name} (0..0xfffff): it is the "
                "upper 20 bits; write %hi(value), or use li for a whole constant"
            )
        case "csr":
            return f"CSR number {value:#x} out of range (0..0xfff)"
    return f"immediate {value} out of range for {insn.name} {bounds}"


def _usage(name: str, operands) -> str:
    return " ".join((name, ", ".join(_SYNTAX_WORDS.get(o, o) for o in operands))).strip()


def _arity_error(name: str, args: list[_Arg], *forms: str) -> _Error:
    written = " or ".join("'" + f"{name} {form}".strip() + "'" for form in forms)
    return _Error(f"wrong number of operands for {name} ({len(args)}): write {written}")


def _closest(word: str, candidates) -> str:
    """ ", did you mean 'x'?" for the most similar candidate, if one is similar enough.

    Ties in similarity go to the longest common prefix: 'adi' means 'addi', not 'andi'.
    """

    def similarity(candidate: str) -> tuple[float, int]:
        prefix = len(os.path.commonprefix((word, candidate)))
        return difflib.SequenceMatcher(None, word, candidate).ratio(), prefix

    scored = [(similarity(c), c) for c in candidates]
    best = max(scored, default=None, key=lambda item: item[0])
    return f", did you mean '{best[1]}'?" if best and best[0][0] >= 0.6 else ""


# -- The assembler ---------------------------------------------------------------------

_PSEUDOS: dict = {}
# Register-register mnemonics that GNU as also accepts with an immediate last operand.
_IMMEDIATE_FORMS = {
    "add": "addi",
    "xor": "xori",
    "or": "ori",
    "and": "andi",
    "sll": "slli",
    "srl": "srli",
    "sra": "srai",
}
_DIRECTIVES: dict = {}


def _pseudo(*names: str):
    """Register a handler for instructions written with these mnemonics."""

    def register(method):
        for name in names:
            _PSEUDOS[name] = method
        return method

    return register


def _directive(*names: str):
    def register(method):
        for name in names:
            _DIRECTIVES[name] = method
        return method

    return register


_DATA_WIDTHS = {
    ".byte": 1,
    ".half": 2,
    ".short": 2,
    ".2byte": 2,
    ".word": 4,
    ".long": 4,
    ".4byte": 4,
}
# Metadata for debuggers and linkers; it does not change a byte of the image.
_IGNORED_DIRECTIVES = (".type", ".size", ".file", ".ident", ".attribute", ".loc")
_IGNORED_OPTIONS = ("push", "pop", "relax", "norelax", "nopic", "norvc")
_BRANCH_ZERO = {  # beqz rs, L = beq rs, zero, L; blez rs, L = bge zero, rs, L; ...
    "beqz": ("beq", False),
    "bnez": ("bne", False),
    "bgez": ("bge", False),
    "bltz": ("blt", False),
    "blez": ("bge", True),
    "bgtz": ("blt", True),
}
_BRANCH_SWAPPED = {"bgt": "blt", "ble": "bge", "bgtu": "bltu", "bleu": "bgeu"}
_COUNTER_READS = {
    f"rd{name}{half}": f"{name}{half}"
    for name in ("cycle", "time", "instret")
    for half in ("", "h")
}


class _Assembler:
    def __init__(self, filename: str, base: int) -> None:
        self.filename = filename
        self.base = base
        self.sections: dict[str, _Section] = {}
        self.section = self._switch(".text")
        self.labels: dict[str, tuple[_Section, int]] = {}
        self.label_lines: dict[str, int] = {}
        self.equates: dict[str, _Equate] = {}
        self.global_names: dict[str, _Where] = {}
        self.local_counts: dict[str, int] = {}
        self.pcrel_hi_sites: dict[_Value, object] = {}  # auipc location -> its target
        self.pending: list[_PendingInsn | _PendingData] = []
        self.errors: list[Diagnostic] = []
        self.final = False
        self.where = _Where(SourceLine(filename, 0, ""), 1)

    # -- driver ------------------------------------------------------------------------

    def assemble(self, source: str) -> Program:
        in_comment = False
        for number, text in enumerate(source.splitlines(), start=1):
            statements, in_comment = _split_statements(text, in_comment)
            line = SourceLine(self.filename, number, text)
            for start, statement in statements:
                self.where = _Where(line, start + 1)
                try:
                    self._statement(statement, start + 1)
                except _Error as error:
                    self._report(error)
        return self._finish()

    def _report(self, error: _Error, where: _Where | None = None) -> None:
        where = where or self.where
        column = error.column or where.column
        line = where.source
        self.errors.append(Diagnostic(line.file, line.line, column, error.message, line.text))

    def _statement(self, text: str, column: int) -> None:
        position = 0
        while match := _LABEL.match(text, position):
            self._define_label(match[1], column + match.start(1))
            position = match.end()
        if match := _ASSIGNMENT.match(text, position):
            value = text[match.end() :]
            arg = _Arg(value.strip(), column + match.end() + len(value) - len(value.lstrip()))
            self._define_equate(match[1], self._expression(arg), column + match.start(1))
            return
        match = _WORD.match(text, position)
        if match is None:
            rest = text[position:]
            if rest.strip():
                found = rest.strip()
                at = column + position + len(rest) - len(rest.lstrip())
                raise _Error(f"expected an instruction, directive or label, found '{found}'", at)
            return
        name = match[1].lower()
        self.where = _Where(self.where.source, column + match.start(1))
        args = _split_args(text[match.end() :], column + match.end())
        if name.startswith("."):
            self._run_directive(name, args)
        else:
            self._instruction(name, args)

    def _finish(self) -> Program:
        for section in self.sections.values():
            if "x" in section.flags:  # GNU as ends code sections at their alignment
                self.section = section
                self._pad(-len(section.data) % section.align, None)
        self._place_sections()
        self.final = True
        self.pcrel_hi_sites = {
            self._location(key.section, key.number): target
            for key, target in self.pcrel_hi_sites.items()
        }
        for pending in self.pending:
            try:
                if isinstance(pending, _PendingInsn):
                    self._encode(pending)
                else:
                    self._store(pending)
            except _Error as error:
                self._report(error, pending.where)
        constants = {}
        for name, equate in self.equates.items():
            try:
                constants[name] = self._absolute(self._equate_value(name, equate.where.column))
            except _Error as error:
                self._report(error, equate.where)
        for name, where in self.global_names.items():
            if name not in self.labels and name not in self.equates:
                self._report(_Error(f"'{name}' is declared global but never defined"), where)
        if self.errors:
            self.errors.sort(key=lambda e: (e.line, e.column))
            raise AssemblerError(self.errors)
        symbols = {
            name: section.address + offset
            for name, (section, offset) in self.labels.items()
            if "\x02" not in name
        }
        sections = self._ordered_sections()
        entry = symbols.get("_start", constants.get("_start", self.sections[".text"].address))
        return Program(
            sections=tuple(
                Section(
                    s.name,
                    s.address,
                    b"" if s.nobits else bytes(s.data),
                    len(s.data),
                    s.align,
                    s.flags,
                    s.nobits,
                )
                for s in sections
                if s.data
            ),
            symbols=symbols,
            entry=entry,
            source_map={s.address + offset: line for s in sections for offset, line in s.lines},
            constants=constants,
            global_names=frozenset(self.global_names),
        )

    def _ordered_sections(self) -> list[_Section]:
        standard = [self.sections[n] for n in STANDARD_SECTIONS if n in self.sections]
        return standard + [s for n, s in self.sections.items() if n not in STANDARD_SECTIONS]

    def _place_sections(self) -> None:
        address = self.base
        for section in self._ordered_sections():
            address = -(-address // section.align) * section.align
            section.address = address
            address += len(section.data)
        if address > 1 << 32:
            raise ValueError(
                f"with base {self.base:#x} the program would end at {address:#x}, beyond the "
                "32-bit address space; choose a lower base"
            )

    # -- symbols and values ------------------------------------------------------------

    def _define_label(self, name: str, column: int) -> None:
        if name.isdigit():
            count = self.local_counts.get(name, 0)
            self.local_counts[name] = count + 1
            name = f"{name}\x02{count}"
        elif name in self.labels or name in self.equates:
            line = self.label_lines.get(name) or self.equates[name].where.source.line
            raise _Error(f"'{name}' is already defined on line {line}", column)
        self.labels[name] = (self.section, len(self.section.data))
        self.label_lines[name] = self.where.source.line

    def _define_equate(self, name: str, node, column: int) -> None:
        if name == ".":
            raise _Error("use .org or .skip to move the location counter", column)
        if name in self.labels:
            line = self.label_lines[name]
            raise _Error(f"'{name}' is already a label, defined on line {line}", column)
        equate = _Equate(node, self.section, len(self.section.data), self.where)
        try:
            equate.value = self._evaluate(node, self._here())
        except _NotYet:
            pass
        self.equates[name] = equate

    def _symbol_node(self, kind: str, name: str, column: int):
        """The expression node for a name the parser met; known constants fold here, so
        a later .set of the same name does not change what was written before it."""
        if kind == "local":
            number, direction = name[:-1], name[-1]
            count = self.local_counts.get(number, 0)
            if direction == "b":
                if count == 0:
                    raise _Error(
                        f"'{name}' refers back to a '{number}:' label, but there is none above",
                        column,
                    )
                count -= 1
            return _Sym(f"{number}\x02{count}", column)
        if name == ".":
            return _DOT
        equate = self.equates.get(name)
        if equate is not None and equate.value is not None and equate.value.section is None:
            return _Num(equate.value.number)
        return _Sym(name, column)

    def _expression(self, arg: _Arg):
        if not arg.text:
            raise _Error("missing operand", arg.column)
        if _PLAIN_NUMBER.fullmatch(arg.text):
            return _Num(int(arg.text, 0))
        return _ExpressionParser(arg.text, arg.column, self._symbol_node).parse()

    def _here(self) -> _Value:
        return _Value(len(self.section.data), self.section)

    def _location(self, section: _Section, offset: int) -> _Value:
        if self.final:
            return _Value(section.address + offset, None)
        return _Value(offset, section)

    def _absolute(self, value: _Value) -> int:
        if value.section is not None:
            raise _NotYet
        return value.number

    def _evaluate(self, node, dot: _Value) -> _Value:
        match node:
            case _Num(value):
                return _Value(value, None)
            case _Sym(name, column):
                return self._symbol_value(name, column)
            case _Dot():
                return dot
            case _Unary(op, operand):
                return _Value(_UNARY_OPS[op](self._absolute(self._evaluate(operand, dot))), None)
            case _Binary(op, left, right, column):
                return self._binary(
                    op, self._evaluate(left, dot), self._evaluate(right, dot), column
                )
            case _Reloc("pcrel_lo", operand, column):
                return self._pcrel_lo(self._evaluate(operand, dot), column)
            case _Reloc(op, operand, column):
                value = self._evaluate(operand, dot)
                if op == "pcrel_hi":
                    value = self._binary("-", value, dot, column)
                number = self._absolute(value)
                return _Value(_lo12(number) if op == "lo" else _hi20(number), None)
        raise AssertionError(node)

    def _binary(self, op: str, left: _Value, right: _Value, column: int) -> _Value:
        """Pass 1 keeps label arithmetic within a section (label - label is absolute,
        label + constant stays in the section); anything else waits for pass 2."""
        if left.section is None and right.section is None:
            return _Value(_apply(op, left.number, right.number, column), None)
        if op == "+" and (left.section is None or right.section is None):
            return _Value(left.number + right.number, left.section or right.section)
        if op == "-" and right.section is None:
            return _Value(left.number - right.number, left.section)
        if op == "-" and left.section is right.section:
            return _Value(left.number - right.number, None)
        raise _NotYet

    def _pcrel_lo(self, anchor: _Value, column: int) -> _Value:
        """``%pcrel_lo(L)``: the low part of (target of the %pcrel_hi at L) - L."""
        target = self.pcrel_hi_sites.get(anchor)
        if target is None:
            if not self.final:
                raise _NotYet
            raise _Error(
                "%pcrel_lo needs the label of an auipc that uses %pcrel_hi, and there is "
                f"no such auipc at {anchor.number:#x}",
                column,
            )
        offset = self._binary("-", self._evaluate(target, anchor), anchor, column)
        return _Value(_lo12(self._absolute(offset)), None)

    def _symbol_value(self, name: str, column: int) -> _Value:
        label = self.labels.get(name)
        if label is not None:
            return self._location(*label)
        if name in self.equates:
            return self._equate_value(name, column)
        if self.final:
            raise _Error(self._undefined(name), column)
        raise _NotYet

    def _equate_value(self, name: str, column: int) -> _Value:
        equate = self.equates[name]
        if equate.value is not None:
            value = equate.value
            if self.final and value.section is not None:
                return _Value(value.section.address + value.number, None)
            return value
        if equate.busy:
            raise _Error(f"'{name}' is defined in terms of itself", column)
        equate.busy = True
        try:
            value = self._evaluate(equate.node, self._location(equate.section, equate.offset))
        finally:
            equate.busy = False
        if self.final:
            equate.value = value
        return value

    def _undefined(self, name: str) -> str:
        if "\x02" in name:
            number = name.partition("\x02")[0]
            return f"'{number}f' refers forward to a '{number}:' label, but there is none below"
        known = [n for n in self.labels if "\x02" not in n] + list(self.equates)
        message = f"undefined symbol '{name}'{_closest(name, known)}"
        if re.fullmatch(r"[xast][0-9]+", name):
            message += f" ({_REGISTER_LIST})"
        return message

    # -- emitting ----------------------------------------------------------------------

    def _grow(self, count: int, fill: int = 0) -> None:
        section = self.section
        if len(section.data) + count > MAX_SECTION_SIZE:
            raise _Error(
                f"{section.name} would grow to {len(section.data) + count:#x} bytes, beyond "
                f"the {MAX_SECTION_SIZE >> 20} MiB limit"
            )
        if fill and section.nobits:
            raise _Error(f"{section.name} holds only zeros; put initialised data in .data")
        section.data += bytes((fill,)) * count

    def _emit(self, name: str, **fields) -> None:
        self._emit_insn(BY_NAME[name], fields)

    def _emit_insn(self, insn: Instruction, fields: dict) -> None:
        section = self.section
        offset = len(section.data)
        if section.nobits:
            raise _Error(f"instruction in {section.name}, which holds only zeros; use .text")
        if offset % 4:
            raise _Error(
                f"instruction at offset {offset:#x} of {section.name} is not 4-byte "
                "aligned; put '.align 2' before it"
            )
        high = fields.get("imm20")
        if high is not None and isinstance(high.node, _Reloc) and high.node.op == "pcrel_hi":
            self.pcrel_hi_sites[_Value(offset, section)] = high.node.operand
        section.data += bytes(4)
        section.lines.append((offset, self.where.source))
        pending = _PendingInsn(section, offset, insn, fields, self.where)
        try:
            self._encode(pending)
        except _NotYet:
            self.pending.append(pending)
        except _Error as error:
            self._report(error)

    def _encode(self, pending: _PendingInsn) -> None:
        values = {}
        dot = None
        for name, value in pending.fields.items():
            if type(value) is int:
                values[name] = value
                continue
            if type(value.node) is _Num:
                number = value.node.value
            else:
                if dot is None:
                    dot = self._location(pending.section, pending.offset)
                number = self._absolute(self._evaluate(value.node, dot))
            spec = FIELDS[name]
            if not (spec.low <= number <= spec.high and number % spec.align == 0):
                raise _Error(_range_message(name, number, pending.insn), value.column)
            values[name] = number
        word = encode(pending.insn, **values)
        pending.section.data[pending.offset : pending.offset + 4] = word.to_bytes(4, "little")

    def _emit_data(self, arg: _Arg, width: int, directive: str) -> None:
        value = _Imm(self._expression(arg), arg.column)
        offset = len(self.section.data)
        self._grow(width)
        pending = _PendingData(self.section, offset, width, value, directive, self.where)
        try:
            self._store(pending)
        except _NotYet:
            self.pending.append(pending)
        except _Error as error:
            self._report(error)

    def _store(self, pending: _PendingData) -> None:
        dot = self._location(pending.section, pending.offset)
        number = self._absolute(self._evaluate(pending.value.node, dot))
        bits = 8 * pending.width
        if not -(1 << (bits - 1)) <= number < 1 << bits:
            raise _Error(
                f"value {number:#x} does not fit in {pending.directive} ({bits} bits)",
                pending.value.column,
            )
        if number and pending.section.nobits:
            raise _Error(
                f"{pending.section.name} holds only zeros; put initialised data in .data",
                pending.value.column,
            )
        end = pending.offset + pending.width
        pending.section.data[pending.offset : end] = (number % (1 << bits)).to_bytes(
            pending.width, "little"
        )

    # -- operands ------------------------------------------------------------------------

    def _register(self, arg: _Arg) -> int:
        number = register_number(arg.text)
        if number is not None:
            return number
        if not arg.text:
            raise _Error("missing operand: expected a register", arg.column)
        if _IDENTIFIER.fullmatch(arg.text):
            suggestion = _closest(arg.text.lower(), REGISTER_NUMBERS) or f"; {_REGISTER_LIST}"
            raise _Error(f"unknown register '{arg.text}'{suggestion}", arg.column)
        raise _Error(
            f"expected a register (x0-x31 or an ABI name such as a0 or sp), found '{arg.text}'",
            arg.column,
        )

    def _is_register(self, arg: _Arg) -> bool:
        return register_number(arg.text) is not None

    def _immediate(self, arg: _Arg) -> _Imm:
        return _Imm(self._expression(arg), arg.column)

    def _target(self, arg: _Arg) -> _Imm:
        """A branch or jump target: the field holds its distance from the instruction."""
        return _Imm(_Binary("-", self._expression(arg), _DOT, arg.column), arg.column)

    def _memory(self, arg: _Arg) -> tuple[_Imm, int]:
        """``offset(reg)`` or ``(reg)``: the offset expression and the base register."""
        text = arg.text
        open_paren = text.rfind("(")
        if not text.endswith(")") or open_paren < 0:
            raise _Error(f"expected an address such as 8(sp) or (a0), found '{text}'", arg.column)
        inside = text[open_paren + 1 : -1]
        lead = len(inside) - len(inside.lstrip())
        base = self._register(_Arg(inside.strip(), arg.column + open_paren + 1 + lead))
        offset_text = text[:open_paren].rstrip()
        if not offset_text:
            return _Imm(_Num(0), arg.column), base
        return self._immediate(_Arg(offset_text, arg.column)), base

    def _address_register(self, arg: _Arg, mnemonic: str) -> int:
        """``(reg)`` of the A and H instructions; GNU as also takes ``0(reg)``."""
        offset, base = self._memory(arg)
        if offset.node != _Num(0):
            raise _Error(f"{mnemonic} takes no offset: write the address as (reg)", arg.column)
        return base

    def _csr(self, arg: _Arg) -> _Imm:
        csr = csrs.BY_NAME.get(arg.text.lower())
        if csr is not None:
            return _Imm(_Num(csr.number), arg.column)
        if _IDENTIFIER.fullmatch(arg.text) and arg.text not in self.equates:
            suggestion = _closest(arg.text.lower(), csrs.BY_NAME)
            raise _Error(f"unknown CSR '{arg.text}'{suggestion}", arg.column)
        return self._immediate(arg)

    def _fence_set(self, arg: _Arg) -> int:
        bits = 0
        for char in arg.text.lower():
            if char not in _FENCE_BITS:
                raise _Error(
                    f"fence sets are written with the letters i, o, r, w (as in 'rw'), "
                    f"found '{arg.text}'",
                    arg.column,
                )
            bits |= _FENCE_BITS[char]
        if not bits:
            raise _Error("missing fence set such as 'rw'", arg.column)
        return bits

    # -- instructions ------------------------------------------------------------------

    def _instruction(self, mnemonic: str, args: list[_Arg]) -> None:
        handler = _PSEUDOS.get(mnemonic)
        if handler is not None:
            handler(self, mnemonic, args)
            return
        if (
            mnemonic in _IMMEDIATE_FORMS
            and len(args) == 3
            and register_number(args[2].text) is None
        ):
            # GNU as reads `add rd, rs, 5` as addi (and so on): objdump prints them so.
            mnemonic = _IMMEDIATE_FORMS[mnemonic]
        insn, ordering = self._lookup(mnemonic)
        self._real(insn, args, ordering, mnemonic)

    def _lookup(self, mnemonic: str) -> tuple[Instruction, int]:
        """The table row for a mnemonic and the aq/rl bits of its suffix (amoadd.w.aq)."""
        insn = BY_NAME.get(mnemonic)
        if insn is not None:
            return insn, 0
        base, _, suffix = mnemonic.rpartition(".")
        insn = BY_NAME.get(base)
        if insn is not None and insn.format in ("AMO", "LR") and suffix in _AQRL_SUFFIXES:
            return insn, _AQRL_SUFFIXES[suffix]
        suggestion = _closest(mnemonic, [*BY_NAME, *_PSEUDOS])
        raise _Error(f"unknown instruction '{mnemonic}'{suggestion}")

    def _real(self, insn: Instruction, args: list[_Arg], ordering: int = 0, mnemonic=None):
        """An instruction of the table, its operands written as its format says."""
        mnemonic = mnemonic or insn.name
        syntax = insn.operands
        if len(args) != len(syntax):
            if not syntax:
                raise _Error(f"{mnemonic} takes no operands")
            raise _arity_error(mnemonic, args, _usage("", syntax))
        fields: dict = {}
        for spec, arg in zip(syntax, args, strict=True):
            match spec:
                case "rd" | "rs1" | "rs2":
                    fields[spec] = self._register(arg)
                case "bimm13" | "jimm21":
                    fields[spec] = self._target(arg)
                case "csr":
                    fields[spec] = self._csr(arg)
                case "pred" | "succ":
                    fields[spec] = self._fence_set(arg)
                case "(rs1)":
                    fields["rs1"] = self._address_register(arg, mnemonic)
                case _ if spec.endswith("(rs1)"):
                    fields[spec[: -len("(rs1)")]], fields["rs1"] = self._memory(arg)
                case _:
                    fields[spec] = self._immediate(arg)
        if insn.format in ("AMO", "LR"):
            fields["aqrl"] = ordering
        self._emit_insn(insn, fields)

    def _operands(self, mnemonic: str, args: list[_Arg], syntax: str) -> list[_Arg]:
        if len(args) != (syntax.count(",") + 1 if syntax else 0):
            raise _arity_error(mnemonic, args, syntax)
        return args

    @_pseudo("nop")
    def _nop(self, mnemonic, args):
        self._operands(mnemonic, args, "")
        self._emit("addi", rd=0, rs1=0, imm12=_Imm(_Num(0), 0))

    @_pseudo("unimp")
    def _unimp(self, mnemonic, args):
        # GNU as without the C extension: csrrw zero, cycle, zero, which traps as a
        # write to a read-only CSR.
        self._operands(mnemonic, args, "")
        self._emit("csrrw", rd=0, csr=_Imm(_Num(csrs.number("cycle")), 0), rs1=0)

    @_pseudo("li")
    def _li(self, mnemonic, args):
        rd_arg, value_arg = self._operands(mnemonic, args, "rd, imm")
        rd = self._register(rd_arg)
        node = self._expression(value_arg)
        try:
            value = self._absolute(self._evaluate(node, self._here()))
        except _NotYet:  # a label or a later .equ: always lui + addi
            self._emit("lui", rd=rd, imm20=_Imm(_Reloc("hi", node, 0), value_arg.column))
            self._emit("addi", rd=rd, rs1=rd, imm12=_Imm(_Reloc("lo", node, 0), value_arg.column))
            return
        self._load_constant(rd, value, value_arg.column)

    def _load_constant(self, rd: int, value: int, column: int) -> None:
        """The shortest lui/addi sequence, as GNU as's load_const builds it for RV32."""
        if not -(1 << 31) <= value < 1 << 32:
            raise _Error(f"li value {value:#x} does not fit in 32 bits", column)
        value = sign_extend(value, 32)
        low = _lo12(value)
        high = _hi20(value)
        if high:
            self._emit("lui", rd=rd, imm20=_Imm(_Num(high), column))
        if low or not high:
            self._emit("addi", rd=rd, rs1=rd if high else 0, imm12=_Imm(_Num(low), column))

    @_pseudo("la", "lla")
    def _la(self, mnemonic, args):
        rd_arg, symbol_arg = self._operands(mnemonic, args, "rd, symbol")
        rd = self._register(rd_arg)
        node = self._expression(symbol_arg)
        if isinstance(node, _Num):  # GNU as loads a constant address as li does
            self._load_constant(rd, node.value, symbol_arg.column)
            return
        self._pc_relative_pair("addi", rd, rd, node, symbol_arg.column)

    def _pc_relative_pair(self, second: str, rd: int, temp: int, node, column: int) -> None:
        """``auipc temp, %pcrel_hi(x)`` and ``second rd, %pcrel_lo(that auipc)(temp)``."""
        self._emit("auipc", rd=temp, imm20=_Imm(_Reloc("pcrel_hi", node, column), column))
        previous = _Binary("-", _DOT, _Num(4), column)
        self._emit(
            second, rd=rd, rs1=temp, imm12=_Imm(_Reloc("pcrel_lo", previous, column), column)
        )

    @_pseudo("call")
    def _call(self, mnemonic, args):
        (target,) = self._operands(mnemonic, args, "symbol")
        ra = REGISTER_NUMBERS["ra"]
        self._pc_relative_pair("jalr", ra, ra, self._expression(target), target.column)

    @_pseudo("tail")
    def _tail(self, mnemonic, args):
        (target,) = self._operands(mnemonic, args, "symbol")
        t1 = REGISTER_NUMBERS["t1"]
        self._pc_relative_pair("jalr", 0, t1, self._expression(target), target.column)

    @_pseudo("zext.b")
    def _zext_b(self, mnemonic, args):
        rd_arg, rs_arg = self._operands(mnemonic, args, "rd, rs")
        self._emit(
            "andi", rd=self._register(rd_arg), rs1=self._register(rs_arg), imm12=_Imm(_Num(255), 0)
        )

    @_pseudo("mv", "not", "neg", "seqz", "snez", "sltz", "sgtz")
    def _unary_alias(self, mnemonic, args):
        rd_arg, rs_arg = self._operands(mnemonic, args, "rd, rs")
        rd, rs = self._register(rd_arg), self._register(rs_arg)
        match mnemonic:
            case "mv":
                self._emit("addi", rd=rd, rs1=rs, imm12=_Imm(_Num(0), 0))
            case "not":
                self._emit("xori", rd=rd, rs1=rs, imm12=_Imm(_Num(-1), 0))
            case "neg":
                self._emit("sub", rd=rd, rs1=0, rs2=rs)
            case "seqz":
                self._emit("sltiu", rd=rd, rs1=rs, imm12=_Imm(_Num(1), 0))
            case "snez":
                self._emit("sltu", rd=rd, rs1=0, rs2=rs)
            case "sltz":
                self._emit("slt", rd=rd, rs1=rs, rs2=0)
            case "sgtz":
                self._emit("slt", rd=rd, rs1=0, rs2=rs)

    @_pseudo("sgt", "sgtu")
    def _set_greater(self, mnemonic, args):
        rd, rs, rt = (self._register(a) for a in self._operands(mnemonic, args, "rd, rs, rt"))
        self._emit("slt" if mnemonic == "sgt" else "sltu", rd=rd, rs1=rt, rs2=rs)

    @_pseudo(*_BRANCH_ZERO)
    def _branch_zero(self, mnemonic, args):
        rs_arg, target = self._operands(mnemonic, args, "rs, label")
        real, swapped = _BRANCH_ZERO[mnemonic]
        rs = self._register(rs_arg)
        rs1, rs2 = (0, rs) if swapped else (rs, 0)
        self._emit(real, rs1=rs1, rs2=rs2, bimm13=self._target(target))

    @_pseudo(*_BRANCH_SWAPPED)
    def _branch_swapped(self, mnemonic, args):
        rs_arg, rt_arg, target = self._operands(mnemonic, args, "rs, rt, label")
        rs, rt = self._register(rs_arg), self._register(rt_arg)
        self._emit(_BRANCH_SWAPPED[mnemonic], rs1=rt, rs2=rs, bimm13=self._target(target))

    @_pseudo("j")
    def _j(self, mnemonic, args):
        (target,) = self._operands(mnemonic, args, "label")
        self._emit("jal", rd=0, jimm21=self._target(target))

    @_pseudo("jal")
    def _jal(self, mnemonic, args):
        if len(args) != 1:
            self._real(BY_NAME["jal"], args)
            return
        self._emit("jal", rd=REGISTER_NUMBERS["ra"], jimm21=self._target(args[0]))

    @_pseudo("ret")
    def _ret(self, mnemonic, args):
        self._operands(mnemonic, args, "")
        self._emit("jalr", rd=0, rs1=REGISTER_NUMBERS["ra"], imm12=_Imm(_Num(0), 0))

    @_pseudo("jr", "jalr")
    def _jump_register(self, mnemonic, args):
        """GNU as forms: ``jr rs``, ``jr off(rs)``, ``jr rs, off``; ``jalr`` the same
        (linking to ra) plus ``jalr rd, rs``, ``jalr rd, off(rs)``, ``jalr rd, rs, off``."""
        rd = 0 if mnemonic == "jr" else REGISTER_NUMBERS["ra"]
        zero = _Imm(_Num(0), 0)
        match args:
            case [address] if self._is_register(address):
                rs1, offset = self._register(address), zero
            case [address]:
                offset, rs1 = self._memory(address)
            case [first, address] if mnemonic == "jalr" and address.text.endswith(")"):
                rd = self._register(first)
                offset, rs1 = self._memory(address)
            case [first, second] if mnemonic == "jalr" and self._is_register(second):
                rd, rs1, offset = self._register(first), self._register(second), zero
            case [first, second]:
                rs1, offset = self._register(first), self._immediate(second)
            case [first, second, third] if mnemonic == "jalr":
                rd, rs1 = self._register(first), self._register(second)
                offset = self._immediate(third)
            case _:
                forms = ["rs", "offset(rs)", "rs, offset"]
                if mnemonic == "jalr":
                    forms += ["rd, offset(rs)", "rd, rs, offset"]
                raise _arity_error(mnemonic, args, *forms)
        self._emit("jalr", rd=rd, rs1=rs1, imm12=offset)

    @_pseudo("csrr")
    def _csrr(self, mnemonic, args):
        rd_arg, csr_arg = self._operands(mnemonic, args, "rd, csr")
        self._emit("csrrs", rd=self._register(rd_arg), csr=self._csr(csr_arg), rs1=0)

    @_pseudo(*_COUNTER_READS)
    def _read_counter(self, mnemonic, args):
        (rd_arg,) = self._operands(mnemonic, args, "rd")
        csr = _Imm(_Num(csrs.number(_COUNTER_READS[mnemonic])), 0)
        self._emit("csrrs", rd=self._register(rd_arg), csr=csr, rs1=0)

    @_pseudo("csrw", "csrs", "csrc", "csrwi", "csrsi", "csrci")
    def _csr_write(self, mnemonic, args):
        csr_arg, source = self._operands(mnemonic, args, "csr, rs")
        real = "csrr" + mnemonic[3:]
        self._csr_access(real, 0, csr_arg, source)

    @_pseudo("csrrw", "csrrs", "csrrc")
    def _csr_read_write(self, mnemonic, args):
        if len(args) != 3:
            self._real(BY_NAME[mnemonic], args)
            return
        rd, csr_arg, source = args
        self._csr_access(mnemonic, self._register(rd), csr_arg, source)

    def _csr_access(self, real: str, rd: int, csr_arg: _Arg, source: _Arg) -> None:
        """GNU as turns csrrw/csrw with an immediate source into csrrwi/csrwi."""
        csr = self._csr(csr_arg)
        if not real.endswith("i") and self._is_register(source):
            self._emit(real, rd=rd, csr=csr, rs1=self._register(source))
        else:
            self._emit(real.rstrip("i") + "i", rd=rd, csr=csr, zimm=self._immediate(source))

    @_pseudo("fence")
    def _fence(self, mnemonic, args):
        if args:
            self._real(BY_NAME["fence"], args)
            return
        every = _FENCE_BITS["i"] | _FENCE_BITS["o"] | _FENCE_BITS["r"] | _FENCE_BITS["w"]
        self._emit("fence", pred=every, succ=every)

    @_pseudo("sfence.vma", "hfence.vvma", "hfence.gvma")
    def _fence_vma(self, mnemonic, args):
        if len(args) > 2:
            raise _arity_error(mnemonic, args, "", "rs1", "rs1, rs2")
        registers = [self._register(a) for a in args] + [0, 0]
        self._emit(mnemonic, rs1=registers[0], rs2=registers[1])

    # -- directives --------------------------------------------------------------------

    def _run_directive(self, name: str, args: list[_Arg]) -> None:
        handler = _DIRECTIVES.get(name)
        if handler is not None:
            handler(self, name, args)
        elif name in _IGNORED_DIRECTIVES or name.startswith(".cfi_"):
            pass
        else:
            known = [*_DIRECTIVES, *_IGNORED_DIRECTIVES]
            raise _Error(f"unknown directive '{name}'{_closest(name, known)}")

    def _constant(self, arg: _Arg, what: str) -> int:
        """A value needed in pass 1 (a size or an alignment)."""
        try:
            return self._absolute(self._evaluate(self._expression(arg), self._here()))
        except _NotYet:
            raise _Error(
                f"{what} must be known where it is written: use numbers, constants set "
                "above, or differences of labels above in this section",
                arg.column,
            ) from None

    def _switch(self, name: str, flags: str | None = None, nobits: bool | None = None):
        section = self.sections.get(name)
        if section is None:
            default_flags, default_nobits = STANDARD_SECTIONS.get(name, ("aw", False))
            for prefix, prefix_flags, prefix_nobits in _SECTION_PREFIXES:
                if name.startswith(prefix + ".") or name == prefix:
                    default_flags, default_nobits = prefix_flags, prefix_nobits
            section = _Section(
                name,
                default_flags if flags is None else flags,
                default_nobits if nobits is None else nobits,
                bytearray(),
            )
            self.sections[name] = section
        self.section = section
        return section

    @_directive(".text", ".data", ".rodata", ".bss")
    def _standard_section(self, name, args):
        if args:
            raise _Error(f"{name} takes no operands (subsections are not supported)")
        self._switch(name)

    @_directive(".section")
    def _section_directive(self, name, args):
        if not args or not args[0].text:
            raise _Error(".section needs a name, as in '.section .rodata'")
        section_name = args[0].text.strip('"')
        flags = nobits = None
        if len(args) > 1:
            if not (args[1].text.startswith('"') and args[1].text.endswith('"')):
                raise _Error('section flags are a quoted string such as "ax"', args[1].column)
            written = args[1].text[1:-1]
            unknown = set(written) - set("awxMS")
            if unknown:
                raise _Error(
                    f"unknown section flag '{min(unknown)}' (known: a, w, x, M, S)",
                    args[1].column,
                )
            flags = "".join(f for f in "awx" if f in written)
        if len(args) > 2:
            kind = args[2].text.lstrip("@%")
            if kind not in ("progbits", "nobits"):
                raise _Error(f"unknown section type '{args[2].text}'", args[2].column)
            nobits = kind == "nobits"
        self._switch(section_name, flags, nobits)

    @_directive(".globl", ".global")
    def _global(self, name, args):
        if not args:
            raise _Error(f"{name} needs a symbol name")
        for arg in args:
            if not _IDENTIFIER.fullmatch(arg.text):
                raise _Error(f"expected a symbol name, found '{arg.text}'", arg.column)
            self.global_names.setdefault(arg.text, _Where(self.where.source, arg.column))

    @_directive(".equ", ".set")
    def _equ(self, name, args):
        if len(args) != 2 or not _IDENTIFIER.fullmatch(args[0].text):
            raise _Error(f"write '{name} name, value'")
        self._define_equate(args[0].text, self._expression(args[1]), args[0].column)

    @_directive(*_DATA_WIDTHS)
    def _data(self, name, args):
        if not args:
            raise _Error(f"{name} needs at least one value")
        for arg in args:
            self._emit_data(arg, _DATA_WIDTHS[name], name)

    @_directive(".ascii", ".asciz", ".string")
    def _ascii(self, name, args):
        if not args:
            raise _Error(f"{name} needs a string")
        for arg in args:
            text = arg.text
            if len(text) < 2 or text[0] != '"' or text[-1] != '"':
                raise _Error(f"{name} takes strings in double quotes, found {text}", arg.column)
            data = _unescape(text[1:-1], arg.column + 1) + (b"\0" if name != ".ascii" else b"")
            if self.section.nobits and any(data):
                raise _Error(f"{self.section.name} holds only zeros; put strings in .rodata")
            self.section.data += data

    @_directive(".align", ".p2align", ".balign")
    def _align(self, name, args):
        if not 1 <= len(args) <= 3:
            raise _arity_error(name, args, "alignment[, fill[, max]]")
        amount = self._constant(args[0], f"the {name} amount")
        if name == ".balign":
            if amount < 1 or amount & (amount - 1):
                raise _Error(f".balign takes a power of two, found {amount}", args[0].column)
            alignment = amount
        else:  # RISC-V GNU as reads .align like .p2align: a power of two
            if not 0 <= amount <= 30:
                raise _Error(f"{name} {amount}: the power of two must be 0..30", args[0].column)
            alignment = 1 << amount
        fill = maximum = None
        if len(args) > 1 and args[1].text:
            fill = self._byte(args[1], "the fill byte")
        if len(args) > 2 and args[2].text:
            maximum = self._constant(args[2], "the maximum to skip")
        section = self.section
        section.align = max(section.align, alignment)
        padding = -len(section.data) % alignment
        if maximum is None or padding <= maximum:
            self._pad(padding, fill)

    def _pad(self, padding: int, fill: int | None) -> None:
        """Code is padded with nops (after zero bytes up to a whole word) unless a fill
        byte is given; everything else with the fill byte or zeros."""
        if fill is None and "x" in self.section.flags:
            zeros = padding % 4
            self._grow(zeros)
            self.section.data += _NOP * (padding // 4)
        else:
            self._grow(padding, fill or 0)

    def _byte(self, arg: _Arg, what: str) -> int:
        value = self._constant(arg, what)
        if not -128 <= value <= 255:
            raise _Error(f"{what} {value} does not fit in a byte", arg.column)
        return value & 0xFF

    @_directive(".zero", ".space", ".skip")
    def _space(self, name, args):
        if not 1 <= len(args) <= (1 if name == ".zero" else 2):
            raise _arity_error(name, args, "size" if name == ".zero" else "size[, fill]")
        size = self._constant(args[0], f"the {name} size")
        if size < 0:
            raise _Error(f"{name} size {size} is negative", args[0].column)
        self._grow(size, self._byte(args[1], "the fill byte") if len(args) > 1 else 0)

    @_directive(".org")
    def _org(self, name, args):
        if not 1 <= len(args) <= 2:
            raise _arity_error(name, args, "offset[, fill]")
        try:
            target = self._evaluate(self._expression(args[0]), self._here())
        except _NotYet:
            target = None
        if target is None or target.section not in (None, self.section):
            raise _Error(
                ".org needs an offset in this section known here (a number, or a label "
                "above in this section plus a number)",
                args[0].column,
            )
        current = len(self.section.data)
        if target.number < current:
            raise _Error(
                f".org {target.number:#x} would move backwards from offset {current:#x}",
                args[0].column,
            )
        if target.number > MAX_SECTION_SIZE:
            raise _Error(
                f".org {target.number:#x} is beyond the {MAX_SECTION_SIZE >> 20} MiB a "
                "section may hold: .org takes an offset from the start of the section, "
                "not an address",
                args[0].column,
            )
        fill = self._byte(args[1], "the fill byte") if len(args) > 1 else 0
        self._grow(target.number - current, fill)

    @_directive(".option")
    def _option(self, name, args):
        option = args[0].text.lower() if args else ""
        if option in _IGNORED_OPTIONS and len(args) == 1:
            return
        if option == "rvc":
            raise _Error(
                "'.option rvc' asks for compressed instructions, but virtkit implements "
                "RV32IMA without the C extension; remove it",
                args[0].column,
            )
        if option == "pic":
            raise _Error(
                "'.option pic' (la through the GOT) is not supported: programs here are "
                "linked at fixed addresses; remove it",
                args[0].column,
            )
        known = ", ".join(_IGNORED_OPTIONS)
        raise _Error(f"unsupported .option '{option}' (accepted: {known})")


PSEUDO_INSTRUCTIONS: tuple[str, ...] = tuple(sorted(n for n in _PSEUDOS if n not in BY_NAME))
DIRECTIVES: tuple[str, ...] = tuple(sorted([*_DIRECTIVES, *_IGNORED_DIRECTIVES]))
RELOCATION_OPERATORS: tuple[str, ...] = tuple(f"%{r}" for r in _RELOCATIONS)


def assemble(source: str, filename: str = "<input>", base: int = DEFAULT_BASE) -> Program:
    """Assemble ``source`` with .text at ``base``; raise AssemblerError listing every error."""
    if not (isinstance(base, int) and 0 <= base < 1 << 32 and base % 4 == 0):
        raise ValueError(f"base must be a 4-byte aligned 32-bit address, not {base!r}")
    return _Assembler(filename, base).assemble(source)


def assemble_file(path: str | Path, base: int = DEFAULT_BASE) -> Program:
    """Assemble the file at ``path``; diagnostics name it."""
    path = Path(path)
    return assemble(path.read_text(encoding="utf-8"), str(path), base)
