"""Exercise 02.2: the share of the CPU each VM is entitled to, from weights and caps.

Three to five CPU-bound VMs share one CPU under the credit scheduler; each has a weight
and some a cap (a percentage of the CPU). Weights divide the CPU in proportion; a VM
never gets more than its cap, and what a capped VM cannot take is divided among the
others by weight again, until no share is above its cap: the max-min fair division of
``metrics.expected_shares`` (Bertsekas and Gallager, "Data Networks", 2nd ed., 1992,
chapter 6). The seeded problems are ``metrics.shares_problem``: in each, at least one
cap binds.

Feedback recognises the usual slips: caps ignored, a capped VM's leftover not given
to the others (or given equally rather than by weight), caps checked only once,
percentages for fractions.
"""

from __future__ import annotations

import numbers
from fractions import Fraction

from virtkit.exercises import Exercise, register, shown
from virtkit.monitors.hypervisor.metrics import (
    SharesProblem,
    cap_limit,
    expected_shares,
    shares_problem,
    solve_shares,
)

TOLERANCE = 0.005  # of the CPU: answers rounded to two decimals pass


def _vm(index: int) -> str:
    return f"vm{index}"


def _close(got: list[float], want: list[float]) -> bool:
    return all(abs(g - w) <= TOLERANCE for g, w in zip(got, want, strict=True))


def capped_once(problem: SharesProblem, leftover_by_weight: bool = True) -> list[float]:
    """One round of capping: the VMs whose weighted offer is above their cap get the cap,
    the rest of the CPU goes to the others (by weight, or equally), with no second look."""
    weights, limits = problem.weights, [cap_limit(cap) for cap in problem.caps]
    total = sum(weights)
    offer = [Fraction(weight, total) for weight in weights]
    capped = [i for i, share in enumerate(offer) if share > limits[i]]
    left = 1 - sum(limits[i] for i in capped)
    others = [i for i in range(len(weights)) if i not in capped]
    other_weight = sum(weights[i] for i in others)
    shares = []
    for i, weight in enumerate(weights):
        if i in capped:
            shares.append(float(limits[i]))
        elif leftover_by_weight:
            shares.append(float(left * weight / other_weight))
        else:
            shares.append(float(offer[i] + (left - sum(offer[j] for j in others)) / len(others)))
    return shares


def _slip(problem: SharesProblem, got: list[float], want: list[float]) -> str | None:
    """The usual slip that gives ``got``, in a sentence, or None."""
    uncapped = expected_shares(problem.weights, [0] * len(problem.weights))
    if _close(got, uncapped):
        over = [
            f"{_vm(i)} has {share:.3f} but a cap of {cap}%"
            for i, (share, cap) in enumerate(zip(uncapped, problem.caps, strict=True))
            if cap and share > cap / 100
        ]
        return (
            f"these are the shares by weight alone, without the caps: {'; '.join(over)}. "
            "A VM never gets more than its cap"
        )
    clipped = [
        min(share, cap / 100) if cap else share
        for share, cap in zip(uncapped, problem.caps, strict=True)
    ]
    if _close(got, clipped):
        return (
            f"your shares add up to {sum(got):.3f}: you capped the VMs but left the rest of "
            "the CPU unused. CPU-bound VMs take what a capped VM cannot: divide it by weight "
            "among the VMs still below their caps"
        )
    once = capped_once(problem)
    if _close(got, once) and not _close(once, want):
        over = [
            f"{_vm(i)}'s share {share:.3f} is above its cap of {cap}%"
            for i, (share, cap) in enumerate(zip(once, problem.caps, strict=True))
            if cap and share > cap / 100 + 1e-12
        ]
        return (
            f"after the first division {'; '.join(over)}: cap it too and divide again, "
            "until no VM's share is above its cap"
        )
    equally = capped_once(problem, leftover_by_weight=False)
    if _close(got, equally) and not _close(equally, once):
        return (
            "what the capped VMs cannot take is divided among the others by weight, not in "
            "equal parts"
        )
    return None


def mistakes(problem: SharesProblem, answer) -> list[str]:
    if callable(answer):
        try:
            answer = answer(problem)
        except Exception as exc:
            return [f"your function raised {type(exc).__name__}: {exc}"]
    count = len(problem.weights)
    example = ", ".join(["0.25"] * 2 + ["..."])
    if not isinstance(answer, list | tuple) or not all(
        isinstance(share, numbers.Real) and not isinstance(share, bool) for share in answer
    ):
        return [
            f"expected a list of {count} numbers, the share of each VM in order "
            f"([{example}]), or a function returning one; got {shown(answer)}"
        ]
    if len(answer) != count:
        return [
            f"there are {count} VMs (vm0 to vm{count - 1}): give one share for each, "
            f"your list has {len(answer)}"
        ]
    got = [float(share) for share in answer]
    want = solve_shares(problem)
    if _close(got, want):
        return []
    if 1.5 < sum(got) <= 100.5:
        return [
            f"your shares add up to {sum(got):g}: give each share as a fraction of the CPU "
            "(0.25 for a quarter), not a percentage"
        ]
    wrong = [
        f"{_vm(i)}: expected {w:.3f}, got {g:.3f}"
        for i, (g, w) in enumerate(zip(got, want, strict=True))
        if abs(g - w) > TOLERANCE
    ]
    slip = _slip(problem, got, want)
    return wrong + ([slip] if slip else [])


def solved(problem: SharesProblem) -> str:
    shares = ", ".join(f"{_vm(i)} {share:.3f}" for i, share in enumerate(solve_shares(problem)))
    return f"the shares are {shares}"


EXERCISE = register(
    Exercise(
        id="02.2",
        generate=shares_problem,
        solve=solve_shares,
        mistakes=mistakes,
        solved=solved,
        hints=(
            "Without caps, each VM gets weight / (sum of all weights).",
            "A VM whose share would be above its cap gets exactly its cap. Take it out, with "
            "its cap, and divide what is left of the CPU among the others by their weights.",
            "After that division another VM may be above its cap: repeat until none is. "
            "(This is progressive filling, the max-min fair division.)",
        ),
    )
)
