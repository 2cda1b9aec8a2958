# Every RV32I instruction (Volume I, chapter 2), with edge-of-range operands.
    .option norelax
    .text
    .globl _start
_start:
    lui     a0, 0
    lui     t6, 0xfffff
    lui     x31, %hi(far_data)
    auipc   a1, 0x12345
    auipc   zero, 0
    jal     ra, forward
    jal     x0, _start
    jal     s11, . + 8
    jalr    a2, 0(a3)
    jalr    t0, -2048(t1)
    jalr    x5, 2047(x6)
forward:
    beq     a0, a1, _start
    bne     s0, s1, forward
    blt     t0, t1, later
    bge     a4, a5, later
    bltu    x1, x2, .
    bgeu    x30, x31, . + 4094
    lb      a0, 0(sp)
    lh      a1, -1(sp)
    lw      a2, 2047(fp)
    lbu     a3, -2048(s1)
    lhu     a4, 12(a5)
    lw      a5, (sp)
    sb      a0, 0(sp)
    sh      a1, -1(tp)
    sw      a2, 2047(gp)
    sw      zero, -2048(ra)
    addi    a0, a0, -2048
    addi    a1, a2, 2047
    slti    a0, a1, -1
    sltiu   a0, a1, 1
    xori    t0, t1, 0x7ff
    ori     t2, s0, -0x800
    andi    s1, a0, 255
    slli    a0, a0, 0
    srli    a1, a1, 31
    srai    a2, a2, 17
    add     a0, a1, a2
    sub     s2, s3, s4
    sll     s5, s6, s7
    slt     s8, s9, s10
    sltu    s11, t3, t4
    xor     t5, t6, x0
    srl     x1, x2, x3
    sra     x4, x5, x6
    or      x7, x8, x9
    and     x10, x11, x12
    fence   iorw, iorw
    fence   r, w
    fence   io, rw
    fence   w, r
    fence   i, o
    fence.tso
    ecall
    ebreak
later:
    .equ    far_data, 0x12345fff
    .zero   4040
    nop
