/*
 * The parts of an ELF32 executable the program loader reads: the file header and the
 * program headers (System V gABI, "ELF Header" and "Program Header"; RISC-V psABI,
 * "ELF Object Files" for e_machine).
 */
#ifndef TINYOS_ELF_H
#define TINYOS_ELF_H

#include <stdint.h>

#define ELF_MAGIC 0x464c457fu   /* "\x7fELF", read as a little-endian word */
#define ELFCLASS32 1
#define ELFDATA2LSB 1
#define ET_EXEC 2
#define EM_RISCV 243

struct elf32_header {
    uint32_t magic;
    uint8_t class, data, version, os_abi, abi_version, pad[7];
    uint16_t type, machine;
    uint32_t version2, entry, phoff, shoff, flags;
    uint16_t ehsize, phentsize, phnum, shentsize, shnum, shstrndx;
};

#define PT_LOAD 1
#define PF_X 1
#define PF_W 2

struct elf32_program_header {
    uint32_t type, offset, vaddr, paddr, filesz, memsz, flags, align;
};

#endif
