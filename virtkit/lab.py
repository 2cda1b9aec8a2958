"""`virtkit lab`: open the lessons in JupyterLab.

The lessons are the repository's notebooks/ and exercises/ folders. Where they come from
depends on how virtkit was installed:

- From a source checkout (`pip install -e .`), notebooks/ sits next to the package. With
  no DIR given, JupyterLab opens the checkout itself, so lesson authors edit in place.
- From a wheel, the build (the build_py step in setup.py) has copied the lessons into the
  package as virtkit/lessons/notebooks/ and virtkit/lessons/exercises/. site-packages is
  no place for a student's work, so they are copied into DIR (default ./virtkit-lessons)
  and JupyterLab opens that.

Copying never overwrites a file the student has changed: on a terminal the student is
asked, file by file; anywhere else their version is kept and named in the output.

Instructor sources (exercises/source/) hold the solutions and are never copied or
shipped; student versions are generated from them.

Everything except the final launch is a plain function, so the tests can exercise it
without starting Jupyter. This module imports only the standard library at load time:
setup.py loads it by path to decide which files go into the wheel.
"""

from __future__ import annotations

import errno
import filecmp
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TextIO

# Folders, relative to the repository root (or to virtkit/lessons/ in a wheel).
LESSON_FOLDERS = ("notebooks", "exercises")
# Never shipped to students: the instructor notebooks with the solutions in them.
INSTRUCTOR_ONLY = (PurePosixPath("exercises/source"),)
# Build and editor clutter that is not part of a lesson.
IGNORED_NAMES = ("__pycache__", ".ipynb_checkpoints")

PACKAGE_DIR = Path(__file__).resolve().parent
PACKAGED_LESSONS = PACKAGE_DIR / "lessons"
DEFAULT_DIR = Path("virtkit-lessons")
DEFAULT_PORT = 8888
LOOPBACK = "127.0.0.1"

# What to do with a lesson file whose copy in DIR differs from the shipped one.
KEEP = "keep"
REPLACE = "replace"
KEEP_ALL = "keep all"
REPLACE_ALL = "replace all"
CHOICES = (KEEP, REPLACE, REPLACE_ALL, KEEP_ALL)


class LabError(Exception):
    """A problem with `virtkit lab` that the student can fix; the message says how."""


@dataclass
class CopyReport:
    """What copy_lessons did with each lesson file, by path relative to DIR."""

    copied: list[PurePosixPath] = field(default_factory=list)
    unchanged: list[PurePosixPath] = field(default_factory=list)
    kept: list[PurePosixPath] = field(default_factory=list)
    replaced: list[PurePosixPath] = field(default_factory=list)


def lesson_files(root: Path) -> list[PurePosixPath]:
    """The lesson files under root, as sorted paths relative to it.

    Looks in LESSON_FOLDERS only, and leaves out INSTRUCTOR_ONLY folders, hidden files
    and IGNORED_NAMES. A missing folder contributes nothing.
    """
    found = []
    for folder in LESSON_FOLDERS:
        top = root / folder
        for dirpath, dirnames, filenames in os.walk(top):
            here = PurePosixPath(Path(dirpath).relative_to(root).as_posix())
            # Pruning dirnames in place stops os.walk from descending into them.
            dirnames[:] = sorted(
                name
                for name in dirnames
                if not _ignored(name) and here / name not in INSTRUCTOR_ONLY
            )
            found.extend(here / name for name in filenames if not _ignored(name))
    return sorted(found)


def _ignored(name: str) -> bool:
    return name.startswith(".") or name in IGNORED_NAMES


def find_checkout(package_dir: Path = PACKAGE_DIR) -> Path | None:
    """The source checkout virtkit runs from, or None when it runs from a wheel."""
    root = package_dir.parent
    if (root / "pyproject.toml").is_file() and (root / "notebooks").is_dir():
        return root
    return None


def packaged_lessons(lessons_dir: Path = PACKAGED_LESSONS) -> Path | None:
    """The lessons a wheel ships (virtkit/lessons/), or None if there are none."""
    if lessons_dir.is_dir():
        return lessons_dir
    return None


def copy_lessons(source: Path, dest: Path, decide: Callable[[PurePosixPath], str]) -> CopyReport:
    """Copy the lesson files under source into dest, keeping the student's changes.

    A file missing from dest is copied; an identical one is left alone. For a file that
    differs, decide(relative_path) returns one of CHOICES; after KEEP_ALL or
    REPLACE_ALL it is not asked again.
    """
    report = CopyReport()
    standing_choice = None
    for relative in lesson_files(source):
        src = source / relative
        dst = dest / relative
        if dst.is_dir():
            raise LabError(
                f"{dst} is a folder, but the lessons have a file of that name; "
                "move the folder away and run `virtkit lab` again"
            )
        if not dst.exists():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
            report.copied.append(relative)
            continue
        if filecmp.cmp(src, dst, shallow=False):
            report.unchanged.append(relative)
            continue
        choice = standing_choice or decide(relative)
        if choice not in CHOICES:
            raise ValueError(f"decide() returned {choice!r}, expected one of {CHOICES}")
        if choice in (KEEP_ALL, REPLACE_ALL):
            standing_choice = choice
        if choice in (REPLACE, REPLACE_ALL):
            shutil.copy2(src, dst)
            report.replaced.append(relative)
        else:
            report.kept.append(relative)
    return report


def keep_students_file(relative: PurePosixPath) -> str:
    """The decision when nobody can be asked: the student's file stays."""
    return KEEP


_ANSWERS = {
    "": KEEP,
    "k": KEEP,
    "keep": KEEP,
    "r": REPLACE,
    "replace": REPLACE,
    "ra": REPLACE_ALL,
    "replace all": REPLACE_ALL,
    "ka": KEEP_ALL,
    "keep all": KEEP_ALL,
}


def ask_on_terminal(
    relative: PurePosixPath, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout
) -> str:
    """Ask the student what to do with their changed copy of a lesson file."""
    question = (
        f"{relative} differs from the lesson that comes with this virtkit.\n"
        "  keep yours (k) / replace (r) / replace all (ra) / keep all (ka) [k]: "
    )
    while True:
        stdout.write(question)
        stdout.flush()
        line = stdin.readline()
        if not line:
            # End of input: nobody is there to ask again, so nothing gets replaced.
            stdout.write("\n")
            return KEEP_ALL
        answer = _ANSWERS.get(" ".join(line.lower().split()))
        if answer is not None:
            return answer
        stdout.write("  please answer k, r, ra or ka\n")


def prepare_lessons(
    directory: Path | None,
    checkout: Path | None,
    packaged: Path | None,
    decide: Callable[[PurePosixPath], str],
    out: TextIO = sys.stdout,
) -> Path:
    """Decide which folder JupyterLab opens, copying the lessons there if needed.

    checkout and packaged are what find_checkout() and packaged_lessons() found.
    """
    if directory is None and checkout is not None:
        return checkout
    source = checkout or packaged
    if source is None:
        raise LabError(
            "no lessons found: this virtkit is neither a source checkout nor a wheel with "
            f"lessons in {PACKAGED_LESSONS}; reinstall it with "
            "`pip install --force-reinstall virtkit`"
        )
    dest = (directory or DEFAULT_DIR).resolve()
    report = copy_lessons(source, dest, decide)
    _print_report(report, dest, out)
    return dest


def _print_report(report: CopyReport, dest: Path, out: TextIO) -> None:
    if report.copied:
        out.write(f"virtkit: copied {_files(report.copied)} into {dest}\n")
    if report.replaced:
        out.write(f"virtkit: replaced {_files(report.replaced)} with the lessons in this virtkit\n")
    if report.kept:
        out.write(
            "virtkit: kept your version of these files, which differ from the lessons "
            "in this virtkit:\n"
        )
        for relative in report.kept:
            out.write(f"  {relative}\n")
        out.write(
            "  (delete a file to get the fresh lesson, or run `virtkit lab` on a "
            "terminal to choose)\n"
        )


def _files(paths: list[PurePosixPath]) -> str:
    return "1 file" if len(paths) == 1 else f"{len(paths)} files"


def check_port_free(port: int, host: str = LOOPBACK) -> None:
    """Raise LabError if a server could not listen on host:port.

    Binds the way Jupyter's server does (SO_REUSEADDR, so a port left in TIME_WAIT by a
    server that just stopped counts as free), then lets go at once.
    """
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            problem = (
                f"port {port} on {host} is already in use (is another Jupyter server running?)"
            )
        else:
            # Ports below 1024 need root, for example.
            problem = f"cannot listen on port {port} of {host}: {exc.strerror}"
        raise LabError(
            f"{problem}; choose another one with `virtkit lab --port {_suggest_port(port)}`"
        ) from exc
    finally:
        probe.close()


def _suggest_port(port: int) -> int:
    return port + 1 if port < 65535 else DEFAULT_PORT


def jupyter_command(root: Path, port: int, open_browser: bool) -> list[str]:
    """The command line that serves root with JupyterLab on port."""
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--ServerApp.root_dir={root}",
        f"--port={port}",
        # Jupyter would silently move to the next free port; the student asked for this one.
        "--ServerApp.port_retries=0",
    ]
    if not open_browser:
        command.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # Jupyter refuses to start as root without this; containers and CI run as root.
        command.append("--allow-root")
    return command


def run_lab(
    directory: Path | None,
    port: int = DEFAULT_PORT,
    open_browser: bool = True,
    interactive: bool | None = None,
) -> int:
    """Prepare the lessons and replace this process with JupyterLab serving them.

    interactive says whether a changed lesson file may be asked about; by default, when
    standard input and output are a terminal.
    """
    if importlib.util.find_spec("jupyterlab") is None:
        raise LabError(
            f"JupyterLab is not installed for {sys.executable}; "
            "install it with `pip install jupyterlab`"
        )
    check_port_free(port)
    if interactive is None:
        interactive = sys.stdin.isatty() and sys.stdout.isatty()
    decide = ask_on_terminal if interactive else keep_students_file
    root = prepare_lessons(directory, find_checkout(), packaged_lessons(), decide)
    command = jupyter_command(root, port, open_browser)
    print(f"virtkit: serving {root} with JupyterLab on port {port} (Ctrl-C stops it)")
    sys.stdout.flush()
    sys.stderr.flush()
    if os.name == "posix":
        # Become the server: Ctrl-C and kill reach Jupyter directly, with nothing between.
        os.execv(command[0], command)
    return subprocess.call(command)
