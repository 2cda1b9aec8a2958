/*
 * Kernel messages: a small printf to the console, and panic.
 *
 * kprintf knows %d, %u, %x, %s, %c and %%, with an optional zero flag and width
 * (%08x). Output collects in a line buffer and goes to the UART a line at a time,
 * which on virtkit costs one device access per FIFO load rather than per character.
 */
#include <stdarg.h>

#include "arch.h"
#include "kernel.h"

static char line[128];
static uint32_t line_length;

static void flush(void)
{
    console_write(line, line_length);
    line_length = 0;
}

static void put(char c)
{
    line[line_length++] = c;
    if (c == '\n' || line_length == sizeof line)
        flush();
}

static void put_number(uint32_t value, unsigned base, int negative, int width, char pad)
{
    char digits[11];
    int n = 0;
    do {
        digits[n++] = "0123456789abcdef"[value % base];
        value /= base;
    } while (value);
    if (negative)
        digits[n++] = '-';
    while (width-- > n)
        put(pad);
    while (n)
        put(digits[--n]);
}

void kprintf(const char *format, ...)
{
    va_list args;
    va_start(args, format);
    for (const char *f = format; *f; f++) {
        if (*f != '%') {
            put(*f);
            continue;
        }
        char pad = ' ';
        int width = 0;
        if (*++f == '0')
            pad = *f++;
        while (*f >= '0' && *f <= '9')
            width = width * 10 + *f++ - '0';
        switch (*f) {
        case 'd': {
            int value = va_arg(args, int);
            put_number(value < 0 ? -(uint32_t)value : (uint32_t)value, 10, value < 0, width, pad);
            break;
        }
        case 'u':
            put_number(va_arg(args, unsigned), 10, 0, width, pad);
            break;
        case 'x':
            put_number(va_arg(args, unsigned), 16, 0, width, pad);
            break;
        case 's':
            for (const char *s = va_arg(args, const char *); *s; s++)
                put(*s);
            break;
        case 'c':
            put((char)va_arg(args, int));
            break;
        case '%':
            put('%');
            break;
        default:                    /* a format tinyos does not use: show it as it is */
            put('%');
            put(*f);
            break;
        }
    }
    va_end(args);
    flush();
}

/* A kernel bug: say where, then stop the machine with a failure status. */
void panic_trap(const char *message, unsigned pc, unsigned cause, unsigned tval)
{
    kprintf("tinyos: panic: %s\ntinyos: pc 0x%08x, cause 0x%x (%s), tval 0x%08x\n", message, pc,
            cause, cause_name(cause), tval);
    arch_shutdown(1);
}

/* A software-detected panic: the pc is the caller's, and there is no trap cause. */
void panic(const char *message)
{
    kprintf("tinyos: panic: %s\ntinyos: pc 0x%08x, cause none (kernel check)\n", message,
            (unsigned)__builtin_return_address(0));
    arch_shutdown(1);
}
