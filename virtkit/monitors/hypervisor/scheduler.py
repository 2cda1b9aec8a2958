"""The vCPU scheduler interface: the one thing a hypervisor asks of a scheduling policy.

A type-1 hypervisor queues, dispatches and executes virtual machines. The queueing and
the choice of who runs next belong to a scheduler; the dispatch (a world switch) and the
execution belong to the hypervisor. Xen draws the line in the same place: its generic
scheduler (xen/common/sched/core.c) calls a policy through ``struct scheduler``, whose
hooks include ``insert_unit``, ``remove_unit``, ``wake``, ``sleep`` and
``do_schedule``; credit, credit2, RTDS and ARINC 653 are plugged in behind it.

Here the hooks are seven methods, and every policy in this package has them:

==========================  ==========================================================
``add(vcpu, weight, cap)``  a new vCPU, runnable (Xen: ``insert_unit``)
``remove(vcpu)``            the vCPU's VM is gone (``remove_unit``)
``block(vcpu, now)``        the running vCPU waits: WFI, I/O (``sleep``)
``wake(vcpu, now)``         a blocked vCPU is runnable again: an interrupt for it
``pick(now)``               who runs next, and for how long at most (``do_schedule``)
``account(vcpu, ran, now)`` the vCPU ``pick`` chose ran for ``ran`` until ``now``
``run_queue()``             the runnable vCPUs waiting, in the order they would run
==========================  ==========================================================

The hypervisor's dispatch loop (and ``simulation.simulate``, its model) is then::

    vcpu, budget = scheduler.pick(now)        # queueing and choosing: the policy
    if vcpu is not last:                      # dispatching: a world switch
        world_switch(last, vcpu)
    ran, blocked = execute(vcpu, budget)      # executing, until the budget is spent,
    now += ran                                # the vCPU blocks, or another one wakes
    scheduler.account(vcpu, ran, now)
    if blocked:
        scheduler.block(vcpu, now)
    for woken in interrupts_due(now):
        scheduler.wake(woken, now)

``pick`` is called at every scheduling point (the budget is spent, the vCPU blocked,
another one woke) and decides itself whether the running vCPU goes on: a wake-up
preempts only if the policy says so (the credit scheduler's BOOST does, round robin
never does). Picking the same vCPU again is not a world switch. ``budget`` is the time
until the scheduler next wants control: the end of the slice, or earlier if it has a
periodic tick (credit's 10 ms). When nothing is runnable ``pick`` returns
``Dispatch(None, budget)``: idle for at most ``budget``, or until a wake-up if
``budget`` is None.

Every time here is an integer number of microseconds on the machine's clock, never the
host's wall clock. virtkit's ``mtime`` runs at 10 MHz (``TIMEBASE_HZ`` in the guests'
abi.h), so the hypervisor divides ``mtime`` by 10.

Shares are given the Xen way, which all policies accept so that one list of VMs runs
under any of them: a ``weight`` (relative, default 256) and a ``cap`` (a percentage of
one CPU, 0 for none). A policy says in ``parameters`` which of the two it honours;
``metrics.entitlements`` uses that to compute what the policy promises.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol, runtime_checkable

MSEC = 1000  # microseconds in a millisecond: every time in this package is in microseconds

DEFAULT_WEIGHT = 256  # Xen's CSCHED_DEFAULT_WEIGHT
MAX_WEIGHT = 65535  # Xen keeps a domain's weight in a uint16_t (struct csched_dom)
NO_CAP = 0  # a cap of 0 means "no cap" (Xen wiki, Credit Scheduler)
MAX_CAP = 100  # a VM in virtkit has one vCPU, so it can never use more than 100% of a CPU


class Dispatch(NamedTuple):
    """What ``pick`` decided: run ``vcpu`` for at most ``budget`` microseconds.

    ``vcpu`` is None when nothing is runnable: the CPU idles for at most ``budget``
    (None: until something wakes).
    """

    vcpu: Any
    budget: int | None


@runtime_checkable
class Scheduler(Protocol):
    """The interface every vCPU scheduling policy in virtkit implements.

    ``name`` is what ``virtkit run --scheduler`` calls it; ``parameters`` names the
    share parameters of ``add`` the policy honours: ``()``, ``("weight",)`` or
    ``("weight", "cap")``.
    """

    name: str
    parameters: tuple[str, ...]

    def add(self, vcpu, weight: int = DEFAULT_WEIGHT, cap: int = NO_CAP) -> None: ...

    def remove(self, vcpu) -> None: ...

    def block(self, vcpu, now: int) -> None: ...

    def wake(self, vcpu, now: int) -> None: ...

    def pick(self, now: int) -> Dispatch: ...

    def account(self, vcpu, ran: int, now: int) -> None: ...

    def run_queue(self) -> list: ...


def check_share(vcpu, weight: int, cap: int) -> None:
    """Reject a weight or cap no scheduler could honour, naming the vCPU and the range."""
    if not isinstance(weight, int) or not 1 <= weight <= MAX_WEIGHT:
        raise ValueError(
            f"vCPU {name_of(vcpu)}: weight must be an integer from 1 to {MAX_WEIGHT} "
            f"(the default is {DEFAULT_WEIGHT}), got {weight!r}"
        )
    if not isinstance(cap, int) or not 0 <= cap <= MAX_CAP:
        raise ValueError(
            f"vCPU {name_of(vcpu)}: cap must be an integer percentage of one CPU from 1 to "
            f"{MAX_CAP}, or 0 for no cap, got {cap!r}"
        )


def check_time(what: str, value: int) -> None:
    """Reject a slice, quantum or period that is not a positive number of microseconds."""
    if not isinstance(value, int) or value < 1:
        raise ValueError(f"{what} must be a positive integer number of microseconds, got {value!r}")


def name_of(vcpu) -> str:
    """The vCPU's name for messages and timelines: its ``name`` attribute, else its str."""
    return str(getattr(vcpu, "name", vcpu))


class UnknownVcpu(KeyError):
    """A scheduler was told about a vCPU it was never given with ``add``."""

    def __init__(self, scheduler: str, vcpu):
        super().__init__(
            f"the {scheduler} scheduler has no vCPU {name_of(vcpu)}: add() it first "
            "(or it was removed)"
        )

    def __str__(self) -> str:
        return str(self.args[0])
