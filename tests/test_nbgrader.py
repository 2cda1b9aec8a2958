"""The exercise notebooks in an nbgrader course: generate, submit, autograde, export.

nbgrader (https://nbgrader.readthedocs.io) scores a check cell by whether it raises, not
by its output, so this is the test that virtkit's format works there too: the
instructor source imports as an nbgrader assignment, nbgrader's release has the same
cells as ``virtkit exercises release``, and autograding that release gives full marks to
the solutions, none to the untouched release, and partial marks to a wrong answer.
"""

import csv
import importlib.util
import shutil
import subprocess
import sys

import nbformat
import pytest

from virtkit import grading

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("nbgrader") is None,
    reason="nbgrader is not installed (pip install nbgrader; .ci/run installs it)",
)

SOURCE = grading.SOURCE_DIR / "00_the_machine.ipynb"
RELEASED = grading.SOURCE_DIR.parent / "00_the_machine.ipynb"
ASSIGNMENT = "ps0"


def nbgrader(course, *args):
    completed = subprocess.run(
        [sys.executable, "-m", "nbgrader", *args, f"--CourseDirectory.root={course}"],
        cwd=course,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed


def submit(course, student, notebook):
    folder = course / "submitted" / student / ASSIGNMENT
    folder.mkdir(parents=True)
    nbformat.write(notebook, folder / SOURCE.name)
    nbgrader(course, "db", "student", "add", student)


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    course = tmp_path_factory.mktemp("course")
    (course / "source" / ASSIGNMENT).mkdir(parents=True)
    shutil.copy(SOURCE, course / "source" / ASSIGNMENT)
    nbgrader(course, "generate_assignment", ASSIGNMENT, "--force")
    source = nbformat.read(SOURCE, as_version=4)
    released = nbformat.read(RELEASED, as_version=4)
    solutions = {grading.grade_id(c): c.source for c in source.cells if grading.is_solution(c)}
    solved = nbformat.from_dict(released)
    for cell in solved.cells:
        if grading.is_solution(cell):
            cell.source = solutions[grading.grade_id(cell)]
    wrong = nbformat.from_dict(solved)
    for cell in wrong.cells:
        if grading.grade_id(cell) == "ex00_2_answer":
            cell.source = "answer_00_2 = 0x80000000\n"
    submit(course, "solved", solved)
    submit(course, "untouched", released)
    submit(course, "wrong", wrong)
    nbgrader(course, "autograde", ASSIGNMENT, "--force")
    nbgrader(course, "export")
    return course


def test_nbgrader_releases_the_same_cells_as_virtkit(course):
    theirs = nbformat.read(course / "release" / ASSIGNMENT / SOURCE.name, as_version=4)
    ours = nbformat.read(RELEASED, as_version=4)
    assert [c.source for c in theirs.cells] == [c.source for c in ours.cells]
    assert [grading.grade_id(c) for c in theirs.cells] == [grading.grade_id(c) for c in ours.cells]


def test_nbgrader_autograde_scores_as_virtkit_grade_does(course):
    with open(course / "grades.csv", newline="") as file:
        scores = {row["student_id"]: float(row["score"]) for row in csv.DictReader(file)}
    assert scores == {"solved": 10.0, "untouched": 0.0, "wrong": 7.0}
