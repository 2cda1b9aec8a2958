"""Xen's credit scheduler: weights, caps, credits, and the BOOST, UNDER and OVER priorities.

This follows xen/common/sched/credit.c (Emmanuel Ackaouy, XenSource, 2006; before Xen
4.13 the file was xen/common/sched_credit.c and a "unit" was a vCPU, so
``csched_unit_acct`` was ``csched_vcpu_acct``), with the function names of the source,
and the Xen wiki page "Credit Scheduler" (https://wiki.xenproject.org/wiki/Credit_Scheduler).

How it works
------------
- Every VM has a **weight** (default 256: a VM of weight 512 gets twice the CPU of one
  of weight 256 when both want it) and a **cap** (the most it may use, in percent of one
  CPU; 0 means no cap, and then an otherwise idle CPU is all its).
- **Credits** are the currency. A running vCPU pays 10 credits for each millisecond it
  runs (``CSCHED_CREDITS_PER_MSEC``, ``burn_credits``): on every 10 ms **tick**
  (``csched_tick`` -> ``csched_unit_acct``) and when it is descheduled
  (``csched_schedule``).
- Every **accounting period** (30 ms, one time slice) ``csched_acct`` hands out one CPU's
  worth of credits, 300, to the active vCPUs in proportion to their weights; a capped
  vCPU gets no more than its cap. Then each vCPU's priority follows its balance: **UNDER**
  when it has credit left, **OVER** when it has overspent. A capped vCPU that has
  overspent its cap is **parked**: not runnable until an accounting period gives it
  credit again. That is how a cap holds even on an otherwise idle machine.
- The **run queue** is ordered by priority, first come first served within a priority
  (``__runq_insert``, and ``csched_runq_sort`` after each accounting period). At each
  scheduling point the head runs for a 30 ms slice (``csched_schedule``). OVER vCPUs
  still run when no UNDER one wants to: without caps the scheduler is work-conserving.
- **BOOST**: a vCPU that wakes up while UNDER gets the top priority
  (``csched_unit_wake``) and preempts a running vCPU of lower priority
  (``__runq_tickle``), so a VM doing I/O is served as soon as its interrupt arrives. The
  boost ends at the first tick that finds the vCPU running (``csched_unit_acct``): a
  vCPU that keeps the CPU long enough to be seen by a tick is not I/O-bound.
- A vCPU earns credit only while on the **active list**. It joins when a tick finds it
  running, and leaves when its credit grows past one period's worth (it is not using
  what it earns); its credit is then halved.

How well it works (what the simulation of this model shows, and the source explains):

- CPU-bound VMs get their weighted shares within a few percent over a long run for
  many mixes (weights 128, 256, 384 and 512, for one), but not for all. UNDER vCPUs
  take turns of a whole 30 ms slice, first come first served, so a VM whose share needs
  more turns than that gives it earns credit faster than it can spend it; past one
  period's worth its credit is halved and it stops earning until a tick finds it
  running again. Weights 256, 256, 256 and 768 give the last VM about 40% of the CPU
  instead of 50%.
- Caps hold, but what a capped VM gives up is not always shared out by weight. With
  weights 128, 256, 384 and 512, a 20% cap on the last VM and a 1 ms slice, the others
  get about 20, 30 and 30% instead of 13, 27 and 40%, even over 30 s: a period then holds
  only 10 credits to divide. Weights 256, 512, 384 and 768 with a 10% cap do come out
  right (lesson 02 uses them).
- The tick samples. A vCPU that is never running when a tick falls is never put on the
  active list, so ``csched_acct`` never makes it OVER: it keeps its BOOST, however much
  it runs. A VM that runs 3 ms and waits 7 ms, in phase with the 10 ms ticks, takes the
  CPU whenever it wants it. Zhou, Goel, Desnoyers and Sundaram ("Scheduler
  vulnerabilities and coordinated attacks in cloud computing", IEEE NCA 2011) showed
  that a guest can arrange this on purpose to steal CPU from Xen's credit scheduler.

Analyses of this behaviour: Cherkasova, Gupta and Vahdat, "Comparison of the three CPU
schedulers in Xen", SIGMETRICS Performance Evaluation Review 35(2), 2007; Ongaro, Cox
and Rixner, "Scheduling I/O in virtual machine monitors", VEE 2008 (BOOST and I/O).

What this model leaves out: per-CPU run queues and stealing work between them
(``csched_load_balance``), yield, rate limiting (``sched_ratelimit_us``: Xen does not
preempt a vCPU that has run less than 1 ms), and domains with several vCPUs. A virtkit
VM has one vCPU, so weight and cap are per vCPU here; Xen keeps them per domain and
counts the weight once for each active vCPU.

For the exercise
----------------
``CreditScheduler(pick=..., acct=...)`` takes the two functions that make the policy,
so that a student can write their own and run real VMs with them:

- ``csched_pick(runq)``: which queued vCPU runs next;
- ``csched_acct(active, credit_total, credits_per_tslice)``: share out one accounting
  period's credits and set each vCPU's priority (and parked flag) from its credit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from virtkit.monitors.hypervisor.scheduler import (
    DEFAULT_WEIGHT,
    MSEC,
    NO_CAP,
    Dispatch,
    UnknownVcpu,
    check_share,
    name_of,
)

# Priorities: higher runs first (CSCHED_PRI_TS_*; the idle vCPU's -64 is not needed here).
BOOST = 0  # woke up while UNDER: served before everyone else
UNDER = -1  # has credit left
OVER = -2  # has spent more than it earned
PRIORITY_NAMES = {BOOST: "BOOST", UNDER: "UNDER", OVER: "OVER"}

CREDITS_PER_MSEC = 10  # CSCHED_CREDITS_PER_MSEC: what a millisecond of CPU costs
TICKS_PER_TSLICE = 3  # CSCHED_TICKS_PER_TSLICE: a 30 ms slice has three 10 ms ticks
DEFAULT_TSLICE_MS = 30  # CSCHED_DEFAULT_TSLICE_MS, also the accounting period
TSLICE_MS_MIN, TSLICE_MS_MAX = 1, 1000  # XEN_SYSCTL_CSCHED_TSLICE_MIN and _MAX


@dataclass(eq=False)
class CreditVcpu:
    """The credit scheduler's record of one vCPU (Xen's ``struct csched_unit``).

    ``weight`` and ``cap`` are the VM's (Xen's ``struct csched_dom``). ``residual`` is
    what the vCPU has run but not yet paid for, less than a credit, in thousandths of
    a credit.
    """

    vcpu: Any
    weight: int = DEFAULT_WEIGHT
    cap: int = NO_CAP
    credit: int = 0
    pri: int = UNDER
    residual: int = 0
    active: bool = False  # on the active list: earns credits in csched_acct
    parked: bool = False  # over its cap: kept off the run queue
    blocked: bool = False  # waiting (WFI, I/O) until wake()

    def __repr__(self) -> str:
        flags = " parked" if self.parked else ""
        flags += " blocked" if self.blocked else ""
        flags += "" if self.active else " inactive"
        return (
            f"<{name_of(self.vcpu)}: {PRIORITY_NAMES[self.pri]} credit={self.credit} "
            f"weight={self.weight} cap={self.cap}{flags}>"
        )


# -- The two functions that make the policy (the exercise replaces these) ---------------


def csched_pick(runq: list[CreditVcpu]) -> CreditVcpu:
    """The vCPU to run next: the first of the highest priority in the run queue.

    Xen keeps the run queue sorted (``__runq_insert``, ``csched_runq_sort``) and takes
    its head in ``csched_schedule``; the search below says the same rule without relying
    on the order: BOOST before UNDER before OVER, and first come, first served among
    equals. ``runq`` is never empty.
    """
    best = runq[0]
    for unit in runq:
        if unit.pri > best.pri:
            best = unit
    return best


def csched_acct(active: list[CreditVcpu], credit_total: int, credits_per_tslice: int) -> None:
    """One accounting period: share out ``credit_total`` credits by weight, then set priorities.

    ``active`` lists the vCPUs that earn credits this period (never empty).
    ``credit_total`` is what there is to share: one CPU's worth, ``credits_per_tslice``
    (300 for 30 ms), plus whatever the active vCPUs overspent last period, so that the
    system's balance comes back to zero. Follows ``csched_acct`` in credit.c, for one
    physical CPU and one vCPU per domain:

    1. A vCPU's fair share is ``credit_total * weight / total weight``, but never more
       than its peak: one CPU for the whole period (plus its part of last period's
       overspending), and its cap if it has one. What a vCPU cannot take is added to
       ``credit_total`` for the vCPUs after it in the list; a capped vCPU that had extra
       to give is moved to the head of the list, so that next period everyone after it
       gets a part.
    2. Priority from the balance: OVER below zero (and parked, if capped and more than
       one period's cap in debt; never lower than minus one period), otherwise UNDER
       (and unparked). A vCPU with more than one period's credit is not using what it
       earns: it leaves the active list, and its credit is halved.

    Xen rounds every division up; so does this.
    """
    weight_total = sum(unit.weight for unit in active)
    overspent = credit_total - credits_per_tslice  # > 0 after a period of overspending
    weight_left = weight_total
    earlier_could_use_more = False  # Xen's credit_xtra

    for unit in list(active):
        weight_left -= unit.weight

        credit_peak = credits_per_tslice
        if overspent > 0:
            credit_peak += ceil_div(overspent * unit.weight, weight_total)
        credit_cap = 0
        if unit.cap != NO_CAP:
            credit_cap = ceil_div(unit.cap * credits_per_tslice, 100)
            credit_peak = min(credit_peak, credit_cap)

        credit_fair = ceil_div(credit_total * unit.weight, weight_total)
        if credit_fair < credit_peak:
            earlier_could_use_more = True
        else:
            if weight_left != 0:
                # Give the others a chance at what this vCPU cannot use.
                credit_total += ceil_div((credit_fair - credit_peak) * weight_total, weight_left)
            if earlier_could_use_more:
                active.remove(unit)
                active.insert(0, unit)
            credit_fair = credit_peak

        unit.credit += credit_fair

        if unit.credit < 0:
            unit.pri = OVER
            if unit.cap != NO_CAP and unit.credit < -credit_cap:
                unit.parked = True
            unit.credit = max(unit.credit, -credits_per_tslice)
        else:
            unit.pri = UNDER
            unit.parked = False
            if unit.credit > credits_per_tslice:
                unit.active = False
                unit.credit //= 2  # starts a little ahead when it becomes active again


# -- Helpers with Xen's names ------------------------------------------------------------


def ceil_div(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded up, as Xen writes ``(a + (b - 1)) / b``."""
    return -(-numerator // denominator)


def burn_credits(unit: CreditVcpu, ran: int) -> None:
    """Charge ``unit`` for ``ran`` microseconds of CPU: 10 credits a millisecond.

    The fraction of a credit not yet paid is kept in ``residual``, so that many short
    runs cost the same as one long one (``burn_credits``).
    """
    owed = ran * CREDITS_PER_MSEC + unit.residual
    credits, unit.residual = divmod(owed, MSEC)
    unit.credit -= credits


def runq_insert(runq: list[CreditVcpu], unit: CreditVcpu) -> None:
    """Queue ``unit`` before the first vCPU of lower priority (``__runq_insert``)."""
    for position, queued in enumerate(runq):
        if unit.pri > queued.pri:
            runq.insert(position, unit)
            return
    runq.append(unit)


def csched_runq_sort(runq: list[CreditVcpu]) -> None:
    """After an accounting period: UNDER and BOOST vCPUs ahead of OVER ones, order kept."""
    runq.sort(key=lambda unit: unit.pri == OVER)  # sort is stable: False (not OVER) first


# -- The scheduler ---------------------------------------------------------------------


class CreditScheduler:
    """Xen's credit scheduler for one physical CPU.

    ``tslice_ms`` is the time slice and accounting period (Xen's
    ``sched_credit_tslice_ms``, 1 to 1000, default 30); the tick is a third of it, or
    the whole slice below 3 ms (``__csched_set_tslice``). ``pick`` and ``acct`` replace
    ``csched_pick`` and ``csched_acct``.
    """

    name = "credit"
    parameters: tuple[str, ...] = ("weight", "cap")

    def __init__(
        self,
        tslice_ms: int = DEFAULT_TSLICE_MS,
        pick: Callable[[list[CreditVcpu]], CreditVcpu] = csched_pick,
        acct: Callable[[list[CreditVcpu], int, int], None] = csched_acct,
    ):
        if not isinstance(tslice_ms, int) or not TSLICE_MS_MIN <= tslice_ms <= TSLICE_MS_MAX:
            raise ValueError(
                f"the credit scheduler's tslice_ms must be an integer number of milliseconds "
                f"from {TSLICE_MS_MIN} to {TSLICE_MS_MAX} (Xen's sched_credit_tslice_ms), "
                f"got {tslice_ms!r}"
            )
        ticks_per_tslice = TICKS_PER_TSLICE if tslice_ms >= TICKS_PER_TSLICE else 1
        self.tslice = tslice_ms * MSEC
        self.tick_period = self.tslice // ticks_per_tslice
        self.credits_per_tslice = CREDITS_PER_MSEC * tslice_ms
        self.pick_next = pick
        self.acct = acct

        self.units: dict[Any, CreditVcpu] = {}  # every vCPU added, by vCPU
        self.runq: list[CreditVcpu] = []  # runnable, waiting; in Xen's order
        self.active: list[CreditVcpu] = []  # Xen's active list: these earn credits
        self.current: CreditVcpu | None = None  # chosen by the last pick()
        self.slice_end = 0
        self.tickled = False  # a vCPU that should preempt the current one became runnable
        self.next_acct = self.tslice  # the master ticker: csched_acct every tslice
        self.credit_balance = 0  # the active vCPUs' total credit after the last period

    # -- The Scheduler interface -------------------------------------------------------

    def add(self, vcpu, weight: int = DEFAULT_WEIGHT, cap: int = NO_CAP) -> None:
        """A new vCPU, UNDER with no credit, at the back of the queue (``csched_unit_insert``)."""
        check_share(vcpu, weight, cap)
        if vcpu in self.units:
            raise ValueError(f"vCPU {name_of(vcpu)} was already added to the credit scheduler")
        unit = CreditVcpu(vcpu, weight, cap)
        self.units[vcpu] = unit
        runq_insert(self.runq, unit)

    def remove(self, vcpu) -> None:
        unit = self.unit(vcpu)
        del self.units[vcpu]
        if unit in self.runq:
            self.runq.remove(unit)
        if unit in self.active:
            self.active.remove(unit)
        if unit is self.current:
            self.current = None

    def block(self, vcpu, now: int) -> None:
        """The vCPU waits, keeping its credit and its place on the active list.

        Xen: ``csched_unit_sleep``.
        """
        unit = self.unit(vcpu)
        unit.blocked = True
        if unit in self.runq:
            self.runq.remove(unit)

    def wake(self, vcpu, now: int) -> None:
        """The vCPU is runnable again; BOOST it if it is UNDER (``csched_unit_wake``)."""
        unit = self.unit(vcpu)
        unit.blocked = False
        if unit is self.current or unit in self.runq:
            return
        if unit.parked:
            return  # a parked vCPU waits for csched_acct to give it credit again
        if unit.pri == UNDER:
            unit.pri = BOOST
        runq_insert(self.runq, unit)
        self._tickle(unit)

    def pick(self, now: int) -> Dispatch:
        """Keep the current vCPU until its slice ends, or choose again (``csched_schedule``)."""
        self._master_ticker(now)
        current = self.current
        if current is not None and self._runnable(current):
            if not self.tickled and now < self.slice_end:
                return Dispatch(current.vcpu, self._budget(now))
            runq_insert(self.runq, current)
        self.tickled = False
        if not self.runq:
            self.current = None
            return Dispatch(None, self.next_acct - now)  # a parked vCPU may be unparked then
        chosen = self.pick_next(self.runq)
        if chosen not in self.runq:
            raise ValueError(
                f"the credit scheduler's pick function returned {chosen!r}, which is not on "
                f"the run queue {self.runq}: it must return one of the queued CreditVcpu"
            )
        self.runq.remove(chosen)
        self.current = chosen
        self.slice_end = now + self.tslice
        return Dispatch(chosen.vcpu, self._budget(now))

    def account(self, vcpu, ran: int, now: int) -> None:
        """Charge the vCPU for ``ran``; tick if a tick fell in its run (``csched_tick``)."""
        unit = self.unit(vcpu)
        burn_credits(unit, ran)
        # Ticks fall on multiples of the tick period; one fell during this run if the
        # run's start and end lie in different periods.
        if ran > 0 and now // self.tick_period > (now - ran) // self.tick_period:
            self._csched_unit_acct(unit)
        self._master_ticker(now)

    def run_queue(self) -> list:
        return [unit.vcpu for unit in self.runq]

    # -- Inspection, for lessons --------------------------------------------------------

    def unit(self, vcpu) -> CreditVcpu:
        """The scheduler's record of ``vcpu``: its credit, priority and flags."""
        try:
            return self.units[vcpu]
        except KeyError:
            raise UnknownVcpu(self.name, vcpu) from None

    # -- Inside the scheduler -----------------------------------------------------------

    def _csched_unit_acct(self, unit: CreditVcpu) -> None:
        """The tick found ``unit`` running: it uses the CPU, so no more BOOST; it earns credit."""
        if unit.pri == BOOST:
            unit.pri = UNDER
        if not unit.active:
            unit.active = True
            self.active.insert(0, unit)  # __csched_unit_acct_start: list_add, at the head

    def _master_ticker(self, now: int) -> None:
        """Run ``csched_acct`` for every accounting period that has ended by ``now``."""
        while self.next_acct <= now:
            self._accounting_period()
            self.next_acct += self.tslice

    def _accounting_period(self) -> None:
        if not self.active:
            self.credit_balance = 0
            return
        # Overspending last period (a negative balance) is handed out again this period.
        credit_total = self.credits_per_tslice - min(self.credit_balance, 0)
        # Who earns this period, and who was parked: acct may reorder the list, and it
        # parks and unparks.
        accounted = [(unit, unit.parked) for unit in self.active]
        self.acct(self.active, credit_total, self.credits_per_tslice)
        self.active = [unit for unit in self.active if unit.active]
        balance = 0
        for unit, was_parked in accounted:
            balance += unit.credit
            if unit.parked and not was_parked:
                self._park(unit)
            elif was_parked and not unit.parked:
                self._unpark(unit)
        self.credit_balance = balance
        csched_runq_sort(self.runq)

    def _park(self, unit: CreditVcpu) -> None:
        """Over its cap: off the run queue, and off the CPU if it is running."""
        if unit in self.runq:
            self.runq.remove(unit)
        if unit is self.current:
            self.tickled = True

    def _unpark(self, unit: CreditVcpu) -> None:
        """Back under its cap: queued again if it is runnable, but not boosted."""
        if not unit.blocked and unit is not self.current and unit not in self.runq:
            runq_insert(self.runq, unit)
            self._tickle(unit)

    def _tickle(self, unit: CreditVcpu) -> None:
        """Preempt the running vCPU if ``unit`` has a higher priority (``__runq_tickle``)."""
        if self.current is not None and unit.pri > self.current.pri:
            self.tickled = True

    def _runnable(self, unit: CreditVcpu) -> bool:
        return not unit.blocked and not unit.parked

    def _budget(self, now: int) -> int:
        """Run until the slice ends, the next tick or the next accounting period."""
        next_tick = (now // self.tick_period + 1) * self.tick_period
        return min(self.slice_end, next_tick, self.next_acct) - now
