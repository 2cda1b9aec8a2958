"""Looking at a full-virtualization monitor from outside: its exits, and its two page tables.

For lessons, widgets and exercise checks; nothing here changes what the monitor does.

    recorder = ExitRecorder(monitor)       # one row per VM exit, as TrapRecorder keeps
    monitor.run(until=100_000)             # for a bare hart
    for row in recorder.rows[:5]: print(row)

    print(compare_walks(monitor, 0x0001_0000, "load"))

``ExitRecorder`` rows are ``virtkit.cpu.trace.TrapRow``s, so ``virtkit.ui.TrapLog`` shows
them: the guest pc (a guest pc even when the hart was in translated code), the virtual
mode the guest was in, the exit's cause and instruction, and what the monitor did
about it, in the monitor's own words (the names it counts exits by in
``monitor.exits``, and the traps it reflected into the guest, ``monitor.reflected``).

``guest_walk`` is the Sv32 walk (privileged spec 20211203, 4.3.2) through the guest's
own tables: guest virtual -> guest physical, with the guest's satp and sstatus, in
guest-physical memory. ``shadow_walk`` is the walk the hart really does: guest virtual
-> host physical, through the shadow table of one view. ``compare_walks`` puts them
side by side with the monitor's guest-physical map in between: the shadow entry is
right when the two ends meet.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from virtkit.cpu import exits as E
from virtkit.cpu import sv32
from virtkit.cpu.trace import TrapRow
from virtkit.isa import causes as C
from virtkit.isa.disasm import disassemble
from virtkit.monitors.memory import PAGE_SHIFT, PAGE_SIZE

SATP_MODE_SV32 = 1 << 31
FETCH_FAULTS = (C.CAUSE_FETCH_PAGE_FAULT, C.CAUSE_FETCH_ACCESS, C.CAUSE_MISALIGNED_FETCH)


class ExitRecorder:
    """Keeps one ``TrapRow`` per VM exit of ``monitor`` (a FullVirtMonitor), oldest first.

    It wraps the monitor's ``vcpu.run`` (the one call through which every exit comes):
    each exit is written down when the hart returns it, and what the monitor did about
    it when the next exit comes (or when ``rows`` is read). ``limit`` rows are kept;
    ``dropped`` counts the older ones. ``detach()`` stops recording.
    """

    def __init__(self, monitor, limit: int = 10_000):
        self.monitor = monitor
        self.limit = limit
        self._rows: list[TrapRow] = []
        self.dropped = 0
        self._sequence = 0
        self._pending: tuple[dict, Counter, Counter] | None = None
        self._run = monitor.vcpu.run
        monitor.vcpu.run = self._run_and_record

    def detach(self) -> None:
        """Stop recording: the monitor's vCPU runs as before."""
        self._finish()
        if self.monitor.vcpu.run == self._run_and_record:
            del self.monitor.vcpu.run

    def clear(self) -> None:
        self._finish()
        self._rows.clear()
        self.dropped = 0
        self._sequence = 0

    @property
    def rows(self) -> list[TrapRow]:
        self._finish()
        return self._rows

    def counts(self) -> dict[str, int]:
        """Rows by what the monitor did, for a bar chart."""
        return dict(Counter(row.handled_by for row in self.rows))

    # -- recording ----------------------------------------------------------------------------
    def _run_and_record(self, budget: int):
        self._finish()
        exit = self._run(budget)
        if exit.reason != E.EXIT_BUDGET:
            monitor = self.monitor
            self._pending = (
                self._describe(exit),
                Counter(monitor.exits),
                Counter(monitor.reflected),
            )
        return exit

    def _describe(self, exit: E.Exit) -> dict:
        monitor = self.monitor
        vcpu = monitor.vcpu
        translator = monitor.translator
        pc, word, callout = exit.pc, exit.instruction, None
        if translator is not None and vcpu.mode == "S" and translator.contains(pc):
            # Translated code: name the guest instruction, not the translation cache.
            callout = translator.callouts.get(pc) if exit.cause == C.CAUSE_USER_ECALL else None
            guest = translator.guest_pc(pc)
            pc = guest if guest is not None else translator.owner_pc(pc)
            pc = exit.pc if pc is None else pc
            word = self._guest_instruction(pc)
        if callout is not None:
            kind, cause, tval = "call-out", callout.kind, 0
        elif exit.reason == E.EXIT_TRAP:
            kind, cause, tval = "trap", exit.cause_name, exit.tval
        elif exit.reason in (E.EXIT_MMIO_READ, E.EXIT_MMIO_WRITE):
            kind = "MMIO " + ("read" if exit.reason == E.EXIT_MMIO_READ else "write")
            cause, tval = f"{exit.size}-byte access to {exit.address:#010x}", exit.address
        else:
            kind, cause, tval = exit.name, exit.name.lower(), 0
        fetch_fault = exit.reason == E.EXIT_TRAP and exit.cause in FETCH_FAULTS
        if exit.interrupt or fetch_fault or word is None:
            text = ""  # nothing was fetched, or the guest's code is not mapped
        else:
            text = disassemble(word, pc)
        return {
            "instret": sum(vcpu.instructions.values()),
            "pc": pc,
            "mode": f"guest {vcpu.mode}",
            "kind": kind,
            "cause": cause,
            "tval": tval,
            "instruction": text,
        }

    def _guest_instruction(self, pc: int) -> int | None:
        """The guest kernel's instruction at ``pc``, read through its own tables."""
        walk = guest_walk(self.monitor, pc, "fetch", "S")
        if not walk.ok or walk.pa not in self.monitor.memory:
            return None
        return self.monitor.memory.read_word(walk.pa & ~3)

    def _finish(self) -> None:
        """Write down what the monitor did about the pending exit."""
        if self._pending is None:
            return
        fields, exits_before, reflected_before = self._pending
        self._pending = None
        monitor = self.monitor
        done = [name for name, count in monitor.exits.items() if count > exits_before[name]]
        for name, count in monitor.reflected.items():
            if count > reflected_before[name]:
                if any(name in part for part in done):
                    done = [f"{part} -> reflected into the guest kernel" for part in done]
                else:
                    done.append(f"delivered to the guest kernel: {name}")
        self._sequence += 1
        self._rows.append(TrapRow(self._sequence, handled_by="; ".join(done) or "-", **fields))
        if len(self._rows) > self.limit:
            del self._rows[0]
            self.dropped += 1


# -- The guest's page tables and the shadow tables ----------------------------------------------


class _WalkView:
    """What ``virtkit.cpu.sv32.walk`` reads of a hart, over other memory and another satp.

    The walk reads satp and mstatus (SUM, MXR), the current mode, PTEs with
    ``read_word`` inside [ram_base, ram_base + ram_size), and the PMP, which is the real
    hart's (the monitor opens it all).
    """

    def __init__(self, hart, read_word, satp, mstatus, mode, ram_base, ram_size):
        self.arrays = hart.arrays
        self.csr = {"satp": satp, "mstatus": mstatus}
        self.read_word = read_word
        self.mode = mode
        self.ram_base = ram_base
        self.ram_size = ram_size


def guest_walk(monitor, va: int, access: str = "load", mode: str | None = None) -> sv32.Walk:
    """The walk of ``va`` through the guest's own tables: guest virtual -> guest physical.

    ``mode`` is the guest's privilege for the access ("S" or "U"; by default the virtual
    mode it is in now). Addresses in the result are guest-physical.
    """
    vcpu, memory = monitor.vcpu, monitor.memory
    view = _WalkView(
        monitor.hart,
        memory.read_word,
        vcpu.slot("satp"),
        vcpu.slot("sstatus"),  # SUM and MXR sit where they do in mstatus
        mode or vcpu.mode,
        memory.base,
        memory.size,
    )
    return sv32.walk(view, va, access, view.mode)


def shadow_walk(monitor, va: int, access: str = "load", view: str | None = None) -> sv32.Walk:
    """The walk the hart does for ``va`` through the shadow table of ``view`` ("kernel"
    for guest S, "user" for guest U; by default the one in use): guest virtual -> host
    physical, in U-mode, where the hart runs the guest."""
    shadow, hart = monitor.shadow, monitor.hart
    table = shadow.table(view)
    walker = _WalkView(
        hart,
        hart.read_word,
        SATP_MODE_SV32 | table.root,
        hart.csr["mstatus"],
        "U",
        hart.ram_base,
        hart.ram_size,
    )
    return sv32.walk(walker, va, access, "U")


def host_address(monitor, gpa: int) -> int | None:
    """Where guest-physical ``gpa`` is in host memory (the monitor's map), or None."""
    gppn = gpa >> PAGE_SHIFT
    hppn = monitor.memory.host_page(gppn)
    if hppn is None and monitor.board.is_device_page(gppn):
        hppn = gppn  # the emulated devices stay where the guest sees them
    return None if hppn is None else (hppn << PAGE_SHIFT) | (gpa & (PAGE_SIZE - 1))


@dataclass(frozen=True)
class WalkComparison:
    """The guest's walk, the monitor's map and the shadow walk of one address."""

    va: int
    access: str
    view: str
    guest: sv32.Walk
    hpa: int | None  # the guest's physical address through the monitor's map
    shadow: sv32.Walk

    @property
    def verdict(self) -> str:
        guest, shadow = self.guest, self.shadow
        if not guest.ok:
            if shadow.ok:
                return "WRONG: the guest's tables fault, but the shadow lets the access through"
            return "both fault: the monitor reflects the fault into the guest kernel"
        if self.hpa is None:
            return "the guest's address is outside its RAM: an access fault for the guest"
        if not shadow.ok:
            return (
                "not in the shadow yet: the access faults on the hart, the monitor walks "
                "the guest's tables and fills the shadow entry (a hidden fault)"
            )
        if shadow.pa == self.hpa:
            return "they agree: the shadow entry maps va where the guest's tables and the map say"
        return (
            f"WRONG: the shadow reaches {shadow.pa:#010x}, the guest's page is at {self.hpa:#010x}"
        )

    def __str__(self) -> str:
        guest_end = f"gpa {self.guest.pa:#010x}" if self.guest.ok else self.guest.fault_name
        map_end = "-" if self.hpa is None else f"hpa {self.hpa:#010x}"
        shadow_end = f"hpa {self.shadow.pa:#010x}" if self.shadow.ok else self.shadow.fault_name
        return "\n".join(
            [
                f"{self.access} of va {self.va:#010x} by guest {self.guest.mode}:",
                f"  guest's tables:   va -> {guest_end}",
                f"  monitor's map:   gpa -> {map_end}",
                f"  shadow ({self.view} view): va -> {shadow_end}",
                f"  {self.verdict}",
            ]
        )


def compare_walks(
    monitor, va: int, access: str = "load", mode: str | None = None
) -> WalkComparison:
    """``va`` through the guest's tables and the map, and through the shadow of the view
    that the guest's ``mode`` ("S" or "U", by default the current one) runs with."""
    mode = mode or monitor.vcpu.mode
    view = "kernel" if mode == "S" else "user"
    guest = guest_walk(monitor, va, access, mode)
    hpa = host_address(monitor, guest.pa) if guest.ok else None
    return WalkComparison(va, access, view, guest, hpa, shadow_walk(monitor, va, access, view))
