"""The command line of the exercises: `virtkit exercises release` and `virtkit grade`.

virtkit/cli.py calls ``add_commands(subparsers)``; the commands report errors through
its CommandError, so they read like every other command. The work is done by plain
functions in virtkit.grading.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _cmd_release(args: argparse.Namespace) -> int:
    from virtkit.cli import EXIT_OK, CommandError
    from virtkit.grading import SOURCE_DIR, GradingError, release

    try:
        written = release(args.source_dir or SOURCE_DIR, args.out)
    except GradingError as exc:
        raise CommandError(str(exc)) from exc
    for path in written:
        print(f"released {path}")
    return EXIT_OK


def _cmd_grade(args: argparse.Namespace) -> int:
    from virtkit.cli import EXIT_FAILURE, EXIT_OK, CommandError
    from virtkit.grading import SOURCE_DIR, GradingError, grade, grade_folder

    source = args.source or SOURCE_DIR
    if not args.submission.exists():
        raise CommandError(f"{args.submission}: no such file or folder")
    try:
        if args.submission.is_dir():
            reports = grade_folder(args.submission, source, jobs=args.jobs)
            for report in reports:
                print(report.line())
            document = [report.to_json() for report in reports]
        else:
            reports = [grade(args.submission, source)]
            print(reports[0].text())
            document = reports[0].to_json()
    except GradingError as exc:
        raise CommandError(str(exc)) from exc
    if args.json:
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    return EXIT_FAILURE if any(report.error for report in reports) else EXIT_OK


def add_commands(subparsers) -> None:
    """Add `exercises` (with `release`) and `grade` to the `virtkit` subcommands."""
    from virtkit.cli import _positive_int

    exercises = subparsers.add_parser(
        "exercises",
        help="manage the graded exercise notebooks",
        description="Manage the graded exercise notebooks (exercises/).",
    )
    actions = exercises.add_subparsers(dest="action", metavar="ACTION", required=True)
    release = actions.add_parser(
        "release",
        help="write the student notebooks from the instructor sources",
        description="Write the student version of every instructor notebook in SOURCE_DIR: "
        "solutions replaced by `raise NotImplementedError()`, outputs cleared, nbgrader "
        "metadata kept.",
    )
    release.add_argument(
        "source_dir",
        metavar="SOURCE_DIR",
        type=Path,
        nargs="?",
        help="instructor notebooks (default: the checkout's exercises/source)",
    )
    release.add_argument(
        "--out",
        metavar="DIR",
        type=Path,
        help="where the student notebooks go (default: the parent of SOURCE_DIR)",
    )
    release.set_defaults(func=_cmd_release)

    grade = subparsers.add_parser(
        "grade",
        help="grade submitted exercise notebooks",
        description="Grade a submitted exercise notebook, or every .ipynb in a folder: its "
        "answer cells are run with the instructor's check cells under nbval, and each "
        "check that passes gives its points. Prints points per exercise and the total.",
    )
    grade.add_argument(
        "submission",
        metavar="SUBMISSION",
        type=Path,
        help="a student's .ipynb, or a folder of them (one result line each)",
    )
    grade.add_argument("--json", metavar="FILE", type=Path, help="also write the results as JSON")
    grade.add_argument(
        "--jobs",
        metavar="N",
        type=_positive_int,
        default=1,
        help="grade N notebooks at a time (default: %(default)s)",
    )
    grade.add_argument(
        "--source",
        metavar="DIR",
        type=Path,
        help="instructor notebooks (default: the checkout's exercises/source)",
    )
    grade.set_defaults(func=_cmd_grade)
