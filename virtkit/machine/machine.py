"""The Machine: a hart on QEMU's ``virt`` board, with devices, firmware and a console.

    machine = Machine(ram_mb=128, firmware="python", disk=b"\\0" * 65536)
    machine.load("kernel.elf")             # an S-mode kernel linked at 0x8020_0000
    result = machine.run()                 # until the kernel shuts down
    machine.console.text                   # what it printed

The board (virtkit.machine.board) has RAM and the CLINT inside the compiled hart, and
on the bus the sifive_test finisher, the PLIC, the UART and, with ``disk``, a
virtio-blk device in virtio-mmio slot 0. Interrupts flow device -> PLIC source -> PLIC
context -> mip: context 0 drives MEIP, context 1 SEIP. The devices raise their lines
while they handle an access, so an interrupt is pending before the hart runs the next
instruction.

Firmware, as on a real board, runs before the kernel and stays resident in M-mode:
- "python": the SBI in Python (virtkit.machine.sbi); traps into M exit to it;
- "image": the M-mode SBI firmware in assembly (firmware/sbi.S), the same image that
  boots the kernel on ``qemu-system-riscv32 -machine virt -bios``; it occupies RAM
  below 0x8020_0000, where the kernel must be linked;
- None: no firmware; the program runs in M-mode from its entry (bare metal) and ends
  through the finisher or HTIF.

``run`` is the VMM loop of this machine: one flat ``match`` on the hart's exits.
``snapshot`` and ``restore`` save and continue the whole machine.
"""

from __future__ import annotations

import copy
import io
import os
import pickle
import struct
import threading
import zlib
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from virtkit.cpu import Hart
from virtkit.cpu import exits as E
from virtkit.cpu import state as S
from virtkit.isa import causes as C
from virtkit.isa.asm import assemble
from virtkit.isa.program import Program
from virtkit.machine import board
from virtkit.machine.bus import Bus, Device
from virtkit.machine.elf import (
    ElfImage,
    ElfLoadError,
    as_image,
    check_fits,
    image_from_record,
    image_record,
)
from virtkit.machine.plic import Plic
from virtkit.machine.sbi import SbiFirmware, SystemReset
from virtkit.machine.sifive_test import SifiveTest
from virtkit.machine.uart import Uart16550
from virtkit.machine.virtio_blk import VirtioBlk

FIRMWARES = ("python", "image", None)
FIRMWARE_SOURCE = Path(__file__).parent / "firmware" / "sbi.S"

MIP_MEIP = 1 << C.IRQ_M_EXT
MIP_SEIP = 1 << C.IRQ_S_EXT
CONTEXT_LINES = {board.PLIC_CONTEXT_M: MIP_MEIP, board.PLIC_CONTEXT_S: MIP_SEIP}

# The longest stretch the hart runs without the loop looking at console input.
BATCH_INSTRUCTIONS = 200_000

HTIF_EXIT = 1  # tohost bit 0 on device 0, command 0: the program ended, code = value >> 1


class MachineError(RuntimeError):
    """The machine cannot go on; the message says what happened and where."""


class SnapshotError(ValueError):
    """Snapshot data that cannot be restored; the message says what is wrong."""


# -- The console ----------------------------------------------------------------------------


class Console:
    """What the guest printed (``text``) and input waiting for it (``send``).

    Output comes from the UART and from the SBI console calls. Input waits here until
    the machine's run loop hands it to the UART, between two batches of instructions;
    ``send`` may be called from another thread (a terminal reader).
    """

    def __init__(self):
        self._output: list[str] = []
        self._input: deque[str] = deque()
        self._input_arrived = threading.Condition()
        self.on_output = None  # optional callable(str): live output, e.g. to a terminal
        self.interactive = False  # True: an idle guest waits for input instead of stopping

    @property
    def text(self) -> str:
        if len(self._output) > 1:
            self._output[:] = ["".join(self._output)]
        return self._output[0] if self._output else ""

    def write(self, text: str) -> None:
        self._output.append(text)
        if self.on_output is not None:
            self.on_output(text)

    def send(self, text: str) -> None:
        """Queue ``text`` as input for the guest."""
        with self._input_arrived:
            self._input.append(text)
            self._input_arrived.notify_all()

    def take_input(self) -> str:
        with self._input_arrived:
            text = "".join(self._input)
            self._input.clear()
        return text

    def has_input(self) -> bool:
        return bool(self._input)

    def wait_for_input(self) -> None:
        with self._input_arrived:
            self._input_arrived.wait_for(lambda: self._input)


# -- Empty virtio-mmio slots ------------------------------------------------------------------


class EmptyVirtioSlot(Device):
    """A virtio-mmio transport with no device behind it, as QEMU ``virt`` has in every
    unused slot: it reads as MagicValue "virt", Version 2 and DeviceID 0, which the
    virtio spec (1.2, 4.2.3.1.1) tells a driver to ignore; writes do nothing."""

    name = "virtio-mmio (empty)"
    MAGIC_VALUE = 0x7472_6976  # "virt", little-endian
    REGISTERS = {0x000: MAGIC_VALUE, 0x004: 2}  # MagicValue, Version; the rest reads 0

    def read(self, offset: int, size: int) -> int:
        return self.REGISTERS.get(offset, 0)

    def write(self, offset: int, size: int, value: int) -> None:
        pass


# -- Run results ---------------------------------------------------------------------------------


@dataclass
class RunResult:
    """Why ``Machine.run`` stopped.

    ``reason`` is "halt" (the guest ended the run; ``exit_code`` says how), "console"
    (the awaited text appeared), "count" (the instructions were run), "breakpoint"
    (the pc reached it) or "idle" (the hart waits for an interrupt nothing can send).
    """

    reason: str
    exit: E.Exit
    instructions: int  # run in this call
    exit_code: int | None = None

    def __str__(self) -> str:
        text = f"{self.reason} after {self.instructions} instructions ({self.exit})"
        if self.exit_code is not None:
            text += f", exit code {self.exit_code}"
        return text


# -- The machine ----------------------------------------------------------------------------


class Machine:
    """One hart on the ``virt`` board, with firmware ``firmware`` and an optional disk."""

    def __init__(
        self,
        ram_mb: int = 128,
        firmware: str | None = "python",
        disk: str | os.PathLike | bytes | bytearray | None = None,
    ):
        if firmware not in FIRMWARES:
            raise ValueError(f"firmware must be one of {FIRMWARES}, got {firmware!r}")
        if not isinstance(ram_mb, int) or ram_mb < 1:
            raise ValueError(f"ram_mb must be a whole number of MiB >= 1, got {ram_mb!r}")
        self.ram_mb = ram_mb
        self.firmware = firmware
        self.disk_path = None if disk is None or isinstance(disk, bytes | bytearray) else disk
        self.hart = Hart(ram_mb << 20)
        self.console = Console()
        self.bus = Bus()
        self.test = SifiveTest()
        self.plic = Plic(self._plic_context_changed)
        self.uart = Uart16550(
            irq=lambda level: self.plic.set_source(board.UART0_IRQ, level),
            on_output=self.console.write,
        )
        self._attach(board.TEST_BASE, board.TEST_SIZE, self.test)
        self._attach(board.PLIC_BASE, board.PLIC_SIZE, self.plic)
        self._attach(board.UART0_BASE, board.UART0_SIZE, self.uart)
        self.disk = None
        if disk is not None:
            backing = bytearray(disk) if isinstance(disk, bytes) else disk
            self.disk = VirtioBlk(
                self.hart, lambda level: self.plic.set_source(board.virtio_irq(0), level), backing
            )
            self._attach(board.virtio_base(0), board.VIRTIO_SIZE, self.disk)
        for slot in range(0 if self.disk is None else 1, board.VIRTIO_COUNT):
            self._attach(board.virtio_base(slot), board.VIRTIO_SIZE, EmptyVirtioSlot())
        self.sbi = SbiFirmware(self.hart, self.uart, self.console.write)
        self._reset_states = {
            device.name: copy.deepcopy(_device_state(device))
            for device in (self.test, self.plic, self.uart)
        }
        self.image: ElfImage | None = None
        self.cmdline = ""  # the boot command line of the loaded kernel
        self._cmdline_placed = False
        self.halted: int | None = None  # the exit code, once the guest has halted

    def close(self) -> None:
        """Write a file-backed disk's changes out and close the file."""
        if self.disk is not None:
            self.disk.close()

    def _attach(self, base: int, size: int, device: Device) -> None:
        self.bus.register(base, size, device)
        self.hart.add_mmio_region(base, size)

    def _plic_context_changed(self, context: int, level: bool) -> None:
        self.hart.set_interrupt_line(CONTEXT_LINES[context], level)

    # -- loading and booting ----------------------------------------------------------------
    def load(
        self, program: str | os.PathLike | bytes | Program | ElfImage, cmdline: str = ""
    ) -> None:
        """Load a kernel (an ELF path or bytes, or an assembled Program) and boot it.

        ``cmdline`` is the boot command line, written NUL-terminated at
        board.CMDLINE_BASE on this boot and on every reboot (tinyos reads it there,
        e.g. "init=forkwait n=200"). Without one, an empty string is written there,
        unless that page is not RAM or belongs to the program (a bare-metal image).
        """
        image = as_image(program)
        check_fits(image, self.hart.ram_base, self.hart.ram_size)
        if self.firmware == "image":
            _check_kernel_placement(image)
        problem = self._cmdline_problem(cmdline, image)
        if problem is not None and cmdline:
            raise ValueError(f"cmdline={cmdline!r} cannot be passed: {problem}")
        self.image = image
        self.cmdline = cmdline
        self._cmdline_placed = problem is None
        self.halted = None
        self._boot()

    def _cmdline_problem(self, cmdline: str, image: ElfImage | None = None) -> str | None:
        """Why ``cmdline`` cannot go at CMDLINE_BASE with ``image`` loaded, or None."""
        image = image or self.image
        start = board.CMDLINE_BASE
        end = start + len(_cmdline_bytes(cmdline))
        ram_end = self.hart.ram_base + self.hart.ram_size
        if end > ram_end:
            return (
                f"it goes at {start:#010x}, beyond the end of RAM at {ram_end:#010x}: "
                "give the machine more RAM (ram_mb)"
            )
        for segment in image.segments:
            if segment.address < end and start < segment.address + len(segment.data):
                return (
                    f"{image.name} has a segment at {segment.address:#010x}.."
                    f"{segment.address + len(segment.data):#010x} over the command line's "
                    f"place at {start:#010x}: link the kernel at {board.KERNEL_BASE:#010x}"
                )
        return None

    def _boot(self) -> None:
        """Put the kernel and its command line in RAM and start the firmware (or the
        program, without one)."""
        hart, image = self.hart, self.image
        for segment in image.segments:
            hart.write_memory(segment.address, segment.data)
        if self._cmdline_placed:
            hart.write_memory(board.CMDLINE_BASE, _cmdline_bytes(self.cmdline))
        match self.firmware:
            case "python":
                self.hart.reset(image.entry)
                self.sbi.boot(image.entry)
            case "image":
                for address, data in firmware_image().segments():
                    hart.write_memory(address, data)
                self.hart.reset(board.RAM_BASE)  # a0 = hartid 0, a1 = 0: no device tree
            case None:
                self.hart.reset(image.entry)
                hart.tohost = image.symbol("tohost")

    def _reboot(self) -> None:
        """A system reset: devices to their reset state, the kernel loaded afresh.

        The disk keeps its contents, as a real disk does."""
        for device in (self.test, self.plic, self.uart):
            _set_device_state(device, copy.deepcopy(self._reset_states[device.name]))
        if self.disk is not None:
            self.disk.reset()
        self._boot()

    # -- running ------------------------------------------------------------------------------
    def run(self, until: str | int | tuple = "halt") -> RunResult:
        """Run until the guest halts, or until ``until`` happens:
        "halt", a console string, a number of instructions, or ("breakpoint", address)."""
        if self.image is None:
            raise MachineError("nothing to run: load a program first (machine.load(...))")
        if self.halted is not None:
            raise MachineError(
                f"the guest has halted (exit code {self.halted}): load a program again "
                "or restore a snapshot to run more"
            )
        hart = self.hart
        awaited = None
        limit = None
        match until:
            case "halt":
                pass
            case str(text):
                awaited = text
            case int(count) if count >= 0:
                limit = count
            case ("breakpoint", int(address)):
                hart.breakpoints = {address}
            case _:
                raise ValueError(
                    f"until={until!r}: use 'halt', a console string, a number of "
                    "instructions >= 0, or ('breakpoint', address)"
                )
        start = self._retired()
        console_start = max(len(self.console.text) - len(awaited or "") + 1, 0)
        try:
            while True:
                done = self._retired() - start
                if limit is not None and done >= limit:
                    return RunResult("count", hart.last_exit(), done)
                self._deliver_input()
                budget = (
                    BATCH_INSTRUCTIONS if limit is None else min(BATCH_INSTRUCTIONS, limit - done)
                )
                exit = hart.run(budget)
                match exit.reason:
                    case E.EXIT_MMIO_READ | E.EXIT_MMIO_WRITE:
                        stop = self._mmio(exit)
                    case E.EXIT_TRAP:
                        stop = self._system_reset(self.sbi.handle_trap(exit))
                    case E.EXIT_WFI:
                        stop = self._wait_for_interrupt(exit)
                    case E.EXIT_HALT:
                        stop = self._htif(exit)
                    case E.EXIT_BREAKPOINT:
                        stop = "breakpoint", None
                    case E.EXIT_BUDGET:
                        stop = None
                    case _:
                        raise MachineError(f"unexpected exit from the hart: {exit}")
                if stop is not None:
                    reason, code = stop
                    if reason == "halt":
                        self.halted = code
                    return RunResult(reason, exit, self._retired() - start, code)
                if awaited is not None and awaited in self.console.text[console_start:]:
                    return RunResult("console", exit, self._retired() - start)
        finally:
            hart.breakpoints = ()

    def _retired(self) -> int:
        return int(self.hart.arrays.st[S.RETIRED])

    def _deliver_input(self) -> None:
        text = self.console.take_input()
        if text:
            self.uart.receive(text)

    def _mmio(self, exit: E.Exit) -> tuple[str, int | None] | None:
        """Hand an MMIO access to the device on the bus, then let the hart go on."""
        mapping = self.bus.find(exit.address)
        # Devices get Python ints: with NUMBA_DISABLE_JIT the exit holds numpy int64s.
        offset, size = int(exit.address) - mapping.base, int(exit.size)
        if exit.reason == E.EXIT_MMIO_READ:
            self.hart.complete_mmio(mapping.device.read(offset, size))
            return None
        mapping.device.write(offset, size, int(exit.value))
        self.hart.complete_mmio()
        if mapping.device is self.test:
            match self.test.take_outcome():
                case ("pass", code) | ("fail", code):
                    return "halt", code
                case ("reset", _):
                    return self._system_reset(SystemReset("reboot"))
        return None

    def _system_reset(self, reset: SystemReset | None) -> tuple[str, int] | None:
        match reset:
            case SystemReset("shutdown", code):
                return "halt", code
            case SystemReset("reboot"):
                self._reboot()
        return None

    def _wait_for_interrupt(self, exit: E.Exit) -> tuple[str, None] | None:
        """WFI with nothing pending and no timer armed: only console input can help."""
        if self.console.interactive:
            self.console.wait_for_input()
        if self.console.has_input():
            return None  # delivered to the UART before the next batch
        return "idle", None

    def _htif(self, exit: E.Exit) -> tuple[str, int]:
        if exit.value & HTIF_EXIT and exit.value >> 48 == 0:
            return "halt", (exit.value & ((1 << 48) - 1)) >> 1
        raise MachineError(
            f"HTIF command {exit.value:#018x} at pc={exit.pc:#010x} is not supported on "
            "the Machine: it ends runs only (use the UART or SBI for output)"
        )

    # -- snapshots ------------------------------------------------------------------------------
    def snapshot(self) -> bytes:
        """The whole machine as bytes: hart, RAM, devices, console. See ``restore``."""
        state = {
            "config": {
                "ram_mb": self.ram_mb,
                "firmware": self.firmware,
                "disk_path": None if self.disk_path is None else os.fspath(self.disk_path),
                "cmdline": self.cmdline,
            },
            "image": None if self.image is None else image_record(self.image),
            "hart": self.hart.arrays.state[: S.SAVED_SIZE].tobytes(),
            "ram": zlib.compress(self.hart.arrays.ram.tobytes(), 1),
            "devices": {name: _device_state(device) for name, device in self._devices().items()},
            "halted": self.halted,
            "console": self.console.text,
            "input": list(self.console._input),
        }
        payload = zlib.compress(pickle.dumps(state, protocol=4), 1)
        return SNAPSHOT_HEADER.pack(SNAPSHOT_MAGIC, SNAPSHOT_VERSION, zlib.crc32(payload)) + payload

    @classmethod
    def restore(cls, data: bytes) -> Machine:
        """A machine that continues exactly where ``snapshot`` left the saved one."""
        state = _read_snapshot(data)
        config = state["config"]
        try:
            disk = config["disk_path"]
            if disk is None and "disk" in state["devices"]:
                disk = state["devices"]["disk"]["disk"]
            machine = cls(config["ram_mb"], config["firmware"], disk)
            if state["image"] is not None:
                machine.image = image_from_record(state["image"])
                machine.cmdline = config.get("cmdline", "")
                machine._cmdline_placed = machine._cmdline_problem(machine.cmdline) is None
            state_array = np.frombuffer(state["hart"], dtype=np.int64)
            ram = np.frombuffer(zlib.decompress(state["ram"]), dtype=np.uint8)
            machine.hart.arrays.state[: S.SAVED_SIZE] = state_array
            machine.hart.arrays.ram[:] = ram
            for name, device in machine._devices().items():
                _set_device_state(device, state["devices"][name])
        except (KeyError, TypeError, ValueError, zlib.error) as error:
            raise SnapshotError(f"snapshot data does not fit this machine: {error}") from None
        machine.halted = state["halted"]
        machine.console._output = [state["console"]]
        machine.console._input.extend(state["input"])
        return machine

    def _devices(self) -> dict[str, Device]:
        devices = {"test": self.test, "plic": self.plic, "uart": self.uart}
        if self.disk is not None:
            devices["disk"] = self.disk
        return devices


# -- Snapshot format --------------------------------------------------------------------------
# A header (magic, format version, CRC-32 of the payload), then the payload: a zlib-
# compressed pickle of plain data only (numbers, strings, bytes, lists, dicts, deques),
# which _SnapshotUnpickler enforces. RAM is compressed once more on its own inside it.
SNAPSHOT_MAGIC = b"VKSNAP\0\0"
# 2: the hart's state layout of the H extension (virtkit.cpu.state slots moved).
SNAPSHOT_VERSION = 2
SNAPSHOT_HEADER = struct.Struct("<8sII")
# Device attributes saved in a snapshot: the plain data. Callbacks, the hart and open
# files are wiring, rebuilt by Machine(); a file-backed disk is reopened, not copied.
PLAIN_TYPES = (int, float, bool, str, bytes, bytearray, list, tuple, dict, set, deque, type(None))


def _device_state(device: Device) -> dict:
    return {name: value for name, value in vars(device).items() if isinstance(value, PLAIN_TYPES)}


def _set_device_state(device: Device, state: dict) -> None:
    for name, value in state.items():
        setattr(device, name, value)


class _SnapshotUnpickler(pickle.Unpickler):
    ALLOWED = {("collections", "deque"), ("builtins", "bytearray"), ("builtins", "set")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise SnapshotError(f"snapshot data names {module}.{name}, which is not plain data")
        return super().find_class(module, name)


def _read_snapshot(data: bytes) -> dict:
    if not isinstance(data, bytes | bytearray) or len(data) < SNAPSHOT_HEADER.size:
        raise SnapshotError("not a virtkit snapshot: too short to hold the header")
    magic, version, checksum = SNAPSHOT_HEADER.unpack_from(data)
    if magic != SNAPSHOT_MAGIC:
        raise SnapshotError(f"not a virtkit snapshot: it starts with {magic!r}")
    if version != SNAPSHOT_VERSION:
        raise SnapshotError(
            f"snapshot format version {version}, but this virtkit reads version "
            f"{SNAPSHOT_VERSION}: restore it with the virtkit that made it"
        )
    payload = bytes(data[SNAPSHOT_HEADER.size :])
    if zlib.crc32(payload) != checksum:
        raise SnapshotError("snapshot data is corrupt: its checksum does not match")
    try:
        state = _SnapshotUnpickler(io.BytesIO(zlib.decompress(payload))).load()
    except (pickle.UnpicklingError, zlib.error, EOFError) as error:
        raise SnapshotError(f"snapshot data is corrupt: {error}") from None
    if not isinstance(state, dict) or state.keys() != SNAPSHOT_KEYS:
        raise SnapshotError("snapshot data is corrupt: its parts are not the expected ones")
    return state


SNAPSHOT_KEYS = {"config", "image", "hart", "ram", "devices", "halted", "console", "input"}


# -- Images and the command line ------------------------------------------------------------


def _cmdline_bytes(cmdline: str) -> bytes:
    """The command line as the guest reads it: ASCII, NUL-terminated (tinyos's abi.h)."""
    if not isinstance(cmdline, str):
        raise TypeError(f"cmdline must be a str, not {type(cmdline).__name__}")
    if not cmdline.isascii():
        bad = next(c for c in cmdline if not c.isascii())
        raise ValueError(
            f"cmdline={cmdline!r}: {bad!r} is not ASCII; the boot command line is ASCII only"
        )
    if "\0" in cmdline:
        raise ValueError(
            f"cmdline={cmdline!r} holds a NUL character, which would end it early: remove it"
        )
    if len(cmdline) >= board.CMDLINE_SIZE:
        raise ValueError(
            f"the boot command line is {len(cmdline)} characters long, but at most "
            f"{board.CMDLINE_SIZE - 1} fit at {board.CMDLINE_BASE:#010x}: shorten it"
        )
    return cmdline.encode("ascii") + b"\0"


def _check_kernel_placement(image: ElfImage) -> None:
    """The image firmware jumps to 0x8020_0000 and lives below it (OpenSBI FW_JUMP)."""
    if image.entry != board.KERNEL_BASE:
        raise ElfLoadError(
            f"{image.name}: entry point {image.entry:#010x}, but the firmware image jumps "
            f"to {board.KERNEL_BASE:#010x}: link the kernel there (as for OpenSBI)"
        )
    for segment in image.segments:
        if segment.address < board.KERNEL_BASE:
            raise ElfLoadError(
                f"{image.name}: segment at {segment.address:#010x} overlaps the firmware "
                f"below {board.KERNEL_BASE:#010x}"
            )


_firmware_program: Program | None = None


def firmware_image() -> Program:
    """The M-mode SBI firmware (firmware/sbi.S), assembled at 0x8000_0000 on first use."""
    global _firmware_program
    if _firmware_program is None:
        source = FIRMWARE_SOURCE.read_text()
        _firmware_program = assemble(source, str(FIRMWARE_SOURCE), board.RAM_BASE)
    return _firmware_program
