"""Micro-programs for the hart's privileged architecture (privileged spec 20211203).

Each test sets up the state it needs from Python, runs a few instructions and checks
what the spec says must happen. With ``trap_exits="all"`` a trap exits to Python
before anything architectural happens, which lets a test see exactly which trap an
instruction raises; with the default "none" the hart takes the trap itself.
"""

from __future__ import annotations

import pytest
from support import RAM_BASE, make_hart, run_program

from virtkit.cpu import Hart
from virtkit.cpu import exits as E
from virtkit.cpu import state as S
from virtkit.isa import causes as C
from virtkit.isa import csrs
from virtkit.isa.asm import assemble

MSTATUS = csrs.BY_NAME["mstatus"]


def field(name: str, value: int) -> int:
    return MSTATUS.field(name).get(value)


def open_pmp(hart: Hart) -> None:
    """Let S and U access everything (as firmware does): one NAPOT entry, RWX."""
    hart.csr["pmpaddr0"] = 0xFFFFFFFF
    hart.csr["pmpcfg0"] = 0x1F


def one_instruction(text: str, mode: str = "M", **options) -> tuple[Hart, E.Exit]:
    """Run the single instruction ``text`` in ``mode`` with every trap exiting."""
    options.setdefault("trap_exits", "all")
    hart = make_hart(f"{text}\nebreak\n", **options)
    open_pmp(hart)
    hart.csr["mcounteren"] = 0xFFFFFFFF
    hart.csr["scounteren"] = 0xFFFFFFFF
    hart.mode = mode
    return hart, hart.run(1)


def word(text: str) -> int:
    return int.from_bytes(assemble(text).to_binary()[:4], "little")


# -- CSR access rules (2.1) ---------------------------------------------------------------

LEVEL = {"U": csrs.PRIV_U, "S": csrs.PRIV_S, "M": csrs.PRIV_M}


@pytest.mark.parametrize("mode", ["M", "S", "U"])
def test_csr_read_access_follows_the_number(mode):
    for csr in csrs.CSRS:
        hart, exit = one_instruction(f"csrr a0, {csr.number:#x}", mode)
        # Hypervisor and VS CSRs (numbers at level 2) are for HS-mode and M (8.2).
        required = csrs.PRIV_S if csr.privilege == csrs.PRIV_H else csr.privilege
        expect_legal = LEVEL[mode] >= required
        if expect_legal:
            assert exit.reason == E.EXIT_BUDGET, f"{csr.name} from {mode}: {exit}"
        else:
            assert exit.reason == E.EXIT_TRAP, f"{csr.name} from {mode} should trap"
            assert exit.cause == C.CAUSE_ILLEGAL_INSTRUCTION
            assert exit.tval == word(f"csrr a0, {csr.number:#x}")


def test_writing_a_read_only_csr_is_illegal_but_reading_it_with_csrrs_x0_is_not():
    for name in ("mvendorid", "marchid", "mimpid", "mhartid", "cycle", "time", "instret"):
        _, exit = one_instruction(f"csrw {name}, a0")
        assert exit.reason == E.EXIT_TRAP and exit.cause == C.CAUSE_ILLEGAL_INSTRUCTION, name
        _, exit = one_instruction(f"csrrs a0, {name}, zero")
        assert exit.reason == E.EXIT_BUDGET, name


@pytest.mark.parametrize("number", [0x001, 0x123, 0x5C0, 0x7B0, 0xFFF])
def test_unknown_csrs_are_illegal_with_the_instruction_in_tval(number):
    _, exit = one_instruction(f"csrr t0, {number:#x}")
    assert exit.reason == E.EXIT_TRAP
    assert exit.cause == C.CAUSE_ILLEGAL_INSTRUCTION
    assert exit.tval == word(f"csrr t0, {number:#x}")


@pytest.mark.parametrize(
    "mode, mcounteren, scounteren, legal",
    [
        ("S", 0, 0xFFFFFFFF, False),
        ("S", 0xFFFFFFFF, 0, True),
        ("U", 0xFFFFFFFF, 0, False),
        ("U", 0, 0xFFFFFFFF, False),
        ("U", 0xFFFFFFFF, 0xFFFFFFFF, True),
    ],
)
def test_counter_enables_gate_cycle_time_and_instret(mode, mcounteren, scounteren, legal):
    for name in ("cycle", "time", "instret", "cycleh", "hpmcounter3"):
        hart = make_hart(f"csrr a0, {name}\nebreak\n", trap_exits="all")
        open_pmp(hart)
        hart.csr["mcounteren"] = mcounteren
        hart.csr["scounteren"] = scounteren
        hart.mode = mode
        exit = hart.run(1)
        assert (exit.reason == E.EXIT_BUDGET) == legal, (name, mode, exit)


def test_tvm_tsr_and_tw_make_s_mode_instructions_illegal():
    for text, bit in (
        ("csrr a0, satp", "TVM"),
        ("sfence.vma", "TVM"),
        ("sret", "TSR"),
        ("wfi", "TW"),
    ):
        hart = make_hart(f"{text}\nebreak\n", trap_exits="all")
        open_pmp(hart)
        hart.csr["mstatus"] = MSTATUS.field(bit).mask
        hart.mode = "S"
        exit = hart.run(1)
        assert exit.reason == E.EXIT_TRAP and exit.cause == C.CAUSE_ILLEGAL_INSTRUCTION, text


@pytest.mark.parametrize("text", ["mret", "sret", "wfi", "sfence.vma", "csrr a0, sstatus"])
def test_privileged_instructions_are_illegal_in_u_mode(text):
    _, exit = one_instruction(text, "U")
    assert exit.reason == E.EXIT_TRAP and exit.cause == C.CAUSE_ILLEGAL_INSTRUCTION


def test_mret_is_illegal_in_s_mode():
    _, exit = one_instruction("mret", "S")
    assert exit.reason == E.EXIT_TRAP and exit.cause == C.CAUSE_ILLEGAL_INSTRUCTION


# -- WARL fields -------------------------------------------------------------------------------


def test_misa_says_rv32_ima_hsu_and_ignores_writes():
    hart = Hart(1 << 16)
    misa = hart.csr["misa"]
    assert misa >> 30 == 1
    letters = {chr(ord("A") + i) for i in range(26) if misa >> i & 1}
    assert letters == set("AHIMSU")
    hart.csr["misa"] = 0
    assert hart.csr["misa"] == misa


def test_mstatus_keeps_legal_values_only():
    hart = Hart(1 << 16)
    hart.csr["mstatus"] = 0xFFFFFFFF
    value = hart.csr["mstatus"]
    assert field("FS", value) == 0 and field("VS", value) == 0 and field("SD", value) == 0
    assert field("MPP", value) == 3
    hart.csr["mstatus"] = 2 << MSTATUS.field("MPP").lsb  # MPP = 2 is reserved
    assert field("MPP", hart.csr["mstatus"]) == 3  # the old legal value stays
    hart.csr["sstatus"] = 0xFFFFFFFF
    assert field("MIE", hart.csr["mstatus"]) == 0  # sstatus cannot reach M fields
    assert hart.csr["sstatus"] & ~csrs.mask("sstatus", "SIE", "SPIE", "SPP", "SUM", "MXR") == 0


def test_epc_and_tvec_warl():
    hart = Hart(1 << 16)
    hart.csr["mepc"] = 0x80000003
    assert hart.csr["mepc"] == 0x80000000
    hart.csr["mtvec"] = 0x80000101
    assert hart.csr["mtvec"] == 0x80000101  # vectored is legal
    hart.csr["mtvec"] = 0x80000202
    assert hart.csr["mtvec"] & 3 == 0  # mode 2 is reserved
    hart.csr["medeleg"] = 0xFFFFFFFF
    assert not hart.csr["medeleg"] >> C.CAUSE_MACHINE_ECALL & 1
    hart.csr["mideleg"] = 0xFFFFFFFF
    assert hart.csr["mideleg"] == csrs.mask(
        "mip", "SSIP", "STIP", "SEIP", "VSSIP", "VSTIP", "VSEIP"
    )


# -- Traps: entry, delegation, return -------------------------------------------------------


@pytest.mark.parametrize("mode, cause", [("U", 8), ("S", 9), ("M", 11)])
def test_ecall_cause_names_the_mode(mode, cause):
    _, exit = one_instruction("ecall", mode)
    assert exit.reason == E.EXIT_TRAP and exit.cause == cause and exit.tval == 0


def test_trap_entry_into_m_mode_stacks_mie_and_records_the_trap():
    hart = make_hart("ecall\n", trap_exits="none")
    open_pmp(hart)
    hart.csr["mtvec"] = 0x80000100
    hart.csr["mstatus"] = MSTATUS.field("SIE").mask | MSTATUS.field("MIE").mask
    hart.mode = "S"
    hart.run(1)
    status = hart.csr["mstatus"]
    assert hart.mode == "M" and hart.pc == 0x80000100
    assert hart.csr["mepc"] == RAM_BASE
    assert hart.csr["mcause"] == C.CAUSE_SUPERVISOR_ECALL
    assert field("MPP", status) == 1 and field("MPIE", status) == 1 and field("MIE", status) == 0
    assert field("SIE", status) == 1  # S-level state is untouched by an M trap


def test_delegated_exceptions_go_to_s_mode_but_never_from_m_mode():
    hart = make_hart("ecall\n")
    open_pmp(hart)
    hart.csr["medeleg"] = 1 << C.CAUSE_USER_ECALL
    hart.csr["stvec"] = 0x80000200
    hart.csr["mtvec"] = 0x80000100
    hart.csr["mstatus"] = MSTATUS.field("SIE").mask
    hart.mode = "U"
    hart.run(1)
    status = hart.csr["mstatus"]
    assert hart.mode == "S" and hart.pc == 0x80000200
    assert hart.csr["scause"] == C.CAUSE_USER_ECALL and hart.csr["sepc"] == RAM_BASE
    assert field("SPP", status) == 0 and field("SPIE", status) == 1 and field("SIE", status) == 0
    assert hart.csr["mcause"] == 0
    # In M-mode a delegated exception still traps to M-mode.
    hart = make_hart(".word 0xffffffff\n")
    hart.csr["medeleg"] = 1 << C.CAUSE_ILLEGAL_INSTRUCTION
    hart.csr["mtvec"] = 0x80000100
    hart.run(1)
    assert hart.mode == "M" and hart.csr["mcause"] == C.CAUSE_ILLEGAL_INSTRUCTION
    assert hart.csr["mtval"] == 0xFFFFFFFF


def test_mret_restores_privilege_and_interrupt_enable_and_clears_mprv():
    hart = make_hart("mret\n")
    hart.csr["mepc"] = 0x80000040
    hart.csr["mstatus"] = (
        MSTATUS.field("MPIE").mask | (1 << MSTATUS.field("MPP").lsb) | MSTATUS.field("MPRV").mask
    )
    hart.run(1)
    status = hart.csr["mstatus"]
    assert hart.mode == "S" and hart.pc == 0x80000040
    assert field("MIE", status) == 1 and field("MPIE", status) == 1
    assert field("MPP", status) == 0 and field("MPRV", status) == 0


def test_sret_restores_privilege_and_interrupt_enable():
    hart = make_hart("sret\n")
    open_pmp(hart)
    hart.mode = "S"
    hart.csr["sepc"] = 0x80000080
    hart.csr["mstatus"] = MSTATUS.field("SPIE").mask
    hart.run(1)
    status = hart.csr["mstatus"]
    assert hart.mode == "U" and hart.pc == 0x80000080
    assert field("SIE", status) == 1 and field("SPIE", status) == 1 and field("SPP", status) == 0


def test_ebreak_traps_with_the_pc_in_tval_unless_a_debugger_owns_it():
    hart = make_hart("ebreak\n", ebreak_exits=False, trap_exits="all")
    exit = hart.run(1)
    assert exit.cause == C.CAUSE_BREAKPOINT and exit.tval == RAM_BASE
    hart = make_hart("ebreak\n", ebreak_exits=True)
    assert hart.run(1).reason == E.EXIT_EBREAK


def test_misaligned_jump_target_raises_on_the_jump_and_keeps_rd():
    hart = make_hart("li t0, 0x80000102\njalr ra, 0(t0)\n", trap_exits="all")
    hart.x["ra"] = 7
    exit = hart.run(10)
    assert exit.reason == E.EXIT_TRAP and exit.cause == C.CAUSE_MISALIGNED_FETCH
    assert exit.tval == 0x80000102 and exit.pc == hart.program.symbols.get("_start", RAM_BASE) + 8
    assert hart.x["ra"] == 7


# -- Interrupts (3.1.9) ------------------------------------------------------------------------

MIP = csrs.BY_NAME["mip"]


def interrupt_hart(**options) -> Hart:
    hart = make_hart("1: j 1b\n", **options)
    hart.csr["mtvec"] = 0x80000100
    return hart


def test_vectored_mode_sends_interrupts_to_base_plus_four_times_cause():
    hart = interrupt_hart()
    hart.csr["mtvec"] = 0x80000101
    hart.csr["mie"] = MIP.field("MSIP").mask
    hart.csr["mstatus"] = MSTATUS.field("MIE").mask
    hart.arrays.st[S.MSIP] = 1  # the CLINT's msip, as a store to 0x0200_0000 sets it
    hart.run(1)
    assert hart.pc == 0x80000100 + 4 * C.IRQ_M_SOFT
    assert hart.csr["mcause"] == (1 << 31) | C.IRQ_M_SOFT


def test_interrupt_priority_mei_msi_mti_sei_ssi_sti():
    order = [C.IRQ_M_EXT, C.IRQ_M_SOFT, C.IRQ_M_TIMER, C.IRQ_S_EXT, C.IRQ_S_SOFT, C.IRQ_S_TIMER]
    hart = interrupt_hart(trap_exits="all")
    hart.csr["mie"] = 0xFFF
    hart.csr["mstatus"] = MSTATUS.field("MIE").mask
    hart.set_interrupt_line(MIP.field("MEIP").mask, True)
    hart.csr["mip"] = MIP.field("SSIP").mask | MIP.field("STIP").mask | MIP.field("SEIP").mask
    hart.arrays.st[S.MTIMECMP] = 0  # MTIP pending
    hart.arrays.st[S.MSIP] = 1
    seen = []
    for cause in order:
        exit = hart.run(1)
        assert exit.reason == E.EXIT_TRAP and exit.interrupt
        seen.append(exit.cause)
        # Lower the line that was just reported, as a handler would.
        if cause == C.IRQ_M_EXT:
            hart.set_interrupt_line(MIP.field("MEIP").mask, False)
        elif cause == C.IRQ_M_SOFT:
            hart.arrays.st[S.MSIP] = 0
        elif cause == C.IRQ_M_TIMER:
            hart.arrays.st[S.MTIMECMP] = 1 << 62
        else:
            hart.csr["mip"] = hart.csr["mip"] & ~(1 << cause)
    assert seen == order


def test_m_interrupts_are_masked_by_mie_only_in_m_mode():
    hart = interrupt_hart(trap_exits="all")
    hart.csr["mie"] = MIP.field("MSIP").mask
    hart.arrays.st[S.MSIP] = 1
    assert hart.run(5).reason == E.EXIT_BUDGET  # M-mode with MIE = 0: not taken
    open_pmp(hart)
    hart.mode = "S"
    exit = hart.run(5)  # below M, M-level interrupts are always enabled
    assert exit.reason == E.EXIT_TRAP and exit.cause == C.IRQ_M_SOFT


def test_delegated_s_interrupts_respect_sie_in_s_mode_and_not_in_u_mode():
    hart = interrupt_hart()
    open_pmp(hart)
    hart.csr["stvec"] = 0x80000200
    hart.csr["mideleg"] = MIP.field("STIP").mask
    hart.csr["mie"] = MIP.field("STIP").mask
    hart.csr["mip"] = MIP.field("STIP").mask
    hart.mode = "S"
    hart.run(3)
    assert hart.mode == "S" and hart.pc < 0x80000100  # SIE = 0: not taken
    hart.mode = "M"
    hart.csr["mstatus"] = MSTATUS.field("SIE").mask
    hart.run(3)
    assert hart.mode == "M"  # an S-level interrupt never interrupts M-mode
    hart.mode = "U"
    hart.csr["mstatus"] = 0
    hart.run(1)
    assert hart.mode == "S" and hart.pc == 0x80000200
    assert hart.csr["scause"] == (1 << 31) | C.IRQ_S_TIMER


def test_timer_interrupt_arrives_when_mtime_reaches_mtimecmp():
    hart = interrupt_hart(ticks_per_mtime=10)
    hart.csr["mie"] = MIP.field("MTIP").mask
    hart.csr["mstatus"] = MSTATUS.field("MIE").mask
    hart.arrays.st[S.MTIMECMP] = 50
    hart.run(10_000)
    assert hart.pc == 0x80000100
    assert hart.mtime == 50
    assert hart.instret == 500


def test_wfi_skips_ahead_to_the_timer_and_exits_when_nothing_can_wake_it():
    source = "wfi\nebreak\n"
    hart = make_hart(source, ticks_per_mtime=10)
    hart.csr["mie"] = MIP.field("MTIP").mask
    hart.arrays.st[S.MTIMECMP] = 1000
    exit = hart.run(100)
    assert exit.reason == E.EXIT_EBREAK  # WFI ended once the timer fired (MIE = 0)
    assert hart.mtime == 1000 and hart.instret == 1
    hart = make_hart(source)
    exit = hart.run(100)
    assert exit.reason == E.EXIT_WFI and hart.pc == RAM_BASE + 4


# -- Memory: access faults, misaligned accesses, MMIO exits, LR/SC -------------------------


def test_access_faults_outside_ram_carry_the_address():
    _, exit = one_instruction("lw a0, 0(zero)")
    assert exit.cause == C.CAUSE_LOAD_ACCESS and exit.tval == 0
    hart, _ = one_instruction("li t0, 0x1234\nsw a0, 0(t0)")
    exit = hart.run(5)
    assert exit.cause == C.CAUSE_STORE_ACCESS and exit.tval == 0x1234
    hart, _ = one_instruction("li t0, 0x40\njr t0")
    exit = hart.run(5)
    assert exit.cause == C.CAUSE_FETCH_ACCESS and exit.tval == 0x40


def test_misaligned_loads_and_stores_are_done_in_hardware():
    hart = run_program(
        """
        la t0, data
        lw a0, 1(t0)
        lhu a1, 3(t0)
        li t1, 0xaabbccdd
        sw t1, 6(t0)
        ebreak
        .align 4
        data: .word 0x44332211, 0x88776655, 0, 0
        """
    )
    assert hart.x["a0"] == 0x55443322
    assert hart.x["a1"] == 0x5544
    data = hart.program.symbols["data"]
    assert hart.read_memory(data + 6, 4) == bytes.fromhex("ddccbbaa")


def test_misaligned_atomics_trap():
    hart, _ = one_instruction("li t0, 0x80000101\nlr.w a0, (t0)")
    exit = hart.run(5)
    assert exit.cause == C.CAUSE_MISALIGNED_LOAD
    hart, _ = one_instruction("li t0, 0x80000101\namoadd.w a0, a1, (t0)")
    exit = hart.run(5)
    assert exit.cause == C.CAUSE_MISALIGNED_STORE and exit.tval == 0x80000101


def test_lr_sc_succeeds_only_on_the_reserved_word():
    hart = run_program(
        """
        la t0, data
        sc.w a0, a1, (t0)     # no reservation: fails
        lr.w a2, (t0)
        sc.w a3, a1, (t0)     # succeeds
        sc.w a4, a1, (t0)     # the reservation is gone: fails
        ebreak
        data: .word 5
        """
    )
    assert (hart.x["a0"], hart.x["a2"], hart.x["a3"], hart.x["a4"]) == (1, 5, 0, 1)


def test_mmio_exits_and_completion():
    hart = make_hart(
        """
        li t0, 0x10000000
        lb a0, 0(t0)
        sh a1, 2(t0)
        ebreak
        """
    )
    hart.add_mmio_region(0x1000_0000, 0x100)
    hart.x["a1"] = 0x1234
    exit = hart.run(100)
    assert exit.reason == E.EXIT_MMIO_READ and exit.address == 0x1000_0000 and exit.size == 1
    assert exit.signed and exit.rd == 10
    hart.complete_mmio(0xF0)
    assert hart.x["a0"] == 0xFFFFFFF0  # lb sign-extends
    exit = hart.run(100)
    assert exit.reason == E.EXIT_MMIO_WRITE and exit.address == 0x1000_0002
    assert exit.size == 2 and exit.value == 0x1234
    with pytest.raises(RuntimeError, match="complete_mmio"):
        hart.run(1)
    hart.complete_mmio()
    assert hart.run(100).reason == E.EXIT_EBREAK


def test_breakpoints_stop_before_the_instruction_and_resume_past_it():
    hart = make_hart("li a0, 1\nli a0, 2\nli a0, 3\nebreak\n")
    hart.breakpoints = {RAM_BASE + 4}
    exit = hart.run(100)
    assert exit.reason == E.EXIT_BREAKPOINT and exit.pc == RAM_BASE + 4 and hart.x["a0"] == 1
    assert hart.run(100).reason == E.EXIT_EBREAK and hart.x["a0"] == 3


# -- PMP (3.7) ----------------------------------------------------------------------------------


def pmp_hart(mode: str) -> Hart:
    hart = make_hart("lw a0, 0(a1)\nebreak\n", trap_exits="all")
    hart.mode = mode
    return hart


def test_no_pmp_entry_means_no_access_below_m():
    hart = pmp_hart("S")
    exit = hart.run(1)
    assert exit.cause == C.CAUSE_FETCH_ACCESS


@pytest.mark.parametrize(
    "cfg, addresses, expected",
    [
        # TOR entry 1 over [entry0, entry1): R and X only.
        ("tor", (0x80000000 >> 2, 0x80001000 >> 2), {0x80000800: True, 0x80001000: False}),
        # NA4 on one word.
        ("na4", (0x80000800 >> 2,), {0x80000800: True, 0x80000804: False}),
        # NAPOT over 4 KiB at 0x80002000.
        ("napot", ((0x80002000 >> 2) | 0x1FF,), {0x80002FFC: True, 0x80003000: False}),
    ],
)
def test_pmp_address_matching(cfg, addresses, expected):
    for address, allowed in expected.items():
        hart = pmp_hart("S")
        mode = {"tor": 1, "na4": 2, "napot": 3}[cfg]
        if cfg == "tor":
            hart.csr["pmpaddr0"], hart.csr["pmpaddr1"] = addresses
            hart.csr["pmpcfg0"] = ((mode << 3) | 0b101) << 8  # entry 1: TOR, R and X
        else:
            hart.csr["pmpaddr0"] = addresses[0]
            hart.csr["pmpcfg0"] = (mode << 3) | 0b001  # R only
            # a second entry lets the code itself be fetched
            hart.csr["pmpaddr1"] = (0x80000000 >> 2) | 0x3F
            hart.csr["pmpcfg0"] = hart.csr["pmpcfg0"] | (((3 << 3) | 0b100) << 8)
        hart.x["a1"] = address
        exit = hart.run(1)
        if allowed:
            assert exit.reason == E.EXIT_BUDGET, (cfg, hex(address), exit)
        else:
            assert exit.cause == C.CAUSE_LOAD_ACCESS and exit.tval == address, (cfg, address)


def test_locked_pmp_entries_bind_m_mode_and_ignore_writes():
    hart = make_hart("sw a0, 0(a1)\nebreak\n", trap_exits="all")
    hart.csr["pmpaddr0"] = (0x80001000 >> 2) | 0x1FF  # 4 KiB NAPOT at 0x80001000
    hart.csr["pmpcfg0"] = 0x80 | (3 << 3) | 0b001  # locked, R only
    hart.x["a1"] = 0x80001000
    exit = hart.run(1)
    assert exit.cause == C.CAUSE_STORE_ACCESS
    hart.csr["pmpcfg0"] = 0x1F
    hart.csr["pmpaddr0"] = 0xFFFFFFFF
    assert hart.csr["pmpcfg0"] & 0xFF == 0x80 | (3 << 3) | 0b001
    assert hart.csr["pmpaddr0"] == (0x80001000 >> 2) | 0x1FF


# -- Sv32 (4.3) ----------------------------------------------------------------------------------

ROOT = 0x80010000  # root page table
LEAF_TABLE = 0x80011000  # second-level table for VA 0x40000000..0x403fffff
DATA_VA = 0x40000000
DATA_PA = 0x80020000
V, R, W, X, U, G, A, D = (1 << i for i in range(8))


def pte(pa: int, flags: int) -> int:
    return ((pa >> 12) << 10) | flags


def paged_hart(code: str, leaf_flags: int, *, code_user: bool, **options) -> Hart:
    options.setdefault("trap_exits", "all")
    hart = make_hart(code, **options)
    open_pmp(hart)
    # Code: an identity megapage at 0x80000000 (U-bit as the running mode needs it).
    hart.write_word(
        ROOT + 4 * (RAM_BASE >> 22), pte(RAM_BASE, V | R | W | X | A | D | (U if code_user else 0))
    )
    hart.write_word(ROOT + 4 * (DATA_VA >> 22), pte(LEAF_TABLE, V))
    hart.write_word(LEAF_TABLE, pte(DATA_PA, leaf_flags))
    hart.write_word(DATA_PA, 0x0010_0073)  # an ebreak to fetch, and a value to load
    hart.csr["satp"] = (1 << 31) | (ROOT >> 12)
    return hart


def expected_permission(flags, mode, access, sum_, mxr):
    """Privileged spec 4.3.1/4.3.2, stated independently of the hart's code."""
    r, w, x, u = bool(flags & R), bool(flags & W), bool(flags & X), bool(flags & U)
    if w and not r:
        return False  # W without R is reserved: a page fault whatever X says
    if not (r or x):
        return False  # not a leaf, and there is no lower level: a page fault
    if mode == "U" and not u:
        return False
    if mode == "S" and u and (access == "fetch" or not sum_):
        return False
    if access == "fetch":
        return x
    if access == "load":
        return r or (mxr and x)
    return w


@pytest.mark.parametrize("mode", ["S", "U"])
@pytest.mark.parametrize("access", ["fetch", "load", "store"])
def test_sv32_permission_matrix(mode, access):
    causes = {"fetch": C.CAUSE_FETCH_PAGE_FAULT, "load": C.CAUSE_LOAD_PAGE_FAULT}
    code = {"fetch": "jr a1", "load": "lw a0, 0(a1)", "store": "sw a0, 0(a1)"}[access]
    for rwx in range(8):
        for u in (0, U):
            for sum_ in (0, 1):
                for mxr in (0, 1):
                    flags = V | A | D | u | (rwx << 1)
                    hart = paged_hart(f"{code}\nebreak\n", flags, code_user=mode == "U")
                    hart.csr["mstatus"] = (sum_ << 18) | (mxr << 19)
                    hart.mode = mode
                    hart.x["a1"] = DATA_VA
                    exit = hart.run(2)
                    ok = expected_permission(flags, mode, access, sum_, mxr)
                    label = (mode, access, f"rwx={rwx:03b}", f"u={bool(u)}", sum_, mxr)
                    if ok and access == "fetch":
                        assert exit.reason == E.EXIT_EBREAK and hart.pc == DATA_VA, label
                    elif ok:
                        assert exit.reason in (E.EXIT_BUDGET, E.EXIT_EBREAK), (label, exit)
                    else:
                        assert exit.reason == E.EXIT_TRAP, (label, exit)
                        assert exit.cause == causes.get(access, C.CAUSE_STORE_PAGE_FAULT), label
                        assert exit.tval == DATA_VA, label


def test_tlb_entries_carry_the_asid():
    """Switching satp to another ASID keeps the TLB's entries, which match only their own
    ASID (4.1.11); a satp write that keeps the ASID flushes them all."""
    root2, leaf2, data2 = ROOT + 0x2000, LEAF_TABLE + 0x2000, DATA_PA + 0x1000
    hart = paged_hart("lw a0, 0(a1)\nebreak\n", V | R | A, code_user=False)
    hart.mode = "S"
    # A second address space: the same code page (the TLB is direct-mapped by page
    # number, so its entry takes the place of the first space's), and its data on the
    # next virtual page, which has an entry of its own.
    hart.write_word(root2 + 4 * (RAM_BASE >> 22), hart.read_word(ROOT + 4 * (RAM_BASE >> 22)))
    hart.write_word(root2 + 4 * (DATA_VA >> 22), pte(leaf2, V))
    hart.write_word(leaf2 + 4, pte(data2, V | R | A))
    hart.write_word(data2, 0x2222)
    shift = csrs.shift("satp", "ASID")
    space1 = (1 << 31) | (1 << shift) | (ROOT >> 12)
    space2 = (1 << 31) | (2 << shift) | (root2 >> 12)
    misses = hart.arrays.stats[S.STAT_TLB_MISSES : S.STAT_TLB_MISSES + 1]

    def load(satp: int, va: int) -> tuple[int, int]:
        """Set satp, load from ``va``: (the value, the TLB misses it took)."""
        hart.csr["satp"] = satp
        hart.pc = RAM_BASE
        hart.x["a1"] = va
        before = int(misses[0])
        hart.run(1)
        return hart.x["a0"], int(misses[0]) - before

    assert load(space1, DATA_VA) == (0x0010_0073, 2)  # the code page and the data page
    assert load(space2, DATA_VA + 4096) == (0x2222, 2)
    assert load(space1, DATA_VA) == (0x0010_0073, 1)  # only the code page: data kept
    # ASID 1's entry does not match under ASID 2: DATA_VA is not mapped there.
    hart.csr["satp"] = space2
    hart.pc, hart.x["a1"] = RAM_BASE, DATA_VA
    exit = hart.run(1)
    assert exit.reason == E.EXIT_TRAP and exit.cause == C.CAUSE_LOAD_PAGE_FAULT
    # The same ASID with another root: the TLB is flushed, the new table is used.
    assert load((1 << 31) | (2 << shift) | (ROOT >> 12), DATA_VA) == (0x0010_0073, 2)


def test_sv32_translates_loads_and_sets_accessed_and_dirty():
    hart = paged_hart("lw a0, 0(a1)\nsw a2, 4(a1)\nebreak\n", V | R | W, code_user=False)
    hart.mode = "S"
    hart.x["a1"] = DATA_VA
    hart.x["a2"] = 0x5A5A
    hart.run(1)
    assert hart.x["a0"] == 0x0010_0073
    assert hart.read_word(LEAF_TABLE) & (A | D) == A
    hart.run(1)
    assert hart.read_word(DATA_PA + 4) == 0x5A5A
    assert hart.read_word(LEAF_TABLE) & (A | D) == A | D


def test_sv32_misaligned_megapage_faults():
    hart = paged_hart("lw a0, 0(a1)\nebreak\n", V | R, code_user=False)
    hart.write_word(ROOT + 4 * (DATA_VA >> 22), pte(DATA_PA, V | R | A))  # ppn[0] != 0
    hart.mode = "S"
    hart.x["a1"] = DATA_VA
    exit = hart.run(1)
    assert exit.cause == C.CAUSE_LOAD_PAGE_FAULT and exit.tval == DATA_VA


def test_sv32_megapage_translation():
    hart = paged_hart("lw a0, 0(a1)\nebreak\n", V | R, code_user=False)
    hart.write_word(ROOT + 4 * (DATA_VA >> 22), pte(RAM_BASE, V | R | A))
    hart.mode = "S"
    hart.x["a1"] = DATA_VA + 0x20000
    hart.run(1)
    assert hart.x["a0"] == 0x0010_0073


def test_sfence_vma_makes_a_changed_pte_visible():
    hart = paged_hart(
        "lw a0, 0(a1)\nsfence.vma\nlw a2, 0(a1)\nebreak\n", V | R | A, code_user=False
    )
    hart.mode = "S"
    hart.x["a1"] = DATA_VA
    hart.write_word(DATA_PA + 0x1000, 0xCAFE)
    hart.run(1)
    hart.write_word(LEAF_TABLE, pte(DATA_PA + 0x1000, V | R | A))
    hart.run(3)
    assert hart.x["a0"] == 0x0010_0073 and hart.x["a2"] == 0xCAFE


def test_mprv_translates_m_mode_loads_with_mpp_privilege():
    hart = paged_hart("lw a0, 0(a1)\nebreak\n", V | R | A, code_user=False)
    hart.x["a1"] = DATA_VA
    hart.csr["mstatus"] = MSTATUS.field("MPRV").mask | (1 << MSTATUS.field("MPP").lsb)
    hart.run(1)
    assert hart.mode == "M" and hart.x["a0"] == 0x0010_0073
    # MPP = U on a supervisor page: a load page fault, although the hart is in M-mode.
    hart = paged_hart("lw a0, 0(a1)\nebreak\n", V | R | A, code_user=False)
    hart.x["a1"] = DATA_VA
    hart.csr["mstatus"] = MSTATUS.field("MPRV").mask
    exit = hart.run(1)
    assert exit.cause == C.CAUSE_LOAD_PAGE_FAULT
    # Without MPRV, M-mode does not translate: DATA_VA is not RAM.
    hart = paged_hart("lw a0, 0(a1)\nebreak\n", V | R | A, code_user=False)
    hart.x["a1"] = DATA_VA
    exit = hart.run(1)
    assert exit.cause == C.CAUSE_LOAD_ACCESS


# -- Counters and time ------------------------------------------------------------------------


def test_counters_count_retired_instructions_and_are_writable_from_m():
    hart = run_program(
        """
        csrr a0, minstret
        nop
        nop
        csrr a1, minstret
        csrw mcycle, zero
        csrr a2, mcycle
        csrr a3, time
        ebreak
        """,
        ticks_per_mtime=1,
    )
    assert hart.x["a1"] - hart.x["a0"] == 3
    assert hart.x["a2"] == 1
    assert hart.x["a3"] == 6


def test_the_core_runs_without_the_jit(tmp_path):
    """The whole core also runs as plain Python (NUMBA_DISABLE_JIT=1)."""
    import os
    import subprocess
    import sys

    script = (
        "from support import run_program\n"
        "h = run_program('li a0, 6\\nli a1, 7\\nmul a2, a0, a1\\nebreak\\n')\n"
        "print(h.x['a2'])\n"
    )
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=os.path.dirname(__file__),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "42"


# -- The Popek-Goldberg switch, mip read-modify-write, the pc at a trap exit --------------


def test_sstatus_in_u_mode_traps_unless_the_popek_goldberg_switch_is_on():
    hart, exit = one_instruction("csrr a0, sstatus", "U")
    assert (exit.reason, exit.cause) == (E.EXIT_TRAP, C.CAUSE_ILLEGAL_INSTRUCTION)
    for text in ("csrr a0, sstatus", "csrci sstatus, 2", "csrw sstatus, a1"):
        hart, _ = one_instruction("nop", "U")
        hart.sstatus_unprivileged = True
        hart.reset(RAM_BASE)  # the switch is configuration: it survives reset
        assert hart.sstatus_unprivileged
        program = assemble(f"{text}\nebreak\n", base=RAM_BASE)
        hart.write_memory(RAM_BASE, program.to_binary())
        open_pmp(hart)
        hart.csr["sstatus"] = 0x22  # SIE and SPIE
        hart.x["a1"] = 0
        hart.mode = "U"
        exit = hart.run(2)
        # No trap: the CSR instruction retired and the hart reached the ebreak.
        assert (exit.reason, exit.pc) == (E.EXIT_EBREAK, RAM_BASE + 4), (text, exit)
        assert hart.csr["sstatus"] == 0x22, f"{text} changed sstatus"
        if text.startswith("csrr"):
            assert hart.x["a0"] == 0x22  # the real sstatus, read without a trap
    # Other CSRs keep trapping: the switch makes only sstatus non-privileged.
    hart, _ = one_instruction("nop", "U")
    hart.sstatus_unprivileged = True
    hart.write_memory(RAM_BASE, assemble("csrr a0, sie\n").to_binary())
    hart.pc, hart.mode = RAM_BASE, "U"
    assert hart.run(1).cause == C.CAUSE_ILLEGAL_INSTRUCTION


def test_csrrs_on_mip_leaves_the_device_driven_seip_line_alone():
    """3.1.9: CSRRS/CSRRC use only the software-writable SEIP bit, so a device's line
    read back by the read-modify-write must not stay set after the device drops it."""
    hart = make_hart("li t0, 0x20\ncsrs mip, t0\nebreak\n")
    seip = 1 << C.IRQ_S_EXT
    hart.set_interrupt_line(seip, True)
    assert hart.run(10).reason == E.EXIT_EBREAK
    hart.set_interrupt_line(seip, False)
    assert hart.csr["mip"] == 0x20  # STIP only: SEIP went with the line


@pytest.mark.parametrize(
    "text, cause",
    [
        ("lw a0, 0(zero)", C.CAUSE_LOAD_ACCESS),
        (".word 0", C.CAUSE_ILLEGAL_INSTRUCTION),
        ("csrr a0, mstatus", C.CAUSE_ILLEGAL_INSTRUCTION),
        ("ecall", C.CAUSE_USER_ECALL),
    ],
)
def test_hart_pc_is_the_trapping_instruction_after_a_trap_exit(text, cause):
    hart = make_hart(f"nop\nnop\n{text}\nnop\n", trap_exits="all")
    open_pmp(hart)
    hart.mode = "U"
    exit = hart.run(100)
    assert (exit.reason, exit.cause) == (E.EXIT_TRAP, cause)
    assert exit.pc == hart.pc == RAM_BASE + 8
