"""The exercises' generators and checkers: deterministic, correct, and helpful when wrong."""

import pytest

from virtkit import exercises
from virtkit.cpu import exits as E
from virtkit.exercises import decode, sv32, trap_handler
from virtkit.isa import csrs
from virtkit.isa.asm import assemble
from virtkit.isa.causes import CAUSE_LOAD_PAGE_FAULT
from virtkit.isa.disasm import instruction_fields
from virtkit.isa.encoding import encode
from virtkit.isa.instructions import BY_NAME

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
