/*
 * The console: write goes to the UART; read goes through a line discipline, as in
 * xv6's console.c. Typed characters are echoed and collected in an input buffer;
 * backspace erases the last one; a line becomes readable when Enter (CR or LF)
 * arrives, or when the buffer is full. Ctrl-D makes what has been typed readable
 * without a newline; on an empty line that is a read of 0 bytes, end of file.
 */
#include "kernel.h"
#include "proc.h"

#define INPUT_SIZE 128
#define CTRL_D 0x04
#define BACKSPACE 0x08
#define DELETE 0x7f     /* what most terminals send for the backspace key */

/* A ring of typed characters: [read, written) is ready for read(), [written, edit)
   is the line being typed. The indices only grow; they are used modulo INPUT_SIZE. */
static struct {
    char buffer[INPUT_SIZE];
    uint32_t read, written, edit;
} input;

void console_write(const char *s, uint32_t n)
{
    uart_write(s, n);
}

/* A character from the UART (interrupt context). */
void console_input(char c)
{
    if (c == BACKSPACE || c == DELETE) {
        if (input.edit != input.written) {
            input.edit--;
            console_write("\b \b", 3);
        }
        return;
    }
    if (c == 0 || input.edit - input.read == INPUT_SIZE)
        return;     /* nothing to type, or no room until someone reads */
    if (c == '\r')
        c = '\n';
    if (c != CTRL_D)
        console_write(&c, 1);
    input.buffer[input.edit++ % INPUT_SIZE] = c;
    if (c == '\n' || c == CTRL_D || input.edit - input.read == INPUT_SIZE) {
        input.written = input.edit;
        wakeup(&input);
    }
}

/* read(0, ...): wait for a line, return at most one line and at most size bytes. */
int console_read(uint32_t dst_va, uint32_t size)
{
    char line[INPUT_SIZE];
    uint32_t n = 0;
    if (size > INPUT_SIZE)
        size = INPUT_SIZE;
    while (n < size) {
        while (input.read == input.written)
            sleep(&input);
        char c = input.buffer[input.read % INPUT_SIZE];
        if (c == CTRL_D) {
            if (n == 0)
                input.read++;   /* consumed: this read returns 0, end of file */
            break;              /* otherwise left for the next read to see */
        }
        input.read++;
        line[n++] = c;
        if (c == '\n')
            break;
    }
    if (copyout(&current->as, dst_va, line, n))
        return -EFAULT;
    return (int)n;
}
