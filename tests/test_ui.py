"""The widget kit, headless: views build and update, and the plain functions under
them (the Sv32 explainer, the trap recorder, a monitor's exit recorder and its two page
tables) agree with the hart."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from support import RAM_BASE, make_hart

from virtkit.cpu import exits as E
from virtkit.cpu import mmu, sv32
from virtkit.cpu.inspect import code_around_pc, csr_rows, register_rows
from virtkit.cpu.trace import TrapRecorder
from virtkit.isa import causes as C
from virtkit.isa import csrs

ui = pytest.importorskip("virtkit.ui")
plots = pytest.importorskip("virtkit.ui.plots")

COUNTDOWN = """
_start: li a0, 3
loop:   addi a0, a0, -1
        bnez a0, loop
        ecall
        ebreak
handler:
        csrr t1, mepc
        addi t1, t1, 4
        csrw mepc, t1
        mret
"""


def countdown_hart():
    hart = make_hart(COUNTDOWN)
    hart.csr["mtvec"] = hart.program.symbols["handler"]
    return hart


# -- CPUView ---------------------------------------------------------------------------------


def test_cpu_view_step_moves_the_pc_label_and_marks_changed_registers():
    hart = countdown_hart()
    view = ui.CPUView(hart, hart.program)
    assert view.pc_label.value == f"pc {RAM_BASE:#010x}"
    view.on_step()
    assert view.pc_label.value == f"pc {RAM_BASE + 4:#010x}"
    assert "a0 0x00000003" in view.registers.value
    assert "color: #b00020" in view.registers.value  # a0 changed
    assert view.count_label.value == "1 instructions"


def test_cpu_view_highlights_the_source_line_at_the_pc():
    hart = countdown_hart()
    view = ui.CPUView(hart, hart.program, before=0, after=2)
    first = view.code.children[0].children[1].value
    assert "_start:" in first and "line 2: _start: li a0, 3" in first
    assert "background" in first
    assert "background" not in view.code.children[1].children[1].value


def test_cpu_view_breakpoint_dot_then_run_stops_there():
    hart = countdown_hart()
    view = ui.CPUView(hart, hart.program, before=0, after=4)
    ecall_row, dot, _line = view._code_rows[3]
    ecall = hart.program.symbols["loop"] + 8
    assert ecall_row.address == ecall
    dot.click()
    assert hart.breakpoints == {ecall}
    assert dot.description == "●"
    exit = asyncio.run(view.run_until_exit())
    assert exit.reason == E.EXIT_BREAKPOINT and hart.pc == ecall
    assert view.status.value.startswith("stopped: BREAKPOINT")


def test_cpu_view_step_n_and_reset():
    hart = countdown_hart()
    view = ui.CPUView(hart, hart.program)
    view.n_box.value = 5
    view.on_step_n()
    assert hart.instret == 5
    view.on_reset()
    assert hart.pc == RAM_BASE and hart.instret == 0 and hart.x["a0"] == 0
    assert view.pc_label.value == f"pc {RAM_BASE:#010x}"


def test_cpu_view_run_pauses_between_batches():
    hart = make_hart("spin: j spin")
    view = ui.CPUView(hart, hart.program, batch=1000)

    async def run_then_pause():
        task = asyncio.ensure_future(view.run_until_exit())
        await asyncio.sleep(0)
        view.on_pause()
        return await task

    exit = asyncio.run(run_then_pause())
    assert exit.reason == E.EXIT_BUDGET
    assert view.status.value == "paused"
    assert hart.instret == 1000
    assert view.count_label.value == "1,000 instructions"


def test_run_button_without_an_event_loop_says_what_to_do():
    hart = countdown_hart()
    view = ui.CPUView(hart)
    view.on_run()
    assert "Step N" in view.status.value and hart.instret == 0


# -- plain inspection functions -------------------------------------------------------------


def test_register_rows_and_code_around_pc():
    hart = countdown_hart()
    before = hart.x.as_dict()
    hart.step()
    rows = register_rows(hart, before)
    assert [r.name for r in rows if r.changed] == ["a0"]
    lines = code_around_pc(hart, hart.program, before=1, after=1)
    assert [line.is_pc for line in lines] == [False, True, False]
    assert lines[1].text == "add a0,a0,-1"  # objdump's spelling of addi


def test_csr_rows_name_the_cause():
    hart = countdown_hart()
    hart.run(100)  # through the ecall and its handler to the ebreak
    rows = {row.name: row for row in csr_rows(hart)}
    assert rows["mcause"].value == C.CAUSE_MACHINE_ECALL
    assert rows["mcause"].note == "environment call from M-mode"
    assert rows["mtvec"].note == f"Direct, base {hart.program.symbols['handler']:#010x}"


def test_csr_view_and_trap_log_show_the_rows():
    hart = countdown_hart()
    recorder = TrapRecorder(hart)
    recorder.run(100)
    assert "environment call from M-mode" in ui.CSRView(hart).table.value
    log = ui.TrapLog(recorder)
    assert "M-mode handler at" in log.table.value and "ecall" in log.table.value


# -- TrapRecorder ---------------------------------------------------------------------------


def test_trap_recorder_logs_traps_the_program_handles_and_the_final_exit():
    hart = countdown_hart()
    recorder = TrapRecorder(hart)
    exit = recorder.run(100)
    assert exit.reason == E.EXIT_EBREAK
    assert hart.trap_exits == "none"  # restored
    trap, ebreak = recorder.rows
    assert (trap.sequence, trap.kind, trap.mode, trap.instruction) == (1, "trap", "M", "ecall")
    assert trap.pc == hart.program.symbols["loop"] + 8
    assert trap.cause == "environment call from M-mode"
    assert trap.handled_by == f"M-mode handler at {hart.program.symbols['handler']:#010x}"
    assert (ebreak.kind, ebreak.handled_by, ebreak.tval) == ("EBREAK", "the caller", 0)
    # The program ran exactly as it does without the recorder.
    plain = countdown_hart()
    plain_exit = plain.run(100)
    assert (plain_exit.reason, plain_exit.pc) == (exit.reason, exit.pc)
    assert plain.x.as_dict() == hart.x.as_dict()
    assert recorder.counts() == {"environment call from M-mode": 1, "ebreak": 1}


def test_trap_recorder_returns_traps_python_owns():
    hart = countdown_hart()
    hart.trap_exits = "M"
    recorder = TrapRecorder(hart)
    exit = recorder.run(100)
    assert exit.reason == E.EXIT_TRAP and exit.cause == C.CAUSE_MACHINE_ECALL
    assert recorder.rows[-1].handled_by == "Python (M-mode exit)"
    assert hart.pc == exit.pc  # not delivered: Python decides


# -- Sv32: the explainer against the hart ---------------------------------------------------

ROOT, L0 = 0x8001_0000, 0x8001_1000
V, R, W, X, U, A, D = (
    mmu.PTE_V,
    mmu.PTE_R,
    mmu.PTE_W,
    mmu.PTE_X,
    mmu.PTE_U,
    mmu.PTE_A,
    mmu.PTE_D,
)
# Second-level entries i map va 0x0040_0000 + i * 4 KiB to pa 0x8002_0000 + i * 4 KiB.
LEAF_FLAGS = [V | R | W | A | D, 0, V | W, V | R, V | X, V | R | W | U, V]


def pte(pa: int, flags: int) -> int:
    return ((pa >> 12) << 10) | flags


def paged_hart(source: str):
    hart = make_hart(source, trap_exits="all")
    hart.csr["pmpaddr0"], hart.csr["pmpcfg0"] = 0xFFFFFFFF, 0x1F
    hart.write_word(ROOT + 4 * 1, pte(L0, V))
    hart.write_word(ROOT + 4 * 2, pte(RAM_BASE, V | R | W | X | A | D))  # megapage
    hart.write_word(ROOT + 4 * 3, pte(RAM_BASE + 0x1000, V | R | W))  # misaligned megapage
    for i, flags in enumerate(LEAF_FLAGS):
        hart.write_word(L0 + 4 * i, pte(0x8002_0000 + 0x1000 * i, flags))
        hart.write_word(0x8002_0000 + 0x1000 * i, 0x1111_0000 + i)
    hart.csr["satp"] = (1 << 31) | (ROOT >> 12)
    return hart


ADDRESSES = [0x0040_0000, 0x0040_1004, 0x0040_2000, 0x0040_3008, 0x0040_4000]
ADDRESSES += [0x0040_5000, 0x0040_6000, 0x0080_0010, 0x00C0_0000, 0x0000_1000]


@pytest.mark.parametrize("va", ADDRESSES)
@pytest.mark.parametrize("mode", ["S", "U"])
@pytest.mark.parametrize("access", ["load", "store"])
def test_sv32_walk_agrees_with_the_hart_on_loads_and_stores(va, mode, access):
    # M-mode with MPRV makes loads and stores use MPP's privilege, while the code
    # itself is fetched untranslated.
    hart = paged_hart("lw a0, 0(a1)\nebreak" if access == "load" else "sw a2, 0(a1)\nebreak")
    mstatus = hart.csr["mstatus"] & ~csrs.mask("mstatus", "MPP")
    mpp = {"S": 1, "U": 0}[mode] << csrs.shift("mstatus", "MPP")
    hart.csr["mstatus"] = mstatus | mpp | csrs.mask("mstatus", "MPRV")
    hart.x["a1"], hart.x["a2"] = va, 0xABCD
    result = sv32.walk(hart, va, access, mode)
    assert result.mode == mode
    exit = hart.run(1)
    if result.ok:
        assert exit.reason == E.EXIT_BUDGET, f"{result}\n{exit}"
        if access == "load":
            assert hart.x["a0"] == hart.read_word(result.pa)
        else:
            assert hart.read_word(result.pa) == 0xABCD
    else:
        assert exit.reason == E.EXIT_TRAP and exit.cause == result.fault, f"{result}\n{exit}"


@pytest.mark.parametrize("va", ADDRESSES)
@pytest.mark.parametrize("mode", ["S", "U"])
def test_sv32_walk_agrees_with_the_hart_on_fetches(va, mode):
    hart = paged_hart("ebreak")
    hart.mode, hart.pc = mode, va
    result = sv32.walk(hart, va, "fetch")
    exit = hart.run(1)
    fetch_faults = (C.CAUSE_FETCH_PAGE_FAULT, C.CAUSE_FETCH_ACCESS)
    if result.ok:
        assert not (exit.reason == E.EXIT_TRAP and exit.cause in fetch_faults), str(result)
    else:
        assert exit.reason == E.EXIT_TRAP and exit.cause == result.fault, str(result)


def test_sv32_walk_explains_each_level():
    hart = paged_hart("ebreak")
    result = sv32.walk(hart, 0x0040_3008, "store", "S")
    pointer, leaf = result.levels
    assert pointer.pte_address == ROOT + 4 and pointer.decision.startswith("a pointer")
    assert leaf.pte.flags == "VR------"
    assert leaf.decision == "a leaf, but W = 0 (not writable): page fault"
    assert result.fault == C.CAUSE_STORE_PAGE_FAULT
    assert str(result).endswith("fault: store/AMO page fault (cause 15)")
    megapage = sv32.walk(hart, 0x0080_0010, "load", "S")
    assert megapage.pa == RAM_BASE + 0x10 and len(megapage.levels) == 1
    bare = sv32.walk(hart, 0x1234, "load", "M")
    assert bare.pa == 0x1234 and bare.levels == ()
    with pytest.raises(ValueError, match="access must be"):
        sv32.walk(hart, 0, "read")


def test_page_table_view_shows_the_walk_and_rejects_bad_input():
    hart = paged_hart("ebreak")
    view = ui.PageTableView(hart, va=0x0040_1004)
    assert view.walk.fault == C.CAUSE_LOAD_PAGE_FAULT
    assert "V = 0, the entry is invalid" in view.output.value
    view.va_box.value = "0x0040_0010"
    assert view.walk.pa == 0x8002_0010
    view.va_box.value = "zz"
    assert view.walk is None and "is not a number" in view.output.value


# -- ConsoleView and plots ------------------------------------------------------------------


class FakeConsole:
    def __init__(self):
        self.text, self.sent = "hello\n", []

    def send(self, text):
        self.sent.append(text)


class FakeMachine:
    """The protocol ConsoleView needs: console.text, console.send and run(count)."""

    def __init__(self):
        self.console = FakeConsole()
        self.runs = []

    def run(self, count):
        self.runs.append(count)
        self.console.text += "echo\n"


def test_console_view_sends_a_line_and_shows_the_answer():
    machine = FakeMachine()
    view = ui.ConsoleView(machine, run_after_send=500)
    assert "hello" in view.output.value
    view.input.value = "ls"  # what pressing Enter in the box does
    assert machine.console.sent == ["ls\n"] and machine.runs == [500]
    assert "echo" in view.output.value and view.input.value == ""


def test_plots_are_deterministic():
    import matplotlib

    matplotlib.use("Agg")
    ax = plots.bars_by_cause({"b": 2, "a": 2, "c": 5})
    assert [t.get_text() for t in ax.get_yticklabels()] == ["c", "a", "b"]
    hart = countdown_hart()
    recorder = TrapRecorder(hart)
    recorder.run(100)
    ax = plots.trap_timeline(recorder)
    assert [t.get_text() for t in ax.get_yticklabels()] == [
        "ebreak",
        "environment call from M-mode",
    ]


# -- Lesson 04: a monitor's exits, its two page tables, Popek and Goldberg's table -------


def tinyos_under_monitor(cmdline="init=hello", translate=False):
    from virtkit import guests
    from virtkit.monitors.fullvirt import FullVirtMonitor

    monitor = FullVirtMonitor(ram_mb=16, disk=bytes(guests.BLANK_DISK_BYTES), translate=translate)
    monitor.load(guests.tinyos(), cmdline=cmdline)
    return monitor


@pytest.mark.parametrize("translate", [False, True], ids=["trap-and-emulate", "translation"])
def test_exit_recorder_keeps_one_row_per_exit_in_the_guests_terms(translate):
    from virtkit.monitors.inspect import ExitRecorder

    monitor = tinyos_under_monitor(translate=translate)
    recorder = ExitRecorder(monitor)
    assert monitor.run().reason == "halt"
    rows = recorder.rows
    assert len(rows) == monitor.report().exits
    assert [row.sequence for row in rows] == list(range(1, len(rows) + 1))
    assert (
        Counter(row.handled_by for row in rows)["MMIO (device register)"]
        == (monitor.exits["MMIO (device register)"])
    )
    calls = [row for row in rows if row.mode == "guest U" and row.instruction == "ecall"]
    assert calls
    assert all(row.handled_by.endswith("reflected into the guest kernel") for row in calls)
    if translate:
        callouts = [row for row in rows if row.kind == "call-out"]
        assert callouts and {row.cause for row in callouts} >= {"chain", "instruction"}
        # Call-outs name the guest instruction, not the translation cache's ECALL.
        assert any(row.instruction == "ecall" and row.cause == "instruction" for row in callouts)
        assert all(
            not monitor.translator.contains(row.pc)
            for row in callouts
            if row.cause != "dispatch_miss"
        )
    else:
        # The first exit is the first fetch: nothing fetched, nothing to disassemble.
        assert rows[0].cause == "instruction page fault" and rows[0].instruction == ""
        emulated = [row for row in rows if row.handled_by.startswith("guest S: csrr")]
        assert emulated and all(row.cause == "illegal instruction" for row in emulated)
    recorder.detach()
    assert "run" not in vars(monitor.vcpu)


def test_trap_log_fed_by_a_monitor_runs_it_on_and_shows_the_new_rows():
    from virtkit.monitors.inspect import ExitRecorder

    monitor = tinyos_under_monitor()
    recorder = ExitRecorder(monitor)
    log = ui.TrapLog(recorder, last=10, run=lambda: monitor.run(until=50_000))
    assert "guest S" not in log.table.value
    log.run_button.click()
    added = len(recorder.rows)
    assert added > 0 and log.status.value.endswith(f": {added} new rows")
    assert "guest S" in log.table.value and "MMIO (device register)" in log.table.value
    assert f"{added - 10} earlier rows not shown" in log.table.value


def test_shadow_and_guest_walks_meet_at_the_same_host_address():
    from virtkit.monitors.inspect import compare_walks, guest_walk

    monitor = tinyos_under_monitor("init=syscall n=5")
    monitor.run(until=60_000)
    while monitor.vcpu.mode != "U":
        monitor.run(until=10)
    pc = monitor.hart.pc
    found = compare_walks(monitor, pc, "fetch")
    assert found.view == "user" and found.guest.ok and found.shadow.ok
    assert found.shadow.pa == found.hpa == monitor.memory.hpa(found.guest.pa)
    assert found.guest.pa != found.shadow.pa  # guest physical is not host physical
    assert found.verdict.startswith("they agree")
    kernel = compare_walks(monitor, 0x8020_0000, "load", "U")
    assert not kernel.guest.ok and not kernel.shadow.ok  # the U-bit problem, solved
    assert guest_walk(monitor, 0x8020_0000, "fetch", "S").levels[-1].pte.has("G")
    view = ui.ShadowPageTableView(monitor, va=pc, access="fetch")
    assert view.comparison.verdict == found.verdict
    assert "the guest&#x27;s tables" in view.guest.value and "user view" in view.shadow.value
    view.va_box.value = "zz"
    assert view.comparison is None and "is not a number" in view.summary.value


def test_sensitivity_table_filters_the_measured_rows():
    from virtkit import popek_goldberg

    view = ui.SensitivityTable()
    assert view.count.value == f"{len(popek_goldberg.classify())} of {len(view.rows)} instructions"
    view.category_box.value = "sensitive, privileged"
    view.text_box.value = "sstatus"
    assert [row.text for row in view.shown()] == ["csrw sstatus,a2", "csrr a0,sstatus"]
    assert "csrr a0,sstatus" in view.table.value and "add a0" not in view.table.value
    view.text_box.value = ""
    view.extension_box.value = "M"
    assert view.shown() == []  # multiplication and division are innocuous


def test_grouped_bars_keep_the_given_order():
    import matplotlib

    matplotlib.use("Agg")
    ax = plots.bars_by_group({"b": {"x": 1, "y": 2}, "a": {"x": 3, "y": 4}}, log=True)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["b", "a"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["x", "y"]
    assert ax.get_yscale() == "log"


# -- Lesson 02: who ran when, and the share sliders -------------------------------------------


def round_robin_timeline(duration: int):
    from virtkit.monitors.hypervisor import RoundRobin
    from virtkit.monitors.hypervisor.simulation import VcpuSpec, simulate

    return simulate(RoundRobin(time_slice=2000), [VcpuSpec(n) for n in "abc"], duration)


def bars(ax):
    """(row, start ms, width ms, pale) of each bar, in the order drawn."""
    return [
        (round(p.get_y() + p.get_height() / 2), p.get_x(), p.get_width(), p.get_alpha() is not None)
        for p in ax.patches
    ]


def test_gantt_draws_each_run_and_the_queue_behind_it():
    import matplotlib

    matplotlib.use("Agg")
    ax = plots.gantt(round_robin_timeline(6000))
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b", "c"]
    assert ax.get_ylim() == (2.5, -0.5)  # the first vCPU on top
    # a runs 0-2 ms with b, c queued; then b with c, a; then c with a, b.
    assert bars(ax) == [
        (0, 0.0, 2.0, False), (1, 0.0, 2.0, True), (2, 0.0, 2.0, True),
        (1, 2.0, 2.0, False), (2, 2.0, 2.0, True), (0, 2.0, 2.0, True),
        (2, 4.0, 2.0, False), (0, 4.0, 2.0, True), (1, 4.0, 2.0, True),
    ]  # fmt: skip
    assert [t.get_text() for t in ax.texts] == ["1", "2"] * 3  # places in the queue
    assert bars(plots.gantt(round_robin_timeline(6000))) == bars(ax)  # deterministic
    window = plots.gantt(round_robin_timeline(6000), window=(1000, 3000), queued=False)
    assert bars(window) == [(0, 1.0, 1.0, False), (1, 2.0, 1.0, False)]
    assert window.get_xlim() == (1.0, 3.0)


def test_share_sliders_run_the_experiment_with_what_they_say():
    calls = []
    sliders = ui.ShareSliders(
        lambda *args: calls.append(args), ["vm0", "vm1"], weights=[128, 256], slices=(1, 10)
    )
    assert sliders.values() == ([128, 256], [0, 0], 1)
    sliders.weight_sliders[1].value = 512
    sliders.cap_sliders[0].value = 20
    sliders.slice_slider.value = 10
    assert calls == []  # moving a slider does not run anything
    sliders.run_button.click()
    assert calls == [([128, 512], [20, 0], 10)]
    assert sliders.status.value == "weights [128, 512], caps [20, 0], slice 10 ms"
    with pytest.raises(ValueError, match="a weight and a cap for each VM: 2 names, 1 weights"):
        ui.ShareSliders(print, ["vm0", "vm1"], weights=[256])
