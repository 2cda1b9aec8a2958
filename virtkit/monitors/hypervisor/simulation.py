"""A discrete-event model of vCPUs sharing one CPU under any scheduler.

No guest code runs here: each vCPU is a demand pattern (always computing; computing a
while then waiting for I/O; spinning with interrupts off), and ``simulate`` drives a
``Scheduler`` with it through the same calls the hypervisor's dispatch loop makes. The
result is a ``Timeline``: which vCPU ran when, the run queue at each dispatch, and every
wake-up with the time the vCPU waited for the CPU. The lesson draws its Gantt chart from
it, the tests check the schedulers with it, and the hypervisor's measurements of real
VMs are compared with it.

Time is an integer number of microseconds of simulated time, from 0; nothing depends on
the host's clock, so the same inputs give the same timeline. Events at the same instant
are handled in a fixed order: the running vCPU is charged, blocks if its burst is done,
then the vCPUs due to wake wake in the order they were given.

World switches cost no simulated time: like virtkit's monitors, which run outside the
guest's clock, their cost is modelled apart (``metrics.world_switch_overhead``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import NamedTuple

from virtkit.monitors.hypervisor.scheduler import (
    DEFAULT_WEIGHT,
    NO_CAP,
    Scheduler,
    check_share,
    check_time,
)

# -- Demand patterns ----------------------------------------------------------------------


@dataclass(frozen=True)
class CpuBound:
    """Always runnable: a compute job that never waits."""

    def burst(self) -> int | None:
        """CPU time until the vCPU blocks; None: never."""
        return None

    def wait(self) -> int:
        """How long it stays blocked after a burst."""
        raise AssertionError("a CPU-bound vCPU never blocks")

    def demand(self) -> Fraction:
        """The largest share of the CPU it could use: all of it."""
        return Fraction(1)

    def describe(self) -> str:
        return "CPU-bound"


@dataclass(frozen=True)
class IoBound:
    """Runs ``run`` microseconds, then blocks ``block`` microseconds (an I/O), and again."""

    run: int
    block: int

    def __post_init__(self):
        check_time("IoBound.run", self.run)
        check_time("IoBound.block", self.block)

    def burst(self) -> int | None:
        return self.run

    def wait(self) -> int:
        return self.block

    def demand(self) -> Fraction:
        """At most run / (run + block): waiting for the CPU only lengthens its cycle."""
        return Fraction(self.run, self.run + self.block)

    def describe(self) -> str:
        return f"I/O: run {format_time(self.run)}, block {format_time(self.block)}"


@dataclass(frozen=True)
class Spinner(CpuBound):
    """A misbehaving guest: spins forever with interrupts disabled, never executes WFI.

    To a scheduler it is a vCPU that never blocks: the guest cannot stop the
    hypervisor's timer, which is the resource control Popek and Goldberg ask of a VMM
    (CACM 17(7), 1974), so the only question is whether the policy holds it to its share.
    """

    def describe(self) -> str:
        return "spinner"


Demand = CpuBound | IoBound | Spinner


@dataclass(eq=False)
class VcpuSpec:
    """A vCPU as the model sees it: a name, a demand pattern, and its weight and cap."""

    name: str
    demand: Demand = field(default_factory=CpuBound)
    weight: int = DEFAULT_WEIGHT
    cap: int = NO_CAP

    def __post_init__(self):
        check_share(self, self.weight, self.cap)

    def __repr__(self) -> str:
        demand = self.demand.describe()
        return f"VcpuSpec({self.name!r}, {demand}, weight={self.weight}, cap={self.cap})"


# -- The timeline -------------------------------------------------------------------------


class Run(NamedTuple):
    """``vcpu`` ran from ``start`` to ``end``; ``runq`` was waiting when it was dispatched."""

    start: int
    end: int
    vcpu: str
    runq: tuple[str, ...]


class Wakeup(NamedTuple):
    """``vcpu`` woke at ``woke`` and was dispatched at ``dispatched``."""

    vcpu: str
    woke: int
    dispatched: int

    @property
    def latency(self) -> int:
        return self.dispatched - self.woke


@dataclass(frozen=True)
class Timeline:
    """Who ran when under ``scheduler`` over ``[0, duration)``.

    ``runs`` are in time order and never overlap; consecutive runs of the same vCPU
    without a gap are one run. ``parameters`` are the share parameters the scheduler
    honours (``Scheduler.parameters``). Wake-ups still waiting for the CPU at the end
    are not in ``wakeups``.
    """

    scheduler: str
    parameters: tuple[str, ...]
    duration: int
    vcpus: tuple[VcpuSpec, ...]
    runs: tuple[Run, ...]
    wakeups: tuple[Wakeup, ...]


# -- The simulation -----------------------------------------------------------------------


@dataclass(eq=False)
class _VcpuState:
    """Where one vCPU is in its demand pattern."""

    spec: VcpuSpec
    burst_left: int | None  # CPU time before it blocks; None: never blocks
    wake_at: int | None = None  # when it wakes, while blocked
    woke_at: int | None = None  # when it last woke, until it is dispatched


def simulate(scheduler: Scheduler, vcpus: list[VcpuSpec], duration: int) -> Timeline:
    """Run ``vcpus`` under ``scheduler`` for ``duration`` microseconds; return the timeline.

    ``scheduler`` must be fresh (no vCPUs added). Every vCPU starts runnable at time 0.
    """
    check_time("the simulation's duration", duration)
    if not isinstance(scheduler, Scheduler):
        raise TypeError(
            f"{type(scheduler).__name__} is not a scheduler: it needs name, parameters, add, "
            "remove, block, wake, pick, account and run_queue (see scheduler.Scheduler)"
        )
    names = [spec.name for spec in vcpus]
    if len(set(names)) != len(names):
        raise ValueError(f"vCPU names must differ, got {names}")

    states = {spec: _VcpuState(spec, spec.demand.burst()) for spec in vcpus}
    for spec in vcpus:
        scheduler.add(spec, weight=spec.weight, cap=spec.cap)

    runs: list[Run] = []
    wakeups: list[Wakeup] = []
    now = 0
    while now < duration:
        vcpu, budget = scheduler.pick(now)
        _check_budget(scheduler, vcpu, budget)
        next_wake = min(
            (state.wake_at for state in states.values() if state.wake_at is not None),
            default=duration,
        )
        if vcpu is None:  # idle until a wake-up or the scheduler's next timer
            now = min(next_wake, duration if budget is None else now + budget, duration)
            _wake_due(scheduler, states, now)
            continue

        # Dispatch: a new run on the timeline, unless the same vCPU simply goes on.
        state = states[vcpu]
        if state.woke_at is not None:
            wakeups.append(Wakeup(vcpu.name, state.woke_at, now))
            state.woke_at = None
        end = min(now + budget, next_wake, duration)
        if state.burst_left is not None:
            end = min(end, now + state.burst_left)
        if runs and runs[-1].vcpu == vcpu.name and runs[-1].end == now:
            runs[-1] = runs[-1]._replace(end=end)
        else:
            queued = tuple(queued.name for queued in scheduler.run_queue())
            runs.append(Run(now, end, vcpu.name, queued))

        # Execute until the budget is spent, the burst ends or another vCPU wakes.
        ran, now = end - now, end
        scheduler.account(vcpu, ran, now)
        if state.burst_left is not None:
            state.burst_left -= ran
            if state.burst_left == 0:
                scheduler.block(vcpu, now)
                state.wake_at = now + vcpu.demand.wait()
        _wake_due(scheduler, states, now)

    return Timeline(
        scheduler=scheduler.name,
        parameters=tuple(scheduler.parameters),
        duration=duration,
        vcpus=tuple(vcpus),
        runs=tuple(runs),
        wakeups=tuple(wakeups),
    )


def _check_budget(scheduler: Scheduler, vcpu, budget: int | None) -> None:
    """A budget must let time move on, or the simulation would never end."""
    if budget is None and vcpu is None:
        return
    if not isinstance(budget, int) or budget < 1:
        chose = "nothing" if vcpu is None else f"vCPU {vcpu.name}"
        raise ValueError(
            f"the {scheduler.name} scheduler's pick chose {chose} with budget {budget!r}: "
            "a budget must be a positive number of microseconds (None only when idle)"
        )


def _wake_due(scheduler: Scheduler, states: dict[VcpuSpec, _VcpuState], now: int) -> None:
    """Wake every blocked vCPU whose wait is over by ``now``, in the order they were given."""
    for spec, state in states.items():
        if state.wake_at is not None and state.wake_at <= now:
            state.wake_at = None
            state.woke_at = now
            state.burst_left = spec.demand.burst()
            scheduler.wake(spec, now)


def format_time(microseconds: int) -> str:
    """Exact and short: 500 -> "500 µs", 1500 -> "1.5 ms", 30000 -> "30 ms"."""
    if microseconds < 1000:
        return f"{microseconds} µs"
    milliseconds, rest = divmod(microseconds, 1000)
    if rest == 0:
        return f"{milliseconds} ms"
    return f"{milliseconds}.{rest:03d}".rstrip("0") + " ms"
