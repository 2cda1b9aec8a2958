"""A virtual machine of the type-1 hypervisor: its share of the machine, its vCPU, its devices.

A VM here is what Xen calls a domain: a partition of the machine's RAM (its own
guest-physical space, 0x8000_0000 up, mapped onto host pages no other VM has), one
virtual CPU, and its own virtual devices (a UART whose output is its console, a
virtio-blk disk, the test finisher). The mechanism that runs it is the full-
virtualization monitor of model 4 (virtkit.monitors.fullvirt: trap-and-emulate,
shadow page tables, optionally binary translation): each VM has one, built on the
hypervisor's hart and host pages, so the guest kernel is the same unmodified tinyos
that boots on the bare board.

The vCPU (``Vcpu``) is what the scheduler queues. While it is not on the hart its
registers, CSRs and counters are kept in ``Vcpu.context``; a world switch copies one
vCPU's context out of the hart and the next one's in (``save`` and ``restore``).

A VM is in one of these states, which the hypervisor changes:

    runnable  wants the CPU: on the run queue, or running
    blocked   its guest executed WFI with no interrupt pending: off the run queue until
              an interrupt for it (its timer, its disk, console input) wakes it
    halted    its guest shut down (SBI system reset, or the test finisher)
    crashed   its guest can no longer run: a fault loop in its kernel, or an error of
              its monitor; the hypervisor stopped it and the other VMs go on
"""

from __future__ import annotations

import numpy as np

from virtkit.cpu import state as S
from virtkit.isa import csrs
from virtkit.monitors.fullvirt.vcpu import NO_DEADLINE

# The clock a guest reads (rdtime) and sets its timer by. Barham et al. (SOSP 2003, 2.3)
# give Xen's guests both: real time, which runs whatever the domain does, and virtual
# time, which "only advances while the domain is executing". tinyos has one clock, used
# for its time slices and its sleeps, so here a virtual clock stops only while the vCPU
# waits in the run queue (its steal time), not while it is blocked: a sleeping guest
# still wakes at its deadline.
GUEST_CLOCKS = {
    "real": "the machine's time: the time other VMs run passes for this guest too",
    "virtual": "stops while the vCPU waits for the CPU: the guest does not see its steal time",
}

RUNNABLE = "runnable"
BLOCKED = "blocked"
HALTED = "halted"
CRASHED = "crashed"

# The part of the hart's state buffer (virtkit.cpu.state) that belongs to a vCPU, by slot:
# the st slots first (pc, privilege, timer compare, ...; so ``context[S.MTIME_OFFSET]``
# is that slot), then the registers, the CSRs the hart implements and the statistics.
# This is the architectural state a real world switch saves, and no more: not the rest
# of the 4,096-entry CSR number space (which nothing can write), not the TLB (its entries
# have no VMID tags with V=0, and every VM's monitor numbers its ASIDs from 1, so a world
# switch flushes it), not the decode cache (a slot is only used for the word RAM holds):
# 606 slots of the 4,464 before the TLB.
CONTEXT_SLOTS = np.concatenate(
    [
        np.arange(S.ST_BASE, S.ST_BASE + S.ST_SIZE),
        np.arange(S.X_BASE, S.X_BASE + 32),
        S.CSR_BASE + np.array(sorted(csrs.BY_NUMBER), dtype=np.int64),
        np.arange(S.STATS_BASE, S.STATS_BASE + S.STAT_SIZE),
    ]
)
assert S.ST_BASE == 0, "context[slot] must be st[slot]"


class Vcpu:
    """The virtual CPU of ``vm``: what the run queue holds and the hart runs.

    ``context`` is the hart's state for this vCPU while it is off the hart. Only the
    machine's clock (``st[TICKS]``) is not part of it: time goes on for every VM, as
    wall-clock time does under Xen, whether its vCPU runs or not.
    """

    def __init__(self, vm: VirtualMachine):
        self.vm = vm
        self.name = vm.name
        self.context = np.zeros(len(CONTEXT_SLOTS), dtype=np.int64)

    def save(self, hart) -> None:
        """Copy this vCPU's state out of the hart (the first half of a world switch)."""
        self.context[:] = hart.arrays.state[CONTEXT_SLOTS]

    def restore(self, hart) -> None:
        """Load this vCPU's state into the hart, keeping the machine's clock, and flush
        the TLB: its entries translate the previous VM's addresses."""
        arrays = hart.arrays
        clock = int(arrays.st[S.TICKS])
        arrays.state[CONTEXT_SLOTS] = self.context
        arrays.st[S.TICKS] = clock
        arrays.tlb_tag[:] = 0

    def __repr__(self) -> str:
        return f"<vCPU {self.name}: {self.vm.state}>"


class VirtualMachine:
    """One VM: its name, its share (``weight``, ``cap``), its monitor, its vCPU, its state.

    ``monitor`` is the FullVirtMonitor that runs its guest on the hypervisor's hart;
    its ``memory`` is the VM's partition of RAM and its ``board`` the VM's devices.
    ``workload`` says in words what the guest runs, for tables and timelines.
    """

    def __init__(
        self, name: str, monitor, *, weight: int, cap: int, workload: str, guest_clock: str
    ):
        self.name = name
        self.monitor = monitor
        self.weight = weight
        self.cap = cap
        self.workload = workload
        self.guest_clock = guest_clock  # "real" or "virtual" (see GUEST_CLOCKS)
        self.steal_time = 0  # hart ticks it was runnable but another vCPU had the CPU
        self.waiting_since: int | None = None  # tick it began waiting in the run queue
        self.vcpu = Vcpu(self)
        self.state = RUNNABLE
        self.exit_code: int | None = None  # when halted
        self.crash: str | None = None  # when crashed: what happened, for a person
        self.stopped_at: int | None = None  # microseconds, when halted or crashed
        self.cpu_time = 0  # microseconds on the CPU
        self.dispatches = 0  # times the scheduler gave it the CPU after another vCPU
        self.disk_requests = 0  # requests its virtual disk served

    # -- what the guest sees ----------------------------------------------------------------
    @property
    def console(self):
        """The VM's console: what its virtual UART (and SBI console) printed."""
        return self.monitor.console

    @property
    def memory(self):
        """The VM's guest-physical memory: its partition of the machine's RAM."""
        return self.monitor.memory

    @property
    def alive(self) -> bool:
        return self.state in (RUNNABLE, BLOCKED)

    def retired(self) -> int:
        """Guest instructions retired so far, in both virtual modes."""
        return sum(self.monitor.vcpu.instructions.values())

    # -- blocked: what can wake it -------------------------------------------------------------
    def interrupt_pending(self) -> bool:
        """An interrupt is pending for the guest (its devices raise them even while its
        vCPU is off the hart: the virtual CPU's sip lives in host memory)."""
        return bool(self.monitor.vcpu.slot("sip")) or self.console.has_input()

    def timer_deadline(self, ticks_per_mtime: int) -> int | None:
        """When the guest's timer fires, in hart ticks, or None if it is not armed."""
        deadline = self.monitor.vcpu.stimecmp
        if deadline == NO_DEADLINE:
            return None
        return (deadline - int(self.vcpu.context[S.MTIME_OFFSET])) * ticks_per_mtime

    def describe_state(self) -> str:
        """The state in words: "halted (exit code 0)", "crashed: ...", "blocked", ..."""
        if self.state == HALTED:
            return f"halted (exit code {self.exit_code})"
        if self.state == CRASHED:
            return f"crashed: {self.crash}"
        return self.state

    def __repr__(self) -> str:
        return (
            f"<VM {self.name}: {self.workload}, weight {self.weight}"
            f"{f', cap {self.cap}%' if self.cap else ''}, {self.describe_state()}>"
        )


class LinePrefixer:
    """Writes a VM's console output line by line, each line prefixed with the VM's name.

    Several VMs print at once; whole lines keep them readable: ``vm1 | hello``. What is
    left of an unfinished line comes out at ``flush``.
    """

    def __init__(self, name: str, write, width: int = 0):
        self.prefix = f"{name:<{width}} | "
        self.write = write
        self.partial = ""

    def __call__(self, text: str) -> None:
        lines = (self.partial + text).split("\n")
        self.partial = lines.pop()
        for line in lines:
            self.write(f"{self.prefix}{line}\n")

    def flush(self) -> None:
        if self.partial:
            self.write(f"{self.prefix}{self.partial}\n")
            self.partial = ""
