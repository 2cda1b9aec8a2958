/*
 * A small printf: the conversions a result line needs, formatted into a buffer that
 * goes out with one write(2).
 *
 * One write per call keeps a line whole when two processes print at once (the kernel
 * copies one write to the UART in one piece). Text longer than PRINTF_BUFFER is cut
 * there and ends with "...", so a runaway format cannot overrun the stack.
 */
#include <stdarg.h>

#include "ulib.h"

#define PRINTF_BUFFER 256

struct out {
    char *buf;
    size_t size;                /* room in buf, the final NUL included */
    size_t length;              /* characters produced, also those that did not fit */
};

static void put(struct out *out, char c)
{
    if (out->length + 1 < out->size)
        out->buf[out->length] = c;
    out->length++;
}

/* `digits` (most significant first, `count` of them) padded to `width`. */
static void put_field(struct out *out, const char *digits, int count, int width, int left,
                      char pad)
{
    if (!left)
        for (int i = count; i < width; i++)
            put(out, pad);
    for (int i = 0; i < count; i++)
        put(out, digits[i]);
    if (left)
        for (int i = count; i < width; i++)
            put(out, ' ');
}

static void put_number(struct out *out, unsigned value, unsigned base, int negative, int upper,
                       int width, int left, char pad)
{
    const char *symbols = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    char reversed[12], digits[12];
    int count = 0;
    do {
        reversed[count++] = symbols[value % base];
        value /= base;
    } while (value != 0);
    int n = 0;
    if (negative) {
        if (pad == '0')         /* -0042: the sign goes before the zeros */
            put(out, '-'), width--;
        else
            digits[n++] = '-';
    }
    while (count > 0)
        digits[n++] = reversed[--count];
    put_field(out, digits, n, width, left, pad);
}

static int format(struct out *out, const char *fmt, va_list args)
{
    for (; *fmt != '\0'; fmt++) {
        if (*fmt != '%') {
            put(out, *fmt);
            continue;
        }
        fmt++;
        int left = 0;
        char pad = ' ';
        for (;; fmt++) {
            if (*fmt == '-')
                left = 1;
            else if (*fmt == '0')
                pad = '0';
            else
                break;
        }
        int width = 0;
        while (*fmt >= '0' && *fmt <= '9')
            width = width * 10 + (*fmt++ - '0');
        while (*fmt == 'l')
            fmt++;
        if (left)
            pad = ' ';
        switch (*fmt) {
        case 'd':
        case 'i': {
            int value = va_arg(args, int);
            unsigned magnitude = value < 0 ? 0u - (unsigned)value : (unsigned)value;
            put_number(out, magnitude, 10, value < 0, 0, width, left, pad);
            break;
        }
        case 'u':
            put_number(out, va_arg(args, unsigned), 10, 0, 0, width, left, pad);
            break;
        case 'x':
        case 'X':
            put_number(out, va_arg(args, unsigned), 16, 0, *fmt == 'X', width, left, pad);
            break;
        case 'p':
            put(out, '0');
            put(out, 'x');
            put_number(out, (unsigned)va_arg(args, void *), 16, 0, 0, 8, 0, '0');
            break;
        case 'c': {
            char c = (char)va_arg(args, int);
            put_field(out, &c, 1, width, left, ' ');
            break;
        }
        case 's': {
            const char *s = va_arg(args, const char *);
            if (s == NULL)
                s = "(null)";
            put_field(out, s, (int)strlen(s), width, left, ' ');
            break;
        }
        case '%':
            put(out, '%');
            break;
        case '\0':              /* a lone % at the end */
            put(out, '%');
            fmt--;
            break;
        default:                /* an unknown conversion is shown as written */
            put(out, '%');
            put(out, *fmt);
            break;
        }
    }
    if (out->size > 0)
        out->buf[out->length < out->size ? out->length : out->size - 1] = '\0';
    return (int)out->length;
}

int snprintf(char *buf, size_t size, const char *fmt, ...)
{
    struct out out = {buf, size, 0};
    va_list args;
    va_start(args, fmt);
    int length = format(&out, fmt, args);
    va_end(args);
    return length;
}

static int print_to(int fd, const char *fmt, va_list args)
{
    char buf[PRINTF_BUFFER];
    struct out out = {buf, sizeof buf, 0};
    int length = format(&out, fmt, args);
    size_t shown = out.length < sizeof buf ? out.length : sizeof buf - 1;
    if (out.length >= sizeof buf)
        memcpy(buf + sizeof buf - 5, "...\n", 4);
    write(fd, buf, shown);
    return length;
}

int printf(const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    int length = print_to(STDOUT, fmt, args);
    va_end(args);
    return length;
}

int eprintf(const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    int length = print_to(STDERR, fmt, args);
    va_end(args);
    return length;
}

int puts(const char *text)
{
    return printf("%s\n", text);
}
