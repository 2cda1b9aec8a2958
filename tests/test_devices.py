"""The devices of the virt board, driven through their registers as a guest would.

UART: TI PC16550D datasheet. PLIC: RISC-V PLIC spec 1.0.0. virtio-blk: VIRTIO 1.2,
4.2.2 (MMIO), 2.7 (split virtqueues), 5.2 (block device), with the virtqueue built in
a Hart's RAM. Finisher: QEMU hw/misc/sifive_test.c.
"""

from __future__ import annotations

import struct

import pytest

from virtkit.cpu import Hart
from virtkit.isa.asm import assemble
from virtkit.machine import baremetal
from virtkit.machine import plic as P
from virtkit.machine import uart as U
from virtkit.machine import virtio_blk as V
from virtkit.machine.bus import Bus, BusError
from virtkit.machine.elf import ElfImage, Segment
from virtkit.machine.plic import Plic
from virtkit.machine.sifive_test import SifiveTest
from virtkit.machine.uart import Uart16550
from virtkit.machine.virtio_blk import VirtioBlk

RAM_BASE = 0x8000_0000


# -- bus ------------------------------------------------------------------------------------
def test_bus_overlap_names_both_devices():
    bus = Bus()
    bus.register(0x1000_0000, Uart16550.SIZE, Uart16550(lambda level: None, print))
    with pytest.raises(BusError, match=r"sifive_test at 0x100000ff.*overlaps uart0"):
        bus.register(0x1000_00FF, SifiveTest.SIZE, SifiveTest())


# -- sifive_test ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value, outcome",
    [
        (0x5555, ("pass", 0)),
        (42 << 16 | 0x3333, ("fail", 42)),
        (0x7777, ("reset", 0)),
        (0x1234, None),
    ],
)
def test_finisher(value, outcome):
    finisher = SifiveTest()
    finisher.write(0, 4, value)
    assert finisher.outcome == outcome
    assert finisher.take_outcome() == outcome
    assert finisher.outcome is None
    assert finisher.read(0, 4) == 0


@pytest.mark.parametrize(
    "store, exit_code", [("li t1, 0x5555", 0), ("li t1, (7 << 16) | 0x3333", 7)]
)
def test_baremetal_ends_through_the_finisher(store, exit_code):
    program = assemble(f"li t0, 0x100000\nlw t2, 0(t0)\n{store}\nsw t1, 0(t0)\nj .", base=RAM_BASE)
    segments = [Segment(address, data, True) for address, data in program.segments()]
    machine = baremetal.BareMetal(ElfImage("finisher", program.entry, segments))
    result = machine.run(1000)
    assert result.exit_code == exit_code
    assert machine.hart.x["t2"] == 0  # the finisher reads as 0


def test_baremetal_finisher_reset_is_a_guest_error():
    program = assemble("li t0, 0x100000\nli t1, 0x7777\nsw t1, 0(t0)", base=RAM_BASE)
    segments = [Segment(address, data, True) for address, data in program.segments()]
    machine = baremetal.BareMetal(ElfImage("reset", program.entry, segments))
    with pytest.raises(baremetal.GuestError, match="reset"):
        machine.run(1000)


def test_finisher_ignores_other_offsets():
    finisher = SifiveTest()
    finisher.write(4, 4, 0x5555)
    assert finisher.outcome is None


# -- UART -----------------------------------------------------------------------------------
class UartBench:
    def __init__(self):
        self.levels: list[bool] = []
        self.output: list[str] = []
        self.uart = Uart16550(self.levels.append, self.output.append)

    def read(self, register: int) -> int:
        return self.uart.read(register, 1)

    def write(self, register: int, value: int) -> None:
        self.uart.write(register, 1, value)


def test_uart_reset_values():
    bench = UartBench()
    assert bench.read(U.IIR) == U.IIR_NO_INTERRUPT
    assert bench.read(U.LSR) == U.LSR_THRE | U.LSR_TEMT
    assert bench.read(U.MSR) == U.MSR_CTS | U.MSR_DSR | U.MSR_DCD
    assert bench.read(U.IER) == bench.read(U.LCR) == bench.read(U.MCR) == 0


def test_uart_transmit_is_immediate_and_latin1():
    bench = UartBench()
    for byte in b"hi\xe9":
        bench.write(U.THR, byte)
        assert bench.read(U.LSR) & (U.LSR_THRE | U.LSR_TEMT) == U.LSR_THRE | U.LSR_TEMT
    bench.uart.write(U.THR, 4, 0x1234_5621)  # a word access acts on its low byte
    assert "".join(bench.output) == "hi\xe9!"


def test_uart_divisor_latch_and_scratch():
    bench = UartBench()
    bench.write(U.LCR, U.LCR_DLAB | 0x03)
    bench.write(U.DLL, 0x0C)
    bench.write(U.DLM, 0x01)
    assert bench.output == []  # DLL is not THR
    assert (bench.read(U.DLL), bench.read(U.DLM)) == (0x0C, 0x01)
    bench.write(U.LCR, 0x03)
    assert bench.read(U.IER) == 0
    bench.write(U.SCR, 0xA5)
    assert bench.read(U.SCR) == 0xA5


def test_uart_receive_fifo_holds_16_and_refills_from_the_queue():
    bench = UartBench()
    bench.write(U.FCR, U.FCR_FIFOE)
    assert bench.read(U.IIR) & U.IIR_FIFOS_ENABLED == U.IIR_FIFOS_ENABLED
    text = "".join(chr(ord("a") + i % 26) for i in range(40))
    bench.uart.receive(text)
    assert bench.uart.fifo_count == U.FIFO_DEPTH
    received = ""
    while bench.read(U.LSR) & U.LSR_DR:
        received += chr(bench.read(U.RBR))
    assert received == text
    assert bench.uart.fifo_count == 0


def test_uart_16450_mode_holds_one_byte():
    bench = UartBench()
    bench.uart.receive("xy")
    assert bench.uart.fifo_count == 1
    assert bench.read(U.IIR) & U.IIR_FIFOS_ENABLED == 0


def test_uart_fifo_reset_discards_only_the_fifo():
    bench = UartBench()
    bench.write(U.FCR, U.FCR_FIFOE)
    bench.uart.receive("0123456789abcdefXYZ")
    bench.write(U.FCR, U.FCR_FIFOE | U.FCR_RCVR_RESET)
    assert "".join(chr(bench.read(U.RBR)) for _ in range(3)) == "XYZ"
    assert not bench.read(U.LSR) & U.LSR_DR


def test_uart_receive_rejects_non_latin1():
    with pytest.raises(ValueError, match="not a latin-1 character"):
        UartBench().uart.receive("€")


def test_uart_received_data_interrupt_and_line():
    bench = UartBench()
    bench.write(U.IER, U.IER_ERBFI)
    assert bench.levels == []
    bench.uart.receive("k")
    assert bench.levels == [True]
    assert bench.read(U.IIR) == U.IIR_RECEIVED_DATA
    assert bench.read(U.RBR) == ord("k")
    assert bench.read(U.IIR) == U.IIR_NO_INTERRUPT
    assert bench.levels == [True, False]


def test_uart_trigger_level_and_character_timeout():
    bench = UartBench()
    trigger_4 = 1 << U.FCR_TRIGGER_SHIFT
    bench.write(U.FCR, U.FCR_FIFOE | trigger_4)
    bench.write(U.IER, U.IER_ERBFI)
    bench.uart.receive("abc")  # below the trigger level: the timeout counts as elapsed
    assert bench.read(U.IIR) == U.IIR_FIFOS_ENABLED | U.IIR_CHARACTER_TIMEOUT
    bench.uart.receive("d")
    assert bench.read(U.IIR) == U.IIR_FIFOS_ENABLED | U.IIR_RECEIVED_DATA


def test_uart_thr_empty_interrupt():
    bench = UartBench()
    bench.write(U.IER, U.IER_ETBEI)  # THR is already empty: the interrupt is pending
    assert bench.levels == [True]
    assert bench.read(U.IIR) == U.IIR_THR_EMPTY
    assert bench.read(U.IIR) == U.IIR_NO_INTERRUPT  # the IIR read cleared it
    assert bench.levels == [True, False]
    bench.write(U.THR, ord("!"))  # THR empties again at once
    assert bench.levels == [True, False, True]
    bench.write(U.IER, 0)
    assert bench.levels == [True, False, True, False]


def test_uart_received_data_outranks_thr_empty():
    bench = UartBench()
    bench.write(U.IER, U.IER_ERBFI | U.IER_ETBEI)
    bench.uart.receive("z")
    assert bench.read(U.IIR) == U.IIR_RECEIVED_DATA
    bench.read(U.RBR)
    assert bench.read(U.IIR) == U.IIR_THR_EMPTY


def test_uart_loopback_and_modem_status():
    bench = UartBench()
    bench.write(U.IER, U.IER_EDSSI)
    bench.write(U.MCR, U.MCR_LOOP | U.MCR_RTS | U.MCR_OUT1)
    assert bench.read(U.IIR) == U.IIR_MODEM_STATUS
    msr = bench.read(U.MSR)
    assert msr & 0xF0 == U.MSR_CTS | U.MSR_RI
    assert msr & U.MSR_DDSR and msr & U.MSR_DDCD  # DSR and DCD dropped on entering loopback
    assert bench.read(U.MSR) & 0x0F == 0  # reading MSR clears the deltas
    bench.write(U.MCR, U.MCR_LOOP | U.MCR_RTS)  # RI falls: trailing edge
    assert bench.read(U.MSR) & U.MSR_TERI
    bench.write(U.THR, ord("q"))
    assert bench.output == []
    assert bench.read(U.LSR) & U.LSR_DR and bench.read(U.RBR) == ord("q")


# -- PLIC -----------------------------------------------------------------------------------
class PlicBench:
    def __init__(self, sources: int = 96):
        self.changes: list[tuple[int, bool]] = []
        self.plic = Plic(lambda ctx, level: self.changes.append((ctx, level)), sources)

    def write(self, offset: int, value: int) -> None:
        self.plic.write(offset, 4, value)

    def read(self, offset: int) -> int:
        return self.plic.read(offset, 4)

    def enable(self, ctx: int, *sources: int) -> None:
        for source in sources:
            offset = P.ENABLE_BASE + P.ENABLE_STRIDE * ctx + 4 * (source // 32)
            self.write(offset, self.read(offset) | 1 << (source % 32))

    def claim_offset(self, ctx: int) -> int:
        return P.CONTEXT_BASE + P.CONTEXT_STRIDE * ctx + P.CONTEXT_CLAIM

    def threshold_offset(self, ctx: int) -> int:
        return P.CONTEXT_BASE + P.CONTEXT_STRIDE * ctx + P.CONTEXT_THRESHOLD


def test_plic_priority_registers_are_3_bits_and_source_0_is_reserved():
    bench = PlicBench()
    bench.write(P.PRIORITY_BASE + 4 * 10, 0xFF)
    assert bench.read(P.PRIORITY_BASE + 4 * 10) == 7
    bench.write(P.PRIORITY_BASE, 5)
    assert bench.read(P.PRIORITY_BASE) == 0
    bench.write(P.ENABLE_BASE, 0xFFFF_FFFF)
    assert bench.read(P.ENABLE_BASE) == 0xFFFF_FFFE  # bit 0: source 0 does not exist
    bench.write(P.ENABLE_BASE + 8, 0xFFFF_FFFF)
    assert bench.read(P.ENABLE_BASE + 8) == 0xFFFF_FFFF  # sources 64..95
    bench.write(P.ENABLE_BASE + 12, 0xFFFF_FFFF)
    assert bench.read(P.ENABLE_BASE + 12) == 0  # beyond source 95


def test_plic_pending_follows_the_line_until_claimed():
    bench = PlicBench()
    bench.plic.set_source(33, True)
    assert bench.read(P.PENDING_BASE + 4) == 1 << 1
    bench.write(P.PENDING_BASE + 4, 0)  # pending bits are read-only
    assert bench.read(P.PENDING_BASE + 4) == 1 << 1
    bench.plic.set_source(33, False)
    assert bench.read(P.PENDING_BASE + 4) == 0
    with pytest.raises(ValueError, match="source 96 does not exist"):
        bench.plic.set_source(96, True)


def test_plic_claim_complete_and_context_notification():
    bench = PlicBench()
    uart = 10
    bench.write(P.PRIORITY_BASE + 4 * uart, 1)
    bench.enable(P.CONTEXT_S, uart)
    bench.plic.set_source(uart, True)
    assert bench.changes == [(P.CONTEXT_S, True)]  # S context only: M did not enable it
    assert bench.read(bench.claim_offset(P.CONTEXT_S)) == uart
    assert bench.changes[-1] == (P.CONTEXT_S, False)
    assert bench.read(bench.claim_offset(P.CONTEXT_S)) == 0  # nothing left to claim
    bench.write(bench.claim_offset(P.CONTEXT_S), uart)  # complete, line still high
    assert bench.changes[-1] == (P.CONTEXT_S, True)
    assert bench.read(bench.claim_offset(P.CONTEXT_S)) == uart
    bench.plic.set_source(uart, False)  # the device was served
    bench.write(bench.claim_offset(P.CONTEXT_S), uart)
    assert bench.read(bench.claim_offset(P.CONTEXT_S)) == 0
    assert bench.changes == [(1, True), (1, False), (1, True), (1, False)]


def test_plic_priority_order_and_ties():
    bench = PlicBench()
    for source, priority in ((3, 2), (5, 6), (7, 6), (9, 1)):
        bench.write(P.PRIORITY_BASE + 4 * source, priority)
        bench.enable(P.CONTEXT_M, source)
        bench.plic.set_source(source, True)
    claims = [bench.read(bench.claim_offset(P.CONTEXT_M)) for _ in range(5)]
    assert claims == [5, 7, 3, 9, 0]  # highest priority first, lowest id on a tie


def test_plic_threshold_masks_and_priority_0_never_interrupts():
    bench = PlicBench()
    bench.enable(P.CONTEXT_M, 4, 6)
    bench.write(P.PRIORITY_BASE + 4 * 4, 3)
    bench.plic.set_source(4, True)
    bench.plic.set_source(6, True)  # priority 0: never
    assert bench.changes == [(P.CONTEXT_M, True)]
    bench.write(bench.threshold_offset(P.CONTEXT_M), 3)  # needs priority > 3
    assert bench.read(bench.threshold_offset(P.CONTEXT_M)) == 3
    assert bench.changes[-1] == (P.CONTEXT_M, False)
    assert bench.read(bench.claim_offset(P.CONTEXT_M)) == 0
    bench.write(bench.threshold_offset(P.CONTEXT_M), 2)
    assert bench.changes[-1] == (P.CONTEXT_M, True)


def test_plic_completion_of_a_source_not_enabled_is_ignored():
    bench = PlicBench()
    bench.write(P.PRIORITY_BASE + 4 * 2, 1)
    bench.enable(P.CONTEXT_M, 2)
    bench.plic.set_source(2, True)
    assert bench.read(bench.claim_offset(P.CONTEXT_M)) == 2
    bench.write(bench.claim_offset(P.CONTEXT_S), 2)  # context S never enabled source 2
    assert bench.read(bench.claim_offset(P.CONTEXT_M)) == 0
    bench.write(bench.claim_offset(P.CONTEXT_M), 2)
    assert bench.read(bench.claim_offset(P.CONTEXT_M)) == 2


def test_plic_other_contexts_read_zero():
    bench = PlicBench()
    bench.write(bench.threshold_offset(5), 7)
    assert bench.read(bench.threshold_offset(5)) == 0
    assert bench.read(P.ENABLE_BASE + P.ENABLE_STRIDE * 3) == 0


# -- virtio-blk -----------------------------------------------------------------------------
QUEUE_SIZE = 8
DESC_TABLE = RAM_BASE + 0x1000
AVAIL_RING = RAM_BASE + 0x2000
USED_RING = RAM_BASE + 0x3000
BUFFERS = RAM_BASE + 0x4000
RAM_SIZE = 1 << 20


class VirtioDriver:
    """A minimal virtio-blk driver in Python: 3.1.1 initialisation, then requests."""

    def __init__(self, backing=None, *, read_only=False, features=None):
        self.hart = Hart(RAM_SIZE)
        self.backing = bytearray(8 * V.SECTOR_SIZE) if backing is None else backing
        self.levels: list[bool] = []
        self.device = VirtioBlk(self.hart, self.levels.append, self.backing, read_only=read_only)
        self.avail_idx = 0
        self.next_buffer = BUFFERS
        self.initialise(features)

    def write(self, offset: int, value: int) -> None:
        self.device.write(offset, 4, value)

    def read(self, offset: int) -> int:
        return self.device.read(offset, 4)

    def initialise(self, features) -> None:
        self.write(V.STATUS, 0)
        self.write(V.STATUS, V.ACKNOWLEDGE)
        self.write(V.STATUS, V.ACKNOWLEDGE | V.DRIVER)
        if features is None:
            features = self.device_features()
        for select in (0, 1):
            self.write(V.DRIVER_FEATURES_SEL, select)
            self.write(V.DRIVER_FEATURES, features >> (32 * select) & 0xFFFF_FFFF)
        self.write(V.STATUS, V.ACKNOWLEDGE | V.DRIVER | V.FEATURES_OK)
        if not self.read(V.STATUS) & V.FEATURES_OK:
            return
        self.write(V.QUEUE_SEL, 0)
        assert self.read(V.QUEUE_NUM_MAX) >= QUEUE_SIZE
        self.write(V.QUEUE_NUM, QUEUE_SIZE)
        for low, address in (
            (V.QUEUE_DESC_LOW, DESC_TABLE),
            (V.QUEUE_DRIVER_LOW, AVAIL_RING),
            (V.QUEUE_DEVICE_LOW, USED_RING),
        ):
            self.write(low, address)
            self.write(low + 4, 0)
        self.write(V.QUEUE_READY, 1)
        self.write(V.STATUS, V.ACKNOWLEDGE | V.DRIVER | V.FEATURES_OK | V.DRIVER_OK)

    def device_features(self) -> int:
        features = 0
        for select in (0, 1):
            self.write(V.DEVICE_FEATURES_SEL, select)
            features |= self.read(V.DEVICE_FEATURES) << (32 * select)
        return features

    def buffer(self, data: bytes | int) -> int:
        """Place bytes (or reserve that many zero bytes) in RAM; return the address."""
        data = bytes(data) if isinstance(data, int) else data
        address = self.next_buffer
        self.hart.write_memory(address, data)
        self.next_buffer += (len(data) + 15) & ~15
        return address

    def set_descriptor(self, index: int, address: int, length: int, flags: int, next_index=0):
        entry = V.DESCRIPTOR.pack(address, length, flags, next_index)
        self.hart.write_memory(DESC_TABLE + 16 * index, entry)

    def chain(self, buffers: list[tuple[int, int, bool]]) -> None:
        """Descriptors 0..n-1 for (address, length, device_writable), linked in order."""
        for index, (address, length, writable) in enumerate(buffers):
            flags = V.VIRTQ_DESC_F_WRITE if writable else 0
            if index + 1 < len(buffers):
                flags |= V.VIRTQ_DESC_F_NEXT
            self.set_descriptor(index, address, length, flags, index + 1)

    def make_available(self, head: int = 0, *, no_interrupt: bool = False) -> None:
        slot = self.avail_idx % QUEUE_SIZE
        self.hart.write_memory(AVAIL_RING + 4 + 2 * slot, struct.pack("<H", head))
        self.avail_idx = (self.avail_idx + 1) & 0xFFFF
        flags = V.VIRTQ_AVAIL_F_NO_INTERRUPT if no_interrupt else 0
        self.hart.write_memory(AVAIL_RING, struct.pack("<HH", flags, self.avail_idx))

    def notify(self) -> None:
        self.write(V.QUEUE_NOTIFY, 0)

    def used(self) -> tuple[int, list[tuple[int, int]]]:
        """The used ring's idx and its elements so far."""
        idx = struct.unpack("<H", self.hart.read_memory(USED_RING + 2, 2))[0]
        elements = [
            V.USED_ELEMENT.unpack(self.hart.read_memory(USED_RING + 4 + 8 * slot, 8))
            for slot in range(min(idx, QUEUE_SIZE))
        ]
        return idx, elements

    def request(self, kind: int, sector: int = 0, *, data=b"", read_length=0, **options):
        """One request as header, data, status descriptors; returns (status, data read)."""
        header = self.buffer(V.REQUEST_HEADER.pack(kind, 0, sector))
        buffers = [(header, V.REQUEST_HEADER.size, False)]
        if data:
            buffers.append((self.buffer(data), len(data), False))
        if read_length:
            read_address = self.buffer(read_length)
            buffers.append((read_address, read_length, True))
        status = self.buffer(b"\xff")
        buffers.append((status, 1, True))
        self.chain(buffers)
        self.make_available(**options)
        self.notify()
        read = self.hart.read_memory(read_address, read_length) if read_length else b""
        return self.hart.read_memory(status, 1)[0], read


def test_virtio_identity_and_config_space():
    driver = VirtioDriver()
    assert driver.read(V.MAGIC_VALUE) == 0x74726976
    assert driver.read(V.VERSION) == 2
    assert driver.read(V.DEVICE_ID) == 2
    assert driver.read(V.VENDOR_ID) == V.VIRTKIT_VENDOR_ID
    assert driver.read(V.CONFIG) == 8  # capacity, low word: 8 sectors
    assert driver.read(V.CONFIG + 4) == 0
    assert driver.device.read(V.CONFIG, 1) == 8
    assert driver.read(V.CONFIG_GENERATION) == 0


def test_virtio_features():
    assert VirtioDriver().device_features() == V.VIRTIO_F_VERSION_1 | V.VIRTIO_BLK_F_FLUSH
    read_only = VirtioDriver(read_only=True).device_features()
    assert read_only & V.VIRTIO_BLK_F_RO


@pytest.mark.parametrize(
    "features", [V.VIRTIO_BLK_F_FLUSH, V.VIRTIO_F_VERSION_1 | V.VIRTIO_BLK_F_RO]
)
def test_virtio_rejects_features_without_version_1_or_not_offered(features):
    driver = VirtioDriver(features=features)
    assert not driver.read(V.STATUS) & V.FEATURES_OK


def test_virtio_status_reset():
    driver = VirtioDriver()
    assert driver.read(V.STATUS) == V.ACKNOWLEDGE | V.DRIVER | V.FEATURES_OK | V.DRIVER_OK
    assert driver.read(V.QUEUE_READY) == 1
    driver.write(V.STATUS, 0)
    assert driver.read(V.STATUS) == 0
    assert driver.read(V.QUEUE_READY) == 0
    driver.write(V.QUEUE_SEL, 1)
    assert driver.read(V.QUEUE_NUM_MAX) == 0  # only queue 0 exists


def test_virtio_write_read_back_and_interrupt():
    driver = VirtioDriver()
    payload = bytes(range(256)) * 4  # two sectors
    status, _ = driver.request(V.VIRTIO_BLK_T_OUT, 3, data=payload)
    assert status == V.VIRTIO_BLK_S_OK
    assert driver.backing[3 * 512 : 5 * 512] == payload
    assert driver.used() == (1, [(0, 1)])  # only the status byte was written
    assert driver.read(V.INTERRUPT_STATUS) == V.INTERRUPT_USED_BUFFER
    assert driver.levels == [True]
    driver.write(V.INTERRUPT_ACK, V.INTERRUPT_USED_BUFFER)
    assert driver.levels == [True, False]

    status, data = driver.request(V.VIRTIO_BLK_T_IN, 3, read_length=1024)
    assert (status, data) == (V.VIRTIO_BLK_S_OK, payload)
    assert driver.used() == (2, [(0, 1), (0, 1025)])


def test_virtio_buffers_split_anywhere():
    """2.6.4 message framing: header, data and status may share or split descriptors."""
    driver = VirtioDriver()
    driver.backing[0:512] = b"s" * 512
    header = V.REQUEST_HEADER.pack(V.VIRTIO_BLK_T_IN, 0, 0)
    first = driver.buffer(header[:5])
    rest = driver.buffer(header[5:])
    data_and_status = driver.buffer(513)
    driver.chain([(first, 5, False), (rest, 11, False), (data_and_status, 513, True)])
    driver.make_available()
    driver.notify()
    assert driver.hart.read_memory(data_and_status, 513) == b"s" * 512 + b"\0"


def test_virtio_no_interrupt_flag_suppresses_the_interrupt():
    driver = VirtioDriver()
    status, _ = driver.request(V.VIRTIO_BLK_T_FLUSH, no_interrupt=True)
    assert status == V.VIRTIO_BLK_S_OK
    assert driver.used()[0] == 1
    assert driver.read(V.INTERRUPT_STATUS) == 0 and driver.levels == []


def test_virtio_get_id():
    driver = VirtioDriver()
    status, data = driver.request(V.VIRTIO_BLK_T_GET_ID, read_length=20)
    assert status == V.VIRTIO_BLK_S_OK
    assert data == V.DISK_ID.ljust(20, b"\0")
    assert driver.used()[1][-1] == (0, 21)


def test_virtio_file_backing_and_flush(tmp_path):
    image = tmp_path / "disk.img"
    image.write_bytes(bytes(4 * 512))
    driver = VirtioDriver(str(image))
    assert driver.request(V.VIRTIO_BLK_T_OUT, 1, data=b"F" * 512)[0] == V.VIRTIO_BLK_S_OK
    assert driver.request(V.VIRTIO_BLK_T_FLUSH)[0] == V.VIRTIO_BLK_S_OK
    assert image.read_bytes()[512:1024] == b"F" * 512
    driver.device.close()


def test_virtio_backing_must_be_whole_sectors(tmp_path):
    image = tmp_path / "odd.img"
    image.write_bytes(bytes(1000))
    with pytest.raises(ValueError, match="not a multiple of the 512-byte sector"):
        VirtioBlk(Hart(RAM_SIZE), lambda level: None, image)
    with pytest.raises(TypeError, match="bytearray"):
        VirtioBlk(Hart(RAM_SIZE), lambda level: None, bytes(512))


@pytest.mark.parametrize(
    "case, expected",
    [
        ("past the end", V.VIRTIO_BLK_S_IOERR),
        ("partial sector", V.VIRTIO_BLK_S_IOERR),
        ("read-only write", V.VIRTIO_BLK_S_IOERR),
        ("unknown type", V.VIRTIO_BLK_S_UNSUPP),
        ("data outside RAM", V.VIRTIO_BLK_S_IOERR),
        ("header outside RAM", V.VIRTIO_BLK_S_IOERR),
        ("short header", V.VIRTIO_BLK_S_IOERR),
    ],
)
def test_virtio_bad_requests_get_a_status(case, expected):
    driver = VirtioDriver(read_only=case == "read-only write")
    original = bytes(driver.backing)
    status = driver.buffer(b"\xff")
    header = V.REQUEST_HEADER.pack(V.VIRTIO_BLK_T_IN, 0, 0)
    data, data_length = driver.buffer(512), 512
    writable = True
    if case == "past the end":
        header = V.REQUEST_HEADER.pack(V.VIRTIO_BLK_T_IN, 0, 7)
        data_length = 1024  # sector 7 is the last one
    elif case == "partial sector":
        data_length = 100
    elif case == "read-only write":
        header = V.REQUEST_HEADER.pack(V.VIRTIO_BLK_T_OUT, 0, 0)
        writable = False
    elif case == "unknown type":
        header = V.REQUEST_HEADER.pack(0x99, 0, 0)
    elif case == "data outside RAM":
        data = RAM_BASE + RAM_SIZE - 256
    elif case == "short header":
        header = header[:8]
    header_address = driver.buffer(header)
    if case == "header outside RAM":
        header_address = 0x1000_0000
    driver.chain(
        [(header_address, len(header), False), (data, data_length, writable), (status, 1, True)]
    )
    driver.make_available()
    driver.notify()
    assert driver.hart.read_memory(status, 1)[0] == expected
    assert driver.used() == (1, [(0, 1)])
    assert not driver.read(V.STATUS) & V.DEVICE_NEEDS_RESET
    assert bytes(driver.backing) == original


def needs_reset(driver: VirtioDriver) -> bool:
    return bool(driver.read(V.STATUS) & V.DEVICE_NEEDS_RESET)


def test_virtio_descriptor_loop_needs_reset():
    driver = VirtioDriver()
    header = driver.buffer(V.REQUEST_HEADER.pack(V.VIRTIO_BLK_T_IN, 0, 0))
    data = driver.buffer(512)
    driver.set_descriptor(0, header, 16, V.VIRTQ_DESC_F_NEXT, 1)
    loop = V.VIRTQ_DESC_F_WRITE | V.VIRTQ_DESC_F_NEXT
    driver.set_descriptor(1, data, 512, loop, 2)
    driver.set_descriptor(2, data, 512, loop, 1)  # 1 -> 2 -> 1 -> ...
    driver.make_available()
    driver.notify()
    assert needs_reset(driver)
    assert "loops" in driver.device.error
    assert driver.used() == (0, [])
    assert driver.read(V.INTERRUPT_STATUS) == V.INTERRUPT_CONFIG_CHANGE
    assert driver.levels == [True]
    # Stopped: a good request is not served until the driver resets the device.
    assert driver.request(V.VIRTIO_BLK_T_FLUSH)[0] == 0xFF
    driver.initialise(None)
    assert not needs_reset(driver)


@pytest.mark.parametrize(
    "case, error",
    [
        ("status outside RAM", "outside RAM"),
        ("no writable descriptor", "no device-writable byte"),
        ("index outside the table", "outside the table"),
        ("indirect", "indirect"),
        ("readable after writable", "follows a device-writable"),
        ("ring outside RAM", "unreachable"),
        ("avail idx too far", "more than the queue"),
        ("queue size not a power of 2", "power of 2"),
    ],
)
def test_virtio_broken_queues_need_reset(case, error):
    driver = VirtioDriver()
    header = driver.buffer(V.REQUEST_HEADER.pack(V.VIRTIO_BLK_T_FLUSH, 0, 0))
    status = driver.buffer(b"\xff")
    head = 0
    buffers = [(header, 16, False), (status, 1, True)]
    if case == "status outside RAM":
        buffers[1] = (RAM_BASE + RAM_SIZE, 1, True)
    elif case == "no writable descriptor":
        buffers[1] = (status, 1, False)
    elif case == "readable after writable":
        buffers.append((header, 16, False))
    driver.chain(buffers)
    if case == "index outside the table":
        head = QUEUE_SIZE
    elif case == "indirect":
        driver.set_descriptor(0, header, 16, V.VIRTQ_DESC_F_INDIRECT)
    elif case == "ring outside RAM":
        driver.write(V.QUEUE_DEVICE_LOW, 0x1000_0000)
    elif case == "queue size not a power of 2":
        driver.write(V.QUEUE_NUM, 6)
    driver.make_available(head)
    if case == "avail idx too far":
        driver.hart.write_memory(AVAIL_RING + 2, struct.pack("<H", QUEUE_SIZE + 1))
    driver.notify()
    assert needs_reset(driver)
    assert error in driver.device.error
    assert driver.read(V.INTERRUPT_STATUS) & V.INTERRUPT_CONFIG_CHANGE


def test_virtio_ignores_notify_before_driver_ok():
    driver = VirtioDriver()
    driver.write(V.STATUS, V.ACKNOWLEDGE | V.DRIVER | V.FEATURES_OK)
    assert driver.request(V.VIRTIO_BLK_T_FLUSH)[0] == 0xFF
    assert driver.used() == (0, [])
