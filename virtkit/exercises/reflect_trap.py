"""Exercise 04.3: reflect a trap of the guest into the guest kernel.

The real hart delivers every trap of the guest to the monitor: a system call or a page
fault of a guest process, an interrupt meant for the guest kernel. The monitor must then
do what the hart would have done had the guest kernel been the one in S-mode
(privileged spec 20211203, 4.1.1 sstatus, 4.1.2 stvec, 4.1.7-4.1.9 sepc, scause,
stval; the trap entry of 3.1.6.1): save the pc in sepc, the cause in scause, the address
or instruction in stval; stack sstatus.SIE into SPIE and clear SIE; record the mode the
trap came from in SPP; switch the virtual mode to S; and continue at stvec's handler.
The student writes ``reflect_trap(vcpu, cause, tval, pc, interrupt=False)``, which the
monitor calls through ``FullVirtMonitor.reflect_trap`` (the reference is
virtkit.monitors.fullvirt.trap_and_emulate.reflect_trap).

The check boots two guests under the monitor with the student's function in it: tinyos
with a workload (system calls, page faults and timer interrupts of its processes), and a
seeded drill kernel whose user program makes system calls, executes an illegal and a
breakpoint instruction and is interrupted by the timer, with stvec in direct or vectored
mode. Each reflected trap is compared with the same trap of a run with the reference.
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
from virtkit.isa.causes import INTERRUPT_BIT, cause_name
from virtkit.monitors.fullvirt import trap_and_emulate as TE
from virtkit.monitors.fullvirt.vcpu import VIRTUAL_CSRS

WORKLOADS = ("syscall n=3", "pagefault n=2", "forkwait n=2", "ctxswitch n=3")
AFTER = tuple(VIRTUAL_CSRS.values())  # the virtual CSRs: sstatus, sepc, scause, stval change
BEFORE = ("sstatus", "stvec")  # what it reads
SSTATUS_FIELDS = (("SIE", 1), ("SPIE", 5), ("SPP", 8))
USER_EVENTS = ("syscall", "syscall", "syscall", "illegal", "breakpoint", "timer")
EID_SRST = 0x53525354
EID_TIME = 0x54494D45
SYS_EXIT = 93


@dataclass(frozen=True)
class ReflectProblem:
    seed: int
    workload: str
    vectored: bool
    events: tuple[str, ...]  # what the drill's user program does, in order

    def guests(self) -> tuple[Guest, Guest]:
        return (
            Guest.tinyos(f"init={self.workload}"),
            Guest.program(f"the trap drill of seed {self.seed}", drill_source(self)),
        )

    def __repr__(self) -> str:
        mode = "vectored" if self.vectored else "direct"
        return (
            f"Exercise 04.3 (seed {self.seed}): reflect_trap(vcpu, cause, tval, pc, interrupt) "
            "runs inside the monitor for every trap it delivers to two guest kernels:\n"
            f"  tinyos booting with init={self.workload}\n"
            f"  a drill with stvec in {mode} mode: an ebreak in the kernel, then a user "
            f"program that does {', '.join(self.events)}, then exits"
        )


def generate(seed: int) -> ReflectProblem:
    rng = random.Random(f"04.3/{seed}")
    events = list(USER_EVENTS)
    rng.shuffle(events)
    return ReflectProblem(seed, WORKLOADS[seed % len(WORKLOADS)], seed % 2 == 0, tuple(events))


def drill_source(problem: ReflectProblem) -> str:
    """A kernel with one handler for exceptions and one for the timer interrupt (at
    stvec + 4 * 5 in vectored mode), and a user program doing ``problem.events``."""
    user = []
    for k, event in enumerate(problem.events):
        match event:
            case "syscall":
                user += [f"li a7, {k + 1}", "ecall"]
            case "illegal":
                user += ["csrr a0, sstatus"]  # a kernel CSR, from user mode
            case "breakpoint":
                user += ["ebreak"]
            case "timer":
                user += ["li t2, 0", "1: beqz t2, 1b"]  # until the timer handler sets t2
    user += [f"li a7, {SYS_EXIT}", "ecall"]
    user_code = "\n".join(f"    {line}" for line in user)
    vector = "la t0, vector\n    addi t0, t0, 1" if problem.vectored else "la t0, trap"
    return f"""\
_start:
    la sp, stack_top
    {vector}
    csrw stvec, t0
    li t0, 0x20                 # sie.STIE: the timer may interrupt
    csrs sie, t0
    ebreak                      # a trap from the kernel itself (SPP = S)
    csrsi sstatus, 2
    ebreak                      # and one with interrupts enabled (SPIE = 1)
    csrci sstatus, 2
    rdtime a0                   # the timer, 200 ticks ahead
    addi a0, a0, 200
    li a1, 0
    li a7, {EID_TIME:#x}
    li a6, 0
    ecall
    la t0, user
    csrw sepc, t0
    li t0, 0x100                # SPP = U: sret enters the user program
    csrc sstatus, t0
    sret
user:
{user_code}

    .align 2
vector:                         # vectored mode: exceptions at the base...
    j trap
    .word 0, 0, 0, 0
    j timer                     # ...and the supervisor timer interrupt at base + 4 * 5
trap:
    csrr t0, scause
    bltz t0, timer              # direct mode: an interrupt comes here too
    li t1, 8
    bne t0, t1, 1f
    li t1, {SYS_EXIT}
    beq a7, t1, shutdown
    addi a0, a7, 100            # a system call returns a7 + 100
1:  csrr t0, sepc
    addi t0, t0, 4
    csrw sepc, t0
    sret
timer:
    li t2, 1                    # the user program waits for this
    li a0, -1                   # no more timer interrupts
    li a1, -1
    li a7, {EID_TIME:#x}
    li a6, 0
    ecall
    sret
shutdown:
    li a7, {EID_SRST:#x}
    li a6, 0
    li a0, 0
    li a1, 0
    ecall
    .align 4
    .zero 256
stack_top:
"""


def solve(problem: ReflectProblem):
    return TE.reflect_trap


# -- Running and comparing ----------------------------------------------------------------


@dataclass(frozen=True)
class TrapCall:
    """One call of reflect_trap: the trap, the virtual CPU before and after, the result."""

    cause: int
    tval: int
    pc: int
    interrupt: bool
    mode_before: str
    before: tuple[int, ...]  # BEFORE
    mode_after: str
    after: tuple[int, ...]  # AFTER
    returned: object

    @property
    def name(self) -> str:
        return cause_name(self.cause | (INTERRUPT_BIT if self.interrupt else 0))


def _recording(monitor, run, function, compare_with=None, guest=None):
    def reflect_trap(vcpu, cause, tval, pc, interrupt=False):
        mode_before = vcpu.mode
        before = tuple(vcpu.slot(name) for name in BEFORE)
        try:
            returned = function(vcpu, cause, tval, pc, interrupt)
        except Exception as error:
            if compare_with is None:
                raise
            where = _where(len(run.calls) + 1, cause, interrupt, pc, mode_before, guest)
            raise Diverged(
                [f"{where}:", f"  your function raised {type(error).__name__}: {error}"]
            ) from None
        call = TrapCall(
            cause,
            tval,
            pc,
            bool(interrupt),
            mode_before,
            before,
            vcpu.mode,
            tuple(vcpu.slot(name) for name in AFTER),
            returned,
        )
        run.calls.append(call)
        if compare_with is not None:
            index = len(run.calls) - 1
            expected = compare_with.calls[index] if index < len(compare_with.calls) else None
            wrong = call_mistakes(expected, call, index + 1, guest)
            if wrong:
                raise Diverged(wrong)
        return returned

    return reflect_trap


def _reference_recorder(monitor, run) -> None:
    monitor.reflect_trap = _recording(monitor, run, TE.reflect_trap)


def _where(number, cause, interrupt, pc, mode, guest) -> str:
    name = cause_name(cause | (INTERRUPT_BIT if interrupt else 0))
    place = f" ({guest.name})" if guest is not None else ""
    return (
        f"the {ordinal(number)} trap reflected into the guest kernel, {name} at pc "
        f"{pc:#010x} in guest {mode}-mode{place}"
    )


def _fields(sstatus: int) -> str:
    return " ".join(f"{name}={sstatus >> bit & 1}" for name, bit in SSTATUS_FIELDS)


def call_mistakes(expected: TrapCall | None, got: TrapCall, number: int, guest) -> list[str]:
    where = _where(number, got.cause, got.interrupt, got.pc, got.mode_before, guest)
    if expected is None:
        return [f"{where}: the reference run had no such trap (the guest had halted)"]
    if (expected.cause, expected.interrupt, expected.pc, expected.before) != (
        got.cause,
        got.interrupt,
        got.pc,
        got.before,
    ):
        return [
            f"{where}: with the reference the guest met another trap here ({expected.name} "
            f"at pc {expected.pc:#010x}); an earlier reflected trap must have left it in "
            "another state"
        ]
    head = [f"{where}:"]
    stvec = got.before[1]
    if expected.mode_after != got.mode_after:
        return head + [
            f"  afterwards the guest should run in virtual {expected.mode_after}-mode, yours "
            f"is in {got.mode_after}-mode: a trap always enters the guest kernel "
            '(vcpu.mode = "S")'
        ]
    sstatus_want, sstatus_got = (
        expected.after[AFTER.index("sstatus")],
        got.after[AFTER.index("sstatus")],
    )
    if sstatus_want != sstatus_got:
        return head + [
            f"  sstatus afterwards: expected {sstatus_want:#010x} ({_fields(sstatus_want)}), "
            f"yours {sstatus_got:#010x} ({_fields(sstatus_got)}); before the trap it was "
            f"{got.before[0]:#010x} ({_fields(got.before[0])})",
            "  SPIE gets the old SIE, SIE becomes 0, and SPP records the mode the trap came "
            f"from (1 for guest S, 0 for guest U; this one came from guest {got.mode_before})",
        ]
    for name, want, have in zip(AFTER, expected.after, got.after, strict=True):
        if want != have:
            advice = {
                "sepc": "sepc is the pc of the instruction that trapped (the monitor's pc "
                "argument); the handler decides whether to skip it",
                "scause": "scause is the cause, with bit 31 set for an interrupt",
                "stval": "stval is the tval argument: the faulting address or instruction",
            }.get(name, "a trap changes sstatus, sepc, scause, stval and the mode, nothing else")
            return head + [
                f"  {name} afterwards: expected {want:#010x}, yours {have:#010x}",
                f"  {advice}",
            ]
    if expected.returned != got.returned:
        mode = "vectored" if stvec & 3 == 1 else "direct"
        shown = f"{got.returned:#010x}" if isinstance(got.returned, int) else repr(got.returned)
        rule = (
            "an interrupt in vectored mode goes to BASE + 4 * cause; exceptions go to BASE"
            if mode == "vectored"
            else "in direct mode every trap goes to BASE = stvec with bits 1:0 cleared"
        )
        return head + [
            f"  return the guest kernel's handler address: expected "
            f"{expected.returned:#010x}, got {shown}",
            f"  stvec = {stvec:#010x} ({mode} mode): {rule}",
        ]
    return []


def run(problem: ReflectProblem, answer) -> list[str]:
    return compare_with_reference(
        "04.3", problem.guests(), "reflect_trap", _reference_recorder, _recording, answer
    )


def mistakes(problem: ReflectProblem, answer) -> list[str]:
    if not callable(answer):
        return [
            "expected your function reflect_trap(vcpu, cause, tval, pc, interrupt=False) "
            f"itself, got {type(answer).__name__}"
        ]
    return run(problem, answer)


def solved(problem: ReflectProblem) -> str:
    counts = [len(reference("04.3", g, _reference_recorder).calls) for g in problem.guests()]
    return (
        f"{sum(counts)} traps reflected as the hart would: {counts[0]} in tinyos "
        f"(init={problem.workload}) and {counts[1]} in the drill"
    )


EXERCISE = register(
    Exercise(
        id="04.3",
        generate=generate,
        solve=solve,
        mistakes=mistakes,
        solved=solved,
        hints=(
            "Read the virtual CPU with vcpu.slot(name), write it with vcpu.set_slot(name, "
            'value); vcpu.mode is "S" or "U". The hart\'s trap entry is your model.',
            "sstatus: SIE is bit 1, SPIE bit 5, SPP bit 8. Copy SIE into SPIE, clear SIE, "
            "set SPP when the trap came from guest S (look at vcpu.mode before you change it).",
            "sepc = pc, scause = cause (| 1 << 31 for an interrupt), stval = tval; then "
            'vcpu.mode = "S".',
            "The handler is stvec & ~3; only an interrupt in vectored mode (stvec & 3 == 1) "
            "adds 4 * cause.",
        ),
    )
)
