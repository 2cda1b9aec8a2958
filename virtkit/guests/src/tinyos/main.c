/*
 * tinyos: a small teaching kernel for the RISC-V virt board. Boot.
 *
 * The SBI firmware starts the kernel in S-mode at 0x8020_0000 (entry.S, then kmain
 * with a0 = hartid). kmain reads the command line the loader left at CMDLINE_BASE
 * (abi.h), sets up the page allocator, the kernel page table, traps and devices,
 * prints one line about the machine, starts init (pid 1), and becomes the scheduler.
 *
 * Reading order for a student: main.c, then proc.c and trap.c, vm.c, syscall.c; the
 * privileged instructions are all in arch.c and entry.S.
 */
#include "arch.h"
#include "kernel.h"

extern char kernel_end[];                   /* kernel.ld: the first page after the image */

static char cmdline[CMDLINE_SIZE];

/* "<digits><unit>", e.g. "10ms", into *value; 0 when the word has another form. */
static int parse_amount(const char *text, const char *unit, unsigned *value)
{
    unsigned n = 0;
    const char *p = text;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (n > 100000)
            return 0;   /* far beyond anything sensible, and no overflow below */
        n = n * 10 + (unsigned)(*p - '0');
    }
    if (p == text || strcmp(p, unit) != 0 || n == 0)
        return 0;
    *value = n;
    return 1;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Split the command line into words (abi.h: init=, quantum=, mem=; every other word is
   an argument for init). A malformed option is reported and its default kept. */
static void parse_cmdline(struct boot_options *options)
{
    memcpy(cmdline, (const void *)CMDLINE_BASE, CMDLINE_SIZE);
    cmdline[CMDLINE_SIZE - 1] = '\0';
    options->init = "sh";
    options->argc = 1;
    options->mem_mb = DEFAULT_MEM_MB;
    options->quantum_ms = DEFAULT_QUANTUM_MS;
    char *p = cmdline;
    for (;;) {
        while (is_space(*p))
            p++;
        if (!*p)
            break;
        char *word = p;
        while (*p && !is_space(*p))
            p++;
        if (*p)
            *p++ = '\0';
        if (strncmp(word, "init=", 5) == 0) {
            options->init = word + 5;
        } else if (strncmp(word, "quantum=", 8) == 0) {
            if (!parse_amount(word + 8, "ms", &options->quantum_ms))
                kprintf("tinyos: ignoring '%s': expected quantum=<N>ms\n", word);
        } else if (strncmp(word, "mem=", 4) == 0) {
            if (!parse_amount(word + 4, "M", &options->mem_mb) || options->mem_mb > 2047)
                kprintf("tinyos: ignoring '%s': expected mem=<N>M, N below 2048\n", word);
        } else if (options->argc < MAX_ARGS) {
            options->argv[options->argc++] = word;
        } else {
            kprintf("tinyos: ignoring '%s': init takes at most %d arguments\n", word, MAX_ARGS);
        }
    }
    options->argv[0] = options->init;
    options->argv[options->argc] = NULL;
}

void kmain(unsigned hartid)
{
    struct boot_options options;
    uart_init();
    parse_cmdline(&options);

    uint32_t ram_end = RAM_BASE + (options.mem_mb << 20);
    uint32_t minimum = PAGE_ROUND_UP((uint32_t)kernel_end) + 64 * PAGE_SIZE;
    if (ram_end < minimum) {
        kprintf("tinyos: mem=%uM is too small for the kernel; using %uM\n", options.mem_mb,
                DEFAULT_MEM_MB);
        options.mem_mb = DEFAULT_MEM_MB;
        ram_end = RAM_BASE + (DEFAULT_MEM_MB << 20);
    }
    kalloc_init((uint32_t)kernel_end, ram_end);
    vm_init(ram_end);
    arch_trap_init();
    plic_init();
    virtio_blk_init();
    timer_init(options.quantum_ms);

    kprintf("tinyos: hart %u, %uM RAM, quantum %ums, ", hartid, options.mem_mb,
            options.quantum_ms);
    if (virtio_blk_capacity())
        kprintf("disk %u sectors\n", (unsigned)virtio_blk_capacity());
    else
        kprintf("no disk\n");

    int error = proc_start_init(&options);
    if (error == -ENOENT) {
        kprintf("tinyos: init=%s: no such program; the programs are:", options.init);
        exec_list_programs();
        kprintf("\n");
    } else if (error) {
        kprintf("tinyos: cannot start init=%s: error %d\n", options.init, -error);
    }
    if (error)
        arch_shutdown(1);
    scheduler();
}
