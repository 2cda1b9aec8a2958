"""The system bus: devices registered by base and size, reached by MMIO exits.

RAM and the CLINT live inside the compiled core (virtkit.cpu). Every other device is
a Python object on this bus: when the hart touches its range, the core exits with an
MMIO_READ or MMIO_WRITE, and the bus hands the access to the device with the offset
into its own range, never the absolute address (as TinyEMU and Firecracker do), so a
device can sit at any base. Registering two devices whose ranges overlap is an error
that names both.
"""

from __future__ import annotations

from dataclasses import dataclass


class Device:
    """A memory-mapped device. Subclasses implement ``read`` and ``write``.

    ``offset`` is relative to the device's base; ``size`` is 1, 2 or 4 bytes.
    """

    name = "device"

    def read(self, offset: int, size: int) -> int:
        raise NotImplementedError

    def write(self, offset: int, size: int, value: int) -> None:
        raise NotImplementedError


class BusError(ValueError):
    """A bad registration: overlapping ranges, zero size, a range outside 32 bits."""


@dataclass(frozen=True)
class Mapping:
    base: int
    size: int
    device: Device

    @property
    def end(self) -> int:
        return self.base + self.size

    def __contains__(self, address: int) -> bool:
        return self.base <= address < self.end


class Bus:
    def __init__(self):
        self.mappings: list[Mapping] = []

    def register(self, base: int, size: int, device: Device) -> Mapping:
        if size <= 0:
            raise BusError(f"{device.name}: size must be positive, got {size}")
        if base < 0 or base + size > 1 << 32:
            raise BusError(
                f"{device.name}: range {base:#x}..{base + size:#x} is outside 32-bit space"
            )
        new = Mapping(base, size, device)
        for old in self.mappings:
            if new.base < old.end and old.base < new.end:
                raise BusError(
                    f"{device.name} at {new.base:#010x}..{new.end:#010x} overlaps "
                    f"{old.device.name} at {old.base:#010x}..{old.end:#010x}"
                )
        self.mappings.append(new)
        self.mappings.sort(key=lambda m: m.base)
        return new

    def find(self, address: int) -> Mapping | None:
        for mapping in self.mappings:
            if address in mapping:
                return mapping
        return None
