"""Lesson 00 in a real browser: JupyterLab, Debian's Chromium, Playwright.

Starts JupyterLab on 127.0.0.1 over a temporary copy of notebooks/, runs every cell
of lesson 00, clicks Step on the first CPUView and checks that the pc it shows
changes. The screenshot goes to test-artifacts/.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)"
    ),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def jupyterlab(tmp_path):
    notebooks = tmp_path / "notebooks"
    shutil.copytree(ROOT / "notebooks", notebooks)
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--no-browser",
        f"--port={port}",
        "--ServerApp.ip=127.0.0.1",
        "--ServerApp.token=",
        "--ServerApp.password=",
        "--ServerApp.disable_check_xsrf=True",
        f"--ServerApp.root_dir={notebooks}",
        "--LabApp.expose_app_in_browser=True",
        "--LabApp.news_url=",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if os.geteuid() == 0:
        command.append("--allow-root")
    log = open(tmp_path / "jupyterlab.log", "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=notebooks)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/api", timeout=1)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(
                        f"JupyterLab did not start:\n{(tmp_path / 'jupyterlab.log').read_text()}"
                    )
                time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def test_lesson_00_runs_and_step_moves_the_pc(jupyterlab, tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    ARTIFACTS.mkdir(exist_ok=True)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1400, "height": 1000},
        )
        page = browser.new_page()
        try:
            page.goto(f"{jupyterlab}/lab/tree/00_the_machine.ipynb")
            page.wait_for_function(
                "window.jupyterapp && window.jupyterapp.shell.currentWidget"
                " && window.jupyterapp.shell.currentWidget.sessionContext"
                " && window.jupyterapp.shell.currentWidget.sessionContext.session?.kernel",
                timeout=60_000,
            )
            page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
            pc = page.locator(".virtkit-pc").first
            page.wait_for_function(
                "document.querySelector('.virtkit-pc')?.textContent.startsWith('pc ')",
                timeout=60_000,
            )
            before = pc.text_content()
            pc.scroll_into_view_if_needed()
            page.locator(".virtkit-step").first.click()
            page.wait_for_function(
                "before => document.querySelector('.virtkit-pc').textContent !== before",
                arg=before,
                timeout=15_000,
            )
            after = pc.text_content()
            # The last cell draws a figure: wait for it so the screenshot shows the lot.
            page.locator(".jp-OutputArea-output img").last.wait_for(timeout=60_000)
            page.screenshot(path=str(ARTIFACTS / "lesson_00.png"), full_page=True)
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "lesson_00_failure.png"), full_page=True)
            raise
        finally:
            browser.close()
    assert before == "pc 0x80000000"
    assert after == "pc 0x80000004"
