"""The same S-mode kernel on virtkit and on QEMU: the console output must be identical.

tests/guests/sbi_kernel.c is compiled here with Debian's riscv64-unknown-elf-gcc and
booted three ways: on virtkit with the Python SBI, on virtkit with the firmware image
(virtkit/machine/firmware/sbi.S), and on ``qemu-system-riscv32 -machine virt -bios``
with that same image. Each run gets a fresh copy of the same disk.

The kernel waits for two keys on the UART (receive interrupts through the PLIC): the
tests type them once the prompt is out, since the firmware clears the UART's receive
FIFO at boot. A second build, with -DMALFORMED, also sends malformed virtio-blk
requests; it runs on virtkit only, because QEMU does not answer all of them with the
status the virtio spec asks for.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from virtkit import cli
from virtkit.machine.machine import Machine, firmware_image

GUESTS = Path(__file__).parent / "guests"
GCC = "riscv64-unknown-elf-gcc"
QEMU = "qemu-system-riscv32"
QEMU_TIMEOUT = 20  # seconds; the kernel shuts down after a few thousand instructions

DISK = b"virtkit disk\n".ljust(64 * 1024, b"\0")
PROMPT = "uart: type 2 keys\n"
KEYS = "ok"

EXPECTED = """\
kernel: hello from S-mode on hart 0
kernel: hello through SBI DBCN
sbi: spec version 2.0, implementation 0x0000564b
sbi: probe TIME 1, probe 0x12345678 0, unknown extension error -2, hart 0 status 0
tick 1
tick 2
tick 3
kernel: 3 timer interrupts
uart: type 2 keys
uart irq: got 'o'
uart irq: got 'k'
kernel: 2 keys through UART interrupts
disk: sector 0 read, status 0, checksum 0x94f68d92
disk: sector 1 written, status 0
disk: sector 1 read back, status 0, checksum matches 0xe3cddf00
kernel: shutting down
"""


# The -DMALFORMED build adds these lines before the shutdown (virtio 1.2, 5.2.6 and 2.1.2):
# VIRTIO_BLK_S_IOERR (1) for a buffer outside RAM and for a sector past the disk's end
# (128 sectors of 512 bytes), VIRTIO_BLK_S_UNSUPP (2) for an unknown type, and for a
# loop in the chain no status byte (still 0xff) but DEVICE_NEEDS_RESET (64) in the
# device status, next to ACKNOWLEDGE, DRIVER, DRIVER_OK and FEATURES_OK (15).
MALFORMED_LINES = """\
malformed: data buffer at 0x00001000 (outside RAM), status 1
malformed: read of sector 128 (past the end of the disk), status 1
malformed: request type 0x1234, status 2
malformed: descriptor loop, status byte 255, device status 0x0000004f (needs reset)
malformed: after a reset, sector 1 read, status 0, checksum 0xe3cddf00
"""
EXPECTED_MALFORMED = EXPECTED.replace(
    "kernel: shutting down\n", MALFORMED_LINES + "kernel: shutting down\n"
)


def build(tmp_path_factory, name: str, *defines: str) -> Path:
    if shutil.which(GCC) is None:
        pytest.skip(f"{GCC} is not installed (Debian: apt install gcc-riscv64-unknown-elf)")
    output = tmp_path_factory.mktemp("guest") / name
    subprocess.run(
        [
            GCC,
            *defines,
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


@pytest.fixture(scope="module")
def kernel(tmp_path_factory) -> Path:
    return build(tmp_path_factory, "sbi_kernel.elf")


@pytest.fixture(scope="module")
def malformed_kernel(tmp_path_factory) -> Path:
    return build(tmp_path_factory, "sbi_kernel_malformed.elf", "-DMALFORMED")


EXPECTED_WITHOUT_DISK = EXPECTED.replace(
    EXPECTED[EXPECTED.index("disk: sector 0") : EXPECTED.index("kernel: shutting")],
    "no virtio-blk disk\n",
)


def run_on_virtkit(kernel: Path, firmware: str, disk: bytes | None) -> str:
    """Boot ``kernel``, type KEYS once it asks for them, run it to its shutdown."""
    machine = Machine(firmware=firmware, disk=disk)
    machine.load(kernel)
    result = machine.run(until=PROMPT)
    assert result.reason == "console", f"{result}; output so far: {machine.console.text!r}"
    # Without input the kernel sleeps for ever: virtkit says so rather than hanging.
    assert machine.run(until=5_000_000).reason == "idle"
    machine.console.send(KEYS)
    result = machine.run(until=5_000_000)
    assert (result.reason, result.exit_code) == ("halt", 0), str(result)
    return machine.console.text


@pytest.mark.parametrize("firmware", ["python", "image"])
@pytest.mark.parametrize("disk", [DISK, None], ids=["disk", "no-disk"])
def test_kernel_runs_on_virtkit(kernel, firmware, disk):
    output = run_on_virtkit(kernel, firmware, disk)
    assert output == (EXPECTED if disk else EXPECTED_WITHOUT_DISK)


@pytest.mark.parametrize("firmware", ["python", "image"])
def test_malformed_virtio_requests_get_the_status_the_spec_asks_for(malformed_kernel, firmware):
    assert run_on_virtkit(malformed_kernel, firmware, DISK) == EXPECTED_MALFORMED


def run_qemu(command: list[str]) -> subprocess.CompletedProcess:
    """Run QEMU with the UART on stdio; type KEYS once the kernel has printed PROMPT."""
    process = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    output = b""
    deadline = time.monotonic() + QEMU_TIMEOUT
    try:
        while PROMPT.encode() not in output:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or process.poll() is not None:
                break  # the assertions on the output say what went wrong
            if select.select([process.stdout], [], [], remaining)[0]:
                output += os.read(process.stdout.fileno(), 4096)
        stdout, stderr = process.communicate(KEYS.encode(), timeout=QEMU_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
    return subprocess.CompletedProcess(command, process.returncode, output + stdout, stderr)


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
    result = run_qemu(command)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert result.stdout.decode("latin-1") == (EXPECTED if disk else EXPECTED_WITHOUT_DISK)


@contextlib.contextmanager
def typist(console):
    """Stands in for cli._terminal_input: types KEYS once the prompt is out."""
    show = console.on_output

    def on_output(text):
        show(text)
        if console.text.endswith(PROMPT):
            console.send(KEYS)

    console.on_output = on_output
    yield


def test_virtkit_run_boots_the_kernel_with_a_disk(kernel, tmp_path, capsys, monkeypatch):
    image = tmp_path / "disk.img"
    image.write_bytes(DISK)
    monkeypatch.setattr(cli, "_terminal_input", typist)
    assert cli.main(["run", str(kernel), "--disk", str(image)]) == 0
    assert capsys.readouterr().out == EXPECTED
    assert image.read_bytes()[512:1024] == bytes((i * 7 + 3) & 0xFF for i in range(512))


def test_virtkit_run_reads_the_keyboard_when_stdin_is_a_terminal(kernel):
    """`virtkit run` on a terminal: keys typed after the prompt reach the guest's UART."""
    import pty
    import sys

    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "virtkit", "run", str(kernel)],
        stdin=terminal,
        stdout=terminal,
        stderr=subprocess.PIPE,
    )
    os.close(terminal)
    output = b""
    deadline = time.monotonic() + 120
    typed = False
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(controller, 4096)
                except OSError:  # the child closed the terminal: it has exited
                    break
                if not chunk:
                    break
                output += chunk
            if not typed and PROMPT.strip().encode() in output:
                os.write(controller, KEYS.encode())
                typed = True
            if process.poll() is not None and not ready:
                break
        status = process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
        os.close(controller)
    text = output.decode("latin-1").replace("\r\n", "\n")
    assert typed, text
    assert status == 0, process.stderr.read().decode()
    for key in KEYS:
        assert f"uart irq: got '{key}'" in text, text
