"""Monitor throughput for `virtkit bench`: tinyos under the full-virtualization monitor.

The syscall and forkwait workloads boot the unmodified tinyos under
virtkit.monitors.fullvirt, once with trap-and-emulate and once with binary translation,
and run to shutdown. Reported for each: guest instructions a second (everything the
guest retired, boot included, over the wall-clock time of the whole run, the monitor's
Python included) and VM exits a second (exits through the monitor's Python handlers,
the call-outs of translated code included). The result line each workload prints is
checked first: a wrong run gets no figure.

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
    return results
