"""The official riscv-tests (rv32ui, rv32um, rv32ua, rv32mi, rv32si; p and v
environments), each binary run through ``virtkit run`` and expected to pass.

The binaries are not part of this repository: build them from the riscv-tests
sources with `riscv64-unknown-elf-gcc -march=rv32ima_zicsr_zifencei -mabi=ilp32` and
point VIRTKIT_RISCV_TESTS at the folder that holds them (files named like
rv32ui-p-add, rv32si-p-dirty, rv32ua-v-lrsc).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from virtkit.cli import main

SUITES = re.compile(r"^rv32(ui|um|ua|mi|si)-[pv]-[a-z0-9_-]+$")
FOLDER = os.environ.get("VIRTKIT_RISCV_TESTS")


def binaries() -> list[Path]:
    if not FOLDER or not Path(FOLDER).is_dir():
        return []
    return sorted(p for p in Path(FOLDER).iterdir() if SUITES.match(p.name))


@pytest.mark.skipif(
    not binaries(),
    reason="riscv-tests binaries not found: set VIRTKIT_RISCV_TESTS to a folder of "
    "rv32{ui,um,ua,mi,si}-{p,v}-* ELF files built from the riscv-tests sources",
)
@pytest.mark.parametrize("binary", binaries(), ids=lambda p: p.name)
def test_official_test_passes_through_virtkit_run(binary, capsys):
    status = main(["run", str(binary), "--max-instructions", "20000000", "--ram-mb", "16"])
    assert status == 0, capsys.readouterr().err
