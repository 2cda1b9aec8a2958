"""The platform-level interrupt controller (PLIC) of QEMU's ``virt`` board, at 0x0C00_0000.

It implements the RISC-V PLIC Specification 1.0.0, laid out as its "Memory Map"
section and QEMU's hw/intc/sifive_plic.c place it on ``virt``:

    0x000000 + 4*i                 priority of source i (source 0 does not exist)
    0x001000 + 4*w                 pending bits of sources 32w..32w+31 (read-only)
    0x002000 + 0x80*ctx + 4*w      enable bits of those sources for context ctx
    0x200000 + 0x1000*ctx          priority threshold of context ctx
    0x200004 + 0x1000*ctx          claim (read) / complete (write) of context ctx

A context is one privilege level of one hart. QEMU ``virt`` numbers them M then S for
each hart, so context 0 is hart 0's M-mode (it drives mip.MEIP) and context 1 its
S-mode (mip.SEIP). virtkit has one hart; accesses to other contexts read 0 and do
nothing. Priorities and thresholds have 3 bits (0..7), as on ``virt``
(VIRT_IRQCHIP_NUM_PRIO_BITS); higher bits of a write are dropped.

Sources are level-triggered ("Interrupt Gateways"): a source is pending while its
line is high and it is not claimed. Claiming it clears its pending bit; completing it
re-arms the gateway, so a line still high is pending again at once. As in QEMU, a
line that drops before the claim takes its pending bit with it.

A context's interrupt notification is on while some pending source is enabled for it
with a priority above its threshold; ``on_context_change(ctx, level)`` reports each
change.

The registers are 32 bits wide and the spec allows only aligned 32-bit accesses. An
access of another width acts on the word at its offset: a read returns that word
truncated to the access size, a write stores its zero-extended value.
"""

from __future__ import annotations

from collections.abc import Callable

from virtkit.machine.bus import Device

PRIORITY_BASE = 0x000000
PENDING_BASE = 0x001000
ENABLE_BASE = 0x002000
ENABLE_STRIDE = 0x80  # per context
CONTEXT_BASE = 0x200000
CONTEXT_STRIDE = 0x1000  # per context
CONTEXT_THRESHOLD = 0x0
CONTEXT_CLAIM = 0x4  # claim on read, complete on write

PRIORITY_MASK = 0x7  # 3 priority bits, as QEMU virt
MAX_SOURCES = 1024  # interrupt ids 0..1023 (id 0 means "no interrupt")

CONTEXT_M = 0  # hart 0, M-mode
CONTEXT_S = 1  # hart 0, S-mode
CONTEXTS = 2


class Plic(Device):
    """The PLIC with ``sources`` interrupt ids (1..sources-1 usable) and two contexts."""

    name = "plic"
    # QEMU virt's window: 0x200000 + 0x1000 for each of up to 1024 contexts (512 harts).
    SIZE = 0x600000

    def __init__(self, on_context_change: Callable[[int, bool], None], sources: int = 96):
        if not 2 <= sources <= MAX_SOURCES:
            raise ValueError(f"a PLIC has 2..{MAX_SOURCES} interrupt ids, got sources={sources}")
        self.on_context_change = on_context_change
        self.sources = sources
        self.priority = [0] * sources
        # Bit i of each mask is source i, as in the pending and enable registers.
        self.level = 0  # the interrupt lines, as the devices drive them
        self.claimed = 0  # claimed and not yet completed
        self.enable = [0] * CONTEXTS
        self.threshold = [0] * CONTEXTS
        self.notification = [False] * CONTEXTS
        self.valid_sources = ((1 << sources) - 1) & ~1  # source 0 is hardwired to 0

    # -- device side --------------------------------------------------------------------
    def set_source(self, irq: int, level: bool) -> None:
        """Drive the line of source ``irq`` (a device's interrupt output)."""
        if not 1 <= irq < self.sources:
            raise ValueError(f"PLIC source {irq} does not exist: use 1..{self.sources - 1}")
        if level:
            self.level |= 1 << irq
        else:
            self.level &= ~(1 << irq)
        self._update()

    @property
    def pending(self) -> int:
        """The pending bits: lines that are high and not claimed."""
        return self.level & ~self.claimed

    def best_source(self, ctx: int) -> int:
        """The id a claim by ``ctx`` would return: the highest-priority pending source
        enabled for ``ctx`` with priority above its threshold, lowest id on a tie; 0 if none."""
        candidates = self.pending & self.enable[ctx]
        best, best_priority = 0, self.threshold[ctx]
        for source in range(1, self.sources):
            if candidates >> source & 1 and self.priority[source] > best_priority:
                best, best_priority = source, self.priority[source]
        return best

    # -- registers ----------------------------------------------------------------------
    def read(self, offset: int, size: int) -> int:
        return self._read_word(offset) & ((1 << (8 * size)) - 1)

    def _read_word(self, offset: int) -> int:
        if offset < PENDING_BASE:
            source = (offset - PRIORITY_BASE) // 4
            return self.priority[source] if source < self.sources else 0
        if offset < ENABLE_BASE:
            return self._mask_word(self.pending, offset - PENDING_BASE)
        if offset < CONTEXT_BASE:
            ctx, word_offset = divmod(offset - ENABLE_BASE, ENABLE_STRIDE)
            return self._mask_word(self.enable[ctx], word_offset) if ctx < CONTEXTS else 0
        ctx, register = divmod(offset - CONTEXT_BASE, CONTEXT_STRIDE)
        if ctx >= CONTEXTS:
            return 0
        if register == CONTEXT_THRESHOLD:
            return self.threshold[ctx]
        if register == CONTEXT_CLAIM:
            return self.claim(ctx)
        return 0

    def write(self, offset: int, size: int, value: int) -> None:
        value &= 0xFFFFFFFF
        if offset < PENDING_BASE:
            source = (offset - PRIORITY_BASE) // 4
            if 1 <= source < self.sources:
                self.priority[source] = value & PRIORITY_MASK
        elif offset < ENABLE_BASE:
            return  # pending bits are read-only
        elif offset < CONTEXT_BASE:
            ctx, word_offset = divmod(offset - ENABLE_BASE, ENABLE_STRIDE)
            if ctx < CONTEXTS:
                shift = 8 * (word_offset & ~3)
                word = (value << shift) & self.valid_sources
                self.enable[ctx] = (self.enable[ctx] & ~(0xFFFFFFFF << shift)) | word
        else:
            ctx, register = divmod(offset - CONTEXT_BASE, CONTEXT_STRIDE)
            if ctx >= CONTEXTS:
                return
            if register == CONTEXT_THRESHOLD:
                self.threshold[ctx] = value & PRIORITY_MASK
            elif register == CONTEXT_CLAIM:
                self.complete(ctx, value)
        self._update()

    @staticmethod
    def _mask_word(mask: int, byte_offset: int) -> int:
        """The 32-bit word of a bit mask at ``byte_offset`` in its register array."""
        return (mask >> (8 * (byte_offset & ~3))) & 0xFFFFFFFF

    # -- claim and complete ("Interrupt Claim Process", "Interrupt Completion") ----------
    def claim(self, ctx: int) -> int:
        source = self.best_source(ctx)
        if source:
            self.claimed |= 1 << source
            self._update()
        return source

    def complete(self, ctx: int, source: int) -> None:
        # "If the completion ID does not match an interrupt source that is currently
        # enabled for the target, the completion is silently ignored."
        if 1 <= source < self.sources and self.enable[ctx] >> source & 1:
            self.claimed &= ~(1 << source)
            self._update()

    def _update(self) -> None:
        for ctx in range(CONTEXTS):
            level = self.best_source(ctx) != 0
            if level != self.notification[ctx]:
                self.notification[ctx] = level
                self.on_context_change(ctx, level)
