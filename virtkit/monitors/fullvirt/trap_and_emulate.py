"""Trap-and-emulate: privileged instructions of the guest kernel, done on the virtual CPU.

The guest kernel runs in real U-mode, so each privileged instruction it executes (a CSR
access, SRET, SFENCE.VMA, WFI) raises an illegal-instruction exception, which exits to
the monitor (Popek and Goldberg 1974, theorem 1: this works when every sensitive
instruction is privileged). The monitor decodes the instruction with virtkit.isa and
does to the virtual CPU what the hart would have done to the real one, then resumes
the guest after it. Nothing here touches the real hart: these are plain functions of
the virtual CPU and the guest's registers, so they can be read, tested and replaced
one at a time.

    emulate_privileged(vcpu, insn, x, pc)   one trapped instruction of the guest kernel
    emulate_csr(vcpu, insn, x)              CSRRW, CSRRS, CSRRC and their immediate forms
    decode_csr(insn)                        a CSR instruction's fields, or None
    emulate_sret(vcpu)                      SRET
    reflect_trap(vcpu, cause, tval, pc)     deliver a trap to the guest kernel

``reflect_trap`` is what the hardware does on a trap into S-mode (privileged spec
20211203, 4.1.1 and 3.1.6.1: sepc, scause, stval; the SIE -> SPIE -> SIE stack and
SPP; stvec in direct or vectored mode), done on the virtual CPU: the monitor calls it
for the guest's own system calls, page faults and interrupts, which the real hart
delivered to the monitor instead.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

from virtkit.isa import causes as C
from virtkit.isa import csrs
from virtkit.isa import instructions as I
from virtkit.isa.encoding import decode_fields
from virtkit.monitors.fullvirt.vcpu import (
    SSTATUS_SIE,
    SSTATUS_SPIE,
    SSTATUS_SPP,
    VIRTUAL_CSRS,
    VirtualCPU,
)

CSR_INSTRUCTIONS = ("csrrw", "csrrs", "csrrc", "csrrwi", "csrrsi", "csrrci")
SRET = I.BY_NAME["sret"].match
WFI = I.BY_NAME["wfi"].match
ECALL = I.BY_NAME["ecall"].match
EBREAK = I.BY_NAME["ebreak"].match
ASID = csrs.mask("satp", "ASID") >> csrs.shift("satp", "ASID")  # the ASID bits of rs2 (4.2.1)


class GuestException(Exception):
    """The emulated instruction raises an exception in the guest (e.g. illegal)."""

    def __init__(self, cause: int, tval: int):
        super().__init__(f"{C.cause_name(cause)} (tval={tval:#x})")
        self.cause = cause
        self.tval = tval


class Emulated(NamedTuple):
    """What an emulated instruction did, for the monitor to finish the job.

    ``next_pc``: where the guest continues. ``kind``: "csr", "sret", "sfence.vma" or
    "wfi". ``csr``: the CSR number written, or -1. ``address``: SFENCE.VMA's virtual
    address, None for all addresses; ``asid``: its address space, None for all.
    """

    next_pc: int
    kind: str
    csr: int = -1
    address: int | None = None
    asid: int | None = None


class CsrAccess(NamedTuple):
    """A CSR instruction, decoded (Zicsr, Volume I 9.1).

    ``operation``: "csrrw", "csrrs" or "csrrc" (the immediate forms too); ``csr``: the
    CSR's number; ``rd``: the register that receives the old value; ``operand``: the
    source register, or with ``immediate`` the 5-bit immediate itself; ``writes``: false
    for CSRRS and CSRRC with x0 or an immediate 0, which only read.
    """

    operation: str
    csr: int
    rd: int
    operand: int
    immediate: bool
    writes: bool


# Cached: a kernel traps on a few distinct CSR instructions, over and over.
@lru_cache(maxsize=1024)
def decode_csr(insn: int) -> CsrAccess | None:
    """``insn`` as a CSR access, or None if it is not a CSR instruction."""
    kind = I.lookup(insn)
    if kind is None or kind.name not in CSR_INSTRUCTIONS:
        return None
    fields = decode_fields(kind, insn)
    operation = kind.name[:5]  # csrrw, csrrs or csrrc
    immediate = kind.name.endswith("i")
    operand = fields["zimm"] if immediate else fields["rs1"]
    writes = operation == "csrrw" or operand != 0
    return CsrAccess(operation, fields["csr"], fields["rd"], operand, immediate, writes)


def is_counter(number: int) -> bool:
    """cycle, time, instret, hpmcounterN and their high halves (Zicntr, 0xC00-0xC9F)."""
    return 0xC00 <= number <= 0xC1F or 0xC80 <= number <= 0xC9F


def emulate_csr(vcpu: VirtualCPU, insn: int, x) -> int | None:
    """A CSR instruction of the guest kernel, on the virtual CPU (Zicsr, Volume I 9.1).

    Reads the old value into rd, then writes (CSRRW), sets (CSRRS) or clears (CSRRC)
    the bits of rs1 or of the 5-bit immediate. CSRRS and CSRRC with x0 (or an immediate
    0) do not write. An M-level CSR, one that does not exist, or a write to a read-only
    CSR is an illegal instruction (privileged spec 2.1). Returns the number of the CSR
    written, or None.
    """
    operation, csr, rd, operand, immediate, writes = decode_csr(insn)
    if csr not in VIRTUAL_CSRS:
        raise GuestException(C.CAUSE_ILLEGAL_INSTRUCTION, insn)
    source = operand if immediate else x[operand]
    old = vcpu.read_csr(csr)
    if writes:
        if operation == "csrrw":
            new = source
        elif operation == "csrrs":
            new = old | source
        else:
            new = old & ~source
        vcpu.write_csr(csr, new)
    x[rd] = old
    return csr if writes else None


def emulate_sret(vcpu: VirtualCPU) -> int:
    """SRET (3.3.2): privilege from SPP, SIE from SPIE, SPIE = 1, SPP = U; go to sepc."""
    sstatus = vcpu.slot("sstatus")
    vcpu.mode = "S" if sstatus & SSTATUS_SPP else "U"
    sie = SSTATUS_SIE if sstatus & SSTATUS_SPIE else 0
    sstatus = (sstatus & ~(SSTATUS_SIE | SSTATUS_SPP)) | sie | SSTATUS_SPIE
    vcpu.set_slot("sstatus", sstatus)
    return vcpu.slot("sepc")


def reflect_trap(vcpu: VirtualCPU, cause: int, tval: int, pc: int, interrupt: bool = False) -> int:
    """Deliver a trap to the guest kernel as the hart would (4.1.1); returns its handler.

    sepc = the pc of the trapping instruction, scause = the cause (bit 31 for an
    interrupt), stval = the faulting address or instruction; SPIE = SIE, SIE = 0,
    SPP = the virtual mode the trap came from; the guest continues in S-mode at stvec,
    or at stvec + 4 * cause for an interrupt in vectored mode (4.1.2).
    """
    sstatus = vcpu.slot("sstatus")
    spie = SSTATUS_SPIE if sstatus & SSTATUS_SIE else 0
    spp = SSTATUS_SPP if vcpu.mode == "S" else 0
    sstatus = (sstatus & ~(SSTATUS_SIE | SSTATUS_SPIE | SSTATUS_SPP)) | spie | spp
    vcpu.set_slot("sstatus", sstatus)
    vcpu.set_slot("sepc", pc & ~3)
    vcpu.set_slot("scause", cause | (1 << 31) if interrupt else cause)
    vcpu.set_slot("stval", tval)
    vcpu.mode = "S"
    stvec = vcpu.slot("stvec")
    handler = stvec & ~3
    if interrupt and stvec & 3 == 1:
        handler += 4 * cause
    return handler & 0xFFFFFFFF


def emulate_privileged(vcpu: VirtualCPU, insn: int, x, pc: int, csr=None) -> Emulated:
    """One privileged instruction that trapped in the guest kernel, at ``pc``.

    CSR accesses (by ``csr``, ``emulate_csr`` unless given another), SRET, SFENCE.VMA
    and WFI are emulated; anything else (MRET, an unknown encoding, a hypervisor
    instruction) is illegal in S-mode too, and raises GuestException for the monitor to
    reflect.
    """
    if decode_csr(insn) is not None:
        written = (csr or emulate_csr)(vcpu, insn, x)
        return Emulated(pc + 4, "csr", -1 if written is None else written)
    if insn == SRET:
        return Emulated(emulate_sret(vcpu), "sret")
    kind = I.lookup(insn)
    if kind is not None and kind.name == "sfence.vma":
        fields = decode_fields(kind, insn)
        rs1, rs2 = fields["rs1"], fields["rs2"]
        return Emulated(
            pc + 4,
            "sfence.vma",
            address=x[rs1] if rs1 else None,
            asid=x[rs2] & ASID if rs2 else None,
        )
    if insn == WFI:
        return Emulated(pc + 4, "wfi")
    raise GuestException(C.CAUSE_ILLEGAL_INSTRUCTION, insn)
