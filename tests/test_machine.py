"""The Machine: SBI from S-mode programs, timer and UART interrupts, the run loop's stop
conditions, and snapshots.

Programs are assembled with virtkit.isa.asm at 0x8020_0000, where both firmwares start
an S-mode kernel; most tests run under the Python SBI and the firmware image alike.
"""

from __future__ import annotations

import pytest

from virtkit.cpu import exits as E
from virtkit.isa import causes as C
from virtkit.isa.asm import assemble
from virtkit.machine import board
from virtkit.machine.elf import ElfImage, ElfLoadError, Segment
from virtkit.machine.machine import Machine, MachineError, SnapshotError
from virtkit.machine.sbi import FirmwareError

FIRMWARES = ["python", "image"]

SBI_CALLS = r"""
    .equ EID_BASE, 0x10
    .equ EID_HSM, 0x48534D
    .equ EID_SRST, 0x53525354
_start:
    la s0, results
    li a7, EID_BASE
    li a6, 0                    # get_spec_version
    ecall
    sw a0, 0(s0)
    sw a1, 4(s0)
    li a6, 1                    # get_impl_id
    ecall
    sw a1, 8(s0)
    li a6, 3                    # probe_extension(HSM)
    li a0, EID_HSM
    ecall
    sw a1, 12(s0)
    li a6, 3                    # probe_extension(0x12345678)
    li a0, 0x12345678
    ecall
    sw a1, 16(s0)
    li a6, 99                   # an unknown function of a known extension
    ecall
    sw a0, 20(s0)
    li a7, 0x0A000000           # an unknown extension
    li a6, 0
    ecall
    sw a0, 24(s0)
    li a7, EID_HSM
    li a6, 2                    # hart_get_status(0)
    li a0, 0
    ecall
    sw a0, 28(s0)
    sw a1, 32(s0)
    li a0, 1                    # hart_get_status(1): there is no hart 1
    ecall
    sw a0, 36(s0)
    li a7, EID_SRST
    li a6, 0
    li a0, 0                    # shutdown
    li a1, 0                    # no reason
    ecall
    .data
results: .zero 40
"""


def boot(source: str, firmware: str = "python", **options) -> Machine:
    machine = Machine(ram_mb=16, firmware=firmware, **options)
    machine.load(assemble(source, "<test>", board.KERNEL_BASE))
    return machine


def words(machine: Machine, symbol: str, count: int) -> list[int]:
    address = machine.image.symbol(symbol)
    return [machine.hart.read_word(address + 4 * i) for i in range(count)]


@pytest.mark.parametrize("firmware", FIRMWARES)
def test_sbi_base_and_hsm_calls_from_s_mode(firmware):
    machine = boot(SBI_CALLS, firmware)
    result = machine.run(until=100_000)
    assert (result.reason, result.exit_code) == ("halt", 0)
    not_supported, invalid_param = 0xFFFF_FFFE, 0xFFFF_FFFD
    assert words(machine, "results", 10) == [
        0, 2 << 24,            # SBI v2.0
        0x564B,                # virtkit's implementation ID
        1, 0,                  # probe: HSM yes, 0x12345678 no
        not_supported,         # unknown function
        not_supported,         # unknown extension
        0, 0,                  # hart 0 is STARTED
        invalid_param,         # hart 1 does not exist
    ]  # fmt: skip


def test_python_firmware_enters_the_kernel_as_opensbi_does():
    machine = boot("_start: j _start")
    hart = machine.hart
    assert (hart.mode, hart.pc, hart.x["a0"], hart.x["a1"]) == ("S", board.KERNEL_BASE, 0, 0)
    # SSIP, STIP, SEIP; VSSIP, VSTIP and VSEIP are read-only one with the H extension.
    assert hart.csr["mideleg"] == 0x666
    assert hart.csr["medeleg"] & (1 << 8)  # ECALL from U goes to the kernel
    assert not hart.csr["medeleg"] & (1 << 9)  # ECALL from S comes to the firmware


CONSOLE = r"""
    .equ EID_DBCN, 0x4442434E
_start:
    li a7, EID_DBCN
    li a6, 0                    # console_write(6, message)
    li a0, 6
    la a1, message
    li a2, 0
    ecall
    li a6, 2                    # console_write_byte('!')
    li a0, '!'
    ecall
    li a7, 1                    # legacy console_putchar('\n')
    li a0, '\n'
    ecall
    li t0, 0x10000000           # and through the UART itself
    li t1, 'U'
    sb t1, 0(t0)
    li a7, 2                    # legacy console_getchar
    ecall
    la s0, got
    sw a0, 0(s0)
    li a7, EID_DBCN
    li a6, 1                    # console_read(8, buffer)
    li a0, 8
    la a1, buffer
    li a2, 0
    ecall
    sw a0, 4(s0)
    sw a1, 8(s0)
    li a7, 0x53525354
    li a6, 0
    li a0, 0
    li a1, 1                    # shutdown because of a system failure
    ecall
    .data
message: .ascii "hello "
got: .zero 12
buffer: .zero 8
"""


@pytest.mark.parametrize("firmware", FIRMWARES)
def test_console_through_sbi_and_the_uart(firmware):
    machine = boot(CONSOLE, firmware)
    machine.run(until=("breakpoint", board.KERNEL_BASE))  # the firmware has set the UART up
    machine.console.send("xyz")
    result = machine.run(until=100_000)
    assert (result.reason, result.exit_code) == ("halt", 1)  # the system failure
    assert machine.console.text == "hello !\nU"
    assert words(machine, "got", 3) == [ord("x"), 0, 2]  # getchar, then 2 bytes read
    assert machine.hart.read_memory(machine.image.symbol("buffer"), 2) == b"yz"


TIMER = r"""
    .equ EID_TIME, 0x54494D45
_start:
    la t0, trap_handler
    csrw stvec, t0
    li t0, 0x20                 # sie.STIE
    csrs sie, t0
    call next_timer
    csrsi sstatus, 2            # sstatus.SIE
wait:
    wfi
    li t0, 3
    blt s1, t0, wait
    li a7, 0x53525354           # three ticks: shut down
    li a6, 0
    li a0, 0
    li a1, 0
    ecall

next_timer:                     # set_timer(time + 500)
    rdtime a0
    rdtimeh a1
    addi a0, a0, 500
    sltiu t0, a0, 500
    add a1, a1, t0
    li a7, EID_TIME
    li a6, 0
    ecall
    ret

    .align 2
trap_handler:                   # only the S timer interrupt is expected
    csrr s2, scause
    addi s1, s1, 1
    li t0, 3
    bge s1, t0, last
    call next_timer
    sret
last:
    li a0, -1                   # no more timer interrupts: set_timer(-1) clears STIP
    li a1, -1
    li a7, EID_TIME
    li a6, 0
    ecall
    sret
"""


@pytest.mark.parametrize("firmware", FIRMWARES)
def test_timer_interrupts_through_sbi_set_timer(firmware):
    machine = boot(TIMER, firmware)
    result = machine.run(until=1_000_000)
    assert (result.reason, result.exit_code) == ("halt", 0)
    hart = machine.hart
    assert hart.x["s1"] == 3
    assert hart.x["s2"] == 0x8000_0005  # supervisor timer interrupt
    assert hart.mtime >= 3 * 500


UART_ECHO = r"""
    .equ PLIC, 0x0C000000
    .equ UART0, 0x10000000
_start:
    la t0, trap_handler
    csrw stvec, t0
    li t0, PLIC + 4 * 10        # priority of source 10 (UART0) = 1
    li t1, 1
    sw t1, 0(t0)
    li t0, PLIC + 0x2080        # context 1 (hart 0, S-mode) enables source 10
    li t1, 1 << 10
    sw t1, 0(t0)
    li t0, PLIC + 0x201000      # context 1 threshold = 0
    sw zero, 0(t0)
    li t0, UART0
    li t1, 1                    # IER: received data available
    sb t1, 1(t0)
    li t0, 0x200                # sie.SEIE
    csrs sie, t0
    csrsi sstatus, 2
idle:
    wfi
    j idle

    .align 2
trap_handler:
    li t0, PLIC + 0x201004      # claim
    lw t1, 0(t0)
    li t2, UART0
    lbu t3, 0(t2)               # RBR
    addi t3, t3, 'A' - 'a'      # echo it in upper case
    sb t3, 0(t2)
    sw t1, 0(t0)                # complete
    sret
"""


@pytest.mark.parametrize("firmware", FIRMWARES)
def test_uart_input_interrupts_through_the_plic(firmware):
    machine = boot(UART_ECHO, firmware)
    assert machine.run(until=100_000).reason == "idle"  # nothing to wake it
    machine.console.send("abc")
    result = machine.run(until="C")
    assert result.reason == "console"
    assert machine.console.text == "ABC"
    assert machine.run(until=100_000).reason == "idle"


def test_run_stops_at_a_breakpoint_and_after_a_count():
    machine = boot(TIMER)
    handler = machine.image.symbol("trap_handler")
    result = machine.run(until=("breakpoint", handler))
    assert (result.reason, machine.hart.pc) == ("breakpoint", handler)
    result = machine.run(until=5)
    assert (result.reason, result.instructions) == ("count", 5)
    assert machine.run().reason == "halt"


def test_run_rejects_an_unknown_condition():
    machine = boot(TIMER)
    with pytest.raises(ValueError, match="until="):
        machine.run(until=2.5)


def test_bad_configuration_and_placement_are_named():
    with pytest.raises(ValueError, match="firmware must be one of"):
        Machine(firmware="opensbi")
    machine = Machine(ram_mb=16, firmware="image")
    with pytest.raises(ElfLoadError, match="link the kernel there"):
        machine.load(assemble("_start: j _start", "<test>", board.RAM_BASE))


def test_python_firmware_names_a_trap_it_does_not_handle():
    machine = boot("_start: j _start")
    exit = E.Exit(E.EXIT_TRAP, 0x8020_0000, instruction=0x00000073, cause=11)
    with pytest.raises(FirmwareError, match=r"pc=0x80200000 \(ecall\)"):
        machine.sbi.handle_trap(exit)


# -- Snapshots ------------------------------------------------------------------------


def observable_state(machine: Machine) -> tuple:
    hart = machine.hart
    return (
        list(hart.x),
        hart.pc,
        hart.mode,
        hart.arrays.csr.tobytes(),
        hart.arrays.ram.tobytes(),
        hart.instret,
        hart.mtime,
        machine.console.text,
    )


# Busy work between timer interrupts; each tick prints a dot; the 20th shuts down.
TICKING = r"""
_start:
    la t0, trap_handler
    csrw stvec, t0
    li t0, 0x20                 # sie.STIE
    csrs sie, t0
    call next_timer
    csrsi sstatus, 2            # sstatus.SIE
work:
    slli t0, s3, 5
    add s3, s3, t0
    addi s3, s3, 7
    j work

next_timer:                     # set_timer(time + 50)
    rdtime a0
    addi a0, a0, 50
    li a1, 0
    li a7, 0x54494D45
    li a6, 0
    ecall
    ret

    .align 2
trap_handler:
    addi s1, s1, 1
    li a0, '.'
    li a7, 1                    # legacy console_putchar
    ecall
    li t0, 20
    bge s1, t0, shutdown
    call next_timer
    sret
shutdown:
    li a7, 0x53525354
    li a6, 0
    li a0, 0
    li a1, 0
    ecall
"""


@pytest.mark.parametrize("firmware", FIRMWARES)
def test_snapshot_then_restore_continues_bit_for_bit(firmware):
    straight = boot(TICKING, firmware)
    straight.run(until=3000)
    straight.run(until=3000)
    split = boot(TICKING, firmware)
    split.run(until=3000)
    restored = Machine.restore(split.snapshot())
    restored.run(until=3000)
    assert observable_state(restored) == observable_state(straight)
    assert restored.run().exit_code == straight.run().exit_code == 0
    assert observable_state(restored) == observable_state(straight)
    assert restored.console.text == "." * 20


def test_a_halted_machine_does_not_run_on():
    machine = boot(TIMER)
    assert machine.run().reason == "halt"
    with pytest.raises(MachineError, match="halted"):
        machine.run()


def test_snapshot_keeps_devices_console_and_disk():
    disk = bytes(range(256)) * 8
    machine = boot(UART_ECHO, disk=disk)
    machine.run(until=1000)
    machine.console.send("q")
    machine.run(until="Q")
    machine.console.send("r")  # queued, not yet delivered
    restored = Machine.restore(machine.snapshot())
    assert restored.console.text == "Q"
    assert restored.uart.ier == machine.uart.ier == 1
    assert restored.plic.enable == machine.plic.enable
    assert bytes(restored.disk.disk) == disk
    assert restored.run(until="R").reason == "console"


def test_bad_snapshots_are_refused_with_the_reason():
    data = boot(TIMER).snapshot()
    with pytest.raises(SnapshotError, match="too short"):
        Machine.restore(b"VK")
    with pytest.raises(SnapshotError, match="not a virtkit snapshot"):
        Machine.restore(b"\x7fELF" + data[4:])
    with pytest.raises(SnapshotError, match="format version 99"):
        Machine.restore(data[:8] + (99).to_bytes(4, "little") + data[12:])
    corrupt = bytearray(data)
    corrupt[len(corrupt) // 2] ^= 0xFF
    with pytest.raises(SnapshotError, match="corrupt"):
        Machine.restore(bytes(corrupt))


REBOOT = r"""
    .equ EID_SRST, 0x53525354
    .equ EID_DBCN, 0x4442434E
    .equ COUNTER, 0x80800000    # outside the kernel image: a reboot keeps RAM
_start:
    li t0, COUNTER
    lw t1, 0(t0)
    addi t1, t1, 1
    sw t1, 0(t0)
    li a7, EID_DBCN             # write_byte('0' + boots)
    li a6, 2
    addi a0, t1, '0'
    ecall
    li a7, EID_SRST
    li a6, 0
    li t0, 3
    blt t1, t0, reboot
    li a0, 0                    # third boot: shut down
    li a1, 0
    ecall
reboot:
    li a0, 2                    # warm reboot
    li a1, 0
    ecall
"""


@pytest.mark.parametrize("firmware", FIRMWARES)
def test_srst_reboot_restarts_the_kernel_and_keeps_ram(firmware):
    machine = boot(REBOOT, firmware)
    result = machine.run(until=1_000_000)
    assert (result.reason, result.exit_code) == ("halt", 0)
    assert machine.console.text == "123"
    assert machine.hart.read_word(0x80800000) == 3


CMDLINE_ECHO = r"""
    .equ EID_SRST, 0x53525354
    .equ EID_DBCN, 0x4442434E
    .equ CMDLINE, 0x801FF000    # board.CMDLINE_BASE
    .equ BOOTS, 0x80800000
_start:
    li s0, CMDLINE
    li a0, 0                    # the command line's length, up to its NUL
1:  add t0, s0, a0
    lbu t0, 0(t0)
    beqz t0, 2f
    addi a0, a0, 1
    j 1b
2:  mv a1, s0
    li a2, 0
    li a7, EID_DBCN             # console_write(length, address)
    li a6, 0
    ecall
    li t0, '!'                  # scribble on it: a reboot must write it afresh
    sb t0, 0(s0)
    li t0, BOOTS
    lw t1, 0(t0)
    addi t1, t1, 1
    sw t1, 0(t0)
    li a7, EID_SRST
    li a6, 0
    li a0, 0                    # second boot: shut down
    li a1, 0
    li t0, 2
    bge t1, t0, 3f
    li a0, 2                    # first boot: warm reboot
3:  ecall
"""


def boot_with_cmdline(cmdline: str, firmware: str = "python", **options) -> Machine:
    machine = Machine(ram_mb=16, firmware=firmware, **options)
    machine.load(assemble(CMDLINE_ECHO, "<test>", board.KERNEL_BASE), cmdline)
    return machine


@pytest.mark.parametrize("firmware", FIRMWARES)
def test_the_command_line_is_written_on_every_boot(firmware):
    machine = boot_with_cmdline("init=forkwait n=200", firmware)
    assert machine.run(until=100_000).exit_code == 0
    assert machine.console.text == "init=forkwait n=200" * 2
    assert machine.cmdline == "init=forkwait n=200"


def test_loading_again_without_a_command_line_leaves_an_empty_one():
    machine = boot_with_cmdline("abc")
    machine.run(until=100_000)
    machine.console._output.clear()
    machine.load(assemble(CMDLINE_ECHO, "<test>", board.KERNEL_BASE))
    assert machine.run(until=100_000).exit_code == 0
    assert machine.console.text == ""


def test_a_restored_machine_reboots_with_its_command_line():
    machine = boot_with_cmdline("quantum=5ms")
    restored = Machine.restore(machine.snapshot())
    assert restored.run(until=100_000).exit_code == 0
    assert restored.console.text == "quantum=5ms" * 2


@pytest.mark.parametrize(
    ("cmdline", "message"),
    [
        ("init=h\u00e9llo", "is not ASCII"),
        ("init=hello\0n=3", "NUL"),
        ("x" * board.CMDLINE_SIZE, "at most 4095 fit at 0x801ff000"),
    ],
    ids=["non-ascii", "nul", "too-long"],
)
def test_a_bad_command_line_is_refused_with_the_reason(cmdline, message):
    with pytest.raises(ValueError, match=message):
        boot_with_cmdline(cmdline)


def test_a_command_line_needs_ram_and_room():
    tiny = ElfImage("tiny.elf", board.RAM_BASE, [Segment(board.RAM_BASE, bytes(4), True)])
    small = Machine(ram_mb=1, firmware=None)
    with pytest.raises(ValueError, match="beyond the end of RAM at 0x80100000"):
        small.load(tiny, "init=sh")
    small.load(tiny)  # nothing to pass, nothing to place
    covering = ElfImage(
        "big.elf", board.RAM_BASE, [Segment(board.CMDLINE_BASE - 8, b"\1" * 16, True)]
    )
    machine = Machine(ram_mb=16, firmware=None)
    with pytest.raises(ValueError, match="big.elf has a segment at 0x801feff8"):
        machine.load(covering, "init=sh")
    machine.load(covering)  # without a command line the program keeps its bytes
    assert machine.hart.read_memory(board.CMDLINE_BASE - 8, 16) == b"\1" * 16


def test_the_python_sbi_does_not_latch_a_device_interrupt_into_mip():
    """mip.STIP changes (a timer passed on, a timer set) while the PLIC holds SEIP high
    must leave SEIP to the line: once the line falls, SEIP is clear (privileged spec
    1.12, 3.1.9). Otherwise a claim finds nothing and the kernel sees the interrupt for
    ever."""
    machine = boot(TIMER)
    hart, sbi = machine.hart, machine.sbi
    seip, stip = 1 << C.IRQ_S_EXT, 1 << C.IRQ_S_TIMER
    hart.set_interrupt_line(seip, True)
    sbi._timer_interrupt()
    assert hart.csr["mip"] & (seip | stip) == seip | stip
    sbi._time(0, [1_000_000, 0])  # sbi_set_timer clears STIP
    hart.set_interrupt_line(seip, False)
    assert hart.csr["mip"] & (seip | stip) == 0
