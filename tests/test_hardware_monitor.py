"""The hardware-assisted monitor: unmodified tinyos in VS-mode on the hart's H extension.

Every workload prints what it prints natively; the exits left are guest-page faults
(one per 4 MiB of guest RAM), device registers, SBI calls, WFI and the timer, far fewer
than trap-and-emulate's; and the type-1 hypervisor runs such a VM beside a
trap-and-emulate one.
"""

from __future__ import annotations

import pytest

from virtkit import guests
from virtkit.cli import _vm_options
from virtkit.machine import board
from virtkit.monitors.fullvirt import FullVirtMonitor
from virtkit.monitors.hardware import HardwareMonitor
from virtkit.monitors.hypervisor.hypervisor import Hypervisor
from virtkit.monitors.hypervisor.vm import CRASHED

RAM_MB = 16
WORKLOADS = {
    "hello": "",
    "compute": "n=2",
    "syscall": "n=50",
    "forkwait": "n=10",
    "pagefault": "n=8",
    "ctxswitch": "n=20",
    "io": "n=4",
}
# The exits hardware assistance removes: the guest kernel's CSR accesses, SRET and
# SFENCE.VMA, its processes' system calls, the shadow-table fills. At least this many
# times fewer exits in all (the tinyos runs give 4.3x to 9.5x).
FEWER_EXITS = 4
_native: dict[str, str] = {}


def tinyos_natively(workload: str) -> str:
    if workload not in _native:
        machine = guests.boot_tinyos(f"init={workload} {WORKLOADS[workload]}")
        result = machine.run(until=50_000_000)
        assert result.reason == "halt", str(result)
        _native[workload] = machine.console.text
    return _native[workload]


def booted(monitor_class, workload: str, **options):
    monitor = monitor_class(RAM_MB, disk=bytes(guests.BLANK_DISK_BYTES), **options)
    monitor.load(guests.tinyos(), cmdline=f"init={workload} {WORKLOADS[workload]}")
    return monitor


@pytest.mark.parametrize("workload", WORKLOADS)
def test_tinyos_in_vs_mode_gives_the_native_result_lines_with_far_fewer_exits(workload):
    hardware = booted(HardwareMonitor, workload)
    result = hardware.run(until=50_000_000)
    assert (result.reason, result.exit_code) == ("halt", 0), str(result)
    assert hardware.console.text == tinyos_natively(workload)
    # The kernel ran in VS-mode and its processes in VU-mode, nothing in real S or U.
    assert set(hardware.hart.stats["instructions_by_mode"]) <= {"VS", "VU", "M"}
    assert hardware.vcpu.instructions["S"] > 0 and hardware.vcpu.instructions["U"] > 0
    exits = hardware.report().exits_by_cause
    assert set(exits) <= {"guest-page fault", "MMIO (device register)", "SBI call", "WFI"}
    assert exits["guest-page fault"] == RAM_MB >> 2  # one per 4 MiB region

    emulated = booted(FullVirtMonitor, workload)
    emulated.run(until=50_000_000)
    assert FEWER_EXITS * hardware.report().exits < emulated.report().exits
    assert hardware.report().instructions == pytest.approx(emulated.report().instructions, 0.01)


def test_the_guest_keeps_its_own_satp_and_its_devices_stay_unmapped():
    monitor = booted(HardwareMonitor, "pagefault")
    monitor.run(until=50_000_000)
    hart = monitor.hart
    assert hart.csr["vsatp"] >> 31 == 1 and hart.csr["satp"] == 0  # Sv32, the guest's own
    root = monitor.g_root << 12
    for device in (board.UART0_BASE, board.PLIC_BASE, board.TEST_BASE, board.virtio_base(0)):
        assert hart.read_word(root + 4 * (device >> 22)) == 0  # every access faults: MMIO
    assert hart.read_word(root + 4 * (board.RAM_BASE >> 22)) & 1


def test_the_guest_timer_arrives_as_vstip_and_its_handler_rearms_it():
    monitor = HardwareMonitor(RAM_MB, disk=bytes(guests.BLANK_DISK_BYTES))
    monitor.load(guests.tinyos(), cmdline="init=compute n=5")
    assert monitor.run(until=50_000_000).exit_code == 0
    assert monitor.console.text.splitlines()[-1] == "compute: n=5 checksum=0x57ed8b34"
    exits = monitor.report().exits_by_cause
    # Each real-timer exit raised VSTIP through hvip; the guest took it in VS-mode, and
    # its handler's SBI set_timer (besides the 2 calls of its boot) cleared it.
    assert exits["timer"] >= 2 and exits["SBI call"] >= exits["timer"] + 2
    assert not monitor.vcpu.pending and not monitor.hart.csr["hvip"]


def test_the_hypervisor_runs_a_hardware_vm_beside_a_trap_and_emulate_vm():
    hypervisor = Hypervisor("credit")
    hypervisor.add_vm("hw", "compute n=2", mechanism="hardware")
    hypervisor.add_vm("te", "io n=4")
    hypervisor.add_vm("hwio", "io n=4", mechanism="hardware")
    hypervisor.run()
    for name, workload in (("hw", "compute"), ("te", "io"), ("hwio", "io")):
        vm = hypervisor.vms[name]
        assert vm.describe_state() == "halted (exit code 0)"
        assert vm.console.text == tinyos_natively(workload)
    assert hypervisor.vms["hwio"].disk_requests == hypervisor.vms["te"].disk_requests > 0
    report = hypervisor.report()
    assert "hardware-assisted" in report and "trap-and-emulate" in report


def test_a_hardware_vm_whose_kernel_faults_for_ever_is_stopped_while_the_others_finish():
    hypervisor = Hypervisor("round-robin", time_slice=200)
    # As in test_hypervisor: tinyos told to use 64 MiB on a 16 MiB VM stores beyond its
    # RAM; the access fault goes to its vector 0, whose fetch faults again, for ever.
    broken = hypervisor.add_vm("broken", "hello", cmdline="mem=64M", mechanism="hardware")
    hypervisor.add_vm(workload="syscall n=50", mechanism="hardware")
    assert hypervisor.run() == "every VM has stopped"
    assert broken.state == CRASHED
    assert "faults in a row" in broken.crash and "pc 0x00000000" in broken.crash
    assert hypervisor.vms["syscall"].exit_code == 0


def test_the_cli_chooses_the_mechanism_per_vm():
    assert _vm_options("compute:hw")["mechanism"] == "hardware"
    assert _vm_options("compute:bt")["mechanism"] == "binary-translation"
    assert "mechanism" not in _vm_options("compute")
