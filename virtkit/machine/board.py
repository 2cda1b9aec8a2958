"""The memory map of QEMU's ``virt`` board, which virtkit's Machine copies.

The figures are those of ``virt_memmap[]`` and the IRQ numbers of
include/hw/riscv/virt.h in QEMU (hw/riscv/virt.c, QEMU 8.x), so a kernel built for
QEMU's ``virt`` finds every device where it expects it:

    VIRT_TEST     0x0010_0000  0x1000     sifive_test finisher (pass, fail, reset)
    VIRT_CLINT    0x0200_0000  0x1_0000   msip, mtimecmp, mtime (inside virtkit's core)
    VIRT_PLIC     0x0C00_0000  0x60_0000  interrupt controller (2 contexts for hart 0)
    VIRT_UART0    0x1000_0000  0x100      NS16550A, PLIC source UART0_IRQ = 10
    VIRT_VIRTIO   0x1000_1000  0x1000 * 8 virtio-mmio slot n at 0x1000_1000 + 0x1000 * n,
                                          PLIC source VIRTIO_IRQ + n = 1 + n
    VIRT_DRAM     0x8000_0000  RAM

OpenSBI's FW_JUMP firmware for ``virt`` jumps to the kernel at FW_JUMP_ADDR =
0x8020_0000 (platform/generic/objects.mk: FW_TEXT_START + 0x200000 on RV32), so S-mode
kernels are linked there and the firmware keeps the 2 MiB below.
"""

from __future__ import annotations

TEST_BASE = 0x0010_0000
TEST_SIZE = 0x1000

CLINT_BASE = 0x0200_0000
CLINT_SIZE = 0x1_0000

PLIC_BASE = 0x0C00_0000
PLIC_SIZE = 0x60_0000  # QEMU's VIRT_PLIC_SIZE(1 hart): room for 2 contexts of hart 0
PLIC_CONTEXT_M = 0  # hart 0, M-mode: drives mip.MEIP
PLIC_CONTEXT_S = 1  # hart 0, S-mode: drives mip.SEIP

UART0_BASE = 0x1000_0000
UART0_SIZE = 0x100
UART0_IRQ = 10

VIRTIO_BASE = 0x1000_1000
VIRTIO_SIZE = 0x1000  # one slot
VIRTIO_COUNT = 8
VIRTIO_IRQ = 1  # slot n raises PLIC source VIRTIO_IRQ + n

RAM_BASE = 0x8000_0000

KERNEL_BASE = 0x8020_0000  # where the firmware starts an S-mode kernel (FW_JUMP_ADDR)

# The boot command line: a NUL-terminated ASCII string of at most CMDLINE_SIZE - 1
# characters that the loader (Machine.load, or QEMU's `-device loader,file=...,
# addr=0x801ff000,force-raw=on`) puts in the last page below the kernel, which no
# firmware uses. The values are those of virtkit/guests/src/include/abi.h, the tinyos
# ABI, which defines them.
CMDLINE_BASE = 0x801F_F000
CMDLINE_SIZE = 0x1000


def virtio_base(slot: int) -> int:
    """The base address of virtio-mmio slot ``slot`` (0..7)."""
    if not 0 <= slot < VIRTIO_COUNT:
        raise ValueError(f"virtio-mmio slot must be 0..{VIRTIO_COUNT - 1}, got {slot}")
    return VIRTIO_BASE + VIRTIO_SIZE * slot


def virtio_irq(slot: int) -> int:
    """The PLIC source of virtio-mmio slot ``slot`` (0..7)."""
    virtio_base(slot)  # checks the slot
    return VIRTIO_IRQ + slot
