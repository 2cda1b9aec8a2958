"""Every lesson runs top to bottom under nbval with the outputs it has stored."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[n.name for n in NOTEBOOKS])
def test_notebook_matches_its_stored_outputs(notebook):
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval", "-p", "no:cacheprovider", "-q", notebook],
        capture_output=True,
        text=True,
        cwd=notebook.parent,
        timeout=600,
    )
    assert result.returncode == 0, f"nbval failed on {notebook.name}:\n{result.stdout[-6000:]}"
