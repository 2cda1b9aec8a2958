"""The NS16550A UART of QEMU's ``virt`` board (UART0 at 0x1000_0000, PLIC source 10).

Registers and bits as in the TI PC16550D datasheet (section 8, "Registers", and its
Table II, "Summary of Registers"), the 16550A register set that QEMU models in
hw/char/serial.c:

    offset  read                    write                   with LCR.DLAB = 1
    0       RBR receiver buffer     THR transmit holding    DLL divisor latch, low
    1       IER interrupt enable    IER                     DLM divisor latch, high
    2       IIR interrupt ident.    FCR FIFO control
    3       LCR line control        LCR
    4       MCR modem control       MCR
    5       LSR line status         (read-only)
    6       MSR modem status        (read-only)
    7       SCR scratch             SCR

There is no wire, so virtkit simplifies where timing would matter:
- Transmit is immediate: each byte written to THR goes to ``on_output`` at once, so
  LSR.THRE and LSR.TEMT are always set. Bytes are decoded as latin-1, one character
  per byte, so nothing is lost; whoever joins them decides what the text means.
- Input from ``receive`` waits in an unbounded host-side queue. The receive FIFO is
  the head of that queue: its first 16 bytes in FIFO mode (FCR.FIFOE = 1), its first
  byte in 16450 mode. Reading RBR moves the next byte in, so input never overruns and
  LSR.OE, PE, FE and BI stay 0: the receiver line status interrupt never fires.
  Clearing the receive FIFO (FCR) discards the bytes in it and the queue moves up.
- The character timeout (IIR = 0x0C), which real hardware signals when fewer bytes
  than the trigger level wait for four character times, counts as elapsed at once.
- Divisor latch, word length, parity and stop bits are stored and read back but
  change nothing.

Accesses are one byte wide. A wider access acts on its low byte: a read returns the
register zero-extended, a write uses ``value & 0xFF``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from virtkit.machine.bus import Device

# Register offsets (DLL and DLM replace RBR/THR and IER while LCR.DLAB = 1).
RBR = THR = DLL = 0
IER = DLM = 1
IIR = FCR = 2
LCR = 3
MCR = 4
LSR = 5
MSR = 6
SCR = 7

# IER: which interrupts are enabled.
IER_ERBFI = 0x01  # received data available (and character timeout)
IER_ETBEI = 0x02  # transmitter holding register empty
IER_ELSI = 0x04  # receiver line status
IER_EDSSI = 0x08  # modem status
IER_MASK = IER_ERBFI | IER_ETBEI | IER_ELSI | IER_EDSSI

# IIR: bit 0 is 0 while an interrupt is pending; bits 3:1 say which, highest priority
# first in this list (the receiver line status, 0x06, outranks them all but cannot
# happen here); bits 7:6 are set while the FIFOs are enabled.
IIR_NO_INTERRUPT = 0x01
IIR_RECEIVED_DATA = 0x04
IIR_CHARACTER_TIMEOUT = 0x0C
IIR_THR_EMPTY = 0x02
IIR_MODEM_STATUS = 0x00
IIR_FIFOS_ENABLED = 0xC0

# FCR
FCR_FIFOE = 0x01  # FIFO enable
FCR_RCVR_RESET = 0x02  # clear the receive FIFO
FCR_XMIT_RESET = 0x04  # clear the transmit FIFO (always empty here)
FCR_TRIGGER_SHIFT = 6  # bits 7:6 select the receive trigger level
RCVR_TRIGGER_LEVELS = (1, 4, 8, 14)
FIFO_DEPTH = 16

# LCR
LCR_DLAB = 0x80  # divisor latch access bit

# MCR
MCR_DTR = 0x01
MCR_RTS = 0x02
MCR_OUT1 = 0x04
MCR_OUT2 = 0x08
MCR_LOOP = 0x10
MCR_MASK = 0x1F

# LSR
LSR_DR = 0x01  # data ready
LSR_THRE = 0x20  # transmitter holding register empty
LSR_TEMT = 0x40  # transmitter empty

# MSR: bits 3:0 are deltas since the last MSR read, bits 7:4 the modem inputs.
MSR_DCTS = 0x01
MSR_DDSR = 0x02
MSR_TERI = 0x04  # trailing edge of RI
MSR_DDCD = 0x08
MSR_CTS = 0x10
MSR_DSR = 0x20
MSR_RI = 0x40
MSR_DCD = 0x80
MSR_CONNECTED = MSR_CTS | MSR_DSR | MSR_DCD  # a terminal is attached, as in QEMU


class Uart16550(Device):
    """An NS16550A. ``irq(level)`` is called whenever the interrupt line changes;
    ``on_output(text)`` receives each transmitted byte; ``receive(text)`` is input."""

    name = "uart0"
    SIZE = 0x100  # QEMU virt's memory map; registers beyond offset 7 read 0

    def __init__(self, irq: Callable[[bool], None], on_output: Callable[[str], None]):
        self.irq = irq
        self.on_output = on_output
        self.ier = 0
        self.fcr = 0
        self.lcr = 0
        self.mcr = 0
        self.scr = 0
        self.dll = 0
        self.dlm = 0
        self.msr_deltas = 0
        self.thr_empty_interrupt = False  # set when THR empties, cleared by IIR read
        self.input: deque[int] = deque()  # the receive FIFO is its head
        self.irq_level = False

    # -- host side ----------------------------------------------------------------------
    def receive(self, text: str) -> None:
        """Queue ``text`` as input, one latin-1 byte per character."""
        try:
            data = text.encode("latin-1")
        except UnicodeEncodeError as error:
            raise ValueError(
                f"the UART carries bytes: {text[error.start]!r} at index {error.start} is "
                "not a latin-1 character; send only characters up to U+00FF"
            ) from None
        self.input.extend(data)
        self._update_irq()

    # -- registers ----------------------------------------------------------------------
    def read(self, offset: int, size: int) -> int:
        dlab = self.lcr & LCR_DLAB
        if offset == RBR:
            return self.dll if dlab else self._read_rbr()
        if offset == IER:
            return self.dlm if dlab else self.ier
        if offset == IIR:
            return self._read_iir()
        if offset == LCR:
            return self.lcr
        if offset == MCR:
            return self.mcr
        if offset == LSR:
            return self.lsr
        if offset == MSR:
            return self._read_msr()
        if offset == SCR:
            return self.scr
        return 0

    def write(self, offset: int, size: int, value: int) -> None:
        value &= 0xFF
        dlab = self.lcr & LCR_DLAB
        if offset == THR and dlab:
            self.dll = value
        elif offset == THR:
            self._transmit(value)
        elif offset == IER and dlab:
            self.dlm = value
        elif offset == IER:
            self._write_ier(value)
        elif offset == FCR:
            self._write_fcr(value)
        elif offset == LCR:
            self.lcr = value
        elif offset == MCR:
            self._write_mcr(value)
        elif offset == SCR:
            self.scr = value
        self._update_irq()

    @property
    def fifo_count(self) -> int:
        """How many received bytes the receive FIFO (or the RBR in 16450 mode) holds."""
        capacity = FIFO_DEPTH if self.fcr & FCR_FIFOE else 1
        return min(len(self.input), capacity)

    @property
    def lsr(self) -> int:
        return LSR_THRE | LSR_TEMT | (LSR_DR if self.input else 0)

    @property
    def modem_inputs(self) -> int:
        """MSR bits 7:4. In loopback the MCR outputs drive them (datasheet, MCR bit 4)."""
        if not self.mcr & MCR_LOOP:
            return MSR_CONNECTED
        inputs = 0
        for output, status in (
            (MCR_RTS, MSR_CTS),
            (MCR_DTR, MSR_DSR),
            (MCR_OUT1, MSR_RI),
            (MCR_OUT2, MSR_DCD),
        ):
            if self.mcr & output:
                inputs |= status
        return inputs

    def _read_rbr(self) -> int:
        if not self.input:
            return 0
        byte = self.input.popleft()
        self._update_irq()
        return byte

    def _read_iir(self) -> int:
        identification = self.interrupt_identification()
        if identification == IIR_THR_EMPTY:
            self.thr_empty_interrupt = False  # reading IIR clears the THRE interrupt
            self._update_irq()
        fifos = IIR_FIFOS_ENABLED if self.fcr & FCR_FIFOE else 0
        return fifos | identification

    def _read_msr(self) -> int:
        value = self.modem_inputs | self.msr_deltas
        self.msr_deltas = 0
        self._update_irq()
        return value

    def _transmit(self, byte: int) -> None:
        if self.mcr & MCR_LOOP:
            self.input.append(byte)  # loopback: the transmitter feeds the receiver
        else:
            self.on_output(chr(byte))
        self.thr_empty_interrupt = True  # the byte left at once: THR is empty again

    def _write_ier(self, value: int) -> None:
        newly_enabled = value & ~self.ier
        self.ier = value & IER_MASK
        if newly_enabled & IER_ETBEI:
            self.thr_empty_interrupt = True  # THR is already empty
        elif not self.ier & IER_ETBEI:
            self.thr_empty_interrupt = False

    def _write_fcr(self, value: int) -> None:
        if not value & FCR_FIFOE:
            value = 0  # the other bits are only programmed together with FIFOE
        if (value ^ self.fcr) & FCR_FIFOE or value & FCR_RCVR_RESET:
            for _ in range(self.fifo_count):
                self.input.popleft()
        self.fcr = value & ~(FCR_RCVR_RESET | FCR_XMIT_RESET)  # reset bits self-clear

    def _write_mcr(self, value: int) -> None:
        before = self.modem_inputs
        self.mcr = value & MCR_MASK
        after = self.modem_inputs
        changed = before ^ after
        for status, delta in ((MSR_CTS, MSR_DCTS), (MSR_DSR, MSR_DDSR), (MSR_DCD, MSR_DDCD)):
            if changed & status:
                self.msr_deltas |= delta
        if before & MSR_RI and not after & MSR_RI:
            self.msr_deltas |= MSR_TERI

    # -- interrupts ---------------------------------------------------------------------
    def interrupt_identification(self) -> int:
        """IIR bits 3:0: the highest-priority pending, enabled interrupt (datasheet
        Table IV, "Interrupt Control Functions")."""
        if self.ier & IER_ERBFI and self.input:
            trigger = RCVR_TRIGGER_LEVELS[self.fcr >> FCR_TRIGGER_SHIFT]
            if not self.fcr & FCR_FIFOE or self.fifo_count >= trigger:
                return IIR_RECEIVED_DATA
            return IIR_CHARACTER_TIMEOUT
        if self.ier & IER_ETBEI and self.thr_empty_interrupt:
            return IIR_THR_EMPTY
        if self.ier & IER_EDSSI and self.msr_deltas:
            return IIR_MODEM_STATUS
        return IIR_NO_INTERRUPT

    def _update_irq(self) -> None:
        level = self.interrupt_identification() != IIR_NO_INTERRUPT
        if level != self.irq_level:
            self.irq_level = level
            self.irq(level)
