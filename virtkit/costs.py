"""The cost model: what a run would cost on real hardware, in cycles, event by event.

virtkit runs guests in an interpreter and monitors in Python, so wall-clock time says
nothing about what virtualization costs on a real machine. Instead, every monitor
counts what happened (instructions by mode, VM exits, emulated instructions, shadow
page-table updates, ...) on a ``Meter`` and a ``CostModel`` prices each kind of event
in cycles. The same workload run natively is priced the same way, so the overhead of a
monitor is a ratio of two modelled cycle counts, deterministic and comparable.

It is a model, and deliberately a simple one: one price per event, no caches, no
pipelines, no overlap. Real costs vary by processor generation by an order of
magnitude (compare the presets). What the model keeps is the proportion that drives
every design decision in the lessons: an instruction costs one cycle, a trap tens, a
VM exit or a world switch thousands.

    meter = Meter()
    meter.charge("vm_exit", 3)
    meter.charge("instruction", 1000)
    cost = PRESETS["teaching"]
    cost.cycles(meter)               # 1000 * 1 + 3 * 1360
    cost.breakdown(meter)            # cycles by event

Every figure names its source: a published measurement, or, marked "assumed", a judgement
set against the measured ones where no one has timed that step alone. ``CostModel.table()``
prints them all.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

# -- The events a monitor charges --------------------------------------------------------------
EVENTS: dict[str, str] = {
    "instruction": "one guest instruction run on the hart (any mode)",
    "trap_round_trip": "a trap taken in hardware and its xRET, without the handler's work",
    "vm_exit": "a VM exit and the re-entry: guest -> monitor -> guest, state saved and restored",
    "world_switch": "a switch between the guest's world and the host's (a user-space VMM)",
    "tlb_flush": "a TLB flush itself (the refills after it are charged as page walk steps)",
    "page_walk_step": "one page-table entry read by a hardware walker or by the monitor",
    "emulated_instruction": "decoding and emulating one guest instruction in the monitor",
    "hypercall": "serving one call from the guest kernel (SBI call), on top of its exit",
    "mmio_exit": "decoding a device register access and running the device model",
    "shadow_pte_update": "writing one shadow page-table entry",
    "callout": "translated code calling into the monitor (no trap, no world switch)",
    "translated_instruction": "the binary translator translating one guest instruction",
}


class CostModelError(ValueError):
    """An unknown event or preset; the message lists the known ones."""


@dataclass(frozen=True)
class Figure:
    """One price: ``cycles`` per event, and where the number comes from."""

    cycles: float
    source: str


@dataclass(frozen=True)
class CostModel:
    """A named set of prices, one ``Figure`` per event of EVENTS."""

    name: str
    description: str
    figures: Mapping[str, Figure]

    def __post_init__(self):
        missing = set(EVENTS) - set(self.figures)
        unknown = set(self.figures) - set(EVENTS)
        if missing or unknown:
            raise CostModelError(
                f"cost model {self.name!r}: missing figures {sorted(missing)}, "
                f"unknown events {sorted(unknown)}; the events are {sorted(EVENTS)}"
            )

    def price(self, event: str) -> float:
        if event not in self.figures:
            raise CostModelError(f"unknown event {event!r}; the events are {sorted(EVENTS)}")
        return self.figures[event].cycles

    def breakdown(self, meter: Meter) -> dict[str, float]:
        """Modelled cycles by event, for the events that happened."""
        return {event: count * self.price(event) for event, count in meter.counts.items()}

    def cycles(self, meter: Meter) -> float:
        """Modelled cycles of everything on ``meter``."""
        return sum(self.breakdown(meter).values())

    def table(self) -> str:
        """Every figure with its source, one line each."""
        width = max(len(event) for event in EVENTS)
        lines = [f"{self.name}: {self.description}"]
        for event in EVENTS:
            figure = self.figures[event]
            lines.append(f"  {event:<{width}} {figure.cycles:>7g}  {figure.source}")
        return "\n".join(lines)


class Tally(Counter):
    """A Counter for counts that go up on every VM exit (events, exits by cause).

    Counter defines ``__delitem__`` in Python, to ignore a missing key. CPython serves
    ``del c[key]`` and ``c[key] = n`` through one type slot, so that makes every store
    into a Counter go through a Python-level lookup too, at about twice a dict's cost.
    Deleting as a dict does (a missing key raises KeyError) keeps stores in C.
    """

    __delitem__ = dict.__delitem__


@dataclass
class Meter:
    """Counts of events, charged as they happen; priced later by a CostModel."""

    counts: Counter = field(default_factory=Tally)

    def charge(self, event: str, count: int = 1) -> None:
        if event not in EVENTS:
            raise CostModelError(f"unknown event {event!r}; the events are {sorted(EVENTS)}")
        if count:
            self.counts[event] += count

    def __getitem__(self, event: str) -> int:
        return self.counts[event]


# -- Sources ---------------------------------------------------------------------------------
_HART = (
    "virtkit's hart: one retired instruction is one tick of its clock (virtkit.cpu.core), "
    "the CPI of a classic in-order scalar pipeline without stalls"
)
_RISCV_TRAP = (
    "a RISC-V trap enters its handler after a pipeline flush, 'typically 2-3 cycles', "
    "with nothing saved by hardware (EEVblog forum, 'How are interrupt handlers "
    "implemented?', 2022, quoting the RISC-V fast-interrupt (CLIC) discussion); x2 for "
    "the trap and its SRET"
)
_KVM_SVM_2020 = (
    "Michael Roth, LKML 2020-12 'KVM: SVM: use vmsave/vmload for saving/restoring "
    "additional host state' (lkml.iu.edu/hypermail/linux/kernel/2012.2/00527): TSC "
    "samples of one KVM_RUN on AMD EPYC, pre-VMRUN to post-#VMEXIT"
)
_SPLITX_2011 = (
    "Landau, Ben-Yehuda, Gordon, 'SplitX: Split Guest/Hypervisor Execution on Multi-Core', "
    "WIOV 2011, Table 1: 'The direct cost on its own is high: 2,000 cycles' (KVM on a "
    "Xeon X5570, EPT and VPID on)"
)
_WALK = (
    "a PTE read that hits the data cache: '20-50 cycles for a cached page walk' of "
    "x86-64's four levels (onedfrk newsletter on TLBs), about 10 a level"
)
_FLUSH = (
    "a flush is one instruction; its real cost is the refills after it, which the hart "
    "counts as TLB misses and the model prices as page walk steps (Sv32: 2 each)"
)
# The figures below are not measurements: no paper times these steps on their own. Each
# is an assumption, set against the measured ones above and marked "assumed".
_EMULATE = (
    "assumed: decoding and emulating one privileged instruction in a monitor written in "
    "C, a few hundred instructions, about a sixth of the exit it follows (1,360)"
)
_HYPERCALL = (
    "assumed: the service work of one SBI call, like emulating one instruction (its exit "
    "is charged as vm_exit)"
)
_MMIO = (
    "the work between the bare exit and the user-space VMM in the same measurement, "
    f"{2528 - 1360} cycles: decoding the access and reaching the device model; " + _KVM_SVM_2020
)
_SHADOW = "assumed: a shadow PTE is a few instructions and one store once the walk is priced"
_CALLOUT = (
    "assumed: translated code calls the monitor instead of trapping (Adams and Agesen, "
    "'A Comparison of Software and Hardware Techniques for x86 Virtualization', ASPLOS "
    "2006, 3.2): a call and return plus bookkeeping, no privilege change"
)
_TRANSLATE = (
    "assumed: decoding, emitting and bookkeeping for one guest instruction; translation is "
    "paid once per block and amortised over its runs (Adams and Agesen 2006, 3.2)"
)

_TEACHING = {
    "instruction": Figure(1, _HART),
    "trap_round_trip": Figure(6, _RISCV_TRAP),
    "vm_exit": Figure(1360, "1,344-1,376 cycles; " + _KVM_SVM_2020),
    "world_switch": Figure(
        2528, "the whole KVM_RUN ioctl, user space -> guest -> user space; " + _KVM_SVM_2020
    ),
    "tlb_flush": Figure(0, _FLUSH),
    "page_walk_step": Figure(10, _WALK),
    "emulated_instruction": Figure(200, _EMULATE),
    "hypercall": Figure(200, _HYPERCALL),
    "mmio_exit": Figure(1168, _MMIO),
    "shadow_pte_update": Figure(20, _SHADOW),
    "callout": Figure(50, _CALLOUT),
    "translated_instruction": Figure(300, _TRANSLATE),
}

PRESETS: dict[str, CostModel] = {
    "teaching": CostModel(
        "teaching",
        "a 2020 x86 server's exit costs (KVM on AMD EPYC) with a RISC-V in-order core's traps",
        _TEACHING,
    ),
    "nehalem-2011": CostModel(
        "nehalem-2011",
        "a 2009 Nehalem server under KVM with EPT: the same, with the dearer exits of then",
        {
            **_TEACHING,
            "vm_exit": Figure(2000, _SPLITX_2011),
            "world_switch": Figure(
                2000 + 2528 - 1360,
                "the 2011 exit plus the user-space part of a KVM_RUN round trip; " + _SPLITX_2011,
            ),
        },
    ),
}
DEFAULT_PRESET = "teaching"


def preset(name: str | CostModel = DEFAULT_PRESET) -> CostModel:
    """The preset called ``name`` (a CostModel is returned as it is)."""
    if isinstance(name, CostModel):
        return name
    if name not in PRESETS:
        raise CostModelError(f"unknown cost model {name!r}; the presets are {sorted(PRESETS)}")
    return PRESETS[name]


# -- Reports ---------------------------------------------------------------------------------


@dataclass
class RunReport:
    """What one run did and what the model says it cost.

    ``instructions_by_mode`` is keyed by the mode the guest believed it ran in ("S",
    "U"); ``exits_by_cause`` counts VM exits (empty for a native run);
    ``events`` every charged event. ``cycles`` is the modelled total.
    """

    label: str
    model: CostModel
    instructions_by_mode: dict[str, int]
    exits_by_cause: dict[str, int]
    events: Meter
    details: dict[str, int] = field(default_factory=dict)

    @property
    def instructions(self) -> int:
        return sum(self.instructions_by_mode.values())

    @property
    def exits(self) -> int:
        return sum(self.exits_by_cause.values())

    @property
    def cycles(self) -> float:
        return self.model.cycles(self.events)

    def overhead(self, native: RunReport) -> float:
        """Modelled cycles of this run over those of the native run (1.0 = no overhead)."""
        if native.cycles == 0:
            raise ValueError(f"the native run {native.label!r} has no modelled cycles")
        return self.cycles / native.cycles

    def summary(self, native: RunReport | None = None) -> str:
        """A few lines for a person: instructions, exits by cause, cycles, overhead."""
        modes = ", ".join(f"{mode} {count:,}" for mode, count in self.instructions_by_mode.items())
        lines = [f"{self.label}: {self.instructions:,} instructions ({modes})"]
        if self.exits_by_cause:
            lines.append(f"  {self.exits:,} exits:")
            for cause, count in sorted(self.exits_by_cause.items(), key=lambda kv: -kv[1]):
                lines.append(f"    {count:>9,}  {cause}")
        for name, value in self.details.items():
            lines.append(f"  {name}: {value:,}")
        text = f"  modelled cycles ({self.model.name}): {self.cycles:,.0f}"
        if native is not None:
            text += f", {self.overhead(native):.2f}x the native run"
        lines.append(text)
        return "\n".join(lines)


def native_report(
    hart, model: str | CostModel = DEFAULT_PRESET, label: str = "native"
) -> RunReport:
    """The cost of what a hart ran by itself (a Machine's hart, without a monitor).

    Instructions in S and U, every trap taken as a hardware trap round trip (the
    firmware's SBI calls included: on a real board they are M-mode code), and every
    TLB miss as a two-step Sv32 walk.
    """
    stats = hart.stats
    meter = Meter()
    meter.charge("instruction", stats["instructions"])
    meter.charge("trap_round_trip", sum(stats["traps_by_cause"].values()))
    meter.charge("page_walk_step", 2 * stats["tlb_misses"])
    by_mode = {mode: count for mode, count in stats["instructions_by_mode"].items()}
    return RunReport(label, preset(model), by_mode, {}, meter)
