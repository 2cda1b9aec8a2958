/*
 * execve: replace a process's program with one from the kernel's built-in program
 * table.
 *
 * tinyos has no file system. The user programs are ELF32 executables linked into the
 * kernel image by programs.S, which the Makefile generates with one .incbin per
 * program and a table of {name, start, end}. exec finds the name there, checks the
 * ELF file (System V gABI, "ELF Header", "Program Header"), builds a new address space
 * from its PT_LOAD segments, and lays out the initial stack as Linux does (System V
 * psABI, "Process Initialization"; see abi.h). Only when all of that has worked does
 * the old address space go: a failed exec returns to the old program with an error.
 */
#include "elf.h"
#include "kernel.h"
#include "proc.h"

struct program {
    const char *name;
    const uint8_t *start;
    const uint8_t *end;
};

extern const struct program programs[];     /* programs.S */
extern const uint32_t program_count;

static const struct program *find_program(const char *name)
{
    for (uint32_t i = 0; i < program_count; i++) {
        if (strcmp(programs[i].name, name) == 0)
            return &programs[i];
    }
    return NULL;
}

void exec_list_programs(void)
{
    for (uint32_t i = 0; i < program_count; i++)
        kprintf(" %s", programs[i].name);
}

static const struct elf32_program_header *program_header(const struct elf32_header *elf, int i)
{
    const uint8_t *file = (const uint8_t *)elf;
    return (const void *)(file + elf->phoff + i * sizeof(struct elf32_program_header));
}

/* A segment to load: PT_LOAD and not empty (a linker may emit an empty one, at 0). */
static int is_loaded(const struct elf32_program_header *ph)
{
    return ph->type == PT_LOAD && ph->memsz != 0;
}

/* Whether the file is a RISC-V ELF32 executable whose segments all lie inside the
   file and inside the user part of the address space; *end is where the last ends. */
static int valid_elf(const struct elf32_header *elf, uint32_t size, uint32_t *end)
{
    if (size < sizeof *elf || elf->magic != ELF_MAGIC || elf->class != ELFCLASS32 ||
        elf->data != ELFDATA2LSB || elf->type != ET_EXEC || elf->machine != EM_RISCV ||
        elf->phentsize != sizeof(struct elf32_program_header) || elf->phoff % 4 ||
        elf->phoff > size || elf->phnum > (size - elf->phoff) / elf->phentsize)
        return 0;
    for (int i = 0; i < elf->phnum; i++) {
        const struct elf32_program_header *ph = program_header(elf, i);
        if (!is_loaded(ph))
            continue;
        if (ph->filesz > ph->memsz || ph->offset > size || ph->filesz > size - ph->offset ||
            ph->vaddr < USER_BASE || ph->vaddr > USER_HEAP_LIMIT ||
            ph->memsz > USER_HEAP_LIMIT - ph->vaddr)
            return 0;
        if (ph->vaddr + ph->memsz > *end)
            *end = ph->vaddr + ph->memsz;
    }
    return 1;
}

/* Map and fill every PT_LOAD segment. */
static int load_segments(struct addrspace *as, const struct elf32_header *elf)
{
    for (int i = 0; i < elf->phnum; i++) {
        const struct elf32_program_header *ph = program_header(elf, i);
        if (!is_loaded(ph))
            continue;
        uint32_t segment_end = ph->vaddr + ph->memsz;
        for (uint32_t va = PAGE_ROUND_DOWN(ph->vaddr); va < segment_end; va += PAGE_SIZE) {
            int error = as_map_zero_page(as, va, ph->flags & PF_X, ph->flags & PF_W);
            if (error)
                return error;
        }
        /* Bytes past filesz stay zero: that is .bss (gABI, "Program Header"). */
        int error = as_load(as, ph->vaddr, (const uint8_t *)elf + ph->offset, ph->filesz);
        if (error)
            return error;
    }
    return 0;
}

/* The initial stack, top down: the argument strings, then (16-byte aligned, at sp)
   argc, argv[0..argc-1], NULL, an empty environment (NULL) and an auxiliary vector
   holding only AT_NULL (two words). Returns the new sp in *sp_out. */
static int push_arguments(struct addrspace *as, const struct exec_args *args, uint32_t *sp_out)
{
    uint32_t block[1 + MAX_ARGS + 1 + 1 + 2];
    uint32_t words = 1 + args->argc + 1 + 1 + 2;
    uint32_t sp = USER_STACK_TOP;
    memset(block, 0, sizeof block);
    block[0] = args->argc;
    for (int i = args->argc - 1; i >= 0; i--) {
        uint32_t size = strlen(args->argv[i]) + 1;
        sp -= size;
        int error = copyout(as, sp, args->argv[i], size);
        if (error)
            return error;
        block[1 + i] = sp;
    }
    sp = (sp - 4 * words) & ~15u;   /* the psABI's stack alignment */
    *sp_out = sp;
    return copyout(as, sp, block, 4 * words);
}

int exec(struct proc *p, const char *name, const struct exec_args *args)
{
    const struct program *program = find_program(name);
    if (!program)
        return -ENOENT;
    const struct elf32_header *elf = (const struct elf32_header *)program->start;
    uint32_t end = USER_BASE;
    if (!valid_elf(elf, program->end - program->start, &end))
        return -ENOEXEC;

    struct addrspace as;
    uint32_t sp;
    int error = as_create(&as);
    if (error)
        return error;
    as.heap_start = as.brk = PAGE_ROUND_UP(end);    /* the page after the last segment */
    if ((error = load_segments(&as, elf)) || (error = push_arguments(&as, args, &sp))) {
        as_destroy(&as);
        return error;
    }

    /* Point of no return: the new program replaces the old. */
    struct addrspace old = p->as;
    p->as = as;
    if (p == current)
        as_activate(&p->as);    /* off the old tables before they are freed */
    if (old.root)
        as_destroy(&old);
    strlcpy(p->name, program->name, sizeof p->name);
    memset(p->tf, 0, sizeof *p->tf);
    p->tf->epc = elf->entry;
    p->tf->sp = sp;
    return 0;
}
