"""The `virtkit` command line.

Each subcommand is a `_cmd_<name>(args) -> int` function; build_parser() declares all
of them. Library modules are imported inside the command that needs them, so
`virtkit version` and `virtkit lab` start without compiling the hart.

Errors reach the user as one line, `virtkit: error: ...`, on stderr, never a traceback
(set VIRTKIT_DEBUG=1 to get one). Exit status: 0 success, 2 bad input (usage, a missing
or malformed file, an assembler error), 1 a failure while running.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from virtkit import __version__
from virtkit.lab import DEFAULT_PORT

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2

ADDRESS_LIMIT = 1 << 32  # RV32: addresses are 32-bit
DEFAULT_RAM_MB = 128  # `virtkit run --ram-mb`: QEMU virt's default


class CommandError(Exception):
    """An error a command reports to the user, with the exit status to leave with."""

    def __init__(self, message: str, status: int = EXIT_BAD_INPUT):
        super().__init__(message)
        self.status = status


def parse_address(text: str) -> int:
    """An argparse type: a 32-bit address in hex (0x8000_0000) or decimal."""
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid address {text!r}: write it in hex (0x80000000) or decimal (2147483648)"
        ) from None
    if not 0 <= value < ADDRESS_LIMIT:
        raise argparse.ArgumentTypeError(
            f"address {text} is outside the 32-bit address space (0 to 0xffffffff)"
        )
    return value


def parse_port(text: str) -> int:
    """An argparse type: a TCP port number."""
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}: expected a number") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port {value} is outside 1 to 65535")
    return value


def _positive_int(text: str) -> int:
    """An argparse type: a whole number >= 1 (underscores allowed: 1_000_000)."""
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive number")
    return value


def _existing_file(path: Path) -> Path:
    """path, if it names a readable file; otherwise a CommandError saying what is wrong."""
    if not path.exists():
        raise CommandError(f"{path}: no such file")
    if path.is_dir():
        raise CommandError(f"{path}: is a folder, expected a file")
    return path


def _cmd_version(args: argparse.Namespace) -> int:
    print(f"virtkit {__version__}")
    return EXIT_OK


def _cmd_lab(args: argparse.Namespace) -> int:
    from virtkit.lab import LabError, run_lab

    try:
        return run_lab(args.directory, port=args.port, open_browser=not args.no_browser)
    except LabError as exc:
        raise CommandError(str(exc)) from exc


def _cmd_asm(args: argparse.Namespace) -> int:
    source = _existing_file(args.source)
    suffix = ".bin" if args.binary else ".elf"
    output = args.output or source.with_suffix(suffix)
    if output.resolve() == source.resolve():
        raise CommandError(f"{output}: the output would overwrite the source; use -o")

    from virtkit.isa.asm import AssemblerError, assemble_file

    options = {} if args.base is None else {"base": args.base}
    try:
        program = assemble_file(source, **options)
    except AssemblerError as exc:
        raise CommandError(str(exc)) from exc
    image = program.to_binary() if args.binary else program.to_elf()
    output.write_bytes(image)
    return EXIT_OK


def _cmd_disasm(args: argparse.Namespace) -> int:
    path = _existing_file(args.file)

    from elftools.common.exceptions import ELFError

    from virtkit.isa.disasm import disassemble_file

    try:
        listing = disassemble_file(path, base=args.base, aliases=not args.no_aliases)
    except ELFError as exc:
        raise CommandError(f"{path}: not a valid ELF file: {exc}") from exc
    except ValueError as exc:
        raise CommandError(str(exc)) from exc
    sys.stdout.write(listing if listing.endswith("\n") else listing + "\n")
    return EXIT_OK


def _cmd_run(args: argparse.Namespace) -> int:
    if args.monitor == "hypervisor":
        return _run_hypervisor(args)
    if args.vm or args.scheduler or args.slice_ms:
        raise CommandError("--vm, --scheduler and --slice-ms go with --monitor hypervisor")
    if args.elf is None:
        raise CommandError("name the program to run: a file, or a guest virtkit ships")
    disk = None if args.disk is None else _existing_file(args.disk)
    if args.monitor is not None:
        return _run_monitored(args, disk)
    if args.bt or args.no_fastpath:
        option = "--bt" if args.bt else "--no-fastpath"
        raise CommandError(f"{option} sets up the monitor: use it with --monitor fullvirt")
    if not args.elf.exists():
        if _guest_name(args.elf) is not None:
            return _run_tinyos(args, _guest_name(args.elf), disk)
        from virtkit import guests

        raise CommandError(
            f"{args.elf}: no such file, nor a guest virtkit ships (tinyos, or one of its "
            f"programs: {', '.join(guests.PROGRAMS)})"
        )
    path = _existing_file(args.elf)

    from virtkit.machine.board import KERNEL_BASE
    from virtkit.machine.elf import ElfLoadError, read_elf

    try:
        image = read_elf(str(path))
    except ElfLoadError as exc:
        raise CommandError(str(exc)) from exc
    firmware = args.firmware or ("python" if image.entry >= KERNEL_BASE else "none")
    if firmware == "none" and disk is None:
        if args.cmdline:
            raise CommandError(
                "--cmdline is for kernels booted through SBI firmware (--firmware python "
                "or image), not for bare-metal programs"
            )
        return _run_bare_metal(args, image)
    if args.trace:
        raise CommandError("--trace works for bare-metal programs only (--firmware none)")
    return _run_machine(args, image, None if firmware == "none" else firmware, disk)


def _guest_name(path: Path) -> str | None:
    """The catalogue name ``path`` spells (a kernel or a user program), or None."""
    from virtkit import guests

    name = str(path)
    return name if name in guests.KERNELS or name in guests.PROGRAMS else None


def _run_tinyos(args: argparse.Namespace, name: str, disk: Path | None) -> int:
    """A shipped guest by name: tinyos itself, or tinyos with a user program as init."""
    from virtkit import guests

    if args.trace:
        raise CommandError("--trace works for bare-metal programs only (--firmware none)")
    if args.firmware == "none":
        raise CommandError(
            f"{name} runs on tinyos, an S-mode kernel that needs SBI firmware: "
            "use --firmware python (the default) or image"
        )
    cmdline = _tinyos_cmdline(name, args.cmdline)
    try:
        machine = guests.boot_tinyos(
            cmdline,
            ram_mb=args.ram_mb,
            firmware=args.firmware or "python",
            disk=disk,
        )
    except guests.GuestNotFoundError as exc:
        raise CommandError(str(exc), status=EXIT_FAILURE) from exc
    except ValueError as exc:
        raise CommandError(str(exc)) from exc
    return _run_on_console(args, machine)


def _tinyos_cmdline(name: str, cmdline: str) -> str:
    """tinyos's command line for ``virtkit run NAME``: a user program becomes init."""
    from virtkit import guests

    if name in guests.PROGRAMS:  # a user program runs as tinyos's first process
        if "init=" in cmdline:
            raise CommandError(
                f"`virtkit run {name}` already makes {name} tinyos's init; give --cmdline "
                "its arguments only (e.g. --cmdline n=100), or run `virtkit run tinyos`"
            )
        cmdline = f"init={name} {cmdline}".strip()
    return cmdline


def _run_monitored(args: argparse.Namespace, disk: Path | None) -> int:
    """An S-mode kernel (a file, or tinyos by name) under the full-virtualization monitor."""
    from virtkit import guests
    from virtkit.machine.board import KERNEL_BASE
    from virtkit.machine.elf import ElfLoadError, read_elf
    from virtkit.monitors.fullvirt import FullVirtMonitor

    if args.firmware is not None or args.trace:
        raise CommandError(
            "--firmware and --trace do not go with --monitor: the monitor is the guest's "
            "firmware, and the guest kernel runs deprivileged on the hart"
        )
    name = None if args.elf.exists() else _guest_name(args.elf)
    cmdline = args.cmdline
    if name is not None:
        image = guests.tinyos()
        cmdline = _tinyos_cmdline(name, cmdline)
        disk = disk or bytes(guests.BLANK_DISK_BYTES)
    else:
        path = _existing_file(args.elf)
        try:
            image = read_elf(str(path))
        except ElfLoadError as exc:
            raise CommandError(str(exc)) from exc
        if image.entry < KERNEL_BASE:
            raise CommandError(
                f"{path}: entry point {image.entry:#010x} is a bare-metal program's; the "
                f"fullvirt monitor runs S-mode kernels, linked at {KERNEL_BASE:#010x}"
            )
    try:
        monitor = FullVirtMonitor(
            ram_mb=args.ram_mb, disk=disk, translate=args.bt, fastpath=not args.no_fastpath
        )
        monitor.load(image, cmdline)
    except (ElfLoadError, ValueError) as exc:
        raise CommandError(str(exc)) from exc
    return _run_on_console(args, monitor)


def _run_hypervisor(args: argparse.Namespace) -> int:
    """Several tinyos VMs side by side under the type-1 hypervisor, consoles prefixed."""
    from virtkit.monitors.hypervisor import Hypervisor, HypervisorError
    from virtkit.monitors.hypervisor.vm import LinePrefixer

    if args.elf is not None or args.disk or args.cmdline or args.bt or args.no_fastpath:
        raise CommandError(
            "with --monitor hypervisor, give the VMs with --vm (e.g. --vm compute --vm "
            "'io n=8:weight=512'), not a program, --disk, --cmdline, --bt or --no-fastpath"
        )
    if args.firmware is not None or args.trace or args.ram_mb != DEFAULT_RAM_MB:
        raise CommandError(
            "--firmware, --trace and --ram-mb do not go with --monitor hypervisor "
            "(a VM's RAM is a --vm setting: ':ram-mb=N')"
        )
    if not args.vm:
        raise CommandError("--monitor hypervisor needs at least one --vm WORKLOAD")
    scheduler = args.scheduler or "credit"
    time_slice = None if args.slice_ms is None else args.slice_ms * 1000
    try:
        hypervisor = Hypervisor(scheduler, time_slice=time_slice)
        for spec in args.vm:
            hypervisor.add_vm(**_vm_options(spec))
    except (HypervisorError, ValueError) as exc:
        raise CommandError(str(exc)) from exc
    width = max(len(name) for name in hypervisor.vms)
    prefixers = [LinePrefixer(name, _write_out, width) for name in hypervisor.vms]
    for vm, prefixer in zip(hypervisor.vms.values(), prefixers, strict=True):
        vm.console.on_output = prefixer
    duration = -(-args.max_instructions // hypervisor.ticks_per_usec)  # in microseconds
    try:
        hypervisor.run(duration)
    finally:
        for prefixer in prefixers:
            prefixer.flush()
    print(hypervisor.report(), file=sys.stderr)
    failed = [vm for vm in hypervisor.vms.values() if vm.exit_code != 0]
    return EXIT_FAILURE if failed else EXIT_OK


def _write_out(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _vm_options(spec: str) -> dict:
    """``--vm "io n=8:weight=512:cap=50:name=disk:bt:virtual-clock"`` as add_vm's options
    (``:hw`` instead of ``:bt``: the hardware-assisted mechanism)."""
    workload, *settings = spec.split(":")
    options: dict = {"workload": workload.strip()}
    for setting in settings:
        key, _, value = setting.strip().partition("=")
        if key in ("weight", "cap", "ram-mb") and value.isdigit():
            options[key.replace("-", "_")] = int(value)
        elif key == "name" and value:
            options["name"] = value
        elif setting == "bt":
            options["mechanism"] = "binary-translation"
        elif setting == "hw":
            options["mechanism"] = "hardware"
        elif setting == "virtual-clock":
            options["guest_clock"] = "virtual"
        else:
            raise CommandError(
                f"--vm {spec!r}: unknown setting {setting!r}; after the workload come "
                "':weight=N', ':cap=N' (percent), ':ram-mb=N', ':name=NAME', ':bt', "
                "':hw', ':virtual-clock'"
            )
    return options


def _run_bare_metal(args: argparse.Namespace, image) -> int:
    """An M-mode program with HTIF and the test finisher, no firmware, no devices."""
    from virtkit.machine.baremetal import BareMetal, GuestError
    from virtkit.machine.elf import ElfLoadError

    try:
        machine = BareMetal(image, ram_size=args.ram_mb << 20)
    except ElfLoadError as exc:
        raise CommandError(str(exc)) from exc
    machine.on_console = lambda text: (sys.stdout.write(text), sys.stdout.flush())
    try:
        result = machine.run(
            args.max_instructions,
            trace=args.trace,
            on_trace=lambda line: print(line, file=sys.stderr),
        )
    except GuestError as exc:
        raise CommandError(str(exc), status=EXIT_FAILURE) from exc
    _print_stats(args, machine.hart)
    if result.exit_code is None:
        raise CommandError(f"the program did not finish: {result.exit}", status=EXIT_FAILURE)
    return result.exit_code & 0xFF


def _run_machine(args: argparse.Namespace, image, firmware: str | None, disk) -> int:
    """A kernel on the virt board, booted by ``firmware``, its console on the terminal."""
    from virtkit.machine.elf import ElfLoadError
    from virtkit.machine.machine import Machine

    try:
        machine = Machine(ram_mb=args.ram_mb, firmware=firmware, disk=disk)
        machine.load(image, args.cmdline)
    except (ElfLoadError, ValueError) as exc:
        raise CommandError(str(exc)) from exc
    return _run_on_console(args, machine)


def _run_on_console(args: argparse.Namespace, machine) -> int:
    """Run a booted machine with its console on the terminal; its exit status."""
    from virtkit.machine.machine import MachineError
    from virtkit.machine.sbi import FirmwareError
    from virtkit.monitors.fullvirt import MonitorError
    from virtkit.monitors.fullvirt.shadow_paging import ShadowPagingError

    machine.console.on_output = lambda text: (sys.stdout.write(text), sys.stdout.flush())
    try:
        with _terminal_input(machine.console):
            result = machine.run(until=args.max_instructions)
    except (FirmwareError, MachineError, MonitorError, ShadowPagingError) as exc:
        raise CommandError(str(exc), status=EXIT_FAILURE) from exc
    finally:
        machine.close()
    _print_stats(
        args,
        machine.hart,
        machine.report() if hasattr(machine, "report") else None,
        getattr(machine, "fastpath_exits", None),
    )
    if result.reason == "idle":
        why = "no timer is armed and no input is coming"
        if not sys.stdin.isatty():
            why += " (stdin is not a terminal, so virtkit does not read it)"
        raise CommandError(
            f"the guest waits for an interrupt that nothing can send ({result.exit}): {why}",
            status=EXIT_FAILURE,
        )
    if result.exit_code is None:
        raise CommandError(f"the program did not finish: {result}", status=EXIT_FAILURE)
    return result.exit_code & 0xFF


@contextlib.contextmanager
def _terminal_input(console):
    """Feed keystrokes to the guest's console while stdin is a terminal.

    The terminal is put in cbreak mode (keys arrive one at a time, Ctrl-C still stops
    virtkit) and restored afterwards. When stdin is not a terminal it is not read.
    """
    if not sys.stdin.isatty():
        yield
        return
    import termios
    import threading
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty.setcbreak(fd)
    console.interactive = True

    def read_keys():
        while data := os.read(fd, 1024):
            console.send(data.decode("latin-1"))

    threading.Thread(target=read_keys, daemon=True).start()
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _print_stats(
    args: argparse.Namespace, hart, report=None, fastpath_exits: int | None = None
) -> None:
    """The hart's statistics as JSON on stderr; under a monitor, its report too, and how
    many of its exits the exit fastpath served."""
    if not args.stats:
        return
    import json

    stats = dict(hart.stats)
    seconds = hart.host_seconds
    stats["host_seconds"] = round(seconds, 6)
    stats["mips"] = round(stats["instructions"] / seconds / 1e6, 3) if seconds else None
    if report is not None:
        stats["monitor"] = {
            "technique": report.label,
            "instructions_by_mode": report.instructions_by_mode,
            "exits_by_cause": report.exits_by_cause,
            "details": report.details,
            "cost_model": report.model.name,
            "modelled_cycles": report.cycles,
        }
        if fastpath_exits is not None:
            stats["monitor"]["fastpath_exits"] = fastpath_exits
    print(json.dumps(stats), file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    """The parser for every subcommand; each sets `func` to its _cmd_ function."""
    parser = argparse.ArgumentParser(
        prog="virtkit",
        description="Teach server virtualization on an emulated RISC-V machine.",
        epilog="Run `virtkit COMMAND --help` for the options of one command.",
    )
    parser.add_argument("--version", action="version", version=f"virtkit {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    lab = commands.add_parser(
        "lab",
        help="open the lessons in JupyterLab",
        description="Open the lessons (notebooks/ and exercises/) in JupyterLab. From a "
        "source checkout with no DIR, the checkout's own folders open. Otherwise the "
        "lessons are copied into DIR first, never overwriting a file you changed.",
    )
    lab.add_argument(
        "directory",
        metavar="DIR",
        type=Path,
        nargs="?",
        help="where your copy of the lessons lives (default: ./virtkit-lessons, or the "
        "checkout itself when virtkit runs from one)",
    )
    lab.add_argument(
        "--port",
        type=parse_port,
        default=DEFAULT_PORT,
        help="port for JupyterLab on 127.0.0.1 (default: %(default)s)",
    )
    lab.add_argument(
        "--no-browser", action="store_true", help="start the server without opening a browser"
    )
    lab.set_defaults(func=_cmd_lab)

    asm = commands.add_parser(
        "asm",
        help="assemble RISC-V source into an ELF file or a raw binary",
        description="Assemble RV32 source (FILE.s) into an ELF executable or a raw binary.",
    )
    asm.add_argument("source", metavar="FILE.s", type=Path, help="assembly source")
    asm.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        type=Path,
        help="output file (default: FILE.elf, or FILE.bin with --binary, next to FILE.s)",
    )
    asm.add_argument(
        "--binary", action="store_true", help="write the raw bytes of the image instead of ELF"
    )
    asm.add_argument(
        "--base",
        metavar="ADDR",
        type=parse_address,
        help="load address of the first byte, in hex or decimal (default: the assembler's)",
    )
    asm.set_defaults(func=_cmd_asm)

    disasm = commands.add_parser(
        "disasm",
        help="disassemble an ELF file or a raw binary",
        description="Print the RV32 disassembly of an ELF file or a raw binary.",
    )
    disasm.add_argument("file", metavar="FILE", type=Path, help="FILE.elf or FILE.bin")
    disasm.add_argument(
        "--base",
        metavar="ADDR",
        type=parse_address,
        help="address of the first byte of a raw binary, in hex or decimal",
    )
    disasm.add_argument(
        "--no-aliases",
        action="store_true",
        help="print base instructions (addi zero,zero,0) instead of pseudo-instructions (nop)",
    )
    disasm.set_defaults(func=_cmd_disasm)

    run = commands.add_parser(
        "run",
        help="run an RV32 ELF program (a bare-metal program or an S-mode kernel) or tinyos",
        description="Run an RV32 ELF program. A program linked at or above 0x80200000 is "
        "an S-mode kernel: it boots through SBI firmware on the QEMU-virt-compatible "
        "board (UART console on the terminal, keyboard input included when interactive; "
        "virtio-blk with --disk). Anything else runs bare-metal in M-mode from its "
        "entry point and ends through HTIF (a store to its `tohost` symbol) or the "
        "SiFive test finisher at 0x100000. The exit status is the program's. "
        "Instead of a file, name a shipped guest: `tinyos` boots the teaching kernel "
        "(with a blank 1 MiB disk unless --disk is given), and a tinyos user program "
        "(hello, compute, syscall, forkwait, pagefault, ctxswitch, io, sh, ...) boots "
        "tinyos with that program as its first process, e.g. "
        '`virtkit run tinyos --cmdline "init=forkwait n=200"` or '
        "`virtkit run forkwait --cmdline n=200`.",
    )
    run.add_argument(
        "elf",
        metavar="ELF",
        type=Path,
        nargs="?",
        help="the program: a file, or a guest name (none with --monitor hypervisor)",
    )
    run.add_argument(
        "--max-instructions",
        metavar="N",
        type=_positive_int,
        default=10_000_000_000,
        help="stop after N instructions (default: %(default)s)",
    )
    run.add_argument(
        "--stats",
        action="store_true",
        help="print one JSON object of statistics on stderr at the end",
    )
    run.add_argument(
        "--trace",
        metavar="N",
        type=_positive_int,
        default=0,
        help="print the first N instructions executed (pc, disassembly, register written)",
    )
    run.add_argument(
        "--ram-mb",
        metavar="MB",
        type=_positive_int,
        default=DEFAULT_RAM_MB,
        help="RAM size in MiB (default: %(default)s)",
    )
    run.add_argument(
        "--firmware",
        choices=("python", "image", "none"),
        help="python: the SBI in Python; image: the M-mode SBI firmware image (as on "
        "QEMU); none: no firmware, the program runs in M-mode (default: python for "
        "programs linked at or above 0x80200000, none otherwise)",
    )
    run.add_argument(
        "--disk",
        metavar="FILE",
        type=Path,
        help="attach FILE as a virtio-blk disk (virtio-mmio slot 0, 0x10001000); the "
        "guest's writes go to the file",
    )
    run.add_argument(
        "--cmdline",
        metavar="TEXT",
        default="",
        help="the kernel's boot command line, placed at 0x801ff000 (tinyos reads e.g. "
        '"init=forkwait n=200 quantum=10ms")',
    )
    run.add_argument(
        "--monitor",
        choices=("fullvirt", "hypervisor"),
        help="run the S-mode kernel under a monitor instead of on the board: fullvirt "
        "deprivileges it to U-mode with trap-and-emulate and shadow page tables "
        "(virtkit.monitors.fullvirt); --stats then adds the monitor's exits and cycles. "
        "hypervisor runs several tinyos VMs (--vm) side by side on one hart under a "
        "type-1 hypervisor (virtkit.monitors.hypervisor), consoles prefixed by VM name, "
        "and prints its report (shares, world switches, states) on stderr",
    )
    run.add_argument(
        "--vm",
        metavar="WORKLOAD",
        action="append",
        default=[],
        help="with --monitor hypervisor, one VM: a tinyos program and its arguments "
        "('compute n=20'), then optional settings ':weight=N', ':cap=N' (percent of the "
        "CPU), ':ram-mb=N' (default 16), ':name=NAME', ':bt' (binary translation), "
        "':hw' (hardware-assisted, the H extension), ':virtual-clock' (the guest's clock "
        "stops while it waits); repeat for more",
    )
    run.add_argument(
        "--scheduler",
        choices=("credit", "round-robin", "stride"),
        help="with --monitor hypervisor, the vCPU scheduler (default: credit)",
    )
    run.add_argument(
        "--slice-ms",
        metavar="MS",
        type=_positive_int,
        help="with --monitor hypervisor, the scheduler's time slice in milliseconds "
        "(default: the scheduler's own, 30 ms for credit and round robin, 10 ms for stride)",
    )
    run.add_argument(
        "--bt",
        action="store_true",
        help="with --monitor fullvirt: binary-translate the guest kernel's code instead "
        "of trapping on its privileged instructions",
    )
    run.add_argument(
        "--no-fastpath",
        action="store_true",
        help="with --monitor fullvirt: serve every exit on the monitor's full exit path, "
        "without the fastpath for plain CSR exits (the guest and the counts are the same; "
        "--stats shows how many exits the fastpath served)",
    )
    run.set_defaults(func=_cmd_run)

    bench = commands.add_parser(
        "bench",
        help="measure the hart's speed and print the figures",
        description="Measure MIPS (paging off, Sv32, and as a tinyos process), tinyos's "
        "boot time, Python exits per second, the pure-Python core, Unicorn on the same "
        "workload, warm start and cold compile time. Prints a table with the targets and "
        "writes the figures as JSON.",
    )
    from virtkit import bench as bench_module

    bench_module.add_arguments(bench)
    bench.set_defaults(func=bench_module.main)

    from virtkit.exercises.cli import add_commands as add_exercise_commands

    add_exercise_commands(commands)

    version = commands.add_parser("version", help="print the version of virtkit")
    version.set_defaults(func=_cmd_version)

    return parser


def _describe_os_error(exc: OSError) -> str:
    if exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror[0].lower()}{exc.strerror[1:]}"
    return str(exc)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line in argv (default sys.argv[1:]); return the exit status."""
    args = build_parser().parse_args(argv)
    if os.environ.get("VIRTKIT_DEBUG") == "1":
        return args.func(args)
    try:
        return args.func(args)
    except CommandError as exc:
        _report(str(exc))
        return exc.status
    except OSError as exc:
        _report(_describe_os_error(exc))
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        _report("interrupted")
        return 130
    except Exception as exc:
        _report(
            f"{type(exc).__name__}: {exc} "
            "(this looks like a bug in virtkit; set VIRTKIT_DEBUG=1 to see the traceback)"
        )
        return EXIT_FAILURE


def _report(message: str) -> None:
    print(f"virtkit: error: {message}", file=sys.stderr)
