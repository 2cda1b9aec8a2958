"""Stride scheduling: deterministic proportional share by tickets, stride and pass.

Carl A. Waldspurger and William E. Weihl, "Stride Scheduling: Deterministic
Proportional-Share Resource Management", MIT/LCS/TM-528, 1995 (and chapter 4 of
Waldspurger's thesis, "Lottery and Stride Scheduling", MIT 1995).

Each client (here a vCPU) holds **tickets**, its share. Its **stride** is a large
constant divided by its tickets: the "virtual time" one quantum of CPU costs it. Its
**pass** is its position in virtual time. The scheduler always runs the client with the
smallest pass and advances that pass by the stride for each quantum used (by a fraction
of it for part of a quantum). A client with twice the tickets has half the stride, so
it is chosen twice as often: over any interval every client's service differs from its
exact share by at most one quantum, which lottery scheduling (the same idea drawn at
random) guarantees only on average.

Clients that block and wake (section 3.2 of the report, "dynamic operation"): a
**global pass** advances with the CPU time given out, at the **global stride** (the
constant divided by the tickets of all runnable clients). A client that leaves keeps
its pass relative to the global pass, its **remain**; when it rejoins, its pass is the
global pass plus that remain. So sleeping neither earns credit for later (a client
cannot hoard CPU by sleeping) nor loses what it was owed.

The tickets are the vCPU's ``weight``. There are no caps: ``parameters`` is
``("weight",)``. Passes here count microseconds times stride rather than quanta times
stride, so that partial quanta need no division; the order of passes is the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from virtkit.monitors.hypervisor.scheduler import (
    DEFAULT_WEIGHT,
    MSEC,
    NO_CAP,
    Dispatch,
    UnknownVcpu,
    check_share,
    check_time,
    name_of,
)

STRIDE1 = 1 << 20  # the report's stride1: large, so that strides of small ticket counts differ
DEFAULT_QUANTUM = 10 * MSEC


@dataclass(eq=False)
class StrideClient:
    """One vCPU's stride state (the report's ``client`` structure)."""

    vcpu: Any
    tickets: int
    stride: int
    order: int  # when it was added: breaks ties between equal passes, deterministically
    pass_: int = 0  # "pass" is a Python keyword
    remain: int = 0  # pass - global pass, kept while the client is blocked
    blocked: bool = False

    def __repr__(self) -> str:
        state = " blocked" if self.blocked else ""
        return f"<{name_of(self.vcpu)}: tickets={self.tickets} pass={self.pass_}{state}>"


class StrideScheduler:
    """Stride scheduling with a fixed ``quantum`` (microseconds, default 10 ms)."""

    name = "stride"
    parameters: tuple[str, ...] = ("weight",)

    def __init__(self, quantum: int = DEFAULT_QUANTUM):
        check_time("the stride scheduler's quantum", quantum)
        self.quantum = quantum
        self.clients: dict[Any, StrideClient] = {}
        self.runq: list[StrideClient] = []  # runnable clients waiting, in no order
        self.current: StrideClient | None = None
        self.quantum_end = 0
        self.global_tickets = 0  # tickets of every runnable client, the running one included
        self.global_pass = 0
        self.last_update = 0  # when global_pass was last advanced

    # -- The Scheduler interface -------------------------------------------------------

    def add(self, vcpu, weight: int = DEFAULT_WEIGHT, cap: int = NO_CAP) -> None:
        """``client_init`` then ``client_join``: a new client starts one quantum ahead."""
        check_share(vcpu, weight, cap)
        if vcpu in self.clients:
            raise ValueError(f"vCPU {name_of(vcpu)} was already added to the stride scheduler")
        stride = STRIDE1 // weight
        client = StrideClient(vcpu, weight, stride, order=len(self.clients))
        client.remain = stride * self.quantum
        self.clients[vcpu] = client
        self._join(client, self.last_update)

    def remove(self, vcpu) -> None:
        client = self.client(vcpu)
        if not client.blocked:
            self._leave(client, self.last_update)
        del self.clients[vcpu]

    def block(self, vcpu, now: int) -> None:
        client = self.client(vcpu)
        if not client.blocked:
            self._leave(client, now)

    def wake(self, vcpu, now: int) -> None:
        client = self.client(vcpu)
        if client.blocked:
            self._join(client, now)

    def pick(self, now: int) -> Dispatch:
        """The client with the smallest pass, for one quantum (``allocate``)."""
        current = self.current
        if current is not None and now < self.quantum_end:
            return Dispatch(current.vcpu, self.quantum_end - now)
        if current is not None:
            self.runq.append(current)
        if not self.runq:
            self.current = None
            return Dispatch(None, None)
        chosen = min(self.runq, key=lambda client: (client.pass_, client.order))
        self.runq.remove(chosen)
        self.current = chosen
        self.quantum_end = now + self.quantum
        return Dispatch(chosen.vcpu, self.quantum)

    def account(self, vcpu, ran: int, now: int) -> None:
        """Advance the client's pass by its stride for the time it used."""
        client = self.client(vcpu)
        client.pass_ += client.stride * ran
        self._global_pass_update(now)

    def run_queue(self) -> list:
        waiting = sorted(self.runq, key=lambda client: (client.pass_, client.order))
        return [client.vcpu for client in waiting]

    # -- Inspection, for lessons --------------------------------------------------------

    def client(self, vcpu) -> StrideClient:
        try:
            return self.clients[vcpu]
        except KeyError:
            raise UnknownVcpu(self.name, vcpu) from None

    # -- Inside the scheduler (the report's figure 4) -----------------------------------

    def _global_pass_update(self, now: int) -> None:
        elapsed = now - self.last_update
        self.last_update = now
        if self.global_tickets:
            self.global_pass += elapsed * STRIDE1 // self.global_tickets

    def _join(self, client: StrideClient, now: int) -> None:
        self._global_pass_update(now)
        client.pass_ = self.global_pass + client.remain
        client.blocked = False
        self.global_tickets += client.tickets
        self.runq.append(client)

    def _leave(self, client: StrideClient, now: int) -> None:
        self._global_pass_update(now)
        client.remain = client.pass_ - self.global_pass
        client.blocked = True
        self.global_tickets -= client.tickets
        if client is self.current:
            self.current = None
        else:
            self.runq.remove(client)
