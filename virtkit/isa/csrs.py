"""The CSR table: every control and status register of RV32 M, S, H and VS levels.

For each CSR: name, number, and its named fields with bit positions. The lowest
privilege that may access a CSR and whether it is read-only follow from the number
itself (privileged spec 20211203, 2.1 "CSR Address Mapping Conventions": bits 9:8 are
the lowest privilege level, bits 11:10 = 0b11 mark read-only CSRs).

Field layouts: privileged spec 20211203, 3.1 (machine level: misa 3.1.1, mstatus and
mstatush 3.1.6, mtvec 3.1.7, mip/mie 3.1.9, counters 3.1.10-3.1.12, mcause 3.1.15,
menvcfg 3.1.18), 3.7 (PMP), 4.1 (supervisor level: sstatus 4.1.1, sip/sie 4.1.3,
satp 4.1.11), 8.2 (hypervisor and virtual supervisor CSRs: hstatus 8.2.1, hip/hie/hvip
8.2.3, hgatp 8.2.10, vsstatus 8.2.11).
"""

from __future__ import annotations

from dataclasses import dataclass

PRIV_U = 0
PRIV_S = 1
PRIV_H = 2  # the CSR number space of hypervisor and VS CSRs
PRIV_M = 3
PRIVILEGE_NAMES = {PRIV_U: "U", PRIV_S: "S", PRIV_H: "H", PRIV_M: "M"}


@dataclass(frozen=True)
class CsrField:
    """A named field of a CSR: bits ``lsb`` .. ``lsb + width - 1``."""

    name: str
    lsb: int
    width: int = 1

    @property
    def mask(self) -> int:
        return ((1 << self.width) - 1) << self.lsb

    def get(self, value: int) -> int:
        return (value >> self.lsb) & ((1 << self.width) - 1)


@dataclass(frozen=True)
class Csr:
    name: str
    number: int
    fields: tuple[CsrField, ...] = ()
    description: str = ""

    @property
    def privilege(self) -> int:
        """The lowest privilege level that may access this CSR (2.1)."""
        return (self.number >> 8) & 0b11

    @property
    def read_only(self) -> bool:
        return (self.number >> 10) & 0b11 == 0b11

    def field(self, name: str) -> CsrField:
        for f in self.fields:
            if f.name == name:
                return f
        known = ", ".join(f.name for f in self.fields) or "none"
        raise KeyError(f"{self.name} has no field {name!r} (fields: {known})")

    def decode(self, value: int) -> dict[str, int]:
        """Field name -> field value of ``value``."""
        return {f.name: f.get(value) for f in self.fields}


def _f(spec: str) -> tuple[CsrField, ...]:
    """Fields written as 'NAME@bit' or 'NAME@high:low', separated by spaces."""
    fields = []
    for item in spec.split():
        name, bits = item.split("@")
        if ":" in bits:
            high, low = (int(b) for b in bits.split(":"))
            fields.append(CsrField(name, low, high - low + 1))
        else:
            fields.append(CsrField(name, int(bits)))
    return tuple(fields)


# Shared layouts.
_MSTATUS = _f(
    "SIE@1 MIE@3 SPIE@5 UBE@6 MPIE@7 SPP@8 VS@10:9 MPP@12:11 FS@14:13 XS@16:15 "
    "MPRV@17 SUM@18 MXR@19 TVM@20 TW@21 TSR@22 SD@31"
)
_SSTATUS = _f("SIE@1 SPIE@5 UBE@6 SPP@8 VS@10:9 FS@14:13 XS@16:15 SUM@18 MXR@19 SD@31")
_MIP = _f("SSIP@1 VSSIP@2 MSIP@3 STIP@5 VSTIP@6 MTIP@7 SEIP@9 VSEIP@10 MEIP@11 SGEIP@12")
_SIP = _f("SSIP@1 STIP@5 SEIP@9")
_HIP = _f("VSSIP@2 VSTIP@6 VSEIP@10 SGEIP@12")
_HVIP = _f("VSSIP@2 VSTIP@6 VSEIP@10")
_TVEC = _f("MODE@1:0 BASE@31:2")
_CAUSE = _f("CODE@30:0 INTERRUPT@31")
_ATP = _f("PPN@21:0 ASID@30:22 MODE@31")
_HGATP = _f("PPN@21:0 VMID@28:22 MODE@31")
_COUNTEREN = _f("CY@0 TM@1 IR@2 " + " ".join(f"HPM{n}@{n}" for n in range(3, 32)))
_HSTATUS = _f("VSBE@5 GVA@6 SPV@7 SPVP@8 HU@9 VGEIN@17:12 VTVM@20 VTW@21 VTSR@22")
_PMPCFG = tuple(
    CsrField(f"{name}", lsb, width)
    for name, lsb, width in (("R", 0, 1), ("W", 1, 1), ("X", 2, 1), ("A", 3, 2), ("L", 7, 1))
)


def _pmpcfg_fields(index: int) -> tuple[CsrField, ...]:
    """pmpcfgN holds the 8-bit configurations of PMP entries 4N..4N+3 (3.7.1)."""
    fields = []
    for byte in range(4):
        entry = index * 4 + byte
        for f in _PMPCFG:
            fields.append(CsrField(f"pmp{entry}{f.name}", byte * 8 + f.lsb, f.width))
    return tuple(fields)


def _build() -> tuple[Csr, ...]:
    rows: list[Csr] = []

    def add(name, number, fields=(), description=""):
        rows.append(Csr(name, number, fields, description))

    # Unprivileged counters (Zicntr), and their upper halves on RV32.
    add("cycle", 0xC00, description="cycle counter (read-only shadow of mcycle)")
    add("time", 0xC01, description="real-time counter (read-only shadow of mtime)")
    add("instret", 0xC02, description="instructions retired (shadow of minstret)")
    for n in range(3, 32):
        add(f"hpmcounter{n}", 0xC00 + n)
    add("cycleh", 0xC80)
    add("timeh", 0xC81)
    add("instreth", 0xC82)
    for n in range(3, 32):
        add(f"hpmcounter{n}h", 0xC80 + n)

    # Supervisor level (4.1).
    add("sstatus", 0x100, _SSTATUS, "supervisor status (a view of mstatus)")
    add("sie", 0x104, _SIP, "supervisor interrupt enable (a view of mie)")
    add("stvec", 0x105, _TVEC, "supervisor trap vector base address")
    add("scounteren", 0x106, _COUNTEREN, "supervisor counter enable")
    add("senvcfg", 0x10A, _f("FIOM@0"), "supervisor environment configuration")
    add("sscratch", 0x140, description="scratch register for supervisor trap handlers")
    add("sepc", 0x141, description="supervisor exception program counter")
    add("scause", 0x142, _CAUSE, "supervisor trap cause")
    add("stval", 0x143, description="supervisor bad address or instruction")
    add("sip", 0x144, _SIP, "supervisor interrupt pending (a view of mip)")
    add("satp", 0x180, _ATP, "supervisor address translation and protection")

    # Virtual supervisor level (8.2.11-8.2.18): with V=1, the S-level numbers reach these.
    add("vsstatus", 0x200, _SSTATUS, "virtual supervisor status")
    add("vsie", 0x204, _SIP, "virtual supervisor interrupt enable")
    add("vstvec", 0x205, _TVEC, "virtual supervisor trap vector base address")
    add("vsscratch", 0x240, description="virtual supervisor scratch register")
    add("vsepc", 0x241, description="virtual supervisor exception program counter")
    add("vscause", 0x242, _CAUSE, "virtual supervisor trap cause")
    add("vstval", 0x243, description="virtual supervisor bad address or instruction")
    add("vsip", 0x244, _SIP, "virtual supervisor interrupt pending")
    add("vsatp", 0x280, _ATP, "virtual supervisor address translation and protection")

    # Hypervisor level (8.2.1-8.2.10).
    add("hstatus", 0x600, _HSTATUS, "hypervisor status")
    add("hedeleg", 0x602, description="hypervisor exception delegation")
    add("hideleg", 0x603, _HVIP, "hypervisor interrupt delegation")
    add("hie", 0x604, _HIP, "hypervisor interrupt enable")
    add("htimedelta", 0x605, description="guest time = time + htimedelta")
    add("hcounteren", 0x606, _COUNTEREN, "hypervisor counter enable")
    add("hgeie", 0x607, description="hypervisor guest external interrupt enable")
    add("henvcfg", 0x60A, _f("FIOM@0"), "hypervisor environment configuration")
    add("htimedeltah", 0x615, description="upper half of htimedelta")
    add("henvcfgh", 0x61A, description="upper half of henvcfg")
    add("htval", 0x643, description="hypervisor trap value (guest physical address >> 2)")
    add("hip", 0x644, _HIP, "hypervisor interrupt pending")
    add("hvip", 0x645, _HVIP, "hypervisor virtual interrupt pending")
    add("htinst", 0x64A, description="hypervisor trap instruction (transformed)")
    add("hgatp", 0x680, _HGATP, "hypervisor guest address translation and protection")
    add("hgeip", 0xE12, description="hypervisor guest external interrupt pending")

    # Machine level (3.1).
    add("mvendorid", 0xF11, description="vendor ID (0: not implemented)")
    add("marchid", 0xF12, description="architecture ID")
    add("mimpid", 0xF13, description="implementation ID")
    add("mhartid", 0xF14, description="hardware thread ID")
    add("mconfigptr", 0xF15, description="pointer to configuration data structure")
    add("mstatus", 0x300, _MSTATUS, "machine status")
    add("misa", 0x301, _f("EXTENSIONS@25:0 MXL@31:30"), "ISA and extensions")
    add("medeleg", 0x302, description="machine exception delegation")
    add("mideleg", 0x303, _MIP, "machine interrupt delegation")
    add("mie", 0x304, _MIP, "machine interrupt enable")
    add("mtvec", 0x305, _TVEC, "machine trap vector base address")
    add("mcounteren", 0x306, _COUNTEREN, "machine counter enable")
    add("menvcfg", 0x30A, _f("FIOM@0"), "machine environment configuration")
    add("mstatush", 0x310, _f("SBE@4 MBE@5 GVA@6 MPV@7"), "upper half of mstatus")
    add("menvcfgh", 0x31A, description="upper half of menvcfg")
    add("mcountinhibit", 0x320, _f("CY@0 IR@2"), "machine counter inhibit")
    for n in range(3, 32):
        add(f"mhpmevent{n}", 0x320 + n)
    add("mscratch", 0x340, description="scratch register for machine trap handlers")
    add("mepc", 0x341, description="machine exception program counter")
    add("mcause", 0x342, _CAUSE, "machine trap cause")
    add("mtval", 0x343, description="machine bad address or instruction")
    add("mip", 0x344, _MIP, "machine interrupt pending")
    add("mtinst", 0x34A, description="machine trap instruction (transformed)")
    add("mtval2", 0x34B, description="machine second trap value (guest physical >> 2)")
    for n in range(4):
        add(f"pmpcfg{n}", 0x3A0 + n, _pmpcfg_fields(n), "physical memory protection config")
    for n in range(16):
        add(f"pmpaddr{n}", 0x3B0 + n, description="physical memory protection address")
    add("mcycle", 0xB00, description="machine cycle counter")
    add("minstret", 0xB02, description="machine instructions-retired counter")
    for n in range(3, 32):
        add(f"mhpmcounter{n}", 0xB00 + n)
    add("mcycleh", 0xB80)
    add("minstreth", 0xB82)
    for n in range(3, 32):
        add(f"mhpmcounter{n}h", 0xB80 + n)

    # Debug triggers (debug spec 0.13.2, 5.2): present so software can find that
    # there are no triggers (tdata1.type reads 0).
    add("tselect", 0x7A0, description="debug trigger select")
    add("tdata1", 0x7A1, description="debug trigger data 1")
    add("tdata2", 0x7A2, description="debug trigger data 2")
    add("tdata3", 0x7A3, description="debug trigger data 3")
    return tuple(rows)


CSRS: tuple[Csr, ...] = _build()
BY_NAME: dict[str, Csr] = {c.name: c for c in CSRS}
BY_NUMBER: dict[int, Csr] = {c.number: c for c in CSRS}
assert len(BY_NUMBER) == len(CSRS), "two CSRs share a number"


def number(name: str) -> int:
    """CSR number by name, e.g. ``number("mstatus") == 0x300``."""
    try:
        return BY_NAME[name].number
    except KeyError:
        raise KeyError(f"unknown CSR {name!r}") from None


def mask(csr_name: str, *field_names: str) -> int:
    """The bit mask of the named fields of a CSR, e.g. ``mask("mstatus", "MIE")``."""
    csr = BY_NAME[csr_name]
    result = 0
    for name in field_names:
        result |= csr.field(name).mask
    return result


def shift(csr_name: str, field_name: str) -> int:
    """The position of a field's least significant bit."""
    return BY_NAME[csr_name].field(field_name).lsb
