"""The SiFive test finisher: how a program on QEMU's ``virt`` board ends the run.

QEMU models it in hw/misc/sifive_test.c and maps it at 0x0010_0000 on ``virt``. It has
one write-only register at offset 0. The low 16 bits of a write are a status:

    0x5555               FINISHER_PASS   the run ends, exit code 0
    code << 16 | 0x3333  FINISHER_FAIL   the run ends, exit code ``code`` (bits 31:16)
    0x7777               FINISHER_RESET  the machine resets

Any other value, or a write to another offset, does nothing. Reads return 0.

The device only records what the guest asked for in ``outcome``; the machine that
owns it decides what ending the run or resetting means.
"""

from __future__ import annotations

from virtkit.machine.bus import Device

FINISHER_FAIL = 0x3333
FINISHER_PASS = 0x5555
FINISHER_RESET = 0x7777

STATUS_MASK = 0xFFFF
CODE_SHIFT = 16


class SifiveTest(Device):
    """The finisher. After a write, ``outcome`` is None or one of
    ``("pass", 0)``, ``("fail", code)``, ``("reset", 0)``."""

    name = "sifive_test"
    SIZE = 0x1000  # QEMU virt's memory map gives the finisher one 4 KiB page

    def __init__(self):
        self.outcome: tuple[str, int] | None = None

    def read(self, offset: int, size: int) -> int:
        return 0

    def write(self, offset: int, size: int, value: int) -> None:
        if offset != 0:
            return
        status = value & STATUS_MASK
        if status == FINISHER_PASS:
            self.outcome = ("pass", 0)
        elif status == FINISHER_FAIL:
            self.outcome = ("fail", (value >> CODE_SHIFT) & STATUS_MASK)
        elif status == FINISHER_RESET:
            self.outcome = ("reset", 0)

    def take_outcome(self) -> tuple[str, int] | None:
        """Return the recorded outcome and forget it."""
        outcome, self.outcome = self.outcome, None
        return outcome
