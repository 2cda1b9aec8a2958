"""Round robin: every runnable vCPU in turn, each for the same time slice.

The simplest policy a hypervisor can have, and the baseline the others are measured
against: one FIFO run queue; the vCPU at its head runs until its slice ends (then goes
to the tail) or it blocks (and goes to the tail when it wakes). A wake-up never
preempts. With n CPU-bound vCPUs each gets 1/n of the CPU whatever its weight, and a
vCPU that wakes waits behind everyone queued: up to (n - 1) slices
(``metrics.worst_wakeup_latency``). Xen's schedulers (BVT, SEDF, credit) each answer
one or both of these points (Cherkasova, Gupta and Vahdat, "Comparison of the three CPU
schedulers in Xen", SIGMETRICS Performance Evaluation Review 35(2), 2007).
"""

from __future__ import annotations

from collections import deque

from virtkit.monitors.hypervisor.scheduler import (
    DEFAULT_WEIGHT,
    MSEC,
    NO_CAP,
    Dispatch,
    UnknownVcpu,
    check_share,
    check_time,
)

DEFAULT_SLICE = 30 * MSEC  # the same default as the credit scheduler, for comparisons


class RoundRobin:
    """Round robin over one FIFO run queue with a fixed ``time_slice`` (microseconds).

    ``weight`` and ``cap`` are accepted, so that the same VMs run under every policy,
    and have no effect: ``parameters`` is empty.
    """

    name = "round-robin"
    parameters: tuple[str, ...] = ()

    def __init__(self, time_slice: int = DEFAULT_SLICE):
        check_time("the round-robin time slice", time_slice)
        self.time_slice = time_slice
        self.runq: deque = deque()  # runnable vCPUs waiting, head first
        self.vcpus: set = set()  # every vCPU added and not removed
        self.current = None  # the vCPU pick() last chose, while it is runnable
        self.slice_end = 0  # when the current vCPU's slice ends

    def add(self, vcpu, weight: int = DEFAULT_WEIGHT, cap: int = NO_CAP) -> None:
        check_share(vcpu, weight, cap)
        if vcpu in self.vcpus:
            raise ValueError(f"vCPU {vcpu!r} was already added to the {self.name} scheduler")
        self.vcpus.add(vcpu)
        self.runq.append(vcpu)

    def remove(self, vcpu) -> None:
        self._check(vcpu)
        self.vcpus.remove(vcpu)
        if vcpu in self.runq:
            self.runq.remove(vcpu)
        if vcpu is self.current:
            self.current = None

    def block(self, vcpu, now: int) -> None:
        self._check(vcpu)
        if vcpu is self.current:
            self.current = None
        elif vcpu in self.runq:
            self.runq.remove(vcpu)

    def wake(self, vcpu, now: int) -> None:
        self._check(vcpu)
        if vcpu is not self.current and vcpu not in self.runq:
            self.runq.append(vcpu)  # to the tail: round robin never preempts

    def pick(self, now: int) -> Dispatch:
        if self.current is not None and now < self.slice_end:
            return Dispatch(self.current, self.slice_end - now)
        if self.current is not None:
            self.runq.append(self.current)  # its slice is over: to the tail
        if not self.runq:
            self.current = None
            return Dispatch(None, None)
        self.current = self.runq.popleft()
        self.slice_end = now + self.time_slice
        return Dispatch(self.current, self.time_slice)

    def account(self, vcpu, ran: int, now: int) -> None:
        """Round robin keeps no account: the slice end in ``pick`` is all it needs."""

    def run_queue(self) -> list:
        return list(self.runq)

    def _check(self, vcpu) -> None:
        if vcpu not in self.vcpus:
            raise UnknownVcpu(self.name, vcpu)
