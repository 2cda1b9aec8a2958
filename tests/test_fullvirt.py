"""Model 4, full virtualization: the monitor of virtkit.monitors.fullvirt.

Every guest here runs three ways, natively on the Machine (Python SBI firmware), under
the monitor with trap-and-emulate, and under the monitor with binary translation, and
must print exactly the same console text. The guests are hand-written S-mode kernels
(tests/guests/fullvirt/*.s: CSRs, Sv32 with a user process, timer interrupts in S-mode,
a guest that wrecks its page tables), the C test kernel tests/guests/sbi_kernel.c with
the UART, the PLIC and virtio-blk, and the unmodified tinyos with every workload.

Then the pieces one at a time (the virtual CPU's field rules, trap reflection, shadow
PTEs), the monitor's robustness against a hostile guest, snapshots, the Popek-Goldberg
switch, the cost model and its reports.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from virtkit import costs, guests
from virtkit.isa import causes as C
from virtkit.isa.asm import assemble
from virtkit.machine import board
from virtkit.machine.machine import Machine
from virtkit.monitors.fullvirt import FullVirtMonitor
from virtkit.monitors.fullvirt import shadow_paging as SP
from virtkit.monitors.fullvirt import trap_and_emulate as TE
from virtkit.monitors.fullvirt.vcpu import VIRTUAL_CSRS, VirtualCPU
from virtkit.monitors.memory import GuestPhysicalMemory, HostFrames

GUESTS = Path(__file__).parent / "guests" / "fullvirt"
MODES = {"trap-and-emulate": False, "binary translation": True}
LIMIT = 5_000_000  # instructions: far more than any guest here needs
CSR = {name: number for number, name in VIRTUAL_CSRS.items()}


def program(name: str):
    path = GUESTS / f"{name}.s"
    return assemble(path.read_text(), filename=str(path), base=board.KERNEL_BASE)


def native(image, ram_mb: int = 16, **load) -> str:
    machine = Machine(ram_mb=ram_mb)
    machine.load(image, **load)
    result = machine.run(until=LIMIT)
    assert result.reason == "halt", f"{result}; console: {machine.console.text!r}"
    return machine.console.text


def monitored(image, translate: bool, ram_mb: int = 16, **options) -> FullVirtMonitor:
    monitor = FullVirtMonitor(ram_mb=ram_mb, translate=translate, **options)
    monitor.load(image)
    return monitor


# -- Hand-written guests: the same output natively and under the monitor ---------------------


@pytest.mark.parametrize("translate", MODES.values(), ids=MODES.keys())
@pytest.mark.parametrize("guest", ["csr", "paging", "roots", "timer"])
def test_hand_written_guests_print_the_same_as_natively(guest, translate):
    image = program(guest)
    expected = native(image)
    monitor = monitored(image, translate)
    result = monitor.run(until=LIMIT)
    assert (result.reason, result.exit_code) == ("halt", 0), str(result)
    assert monitor.console.text == expected


def test_paging_guest_meets_the_u_bit_sum_and_a_d_rules():
    text = native(program("paging")).split()
    # S-mode with SUM=0 faults on a user page (scause 13 at 0x20000, from S: SPP set),
    # then reads it with SUM=1; U-mode faults on a kernel page (from U: SPP clear).
    assert text[1:5] == ["0000000d", "00020000", "00000100", "0000da7a"]
    assert text[6:9] == ["0000000d", "80200000", "00000000"]
    # exit(100 * 42); the data page's PTE got A and D, the code page's only A.
    assert text[10:] == ["00001068", "000000c0", "00000040"]


ROOTS_READS = ["11111111", "11111111", "22222222", "33333333", "22222222", "33333333"]
ROOTS_READS += ["22222222", "44444444"]


@pytest.mark.parametrize("translate", MODES.values(), ids=MODES.keys())
def test_cached_shadow_tables_never_serve_a_pte_changed_and_fenced_in_another_root(translate):
    # roots.s changes PTEs of root A while root B is in satp, and fences: all
    # addresses, one address, one ASID; a leaf, then a root entry. Each switch back to
    # A finds its shadow in the cache, checked against A's tables, never stale.
    monitor = monitored(program("roots"), translate)
    result = monitor.run(until=LIMIT)
    assert (result.reason, result.exit_code) == ("halt", 0), str(result)
    assert monitor.console.text.split() == ROOTS_READS
    statistics = monitor.shadow.statistics
    assert statistics["shadow cache misses"] == 2  # A and B, once each
    assert statistics["shadow cache hits"] == 7  # every other switch
    assert statistics["stale entries dropped"] >= 3  # the fenced changes of A


def test_roots_guest_reads_stale_words_if_the_cache_skips_its_check(monkeypatch):
    # The test above can fail: without the check against the guest's tables after a
    # fence, the cached shadow of A still maps the old pages.
    def no_check(self, space, table):
        table.synced = True
        return 0

    monkeypatch.setattr(SP.ShadowMMU, "_sync", no_check)
    monitor = monitored(program("roots"), False)
    monitor.run(until=LIMIT)
    assert monitor.console.text.split() != ROOTS_READS


def test_binary_translation_avoids_the_exits_of_trap_and_emulate():
    reports = {}
    for name, translate in MODES.items():
        monitor = monitored(program("timer"), translate)
        monitor.run(until=LIMIT)
        reports[name] = monitor.report()
    trapped, translated = reports["trap-and-emulate"], reports["binary translation"]
    assert trapped.exits > 20 * translated.exits
    assert trapped.cycles > 10 * translated.cycles
    assert "call-out: interrupt_window" in translated.exits_by_cause or translated.exits < 200


def test_sbi_kernel_with_uart_interrupts_plic_and_virtio_blk(tmp_path_factory):
    from test_qemu import DISK, EXPECTED, KEYS, PROMPT, build

    kernel = build(tmp_path_factory, "sbi_kernel.elf")
    for translate in MODES.values():
        monitor = FullVirtMonitor(ram_mb=16, disk=DISK, translate=translate)
        monitor.load(kernel)
        assert monitor.run(until=PROMPT).reason == "console"
        assert monitor.run(until=1_000_000).reason == "idle"  # waits for keys, says so
        monitor.console.send(KEYS)
        result = monitor.run(until=LIMIT)
        assert (result.reason, result.exit_code) == ("halt", 0), str(result)
        assert monitor.console.text == EXPECTED
        assert bytes(monitor.board.disk.disk[512:1024]) != DISK[512:1024]  # sector 1 written


# -- tinyos, unmodified -------------------------------------------------------------------------

WORKLOADS = {
    "hello": "",
    "compute": "n=1",
    "syscall": "n=50",
    "forkwait": "n=10",
    "pagefault": "n=8",
    "ctxswitch": "n=20",
    "io": "n=4",
}
_native_tinyos: dict[str, str] = {}


def tinyos_natively(workload: str) -> str:
    if workload not in _native_tinyos:
        machine = guests.boot_tinyos(f"init={workload} {WORKLOADS[workload]}")
        result = machine.run(until=50_000_000)
        assert result.reason == "halt", str(result)
        _native_tinyos[workload] = machine.console.text
    return _native_tinyos[workload]


def tinyos_under_the_monitor(workload: str, translate: bool) -> FullVirtMonitor:
    """Run ``workload`` on tinyos under the monitor to shutdown; check its console is
    the native one."""
    monitor = FullVirtMonitor(disk=bytes(guests.BLANK_DISK_BYTES), translate=translate)
    monitor.load(guests.tinyos(), cmdline=f"init={workload} {WORKLOADS[workload]}")
    result = monitor.run(until=50_000_000)
    assert (result.reason, result.exit_code) == ("halt", 0), str(result)
    assert monitor.console.text == tinyos_natively(workload)
    return monitor


@pytest.mark.parametrize("translate", MODES.values(), ids=MODES.keys())
@pytest.mark.parametrize("workload", WORKLOADS)
def test_tinyos_workloads_give_the_native_result_lines(workload, translate):
    tinyos_under_the_monitor(workload, translate)
    assert f"{workload}" in tinyos_natively(workload).splitlines()[-1] or workload == "hello"


@pytest.mark.parametrize("workload", ["compute", "syscall", "forkwait", "pagefault", "io"])
def test_the_exit_fastpath_leaves_the_guest_and_every_count_as_the_full_path_does(workload):
    # The same tinyos run with and without the fastpath: the same console, registers,
    # virtual CPU, instructions by mode, exits, emulations, reflected traps, costs and
    # hart statistics; and the fastpath served most of the CSR exits.
    runs = []
    for fastpath in (True, False):
        monitor = FullVirtMonitor(ram_mb=16, disk=bytes(guests.BLANK_DISK_BYTES), fastpath=fastpath)
        monitor.load(guests.tinyos(), cmdline=f"init={workload} {WORKLOADS[workload]} quantum=1ms")
        result = monitor.run(until=50_000_000)
        assert (result.reason, result.exit_code) == ("halt", 0), str(result)
        runs.append(
            (
                monitor.fastpath_exits,
                {
                    "console": monitor.console.text,
                    "steps": result.instructions,
                    "pc and registers": (monitor.hart.pc, list(monitor.hart.x)),
                    "virtual CPU": monitor.vcpu.as_dict(),
                    "instructions": dict(monitor.vcpu.instructions),
                    "exits": dict(monitor.exits),
                    "emulated": dict(monitor.emulated),
                    "reflected": dict(monitor.reflected),
                    "costs": dict(monitor.meter.counts),
                    "hart": monitor.hart.stats,
                },
            )
        )
    (served, fast), (none_served, full) = runs
    assert none_served == 0
    csr_exits = sum(n for name, n in fast["exits"].items() if name.startswith("guest S: csr"))
    assert served > csr_exits // 2
    for what in full:
        assert fast[what] == full[what], what


@pytest.mark.parametrize("until", [1, 2, 3, 4, 5, 7, 10, 33, 1000])
def test_the_exit_fastpath_stops_a_counted_run_on_the_same_instruction(until):
    # The fastpath re-enters the guest for what is left of the run's steps: a run of
    # ``until`` steps ends where the full path ends it, between two CSR exits or not.
    source = "_start:\n1: csrr a0, sscratch\n addi a0, a0, 1\n csrw sscratch, a0\n j 1b\n"
    ends, served = [], []
    for fastpath in (True, False):
        monitor = FullVirtMonitor(ram_mb=4, fastpath=fastpath)
        monitor.load(assemble(source, base=board.KERNEL_BASE))
        first = monitor.run(until=until)
        second = monitor.run(until=until)
        ends.append(
            (
                (first.reason, first.instructions, second.reason, second.instructions),
                monitor.hart.pc,
                monitor.vcpu.slot("sscratch"),
                dict(monitor.exits),
                monitor.hart.stats,
            )
        )
        served.append(monitor.fastpath_exits)
    assert ends[0] == ends[1]
    assert served[0] > 0 and served[1] == 0
    assert ends[0][0] == ("count", until, "count", until)


def test_the_exit_fastpath_leaves_an_exercises_emulate_csr_every_csr_exit():
    # A student's emulate_csr must see every CSR instruction of the guest kernel, so
    # the fastpath (which serves only the monitor's own emulation) stands aside.
    seen = []

    def emulate_csr(vcpu, insn, x):
        seen.append(insn)
        return TE.emulate_csr(vcpu, insn, x)

    monitor = FullVirtMonitor(ram_mb=16, disk=bytes(guests.BLANK_DISK_BYTES))
    monitor.emulate_csr = emulate_csr
    monitor.load(guests.tinyos(), cmdline="init=hello")
    assert monitor.run(until=50_000_000).reason == "halt"
    assert monitor.fastpath_exits == 0
    csr_exits = sum(n for name, n in monitor.emulated.items() if name.startswith("csr"))
    assert len(seen) == csr_exits > 0


def test_tinyos_keeps_its_address_space_when_the_same_process_goes_on():
    # When a time slice ends and the scheduler picks the process that was running,
    # tinyos writes neither satp nor SFENCE.VMA (as Linux's switch_mm for prev ==
    # next): shorter slices bring more timer interrupts, and not one more fence,
    # shadow sync or hidden fault. Nor one more TLB flush: each interrupt switches the
    # real satp to the kernel view and back, and each view has a real ASID of its own.
    runs = {}
    for quantum in ("", " quantum=1ms"):
        monitor = FullVirtMonitor(ram_mb=16, disk=bytes(guests.BLANK_DISK_BYTES))
        monitor.load(guests.tinyos(), cmdline="init=compute n=4" + quantum)
        result = monitor.run(until=50_000_000)
        assert (result.reason, result.exit_code) == ("halt", 0), str(result)
        ticks = sum(n for cause, n in monitor.reflected.items() if "timer" in cause)
        figures = dict(monitor.shadow.statistics, tlb_flushes=monitor.meter["tlb_flush"])
        runs[quantum] = ticks, monitor.emulated["sfence.vma"], figures
    (ticks, fences, long), (more_ticks, same_fences, short) = runs.values()
    assert more_ticks > 5 * max(ticks, 1) and same_fences == fences
    for figure in (
        "shadow syncs",
        "hidden faults",
        "shadow flushes",
        "stale entries dropped",
        "tlb_flushes",
    ):
        assert short[figure] == long[figure], figure


@pytest.mark.parametrize("translate", MODES.values(), ids=MODES.keys())
def test_running_out_of_real_asids_flushes_and_changes_nothing_the_guest_sees(
    monkeypatch, translate
):
    # With three real ASIDs, forkwait's processes (two views each) use them up again
    # and again: each time the TLB is flushed and the tables get new ones.
    monkeypatch.setattr(SP, "ASID_MAX", 3)
    monitor = tinyos_under_the_monitor("forkwait", translate)
    assert monitor.shadow._asid_generation > 10


@pytest.mark.parametrize("translate", MODES.values(), ids=MODES.keys())
def test_a_small_shadow_pool_evicts_roots_and_changes_nothing_the_guest_sees(
    monkeypatch, translate
):
    # forkwait's processes reuse freed root pages: the cache meets a root whose tables
    # were rewritten (stale entries dropped), and with 12 host pages it must evict.
    from virtkit.monitors.fullvirt import monitor as fullvirt_monitor

    monkeypatch.setattr(fullvirt_monitor, "SHADOW_POOL_PAGES", 12)
    monitor = tinyos_under_the_monitor("forkwait", translate)
    statistics = monitor.shadow.statistics
    assert statistics["shadow cache evictions"] > 0 and statistics["stale entries dropped"] > 0


# -- The virtual CPU and trap reflection, as plain functions ------------------------------------


@pytest.fixture
def vcpu():
    from virtkit.cpu import Hart

    hart = Hart(1 << 16)
    return VirtualCPU(hart, hart.arrays.ram[:4096])


class Registers(list):
    def __init__(self):
        super().__init__([0] * 32)

    def __setitem__(self, index, value):
        if index:
            super().__setitem__(index, value & 0xFFFFFFFF)


def csr_instruction(text: str) -> int:
    return int.from_bytes(assemble(text).to_binary()[:4], "little")


@pytest.mark.parametrize(
    "name, written, read",
    [
        ("sstatus", 0xFFFFFFFF, 0x000C0122),  # SIE SPIE SPP SUM MXR; FS, SD... read 0
        ("sie", 0xFFFFFFFF, 0x222),
        ("sip", 0xFFFFFFFF, 0x2),  # only SSIP is software-writable
        ("stvec", 0x80200003, 0x80200000),  # modes 2 and 3 are reserved
        ("stvec", 0x80200001, 0x80200001),  # vectored
        ("sepc", 0x80200007, 0x80200004),
        ("sscratch", 0xDEADBEEF, 0xDEADBEEF),
        ("senvcfg", 0xFFFFFFFF, 0x1),
    ],
)
def test_virtual_csrs_follow_the_field_rules(vcpu, name, written, read):
    x = Registers()
    x[10] = written
    TE.emulate_csr(vcpu, csr_instruction(f"csrw {name}, a0"), x)
    TE.emulate_csr(vcpu, csr_instruction(f"csrr a1, {name}"), x)
    assert x[11] == read


def test_csr_set_and_clear_read_the_old_value(vcpu):
    x = Registers()
    TE.emulate_csr(vcpu, csr_instruction("csrrsi a0, sstatus, 2"), x)
    TE.emulate_csr(vcpu, csr_instruction("csrrci a1, sstatus, 2"), x)
    assert (x[10], x[11], vcpu.slot("sstatus")) == (0, 2, 0)


@pytest.mark.parametrize(
    "text, decoded",
    [
        ("csrrw a0, sscratch, a1", ("csrrw", 0x140, 10, 11, False, True)),
        ("csrr a0, sepc", ("csrrs", 0x141, 10, 0, False, False)),
        ("csrs sstatus, t0", ("csrrs", 0x100, 0, 5, False, True)),
        ("csrrc a2, sie, x0", ("csrrc", 0x104, 12, 0, False, False)),
        ("csrrwi zero, stvec, 0", ("csrrw", 0x105, 0, 0, True, True)),
        ("csrrsi a0, sstatus, 2", ("csrrs", 0x100, 10, 2, True, True)),
        ("csrrci a0, sstatus, 0", ("csrrc", 0x100, 10, 0, True, False)),
    ],
)
def test_decode_csr_gives_the_operation_fields_and_whether_it_writes(text, decoded):
    assert tuple(TE.decode_csr(csr_instruction(text))) == decoded


@pytest.mark.parametrize("text", ["sret", "wfi", "ecall", "addi a0, a0, 1", "sfence.vma"])
def test_decode_csr_is_none_for_other_instructions(text):
    assert TE.decode_csr(csr_instruction(text)) is None


@pytest.mark.parametrize("text", ["csrr a0, mstatus", "csrw time, a0", "csrr a0, 0x5c0"])
def test_m_level_read_only_and_missing_csrs_are_illegal(vcpu, text):
    word = csr_instruction(text)
    with pytest.raises(TE.GuestException) as raised:
        TE.emulate_csr(vcpu, word, Registers())
    assert (raised.value.cause, raised.value.tval) == (C.CAUSE_ILLEGAL_INSTRUCTION, word)


def test_reflect_trap_stacks_sie_records_the_trap_and_uses_the_vector(vcpu):
    vcpu.write_csr(CSR["stvec"], 0x80201001)  # vectored
    vcpu.write_csr(CSR["sstatus"], 0x2)  # SIE
    vcpu.mode = "U"
    handler = TE.reflect_trap(vcpu, C.IRQ_S_TIMER, 0, 0x10004, interrupt=True)
    assert handler == 0x80201000 + 4 * C.IRQ_S_TIMER
    assert (vcpu.mode, vcpu.slot("sepc"), vcpu.slot("scause")) == ("S", 0x10004, 0x80000005)
    assert vcpu.slot("sstatus") == 0x20  # SPIE = 1, SIE = 0, SPP = U
    handler = TE.reflect_trap(vcpu, C.CAUSE_LOAD_PAGE_FAULT, 0x1234, 0x80200010)
    assert handler == 0x80201000  # exceptions go to the base even when vectored
    assert vcpu.slot("sstatus") == 0x100 and vcpu.slot("stval") == 0x1234  # SPP = S
    assert TE.emulate_sret(vcpu) == 0x80200010 and vcpu.mode == "S"
    assert vcpu.slot("sstatus") == 0x20


def test_interrupts_wait_for_sie_in_guest_s_but_not_in_guest_u(vcpu):
    vcpu.write_csr(CSR["sie"], 0x222)
    vcpu.set_pending(1 << C.IRQ_S_TIMER, True)
    assert vcpu.interrupt_to_take() is None  # guest S with SIE = 0
    vcpu.mode = "U"
    assert vcpu.interrupt_to_take() == C.IRQ_S_TIMER
    vcpu.set_pending(1 << C.IRQ_S_EXT, True)
    assert vcpu.interrupt_to_take() == C.IRQ_S_EXT  # external before timer (3.1.9)


def test_interrupt_ready_follows_sip_and_sie_however_they_are_written(vcpu):
    # interrupt_to_take and the translated code look at the interrupt_ready slot first:
    # it must follow sip & sie through write_csr, set_pending and a plain set_slot alike
    # (an exercise's emulate_csr may well write sie with set_slot).
    vcpu.mode = "U"
    vcpu.set_pending(1 << C.IRQ_S_TIMER, True)
    assert (vcpu.slot("interrupt_ready"), vcpu.interrupt_to_take()) == (0, None)  # sie = 0
    vcpu.set_slot("sie", 1 << C.IRQ_S_TIMER)
    assert (vcpu.slot("interrupt_ready"), vcpu.interrupt_to_take()) == (1, C.IRQ_S_TIMER)
    vcpu.write_csr(CSR["sie"], 0)
    assert (vcpu.slot("interrupt_ready"), vcpu.interrupt_to_take()) == (0, None)
    vcpu.write_csr(CSR["sie"], 0x222)
    vcpu.set_pending(1 << C.IRQ_S_TIMER, False)
    assert (vcpu.slot("interrupt_ready"), vcpu.interrupt_to_take()) == (0, None)
    vcpu.write_csr(CSR["sip"], 1 << C.IRQ_S_SOFT)  # SSIP is software-writable
    assert (vcpu.slot("interrupt_ready"), vcpu.interrupt_to_take()) == (1, C.IRQ_S_SOFT)


def test_an_emulated_sret_retires_in_guest_s():
    # SRET is the guest kernel's instruction: it counts for guest S, although the guest
    # is in U when it has retired (as on the hardware-assisted monitor, where the hart
    # counts it in VS).
    program = assemble(
        """
        _start:
            la t0, user
            csrw sepc, t0
            sret
        user:
            addi a0, zero, 1
            j user
        """,
        base=board.KERNEL_BASE,
    )
    monitor = FullVirtMonitor(ram_mb=4)
    monitor.load(program)
    monitor.run(until=10)
    # la is two instructions, then csrw and sret: 4 in S; 6 more in U.
    assert monitor.vcpu.instructions == {"S": 4, "U": 6}
    assert monitor.emulated["sret"] == 1


# -- Shadow PTEs ----------------------------------------------------------------------------------

V, R, W, X, U, A, D = (SP.PTE_V, SP.PTE_R, SP.PTE_W, SP.PTE_X, SP.PTE_U, SP.PTE_A, SP.PTE_D)
SUM, MXR = 1 << 18, 1 << 19


@pytest.mark.parametrize(
    "guest, view, sstatus, protected, flags",
    [
        (V | R | W | X | A | D, "kernel", 0, False, R | W | X),
        (V | R | W | X | A | D, "user", 0, False, 0),  # a kernel page: not in the user view
        (V | R | W | U | A | D, "user", 0, False, R | W),
        (V | R | W | U | A | D, "kernel", 0, False, 0),  # a user page with SUM = 0
        (V | R | W | X | U | A | D, "kernel", SUM, False, R | W),  # never executable in S
        (V | R | W | A, "kernel", 0, False, R),  # not dirty: the first store must fault
        (V | X | A, "kernel", MXR, False, R | X),  # MXR: executable means readable
        (V | R | W | X | A | D, "kernel", 0, True, R | X),  # translated code
    ],
)
def test_shadow_pte_composes_the_guest_permissions_with_the_view(
    guest, view, sstatus, protected, flags
):
    spte = SP.shadow_pte(guest, 0x8123, view=view, sstatus=sstatus, write_protected=protected)
    if not flags:
        assert spte == 0
    else:
        assert spte == (0x8123 << 10) | flags | V | U | A | D


def test_the_monitor_refuses_a_shadow_pte_outside_the_guest():
    monitor = monitored(program("csr"), False)
    monitor.compute_shadow_pte = lambda pte, hppn, **kw: SP.shadow_pte(pte, hppn + 1, **kw)
    with pytest.raises(SP.ShadowPagingError, match="outside the guest"):
        monitor.run(until=LIMIT)


# -- Guest memory and isolation --------------------------------------------------------------------


def mapped_outside_the_guest(monitor: FullVirtMonitor) -> list[tuple[int, int]]:
    """Shadow entries that reach a host page neither in guest RAM nor a device."""
    guest = set(int(f) for f in monitor.memory.frames)
    window = set()
    if monitor.translator is not None:
        window = {
            *monitor.translator.tc_frames,
            *monitor.translator.lookup_frames,
            monitor.vcpu_area,
        }
    bad = []
    for space in monitor.shadow.cache.values():  # every cached guest root
        for table in space.tables():
            for va, spte in table.entries():
                page = spte >> 10
                ok = page in guest or monitor.board.is_device_page(page)
                ok |= table is space.kernel and va >> 22 == 0x3FF and page in window
                if not ok:
                    bad.append((va, spte))
    return bad


def test_guest_physical_memory_is_not_host_physical_memory():
    monitor = monitored(program("paging"), False)
    assert monitor.memory.hpa(board.RAM_BASE) != board.RAM_BASE
    monitor.run(until=LIMIT)
    assert monitor.shadow.mappings("user") and not mapped_outside_the_guest(monitor)


def test_guest_physical_map_can_be_any_set_of_host_pages():
    from virtkit.cpu import Hart

    hart = Hart(1 << 20)
    frames = HostFrames(hart).take(4)
    memory = GuestPhysicalMemory(hart, board.RAM_BASE, list(reversed(frames)))
    memory.write_memory(board.RAM_BASE + 4094, b"abcd")  # across a page end
    assert memory.read_memory(board.RAM_BASE + 4094, 4) == b"abcd"
    assert memory.hpa(board.RAM_BASE) == frames[3] << 12
    with pytest.raises(ValueError, match="outside guest RAM"):
        memory.read_memory(board.RAM_BASE + 4 * 4096 - 2, 4)


@pytest.mark.parametrize("translate", MODES.values(), ids=MODES.keys())
def test_a_guest_that_wrecks_its_page_tables_and_jumps_to_nothing_harms_only_itself(translate):
    monitor = monitored(program("wild"), translate, ram_mb=8)
    result = monitor.run(until=100_000)
    assert result.reason == "count"  # the monitor is in control; the guest loops in faults
    assert monitor.reflected["instruction page fault"] > 0
    assert not mapped_outside_the_guest(monitor)
    monitor.run(until=10_000)  # and it can go on


LOOP_WITH_INTERRUPTS_OFF = """
    rdtime a0
    addi a0, a0, 100
    li a1, 0
    li a7, 0x54494D45
    li a6, 0
    ecall                       # a timer interrupt in 100 ticks...
    li t0, 0x20
    csrs sie, t0
    csrci sstatus, 2            # ...that never gets in
1:  j 1b
"""


@pytest.mark.parametrize("translate", MODES.values(), ids=MODES.keys())
def test_a_guest_spinning_with_interrupts_off_cannot_hang_the_monitor(translate):
    image = assemble(LOOP_WITH_INTERRUPTS_OFF, base=board.KERNEL_BASE)
    monitor = monitored(image, translate)
    assert monitor.run(until=1_000_000).reason == "count"
    assert monitor.exits["timer (the monitor's)"] == 1  # the real timer is the monitor's
    assert monitor.vcpu.slot("sip") == 1 << C.IRQ_S_TIMER  # pending, not taken
    assert monitor.reflected.total() == 0


# -- Snapshots ------------------------------------------------------------------------------------


@pytest.mark.parametrize("translate", MODES.values(), ids=MODES.keys())
def test_snapshot_and_restore_continue_the_guest_exactly(translate):
    monitor = monitored(program("paging"), translate)
    assert monitor.run(until="U\n").reason == "console"
    saved = monitor.snapshot()
    monitor.run(until=LIMIT)
    for resumed_translated in MODES.values():
        restored = FullVirtMonitor.restore(saved, translate=resumed_translated)
        result = restored.run(until=LIMIT)
        assert (result.reason, result.exit_code) == ("halt", 0)
        assert restored.console.text == monitor.console.text


def test_a_snapshot_of_tinyos_restores_under_the_other_technique():
    monitor = FullVirtMonitor(disk=bytes(guests.BLANK_DISK_BYTES), translate=True)
    monitor.load(guests.tinyos(), cmdline="init=forkwait n=6")
    monitor.run(until=150_000)
    restored = FullVirtMonitor.restore(monitor.snapshot(), translate=False)
    restored.run(until=50_000_000)
    assert restored.console.text.endswith("children forked and reaped, exit codes sum 15\n")


# -- The Popek-Goldberg switch ---------------------------------------------------------------------


def test_popek_goldberg_switch_breaks_trap_and_emulate_but_not_translation():
    image = program("timer")
    expected = native(image)
    broken = monitored(image, False, sstatus_unprivileged=True)
    result = broken.run(until=1_000_000)
    # csrsi sstatus, SIE no longer traps: it is ignored, and no interrupt ever arrives.
    assert result.reason == "count" and broken.console.text == ""
    rescued = monitored(image, True, sstatus_unprivileged=True)
    assert rescued.run(until=LIMIT).reason == "halt"
    assert rescued.console.text == expected


# -- The cost model --------------------------------------------------------------------------------


def test_every_preset_prices_every_event_and_names_its_source():
    for model in costs.PRESETS.values():
        assert set(model.figures) == set(costs.EVENTS)
        assert all(figure.source for figure in model.figures.values())
        assert all(event in model.table() for event in costs.EVENTS)
    with pytest.raises(costs.CostModelError, match="presets"):
        costs.preset("free lunch")
    with pytest.raises(costs.CostModelError, match="events"):
        costs.Meter().charge("coffee")


def test_reports_give_exits_by_cause_and_overhead_against_the_native_run():
    machine = Machine(ram_mb=16)
    machine.load(program("paging"))
    machine.run(until=LIMIT)
    baseline = costs.native_report(machine.hart)
    monitor = monitored(program("paging"), False)
    monitor.run(until=LIMIT)
    report = monitor.report()
    assert report.instructions_by_mode["U"] > 0 and report.exits_by_cause
    # 2 putchars, 100 get42 calls, at least one look at the ticks, and exit
    assert report.exits_by_cause["guest U: environment call from U-mode or VU-mode"] >= 104
    assert report.overhead(baseline) > 1
    text = report.summary(baseline)
    assert "exits" in text and "x the native run" in text
    assert report.details["emulated instructions"] > 0


def test_reports_are_deterministic():
    texts = set()
    for _ in range(2):
        monitor = monitored(program("timer"), True)
        monitor.run(until=LIMIT)
        texts.add(monitor.report().summary())
    assert len(texts) == 1


def test_vcpu_area_is_mapped_only_in_the_kernel_view_under_translation():
    monitor = monitored(program("paging"), True)
    monitor.run(until=LIMIT)
    user_pages = {va >> 22 for va, _ in monitor.shadow.mappings("user")}
    assert 0x3FF not in user_pages
    kernel = monitor.shadow.kernel
    assert kernel.window is not None
    root_entry = int(monitor.shadow._ram32[kernel._index(kernel.root, 0x3FF)])
    assert root_entry & SP.PTE_V and np.uint32(root_entry) >> 10 == kernel.window[1]


# -- virtkit run --monitor fullvirt ---------------------------------------------------------------


@pytest.mark.parametrize(
    "options", [[], ["--bt"], ["--no-fastpath"]], ids=["trap-and-emulate", "--bt", "--no-fastpath"]
)
def test_virtkit_run_boots_tinyos_under_the_monitor(capsys, options):
    import json

    from virtkit import cli

    status = cli.main(
        ["run", "--monitor", "fullvirt", *options, "syscall", "--cmdline", "n=20", "--stats"]
    )
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert "syscall: n=20 getpid calls returned pid 1" in captured.out
    monitor = json.loads(captured.err.strip().splitlines()[-1])["monitor"]
    assert monitor["technique"] == (
        "binary translation" if options == ["--bt"] else "trap-and-emulate"
    )
    assert monitor["exits_by_cause"] and monitor["modelled_cycles"] > 0
    # Translated code does the plain CSR accesses itself; trap-and-emulate serves them on
    # the fastpath unless told not to.
    assert (monitor["fastpath_exits"] > 0) == (options == [])


def test_virtkit_run_monitor_refuses_what_it_cannot_do(capsys, tmp_path):
    from virtkit import cli

    bare = tmp_path / "bare.elf"
    bare.write_bytes(assemble("1: j 1b\n", base=board.RAM_BASE).to_elf())
    cases = [
        (["run", "--bt", "hello"], "use it with --monitor fullvirt"),
        (["run", "--no-fastpath", "hello"], "--no-fastpath sets up the monitor"),
        (["run", "--monitor", "hypervisor", "--vm", "hello", "--no-fastpath"], "--no-fastpath"),
        (["run", "--monitor", "fullvirt", "--firmware", "image", "hello"], "firmware"),
        (["run", "--monitor", "fullvirt", str(bare)], "S-mode kernels"),
    ]
    for argv, message in cases:
        assert cli.main(argv) == 2
        assert message in capsys.readouterr().err


def test_bench_figures_come_from_checked_runs(monkeypatch):
    from virtkit.bench import monitors

    run = monitors.run_under_monitor("forkwait", True, 3)
    assert run["instructions"] > 0 and run["exits"] > 0 and run["seconds"] > 0
    monkeypatch.setitem(monitors.WORKLOADS, "forkwait", ({False: 3, True: 3}, "no such line"))
    with pytest.raises(monitors.MonitorBenchmarkError, match="no such line"):
        monitors.run_under_monitor("forkwait", False, 3)


def test_two_guests_share_one_host_hart_in_separate_host_pages():
    from virtkit.cpu import Hart

    hart = Hart(40 << 20, trap_exits="all")
    frames = HostFrames(hart)
    first = FullVirtMonitor(ram_mb=8, host=(hart, frames))
    second = FullVirtMonitor(ram_mb=8, translate=True, host=(hart, frames))
    assert not set(first.memory.frames) & set(second.memory.frames)
    for monitor in (first, second):  # one after the other: each owns the hart while it runs
        monitor.load(program("paging"))
        assert monitor.run(until=LIMIT).reason == "halt"
        assert not mapped_outside_the_guest(monitor)
    assert first.console.text == second.console.text == native(program("paging"))


def test_an_exercise_can_put_its_own_pieces_into_the_monitor():
    calls = {"csr": 0, "reflect": 0, "shadow": 0}

    def counting(name, function):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return function(*args, **kwargs)

        return wrapper

    monitor = monitored(program("paging"), False)
    monitor.emulate_csr = counting("csr", TE.emulate_csr)
    monitor.reflect_trap = counting("reflect", TE.reflect_trap)
    monitor.compute_shadow_pte = counting("shadow", SP.shadow_pte)
    assert monitor.run(until=LIMIT).reason == "halt"
    assert monitor.console.text == native(program("paging"))
    assert all(calls.values()), calls


SCRIBBLE_OVER_THE_TOP = """
    la t0, skip
    csrw stvec, t0
    li t0, 0xFFC00000           # the top 4 MiB, where the binary translator keeps its
    li t1, -1                   # code and the virtual CPU; there is no RAM there
1:  sw t1, 0(t0)
    lw t2, 0(t0)
    addi t0, t0, 64
    bnez t0, 1b
    li t0, 0
    jr t0                       # and off into nothing, where every fetch faults
    .align 2
skip:                           # the trap handler: skip the faulting instruction
    csrr t3, sepc
    addi t3, t3, 4
    csrw sepc, t3
    sret
"""


@pytest.mark.parametrize("translate", MODES.values(), ids=MODES.keys())
def test_a_guest_writing_over_the_translator_window_harms_only_itself(translate):
    image = assemble(SCRIBBLE_OVER_THE_TOP, base=board.KERNEL_BASE)
    monitor = monitored(image, translate)
    assert monitor.run(until=100_000).reason == "count"
    assert not mapped_outside_the_guest(monitor)
    assert monitor.reflected["store/AMO access fault"] > 0
