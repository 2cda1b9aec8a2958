"""Guest-physical memory: the map from the addresses a guest calls physical to host RAM.

A guest kernel believes it owns RAM from 0x8000_0000 up, as on the ``virt`` board. It
does not: its "physical" pages are host pages the monitor lent it, anywhere in host
RAM. The monitor keeps the map guest-physical page number (gppn) -> host-physical page
number (hppn), one entry per 4 KiB page, the software form of what Intel calls the EPT
and RISC-V's hypervisor extension the G-stage (privileged spec 20211203, 8.5 "Two-Stage
Address Translation"). Every guest-physical address the monitor touches goes through
this map: the guest's page-table entries, its disk buffers (DMA), the kernel image.

``HostFrames`` hands out host pages: to a guest's RAM (``GuestPhysicalMemory``) and to
the monitor's own structures (shadow page tables, the translation cache, the virtual
CPU's page). A type-1 hypervisor divides host RAM between several guests by giving
each its own frames from one ``HostFrames``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
PAGE_MASK = PAGE_SIZE - 1


class HostMemoryExhausted(RuntimeError):
    """No host page is left to hand out."""


class HostFrames:
    """The free host pages in ``[start, end)`` of a hart's RAM, handed out one at a time."""

    def __init__(self, hart, start: int | None = None, end: int | None = None):
        self.hart = hart
        start = hart.ram_base if start is None else start
        end = hart.ram_base + hart.ram_size if end is None else end
        if (
            start & PAGE_MASK
            or end & PAGE_MASK
            or not (hart.ram_base <= start <= end <= hart.ram_base + hart.ram_size)
        ):
            raise ValueError(
                f"host frames {start:#x}..{end:#x} must be page-aligned and inside host RAM "
                f"{hart.ram_base:#x}..{hart.ram_base + hart.ram_size:#x}"
            )
        self._next = start >> PAGE_SHIFT
        self._end = end >> PAGE_SHIFT

    @property
    def free(self) -> int:
        return self._end - self._next

    def take(self, count: int = 1, *, what: str = "the monitor") -> list[int]:
        """``count`` consecutive host page numbers, zero-filled."""
        if count > self.free:
            raise HostMemoryExhausted(
                f"{what} needs {count} host pages but only {self.free} are free: "
                "give the host hart more RAM"
            )
        first = self._next
        self._next += count
        offset = (first << PAGE_SHIFT) - self.hart.ram_base
        self.hart.arrays.ram[offset : offset + count * PAGE_SIZE] = 0
        return list(range(first, first + count))


class GuestPhysicalMemory:
    """Guest RAM at guest-physical ``base``, one host page (``frames``) per guest page.

    ``hpa(gpa)`` translates; ``read_memory``/``write_memory`` copy through the map page
    by page, with the same interface as ``Hart`` (so a virtio device can do DMA into a
    guest without knowing it is one). ``on_write`` is called with (gpa, size) after
    every write that does not come from the guest's own instructions, so that the
    binary translator can drop translations of code a device or the monitor overwrote.
    """

    def __init__(self, hart, base: int, frames: Sequence[int]):
        if base & PAGE_MASK:
            raise ValueError(f"guest RAM base {base:#x} must be page-aligned")
        self.hart = hart
        self.base = base
        self.size = len(frames) << PAGE_SHIFT
        self.frames = np.asarray(frames, dtype=np.int64)
        self._first_gppn = base >> PAGE_SHIFT
        self.on_write: Callable[[int, int], None] | None = None

    def __contains__(self, gpa: int) -> bool:
        return self.base <= gpa < self.base + self.size

    def host_page(self, gppn: int) -> int | None:
        """The host page number behind guest page ``gppn``, or None outside guest RAM."""
        index = gppn - self._first_gppn
        if 0 <= index < len(self.frames):
            return int(self.frames[index])
        return None

    def hpa(self, gpa: int) -> int:
        """The host-physical address of guest-physical ``gpa`` (ValueError outside RAM)."""
        hppn = self.host_page(gpa >> PAGE_SHIFT)
        if hppn is None:
            raise ValueError(
                f"guest-physical address {gpa:#010x} is outside guest RAM "
                f"({self.base:#010x}..{self.base + self.size:#010x})"
            )
        return (hppn << PAGE_SHIFT) | (gpa & PAGE_MASK)

    def _pieces(self, gpa: int, size: int):
        """(host RAM offset, length) pieces of [gpa, gpa + size), split at page ends."""
        if size < 0 or gpa < self.base or gpa + size > self.base + self.size:
            raise ValueError(
                f"guest-physical range {gpa:#x}..{gpa + size:#x} is outside guest RAM "
                f"({self.base:#010x}..{self.base + self.size:#010x})"
            )
        ram_base = self.hart.ram_base
        while size > 0:
            length = min(size, PAGE_SIZE - (gpa & PAGE_MASK))
            yield self.hpa(gpa) - ram_base, length
            gpa += length
            size -= length

    def read_memory(self, gpa: int, size: int) -> bytes:
        ram = self.hart.arrays.ram
        return b"".join(ram[o : o + n].tobytes() for o, n in self._pieces(gpa, size))

    def write_memory(self, gpa: int, data: bytes) -> None:
        ram = self.hart.arrays.ram
        done = 0
        for offset, length in self._pieces(gpa, len(data)):
            ram[offset : offset + length] = np.frombuffer(data[done : done + length], np.uint8)
            done += length
        if self.on_write is not None:
            self.on_write(gpa, len(data))

    def read_word(self, gpa: int) -> int:
        return int.from_bytes(self.read_memory(gpa, 4), "little")

    def write_word(self, gpa: int, value: int) -> None:
        self.write_memory(gpa, (value & 0xFFFFFFFF).to_bytes(4, "little"))
