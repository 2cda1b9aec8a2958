/*
 * Command-line arguments of the form key=value, as the kernel passes on the words of
 * its boot command line (abi.h: `init=forkwait n=200` gives argv {"forkwait", "n=200"})
 * and as the shell passes on what was typed.
 */
#include "ulib.h"

int parse_number(const char *text, unsigned *value)
{
    unsigned base = 10, result = 0;
    if (text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
        base = 16;
        text += 2;
    }
    if (*text == '\0')
        return -1;
    for (; *text != '\0'; text++) {
        unsigned digit;
        if (*text >= '0' && *text <= '9')
            digit = *text - '0';
        else if (base == 16 && *text >= 'a' && *text <= 'f')
            digit = *text - 'a' + 10;
        else if (base == 16 && *text >= 'A' && *text <= 'F')
            digit = *text - 'A' + 10;
        else
            return -1;
        if (result > (0xffffffffu - digit) / base)
            return -1;          /* more than 32 bits */
        result = result * base + digit;
    }
    *value = result;
    return 0;
}

unsigned arg_n(int argc, char **argv, unsigned fallback, unsigned limit)
{
    const char *name = argc > 0 ? argv[0] : "?";
    unsigned n = fallback;
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "n=", 2) != 0) {
            eprintf("%s: unknown argument '%s' (usage: %s [n=<1..%u>], default n=%u)\n", name,
                    argv[i], name, limit, fallback);
            exit(2);
        }
        if (parse_number(argv[i] + 2, &n) != 0 || n < 1 || n > limit) {
            eprintf("%s: bad argument '%s': n must be a number from 1 to %u\n", name, argv[i],
                    limit);
            exit(2);
        }
    }
    return n;
}
