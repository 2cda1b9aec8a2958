"""The hypervisor's vCPU schedulers, run in the discrete-event model (no guest code).

Round robin, Xen's credit scheduler and stride scheduling driven by
virtkit.monitors.hypervisor.simulation; the measurements of virtkit.monitors.hypervisor
.metrics on known inputs; and the seeded problems the graded exercises will use.
Simulated runs are tens of simulated seconds and take milliseconds of real time.
"""

from __future__ import annotations

from fractions import Fraction

import pytest

from virtkit.monitors.hypervisor import SCHEDULERS, make_scheduler
from virtkit.monitors.hypervisor.credit import (
    BOOST,
    OVER,
    UNDER,
    CreditScheduler,
    CreditVcpu,
    csched_acct,
    csched_pick,
)
from virtkit.monitors.hypervisor.metrics import (
    choose_slice,
    cpu_shares,
    entitlements,
    expected_shares,
    fairness,
    jain_index,
    max_min_shares,
    shares_problem,
    slice_overhead,
    slice_problem,
    solve_shares,
    solve_slice,
    summary,
    wakeup_latencies,
    world_switch_overhead,
    world_switches,
    worst_wakeup_latency,
)
from virtkit.monitors.hypervisor.round_robin import RoundRobin
from virtkit.monitors.hypervisor.scheduler import MSEC, Dispatch, Scheduler, UnknownVcpu
from virtkit.monitors.hypervisor.simulation import (
    CpuBound,
    IoBound,
    Spinner,
    VcpuSpec,
    simulate,
)
from virtkit.monitors.hypervisor.stride import StrideScheduler

SECOND = 1000 * MSEC
LONG_RUN = 30 * SECOND  # a thousand 30 ms accounting periods


def within(share: float, entitled: float, tolerance: float = 0.05) -> bool:
    """``share`` is within ``tolerance`` (relative) of ``entitled``."""
    return abs(share - entitled) <= tolerance * entitled


def hogs(*weights: int) -> list[VcpuSpec]:
    return [VcpuSpec(f"vm{i}", CpuBound(), weight=weight) for i, weight in enumerate(weights)]


class Named:
    """A stand-in for the hypervisor's vCPU: schedulers only need it hashable and named."""

    def __init__(self, name: str):
        self.name = name


# -- The interface ---------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_every_policy_implements_the_interface(name):
    scheduler = make_scheduler(name)
    assert isinstance(scheduler, Scheduler)
    assert scheduler.name == name
    assert set(scheduler.parameters) <= {"weight", "cap"}


def test_make_scheduler_names_the_choices():
    with pytest.raises(ValueError, match="credit, stride"):
        make_scheduler("lottery")


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_bad_shares_and_unknown_vcpus_are_refused_with_the_name(name):
    scheduler = make_scheduler(name)
    with pytest.raises(ValueError, match=r"vCPU web: weight must be an integer from 1 to 65535"):
        scheduler.add(Named("web"), weight=0)
    with pytest.raises(ValueError, match=r"vCPU web: cap must be .* percentage"):
        scheduler.add(Named("web"), cap=150)
    with pytest.raises(UnknownVcpu, match="has no vCPU ghost: add"):
        scheduler.wake(Named("ghost"), 0)
    web = Named("web")
    scheduler.add(web)
    with pytest.raises(ValueError, match="already added"):
        scheduler.add(web)


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_the_dispatch_protocol_by_hand(name):
    """pick / account / block / wake as the hypervisor's loop calls them."""
    scheduler = make_scheduler(name)
    a, b = Named("a"), Named("b")
    scheduler.add(a)
    scheduler.add(b)
    first, budget = scheduler.pick(0)
    assert first is a and budget > 0
    assert scheduler.run_queue() == [b]
    scheduler.account(a, 100, 100)
    scheduler.block(a, 100)
    assert scheduler.pick(100).vcpu is b  # a blocked: b runs
    scheduler.account(b, 50, 150)
    scheduler.remove(b)
    assert scheduler.pick(150).vcpu is None  # nothing runnable: idle
    scheduler.wake(a, 200)
    assert scheduler.pick(200).vcpu is a


def test_a_wakeup_preempts_only_where_the_policy_says():
    """Credit BOOSTs a waking UNDER vCPU over the running one; round robin never preempts."""
    for scheduler, preempted in ((CreditScheduler(), True), (RoundRobin(), False)):
        waker, runner = Named("waker"), Named("runner")
        scheduler.add(waker)
        scheduler.add(runner)
        assert scheduler.pick(0).vcpu is waker
        scheduler.account(waker, 10, 10)
        scheduler.block(waker, 10)
        assert scheduler.pick(10).vcpu is runner
        scheduler.account(runner, 1000, 1010)
        assert scheduler.pick(1010).vcpu is runner  # its slice goes on
        scheduler.account(runner, 1000, 2010)
        scheduler.wake(waker, 2010)
        assert (scheduler.pick(2010).vcpu is waker) is preempted


# -- Round robin -------------------------------------------------------------------------


def test_round_robin_gives_equal_shares_whatever_the_weights():
    timeline = simulate(RoundRobin(), hogs(128, 256, 1024), LONG_RUN)
    for share in cpu_shares(timeline).values():
        assert share == pytest.approx(1 / 3, abs=0.002)
    assert entitlements(timeline) == pytest.approx({"vm0": 1 / 3, "vm1": 1 / 3, "vm2": 1 / 3})
    assert fairness(timeline) == pytest.approx(1, abs=1e-4)


def test_round_robin_switches_once_a_slice():
    timeline = simulate(RoundRobin(time_slice=5 * MSEC), hogs(256, 256), SECOND)
    assert world_switches(timeline) == SECOND // (5 * MSEC)
    assert timeline.runs[0][:3] == (0, 5 * MSEC, "vm0")
    assert timeline.runs[0].runq == ("vm1",)


# -- Credit ------------------------------------------------------------------------------


@pytest.mark.parametrize("weights", [(128, 256, 384, 512), (256, 512, 768), (512, 256, 256, 256)])
def test_credit_shares_track_weights_over_a_long_run(weights):
    timeline = simulate(CreditScheduler(), hogs(*weights), LONG_RUN)
    shares = cpu_shares(timeline)
    for name, entitled in entitlements(timeline).items():
        assert within(shares[name], entitled), (name, shares[name], entitled)


def test_credit_respects_caps_and_gives_the_rest_by_weight():
    vcpus = [
        VcpuSpec("capped", cap=20),
        VcpuSpec("small", weight=256),
        VcpuSpec("large", weight=512),
    ]
    timeline = simulate(CreditScheduler(), vcpus, LONG_RUN)
    shares = cpu_shares(timeline)
    assert shares["capped"] <= 0.20 * 1.01
    assert entitlements(timeline) == pytest.approx(
        {"capped": 0.2, "small": 0.8 / 3, "large": 1.6 / 3}
    )
    for name, entitled in entitlements(timeline).items():
        assert within(shares[name], entitled), (name, shares[name], entitled)


def test_a_cap_holds_even_when_the_cpu_would_otherwise_idle():
    """Caps make credit non-work-conserving: a parked vCPU stays off an idle CPU."""
    vcpus = [VcpuSpec("capped", cap=25), VcpuSpec("io", IoBound(run=MSEC, block=9 * MSEC))]
    timeline = simulate(CreditScheduler(), vcpus, LONG_RUN)
    shares = cpu_shares(timeline)
    assert shares["capped"] == pytest.approx(0.25, abs=0.005)
    assert shares["io"] == pytest.approx(0.10, abs=0.005)
    assert sum(shares.values()) < 0.4  # the rest of the CPU idles


def test_boost_gives_an_io_bound_vcpu_low_wakeup_latency_against_cpu_hogs():
    io = VcpuSpec("io", IoBound(run=500, block=4500))
    vcpus = [io, *hogs(256, 256, 256)]
    credit = simulate(CreditScheduler(), vcpus, LONG_RUN)
    round_robin = simulate(RoundRobin(), vcpus, LONG_RUN)

    credit_waits = wakeup_latencies(credit)["io"]
    assert len(credit_waits) > 5000
    assert max(credit_waits) <= MSEC  # BOOST preempts the hog at once
    assert cpu_shares(credit)["io"] == pytest.approx(0.10, abs=0.005)  # all it asks for

    round_robin_waits = wakeup_latencies(round_robin)["io"]
    assert min(round_robin_waits) >= 30 * MSEC  # behind every hog's 30 ms slice
    assert max(round_robin_waits) <= worst_wakeup_latency(30 * MSEC, 0, vcpus=4)
    assert cpu_shares(round_robin)["io"] < 0.01


def test_a_spinner_cannot_take_more_than_its_share():
    vcpus = [
        VcpuSpec("spin", Spinner()),
        VcpuSpec("web", IoBound(run=2 * MSEC, block=8 * MSEC)),
        VcpuSpec("batch"),
    ]
    timeline = simulate(CreditScheduler(), vcpus, LONG_RUN)
    shares, entitled = cpu_shares(timeline), entitlements(timeline)
    assert entitled == pytest.approx({"spin": 0.4, "web": 0.2, "batch": 0.4})
    assert shares["spin"] <= entitled["spin"] * 1.05
    assert within(shares["web"], 0.2) and within(shares["batch"], 0.4)
    assert max(wakeup_latencies(timeline)["web"]) <= MSEC


def test_a_capped_spinner_is_held_to_its_cap():
    vcpus = [
        VcpuSpec("spin", Spinner(), weight=1024, cap=10),
        VcpuSpec("web", IoBound(run=2 * MSEC, block=8 * MSEC)),
        VcpuSpec("batch"),
    ]
    shares = cpu_shares(simulate(CreditScheduler(), vcpus, LONG_RUN))
    assert shares["spin"] <= 0.10 * 1.01
    assert within(shares["web"], 0.2) and within(shares["batch"], 0.7)


def test_two_spinners_leave_an_io_vm_its_whole_demand():
    vcpus = [
        VcpuSpec("spin1", Spinner()),
        VcpuSpec("spin2", Spinner()),
        VcpuSpec("io", IoBound(run=MSEC, block=4 * MSEC)),
    ]
    timeline = simulate(CreditScheduler(), vcpus, LONG_RUN)
    assert cpu_shares(timeline)["io"] == pytest.approx(0.2, abs=0.005)


def test_credit_priorities_follow_the_source():
    """BOOST on wake while UNDER, not while OVER; UNDER/OVER from the balance; parking."""
    scheduler = CreditScheduler()
    a, b = Named("a"), Named("b")
    scheduler.add(a)
    scheduler.add(b)
    assert scheduler.unit(a).pri == UNDER and scheduler.unit(a).credit == 0
    scheduler.pick(0)
    scheduler.account(a, 10 * MSEC, 10 * MSEC)  # a tick finds a running: a is active
    assert scheduler.unit(a).active and scheduler.unit(a).credit == -100
    scheduler.block(a, 10 * MSEC)
    assert scheduler.pick(10 * MSEC).vcpu is b
    scheduler.account(b, 0, 10 * MSEC)
    scheduler.wake(a, 10 * MSEC)
    assert scheduler.unit(a).pri == BOOST  # it was UNDER
    assert scheduler.pick(10 * MSEC).vcpu is a  # and preempts b
    scheduler.account(a, 20 * MSEC, 30 * MSEC)  # a tick ends the BOOST; then csched_acct
    unit = scheduler.unit(a)
    assert unit.credit == 0 and unit.pri == UNDER  # paid 300 for 30 ms, earned all 300
    scheduler.block(a, 30 * MSEC)
    unit.pri = OVER
    scheduler.wake(a, 30 * MSEC)
    assert unit.pri == OVER  # no BOOST for a vCPU that has overspent

    capped = CreditVcpu("capped", cap=10, credit=-40, active=True)
    csched_acct([capped], 300, 300)  # earns at most its cap, 30, and is 10 short
    assert (capped.credit, capped.pri, capped.parked) == (-10, OVER, False)
    capped.credit = -100
    csched_acct([capped], 300, 300)
    assert (capped.credit, capped.pri, capped.parked) == (-70, OVER, True)


def test_credit_redistributes_what_a_capped_vcpu_cannot_use():
    """Xen's csched_acct: the capped vCPU's excess goes to the vCPUs after it."""
    capped = CreditVcpu("capped", weight=256, cap=20, active=True)
    small = CreditVcpu("small", weight=256, active=True)
    large = CreditVcpu("large", weight=512, active=True)
    active = [capped, small, large]
    csched_acct(active, 300, 300)
    assert (capped.credit, small.credit, large.credit) == (60, 80, 160)


def test_a_student_pick_and_acct_plug_in():
    """The exercise replaces csched_pick and csched_acct; a simple correct pair works."""

    def pick(runq):
        return max(runq, key=lambda unit: unit.pri)  # max keeps the first of equals

    def acct(active, credit_total, credits_per_tslice):
        weight_total = sum(unit.weight for unit in active)
        for unit in active:
            unit.credit += credit_total * unit.weight // weight_total
            unit.credit = max(min(unit.credit, credits_per_tslice), -credits_per_tslice)
            unit.pri = UNDER if unit.credit >= 0 else OVER

    scheduler = CreditScheduler(pick=pick, acct=acct)
    timeline = simulate(scheduler, hogs(256, 512, 768), LONG_RUN)
    shares = cpu_shares(timeline)
    for name, entitled in entitlements(timeline).items():
        assert within(shares[name], entitled, 0.10), (name, shares[name], entitled)


def test_a_pick_that_returns_a_stranger_is_reported():
    scheduler = CreditScheduler(pick=lambda runq: CreditVcpu("stranger"))
    scheduler.add(Named("a"))
    with pytest.raises(ValueError, match="not on the run queue"):
        scheduler.pick(0)


def test_credit_slice_settings_follow_xen():
    assert CreditScheduler().tick_period == 10 * MSEC
    assert CreditScheduler(tslice_ms=1).tick_period == MSEC  # below 3 ms: one tick a slice
    assert CreditScheduler(tslice_ms=6).credits_per_tslice == 60
    with pytest.raises(ValueError, match="from 1 to 1000"):
        CreditScheduler(tslice_ms=0)


def test_csched_pick_takes_the_first_of_the_highest_priority():
    over, under1, under2 = (
        CreditVcpu(name, pri=pri)
        for name, pri in (("over", OVER), ("under1", UNDER), ("under2", UNDER))
    )
    assert csched_pick([over, under1, under2]) is under1
    assert csched_pick([over, under2, CreditVcpu("boost", pri=BOOST)]).vcpu == "boost"


# -- Stride --------------------------------------------------------------------------------


@pytest.mark.parametrize("tickets", [(100, 200, 300, 400), (1, 3), (256, 256, 1024)])
def test_stride_shares_are_proportional_to_tickets(tickets):
    timeline = simulate(StrideScheduler(), hogs(*tickets), LONG_RUN)
    shares = cpu_shares(timeline)
    for name, ticket_count in zip(shares, tickets, strict=True):
        assert shares[name] == pytest.approx(ticket_count / sum(tickets), abs=0.002)


def test_stride_runs_clients_in_pass_order():
    """Tickets 3:1 with a 1 ms quantum: A runs three quanta for each one of B's."""
    timeline = simulate(StrideScheduler(quantum=MSEC), hogs(300, 100), 8 * MSEC)
    order = "".join(
        "AB"[int(run.vcpu[-1])] * ((run.end - run.start) // MSEC) for run in timeline.runs
    )
    assert order.count("A") == 6 and order.count("B") == 2
    assert "BB" not in order


def test_stride_does_not_let_a_sleeper_hoard():
    """A client that slept rejoins at the global pass plus what it was owed, not more."""
    vcpus = [VcpuSpec("sleeper", IoBound(run=20 * MSEC, block=180 * MSEC)), *hogs(256)]
    timeline = simulate(StrideScheduler(), vcpus, LONG_RUN)
    assert cpu_shares(timeline)["sleeper"] <= 0.1 * 1.01


# -- Metrics --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values, index",
    [
        ([1, 1, 1, 1], 1.0),
        ([1, 0, 0, 0], 0.25),
        ([1, 2, 3], 36 / 42),
        ([0.5, 0.5], 1.0),
        ([3, 1], 16 / 20),
    ],
)
def test_jain_index_on_known_inputs(values, index):
    assert jain_index(values) == pytest.approx(index)


def test_jain_index_refuses_what_it_cannot_rate():
    for values in ([], [0, 0], [1, -1]):
        with pytest.raises(ValueError, match="Jain"):
            jain_index(values)


@pytest.mark.parametrize(
    "weights, caps, shares",
    [
        ((256, 256, 512), (0, 10, 0), (0.3, 0.1, 0.6)),  # the docstring's example
        ((256, 256), (20, 30), (0.2, 0.3)),  # every VM capped: half the CPU idles
        ((256, 256), (60, 0), (0.5, 0.5)),  # a cap above the offer does not bind
        ((1, 1, 1), (10, 20, 0), (0.1, 0.2, 0.7)),  # one cap frees room for another's
        ((100, 100, 100, 100), (0, 0, 10, 90), (0.3, 0.3, 0.1, 0.3)),
        ((128, 256, 384, 512), (0, 0, 0, 0), (0.1, 0.2, 0.3, 0.4)),
        ((512, 512, 256), (0, 25, 0), (0.5, 0.25, 0.25)),
    ],
)
def test_expected_shares_worked_examples(weights, caps, shares):
    assert expected_shares(weights, caps) == pytest.approx(list(shares))


def test_max_min_shares_is_exact():
    assert max_min_shares([1, 1, 1], [1, 1, Fraction(1, 6)]) == [
        Fraction(5, 12),
        Fraction(5, 12),
        Fraction(1, 6),
    ]


@pytest.mark.parametrize(
    "weights, caps", [((256, 256, 512), (0, 10, 0)), ((512, 256, 256), (0, 25, 0))]
)
def test_expected_shares_are_what_the_credit_scheduler_delivers(weights, caps):
    timeline = simulate(
        CreditScheduler(),
        [
            VcpuSpec(f"vm{i}", weight=w, cap=c)
            for i, (w, c) in enumerate(zip(weights, caps, strict=True))
        ],
        LONG_RUN,
    )
    shares = cpu_shares(timeline)
    for name, expected in zip(shares, expected_shares(weights, caps), strict=True):
        assert within(shares[name], expected), (name, shares[name], expected)


def test_entitlements_use_only_what_the_policy_honours():
    vcpus = [VcpuSpec("a", weight=512, cap=10), VcpuSpec("b", IoBound(MSEC, 9 * MSEC))]
    assert entitlements(simulate(CreditScheduler(), vcpus, SECOND)) == pytest.approx(
        {"a": 0.1, "b": 0.1}
    )
    assert entitlements(simulate(StrideScheduler(), vcpus, SECOND)) == pytest.approx(
        {"a": 0.9, "b": 0.1}
    )
    assert entitlements(simulate(RoundRobin(), vcpus, SECOND)) == pytest.approx(
        {"a": 0.9, "b": 0.1}
    )


def test_world_switch_cost_as_a_function_of_slice_length():
    assert slice_overhead(30 * MSEC, 10) == pytest.approx(10 / 30_010)
    assert slice_overhead(MSEC, 10) > slice_overhead(10 * MSEC, 10) > slice_overhead(100 * MSEC, 10)
    assert worst_wakeup_latency(10 * MSEC, 10, vcpus=4) == 3 * (10 * MSEC + 10) + 10
    for time_slice in (MSEC, 5 * MSEC, 30 * MSEC):
        timeline = simulate(RoundRobin(time_slice), hogs(256, 256, 256), 3 * SECOND)
        assert world_switches(timeline) == 3 * SECOND // time_slice
        assert world_switch_overhead(timeline, 10) == pytest.approx(slice_overhead(time_slice, 10))


def test_choose_slice_meets_the_bound_at_the_lowest_overhead():
    assert choose_slice(100 * MSEC, 0, vcpus=4) == 33_333
    assert choose_slice(100 * MSEC, 100, vcpus=4) == (100_000 - 100) // 3 - 100
    assert worst_wakeup_latency(choose_slice(100 * MSEC, 100, 4), 100, 4) <= 100 * MSEC
    assert worst_wakeup_latency(choose_slice(100 * MSEC, 100, 4) + 1, 100, 4) > 100 * MSEC
    candidates = (MSEC, 10 * MSEC, 30 * MSEC)
    assert choose_slice(70 * MSEC, 10, vcpus=4, candidates=candidates) == 10 * MSEC
    assert choose_slice(100 * MSEC, 0, vcpus=4, candidates=candidates) == 30 * MSEC
    with pytest.raises(ValueError, match="no slice of"):
        choose_slice(2 * MSEC, 10, vcpus=4, candidates=candidates)
    with pytest.raises(ValueError, match="world switches alone"):
        choose_slice(100, 50, vcpus=4)


def test_the_latency_model_bounds_the_simulated_latency():
    """An I/O vCPU behind three hogs under round robin waits at most the modelled worst."""
    for time_slice in (2 * MSEC, 10 * MSEC):
        vcpus = [VcpuSpec("io", IoBound(300, 7 * MSEC)), *hogs(256, 256, 256)]
        timeline = simulate(RoundRobin(time_slice), vcpus, 10 * SECOND)
        waits = wakeup_latencies(timeline)["io"]
        bound = worst_wakeup_latency(time_slice, 0, vcpus=4)
        assert max(waits) <= bound
        assert max(waits) >= bound - time_slice  # and the bound is nearly reached


# -- Seeded exercise problems ---------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 101, 202, 303])
def test_shares_problem_is_seeded_and_solvable(seed):
    problem = shares_problem(seed)
    assert problem == shares_problem(seed)
    assert 3 <= len(problem.weights) == len(problem.caps) <= 5
    answer = solve_shares(problem)
    assert answer == expected_shares(problem.weights, problem.caps)
    assert sum(answer) <= 1 + 1e-9
    uncapped = expected_shares(problem.weights, [0] * len(problem.weights))
    assert answer != pytest.approx(uncapped)  # a cap binds: the exercise is not trivial
    assert f"seed {seed}" in repr(problem)


def test_shares_problems_differ_between_seeds():
    assert len({shares_problem(seed) for seed in range(10)}) > 5


@pytest.mark.parametrize("seed", [0, 1, 101, 202, 303])
def test_slice_problem_is_seeded_and_has_one_answer(seed):
    problem = slice_problem(seed)
    assert problem == slice_problem(seed)
    answer = solve_slice(problem)
    assert answer in problem.candidates
    assert worst_wakeup_latency(answer, problem.switch_cost, problem.vcpus) <= problem.latency_bound
    longer = [s for s in problem.candidates if s > answer]
    assert longer
    assert (
        worst_wakeup_latency(min(longer), problem.switch_cost, problem.vcpus)
        > problem.latency_bound
    )


# -- The simulation and its summary -----------------------------------------------------------


MIXED = [
    VcpuSpec("web", IoBound(run=2 * MSEC, block=8 * MSEC)),
    VcpuSpec("batch", weight=512),
    VcpuSpec("spin", Spinner(), cap=20),
]


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_timeline_is_consistent_and_deterministic(name):
    timeline = simulate(make_scheduler(name), MIXED, 3 * SECOND)
    assert timeline == simulate(make_scheduler(name), MIXED, 3 * SECOND)
    previous_end = 0
    for run in timeline.runs:
        assert previous_end <= run.start < run.end <= timeline.duration
        assert run.vcpu not in run.runq
        previous_end = run.end
    for wakeup in timeline.wakeups:
        assert any(
            run.start == wakeup.dispatched and run.vcpu == wakeup.vcpu for run in timeline.runs
        )
    assert sum(cpu_shares(timeline).values()) <= 1


def test_summary_is_deterministic_text():
    text = summary(simulate(CreditScheduler(), MIXED, 3 * SECOND), switch_cost=5)
    assert text == summary(simulate(CreditScheduler(), MIXED, 3 * SECOND), switch_cost=5)
    lines = text.splitlines()
    assert lines[0] == "credit scheduler, 3 vCPUs, 3000 ms simulated"
    assert lines[1].split() == [
        "vCPU", "weight", "cap", "demand", "share", "entitled", "wake-ups", "latency", "mean/max"
    ]  # fmt: skip
    assert lines[2].startswith(
        "web           256    -  I/O: run 2 ms, block 8 ms       20.0%    20.0%"
    )
    assert lines[4].startswith(
        "spin          256  20%  spinner                         20.0%    20.0%"
    )
    assert lines[-2].startswith("Jain's fairness index (share / entitlement): ")
    assert lines[-1].startswith("world switches: ") and "at 5 µs each" in lines[-1]


def test_simulate_refuses_what_is_not_a_scheduler():
    with pytest.raises(TypeError, match="is not a scheduler"):
        simulate(object(), MIXED, SECOND)
    with pytest.raises(ValueError, match="names must differ"):
        simulate(RoundRobin(), [VcpuSpec("a"), VcpuSpec("a")], SECOND)
    with pytest.raises(ValueError, match="positive integer number of microseconds"):
        IoBound(run=0, block=5)


def test_dispatch_is_a_named_pair():
    vcpu, budget = Dispatch("a", 5)
    assert (vcpu, budget) == ("a", 5)
