/*
 * crt0: where every tinyos user program starts.
 *
 * The kernel enters _start in U-mode with sp at the initial stack that abi.h describes
 * after the System V psABI ("Process Initialization"): argc, then argv[0..argc-1],
 * NULL, an empty environment (NULL) and an auxiliary vector of AT_NULL only. _start
 * passes argc and argv to main and main's return value to exit, as C says (C11
 * 5.1.2.2.3: returning from main is calling exit with its value).
 */
    .section .text.start, "ax"
    .globl _start
_start:
    .option push
    .option norelax
    la   gp, __global_pointer$  /* for the linker's gp-relative accesses (RISC-V ELF psABI) */
    .option pop
    lw   a0, 0(sp)              /* argc */
    addi a1, sp, 4              /* argv */
    slli t0, a0, 2
    add  a2, a1, t0
    addi a2, a2, 4              /* envp: just after argv's NULL */
    andi sp, sp, -16            /* the psABI keeps sp 16-byte aligned at calls */
    li   fp, 0                  /* the outermost frame, for a debugger's backtrace */
    li   ra, 0
    call main
    call exit                   /* does not return */
