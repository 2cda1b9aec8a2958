"""Micro-programs for the hypervisor extension (privileged spec 20211203, chapter 8,
"Hypervisor Extension, Version 1.0").

The layout of the tests follows the chapter: the modes and CSRs (8.1, 8.2), the
hypervisor instructions (8.3), two-stage translation and guest-page faults (8.5),
the virtual-instruction exception table row by row (8.6.1), trap entry and return
across V (8.6.2-8.6.4), VS-level interrupts, and the exits a Python hypervisor that
owns HS-mode sees. The last test is such a hypervisor: it boots a bare-metal VS-mode
program on a G-stage table that starts empty.
"""

from __future__ import annotations

import pytest
from support import RAM_BASE, make_hart

from virtkit.cpu import Hart, sv32
from virtkit.cpu import exits as E
from virtkit.isa import causes as C
from virtkit.isa import csrs
from virtkit.isa.asm import assemble


def m(csr: str, *fields: str) -> int:
    return csrs.mask(csr, *fields)


def word(text: str) -> int:
    return int.from_bytes(assemble(text).to_binary()[:4], "little")


V, R, W, X, U, G, A, D = (1 << i for i in range(8))
RWX = R | W | X
# Guest physical memory as the G-stage maps it; every G-stage leaf must have U (8.5.1).
G_LEAF = V | RWX | U | A | D
VS_LEAF = V | RWX | A | D  # a VS-stage supervisor page

RAM_SIZE = 4 << 20
CODE = RAM_BASE  # code: guest virtual = guest physical = supervisor physical
VS_ROOT = 0x8001_0000  # VS-stage root, at the same guest and supervisor physical address
VS_TABLES = 0x8001_1000  # further VS-stage tables (identity-mapped in the G-stage too)
G_ROOT = 0x8010_0000  # the 16 KiB Sv32x4 root, 16 KiB aligned
G_TABLES = 0x8011_0000  # further G-stage tables
DATA_VA = 0x4000_0000  # guest virtual address of the data page
DATA_GPA = 0x9000_0000  # its guest physical address: not RAM, so only the G-stage finds it
DATA_SPA = 0x8020_0000  # and where it really is


def pte(pa: int, flags: int) -> int:
    return ((pa >> 12) << 10) | flags


def open_pmp(hart: Hart) -> None:
    hart.csr["pmpaddr0"] = 0xFFFFFFFF
    hart.csr["pmpcfg0"] = 0x1F


class Tables:
    """Sv32x4 G-stage and Sv32 VS-stage tables written from Python (8.5.1, 4.3.1)."""

    def __init__(self, hart: Hart, g_root: int = G_ROOT, vmid: int = 0):
        self.hart = hart
        self.g_root = g_root
        self.vmid = vmid
        self._g_next = G_TABLES if g_root == G_ROOT else g_root + 0x4000
        self._vs_next = VS_TABLES
        for offset in range(0, 0x4000, 4):
            hart.write_word(g_root + offset, 0)

    @property
    def hgatp(self) -> int:
        return (1 << 31) | (self.vmid << 22) | (self.g_root >> 12)

    def _g_table(self) -> int:
        table, self._g_next = self._g_next, self._g_next + 0x1000
        self.hart.write_memory(table, bytes(4096))
        return table

    def g_leaf_address(self, gpa: int) -> int:
        """Where the level-0 G-stage PTE of ``gpa`` lives (making its table if needed)."""
        root_entry = self.g_root + 4 * ((gpa >> 22) & 0xFFF)
        entry = self.hart.read_word(root_entry)
        if not entry & V:
            entry = pte(self._g_table(), V)
            self.hart.write_word(root_entry, entry)
        return ((entry >> 10) << 12) + 4 * ((gpa >> 12) & 0x3FF)

    def g_map(self, gpa: int, spa: int, flags: int = G_LEAF) -> None:
        self.hart.write_word(self.g_leaf_address(gpa), pte(spa, flags))

    def g_identity(self, gpa: int, pages: int = 1, flags: int = G_LEAF) -> None:
        for page in range(pages):
            self.g_map(gpa + 0x1000 * page, gpa + 0x1000 * page, flags)

    def vs_leaf_address(self, va: int) -> int:
        """The level-0 VS-stage PTE of ``va`` (its guest physical = supervisor physical
        address: VS tables are identity-mapped by the G-stage)."""
        root_entry = VS_ROOT + 4 * (va >> 22)
        entry = self.hart.read_word(root_entry)
        if not entry & V:
            table, self._vs_next = self._vs_next, self._vs_next + 0x1000
            self.hart.write_memory(table, bytes(4096))
            self.g_identity(table)
            entry = pte(table, V)
            self.hart.write_word(root_entry, entry)
        return ((entry >> 10) << 12) + 4 * ((va >> 12) & 0x3FF)

    def vs_map(self, va: int, gpa: int, flags: int = VS_LEAF) -> None:
        self.hart.write_word(self.vs_leaf_address(va), pte(gpa, flags))


def guest(
    source: str,
    mode: str = "VS",
    *,
    vs_paging: bool = True,
    code_user: bool | None = None,
    **options,
) -> tuple[Hart, Tables]:
    """A hart with ``source`` at CODE, running it in ``mode`` (usually with V=1).

    The G-stage maps the code and the VS tables identically and DATA_GPA to DATA_SPA;
    with ``vs_paging`` the VS-stage maps the code identically (as user pages for VU,
    unless ``code_user`` says otherwise) and DATA_VA to DATA_GPA. Every trap exits to
    Python unless ``trap_exits`` says otherwise.
    """
    if code_user is None:
        code_user = mode == "VU"
    options.setdefault("trap_exits", "all")
    hart = make_hart(source, ram_size=RAM_SIZE, **options)
    open_pmp(hart)
    tables = Tables(hart)
    tables.g_identity(CODE, 2)
    tables.g_identity(VS_ROOT)
    tables.g_map(DATA_GPA, DATA_SPA)
    hart.write_memory(VS_ROOT, bytes(4096))
    if vs_paging:
        code_flags = VS_LEAF | (U if code_user else 0)
        tables.vs_map(CODE, CODE, code_flags)
        tables.vs_map(CODE + 0x1000, CODE + 0x1000, code_flags)
        tables.vs_map(DATA_VA, DATA_GPA, VS_LEAF | U if mode == "VU" else VS_LEAF)
        hart.csr["vsatp"] = (1 << 31) | (VS_ROOT >> 12)
    hart.csr["hgatp"] = tables.hgatp
    hart.write_word(DATA_SPA, 0x1234_5678)
    hart.mode = mode
    return hart, tables


# -- Modes and CSRs (8.1, 8.2, 8.4) ----------------------------------------------------------


def test_misa_says_h_and_the_modes_have_their_names():
    hart = Hart(1 << 16)
    assert hart.csr["misa"] >> 7 & 1  # "H"
    for name in ("U", "S", "M", "VU", "VS"):
        hart.mode = name
        assert hart.mode == name
        assert hart.virtual == name.startswith("V")
    hart.mode = "HS"
    assert (hart.mode, hart.virtual) == ("S", False)
    with pytest.raises(ValueError, match="mode must be one of"):
        hart.mode = "VM"


def test_instructions_are_counted_by_mode_with_v():
    hart, _ = guest("nop\nnop\nebreak\n")
    hart.run(10)
    assert hart.stats["instructions_by_mode"] == {"VS": 2}
    assert [hart.retired_in(mode) for mode in ("M", "S", "U", "VS", "VU")] == [0, 0, 0, 2, 0]
    with pytest.raises(ValueError, match="mode must be one of U, VU, S, VS, M, got 'HS'"):
        hart.retired_in("HS")


def test_hypervisor_csrs_keep_legal_values_only():
    hart = Hart(1 << 16)
    hart.csr["hstatus"] = 0xFFFFFFFF
    assert hart.csr["hstatus"] == m("hstatus", "GVA", "SPV", "SPVP", "HU", "VTVM", "VTW", "VTSR")
    hart.csr["hedeleg"] = 0xFFFFFFFF
    delegable = {0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 13, 15}
    assert hart.csr["hedeleg"] == sum(1 << cause for cause in delegable)
    hart.csr["hideleg"] = 0xFFFFFFFF
    assert hart.csr["hideleg"] == m("mip", "VSSIP", "VSTIP", "VSEIP")
    hart.csr["mideleg"] = 0
    assert hart.csr["mideleg"] == m("mip", "VSSIP", "VSTIP", "VSEIP")  # read-only one
    hart.csr["medeleg"] = 0xFFFFFFFF
    for cause in (10, 20, 21, 22, 23):
        assert hart.csr["medeleg"] >> cause & 1
    assert not hart.csr["medeleg"] >> C.CAUSE_MACHINE_ECALL & 1
    hart.csr["hgatp"] = 0xFFFFFFFF
    assert hart.csr["hgatp"] == 0x9FFFFFFC  # VMIDLEN = 7, PPN[1:0] read-only zero
    hart.csr["hgeie"] = 0xFFFFFFFF
    assert hart.csr["hgeie"] == 0 and hart.csr["hgeip"] == 0  # GEILEN = 0
    hart.csr["mstatush"] = 0xFFFFFFFF
    assert hart.csr["mstatush"] == m("mstatush", "MPV", "GVA")
    hart.csr["vsstatus"] = 0xFFFFFFFF
    assert hart.csr["vsstatus"] == m("vsstatus", "SIE", "SPIE", "SPP", "SUM", "MXR")
    hart.csr["hvip"] = 0xFFFFFFFF
    assert hart.csr["hvip"] == m("hvip", "VSSIP", "VSTIP", "VSEIP")
    hart.csr["vsepc"] = 0x80000003
    assert hart.csr["vsepc"] == 0x80000000
    hart.csr["vstvec"] = 0x80000102
    assert hart.csr["vstvec"] == 0x80000100
    hart.csr["henvcfg"] = 0xFFFFFFFF
    hart.csr["henvcfgh"] = 0xFFFFFFFF
    assert hart.csr["henvcfg"] == m("henvcfg", "FIOM") and hart.csr["henvcfgh"] == 0
    for name in ("hcounteren", "htimedelta", "htimedeltah", "htval", "htinst", "mtval2"):
        hart.csr[name] = 0x1234_5678
        assert hart.csr[name] == 0x1234_5678, name


def test_interrupt_registers_alias_each_other():
    hart = Hart(1 << 16)
    vs_bits = m("mip", "VSSIP", "VSTIP", "VSEIP")
    hart.csr["hvip"] = m("hvip", "VSTIP", "VSEIP")
    assert hart.csr["mip"] & vs_bits == m("mip", "VSTIP", "VSEIP")
    assert hart.csr["hip"] == m("hip", "VSTIP", "VSEIP")
    hart.csr["mip"] = m("mip", "VSSIP", "VSTIP")  # only VSSIP is writable through mip
    assert hart.csr["hvip"] == m("hvip", "VSSIP", "VSTIP", "VSEIP")
    hart.csr["hip"] = 0
    assert hart.csr["hvip"] == m("hvip", "VSTIP", "VSEIP")  # hip.VSSIP is hvip.VSSIP
    hart.csr["hie"] = 0xFFFFFFFF
    assert hart.csr["mie"] == vs_bits and hart.csr["sie"] == 0  # sie and hie share no bit
    # vsip/vsie: the bits hideleg delegates, shifted down to SSIP/STIP/SEIP.
    assert hart.csr["vsie"] == 0 and hart.csr["vsip"] == 0
    hart.csr["hideleg"] = m("hideleg", "VSTIP", "VSSIP")
    assert hart.csr["vsie"] == m("sie", "SSIP", "STIP")
    assert hart.csr["vsip"] == m("sip", "STIP")
    hart.csr["vsip"] = m("sip", "SSIP")
    assert hart.csr["hvip"] & m("hvip", "VSSIP")
    hart.csr["vsie"] = 0
    assert hart.csr["mie"] == m("mie", "VSEIP")


VS_ALIASES = ["sstatus", "sie", "stvec", "sscratch", "sepc", "scause", "stval", "sip", "satp"]


@pytest.mark.parametrize("name", VS_ALIASES)
def test_with_v_the_supervisor_csr_numbers_reach_the_vs_csrs(name):
    hart, _ = guest(f"csrw {name}, a0\ncsrr a1, {name}\nebreak\n", vs_paging=False)
    hart.csr["hideleg"] = m("hideleg", "VSSIP", "VSTIP", "VSEIP")
    before = hart.csr[name]
    hart.x["a0"] = 0x102  # a value every one keeps some bits of (satp: still Bare)
    exit = hart.run(10)
    assert exit.reason == E.EXIT_EBREAK, str(exit)
    assert hart.csr[name] == before, f"HS-level {name} must not change"
    assert hart.csr["vs" + name[1:]] == hart.x["a1"] != 0


def test_scounteren_and_senvcfg_have_no_vs_copy():
    hart, _ = guest("csrw scounteren, a0\ncsrw senvcfg, a1\nebreak\n")
    hart.x["a0"], hart.x["a1"] = 5, 1
    assert hart.run(10).reason == E.EXIT_EBREAK
    assert hart.csr["scounteren"] == 5 and hart.csr["senvcfg"] == 1


def test_time_read_with_v_adds_htimedelta():
    hart, _ = guest("csrr a0, time\ncsrr a1, timeh\nebreak\n", ticks_per_mtime=1)
    for name in ("mcounteren", "hcounteren"):
        hart.csr[name] = 0xFFFFFFFF
    hart.csr["htimedelta"] = 0xFFFFFFFF  # -1 + 2^32: carries into timeh
    hart.csr["htimedeltah"] = 0x10
    assert hart.run(10).reason == E.EXIT_EBREAK
    assert hart.x["a0"] == (0 + 0xFFFFFFFF) & 0xFFFFFFFF  # mtime was 0 at the first read
    assert hart.x["a1"] == 0x11  # 0x10 plus the carry of mtime = 1 + 0xFFFFFFFF
    hart.csr["htimedeltah"] = 0xFFFFFFFF  # a negative delta wraps around
    hart.csr["htimedelta"] = 0xFFFFFFFF
    hart.pc, hart.mode = CODE, "S"
    assert hart.run(10).reason == E.EXIT_EBREAK  # HS-mode sees mtime itself
    assert hart.x["a1"] == 0


# -- The virtual-instruction exception, row by row (8.6.1) -------------------------------


def attempt(text: str, mode: str, **csr_values) -> E.Exit:
    """Run ``text`` once in ``mode``; every trap exits, so the exit is its cause."""
    hart, _ = guest(f"{text}\nebreak\n", mode, vs_paging=False)
    for name, value in csr_values.items():
        hart.csr[name] = value
    return hart.run(1)


def verdict(exit: E.Exit) -> str:
    if exit.reason == E.EXIT_TRAP and exit.cause == C.CAUSE_VIRTUAL_INSTRUCTION:
        return "virtual"
    if exit.reason == E.EXIT_TRAP and exit.cause == C.CAUSE_ILLEGAL_INSTRUCTION:
        return "illegal"
    if exit.reason in (E.EXIT_BUDGET, E.EXIT_EBREAK):
        return "ok"
    return str(exit)


ALL = 0xFFFFFFFF


@pytest.mark.parametrize("counter", ["cycle", "time", "instret", "hpmcounter3"])
@pytest.mark.parametrize("half", ["", "h"])
@pytest.mark.parametrize(
    "mode, mcounteren, hcounteren, scounteren, expected",
    [
        # Rows 1-2: in VS-mode, a counter hcounteren disables but mcounteren enables.
        ("VS", ALL, 0, ALL, "virtual"),
        ("VS", 0, ALL, ALL, "illegal"),
        ("VS", ALL, ALL, 0, "ok"),
        # Rows 3-4: in VU-mode, hcounteren or scounteren disables it, mcounteren enables.
        ("VU", ALL, 0, ALL, "virtual"),
        ("VU", ALL, ALL, 0, "virtual"),
        ("VU", 0, ALL, ALL, "illegal"),
        ("VU", ALL, ALL, ALL, "ok"),
    ],
)
def test_counters(counter, half, mode, mcounteren, hcounteren, scounteren, expected):
    if counter == "hpmcounter3" and half:
        counter, half = "hpmcounter3h", ""
    exit = attempt(
        f"csrr a0, {counter}{half}",
        mode,
        mcounteren=mcounteren,
        hcounteren=hcounteren,
        scounteren=scounteren,
    )
    assert verdict(exit) == expected
    if expected != "ok":
        assert exit.tval == word(f"csrr a0, {counter}{half}")  # as for illegal (8.6.1)


HYPERVISOR_INSTRUCTIONS = [
    "hlv.b a0, (a1)",
    "hlv.bu a0, (a1)",
    "hlv.h a0, (a1)",
    "hlv.hu a0, (a1)",
    "hlvx.hu a0, (a1)",
    "hlv.w a0, (a1)",
    "hlvx.wu a0, (a1)",
    "hsv.b a0, (a1)",
    "hsv.h a0, (a1)",
    "hsv.w a0, (a1)",
    "hfence.vvma",
    "hfence.vvma a0, a1",
    "hfence.gvma",
    "hfence.gvma a0, a1",
]


@pytest.mark.parametrize("mode", ["VS", "VU"])
@pytest.mark.parametrize("text", HYPERVISOR_INSTRUCTIONS)
def test_row_5_hypervisor_instructions_from_vs_and_vu(text, mode):
    assert verdict(attempt(text, mode)) == "virtual"


@pytest.mark.parametrize("text", HYPERVISOR_INSTRUCTIONS)
def test_hypervisor_instructions_from_u_mode(text):
    expected = "illegal"
    if text.startswith(("hlv", "hsv")):
        # HU lets U-mode use the virtual-machine loads and stores (8.2.1), never the fences.
        hart, _ = guest(f"{text}\nebreak\n", "U", vs_paging=False)
        hart.csr["hstatus"] = m("hstatus", "HU")
        hart.x["a1"] = DATA_GPA
        assert verdict(hart.run(1)) == "ok"
    assert verdict(attempt(text, "U")) == expected


H_CSRS = [c.name for c in csrs.CSRS if c.privilege == csrs.PRIV_H]


@pytest.mark.parametrize("mode", ["VS", "VU"])
@pytest.mark.parametrize("name", H_CSRS)
def test_rows_6_7_hypervisor_and_vs_csrs_from_vs_and_vu(name, mode):
    number = csrs.number(name)
    assert verdict(attempt(f"csrr a0, {name}", mode)) == "virtual"
    # Writes: what HS-mode may write is a virtual instruction, a read-only CSR illegal.
    expected = "illegal" if number >> 10 == 3 else "virtual"
    assert verdict(attempt(f"csrw {name}, a0", mode)) == expected


@pytest.mark.parametrize("text", ["wfi", "sret", "sfence.vma", "sfence.vma a0, a1"])
def test_row_8_wfi_and_supervisor_instructions_from_vu(text):
    assert verdict(attempt(text, "VU")) == "virtual"
    if text == "wfi":  # with mstatus.TW = 1, WFI is not HS-qualified: illegal
        assert verdict(attempt(text, "VU", mstatus=m("mstatus", "TW"))) == "illegal"


S_CSRS = [c.name for c in csrs.CSRS if c.privilege == csrs.PRIV_S]


@pytest.mark.parametrize("name", S_CSRS)
def test_rows_9_10_supervisor_csrs_from_vu(name):
    # RV32 has no high-half supervisor CSR, so row 10 has no case here.
    assert verdict(attempt(f"csrr a0, {name}", "VU")) == "virtual"
    assert verdict(attempt(f"csrw {name}, zero", "VU")) == "virtual"


def test_row_11_wfi_in_vs_with_vtw():
    vtw = m("hstatus", "VTW")
    assert verdict(attempt("wfi", "VS", hstatus=vtw)) == "virtual"
    assert verdict(attempt("wfi", "VS", hstatus=vtw, mstatus=m("mstatus", "TW"))) == "illegal"
    hart, _ = guest("wfi\nebreak\n", vs_paging=False)
    assert hart.run(1).reason == E.EXIT_WFI  # without VTW, WFI waits as usual


def test_row_12_sret_in_vs_with_vtsr():
    assert verdict(attempt("sret", "VS", hstatus=m("hstatus", "VTSR"))) == "virtual"
    # mstatus.TSR binds HS-mode only (8.4.1).
    assert verdict(attempt("sret", "VS", mstatus=m("mstatus", "TSR"))) == "ok"


@pytest.mark.parametrize("text", ["sfence.vma", "csrr a0, satp", "csrw satp, zero"])
def test_row_13_sfence_and_satp_in_vs_with_vtvm(text):
    assert verdict(attempt(text, "VS", hstatus=m("hstatus", "VTVM"))) == "virtual"
    assert verdict(attempt(text, "VS", mstatus=m("mstatus", "TVM"))) == "ok"


@pytest.mark.parametrize("mode", ["VS", "VU"])
@pytest.mark.parametrize(
    "text", ["mret", "csrr a0, mstatus", "csrr a0, mtval2", "csrw mscratch, a0", "csrr a0, 0x5c0"]
)
def test_what_hs_mode_cannot_do_either_stays_illegal(text, mode):
    assert verdict(attempt(text, mode)) == "illegal"


def test_hs_mode_fences_and_hgatp_under_tvm():
    tvm = m("mstatus", "TVM")
    assert verdict(attempt("hfence.gvma", "S", mstatus=tvm)) == "illegal"
    assert verdict(attempt("csrr a0, hgatp", "S", mstatus=tvm)) == "illegal"
    assert verdict(attempt("hfence.vvma", "S", mstatus=tvm)) == "ok"
    assert verdict(attempt("csrr a0, vsatp", "S", mstatus=tvm)) == "ok"
    assert verdict(attempt("hfence.gvma", "M", mstatus=tvm)) == "ok"


# -- Traps across V (8.6.2-8.6.4) --------------------------------------------------------


@pytest.mark.parametrize(
    "mode, cause",
    [
        ("U", C.CAUSE_USER_ECALL),
        ("S", C.CAUSE_SUPERVISOR_ECALL),
        ("VU", C.CAUSE_USER_ECALL),
        ("VS", C.CAUSE_VIRTUAL_SUPERVISOR_ECALL),
        ("M", C.CAUSE_MACHINE_ECALL),
    ],
)
def test_ecall_cause_names_the_mode(mode, cause):
    exit = attempt("ecall", mode)
    assert exit.reason == E.EXIT_TRAP and exit.cause == cause and exit.tval == 0


HS_HANDLER = 0x8000_0800
VS_HANDLER = 0x8000_0900
M_HANDLER = 0x8000_0A00


def trapping_guest(source: str, mode: str = "VS") -> Hart:
    hart, _ = guest(source, mode, trap_exits="none")
    hart.csr["stvec"] = HS_HANDLER
    hart.csr["vstvec"] = VS_HANDLER
    hart.csr["mtvec"] = M_HANDLER
    return hart


@pytest.mark.parametrize("mode, spp", [("VS", 1), ("VU", 0)])
def test_trap_from_v1_into_hs_records_spv_spvp_and_clears_v(mode, spp):
    hart = trapping_guest("ecall\n", mode)
    hart.csr["medeleg"] = 1 << C.CAUSE_VIRTUAL_SUPERVISOR_ECALL | 1 << C.CAUSE_USER_ECALL
    hart.csr["mstatus"] = m("mstatus", "SIE")
    hart.csr["hstatus"] = m("hstatus", "SPVP") if spp == 0 else 0
    hart.run(1)
    assert (hart.mode, hart.pc) == ("S", HS_HANDLER)
    assert hart.csr["sepc"] == CODE and hart.csr["scause"] in (8, 10)
    hstatus = csrs.BY_NAME["hstatus"].decode(hart.csr["hstatus"])
    assert (hstatus["SPV"], hstatus["SPVP"], hstatus["GVA"]) == (1, spp, 0)
    sstatus = csrs.BY_NAME["sstatus"].decode(hart.csr["sstatus"])
    assert (sstatus["SPP"], sstatus["SPIE"], sstatus["SIE"]) == (spp, 1, 0)
    assert hart.csr["vsepc"] == 0 and hart.csr["vscause"] == 0


def test_trap_from_hs_into_hs_leaves_spvp_alone():
    hart = trapping_guest("ecall\n", "S")
    hart.csr["medeleg"] = 1 << C.CAUSE_SUPERVISOR_ECALL
    hart.csr["hstatus"] = m("hstatus", "SPV", "SPVP")
    hart.run(1)
    assert hart.mode == "S" and hart.pc == HS_HANDLER
    assert hart.csr["hstatus"] == m("hstatus", "SPVP")  # SPV = 0: V was 0


def test_hedeleg_hands_exceptions_to_the_guest_and_hs_state_stays():
    hart = trapping_guest("ecall\n", "VU")
    hart.csr["medeleg"] = 1 << C.CAUSE_USER_ECALL
    hart.csr["hedeleg"] = 1 << C.CAUSE_USER_ECALL
    hart.csr["vsstatus"] = m("vsstatus", "SIE")
    hart.run(1)
    assert (hart.mode, hart.pc) == ("VS", VS_HANDLER)
    assert hart.csr["vsepc"] == CODE and hart.csr["vscause"] == C.CAUSE_USER_ECALL
    vsstatus = csrs.BY_NAME["vsstatus"].decode(hart.csr["vsstatus"])
    assert (vsstatus["SPP"], vsstatus["SPIE"], vsstatus["SIE"]) == (0, 1, 0)
    assert hart.csr["sepc"] == 0 and hart.csr["hstatus"] == 0 and hart.csr["scause"] == 0


def test_hedeleg_applies_only_to_traps_from_v1():
    hart = trapping_guest("ecall\n", "U")
    hart.csr["medeleg"] = 1 << C.CAUSE_USER_ECALL
    hart.csr["hedeleg"] = 1 << C.CAUSE_USER_ECALL
    hart.run(1)
    assert (hart.mode, hart.pc, hart.csr["scause"]) == ("S", HS_HANDLER, C.CAUSE_USER_ECALL)


def test_trap_from_v1_into_m_records_mpv_and_gva():
    hart = trapping_guest("ebreak\n", "VS")
    hart.ebreak_exits = False
    hart.run(1)
    assert (hart.mode, hart.pc) == ("M", M_HANDLER)
    assert hart.csr["mcause"] == C.CAUSE_BREAKPOINT and hart.csr["mtval"] == CODE
    # A breakpoint's tval is the guest virtual pc: GVA = 1 (8.4.1).
    assert hart.csr["mstatush"] == m("mstatush", "MPV", "GVA")
    assert csrs.BY_NAME["mstatus"].decode(hart.csr["mstatus"])["MPP"] == 1


def test_mret_returns_to_vs_through_mpv_unless_mpp_is_m():
    hart = make_hart("mret\n", ram_size=RAM_SIZE)
    open_pmp(hart)
    hart.csr["mepc"] = 0x8000_0040
    hart.csr["mstatus"] = 1 << csrs.shift("mstatus", "MPP")
    hart.csr["mstatush"] = m("mstatush", "MPV")
    hart.run(1)
    assert (hart.mode, hart.pc, hart.csr["mstatush"]) == ("VS", 0x8000_0040, 0)
    hart = make_hart("mret\n", ram_size=RAM_SIZE)
    hart.csr["mepc"] = 0x8000_0040
    hart.csr["mstatus"] = m("mstatus", "MPP")  # MPP = M: MPV is ignored
    hart.csr["mstatush"] = m("mstatush", "MPV")
    hart.run(1)
    assert (hart.mode, hart.csr["mstatush"]) == ("M", 0)


def test_sret_from_hs_enters_the_guest_through_spv_and_sret_in_vs_stays_there():
    hart, _ = guest("sret\n", "S")
    hart.csr["sepc"] = CODE + 0x40
    hart.csr["mstatus"] = m("mstatus", "SPP", "SPIE")
    hart.csr["hstatus"] = m("hstatus", "SPV")
    hart.run(1)
    assert (hart.mode, hart.pc, hart.csr["hstatus"]) == ("VS", CODE + 0x40, 0)
    assert csrs.BY_NAME["sstatus"].decode(hart.csr["sstatus"])["SIE"] == 1
    hart, _ = guest("sret\n", "VS", code_user=False)
    hart.csr["vsepc"] = CODE + 0x80
    hart.csr["vsstatus"] = m("vsstatus", "SPIE")  # SPP = 0: back to VU
    hart.csr["sstatus"] = m("sstatus", "SPP")
    hart.run(1)
    assert (hart.mode, hart.pc) == ("VU", CODE + 0x80)
    assert hart.csr["vsstatus"] == m("vsstatus", "SIE", "SPIE")
    assert hart.csr["sstatus"] == m("sstatus", "SPP")  # the HS-level sstatus is untouched


def test_take_trap_delivers_an_exit_into_hs_with_its_h_fields():
    hart, tables = guest("lw a0, 8(a1)\nebreak\n", trap_exits="S")
    hart.csr["medeleg"] = 1 << C.CAUSE_LOAD_GUEST_PAGE_FAULT
    hart.csr["stvec"] = HS_HANDLER
    tables.g_map(DATA_GPA, 0, 0)  # unmap the data page
    hart.x["a1"] = DATA_VA
    exit = hart.run(5)
    assert exit.reason == E.EXIT_TRAP and exit.cause == C.CAUSE_LOAD_GUEST_PAGE_FAULT
    assert hart.mode == "VS" and hart.csr["sepc"] == 0  # nothing happened yet
    hart.take_trap(exit.cause, exit.tval, htval=exit.htval, htinst=exit.htinst, gva=exit.gva)
    assert (hart.mode, hart.pc) == ("S", HS_HANDLER)
    assert hart.csr["stval"] == DATA_VA + 8 and hart.csr["htval"] == (DATA_GPA + 8) >> 2
    assert hart.csr["htinst"] == exit.htinst != 0
    assert hart.csr["hstatus"] == m("hstatus", "SPV", "SPVP", "GVA")


# -- VS-level interrupts and hvip (8.2.3, 8.6.2) ---------------------------------------------

VSTIP = m("mip", "VSTIP")
VS_INTERRUPTS = m("mip", "VSSIP", "VSTIP", "VSEIP")


def spinning_guest(mode: str = "VS", **options) -> Hart:
    hart = trapping_guest("1: j 1b\n", mode)
    for name, value in options.items():
        hart.csr[name] = value
    return hart


@pytest.mark.parametrize(
    "bit, seen_as",
    [
        ("VSSIP", C.IRQ_S_SOFT),
        ("VSTIP", C.IRQ_S_TIMER),
        ("VSEIP", C.IRQ_S_EXT),
    ],
)
def test_hvip_injects_an_interrupt_the_guest_sees_as_its_own(bit, seen_as):
    hart = spinning_guest(hideleg=VS_INTERRUPTS, mie=m("mie", bit), vsstatus=m("vsstatus", "SIE"))
    hart.csr["vstvec"] = VS_HANDLER | 1  # vectored
    hart.csr["hvip"] = m("hvip", bit)
    hart.run(1)
    # 8.6.2: VSSI (2), VSTI (6) and VSEI (10) reach VS-mode as the supervisor software,
    # timer and external interrupts (1, 5, 9).
    assert hart.mode == "VS" and hart.pc == VS_HANDLER + 4 * seen_as
    assert hart.csr["vscause"] == (1 << 31) | seen_as
    assert hart.csr["vsip"] == 1 << seen_as


def test_vs_interrupts_wait_for_vsstatus_sie_in_vs_but_not_in_vu():
    hart = spinning_guest(hideleg=VS_INTERRUPTS, mie=VSTIP, hvip=VSTIP)
    hart.run(3)
    assert hart.mode == "VS" and hart.pc < HS_HANDLER  # vsstatus.SIE = 0
    hart.mode = "VU"
    hart.run(1)
    assert hart.mode == "VS" and hart.pc == VS_HANDLER
    assert csrs.BY_NAME["vsstatus"].decode(hart.csr["vsstatus"])["SPP"] == 0


def test_vs_interrupts_are_never_taken_with_v0():
    hart = spinning_guest(hideleg=VS_INTERRUPTS, mie=VSTIP, hvip=VSTIP)
    hart.csr["vsstatus"] = m("vsstatus", "SIE")
    for mode in ("S", "U"):
        hart.mode = mode
        hart.pc = CODE
        hart.run(3)
        assert hart.mode == mode


def test_vs_interrupts_not_delegated_by_hideleg_go_to_hs_whatever_sie_says():
    hart = spinning_guest(mie=VSTIP, hvip=VSTIP)
    hart.run(1)  # with V=1, HS-level interrupts are always enabled
    assert hart.mode == "S" and hart.pc == HS_HANDLER
    assert hart.csr["scause"] == (1 << 31) | C.IRQ_VS_TIMER
    assert hart.csr["hstatus"] == m("hstatus", "SPV", "SPVP")
    # In HS-mode the same interrupt waits for sstatus.SIE.
    hart.pc = CODE
    hart.run(3)
    assert hart.pc < HS_HANDLER
    hart.csr["sstatus"] = m("sstatus", "SIE")
    hart.run(1)
    assert hart.pc == HS_HANDLER


def test_interrupt_priority_hs_before_vs_and_vsei_vssi_vsti():
    hart = spinning_guest()
    hart.trap_exits = "all"
    hart.csr["mideleg"] = m("mideleg", "SSIP")
    hart.csr["hideleg"] = VS_INTERRUPTS
    hart.csr["mie"] = m("mie", "SSIP") | VS_INTERRUPTS
    hart.csr["vsstatus"] = m("vsstatus", "SIE")
    hart.csr["mip"] = m("mip", "SSIP")
    hart.csr["hvip"] = VS_INTERRUPTS
    seen = []
    for _ in range(4):
        exit = hart.run(1)
        assert exit.reason == E.EXIT_TRAP and exit.interrupt
        seen.append(exit.cause)
        if exit.cause == C.IRQ_S_SOFT:
            hart.csr["sip"] = 0
        else:
            hart.csr["hvip"] = hart.csr["hvip"] & ~(1 << exit.cause)
    assert seen == [C.IRQ_S_SOFT, C.IRQ_VS_EXT, C.IRQ_VS_SOFT, C.IRQ_VS_TIMER]


def test_a_python_hypervisor_sees_vs_interrupts_it_did_not_delegate():
    hart = spinning_guest(mie=VSTIP, hvip=VSTIP)
    hart.trap_exits = "HS"
    exit = hart.run(5)
    assert exit.reason == E.EXIT_TRAP and exit.interrupt and exit.cause == C.IRQ_VS_TIMER
    assert exit.mode == "VS" and exit.virtual == 1 and exit.privilege == 1


# -- Two-stage translation and guest-page faults (8.5) -------------------------------------


def test_both_stages_translate_and_set_accessed_and_dirty():
    hart, tables = guest("lw a0, 0(a1)\nsw a2, 4(a1)\nebreak\n")
    hart.x["a1"], hart.x["a2"] = DATA_VA, 0xCAFE
    assert hart.run(10).reason == E.EXIT_EBREAK
    assert hart.x["a0"] == 0x1234_5678 and hart.read_word(DATA_SPA + 4) == 0xCAFE
    assert hart.read_word(tables.vs_leaf_address(DATA_VA)) & (A | D) == A | D
    assert hart.read_word(tables.g_leaf_address(DATA_GPA)) & (A | D) == A | D


def test_bare_stages_pass_addresses_through():
    hart, tables = guest("lw a0, 0(a1)\nebreak\n", vs_paging=False)
    hart.x["a1"] = DATA_GPA  # vsatp Bare: guest virtual = guest physical
    assert hart.run(10).reason == E.EXIT_EBREAK and hart.x["a0"] == 0x1234_5678
    hart, tables = guest("lw a0, 0(a1)\nebreak\n")
    hart.csr["hgatp"] = 0  # hgatp Bare: guest physical = supervisor physical
    hart.write_word(tables.vs_leaf_address(DATA_VA), pte(DATA_SPA, VS_LEAF))
    hart.x["a1"] = DATA_VA
    assert hart.run(10).reason == E.EXIT_EBREAK and hart.x["a0"] == 0x1234_5678


def test_guest_physical_addresses_have_34_bits():
    hart, tables = guest("lw a0, 0(a1)\nebreak\n")
    high_gpa = 0x3_C000_5000  # above 4 GiB: Sv32x4 root index 0xF00, in the root's last quarter
    tables.vs_map(DATA_VA, high_gpa)
    tables.g_map(high_gpa, DATA_SPA)
    assert (tables.g_leaf_address(high_gpa) - G_TABLES) >= 0
    assert hart.read_word(G_ROOT + 4 * 0xF00) & V
    hart.x["a1"] = DATA_VA + 0x10
    hart.write_word(DATA_SPA + 0x10, 77)
    assert hart.run(10).reason == E.EXIT_EBREAK and hart.x["a0"] == 77


def test_g_stage_megapages_and_their_alignment():
    hart, tables = guest("lw a0, 0(a1)\nebreak\n")
    gpa = 0x9040_0000
    tables.vs_map(DATA_VA, gpa + 0x3000)
    hart.write_word(G_ROOT + 4 * (gpa >> 22), pte(0x8000_0000, G_LEAF))  # a megapage
    hart.x["a1"] = DATA_VA
    assert hart.run(10).reason == E.EXIT_EBREAK
    assert hart.x["a0"] == hart.read_word(0x8000_3000)
    hart.pc = CODE
    hart.write_word(G_ROOT + 4 * (gpa >> 22), pte(0x8000_1000, G_LEAF))  # misaligned
    hart.csr["vsatp"] = hart.csr["vsatp"]  # writing vsatp flushes the guest's TLB
    exit = hart.run(10)
    assert exit.cause == C.CAUSE_LOAD_GUEST_PAGE_FAULT and exit.htval == (gpa + 0x3000) >> 2


def test_a_fault_in_the_vs_stage_is_a_page_fault_with_a_guest_virtual_address():
    hart, tables = guest("lw a0, 0(a1)\nebreak\n")
    tables.vs_map(DATA_VA, DATA_GPA, 0)
    hart.x["a1"] = DATA_VA
    exit = hart.run(10)
    assert (exit.cause, exit.tval, exit.htval, exit.htinst, exit.gva) == (
        C.CAUSE_LOAD_PAGE_FAULT,
        DATA_VA,
        0,
        0,
        1,
    )


LW = "lw a0, 0x24(a1)"


@pytest.mark.parametrize("access", ["fetch", "load"])
def test_guest_page_fault_on_the_root_pte_read_of_the_vs_walk(access):
    hart, tables = guest(f"nop\n{LW}\nebreak\n")
    hart.x["a1"] = DATA_VA
    if access == "load":
        hart.run(1)  # the code page's translation is in the TLB now: the load will fault
    va = DATA_VA + 0x24 if access == "load" else CODE
    root_pte = VS_ROOT + 4 * (va >> 22)
    hart.write_word(tables.g_leaf_address(VS_ROOT), 0)  # the VS root is not in the G-stage
    exit = hart.run(10)
    cause = {"fetch": C.CAUSE_FETCH_GUEST_PAGE_FAULT, "load": C.CAUSE_LOAD_GUEST_PAGE_FAULT}
    assert exit.cause == cause[access] and exit.tval == va, str(exit)
    # htval: the PTE's guest physical address; htinst: "a 32-bit read for VS-stage
    # address translation", whatever the original access (8.6.3).
    assert exit.htval == root_pte >> 2 and exit.htinst == 0x2000 and exit.gva == 1
    assert exit.guest_physical_address == root_pte


def test_guest_page_fault_on_the_leaf_pte_read_of_the_vs_walk():
    hart, tables = guest(f"{LW}\nebreak\n")
    leaf_pte = tables.vs_leaf_address(DATA_VA)
    hart.write_word(tables.g_leaf_address(leaf_pte), 0)
    hart.x["a1"] = DATA_VA
    exit = hart.run(10)
    assert exit.cause == C.CAUSE_LOAD_GUEST_PAGE_FAULT and exit.tval == DATA_VA + 0x24
    assert exit.htval == leaf_pte >> 2 and exit.htinst == 0x2000 and exit.gva == 1


def test_guest_page_fault_when_the_vs_walk_sets_accessed_in_a_read_only_table():
    hart, tables = guest(f"{LW}\nebreak\n")
    leaf_pte = tables.vs_leaf_address(DATA_VA)
    hart.write_word(leaf_pte, pte(DATA_GPA, V | R | W))  # A = 0: the walk must set it
    hart.write_word(tables.g_leaf_address(leaf_pte), pte(leaf_pte, V | R | U | A | D))
    hart.x["a1"] = DATA_VA
    exit = hart.run(10)
    assert exit.cause == C.CAUSE_LOAD_GUEST_PAGE_FAULT
    assert exit.htval == leaf_pte >> 2 and exit.htinst == 0x2020  # the implicit write


@pytest.mark.parametrize(
    "text, cause, transformed",
    [
        ("lw a0, 0x24(a1)", C.CAUSE_LOAD_GUEST_PAGE_FAULT, "lw a0, 0(x0)"),
        ("lbu t3, -1(a1)", C.CAUSE_LOAD_GUEST_PAGE_FAULT, "lbu t3, 0(x0)"),
        ("sh a2, 0x7fe(a1)", C.CAUSE_STORE_GUEST_PAGE_FAULT, "sh a2, 0(x0)"),
        (
            "amoadd.w.aqrl a0, a2, (a1)",
            C.CAUSE_STORE_GUEST_PAGE_FAULT,
            "amoadd.w.aqrl a0, a2, (x0)",
        ),
        ("lr.w a0, (a1)", C.CAUSE_LOAD_GUEST_PAGE_FAULT, "lr.w a0, (x0)"),
    ],
)
def test_guest_page_fault_on_the_data_access_writes_the_transformed_instruction(
    text, cause, transformed
):
    hart, tables = guest(f"{text}\nebreak\n")
    tables.vs_map(DATA_VA, DATA_GPA)
    tables.vs_map(DATA_VA - 0x1000, DATA_GPA - 0x1000)
    tables.g_map(DATA_GPA, 0, 0)
    tables.g_map(DATA_GPA - 0x1000, 0, 0)
    hart.x["a1"] = DATA_VA
    exit = hart.run(10)
    assert exit.reason == E.EXIT_TRAP and exit.cause == cause, str(exit)
    gpa = DATA_GPA + (exit.tval - DATA_VA)
    assert exit.htval == gpa >> 2 and exit.gva == 1
    assert exit.htinst == word(transformed) & ~0x3 | 0x3  # bits 1:0 = 11: not compressed
    assert exit.guest_physical_address == gpa


def test_a_misaligned_access_that_faults_on_its_second_page_says_where_in_htinst():
    hart, tables = guest("lw a0, -2(a1)\nebreak\n")
    tables.vs_map(DATA_VA - 0x1000, DATA_GPA - 0x1000)
    tables.g_map(DATA_GPA - 0x1000, DATA_SPA - 0x1000)
    tables.g_map(DATA_GPA, 0, 0)  # the page the last two bytes are on
    hart.x["a1"] = DATA_VA
    exit = hart.run(10)
    assert exit.cause == C.CAUSE_LOAD_GUEST_PAGE_FAULT and exit.tval == DATA_VA
    assert exit.htval == DATA_GPA >> 2
    assert exit.htinst == word("lw a0, 0(x0)") | (2 << 15)  # the fault is 2 bytes in


def test_fetch_guest_page_fault():
    hart, tables = guest("li t0, 0x40000000\njr t0\n")
    tables.vs_map(DATA_VA, DATA_GPA, VS_LEAF)
    tables.g_map(DATA_GPA, DATA_SPA, V | R | W | U | A | D)  # not executable in the G-stage
    exit = hart.run(10)
    assert (exit.cause, exit.tval, exit.htval, exit.htinst) == (
        C.CAUSE_FETCH_GUEST_PAGE_FAULT,
        DATA_VA,
        DATA_GPA >> 2,
        0,
    )


@pytest.mark.parametrize(
    "g_flags, mxr, access, ok",
    [
        (V | R | W | A | D, "", "load", False),  # no U: every G-stage access is U-level
        (V | R | U | A | D, "", "store", False),
        (V | X | U | A, "", "load", False),
        (V | X | U | A, "vsstatus", "load", False),  # vsstatus.MXR: the VS-stage only
        (V | X | U | A, "mstatus", "load", True),  # HS-level MXR: both stages
        (V | R | U | A | D, "", "load", True),
    ],
)
def test_g_stage_permissions(g_flags, mxr, access, ok):
    hart, tables = guest(("lw a0, 0(a1)" if access == "load" else "sw a0, 0(a1)") + "\nebreak\n")
    tables.g_map(DATA_GPA, DATA_SPA, g_flags)
    if mxr:
        hart.csr[mxr] = m(mxr, "MXR")
    hart.x["a1"] = DATA_VA
    exit = hart.run(10)
    if ok:
        assert exit.reason == E.EXIT_EBREAK, str(exit)
    else:
        guest_fault = {"load": C.CAUSE_LOAD_GUEST_PAGE_FAULT, "store": 23}[access]
        assert exit.cause == guest_fault and exit.htval == DATA_GPA >> 2, str(exit)


def test_vsstatus_sum_governs_guest_user_pages_not_sstatus_sum():
    hart, tables = guest("lw a0, 0(a1)\nebreak\n")
    tables.vs_map(DATA_VA, DATA_GPA, VS_LEAF | U)
    hart.csr["sstatus"] = m("sstatus", "SUM")
    hart.x["a1"] = DATA_VA
    assert hart.run(10).cause == C.CAUSE_LOAD_PAGE_FAULT
    hart.pc = CODE
    hart.csr["vsstatus"] = m("vsstatus", "SUM")
    assert hart.run(10).reason == E.EXIT_EBREAK


def test_guest_page_faults_cannot_be_delegated_to_the_guest():
    hart, tables = guest("lw a0, 0(a1)\nebreak\n", trap_exits="none")
    hart.csr["medeleg"] = 1 << C.CAUSE_LOAD_GUEST_PAGE_FAULT
    hart.csr["hedeleg"] = 0xFFFFFFFF
    hart.csr["stvec"], hart.csr["vstvec"] = HS_HANDLER, VS_HANDLER
    tables.g_map(DATA_GPA, 0, 0)
    hart.x["a1"] = DATA_VA
    hart.run(1)
    assert (hart.mode, hart.pc) == ("S", HS_HANDLER)
    assert hart.csr["htval"] == DATA_GPA >> 2 and hart.csr["stval"] == DATA_VA


def test_a_guest_page_fault_into_m_mode_fills_mtval2_and_mtinst():
    hart, tables = guest("sw a0, 8(a1)\nebreak\n", trap_exits="none")
    hart.csr["mtvec"] = M_HANDLER
    tables.g_map(DATA_GPA, 0, 0)
    hart.x["a1"] = DATA_VA
    hart.run(1)
    assert (hart.mode, hart.pc) == ("M", M_HANDLER)
    assert hart.csr["mcause"] == C.CAUSE_STORE_GUEST_PAGE_FAULT
    assert hart.csr["mtval"] == DATA_VA + 8 and hart.csr["mtval2"] == (DATA_GPA + 8) >> 2
    assert hart.csr["mtinst"] == word("sw a0, 0(x0)")
    assert hart.csr["mstatush"] == m("mstatush", "MPV", "GVA")
    assert hart.csr["htval"] == 0 and hart.csr["htinst"] == 0


def test_mprv_with_mpv_makes_m_mode_loads_two_stage():
    hart, tables = guest("lw a0, 0(a1)\nebreak\n")
    hart.mode = "M"
    hart.csr["mstatus"] = m("mstatus", "MPRV") | 1 << csrs.shift("mstatus", "MPP")
    hart.csr["mstatush"] = m("mstatush", "MPV")
    hart.x["a1"] = DATA_VA
    assert hart.run(10).reason == E.EXIT_EBREAK and hart.x["a0"] == 0x1234_5678
    hart.pc = CODE
    tables.g_map(DATA_GPA, 0, 0)
    hart.hfence_gvma()  # a G-stage PTE went away
    exit = hart.run(10)
    # The fault is the guest's, although the hart is in M-mode with V=0: GVA says so.
    assert exit.cause == C.CAUSE_LOAD_GUEST_PAGE_FAULT and exit.gva == 1 and exit.virtual == 0


# -- The TLB: V and VMID never mix; the fences (8.5.3, 8.3.2) -------------------------------


def test_hs_and_guest_translations_of_one_address_never_mix():
    source = "lw a0, 0(a1)\nebreak\n"
    hart, tables = guest(source)
    hart.write_word(0x8030_0000, 0xAAAA)
    # HS-level Sv32: DATA_VA -> 0x8030_0000, while the guest maps it to DATA_SPA.
    hs_root = 0x8031_0000
    hart.write_word(hs_root + 4 * (DATA_VA >> 22), pte(0x8032_0000, V))
    hart.write_word(0x8032_0000, pte(0x8030_0000, VS_LEAF))
    hart.write_word(hs_root + 4 * (CODE >> 22), pte(CODE, VS_LEAF))
    hart.csr["satp"] = (1 << 31) | (hs_root >> 12)
    hart.x["a1"] = DATA_VA
    for mode, expected in [("VS", 0x1234_5678), ("S", 0xAAAA), ("VS", 0x1234_5678)]:
        hart.mode, hart.pc = mode, CODE
        assert hart.run(10).reason == E.EXIT_EBREAK
        assert hart.x["a0"] == expected, mode


def test_two_vmids_never_share_translations_and_switching_needs_no_fence():
    hart, first = guest("lw a0, 0(a1)\nebreak\n")
    second = Tables(hart, g_root=0x8014_0000, vmid=2)
    second.g_identity(CODE, 2)
    second.g_identity(VS_ROOT, 4)  # the VS root and the VS tables after it
    second.g_map(DATA_GPA, 0x8030_0000)
    hart.write_word(0x8030_0000, 0xBBBB)
    hart.x["a1"] = DATA_VA
    for tables, expected in [(first, 0x1234_5678), (second, 0xBBBB), (first, 0x1234_5678)]:
        hart.csr["hgatp"] = tables.hgatp
        hart.pc = CODE
        assert hart.run(10).reason == E.EXIT_EBREAK
        assert hart.x["a0"] == expected


FENCE_PROGRAM = """
    lw a0, 0(a1)
    {fence}
    lw a2, 0(a1)
    ebreak
"""


@pytest.mark.parametrize(
    "fence, mode, stage, fresh",
    [
        ("nop", "VS", "G", False),  # a cache: without a fence the old translation may stay
        ("sfence.vma", "VS", "VS", True),
        ("hfence.vvma", "S", "VS", True),
        ("hfence.gvma", "S", "G", True),
        ("hfence.gvma zero, a3", "M", "G", True),
    ],
)
def test_fences(fence, mode, stage, fresh):
    hart, tables = guest(FENCE_PROGRAM.format(fence=fence))
    hart.write_word(0x8030_0000, 0xDDDD)
    hart.x["a1"], hart.x["a3"] = DATA_VA, 0
    if mode != "VS":
        # HS-mode and M-mode load the guest's memory through MPRV with MPV = 1.
        hart.mode = "M"
        hart.csr["mstatus"] = m("mstatus", "MPRV") | 1 << csrs.shift("mstatus", "MPP")
        hart.csr["mstatush"] = m("mstatush", "MPV")
    hart.breakpoints = {CODE + 4}
    assert hart.run(10).reason == E.EXIT_BREAKPOINT and hart.x["a0"] == 0x1234_5678
    if stage == "G":
        tables.g_map(DATA_GPA, 0x8030_0000)
    else:
        tables.vs_map(DATA_VA, DATA_GPA + 0x1000)
        tables.g_map(DATA_GPA + 0x1000, 0x8030_0000)
    if mode == "S":
        hart.mode = "S"
        hart.csr["mstatus"] = 0  # the fence itself runs in HS-mode ...
        hart.breakpoints = {CODE + 8}
        assert hart.run(10).reason == E.EXIT_BREAKPOINT
        hart.mode = "M"  # ... and M-mode with MPRV reads again
        hart.csr["mstatus"] = m("mstatus", "MPRV") | 1 << csrs.shift("mstatus", "MPP")
    assert hart.run(10).reason == E.EXIT_EBREAK
    assert hart.x["a2"] == (0xDDDD if fresh else 0x1234_5678)


def test_a_python_hypervisor_fences_from_python():
    hart, tables = guest("lw a0, 0(a1)\nebreak\n")
    hart.x["a1"] = DATA_VA
    hart.write_word(0x8030_0000, 0xDDDD)
    for fence, expected in [(None, 0x1234_5678), ("sfence_vma", 0xDDDD), ("hfence_gvma", 0xEEEE)]:
        if fence:
            getattr(hart, fence)()
        hart.pc = CODE
        assert hart.run(10).reason == E.EXIT_EBREAK and hart.x["a0"] == expected, fence
        tables.g_map(DATA_GPA, 0x8030_0000)
        hart.write_word(0x8030_0000, 0xEEEE if fence else 0xDDDD)


# -- HLV, HLVX, HSV (8.3.1) ------------------------------------------------------------------


def hlv_hart(text: str, mode: str = "S", spvp: int = 1, **options) -> tuple[Hart, Tables]:
    """A hypervisor in ``mode`` about to run ``text`` on the guest's DATA_VA (in a1)."""
    hart, tables = guest(f"{text}\nebreak\n", **options)
    hart.mode = mode
    hart.csr["hstatus"] = m("hstatus", "SPVP") if spvp else 0
    hart.x["a1"] = DATA_VA
    return hart, tables


@pytest.mark.parametrize(
    "text, value",
    [
        ("hlv.b a0, (a1)", 0x78),
        ("hlv.h a0, (a1)", 0x5678),
        ("hlv.w a0, (a1)", 0x1234_5678),
        ("hlvx.wu a0, (a1)", 0x1234_5678),
    ],
)
def test_hlv_loads_through_both_stages(text, value):
    hart, _ = hlv_hart(text)
    assert hart.run(10).reason == E.EXIT_EBREAK
    assert hart.x["a0"] == value and hart.mode == "S"


def test_hlv_sign_and_zero_extension_and_hsv():
    hart, _ = hlv_hart(
        "hlv.b a0, (a1)\nhlv.bu a2, (a1)\nhlv.h a3, (a1)\nhlv.hu a4, (a1)\nhsv.h a5, (a6)"
    )
    hart.write_word(DATA_SPA, 0x0000_8081)
    hart.x["a5"] = 0xBEEF
    hart.x["a6"] = DATA_VA + 6
    assert hart.run(10).reason == E.EXIT_EBREAK
    assert (hart.x["a0"], hart.x["a2"]) == (0xFFFF_FF81, 0x81)
    assert (hart.x["a3"], hart.x["a4"]) == (0xFFFF_8081, 0x8081)
    assert hart.read_memory(DATA_SPA + 6, 2) == bytes.fromhex("efbe")


def test_hlv_with_spvp_0_accesses_as_vu():
    hart, _ = hlv_hart("hlv.w a0, (a1)", spvp=0)
    exit = hart.run(10)  # a supervisor page, as though from VU-mode: a page fault
    assert exit.cause == C.CAUSE_LOAD_PAGE_FAULT and exit.tval == DATA_VA
    assert exit.gva == 1 and exit.virtual == 0  # GVA = 1 although SPV = 0 (8.2.1)


def test_hlvx_needs_execute_permission_and_hlv_read_permission():
    hart, tables = hlv_hart("hlvx.wu a0, (a1)")
    tables.vs_map(DATA_VA, DATA_GPA, V | X | A)  # execute-only in the VS-stage
    assert hart.run(10).reason == E.EXIT_EBREAK and hart.x["a0"] == 0x1234_5678
    hart, tables = hlv_hart("hlv.w a0, (a1)")
    tables.vs_map(DATA_VA, DATA_GPA, V | X | A)
    assert hart.run(10).cause == C.CAUSE_LOAD_PAGE_FAULT
    hart, tables = hlv_hart("hlvx.hu a0, (a1)")
    tables.vs_map(DATA_VA, DATA_GPA, V | R | A)  # readable but not executable
    assert hart.run(10).cause == C.CAUSE_LOAD_PAGE_FAULT  # a load fault, not a fetch fault
    hart, tables = hlv_hart("hlvx.wu a0, (a1)")
    tables.g_map(DATA_GPA, DATA_SPA, V | R | U | A)
    exit = hart.run(10)
    assert exit.cause == C.CAUSE_LOAD_GUEST_PAGE_FAULT


def test_hlv_ignores_mprv_and_uses_spvp():
    hart, _ = hlv_hart("hlv.w a0, (a1)", mode="M")
    hart.csr["mstatus"] = m("mstatus", "MPRV")  # MPP = U, MPV = 0: HLV does not care
    assert hart.run(10).reason == E.EXIT_EBREAK and hart.x["a0"] == 0x1234_5678


def test_hlv_guest_page_fault_reports_the_transformed_hlv():
    hart, tables = hlv_hart("hsv.w a0, (a1)", trap_exits="all")
    tables.g_map(DATA_GPA, 0, 0)
    exit = hart.run(10)
    assert exit.cause == C.CAUSE_STORE_GUEST_PAGE_FAULT and exit.gva == 1
    assert exit.htinst == word("hsv.w a0, (x0)") and exit.htval == DATA_GPA >> 2


def test_hlv_reads_a_device_through_an_mmio_exit():
    hart, tables = hlv_hart("hlv.h a0, (a1)")
    tables.g_map(DATA_GPA, 0x1000_0000)
    hart.add_mmio_region(0x1000_0000, 0x100)
    exit = hart.run(10)
    assert exit.reason == E.EXIT_MMIO_READ and exit.address == 0x1000_0000 and exit.size == 2
    hart.complete_mmio(0x8001)
    assert hart.x["a0"] == 0xFFFF_8001 and hart.run(10).reason == E.EXIT_EBREAK


# -- The explained two-stage walk agrees with the hart (virtkit.cpu.sv32) ----------------


def _unmap_vs_root(hart, tables):
    hart.write_word(tables.g_leaf_address(VS_ROOT), 0)


def _unmap_vs_leaf_table(hart, tables):
    leaf_table = tables.vs_leaf_address(DATA_VA) & ~0xFFF
    hart.write_word(tables.g_leaf_address(leaf_table), 0)


def _read_only_vs_table(hart, tables):
    leaf_pte = tables.vs_leaf_address(DATA_VA)
    hart.write_word(leaf_pte, pte(DATA_GPA, V | R | W | X | U))  # A and D still to set
    hart.write_word(tables.g_leaf_address(leaf_pte), pte(leaf_pte, V | R | U | A | D))


def _bare_vs_stage(hart, tables):
    hart.csr["vsatp"] = 0  # guest virtual = guest physical


def _bare_g_stage(hart, tables):
    hart.csr["hgatp"] = 0
    tables.vs_map(DATA_VA, DATA_SPA, VS_LEAF | U)  # guest physical = supervisor physical


def _high_gpa(hart, tables):
    tables.vs_map(DATA_VA, 0x3_C000_5000, VS_LEAF | U)
    tables.g_map(0x3_C000_5000, DATA_SPA)


SCENARIOS = {
    "mapped": lambda hart, tables: None,
    "vs leaf invalid": lambda hart, tables: tables.vs_map(DATA_VA, DATA_GPA, 0),
    "vs supervisor page": lambda hart, tables: tables.vs_map(DATA_VA, DATA_GPA, VS_LEAF),
    "vs read-only": lambda hart, tables: tables.vs_map(DATA_VA, DATA_GPA, V | R | U | A | D),
    "vs execute-only": lambda hart, tables: tables.vs_map(DATA_VA, DATA_GPA, V | X | U | A),
    "vs root not in the G-stage": _unmap_vs_root,
    "vs leaf table not in the G-stage": _unmap_vs_leaf_table,
    "vs table read-only in the G-stage": _read_only_vs_table,
    "data not in the G-stage": lambda hart, tables: tables.g_map(DATA_GPA, 0, 0),
    "g leaf without U": lambda hart, tables: tables.g_map(DATA_GPA, DATA_SPA, V | RWX | A | D),
    "g read-only": lambda hart, tables: tables.g_map(DATA_GPA, DATA_SPA, V | R | U | A | D),
    "g execute-only": lambda hart, tables: tables.g_map(DATA_GPA, DATA_SPA, V | X | U | A),
    "34-bit guest physical address": _high_gpa,
    "vsatp Bare": _bare_vs_stage,
    "hgatp Bare": _bare_g_stage,
}


PRIVILEGE_OF = {"VS": 1, "VU": 0}


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("mode", ["VS", "VU"])
@pytest.mark.parametrize("access", ["fetch", "load", "store"])
def test_the_explained_two_stage_walk_agrees_with_the_hart(scenario, mode, access):
    text = {"fetch": "ebreak", "load": "lw a0, 0(a1)\nebreak", "store": "sw a2, 0(a1)\nebreak"}
    hart, tables = guest(text[access] + "\n", mode)
    tables.vs_map(DATA_VA, DATA_GPA, VS_LEAF | U)  # a user page: VS reaches it with SUM
    hart.csr["vsstatus"] = m("vsstatus", "SUM")
    SCENARIOS[scenario](hart, tables)
    va = DATA_GPA if scenario == "vsatp Bare" else DATA_VA
    hart.write_word(DATA_SPA, word("ebreak"))
    hart.x["a1"], hart.x["a2"] = va, 0xABCD
    if access == "fetch":
        hart.pc = va
    else:
        # M-mode with MPRV and MPV makes loads and stores the guest's, while the code
        # itself is fetched untranslated.
        mpp = PRIVILEGE_OF[mode] << csrs.shift("mstatus", "MPP")
        hart.mode = "M"
        hart.csr["mstatus"] = m("mstatus", "MPRV") | mpp
        hart.csr["mstatush"] = m("mstatush", "MPV")
    result = sv32.walk(hart, va, access, mode if access == "fetch" else None)
    assert result.mode == mode and result.stage == sv32.STAGE_VS
    exit = hart.run(1)
    label = f"{result}\n{exit}"
    if result.ok:
        if access == "fetch":
            assert exit.reason == E.EXIT_EBREAK, label
        else:
            assert exit.reason == E.EXIT_BUDGET, label
        if access == "load":
            assert hart.x["a0"] == hart.read_word(result.pa), label
        if access == "store":
            assert hart.read_word(result.pa) == 0xABCD, label
        assert result.g_stage.pa == result.pa
    else:
        assert exit.reason == E.EXIT_TRAP and exit.cause == result.fault, label
        assert exit.guest_physical_address == result.fault_gpa, label


def test_the_explained_walk_shows_both_stages():
    hart, tables = guest("ebreak\n")
    _unmap_vs_leaf_table(hart, tables)
    result = sv32.walk(hart, DATA_VA + 8, "load")
    root, leaf = result.levels
    assert root.g_stage.ok and root.decision.startswith("a pointer")
    assert leaf.pte is None and not leaf.g_stage.ok
    assert leaf.g_stage.levels[-1].decision == "V = 0, the entry is invalid: guest-page fault"
    assert result.fault == C.CAUSE_LOAD_GUEST_PAGE_FAULT
    assert result.fault_gpa == leaf.pte_address
    text = str(result)
    assert "VS-stage from vsatp" in text and "G-stage (Sv32x4) of guest physical address" in text
    ok = sv32.walk(hart, CODE + 4, "fetch")
    assert ok.gpa == CODE + 4 and ok.pa == CODE + 4 and ok.g_stage.stage == sv32.STAGE_G
    assert ok.summary == "guest va 0x80000004 -> guest pa 0x80000004; supervisor pa 0x80000004"


def test_widgets_and_inspectors_show_v():
    ui = pytest.importorskip("virtkit.ui")
    from virtkit.cpu.inspect import HYPERVISOR_CSRS, code_around_pc, csr_rows

    hart, tables = guest("nop\nebreak\n")
    view = ui.CPUView(hart, hart.program)
    assert view.mode_label.value.startswith("mode VS")
    assert code_around_pc(hart, hart.program, 0, 1)[0].text == "nop"
    walk_view = ui.PageTableView(hart, va=DATA_VA, mode="VS")
    assert walk_view.walk.pa == DATA_SPA
    assert "through the G-stage" in walk_view.output.value
    assert "VS" in walk_view.mode_box.options and "VU" in walk_view.mode_box.options
    notes = {row.name: row.note for row in csr_rows(hart, HYPERVISOR_CSRS)}
    assert notes["hgatp"] == f"Sv32x4, 16 KiB root table at {G_ROOT:#010x}, VMID 0"
    assert notes["vsatp"] == f"Sv32, root table at guest physical {VS_ROOT:#010x}"


def test_the_trap_recorder_follows_traps_into_vs_and_hs():
    from virtkit.cpu.trace import TrapRecorder

    hart, tables = guest("ecall\n", "VU", trap_exits="S")
    handler = CODE + 0x1000  # a supervisor page of the guest: VS-mode runs its handler there
    tables.vs_map(handler, handler, VS_LEAF)
    hart.write_word(handler, word("ecall"))
    hart.csr["medeleg"] = 1 << C.CAUSE_USER_ECALL | 1 << C.CAUSE_VIRTUAL_SUPERVISOR_ECALL
    hart.csr["hedeleg"] = 1 << C.CAUSE_USER_ECALL
    hart.csr["vstvec"] = handler
    recorder = TrapRecorder(hart)
    exit = recorder.run(10)
    first, second = recorder.rows
    assert (first.mode, first.handled_by) == ("VU", f"VS-mode handler at {handler:#010x}")
    assert (second.mode, second.handled_by) == ("VS", "Python (S-mode exit)")
    assert exit.cause == C.CAUSE_VIRTUAL_SUPERVISOR_ECALL and exit.mode == "VS"


# -- Exits: a Python hypervisor owns HS-mode (virtkit.cpu.exits) ------------------------


def test_a_guest_page_fault_exits_with_the_h_fields_and_the_guest_resumes_unchanged():
    hart, tables = guest("lw a0, 0x10(a1)\nebreak\n", trap_exits="HS")
    hart.csr["medeleg"] = 1 << C.CAUSE_LOAD_GUEST_PAGE_FAULT
    tables.g_map(DATA_GPA, 0, 0)
    hart.x["a1"] = DATA_VA
    exit = hart.run(10)
    assert (exit.reason, exit.cause, exit.pc, exit.tval) == (
        E.EXIT_TRAP,
        C.CAUSE_LOAD_GUEST_PAGE_FAULT,
        CODE,
        DATA_VA + 0x10,
    )
    assert exit.htval == (DATA_GPA + 0x10) >> 2 and exit.htinst == word("lw a0, 0(x0)")
    assert (exit.gva, exit.virtual, exit.privilege, exit.spv, exit.mode) == (1, 1, 1, 1, "VS")
    assert "guest physical address 0x90000010" in str(exit) and "in VS-mode" in str(exit)
    # Nothing architectural happened: map the page and run again.
    assert hart.mode == "VS" and hart.pc == CODE and hart.csr["scause"] == 0
    tables.g_map(DATA_GPA, DATA_SPA)
    assert hart.run(10).reason == E.EXIT_EBREAK and hart.x["a0"] == hart.read_word(DATA_SPA + 16)


def test_a_python_hypervisor_sees_hs_traps_but_not_the_guests_own_or_m_modes():
    source = "ecall\nebreak\n"
    hart, tables = guest(source, "VU", trap_exits="HS")
    hart.csr["medeleg"] = 1 << C.CAUSE_USER_ECALL
    hart.csr["hedeleg"] = 1 << C.CAUSE_USER_ECALL
    handler = CODE + 0x1000  # the guest kernel's handler, on a supervisor page
    tables.vs_map(handler, handler, VS_LEAF)
    hart.write_word(handler, word("ebreak"))
    hart.csr["vstvec"] = handler
    assert hart.run(10).reason == E.EXIT_EBREAK and hart.mode == "VS"  # the guest's trap
    hart, _ = guest(source, "VU", trap_exits="all")
    hart.csr["medeleg"] = 1 << C.CAUSE_USER_ECALL
    hart.csr["hedeleg"] = 1 << C.CAUSE_USER_ECALL
    exit = hart.run(10)  # "all": even the guest's own traps exit
    assert exit.reason == E.EXIT_TRAP and exit.cause == C.CAUSE_USER_ECALL and exit.mode == "VU"
    hart, _ = guest(source, "VS", trap_exits="HS")
    hart.csr["mtvec"] = CODE + 4
    assert hart.run(10).reason == E.EXIT_EBREAK and hart.mode == "M"  # not delegated: M's


def test_a_virtual_instruction_exit_carries_the_instruction():
    hart, _ = guest("csrr a0, hgatp\nebreak\n", trap_exits="HS")
    hart.csr["medeleg"] = 1 << C.CAUSE_VIRTUAL_INSTRUCTION
    exit = hart.run(10)
    assert exit.cause == C.CAUSE_VIRTUAL_INSTRUCTION
    assert exit.instruction == exit.tval == word("csrr a0, hgatp")
    assert (exit.htval, exit.htinst, exit.gva) == (0, 0, 0)


# -- A hypervisor in Python boots a guest on an empty G-stage ------------------------------

# The guest: a bare-metal program for VS-mode that pages itself. It builds a VS-stage
# table in its own (guest physical) memory that maps one data page at two virtual
# addresses, turns paging on, copies a message in through one address and prints it,
# one SBI console call per character, from the other. It knows nothing of the G-stage.
GUEST = """
    .equ ROOT, 0x80100000           # guest physical addresses, all of them
    .equ LEVEL0, 0x80101000
    .equ DATA, 0x80200000
    .equ VA_IN, 0x00400000          # two virtual pages, one guest physical page
    .equ VA_OUT, 0x00401000
    .equ CODE_LEAF, (0x80000000 >> 12 << 10) | 0xCF     # V R W X A D: S-mode code
    .equ DATA_LEAF, (DATA >> 12 << 10) | 0xC7           # V R W A D
    .equ SBI_PUTCHAR, 1
    .equ SBI_SHUTDOWN, 8

_start:
    li   t0, ROOT
    li   t1, CODE_LEAF              # a megapage: this code, where it is
    li   t2, ROOT + 4 * (0x80000000 >> 22)
    sw   t1, 0(t2)
    li   t1, (LEVEL0 >> 12 << 10) | 1
    sw   t1, 4 * (VA_IN >> 22)(t0)
    li   t0, LEVEL0
    li   t1, DATA_LEAF
    sw   t1, 4 * ((VA_IN >> 12) & 0x3ff)(t0)
    sw   t1, 4 * ((VA_OUT >> 12) & 0x3ff)(t0)
    li   t0, (1 << 31) | (ROOT >> 12)
    csrw satp, t0                   # VS-mode's satp is vsatp
    sfence.vma

    la   a1, message
    li   a2, VA_IN
copy:
    lbu  t0, 0(a1)
    sb   t0, 0(a2)
    addi a1, a1, 1
    addi a2, a2, 1
    bnez t0, copy

    li   a1, VA_OUT
print:
    lbu  a0, 0(a1)
    beqz a0, done
    li   a7, SBI_PUTCHAR
    ecall
    addi a1, a1, 1
    j    print
done:
    csrr s0, satp
    li   a7, SBI_SHUTDOWN
    ecall

message:
    .asciz "hello from VS-mode, paged twice\\n"
"""


class LazyHypervisor:
    """A hypervisor that owns HS-mode, written the way virtkit's monitors are: a loop
    on the hart's exits. Guest memory is demand-paged: the G-stage table starts empty
    and every guest-page fault maps one host page, filled from the guest's image."""

    HOST_POOL = 0x8001_0000  # host pages for G-stage tables and guest memory come from here
    GUEST_RAM = (0x8000_0000, 0x8040_0000)  # the guest physical RAM the guest may use
    VMID = 1

    def __init__(self, image: dict[int, bytes]):
        self.hart = hart = Hart(RAM_SIZE, trap_exits="HS")
        open_pmp(hart)
        hart.csr["medeleg"] = sum(
            1 << cause
            for cause in (
                C.CAUSE_FETCH_GUEST_PAGE_FAULT,
                C.CAUSE_LOAD_GUEST_PAGE_FAULT,
                C.CAUSE_STORE_GUEST_PAGE_FAULT,
                C.CAUSE_VIRTUAL_SUPERVISOR_ECALL,
                C.CAUSE_VIRTUAL_INSTRUCTION,
            )
        )
        self.image = image  # guest physical page -> its 4 KiB, from the ELF or assembler
        self.next_page = self.HOST_POOL
        self.g_root = RAM_BASE  # 16 KiB, 16 KiB aligned, all invalid
        hart.write_memory(self.g_root, bytes(0x4000))
        hart.csr["hgatp"] = (1 << 31) | (self.VMID << 22) | (self.g_root >> 12)
        self.console = ""
        self.faults: list[tuple[int, int, int]] = []  # (cause, guest physical, htinst)

    def host_page(self) -> int:
        page, self.next_page = self.next_page, self.next_page + 0x1000
        self.hart.write_memory(page, bytes(4096))
        return page

    def map_guest_page(self, gpa: int) -> None:
        """Give guest physical page ``gpa`` a host page and its G-stage PTE (8.5.1)."""
        page = gpa & ~0xFFF
        if not self.GUEST_RAM[0] <= page < self.GUEST_RAM[1]:
            raise RuntimeError(f"the guest touched {gpa:#x}, outside its RAM")
        host = self.host_page()
        self.hart.write_memory(host, self.image.get(page, bytes(4096)))
        root_entry = self.g_root + 4 * (page >> 22)
        entry = self.hart.read_word(root_entry)
        if not entry & V:
            entry = pte(self.host_page(), V)
            self.hart.write_word(root_entry, entry)
        leaf = ((entry >> 10) << 12) + 4 * ((page >> 12) & 0x3FF)
        self.hart.write_word(leaf, pte(host, G_LEAF))
        # No HFENCE.GVMA: the page was invalid, and failed translations are never cached.

    def boot(self, entry: int, budget: int = 1_000_000) -> int:
        hart = self.hart
        hart.mode, hart.pc = "VS", entry
        while True:
            exit = hart.run(budget)
            match exit.reason:
                case E.EXIT_TRAP if exit.cause in E.GUEST_PAGE_FAULTS:
                    gpa = exit.guest_physical_address
                    self.faults.append((exit.cause, gpa, exit.htinst))
                    self.map_guest_page(gpa)
                case E.EXIT_TRAP if exit.cause == C.CAUSE_VIRTUAL_SUPERVISOR_ECALL:
                    if hart.x["a7"] == 8:  # SBI legacy shutdown
                        return hart.x["s0"]
                    if hart.x["a7"] == 1:  # SBI legacy console putchar
                        self.console += chr(hart.x["a0"])
                    hart.pc = exit.pc + 4
                case _:
                    raise RuntimeError(f"the guest stopped unexpectedly: {exit}")


def boot_lazy_guest() -> tuple[LazyHypervisor, int]:
    program = assemble(GUEST, filename="<guest>", base=RAM_BASE)
    image: dict[int, bytes] = {}
    for address, data in program.segments():
        for offset in range(0, len(data), 4096):
            chunk = data[offset : offset + 4096]
            image[address + offset] = chunk + bytes(4096 - len(chunk))
    hypervisor = LazyHypervisor(image)
    satp = hypervisor.boot(program.entry)
    return hypervisor, satp


def test_a_python_hypervisor_boots_a_paging_guest_on_an_empty_g_stage():
    hypervisor, satp = boot_lazy_guest()
    hart = hypervisor.hart
    assert hypervisor.console == "hello from VS-mode, paged twice\n"
    assert satp == (1 << 31) | (0x8010_0000 >> 12) == hart.csr["vsatp"]
    assert hart.csr["satp"] == 0  # the hypervisor's own satp was never touched
    # Each guest page faulted once, when first touched: the code on its fetch (htinst
    # 0), the tables and the data page on the guest's stores to them.
    causes = {gpa: (cause, htinst) for cause, gpa, htinst in hypervisor.faults}
    assert causes[RAM_BASE] == (C.CAUSE_FETCH_GUEST_PAGE_FAULT, 0)
    assert causes[0x8010_0800] == (C.CAUSE_STORE_GUEST_PAGE_FAULT, word("sw t1, 0(x0)"))
    assert set(causes) == {RAM_BASE, 0x8010_0800, 0x8010_1000, 0x8020_0000}
    assert hart.stats["instructions_by_mode"].keys() == {"VS"}


def test_the_hypervisor_runs_without_the_jit():
    """The H extension in the plain-Python core (NUMBA_DISABLE_JIT=1)."""
    import os
    import subprocess
    import sys

    script = (
        "from test_hart_hypervisor import boot_lazy_guest\n"
        "hypervisor, satp = boot_lazy_guest()\n"
        "print(repr(hypervisor.console), hex(satp), len(hypervisor.faults))\n"
    )
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=os.path.dirname(__file__),
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "'hello from VS-mode, paged twice\\n' 0x80080100 4"
