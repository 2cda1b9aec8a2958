"""Hardware-assisted virtualization: an unmodified kernel in VS-mode, and its exit loop.

    monitor = HardwareMonitor(ram_mb=16)
    monitor.load("tinyos.elf", cmdline="init=hello")
    result = monitor.run()                                # until the guest shuts down
    monitor.console.text, monitor.report().summary()

The same guest as under the full-virtualization monitor (virtkit.monitors.fullvirt), run
the way KVM runs it on a hart with the hypervisor extension (RISC-V privileged spec
20211203, chapter 8). The monitor owns HS-mode (``Hart(trap_exits="M+HS")``: every trap
to HS or M comes out of the hart to this Python loop); the guest kernel runs in VS-mode
and its processes in VU-mode, on the VS CSRs the hardware keeps for them:

- its own page tables: vsatp is the guest's satp, untouched by the monitor. hgatp
  points at a G-stage Sv32x4 table (8.5.1) that maps guest-physical pages to the host
  pages of its RAM (the guest-physical map of virtkit.monitors.memory). The table
  starts empty and is filled lazily, 4 MiB per guest-page fault: no shadow tables;
- its own traps: hedeleg and hideleg hand its exceptions and its interrupts to its
  vstvec without an exit; its CSR accesses, SRET and SFENCE.VMA run in hardware;
- its devices: their pages are never mapped in the G-stage, so an access faults to the
  monitor, which decodes it from htinst (the transformed load or store, 8.6.3) and
  runs the same device models as fullvirt (devices.VirtualBoard);
- its firmware: ECALL from VS-mode (cause 10) is an SBI call, served by fullvirt's
  VirtualSbi;
- its interrupts: the guest timer (the deadline it set through SBI) is injected as
  VSTIP and the PLIC's supervisor context as VSEIP, through hvip (8.2.3).

So the exits left are the ones listed in ``_dispatch``: a guest-page fault (RAM to map,
a device register, or neither: the guest gets its own access fault), an SBI call, WFI
(hstatus.VTW makes it a virtual-instruction exit), and the real timer. Compare
``report().exits`` with trap-and-emulate's on the same workload: for tinyos, 4 to 10
times fewer, most of them the device registers both monitors emulate.
"""

from __future__ import annotations

import os
from collections import Counter

from virtkit import costs
from virtkit.cpu import Hart, csrfile
from virtkit.cpu import exits as E
from virtkit.cpu import state as S
from virtkit.isa import causes as C
from virtkit.isa import instructions as I
from virtkit.machine import board
from virtkit.machine.elf import as_image, check_fits
from virtkit.machine.machine import RunResult
from virtkit.machine.virtio_blk import VirtioBlk
from virtkit.monitors.fullvirt.devices import VirtualBoard
from virtkit.monitors.fullvirt.monitor import (
    BATCH_INSTRUCTIONS,
    MIP_MTIP,
    PMPADDR_ALL,
    PMPCFG_NAPOT_RWX,
    GuestTimer,
    MonitorError,
    parse_until,
)
from virtkit.monitors.fullvirt.sbi import VirtualSbi
from virtkit.monitors.fullvirt.vcpu import MIP_SEIP, MIP_STIP, NO_DEADLINE
from virtkit.monitors.memory import PAGE_SHIFT, GuestPhysicalMemory, HostFrames

# -- The G-stage, Sv32x4 (8.5.1) ---------------------------------------------------------------
HGATP_MODE_SV32X4 = 1 << 31
G_ROOT_PAGES = 4  # the root is 16 KiB (2 more address bits), 16 KiB aligned
MEGAPAGE_SHIFT = 22  # one leaf table maps 4 MiB
PTE_V, PTE_R, PTE_W, PTE_X, PTE_U, PTE_A, PTE_D = (1 << bit for bit in range(7))
PTE_PPN_SHIFT = 10
# G-stage leaves are U pages (8.5.1: the G-stage treats every access as a U-mode one);
# A and D set, so the hart never has to update them.
G_LEAF = PTE_V | PTE_R | PTE_W | PTE_X | PTE_U | PTE_A | PTE_D

# -- What the guest handles itself (hedeleg, hideleg) -------------------------------------------
GUEST_EXCEPTIONS = (
    C.CAUSE_MISALIGNED_FETCH,
    C.CAUSE_FETCH_ACCESS,
    C.CAUSE_ILLEGAL_INSTRUCTION,
    C.CAUSE_BREAKPOINT,
    C.CAUSE_MISALIGNED_LOAD,
    C.CAUSE_LOAD_ACCESS,
    C.CAUSE_MISALIGNED_STORE,
    C.CAUSE_STORE_ACCESS,
    C.CAUSE_USER_ECALL,
    C.CAUSE_FETCH_PAGE_FAULT,
    C.CAUSE_LOAD_PAGE_FAULT,
    C.CAUSE_STORE_PAGE_FAULT,
)
# What comes to the monitor, in HS-mode (and so, with trap_exits, out of the hart).
MONITOR_EXCEPTIONS = (
    *sorted(E.GUEST_PAGE_FAULTS),
    C.CAUSE_VIRTUAL_SUPERVISOR_ECALL,
    C.CAUSE_VIRTUAL_INSTRUCTION,
)
# The guest's pending interrupts are kept as the guest sees them in sip (SSIP, STIP,
# SEIP); hvip holds the same bits one place up (VSSIP, VSTIP, VSEIP, 8.2.3).
INJECTED = MIP_STIP | MIP_SEIP
HVIP_SHIFT = 1
ACCESS_FAULT_OF = {
    C.CAUSE_FETCH_GUEST_PAGE_FAULT: C.CAUSE_FETCH_ACCESS,
    C.CAUSE_LOAD_GUEST_PAGE_FAULT: C.CAUSE_LOAD_ACCESS,
    C.CAUSE_STORE_GUEST_PAGE_FAULT: C.CAUSE_STORE_ACCESS,
}
COUNTERS_ALL = 0xFFFF_FFFF
WFI = I.BY_NAME["wfi"].match

# -- MMIO decoding from htinst (8.6.3: a transformed load or store) -----------------------------
OPCODE_MASK = 0x7F
OPCODE_LOAD = 0x03
OPCODE_STORE = 0x23
HTINST_NOT_COMPRESSED = 0x2  # bit 1 clear: the faulting instruction was 16 bits
LOAD_SIZES = {0: (1, True), 1: (2, True), 2: (4, True), 4: (1, False), 5: (2, False)}
STORE_SIZES = {0: 1, 1: 2, 2: 4}


class HardwareMonitor(GuestTimer):
    """One guest on the hart's hypervisor extension, VS-mode kernel and VU-mode processes.

    The interface of FullVirtMonitor (``load``, ``run``, ``console``, ``board``,
    ``memory``, ``vcpu``, ``report``), so the type-1 hypervisor can run a VM on either.
    ``host``: (hart, HostFrames) to share a machine with other monitors; ``wfi_exits``:
    end ``run`` with reason "wfi" when the guest waits with nothing pending.
    """

    def __init__(
        self,
        ram_mb: int = 128,
        disk: str | os.PathLike | bytes | None = None,
        *,
        cost_model: str | costs.CostModel = costs.DEFAULT_PRESET,
        host: tuple[Hart, HostFrames] | None = None,
        wfi_exits: bool = False,
        disk_model=VirtioBlk,
    ):
        if not isinstance(ram_mb, int) or ram_mb < 1:
            raise ValueError(f"ram_mb must be a whole number of MiB >= 1, got {ram_mb!r}")
        self.ram_mb = ram_mb
        self.cost_model = costs.preset(cost_model)
        self.meter = costs.Meter()
        self.exits: Counter = Counter()  # exits by cause, in words
        guest_pages = (ram_mb << 20) >> PAGE_SHIFT
        leaf_tables = -(-(ram_mb << 20) >> MEGAPAGE_SHIFT)
        monitor_pages = 2 * G_ROOT_PAGES + leaf_tables
        if host is None:
            self.hart = Hart((monitor_pages + guest_pages) << PAGE_SHIFT, trap_exits="M+HS")
            frames = HostFrames(self.hart)
        else:
            self.hart, frames = host
        # The root must be 16 KiB aligned: take 7 pages, use the aligned 4 among them.
        root_frames = frames.take(2 * G_ROOT_PAGES - 1, what="the G-stage root")
        self.g_root = next(f for f in root_frames if f % G_ROOT_PAGES == 0)
        self.g_leaf_tables = frames.take(leaf_tables, what="the G-stage tables")
        self.memory = GuestPhysicalMemory(
            self.hart, board.RAM_BASE, frames.take(guest_pages, what="guest RAM")
        )
        self.vcpu = InjectedInterrupts(self.hart)
        self.board = VirtualBoard(self.hart, self.vcpu, self.memory, disk, disk_model)
        self.console = self.board.console
        self.sbi = VirtualSbi(
            self.vcpu, self.memory, self.board.uart, self.console.write, self._program_timer
        )
        self.wfi_exits = wfi_exits
        self.image = None
        self.cmdline = ""
        self.halted: int | None = None
        self.g_stage_pages = 0  # guest pages mapped so far
        self._extra_steps = 0  # steps that retired no instruction (see _run_guest)

    # -- loading and booting ---------------------------------------------------------------------
    def load(self, program, cmdline: str = "") -> None:
        """Load a kernel and boot it in VS-mode at its entry, a0 = hart id 0, a1 = 0."""
        image = as_image(program)
        check_fits(image, self.memory.base, self.memory.size)
        if len(cmdline) >= board.CMDLINE_SIZE or not cmdline.isascii() or "\0" in cmdline:
            raise ValueError(
                f"cmdline={cmdline!r}: the boot command line is ASCII, without NUL, and "
                f"shorter than {board.CMDLINE_SIZE} characters"
            )
        self.image, self.cmdline = image, cmdline
        self._boot()

    def _boot(self) -> None:
        for segment in self.image.segments:
            self.memory.write_memory(segment.address, segment.data)
        cmdline_end = board.CMDLINE_BASE + len(self.cmdline) + 1
        if cmdline_end <= self.memory.base + self.memory.size and not any(
            s.address < cmdline_end and board.CMDLINE_BASE < s.address + len(s.data)
            for s in self.image.segments
        ):  # as the board's firmware: not over the kernel's own bytes
            self.memory.write_memory(board.CMDLINE_BASE, self.cmdline.encode("ascii") + b"\0")
        self._clear_g_stage()
        self._reset_hart(self.image.entry)
        self.vcpu.reset()
        self.halted = None
        self._program_timer()

    def _reset_hart(self, pc: int) -> None:
        """The hart as the monitor runs a guest on it: HS- and M-level traps exit to
        Python, the guest's own traps and interrupts delegated to VS, WFI trapped
        (hstatus.VTW), PMP open, counters readable, the real timer the monitor's."""
        hart = self.hart
        hart.reset(pc)
        hart.trap_exits = "M+HS"
        csr = hart.csr
        csr["pmpaddr0"] = PMPADDR_ALL
        csr["pmpcfg0"] = PMPCFG_NAPOT_RWX
        csr["mcounteren"] = COUNTERS_ALL
        csr["hcounteren"] = COUNTERS_ALL
        guests_own = sum(1 << cause for cause in GUEST_EXCEPTIONS)
        csr["medeleg"] = guests_own | sum(1 << cause for cause in MONITOR_EXCEPTIONS)
        csr["hedeleg"] = guests_own
        csr["hideleg"] = csrfile.VS_INTERRUPTS
        csr["hstatus"] = csrfile.HSTATUS_VTW
        # VMID 0: a hypervisor sharing the hart flushes the TLB at each world switch.
        csr["hgatp"] = HGATP_MODE_SV32X4 | self.g_root
        csr["mie"] = MIP_MTIP
        hart.mode = "VS"
        hart.pc = pc
        hart.x["a0"] = 0  # hart id
        hart.x["a1"] = 0  # no device tree

    # -- the G-stage -------------------------------------------------------------------------------
    def _clear_g_stage(self) -> None:
        for hppn in range(self.g_root, self.g_root + G_ROOT_PAGES):
            self.hart.write_memory(hppn << PAGE_SHIFT, bytes(1 << PAGE_SHIFT))
        self.g_stage_pages = 0

    def map_guest_region(self, gpa: int) -> None:
        """Map the 4 MiB of guest RAM around ``gpa`` in the G-stage (8.5.1): one leaf
        table, every guest page in it to its host page. A guest kernel touches most of
        its RAM (tinyos zeroes its free pages), so mapping a page per fault would cost
        thousands of exits; a region per fault costs one per 4 MiB (KVM maps as large a
        piece as the host allows for the same reason). A megapage would do with no leaf
        table, but the guest's host pages are not 4 MiB aligned. No HFENCE.GVMA: the
        entries were invalid, and failed translations are never cached."""
        hart, memory = self.hart, self.memory
        region = (gpa - memory.base) >> MEGAPAGE_SHIFT
        table = self.g_leaf_tables[region]
        first = memory.base + (region << MEGAPAGE_SHIFT)
        last = min(first + (1 << MEGAPAGE_SHIFT), memory.base + memory.size)
        for page in range(first, last, 1 << PAGE_SHIFT):
            leaf = (table << PAGE_SHIFT) + 4 * ((page >> PAGE_SHIFT) & 0x3FF)
            hppn = memory.host_page(page >> PAGE_SHIFT)
            hart.write_word(leaf, hppn << PTE_PPN_SHIFT | G_LEAF)
            self.g_stage_pages += 1
        root_entry = (self.g_root << PAGE_SHIFT) + 4 * (gpa >> MEGAPAGE_SHIFT)
        hart.write_word(root_entry, table << PTE_PPN_SHIFT | PTE_V)

    # -- running -------------------------------------------------------------------------------
    def run(self, until: str | int = "halt") -> RunResult:
        """Run until the guest halts, or ``until``: a console string or a number of guest
        steps (instructions and faults), as FullVirtMonitor.run."""
        if self.image is None:
            raise MonitorError("nothing to run: load a kernel first (monitor.load(...))")
        if self.halted is not None:
            raise MonitorError(f"the guest has halted (exit code {self.halted}): load it again")
        awaited, limit = parse_until(until)
        start = self._steps()
        console_start = max(len(self.console.text) - len(awaited or "") + 1, 0)
        exit = self.hart.last_exit()
        while True:
            done = self._steps() - start
            if limit is not None and done >= limit:
                return RunResult("count", exit, done)
            self.board.deliver_input()
            self.vcpu.inject()
            budget = BATCH_INSTRUCTIONS if limit is None else min(BATCH_INSTRUCTIONS, limit - done)
            exit = self._run_guest(budget)
            stop = self._dispatch(exit)
            if stop is not None:
                reason, code = stop
                if reason == "halt":
                    self.halted = code
                return RunResult(reason, exit, self._steps() - start, code)
            if awaited is not None and awaited in self.console.text[console_start:]:
                return RunResult("console", exit, self._steps() - start)

    def _steps(self) -> int:
        return self.hart.arrays.st.item(S.RETIRED) + self._extra_steps

    def _run_guest(self, budget: int) -> E.Exit:
        """Run the guest for up to ``budget`` steps. What retires nothing is a step too,
        as under FullVirtMonitor: an exit (its instruction is completed or faulted by the
        monitor), and a budget spent on the guest's own traps (a fault loop in its
        kernel, which the hypervisor must see to stop it)."""
        st = self.hart.arrays.st
        before = st.item(S.RETIRED)
        exit = self.vcpu.run(budget)
        retired = st.item(S.RETIRED) - before
        self._extra_steps += budget - retired if exit.reason == E.EXIT_BUDGET else 1
        return exit

    def _dispatch(self, exit: E.Exit):
        """The exit loop's one flat decision: what the hart stopped for."""
        if exit.reason == E.EXIT_BUDGET:
            return None
        if exit.reason != E.EXIT_TRAP:
            raise MonitorError(f"unexpected exit from the hart: {exit}")
        self.meter.charge("vm_exit")
        if exit.interrupt:
            if exit.cause != C.IRQ_M_TIMER:
                raise MonitorError(f"unexpected interrupt for the monitor: {exit}")
            self._count_exit("timer")
            self._timer()
            return None
        match exit.cause:
            case cause if cause in E.GUEST_PAGE_FAULTS:
                return self._guest_page_fault(exit)
            case C.CAUSE_VIRTUAL_SUPERVISOR_ECALL:
                self._count_exit("SBI call")
                self.meter.charge("hypercall")
                self.hart.pc = exit.pc + 4
                reset = self.sbi.call(self.hart.x)
                if reset is None:
                    return None
                if reset.kind == "reboot":
                    self._reboot()
                    return None
                return "halt", reset.code
            case C.CAUSE_VIRTUAL_INSTRUCTION if exit.instruction == WFI:
                self._count_exit("WFI")
                self.hart.pc = exit.pc + 4
                return self._wait_for_interrupt()
            case _:
                raise MonitorError(
                    f"the guest stopped with a trap the monitor does not handle: {exit} "
                    f"(in {exit.mode}-mode at pc {exit.pc:#010x})"
                )

    def _count_exit(self, name: str) -> None:
        self.exits[name] += 1

    def _guest_page_fault(self, exit: E.Exit):
        """Guest RAM: map its region; a device page: emulate the access; else give the
        guest an access fault, delegated to its own handler."""
        gpa = exit.guest_physical_address
        if gpa in self.memory:
            self._count_exit("guest-page fault")
            self.map_guest_region(gpa)
            return None
        if self.board.is_device_page(gpa >> PAGE_SHIFT):
            self._count_exit("MMIO (device register)")
            self.meter.charge("mmio_exit")
            return self._emulate_mmio(exit, gpa)
        # Neither: the guest's own access fault, as a bus error is on the board.
        self._count_exit("access fault (no RAM, no device)")
        self.hart.take_trap(ACCESS_FAULT_OF[exit.cause], exit.tval)
        return None

    def _emulate_mmio(self, exit: E.Exit, gpa: int):
        """Decode the load or store from htinst, run it on the device, step past it."""
        insn, hart = exit.htinst, self.hart
        opcode, funct3 = insn & OPCODE_MASK, (insn >> 12) & 0x7
        mapping = self.board.bus.find(gpa)
        offset = gpa - mapping.base
        outcome = None
        if opcode == OPCODE_LOAD and funct3 in LOAD_SIZES:
            size, signed = LOAD_SIZES[funct3]
            value = mapping.device.read(offset, size)
            if signed and value & (1 << (8 * size - 1)):
                value -= 1 << (8 * size)
            hart.x[(insn >> 7) & 0x1F] = value
        elif opcode == OPCODE_STORE and funct3 in STORE_SIZES:
            size = STORE_SIZES[funct3]
            value = hart.x[(insn >> 20) & 0x1F] & ((1 << (8 * size)) - 1)
            mapping.device.write(offset, size, value)
            if mapping.device is self.board.test:
                outcome = self.board.test.take_outcome()
        else:
            raise MonitorError(
                f"a device access at {gpa:#010x} (pc {exit.pc:#010x}) that is not a plain "
                f"load or store: htinst={insn:#010x}"
            )
        hart.pc = exit.pc + (4 if insn & HTINST_NOT_COMPRESSED else 2)
        match outcome:
            case ("pass", code) | ("fail", code):
                return "halt", code
            case ("reset", _):
                self._reboot()
        return None

    def _reboot(self) -> None:
        self.board.reset()
        self._boot()

    # -- reports -------------------------------------------------------------------------------
    def report(self, label: str | None = None) -> costs.RunReport:
        """What the guest did and cost so far, priced by the monitor's cost model."""
        meter = costs.Meter(Counter(self.meter.counts))
        meter.charge("instruction", sum(self.vcpu.instructions.values()))
        # A TLB miss walks both stages: up to 2 VS-stage reads, each translated, and the
        # G-stage walk of the final address (8.5: 3 x 2 + 2 for Sv32 over Sv32x4).
        meter.charge("page_walk_step", 8 * self.hart.stats["tlb_misses"])
        return costs.RunReport(
            label or "hardware-assisted",
            self.cost_model,
            dict(self.vcpu.instructions),
            dict(self.exits),
            meter,
            {"G-stage pages mapped": self.g_stage_pages},
        )

    def close(self) -> None:
        if self.board.disk is not None:
            self.board.disk.close()


class InjectedInterrupts:
    """The part of the guest's CPU the monitor keeps in software under the H extension:
    its timer deadline and the interrupts its devices raise, which reach the hardware
    through hvip just before the guest runs (``inject``).

    The rest of its CPU is the hart's VS CSRs. The pending bits live here, not in hvip,
    because a device may raise an interrupt while another VM's vCPU is on the hart.
    ``instructions`` counts what the guest retired in VS ("S") and VU ("U").
    """

    def __init__(self, hart):
        self.hart = hart
        self.instructions = {"S": 0, "U": 0}
        self.reset()

    def reset(self) -> None:
        self.pending = 0  # STIP and SEIP, as the guest sees them in sip
        self.stimecmp = NO_DEADLINE

    def set_pending(self, bit: int, level: bool) -> None:
        self.pending = self.pending | bit if level else self.pending & ~bit

    def slot(self, name: str) -> int:
        """``slot("sip")``: what the hypervisor asks of a vCPU off the hart."""
        if name != "sip":
            raise KeyError(f"the hardware vCPU keeps only sip in software, not {name!r}")
        return self.pending

    def time(self) -> int:
        return self.hart.mtime

    def inject(self) -> None:
        """hvip.VSTIP and VSEIP from the pending bits (VSSIP is the guest's own)."""
        csr = self.hart.csr
        hvip = int(csr["hvip"]) & ~(INJECTED << HVIP_SHIFT)
        csr["hvip"] = hvip | (self.pending & INJECTED) << HVIP_SHIFT

    def run(self, budget: int):
        """Run the guest until the next exit; count what it retired in VS and VU."""
        hart = self.hart
        vs, vu = hart.retired_in("VS"), hart.retired_in("VU")
        exit = hart.run(budget)
        self.instructions["S"] += hart.retired_in("VS") - vs
        self.instructions["U"] += hart.retired_in("VU") - vu
        return exit
