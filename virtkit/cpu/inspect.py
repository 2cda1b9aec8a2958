"""What a debugger shows of a hart, as plain data: registers, CSRs, code around the pc.

The widgets of virtkit.ui display these rows and nothing else, so a test, a grader
or a text-only lesson can ask the same questions without a widget:

    register_rows(hart, previous)      # ABI names, values, which ones changed
    csr_rows(hart)                     # CSRs with their named fields decoded
    code_around_pc(hart, program)      # disassembly with source lines and breakpoints
"""

from __future__ import annotations

from dataclasses import dataclass

from virtkit.cpu import sv32
from virtkit.isa import csrs
from virtkit.isa.causes import cause_name
from virtkit.isa.disasm import disassemble
from virtkit.isa.program import Program, SourceLine
from virtkit.isa.registers import ABI_NAMES

# The CSRs a lesson on M, S and U modes looks at, in the order the spec introduces them.
DEFAULT_CSRS = (
    "mstatus",
    "mtvec",
    "mepc",
    "mcause",
    "mtval",
    "mie",
    "mip",
    "medeleg",
    "mideleg",
    "sstatus",
    "stvec",
    "sepc",
    "scause",
    "stval",
    "satp",
)
# The CSRs of the hypervisor extension a lesson on hardware virtualization looks at
# (privileged spec 20211203, 8.2 and 8.4).
HYPERVISOR_CSRS = (
    "hstatus",
    "hedeleg",
    "hideleg",
    "hvip",
    "hip",
    "hie",
    "htval",
    "htinst",
    "hgatp",
    "vsstatus",
    "vstvec",
    "vsepc",
    "vscause",
    "vstval",
    "vsatp",
    "mstatush",
    "mtval2",
    "mtinst",
)
TVEC_MODES = {0: "Direct", 1: "Vectored"}
CAUSE_CSRS = ("mcause", "scause", "vscause")


@dataclass(frozen=True)
class RegisterRow:
    number: int
    name: str  # the ABI name
    value: int
    changed: bool  # differs from the ``previous`` snapshot


def register_rows(hart, previous: dict[str, int] | None = None) -> list[RegisterRow]:
    """The 32 integer registers; ``previous`` is an earlier ``hart.x.as_dict()``."""
    values = hart.x.as_dict()
    return [
        RegisterRow(n, name, values[name], previous is not None and previous[name] != values[name])
        for n, name in enumerate(ABI_NAMES)
    ]


@dataclass(frozen=True)
class CsrRow:
    name: str
    value: int
    fields: dict[str, int]  # named fields, only the non-zero ones
    note: str  # what the value means, where a name helps (a cause, a trap vector mode)


def csr_note(name: str, value: int) -> str:
    if name in CAUSE_CSRS:
        return cause_name(value) if value else ""
    if name in ("mtvec", "stvec", "vstvec"):
        return f"{TVEC_MODES.get(value & 3, 'reserved')}, base {value & ~3:#010x}"
    if name in ("satp", "vsatp"):
        if value >> 31:
            where = "guest physical " if name == "vsatp" else ""
            return f"Sv32, root table at {where}{(value & 0x3FFFFF) << 12:#010x}"
        return "Bare (no translation)"
    if name == "hgatp":
        if value >> 31:
            vmid = (value >> 22) & 0x7F
            return f"Sv32x4, 16 KiB root table at {(value & 0x3FFFFC) << 12:#010x}, VMID {vmid}"
        return "Bare (guest physical = supervisor physical)"
    if name in ("htval", "mtval2") and value:
        return f"guest physical address {value << 2:#x}"
    if name in ("hstatus", "mstatush"):
        previous = "SPV" if name == "hstatus" else "MPV"
        fields = csrs.BY_NAME[name].decode(value)
        text = f"last trap came from {'V=1' if fields[previous] else 'V=0'}"
        if fields["GVA"]:
            text += ", tval was a guest virtual address"
        return text
    if name in ("mstatus", "sstatus") and "MPP" in csrs.BY_NAME[name].decode(value):
        mpp = csrs.BY_NAME[name].field("MPP").get(value)
        return f"MPP = {csrs.PRIVILEGE_NAMES[mpp]}"
    return ""


def csr_rows(hart, names: tuple[str, ...] = DEFAULT_CSRS) -> list[CsrRow]:
    rows = []
    for name in names:
        value = hart.csr[name]
        fields = {k: v for k, v in hart.csr.fields(name).items() if v}
        rows.append(CsrRow(name, value, fields, csr_note(name, value)))
    return rows


@dataclass(frozen=True)
class CodeLine:
    address: int
    word: int | None  # None when the address cannot be read (unmapped, outside RAM)
    text: str
    label: str | None
    source: SourceLine | None
    is_pc: bool
    breakpoint: bool


def fetch_word(hart, va: int) -> int | None:
    """The instruction word the hart would fetch at ``va`` now, or None if it faults."""
    result = sv32.walk(hart, va, "fetch")
    if not result.ok:
        return None
    try:
        return hart.read_word(result.pa)
    except ValueError:
        return None


def code_around_pc(
    hart, program: Program | None = None, before: int = 4, after: int = 8
) -> list[CodeLine]:
    """Disassembly from ``before`` instructions before the pc to ``after`` after it."""
    symbols = {address: name for name, address in program.symbols.items()} if program else {}
    source_map = program.source_map if program else {}
    pc = hart.pc
    breakpoints = hart.breakpoints
    lines = []
    for address in range(pc - 4 * before, pc + 4 * (after + 1), 4):
        address &= 0xFFFFFFFF
        word = fetch_word(hart, address)
        text = "(not mapped)" if word is None else disassemble(word, address, symbols=symbols)
        lines.append(
            CodeLine(
                address,
                word,
                text,
                symbols.get(address),
                source_map.get(address),
                address == pc,
                address in breakpoints,
            )
        )
    return lines


def toggle_breakpoint(hart, address: int) -> bool:
    """Set a breakpoint at ``address``, or clear it; returns whether it is now set."""
    points = set(hart.breakpoints)
    points.symmetric_difference_update({address})
    hart.breakpoints = points
    return address in points
