/*
 * The NS16550A UART at 0x1000_0000 (TI PC16550D datasheet, section 8 "Registers").
 *
 * The firmware has set the line up (8N1). tinyos enables the FIFOs, and the "received
 * data available" interrupt, which reaches the kernel as PLIC source 10. Transmit is
 * polled: when LSR.THRE says the transmit FIFO is empty, up to 16 bytes go in at once.
 */
#include "arch.h"
#include "kernel.h"

#define UART_RBR 0              /* receiver buffer (read) */
#define UART_THR 0              /* transmitter holding (write) */
#define UART_IER 1
#define UART_FCR 2
#define UART_LSR 5
#define UART_IER_ERBFI 0x01     /* interrupt when received data is available */
#define UART_FCR_FIFOE 0x01     /* FIFOs on; receive trigger level 1 byte (bits 7:6 = 0) */
#define UART_LSR_DR 0x01        /* data ready: RBR holds a received byte */
#define UART_LSR_THRE 0x20      /* in FIFO mode: the transmit FIFO is empty */
#define UART_FIFO_DEPTH 16

static uint8_t read_register(uint32_t offset)
{
    return arch_read8(UART0_BASE + offset);
}

static void write_register(uint32_t offset, uint8_t value)
{
    arch_write8(UART0_BASE + offset, value);
}

void uart_init(void)
{
    write_register(UART_FCR, UART_FCR_FIFOE);
    write_register(UART_IER, UART_IER_ERBFI);
}

void uart_write(const char *s, uint32_t n)
{
    while (n) {
        while (!(read_register(UART_LSR) & UART_LSR_THRE))
            ;
        uint32_t chunk = n < UART_FIFO_DEPTH ? n : UART_FIFO_DEPTH;
        for (uint32_t i = 0; i < chunk; i++)
            write_register(UART_THR, (uint8_t)s[i]);
        s += chunk;
        n -= chunk;
    }
}

/* The interrupt line stays up while RBR holds a byte: take them all. */
void uart_interrupt(void)
{
    while (read_register(UART_LSR) & UART_LSR_DR)
        console_input((char)read_register(UART_RBR));
}
