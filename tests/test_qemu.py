"""The same S-mode kernel on virtkit and on QEMU: the console output must be identical.

tests/guests/sbi_kernel.c is compiled here with Debian's riscv64-unknown-elf-gcc and
booted three ways: on virtkit with the Python SBI, on virtkit with the firmware image
(virtkit/machine/firmware/sbi.S), and on ``qemu-system-riscv32 -machine virt -bios``
with that same image. Each run gets a fresh copy of the same disk.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from virtkit import cli
from virtkit.machine.machine import Machine, firmware_image

GUESTS = Path(__file__).parent / "guests"
GCC = "riscv64-unknown-elf-gcc"
QEMU = "qemu-system-riscv32"
QEMU_TIMEOUT = 20  # seconds; the kernel shuts down after a few thousand instructions

DISK = b"virtkit disk\n".ljust(64 * 1024, b"\0")

EXPECTED = """\
kernel: hello from S-mode on hart 0
kernel: hello through SBI DBCN
sbi: spec version 2.0, implementation 0x0000564b
sbi: probe TIME 1, probe 0x12345678 0, unknown extension error -2, hart 0 status 0
tick 1
tick 2
tick 3
kernel: 3 timer interrupts
disk: sector 0 read, status 0, checksum 0x94f68d92
disk: sector 1 written, status 0
disk: sector 1 read back, status 0, checksum matches 0xe3cddf00
kernel: shutting down
"""


@pytest.fixture(scope="module")
def kernel(tmp_path_factory) -> Path:
    if shutil.which(GCC) is None:
        pytest.skip(f"{GCC} is not installed (Debian: apt install gcc-riscv64-unknown-elf)")
    output = tmp_path_factory.mktemp("guest") / "sbi_kernel.elf"
    subprocess.run(
        [
            GCC,
            "-march=rv32ima_zicsr_zifencei",
            "-mabi=ilp32",
            "-nostdlib",
            "-ffreestanding",
            "-O2",
            f"-T{GUESTS / 'kernel.ld'}",
            "-Wl,--no-warn-rwx-segments",
            "-o",
            str(output),
            str(GUESTS / "sbi_kernel.c"),
        ],
        check=True,
    )
    return output


EXPECTED_WITHOUT_DISK = EXPECTED.replace(
    EXPECTED[EXPECTED.index("disk: sector 0") : EXPECTED.index("kernel: shutting")],
    "no virtio-blk disk\n",
)


@pytest.mark.parametrize("firmware", ["python", "image"])
@pytest.mark.parametrize("disk", [DISK, None], ids=["disk", "no-disk"])
def test_kernel_runs_on_virtkit(kernel, firmware, disk):
    machine = Machine(firmware=firmware, disk=disk)
    machine.load(kernel)
    result = machine.run(until=5_000_000)
    assert (result.reason, result.exit_code) == ("halt", 0), str(result)
    assert machine.console.text == (EXPECTED if disk else EXPECTED_WITHOUT_DISK)


@pytest.mark.parametrize("disk", [DISK, None], ids=["disk", "no-disk"])
def test_kernel_runs_on_qemu_with_the_firmware_image(kernel, tmp_path, disk):
    if shutil.which(QEMU) is None:
        pytest.skip(f"{QEMU} is not installed (Debian: apt install qemu-system-misc)")
    bios = tmp_path / "sbi.elf"
    bios.write_bytes(firmware_image().to_elf())
    command = [QEMU, "-machine", "virt", "-bios", str(bios), "-kernel", str(kernel), "-nographic"]
    if disk:
        image = tmp_path / "disk.img"
        image.write_bytes(disk)
        # virt's virtio-mmio transports are legacy (version 1) unless told otherwise;
        # the disk goes into slot 0 (0x1000_1000), as on virtkit.
        command += [
            "-global", "virtio-mmio.force-legacy=false",
            "-drive", f"file={image},if=none,format=raw,id=disk0",
            "-device", "virtio-blk-device,drive=disk0,bus=virtio-mmio-bus.0",
        ]  # fmt: skip
    result = subprocess.run(
        command, capture_output=True, stdin=subprocess.DEVNULL, timeout=QEMU_TIMEOUT
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert result.stdout.decode("latin-1") == (EXPECTED if disk else EXPECTED_WITHOUT_DISK)


def test_virtkit_run_boots_the_kernel_with_a_disk(kernel, tmp_path, capsys):
    image = tmp_path / "disk.img"
    image.write_bytes(DISK)
    assert cli.main(["run", str(kernel), "--disk", str(image)]) == 0
    assert capsys.readouterr().out == EXPECTED
    assert image.read_bytes()[512:1024] == bytes((i * 7 + 3) & 0xFF for i in range(512))
