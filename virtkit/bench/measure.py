"""The measurements of `virtkit bench` (see virtkit.bench for what each one means).

Each ``measure_*`` / ``run_*`` function makes one measurement and can be called alone;
``run_benchmarks`` makes them all, prints the table and writes the JSON. The compute
workload (compute.s, entered through sv32.s for the paged run and through two_stage.s
for the guest run) is checked against ``reference_checksum``, a plain-Python
implementation of the same algorithms; so is its C twin, the compute program of tinyos
(virtkit/guests/src/user/compute.c), which runs as a user process of the kernel.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path

import virtkit
from virtkit import guests
from virtkit.bench import hypervisor, monitors
from virtkit.cpu import Hart
from virtkit.cpu import exits as E
from virtkit.cpu.state import RAM_BASE
from virtkit.isa.asm import assemble
from virtkit.isa.causes import CAUSE_ILLEGAL_INSTRUCTION
from virtkit.isa.program import Program

SOURCE_DIR = Path(__file__).resolve().parent
# sv32.s comes first so that its M-mode setup sits at the start of RAM (two_stage.s uses
# its constants); compute.s follows.
COMPUTE_SOURCES = ("sv32.s", "two_stage.s", "compute.s")
RAM_SIZE = 4 << 20  # the first megapage, which sv32.s maps with 4 KiB pages
MASK32 = 0xFFFFFFFF

# Instructions of one timed compute run, and of the pure-Python run.
COMPUTE_INSTRUCTIONS = {False: 200_000_000, True: 1_000_000}  # keyed by quick
PURE_PYTHON_INSTRUCTIONS = {False: 50_000, True: 10_000}
EXIT_SECONDS = {False: 1.0, True: 0.1}
# Speed runs are made this many times and the fastest is reported: other load on the
# machine (and on the host of a virtual machine) only ever slows a run down, so the
# fastest run is the closest to what the core itself does (as timeit reports the best).
# On the shared 2-core machine this project is measured on, single compute runs of the
# same build range over 1.5x; the JSON keeps every run's figure ("mips_of_runs").
SPEED_RUNS = {False: 5, True: 1}
SUBPROCESS_TIMEOUT = 600  # seconds; a cold compile on a busy machine takes a while

# The targets: measurement -> (comparison, threshold in the measurement's unit).
TARGETS = {
    "mips_sv32": (">=", 250.0),
    "two_stage_ratio": (">=", 0.6),
    "unicorn_ratio": (">=", 0.5),
    "exits_per_second": (">=", 300_000.0),
    "tinyos_boot_seconds": ("<", 0.5),
    "warm_start_seconds": ("<", 2.0),
    "cold_compile_seconds": ("<", 30.0),
    **hypervisor.TARGETS,
}
# Every measurement, in the order it runs and is printed: key -> (description, unit).
MEASUREMENTS = {
    "mips_paging_off": ("compute, M-mode, paging off", "MIPS"),
    "mips_sv32": ("compute, U-mode, Sv32", "MIPS"),
    "mips_two_stage": ("compute, VS-mode, VS-stage Sv32 + G-stage Sv32x4", "MIPS"),
    "two_stage_ratio": ("two-stage / Sv32", "x"),
    "tinyos_mips": ("compute as a tinyos process", "MIPS"),
    "tinyos_boot_seconds": ("tinyos boot to the shell prompt", "s"),
    "unicorn_mips": ("compute on Unicorn", "MIPS"),
    "unicorn_ratio": ("virtkit / Unicorn (paging off)", "x"),
    "exits_per_second": ("trap exits through Python", "exits/s"),
    "pure_python_mips": ("pure Python (NUMBA_DISABLE_JIT=1)", "MIPS"),
    "warm_start_seconds": ("warm start (cache present)", "s"),
    "cold_compile_seconds": ("cold compile (empty cache)", "s"),
    **hypervisor.MEASUREMENTS,
    **monitors.MEASUREMENTS,
}


class BenchmarkError(RuntimeError):
    """A measurement could not be made, or its workload computed a wrong result."""


# -- The compute workload and its plain-Python reference ---------------------------------


@cache
def compute_program() -> Program:
    """sv32.s and compute.s assembled as one program at the start of RAM."""
    source = "\n".join((SOURCE_DIR / name).read_text(encoding="utf-8") for name in COMPUTE_SOURCES)
    return assemble(source, filename=" + ".join(COMPUTE_SOURCES))


def _lcg(x: int) -> int:
    """The generator of compute.s: Numerical Recipes' x' = 1664525 x + 1013904223."""
    return (x * 1664525 + 1013904223) & MASK32


def _lcg_values(seed: int, count: int) -> list[int]:
    values = []
    for _ in range(count):
        seed = _lcg(seed)
        values.append(seed)
    return values


def _signed32(value: int) -> int:
    return value - (1 << 32) if value & 0x8000_0000 else value


def _hash31(values, h: int = 0) -> int:
    for value in values:
        h = (31 * h + value) & MASK32
    return h


def sieve_reference(size: int) -> tuple[int, int]:
    """The number of primes below ``size`` and their sum (mod 2^32)."""
    is_prime = [True] * size
    is_prime[0] = is_prime[1] = False
    i = 2
    while i * i < size:
        if is_prime[i]:
            for multiple in range(i * i, size, i):
                is_prime[multiple] = False
        i += 1
    primes = [n for n in range(size) if is_prime[n]]
    return len(primes), sum(primes) & MASK32


def crc32_reference(data: bytes, polynomial: int) -> int:
    """Bitwise CRC-32 with the reflected polynomial (the zlib / IEEE 802.3 CRC)."""
    crc = MASK32
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (polynomial if crc & 1 else 0)
    return crc ^ MASK32


def matmul_reference(n: int, seed: int) -> int:
    """Hash of C = A B, A and B being n x n matrices of LCG values shifted right by 20."""
    values = [_signed32(x) >> 20 for x in _lcg_values(seed, 2 * n * n)]
    a = [values[i * n : (i + 1) * n] for i in range(n)]
    b = [values[n * n + i * n : n * n + (i + 1) * n] for i in range(n)]
    c = [sum(a[i][k] * b[k][j] for k in range(n)) for i in range(n) for j in range(n)]
    return _hash31(value & MASK32 for value in c)


def sort_reference(n: int, seed: int, value_range: int) -> int:
    """Hash of the sorted array of (x >> 8) mod range over n LCG values, then its mean."""
    array = sorted((x >> 8) % value_range for x in _lcg_values(seed, n))
    return _hash31([sum(array) // n], _hash31(array))


def kernel_results(constants: dict[str, int]) -> list[int]:
    """The values compute.s folds into its checksum in one repetition, in its order."""
    c = constants
    count, total = sieve_reference(c["SIEVE_SIZE"])
    crc_data = bytes(x >> 24 for x in _lcg_values(c["CRC_SEED"], c["CRC_BYTES"]))
    return [
        count,
        total,
        crc32_reference(crc_data, c["CRC32_POLY"]),
        matmul_reference(c["MAT_N"], c["MAT_SEED"]),
        sort_reference(c["SORT_N"], c["SORT_SEED"], c["SORT_RANGE"]),
    ]


def reference_checksum(repeat: int) -> int:
    """What compute.s leaves in a0 after ``repeat`` repetitions (FNV-1 over the results).

    Every repetition works on the same inputs, so the kernels run once here.
    """
    constants = compute_program().constants
    results = kernel_results(constants)
    checksum = constants["FNV_OFFSET_BASIS"]
    for _ in range(repeat):
        for value in results:
            checksum = ((checksum ^ value) * constants["FNV_PRIME"]) & MASK32
    return checksum


# -- Running the workload ---------------------------------------------------------------------


@dataclass(frozen=True)
class ComputeRun:
    """One run of compute.s: what it computed, how many instructions, how long."""

    checksum: int
    instructions: int
    seconds: float
    stats: dict


def compute_hart(repeat: int, *, sv32: bool = False, two_stage: bool = False) -> Hart:
    """A hart loaded with the workload, ready to run from sv32_start, two_stage_start
    or compute_start.

    Python owns every trap (trap_exits="all"): the workload takes none, so a trap
    means the hart went wrong and ends the run where it happened.
    """
    program = compute_program()
    hart = Hart(RAM_SIZE, trap_exits="all")
    for address, data in program.segments():
        hart.write_memory(address, data)
    hart.write_word(program.symbols["repeat_count"], repeat)
    hart.tohost = program.symbols["tohost"]
    entry = "two_stage_start" if two_stage else "sv32_start" if sv32 else "compute_start"
    hart.pc = program.symbols[entry]
    return hart


def run_compute(repeat: int, *, sv32: bool = False, two_stage: bool = False) -> ComputeRun:
    """Run the workload to its end on the hart; raise BenchmarkError if it went wrong."""
    hart = compute_hart(repeat, sv32=sv32, two_stage=two_stage)
    start = time.perf_counter()
    exit = hart.run()
    seconds = time.perf_counter() - start
    where = "U-mode with Sv32" if sv32 else "M-mode without paging"
    if two_stage:
        where = "VS-mode with two-stage translation"
    if exit.reason != E.EXIT_HALT:
        raise BenchmarkError(f"the compute workload ({where}) did not finish: {exit}")
    checksum = hart.x["a0"]
    expected = reference_checksum(repeat)
    if checksum != expected:
        raise BenchmarkError(
            f"the compute workload ({where}, {repeat} repetitions) ended with checksum "
            f"{checksum:#010x}, but the Python reference computes {expected:#010x}: "
            "the hart executed something wrongly"
        )
    return ComputeRun(checksum, hart.instret, seconds, hart.stats)


def fastest_in_turns(
    measures: dict[str, Callable[[], ComputeRun]], runs: int
) -> dict[str, tuple[ComputeRun, list[float]]]:
    """The fastest of ``runs`` calls of each of ``measures`` (see SPEED_RUNS), and the MIPS
    of every run, slowest first, by key. The measurements take turns: each round runs
    every one once, so that a busy spell on the machine slows one run of each rather than
    every run of one (the hypervisor figures are measured the same way)."""
    done: dict[str, list[ComputeRun]] = {key: [] for key in measures}
    for _ in range(runs):
        for key, measure in measures.items():
            done[key].append(measure())
    return {
        key: (
            min(key_runs, key=lambda run: run.seconds),
            sorted(round(run.instructions / run.seconds / 1e6, 1) for run in key_runs),
        )
        for key, key_runs in done.items()
    }


def instructions_before_done(bare_run: ComputeRun) -> int:
    """Instructions from compute_start up to (not including) compute_done.

    The bare run retires them, then the straight-line code from compute_done through
    the store at compute_halt that ends it.
    """
    symbols = compute_program().symbols
    tail = (symbols["compute_halt"] - symbols["compute_done"]) // 4 + 1
    return bare_run.instructions - tail


def unicorn_version() -> str | None:
    try:
        return metadata.version("unicorn")
    except metadata.PackageNotFoundError:
        return None


def run_compute_on_unicorn(repeat: int) -> tuple[int, float]:
    """Run compute.s on Unicorn from compute_start to compute_done: (a0, seconds)."""
    from unicorn import UC_ARCH_RISCV, UC_MODE_RISCV32, Uc
    from unicorn.riscv_const import UC_RISCV_REG_A0

    program = compute_program()
    emulator = Uc(UC_ARCH_RISCV, UC_MODE_RISCV32)
    emulator.mem_map(RAM_BASE, RAM_SIZE)
    for address, data in program.segments():
        emulator.mem_write(address, data)
    emulator.mem_write(program.symbols["repeat_count"], repeat.to_bytes(4, "little"))
    start = time.perf_counter()
    emulator.emu_start(program.symbols["compute_start"], program.symbols["compute_done"])
    seconds = time.perf_counter() - start
    return emulator.reg_read(UC_RISCV_REG_A0), seconds


# -- The workload under tinyos ------------------------------------------------------------

TINYOS_PROMPT = "$ "  # what the shell prints once the system is up
TINYOS_BOOT_RUNS = 3  # boots timed; the median is reported


def run_tinyos_compute(repeat: int) -> ComputeRun:
    """Boot tinyos with compute as its first process, ``repeat`` repetitions, to shutdown.

    The instructions are those of the whole run: boot, the user process (U-mode, Sv32),
    the kernel's timer ticks and system calls, and the shutdown.
    """
    machine = guests.boot_tinyos(f"init=compute n={repeat}")
    start = time.perf_counter()
    result = machine.run(until=10 * COMPUTE_INSTRUCTIONS[False] + 10 * repeat * 10**6)
    seconds = time.perf_counter() - start
    output = machine.console.text
    if (result.reason, result.exit_code) != ("halt", 0):
        raise BenchmarkError(f"compute under tinyos did not finish: {result}; output:\n{output}")
    expected = reference_checksum(repeat)
    line = f"compute: n={repeat} checksum={expected:#010x}"
    if line not in output.splitlines():
        raise BenchmarkError(
            f"compute under tinyos ({repeat} repetitions) did not print {line!r}, which "
            f"the Python reference computes; it printed:\n{output}"
        )
    return ComputeRun(expected, machine.hart.instret, seconds, machine.hart.stats)


def measure_tinyos_boot(runs: int = TINYOS_BOOT_RUNS) -> tuple[float, int]:
    """Seconds and instructions from a new Machine to the shell's prompt (median of runs).

    Timed in this process after the hart's code is loaded: the warm-cache case.
    """
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        machine = guests.boot_tinyos()
        result = machine.run(until=TINYOS_PROMPT)
        timings.append(time.perf_counter() - start)
        if result.reason != "console":
            raise BenchmarkError(
                f"tinyos did not reach the shell prompt: {result}; output:\n{machine.console.text}"
            )
    timings.sort()
    return timings[len(timings) // 2], machine.hart.instret


# -- Exits through Python -------------------------------------------------------------------

EXIT_LOOP = """
# U-mode may not read mscratch, so each csrr is an illegal instruction that exits.
exit_loop:
    csrr a0, mscratch
    addi s0, s0, 1          # counts the csrr's that completed
    j    exit_loop
"""


def measure_exits(duration: float) -> tuple[int, float]:
    """Trap-and-emulate a CSR read from U-mode for about ``duration`` seconds.

    Returns (exits, seconds). The handler is the smallest a monitor can be: put a value
    in rd, step over the instruction, run again.
    """
    program = assemble(EXIT_LOOP, filename="<exit loop>")
    hart = Hart(1 << 20, trap_exits="all")
    for address, data in program.segments():
        hart.write_memory(address, data)
    hart.csr["pmpaddr0"] = MASK32  # PMP open to U-mode, as sv32.s does it
    hart.csr["pmpcfg0"] = 0x1F  # NAPOT | X | W | R
    hart.pc = program.entry
    hart.mode = "U"
    hart.run(1)  # the first exit, with the core's first call, is not timed
    hart.pc += 4
    exits = 0
    start = time.perf_counter()
    deadline = start + duration
    while True:
        exit = hart.run(1000)
        if exit.reason != E.EXIT_TRAP or exit.cause != CAUSE_ILLEGAL_INSTRUCTION:
            raise BenchmarkError(f"the exit loop stopped with {exit}, not an illegal csrr")
        hart.x[(exit.instruction >> 7) & 31] = exits  # rd of the csrr
        hart.pc = exit.pc + 4
        exits += 1
        if exits % 256 == 0 and time.perf_counter() >= deadline:
            break
    seconds = time.perf_counter() - start
    if hart.x["s0"] != exits:  # one addi after each emulated csrr
        raise BenchmarkError(f"the exit loop completed {hart.x['s0']} reads, expected {exits}")
    return exits, seconds


# -- Subprocesses: pure Python, warm start, cold compile ---------------------------------------


def _subprocess_env(**changes: str) -> dict[str, str]:
    """The environment of a child Python that imports this same virtkit."""
    env = dict(os.environ)
    env.pop("NUMBA_DISABLE_JIT", None)
    package_root = str(Path(virtkit.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    env.update(changes)
    return env


def _run_python(code: str, env: dict[str, str]) -> tuple[str, float]:
    """Run ``code`` in a new interpreter; return (stdout, wall-clock seconds)."""
    start = time.perf_counter()
    try:
        result = subprocess.run(
            [sys.executable, "-c", code],
            env=env,
            capture_output=True,
            text=True,
            timeout=SUBPROCESS_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchmarkError(f"a child Python did not finish in {exc.timeout} s") from exc
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise BenchmarkError(
            f"a child Python failed (status {result.returncode}):\n{result.stderr.strip()}"
        )
    return result.stdout, seconds


def pure_python_probe(budget: int) -> dict:
    """Run ``budget`` instructions of the workload; return the time and the final state.

    Called in a child process with NUMBA_DISABLE_JIT=1, and in this one to check it.
    """
    hart = compute_hart(1, sv32=False)
    start = time.perf_counter()
    exit = hart.run(budget)
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "instructions": hart.instret,
        "exit": exit.name,
        "pc": hart.pc,
        "x": list(hart.x),
    }


def measure_pure_python(budget: int) -> dict:
    """The pure-Python probe in a child process, its end state checked against the JIT's."""
    code = (
        "import json, sys\n"
        "from virtkit.bench.measure import pure_python_probe\n"
        f"json.dump(pure_python_probe({budget}), sys.stdout)\n"
    )
    stdout, _ = _run_python(code, _subprocess_env(NUMBA_DISABLE_JIT="1"))
    interpreted = json.loads(stdout)
    compiled = pure_python_probe(budget)
    for key in ("instructions", "exit", "pc", "x"):
        if interpreted[key] != compiled[key]:
            raise BenchmarkError(
                f"after {budget} instructions the pure-Python core and the compiled core "
                f"disagree on {key}: {interpreted[key]} against {compiled[key]}"
            )
    return interpreted


START_PROBE = (
    "from virtkit.cpu import Hart\n"
    "hart = Hart()\n"
    "hart.write_word(hart.ram_base, 0x00000013)  # addi x0, x0, 0\n"
    "hart.pc = hart.ram_base\n"
    "hart.run(1)\n"
)


def measure_start(numba_cache_dir: str | None = None) -> float:
    """Seconds for a new process to import virtkit, build a Hart and run one instruction."""
    changes = {} if numba_cache_dir is None else {"NUMBA_CACHE_DIR": numba_cache_dir}
    _, seconds = _run_python(START_PROBE, _subprocess_env(**changes))
    return seconds


def measure_cold_compile() -> float:
    """measure_start with Numba's cache in a new, empty folder: everything compiles."""
    with tempfile.TemporaryDirectory(prefix="virtkit-bench-numba-") as cache_dir:
        return measure_start(cache_dir)


# -- The benchmark --------------------------------------------------------------------------

PROGRESS_STEPS = (
    "checking the workload and compiling the core",
    "compute workload: M-mode paging off, U-mode Sv32, VS-mode two-stage, in turns",
    "compute workload as a tinyos process",
    "tinyos boot to the shell prompt",
    "compute workload on Unicorn",
    "trap exits through a Python handler",
    "pure-Python core in a child process",
    "warm start in a child process",
    "cold compile in a child process",
    "1, 4 and 16 tinyos VMs under the hypervisor",
    "tinyos syscall and forkwait under the full-virtualization monitor",
)


def _progress(step: int, text: str) -> None:
    print(f"[{step}/{len(PROGRESS_STEPS)}] {text} ...", file=sys.stderr, flush=True)


def _result(key: str, value: float | None, note: str = "", **detail) -> dict:
    """One measurement, with its target and whether it meets it."""
    description, unit = MEASUREMENTS[key]
    entry = {"description": description, "value": value, "unit": unit}
    target = TARGETS.get(key)
    entry["target"] = f"{target[0]} {target[1]:,g}" if target else None
    if target is None or value is None:
        entry["meets_target"] = None
    elif target[0] == ">=":
        entry["meets_target"] = value >= target[1]
    else:
        entry["meets_target"] = value < target[1]
    if note:
        entry["note"] = note
    entry.update(detail)
    return entry


def _environment() -> dict:
    versions = {"virtkit": virtkit.__version__, "python": platform.python_version()}
    for package in ("numba", "numpy"):
        versions[package] = metadata.version(package)
    versions["unicorn"] = unicorn_version()
    return {
        "versions": versions,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "numba_disable_jit": os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0"),
    }


def run_benchmarks(json_path: str | os.PathLike | None = None, quick: bool = False) -> dict:
    """Run every measurement, print the table, write ``json_path`` (if given); return it.

    ``quick`` runs a short smoke version (about a million instructions per compute run,
    a tenth of a second of exits, no cold compile): the figures are then only indicative.
    """
    results: dict[str, dict] = {}

    _progress(1, PROGRESS_STEPS[0])
    calibration = run_compute(1, sv32=False)  # also loads or compiles the core
    repeat = max(1, round(COMPUTE_INSTRUCTIONS[quick] / calibration.instructions))

    runs = SPEED_RUNS[quick]
    _progress(2, f"{PROGRESS_STEPS[1]}, {repeat} repetitions, best of {runs}")
    speed = fastest_in_turns(
        {
            "paging off": lambda: run_compute(repeat, sv32=False),
            "sv32": lambda: run_compute(repeat, sv32=True),
            "two-stage": lambda: run_compute(repeat, two_stage=True),
        },
        runs,
    )
    bare, bare_runs = speed["paging off"]
    results["mips_paging_off"] = _result(
        "mips_paging_off",
        bare.instructions / bare.seconds / 1e6,
        instructions=bare.instructions,
        seconds=bare.seconds,
        mips_of_runs=bare_runs,
    )

    paged, paged_runs = speed["sv32"]
    results["mips_sv32"] = _result(
        "mips_sv32",
        paged.instructions / paged.seconds / 1e6,
        instructions=paged.instructions,
        instructions_by_mode=paged.stats["instructions_by_mode"],
        tlb_misses=paged.stats["tlb_misses"],
        seconds=paged.seconds,
        mips_of_runs=paged_runs,
    )

    guest, guest_runs = speed["two-stage"]
    results["mips_two_stage"] = _result(
        "mips_two_stage",
        guest.instructions / guest.seconds / 1e6,
        instructions=guest.instructions,
        instructions_by_mode=guest.stats["instructions_by_mode"],
        tlb_misses=guest.stats["tlb_misses"],
        seconds=guest.seconds,
        mips_of_runs=guest_runs,
    )
    sv32_mips = results["mips_sv32"]["value"]
    results["two_stage_ratio"] = _result(
        "two_stage_ratio",
        results["mips_two_stage"]["value"] / sv32_mips,
        note=f"two-stage {results['mips_two_stage']['value']:.1f} MIPS against Sv32 "
        f"{sv32_mips:.1f} MIPS",
    )

    _progress(3, f"{PROGRESS_STEPS[2]}, {repeat} repetitions")
    try:
        tinyos = run_tinyos_compute(repeat)
    except guests.GuestNotFoundError as exc:
        results["tinyos_mips"] = _result("tinyos_mips", None, str(exc))
    else:
        results["tinyos_mips"] = _result(
            "tinyos_mips",
            tinyos.instructions / tinyos.seconds / 1e6,
            "boot, kernel and shutdown included",
            instructions=tinyos.instructions,
            instructions_by_mode=tinyos.stats["instructions_by_mode"],
            tlb_misses=tinyos.stats["tlb_misses"],
            seconds=tinyos.seconds,
        )

    _progress(4, PROGRESS_STEPS[3])
    try:
        boot_seconds, boot_instructions = measure_tinyos_boot()
    except guests.GuestNotFoundError as exc:
        results["tinyos_boot_seconds"] = _result("tinyos_boot_seconds", None, str(exc))
    else:
        results["tinyos_boot_seconds"] = _result(
            "tinyos_boot_seconds",
            boot_seconds,
            f"median of {TINYOS_BOOT_RUNS} boots, warm JIT cache",
            instructions=boot_instructions,
        )

    _progress(5, PROGRESS_STEPS[4])
    if unicorn_version() is None:
        note = "unicorn is not installed (pip install unicorn)"
        results["unicorn_mips"] = _result("unicorn_mips", None, note)
        results["unicorn_ratio"] = _result("unicorn_ratio", None, note)
    else:
        checksum, seconds = min(
            (run_compute_on_unicorn(repeat) for _ in range(runs)), key=lambda run: run[1]
        )
        if checksum != bare.checksum:
            raise BenchmarkError(
                f"Unicorn ended the compute workload with {checksum:#010x}, "
                f"virtkit and the Python reference with {bare.checksum:#010x}"
            )
        instructions = instructions_before_done(bare)
        unicorn_mips = instructions / seconds / 1e6
        results["unicorn_mips"] = _result(
            "unicorn_mips",
            unicorn_mips,
            f"unicorn {unicorn_version()}; its stores take QEMU's slow path (issue #1970)",
            instructions=instructions,
            seconds=seconds,
        )
        virtkit_mips = results["mips_paging_off"]["value"]
        results["unicorn_ratio"] = _result(
            "unicorn_ratio",
            virtkit_mips / unicorn_mips,
            note=f"virtkit {virtkit_mips:.1f} MIPS against Unicorn {unicorn_mips:.1f} MIPS",
        )

    _progress(6, PROGRESS_STEPS[5])
    exits, seconds = max(
        (measure_exits(EXIT_SECONDS[quick]) for _ in range(runs)),
        key=lambda run: run[0] / run[1],
    )
    results["exits_per_second"] = _result(
        "exits_per_second", exits / seconds, exits=exits, seconds=seconds
    )

    _progress(7, PROGRESS_STEPS[6])
    probe = measure_pure_python(PURE_PYTHON_INSTRUCTIONS[quick])
    results["pure_python_mips"] = _result(
        "pure_python_mips",
        probe["instructions"] / probe["seconds"] / 1e6,
        instructions=probe["instructions"],
        seconds=probe["seconds"],
    )

    _progress(8, PROGRESS_STEPS[7])
    first = measure_start()
    if quick:
        results["warm_start_seconds"] = _result(
            "warm_start_seconds", first, "one run only (--quick): may include compiling"
        )
    else:
        results["warm_start_seconds"] = _result(
            "warm_start_seconds", measure_start(), note=f"first run {first:.2f} s"
        )

    _progress(9, PROGRESS_STEPS[8])
    if quick:
        results["cold_compile_seconds"] = _result(
            "cold_compile_seconds", None, "skipped with --quick"
        )
    else:
        results["cold_compile_seconds"] = _result("cold_compile_seconds", measure_cold_compile())

    _progress(len(PROGRESS_STEPS) - 1, PROGRESS_STEPS[-2])
    try:
        results.update(hypervisor.measure_hypervisor(quick, _result, SPEED_RUNS[quick]))
    except hypervisor.HypervisorBenchmarkError as exc:
        raise BenchmarkError(str(exc)) from exc

    _progress(len(PROGRESS_STEPS), PROGRESS_STEPS[-1])
    try:
        results.update(monitors.measure_monitors(quick, _result))
    except monitors.MonitorBenchmarkError as exc:
        raise BenchmarkError(str(exc)) from exc

    report = {
        "quick": quick,
        "environment": _environment(),
        "workload": {
            "program": " + ".join(COMPUTE_SOURCES),
            "repetitions": repeat,
            "instructions_per_repetition": calibration.instructions,
            "checksum": f"{bare.checksum:#010x}",
            "checksum_verified": True,
        },
        "results": results,
    }
    print(format_table(report))
    if json_path is not None:
        Path(json_path).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"written to {json_path}")
    return report


def _format_value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "exits/s":
        return f"{value:,.0f} {unit}"
    if unit == "s":
        return f"{value:.2f} {unit}"
    if unit == "x":
        return f"{value:.2f}{unit}"
    return f"{value:,.2f} {unit}" if value < 10 else f"{value:,.1f} {unit}"


def format_table(report: dict) -> str:
    """The results as a text table: measurement, value, target, verdict."""
    rows = [("measurement", "result", "target", "")]
    for entry in report["results"].values():
        verdict = {True: "ok", False: "below target", None: ""}[entry["meets_target"]]
        if entry.get("note") and entry["value"] is None:
            verdict = entry["note"]
        target = entry["target"] or ""
        if target and entry["unit"] != "x":
            target = f"{target} {entry['unit']}"
        rows.append(
            (entry["description"], _format_value(entry["value"], entry["unit"]), target, verdict)
        )
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = []
    for row in rows:
        cells = [row[0].ljust(widths[0]), row[1].rjust(widths[1]), row[2].ljust(widths[2]), row[3]]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "-" * len(lines[0]))
    workload = report["workload"]
    header = (
        f"virtkit {report['environment']['versions']['virtkit']} benchmark"
        f"{' (--quick)' if report['quick'] else ''}: {workload['repetitions']} x "
        f"{workload['instructions_per_repetition']:,} instructions, checksum "
        f"{workload['checksum']} verified"
    )
    if report["environment"]["numba_disable_jit"]:
        header += (
            "\nNUMBA_DISABLE_JIT is set here: the hart figures are those of the pure-Python core"
        )
    return "\n".join([header, "", *lines])
