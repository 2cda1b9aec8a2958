"""Monitor throughput for `virtkit bench`: tinyos under the full-virtualization monitor.

The syscall and forkwait workloads boot the unmodified tinyos under
virtkit.monitors.fullvirt, once with trap-and-emulate and once with binary translation,
and run to shutdown. Reported for each: guest instructions a second (everything the
guest retired, boot included, over the wall-clock time of the whole run, the monitor's
Python included) and VM exits a second (exits through the monitor's Python handlers,
the call-outs of translated code included). The result line each workload prints is
checked first: a wrong run gets no figure.

One exit is also timed alone: a guest kernel's CSR read that the monitor emulates, one
``run`` call each (so the start of ``run`` is in the figure, as at a hypervisor's
dispatch), with the caches warm (the same exit over and over) and after 8 MiB of other
memory traffic, which leaves this core's caches cold. The difference is what Python
pays for its own code and objects coming back from memory. It grows with the traffic:
on the 2-core machine of issue 3 (512 KiB L2 a core, 32 MiB L3 shared) an exit cost
about 12 us warm, 16 us after 0.5 to 2 MiB, 22 us after 8 MiB and 66 us after 32 MiB.
A guest's timer tick always comes after other guest code has run (another VM's, or
its own 10 ms): in the hypervisor figures (virtkit.bench.hypervisor) its exits cost
the same, kind for kind, whether the guest shares the hart with 15 others or runs
alone, and more than the warm exit here.

These are speeds of this simulator on this machine; what the techniques would cost on
hardware is the cost model's business (virtkit.costs, ``FullVirtMonitor.report``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from virtkit import guests

# Workload -> its n for a full run and for --quick, and the line it must print.
WORKLOADS = {
    "syscall": ({False: 2000, True: 200}, "syscall: n={n} getpid calls returned pid 1"),
    "forkwait": (
        {False: 100, True: 10},
        "forkwait: n={n} children forked and reaped, exit codes sum {sum}",
    ),
}
TECHNIQUES = {"te": ("trap-and-emulate", False), "bt": ("binary translation", True)}
LIMIT = 2_000_000_000

MEASUREMENTS = {}
for _workload in WORKLOADS:
    for _key, (_name, _) in TECHNIQUES.items():
        MEASUREMENTS[f"fullvirt_{_workload}_{_key}_mips"] = (
            f"tinyos {_workload}, {_name}: guest",
            "MIPS",
        )
        MEASUREMENTS[f"fullvirt_{_workload}_{_key}_exits"] = (
            f"tinyos {_workload}, {_name}: exits",
            "exits/s",
        )


MEASUREMENTS["fullvirt_csr_exit_warm_us"] = ("one CSR exit, trap-and-emulate, caches warm", "us")
MEASUREMENTS["fullvirt_csr_exit_cold_us"] = (
    "one CSR exit, after 8 MiB of other traffic",
    "us",
)
# A guest kernel of CSR reads and nothing else: every instruction is one exit.
CSR_READS = 1024
TRAFFIC_BYTES = 8 << 20  # more than this core's L2 (and L1) many times over
CACHE_LINE = 64
CSR_EXIT_SAMPLES = {False: 2000, True: 100}  # exits timed in each state


class MonitorBenchmarkError(RuntimeError):
    """A workload under the monitor did not finish, or printed a wrong result."""


def run_under_monitor(workload: str, translate: bool, n: int) -> dict:
    """Boot tinyos with ``workload n=<n>`` under the monitor, run it to shutdown."""
    from virtkit.monitors.fullvirt import FullVirtMonitor

    monitor = FullVirtMonitor(disk=bytes(guests.BLANK_DISK_BYTES), translate=translate)
    monitor.load(guests.tinyos(), cmdline=f"init={workload} n={n}")
    start = time.perf_counter()
    result = monitor.run(until=LIMIT)
    seconds = time.perf_counter() - start
    output = monitor.console.text
    line = WORKLOADS[workload][1].format(n=n, sum=sum(i & 0xFF for i in range(n)))
    if (result.reason, result.exit_code) != ("halt", 0) or line not in output.splitlines():
        raise MonitorBenchmarkError(
            f"{workload} n={n} under the monitor (translate={translate}) did not print "
            f"{line!r} and shut down: {result}; output:\n{output}"
        )
    report = monitor.report()
    return {
        "instructions": report.instructions,
        "exits": report.exits,
        "seconds": seconds,
        "modelled_cycles": report.cycles,
        "exits_by_cause": report.exits_by_cause,
    }


def csr_exit_times(samples: int) -> tuple[float, float]:
    """Median seconds of one guest CSR read emulated by the monitor (a ``run`` of one
    instruction), caches warm and after TRAFFIC_BYTES of other memory traffic."""
    import numpy as np

    from virtkit.isa.asm import assemble
    from virtkit.machine import board
    from virtkit.monitors.fullvirt import FullVirtMonitor

    body = "\n".join(["csrr a0, sscratch"] * CSR_READS)
    program = assemble(f"_start:\n{body}\nj _start\n", base=board.KERNEL_BASE)
    monitor = FullVirtMonitor(ram_mb=4)
    monitor.load(program)
    monitor.run(until=2)  # the first exits fill the shadow page tables: not timed
    traffic = np.zeros(TRAFFIC_BYTES, dtype=np.uint8)
    times: dict[bool, list[float]] = {False: [], True: []}
    for sample in range(2 * samples):
        cold = bool(sample % 2)  # in turns, so that a busy spell weighs on both alike
        if cold:
            traffic[::CACHE_LINE] += 1  # touch every line: the caches hold this instead
        if monitor.hart.pc == board.KERNEL_BASE + 4 * CSR_READS:
            monitor.run(until=1)  # the jump back: no exit, not timed
        exits = sum(monitor.exits.values())
        start = time.perf_counter()
        monitor.run(until=1)
        seconds = time.perf_counter() - start
        if sum(monitor.exits.values()) != exits + 1:
            raise MonitorBenchmarkError(f"a CSR read made no exit: {monitor.exits}")
        times[cold].append(seconds)
    return float(np.median(times[False])), float(np.median(times[True]))


def measure_monitors(quick: bool, result: Callable[..., dict]) -> dict[str, dict]:
    """Every figure of MEASUREMENTS, as ``result(key, value, note, **detail)`` makes them."""
    results = {}
    for workload, (sizes, _) in WORKLOADS.items():
        n = sizes[quick]
        for key, (_, translate) in TECHNIQUES.items():
            run = run_under_monitor(workload, translate, n)
            note = f"n={n}, boot included"
            results[f"fullvirt_{workload}_{key}_mips"] = result(
                f"fullvirt_{workload}_{key}_mips",
                run["instructions"] / run["seconds"] / 1e6,
                note,
                instructions=run["instructions"],
                seconds=run["seconds"],
            )
            results[f"fullvirt_{workload}_{key}_exits"] = result(
                f"fullvirt_{workload}_{key}_exits",
                run["exits"] / run["seconds"],
                note,
                exits=run["exits"],
                exits_by_cause=run["exits_by_cause"],
                modelled_cycles=run["modelled_cycles"],
            )
    samples = CSR_EXIT_SAMPLES[quick]
    warm, cold = csr_exit_times(samples)
    note = f"median of {samples}, one run(until=1) each"
    results["fullvirt_csr_exit_warm_us"] = result("fullvirt_csr_exit_warm_us", warm * 1e6, note)
    results["fullvirt_csr_exit_cold_us"] = result(
        "fullvirt_csr_exit_cold_us", cold * 1e6, f"{note}; {cold / warm:.1f}x the warm exit"
    )
    return results
