"""The guest's devices: the ``virt`` board's UART, PLIC, virtio-blk and finisher, emulated.

The guest kernel drives its devices by loads and stores to their registers, as on the
real board (virtkit.machine.board gives the addresses). The monitor maps those guest-
physical pages, in the shadow tables, to host-physical addresses the hart treats as
MMIO regions, so every register access exits to the monitor (an MMIO exit, KVM's
KVM_EXIT_MMIO) with the address, size and value, and the monitor hands it to the same
device models the board uses (virtkit.machine). Two things change under a monitor:

- interrupts: the PLIC's supervisor context raises the *virtual* CPU's SEIP, which
  the monitor delivers to the guest when its sstatus.SIE and sie allow, instead of a
  line into the real hart's mip;
- DMA: the virtio-blk device reads and writes guest memory at guest-physical
  addresses, through the monitor's guest-physical map (virtkit.monitors.memory), so a
  request can only ever reach this guest's own pages.

The CLINT is not among them: the monitor keeps the real timer for itself, and the guest
asks for timer interrupts through SBI, as S-mode kernels do.
"""

from __future__ import annotations

import copy
import os
from collections import deque

from virtkit.cpu import exits as E
from virtkit.cpu import state as S
from virtkit.machine import board
from virtkit.machine.bus import Bus, Device
from virtkit.machine.machine import Console, EmptyVirtioSlot
from virtkit.machine.plic import Plic
from virtkit.machine.sifive_test import SifiveTest
from virtkit.machine.uart import Uart16550
from virtkit.machine.virtio_blk import VirtioBlk
from virtkit.monitors.fullvirt.vcpu import MIP_SEIP
from virtkit.monitors.memory import PAGE_SHIFT


class VirtualBoard:
    """The devices of one guest on the ``virt`` memory map, reached through MMIO exits.

    ``hart`` is the real hart (its MMIO regions are set here), ``vcpu`` the virtual CPU
    that receives the PLIC's interrupt, ``memory`` the guest-physical memory for DMA.
    ``disk_model`` makes the disk device from (memory, irq, backing): VirtioBlk, or a
    variant of it (the hypervisor's disk whose requests take time).
    """

    def __init__(
        self,
        hart,
        vcpu,
        memory,
        disk: str | os.PathLike | bytes | None = None,
        disk_model=VirtioBlk,
    ):
        self.vcpu = vcpu
        self.console = Console()
        self.bus = Bus()
        self.test = SifiveTest()
        self.plic = Plic(self._plic_context_changed)
        self.uart = Uart16550(
            irq=lambda level: self.plic.set_source(board.UART0_IRQ, level),
            on_output=self.console.write,
        )
        self.disk = None
        self.disk_path = None if disk is None or isinstance(disk, bytes | bytearray) else disk
        devices: list[tuple[int, int, Device]] = [
            (board.TEST_BASE, board.TEST_SIZE, self.test),
            (board.PLIC_BASE, board.PLIC_SIZE, self.plic),
            (board.UART0_BASE, board.UART0_SIZE, self.uart),
        ]
        if disk is not None:
            backing = bytearray(disk) if isinstance(disk, bytes | bytearray) else disk
            self.disk = disk_model(
                memory, lambda level: self.plic.set_source(board.virtio_irq(0), level), backing
            )
            devices.append((board.virtio_base(0), board.VIRTIO_SIZE, self.disk))
        for slot in range(0 if self.disk is None else 1, board.VIRTIO_COUNT):
            devices.append((board.virtio_base(slot), board.VIRTIO_SIZE, EmptyVirtioSlot()))
        # The device pages as ranges, not a set of page numbers: the PLIC alone spans
        # 16,384 pages, and Python's garbage collector would walk a set that big (half a
        # megabyte per board) at every full collection.
        self._pages: list[range] = []
        for base, size, device in devices:
            self.bus.register(base, size, device)
            if not _has_mmio_region(hart, base, size):  # another guest's board may share it
                hart.add_mmio_region(base, size)
            self._pages.append(range(base >> PAGE_SHIFT, (base + size - 1 >> PAGE_SHIFT) + 1))
        self._reset_states = {
            name: copy.deepcopy(plain_state(device))
            for name, device in self.devices().items()
            if device is not self.disk
        }

    def reset(self) -> None:
        """Every device to its state at power-on (the disk keeps its contents)."""
        for name, state in self._reset_states.items():
            for attribute, value in copy.deepcopy(state).items():
                setattr(self.devices()[name], attribute, value)
        if self.disk is not None:
            self.disk.reset()

    def _plic_context_changed(self, context: int, level: bool) -> None:
        if context == board.PLIC_CONTEXT_S:
            self.vcpu.set_pending(MIP_SEIP, level)
        # The M-mode context belongs to the firmware, which the guest does not have.

    def is_device_page(self, gppn: int) -> bool:
        return any(gppn in pages for pages in self._pages)

    def devices(self) -> dict[str, Device]:
        """The devices whose state a snapshot keeps, by name."""
        devices = {"test": self.test, "plic": self.plic, "uart": self.uart}
        if self.disk is not None:
            devices["disk"] = self.disk
        return devices

    def deliver_input(self) -> None:
        """Console input waiting for the guest goes into the UART's receive FIFO."""
        if not self.console.has_input():
            return  # the usual case, checked without taking the console's lock
        text = self.console.take_input()
        if text:
            self.uart.receive(text)

    def mmio(self, hart, exit: E.Exit) -> tuple[str, int] | None:
        """Complete one MMIO exit on its device. Returns ("halt", code) or ("reset", 0)
        when the guest wrote the finisher, None otherwise."""
        mapping = self.bus.find(exit.address)
        offset, size = int(exit.address) - mapping.base, int(exit.size)
        if exit.reason == E.EXIT_MMIO_READ:
            hart.complete_mmio(mapping.device.read(offset, size))
            return None
        mapping.device.write(offset, size, int(exit.value))
        hart.complete_mmio()
        if mapping.device is self.test:
            match self.test.take_outcome():
                case ("pass", code) | ("fail", code):
                    return "halt", code
                case ("reset", _):
                    return "reset", 0
        return None


PLAIN_TYPES = (int, float, bool, str, bytes, bytearray, list, tuple, dict, set, deque, type(None))


def plain_state(device: Device) -> dict:
    """A device's data attributes (its wiring, callbacks and files, left out)."""
    return {name: value for name, value in vars(device).items() if isinstance(value, PLAIN_TYPES)}


def _has_mmio_region(hart, base: int, size: int) -> bool:
    st = hart.arrays.st
    regions = st[S.MMIO_REGION_BASE : S.MMIO_REGION_BASE + 2 * int(st[S.N_MMIO_REGIONS])]
    return any(
        regions[k] == base and regions[k + 1] == base + size for k in range(0, len(regions), 2)
    )
