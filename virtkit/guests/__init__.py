"""The guest software virtkit ships, prebuilt: the tinyos kernel and its user programs.

    from virtkit import guests
    guests.tinyos()                      # Path of images/tinyos.elf
    guests.program("forkwait")           # Path of images/user/forkwait.elf
    machine = guests.boot_tinyos("init=forkwait n=200")
    machine.run()                        # until tinyos shuts down
    machine.console.text                 # ... "forkwait: n=200 children forked ..."

The images are built from src/ with `make -C virtkit/guests/src` (Debian's
riscv64-unknown-elf-gcc; the build is reproducible and tests/test_tinyos.py checks that a
rebuild gives the committed bytes), so using them needs no cross compiler. tinyos embeds
every program of ``PROGRAMS``; the copies in images/user/ are there to read, disassemble
and run elsewhere.

What the kernel and the programs agree on (system calls, the initial stack, the boot
command line) is src/include/abi.h. The boot command line names the first process and
its arguments: "init=compute n=8" runs compute with argv {"compute", "n=8"}; without
init= the first process is the shell, sh.
"""

from __future__ import annotations

import os
from pathlib import Path

IMAGES = Path(__file__).resolve().parent / "images"
SOURCES = Path(__file__).resolve().parent / "src"

# The user programs built into tinyos, each in src/user/<name>.c, whose opening comment
# says what it measures and the line it prints. The workloads come first.
WORKLOADS = ("compute", "syscall", "forkwait", "pagefault", "ctxswitch", "io")
PROGRAMS = ("hello", *WORKLOADS, "sh", "segv", "forkbomb", "badcalls")
KERNELS = ("tinyos",)

# The disk boot_tinyos attaches when it is given none: blank, 1 MiB (2048 sectors).
BLANK_DISK_BYTES = 1 << 20


class GuestNotFoundError(LookupError):
    """A guest name that is not in the catalogue, or an image missing from the install."""


def tinyos() -> Path:
    """The tinyos kernel image (an S-mode ELF linked at 0x8020_0000)."""
    return _existing(IMAGES / "tinyos.elf")


def program(name: str) -> Path:
    """The image of the user program ``name`` (one of PROGRAMS), linked at USER_BASE."""
    if name not in PROGRAMS:
        raise GuestNotFoundError(
            f"no user program named {name!r}; the programs are: {', '.join(PROGRAMS)}"
        )
    return _existing(IMAGES / "user" / f"{name}.elf")


def _existing(path: Path) -> Path:
    if not path.is_file():
        raise GuestNotFoundError(
            f"{path} is missing: this copy of virtkit lacks its guest images; reinstall "
            "it, or build them with `make -C virtkit/guests/src` in a source checkout"
        )
    return path


def boot_tinyos(
    cmdline: str = "",
    *,
    ram_mb: int = 128,
    firmware: str = "python",
    disk: str | os.PathLike | bytes | bytearray | bool | None = None,
):
    """A Machine with tinyos loaded and booted with ``cmdline``, ready to ``run()``.

    ``firmware`` is "python" (the SBI in Python) or "image" (the assembly SBI firmware
    that also boots tinyos on QEMU). ``disk`` is the virtio-blk disk: its bytes or a
    file; by default a blank one of BLANK_DISK_BYTES, which the io program writes on;
    False for a board without a disk. ``ram_mb`` is the board's RAM (QEMU virt's
    default of 128 MiB); tinyos uses the first 16 MiB of it unless told mem=<N>M.
    """
    from virtkit.machine.machine import Machine

    if firmware not in ("python", "image"):
        raise ValueError(
            f"firmware must be 'python' or 'image' to boot tinyos, got {firmware!r} "
            "(tinyos is an S-mode kernel: it needs SBI firmware)"
        )
    if disk is None or disk is True:
        disk = bytes(BLANK_DISK_BYTES)
    elif disk is False:
        disk = None
    machine = Machine(ram_mb=ram_mb, firmware=firmware, disk=disk)
    machine.load(tinyos(), cmdline)
    return machine
