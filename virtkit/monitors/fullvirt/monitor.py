"""The full-virtualization monitor: an unmodified kernel, deprivileged, and its exit loop.

    monitor = FullVirtMonitor(ram_mb=64)                  # or translate=True
    monitor.load("tinyos.elf", cmdline="init=hello")
    result = monitor.run()                                # until the guest shuts down
    monitor.console.text                                  # what it printed
    print(monitor.report().summary())                     # exits, cycles, overhead

The guest kernel believes it runs in S-mode on a ``virt`` board with SBI firmware. It
runs in real U-mode on a hart whose every trap exits to this monitor
(``trap_exits="all"``), with the real satp pointing at shadow page tables, and the
monitor keeps up the illusion:

    exit = vcpu.run()
    match exit.reason:
        TRAP   a privileged instruction of the guest kernel: emulate it on the virtual
               CPU (trap_and_emulate); its ECALL: an SBI call (sbi); a page fault:
               fill the shadow tables or give the guest its own fault (shadow_paging);
               any other trap of the guest: reflect it into the guest kernel; the real
               timer: the guest's timer interrupt may be due; with binary translation,
               an ECALL in translated code: a call-out (binary_translation)
        MMIO   a device register: the device models (devices)
        BUDGET the monitor's time slice ended: look at the console, go on

Before the guest runs again the monitor delivers a virtual interrupt the guest can take
now (its sstatus.SIE and sie allow it), and, with translation, finds the translated
code for the guest kernel's pc.

The exit fastpath. On its way into and out of every trap handler the guest kernel reads
CSRs and writes sscratch, sepc, scause or stval: seven of the ten exits of a tinyos
timer tick. Emulating one of those accesses changes a register and a slot
of the virtual CPU and nothing else: no shadow table, interrupt or timer follows. So
the monitor serves those first, on a short path (``_fastpath``), and resumes the guest
at once, before the full decision above. KVM does the same with the exits it can finish
without its full exit handling (``vmx_exit_handlers_fastpath`` in
arch/x86/kvm/vmx/vmx.c: a write of the TSC-deadline MSR, the preemption timer). The
fastpath counts, charges and emulates exactly as the full path does, with the same
``emulate_csr``; the two give the same guest, counts and costs (``fastpath=False``
turns it off, and the tests compare). It serves only the monitor's own emulation: put
in your own ``emulate_csr`` or ``emulate_privileged`` and every exit takes the full path.

The pieces a lesson asks students to write are plain functions the monitor calls
through attributes, so an exercise can put its own in: ``emulate_csr``,
``emulate_privileged``, ``reflect_trap`` (trap_and_emulate) and ``compute_shadow_pte``
(shadow_paging).

Guest memory is a real guest-physical -> host-physical map: the guest's RAM sits in
host RAM after the monitor's own pages, so no guest address equals its host address.
"""

from __future__ import annotations

import functools
import io
import os
import pickle
import struct
import zlib
from collections import Counter
from pathlib import Path

import numpy as np

from virtkit import costs
from virtkit.cpu import Hart
from virtkit.cpu import exits as E
from virtkit.cpu import state as S
from virtkit.isa import causes as C
from virtkit.isa import instructions as I
from virtkit.machine import board
from virtkit.machine.elf import ElfImage, as_image, check_fits, image_from_record, image_record
from virtkit.machine.machine import RunResult
from virtkit.machine.sbi import SystemReset
from virtkit.machine.virtio_blk import VirtioBlk
from virtkit.monitors.fullvirt import shadow_paging as SP
from virtkit.monitors.fullvirt import trap_and_emulate as TE
from virtkit.monitors.fullvirt.binary_translation import T0, BinaryTranslator
from virtkit.monitors.fullvirt.devices import VirtualBoard, plain_state
from virtkit.monitors.fullvirt.sbi import VirtualSbi
from virtkit.monitors.fullvirt.vcpu import MIP_STIP, NO_DEADLINE, VIRTUAL_CSRS, VirtualCPU
from virtkit.monitors.memory import PAGE_SHIFT, PAGE_SIZE, GuestPhysicalMemory, HostFrames

BATCH_INSTRUCTIONS = 200_000  # the monitor's time slice: it looks at the console between
SHADOW_POOL_PAGES = 512  # host pages for shadow page tables (2 MiB)
NEVER = np.iinfo(np.int64).max
MIP_MTIP = 1 << C.IRQ_M_TIMER
PMPADDR_ALL = 0xFFFF_FFFF
PMPCFG_NAPOT_RWX = 0x1F
ECALL = I.BY_NAME["ecall"].match
EBREAK = I.BY_NAME["ebreak"].match
# Virtual CSRs whose writes only store a value: nothing else in the machine follows them.
PLAIN_STORAGE_CSRS = ("sscratch", "sepc", "scause", "stval")


@functools.lru_cache(maxsize=1024)
def instruction_name(insn: int) -> str:
    """The name of a trapped instruction word, for the exit and emulation counts."""
    kind = I.lookup(insn)
    return kind.name if kind is not None else "unknown instruction"


@functools.lru_cache(maxsize=1024)
def fastpath_csr_access(insn: int) -> bool:
    """Whether the exit fastpath may serve the CSR instruction ``insn``: a read of any
    virtual CSR, or a write of one that is plain storage (PLAIN_STORAGE_CSRS). Neither
    changes the shadow tables, the interrupts or the timer; only a register and a slot
    of the virtual CPU."""
    access = TE.decode_csr(insn)
    if access is None or access.csr not in VIRTUAL_CSRS:
        return False
    return not access.writes or VIRTUAL_CSRS[access.csr] in PLAIN_STORAGE_CSRS


@functools.lru_cache(maxsize=1024)
def guest_kernel_exit(insn: int) -> str:
    """How the exit counts name an illegal-instruction exit of the guest kernel."""
    return f"guest S: {instruction_name(insn)}"


class MonitorError(RuntimeError):
    """The monitor cannot go on; the message says what happened and where."""


def parse_until(until: str | int) -> tuple[str | None, int | None]:
    """What a monitor's ``run(until)`` waits for: (console text, step count), either None.

    The same choices as Machine.run, without breakpoints: "halt", a console string, or
    a number of steps >= 0."""
    awaited = until if isinstance(until, str) and until != "halt" else None
    limit = until if isinstance(until, int) and not isinstance(until, bool) else None
    if awaited is None and limit is None and until != "halt":
        raise ValueError(f"until={until!r}: use 'halt', a console string or a count >= 0")
    if limit is not None and limit < 0:
        raise ValueError(f"until={until!r}: a number of instructions must be >= 0")
    return awaited, limit


def skip_to(hart: Hart, deadline: int) -> None:
    """An idle guest waits for its timer: move the hart's clock on to mtime = ``deadline``
    (time is instructions, so nothing else needs to run in between)."""
    st = hart.arrays.st
    target = (deadline - int(st[S.MTIME_OFFSET])) * int(st[S.TICKS_PER_MTIME])
    st[S.TICKS] = max(int(st[S.TICKS]), target)


class GuestTimer:
    """The guest's timer and its WFI, for a monitor with ``hart``, ``vcpu`` (which keeps
    ``stimecmp``, ``time()``, ``set_pending`` and ``slot("sip")``), ``console`` and
    ``wfi_exits``: the part the full-virtualization and the hardware-assisted monitors
    share. The guest sets its deadline with SBI set_timer; the real timer fires then."""

    def _program_timer(self) -> None:
        """The real timer fires at the guest's deadline, unless its interrupt is pending."""
        vcpu = self.vcpu
        deadline = vcpu.stimecmp
        if deadline == NO_DEADLINE or vcpu.slot("sip") & MIP_STIP:
            self.hart.arrays.st[S.MTIMECMP] = NEVER
        else:
            self.hart.arrays.st[S.MTIMECMP] = min(deadline, NEVER)

    def _timer(self) -> None:
        if self.vcpu.time() >= self.vcpu.stimecmp:
            self.vcpu.set_pending(MIP_STIP, True)
        self._program_timer()

    def _wait_for_interrupt(self):
        """Guest WFI: go on if an interrupt is pending; else let time pass to the guest's
        deadline (the hart does the same for its own WFI); else only input can help."""
        vcpu = self.vcpu
        if vcpu.slot("sip"):
            return None
        if self.wfi_exits:
            return "wfi", None  # the time is not this guest's to skip: a hypervisor's
        if vcpu.stimecmp != NO_DEADLINE:
            skip_to(self.hart, vcpu.stimecmp)
            self._timer()
            return None
        if self.console.interactive:
            self.console.wait_for_input()
        if self.console.has_input():
            return None
        return "idle", None


class FullVirtMonitor(GuestTimer):
    """One guest, fully virtualized on its own hart.

    ``ram_mb``: the guest's RAM (at guest-physical 0x8000_0000, as on the board);
    ``disk``: a virtio-blk disk image (bytes or a path); ``translate``: run the guest
    kernel through the binary translator instead of trap-and-emulate;
    ``sstatus_unprivileged``: the Popek-Goldberg switch, a hart whose U-mode reads of
    sstatus succeed (real values) and writes are ignored, instead of trapping;
    ``cost_model``: a virtkit.costs preset or CostModel.

    ``host``: (hart, HostFrames) to run on instead of a hart of its own: the monitor
    takes its pages and the guest's RAM from those frames. That is how a hypervisor
    puts several guests on one machine (issue 9): each monitor owns the hart while it
    runs, and the hypervisor saves and restores ``hart.arrays.state`` around it.
    ``wfi_exits``: a guest WFI with no interrupt pending ends ``run`` with reason "wfi"
    instead of letting the machine's time pass to the guest's timer deadline: the
    hypervisor runs another guest meanwhile (the hart's own ``wfi_exits``, one level up).
    ``disk_model``: what makes the disk device (devices.VirtualBoard).
    ``fastpath``: serve plain CSR exits on the exit fastpath (see the module's doc).
    """

    def __init__(
        self,
        ram_mb: int = 128,
        disk: str | os.PathLike | bytes | None = None,
        *,
        translate: bool = False,
        sstatus_unprivileged: bool = False,
        cost_model: str | costs.CostModel = costs.DEFAULT_PRESET,
        host: tuple[Hart, HostFrames] | None = None,
        wfi_exits: bool = False,
        disk_model=VirtioBlk,
        fastpath: bool = True,
    ):
        if not isinstance(ram_mb, int) or ram_mb < 1:
            raise ValueError(f"ram_mb must be a whole number of MiB >= 1, got {ram_mb!r}")
        self.ram_mb = ram_mb
        self.translate = translate
        self.cost_model = costs.preset(cost_model)
        self.meter = costs.Meter()
        self.exits: Counter = costs.Tally()  # exits by cause, in words
        self.emulated: Counter = costs.Tally()  # emulated instructions by mnemonic
        self.reflected: Counter = costs.Tally()  # traps reflected into the guest, by cause

        # Host RAM: the monitor's pages first, then the guest's RAM.
        monitor_pages = 1 + SHADOW_POOL_PAGES + (BinaryTranslator.host_pages() if translate else 0)
        guest_pages = (ram_mb << 20) >> PAGE_SHIFT
        if host is None:
            self.hart = Hart((monitor_pages + guest_pages) << PAGE_SHIFT, trap_exits="all")
            frames = HostFrames(self.hart)
        else:
            self.hart, frames = host
        self.vcpu_area = frames.take(1, what="the virtual CPU")[0]
        shadow_frames = frames.take(SHADOW_POOL_PAGES, what="the shadow page tables")
        self.memory = GuestPhysicalMemory(
            self.hart, board.RAM_BASE, frames.take(guest_pages, what="guest RAM")
        )
        self.memory.on_write = self._guest_memory_written
        area = self._host_slice(self.vcpu_area)
        self.vcpu = VirtualCPU(self.hart, area)
        self.board = VirtualBoard(self.hart, self.vcpu, self.memory, disk, disk_model)
        self.console = self.board.console
        self.sbi = VirtualSbi(
            self.vcpu, self.memory, self.board.uart, self.console.write, self._program_timer
        )
        # The pieces an exercise may replace (CSR emulation is used by trap-and-emulate;
        # translated code does most CSR accesses inline).
        self.emulate_privileged = TE.emulate_privileged
        self.emulate_csr = TE.emulate_csr
        self.reflect_trap = TE.reflect_trap
        self.shadow = SP.ShadowMMU(
            self.hart,
            self.vcpu,
            self.memory,
            self._host_page,
            SP.FramePool(shadow_frames),
            self.meter,
        )
        self.translator = (
            BinaryTranslator(
                self.hart, frames, self.vcpu_area, self.shadow, self.memory, self.meter
            )
            if translate
            else None
        )
        self.sstatus_unprivileged = sstatus_unprivileged
        self.wfi_exits = wfi_exits
        self.fastpath = fastpath
        self.fastpath_exits = 0  # exits the fastpath served (they are in ``exits`` too)
        self.image: ElfImage | None = None
        self.cmdline = ""
        self.halted: int | None = None
        self._direct_steps = 0  # guest-S instructions to run untranslated (a code write)
        self._extra_steps = 0  # exceptions reflected into the guest: steps that retire nothing
        self._real_scounteren = 0

    @property
    def compute_shadow_pte(self):
        return self.shadow.compute_shadow_pte

    @compute_shadow_pte.setter
    def compute_shadow_pte(self, function) -> None:
        self.shadow.compute_shadow_pte = function

    # -- host memory ---------------------------------------------------------------------------
    def _host_slice(self, hppn: int) -> np.ndarray:
        offset = (hppn << PAGE_SHIFT) - self.hart.ram_base
        return self.hart.arrays.ram[offset : offset + PAGE_SIZE]

    def _host_page(self, gppn: int) -> int | None:
        """Guest-physical page -> host page: RAM through the map, devices as they are."""
        hppn = self.memory.host_page(gppn)
        if hppn is None and self.board.is_device_page(gppn):
            return gppn  # emulated devices: the hart's MMIO regions are at these addresses
        return hppn

    def _guest_memory_written(self, gpa: int, size: int) -> None:
        if self.translator is not None and self.translator.guest_memory_written(gpa, size):
            self._leave_stale_translation()

    # -- loading and booting ---------------------------------------------------------------------
    def load(self, program, cmdline: str = "") -> None:
        """Load a kernel (ELF path or bytes, Program, ElfImage) and boot it, as the board's
        SBI firmware would: S-mode at its entry, a0 = hart id 0, a1 = 0 (no device tree).
        ``cmdline`` goes NUL-terminated at board.CMDLINE_BASE (tinyos reads it there)."""
        image = as_image(program)
        check_fits(image, self.memory.base, self.memory.size)
        if cmdline and not (cmdline.isascii() and "\0" not in cmdline):
            raise ValueError(f"cmdline={cmdline!r}: the boot command line is ASCII, without NUL")
        if len(cmdline) >= board.CMDLINE_SIZE:
            raise ValueError(
                f"the boot command line has {len(cmdline)} characters; at most "
                f"{board.CMDLINE_SIZE - 1} fit at {board.CMDLINE_BASE:#010x}"
            )
        self.image = image
        self.cmdline = cmdline
        self._boot()

    def _boot(self) -> None:
        for segment in self.image.segments:
            self.memory.write_memory(segment.address, segment.data)
        cmdline_end = board.CMDLINE_BASE + len(self.cmdline) + 1
        if cmdline_end <= self.memory.base + self.memory.size and not any(
            s.address < cmdline_end and board.CMDLINE_BASE < s.address + len(s.data)
            for s in self.image.segments
        ):
            self.memory.write_memory(board.CMDLINE_BASE, self.cmdline.encode("ascii") + b"\0")
        hart = self.hart
        self._reset_hart(self.image.entry)
        self.vcpu.reset()
        self.shadow.flush()
        if self.translator is not None:
            self.translator.flush()
        self.halted = None
        self._direct_steps = 0
        hart.x["a0"] = 0  # hart id
        hart.x["a1"] = 0  # no device tree
        self._program_timer()
        self._resume_at(self.image.entry, after_reset=True)

    def close(self) -> None:
        """Write a file-backed disk's changes out and close the file."""
        if self.board.disk is not None:
            self.board.disk.close()

    def _reboot(self) -> None:
        """SBI system reset or the finisher's reset: devices and guest start over (the
        disk keeps its contents, as a real disk does)."""
        self.vcpu.put()  # count what the guest retired before the hart's reset clears it
        self.board.reset()
        self._boot()
        self.vcpu.load()

    # -- running -------------------------------------------------------------------------------
    def run(self, until: str | int = "halt") -> RunResult:
        """Run until the guest halts, or ``until``: a console string or a number of guest
        instructions (the same choices as Machine.run, without breakpoints)."""
        if self.image is None:
            raise MonitorError("nothing to run: load a kernel first (monitor.load(...))")
        if self.halted is not None:
            raise MonitorError(f"the guest has halted (exit code {self.halted}): load it again")
        awaited, limit = parse_until(until)
        self.vcpu.load()
        try:
            return self._exit_loop(awaited, limit)
        finally:
            self.vcpu.put()

    def _exit_loop(self, awaited: str | None, limit: int | None) -> RunResult:
        start = self._steps()
        console_start = max(len(self.console.text) - len(awaited or "") + 1, 0)
        exit = self.hart.last_exit()
        # Time may have passed while the guest was off the hart (a hypervisor ran other
        # VMs): a timer already due raises its interrupt now, without an exit for it.
        self._timer()
        budget = BATCH_INSTRUCTIONS
        while True:
            if limit is not None:
                done = self._steps() - start
                if done >= limit:
                    return RunResult("count", exit, done)
                budget = min(BATCH_INSTRUCTIONS, limit - done)
            self.board.deliver_input()
            steps = self._prepare(budget)
            if steps == 0:
                continue  # a trap was delivered in Python: look again
            exit, served = self._run_guest(steps)
            if served:
                continue  # the steps ran out between exits the fastpath served
            stop = self._dispatch(exit)
            if stop is not None:
                reason, code = stop
                if reason == "halt":
                    self.halted = code
                return RunResult(reason, exit, self._steps() - start, code)
            if awaited is not None and awaited in self.console.text[console_start:]:
                return RunResult("console", exit, self._steps() - start)

    def _run_guest(self, steps: int) -> tuple[E.Exit, bool]:
        """Run the guest for at most ``steps``, serving the exits the fastpath can and
        re-entering the guest straight after each (KVM's EXIT_FASTPATH_REENTER_GUEST).
        Returns the last exit, and whether the fastpath served it (the steps ran out)."""
        st = self.hart.arrays.st
        end = st.item(S.RETIRED) + steps
        while True:
            exit = self.vcpu.run(steps)
            if not self._fastpath(exit):
                return exit, False
            steps = end - st.item(S.RETIRED)  # an emulated instruction is a step too
            if steps <= 0:
                return exit, True

    def _fastpath(self, exit: E.Exit) -> bool:
        """Serve a plain CSR exit of the guest kernel (fastpath_csr_access) as the full
        path would (_trap, _emulate), without its checks; False for any other exit."""
        if exit.reason != E.EXIT_TRAP or exit.cause != C.CAUSE_ILLEGAL_INSTRUCTION:
            return False
        insn = exit.instruction
        if not (
            self.fastpath
            and fastpath_csr_access(insn)
            and self.vcpu.privilege  # guest S: in guest U the instruction is illegal
            and self.translator is None  # translated code does these accesses inline
            and not exit.interrupt
            and self.emulate_csr is TE.emulate_csr
            and self.emulate_privileged is TE.emulate_privileged
        ):
            return False
        self.meter.charge("vm_exit")
        self.exits[guest_kernel_exit(insn)] += 1
        TE.emulate_csr(self.vcpu, insn, self.hart.x)
        self.emulated[instruction_name(insn)] += 1
        self.meter.charge("emulated_instruction")
        self.vcpu.retire_emulated()
        self.hart.pc = exit.pc + 4
        self.fastpath_exits += 1
        return True

    def _steps(self) -> int:
        return self.hart.arrays.st.item(S.RETIRED) + self._extra_steps

    def _dispatch(self, exit: E.Exit):
        """The exit loop's one flat decision: what the hart stopped for."""
        if self._direct_steps and exit.reason == E.EXIT_BUDGET:
            self._direct_steps = 0  # the untranslated instruction has run
        match exit.reason:
            case E.EXIT_TRAP:
                return self._trap(exit)
            case E.EXIT_MMIO_READ | E.EXIT_MMIO_WRITE:
                self._count_exit("MMIO (device register)")
                self.meter.charge("vm_exit")
                self.meter.charge("mmio_exit")
                # The access retires as the board completes it (hart.complete_mmio), in
                # the current virtual mode, where the virtual CPU counts it.
                outcome = self.board.mmio(self.hart, exit)
                self._leave_stale_translation()
                if outcome == ("reset", 0):
                    self._reboot()
                    return None
                return outcome
            case E.EXIT_BUDGET:
                return None
            case _:
                raise MonitorError(f"unexpected exit from the hart: {exit}")

    def _prepare(self, budget: int) -> int:
        """Before the guest runs: deliver an interrupt it can take, and with translation,
        enter the translated code. Returns the budget (0: nothing to run, look again)."""
        vcpu, hart = self.vcpu, self.hart
        cause = vcpu.interrupt_to_take()
        if cause is not None:
            pc = self._guest_pc()
            if pc is None:
                return 1  # in the middle of translated code: step to the next boundary
            self._reflect(cause, 0, pc, interrupt=True)
        translator = self.translator
        if translator is not None and vcpu.mode == "S" and not translator.contains(hart.pc):
            if self._direct_steps:
                return 1
            block = translator.cached(hart.pc)
            if block is None:
                page = self.shadow.instruction_page(hart.pc)
                if isinstance(page, SP.GuestFault):
                    self._reflect(page.cause, hart.pc, hart.pc)
                    return 0
                block = translator.entry(hart.pc, page)
            hart.pc = block.entry
        return budget

    def _guest_pc(self) -> int | None:
        """The guest's pc now, or None in the middle of a translated instruction."""
        pc = self.hart.pc
        if self._in_translated_code(pc):
            return self.translator.guest_pc(pc)
        return pc

    def _in_translated_code(self, pc: int) -> bool:
        """Whether the hart at ``pc`` runs translated guest-kernel code (guest user code
        runs directly, wherever it is)."""
        translator = self.translator
        return translator is not None and self.vcpu.mode == "S" and translator.contains(pc)

    def _resume_at(self, pc: int, *, after_reset: bool = False) -> None:
        """Continue the guest at ``pc`` in its current virtual mode."""
        self.hart.pc = pc
        self.shadow.activate(after_reset=after_reset)
        # Counters: guest S may read them all (its firmware allowed it); guest U as far
        # as the guest kernel's scounteren allows.
        enable = 0xFFFF_FFFF if self.vcpu.mode == "S" else self.vcpu.slot("scounteren")
        if enable != self._real_scounteren or after_reset:
            self.hart.csr["scounteren"] = enable
            self._real_scounteren = enable

    def _count_exit(self, name: str) -> None:
        self.exits[name] += 1

    # -- traps -------------------------------------------------------------------------------
    def _trap(self, exit: E.Exit):
        # The exit's pc is the trapping instruction's; the hart's own pc slot is only
        # brought up to date at the end of a batch, so the monitor resumes from exit.pc.
        if exit.interrupt:
            if exit.cause != C.IRQ_M_TIMER:
                raise MonitorError(f"unexpected real interrupt: {exit}")
            self.hart.pc = exit.pc
            self._count_exit("timer (the monitor's)")
            self.meter.charge("vm_exit")
            self._timer()
            return None
        translator = self.translator
        pc = exit.pc
        if translator is not None and self._in_translated_code(exit.pc):
            self.hart.pc = exit.pc
            if exit.cause == C.CAUSE_USER_ECALL:
                return self._callout(exit)
            pc = translator.guest_pc(exit.pc)
            if pc is None:
                pc = translator.owner_pc(exit.pc)
            if pc is None:
                raise MonitorError(
                    f"{exit} in the translator's own code, which cannot fault: a bug in the "
                    "binary translator"
                )
        self.meter.charge("vm_exit")
        cause = exit.cause
        if cause == C.CAUSE_ILLEGAL_INSTRUCTION and self.vcpu.mode == "S":
            # The commonest exit: a privileged instruction of the guest kernel. (_emulate
            # moves the hart's pc on, past it or to a trap handler.)
            self.exits[guest_kernel_exit(exit.instruction)] += 1
            return self._emulate(exit.instruction, pc)
        self.hart.pc = exit.pc
        if cause in SP.ACCESS_OF_PAGE_FAULT:
            return self._page_fault(exit, pc)
        if self.vcpu.mode == "U":
            self._count_exit(f"guest U: {C.cause_name(cause)}")
            self._reflect(cause, exit.tval, pc)
            return None
        match cause:
            case C.CAUSE_USER_ECALL:
                self._count_exit("guest S: ecall (SBI call)")
                return self._guest_kernel_instruction(ECALL, pc)
            case C.CAUSE_BREAKPOINT:
                self._count_exit("guest S: ebreak")
                return self._guest_kernel_instruction(EBREAK, pc)
        self._count_exit(f"guest S: {C.cause_name(cause)}")
        self._reflect(cause, exit.tval, pc)
        return None

    def _guest_kernel_instruction(self, insn: int, pc: int):
        """An instruction of the guest kernel that needs the monitor."""
        if insn == ECALL:
            self.meter.charge("hypercall")
            self.emulated["ecall (SBI call)"] += 1
            self.vcpu.retire_emulated()
            reset = self.sbi.call(self.hart.x)
            match reset:
                case SystemReset("shutdown", code):
                    return "halt", code
                case SystemReset("reboot"):
                    self._reboot()
                    return None
            self._resume_at(pc + 4)
            return None
        if insn == EBREAK:
            self._reflect(C.CAUSE_BREAKPOINT, pc, pc)
            return None
        return self._emulate(insn, pc)

    def _emulate(self, insn: int, pc: int):
        """A privileged instruction of the guest kernel: emulate it, then bring the real
        hart (shadow tables, translations, counters) in line with what it changed."""
        vcpu = self.vcpu
        before = vcpu.translation_state()
        try:
            done = self.emulate_privileged(vcpu, insn, self.hart.x, pc, self.emulate_csr)
        except TE.GuestException as exception:
            self._reflect(exception.cause, exception.tval, pc)
            return None
        self.emulated[instruction_name(insn)] += 1
        self.meter.charge("emulated_instruction")
        vcpu.retire_emulated()
        after = vcpu.translation_state()
        if done.kind == "csr" and after == before:
            # A CSR access that leaves satp, SUM and MXR alone (sstatus.SIE, sie, ...):
            # the virtual mode, the shadow tables and the real CSRs stay as they are;
            # the guest goes on (an interrupt it now allows is delivered before it runs).
            self.hart.pc = done.next_pc
            return None
        (old_satp, old_sstatus), (new_satp, new_sstatus) = before, after
        if new_satp != old_satp:
            self._address_space_changed()
        if new_sstatus != old_sstatus:
            self.shadow.sstatus_changed(old_sstatus, new_sstatus)
        match done.kind:
            case "sfence.vma":
                self.shadow.sfence_vma(done.address, done.asid)
                self._revalidate_translations()
            case "wfi":
                stop = self._wait_for_interrupt()
                if stop is not None:
                    self.hart.pc = done.next_pc
                    return stop
        self._resume_at(done.next_pc)
        return None

    def _address_space_changed(self) -> None:
        # The shadow follows satp by itself (activate finds the new root's tables in
        # its cache); the translator's lookup table must be checked against the new map.
        self._revalidate_translations()

    def _revalidate_translations(self) -> None:
        if self.translator is not None:
            self.translator.revalidate(lambda va: self.shadow.instruction_page(va, fetching=False))

    def _reflect(self, cause: int, tval: int, pc: int, interrupt: bool = False) -> None:
        """Deliver a trap to the guest kernel (a virtual trap) and continue there."""
        name = C.cause_name(cause | (C.INTERRUPT_BIT if interrupt else 0))
        self.reflected[name] += 1
        if not interrupt:
            # The faulting instruction does not retire, but it is a step, as it is for the
            # hart's budget: a guest caught in a loop of faults still uses up its count.
            self._extra_steps += 1
        self.meter.charge("emulated_instruction")  # the trap entry, done in software
        self._direct_steps = 0
        self._resume_at(self.reflect_trap(self.vcpu, cause, tval, pc, interrupt))

    def _page_fault(self, exit: E.Exit, pc: int):
        access = SP.ACCESS_OF_PAGE_FAULT[exit.cause]
        fill = self.shadow.fill(exit.tval, access)
        match fill.kind:
            case "hidden":
                self._count_exit("page fault (hidden: shadow filled)")
            case "guest":
                self._count_exit("page fault (the guest's own)")
                self._reflect(fill.cause, exit.tval, pc)
            case "code":
                self._count_exit("store to translated code")
                self.translator.invalidate_page(fill.gppn)
                if self._in_translated_code(self.hart.pc):
                    self.hart.pc = pc  # run the store itself untranslated, once
                    self._direct_steps = 1
        return None

    def _leave_stale_translation(self) -> None:
        """After translations were dropped, leave the translated code if the hart is in it."""
        translator, hart = self.translator, self.hart
        if not self._in_translated_code(hart.pc):
            return
        block = translator.block_of(hart.pc)
        if block is not None and not block.valid:
            pc = translator.guest_pc(hart.pc)
            hart.pc = pc if pc is not None else translator.owner_pc(hart.pc)

    # -- binary translation: call-outs ---------------------------------------------------------
    def _callout(self, exit: E.Exit):
        translator, hart, vcpu = self.translator, self.hart, self.vcpu
        callout = translator.callouts.get(exit.pc)
        if callout is None:
            raise MonitorError(
                f"an ECALL in the translation cache at {exit.pc:#010x} is no call-out"
            )
        self.meter.charge("callout")
        self._count_exit(f"call-out: {callout.kind}")
        for register, slot in callout.restore:
            hart.x[register] = vcpu.slot(slot)
        match callout.kind:
            case "instruction":
                return self._guest_kernel_instruction(callout.insn, callout.guest_pc)
            case "interrupt_window":
                ready = vcpu.interrupt_to_take() is not None
                hart.pc = callout.guest_pc if ready else callout.resume
            case "chain":
                site_block = translator.block_of(callout.site)
                page = self.shadow.instruction_page(callout.guest_pc)
                if isinstance(page, SP.GuestFault):
                    self._reflect(page.cause, callout.guest_pc, callout.guest_pc)
                    return None
                block = translator.entry(callout.guest_pc, page)
                if site_block is not None and site_block.valid and site_block.gppn == block.gppn:
                    translator.patch_chain(callout.site, block)
                hart.pc = block.entry
            case "reflect":
                self._reflect(callout.cause, callout.tval, callout.guest_pc)
            case "dispatch_miss":
                target = hart.x[T0]
                hart.x[T0] = vcpu.slot("spill0")
                if target & 3:
                    # The jump is the instruction that faults; the area's "site" slot says
                    # where it was (unless the guest wrote over its virtual-CPU area).
                    jump = translator.owner_pc(vcpu.slot("site") - 4)
                    self._reflect(
                        C.CAUSE_MISALIGNED_FETCH, target, target if jump is None else jump
                    )
                else:
                    hart.pc = target  # a guest pc: _prepare translates it
        return None

    # -- reports -------------------------------------------------------------------------------
    def report(self, label: str | None = None) -> costs.RunReport:
        """What the guest did and cost so far, priced by the monitor's cost model."""
        meter = costs.Meter(Counter(self.meter.counts))
        meter.charge("instruction", sum(self.vcpu.instructions.values()))
        meter.charge("page_walk_step", 2 * self.hart.stats["tlb_misses"])
        details = {
            "emulated instructions": sum(self.emulated.values()),
            "traps reflected into the guest": sum(self.reflected.values()),
            "shadow PTE updates": self.meter["shadow_pte_update"],
            **self.shadow.statistics,
        }
        if self.translator is not None:
            details.update(self.translator.statistics)
        return costs.RunReport(
            label or ("binary translation" if self.translator else "trap-and-emulate"),
            self.cost_model,
            dict(self.vcpu.instructions),
            dict(self.exits),
            meter,
            details,
        )

    # -- snapshots -----------------------------------------------------------------------------
    def snapshot(self) -> bytes:
        """The guest as bytes: its registers, virtual CPU, RAM, devices and console.

        The shadow tables and the translation cache are not saved: they are caches of
        the guest's own state, and the restored monitor rebuilds them on demand. The
        guest must be at an instruction boundary, which it is between two ``run`` calls
        except in the middle of translated code; run it on a few steps if needed.
        """
        pc = self._guest_pc()
        if pc is None:
            self.vcpu.load()
            try:
                while pc is None:
                    self._dispatch(self.vcpu.run(1))
                    pc = self._guest_pc()
            finally:
                self.vcpu.put()
        hart = self.hart
        state = {
            "config": {
                "ram_mb": self.ram_mb,
                "translate": self.translate,
                "disk_path": None
                if self.board.disk_path is None
                else os.fspath(self.board.disk_path),
            },
            "image": None if self.image is None else image_record(self.image),
            "cmdline": self.cmdline,
            "pc": pc,
            "x": [int(v) for v in hart.arrays.x],
            "timer": [int(hart.arrays.st[slot]) for slot in TIMER_SLOTS],
            "vcpu": bytes(self._host_slice(self.vcpu_area)),
            "ram": zlib.compress(
                b"".join(
                    self.memory.read_memory(self.memory.base + (k << PAGE_SHIFT), PAGE_SIZE)
                    for k in range(self.memory.size >> PAGE_SHIFT)
                ),
                1,
            ),
            "devices": {name: plain_state(device) for name, device in self.board.devices().items()},
            "halted": self.halted,
            "console": self.console.text,
        }
        payload = zlib.compress(pickle.dumps(state, protocol=4), 1)
        return SNAPSHOT_HEADER.pack(SNAPSHOT_MAGIC, zlib.crc32(payload)) + payload

    @classmethod
    def restore(cls, data: bytes, **options) -> FullVirtMonitor:
        """A monitor whose guest continues where ``snapshot`` left it. ``options`` are
        those of the constructor (e.g. translate=True): a guest saved under trap-and-
        emulate may continue under binary translation, and the other way round."""
        magic, checksum = SNAPSHOT_HEADER.unpack_from(data)
        payload = data[SNAPSHOT_HEADER.size :]
        if magic != SNAPSHOT_MAGIC or zlib.crc32(payload) != checksum:
            raise MonitorError("not a full-virtualization snapshot, or a corrupt one")
        state = _SnapshotUnpickler(io.BytesIO(zlib.decompress(payload))).load()
        config = state["config"]
        disk = config["disk_path"]
        if disk is None and "disk" in state["devices"]:
            disk = bytes(state["devices"]["disk"]["disk"])
        options.setdefault("translate", config["translate"])
        monitor = cls(config["ram_mb"], disk, **options)
        if state["image"] is not None:
            monitor.image = image_from_record(state["image"])
        monitor.cmdline = state["cmdline"]
        monitor._reset_hart(board.RAM_BASE)
        ram = zlib.decompress(state["ram"])
        monitor.memory.write_memory(monitor.memory.base, ram)
        monitor._host_slice(monitor.vcpu_area)[:] = np.frombuffer(state["vcpu"], np.uint8)
        hart = monitor.hart
        hart.arrays.x[:] = state["x"]
        for slot, value in zip(TIMER_SLOTS, state["timer"], strict=True):
            hart.arrays.st[slot] = value
        for name, device in monitor.board.devices().items():
            _set_device_state(device, state["devices"][name])
        monitor.halted = state["halted"]
        monitor.console._output = [state["console"]]
        monitor._program_timer()
        monitor._resume_at(state["pc"], after_reset=True)
        return monitor

    def _reset_hart(self, pc: int) -> None:
        """The real hart as the monitor runs guests on it: every trap exits to the
        monitor, U-mode, PMP open (the shadow tables confine the guest), the counters
        readable, and the real timer's interrupt enabled: the timer is the monitor's."""
        hart = self.hart
        hart.reset(pc)
        hart.trap_exits = "all"
        hart.csr["pmpaddr0"] = PMPADDR_ALL
        hart.csr["pmpcfg0"] = PMPCFG_NAPOT_RWX
        hart.csr["mcounteren"] = 0xFFFF_FFFF
        hart.csr["mie"] = MIP_MTIP
        hart.mode = "U"
        if self.sstatus_unprivileged:
            hart.sstatus_unprivileged = True


# -- Snapshot format ---------------------------------------------------------------------------
SNAPSHOT_MAGIC = b"VKFULLV\0"
SNAPSHOT_HEADER = struct.Struct("<8sI")
# The hart's clock and counters: time goes on where it stopped.
TIMER_SLOTS = (S.TICKS, S.RETIRED, S.MCYCLE_OFFSET, S.MINSTRET_OFFSET, S.MTIME_OFFSET)


def _set_device_state(device, state: dict) -> None:
    for name, value in state.items():
        setattr(device, name, value)


class _SnapshotUnpickler(pickle.Unpickler):
    ALLOWED = {("collections", "deque"), ("builtins", "bytearray"), ("builtins", "set")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise MonitorError(f"snapshot data names {module}.{name}, which is not plain data")
        return super().find_class(module, name)


def boot(image: str | Path, cmdline: str = "", **options) -> FullVirtMonitor:
    """A monitor with ``image`` loaded (options as for FullVirtMonitor)."""
    monitor = FullVirtMonitor(**options)
    monitor.load(image, cmdline=cmdline)
    return monitor
