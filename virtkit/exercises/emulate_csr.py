"""Exercise 04.2: emulate the guest kernel's CSR instructions on the virtual CPU.

Under trap-and-emulate the guest kernel runs in real U-mode, so each of its CSR
instructions traps to the monitor, which must do to the virtual CPU what the hart
would have done to the real one (Zicsr, Volume I chapter 9; privileged spec 20211203,
2.1 and 4.1). The student writes ``emulate_csr(vcpu, insn, x)``, the function the
monitor calls through ``FullVirtMonitor.emulate_csr``
(virtkit.monitors.fullvirt.trap_and_emulate.emulate_csr is the reference).

The check boots two guests under the monitor with the student's function in it: tinyos
with a workload, and a seeded drill kernel that runs every form of CSR instruction on
every virtual CSR (and on CSRs the guest may not touch), with random values. Each call
is compared with the same call of a run with the reference: the exception raised, the
destination register, every virtual CSR and the mode afterwards, which CSRs were
written, and the value returned. The first call that differs is reported.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from virtkit.exercises import Exercise, register
from virtkit.exercises.in_monitor import (
    Diverged,
    Guest,
    compare_with_reference,
    ordinal,
    reference,
)
from virtkit.isa import csrs
from virtkit.isa import instructions as I
from virtkit.isa.causes import cause_name
from virtkit.isa.disasm import disassemble
from virtkit.isa.encoding import decode_fields
from virtkit.isa.registers import ABI_NAMES
from virtkit.monitors.fullvirt import trap_and_emulate as TE
from virtkit.monitors.fullvirt.vcpu import VIRTUAL_CSRS

WATCHED = (*VIRTUAL_CSRS.values(), "mode")  # the virtual CPU a CSR instruction may change
WORKLOADS = ("hello", "syscall n=2", "forkwait n=2", "ctxswitch n=2")
DRILL_LENGTH = 24
EID_SRST = 0x53525354
SSTATUS_SIE = 0x2
# What the drill's CSR instructions name: the virtual CSRs, and CSRs the guest kernel may
# not touch (M-level, read-only counters, a number that is no CSR at all).
DRILL_CSRS = ("sstatus", "sie", "sip", "sscratch", "sepc", "scause", "stval", "scounteren")
DRILL_CSRS += ("senvcfg", "stvec", "satp")
FORBIDDEN = ("mstatus", "mscratch", "mepc", "time", "cycle")
NO_CSR = 0x5C0  # a custom S-level read/write number virtkit does not implement
OPERATIONS = ("csrrw", "csrrs", "csrrc", "csrrwi", "csrrsi", "csrrci")
DRILL_REGISTERS = ("a0", "a1", "a2", "a3", "a4", "a5")


@dataclass(frozen=True)
class CsrProblem:
    seed: int
    workload: str
    drill: tuple[str, ...]  # the drill's CSR instructions, as assembly

    def guests(self) -> tuple[Guest, Guest]:
        return (
            Guest.tinyos(f"init={self.workload}"),
            Guest.program(f"the CSR drill of seed {self.seed}", drill_source(self.drill)),
        )

    def __repr__(self) -> str:
        lines = [
            f"Exercise 04.2 (seed {self.seed}): emulate_csr(vcpu, insn, x) runs inside the "
            "monitor for every CSR instruction of two guest kernels:",
            f"  tinyos booting with init={self.workload}",
            f"  a drill of {DRILL_LENGTH} CSR instructions with random operands, beginning:",
        ]
        lines += [f"    {text}" for text in self.drill if text.startswith("csr")][:6]
        return "\n".join(lines)


def _drill_line(rng: random.Random) -> list[str]:
    """One CSR instruction of the drill, with the `li` that sets its source register."""
    operation = rng.choice(OPERATIONS)
    immediate = operation.endswith("i")
    if rng.random() < 0.12:
        csr = rng.choice(FORBIDDEN) if rng.random() < 0.7 else f"{NO_CSR:#x}"
    else:
        csr = rng.choice(DRILL_CSRS)
    value = rng.getrandbits(32)
    if csr == "sstatus":
        value &= ~SSTATUS_SIE  # the drill never takes an interrupt
    if csr in ("stvec", "satp") and operation != "csrrw":
        operation, immediate = "csrrs", False  # only read these two...
        source = "zero"
    elif csr == "stvec":
        source = "a6"  # ...or write stvec with the trap vector, in any of its four modes
        value = None
    elif csr == "satp":
        source = "zero"  # ...and satp with 0: the drill runs untranslated
    elif immediate:
        source = str(rng.randrange(32) & (~SSTATUS_SIE if csr == "sstatus" else 31))
    else:
        source = rng.choice((*DRILL_REGISTERS, "zero"))
    rd = rng.choice((*DRILL_REGISTERS, "zero"))
    if rng.random() < 0.2 and not immediate and source in DRILL_REGISTERS:
        rd = source  # csrrw a1, sscratch, a1: the old value replaces the source
    lines = []
    if csr == "stvec" and operation == "csrrw":
        lines.append(f"addi a6, a7, {rng.randrange(4)}")  # a7 holds the trap vector
    elif source in DRILL_REGISTERS:
        lines.append(f"li {source}, {value:#x}")
    lines.append(f"{operation} {rd}, {csr}, {source}")
    return lines


def generate(seed: int) -> CsrProblem:
    rng = random.Random(f"04.2/{seed}")
    drill: list[str] = []
    while sum(line.startswith("csr") for line in drill) < DRILL_LENGTH:
        drill += _drill_line(rng)
    return CsrProblem(seed, WORKLOADS[seed % len(WORKLOADS)], tuple(drill))


def drill_source(drill: tuple[str, ...]) -> str:
    """The drill kernel: each line of ``drill``, an SBI shutdown, and a trap handler
    that skips whatever traps (an illegal CSR access) and clears a software interrupt."""
    body = "\n".join(f"    {line}" for line in drill)
    return f"""\
_start:
    la a7, trap
    csrw stvec, a7
{body}
    li a7, {EID_SRST:#x}
    li a6, 0
    li a0, 0
    li a1, 0
    ecall
    .align 2
trap:
    csrr t0, scause
    bltz t0, 1f
    csrr t0, sepc
    addi t0, t0, 4
    csrw sepc, t0
    sret
1:  csrci sip, 2
    sret
"""


def solve(problem: CsrProblem):
    return TE.emulate_csr


# -- Running and comparing ----------------------------------------------------------------


@dataclass(frozen=True)
class CsrCall:
    """One call of emulate_csr: the instruction, and what it did to the guest."""

    pc: int
    insn: int
    before: tuple[int, ...]  # WATCHED before
    rd: int  # the destination register's number
    registers: tuple[int, ...]  # x0..x31 afterwards
    after: tuple[int, ...]  # WATCHED afterwards
    raised: tuple[int, int] | None  # (cause, tval) of a GuestException
    written: tuple[str, ...]  # the CSRs written through vcpu.write_csr, in order
    returned: object

    @property
    def text(self) -> str:
        return _text(self.insn, self.pc)


def _text(insn: int, pc: int) -> str:
    """The instruction as written: csrrsi stays csrrsi (the alias would drop the i)."""
    kind = I.lookup(insn)
    immediate = kind is not None and kind.name in TE.CSR_INSTRUCTIONS and kind.name[-1] == "i"
    return disassemble(insn, pc, aliases=not immediate)


def _state(vcpu) -> tuple[int, ...]:
    return (*(vcpu.slot(name) for name in VIRTUAL_CSRS.values()), vcpu.privilege)


def _recording(monitor, run, function, compare_with=None, guest=None):
    """``function`` as the monitor's emulate_csr, writing each call down (and, with
    ``compare_with``, raising Diverged at the first call unlike the reference's)."""

    def emulate_csr(vcpu, insn, x):
        kind = I.lookup(insn)
        rd = decode_fields(kind, insn)["rd"] if kind is not None else 0
        before = _state(vcpu)
        written: list[str] = []
        write = vcpu.write_csr

        def counting_write(number, value):
            written.append(VIRTUAL_CSRS.get(number, f"{number:#x}"))
            return write(number, value)

        vcpu.write_csr = counting_write
        raised, returned = None, None
        try:
            returned = function(vcpu, insn, x)
        except TE.GuestException as exception:
            raised = (exception.cause, exception.tval)
        except Exception as error:  # the student's function failed: say where
            if compare_with is None:
                raise
            number = len(run.calls) + 1
            where = _where(number, monitor.hart.pc, insn, guest)
            lines = [f"{where}:", f"  your function raised {type(error).__name__}: {error}"]
            if ((insn >> 20) & 0xFFF) not in VIRTUAL_CSRS:
                lines.append(
                    f"  {_csr_name(insn)} is not one of the virtual CPU's CSRs (VIRTUAL_CSRS): "
                    "raise GuestException(CAUSE_ILLEGAL_INSTRUCTION, insn) before touching it"
                )
            raise Diverged(lines) from None
        finally:
            del vcpu.write_csr
        call = CsrCall(
            monitor.hart.pc,
            insn,
            before,
            rd,
            tuple(x),
            _state(vcpu),
            raised,
            tuple(written),
            returned,
        )
        run.calls.append(call)
        if compare_with is not None:
            index = len(run.calls) - 1
            expected = compare_with.calls[index] if index < len(compare_with.calls) else None
            wrong = call_mistakes(expected, call, index + 1, guest)
            if wrong:
                raise Diverged(wrong)
        if raised is not None:
            raise TE.GuestException(*raised)
        return returned

    return emulate_csr


def _reference_recorder(monitor, run) -> None:
    monitor.emulate_csr = _recording(monitor, run, TE.emulate_csr)


def _where(number: int, pc: int, insn: int, guest: Guest | None) -> str:
    name = f" ({guest.name})" if guest is not None else ""
    return (
        f"the {ordinal(number)} CSR instruction the guest kernel ran, "
        f"`{_text(insn, pc)}` at pc {pc:#010x}{name}"
    )


def _csr_name(insn: int) -> str:
    number = (insn >> 20) & 0xFFF
    return csrs.BY_NUMBER[number].name if number in csrs.BY_NUMBER else f"{number:#x}"


def call_mistakes(expected: CsrCall | None, got: CsrCall, number: int, guest) -> list[str]:
    """What differs between the reference's and the student's call ``number``."""
    where = _where(number, got.pc, got.insn, guest)
    if expected is None:
        return [f"{where}: the reference run never got this far (it had halted); "]
    if (expected.pc, expected.insn, expected.before) != (got.pc, got.insn, got.before):
        return [
            f"{where}: the reference ran `{expected.text}` at pc {expected.pc:#010x} at this "
            "point; an earlier CSR instruction must have left the guest in another state"
        ]
    kind = I.lookup(got.insn)
    name, csr = kind.name, _csr_name(got.insn)
    fields = decode_fields(kind, got.insn)
    immediate = name.endswith("i")
    operand = fields["zimm"] if immediate else fields["rs1"]
    head = [f"{where}:"]
    if expected.raised != got.raised:
        if expected.raised is not None:
            did = "returned normally" if got.raised is None else f"raised {_raised(got.raised)}"
            return head + [
                f"  expected an illegal-instruction exception (GuestException("
                f"CAUSE_ILLEGAL_INSTRUCTION, insn) with tval = {got.insn:#010x}), but your "
                f"function {did}",
                f"  {csr} is not one of the virtual CPU's CSRs (VIRTUAL_CSRS): the guest "
                "kernel may not touch it, and the hart would raise an illegal instruction",
            ]
        return head + [
            f"  your function raised {_raised(got.raised)}, but {csr} is one of the virtual "
            "CPU's CSRs (VIRTUAL_CSRS): emulate the instruction on it",
        ]
    if expected.raised is not None:
        return []
    for number, (want, have) in enumerate(zip(expected.registers, got.registers, strict=True)):
        if want != have and number != got.rd:
            return head + [
                f"  afterwards {ABI_NAMES[number]} should still be {want:#010x}, yours is "
                f"{have:#010x}: a CSR instruction writes no register but rd "
                f"({ABI_NAMES[got.rd]})"
            ]
    want, have = expected.registers[got.rd], got.registers[got.rd]
    if want != have:
        register = ABI_NAMES[got.rd]
        return head + [
            f"  afterwards {register} should be {want:#010x}, the old value of "
            f"{csr}; yours is {have:#010x}",
            "  rd gets the CSR's value from before the write"
            + (
                "; rd is also the source here, so read the source register before you write rd"
                if not immediate and fields["rs1"] == got.rd
                else ""
            ),
        ]
    for slot, want, have in zip(WATCHED, expected.after, got.after, strict=True):
        if want != have:
            same = not immediate and got.rd != 0 and fields["rs1"] == got.rd
            advice = (
                f"rd and rs1 are the same register ({ABI_NAMES[got.rd]}): read the operand "
                "before you write the old value into rd"
                if same
                else _slot_advice(name, operand, immediate, expected, got)
            )
            return head + [
                f"  afterwards the virtual {slot} should be {want:#010x}, yours is {have:#010x}",
                *([f"  {advice}"] if advice else []),
            ]
    if expected.written != got.written:
        if not expected.written:
            return head + [
                f"  it wrote {', '.join(got.written)}, but {name} with "
                f"{'an immediate of 0' if immediate else 'rs1 = x0'} only reads: Zicsr says it "
                "shall not write the CSR at all (a write can have side effects)",
            ]
        return head + [
            f"  expected one write of {csr} through vcpu.write_csr, your function wrote "
            f"{', '.join(got.written) or 'nothing'} that way",
        ]
    if expected.returned != got.returned:
        want = "None" if expected.returned is None else f"{expected.returned:#x} ({csr})"
        return head + [
            f"  return the number of the CSR written, or None when nothing was written: "
            f"expected {want}, got {got.returned!r}"
        ]
    return []


def _raised(raised) -> str:
    cause, tval = raised
    return f"GuestException({cause_name(cause)}, tval={tval:#x})"


def _slot_advice(name: str, operand: int, immediate: bool, expected, got) -> str:
    if operand == 0 and name not in ("csrrw", "csrrwi"):
        return f"{name} with {'an immediate of 0' if immediate else 'rs1 = x0'} does not write"
    if immediate:
        return (
            f"{name} uses the 5-bit immediate in bits 19:15 ({operand}) itself as the "
            "operand, not a register"
        )
    if name == "csrrc":
        return "csrrc clears the bits that are set in rs1: new = old & ~rs1"
    if name == "csrrs":
        return "csrrs sets the bits that are set in rs1: new = old | rs1"
    return (
        "write with vcpu.write_csr(number, value): it applies each CSR's field rules "
        "(read-only and reserved bits, WARL), which set_slot does not"
    )


def run(problem: CsrProblem, answer) -> list[str]:
    return compare_with_reference(
        "04.2", problem.guests(), "emulate_csr", _reference_recorder, _recording, answer
    )


def mistakes(problem: CsrProblem, answer) -> list[str]:
    if not callable(answer):
        return [
            f"expected your function emulate_csr(vcpu, insn, x) itself, got {type(answer).__name__}"
        ]
    return run(problem, answer)


def solved(problem: CsrProblem) -> str:
    counts = [len(reference("04.2", g, _reference_recorder).calls) for g in problem.guests()]
    return (
        f"{sum(counts)} CSR instructions emulated as the hart would: {counts[0]} of tinyos "
        f"(init={problem.workload}) and {counts[1]} of the drill"
    )


EXERCISE = register(
    Exercise(
        id="04.2",
        generate=generate,
        solve=solve,
        mistakes=mistakes,
        solved=solved,
        hints=(
            "Decode first: funct3 = (insn >> 12) & 7 says which of the six it is (1 csrrw, "
            "2 csrrs, 3 csrrc, 5-7 the same with an immediate); csr = insn >> 20, "
            "rd = (insn >> 7) & 31, and bits 19:15 are rs1 or the 5-bit immediate.",
            "A CSR that is not in VIRTUAL_CSRS is not the guest's to touch: raise "
            "GuestException(CAUSE_ILLEGAL_INSTRUCTION, insn) before changing anything.",
            "old = vcpu.read_csr(csr). The new value is the operand (csrrw), old | operand "
            "(csrrs) or old & ~operand (csrrc); csrrs and csrrc with x0 or 0 do not write.",
            "Read the operand before you write rd (they can be the same register), write "
            "the CSR with vcpu.write_csr (it applies the field rules), then x[rd] = old.",
        ),
    )
)
