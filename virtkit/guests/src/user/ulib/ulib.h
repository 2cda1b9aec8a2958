/*
 * ulib: the whole run-time library of the tinyos user programs.
 *
 * A program is a static ELF linked at USER_BASE (abi.h). crt0.S takes argc and argv
 * from the initial stack and calls main; main's return value goes to exit. Everything
 * else a program needs is here: the system calls of abi.h, a small printf, string
 * helpers, and the parsing of `key=value` arguments.
 *
 * System call wrappers return what the kernel returns: a result >= 0, or a negative
 * errno (-EAGAIN, ...). There is no global errno: the error travels in the value, as
 * it does in the kernel, so a program can print it with errno_name().
 */
#ifndef ULIB_H
#define ULIB_H

#include "abi.h"

typedef unsigned int size_t;
typedef int ssize_t;
typedef int pid_t;
typedef unsigned int uint32_t;
typedef unsigned short uint16_t;
typedef unsigned char uint8_t;
typedef int int32_t;
typedef short int16_t;

#define NULL ((void *)0)
#define PAGE_SIZE 4096u
#define STDIN 0
#define STDOUT 1
#define STDERR 2

/* -- system calls (syscall.c) --------------------------------------------------------- */
ssize_t read(int fd, void *buf, size_t count);
ssize_t write(int fd, const void *buf, size_t count);
__attribute__((noreturn)) void exit(int code);
pid_t getpid(void);
pid_t getppid(void);
int sched_yield(void);
pid_t fork(void);
int execve(const char *program, char *const argv[], char *const envp[]);
pid_t wait4(pid_t pid, int *status, int options, void *rusage);
long brk(void *address);
int nanosleep(const struct timespec *request, struct timespec *remaining);
int clock_gettime(int clock, struct timespec *now);
int uname(struct utsname *name);
int blk_read(unsigned sector, void *buf, unsigned count);
int blk_write(unsigned sector, const void *buf, unsigned count);
int blk_capacity(void);
int tinyos_ps(struct tinyos_proc_info *out, int max);
long syscall6(long number, long a0, long a1, long a2, long a3, long a4, long a5);

/* -- errors --------------------------------------------------------------------------- */
const char *errno_name(long error);     /* errno_name(-EAGAIN) == "EAGAIN" */

/* -- formatted output (printf.c) ------------------------------------------------------ */
/* Conversions: %d %i %u %x %X %c %s %p %%, the flags '-' and '0', a field width, and
   an 'l' length that changes nothing (ilp32: long is int). printf writes each call's
   text with a single write(2), so lines of two processes never interleave. */
int printf(const char *format, ...) __attribute__((format(printf, 1, 2)));
int eprintf(const char *format, ...) __attribute__((format(printf, 1, 2)));
int snprintf(char *buf, size_t size, const char *format, ...)
    __attribute__((format(printf, 3, 4)));
int puts(const char *text);             /* text and a newline on stdout */

/* -- strings and memory (string.c) ---------------------------------------------------- */
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
char *strcpy(char *dst, const char *src);
void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int byte, size_t n);
int memcmp(const void *a, const void *b, size_t n);

/* -- arguments (args.c) --------------------------------------------------------------- */
/* parse_number: decimal or 0x-hex text to *value; 0 on success, -1 if not a number or
   larger than 0xffffffff. */
int parse_number(const char *text, unsigned *value);
/* arg_n: the value of the argument n=<N> (fallback without one), checked to lie in
   1..limit. Any other argument, or a bad N, prints the usage line and exits with 2. */
unsigned arg_n(int argc, char **argv, unsigned fallback, unsigned limit);

/* -- checksums (crc32.c) -------------------------------------------------------------- */
/* CRC-32 of IEEE 802.3 (the reflected polynomial 0xEDB88320, as zlib.crc32), bit by
   bit; crc32_update(0, ...) starts a new one. */
#define CRC32_POLY 0xEDB88320u
uint32_t crc32_update(uint32_t crc, const void *data, size_t length);

#endif
