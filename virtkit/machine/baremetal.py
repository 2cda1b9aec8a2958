"""Running a bare-metal ELF in M-mode: RAM, HTIF and the SiFive test finisher.

This is the smallest machine a program can end on: what ``virtkit run ELF`` uses
for bare-metal programs and the official riscv-tests binaries.

- HTIF, the host-target interface of the Berkeley tools (spike, riscv-tests): the
  program writes a 64-bit command to the ``tohost`` symbol. Device 0 command 0 with
  bit 0 set ends the run with exit code ``value >> 1`` (so 1 means pass); device 1
  command 1 prints the low byte (the console). The host acknowledges a console write
  by clearing tohost and writing ``fromhost``.
- The SiFive test finisher (QEMU virt's ``sifive_test`` at 0x0010_0000, the
  ``SifiveTest`` device of sifive_test.py): writing 0x5555 passes,
  ``code << 16 | 0x3333`` fails with ``code``, 0x7777 resets.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from virtkit.cpu import Hart
from virtkit.cpu import exits as E
from virtkit.isa.causes import CAUSE_LOAD_ACCESS, CAUSE_STORE_ACCESS
from virtkit.isa.registers import ABI_NAMES
from virtkit.machine.elf import ElfImage, check_fits, read_elf
from virtkit.machine.sifive_test import SifiveTest

FINISHER_BASE = 0x0010_0000

HTIF_DEVICE_SYSCALL = 0
HTIF_DEVICE_CONSOLE = 1
HTIF_CONSOLE_PUTCHAR = 1


class GuestError(RuntimeError):
    """The guest did something the host cannot carry out; the message says what."""


@dataclass
class RunResult:
    exit_code: int | None  # None when the run stopped for another reason
    exit: E.Exit
    console: str
    stats: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.exit_code == 0


class BareMetal:
    """A hart with RAM, HTIF and a test finisher, running one ELF image in M-mode."""

    def __init__(self, image: ElfImage | str, ram_size: int = 128 << 20):
        self.image = read_elf(image) if isinstance(image, str) else image
        self.hart = Hart(ram_size)
        check_fits(self.image, self.hart.ram_base, ram_size)
        for segment in self.image.segments:
            self.hart.write_memory(segment.address, segment.data)
        self.hart.reset(self.image.entry)
        self.hart.tohost = self.image.symbol("tohost")
        self.fromhost = self.image.symbol("fromhost")
        self.finisher = SifiveTest()
        self.hart.add_mmio_region(FINISHER_BASE, SifiveTest.SIZE)
        self.console: list[str] = []
        self.on_console = None  # optional callback(str) for live output

    def _print(self, text: str) -> None:
        self.console.append(text)
        if self.on_console is not None:
            self.on_console(text)

    def _htif(self, value: int) -> int | None:
        """Handle a tohost command; returns an exit code when the program ended."""
        device = value >> 56
        command = (value >> 48) & 0xFF
        payload = value & ((1 << 48) - 1)
        if device == HTIF_DEVICE_SYSCALL and command == 0 and payload & 1:
            return payload >> 1
        if device == HTIF_DEVICE_CONSOLE and command == HTIF_CONSOLE_PUTCHAR:
            self._print(chr(payload & 0xFF))
            self.hart.write_memory(self.hart.tohost, bytes(8))
            if self.fromhost is not None:
                reply = (device << 56) | (command << 48)
                self.hart.write_memory(self.fromhost, reply.to_bytes(8, "little"))
            return None
        raise GuestError(
            f"HTIF command {value:#018x} (device {device}, command {command}) is not "
            "supported: only exit (device 0) and console output (device 1) are"
        )

    def _finisher(self, exit: E.Exit) -> int | None:
        """Hand an access to the finisher; returns an exit code when the program ended."""
        offset = exit.address - FINISHER_BASE
        if exit.reason == E.EXIT_MMIO_READ:
            self.hart.complete_mmio(self.finisher.read(offset, exit.size))
            return None
        self.finisher.write(offset, exit.size, exit.value)
        match self.finisher.take_outcome():
            case ("pass", code) | ("fail", code):
                return code
            case ("reset", _):
                raise GuestError("the guest asked the test finisher to reset the machine")
        self.hart.complete_mmio()
        return None

    def run(self, max_instructions: int = 1 << 62, *, trace: int = 0, on_trace=None) -> RunResult:
        """Run until the program ends, stops, or ``max_instructions`` have run.

        With ``trace`` > 0 the first ``trace`` instructions run one at a time and each
        is reported to ``on_trace`` (default: print) as pc, disassembly and the
        register it wrote.
        """
        hart = self.hart
        start = hart.stats["instructions"]
        while True:
            done = hart.stats["instructions"] - start
            budget = max_instructions - done
            if budget <= 0:
                return self._result(None, hart.last_exit())
            tracing = done < trace
            if tracing:
                pc, before = hart.pc, list(hart.x)
                budget = 1
            exit = hart.run(budget)
            if tracing:
                (on_trace or print)(self._trace_line(pc, before))
            match exit.reason:
                case E.EXIT_HALT:
                    code = self._htif(exit.value)
                    if code is not None:
                        return self._result(code, exit)
                case E.EXIT_MMIO_READ | E.EXIT_MMIO_WRITE:
                    if FINISHER_BASE <= exit.address < FINISHER_BASE + SifiveTest.SIZE:
                        code = self._finisher(exit)
                        if code is not None:
                            return self._result(code, exit)
                    else:
                        cause = CAUSE_LOAD_ACCESS
                        if exit.reason == E.EXIT_MMIO_WRITE:
                            cause = CAUSE_STORE_ACCESS
                        hart.take_trap(cause, exit.address)
                case E.EXIT_BUDGET:
                    if not tracing:
                        return self._result(None, exit)
                case E.EXIT_WFI:
                    raise GuestError(
                        f"the hart waits for an interrupt (WFI at pc={exit.pc:#010x}) "
                        "but nothing can wake it: no timer is armed in mie/mtimecmp"
                    )
                case _:
                    return self._result(None, exit)

    def _trace_line(self, pc: int, before: list[int]) -> str:
        from virtkit.isa.disasm import disassemble

        word = int.from_bytes(self.hart.read_memory(pc, 4), "little") if self._in_ram(pc) else 0
        text = f"{pc:08x}: {word:08x}  {disassemble(word, pc):<28}"
        for number, (old, new) in enumerate(zip(before, self.hart.x, strict=True)):
            if old != new:
                text += f" {ABI_NAMES[number]}={new:#010x}"
        if self.hart.pc != (pc + 4) & 0xFFFFFFFF and not text.rstrip().endswith("ret"):
            text += f" -> {self.hart.pc:#010x} ({self.hart.mode})"
        return text

    def _in_ram(self, address: int) -> bool:
        return self.hart.ram_base <= address < self.hart.ram_base + self.hart.ram_size - 4

    def _result(self, code: int | None, exit: E.Exit) -> RunResult:
        return RunResult(code, exit, "".join(self.console), self.hart.stats)
