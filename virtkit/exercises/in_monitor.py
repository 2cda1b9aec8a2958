"""Checking a student's piece of the monitor by running it in the monitor, on real guests.

The full-virtualization monitor (virtkit.monitors.fullvirt) calls the pieces that
exercises 04.2-04.4 ask for through attributes: ``emulate_csr``, ``reflect_trap``,
``compute_shadow_pte``. A check boots a guest twice with the same seed: once with the
reference piece, writing down every call (what went in, what came out), and once with
the student's. Both runs are deterministic, so they are the same up to the first call
whose outcome differs. The student's run compares each call with the reference's call of
the same number as it happens, and stops at the first difference (``Diverged``): a
wrong piece cannot make the check hang or crash, and the feedback names the first
call that went wrong, in the guest's terms (which instruction, trap or PTE, where).

The guests are tinyos with a workload (``Guest.tinyos``) and small seeded kernels in
assembly that an exercise writes to reach the corners tinyos does not (``Guest.program``).
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass, field

from virtkit import guests
from virtkit.cpu import Hart
from virtkit.isa.asm import assemble
from virtkit.machine import board
from virtkit.monitors.memory import HostFrames

GUEST_RAM_MB = 16  # tinyos uses 16 MiB; the small kernels far less
LIMIT = 5_000_000  # guest instructions: several times what any guest here runs


class Diverged(Exception):
    """The student's piece did something else than the reference at one call."""

    def __init__(self, lines: list[str]):
        super().__init__("\n".join(lines))
        self.lines = lines


@dataclass(frozen=True)
class Guest:
    """A guest to boot under the monitor: tinyos with a command line, or a program."""

    name: str  # how feedback names it: "tinyos (init=syscall n=3)"
    cmdline: str = ""
    source: str | None = None  # assembly of a small S-mode kernel, or None for tinyos
    translate: bool = False
    map_seed: int | None = None  # shuffle the guest-physical map with this seed

    @classmethod
    def tinyos(cls, cmdline: str, **options) -> Guest:
        return cls(f"tinyos booting with {cmdline}", cmdline=cmdline, **options)

    @classmethod
    def program(cls, name: str, source: str, **options) -> Guest:
        return cls(name, source=source, **options)

    def image(self):
        if self.source is None:
            return guests.tinyos()
        return assemble(self.source, filename=f"<{self.name}>", base=board.KERNEL_BASE)


class ShuffledFrames(HostFrames):
    """Host frames whose guest-RAM pages come in a seeded random order, so that no
    guest page sits where the previous one ends: the guest-physical map is a real map."""

    def __init__(self, hart, seed: int):
        super().__init__(hart)
        self.rng = random.Random(f"guest-physical map/{seed}")

    def take(self, count: int = 1, *, what: str = "the monitor") -> list[int]:
        frames = super().take(count, what=what)
        if what == "guest RAM":
            self.rng.shuffle(frames)
        return frames


def boot(guest: Guest, **pieces):
    """A FullVirtMonitor with ``guest`` loaded and ``pieces`` (name -> function) put in."""
    from virtkit.monitors.fullvirt import FullVirtMonitor

    options = {"ram_mb": GUEST_RAM_MB, "translate": guest.translate}
    if guest.source is None:
        options["disk"] = bytes(guests.BLANK_DISK_BYTES)
    if guest.map_seed is not None:
        # The monitor's own pages (a few MiB with translation) come before guest RAM.
        hart = Hart((GUEST_RAM_MB + 4) << 20, trap_exits="all")
        options["host"] = (hart, ShuffledFrames(hart, guest.map_seed))
    monitor = FullVirtMonitor(**options)
    for name, function in pieces.items():
        setattr(monitor, name, function)
    monitor.load(guest.image(), cmdline=guest.cmdline)
    return monitor


@dataclass
class Run:
    """What one run of a guest did: the calls of the piece, and how it ended."""

    calls: list = field(default_factory=list)
    console: str = ""
    ended: str = ""  # the monitor's RunResult, in words
    diverged: list[str] | None = None  # the feedback, when the student's run stopped


def run_guest(guest: Guest, install) -> Run:
    """Boot ``guest``; ``install(monitor, run)`` puts the recording piece in. The run
    ends when the guest halts, after LIMIT instructions, or at a divergence."""
    record = Run()
    monitor = boot(guest)
    install(monitor, record)
    try:
        result = monitor.run(until=LIMIT)
        record.ended = f"{result.reason}" + (
            f" (exit code {result.exit_code})" if result.reason == "halt" else ""
        )
    except Diverged as diverged:
        record.diverged = diverged.lines
    except Exception as error:  # the monitor itself gave up on the guest
        record.diverged = [
            f"{guest.name}: after {len(record.calls)} calls of your function that agreed "
            f"with the reference, the monitor stopped: {type(error).__name__}: {error}"
        ]
    record.console = monitor.console.text
    return record


@functools.lru_cache(maxsize=64)
def reference(exercise: str, guest: Guest, recorder) -> Run:
    """The reference run of ``guest`` for ``exercise`` (cached: it is the same every time)."""
    return run_guest(guest, recorder)


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def ending_mistakes(guest: Guest, expected: Run, got: Run, what: str) -> list[str]:
    """After a run without a divergence: the same number of calls, the same ending."""
    if len(got.calls) != len(expected.calls):
        return [
            f"{guest.name}: the monitor called your {what} {len(got.calls)} times, the "
            f"reference {len(expected.calls)} times, and every call it made agreed; the "
            f"guest ended with {got.ended or 'an error'} instead of {expected.ended}"
        ]
    if got.console != expected.console:
        return [f"{guest.name}: the guest printed something else than with the reference"]
    return []


def compare_with_reference(
    exercise: str, guests, piece: str, reference_recorder, recording, answer
):
    """Run each of ``guests`` with the student's ``answer`` as the monitor's ``piece``
    (wrapped by ``recording(monitor, record, answer, expected, guest)``) and compare with
    the reference run: the first divergence, or a different ending, is the feedback."""
    for guest in guests:
        expected = reference(exercise, guest, reference_recorder)
        if expected.diverged:
            raise RuntimeError(f"the reference diverged from itself: {expected.diverged}")

        def install(monitor, record, guest=guest, expected=expected):
            setattr(monitor, piece, recording(monitor, record, answer, expected, guest))

        got = run_guest(guest, install)
        if got.diverged:
            return got.diverged
        wrong = ending_mistakes(guest, expected, got, piece)
        if wrong:
            return wrong
    return []
