"""Exercise 04.4: compute shadow PTEs from the guest's PTEs and the guest-physical map.

The guest kernel's page tables map guest virtual to guest physical addresses; the
monitor's map puts each guest-physical page somewhere in host memory. The hart walks
neither: the real satp points at *shadow* tables that map guest virtual straight to
host physical (Adams and Agesen, ASPLOS 2006, 4.1; the walk is privileged spec 20211203,
4.3.2). When a guest access faults for want of a shadow entry, the monitor walks the
guest's tables, finds the guest's leaf PTE, looks its page up in the map, and asks
``compute_shadow_pte(guest_pte, hppn, view=..., sstatus=..., write_protected=...)`` for
the entry to write. The student writes that function (the reference is
virtkit.monitors.fullvirt.shadow_paging.shadow_pte, whose docstring and the module's
say why each rule is there):

- the entry points at the host page ``hppn``, never at the guest's own ppn;
- it always has U (guest kernel and guest processes all run in real U-mode) and A and D
  (so the hart never writes shadow tables);
- the *user view* (the table used while the guest runs a process) maps only the
  guest's U pages; the *kernel view* maps its supervisor pages, and its U pages only
  while sstatus.SUM is set, and never executable;
- R as the guest's R (or X with sstatus.MXR); X as the guest's X; W only if the guest's
  PTE allows writing, is already dirty (D), and the page is not ``write_protected``
  (guest code the binary translator has translated);
- 0 when the page must not be reachable in that view at all.

Each seed boots tinyos with a workload, with its RAM scattered over host memory by a
seeded guest-physical map, under trap-and-emulate or binary translation, with the
student's function in the monitor. Every call is compared with the reference on the
same arguments, and the run as a whole with the reference run.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass

from virtkit.cpu import Hart, sv32
from virtkit.exercises import Exercise, register
from virtkit.exercises.in_monitor import (
    GUEST_RAM_MB,
    Diverged,
    Guest,
    ShuffledFrames,
    ending_mistakes,
    ordinal,
    reference,
)
from virtkit.exercises.in_monitor import run_guest as run_in_monitor
from virtkit.monitors.fullvirt import shadow_paging as SP
from virtkit.monitors.memory import PAGE_SHIFT

WORKLOADS = ("pagefault n=3", "forkwait n=2", "syscall n=2", "ctxswitch n=2")
SUM, MXR = SP.SSTATUS_SUM, SP.SSTATUS_MXR
SHOWN_MAP = 4  # guest pages of the map a problem shows
CASES = 32  # calls of the problem's own table


def flags(pte: int) -> str:
    """The flags of a PTE as letters: "VRWXU-AD" (the order of figure 4.18)."""
    return sv32.Pte(pte).flags


@dataclass(frozen=True)
class ShadowProblem:
    seed: int
    workload: str
    translate: bool

    def guest_map(self, pages: int = SHOWN_MAP) -> tuple[tuple[int, int], ...]:
        """The first ``pages`` (guest page, host page) pairs of this seed's map."""
        return guest_map(self.seed)[:pages]

    def guest(self) -> Guest:
        technique = "binary translation" if self.translate else "trap-and-emulate"
        return Guest(
            f"tinyos booting with init={self.workload} under {technique}",
            cmdline=f"init={self.workload}",
            translate=self.translate,
            map_seed=self.seed,
        )

    def __repr__(self) -> str:
        lines = [
            f"Exercise 04.4 (seed {self.seed}): compute_shadow_pte runs inside the monitor "
            f"for every shadow PTE of {self.guest().name}.",
            "The guest's RAM is scattered over host memory; the map begins:",
        ]
        lines += [
            f"  guest page {gppn:#x} -> host page {hppn:#x}" for gppn, hppn in self.guest_map()
        ]
        lines.append(
            f"and then a table of {CASES} cases (guest_pte, hppn, view, sstatus, "
            "write_protected), beginning:"
        )
        for guest_pte, hppn, view, sstatus, protected in self.cases()[:4]:
            lines.append(
                f"  guest PTE {guest_pte:#010x} ({flags(guest_pte)}), host page {hppn:#x}, "
                f"{view} view, sstatus {sstatus:#x}, write_protected={protected}"
            )
        return "\n".join(lines)

    def cases(self) -> list[tuple[int, int, str, int, bool]]:
        """Seeded calls of compute_shadow_pte, tried after the guest's run: guest leaf
        PTEs of every kind for pages of the map, in both views, with SUM, MXR and
        write protection on and off."""
        rng = random.Random(f"04.4/{self.seed}")
        pages = guest_map(self.seed)
        table = []
        for _ in range(CASES):
            gppn, hppn = rng.choice(pages)
            permissions = rng.choice(
                (
                    SP.PTE_R,
                    SP.PTE_R | SP.PTE_W,
                    SP.PTE_X,
                    SP.PTE_R | SP.PTE_X,
                    SP.PTE_R | SP.PTE_W | SP.PTE_X,
                )
            )
            bits = SP.PTE_V | SP.PTE_A | permissions
            bits |= rng.choice((0, SP.PTE_U))
            bits |= rng.choice((0, SP.PTE_D))
            sstatus = rng.choice((0, SUM)) | (MXR if rng.random() < 0.2 else 0)
            view = rng.choice(("kernel", "user"))
            table.append((gppn << 10 | bits, hppn, view, sstatus, rng.random() < 0.15))
        return table


@functools.cache
def guest_map(seed: int) -> tuple[tuple[int, int], ...]:
    """The seeded guest-physical map the check boots with: (guest page, host page) for
    every page of guest RAM, as the monitor builds it (no guest needs to run)."""
    from virtkit.monitors.fullvirt import FullVirtMonitor

    hart = Hart((GUEST_RAM_MB + 4) << 20, trap_exits="all")
    monitor = FullVirtMonitor(GUEST_RAM_MB, host=(hart, ShuffledFrames(hart, seed)))
    base = monitor.memory.base >> PAGE_SHIFT
    return tuple((base + k, int(frame)) for k, frame in enumerate(monitor.memory.frames))


def generate(seed: int) -> ShadowProblem:
    # Odd seeds run under binary translation, so that translated code (write-protected
    # pages) comes up among the seeds a check tries.
    return ShadowProblem(seed, WORKLOADS[seed % len(WORKLOADS)], translate=seed % 2 == 1)


def solve(problem: ShadowProblem):
    return SP.shadow_pte


# -- Running and comparing ----------------------------------------------------------------


@dataclass(frozen=True)
class PteCall:
    """One call of compute_shadow_pte, where the monitor was, and the result."""

    guest_pte: int
    hppn: int
    view: str
    sstatus: int
    write_protected: bool
    va: int | None  # the address whose fault the monitor is filling (None: a table case)
    access: str
    returned: object


def _recording(monitor, run, function, compare=False, guest=None):
    """``function`` as the monitor's compute_shadow_pte, each call written down; with
    ``compare``, checked against the reference on the same arguments as it happens."""
    where = {"va": 0, "access": "?"}
    fill = monitor.shadow.fill

    def filling(va, access):
        where["va"], where["access"] = va, access
        return fill(va, access)

    monitor.shadow.fill = filling

    def compute_shadow_pte(guest_pte, hppn, *, view, sstatus, write_protected=False):
        arguments = (guest_pte, hppn)
        options = {"view": view, "sstatus": sstatus, "write_protected": write_protected}
        number = len(run.calls) + 1
        try:
            returned = function(*arguments, **options)
        except Exception as error:
            if not compare:
                raise
            raise Diverged(
                [
                    f"{_where(number, where['va'], where['access'], view, guest)}:",
                    f"  your function raised {type(error).__name__}: {error}",
                ]
            ) from None
        call = PteCall(
            *arguments, view, sstatus, write_protected, where["va"], where["access"], returned
        )
        run.calls.append(call)
        if compare:
            expected = SP.shadow_pte(*arguments, **options)
            wrong = call_mistakes(expected, call, number, guest)
            if wrong:
                raise Diverged(wrong)
        return returned

    return compute_shadow_pte


def _reference_recorder(monitor, run) -> None:
    monitor.compute_shadow_pte = _recording(monitor, run, SP.shadow_pte)


def _where(number: int, va: int | None, access: str, view: str, guest) -> str:
    if va is None:
        return f"case {number} of the problem's table ({view} view)"
    place = f" ({guest.name})" if guest is not None else ""
    return (
        f"the {ordinal(number)} shadow PTE the monitor asked for, filling the {view} view "
        f"after a {access} fault at va {va:#010x} (or a neighbour of it){place}"
    )


def _describe(pte: int) -> str:
    return f"{pte:#010x} ({flags(pte)}, ppn {pte >> 10:#x})"


def call_mistakes(expected: int, got: PteCall, number: int, guest) -> list[str]:
    returned = got.returned
    if isinstance(returned, bool) or not isinstance(returned, int):
        return [
            f"{_where(number, got.va, got.access, got.view, guest)}:",
            f"  return the shadow PTE as an int (0 for no mapping), got {returned!r}",
        ]
    returned &= 0xFFFF_FFFF
    if returned == expected:
        return []
    sstatus = f"sstatus.SUM = {int(bool(got.sstatus & SUM))}, MXR = {int(bool(got.sstatus & MXR))}"
    lines = [
        f"{_where(number, got.va, got.access, got.view, guest)}:",
        f"  the guest's PTE {_describe(got.guest_pte)}; its page is host page "
        f"{got.hppn:#x}; {sstatus}"
        + ("; the page holds translated code (write_protected)" if got.write_protected else ""),
        f"  expected {_describe(expected) if expected else '0 (no mapping)'}, "
        f"got {_describe(returned) if returned else '0 (no mapping)'}",
    ]
    advice = _advice(expected, returned, got)
    if advice:
        lines.append(f"  {advice}")
    if got.va is not None and not got.guest_pte >> 10:
        lines.append(
            "  (the guest runs with satp = Bare here, before it has page tables: the monitor "
            "passes a PTE that allows everything, as if one mapped each page to itself)"
        )
    return lines


def _advice(expected: int, returned: int, got: PteCall) -> str:
    guest_pte, user_page = got.guest_pte, bool(got.guest_pte & SP.PTE_U)
    if not expected:
        if got.view == "user" and not user_page:
            return (
                "a guest-kernel page (U = 0) must not be reachable from guest processes: "
                "the user view leaves it out (return 0)"
            )
        if got.view == "kernel" and user_page:
            return (
                "with sstatus.SUM = 0 the guest kernel may not touch user pages: the kernel "
                "view leaves them out (return 0)"
            )
        return "this page must not be mapped in this view: return 0"
    if not returned:
        if user_page and got.view == "kernel":
            return "with sstatus.SUM = 1 the guest kernel may use user pages: map it"
        return "the guest may use this page in this view: map it"
    if returned >> 10 != got.hppn:
        if returned >> 10 == guest_pte >> 10:
            return (
                "that is the guest's ppn, a guest-physical page: the shadow PTE points at "
                f"the host page the map gives, {got.hppn:#x}"
            )
        return f"the shadow PTE must point at host page {got.hppn:#x} (hppn)"
    missing = expected & ~returned & 0x3FF
    extra = returned & ~expected & 0x3FF
    if missing & SP.PTE_U:
        return "every shadow PTE has U: the guest, kernel included, runs in real U-mode"
    if missing & (SP.PTE_A | SP.PTE_D):
        return "set A and D in every shadow PTE, so that the hart never writes the shadow"
    if extra & SP.PTE_W:
        if got.write_protected:
            return "write_protected pages (translated guest code) are never writable"
        if not guest_pte & SP.PTE_D:
            return (
                "the guest's D bit is clear: map the page read-only, so that the first "
                "store faults and the monitor can set D in the guest's PTE"
            )
        return "W only when the guest's PTE has W"
    if extra & SP.PTE_X and user_page and got.view == "kernel":
        return "S-mode never executes user pages: no X for a U page in the kernel view"
    if missing & SP.PTE_R and got.sstatus & MXR:
        return "with sstatus.MXR, an executable page is readable too"
    if missing & SP.PTE_W:
        return "the guest's PTE has W and D and the page is not write-protected: allow W"
    return "copy R and X from the guest's PTE; V always; U, A and D always"


def run(problem: ShadowProblem, answer) -> list[str]:
    """The guest first (real PTEs, in context), then the problem's table of cases (the
    corners a short run of tinyos does not reach)."""
    guest = problem.guest()
    expected = reference("04.4", guest, _reference_recorder)
    if expected.diverged:
        raise RuntimeError(f"the reference diverged from itself: {expected.diverged}")

    def install(monitor, record):
        monitor.compute_shadow_pte = _recording(monitor, record, answer, True, guest)

    got = run_in_monitor(guest, install)
    if got.diverged:
        return got.diverged
    wrong = ending_mistakes(guest, expected, got, "compute_shadow_pte")
    if wrong:
        return wrong
    for number, (guest_pte, hppn, view, sstatus, protected) in enumerate(problem.cases(), 1):
        options = {"view": view, "sstatus": sstatus, "write_protected": protected}
        try:
            returned = answer(guest_pte, hppn, **options)
        except Exception as error:
            return [
                f"{_where(number, None, '', view, None)}:",
                f"  your function raised {type(error).__name__}: {error}",
            ]
        call = PteCall(guest_pte, hppn, view, sstatus, protected, None, "", returned)
        wrong = call_mistakes(SP.shadow_pte(guest_pte, hppn, **options), call, number, None)
        if wrong:
            return wrong
    return []


def mistakes(problem: ShadowProblem, answer) -> list[str]:
    if not callable(answer):
        return [
            "expected your function compute_shadow_pte(guest_pte, hppn, *, view, sstatus, "
            f"write_protected=False) itself, got {type(answer).__name__}"
        ]
    return run(problem, answer)


def solved(problem: ShadowProblem) -> str:
    calls = reference("04.4", problem.guest(), _reference_recorder).calls
    views = {view: sum(call.view == view for call in calls) for view in ("kernel", "user")}
    return (
        f"{len(calls)} shadow PTEs as the reference computes them ({views['kernel']} in the "
        f"kernel view, {views['user']} in the user view), and tinyos ran to the end"
    )


EXERCISE = register(
    Exercise(
        id="04.4",
        generate=generate,
        solve=solve,
        mistakes=mistakes,
        solved=solved,
        hints=(
            "Start with who may see the page: view == 'user' needs the guest's U bit; "
            "view == 'kernel' takes U pages only when sstatus & SUM. Otherwise return 0.",
            "The page number comes from hppn, never from the guest's PTE: (hppn << 10) | flags.",
            "flags = V | U | A | D always; R if the guest's R (or its X with MXR); X if the "
            "guest's X, but not for a U page in the kernel view; W if the guest's W and D "
            "and not write_protected.",
            "A PTE with V but no R, W or X would point to another table: return 0 instead.",
        ),
    )
)
