"""A virtio block device on virtio-mmio, as QEMU ``virt`` attaches disks (0x1000_1000..).

It follows the Virtual I/O Device (VIRTIO) Specification 1.2:
- 4.2.2 "MMIO Device Register Layout", version 2 (no legacy interface);
- 2.1 "Device Status Field" and 3.1 "Device Initialization": the driver sets
  ACKNOWLEDGE, DRIVER, FEATURES_OK, DRIVER_OK in turn, writing 0 resets the device,
  and a device that meets a broken driver sets DEVICE_NEEDS_RESET;
- 2.7 "Split Virtqueues": a descriptor table, the driver's available ring and the
  device's used ring, all in guest RAM;
- 5.2 "Block Device": requests IN (read), OUT (write), FLUSH and GET_ID.

There is one virtqueue (queue 0, the request queue). Requests are carried out when the
driver writes QueueNotify, synchronously, in the order of the available ring.

Offered features: VIRTIO_F_VERSION_1, VIRTIO_BLK_F_FLUSH, and VIRTIO_BLK_F_RO for a
read-only disk. Not offered, so not implemented: indirect descriptors, event index
(only VIRTQ_AVAIL_F_NO_INTERRUPT suppresses interrupts), multiple queues, discard.
The configuration space (5.2.4) holds ``capacity``, the size in 512-byte sectors;
every other field reads 0.

A guest's mistakes never raise into the host. A request the device can answer gets
its status byte (5.2.6): VIRTIO_BLK_S_IOERR for a buffer outside RAM, a request past
the end of the disk, a data length that is not whole sectors, a missing header or a
write to a read-only disk (5.2.6.2); VIRTIO_BLK_S_UNSUPP for an unknown type. When the
status byte itself cannot be written (a malformed descriptor chain: an index outside
the table, a loop, an indirect descriptor, readable after writable buffers; a status
byte outside RAM), or the rings are unusable, the device sets DEVICE_NEEDS_RESET,
sends a configuration change interrupt (2.1.2) and stops serving the queue until the
driver resets it. ``error`` then says what went wrong.

Control registers take 32-bit accesses (4.2.2.2); the width is not checked. The
configuration space may be read with any width.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from typing import BinaryIO, Protocol

from virtkit.machine.bus import Device

SECTOR_SIZE = 512

# 4.2.2 MMIO device register layout (offsets).
MAGIC_VALUE = 0x000
VERSION = 0x004
DEVICE_ID = 0x008
VENDOR_ID = 0x00C
DEVICE_FEATURES = 0x010
DEVICE_FEATURES_SEL = 0x014
DRIVER_FEATURES = 0x020
DRIVER_FEATURES_SEL = 0x024
QUEUE_SEL = 0x030
QUEUE_NUM_MAX = 0x034
QUEUE_NUM = 0x038
QUEUE_READY = 0x044
QUEUE_NOTIFY = 0x050
INTERRUPT_STATUS = 0x060
INTERRUPT_ACK = 0x064
STATUS = 0x070
QUEUE_DESC_LOW = 0x080
QUEUE_DESC_HIGH = 0x084
QUEUE_DRIVER_LOW = 0x090
QUEUE_DRIVER_HIGH = 0x094
QUEUE_DEVICE_LOW = 0x0A0
QUEUE_DEVICE_HIGH = 0x0A4
CONFIG_GENERATION = 0x0FC  # reads 0: the configuration never changes
CONFIG = 0x100

MAGIC = 0x74726976  # "virt" in little-endian
MMIO_VERSION = 2  # the non-legacy interface
VIRTIO_ID_BLOCK = 2
VIRTKIT_VENDOR_ID = int.from_bytes(b"VKIT", "little")  # QEMU uses "QEMU", 0x554D4551

# 2.1 Device status bits.
ACKNOWLEDGE = 1
DRIVER = 2
DRIVER_OK = 4
FEATURES_OK = 8
DEVICE_NEEDS_RESET = 64
FAILED = 128

# Feature bits (6 "Reserved Feature Bits", 5.2.3).
VIRTIO_BLK_F_RO = 1 << 5
VIRTIO_BLK_F_FLUSH = 1 << 9
VIRTIO_F_VERSION_1 = 1 << 32

# InterruptStatus bits (4.2.2).
INTERRUPT_USED_BUFFER = 1
INTERRUPT_CONFIG_CHANGE = 2

# 2.7.5 descriptor flags, 2.7.6 available ring flags.
VIRTQ_DESC_F_NEXT = 1
VIRTQ_DESC_F_WRITE = 2
VIRTQ_DESC_F_INDIRECT = 4
VIRTQ_AVAIL_F_NO_INTERRUPT = 1

QUEUE_SIZE_MAX = 256  # QueueNumMax, as QEMU's virtio-blk
DESCRIPTOR = struct.Struct("<QIHH")  # addr, len, flags, next
USED_ELEMENT = struct.Struct("<II")  # id, len
# 2.7 alignment of the three areas.
DESCRIPTOR_TABLE_ALIGN = 16
AVAILABLE_RING_ALIGN = 2
USED_RING_ALIGN = 4

# 5.2.6 requests.
REQUEST_HEADER = struct.Struct("<IIQ")  # type, reserved, sector
VIRTIO_BLK_T_IN = 0
VIRTIO_BLK_T_OUT = 1
VIRTIO_BLK_T_FLUSH = 4
VIRTIO_BLK_T_GET_ID = 8
VIRTIO_BLK_S_OK = 0
VIRTIO_BLK_S_IOERR = 1
VIRTIO_BLK_S_UNSUPP = 2
VIRTIO_BLK_ID_BYTES = 20
DISK_ID = b"virtkit-disk"  # what GET_ID returns, zero-padded to 20 bytes


class GuestMemory(Protocol):
    """Guest RAM as the device reaches it (a ``virtkit.cpu.Hart`` is one).
    Both methods raise ValueError for a range outside RAM."""

    def read_memory(self, address: int, size: int) -> bytes: ...

    def write_memory(self, address: int, data: bytes) -> None: ...


class VirtqueueError(Exception):
    """The driver broke the virtqueue so that no status can be reported."""


Segment = tuple[int, int]  # (guest physical address, length) of one buffer


class VirtioBlk(Device):
    """A virtio-mmio block device backed by a bytearray or a disk image file."""

    name = "virtio-blk"
    SIZE = 0x200  # registers and configuration space; QEMU virt's slots are 0x1000 apart

    def __init__(
        self,
        memory: GuestMemory,
        irq: Callable[[bool], None],
        backing: bytearray | str | os.PathLike,
        *,
        read_only: bool = False,
    ):
        self.memory = memory
        self.irq = irq
        self.read_only = read_only
        self.disk: bytearray | None = None
        self.file: BinaryIO | None = None
        if isinstance(backing, bytearray):
            self.disk = backing
            disk_size = len(backing)
        elif isinstance(backing, str | os.PathLike):
            self.file = open(backing, "rb" if read_only else "r+b")
            disk_size = os.fstat(self.file.fileno()).st_size
        else:
            raise TypeError(
                f"virtio-blk backing must be a bytearray or a file path, got "
                f"{type(backing).__name__}; for bytes use bytearray(data)"
            )
        if disk_size % SECTOR_SIZE:
            if self.file is not None:
                self.file.close()
            raise ValueError(
                f"virtio-blk backing {backing if self.file else 'bytearray'} has "
                f"{disk_size} bytes, not a multiple of the {SECTOR_SIZE}-byte sector; "
                f"pad it to {disk_size + SECTOR_SIZE - disk_size % SECTOR_SIZE} bytes"
            )
        self.disk_size = disk_size
        self.capacity = disk_size // SECTOR_SIZE
        self.device_features = VIRTIO_F_VERSION_1 | VIRTIO_BLK_F_FLUSH
        if read_only:
            self.device_features |= VIRTIO_BLK_F_RO
        self.irq_level = False
        self.reset()

    def reset(self) -> None:
        """The device reset a write of 0 to Status performs (2.4)."""
        self.status = 0
        self.device_features_sel = 0
        self.driver_features = 0
        self.driver_features_sel = 0
        self.queue_sel = 0
        self.queue_num = 0
        self.queue_ready = 0
        self.queue_desc = 0
        self.queue_driver = 0
        self.queue_device = 0
        self.last_avail_idx = 0  # the next available ring entry the device will take
        self.used_idx = 0
        self.interrupt_status = 0
        self.error: str | None = None
        self._update_irq()

    def flush(self) -> None:
        """Write the disk image to stable storage (a no-op for a bytearray)."""
        if self.file is not None:
            self.file.flush()
            os.fsync(self.file.fileno())

    def close(self) -> None:
        if self.file is not None:
            self.file.close()

    # -- registers ----------------------------------------------------------------------
    def read(self, offset: int, size: int) -> int:
        if offset >= CONFIG:
            config = struct.pack("<Q", self.capacity)  # 5.2.4: capacity comes first
            start = offset - CONFIG
            field = config[start : start + size].ljust(size, b"\0")
            return int.from_bytes(field, "little")
        queue = self.queue_sel == 0  # only queue 0 exists
        if offset == MAGIC_VALUE:
            return MAGIC
        if offset == VERSION:
            return MMIO_VERSION
        if offset == DEVICE_ID:
            return VIRTIO_ID_BLOCK
        if offset == VENDOR_ID:
            return VIRTKIT_VENDOR_ID
        if offset == DEVICE_FEATURES:
            return (self.device_features >> (32 * self.device_features_sel)) & 0xFFFFFFFF
        if offset == QUEUE_NUM_MAX:
            return QUEUE_SIZE_MAX if queue else 0  # 0 means "no such queue"
        if offset == QUEUE_READY:
            return self.queue_ready if queue else 0
        if offset == INTERRUPT_STATUS:
            return self.interrupt_status
        if offset == STATUS:
            return self.status
        return 0  # write-only registers and CONFIG_GENERATION

    def write(self, offset: int, size: int, value: int) -> None:
        value &= 0xFFFFFFFF
        queue = self.queue_sel == 0  # the queue registers of other queues do nothing
        if offset == DEVICE_FEATURES_SEL:
            self.device_features_sel = value
        elif offset == DRIVER_FEATURES and self.driver_features_sel <= 1:
            shift = 32 * self.driver_features_sel
            kept = self.driver_features & ~(0xFFFFFFFF << shift)
            self.driver_features = kept | (value << shift)
        elif offset == DRIVER_FEATURES_SEL:
            self.driver_features_sel = value
        elif offset == QUEUE_SEL:
            self.queue_sel = value
        elif offset == QUEUE_NUM and queue:
            self.queue_num = value
        elif offset == QUEUE_READY and queue:
            self.queue_ready = value & 1
        elif offset == QUEUE_NOTIFY and value == 0:
            self._process_queue()
        elif offset == INTERRUPT_ACK:
            self.interrupt_status &= ~value
            self._update_irq()
        elif offset == STATUS:
            self._write_status(value)
        elif offset in (QUEUE_DESC_LOW, QUEUE_DESC_HIGH) and queue:
            self.queue_desc = _set_half(self.queue_desc, value, high=offset == QUEUE_DESC_HIGH)
        elif offset in (QUEUE_DRIVER_LOW, QUEUE_DRIVER_HIGH) and queue:
            high = offset == QUEUE_DRIVER_HIGH
            self.queue_driver = _set_half(self.queue_driver, value, high=high)
        elif offset in (QUEUE_DEVICE_LOW, QUEUE_DEVICE_HIGH) and queue:
            high = offset == QUEUE_DEVICE_HIGH
            self.queue_device = _set_half(self.queue_device, value, high=high)

    def _write_status(self, value: int) -> None:
        if value == 0:
            self.reset()
            return
        newly_set = value & ~self.status
        if newly_set & FEATURES_OK and not self._features_acceptable():
            # 3.1.1: the driver reads Status back; FEATURES_OK clear means "rejected".
            value &= ~FEATURES_OK
        self.status = value | (self.status & DEVICE_NEEDS_RESET)

    def _features_acceptable(self) -> bool:
        offered = not self.driver_features & ~self.device_features
        return offered and bool(self.driver_features & VIRTIO_F_VERSION_1)

    # -- interrupts ---------------------------------------------------------------------
    def _interrupt(self, reason: int) -> None:
        self.interrupt_status |= reason
        self._update_irq()

    def _update_irq(self) -> None:
        level = self.interrupt_status != 0
        if level != self.irq_level:
            self.irq_level = level
            self.irq(level)

    def _needs_reset(self, error: str) -> None:
        self.error = error
        self.status |= DEVICE_NEEDS_RESET
        self._interrupt(INTERRUPT_CONFIG_CHANGE)

    # -- the virtqueue (2.7) ------------------------------------------------------------
    def _process_queue(self) -> None:
        """Serve every request the driver made available since the last notify."""
        live = self.status & DRIVER_OK and not self.status & (DEVICE_NEEDS_RESET | FAILED)
        if not live or not self.queue_ready:
            return  # 3.1.1: no buffers are used before DRIVER_OK
        served = 0
        try:
            self._check_queue_layout()
            avail_idx = self._ring_u16(self.queue_driver + 2)
            waiting = (avail_idx - self.last_avail_idx) & 0xFFFF
            if waiting > self.queue_num:
                raise VirtqueueError(
                    f"the available ring index moved from {self.last_avail_idx} to "
                    f"{avail_idx}: more than the queue's {self.queue_num} entries"
                )
            while self.last_avail_idx != avail_idx:
                slot = self.last_avail_idx % self.queue_num
                head = self._ring_u16(self.queue_driver + 4 + 2 * slot)
                written = self._serve(head)
                self._push_used(head, written)
                self.last_avail_idx = (self.last_avail_idx + 1) & 0xFFFF
                served += 1
            avail_flags = self._ring_u16(self.queue_driver)
        except VirtqueueError as error:
            self._needs_reset(str(error))
            return
        if served and not avail_flags & VIRTQ_AVAIL_F_NO_INTERRUPT:
            self._interrupt(INTERRUPT_USED_BUFFER)

    def _check_queue_layout(self) -> None:
        num = self.queue_num
        if not 0 < num <= QUEUE_SIZE_MAX or num & (num - 1):
            raise VirtqueueError(
                f"QueueNum is {num}: a split virtqueue's size is a power of 2 "
                f"from 1 to QueueNumMax ({QUEUE_SIZE_MAX})"
            )
        for area, address, align in (
            ("descriptor table", self.queue_desc, DESCRIPTOR_TABLE_ALIGN),
            ("available ring", self.queue_driver, AVAILABLE_RING_ALIGN),
            ("used ring", self.queue_device, USED_RING_ALIGN),
        ):
            if address % align:
                raise VirtqueueError(
                    f"the {area} at {address:#x} is not {align}-byte aligned (2.7)"
                )

    def _ring_read(self, address: int, size: int) -> bytes:
        try:
            return self.memory.read_memory(address, size)
        except ValueError as error:
            raise VirtqueueError(f"virtqueue structure unreachable: {error}") from None

    def _ring_u16(self, address: int) -> int:
        return int.from_bytes(self._ring_read(address, 2), "little")

    def _ring_write(self, address: int, data: bytes) -> None:
        try:
            self.memory.write_memory(address, data)
        except ValueError as error:
            raise VirtqueueError(f"virtqueue structure unreachable: {error}") from None

    def _push_used(self, head: int, written: int) -> None:
        """Put one used element (2.7.8) in the used ring and publish its index."""
        slot = self.used_idx % self.queue_num
        self._ring_write(self.queue_device + 4 + 8 * slot, USED_ELEMENT.pack(head, written))
        self.used_idx = (self.used_idx + 1) & 0xFFFF
        self._ring_write(self.queue_device + 2, self.used_idx.to_bytes(2, "little"))

    def _walk_chain(self, head: int) -> tuple[list[Segment], list[Segment]]:
        """Follow a descriptor chain (2.7.5): its device-readable and device-writable
        buffers, in order. Empty buffers are left out."""
        readable: list[Segment] = []
        writable: list[Segment] = []
        index = head
        for _ in range(self.queue_num):
            if index >= self.queue_num:
                raise VirtqueueError(
                    f"descriptor index {index} is outside the table of {self.queue_num}"
                )
            entry = self._ring_read(self.queue_desc + DESCRIPTOR.size * index, DESCRIPTOR.size)
            address, length, flags, next_index = DESCRIPTOR.unpack(entry)
            if flags & VIRTQ_DESC_F_INDIRECT:
                raise VirtqueueError(
                    f"descriptor {index} is indirect, but VIRTIO_F_INDIRECT_DESC was not negotiated"
                )
            if flags & VIRTQ_DESC_F_WRITE:
                if length:
                    writable.append((address, length))
            elif writable:
                raise VirtqueueError(
                    f"descriptor {index} is device-readable but follows a device-writable "
                    "one (2.7.4.2)"
                )
            elif length:
                readable.append((address, length))
            if not flags & VIRTQ_DESC_F_NEXT:
                return readable, writable
            index = next_index
        raise VirtqueueError(
            f"the descriptor chain from {head} is longer than the queue size "
            f"{self.queue_num}: it loops"
        )

    # -- block requests (5.2.6) ---------------------------------------------------------
    def _serve(self, head: int) -> int:
        """Carry out the request whose chain starts at ``head``; return how many bytes
        the device wrote into its device-writable buffers (the used element's len)."""
        readable, writable = self._walk_chain(head)
        if not writable:
            raise VirtqueueError(f"request {head} has no device-writable byte for its status")
        last_address, last_length = writable[-1]
        status_address = last_address + last_length - 1
        self._ring_read(status_address, 1)  # the status byte must be reachable
        data_in = writable[:-1] + ([(last_address, last_length - 1)] if last_length > 1 else [])
        status, written = self._execute(readable, data_in)
        self._ring_write(status_address, bytes([status]))
        return written + 1

    def _execute(self, readable: list[Segment], data_in: list[Segment]) -> tuple[int, int]:
        """Return the request's status and how many data bytes went to the driver."""
        if not all(self._in_ram(segment) for segment in readable + data_in):
            return VIRTIO_BLK_S_IOERR, 0
        request = b"".join(self.memory.read_memory(a, n) for a, n in readable)
        if len(request) < REQUEST_HEADER.size:
            return VIRTIO_BLK_S_IOERR, 0
        request_type, _, sector = REQUEST_HEADER.unpack_from(request)
        data_out = request[REQUEST_HEADER.size :]
        try:
            if request_type == VIRTIO_BLK_T_IN:
                length = sum(n for _, n in data_in)
                if not self._in_disk(sector, length):
                    return VIRTIO_BLK_S_IOERR, 0
                self._scatter(data_in, self._disk_read(sector * SECTOR_SIZE, length))
                return VIRTIO_BLK_S_OK, length
            if request_type == VIRTIO_BLK_T_OUT:
                if self.read_only or not self._in_disk(sector, len(data_out)):
                    return VIRTIO_BLK_S_IOERR, 0  # 5.2.6.2: no data written
                self._disk_write(sector * SECTOR_SIZE, data_out)
                return VIRTIO_BLK_S_OK, 0
            if request_type == VIRTIO_BLK_T_FLUSH:
                self.flush()
                return VIRTIO_BLK_S_OK, 0
            if request_type == VIRTIO_BLK_T_GET_ID:
                disk_id = DISK_ID.ljust(VIRTIO_BLK_ID_BYTES, b"\0")
                return VIRTIO_BLK_S_OK, self._scatter(data_in, disk_id)
        except OSError:
            return VIRTIO_BLK_S_IOERR, 0  # the host's disk image failed
        return VIRTIO_BLK_S_UNSUPP, 0

    def _in_ram(self, segment: Segment) -> bool:
        address, length = segment
        try:  # RAM is contiguous: its first and last byte are enough
            self.memory.read_memory(address, 1)
            self.memory.read_memory(address + length - 1, 1)
        except ValueError:
            return False
        return True

    def _in_disk(self, sector: int, length: int) -> bool:
        """Whole sectors, all of them before the end of the disk."""
        return length % SECTOR_SIZE == 0 and (sector * SECTOR_SIZE + length) <= self.disk_size

    def _scatter(self, segments: list[Segment], data: bytes) -> int:
        """Copy ``data`` into the buffers in order, as far as they reach; return the count."""
        done = 0
        for address, length in segments:
            chunk = data[done : done + length]
            if not chunk:
                break
            self.memory.write_memory(address, chunk)
            done += len(chunk)
        return done

    def _disk_read(self, offset: int, length: int) -> bytes:
        if self.disk is not None:
            return bytes(self.disk[offset : offset + length])
        self.file.seek(offset)
        return self.file.read(length)

    def _disk_write(self, offset: int, data: bytes) -> None:
        if self.disk is not None:
            self.disk[offset : offset + len(data)] = data
        else:
            self.file.seek(offset)
            self.file.write(data)


def _set_half(address: int, value: int, *, high: bool) -> int:
    """Replace the low or high 32 bits of a 64-bit queue address register."""
    if high:
        return (address & 0xFFFFFFFF) | (value << 32)
    return (address & ~0xFFFFFFFF) | value
