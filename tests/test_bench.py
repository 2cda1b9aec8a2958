"""`virtkit bench`: its workload computes what the Python reference computes, everywhere.

The benchmark refuses to report a speed for a wrong result, so these tests check the
parts that decide what "right" is: the plain-Python reference, the hart running
compute.s with and without Sv32, Unicorn running it, and the JSON a quick run writes.
Nothing here looks at a timing.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import zlib

import pytest

from virtkit import bench
from virtkit.bench import measure
from virtkit.cpu import exits as E


def test_the_reference_crc32_is_zlibs():
    data = bytes(range(256)) * 3
    assert measure.crc32_reference(data, 0xEDB88320) == zlib.crc32(data)


def test_the_reference_sieve_counts_the_primes_below_100():
    assert measure.sieve_reference(100) == (25, 1060)


@pytest.mark.parametrize(
    "sv32, two_stage",
    [(False, False), (True, False), (False, True)],
    ids=["paging-off", "sv32", "two-stage"],
)
def test_the_hart_computes_the_reference_checksum(sv32, two_stage):
    repeat = 1 if sv32 or two_stage else 2  # two repetitions check the checksum's fold too
    hart = measure.compute_hart(repeat, sv32=sv32, two_stage=two_stage)
    exit = hart.run(10_000_000)
    assert exit.reason == E.EXIT_HALT, str(exit)
    assert hart.x["a0"] == measure.reference_checksum(repeat)
    if sv32:
        assert hart.mode == "U"
        assert hart.csr["satp"] >> 31 == 1
    if two_stage:
        assert hart.mode == "VS"
        assert hart.csr["vsatp"] >> 31 == 1 and hart.csr["hgatp"] >> 31 == 1
        assert hart.csr["satp"] == 0
        assert set(hart.stats["instructions_by_mode"]) == {"M", "VS"}


def test_compute_as_a_tinyos_process_computes_the_reference_checksum():
    run = measure.run_tinyos_compute(1)
    assert run.checksum == measure.reference_checksum(1)
    by_mode = run.stats["instructions_by_mode"]
    assert by_mode["U"] > by_mode["S"]  # the user process does most of the work


def test_tinyos_boots_to_the_shell_prompt():
    seconds, instructions = measure.measure_tinyos_boot(runs=1)
    assert seconds > 0 and instructions > 0


def test_a_wrong_result_is_refused(monkeypatch):
    monkeypatch.setattr(measure, "reference_checksum", lambda repeat: 0)
    with pytest.raises(measure.BenchmarkError, match="the hart executed something wrongly"):
        measure.run_compute(1, sv32=False)


def test_unicorn_computes_the_same_checksum():
    pytest.importorskip("unicorn", reason="unicorn is not installed (pip install unicorn)")
    checksum, _ = measure.run_compute_on_unicorn(2)
    assert checksum == measure.reference_checksum(2)


def test_unicorn_runs_the_instructions_the_benchmark_credits_it_with():
    unicorn = pytest.importorskip(
        "unicorn", reason="unicorn is not installed (pip install unicorn)"
    )
    program = measure.compute_program()
    emulator = unicorn.Uc(unicorn.UC_ARCH_RISCV, unicorn.UC_MODE_RISCV32)
    emulator.mem_map(measure.RAM_BASE, measure.RAM_SIZE)
    for address, data in program.segments():
        emulator.mem_write(address, data)
    emulator.mem_write(program.symbols["repeat_count"], (1).to_bytes(4, "little"))
    counted = [0]

    def count(uc, address, size, user_data):
        counted[0] += 1

    emulator.hook_add(unicorn.UC_HOOK_CODE, count)
    emulator.emu_start(program.symbols["compute_start"], program.symbols["compute_done"])
    assert counted[0] == measure.instructions_before_done(measure.run_compute(1, sv32=False))


def test_the_exit_loop_emulates_every_csr_read():
    exits, _ = measure.measure_exits(0.01)
    assert exits >= 256


def test_declaring_the_options_does_not_import_the_hart():
    code = (
        "import argparse, sys\n"
        "from virtkit import bench\n"
        "bench.add_arguments(argparse.ArgumentParser())\n"
        "assert 'numba' not in sys.modules and 'virtkit.cpu' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_arguments_default_to_bench_json_and_a_full_run():
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    args = parser.parse_args([])
    assert (args.json, args.quick) == ("bench.json", False)


@pytest.mark.slow
def test_a_quick_run_writes_every_measurement_to_json(tmp_path, capsys):
    path = tmp_path / "results.json"
    assert bench.main(argparse.Namespace(json=str(path), quick=True)) == 0
    report = json.loads(path.read_text())
    assert report["quick"] is True
    assert report["workload"]["checksum_verified"] is True
    assert list(report["results"]) == list(measure.MEASUREMENTS)
    for key, entry in report["results"].items():
        assert {"description", "value", "unit", "target", "meets_target"} <= set(entry), key
    assert report["results"]["cold_compile_seconds"]["value"] is None  # skipped when quick
    captured = capsys.readouterr()
    steps = len(measure.PROGRESS_STEPS)
    assert f"[9/{steps}] cold compile" in captured.err
    assert f"[{steps}/{steps}] tinyos syscall and forkwait under the full-virtualization" in (
        captured.err
    )
    assert "trap exits through Python" in captured.out
