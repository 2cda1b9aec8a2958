"""Exits: why the compiled core returned to Python, modelled on KVM's KVM_RUN.

KVM's run loop returns to its user-space VMM with ``exit_reason`` and a union of
details (Documentation/virt/kvm/api.rst, "struct kvm_run"). The hart does the same:
``Hart.run(budget)`` executes until something Python must see happens and returns an
``Exit``. The monitor then handles it (emulate a device, deliver the trap with
``hart.take_trap``, inject a virtual trap, or just resume) and calls ``run`` again.
"""

from __future__ import annotations

from typing import NamedTuple

from virtkit.isa.causes import (
    CAUSE_FETCH_GUEST_PAGE_FAULT,
    CAUSE_LOAD_GUEST_PAGE_FAULT,
    CAUSE_STORE_GUEST_PAGE_FAULT,
    cause_name,
)

GUEST_PAGE_FAULTS = frozenset(
    {CAUSE_FETCH_GUEST_PAGE_FAULT, CAUSE_LOAD_GUEST_PAGE_FAULT, CAUSE_STORE_GUEST_PAGE_FAULT}
)
_MODE_NAMES = {(0, 0): "U", (0, 1): "S", (0, 3): "M", (1, 0): "VU", (1, 1): "VS"}

# Exit reasons. The numbers are stored in the state array; the names are for people.
EXIT_NONE = 0
EXIT_TRAP = 1  # a trap whose target level Python owns; nothing architectural happened yet
EXIT_MMIO_READ = 2  # a load from a device outside the core; complete with hart.complete_mmio
EXIT_MMIO_WRITE = 3  # a store to a device outside the core
EXIT_WFI = 4  # WFI with no interrupt pending and no timer armed to wake the hart
EXIT_EBREAK = 5  # EBREAK, when EBREAK exits are enabled (a debugger owns it)
EXIT_BREAKPOINT = 6  # the pc reached a breakpoint set with hart.breakpoints
EXIT_HALT = 7  # the program ended (HTIF tohost written, or a finisher device)
EXIT_BUDGET = 8  # the instruction budget was spent

EXIT_NAMES = {
    EXIT_NONE: "NONE",
    EXIT_TRAP: "TRAP",
    EXIT_MMIO_READ: "MMIO_READ",
    EXIT_MMIO_WRITE: "MMIO_WRITE",
    EXIT_WFI: "WFI",
    EXIT_EBREAK: "EBREAK",
    EXIT_BREAKPOINT: "BREAKPOINT",
    EXIT_HALT: "HALT",
    EXIT_BUDGET: "BUDGET",
}


class Exit(NamedTuple):
    """One return from the core.

    ``pc`` is the pc of the instruction concerned (the trapping or MMIO instruction,
    the breakpoint, the WFI; for BUDGET, where the hart will continue). For TRAP exits,
    ``cause``/``interrupt``/``tval`` say what would be delivered; for MMIO exits,
    ``address``/``size``/``value`` describe the access (``value`` only for writes) and
    ``rd``/``signed`` the register to complete; for HALT, ``value`` is what the program
    handed to the host. ``interrupt`` and ``signed`` are 0 or 1.

    What the hypervisor extension adds (privileged spec 20211203, 8.6.2-8.6.3), for
    the monitor that owns HS-mode: ``htval`` is what htval (or mtval2) would receive,
    the guest physical address >> 2 of a guest-page fault, else 0; ``htinst`` what
    htinst (or mtinst) would receive: the transformed load or store of a guest-page
    fault on an explicit access, the pseudoinstruction 0x2000/0x2020 of one in the
    VS-stage walk, else 0; ``gva`` is 1 when ``tval`` is a guest virtual address.
    ``virtual`` and ``privilege`` are the mode the hart was in (and still is, since
    nothing architectural happened): for a TRAP, what hstatus.SPV and sstatus.SPP
    (or MPV and MPP) would receive.

    A named tuple, because the core returns exactly this tuple and a monitor makes
    one per exit: it has to be cheap.
    """

    reason: int
    pc: int
    instruction: int = 0
    cause: int = 0
    interrupt: int = 0
    tval: int = 0
    address: int = 0
    size: int = 0
    value: int = 0
    rd: int = 0
    signed: int = 0
    htval: int = 0
    htinst: int = 0
    gva: int = 0
    virtual: int = 0
    privilege: int = 3

    @property
    def name(self) -> str:
        return EXIT_NAMES[self.reason]

    @property
    def spv(self) -> int:
        """hstatus.SPV of the trap: the V bit when it happened."""
        return self.virtual

    @property
    def mode(self) -> str:
        """The mode the exit left: "U", "S" (HS), "M", "VU" or "VS"."""
        return _MODE_NAMES[(self.virtual, self.privilege)]

    @property
    def guest_physical_address(self) -> int | None:
        """The faulting guest physical address of a guest-page fault (htval << 2,
        plus the low bits the spec leaves out, which are those of tval for an explicit
        access and zero for the VS-stage walk's own accesses), else None."""
        if self.reason != EXIT_TRAP or self.interrupt or self.cause not in GUEST_PAGE_FAULTS:
            return None
        low = 0 if self.htinst & 3 == 0 else self.tval & 3
        return (self.htval << 2) | low

    @property
    def cause_name(self) -> str:
        return cause_name(self.cause | (1 << 31 if self.interrupt else 0))

    def __str__(self) -> str:
        text = f"{self.name} at pc={self.pc:#010x}"
        if self.virtual:
            text += f" in {self.mode}-mode"
        if self.reason == EXIT_TRAP:
            text += f": {self.cause_name} (tval={self.tval:#x}"
            gpa = self.guest_physical_address
            if gpa is not None:
                text += f", guest physical address {gpa:#x}"
            text += ")"
        elif self.reason in (EXIT_MMIO_READ, EXIT_MMIO_WRITE):
            text += f": {self.size}-byte access to {self.address:#010x}"
            if self.reason == EXIT_MMIO_WRITE:
                text += f" value={self.value:#x}"
        elif self.reason == EXIT_HALT:
            text += f": exit code {self.value}"
        return text
