"""The SBI firmware in Python: what OpenSBI does in M-mode, done by the host.

The RISC-V Supervisor Binary Interface (SBI) specification v2.0 defines how an S-mode
kernel asks the M-mode firmware for services: it executes ECALL with the extension ID
(EID) in a7, the function ID (FID) in a6 and arguments in a0..a5; the firmware returns
an error code in a0 and a value in a1 (chapter 3, "Binary Encoding").

With ``Machine(firmware="python")`` the hart runs with ``trap_exits="M"``: every trap
that would enter M-mode exits to Python instead, and this module handles it. Nothing
runs in M-mode on the hart itself. Implemented here:

    chapter 4  Base extension (EID 0x10): spec version 2.0, implementation ID and
               version, probe_extension, mvendorid/marchid/mimpid
    chapter 5  Legacy console putchar (EID 0x01) and getchar (EID 0x02)
    chapter 6  Timer extension TIME (EID 0x54494D45): set_timer
    chapter 9  Hart state management HSM (EID 0x48534D): hart_get_status
    chapter 10 System reset SRST (EID 0x53525354): shutdown, cold and warm reboot
    chapter 12 Debug console DBCN (EID 0x4442434E): write, read, write_byte
Any other EID or FID returns SBI_ERR_NOT_SUPPORTED.

Boot (``boot``) follows OpenSBI's FW_JUMP: delegate to S-mode the exceptions and
interrupts a kernel handles itself, open PMP, enable the counters, and enter the kernel
in S-mode at its entry with a0 = hartid (0) and a1 = the address of a device tree.
virtkit has no device tree, so a1 = 0: kernels for this board use its fixed memory map
(virtkit.machine.board).

The timer works as in OpenSBI (lib/sbi/sbi_timer.c): set_timer writes the CLINT's
mtimecmp, clears mip.STIP and enables the M-mode timer interrupt; when that interrupt
arrives, the firmware sets mip.STIP for the kernel and disables MTIE again.

A trap into M that this firmware does not handle cannot come from a correct kernel: all
exceptions a kernel can cause are delegated to S. Rather than redirect it to S-mode, as
OpenSBI's sbi_trap_redirect would, the machine stops with a ``FirmwareError`` naming
the pc, the cause and the disassembled instruction, which is what a student debugging
the kernel needs to see.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from virtkit.cpu import Hart
from virtkit.cpu import state as S
from virtkit.cpu.exits import Exit
from virtkit.isa import causes as C
from virtkit.isa.disasm import disassemble

if TYPE_CHECKING:
    from virtkit.machine.uart import Uart16550

# -- Error codes (chapter 3, table 1) ------------------------------------------------------
SBI_SUCCESS = 0
SBI_ERR_FAILED = -1
SBI_ERR_NOT_SUPPORTED = -2
SBI_ERR_INVALID_PARAM = -3

# -- Extension IDs ---------------------------------------------------------------------------
EID_LEGACY_CONSOLE_PUTCHAR = 0x01
EID_LEGACY_CONSOLE_GETCHAR = 0x02
EID_BASE = 0x10
EID_TIME = 0x54494D45  # "TIME"
EID_HSM = 0x48534D  # "HSM"
EID_SRST = 0x53525354  # "SRST"
EID_DBCN = 0x4442434E  # "DBCN"

# -- Function IDs ------------------------------------------------------------------------------
BASE_GET_SPEC_VERSION = 0
BASE_GET_IMPL_ID = 1
BASE_GET_IMPL_VERSION = 2
BASE_PROBE_EXTENSION = 3
BASE_GET_MVENDORID = 4
BASE_GET_MARCHID = 5
BASE_GET_MIMPID = 6
TIME_SET_TIMER = 0
HSM_HART_GET_STATUS = 2
SRST_SYSTEM_RESET = 0
DBCN_CONSOLE_WRITE = 0
DBCN_CONSOLE_READ = 1
DBCN_CONSOLE_WRITE_BYTE = 2

SPEC_VERSION = 2 << 24 | 0  # major in bits 30:24, minor in 23:0 (4.1): v2.0
# Implementation IDs are assigned in the spec (4.9); virtkit has none, so it uses a
# value outside the assigned range, "VK", and says so. The image firmware uses it too.
IMPL_ID = 0x564B
IMPL_VERSION = 1

HSM_STATE_STARTED = 0
SRST_TYPE_SHUTDOWN = 0
SRST_TYPE_COLD_REBOOT = 1
SRST_TYPE_WARM_REBOOT = 2
SRST_REASON_NONE = 0
SRST_REASON_SYSTEM_FAILURE = 1

HARTID = 0

# -- What OpenSBI sets up before it jumps to the kernel ---------------------------------------
# Exceptions the kernel handles itself (OpenSBI delegates these; it also emulates
# misaligned accesses and some illegal instructions, which virtkit's hart never needs).
MEDELEG = sum(
    1 << cause
    for cause in (
        C.CAUSE_MISALIGNED_FETCH,
        C.CAUSE_FETCH_ACCESS,
        C.CAUSE_ILLEGAL_INSTRUCTION,
        C.CAUSE_BREAKPOINT,
        C.CAUSE_MISALIGNED_LOAD,
        C.CAUSE_LOAD_ACCESS,
        C.CAUSE_MISALIGNED_STORE,
        C.CAUSE_STORE_ACCESS,
        C.CAUSE_USER_ECALL,
        C.CAUSE_FETCH_PAGE_FAULT,
        C.CAUSE_LOAD_PAGE_FAULT,
        C.CAUSE_STORE_PAGE_FAULT,
    )
)
MIP_SSIP = 1 << C.IRQ_S_SOFT
MIP_STIP = 1 << C.IRQ_S_TIMER
MIP_SEIP = 1 << C.IRQ_S_EXT
MIP_MTIP = 1 << C.IRQ_M_TIMER
MIDELEG = MIP_SSIP | MIP_STIP | MIP_SEIP
# PMP entry 0 as NAPOT over the whole 34-bit physical space, R, W and X (3.7.1):
# without a matching entry S- and U-mode accesses fail.
PMPADDR_ALL = 0xFFFF_FFFF
PMPCFG_NAPOT_RWX = 0x18 | 0x7

UART_RBR = 0
UART_LSR = 5
UART_LSR_DR = 0x01  # data ready


class FirmwareError(RuntimeError):
    """A trap reached M-mode that the firmware does not handle; the message says which."""


class SystemReset(NamedTuple):
    """The kernel asked for a system reset (SRST): "shutdown" with an exit code, or
    "reboot"."""

    kind: str
    code: int = 0


class SbiFirmware:
    """SBI v2.0 for one hart, with the console on ``uart`` and output to ``write``."""

    def __init__(self, hart: Hart, uart: Uart16550, write):
        self.hart = hart
        self.uart = uart
        self.write = write  # callable(str): where console output goes

    def boot(self, entry: int) -> None:
        """Set the (reset) hart up as OpenSBI does and enter the kernel at ``entry`` in
        S-mode."""
        hart = self.hart
        hart.pc = entry
        hart.trap_exits = "M"
        hart.csr["medeleg"] = MEDELEG
        hart.csr["mideleg"] = MIDELEG
        hart.csr["mcounteren"] = 0xFFFF_FFFF
        hart.csr["pmpaddr0"] = PMPADDR_ALL
        hart.csr["pmpcfg0"] = PMPCFG_NAPOT_RWX
        hart.mode = "S"
        hart.x["a0"] = HARTID
        hart.x["a1"] = 0  # no device tree

    # -- traps into M ------------------------------------------------------------------
    def handle_trap(self, exit: Exit) -> SystemReset | None:
        """Handle a trap the hart would have taken into M-mode."""
        if exit.interrupt and exit.cause == C.IRQ_M_TIMER:
            self._timer_interrupt()
            return None
        if not exit.interrupt and exit.cause == C.CAUSE_SUPERVISOR_ECALL:
            return self._ecall()
        raise FirmwareError(
            f"{exit.cause_name} trapped into M-mode at pc={exit.pc:#010x} "
            f"({disassemble(exit.instruction, exit.pc)}), tval={exit.tval:#x}: the SBI "
            "firmware handles only ECALLs from S-mode and its timer; every exception a "
            "kernel causes is delegated to S-mode, so check the kernel's trap handler"
        )

    def _timer_interrupt(self) -> None:
        """The M-mode timer fired: pass it on to S-mode as STIP (sbi_timer_process)."""
        hart = self.hart
        hart.csr["mie"] = hart.csr["mie"] & ~MIP_MTIP
        self._set_stip(True)

    def _set_stip(self, level: bool) -> None:
        """Set or clear mip.STIP, leaving the other software-writable bits as they are.

        Not ``csr["mip"] = csr["mip"] | ...``: a read of mip ORs in the lines devices
        drive (SEIP from the PLIC), and writing that back would latch the line into the
        writable SEIP bit, an interrupt that no claim could end. A read-modify-write
        of mip uses only the software-writable SEIP (privileged spec 1.12, 3.1.9)."""
        mip = self.hart.arrays.csr
        number = self.hart.csr.number("mip")
        mip[number] = mip[number] | MIP_STIP if level else mip[number] & ~MIP_STIP

    def _ecall(self) -> SystemReset | None:
        hart = self.hart
        eid, fid = hart.x["a7"], hart.x["a6"]
        args = [hart.x[f"a{i}"] for i in range(6)]
        hart.pc = hart.pc + 4
        if eid == EID_LEGACY_CONSOLE_PUTCHAR:
            self.write(chr(args[0] & 0xFF))
            hart.x["a0"] = 0  # the legacy extensions return a0 only (5.1)
            return None
        if eid == EID_LEGACY_CONSOLE_GETCHAR:
            byte = self._read_byte()
            hart.x["a0"] = -1 if byte is None else byte
            return None
        if eid == EID_SRST:
            error, reset = self._srst(fid, args)
            if error == SBI_SUCCESS:
                return reset  # the kernel does not come back
            value = 0
        elif eid in EXTENSIONS:
            error, value = EXTENSIONS[eid](self, fid, args)
        else:
            error, value = SBI_ERR_NOT_SUPPORTED, 0
        hart.x["a0"] = error
        hart.x["a1"] = value
        return None

    # -- extensions: each returns (error, value) ------------------------------------------
    def _base(self, fid: int, args: list[int]) -> tuple[int, int]:
        hart = self.hart
        results = {
            BASE_GET_SPEC_VERSION: lambda: SPEC_VERSION,
            BASE_GET_IMPL_ID: lambda: IMPL_ID,
            BASE_GET_IMPL_VERSION: lambda: IMPL_VERSION,
            BASE_PROBE_EXTENSION: lambda: int(args[0] in PROBED_EXTENSIONS),
            BASE_GET_MVENDORID: lambda: hart.csr["mvendorid"],
            BASE_GET_MARCHID: lambda: hart.csr["marchid"],
            BASE_GET_MIMPID: lambda: hart.csr["mimpid"],
        }
        if fid not in results:
            return SBI_ERR_NOT_SUPPORTED, 0
        return SBI_SUCCESS, results[fid]()

    def _time(self, fid: int, args: list[int]) -> tuple[int, int]:
        if fid != TIME_SET_TIMER:
            return SBI_ERR_NOT_SUPPORTED, 0
        hart = self.hart
        stime_value = args[1] << 32 | args[0]  # in a1:a0 on RV32
        # The core keeps the 64-bit mtimecmp in an int64 slot, as the CLINT stores it.
        hart.arrays.st[S.MTIMECMP] = stime_value - (1 << 64) if stime_value >> 63 else stime_value
        self._set_stip(False)
        hart.csr["mie"] = hart.csr["mie"] | MIP_MTIP
        return SBI_SUCCESS, 0

    def _hsm(self, fid: int, args: list[int]) -> tuple[int, int]:
        if fid != HSM_HART_GET_STATUS:
            return SBI_ERR_NOT_SUPPORTED, 0
        if args[0] != HARTID:
            return SBI_ERR_INVALID_PARAM, 0
        return SBI_SUCCESS, HSM_STATE_STARTED

    def _srst(self, fid: int, args: list[int]) -> tuple[int, SystemReset | None]:
        reset_type, reason = args[0], args[1]
        if fid != SRST_SYSTEM_RESET:
            return SBI_ERR_NOT_SUPPORTED, None
        if reset_type == SRST_TYPE_SHUTDOWN:
            code = 1 if reason == SRST_REASON_SYSTEM_FAILURE else 0
            return SBI_SUCCESS, SystemReset("shutdown", code)
        if reset_type in (SRST_TYPE_COLD_REBOOT, SRST_TYPE_WARM_REBOOT):
            return SBI_SUCCESS, SystemReset("reboot")
        return SBI_ERR_INVALID_PARAM, None

    def _dbcn(self, fid: int, args: list[int]) -> tuple[int, int]:
        hart = self.hart
        if fid == DBCN_CONSOLE_WRITE_BYTE:
            self.write(chr(args[0] & 0xFF))
            return SBI_SUCCESS, 0
        if fid not in (DBCN_CONSOLE_WRITE, DBCN_CONSOLE_READ):
            return SBI_ERR_NOT_SUPPORTED, 0
        count, address = args[0], args[2] << 32 | args[1]
        if not self._in_ram(address, count):
            return SBI_ERR_INVALID_PARAM, 0
        if fid == DBCN_CONSOLE_WRITE:
            self.write(hart.read_memory(address, count).decode("latin-1"))
            return SBI_SUCCESS, count
        received = bytearray()
        while len(received) < count and (byte := self._read_byte()) is not None:
            received.append(byte)
        hart.write_memory(address, bytes(received))
        return SBI_SUCCESS, len(received)

    # -- helpers -------------------------------------------------------------------------------
    def _in_ram(self, address: int, size: int) -> bool:
        base, ram_size = self.hart.ram_base, self.hart.ram_size
        return base <= address and address + size <= base + ram_size

    def _read_byte(self) -> int | None:
        """The next input byte from the UART, as OpenSBI's uart8250_getc reads it."""
        if self.uart.read(UART_LSR, 1) & UART_LSR_DR:
            return self.uart.read(UART_RBR, 1)
        return None


# The extensions with (error, value) results, by EID; SRST and the legacy ones return
# differently and are handled in _ecall.
EXTENSIONS = {
    EID_BASE: SbiFirmware._base,
    EID_TIME: SbiFirmware._time,
    EID_HSM: SbiFirmware._hsm,
    EID_DBCN: SbiFirmware._dbcn,
}
PROBED_EXTENSIONS = {*EXTENSIONS, EID_SRST, EID_LEGACY_CONSOLE_PUTCHAR, EID_LEGACY_CONSOLE_GETCHAR}
