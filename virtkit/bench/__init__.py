"""`virtkit bench`: how fast the hart is, measured against the targets virtkit is built to.

A teaching hypervisor is only usable if a guest boots in seconds and a monitor written in
Python can take hundreds of thousands of exits a second. This module measures that:

  compute (paging off)  MIPS of compute.s (sieve, CRC-32, matrix product, insertion sort)
                        in M-mode with satp = Bare;
  compute (Sv32)        the same code in U-mode under Sv32, entered through sv32.s: the
                        speed of a user process, every access translated (target: 250 MIPS);
  compute (two-stage)   the same code in VS-mode with the hypervisor extension's two
                        stages on, VS-stage Sv32 and G-stage Sv32x4, entered through
                        two_stage.s: the speed of a guest kernel (target: 0.6 of Sv32's);
  compute (tinyos)      the same kernels in C (guests/src/user/compute.c) run as a process
                        of tinyos: boot, timer ticks, system calls and shutdown included (no
                        target; compare it with the Sv32 figure);
  tinyos boot           a new Machine booting the shipped tinyos image to the shell's "$ "
                        prompt, in this process with the core loaded (target 0.5 s; the
                        median of three boots);
  Unicorn               the same code on Unicorn (QEMU's TCG, unicorn-engine.org) and the
                        ratio virtkit / Unicorn (target: 0.5);
  exits                 trap exits a second through a trivial Python handler that emulates
                        a CSR read, the trap-and-emulate loop of virtkit.monitors (300,000/s);
  pure Python           MIPS of the same core under NUMBA_DISABLE_JIT=1, the CI leg that
                        keeps the core readable as plain Python (no target);
  hypervisor            1, 4 and 16 tinyos VMs running compute on one hart under the
                        type-1 hypervisor (credit, 1 ms slice): aggregate guest MIPS, and
                        16 VMs against 1 (target 0.8), with real and with virtual guest
                        clocks (hypervisor.py says why they differ), and 1 and 16
                        hardware-assisted VMs (the H extension) with real clocks;
  monitors              tinyos syscall and forkwait under the full-virtualization monitor
                        (trap-and-emulate and binary translation): guest MIPS and exits a
                        second; and one guest CSR exit through the monitor, with the
                        caches warm and after 8 MiB of other memory traffic (monitors.py);
  warm start            a new process that imports virtkit, builds a Hart and runs one
                        instruction, with Numba's cache present (2 s);
  cold compile          the same with an empty Numba cache, so that every function of the
                        core is compiled (30 s).

No speed is reported for a run whose result is wrong: the checksum the workload leaves in
a0 is compared with ``measure.reference_checksum``, a plain-Python implementation of the
same four algorithms. Unicorn's instruction count is not measured with a per-instruction hook
(that would slow it down many times); it runs exactly the instructions of the virtkit
run without paging, from ``compute_start`` to ``compute_done``. Unicorn 2 (seen with
2.1.4) sends every store through QEMU's slow path (unicorn-engine/unicorn issue #1970,
pull request #2337): it runs a register-only loop at hundreds of MIPS but this workload,
which stores often, far slower. The ratio therefore flatters virtkit.

The figures are wall-clock times of this machine and are written only to the table this
prints and the JSON file it writes; targets are shown, never asserted. The compute runs,
Unicorn's, the exit loop and the hypervisor runs are made five times each and the
fastest is reported (measure.SPEED_RUNS): load from elsewhere only ever slows a run
down. The three compute configurations take turns, as the hypervisor's do, so that a
busy spell does not fall on all the runs of one.

Files: compute.s (the workload), sv32.s (its paged entry), two_stage.s (its entry as a
guest), measure.py (the measurements, the Python reference, the table); this module is
the command line.
"""

from __future__ import annotations

import argparse
import os

# The hart, Numba and the assembler are imported only when a benchmark runs
# (virtkit.bench.measure), so that declaring these options costs `virtkit` nothing.


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `virtkit bench`."""
    parser.add_argument(
        "--json",
        metavar="PATH",
        default="bench.json",
        help="where to write the results as JSON (default: bench.json)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a short smoke run (about a million instructions per run, no cold compile)",
    )


def run_benchmarks(json_path: str | os.PathLike | None = None, quick: bool = False) -> dict:
    """Run every measurement, print the table, write ``json_path`` (if given); return it."""
    from virtkit.bench.measure import run_benchmarks

    return run_benchmarks(json_path, quick=quick)


def main(args: argparse.Namespace) -> int:
    """`virtkit bench`: run the benchmarks; 0 when every measurement could be made.

    A measurement that cannot be made, or a workload whose checksum is wrong, raises
    virtkit.bench.measure.BenchmarkError.
    """
    run_benchmarks(args.json, quick=args.quick)
    return 0
