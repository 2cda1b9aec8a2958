"""The virtual CPU: what the guest kernel believes the hart is.

Under full virtualization the guest kernel runs deprivileged, in real U-mode, so every
piece of supervisor state it thinks it has lives here instead, kept by the monitor:

- the virtual privilege: guest S (the guest kernel) or guest U (its processes). The
  real hart is in U-mode for both (Popek and Goldberg 1974, "Formal requirements for
  virtualizable third generation architectures": the VMM keeps the real privileged
  mode for itself and gives the guest a virtual one);
- the virtual supervisor CSRs (privileged spec 20211203, 4.1): sstatus, sie, sip,
  stvec, sscratch, sepc, scause, stval, satp, scounteren and senvcfg, each written by
  the same field rules (WARL) as the real hart's, in ``write_csr``;
- the guest's timer: the deadline it set with SBI set_timer (``stimecmp``). The guest's
  clock is the hart's mtime: the monitor runs in Python, outside the hart's time, so
  its own work takes no guest time; ``virtkit.costs`` charges it separately.

The CSRs live in one page of host memory, the virtual-CPU area, not in Python
attributes: the binary translator maps that page into the guest kernel's address space
and its translated code reads and writes the CSRs there with ordinary loads and stores
(VMware's software VMM kept its virtual CPU in memory the same way; Adams and Agesen,
ASPLOS 2006, section 3.2). Its slots are at the top of the page so that translated
code reaches them relative to x0, without a free register: ``lw a0, -2048(zero)``
reads address 0xFFFF_F800, the first slot, when the page is mapped at 0xFFFF_F000.
"""

from __future__ import annotations

from virtkit.cpu import csrfile
from virtkit.cpu import state as S
from virtkit.isa import causes as C
from virtkit.isa import csrs

# -- The virtual-CPU area: one word per slot, from byte 0x800 of its page ----------------
AREA_VA = 0xFFFF_F000  # where the binary translator maps the page for translated code
SLOTS_OFFSET = 0x800  # slot i is at byte SLOTS_OFFSET + 4 * i of the page
# The CSRs the virtual CPU keeps, which come first (every other CSR number is M-level
# or does not exist, and an access from guest S is an illegal instruction).
CSR_SLOT_NAMES = (
    "sstatus",
    "sie",
    "sip",
    "stvec",
    "sscratch",
    "sepc",
    "scause",
    "stval",
    "satp",
    "scounteren",
    "senvcfg",
)
SLOT_NAMES = (
    *CSR_SLOT_NAMES,
    "mode",  # virtual privilege: 1 guest S, 0 guest U
    "stimecmp",  # the guest timer's deadline, low word
    "stimecmph",  # and high word
    "interrupt_ready",  # 1 when sip & sie != 0: setting sstatus.SIE would take one
    "spill0",  # save slots for registers the translated code borrows
    "spill1",
    "spill2",
    "site",  # where the translated code called the dispatch routine from
)
SLOT = {name: index for index, name in enumerate(SLOT_NAMES)}
MODE_SLOT = SLOT["mode"]
SATP_SLOT, SSTATUS_SLOT = SLOT["satp"], SLOT["sstatus"]
READY_SLOT = SLOT["interrupt_ready"]
INTERRUPT_SLOTS = ("sip", "sie")  # the slots interrupt_ready follows


def slot_offset_from_x0(name: str) -> int:
    """The 12-bit offset that reaches slot ``name`` from x0 (``lw rd, offset(zero)``)."""
    return AREA_VA + SLOTS_OFFSET + 4 * SLOT[name] - (1 << 32)


# The same CSRs by number.
VIRTUAL_CSRS = {csrs.number(name): name for name in CSR_SLOT_NAMES}

# -- Field rules (4.1) -------------------------------------------------------------------
SSTATUS_SIE = csrfile.MSTATUS_SIE
SSTATUS_SPIE = csrfile.MSTATUS_SPIE
SSTATUS_SPP = csrfile.MSTATUS_SPP
SSTATUS_SUM = csrfile.MSTATUS_SUM
SSTATUS_MXR = csrfile.MSTATUS_MXR
SSTATUS_SHAPES_TRANSLATION = SSTATUS_SUM | SSTATUS_MXR  # what loads and stores may reach
SSTATUS_WRITABLE = csrfile.SSTATUS_WRITABLE  # SIE, SPIE, SPP, SUM, MXR; the rest read 0
MIP_SSIP = csrfile.MIP_SSIP
MIP_STIP = csrfile.MIP_STIP
MIP_SEIP = csrfile.MIP_SEIP
S_INTERRUPTS = csrfile.S_INTERRUPTS
SIP_WRITABLE = MIP_SSIP  # STIP and SEIP come from the timer and the PLIC (4.1.3)
ENVCFG_WRITABLE = csrfile.ENVCFG_WRITABLE
# Priority among supervisor interrupts (3.1.9): external, software, timer.
S_INTERRUPT_PRIORITY = (C.IRQ_S_EXT, C.IRQ_S_SOFT, C.IRQ_S_TIMER)
NO_DEADLINE = (1 << 64) - 1  # stimecmp after reset and after set_timer(-1)

PRV_U = 0
PRV_S = 1


class VirtualCPU:
    """The guest's supervisor state, in a page of host memory the monitor owns.

    ``area`` is that page's 4 KiB as a writable buffer (a NumPy slice of host RAM);
    ``hart`` is the real hart, whose mtime is the guest's clock.
    """

    def __init__(self, hart, area):
        self.hart = hart
        self._slots = memoryview(area).cast("B")[SLOTS_OFFSET:].cast("I")
        self._retired = {"S": 0, "U": 0}  # settled counts (see ``instructions``)
        self._counted: int | None = None  # the hart's count already settled, while loaded
        self.reset()

    # -- running, and the instructions retired in each virtual mode ------------------------
    # The hart counts every instruction it retires (state RETIRED), whatever the virtual
    # mode; the virtual mode changes only in the monitor, between runs. So the hart's
    # count is split between the two modes when the mode changes, not after every exit:
    # everything the hart retired since the last change was retired in the current mode.
    def load(self) -> None:
        """The guest is about to run on the hart (KVM's vcpu_load): count from here.

        The hart's count is this guest's only while it is loaded: a hypervisor puts
        another guest's state on the same hart between two runs of the monitor."""
        self._counted = self.hart.arrays.st.item(S.RETIRED)

    def put(self) -> None:
        """The guest leaves the hart (KVM's vcpu_put): settle its count."""
        self._settle()
        self._counted = None

    def _settle(self) -> None:
        if self._counted is not None:
            retired = self.hart.arrays.st.item(S.RETIRED)
            self._retired[self.mode] += retired - self._counted
            self._counted = retired

    @property
    def instructions(self) -> dict[str, int]:
        """Instructions retired in each virtual mode, {"S": ..., "U": ...}."""
        self._settle()
        return self._retired

    def retire_emulated(self) -> None:
        """An instruction of the guest kernel that the monitor emulated retires, as it
        would have on the hart: the hart counts it (instret, its clock), and so does guest
        S here, an SRET too though the guest is in U after it. The monitor emulates only
        while the virtual CPU is loaded."""
        self.hart.retire(1)
        self._retired["S"] += 1
        self._counted += 1  # counted in S here, so not again in the current mode

    def run(self, budget: int):
        """Run the guest on the hart until the next exit (at most ``budget`` instructions).

        The real hart is in U-mode whatever the virtual mode. The monitor loads the
        virtual CPU for a whole ``run`` of its own; a single run outside it counts its
        instructions by itself.
        """
        if self._counted is not None:
            return self.hart.run(budget)
        self.load()
        try:
            return self.hart.run(budget)
        finally:
            self.put()

    def reset(self) -> None:
        """The state a kernel finds on entry from SBI firmware: S-mode, everything 0."""
        for index in range(len(SLOT_NAMES)):
            self._slots[index] = 0
        self.mode = "S"
        self.stimecmp = NO_DEADLINE

    # -- slots ----------------------------------------------------------------------------
    def slot(self, name: str) -> int:
        return self._slots[SLOT[name]]

    def set_slot(self, name: str, value: int) -> None:
        self._slots[SLOT[name]] = value & 0xFFFFFFFF
        if name in INTERRUPT_SLOTS:
            self.update_interrupt_ready()

    def translation_state(self) -> tuple[int, int]:
        """(satp, sstatus.SUM and MXR): what the shadow page tables are built from, for
        the monitor to see whether an emulated instruction changed it. (sstatus's other
        fields, SIE above all, change on every trap and leave the tables alone.)"""
        slots = self._slots
        return slots[SATP_SLOT], slots[SSTATUS_SLOT] & SSTATUS_SHAPES_TRANSLATION

    @property
    def mode(self) -> str:
        """The virtual privilege: "S" (guest kernel) or "U" (guest user)."""
        return "S" if self._slots[MODE_SLOT] & 1 else "U"

    @mode.setter
    def mode(self, name: str) -> None:
        if name not in ("S", "U"):
            raise ValueError(f"a guest runs in virtual S or U mode, not {name!r}")
        self._settle()  # what the hart retired so far was in the old mode
        self._slots[MODE_SLOT] = PRV_S if name == "S" else PRV_U

    @property
    def privilege(self) -> int:
        """The virtual privilege as the spec encodes it: 1 for S, 0 for U."""
        return self._slots[MODE_SLOT] & 1

    @property
    def stimecmp(self) -> int:
        return self._slots[SLOT["stimecmph"]] << 32 | self._slots[SLOT["stimecmp"]]

    @stimecmp.setter
    def stimecmp(self, value: int) -> None:
        self._slots[SLOT["stimecmp"]] = value & 0xFFFFFFFF
        self._slots[SLOT["stimecmph"]] = (value >> 32) & 0xFFFFFFFF

    # -- the CSRs, by the rules of 4.1 ---------------------------------------------------------
    def read_csr(self, number: int) -> int:
        """What the guest reads from virtual CSR ``number`` (one of VIRTUAL_CSRS).

        The translated code reads the same slots directly, so every slot holds exactly
        the value the guest must see: the write rules below keep it that way.
        """
        return self._slots[SLOT[VIRTUAL_CSRS[number]]]

    def write_csr(self, number: int, value: int) -> None:
        """Write virtual CSR ``number`` by its field rules (the access is already checked)."""
        name = VIRTUAL_CSRS[number]
        value &= 0xFFFFFFFF
        match name:
            case "sstatus":
                value = (self.slot("sstatus") & ~SSTATUS_WRITABLE) | (value & SSTATUS_WRITABLE)
            case "sie":
                value &= S_INTERRUPTS  # the firmware delegated all three (mideleg)
            case "sip":
                value = (self.slot("sip") & ~SIP_WRITABLE) | (value & SIP_WRITABLE)
            case "stvec":
                value = value if (value & 3) < 2 else value & ~3  # modes 2, 3 are reserved
            case "sepc":
                value &= ~3  # IALIGN = 32
            case "senvcfg":
                value &= ENVCFG_WRITABLE
        self.set_slot(name, value)

    @property
    def sstatus(self) -> int:
        return self.slot("sstatus")

    def sstatus_field(self, mask: int) -> bool:
        return bool(self.slot("sstatus") & mask)

    # -- interrupts -----------------------------------------------------------------------------
    def set_pending(self, bit: int, level: bool) -> None:
        """Raise or lower a pending bit of sip that a device or the timer drives."""
        sip = self.slot("sip")
        self.set_slot("sip", sip | bit if level else sip & ~bit)

    def update_interrupt_ready(self) -> None:
        """Keep the slot that says whether sip & sie != 0 (set_slot calls this whenever
        sip or sie changes): the translated code tests it after it sets sstatus.SIE,
        and interrupt_to_take before anything else."""
        slots = self._slots
        slots[READY_SLOT] = int(bool(slots[SLOT["sip"]] & slots[SLOT["sie"]]))

    def interrupt_to_take(self) -> int | None:
        """The supervisor interrupt the guest takes now, or None (3.1.9).

        A pending interrupt enabled in sie is taken in guest U always, and in guest S
        only while sstatus.SIE is set; external comes before software before timer.
        """
        if not self._slots[READY_SLOT]:
            return None  # the usual case: nothing pending is enabled (sip & sie == 0)
        if self.mode == "S" and not self.slot("sstatus") & SSTATUS_SIE:
            return None
        ready = self.slot("sip") & self.slot("sie")
        for cause in S_INTERRUPT_PRIORITY:
            if ready & (1 << cause):
                return cause
        return None

    def time(self) -> int:
        """The guest's clock: the hart's mtime."""
        return self.hart.mtime

    def as_dict(self) -> dict[str, int | str]:
        """The virtual CPU by name, for a student or a widget to look at."""
        state: dict[str, int | str] = {"mode": self.mode}
        for name in VIRTUAL_CSRS.values():
            state[name] = self.slot(name)
        state["stimecmp"] = self.stimecmp
        return state
