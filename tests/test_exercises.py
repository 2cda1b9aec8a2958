"""The exercises' generators and checkers: deterministic, correct, and helpful when wrong.

Exercises 04.2-04.4 are checked by running the answer inside the full-virtualization
monitor on real guests; each typical wrong answer must be told the first call (the
instruction, the trap, the PTE) where it went astray. Exercise 02.1 runs tinyos VMs on
the hypervisor with the answer as the credit scheduler's policy, and must name the first
scheduling decision that differs from Xen's.
"""

import pytest

from virtkit import exercises, popek_goldberg
from virtkit.cpu import exits as E
from virtkit.exercises import (
    classify,
    credit_scheduler,
    decode,
    emulate_csr,
    entitled_shares,
    shadow_pte,
    sv32,
    trap_handler,
)
from virtkit.isa import csrs
from virtkit.isa.asm import assemble
from virtkit.isa.causes import CAUSE_ILLEGAL_INSTRUCTION, CAUSE_LOAD_PAGE_FAULT
from virtkit.isa.disasm import instruction_fields
from virtkit.isa.encoding import encode
from virtkit.isa.instructions import BY_NAME, INSTRUCTIONS
from virtkit.monitors.fullvirt import shadow_paging as SP
from virtkit.monitors.fullvirt import trap_and_emulate as TE
from virtkit.monitors.fullvirt.vcpu import VIRTUAL_CSRS
from virtkit.monitors.hypervisor.credit import OVER, UNDER, csched_acct, csched_pick
from virtkit.monitors.hypervisor.metrics import expected_shares, worst_wakeup_latency

SEEDS = range(40)


@pytest.mark.parametrize("exercise_id", exercises.exercise_ids())
def test_a_seed_always_poses_the_same_problem(exercise_id):
    for seed in SEEDS:
        first, again = exercises.problem(exercise_id, seed), exercises.problem(exercise_id, seed)
        assert first == again
        assert repr(first) == repr(again)
    assert len({repr(exercises.problem(exercise_id, seed)) for seed in SEEDS}) > 1


@pytest.mark.parametrize("exercise_id", ["00.1", "00.2"])
def test_the_solution_of_every_seed_passes(exercise_id):
    for seed in SEEDS:
        verdict = exercises.evaluate(exercise_id, exercises.solve(exercise_id, seed), seed)
        assert verdict.passed, str(verdict)


def test_the_reference_handler_passes_on_the_shown_and_other_seeds():
    verdict = exercises.evaluate("00.3", trap_handler.REFERENCE_HANDLER)
    assert verdict.passed, str(verdict)
    assert str(verdict) == (
        "00.3 correct: 3 ecalls counted, and the user program resumed after each one"
    )


def test_unknown_exercise_names_the_known_ones():
    with pytest.raises(KeyError, match="00.1, 00.2, 00.3"):
        exercises.problem("0.1")


def test_hints_come_one_at_a_time_then_stop(capsys):
    exercises.reset_hints()
    count = len(exercises.get("00.2").hints)
    for _ in range(count + 1):
        exercises.hint("00.2")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"00.2 hint 1 of {count}: ")
    assert lines[count - 1].startswith(f"00.2 hint {count} of {count}: ")
    assert lines[count] == f"00.2: no more hints ({count} of {count} shown)."
    exercises.reset_hints()


# -- 00.1 decode ----------------------------------------------------------------------------


def test_decode_solution_reencodes_to_the_word_and_agrees_with_the_disassembler():
    for seed in range(300):
        problem = decode.generate(seed)
        answer = decode.solve(problem)
        fields = {name: value for name, value in answer.items() if name != "name"}
        assert encode(BY_NAME[answer["name"]], **fields) == problem.word
        described = instruction_fields(problem.word)
        assert {name: described[name] for name in answer} == answer


def test_decode_covers_every_format_of_the_lesson():
    formats = {BY_NAME[decode.solve(decode.generate(seed))["name"]].format for seed in range(300)}
    assert formats == {"R", "I", "I_SHIFT", "LOAD", "STORE", "BRANCH", "U", "JAL", "JALR"}


def test_decode_names_the_wrong_field_with_register_names():
    problem = decode.generate(0)
    answer = dict(decode.solve(problem))
    answer["rs1"] = (answer["rs1"] + 1) % 32
    verdict = exercises.evaluate("00.1", answer)
    assert not verdict.passed
    expected = decode.solve(problem)["rs1"]
    assert (
        f"field rs1 of {problem.word:#010x}: expected {expected} (s5), got {expected + 1} (s6)"
        in str(verdict)
    )


def test_decode_function_is_checked_on_other_seeds():
    shown = decode.solve(decode.generate(0))
    verdict = exercises.evaluate("00.1", lambda word: shown)
    assert not verdict.passed
    assert "(on another problem, seed 101)" in verdict.lines[0]


def test_decode_explains_a_wrong_name_and_a_crash():
    assert "look at the opcode (bits 6:0) first" in str(exercises.evaluate("00.1", {"name": "nop"}))
    verdict = exercises.evaluate("00.1", lambda word: 1 // 0)
    assert "your function raised ZeroDivisionError" in str(verdict)


# -- 00.2 Sv32 -----------------------------------------------------------------------------


def run_load_on_hart(problem):
    """An S-mode load from problem.va on the problem's hart: the physical address or fault."""
    hart = problem.hart()
    program = assemble("lw a0, 0(a1)\nebreak\n", base=sv32.RAM_BASE)
    for address, data in program.segments():
        hart.write_memory(address, data)
    hart.pc = program.entry
    hart.ebreak_exits = True
    hart.trap_exits = "M"
    marks = {}
    for page in range(1, sv32.RAM_SIZE // sv32.PAGE_SIZE):
        # A different word at the same offset of every page, so the value loaded names
        # the physical page it came from.
        address = sv32.RAM_BASE + page * sv32.PAGE_SIZE + (problem.va & 0xFFC)
        if address not in dict(problem.memory):
            hart.write_word(address, 0x5A00_0000 | page)
            marks[0x5A00_0000 | page] = address
    # M-mode with MPRV = 1 and MPP = S: loads translate as S-mode loads (3.1.6.3).
    mpp_s = csrs.mask("mstatus", "MPP") & (1 << 11)
    hart.csr["mstatus"] = csrs.mask("mstatus", "MPRV") | mpp_s
    hart.x["a1"] = problem.va & ~3
    exit = hart.run(100)
    if exit.reason == E.EXIT_TRAP:
        assert exit.cause == CAUSE_LOAD_PAGE_FAULT, exit
        return sv32.PAGE_FAULT
    assert exit.reason == E.EXIT_EBREAK, exit
    return marks[hart.x["a0"]] | (problem.va & 3)


def test_sv32_solution_agrees_with_the_hart():
    results = set()
    for seed in range(30):
        problem = sv32.generate(seed)
        expected = sv32.solve(problem)
        if expected != sv32.PAGE_FAULT:
            address = expected & ~3
            if address in dict(problem.memory):
                continue  # the load would read a PTE, not a marked word
        assert run_load_on_hart(problem) == expected, f"seed {seed}: {problem!r}"
        results.add(expected == sv32.PAGE_FAULT)
    assert results == {True, False}


def test_sv32_every_scenario_appears_among_the_first_seeds():
    outcomes = [sv32.walk(sv32.generate(seed)) for seed in range(len(sv32.SCENARIOS))]
    assert [len(steps) for steps, _ in outcomes] == [2, 1, 1, 2, 2, 2, 1]
    assert [isinstance(result, int) for _, result in outcomes] == [True, True] + [False] * 5


def test_sv32_explains_a_forgotten_flag_shift_at_its_level():
    problem = sv32.generate(0)
    steps, pa = sv32.walk(problem)
    wrong = (steps[-1].pte.value << 2) | (problem.va & 0xFFF)
    text = str(exercises.evaluate("00.2", wrong))
    assert f"expected {pa:#010x}, got {wrong:#010x}" in text
    assert "level 0: the low 10 bits of a PTE are flags" in text


def test_sv32_explains_a_megapage_taken_for_a_page():
    problem = sv32.generate(1)
    steps, pa = sv32.walk(problem)
    wrong = (steps[-1].pte.value >> 10) << 12 | (problem.va & 0xFFF)
    assert "it maps a 4 MiB megapage" in str(exercises.evaluate("00.2", wrong, seed=1))


def test_sv32_says_where_the_walk_faults():
    text = str(exercises.evaluate("00.2", 0x8000_0000, seed=4))
    assert "expected page fault, got 0x80000000" in text
    assert "level 0:" in text and "U = 1" in text


# -- 00.3 trap handler ---------------------------------------------------------------------


def test_handler_that_does_not_advance_mepc_is_told_to():
    handler = trap_handler.REFERENCE_HANDLER.replace("    addi t0, t0, 4\n", "")
    text = str(exercises.evaluate("00.3", handler))
    assert "after the 1st ecall the hart did not return to the instruction after the ecall" in (
        text
    )
    assert "add 4 to mepc" in text


def test_handler_reports_the_first_clobbered_register():
    handler = trap_handler.REFERENCE_HANDLER.replace("lw t1", "lw a0").replace(
        "addi t1, t1", "addi t1, a0"
    )
    text = str(exercises.evaluate("00.3", handler))
    assert "after the 1st ecall, register a0: expected 0x" in text
    assert "got 0x00000000" in text


def test_handler_errors_point_at_the_students_line():
    text = str(exercises.evaluate("00.3", "trap_handler:\n    mret\n    addi t0, t0\n"))
    assert "your handler does not assemble" in text
    assert "<your handler>:3:" in text
    assert "no label trap_handler" in str(exercises.evaluate("00.3", "mret\n"))


@pytest.mark.parametrize(
    ("change", "feedback"),
    [
        (
            ("addi t1, t1, 1", "addi t1, t1, 2"),
            "after the 1st ecall, ecall_count: expected 1, got 2",
        ),
        (
            ("    mret", "    li t0, 0x1800\n    csrs mstatus, t0\n    mret"),
            "after the 1st ecall the hart runs the user program in M-mode, expected U-mode",
        ),
    ],
)
def test_handler_feedback_names_what_differs(change, feedback):
    handler = trap_handler.REFERENCE_HANDLER.replace(*change)
    assert feedback in str(exercises.evaluate("00.3", handler))


# -- check ---------------------------------------------------------------------------------


def test_check_prints_a_right_answer_and_raises_not_yet_on_a_wrong_one(capsys):
    exercises.check("00.2", exercises.solve("00.2"))
    assert capsys.readouterr().out.startswith("00.2 correct: va ")
    with pytest.raises(exercises.NotYet) as caught:
        exercises.check("00.2", 0x8000_0000)
    verdict = exercises.evaluate("00.2", 0x8000_0000)
    assert caught.value.verdict == verdict
    # What Jupyter shows instead of a traceback: the verdict, line by line.
    assert caught.value._render_traceback_() == str(verdict).splitlines()
    assert isinstance(caught.value, AssertionError)  # what nbgrader counts as a failure


# -- 04.1 Popek and Goldberg ---------------------------------------------------------------


def test_rv32_classified_on_the_hart_has_no_sensitive_unprivileged_instruction():
    table = popek_goldberg.classify()
    assert popek_goldberg.violations(table) == []
    rows = {row.text: row for row in table}
    # Every non-H instruction of the table but the six CSR instructions, plus a read and a
    # write row per CSR: the table is built from virtkit.isa, not typed in.
    plain = [i for i in INSTRUCTIONS if i.extension in popek_goldberg.EXTENSIONS]
    assert len([row for row in table if row.csr is None]) == len(plain) - 6
    assert rows["add a0,a1,a2"].category == "innocuous"
    assert rows["rdtime a0"].category == "innocuous"  # counters: timing is left out
    assert "depends on the machine state" in rows["csrr a0,sstatus"].behaviour
    assert rows["csrr a0,sstatus"].control == ""
    assert rows["csrw sscratch,a2"].control == "writes sscratch"
    assert rows["sfence.vma"].control == "flushes the TLB"
    assert rows["wfi"].control == "stops the hart until an interrupt"
    assert rows["sret"].privileged and rows["sret"].trap_in("S") is None
    assert rows["csrr a0,mstatus"].trap_in("S") == CAUSE_ILLEGAL_INSTRUCTION
    assert rows["ecall"].sensitive and rows["ecall"].traps[2] is not None


def test_the_instructor_rule_of_thumb_agrees_with_every_measured_row():
    def rule(word):
        if word & 0x7F != 0b1110011:
            return {"sensitive": False, "privileged": False}
        if (word >> 12) & 7 == 0 or (word >> 28) & 3:
            return {"sensitive": True, "privileged": True}
        return {"sensitive": False, "privileged": False}

    for row in popek_goldberg.classify():
        assert rule(row.word) == row.answer, row.text


def test_classify_reference_passes_and_the_monitor_agrees_with_the_measurement():
    verdict = exercises.evaluate("04.1", classify.reference_classify)
    assert verdict.passed, str(verdict)
    for seed in (0, 1, 2, 3):
        posed = classify.generate(seed)
        for word, seen in zip(posed.words, classify.monitor_run(posed), strict=True):
            assert bool(seen.trapped) == popek_goldberg.classify_word(word).privileged


def test_classify_says_what_the_monitor_saw_of_a_wrong_answer():
    nothing = exercises.evaluate("04.1", lambda word: {"sensitive": False, "privileged": False})
    text = str(nothing)
    assert "instruction 1, `mret` (0x30200073):" in text
    assert "you said it is not privileged, but it traps in U-mode (illegal instruction)" in text
    assert "trapped to the monitor: illegal instruction; the monitor: guest S: mret" in text
    everything = str(
        exercises.evaluate("04.1", lambda word: {"sensitive": True, "privileged": True})
    )
    assert "`fence.tso` (0x8330000f):" in everything
    assert "no exit, the monitor never saw it" in everything
    privileged_only = str(
        exercises.evaluate(
            "04.1",
            lambda word: {
                "sensitive": False,
                "privileged": popek_goldberg.classify_word(word).privileged,
            },
        )
    )
    assert "you said it is not sensitive, but it is:" in privileged_only
    assert "control sensitive: changes the mode (M -> U); writes mstatus" in privileged_only
    shape = str(exercises.evaluate("04.1", lambda word: "sensitive"))
    assert "expected a dict with True or False under 'sensitive' and 'privileged'" in shape


# -- 04.2 emulate CSR instructions ---------------------------------------------------------


def emulate_csr_with(bug):
    """A student's emulate_csr, right, or with one typical mistake."""

    def emulate(vcpu, insn, x):
        funct3, number, rd, field = (
            (insn >> 12) & 7,
            insn >> 20,
            (insn >> 7) & 31,
            (insn >> 15) & 31,
        )
        operand = field if funct3 >= 5 else x[field]
        if bug == "immediate as register" and funct3 >= 5:
            operand = x[field]
        if number not in VIRTUAL_CSRS and bug != "no illegal":
            raise TE.GuestException(CAUSE_ILLEGAL_INSTRUCTION, insn)
        old = vcpu.read_csr(number)
        writes = funct3 & 3 == 1 or field != 0 or bug == "always writes"
        if bug == "rd first":
            x[rd] = old
            operand = field if funct3 >= 5 else x[field]
        if writes:
            operation = funct3 & 3
            if operation == 1:
                new = operand
            elif operation == 2:
                new = old | operand
            else:
                new = old & operand if bug == "clear with and" else old & ~operand
            if bug == "set_slot":
                vcpu.set_slot(VIRTUAL_CSRS[number], new)
            else:
                vcpu.write_csr(number, new)
        x[rd] = old
        if bug == "uses t6 as scratch":
            x[31] = new if writes else old
        return number if writes else None

    return emulate


def test_emulate_csr_reference_and_a_student_version_pass():
    for answer in (TE.emulate_csr, emulate_csr_with(None)):
        verdict = exercises.evaluate("04.2", answer)
        assert verdict.passed, str(verdict)
    assert str(exercises.evaluate("04.2", TE.emulate_csr)).startswith(
        "04.2 correct: 63 CSR instructions emulated as the hart would: 29 of tinyos"
    )


@pytest.mark.parametrize(
    ("bug", "feedback"),
    [
        (
            "always writes",
            [
                "the 12th CSR instruction the guest kernel ran, `csrr t0,sepc` at pc "
                "0x80203c94 (tinyos booting with init=hello):",
                "it wrote sepc, but csrrs with rs1 = x0 only reads",
            ],
        ),
        (
            "rd first",
            [
                "`csrrw sp,sscratch,sp`",
                "rd and rs1 are the same register (sp): read the operand before you write",
            ],
        ),
        ("clear with and", ["`csrc sstatus,t0`", "new = old & ~rs1"]),
        ("set_slot", ["expected one write of satp through vcpu.write_csr"]),
        (
            "uses t6 as scratch",
            ["afterwards t6 should still be 0x", "a CSR instruction writes no register but rd"],
        ),
        (
            "no illegal",
            [
                "`csrrwi a0,0x5c0,24` at pc 0x80200014 (the CSR drill of seed 0)",
                "your function raised KeyError: 1472",
                "raise GuestException(CAUSE_ILLEGAL_INSTRUCTION, insn) before touching it",
            ],
        ),
        (
            "immediate as register",
            ["`csrrsi a4,sscratch,20`", "uses the 5-bit immediate in bits 19:15 (20) itself"],
        ),
    ],
)
def test_emulate_csr_names_the_first_diverging_instruction(bug, feedback):
    text = str(exercises.evaluate("04.2", emulate_csr_with(bug)))
    assert text.startswith("04.2 not yet:\n")
    for part in feedback:
        assert part in text


def test_emulate_csr_drill_reaches_every_form_and_forbidden_csrs():
    forms, forbidden = set(), False
    for seed in range(8):
        for line in emulate_csr.generate(seed).drill:
            if line.startswith("csr"):
                name, csr = line.split()[0], line.split()[2].rstrip(",")
                forms.add(name)
                forbidden |= csr in emulate_csr.FORBIDDEN or csr == f"{emulate_csr.NO_CSR:#x}"
    assert forms == set(emulate_csr.OPERATIONS) and forbidden


# -- 04.3 reflect a trap -------------------------------------------------------------------


def reflect_trap_with(bug):
    def reflect(vcpu, cause, tval, pc, interrupt=False):
        sstatus = vcpu.slot("sstatus")
        spie = 0x20 if sstatus & 2 else 0
        spp = 0x100 if vcpu.mode == "S" and bug != "no SPP" else 0
        vcpu.set_slot("sstatus", (sstatus & ~0x122) | spie | spp)
        vcpu.set_slot("sepc", pc + 4 if bug == "sepc + 4" else pc)
        bit = 1 << 31 if interrupt and bug != "no interrupt bit" else 0
        vcpu.set_slot("scause", cause | bit)
        vcpu.set_slot("stval", tval)
        if bug != "stays in U":
            vcpu.mode = "S"
        if bug == "clears stvec":
            vcpu.set_slot("stvec", 0)
        stvec = vcpu.slot("stvec")
        vectored = interrupt and stvec & 3 == 1 and bug != "no vector"
        return (stvec & ~3) + (4 * cause if vectored else 0)

    return reflect


def test_reflect_trap_reference_and_a_student_version_pass():
    for answer in (TE.reflect_trap, reflect_trap_with(None)):
        verdict = exercises.evaluate("04.3", answer)
        assert verdict.passed, str(verdict)


@pytest.mark.parametrize(
    ("bug", "feedback"),
    [
        (
            "no SPP",
            [
                "the 1st trap reflected into the guest kernel, breakpoint at pc 0x80200020 in "
                "guest S-mode (the trap drill of seed 0):",
                "expected 0x00000100 (SIE=0 SPIE=0 SPP=1), yours 0x00000000 (SIE=0 SPIE=0 SPP=0)",
            ],
        ),
        (
            "sepc + 4",
            [
                "environment call from U-mode or VU-mode at pc 0x00010168 in guest U-mode "
                "(tinyos booting with init=syscall n=3)",
                "sepc afterwards: expected 0x00010168, yours 0x0001016c",
            ],
        ),
        (
            "no interrupt bit",
            ["supervisor timer interrupt", "scause afterwards: expected 0x80000005"],
        ),
        ("stays in U", ["afterwards the guest should run in virtual S-mode, yours is in U-mode"]),
        ("clears stvec", ["stvec afterwards: expected 0x", "a trap changes sstatus, sepc"]),
        (
            "no vector",
            [
                "return the guest kernel's handler address: expected 0x802000a8, got 0x80200094",
                "an interrupt in vectored mode goes to BASE + 4 * cause",
            ],
        ),
    ],
)
def test_reflect_trap_names_the_first_diverging_trap(bug, feedback):
    text = str(exercises.evaluate("04.3", reflect_trap_with(bug)))
    assert text.startswith("04.3 not yet:\n")
    for part in feedback:
        assert part in text


def test_a_crashing_reflect_trap_is_reported_where_it_crashed():
    text = str(exercises.evaluate("04.3", lambda vcpu, cause, tval, pc, interrupt=False: 1 // 0))
    assert "the 1st trap reflected into the guest kernel" in text
    assert "your function raised ZeroDivisionError" in text


# -- 04.4 shadow PTEs ----------------------------------------------------------------------


def shadow_pte_with(bug):
    V, R, W, X, U, A, D = SP.PTE_V, SP.PTE_R, SP.PTE_W, SP.PTE_X, SP.PTE_U, SP.PTE_A, SP.PTE_D

    def shadow(guest_pte, hppn, *, view, sstatus, write_protected=False):
        user_page = guest_pte & U
        if view == "user" and not user_page and bug != "user view sees the kernel":
            return 0
        if view == "kernel" and user_page and not sstatus & SP.SSTATUS_SUM:
            return 0
        readable = guest_pte & R or (sstatus & SP.SSTATUS_MXR and guest_pte & X)
        dirty = guest_pte & D or bug == "ignores D"
        writable = guest_pte & W and dirty and (not write_protected or bug == "ignores protection")
        kernel_user = view == "kernel" and user_page and bug != "kernel executes user pages"
        executable = guest_pte & X and not kernel_user
        flags = (R if readable else 0) | (W if writable else 0) | (X if executable else 0)
        if not flags:
            return 0
        page = guest_pte >> 10 if bug == "guest ppn" else hppn
        return page << 10 | flags | V | (0 if bug == "no U" else U) | A | D

    return shadow


def test_shadow_pte_reference_and_a_student_version_pass():
    for answer in (SP.shadow_pte, shadow_pte_with(None)):
        verdict = exercises.evaluate("04.4", answer)
        assert verdict.passed, str(verdict)


@pytest.mark.parametrize(
    ("bug", "feedback"),
    [
        (
            "guest ppn",
            [
                "the 1st shadow PTE the monitor asked for, filling the kernel view after a "
                "fetch fault at va 0x80200000",
                "that is the guest's ppn, a guest-physical page",
                "satp = Bare",
            ],
        ),
        ("no U", ["every shadow PTE has U: the guest, kernel included, runs in real U-mode"]),
        ("ignores D", ["the guest's D bit is clear: map the page read-only"]),
        ("ignores protection", ["write_protected pages (translated guest code) are never"]),
        ("kernel executes user pages", ["S-mode never executes user pages"]),
        ("user view sees the kernel", ["must not be reachable from guest processes"]),
    ],
)
def test_shadow_pte_names_the_first_diverging_pte(bug, feedback):
    text = str(exercises.evaluate("04.4", shadow_pte_with(bug)))
    assert text.startswith("04.4 not yet:")
    for part in feedback:
        assert part in text


def test_shadow_pte_problem_shows_the_map_the_monitor_boots_with():
    from virtkit.exercises.in_monitor import boot

    posed = shadow_pte.generate(101)
    assert posed.translate and not shadow_pte.generate(202).translate
    monitor = boot(posed.guest())
    shown_map = [(gppn, int(monitor.memory.host_page(gppn))) for gppn, _ in posed.guest_map()]
    assert shown_map == list(posed.guest_map())
    frames = [int(frame) for frame in monitor.memory.frames]
    assert frames != sorted(frames)  # scattered: no guest page follows the one before


def test_answers_that_are_not_functions_are_told_what_to_write():
    for exercise_id, name in (
        ("04.2", "emulate_csr(vcpu, insn, x)"),
        ("04.3", "reflect_trap(vcpu, cause, tval, pc, interrupt=False)"),
        ("04.4", "compute_shadow_pte(guest_pte, hppn, *, view, sstatus"),
    ):
        assert name in str(exercises.evaluate(exercise_id, 42))


# -- 02.1 the credit scheduler's two functions -------------------------------------------------


def student_pick(runq):
    """A correct csched_pick written as a student might: sort by priority, keep the order."""
    return sorted(runq, key=lambda unit: -unit.pri)[0]  # sorted is stable


def student_acct(active, credit_total, credits_per_tslice):
    """A correct csched_acct written from the exercise's steps rather than from Xen's code."""
    weight_total = sum(unit.weight for unit in active)
    overspent = max(credit_total - credits_per_tslice, 0)
    weight_left, gave_extra = weight_total, False
    for unit in list(active):
        weight_left -= unit.weight
        peak = credits_per_tslice + -(-overspent * unit.weight // weight_total)
        if unit.cap:
            cap_credits = -(-unit.cap * credits_per_tslice // 100)
            peak = min(peak, cap_credits)
        fair = -(-credit_total * unit.weight // weight_total)
        if fair >= peak:
            if weight_left:
                credit_total += -(-(fair - peak) * weight_total // weight_left)
            if gave_extra:
                active.remove(unit)
                active.insert(0, unit)
            fair = peak
        else:
            gave_extra = True
        unit.credit += fair
        if unit.credit < 0:
            unit.pri = OVER
            if unit.cap and unit.credit < -cap_credits:
                unit.parked = True
            unit.credit = max(unit.credit, -credits_per_tslice)
        else:
            unit.pri, unit.parked = UNDER, False
            if unit.credit > credits_per_tslice:
                unit.active, unit.credit = False, unit.credit // 2


def acct_with(bug):
    """Xen's csched_acct with one of the slips students make."""

    def acct(active, credit_total, credits_per_tslice):
        saved = [(unit.weight, unit.cap) for unit in active]
        if bug == "no weights":
            for unit in active:
                unit.weight = 256
        if bug == "no caps":
            for unit in active:
                unit.cap = 0
        csched_acct(active, credit_total, credits_per_tslice)
        for unit, (weight, cap) in zip(list(active), saved, strict=True):
            unit.weight, unit.cap = weight, cap
        if bug == "never OVER":
            for unit in active:
                unit.pri = UNDER

    return acct


def test_xens_own_functions_pass_on_every_seed_tried():
    verdict = exercises.evaluate("02.1", (csched_pick, csched_acct))
    assert verdict.passed, str(verdict)
    assert str(verdict).startswith(
        "02.1 correct: in 120 ms the VMs got the shares Xen's credit scheduler gives them "
        "(within 3 points): io "
    )


def test_credit_functions_written_otherwise_pass():
    assert (
        credit_scheduler.mistakes(credit_scheduler.generate(0), (student_pick, student_acct)) == []
    )


@pytest.mark.parametrize(
    ("answer", "feedback"),
    [
        (
            (csched_pick, acct_with("no weights")),
            [
                "differ from those with Xen's by more than 3 percentage points:",
                "  capped: 30.8% (with Xen's functions 20.3%)",
                "the first decision that differs from Xen's: your csched_acct(active, "
                "credit_total=30, credits_per_tslice=30) at 3 ms, with active:",
                "cpu1: Xen's leaves credit 0, UNDER, not parked, active; yours credit 4",
                "it should earn 6 credits this period, yours gave it 10",
            ],
        ),
        (
            (csched_pick, acct_with("no caps")),
            ["capped at 20%, it may earn at most ceil(cap * credits_per_tslice / 100) = 6"],
        ),
        (
            (student_pick, acct_with("never OVER")),
            ["the priority follows the credit after earning: OVER (-2) below 0"],
        ),
        (
            (lambda runq: runq[-1], csched_acct),
            [
                "at 0 µs your csched_pick chose cpu2 from the run queue [io (weight 512): "
                "credit 0, UNDER, inactive; capped",
                "Xen's chooses io",
                "BOOST (0) before UNDER (-1) before OVER (-2)",
            ],
        ),
        (
            (lambda runq: max(runq, key=lambda unit: unit.credit), csched_acct),
            ["your csched_pick chose cpu1 from the run queue [io (weight 512): credit -7, BOOST"],
        ),
    ],
    ids=["no weights", "no caps", "never OVER", "last of the queue", "most credit"],
)
def test_wrong_credit_functions_are_told_the_first_decision_that_differs(answer, feedback):
    text = "\n".join(credit_scheduler.mistakes(credit_scheduler.generate(0), answer))
    for part in feedback:
        assert part in text, text


def test_credit_functions_that_fail_are_told_where():
    posed = credit_scheduler.generate(0)
    text = "\n".join(credit_scheduler.mistakes(posed, (lambda runq: runq[0].vcpu, csched_acct)))
    assert "at 0 µs your csched_pick returned a value of type Vcpu, which is not on the run" in text
    assert "return one of the CreditVcpu in runq itself (not its name, not a copy)" in text
    text = "\n".join(credit_scheduler.mistakes(posed, (csched_pick, lambda *args: 1 // 0)))
    assert text.startswith(
        "your csched_acct(active, credit_total=30, credits_per_tslice=30) at 3 ms raised "
        "ZeroDivisionError: integer division or modulo by zero\n  active was:\n    cpu1 (weight "
    )
    assert credit_scheduler.mistakes(posed, csched_pick) == [
        "expected the pair of your two functions, (csched_pick, csched_acct), got a value of "
        "type function"
    ]


def test_credit_problems_use_credit_friendly_weights_and_a_cap_that_binds():
    for seed in SEEDS:
        posed = credit_scheduler.generate(seed)
        weights = sorted(vm.weight for vm in posed.vms)
        assert tuple(weights) in {tuple(sorted(s)) for s in credit_scheduler.WEIGHT_SETS}
        capped = next(vm for vm in posed.vms if vm.cap)
        assert capped.cap / 100 < capped.weight / sum(weights) - 0.04
        assert [vm.workload for vm in posed.vms] == ["io n=1000"] + ["compute n=100000"] * 3


# -- 02.2 entitled shares, 02.3 the slice length -------------------------------------------------


@pytest.mark.parametrize("exercise_id", ["02.2", "02.3"])
def test_the_answer_of_every_seed_passes_and_a_function_is_tried_on_others(exercise_id):
    for seed in SEEDS:
        verdict = exercises.evaluate(exercise_id, exercises.solve(exercise_id, seed), seed)
        assert verdict.passed, str(verdict)
    fitted = exercises.solve(exercise_id)  # right for the shown problem only
    verdict = exercises.evaluate(exercise_id, lambda problem: fitted)
    assert not verdict.passed and "(on another problem, seed 101)" in str(verdict)


def shares_slip(posed, slip):
    count = len(posed.weights)
    match slip:
        case "caps ignored":
            return expected_shares(posed.weights, [0] * count)
        case "leftover unused":
            uncapped = expected_shares(posed.weights, [0] * count)
            return [min(s, c / 100) if c else s for s, c in zip(uncapped, posed.caps, strict=True)]
        case "leftover equally":
            return entitled_shares.capped_once(posed, leftover_by_weight=False)
        case "capped once":
            return entitled_shares.capped_once(posed)
        case "percent":
            return [100 * share for share in entitled_shares.solve_shares(posed)]


@pytest.mark.parametrize(
    ("seed", "slip", "feedback"),
    [
        (
            0,
            "caps ignored",
            "these are the shares by weight alone, without the caps: vm1 has 0.706",
        ),
        (0, "leftover unused", "your shares add up to 0.494: you capped the VMs but left the rest"),
        (0, "leftover equally", "divided among the others by weight, not in equal parts"),
        (30, "capped once", "after the first division vm1's share 0.350 is above its cap of 25%"),
        (0, "percent", "your shares add up to 100: give each share as a fraction of the CPU"),
    ],
)
def test_shares_slips_are_named(seed, slip, feedback):
    posed = exercises.problem("02.2", seed)
    text = str(exercises.evaluate("02.2", shares_slip(posed, slip), seed))
    assert text.startswith("02.2 not yet:") and feedback in text, text


def test_shares_answers_of_the_wrong_shape_are_told_what_to_write():
    text = str(exercises.evaluate("02.2", [0.5]))
    assert "there are 3 VMs (vm0 to vm2): give one share for each, your list has 1" in text
    assert "expected a list of 3 numbers" in str(exercises.evaluate("02.2", "0.16, 0.2, 0.64"))
    assert str(exercises.evaluate("02.2", [0.16, 0.2, 0.64])).startswith(
        "02.2 correct: the shares are vm0 0.160, vm1 0.200, vm2 0.640"
    )


def longest_meeting(posed, latency):
    return max(s for s in posed.candidates if latency(s) <= posed.latency_bound)


def test_slice_problems_put_the_bound_where_each_slip_changes_the_answer():
    for seed in SEEDS:
        posed = exercises.problem("02.3", seed)
        n, c = posed.vcpus, posed.switch_cost
        answer = exercises.solve("02.3", seed)
        assert worst_wakeup_latency(answer, c, n) <= posed.latency_bound
        if seed % 2 == 0:
            slipped = longest_meeting(posed, lambda s, n=n: (n - 1) * s)
            assert slipped > answer
            assert "you left out the world switches" in str(
                exercises.evaluate("02.3", slipped, seed)
            )
        else:
            slipped = max(
                [s for s in posed.candidates if n * (s + c) + c <= posed.latency_bound], default=0
            )
            assert slipped < answer
            if slipped:
                text = str(exercises.evaluate("02.3", slipped, seed))
                assert f"waits for the others, n - 1 = {n - 1} of them, not for n = {n}" in text


def test_slice_feedback_explains_the_trade_off_and_the_units():
    posed = exercises.problem("02.3")  # 3 vCPUs, 100 µs a switch, within 20.09 ms: 5 ms
    assert (posed.vcpus, posed.switch_cost, posed.latency_bound) == (3, 100, 20_090)
    assert str(exercises.evaluate("02.3", 2000)).splitlines()[1:] == [
        "  expected 5000 µs, got 2000 µs",
        "  2 ms meets the bound, but so does 5 ms (worst wait 10300 µs <= 20090 µs), which "
        "switches less often: overhead c / (s + c) = 1.96% against 4.76%",
    ]
    assert "more than the bound of 20090 µs" in str(exercises.evaluate("02.3", 20_000))
    assert "slices are in microseconds: 5 ms is 5000" in str(exercises.evaluate("02.3", 5))
    assert "1234 is not one of the candidate slices" in str(exercises.evaluate("02.3", 1234))
    assert str(exercises.evaluate("02.3", 5000)) == (
        "02.3 correct: 5 ms: a waking vCPU waits at most 10.3 ms, and switching takes 1.96% "
        "of the CPU"
    )
