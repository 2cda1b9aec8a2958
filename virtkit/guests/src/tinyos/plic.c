/*
 * The platform-level interrupt controller (RISC-V PLIC Specification 1.0.0).
 *
 * Devices raise numbered sources; the PLIC signals a context (QEMU virt: context 1 is
 * hart 0 in S-mode, which sets sip.SEIP) when an enabled source with a priority above
 * the context's threshold is pending. The kernel claims the source (a read of the
 * claim register says which one), serves the device, and completes it (writes the
 * number back) so that the source can interrupt again ("Interrupt Claim Process",
 * "Interrupt Completion").
 */
#include "arch.h"
#include "kernel.h"

void plic_init(void)
{
    arch_write32(PLIC_PRIORITY(UART0_IRQ), 1);    /* priority 0 would mean "never" */
    arch_write32(PLIC_PRIORITY(VIRTIO0_IRQ), 1);
    arch_write32(PLIC_ENABLE(PLIC_S_CONTEXT), 1u << UART0_IRQ | 1u << VIRTIO0_IRQ);
    arch_write32(PLIC_THRESHOLD(PLIC_S_CONTEXT), 0);
}

void plic_interrupt(void)
{
    uint32_t source;
    while ((source = arch_read32(PLIC_CLAIM(PLIC_S_CONTEXT))) != 0) {
        if (source == UART0_IRQ)
            uart_interrupt();
        else if (source == VIRTIO0_IRQ)
            virtio_blk_interrupt();
        arch_write32(PLIC_CLAIM(PLIC_S_CONTEXT), source);
    }
}
