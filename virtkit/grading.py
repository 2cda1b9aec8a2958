"""Releasing exercise notebooks to students, and grading what they hand in.

The format is nbgrader's (https://nbgrader.readthedocs.io, "Developing assignments"):
an instructor notebook in exercises/source/ holds the solutions between
``### BEGIN SOLUTION`` / ``### END SOLUTION`` and gives every cell ``nbgrader`` metadata:
answer cells have ``solution: true``, check cells ``grade: true`` with their ``points``
and ``locked: true``. Its stored outputs are the expected ones.

- ``release`` writes the student version: each solution replaced by
  ``raise NotImplementedError()`` as nbgrader's ClearSolutions does, outputs cleared,
  metadata kept, so an nbgrader course can import it.
- ``grade`` takes only the answer cells from a submission (matched by ``grade_id``),
  puts them into a copy of the instructor notebook, and runs nbval on that copy in a
  separate process (``python -m virtkit.grading``). A check cell whose output matches the
  stored one earns its points. Everything else in the submission, check cells and
  stored outputs included, is ignored, so editing it cannot raise the score. Answer
  cells run in the same kernel as the checks, so before running one ``grade`` reads it
  (``tampering``) and refuses it, with the reason as its error, when it rebinds a name
  the checks use (``check``, ``hint``, ``virtkit``), assigns to an attribute of virtkit
  or of an imported checker, or calls ``exec``, ``eval``, ``setattr`` and the like. This
  stops the plain ways of faking a check from an answer; it is not a sandbox against a
  student who sets out to break out of Python.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
SOURCE_DIR = PACKAGE_ROOT / "exercises" / "source"
BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
CODE_STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")
TEXT_STUB = "YOUR ANSWER HERE"
NOT_YET = "NotYet: "  # how a check cell's error starts when the answer was wrong
CELL_TIMEOUT = 60  # seconds one cell may run under nbval before it counts as failed
NOTEBOOK_TIMEOUT = 600  # seconds for the whole nbval run of one submission
# nbval's log line when the Jupyter kernel dies before it answers: the machine's fault,
# not the submission's (two kernels started at once can pick the same free port), so
# the run is made again, up to KERNEL_START_ATTEMPTS times in all.
KERNEL_START_FAILED = "Failure starting kernel"
KERNEL_START_ATTEMPTS = 3
_CHECK_CALL = re.compile(r"""check\(\s*["']([^"']+)["']""")
# Names the check cells rely on, and calls that reach around Python's ordinary binding.
CHECKER_NAMES = frozenset({"check", "hint", "virtkit", "exercises", "evaluate"})
DYNAMIC_CALLS = frozenset(
    {"exec", "eval", "compile", "setattr", "delattr", "globals", "vars", "__import__"}
)


class GradingError(Exception):
    """A notebook or folder that cannot be released or graded, and why."""


# -- nbgrader metadata ------------------------------------------------------------------


def _nbgrader(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def is_solution(cell) -> bool:
    return bool(_nbgrader(cell).get("solution"))


def is_graded(cell) -> bool:
    return bool(_nbgrader(cell).get("grade"))


def grade_id(cell) -> str | None:
    return _nbgrader(cell).get("grade_id")


def read_notebook(path: Path):
    try:
        return nbformat.read(path, as_version=4)
    except FileNotFoundError:
        raise GradingError(f"{path}: no such file") from None
    except Exception as exc:
        raise GradingError(f"{path}: not a readable notebook ({exc})") from None


# -- release ------------------------------------------------------------------------------


def clear_solution(source: str) -> str:
    """``source`` with each BEGIN/END SOLUTION block replaced by the stub, as indented."""
    lines = source.splitlines()
    if not any(line.strip() == BEGIN_SOLUTION for line in lines):
        return "\n".join(CODE_STUB)
    kept: list[str] = []
    inside = False
    for number, line in enumerate(lines, start=1):
        if line.strip() == BEGIN_SOLUTION:
            if inside:
                raise GradingError(f"line {number}: {BEGIN_SOLUTION} inside another solution")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            kept += [indent + stub for stub in CODE_STUB]
        elif line.strip() == END_SOLUTION:
            if not inside:
                raise GradingError(f"line {number}: {END_SOLUTION} without {BEGIN_SOLUTION}")
            inside = False
        elif not inside:
            kept.append(line)
    if inside:
        raise GradingError(f"{BEGIN_SOLUTION} without {END_SOLUTION}")
    return "\n".join(kept)


def student_version(notebook):
    """The release of an instructor notebook: solutions stubbed, outputs cleared."""
    released = nbformat.from_dict(notebook)
    for cell in released.cells:
        cell.metadata.pop("execution", None)  # when the instructor's run happened
        if cell.cell_type == "code":
            if is_solution(cell):
                cell.source = clear_solution(cell.source)
            cell.outputs = []
            cell.execution_count = None
        elif is_solution(cell):
            cell.source = TEXT_STUB
    return released


def release(source_dir: Path = SOURCE_DIR, out_dir: Path | None = None) -> list[Path]:
    """Write the student version of every notebook in ``source_dir``; return their paths.

    The default ``out_dir`` is the parent of ``source_dir`` (exercises/ for
    exercises/source/).
    """
    if not source_dir.is_dir():
        raise GradingError(f"{source_dir}: no such folder of instructor notebooks")
    out_dir = source_dir.parent if out_dir is None else out_dir
    sources = sorted(source_dir.glob("*.ipynb"))
    if not sources:
        raise GradingError(f"{source_dir}: no .ipynb files to release")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for source in sources:
        try:
            released = student_version(read_notebook(source))
        except GradingError as exc:
            raise GradingError(f"{source}: {exc}") from None
        target = out_dir / source.name
        nbformat.write(released, target)
        written.append(target)
    return written


# -- grading ------------------------------------------------------------------------------


@dataclass
class ExerciseResult:
    """The points one check cell gave, and the feedback when it gave none."""

    exercise: str
    grade_id: str
    points: float
    max_points: float
    feedback: str = ""


@dataclass
class GradeReport:
    """The grade of one submission."""

    submission: str
    exercises: list[ExerciseResult] = field(default_factory=list)
    error: str = ""

    @property
    def points(self) -> float:
        return sum(result.points for result in self.exercises)

    @property
    def max_points(self) -> float:
        return sum(result.max_points for result in self.exercises)

    def line(self) -> str:
        """One line: the total and each exercise's points."""
        if self.error:
            return f"{self.submission}: not graded: {self.error}"
        parts = ", ".join(
            f"{r.exercise} {_number(r.points)}/{_number(r.max_points)}" for r in self.exercises
        )
        return f"{self.submission}: {_number(self.points)}/{_number(self.max_points)} ({parts})"

    def text(self) -> str:
        """The line, then the feedback of every exercise that lost points."""
        lines = [self.line()]
        for result in self.exercises:
            if result.feedback:
                lines.append(f"  {result.exercise}:")
                lines += [f"    {line}" for line in result.feedback.splitlines()]
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {
            "submission": self.submission,
            "points": self.points,
            "max_points": self.max_points,
            "exercises": [asdict(result) for result in self.exercises],
            "error": self.error or None,
        }


def _number(value: float) -> str:
    return f"{value:g}"


def find_source(submission, source_dir: Path) -> Path:
    """The instructor notebook that ``submission``'s answer cells belong to."""
    answers = {grade_id(cell) for cell in submission.cells if is_solution(cell)}
    best, best_overlap = None, 0
    for candidate in sorted(source_dir.glob("*.ipynb")):
        notebook = read_notebook(candidate)
        overlap = len(answers & {grade_id(c) for c in notebook.cells if is_solution(c)})
        if overlap > best_overlap:
            best, best_overlap = candidate, overlap
    if best is None:
        raise GradingError(
            f"none of the instructor notebooks in {source_dir} has this notebook's answer "
            "cells; was it made from a virtkit exercise notebook (its cells keep their "
            "nbgrader metadata)?"
        )
    return best


def tampering(source: str) -> str | None:
    """Why an answer cell may not run next to the checks, or None when it may.

    The answer may define any function or variable of its own; it may not rebind the
    names the check cells use, assign to attributes of what they import, or call the
    built-ins that do either indirectly.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None  # it runs, and the SyntaxError becomes the cell's own error
    # What the answer itself imports from virtkit is part of the checker too.
    checker = set(CHECKER_NAMES)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("virtkit"):
            checker.update(alias.asname or alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            checker.update(
                alias.asname or alias.name.split(".")[0]
                for alias in node.names
                if alias.name.startswith("virtkit")
            )
    for node in ast.walk(tree):
        match node:
            case (
                ast.FunctionDef(name=name)
                | ast.AsyncFunctionDef(name=name)
                | ast.ClassDef(name=name)
            ) if name in CHECKER_NAMES:
                return f"it defines `{name}`, a name the check cells use; choose another name"
            case ast.Name(id=name, ctx=ast.Store() | ast.Del()) if name in CHECKER_NAMES:
                return f"it assigns to `{name}`, a name the check cells use; choose another name"
            case ast.alias(name=module, asname=asname) if (asname or module) in CHECKER_NAMES:
                if not module.startswith("virtkit") or asname not in (None, "virtkit"):
                    return f"it imports something as `{asname or module}`, a name the checks use"
            case ast.Attribute(ctx=ast.Store() | ast.Del()) if _root_name(node) in checker:
                return f"it changes `{ast.unparse(node)}`, part of the checker"
            case ast.Call(func=ast.Name(id=name)) if name in DYNAMIC_CALLS:
                return f"it calls `{name}`, which the grader does not allow in an answer"
    return None


def _root_name(node: ast.expr) -> str | None:
    while isinstance(node, ast.Attribute | ast.Subscript):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def merge(instructor, submission):
    """The instructor notebook with the submission's answer cells put in.

    An answer cell the submission lacks becomes the released stub, never the solution.
    One that ``tampering`` refuses is replaced by a cell raising PermissionError with
    the reason, so the feedback says why it earned nothing. Answer cells do not have
    their output compared, only whether they raise.
    """
    answers = {}
    for cell in submission.cells:
        if cell.cell_type == "code" and is_solution(cell):
            source = cell.source
            reason = tampering(source)
            if reason is not None:
                source = f"raise PermissionError({f'not run: {reason}'!r})"
            answers.setdefault(grade_id(cell), source)
    merged = nbformat.from_dict(instructor)
    for cell in merged.cells:
        if cell.cell_type == "code" and is_solution(cell):
            cell.source = answers.get(grade_id(cell), clear_solution(cell.source))
            tags = cell.metadata.setdefault("tags", [])
            tags.append("nbval-ignore-output")
    return merged


def grade(
    submission_path: Path, source_dir: Path = SOURCE_DIR, *, label: str | None = None
) -> GradeReport:
    """Grade one submitted notebook against its instructor notebook in ``source_dir``."""
    report = GradeReport(label or str(submission_path))
    try:
        submission = read_notebook(submission_path)
        if not source_dir.is_dir():
            raise GradingError(
                f"{source_dir}: no such folder of instructor notebooks; pass --source DIR"
            )
        instructor = read_notebook(find_source(submission, source_dir))
        merged = merge(instructor, submission)
        outcomes = run_nbval(merged)
    except GradingError as exc:
        report.error = str(exc)
        return report
    report.exercises = score(merged, outcomes)
    return report


def grade_folder(
    folder: Path, source_dir: Path = SOURCE_DIR, *, jobs: int = 1
) -> list[GradeReport]:
    """Grade every .ipynb in ``folder``, ``jobs`` at a time, in name order."""
    paths = sorted(path for path in folder.glob("*.ipynb") if path.is_file())
    if not paths:
        raise GradingError(f"{folder}: no .ipynb files to grade")
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(lambda path: grade(path, source_dir, label=path.name), paths))


def score(merged, outcomes: dict[int, dict]) -> list[ExerciseResult]:
    """Points per check cell from the nbval outcome of each code cell."""
    results = []
    answers: list[int] = []  # code-cell indexes of the answers before the next check
    code_cells = [cell for cell in merged.cells if cell.cell_type == "code"]
    for index, cell in enumerate(code_cells):
        if is_solution(cell):
            answers.append(index)
        if not is_graded(cell):
            continue
        found = _CHECK_CALL.search(cell.source)
        result = ExerciseResult(
            exercise=found.group(1) if found else grade_id(cell),
            grade_id=grade_id(cell),
            points=0.0,
            max_points=float(_nbgrader(cell).get("points", 0)),
        )
        outcome = outcomes.get(index, {"passed": False, "output": "the cell did not run"})
        if outcome["passed"]:
            result.points = result.max_points
        else:
            result.feedback = _feedback(code_cells, answers, outcome, outcomes)
        results.append(result)
        answers = []
    return results


def _feedback(code_cells, answers: list[int], check: dict, outcomes: dict[int, dict]) -> str:
    """Why a check cell failed: its verdict, or the error of the answer cell before it."""
    for index in answers:
        answer = outcomes.get(index)
        if answer and answer.get("error"):
            name = grade_id(code_cells[index])
            if answer["error"].startswith("NotImplementedError"):
                return (
                    f"the answer cell {name} still raises NotImplementedError: replace "
                    "`raise NotImplementedError()` with your answer"
                )
            return f"the answer cell {name} raised {answer['error']}"
    error = check.get("error", "")
    if error.startswith(NOT_YET):
        return error.removeprefix(NOT_YET)  # the verdict: what was expected and where
    if error:
        return f"the check raised {error}"
    return check.get("output", "").strip() or "the check printed nothing"


# -- running nbval ------------------------------------------------------------------------


def run_nbval(notebook) -> dict[int, dict]:
    """Run nbval on ``notebook`` in a fresh process; the outcome of each code cell.

    Keys are code-cell indexes (nbval's "Cell N"); values say whether the cell passed,
    what it printed and, if it raised, the exception.
    """
    with tempfile.TemporaryDirectory(prefix="virtkit-grade-") as folder:
        folder = Path(folder)
        path = folder / "submission.ipynb"
        nbformat.write(notebook, path)
        # An empty ini file makes this folder pytest's root, away from any project config.
        (folder / "pytest.ini").write_text("[pytest]\n")
        results = folder / "outcomes.json"
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(PACKAGE_ROOT), env.get("PYTHONPATH")])
        )
        # Only nbval: other installed pytest plugins have no say in a grade.
        env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
        for _ in range(KERNEL_START_ATTEMPTS):
            results.unlink(missing_ok=True)
            try:
                completed = subprocess.run(
                    [sys.executable, "-m", "virtkit.grading", str(path), str(results)],
                    cwd=folder,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=NOTEBOOK_TIMEOUT,
                )
            except subprocess.TimeoutExpired:
                raise GradingError(
                    f"grading took longer than {NOTEBOOK_TIMEOUT} s; does an answer loop forever?"
                ) from None
            outcomes = json.loads(results.read_text()) if results.exists() else {}
            if outcomes or KERNEL_START_FAILED not in completed.stdout + completed.stderr:
                break
        if not outcomes:
            raise GradingError(f"nbval ran no cells:\n{completed.stdout}{completed.stderr}")
    return {int(index): outcome for index, outcome in outcomes.items()}


class _Recorder:
    """A pytest plugin that keeps the outcome and output of each nbval cell."""

    def __init__(self):
        self.outcomes: dict[int, dict] = {}

    def pytest_runtest_makereport(self, item, call):
        if call.when != "call" or not hasattr(item, "cell_num"):
            return
        output, error = [], ""
        for out in item.test_outputs or []:
            if out.get("output_type") == "stream":
                output.append(out.get("text", ""))
            elif out.get("output_type") in ("execute_result", "display_data"):
                output.append(out.get("data", {}).get("text/plain", "") + "\n")
            elif out.get("output_type") == "error":
                error = f"{out.get('ename')}: {out.get('evalue')}"
        self.outcomes[item.cell_num] = {
            "passed": call.excinfo is None,
            "output": "".join(output),
            "error": error,
        }


def _nbval_worker(notebook: str, results: str) -> int:
    """Run ``pytest --nbval`` on one notebook and write each cell's outcome as JSON."""
    import pytest

    recorder = _Recorder()
    status = pytest.main(
        [
            "-p",
            "nbval.plugin",
            "--nbval",
            "--nbval-current-env",
            f"--nbval-cell-timeout={CELL_TIMEOUT}",
            "-p",
            "no:cacheprovider",
            "-q",
            notebook,
        ],
        plugins=[recorder],
    )
    Path(results).write_text(json.dumps(recorder.outcomes))
    return int(status)


if __name__ == "__main__":
    sys.exit(_nbval_worker(*sys.argv[1:]))
