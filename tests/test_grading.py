"""Releasing exercise notebooks and grading submissions with nbval.

Grading starts a kernel per notebook, so the submissions are graded once, together, as
a folder with two jobs (which also tests folder grading and --json), and each test
reads its report.
"""

import argparse
import json
import subprocess
from pathlib import Path

import nbformat
import pytest

from virtkit import exercises, grading
from virtkit.exercises.cli import add_commands

SOURCE = grading.SOURCE_DIR / "00_the_machine.ipynb"
RELEASED = grading.SOURCE_DIR.parent / "00_the_machine.ipynb"
FULL_MARKS = {"00.1": 2.0, "00.2": 3.0, "00.3": 5.0}
SOURCE_02 = grading.SOURCE_DIR / "02_hypervisor.ipynb"
RELEASED_02 = grading.SOURCE_DIR.parent / "02_hypervisor.ipynb"
FULL_MARKS_02 = {"02.1": 5.0, "02.2": 2.0, "02.3": 3.0}
# Exercises 04 run every answer inside the full-virtualization monitor: only the two
# submissions that matter most are graded (the rest of the format is tested on 00).
SOURCE_04 = grading.SOURCE_DIR / "04_full_virtualization.ipynb"
RELEASED_04 = grading.SOURCE_DIR.parent / "04_full_virtualization.ipynb"
FULL_MARKS_04 = {"04.1": 2.0, "04.2": 3.0, "04.3": 3.0, "04.4": 4.0}
SOURCES = [SOURCE, SOURCE_04]

# Correct answers written differently from the instructor's.
OTHER_DECODE = """\
from virtkit.isa.disasm import instruction_fields

def decode(word):
    fields = instruction_fields(word)
    return {k: v for k, v in fields.items() if k not in ("extension", "format", "opcode")}

answer_00_1 = decode
"""
OTHER_TRANSLATE = f"answer_00_2 = {exercises.solve('00.2'):#x}  # worked out on paper\n"
OTHER_HANDLER = '''\
answer_00_3 = """
trap_handler:
    csrw mscratch, a0          # a0 is the user's: keep it safe
    csrr a0, mcause
    li t0, 8                   # environment call from U-mode
    bne a0, t0, done
    la t0, ecall_count
    li t1, 1
    amoadd.w zero, t1, (t0)
    csrr t0, mepc
    addi t0, t0, 4
    csrw mepc, t0
done:
    csrr a0, mscratch
    mret
"""
'''


def cells_by_id(notebook):
    return {grading.grade_id(cell): cell for cell in notebook.cells}


def with_answers(notebook, answers):
    """A copy of ``notebook`` with the answer cells named in ``answers`` replaced."""
    copy = nbformat.from_dict(notebook)
    cells = cells_by_id(copy)
    for grade_id, source in answers.items():
        cells[grade_id].source = source
    return copy


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    folder = tmp_path_factory.mktemp("submissions")
    source = nbformat.read(SOURCE, as_version=4)
    released = nbformat.read(RELEASED, as_version=4)
    nbformat.write(source, folder / "instructor.ipynb")
    nbformat.write(released, folder / "untouched.ipynb")
    other = {
        "ex00_1_answer": OTHER_DECODE,
        "ex00_2_answer": OTHER_TRANSLATE,
        "ex00_3_answer": OTHER_HANDLER,
    }
    nbformat.write(with_answers(released, other), folder / "different.ipynb")
    # One right answer (00.1); every check cell rewritten to print success, and the
    # instructor's outputs pasted in.
    tampered = with_answers(released, {"ex00_1_answer": OTHER_DECODE})
    expected = cells_by_id(source)
    for grade_id, cell in cells_by_id(tampered).items():
        if grading.is_graded(cell):
            cell.source = f"print({expected[grade_id].outputs[0]['text']!r})"
        if cell.cell_type == "code":
            cell.outputs = expected[grade_id].outputs
            cell.execution_count = expected[grade_id].execution_count
    nbformat.write(tampered, folder / "tampered.ipynb")
    # Answers that fake the checker instead of answering: each would pass if it ran.
    verdicts = {
        cell.source: cell.outputs[0]["text"] for cell in source.cells if grading.is_graded(cell)
    }
    verdict_00_2 = next(text for code, text in verdicts.items() if '"00.2"' in code)
    verdict_00_3 = next(text for code, text in verdicts.items() if '"00.3"' in code)
    faked = with_answers(
        released,
        {
            "ex00_1_answer": OTHER_DECODE,
            "ex00_2_answer": (
                f"answer_00_2 = 0\ndef check(*args):\n    print({verdict_00_2!r}, end='')\n"
            ),
            "ex00_3_answer": (
                "answer_00_3 = 0\nimport virtkit.exercises\n"
                f"virtkit.exercises.evaluate = lambda *args: {verdict_00_3.strip()!r}\n"
            ),
        },
    )
    nbformat.write(faked, folder / "faked.ipynb")
    wrong = with_answers(released, {"ex00_2_answer": "answer_00_2 = 0x80000000\n"})
    nbformat.write(wrong, folder / "wrong.ipynb")
    nbformat.write(nbformat.read(SOURCE_04, as_version=4), folder / "instructor_04.ipynb")
    nbformat.write(nbformat.read(RELEASED_04, as_version=4), folder / "untouched_04.ipynb")
    status = run_command("grade", str(folder), "--jobs", "2", "--json", str(folder / "r.json"))
    assert status == 0
    document = json.loads((folder / "r.json").read_text())
    return {entry["submission"]: entry for entry in document}


def run_command(*argv):
    parser = argparse.ArgumentParser(prog="virtkit")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def points(report):
    return {result["exercise"]: result["points"] for result in report["exercises"]}


@pytest.mark.slow
def test_the_instructor_solution_scores_full_marks(reports):
    report = reports["instructor.ipynb"]
    assert points(report) == FULL_MARKS
    assert (report["points"], report["max_points"]) == (10.0, 10.0)


@pytest.mark.slow
def test_the_instructor_solution_of_04_scores_full_marks(reports):
    report = reports["instructor_04.ipynb"]
    assert points(report) == FULL_MARKS_04, report
    assert (report["points"], report["max_points"]) == (12.0, 12.0)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["untouched.ipynb", "untouched_04.ipynb"])
def test_the_untouched_release_scores_zero_and_says_what_to_do(reports, name):
    report = reports[name]
    assert report["points"] == 0 and report["max_points"] > 0
    for result in report["exercises"]:
        assert (
            "still raises NotImplementedError: replace `raise NotImplementedError()`"
            in (result["feedback"])
        )


@pytest.mark.slow
def test_editing_check_cells_and_outputs_earns_only_what_the_answers_earn(reports):
    assert points(reports["tampered.ipynb"]) == {"00.1": 2.0, "00.2": 0.0, "00.3": 0.0}


@pytest.mark.slow
def test_answers_that_fake_the_checker_are_not_run(reports):
    report = reports["faked.ipynb"]
    assert points(report) == {"00.1": 2.0, "00.2": 0.0, "00.3": 0.0}
    feedback = {result["exercise"]: result["feedback"] for result in report["exercises"]}
    assert "not run: it defines `check`, a name the check cells use" in feedback["00.2"]
    assert "not run: it changes `virtkit.exercises.evaluate`" in feedback["00.3"]


def test_tampering_allows_ordinary_answers_and_names_what_it_refuses():
    assert grading.tampering("def translate(problem):\n    return problem.va\n") is None
    assert grading.tampering("from virtkit.isa import disasm\nx = disasm.decode(1)") is None
    assert grading.tampering("def f(:") is None  # the kernel reports the SyntaxError
    assert "assigns to `check`" in grading.tampering("check = print")
    assert "changes `c.__code__`" in grading.tampering(
        "from virtkit.exercises import check as c\nc.__code__ = None"
    )
    assert "calls `exec`" in grading.tampering("exec('check = print')")


@pytest.mark.parametrize("path", SOURCES, ids=[path.stem for path in SOURCES])
def test_the_instructor_solutions_pass_the_tampering_test(path):
    source = nbformat.read(path, as_version=4)
    for cell in source.cells:
        if cell.cell_type == "code" and grading.is_solution(cell):
            assert grading.tampering(cell.source) is None, cell.source


@pytest.mark.slow
def test_correct_answers_written_differently_score_full_marks(reports):
    assert points(reports["different.ipynb"]) == FULL_MARKS


@pytest.mark.slow
def test_a_wrong_answer_gets_the_checkers_feedback(reports):
    report = reports["wrong.ipynb"]
    feedback = {result["exercise"]: result["feedback"] for result in report["exercises"]}
    assert feedback["00.2"].startswith("00.2 not yet:\n")
    assert f"expected {exercises.solve('00.2'):#010x}, got 0x80000000" in feedback["00.2"]
    text = grading.GradeReport(
        "wrong.ipynb", [grading.ExerciseResult(**result) for result in report["exercises"]]
    ).text()
    assert text.startswith("wrong.ipynb: 0/10 (00.1 0/2, 00.2 0/3, 00.3 0/5)\n  00.1:\n")


def test_the_committed_release_is_up_to_date(tmp_path):
    run_command("exercises", "release", str(grading.SOURCE_DIR), "--out", str(tmp_path))
    for released in (RELEASED, RELEASED_04):
        assert nbformat.read(tmp_path / released.name, as_version=4) == nbformat.read(
            released, as_version=4
        )


@pytest.mark.parametrize("path", SOURCES, ids=[path.stem for path in SOURCES])
def test_the_release_has_no_solutions_or_outputs_and_keeps_the_metadata(path):
    source = nbformat.read(path, as_version=4)
    released = nbformat.read(path.parent.parent / path.name, as_version=4)
    assert [c.metadata for c in released.cells] == [c.metadata for c in source.cells]
    for cell in released.cells:
        if cell.cell_type == "code":
            assert (cell.outputs, cell.execution_count) == ([], None)
        assert grading.BEGIN_SOLUTION not in cell.source
        if grading.is_solution(cell):
            assert "raise NotImplementedError()" in cell.source
    if path == SOURCE:
        assert "ecall_count" not in cells_by_id(released)["ex00_3_answer"].source


def test_clear_solution_keeps_the_code_around_the_markers_and_its_indent():
    source = "def f(x):\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION\n\ng = f"
    assert grading.clear_solution(source) == (
        "def f(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()\n\ng = f"
    )
    with pytest.raises(grading.GradingError, match="without ### END SOLUTION"):
        grading.clear_solution("### BEGIN SOLUTION\nx = 1\n")


def test_a_notebook_from_elsewhere_is_not_graded(tmp_path, capsys):
    path = tmp_path / "essay.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")]), path)
    assert run_command("grade", str(path)) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"{path}: not graded: none of the instructor notebooks in ")


# -- Exercises 02: the instructor's notebook and the untouched release, graded once ------------


@pytest.fixture(scope="module")
def reports_02(tmp_path_factory):
    folder = tmp_path_factory.mktemp("submissions_02")
    nbformat.write(nbformat.read(SOURCE_02, as_version=4), folder / "instructor.ipynb")
    nbformat.write(nbformat.read(RELEASED_02, as_version=4), folder / "untouched.ipynb")
    status = run_command("grade", str(folder), "--jobs", "2", "--json", str(folder / "r.json"))
    assert status == 0
    document = json.loads((folder / "r.json").read_text())
    return {entry["submission"]: entry for entry in document}


@pytest.mark.slow
def test_the_02_instructor_solution_scores_full_marks(reports_02):
    report = reports_02["instructor.ipynb"]
    assert points(report) == FULL_MARKS_02, report
    assert (report["points"], report["max_points"]) == (10.0, 10.0)


@pytest.mark.slow
def test_the_untouched_02_release_scores_zero_and_says_what_to_do(reports_02):
    report = reports_02["untouched.ipynb"]
    assert points(report) == dict.fromkeys(FULL_MARKS_02, 0.0)
    for result in report["exercises"]:
        assert "still raises NotImplementedError" in result["feedback"], result


def test_the_02_release_has_no_solutions_and_its_solutions_pass_the_tampering_test():
    source = nbformat.read(SOURCE_02, as_version=4)
    released = nbformat.read(RELEASED_02, as_version=4)
    assert [c.metadata for c in released.cells] == [c.metadata for c in source.cells]
    for cell in released.cells:
        assert grading.BEGIN_SOLUTION not in cell.source
        if cell.cell_type == "code":
            assert (cell.outputs, cell.execution_count) == ([], None)
    for cell in source.cells:
        if cell.cell_type == "code" and grading.is_solution(cell):
            assert grading.tampering(cell.source) is None, cell.source
    assert "credit_total +=" not in cells_by_id(released)["ex02_1_answer"].source


def _fake_nbval(outcomes_by_attempt, calls):
    """A stand-in for the nbval child process: attempt i writes outcomes_by_attempt[i]
    (None: the kernel died before it answered, as nbval logs it)."""

    def run(command, **kwargs):
        outcomes = outcomes_by_attempt[len(calls)]
        calls.append(command)
        if outcomes is None:
            return subprocess.CompletedProcess(
                command, 1, "ERROR nbval:kernel.py:59 Failure starting kernel\n", ""
            )
        Path(command[-1]).write_text(json.dumps(outcomes))
        return subprocess.CompletedProcess(command, 0, "", "")

    return run


def test_a_kernel_that_dies_at_start_is_started_again(monkeypatch):
    calls = []
    passed = {"0": {"passed": True, "output": "", "error": ""}}
    monkeypatch.setattr(grading.subprocess, "run", _fake_nbval([None, passed], calls))
    assert grading.run_nbval(nbformat.v4.new_notebook()) == {0: passed["0"]}
    assert len(calls) == 2


def test_a_kernel_that_never_starts_is_reported_not_retried_for_ever(monkeypatch):
    calls = []
    attempts = [None] * grading.KERNEL_START_ATTEMPTS
    monkeypatch.setattr(grading.subprocess, "run", _fake_nbval(attempts, calls))
    with pytest.raises(grading.GradingError, match="Failure starting kernel"):
        grading.run_nbval(nbformat.v4.new_notebook())
    assert len(calls) == grading.KERNEL_START_ATTEMPTS


def test_a_submission_that_runs_no_cells_is_not_run_again(monkeypatch):
    calls = []
    monkeypatch.setattr(grading.subprocess, "run", _fake_nbval([{}], calls))
    with pytest.raises(grading.GradingError, match="nbval ran no cells"):
        grading.run_nbval(nbformat.v4.new_notebook())
    assert len(calls) == 1
