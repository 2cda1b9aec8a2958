"""Model 2, the hypervisor (type 1): many VMs on one machine, queued, dispatched and executed.

    from virtkit.monitors.hypervisor import Hypervisor
    hv = Hypervisor("credit")
    hv.add_vm(workload="compute n=20", weight=512)
    hv.add_vm(workload="io n=8")
    hv.run()
    print(hv.report())

The hypervisor itself:

- ``hypervisor``: ``Hypervisor``, the dispatch loop: it owns the machine, partitions its
  RAM, keeps the real timer, world-switches between vCPUs and runs each VM's monitor;
  the trace of its decisions, and its runs as a ``Timeline``;
- ``vm``: a VM (its partition of RAM, its vCPU, its devices and console) and its
  states.

The scheduling half lives in these modules, independent of how a VM is run:

- ``scheduler``: the interface every policy implements (``Scheduler``, ``Dispatch``);
- ``round_robin``, ``credit`` (Xen's credit scheduler), ``stride`` (Waldspurger and
  Weihl's stride scheduling): the policies;
- ``simulation``: vCPUs as demand patterns driving any policy, giving a ``Timeline``;
- ``metrics``: shares against entitlements, Jain's index, wake-up latency, world
  switches, and the seeded problems of the graded exercises.
"""

from __future__ import annotations

from virtkit.monitors.hypervisor.credit import CreditScheduler
from virtkit.monitors.hypervisor.round_robin import RoundRobin
from virtkit.monitors.hypervisor.scheduler import Scheduler
from virtkit.monitors.hypervisor.stride import StrideScheduler

SCHEDULERS = {
    RoundRobin.name: RoundRobin,
    CreditScheduler.name: CreditScheduler,
    StrideScheduler.name: StrideScheduler,
}


def make_scheduler(name: str, **settings) -> Scheduler:
    """A new scheduler by its ``--scheduler`` name.

    ``settings`` go to its constructor: ``make_scheduler("credit", tslice_ms=10)``.
    """
    try:
        policy = SCHEDULERS[name]
    except KeyError:
        raise ValueError(
            f"there is no scheduler {name!r}; the schedulers are {', '.join(SCHEDULERS)}"
        ) from None
    return policy(**settings)


# Last: the hypervisor makes its scheduler with make_scheduler, defined above.
from virtkit.monitors.hypervisor.hypervisor import Hypervisor, HypervisorError  # noqa: E402
from virtkit.monitors.hypervisor.vm import VirtualMachine  # noqa: E402

__all__ = [
    "SCHEDULERS",
    "CreditScheduler",
    "Hypervisor",
    "HypervisorError",
    "RoundRobin",
    "Scheduler",
    "StrideScheduler",
    "VirtualMachine",
    "make_scheduler",
]
