"""The exercises' generators and checkers: deterministic, correct, and helpful when wrong.

Exercises 04.2-04.4 are checked by running the answer inside the full-virtualization
monitor on real guests; each typical wrong answer must be told the first call (the
instruction, the trap, the PTE) where it went astray.
"""

import pytest

from virtkit import exercises, popek_goldberg
from virtkit.cpu import exits as E
from virtkit.exercises import classify, decode, emulate_csr, shadow_pte, sv32, trap_handler
from virtkit.isa import csrs
from virtkit.isa.asm import assemble
from virtkit.isa.causes import CAUSE_ILLEGAL_INSTRUCTION, CAUSE_LOAD_PAGE_FAULT
from virtkit.isa.disasm import instruction_fields
from virtkit.isa.encoding import encode
from virtkit.isa.instructions import BY_NAME, INSTRUCTIONS
from virtkit.monitors.fullvirt import shadow_paging as SP
from virtkit.monitors.fullvirt import trap_and_emulate as TE
from virtkit.monitors.fullvirt.vcpu import VIRTUAL_CSRS

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
        "04.2 correct: 66 CSR instructions emulated as the hart would: 32 of tinyos"
    )


@pytest.mark.parametrize(
    ("bug", "feedback"),
    [
        (
            "always writes",
            [
                "the 11th CSR instruction the guest kernel ran, `csrr t0,sscratch` at pc "
                "0x80203c0c (tinyos booting with init=hello):",
                "it wrote sscratch, but csrrs with rs1 = x0 only reads",
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
