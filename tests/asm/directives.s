# Directives, expressions, local labels and the relocation operators.
    .file   "directives.s"
    .file   1 "directives.c"
    .option push
    .option norelax
    .option nopic
    .option norvc
    .attribute arch, "rv32i2p1_m2p0_a2p1_zicsr2p0_zifencei2p0_h1p0"
    .ident  "virtkit corpus"
    .set    COUNT, 3
    .equ    SIZE, COUNT * 4
    LIMIT = SIZE << 2
    .set    COUNT, COUNT + 1
    .option pop

    .text
    .global _start
    .globl  main, helper
    .type   _start, @function
_start:
    .cfi_startproc
    .loc    1 10 0
    lui     a0, %hi(value)
    addi    a0, a0, %lo(value)
    lw      a1, %lo(value)(a0)
    sw      a1, %lo(value + 4)(a0)
.Lpc:
    auipc   a2, %pcrel_hi(value)
    addi    a2, a2, %pcrel_lo(.Lpc)
1:  auipc   a3, %pcrel_hi(buffer + 16)
    lw      a3, %pcrel_lo(1b)(a3)
    sw      a1, %pcrel_lo(1b)(a3)
    addi    a4, zero, COUNT
    addi    a4, zero, SIZE
    addi    a4, zero, LIMIT
    addi    a5, zero, 1 + 2 * 3
    addi    a5, zero, (1 + 2) * 3
    addi    a5, zero, 1 + 2 << 3
    addi    a5, zero, 100 / 7
    addi    a5, zero, -100 / 7
    addi    a5, zero, 100 % 7
    addi    a5, zero, -100 % 7
    addi    a5, zero, 0x0f0 & 0x3c
    addi    a5, zero, 0x0f0 | 0x3c
    addi    a5, zero, 0x0f0 ^ 0x3c
    addi    a5, zero, ~5
    addi    a5, zero, -(3 - 10)
    addi    a5, zero, 256 >> 4
    addi    a5, zero, 010
    addi    a5, zero, 0b1011
    addi    a5, zero, 'z'
    addi    a5, zero, '\n'
main:
helper: nop; nop   # two statements on one line
    /* a block comment */ nop
    /* a block comment
       over two lines */
1:  j       1f
1:  j       1b
1:  bnez    a0, 1b
    .p2align 4
aligned16:
    nop
    .balign 8
    .align  3
    .cfi_endproc
    .size   _start, . - _start

    .section .rodata
table:
    .byte   1, 2, -1, 255, 'a'
    .half   0x1234, -2
    .short  65535
    .2byte  7
    .align  2
    .word   0xdeadbeef, -1, table, end_of_table - table
    .long   LIMIT
    .4byte  _start
end_of_table:
    .ascii  "abc", "\t\"q\"\\"
    .asciz  "with NUL"
    .string "also \x41\101\0 NUL"
    .p2align 3, 0xaa
    .balign 16, 0x55, 15
    .zero   3
    .space  5, 0x7
    .skip   2
    .org    0x80
    .byte   0x80
    .org    . + 3, 0xff

    .data
    .p2align 2
value:
    .word   42, 43
    .word   value
    .half   (. - value) & 0xffff

    .bss
    .align  4
buffer:
    .zero   64
    .space  32
    .skip   16

    .section .boot, "ax", @progbits
boot:
    la      t0, value
    jr      t0
    .section .mydata, "aw"
    .word   boot, value
    .section .mybss, "aw", @nobits
    .zero   8
    .text
    ret
