"""Measuring a scheduler: shares against entitlements, fairness, latency, world switches.

The measurements of issue 9, as plain functions of a ``simulation.Timeline`` (the
hypervisor's runs of real VMs produce the same kind of timeline), and the two seeded
problems of the graded exercises:

- **Entitlement**: the share of the CPU a vCPU is promised. Weights divide the CPU in
  proportion; a cap, or a demand smaller than the offer (an I/O-bound VM does not want
  more), limits a vCPU, and what it leaves is divided among the others by weight again:
  the max-min fair division, computed by progressive filling (Bertsekas and Gallager,
  "Data Networks", 2nd ed., 1992, chapter 6, max-min fairness; here with weights).
  ``expected_shares`` is it for CPU-bound VMs.
- **Jain's fairness index** (Jain, Chiu and Hawe, "A Quantitative Measure of Fairness
  and Discrimination for Resource Allocation in Shared Computer Systems", DEC-TR-301,
  1984): ``(sum x)^2 / (n * sum x^2)``, 1 when all x are equal, 1/n when one has
  everything. Applied, as the paper suggests, to each vCPU's share divided by its
  entitlement.
- **Wake-up latency**: from an interrupt making a vCPU runnable to its dispatch.
- **World switches** and what they cost. The simulation gives them no time; with a cost
  ``c`` per switch and slices of length ``s`` that all end in a switch, the CPU loses
  ``c / (s + c)`` to switching, and a vCPU that wakes behind ``n - 1`` busy ones waits
  up to ``(n - 1)(s + c) + c``. Short slices buy latency with overhead; Barham et al.
  measured it with up to 128 domains ("Xen and the Art of Virtualization", SOSP 2003).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from virtkit.monitors.hypervisor.scheduler import MAX_CAP, NO_CAP
from virtkit.monitors.hypervisor.simulation import Timeline, format_time

# -- Entitlement ----------------------------------------------------------------------


def max_min_shares(
    weights: Sequence[int], limits: Sequence[Fraction | int | float]
) -> list[Fraction]:
    """Divide one CPU by ``weights``, no vCPU above its limit (a fraction of the CPU).

    Progressive filling: offer every vCPU not yet settled its weighted part of what is
    left; those whose limit is below the offer get their limit and are settled; repeat
    until every offer is within its limit. Exact (fractions).
    """
    if len(weights) != len(limits):
        raise ValueError(f"{len(weights)} weights but {len(limits)} limits: give one of each")
    if any(weight <= 0 for weight in weights):
        raise ValueError(f"weights must be positive, got {list(weights)}")
    limits = [Fraction(limit) for limit in limits]
    shares = [Fraction(0)] * len(weights)
    unsettled = list(range(len(weights)))
    left = Fraction(1)
    while unsettled:
        weight_total = sum(weights[i] for i in unsettled)
        offer = {i: left * weights[i] / weight_total for i in unsettled}
        limited = [i for i in unsettled if limits[i] < offer[i]]
        if not limited:
            for i in unsettled:
                shares[i] = offer[i]
            break
        for i in limited:
            shares[i] = limits[i]
            left -= limits[i]
            unsettled.remove(i)
    return shares


def cap_limit(cap: int) -> Fraction:
    """A cap as a fraction of one CPU: 20 -> 1/5; 0 (no cap) -> the whole CPU."""
    if not isinstance(cap, int) or not 0 <= cap <= MAX_CAP:
        raise ValueError(
            f"a cap is a percentage of one CPU from 0 (no cap) to {MAX_CAP}, got {cap!r}"
        )
    return Fraction(1) if cap == NO_CAP else Fraction(cap, 100)


def expected_shares(weights: Sequence[int], caps: Sequence[int]) -> list[float]:
    """The share of one CPU each of these CPU-bound VMs is entitled to.

    ``weights`` as Xen's (relative), ``caps`` in percent of one CPU (0: none). For
    example weights (256, 256, 512) and caps (0, 10, 0): the offer is 1/4, 1/4, 1/2;
    the second VM is capped at 0.10, and the remaining 0.90 is divided 1:2, so the
    shares are 0.30, 0.10, 0.60.
    """
    if len(weights) != len(caps):
        raise ValueError(f"{len(weights)} weights but {len(caps)} caps: give one of each")
    return [float(share) for share in max_min_shares(weights, [cap_limit(cap) for cap in caps])]


def entitlements(timeline: Timeline) -> dict[str, float]:
    """What the timeline's scheduler promises each vCPU, given its weight, cap and demand.

    Only the parameters the scheduler honours count: under round robin every weight is
    equal and no cap applies; under stride, caps do not apply.
    """
    specs = timeline.vcpus
    weights = [spec.weight if "weight" in timeline.parameters else 1 for spec in specs]
    limits = [
        min(spec.demand.demand(), cap_limit(spec.cap if "cap" in timeline.parameters else NO_CAP))
        for spec in specs
    ]
    shares = max_min_shares(weights, limits)
    return {spec.name: float(share) for spec, share in zip(specs, shares, strict=True)}


# -- What happened --------------------------------------------------------------------


def cpu_time(timeline: Timeline) -> dict[str, int]:
    """Microseconds of CPU each vCPU got."""
    used = {spec.name: 0 for spec in timeline.vcpus}
    for run in timeline.runs:
        used[run.vcpu] += run.end - run.start
    return used


def cpu_shares(timeline: Timeline) -> dict[str, float]:
    """The fraction of the whole run each vCPU had the CPU."""
    return {name: used / timeline.duration for name, used in cpu_time(timeline).items()}


def jain_index(values: Sequence[float]) -> float:
    """Jain's fairness index of ``values``: (sum x)^2 / (n sum x^2), from 1/n to 1."""
    if not values:
        raise ValueError("Jain's index of no values is undefined: give at least one")
    if any(value < 0 for value in values):
        raise ValueError(f"Jain's index takes allocations, which are not negative: {list(values)}")
    squares = sum(value * value for value in values)
    if squares == 0:
        raise ValueError("Jain's index is undefined when every allocation is 0")
    return sum(values) ** 2 / (len(values) * squares)


def fairness(timeline: Timeline) -> float:
    """Jain's index of share / entitlement over the vCPUs entitled to something."""
    shares = cpu_shares(timeline)
    entitled = entitlements(timeline)
    return jain_index([shares[name] / entitled[name] for name in shares if entitled[name] > 0])


def wakeup_latencies(timeline: Timeline) -> dict[str, list[int]]:
    """For each vCPU, how long each of its wake-ups waited for the CPU (microseconds)."""
    latencies: dict[str, list[int]] = {spec.name: [] for spec in timeline.vcpus}
    for wakeup in timeline.wakeups:
        latencies[wakeup.vcpu].append(wakeup.latency)
    return latencies


def world_switches(timeline: Timeline) -> int:
    """How many times the CPU was given to a vCPU other than the one it last ran.

    The first dispatch loads a vCPU too, and counts. A vCPU that blocks and is the next
    to run again costs no switch: its state is still on the CPU.
    """
    switches = 0
    last = None
    for run in timeline.runs:
        if run.vcpu != last:
            switches += 1
            last = run.vcpu
    return switches


def world_switch_overhead(timeline: Timeline, switch_cost: int) -> float:
    """The fraction of the CPU's busy time world switches would take at ``switch_cost`` each."""
    spent = world_switches(timeline) * switch_cost
    busy = sum(cpu_time(timeline).values()) + spent
    return spent / busy if busy else 0.0


# -- The slice-length trade-off ---------------------------------------------------------


def slice_overhead(time_slice: int, switch_cost: int) -> float:
    """The CPU lost to switching when every slice of ``time_slice`` ends in a world switch."""
    _check_slice_terms(time_slice, switch_cost)
    return switch_cost / (time_slice + switch_cost)


def worst_wakeup_latency(time_slice: int, switch_cost: int, vcpus: int) -> int:
    """The longest a vCPU waits for the CPU after waking, among ``vcpus`` vCPUs in all.

    Without BOOST (round robin, or credit when the waker is OVER), it may wake just as
    the ``vcpus - 1`` others are queued ahead of it: each runs a whole slice after its
    world switch, and then its own world switch comes: (vcpus - 1)(slice + cost) + cost.
    """
    _check_slice_terms(time_slice, switch_cost)
    if not isinstance(vcpus, int) or vcpus < 1:
        raise ValueError(f"the number of vCPUs must be a positive integer, got {vcpus!r}")
    return (vcpus - 1) * (time_slice + switch_cost) + switch_cost


def choose_slice(
    latency_bound: int,
    switch_cost: int,
    vcpus: int,
    candidates: Sequence[int] | None = None,
) -> int:
    """The slice with the lowest switch overhead whose worst wake-up latency meets the bound.

    Overhead falls as the slice grows and latency rises, so this is the longest slice
    with ``worst_wakeup_latency(slice, switch_cost, vcpus) <= latency_bound``: the
    longest of ``candidates`` if given, otherwise the longest whole number of
    microseconds. Raises ValueError when no slice meets the bound.
    """
    if not isinstance(vcpus, int) or vcpus < 2:
        raise ValueError(
            f"choose_slice needs at least 2 vCPUs (with one, nothing waits), got {vcpus!r}"
        )
    if candidates is not None:
        meeting = [
            s for s in candidates if worst_wakeup_latency(s, switch_cost, vcpus) <= latency_bound
        ]
        if not meeting:
            raise ValueError(
                f"no slice of {list(candidates)} keeps the worst wake-up latency of {vcpus} "
                f"vCPUs within {format_time(latency_bound)} at {format_time(switch_cost)} a switch"
            )
        return max(meeting)
    longest = (latency_bound - switch_cost) // (vcpus - 1) - switch_cost
    if longest < 1:
        raise ValueError(
            f"no slice keeps the worst wake-up latency of {vcpus} vCPUs within "
            f"{format_time(latency_bound)}: the world switches alone take longer"
        )
    return longest


def _check_slice_terms(time_slice: int, switch_cost: int) -> None:
    if not isinstance(time_slice, int) or time_slice < 1:
        raise ValueError(f"the slice must be a positive number of microseconds, got {time_slice!r}")
    if not isinstance(switch_cost, int) or switch_cost < 0:
        raise ValueError(
            "the world-switch cost must be a whole number of microseconds, 0 or more, "
            f"got {switch_cost!r}"
        )


# -- Seeded problems for the graded exercises ------------------------------------------


@dataclass(frozen=True)
class SharesProblem:
    """What share of the CPU does each of these CPU-bound VMs get? (``expected_shares``)"""

    seed: int
    weights: tuple[int, ...]
    caps: tuple[int, ...]

    def __repr__(self) -> str:
        vms = ", ".join(
            f"vm{i}: weight {weight}" + (f", cap {cap}%" if cap else "")
            for i, (weight, cap) in enumerate(zip(self.weights, self.caps, strict=True))
        )
        return (
            f"Expected shares (seed {self.seed}): CPU-bound VMs on one CPU under the credit "
            f"scheduler, {vms}. What fraction of the CPU does each get?"
        )


def shares_problem(seed: int) -> SharesProblem:
    """Three to five VMs, one or two of them capped, at least one cap below its offer."""
    rng = random.Random(f"hypervisor.shares/{seed}")
    while True:
        count = rng.randint(3, 5)
        weights = tuple(rng.choice((64, 128, 256, 256, 512, 768, 1024)) for _ in range(count))
        caps = [NO_CAP] * count
        for vm in rng.sample(range(count), rng.randint(1, 2)):
            caps[vm] = rng.choice((5, 10, 15, 20, 25, 30, 40, 50))
        uncapped = expected_shares(weights, [NO_CAP] * count)
        if any(cap and cap / 100 < share for cap, share in zip(caps, uncapped, strict=True)):
            return SharesProblem(seed, weights, tuple(caps))


def solve_shares(problem: SharesProblem) -> list[float]:
    return expected_shares(problem.weights, problem.caps)


SLICE_CANDIDATES = (500, 1000, 2000, 5000, 10_000, 20_000, 30_000, 50_000, 100_000)


@dataclass(frozen=True)
class SliceProblem:
    """Which slice meets the latency bound at the lowest switch overhead? (``choose_slice``)"""

    seed: int
    latency_bound: int
    switch_cost: int
    vcpus: int
    candidates: tuple[int, ...]

    def __repr__(self) -> str:
        slices = ", ".join(format_time(s) for s in self.candidates)
        return (
            f"Slice length (seed {self.seed}): {self.vcpus} CPU-bound vCPUs share one CPU under "
            f"round robin, a world switch costs {format_time(self.switch_cost)}, and a vCPU that "
            f"wakes must run within {format_time(self.latency_bound)}. Of the slices {slices}, "
            "which has the lowest switching overhead?"
        )


def slice_problem(seed: int) -> SliceProblem:
    """3 to 16 vCPUs; a bound that one candidate meets and the next longer one does not."""
    rng = random.Random(f"hypervisor.slice/{seed}")
    vcpus = rng.randint(3, 16)
    switch_cost = rng.choice((5, 10, 20, 50, 100))
    answer = rng.randrange(len(SLICE_CANDIDATES) - 1)
    lowest = worst_wakeup_latency(SLICE_CANDIDATES[answer], switch_cost, vcpus)
    highest = worst_wakeup_latency(SLICE_CANDIDATES[answer + 1], switch_cost, vcpus) - 1
    bound = rng.randint(lowest, highest) // 100 * 100  # a round number...
    if bound < lowest:
        bound = lowest  # ...unless that would rule the answer out
    return SliceProblem(seed, bound, switch_cost, vcpus, SLICE_CANDIDATES)


def solve_slice(problem: SliceProblem) -> int:
    return choose_slice(
        problem.latency_bound, problem.switch_cost, problem.vcpus, problem.candidates
    )


# -- A text summary ---------------------------------------------------------------------


def summary(timeline: Timeline, switch_cost: int | None = None) -> str:
    """A table of the timeline: share against entitlement per vCPU, fairness, latency, switches.

    Deterministic text (fixed widths and roundings), for notebooks under nbval and for
    comparing a simulated run with a real one. ``switch_cost`` (microseconds) adds what
    the world switches would have cost.
    """
    shares = cpu_shares(timeline)
    entitled = entitlements(timeline)
    latencies = wakeup_latencies(timeline)
    lines = [
        f"{timeline.scheduler} scheduler, {len(timeline.vcpus)} vCPUs, "
        f"{format_time(timeline.duration)} simulated",
        f"{'vCPU':<10} {'weight':>6} {'cap':>4}  {'demand':<30} {'share':>6} {'entitled':>8} "
        f"{'wake-ups':>8} {'latency mean/max':>20}",
    ]
    for spec in timeline.vcpus:
        name = spec.name
        cap = f"{spec.cap}%" if spec.cap else "-"
        waits = latencies[name]
        latency = (
            f"{format_time(sum(waits) // len(waits))} / {format_time(max(waits))}" if waits else "-"
        )
        lines.append(
            f"{name:<10} {spec.weight:>6} {cap:>4}  {spec.demand.describe():<30} "
            f"{shares[name]:>6.1%} {entitled[name]:>8.1%} {len(waits):>8} {latency:>20}"
        )
    idle = max(0.0, 1 - sum(shares.values()))  # rounding must not print "-0.0%"
    lines.append(f"idle: {idle:.1%}")
    lines.append(f"Jain's fairness index (share / entitlement): {fairness(timeline):.4f}")
    switches = world_switches(timeline)
    per_second = switches * 1_000_000 / timeline.duration
    line = f"world switches: {switches} ({per_second:.1f} a second)"
    if switch_cost is not None:
        overhead = world_switch_overhead(timeline, switch_cost)
        line += f"; at {format_time(switch_cost)} each, {overhead:.2%} of the busy CPU"
    lines.append(line)
    return "\n".join(lines)
