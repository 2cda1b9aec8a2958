/*
 * What every tinyos source file shares: the board's memory map, kernel limits, and the
 * functions each file offers the others, grouped by file (as xv6's defs.h does).
 */
#ifndef TINYOS_KERNEL_H
#define TINYOS_KERNEL_H

#include <stddef.h>
#include <stdint.h>

#include "abi.h"

/* -- the board: QEMU's virt memory map (hw/riscv/virt.c), which virtkit copies --------- */
#define RAM_BASE        0x80000000u
#define PLIC_BASE       0x0c000000u
#define UART0_BASE      0x10000000u
#define VIRTIO0_BASE    0x10001000u /* virtio-mmio slot 0 */
#define UART0_IRQ       10          /* PLIC interrupt sources */
#define VIRTIO0_IRQ     1

/* PLIC registers (RISC-V PLIC Specification 1.0.0, "Memory Map"). tinyos uses context
   1, which QEMU's virt wires to hart 0's supervisor external interrupt. */
#define PLIC_S_CONTEXT          1
#define PLIC_PRIORITY(source)   (PLIC_BASE + 4 * (source))
#define PLIC_ENABLE(context)    (PLIC_BASE + 0x2000 + 0x80 * (context))
#define PLIC_THRESHOLD(context) (PLIC_BASE + 0x200000 + 0x1000 * (context))
#define PLIC_CLAIM(context)     (PLIC_THRESHOLD(context) + 4)

/* -- pages (privileged spec 1.12, 4.3: Sv32 has 4 KiB pages) -------------------------- */
#define PAGE_SIZE       4096u
#define PAGE_SHIFT      12
#define PAGE_ROUND_DOWN(a) ((uint32_t)(a) & ~(PAGE_SIZE - 1))
#define PAGE_ROUND_UP(a)   (((uint32_t)(a) + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1))

/* -- limits ---------------------------------------------------------------------------- */
#define DEFAULT_MEM_MB      16
#define DEFAULT_QUANTUM_MS  10
#define MAX_ARGS            32      /* argv entries execve accepts, the NULL excluded */
#define MAX_ARG_BYTES       2048    /* their strings together, NULs included */
#define PROC_NAME_SIZE      16
/* The heap may grow up to the first kernel mapping above it, the PLIC's. */
#define USER_HEAP_LIMIT     PLIC_BASE
#define USER_STACK_BOTTOM   (USER_STACK_TOP - USER_STACK_MAX)

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

struct proc;
struct trapframe;

/* A process's user address space: its Sv32 root table and where its heap lies. */
struct addrspace {
    uint32_t *root;
    uint32_t heap_start;    /* the page after the program's last segment */
    uint32_t brk;           /* the end of the heap; pages below it appear on first touch */
};

/* Boot options from the command line (main.c). */
struct boot_options {
    const char *init;
    int argc;               /* init's argv, init's name first */
    const char *argv[MAX_ARGS + 1];
    unsigned mem_mb;
    unsigned quantum_ms;
};

/* printf.c */
void kprintf(const char *format, ...) __attribute__((format(printf, 1, 2)));
void panic(const char *message) __attribute__((noreturn));
void panic_trap(const char *message, unsigned pc, unsigned cause, unsigned tval)
    __attribute__((noreturn));

/* string.c */
void *memset(void *dst, int c, size_t n);
void *memcpy(void *dst, const void *src, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
void strlcpy(char *dst, const char *src, size_t size);
uint64_t udiv64(uint64_t n, uint32_t d, uint32_t *remainder);

/* kalloc.c */
void kalloc_init(uint32_t start, uint32_t end);
void *kalloc(void);           /* one page, contents undefined; NULL when none is left */
void *kzalloc(void);          /* one zeroed page */
void kfree(void *page);

/* vm.c */
void vm_init(uint32_t ram_end);
int as_create(struct addrspace *as);
void as_free_user(struct addrspace *as);
void as_destroy(struct addrspace *as);
int as_copy(struct addrspace *dst, const struct addrspace *src);
int as_map_zero_page(struct addrspace *as, uint32_t va, int executable, int writable);
int as_fault(struct addrspace *as, uint32_t va);
uint32_t as_set_brk(struct addrspace *as, uint32_t new_brk);
void as_activate(struct addrspace *as);
int copyin(struct addrspace *as, void *dst, uint32_t src_va, uint32_t size);
int copyout(struct addrspace *as, uint32_t dst_va, const void *src, uint32_t size);
int copyin_string(struct addrspace *as, char *dst, uint32_t src_va, uint32_t size);
int as_load(struct addrspace *as, uint32_t dst_va, const void *src, uint32_t size);

/* proc.c */
extern struct proc *current;
int proc_start_init(const struct boot_options *options);
void scheduler(void) __attribute__((noreturn));
void yield(void);
void sleep(const void *channel);
void wakeup(const void *channel);
int proc_fork(void);
void proc_exit(int status) __attribute__((noreturn));
int proc_wait(int pid, uint32_t status_va);
uint64_t proc_wake_sleepers(uint64_t now);
int proc_snapshot(uint32_t out_va, int max);

/* exec.c */
struct exec_args {            /* argv, copied into the kernel */
    int argc;
    const char *argv[MAX_ARGS + 1];
    char strings[MAX_ARG_BYTES];
};
int exec(struct proc *p, const char *name, const struct exec_args *args);
void exec_list_programs(void);

/* trap.c */
void user_trap(struct trapframe *tf);
void kernel_trap(void);
const char *cause_name(uint32_t cause);

/* syscall.c */
void syscall(struct trapframe *tf);

/* timer.c */
void timer_init(unsigned quantum_ms);
void timer_start_slice(void);
int timer_interrupt(void);   /* 1: the running process's slice is over */
int timer_sleep(const struct timespec *duration);
void timer_now(struct timespec *now);

/* console.c */
void console_write(const char *s, uint32_t n);
void console_input(char c);
int console_read(uint32_t dst_va, uint32_t n);

/* uart.c */
void uart_init(void);
void uart_write(const char *s, uint32_t n);
void uart_interrupt(void);

/* plic.c */
void plic_init(void);
void plic_interrupt(void);

/* virtio_blk.c */
void virtio_blk_init(void);
uint32_t virtio_blk_capacity(void);   /* in sectors; 0 without a disk */
int virtio_blk_rw(int write, uint32_t sector, uint32_t buf_va, uint32_t count);
void virtio_blk_interrupt(void);

#endif
