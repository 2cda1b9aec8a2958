"""`virtkit lab`: where the lessons come from, how they are copied, and the server."""

import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

import pytest

from virtkit import lab

REPO = Path(__file__).resolve().parents[1]

LESSONS = {
    "notebooks/01_hosted.ipynb": "lesson one",
    "notebooks/data/trace.txt": "a trace",
    "exercises/release/ex1.ipynb": "student exercise",
}
NOT_LESSONS = {
    "notebooks/.ipynb_checkpoints/01_hosted-checkpoint.ipynb": "checkpoint",
    "notebooks/__pycache__/helper.cpython-311.pyc": "bytecode",
    "notebooks/.hidden": "hidden",
    "exercises/source/ex1.ipynb": "instructor solution",
    "setup.py": "not a lesson folder",
}


def write_tree(root, files):
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.fixture
def source(tmp_path):
    root = tmp_path / "source"
    write_tree(root, LESSONS | NOT_LESSONS)
    return root


def paths(names):
    return sorted(PurePosixPath(name) for name in names)


def test_lesson_files_leave_out_instructor_sources_and_clutter(source):
    assert lab.lesson_files(source) == paths(LESSONS)


def test_lessons_are_copied_into_an_empty_folder(source, tmp_path):
    dest = tmp_path / "mine"
    report = lab.copy_lessons(source, dest, lab.keep_students_file)
    assert report.copied == paths(LESSONS)
    for relative, text in LESSONS.items():
        assert (dest / relative).read_text() == text
    assert not (dest / "exercises" / "source").exists()
    assert not (dest / "notebooks" / ".ipynb_checkpoints").exists()


def test_copying_again_changes_nothing(source, tmp_path):
    dest = tmp_path / "mine"
    lab.copy_lessons(source, dest, lab.keep_students_file)
    report = lab.copy_lessons(source, dest, lab.keep_students_file)
    assert report.unchanged == paths(LESSONS)
    assert report.copied == report.kept == report.replaced == []


def test_an_edited_file_is_kept_and_a_deleted_one_restored(source, tmp_path):
    dest = tmp_path / "mine"
    lab.copy_lessons(source, dest, lab.keep_students_file)
    (dest / "notebooks/01_hosted.ipynb").write_text("my answers")
    (dest / "notebooks/data/trace.txt").unlink()

    report = lab.copy_lessons(source, dest, lab.keep_students_file)

    assert (dest / "notebooks/01_hosted.ipynb").read_text() == "my answers"
    assert (dest / "notebooks/data/trace.txt").read_text() == "a trace"
    assert report.kept == paths(["notebooks/01_hosted.ipynb"])
    assert report.copied == paths(["notebooks/data/trace.txt"])


def test_a_standing_choice_is_asked_once(source, tmp_path):
    dest = tmp_path / "mine"
    lab.copy_lessons(source, dest, lab.keep_students_file)
    for relative in LESSONS:
        (dest / relative).write_text("edited")
    asked = []

    def replace_all(relative):
        asked.append(relative)
        return lab.REPLACE_ALL

    report = lab.copy_lessons(source, dest, replace_all)

    assert len(asked) == 1
    assert report.replaced == paths(LESSONS)
    for relative, text in LESSONS.items():
        assert (dest / relative).read_text() == text


def test_a_folder_in_the_way_is_a_clear_error(source, tmp_path):
    dest = tmp_path / "mine"
    (dest / "notebooks" / "01_hosted.ipynb").mkdir(parents=True)
    with pytest.raises(lab.LabError, match="is a folder"):
        lab.copy_lessons(source, dest, lab.keep_students_file)


@pytest.mark.parametrize(
    "typed, choice",
    [
        ("\n", lab.KEEP),
        ("k\n", lab.KEEP),
        ("R\n", lab.REPLACE),
        ("ra\n", lab.REPLACE_ALL),
        ("  Keep   All \n", lab.KEEP_ALL),
        ("", lab.KEEP_ALL),
    ],
)
def test_the_terminal_question_understands_its_answers(typed, choice):
    stdout = io.StringIO()
    answer = lab.ask_on_terminal(PurePosixPath("notebooks/a.ipynb"), io.StringIO(typed), stdout)
    assert answer == choice
    assert "notebooks/a.ipynb differs" in stdout.getvalue()
    assert "keep yours (k) / replace (r) / replace all (ra) / keep all (ka)" in stdout.getvalue()


def test_the_terminal_question_asks_again_after_nonsense():
    stdout = io.StringIO()
    answer = lab.ask_on_terminal(PurePosixPath("a.ipynb"), io.StringIO("maybe\nr\n"), stdout)
    assert answer == lab.REPLACE
    assert "please answer k, r, ra or ka" in stdout.getvalue()


def test_without_a_terminal_kept_files_are_named(source, tmp_path):
    dest = tmp_path / "mine"
    lab.prepare_lessons(dest, None, source, lab.keep_students_file, out=io.StringIO())
    (dest / "exercises/release/ex1.ipynb").write_text("my answers")
    out = io.StringIO()

    root = lab.prepare_lessons(dest, None, source, lab.keep_students_file, out=out)

    assert root == dest.resolve()
    assert "kept your version of these files" in out.getvalue()
    assert "  exercises/release/ex1.ipynb\n" in out.getvalue()
    assert (dest / "exercises/release/ex1.ipynb").read_text() == "my answers"


def test_a_checkout_opens_in_place_without_a_folder(source):
    out = io.StringIO()
    assert lab.prepare_lessons(None, source, None, lab.keep_students_file, out=out) == source
    assert out.getvalue() == ""


def test_a_checkout_is_copied_when_a_folder_is_given(source, tmp_path):
    dest = tmp_path / "mine"
    lab.prepare_lessons(dest, source, None, lab.keep_students_file, out=io.StringIO())
    assert lab.lesson_files(dest) == paths(LESSONS)


def test_packaged_lessons_go_to_the_default_folder(source, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    root = lab.prepare_lessons(None, None, source, lab.keep_students_file, out=out)
    assert root == (tmp_path / "virtkit-lessons").resolve()
    assert f"copied {len(LESSONS)} files into {root}" in out.getvalue()


def test_no_lessons_anywhere_is_a_clear_error(tmp_path):
    with pytest.raises(lab.LabError, match="no lessons found"):
        lab.prepare_lessons(tmp_path, None, None, lab.keep_students_file, out=io.StringIO())


def test_this_checkout_is_found():
    assert lab.find_checkout() == REPO


def test_a_package_outside_a_checkout_is_not_a_checkout(tmp_path):
    assert lab.find_checkout(tmp_path / "site-packages" / "virtkit") is None
    assert lab.packaged_lessons(tmp_path / "virtkit" / "lessons") is None


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_free_port_passes_the_check():
    lab.check_port_free(free_port())


def test_a_taken_port_is_named_with_a_way_out():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(lab.LabError) as error:
            lab.check_port_free(port)
    message = str(error.value)
    assert f"port {port} on 127.0.0.1 is already in use" in message
    assert f"virtkit lab --port {port + 1}" in message


def test_the_jupyter_command_serves_the_folder_on_the_port(tmp_path):
    command = lab.jupyter_command(tmp_path, 9123, open_browser=False)
    assert command[:3] == [sys.executable, "-m", "jupyterlab"]
    assert f"--ServerApp.root_dir={tmp_path}" in command
    assert "--port=9123" in command
    assert "--ServerApp.port_retries=0" in command
    assert "--no-browser" in command
    assert "--no-browser" not in lab.jupyter_command(tmp_path, 9123, open_browser=True)


@pytest.mark.slow
def test_virtkit_lab_starts_a_jupyter_server(tmp_path):
    pytest.importorskip("jupyterlab", reason="virtkit lab needs JupyterLab")
    port = free_port()
    lessons = tmp_path / "lessons"
    env = os.environ | {
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
    }
    log = (tmp_path / "lab.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "virtkit", "lab", str(lessons), "--no-browser", "--port", str(port)],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    try:
        reply = _poll(f"http://127.0.0.1:{port}/api", server, timeout=60)
        assert reply is not None, (
            f"no answer on port {port} in 60 s; log:\n{(tmp_path / 'lab.log').read_text()}"
        )
        assert b'"version"' in reply
        assert (lessons / "notebooks" / "README.md").is_file()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


def _poll(url, process, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return None
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.read()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.25)
    return None


@pytest.mark.slow
def test_the_wheel_ships_the_lessons_without_instructor_sources(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, project / name)
    clutter = shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints", "lessons")
    for folder in ("virtkit", *lab.LESSON_FOLDERS):
        shutil.copytree(REPO / folder, project / folder, ignore=clutter)
    write_tree(project, {"exercises/source/secret.ipynb": "solution"})
    wheels = tmp_path / "wheels"
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet"]

    subprocess.run([*pip_wheel, "--wheel-dir", str(wheels), str(project)], check=True)

    (wheel,) = wheels.glob("virtkit-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {f"virtkit/lessons/{relative}" for relative in lab.lesson_files(REPO)}
    assert "virtkit/lessons/notebooks/README.md" in shipped
    assert shipped <= names
    assert not any("exercises/source" in name for name in names)
    assert {"virtkit/cli.py", "virtkit/lab.py", "virtkit/__main__.py"} <= names
    (entry_points,) = (name for name in names if name.endswith(".dist-info/entry_points.txt"))
    assert "virtkit = virtkit.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
