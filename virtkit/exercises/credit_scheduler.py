"""Exercise 02.1: write the two functions that make Xen's credit scheduler.

virtkit's credit scheduler (virtkit.monitors.hypervisor.credit, after Xen's
xen/common/sched/credit.c) takes its policy from two functions, which the student
writes:

- ``csched_pick(runq)``: the vCPU to run next, one of the queued ``CreditVcpu``: the
  first of the highest priority (BOOST, then UNDER, then OVER);
- ``csched_acct(active, credit_total, credits_per_tslice)``: one accounting period:
  share out ``credit_total`` credits among the active vCPUs by weight, within their
  caps, then set each one's priority, parked and active flags from its credit.

Each seed is four tinyos VMs on the type-1 hypervisor (virtkit.monitors.hypervisor):
one doing disk I/O, one capped, two computing, with credit-friendly weights (sets for
which Xen's credit1 meets its shares; credit.py says which it misses). The check runs
them twice for the same machine time, with Xen's functions and with the student's, and
passes when every VM's share of the CPU is within ``TOLERANCE`` of the reference's.

During the student's run each call is also made on a copy of its input with Xen's
function, so that a wrong answer is told the first decision that differed: the run
queue it picked from, or the accounting period, its input and both outputs.
"""

from __future__ import annotations

import copy
import functools
import random
from collections.abc import Callable
from dataclasses import dataclass

from virtkit.exercises import Exercise, register, shown
from virtkit.monitors.hypervisor import Hypervisor
from virtkit.monitors.hypervisor.credit import (
    PRIORITY_NAMES,
    CreditScheduler,
    CreditVcpu,
    csched_acct,
    csched_pick,
)
from virtkit.monitors.hypervisor.metrics import cpu_shares
from virtkit.monitors.hypervisor.scheduler import MSEC, NO_CAP
from virtkit.monitors.hypervisor.simulation import format_time

TSLICE_MS = 3  # a short slice and accounting period: 40 periods in a run
DURATION = 120 * MSEC  # machine time; a run takes about a second of host time
DISK_LATENCY = 500  # microseconds: the I/O VM blocks long enough to wake up often
TOLERANCE = 0.03  # of the CPU: three percentage points
FOREVER = "compute n=100000"  # CPU-bound for far longer than any run here
IO = "io n=1000"  # writes and reads disk blocks, blocking on each, for the whole run
# Weight sets Xen's credit1 gives their shares to within a few percent (credit.py).
WEIGHT_SETS = ((128, 256, 384, 512), (256, 512, 768, 256), (256, 256, 512, 512))
CAPS = (10, 20, 30, 40)  # percent: whole credits per 3 ms period (3, 6, 9, 12)
NAMES = ("io", "capped", "cpu1", "cpu2")


@dataclass(frozen=True)
class VmSpec:
    name: str
    workload: str
    weight: int
    cap: int = NO_CAP

    def describe(self) -> str:
        cap = f", cap {self.cap}%" if self.cap else ""
        return f"{self.name} ({self.workload}, weight {self.weight}{cap})"


@dataclass(frozen=True)
class CreditProblem:
    """Four VMs under the credit scheduler with a student's csched_pick and csched_acct."""

    seed: int
    vms: tuple[VmSpec, ...]
    tslice_ms: int = TSLICE_MS
    duration: int = DURATION

    def hypervisor(self, pick=csched_pick, acct=csched_acct) -> Hypervisor:
        """The VMs booted on a hypervisor whose credit scheduler uses ``pick`` and ``acct``."""
        scheduler = CreditScheduler(tslice_ms=self.tslice_ms, pick=pick, acct=acct)
        hypervisor = Hypervisor(scheduler, disk_latency=DISK_LATENCY)
        for vm in self.vms:
            hypervisor.add_vm(vm.name, vm.workload, weight=vm.weight, cap=vm.cap)
        return hypervisor

    def run(self, pick=csched_pick, acct=csched_acct) -> Hypervisor:
        """Boot the VMs and run them for ``duration``: to try your functions with
        ``print(problem.run(my_pick, my_acct).report())``."""
        hypervisor = self.hypervisor(pick, acct)
        hypervisor.run(self.duration)
        return hypervisor

    def __repr__(self) -> str:
        lines = [
            f"Exercise 02.1 (seed {self.seed}): {len(self.vms)} tinyos VMs run for "
            f"{format_time(self.duration)} of machine time under the credit scheduler "
            f"({self.tslice_ms} ms slice and accounting period) with your csched_pick and "
            "csched_acct:",
        ]
        lines += [f"  {vm.describe()}" for vm in self.vms]
        return "\n".join(lines)


def generate(seed: int) -> CreditProblem:
    rng = random.Random(f"02.1/{seed}")
    weights = list(rng.choice(WEIGHT_SETS))
    rng.shuffle(weights)
    capped = NAMES.index("capped")
    if weights[capped] / sum(weights) < 0.2:  # an offer well above the smallest cap
        largest = weights.index(max(weights))
        weights[capped], weights[largest] = weights[largest], weights[capped]
    offer = weights[capped] / sum(weights)
    cap = rng.choice([cap for cap in CAPS if cap / 100 <= offer - 0.05])
    workloads = (IO, FOREVER, FOREVER, FOREVER)
    caps = (NO_CAP, cap, NO_CAP, NO_CAP)
    vms = tuple(map(VmSpec, NAMES, workloads, weights, caps))
    return CreditProblem(seed, vms)


def solve(problem: CreditProblem) -> tuple[Callable, Callable]:
    return csched_pick, csched_acct


@functools.lru_cache(maxsize=16)
def reference_shares(problem: CreditProblem) -> dict[str, float]:
    """Each VM's share of the CPU with Xen's functions (cached: always the same)."""
    return cpu_shares(problem.run().timeline())


# -- Running the student's functions, comparing each call with Xen's ---------------------


class AnswerFailed(Exception):
    """The student's function raised, or returned what the scheduler cannot use."""

    def __init__(self, lines: list[str]):
        super().__init__("\n".join(lines))
        self.lines = lines


def priority(value) -> str:
    return PRIORITY_NAMES.get(value, shown(value)) if isinstance(value, int) else shown(value)


def unit_text(unit: CreditVcpu) -> str:
    """``cpu1 (weight 512, cap 20%): credit -12, OVER, parked``: what a decision sees."""
    cap = f", cap {unit.cap}%" if unit.cap else ""
    flags = ", parked" if unit.parked else ""
    flags += "" if unit.active else ", inactive"
    return (
        f"{unit.vcpu.name} (weight {unit.weight}{cap}): credit {shown(unit.credit)}, "
        f"{priority(unit.pri)}{flags}"
    )


def outcome_text(unit: CreditVcpu) -> str:
    """What an accounting period leaves: credit, priority, and the flags it sets."""
    flags = [priority(unit.pri)]
    flags.append("parked" if unit.parked else "not parked")
    flags.append("active" if unit.active else "off the active list")
    return f"credit {shown(unit.credit)}, {', '.join(flags)}"


PICK_RULE = (
    "Xen's csched_pick takes the first vCPU of the highest priority: BOOST (0) before "
    "UNDER (-1) before OVER (-2), and among equals the one queued first"
)


class Recorder:
    """The student's two functions wrapped: each call is also made with Xen's on a copy
    of the same input, and the first call whose outcome differs is written down."""

    def __init__(self, pick: Callable, acct: Callable):
        self.pick_function = pick
        self.acct_function = acct
        self.hypervisor: Hypervisor | None = None
        self.first_difference: list[str] | None = None

    def now(self) -> str:
        return format_time(self.hypervisor.now) if self.hypervisor else "0 µs"

    def pick(self, runq: list[CreditVcpu]) -> CreditVcpu:
        queue = "[" + "; ".join(unit_text(unit) for unit in runq) + "]"
        expected = csched_pick(list(runq))
        try:
            chosen = self.pick_function(list(runq))  # a copy: the queue stays the scheduler's
        except Exception as error:
            raise AnswerFailed(
                [
                    f"at {self.now()} your csched_pick raised {type(error).__name__}: {error}",
                    f"  the run queue was {queue}",
                ]
            ) from None
        if not any(chosen is unit for unit in runq):
            raise AnswerFailed(
                [
                    f"at {self.now()} your csched_pick returned {shown(chosen)}, which is not on "
                    f"the run queue {queue}",
                    "  return one of the CreditVcpu in runq itself (not its name, not a copy)",
                ]
            )
        if chosen is not expected and self.first_difference is None:
            self.first_difference = [
                f"the first decision that differs from Xen's: at {self.now()} your "
                f"csched_pick chose {chosen.vcpu.name} from the run queue {queue}; Xen's "
                f"chooses {expected.vcpu.name}",
                f"  {PICK_RULE}",
            ]
        return chosen

    def acct(self, active: list[CreditVcpu], credit_total: int, credits_per_tslice: int) -> None:
        when = format_time(self.hypervisor.scheduler.next_acct) if self.hypervisor else "?"
        units = list(active)  # the scheduler's own; the function may reorder the list
        inputs = [copy.copy(unit) for unit in units]
        expected = [copy.copy(unit) for unit in units]
        csched_acct(list(expected), credit_total, credits_per_tslice)
        call = (
            f"csched_acct(active, credit_total={credit_total}, "
            f"credits_per_tslice={credits_per_tslice}) at {when}"
        )
        listing = [f"    {unit_text(unit)}" for unit in inputs]
        try:
            self.acct_function(active, credit_total, credits_per_tslice)
        except Exception as error:
            raise AnswerFailed(
                [f"your {call} raised {type(error).__name__}: {error}", "  active was:", *listing]
            ) from None
        if self.first_difference is not None:
            return
        for before, want, have in zip(inputs, expected, units, strict=True):
            wrong = acct_differences(before, want, have, credits_per_tslice)
            if wrong:
                self.first_difference = [
                    f"the first decision that differs from Xen's: your {call}, with active:",
                    *listing,
                    *wrong,
                ]
                return


def acct_differences(
    before: CreditVcpu, want: CreditVcpu, have: CreditVcpu, credits_per_tslice: int
) -> list[str]:
    """How the student's accounting of one vCPU differs from Xen's, and what to change."""
    name = before.vcpu.name
    fields = ("credit", "pri", "parked", "active")
    if all(getattr(want, field) == getattr(have, field) for field in fields):
        return []
    lines = [f"  {name}: Xen's leaves {outcome_text(want)}; yours {outcome_text(have)}"]
    if want.credit != have.credit:
        lines.append(f"  {credit_advice(before, want, have, credits_per_tslice)}")
    elif want.pri != have.pri:
        lines.append(
            "  the priority follows the credit after earning: OVER (-2) below 0, "
            "otherwise UNDER (-1); this also ends a BOOST"
        )
    elif want.parked != have.parked:
        limit = -(-before.cap * credits_per_tslice // 100)
        lines.append(
            f"  a capped vCPU is parked (parked = True) when its credit is below minus one "
            f"period's cap, -ceil(cap * credits_per_tslice / 100) = -{limit}, and unparked "
            "(parked = False) when its credit is 0 or more"
        )
    else:
        lines.append(
            f"  a vCPU with more than credits_per_tslice ({credits_per_tslice}) credit is not "
            "using what it earns: it leaves the active list (active = False) and its credit "
            "is halved"
        )
    return lines


def credit_advice(
    before: CreditVcpu, want: CreditVcpu, have: CreditVcpu, credits_per_tslice: int
) -> str:
    """The likeliest reason the student's credit differs from Xen's, in one sentence."""
    if have.credit == before.credit:
        return "it earned nothing: add its part of credit_total to unit.credit"
    if want.credit == -credits_per_tslice and have.credit < want.credit:
        return (
            f"the credit never stays below -credits_per_tslice (-{credits_per_tslice}): "
            "raise it to that"
        )
    if not want.active and have.active:
        return (
            f"its credit passed credits_per_tslice ({credits_per_tslice}): it leaves the "
            "active list (active = False) and its credit is halved (credit //= 2)"
        )
    if before.cap:
        limit = -(-before.cap * credits_per_tslice // 100)
        return (
            f"capped at {before.cap}%, it may earn at most ceil(cap * credits_per_tslice / "
            f"100) = {limit} credits a period, however large its weight; what it cannot take "
            "goes to the vCPUs after it in the list"
        )
    earned_want, earned_have = want.credit - before.credit, have.credit - before.credit
    return (
        f"it should earn {shown(earned_want)} credits this period, yours gave it "
        f"{shown(earned_have)}: its weight's part of credit_total (credit_total * weight / "
        "the active vCPUs' total weight, rounded up), plus its part of what capped vCPUs "
        "earlier in the list could not take"
    )


def student_run(problem: CreditProblem, pick: Callable, acct: Callable):
    """Run the problem's VMs with the student's functions: (shares, recorder, failure)."""
    recorder = Recorder(pick, acct)
    hypervisor = problem.hypervisor(recorder.pick, recorder.acct)
    recorder.hypervisor = hypervisor
    try:
        hypervisor.run(problem.duration)
    except AnswerFailed as failed:
        return None, recorder, failed.lines
    except Exception as error:  # the scheduler choked on what the functions left behind
        return (
            None,
            recorder,
            [
                f"at {recorder.now()} the credit scheduler failed after your functions ran: "
                f"{type(error).__name__}: {error}",
                "  pri must be one of the integers BOOST (0), UNDER (-1), OVER (-2); credit "
                "an int; parked and active True or False",
            ],
        )
    return cpu_shares(hypervisor.timeline()), recorder, None


def percent(share: float) -> str:
    return f"{share:.1%}"


def mistakes(problem: CreditProblem, answer) -> list[str]:
    if not _is_pair_of_functions(answer):
        return [
            "expected the pair of your two functions, (csched_pick, csched_acct), "
            f"got {shown(answer)}"
        ]
    pick, acct = answer
    shares, recorder, failure = student_run(problem, pick, acct)
    if failure is not None:
        return failure
    expected = reference_shares(problem)
    if all(abs(shares[name] - expected[name]) <= TOLERANCE for name in expected):
        return []
    lines = [
        f"with your functions the VMs' shares of the CPU in {format_time(problem.duration)} "
        f"differ from those with Xen's by more than {TOLERANCE * 100:g} percentage points:"
    ]
    lines += [
        f"  {name}: {percent(shares[name])} (with Xen's functions {percent(expected[name])})"
        for name in expected
    ]
    lines += recorder.first_difference or [
        "every decision agreed with Xen's on the same input; does your csched_pick change "
        "the vCPUs it is given?"
    ]
    return lines


def solved(problem: CreditProblem) -> str:
    shares = reference_shares(problem)
    given = ", ".join(f"{name} {percent(share)}" for name, share in shares.items())
    return (
        f"in {format_time(problem.duration)} the VMs got the shares Xen's credit scheduler "
        f"gives them (within {TOLERANCE * 100:g} points): {given}"
    )


def _is_pair_of_functions(answer) -> bool:
    return isinstance(answer, tuple | list) and len(answer) == 2 and all(map(callable, answer))


EXERCISE = register(
    Exercise(
        id="02.1",
        generate=generate,
        solve=solve,
        mistakes=mistakes,
        solved=solved,
        hints=(
            "csched_pick: the highest priority wins (BOOST = 0 > UNDER = -1 > OVER = -2); "
            "among equals the one queued first. max(runq, key=...) returns the first of equals.",
            "csched_acct, step 1: weight_total = sum of the active vCPUs' weights; each earns "
            "ceil(credit_total * weight / weight_total) (ceil_div in credit.py), added to "
            "unit.credit.",
            "A capped vCPU earns at most ceil(cap * credits_per_tslice / 100) a period; add "
            "what it could not take to credit_total, scaled up for the vCPUs after it: "
            "credit_total += ceil((fair - peak) * weight_total / weight_left).",
            "Step 2: credit < 0 -> OVER (parked too if capped and below minus its cap's "
            "credits; never below -credits_per_tslice); otherwise UNDER and not parked, and "
            "above credits_per_tslice it leaves the active list with its credit halved.",
        ),
        generalizes=_is_pair_of_functions,
    )
)
