/*
 * The few C library functions the kernel needs, freestanding (C11 7.24). GCC may call
 * memset and memcpy on its own for structure copies and initializations, so these
 * two must exist under their standard names. The Makefile builds the kernel with
 * -fno-tree-loop-distribute-patterns, or GCC would turn the loops below back into
 * calls to themselves.
 */
#include "kernel.h"

/* Pages are the hot case (zeroing, fork's copies): aligned buffers go a word at a
   time, eight words per loop iteration. */
void *memset(void *dst, int c, size_t n)
{
    if (((uint32_t)dst | n) % 4 == 0) {
        uint32_t word = (uint8_t)c * 0x01010101u;
        uint32_t *d = dst;
        for (; n >= 32; n -= 32, d += 8) {
            d[0] = d[1] = d[2] = d[3] = word;
            d[4] = d[5] = d[6] = d[7] = word;
        }
        for (; n; n -= 4)
            *d++ = word;
        return dst;
    }
    for (uint8_t *d = dst; n; n--)
        *d++ = (uint8_t)c;
    return dst;
}

void *memcpy(void *dst, const void *src, size_t n)
{
    if (((uint32_t)dst | (uint32_t)src | n) % 4 == 0) {
        uint32_t *d = dst;
        const uint32_t *s = src;
        for (; n >= 32; n -= 32, d += 8, s += 8) {
            d[0] = s[0], d[1] = s[1], d[2] = s[2], d[3] = s[3];
            d[4] = s[4], d[5] = s[5], d[6] = s[6], d[7] = s[7];
        }
        for (; n; n -= 4)
            *d++ = *s++;
        return dst;
    }
    uint8_t *d = dst;
    for (const uint8_t *s = src; n; n--)
        *d++ = *s++;
    return dst;
}

size_t strlen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

int strcmp(const char *a, const char *b)
{
    while (*a && *a == *b)
        a++, b++;
    return (uint8_t)*a - (uint8_t)*b;
}

int strncmp(const char *a, const char *b, size_t n)
{
    for (; n; n--, a++, b++) {
        if (*a != *b || !*a)
            return (uint8_t)*a - (uint8_t)*b;
    }
    return 0;
}

/* Copy at most size - 1 characters and always terminate (as BSD's strlcpy). */
void strlcpy(char *dst, const char *src, size_t size)
{
    size_t n = 0;
    for (; n + 1 < size && src[n]; n++)
        dst[n] = src[n];
    dst[n] = '\0';
}

/* n / d and n % d for a 64-bit n: RV32's DIVU divides 32 by 32 bits, and the kernel
   links without libgcc's __udivdi3. Schoolbook binary long division. */
uint64_t udiv64(uint64_t n, uint32_t d, uint32_t *remainder)
{
    uint64_t quotient = 0, rest = 0;
    for (int bit = 63; bit >= 0; bit--) {
        rest = rest << 1 | ((n >> bit) & 1);
        if (rest >= d) {
            rest -= d;
            quotient |= 1ull << bit;
        }
    }
    *remainder = (uint32_t)rest;
    return quotient;
}
