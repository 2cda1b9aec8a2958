"""Graded exercises: seeded problems that can pose themselves and compute their own answer.

The idea is that of the OSTEP homework simulators: every exercise is a pure generator
``generate(seed) -> problem`` and a ``solve(problem) -> answer``, so a problem can be
reproduced from its seed and checked without a person in the loop. The notebook shows
one seed; ``check`` tries it and, when the answer is a function or a program, a few
fixed other seeds as well, so an answer that only fits the shown problem is caught.

In a notebook::

    from virtkit.exercises import check, hint, problem
    problem("00.1")                 # the problem the notebook shows
    check("00.1", answer)           # prints the verdict, or raises NotYet with it
    hint("00.1")                    # the next hint

Verdicts are deterministic text (no object addresses, no times): the stored output of
an instructor's check cell is the text a correct answer prints, which grading compares
with nbval (see virtkit.grading). A wrong answer raises ``NotYet``, so the check cell
fails in every grader, including those that only look for exceptions (nbgrader).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

SHOWN_SEED = 0  # the seed a notebook shows unless it asks for another
OTHER_SEEDS = (101, 202, 303)  # also tried when the answer is a function or a program


@dataclass(frozen=True)
class Exercise:
    """One exercise: how to pose it, solve it and explain a wrong answer.

    ``mistakes(problem, answer)`` takes whatever the student wrote (a value, a function,
    a program), judges it on ``problem`` and returns what is wrong as sentences a student
    can act on; an empty list means correct. ``solved(problem)`` is the one line a
    correct answer prints. ``generalizes(answer)`` says whether the answer can also be
    tried on other seeds (it is a function or a program, not a value for one problem).
    """

    id: str
    generate: Callable[[int], Any]
    solve: Callable[[Any], Any]
    mistakes: Callable[[Any, Any], list[str]]
    solved: Callable[[Any], str]
    hints: tuple[str, ...]
    generalizes: Callable[[Any], bool] = callable


@dataclass(frozen=True)
class Verdict:
    """The outcome of checking one answer: passed or not, and why."""

    exercise_id: str
    seed: int
    passed: bool
    lines: tuple[str, ...] = field(default_factory=tuple)

    def __str__(self) -> str:
        return "\n".join(self.lines)


# The modules that register exercises; imported on first use, so that importing this
# package (the command line does) does not load the hart.
MODULES = (
    "decode",
    "sv32",
    "trap_handler",
    "credit_scheduler",
    "entitled_shares",
    "slice_length",
    "classify",
    "emulate_csr",
    "reflect_trap",
    "shadow_pte",
)
REGISTRY: dict[str, Exercise] = {}
_hints_shown: dict[str, int] = {}


def shown(value) -> str:
    """``value`` as feedback shows it: the repr of plain data, otherwise only its type.

    Another object's repr may hold its address, and a verdict must print the same text
    on every run.
    """
    if value is None or isinstance(value, str | int | float | bool | tuple | list | dict):
        return repr(value)
    return f"a value of type {type(value).__name__}"


def register(exercise: Exercise) -> Exercise:
    if exercise.id in REGISTRY:
        raise ValueError(f"exercise {exercise.id} is registered twice")
    REGISTRY[exercise.id] = exercise
    return exercise


def _import_all() -> None:
    for module in MODULES:
        importlib.import_module(f"virtkit.exercises.{module}")


def exercise_ids() -> list[str]:
    """Every exercise, in order: ["00.1", "00.2", ...]."""
    _import_all()
    return sorted(REGISTRY)


def get(exercise_id: str) -> Exercise:
    """The exercise called ``exercise_id`` ("00.1"), with a clear error for a typo."""
    if exercise_id not in REGISTRY:
        _import_all()
    try:
        return REGISTRY[exercise_id]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise KeyError(f"there is no exercise {exercise_id!r}; the exercises are {known}") from None


def problem(exercise_id: str, seed: int = SHOWN_SEED):
    """The problem of ``exercise_id`` for ``seed``; the same seed gives the same problem."""
    return get(exercise_id).generate(seed)


def solve(exercise_id: str, seed: int = SHOWN_SEED):
    """The correct answer to ``problem(exercise_id, seed)``."""
    exercise = get(exercise_id)
    return exercise.solve(exercise.generate(seed))


def evaluate(exercise_id: str, answer, seed: int | None = None) -> Verdict:
    """Judge ``answer`` without printing; ``check`` prints what this returns.

    The shown seed is tried first. An answer that generalizes (a function, a program)
    is then tried on OTHER_SEEDS, and the first seed it gets wrong is reported.
    """
    exercise = get(exercise_id)
    shown = SHOWN_SEED if seed is None else seed
    seeds = [shown]
    if exercise.generalizes(answer):
        seeds += [other for other in OTHER_SEEDS if other != shown]
    for current in seeds:
        posed = exercise.generate(current)
        wrong = exercise.mistakes(posed, answer)
        if wrong:
            where = "" if current == shown else f" (on another problem, seed {current})"
            header = f"{exercise_id} not yet{where}:"
            return Verdict(exercise_id, current, False, (header, *(f"  {w}" for w in wrong)))
    solved = exercise.solved(exercise.generate(shown))
    return Verdict(exercise_id, shown, True, (f"{exercise_id} correct: {solved}",))


class NotYet(AssertionError):
    """A wrong answer: what ``check`` raises, carrying the verdict.

    Raising, not just printing, lets graders that score a check cell by whether it
    raises (nbgrader's autograde, otter-grader) see the failure as virtkit's own
    ``grade`` does. Jupyter shows the verdict alone, without a traceback: IPython prints
    what an exception's ``_render_traceback_`` returns instead of the traceback.
    """

    def __init__(self, verdict: Verdict):
        super().__init__(str(verdict))
        self.verdict = verdict

    def _render_traceback_(self) -> list[str]:
        return str(self.verdict).splitlines()


def check(exercise_id: str, answer, seed: int | None = None) -> None:
    """Print the verdict on a right ``answer``; raise ``NotYet`` with the verdict (what was
    expected, what came back, and where) on a wrong one."""
    verdict = evaluate(exercise_id, answer, seed)
    if not verdict.passed:
        raise NotYet(verdict)
    print(verdict)


def hint(exercise_id: str) -> None:
    """Print the next hint of ``exercise_id``; each call reveals one more."""
    hints = get(exercise_id).hints
    shown = _hints_shown.get(exercise_id, 0)
    if shown == len(hints):
        print(f"{exercise_id}: no more hints ({len(hints)} of {len(hints)} shown).")
        return
    _hints_shown[exercise_id] = shown + 1
    print(f"{exercise_id} hint {shown + 1} of {len(hints)}: {hints[shown]}")


def reset_hints() -> None:
    """Start every exercise's hints from the first again."""
    _hints_shown.clear()


__all__ = [
    "REGISTRY",
    "Exercise",
    "NotYet",
    "Verdict",
    "check",
    "evaluate",
    "exercise_ids",
    "get",
    "hint",
    "problem",
    "reset_hints",
    "solve",
]
