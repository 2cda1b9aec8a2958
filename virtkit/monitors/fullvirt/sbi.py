"""The SBI the monitor offers its guest: the firmware calls of an unmodified kernel.

The guest kernel was written for a board with SBI firmware in M-mode (virtkit.machine.sbi,
OpenSBI on QEMU): it calls the firmware with ECALL, extension ID in a7, function ID in
a6, arguments in a0..a5, and gets an error code in a0 and a value in a1 (SBI
specification v2.0, chapter 3). Under the monitor there is no M-mode for it: its ECALL
traps to the monitor, which is its firmware now. This is the same interface, the
hypercall interface a paravirtualized kernel uses on purpose (model 3); an unmodified
kernel uses it only for what it always asked firmware for.

The differences from the board's firmware are the ones virtualization makes:
- set_timer (chapter 6) arms the virtual CPU's timer, not the real one: the monitor
  keeps the real timer and raises the guest's STIP when its deadline passes;
- DBCN (chapter 12) takes guest-physical addresses, read through the guest-physical map;
- a system reset (chapter 10) ends this guest only.
"""

from __future__ import annotations

from collections.abc import Callable

from virtkit.machine import sbi as firmware
from virtkit.machine.sbi import SystemReset
from virtkit.monitors.fullvirt.vcpu import MIP_STIP, NO_DEADLINE

UART_RBR = firmware.UART_RBR
UART_LSR = firmware.UART_LSR
UART_LSR_DR = firmware.UART_LSR_DR


class VirtualSbi:
    """SBI v2.0 for one guest: console on ``uart`` and ``write``, memory ``memory``."""

    def __init__(self, vcpu, memory, uart, write: Callable[[str], None], on_timer_set):
        self.vcpu = vcpu
        self.memory = memory  # GuestPhysicalMemory
        self.uart = uart
        self.write = write
        self.on_timer_set = on_timer_set  # the monitor reprograms the real timer

    def call(self, registers) -> SystemReset | None:
        """Serve the call in ``registers`` (a0..a7); the result goes into a0 and a1."""
        x = registers
        eid, fid = x[17], x[16]
        args = [x[10 + i] for i in range(6)]
        if eid == firmware.EID_LEGACY_CONSOLE_PUTCHAR:
            self.write(chr(args[0] & 0xFF))
            x[10] = 0
            return None
        if eid == firmware.EID_LEGACY_CONSOLE_GETCHAR:
            byte = self._read_byte()
            x[10] = -1 if byte is None else byte
            return None
        if eid == firmware.EID_SRST:
            error, reset = self._srst(fid, args)
            if error == firmware.SBI_SUCCESS:
                return reset
            value = 0
        elif eid in self.EXTENSIONS:
            error, value = self.EXTENSIONS[eid](self, fid, args)
        else:
            error, value = firmware.SBI_ERR_NOT_SUPPORTED, 0
        x[10] = error
        x[11] = value
        return None

    # -- extensions: each returns (error, value) ------------------------------------------------
    def _base(self, fid: int, args: list[int]) -> tuple[int, int]:
        results = {
            firmware.BASE_GET_SPEC_VERSION: firmware.SPEC_VERSION,
            firmware.BASE_GET_IMPL_ID: firmware.IMPL_ID,
            firmware.BASE_GET_IMPL_VERSION: firmware.IMPL_VERSION,
            firmware.BASE_PROBE_EXTENSION: int(args[0] in self.PROBED),
            firmware.BASE_GET_MVENDORID: 0,
            firmware.BASE_GET_MARCHID: 0,
            firmware.BASE_GET_MIMPID: 0,
        }
        if fid not in results:
            return firmware.SBI_ERR_NOT_SUPPORTED, 0
        return firmware.SBI_SUCCESS, results[fid]

    def _time(self, fid: int, args: list[int]) -> tuple[int, int]:
        if fid != firmware.TIME_SET_TIMER:
            return firmware.SBI_ERR_NOT_SUPPORTED, 0
        deadline = args[1] << 32 | args[0]  # stime_value in a1:a0 on RV32
        self.vcpu.stimecmp = deadline
        # set_timer clears the pending timer interrupt (6.1); a deadline already passed
        # raises it again at once, as the real timer would.
        self.vcpu.set_pending(MIP_STIP, deadline != NO_DEADLINE and self.vcpu.time() >= deadline)
        self.on_timer_set()
        return firmware.SBI_SUCCESS, 0

    def _hsm(self, fid: int, args: list[int]) -> tuple[int, int]:
        if fid != firmware.HSM_HART_GET_STATUS:
            return firmware.SBI_ERR_NOT_SUPPORTED, 0
        if args[0] != firmware.HARTID:
            return firmware.SBI_ERR_INVALID_PARAM, 0
        return firmware.SBI_SUCCESS, firmware.HSM_STATE_STARTED

    def _srst(self, fid: int, args: list[int]) -> tuple[int, SystemReset | None]:
        reset_type, reason = args[0], args[1]
        if fid != firmware.SRST_SYSTEM_RESET:
            return firmware.SBI_ERR_NOT_SUPPORTED, None
        if reset_type == firmware.SRST_TYPE_SHUTDOWN:
            code = 1 if reason == firmware.SRST_REASON_SYSTEM_FAILURE else 0
            return firmware.SBI_SUCCESS, SystemReset("shutdown", code)
        if reset_type in (firmware.SRST_TYPE_COLD_REBOOT, firmware.SRST_TYPE_WARM_REBOOT):
            return firmware.SBI_SUCCESS, SystemReset("reboot")
        return firmware.SBI_ERR_INVALID_PARAM, None

    def _dbcn(self, fid: int, args: list[int]) -> tuple[int, int]:
        if fid == firmware.DBCN_CONSOLE_WRITE_BYTE:
            self.write(chr(args[0] & 0xFF))
            return firmware.SBI_SUCCESS, 0
        if fid not in (firmware.DBCN_CONSOLE_WRITE, firmware.DBCN_CONSOLE_READ):
            return firmware.SBI_ERR_NOT_SUPPORTED, 0
        count, address = args[0], args[2] << 32 | args[1]
        if not (address in self.memory and address + count <= self.memory.base + self.memory.size):
            return firmware.SBI_ERR_INVALID_PARAM, 0
        if fid == firmware.DBCN_CONSOLE_WRITE:
            self.write(self.memory.read_memory(address, count).decode("latin-1"))
            return firmware.SBI_SUCCESS, count
        received = bytearray()
        while len(received) < count and (byte := self._read_byte()) is not None:
            received.append(byte)
        self.memory.write_memory(address, bytes(received))
        return firmware.SBI_SUCCESS, len(received)

    def _read_byte(self) -> int | None:
        if self.uart.read(UART_LSR, 1) & UART_LSR_DR:
            return self.uart.read(UART_RBR, 1)
        return None

    EXTENSIONS = {
        firmware.EID_BASE: _base,
        firmware.EID_TIME: _time,
        firmware.EID_HSM: _hsm,
        firmware.EID_DBCN: _dbcn,
    }
    PROBED = {
        *EXTENSIONS,
        firmware.EID_SRST,
        firmware.EID_LEGACY_CONSOLE_PUTCHAR,
        firmware.EID_LEGACY_CONSOLE_GETCHAR,
    }
