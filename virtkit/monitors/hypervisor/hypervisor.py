"""The type-1 hypervisor: one machine, many VMs, queued, dispatched and executed.

    hv = Hypervisor("credit")
    hv.add_vm("big", "compute n=20", weight=512)
    hv.add_vm("disk", "io n=8")
    hv.run()                         # until every VM has stopped (or run(duration=...))
    print(hv.report())               # shares against entitlements, world switches, states
    print(format_trace(hv.trace[:20]))   # dispatch decisions, with the run queue at each
    timeline = hv.timeline()         # the records simulation.simulate makes, for metrics

Popek and Goldberg's virtual machine monitor (CACM 17(7), 1974) is a thin layer on the
hardware that owns the machine and gives each VM an efficient, isolated duplicate of
it; a type-1 hypervisor such as Xen (Barham et al., "Xen and the Art of
Virtualization", SOSP 2003) adds what an operating system does for processes: it
*queues* the VMs' virtual CPUs, *dispatches* one onto the physical CPU and *executes*
it until something makes it stop. This module is that loop, for one hart:

- **The machine is the hypervisor's.** Its RAM is divided between the VMs: each gets
  host pages no other VM has (``HostFrames``), behind its own guest-physical space.
  The real timer is the hypervisor's: while a VM runs, the hart is given a budget of
  instructions (time, on virtkit's hart) that the guest cannot mask or change, like
  the VMX-preemption timer of Intel VT-x; inside it, the VM's monitor arms the hart's
  timer compare for the guest's own deadline. The real console is the hypervisor's:
  each VM's virtual UART writes to a console of its own, which the command line
  prints prefixed with the VM's name. Each VM has its own virtual disk; its requests
  take ``disk_latency`` microseconds, during which the guest waits (or runs other
  processes), and the completion is an interrupt the hypervisor raises when its time
  comes.
- **Queueing** is the scheduler's (``scheduler.Scheduler``: round robin, Xen's credit,
  stride): ``pick`` chooses the next vCPU and how long it may run.
- **Dispatching** is a world switch: save the registers, CSRs and timer of the vCPU
  on the hart, load the next one's, among them satp, the root of its shadow page
  tables; flush the TLB, whose entries belong to the previous VM (without the H
  extension there are no VMID tags, and every VM's monitor numbers its own ASIDs
  from 1). Priced by virtkit.costs as "world_switch" and "tlb_flush".
- **Executing** runs the vCPU's monitor on the hart until the budget is spent (the
  slice ended, or an interrupt for another VM is due: a disk completion, the timer of
  a blocked VM), the vCPU blocks (its guest executed WFI with nothing pending) or the
  guest stops (shut down, or crashed).

Resource control (Popek and Goldberg's third property): a guest cannot keep the CPU.
One that loops with interrupts disabled, or spins, still comes back to the
hypervisor when its budget is spent; one whose kernel faults for ever without
executing an instruction (its trap handler itself faults: a triple fault on x86, which
KVM reports as KVM_EXIT_SHUTDOWN) is stopped and reported as crashed, and so is one
whose monitor fails. The other VMs go on.

Time is the hart's: ``ticks`` of the machine's clock (one instruction each; mtime
ticks at 10 MHz, ``TIMEBASE_HZ`` in the guests' abi.h, so 100 ticks a microsecond with
the hart's default ``ticks_per_mtime`` of 10). The scheduler counts in microseconds.
As in the monitors and the simulation, the hypervisor's own work (a world switch, an
exit) takes no machine time: the cost model prices it apart, so a real run and a
simulated one can be compared decision by decision.
"""

from __future__ import annotations

import heapq
import os
from dataclasses import dataclass
from fractions import Fraction
from functools import partial
from pathlib import Path

from virtkit import costs, guests
from virtkit.cpu import Hart
from virtkit.cpu import state as S
from virtkit.machine.virtio_blk import QUEUE_NOTIFY, VirtioBlk
from virtkit.monitors.fullvirt import FullVirtMonitor, MonitorError
from virtkit.monitors.fullvirt.shadow_paging import ShadowPagingError
from virtkit.monitors.hardware import HardwareMonitor
from virtkit.monitors.hypervisor import make_scheduler
from virtkit.monitors.hypervisor.metrics import (
    cap_limit,
    max_min_shares,
    summary,
    world_switch_overhead,
)
from virtkit.monitors.hypervisor.scheduler import (
    DEFAULT_WEIGHT,
    MSEC,
    NO_CAP,
    Scheduler,
    check_share,
    check_time,
)
from virtkit.monitors.hypervisor.simulation import Run, Timeline, VcpuSpec, Wakeup, format_time
from virtkit.monitors.hypervisor.vm import (
    BLOCKED,
    CRASHED,
    GUEST_CLOCKS,
    HALTED,
    RUNNABLE,
    Vcpu,
    VirtualMachine,
)
from virtkit.monitors.memory import HostFrames, HostMemoryExhausted

MTIME_HZ = 10_000_000  # the board's timebase (TIMEBASE_HZ in the guests' abi.h)
MACHINE_RAM_MB = 1024  # host RAM; untouched pages cost the host nothing (NumPy zeros)
VM_RAM_MB = 16  # a VM's RAM: what tinyos uses by default (mem=16M)
DISK_LATENCY = 100  # microseconds a virtual disk request takes: assumed, a flash read's order
FAULT_LOOP_STEPS = 10_000  # a run this long that retires nothing is a fault loop

# How a VM's monitor runs its guest kernel: what add_vm builds for each mechanism.
MECHANISMS = {
    "trap-and-emulate": partial(FullVirtMonitor, translate=False),
    "binary-translation": partial(FullVirtMonitor, translate=True),
    "hardware": HardwareMonitor,  # the H extension: VS-mode, a G-stage, no shadow tables
}


class HypervisorError(ValueError):
    """A bad VM or hypervisor configuration; the message names the option."""


# -- The virtual disk whose requests take time ------------------------------------------------


class TimedDisk(VirtioBlk):
    """virtio-blk whose requests complete ``DISK_LATENCY`` after the driver's notify.

    virtkit's board serves a request during the notify itself; a real disk takes time,
    and a VM waiting for it blocks. Here the notify only tells the hypervisor
    (``on_notify``), which calls ``complete`` when the request's time has come: the
    device then serves what the driver made available and raises its interrupt.

    The hypervisor sets its timer when it dispatches a vCPU, so a request completes on
    time when its VM blocks after the notify (tinyos's driver sleeps until the
    interrupt); if the VM runs on instead, the completion waits for the end of its run.
    """

    def __init__(self, memory, irq, backing, *, on_notify):
        super().__init__(memory, irq, backing)
        self.on_notify = on_notify

    def write(self, offset: int, size: int, value: int) -> None:
        if offset == QUEUE_NOTIFY and value == 0:
            self.on_notify()
        else:
            super().write(offset, size, value)

    def complete(self) -> None:
        """Serve the requests made available so far, as the notify would have."""
        super().write(QUEUE_NOTIFY, 4, 0)


# -- The trace of dispatch decisions ------------------------------------------------------------


@dataclass
class Decision:
    """One scheduling decision: at ``time`` (µs) the scheduler chose ``vcpu`` (None: idle)
    for at most ``budget`` µs, with ``runq`` waiting; ``world_switch`` if that loaded
    another vCPU; ``outcome``: how the run ended."""

    time: int
    vcpu: str | None
    budget: int | None
    runq: tuple[str, ...]
    world_switch: bool = False
    outcome: str = ""


def format_trace(decisions: list[Decision]) -> str:
    """Decisions as a table: time, what was dispatched, the run queue, how it ended."""
    lines = [f"{'time':>11}  {'decision':<34} {'run queue':<28} outcome"]
    for decision in decisions:
        if decision.vcpu is None:
            what = "idle" + (f" for {format_time(decision.budget)}" if decision.budget else "")
        else:
            switch = "switch to" if decision.world_switch else "continue"
            what = f"{switch} {decision.vcpu} for {format_time(decision.budget)}"
        queue = ", ".join(decision.runq) or "-"
        lines.append(f"{format_time(decision.time):>11}  {what:<34} {queue:<28} {decision.outcome}")
    return "\n".join(lines)


# -- What a VM wanted: its entitlement ----------------------------------------------------------


@dataclass(frozen=True)
class GuestDemand:
    """The demand of a real VM in a ``Timeline``, as ``simulation``'s patterns give theirs.

    A real guest's demand is not known in advance: it wants the CPU while it is
    runnable, and not while it is blocked or after it stopped. ``wanted`` is measured
    after the run: the share of the CPU that an ideal weighted-fair CPU (generalized
    processor sharing, Parekh and Gallager, IEEE/ACM ToN 1(3), 1993) would have given
    it, dividing each instant among the VMs that wanted the CPU then, by weight and
    within caps. For VMs that want the CPU all along that is the weighted share.
    """

    workload: str
    wanted: Fraction = Fraction(1)

    def demand(self) -> Fraction:
        return self.wanted

    def describe(self) -> str:
        return self.workload


def gps_shares(
    wanting: dict[str, list[tuple[int, bool]]],
    weights: dict[str, int],
    caps: dict[str, int],
    duration: int,
) -> dict[str, Fraction]:
    """Each VM's share of ``[0, duration)`` under generalized processor sharing.

    ``wanting[name]`` lists (time, wants) changes, in time order. Between two changes
    the set of VMs that want the CPU is fixed, and the CPU is divided among them by
    max-min fairness with weights and caps (``metrics.max_min_shares``).
    """
    changes = sorted({time for events in wanting.values() for time, _ in events} | {0, duration})
    changes = [time for time in changes if time <= duration]
    received = {name: Fraction(0) for name in wanting}
    position = {name: 0 for name in wanting}
    wants = {name: False for name in wanting}
    for start, end in zip(changes, changes[1:], strict=False):
        for name, events in wanting.items():
            while position[name] < len(events) and events[position[name]][0] <= start:
                wants[name] = events[position[name]][1]
                position[name] += 1
        group = [name for name in wanting if wants[name]]
        if not group or end == start:
            continue
        shares = max_min_shares(
            [weights[name] for name in group], [cap_limit(caps[name]) for name in group]
        )
        for name, share in zip(group, shares, strict=True):
            received[name] += share * (end - start)
    return {name: value / duration for name, value in received.items()}


# -- The hypervisor ----------------------------------------------------------------------------


def slice_settings(scheduler: str, time_slice: int) -> dict:
    """The settings that give ``scheduler`` a time slice of ``time_slice`` microseconds."""
    check_time("the time slice", time_slice)
    match scheduler:
        case "credit":
            if time_slice % MSEC:
                raise HypervisorError(
                    f"the credit scheduler's slice is a whole number of milliseconds "
                    f"(Xen's tslice_ms), got {format_time(time_slice)}"
                )
            return {"tslice_ms": time_slice // MSEC}
        case "round-robin":
            return {"time_slice": time_slice}
        case "stride":
            return {"quantum": time_slice}
    raise HypervisorError(f"no slice setting is known for the {scheduler} scheduler")


class Hypervisor:
    """A type-1 hypervisor on one hart: VMs with ``add_vm``, then ``run``.

    ``scheduler`` is a Scheduler, or a name for ``make_scheduler`` (with ``time_slice``
    in microseconds, if given); ``ram_mb`` the machine's RAM, shared out among the VMs;
    ``cost_model`` prices world switches (and each VM's monitor prices its exits);
    ``disk_latency``: microseconds a virtual disk request takes.
    """

    def __init__(
        self,
        scheduler: str | Scheduler = "credit",
        *,
        time_slice: int | None = None,
        ram_mb: int = MACHINE_RAM_MB,
        cost_model: str | costs.CostModel = costs.DEFAULT_PRESET,
        disk_latency: int = DISK_LATENCY,
    ):
        if isinstance(scheduler, str):
            settings = {} if time_slice is None else slice_settings(scheduler, time_slice)
            scheduler = make_scheduler(scheduler, **settings)
        elif time_slice is not None:
            raise HypervisorError("time_slice goes with a scheduler's name, not a Scheduler")
        if not isinstance(scheduler, Scheduler):
            raise HypervisorError(
                f"{type(scheduler).__name__} is not a scheduler (see scheduler.Scheduler)"
            )
        check_time("the disk latency", disk_latency)
        self.scheduler = scheduler
        self.cost_model = costs.preset(cost_model)
        self.disk_latency = disk_latency
        self.hart = Hart(ram_mb << 20, trap_exits="all")
        self.frames = HostFrames(self.hart)
        self.ticks_per_mtime = int(self.hart.arrays.st[S.TICKS_PER_MTIME])
        self.ticks_per_usec = self.ticks_per_mtime * MTIME_HZ // 1_000_000
        self.ticks = 0  # the machine's clock; the hart's st[TICKS] while a vCPU runs

        self.vms: dict[str, VirtualMachine] = {}
        self.live = 0  # VMs not halted or crashed
        # The VMs waiting for an interrupt, in the order of ``vms``: the order they wake in,
        # which matters to the scheduler. Kept up to date as VMs block, wake and stop, so
        # that the loop looks at them only, not at all the VMs.
        self.blocked: list[VirtualMachine] = []
        self.current: Vcpu | None = None  # the vCPU whose state is on the hart
        self.io_events: list[tuple[int, int, str]] = []  # (ticks, order, VM): disk completions
        self.meter = costs.Meter()  # the hypervisor's own events: world switches, TLB flushes
        self.world_switches = 0
        self.idle_time = 0  # microseconds with nothing to run
        self.stopped_because = ""  # why the last run() returned

        # What happened, for the timeline and the trace.
        self.trace: list[Decision] = []
        self.runs: list[Run] = []
        self.wakeups: list[Wakeup] = []
        self.wanting: dict[str, list[tuple[int, bool]]] = {}  # per VM, (time, wants the CPU)
        self._woke_at: dict[str, int] = {}

    # -- building VMs --------------------------------------------------------------------------
    def add_vm(
        self,
        name: str | None = None,
        workload: str = "hello",
        *,
        kernel: str | os.PathLike | bytes | object | None = None,
        cmdline: str = "",
        weight: int = DEFAULT_WEIGHT,
        cap: int = NO_CAP,
        ram_mb: int = VM_RAM_MB,
        mechanism: str = "trap-and-emulate",
        guest_clock: str = "real",
        disk: bytes | str | os.PathLike | None = None,
    ) -> VirtualMachine:
        """A new VM, booted and runnable.

        ``workload``: a tinyos program and its arguments, "compute n=20": the VM boots
        tinyos with ``init=compute n=20`` (``cmdline`` adds kernel words, quantum=5ms).
        ``kernel``: another S-mode kernel to boot instead (an ELF path or bytes, a
        Program), with ``cmdline``; ``workload`` then only describes it. ``name``:
        default the program's name. ``mechanism``: how its monitor runs the guest
        kernel, "trap-and-emulate", "binary-translation" or "hardware" (the hart's H
        extension, virtkit.monitors.hardware). ``guest_clock``: "real" or
        "virtual" (vm.GUEST_CLOCKS). ``disk``: its disk image; tinyos VMs get a blank
        one of guests.BLANK_DISK_BYTES.
        """
        words = workload.split()
        if not words:
            raise HypervisorError("a VM's workload names a program (or describes its kernel)")
        name = self._new_name(words[0] if name is None else name, explicit=name is not None)
        if mechanism not in MECHANISMS:
            raise HypervisorError(
                f"VM {name}: mechanism must be one of {', '.join(MECHANISMS)}, got {mechanism!r}"
            )
        if guest_clock not in GUEST_CLOCKS:
            raise HypervisorError(
                f"VM {name}: guest_clock must be one of {', '.join(GUEST_CLOCKS)}, "
                f"got {guest_clock!r}"
            )
        check_share(name, weight, cap)
        if kernel is None:
            if words[0] not in guests.PROGRAMS:
                raise HypervisorError(
                    f"VM {name}: tinyos has no program {words[0]!r}; the programs are "
                    f"{', '.join(guests.PROGRAMS)} (or give kernel=... for another kernel)"
                )
            kernel = guests.tinyos()
            cmdline = f"init={workload} {cmdline}".strip()
            if disk is None:
                disk = bytes(guests.BLANK_DISK_BYTES)
        if isinstance(kernel, Path):
            kernel = str(kernel)

        # The hart is the new VM's while its monitor boots it: put the running vCPU away.
        self._put_away_current()
        vm_slot: list[VirtualMachine] = []
        try:
            monitor = MECHANISMS[mechanism](
                ram_mb,
                disk,
                cost_model=self.cost_model,
                host=(self.hart, self.frames),
                wfi_exits=True,
                disk_model=partial(TimedDisk, on_notify=lambda: self._disk_request(vm_slot[0])),
            )
        except HostMemoryExhausted as exc:
            raise HypervisorError(
                f"VM {name}: the machine's RAM is all given to the other VMs ({exc}); "
                "make the Hypervisor's ram_mb larger or the VMs' smaller"
            ) from None
        monitor.load(kernel, cmdline)  # resets the hart, and with it the clock
        vm = VirtualMachine(
            name, monitor, weight=weight, cap=cap, workload=workload, guest_clock=guest_clock
        )
        vm_slot.append(vm)
        vm.waiting_since = self.ticks
        vm.vcpu.save(self.hart)
        self.hart.arrays.st[S.TICKS] = self.ticks
        self.vms[name] = vm
        self.live += 1
        self.scheduler.add(vm.vcpu, weight=weight, cap=cap)
        self.wanting[name] = [(self.now, True)]
        return vm

    def _new_name(self, name: str, *, explicit: bool) -> str:
        if not name or any(c.isspace() or c in ":|" for c in name):
            raise HypervisorError(f"a VM name is one word without ':' or '|', got {name!r}")
        if name not in self.vms:
            return name
        if explicit:
            raise HypervisorError(f"there is already a VM called {name}")
        number = 2
        while f"{name}-{number}" in self.vms:
            number += 1
        return f"{name}-{number}"

    def _put_away_current(self) -> None:
        if self.current is not None:
            self.current.save(self.hart)
            self.current = None

    # -- time ------------------------------------------------------------------------------
    @property
    def now(self) -> int:
        """The machine's time in microseconds."""
        return self.ticks // self.ticks_per_usec

    def _set_clock(self, ticks: int) -> None:
        self.ticks = ticks
        self.hart.arrays.st[S.TICKS] = ticks

    # -- the dispatch loop -----------------------------------------------------------------------
    def run(self, duration: int | None = None) -> str:
        """Queue, dispatch and execute the VMs until all have stopped, or for at most
        ``duration`` more microseconds of machine time. Returns why it stopped (also in
        ``stopped_because``)."""
        if duration is not None:
            check_time("the run's duration", duration)
        end = None if duration is None else self.ticks + duration * self.ticks_per_usec
        while True:
            self.complete_io()
            self.wake_blocked()
            if not self.live:
                self.stopped_because = "every VM has stopped"
                break
            if end is not None and self.ticks >= end:
                self.stopped_because = f"{format_time(duration)} of machine time have passed"
                break
            vcpu, budget = self.scheduler.pick(self.now)  # queueing: the policy chooses
            if vcpu is None:
                if not self.idle(budget, end):
                    self.stopped_because = (
                        "every VM still running waits for an interrupt nothing will send"
                    )
                    break
                continue
            decision = self.dispatch(vcpu, budget)  # dispatching: a world switch
            self.execute(vcpu, decision, end)  # executing, until something stops it
        return self.stopped_because

    def dispatch(self, vcpu: Vcpu, budget: int) -> Decision:
        """Put ``vcpu`` on the hart (a world switch, unless it is already there)."""
        now = self.now
        decision = Decision(
            now,
            vcpu.name,
            budget,
            tuple(queued.name for queued in self.scheduler.run_queue()),
            world_switch=vcpu is not self.current,
        )
        self.trace.append(decision)
        if decision.world_switch:
            self.world_switch(vcpu)
        if vcpu.name in self._woke_at:
            self.wakeups.append(Wakeup(vcpu.name, self._woke_at.pop(vcpu.name), now))
        return decision

    def world_switch(self, vcpu: Vcpu) -> None:
        """Save the state of the vCPU on the hart, load ``vcpu``'s, flush the TLB."""
        previous = self.current
        if previous is not None:
            previous.save(self.hart)
            if previous.vm.state == RUNNABLE:
                previous.vm.waiting_since = self.ticks  # preempted: it waits from now
        vm = vcpu.vm
        if vm.waiting_since is not None:
            vm.steal_time += self.ticks - vm.waiting_since
            vm.waiting_since = None
        if vm.guest_clock == "virtual":
            # mtime = ticks // ticks_per_mtime + MTIME_OFFSET: hold the guest's clock back
            # by the time it waited for the CPU.
            vcpu.context[S.MTIME_OFFSET] = -(vm.steal_time // self.ticks_per_mtime)
        vcpu.restore(self.hart)
        self.current = vcpu
        vcpu.vm.dispatches += 1
        self.world_switches += 1
        self.meter.charge("world_switch")
        self.meter.charge("tlb_flush")

    def execute(self, vcpu: Vcpu, decision: Decision, end: int | None) -> None:
        """Run ``vcpu`` until its budget is spent, the next interrupt for any VM, or ``end``
        (ticks); then tell the scheduler what it used and what became of it."""
        vm = vcpu.vm
        start, now = self.ticks, self.now
        stop = (now + decision.budget) * self.ticks_per_usec
        interrupt = self.next_interrupt()
        for limit in (interrupt, end):
            if limit is not None:
                stop = min(stop, limit)
        retired = vm.retired()
        try:
            result = vm.monitor.run(until=stop - start)
        except (MonitorError, ShadowPagingError) as error:
            self._set_clock(max(int(self.hart.arrays.st[S.TICKS]), start + 1))
            self._account(vcpu, now)
            decision.outcome = "crashed: its monitor stopped"
            self.stop_vm(vm, CRASHED, crash=f"its monitor stopped it: {error}")
            return
        # Every step is machine time, a fault the guest takes as much as an instruction:
        # so time goes on even for a guest that only faults.
        self._set_clock(start + max(result.instructions, 1))
        self._account(vcpu, now)
        match result.reason:
            case "count":
                if vm.retired() == retired and result.instructions >= FAULT_LOOP_STEPS:
                    decision.outcome = "crashed: fault loop"
                    self.stop_vm(
                        vm,
                        CRASHED,
                        crash=f"its kernel took {result.instructions:,} faults in a row without "
                        f"executing an instruction (its trap handler faults: a triple fault) "
                        f"at pc {vm.monitor.hart.pc:#010x}",
                    )
                elif self.ticks == interrupt:
                    decision.outcome = "an interrupt is due"
                else:
                    decision.outcome = "budget spent"
            case "wfi":
                decision.outcome = "blocked (WFI)"
                vm.state = BLOCKED
                self.blocked = [other for other in self.vms.values() if other.state == BLOCKED]
                self.scheduler.block(vcpu, self.now)
                self.wanting[vm.name].append((self.now, False))
            case "halt":
                decision.outcome = f"halted (exit code {result.exit_code})"
                self.stop_vm(vm, HALTED, exit_code=result.exit_code)
            case _:
                raise MonitorError(f"VM {vm.name}: unexpected end of a run: {result}")

    def _account(self, vcpu: Vcpu, started: int) -> None:
        """Tell the scheduler how long ``vcpu`` ran, and record the run on the timeline."""
        now = self.now
        ran = now - started
        vcpu.vm.cpu_time += ran
        self.scheduler.account(vcpu, ran, now)
        if ran == 0:
            return  # less than a microsecond: nothing to draw
        last = self.runs[-1] if self.runs else None
        if last is not None and last.vcpu == vcpu.name and last.end == started:
            self.runs[-1] = last._replace(end=now)
        else:
            self.runs.append(Run(started, now, vcpu.name, self.trace[-1].runq))

    def idle(self, budget: int | None, end: int | None) -> bool:
        """Nothing is runnable: let time pass to the next interrupt, the scheduler's next
        timer or ``end``. False if nothing will ever happen."""
        limits = [self.next_interrupt(), end]
        if budget is not None:
            limits.append(self.ticks + budget * self.ticks_per_usec)
        limits = [limit for limit in limits if limit is not None]
        if len(self.blocked) == self.live:
            # Everyone is blocked: only an interrupt can help (a parked vCPU is RUNNABLE).
            if self.next_interrupt() is None:
                return False
        if not limits:
            return False
        until = max(min(limits), self.ticks + 1)
        now = self.now
        self.trace.append(
            Decision(now, None, until // self.ticks_per_usec - now, (), outcome="nothing to run")
        )
        self._set_clock(until)
        self.idle_time += self.now - now
        return True

    # -- interrupts: what wakes a blocked vCPU -------------------------------------------------
    def _disk_request(self, vm: VirtualMachine) -> None:
        """``vm``'s driver notified its disk: the request completes ``disk_latency`` later."""
        vm.disk_requests += 1
        now = int(self.hart.arrays.st[S.TICKS])  # in the middle of the VM's run
        due = now + self.disk_latency * self.ticks_per_usec
        heapq.heappush(self.io_events, (due, vm.disk_requests, vm.name))

    def complete_io(self) -> None:
        """Complete the disk requests whose time has come: their interrupts are raised."""
        while self.io_events and self.io_events[0][0] <= self.ticks:
            _, _, name = heapq.heappop(self.io_events)
            vm = self.vms[name]
            if vm.alive:
                vm.monitor.board.disk.complete()

    def wake_blocked(self) -> None:
        """Wake every blocked vCPU that has an interrupt pending or whose timer fired."""
        for vm in list(self.blocked):  # a copy: a VM that wakes leaves the list
            deadline = vm.timer_deadline(self.ticks_per_mtime)
            if vm.interrupt_pending() or (deadline is not None and deadline <= self.ticks):
                vm.state = RUNNABLE
                self.blocked.remove(vm)
                if vm.vcpu is not self.current:
                    vm.waiting_since = self.ticks
                self.scheduler.wake(vm.vcpu, self.now)
                self._woke_at[vm.name] = self.now
                self.wanting[vm.name].append((self.now, True))

    def next_interrupt(self) -> int | None:
        """The tick of the next interrupt the hypervisor must act on: a disk completion,
        or the timer of a blocked vCPU. (A runnable vCPU's timer waits for its dispatch.)"""
        times = [self.io_events[0][0]] if self.io_events else []
        for vm in self.blocked:
            deadline = vm.timer_deadline(self.ticks_per_mtime)
            if deadline is not None:
                times.append(max(deadline, self.ticks + 1))
        return min(times, default=None)

    def stop_vm(
        self, vm: VirtualMachine, state: str, *, exit_code: int | None = None, crash: str = ""
    ) -> None:
        """``vm`` halted or crashed: off the scheduler for good; the others go on."""
        if vm.alive:
            self.live -= 1
        if vm in self.blocked:
            self.blocked.remove(vm)
        vm.state = state
        vm.exit_code = exit_code
        vm.crash = crash or None
        vm.stopped_at = self.now
        self.scheduler.remove(vm.vcpu)
        self.wanting[vm.name].append((self.now, False))
        self._woke_at.pop(vm.name, None)

    # -- measurements -------------------------------------------------------------------------
    def timeline(self) -> Timeline:
        """What happened so far, as ``simulation.Timeline``: metrics and plots take it."""
        duration = max(self.now, 1)
        parameters = tuple(self.scheduler.parameters)
        weights = {
            name: vm.weight if "weight" in parameters else 1 for name, vm in self.vms.items()
        }
        caps = {name: vm.cap if "cap" in parameters else NO_CAP for name, vm in self.vms.items()}
        wanted = gps_shares(self.wanting, weights, caps, duration)
        specs = tuple(
            VcpuSpec(name, GuestDemand(vm.workload, wanted[name]), vm.weight, vm.cap)
            for name, vm in self.vms.items()
        )
        return Timeline(
            scheduler=self.scheduler.name,
            parameters=parameters,
            duration=duration,
            vcpus=specs,
            runs=tuple(self.runs),
            wakeups=tuple(self.wakeups),
        )

    def world_switch_cost(self) -> int:
        """One world switch in microseconds of the hart's clock, by the cost model."""
        cycles_per_usec = self.ticks_per_usec  # one tick is one cycle (virtkit.costs)
        return round(self.cost_model.price("world_switch") / cycles_per_usec)

    def modelled_cycles(self) -> float:
        """Cycles by the cost model: every VM's monitor, plus the world switches."""
        vms = sum(vm.monitor.report().cycles for vm in self.vms.values())
        return vms + self.cost_model.cycles(self.meter)

    def report(self) -> str:
        """The run in a few tables: shares and fairness, then each VM's state and work."""
        lines = summary(self.timeline(), switch_cost=self.world_switch_cost()).splitlines()
        # The summary is written for simulations; this one ran guests on the hart.
        lines[0] = lines[0].removesuffix(" simulated") + " of machine time"
        lines.append(
            f"a world switch costs {self.cost_model.price('world_switch'):g} cycles "
            f"({self.cost_model.name} cost model); stopped: {self.stopped_because}"
        )
        lines.append(
            f"{'VM':<10} {'mechanism':<18} {'instructions':>13} {'exits':>9} {'disk I/O':>8}"
            f" {'dispatches':>10}  state"
        )
        for vm in self.vms.values():
            report = vm.monitor.report()
            lines.append(
                f"{vm.name:<10} {report.label:<18} {vm.retired():>13,} {report.exits:>9,} "
                f"{vm.disk_requests:>8} {vm.dispatches:>10}  {vm.describe_state()}"
            )
        return "\n".join(lines)


@dataclass(frozen=True)
class SliceMeasurement:
    """One run of ``measure_slices``: the slice, its world switches and what they cost."""

    time_slice: int
    world_switches: int
    overhead: float  # the share of the busy CPU the switches would take (cost model)
    worst_wakeup_latency: int | None  # microseconds, None if no vCPU ever woke
    timeline: Timeline


def measure_slices(
    workloads: list[str],
    slices: list[int],
    duration: int,
    scheduler: str = "round-robin",
    **options,
) -> list[SliceMeasurement]:
    """Run the same VMs for ``duration`` µs once per slice length: the trade-off between
    world-switch overhead and wake-up latency that Barham et al. measured with up to 128
    domains (SOSP 2003). ``options`` go to ``Hypervisor``."""
    measurements = []
    for time_slice in slices:
        hypervisor = boot_vms(workloads, scheduler, time_slice=time_slice, **options)
        hypervisor.run(duration)
        timeline = hypervisor.timeline()
        latencies = [wakeup.latency for wakeup in timeline.wakeups]
        measurements.append(
            SliceMeasurement(
                time_slice,
                hypervisor.world_switches,
                world_switch_overhead(timeline, hypervisor.world_switch_cost()),
                max(latencies, default=None),
                timeline,
            )
        )
    return measurements


def boot_vms(
    workloads: list[str],
    scheduler: str = "credit",
    *,
    weights: list[int] | None = None,
    **options,
) -> Hypervisor:
    """A hypervisor with one tinyos VM per workload ("compute n=20"), ready to run."""
    hypervisor = Hypervisor(scheduler, **options)
    weights = weights or [DEFAULT_WEIGHT] * len(workloads)
    if len(weights) != len(workloads):
        raise HypervisorError(f"{len(workloads)} workloads but {len(weights)} weights")
    for workload, weight in zip(workloads, weights, strict=True):
        hypervisor.add_vm(workload=workload, weight=weight)
    return hypervisor
