"""tinyos and its user programs: the shipped images on virtkit and on QEMU.

Every workload boots the shipped tinyos image (virtkit/guests/images) as the first
process, `init=<program> n=<N>`, with small N. On virtkit (Python SBI firmware) the
console must match the golden text and two runs must retire the same number of
instructions; the firmware image boots it too; and ``qemu-system-riscv32 -machine
virt -bios <our firmware image>`` must print the same lines, the command line placed
with QEMU's generic loader at CMDLINE_BASE and a virtio-blk disk in slot 0.

The expected result lines are computed here where they can be: compute's checksum by
virtkit.bench's Python reference, io's and pagefault's with zlib. Then bad input (an
unknown init, a program that touches unmapped memory, a fork bomb, bad system call
arguments), the shell typed into through ``machine.console.send``, ``virtkit run`` by
name, the catalogue, and a rebuild that must reproduce the committed images byte for
byte.
"""

from __future__ import annotations

import glob
import re
import shutil
import struct
import subprocess
import tomllib
import zlib
from pathlib import Path

import pytest

from virtkit import cli, guests
from virtkit.bench.measure import reference_checksum
from virtkit.machine import board
from virtkit.machine.machine import firmware_image

ROOT = Path(__file__).resolve().parent.parent
GCC = "riscv64-unknown-elf-gcc"
QEMU = "qemu-system-riscv32"
QEMU_TIMEOUT = 30  # seconds; each workload here runs a few million instructions at most
INSTRUCTION_LIMIT = 50_000_000  # far more than any run here needs

# What tinyos prints first: the board it found (boot_tinyos gives it a 1 MiB disk).
BANNER = "tinyos: hart 0, 16M RAM, quantum 10ms, disk 2048 sectors\n"
MAX_PROCS = 16  # TINYOS_MAX_PROCS in abi.h


def lcg_bytes(seed: int, count: int) -> bytes:
    """Bits 31..24 of the LCG x' = 1664525 x + 1013904223 from ``seed``, as io.c fills."""
    data = bytearray()
    for _ in range(count):
        seed = (seed * 1664525 + 1013904223) & 0xFFFFFFFF
        data.append(seed >> 24)
    return bytes(data)


def io_crc(blocks: int) -> int:
    return zlib.crc32(b"".join(lcg_bytes(k, 512) for k in range(blocks)))


def pagefault_crc(pages: int) -> int:
    words = (page * 2654435761 & 0xFFFFFFFF for page in range(pages))
    return zlib.crc32(b"".join(struct.pack("<I", word) for word in words))


# program -> (its arguments, the line it prints); init is pid 1.
WORKLOADS = {
    "hello": ("", "hello, world from pid 1 (argc=1)"),
    "compute": ("n=2", f"compute: n=2 checksum={reference_checksum(2):#010x}"),
    "syscall": ("n=100", "syscall: n=100 getpid calls returned pid 1"),
    "forkwait": ("n=20", "forkwait: n=20 children forked and reaped, exit codes sum 190"),
    "pagefault": (
        "n=16",
        f"pagefault: n=16 fresh pages touched, zero-filled, checksum {pagefault_crc(16):#010x}",
    ),
    "ctxswitch": ("n=50", "ctxswitch: n=50 yields in each of 2 processes"),
    "io": ("n=8", f"io: n=8 blocks written and read back, crc32 {io_crc(8):#010x}"),
}


def cmdline(program: str) -> str:
    return f"init={program} {WORKLOADS[program][0]}".strip()


def boot_and_run(cmdline: str, **options) -> tuple[str, int, int]:
    """Boot tinyos with ``cmdline`` and run it to its shutdown: (console, exit code,
    instructions)."""
    machine = guests.boot_tinyos(cmdline, **options)
    result = machine.run(until=INSTRUCTION_LIMIT)
    assert result.reason == "halt", f"{result}; console:\n{machine.console.text}"
    return machine.console.text, result.exit_code, machine.hart.instret


# -- the workloads on virtkit ------------------------------------------------------------------


@pytest.mark.parametrize("program", WORKLOADS)
def test_workload_prints_its_golden_line_and_runs_the_same_instructions_twice(program):
    first = boot_and_run(cmdline(program))
    assert first == (BANNER + WORKLOADS[program][1] + "\n", 0, first[2])
    assert boot_and_run(cmdline(program)) == first


@pytest.mark.parametrize("program", ["hello", "io"])
def test_the_firmware_image_boots_tinyos_to_the_same_output(program):
    text, code, _ = boot_and_run(cmdline(program), firmware="image")
    assert (text, code) == (BANNER + WORKLOADS[program][1] + "\n", 0)


def test_a_program_runs_as_init_with_its_arguments_and_without_a_disk():
    text, code, _ = boot_and_run("init=hello n=2 quantum=5ms", disk=False)
    line = "hello, world from pid 1 (argc=2)\n"
    assert (text, code) == ("tinyos: hart 0, 16M RAM, quantum 5ms, no disk\n" + line * 2, 0)


def test_io_without_a_disk_says_so():
    text, code, _ = boot_and_run("init=io n=1", disk=False)
    assert text.splitlines()[1:] == [
        "io: no disk: blk_capacity returned ENODEV",
        "tinyos: init exited with status 1",
    ]
    assert code == 1


def test_io_leaves_its_blocks_on_the_disk():
    disk = bytearray(64 * 1024)
    text, code, _ = boot_and_run("init=io n=4", disk=disk)
    assert code == 0, text
    assert bytes(disk[: 4 * 512]) == b"".join(lcg_bytes(k, 512) for k in range(4))
    assert not any(disk[4 * 512 :])


# -- the same image on QEMU ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def qemu_bios(tmp_path_factory) -> Path:
    if shutil.which(QEMU) is None:
        pytest.skip(f"{QEMU} is not installed (Debian: apt install qemu-system-misc)")
    bios = tmp_path_factory.mktemp("qemu") / "sbi.elf"
    bios.write_bytes(firmware_image().to_elf())
    return bios


def run_on_qemu(bios: Path, folder: Path, cmdline: str) -> subprocess.CompletedProcess:
    """tinyos on QEMU's virt board with our firmware, ``cmdline`` at CMDLINE_BASE and a
    blank disk of guests.BLANK_DISK_BYTES in virtio-mmio slot 0 (as boot_tinyos does)."""
    text = folder / "cmdline.bin"
    text.write_bytes(cmdline.encode("ascii") + b"\0")
    disk = folder / "disk.img"
    disk.write_bytes(bytes(guests.BLANK_DISK_BYTES))
    command = [
        QEMU, "-machine", "virt", "-bios", str(bios), "-kernel", str(guests.tinyos()),
        "-nographic",
        "-device", f"loader,file={text},addr={board.CMDLINE_BASE:#x},force-raw=on",
        "-global", "virtio-mmio.force-legacy=false",
        "-drive", f"file={disk},if=none,format=raw,id=disk0",
        "-device", "virtio-blk-device,drive=disk0,bus=virtio-mmio-bus.0",
    ]  # fmt: skip
    return subprocess.run(
        command, stdin=subprocess.DEVNULL, capture_output=True, timeout=QEMU_TIMEOUT, check=False
    )


@pytest.mark.parametrize("program", WORKLOADS)
def test_workload_prints_the_same_on_qemu(program, qemu_bios, tmp_path):
    result = run_on_qemu(qemu_bios, tmp_path, cmdline(program))
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert result.stdout.decode("latin-1") == BANNER + WORKLOADS[program][1] + "\n"


def test_a_killed_init_fails_the_run_on_qemu_too(qemu_bios, tmp_path):
    result = run_on_qemu(qemu_bios, tmp_path, "init=segv")
    assert result.returncode == 1
    assert result.stdout.decode("latin-1") == boot_and_run("init=segv")[0]


# -- bad input --------------------------------------------------------------------------------


def test_an_unknown_init_program_is_named_with_the_programs_there_are():
    text, code, _ = boot_and_run("init=nosuch")
    programs = " ".join(sorted(guests.PROGRAMS))
    assert text == BANNER + f"tinyos: init=nosuch: no such program; the programs are: {programs}\n"
    assert code == 1


def test_a_bad_argument_is_refused_by_the_program_and_fails_the_run():
    text, code, _ = boot_and_run("init=forkwait n=0")
    assert text == (
        BANNER
        + "forkwait: bad argument 'n=0': n must be a number from 1 to 1000000\n"
        + "tinyos: init exited with status 2\n"
    )
    assert code == 1


def test_touching_unmapped_memory_kills_the_process_with_a_message():
    text, code, _ = boot_and_run("init=segv")
    lines = text.splitlines()
    assert lines[1] == "segv: write at 0x00000000, expecting to be killed"
    assert re.fullmatch(
        r"tinyos: pid 1 \(segv\) killed: store page fault at va 0x00000000 pc 0x[0-9a-f]{8}",
        lines[2],
    )
    assert lines[3:] == ["tinyos: init killed by signal 11"]
    assert code == 1


def test_a_fork_bomb_fills_the_process_table_and_gets_eagain():
    text, code, _ = boot_and_run("init=forkbomb")
    children = MAX_PROCS - 1  # every slot but init's
    assert text == BANNER + (
        f"forkbomb: fork failed with EAGAIN after {children} children, {children} reaped\n"
    )
    assert code == 0


def test_system_calls_with_bad_arguments_get_an_errno():
    text, code, _ = boot_and_run("init=badcalls")
    assert (text, code) == (BANNER + "badcalls: 18 bad calls refused with the expected errno\n", 0)


# -- the shell -----------------------------------------------------------------------------

PROMPT = "$ "

# What the console shows for each line typed (the kernel echoes it), up to the next
# prompt. Programs run from the shell get pids from 2 on, one per fork.
SHELL_SESSION = [
    ("echo hi  there", "hi there\n"),
    ("ps", "  PID  PPID STATE     NAME\n    1     0 running   sh\n"),
    ("uname", "tinyos\n"),
    ("uname -a", "tinyos tinyos 1.0 virtkit teaching kernel riscv32\n"),
    ("compute n=1", f"compute: n=1 checksum={reference_checksum(1):#010x}\n"),
    ("hello n=2", "hello, world from pid 3 (argc=2)\n" * 2),
    ("nosuch", "sh: nosuch: no such program\n"),
    (
        "hello bogus",
        "hello: unknown argument 'bogus' (usage: hello [n=<1..1000>], default n=1)\n"
        "sh: hello: exit status 2\n",
    ),
    (
        "forkbomb",  # its children get the slots that sh and forkbomb leave
        f"forkbomb: fork failed with EAGAIN after {MAX_PROCS - 2} children, "
        f"{MAX_PROCS - 2} reaped\n",
    ),
    ("forkwait n=3", "forkwait: n=3 children forked and reaped, exit codes sum 3\n"),
    ("io n=2", f"io: n=2 blocks written and read back, crc32 {io_crc(2):#010x}\n"),
]


def boot_shell():
    machine = guests.boot_tinyos()
    result = machine.run(until=PROMPT)
    assert result.reason == "console", f"{result}; console:\n{machine.console.text}"
    assert machine.console.text == BANNER + PROMPT
    return machine


def type_line(machine, line: str) -> str:
    """Type ``line`` and Enter; what the console showed until the next prompt."""
    before = len(machine.console.text)
    machine.console.send(line + "\n")
    result = machine.run(until=PROMPT)
    assert result.reason == "console", f"{result}; console:\n{machine.console.text}"
    return machine.console.text[before:]


def test_the_shell_runs_builtins_and_programs():
    machine = boot_shell()
    for line, output in SHELL_SESSION:
        assert type_line(machine, line) == f"{line}\n{output}{PROMPT}", line


@pytest.mark.parametrize(
    ("how", "fault"),
    [
        ("read", "load page fault at va 0x00000000"),
        ("write", "store page fault at va 0x00000000"),
        ("exec", "instruction page fault at va 0x00000000 pc 0x00000000"),
        ("kernel", "load page fault at va 0x80200000"),
        ("stack", "store page fault at va 0x7ffbeffc"),
    ],
)
def test_a_killed_program_leaves_the_kernel_and_the_shell_running(how, fault):
    machine = boot_shell()
    lines = type_line(machine, f"segv {how}").splitlines()
    assert lines[0] == f"segv {how}"
    assert lines[1].startswith(f"segv: {how} at 0x")
    assert lines[2].startswith("tinyos: pid 2 (segv) killed: " + fault)
    assert lines[3:] == ["sh: segv: killed by signal 11 (SIGSEGV)", PROMPT]
    assert type_line(machine, "echo still here") == f"echo still here\nstill here\n{PROMPT}"
    assert type_line(machine, "ps").endswith("    1     0 running   sh\n" + PROMPT)


def test_exit_from_the_shell_shuts_the_system_down_with_its_status():
    machine = boot_shell()
    machine.console.send("exit 3\n")
    result = machine.run(until=INSTRUCTION_LIMIT)
    assert (result.reason, result.exit_code) == ("halt", 1)
    assert machine.console.text.endswith("exit 3\ntinyos: init exited with status 3\n")


def test_end_of_input_ends_the_shell_cleanly():
    machine = boot_shell()
    machine.console.send("\x04")  # Ctrl-D on an empty line
    result = machine.run(until=INSTRUCTION_LIMIT)
    assert (result.reason, result.exit_code) == ("halt", 0)
    assert machine.console.text == BANNER + PROMPT


# -- virtkit run, by name -----------------------------------------------------------------------


def test_virtkit_run_tinyos_with_a_command_line(capsys):
    assert cli.main(["run", "tinyos", "--cmdline", "init=forkwait n=20"]) == 0
    assert capsys.readouterr().out == BANNER + WORKLOADS["forkwait"][1] + "\n"


def test_virtkit_run_a_program_by_name_boots_tinyos_with_it_as_init(capsys):
    assert cli.main(["run", "syscall", "--cmdline", "n=100", "--firmware", "image"]) == 0
    assert capsys.readouterr().out == BANNER + WORKLOADS["syscall"][1] + "\n"


def test_virtkit_run_exits_with_the_shutdown_status(capsys):
    assert cli.main(["run", "tinyos", "--cmdline", "init=segv"]) == 1
    assert "tinyos: init killed by signal 11" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "tinyos", "--firmware", "none"], "tinyos runs on tinyos, an S-mode kernel"),
        (["run", "hello", "--cmdline", "init=sh"], "already makes hello tinyos's init"),
        (["run", "tinyos", "--cmdline", "init=h\u00e9llo"], "is not ASCII"),
        (["run", "tinyos", "--trace", "5"], "--trace works for bare-metal programs only"),
    ],
    ids=["no-firmware", "two-inits", "non-ascii", "trace"],
)
def test_virtkit_run_refuses_what_cannot_work(capsys, argv, message):
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err


# -- the catalogue and the images ----------------------------------------------------------------


def test_the_catalogue_lists_the_shipped_programs():
    shipped = {path.stem for path in (guests.IMAGES / "user").glob("*.elf")}
    assert shipped == set(guests.PROGRAMS)
    makefile = (guests.SOURCES / "user" / "Makefile").read_text()
    built = re.search(r"^PROGRAMS := (.*)$", makefile, re.MULTILINE).group(1).split()
    assert built == list(guests.PROGRAMS)
    for name in guests.PROGRAMS:
        assert guests.program(name).read_bytes()[:4] == b"\x7fELF"
    assert guests.tinyos().name == "tinyos.elf"


def test_an_unknown_program_name_lists_the_programs():
    with pytest.raises(guests.GuestNotFoundError, match="the programs are: hello, compute"):
        guests.program("nosuch")


def test_boot_tinyos_refuses_to_boot_without_firmware():
    with pytest.raises(ValueError, match="firmware must be 'python' or 'image'"):
        guests.boot_tinyos(firmware=None)


def test_every_image_is_package_data():
    """pyproject's package-data globs (relative to virtkit/) reach every shipped image."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["virtkit"]
    package = ROOT / "virtkit"
    packaged = {
        Path(match) for pattern in patterns for match in glob.glob(pattern, root_dir=package)
    }
    images = {path.relative_to(package) for path in guests.IMAGES.rglob("*") if path.is_file()}
    assert images and images <= packaged


def test_a_rebuild_reproduces_the_committed_images(tmp_path):
    if shutil.which(GCC) is None:
        pytest.skip(f"{GCC} is not installed (Debian: apt install gcc-riscv64-unknown-elf)")
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    source = tmp_path / "guests" / "src"
    shutil.copytree(guests.SOURCES, source, ignore=shutil.ignore_patterns("build"))
    subprocess.run(["make", "-s", "-C", str(source)], check=True, capture_output=True)
    rebuilt = tmp_path / "guests" / "images"
    committed = sorted(path.relative_to(guests.IMAGES) for path in guests.IMAGES.rglob("*.elf"))
    assert sorted(path.relative_to(rebuilt) for path in rebuilt.rglob("*.elf")) == committed
    for name in committed:
        assert (rebuilt / name).read_bytes() == (guests.IMAGES / name).read_bytes(), (
            f"{name} differs from a rebuild: run `make -C virtkit/guests/src` and commit "
            "virtkit/guests/images"
        )
