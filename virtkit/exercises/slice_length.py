"""Exercise 02.3: the slice length that meets a wake-up latency bound at the lowest overhead.

n CPU-bound vCPUs share one CPU under round robin, and a world switch costs c
microseconds. Every slice of length s ends in a switch, so switching takes
c / (s + c) of the CPU: the longer the slice, the less. But a vCPU that wakes may find
the other n - 1 queued ahead of it, each running a slice after its own switch, and then
waits for its own switch: (n - 1)(s + c) + c. Of the candidate slices, the answer is the
longest whose worst wake-up latency meets the bound (``metrics.choose_slice``); Barham
et al. measured this trade-off with up to 128 domains ("Xen and the Art of
Virtualization", SOSP 2003).

The problems are ``metrics.SliceProblem``, with the bound put where a slip changes the
answer: ``metrics.slice_problem`` draws it anywhere between what the answer and the next
longer candidate need, where leaving out the world switches, or counting n vCPUs ahead
instead of n - 1, mostly gives the right slice all the same. Here even seeds put the
bound where the first slip picks a slice too long, odd seeds where the second picks one
too short.

Feedback recognises the usual slips: the world switches left out of the latency, n
vCPUs waited for instead of n - 1, milliseconds for microseconds, a slice that meets the
bound but switches more often than needed.
"""

from __future__ import annotations

import numbers
import random

from virtkit.exercises import Exercise, register, shown
from virtkit.monitors.hypervisor.metrics import (
    SLICE_CANDIDATES,
    SliceProblem,
    slice_overhead,
    solve_slice,
    worst_wakeup_latency,
)
from virtkit.monitors.hypervisor.simulation import format_time

SWITCH_COSTS = (10, 20, 50, 100)  # microseconds; the teaching cost model's is 25


def generate(seed: int) -> SliceProblem:
    rng = random.Random(f"02.3/{seed}")
    n = rng.randint(3, 16)
    c = rng.choice(SWITCH_COSTS)
    index = rng.randrange(1, len(SLICE_CANDIDATES) - 1)
    answer, longer = SLICE_CANDIDATES[index], SLICE_CANDIDATES[index + 1]
    too_long = worst_wakeup_latency(longer, c, n)  # the first bound the longer one meets
    if seed % 2 == 0:
        # Without the switches, (n - 1) * longer would seem to meet the bound.
        low, high, step = (n - 1) * longer, too_long - 1, 10
    else:
        # With n vCPUs ahead instead of n - 1, the answer would seem to miss it.
        low = worst_wakeup_latency(answer, c, n)
        high, step = min(n * (answer + c) + c, too_long) - 1, 100
    bound = rng.randint(low, high) // step * step  # a round number...
    if bound < low:
        bound = low  # ...unless that would rule the answer out
    return SliceProblem(seed, bound, c, n, SLICE_CANDIDATES)


def _longest_meeting(problem: SliceProblem, latency) -> int | None:
    """The longest candidate whose latency, by the formula ``latency``, meets the bound."""
    meeting = [s for s in problem.candidates if latency(s) <= problem.latency_bound]
    return max(meeting, default=None)


def _slip(problem: SliceProblem, answer: int) -> str | None:
    """The usual slip that gives ``answer``, in a sentence, or None."""
    n, c = problem.vcpus, problem.switch_cost
    if _longest_meeting(problem, lambda s: (n - 1) * s) == answer:
        return (
            "you left out the world switches: each of the n - 1 slices ahead of it begins "
            "with a switch, and then comes its own: (n - 1)(s + c) + c"
        )
    if _longest_meeting(problem, lambda s: n * (s + c) + c) == answer:
        return f"a waking vCPU waits for the others, n - 1 = {n - 1} of them, not for n = {n}"
    return None


def mistakes(problem: SliceProblem, answer) -> list[str]:
    if callable(answer):
        try:
            answer = answer(problem)
        except Exception as exc:
            return [f"your function raised {type(exc).__name__}: {exc}"]
    if not isinstance(answer, numbers.Integral) or isinstance(answer, bool):
        return [
            "expected one of the candidate slices in microseconds, an int such as 5000 for "
            f"5 ms (or a function returning one), got {shown(answer)}"
        ]
    answer = int(answer)
    expected = solve_slice(problem)
    if answer == expected:
        return []
    candidates = ", ".join(str(s) for s in problem.candidates)
    if answer not in problem.candidates:
        if answer * 1000 in problem.candidates:
            return [
                f"slices are in microseconds: {answer} ms is {answer * 1000}; the candidates "
                f"are {candidates}"
            ]
        return [f"{answer} is not one of the candidate slices (in microseconds): {candidates}"]
    n, c, bound = problem.vcpus, problem.switch_cost, problem.latency_bound
    latency = worst_wakeup_latency(answer, c, n)
    lines = [f"expected {expected} µs, got {answer} µs"]
    if latency > bound:
        lines.append(
            f"with a slice of {format_time(answer)} a waking vCPU may wait (n - 1)(s + c) + c "
            f"= {n - 1} x ({answer} + {c}) + {c} = {latency} µs, more than the bound of "
            f"{bound} µs"
        )
    else:
        longer = worst_wakeup_latency(expected, c, n)
        lines.append(
            f"{format_time(answer)} meets the bound, but so does {format_time(expected)} "
            f"(worst wait {longer} µs <= {bound} µs), which switches less often: "
            f"overhead c / (s + c) = {slice_overhead(expected, c):.2%} against "
            f"{slice_overhead(answer, c):.2%}"
        )
    slip = _slip(problem, answer)
    if slip:
        lines.append(slip)
    return lines


def solved(problem: SliceProblem) -> str:
    answer = solve_slice(problem)
    latency = worst_wakeup_latency(answer, problem.switch_cost, problem.vcpus)
    overhead = slice_overhead(answer, problem.switch_cost)
    return (
        f"{format_time(answer)}: a waking vCPU waits at most {format_time(latency)}, and "
        f"switching takes {overhead:.2%} of the CPU"
    )


EXERCISE = register(
    Exercise(
        id="02.3",
        generate=generate,
        solve=solve_slice,
        mistakes=mistakes,
        solved=solved,
        hints=(
            "The overhead c / (s + c) falls as the slice s grows: you want the longest slice "
            "that still meets the latency bound.",
            "Worst case: the vCPU wakes just as the other n - 1 are queued ahead of it. Each "
            "costs a world switch and a whole slice, then its own switch comes: "
            "(n - 1)(s + c) + c.",
            "Everything is in microseconds: problem.latency_bound, problem.switch_cost, and "
            "the candidates in problem.candidates.",
        ),
    )
)
