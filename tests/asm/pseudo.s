# Every pseudo-instruction (Volume I, tables 25.2 and 25.3, and GNU as's extra forms).
    .option norelax
    .equ    UART, 0x10000000
    .text
    .globl _start
_start:
    nop
    li      a0, 0
    li      a0, 2047
    li      a0, -2048
    li      a1, 2048
    li      a1, 0x1000
    li      a2, 0x12345678
    li      a3, 0x7ffff800
    li      a3, 0x7fffffff
    li      a4, 0x80000000
    li      a4, -1
    li      a5, 0xffffffff
    li      a5, 0xfffff800
    li      t0, -0x80000000
    li      t1, 'A'
    li      t2, UART + 5
    la      a0, message
    lla     a1, table
    la      a2, 0x10000000
    lla     a2, UART
    mv      a0, a1
    not     a2, a3
    neg     a4, a5
    seqz    t0, t1
    snez    t2, s0
    sltz    s1, a0
    sgtz    a1, a2
    sgt     a0, a1, a2
    sgtu    a3, a4, a5
1:  beqz    a0, 1b
    bnez    a0, 1f
    blez    a1, 1b
    bgez    a2, 1f
    bltz    a3, 1b
    bgtz    a4, 1f
1:  bgt     a0, a1, 1b
    ble     a0, a1, 1b
    bgtu    a0, a1, 2f
    bleu    a0, a1, 2f
2:  j       2b
    j       function
    jal     function
    jal     t0, function
    jr      a0
    jr      4(a1)
    jr      a2, 8
    jalr    a0
    jalr    -4(a0)
    jalr    a1, 8
    jalr    t0, a1
    jalr    t0, 12(a1)
    jalr    t1, a2, -12
    call    function
    tail    function
    ret
function:
    csrr    a0, mstatus
    csrr    a1, 0x342
    csrw    mtvec, a0
    csrw    mscratch, 5
    csrs    mie, t0
    csrs    mie, 8
    csrc    mstatus, t1
    csrc    mstatus, 0x8
    csrwi   mepc, 0
    csrsi   mstatus, 8
    csrci   sstatus, 2
    csrrw   a0, mscratch, 31
    csrrs   a0, sstatus, 2
    csrrc   a0, sstatus, 1
    rdcycle a0
    rdcycleh a1
    rdtime  a2
    rdtimeh a3
    rdinstret a4
    rdinstreth a5
    fence
    fence   rw, rw
    sfence.vma
    sfence.vma a0
    sfence.vma a0, a1
    hfence.vvma
    hfence.vvma a1
    hfence.gvma
    hfence.gvma a2
    unimp
    # objdump-style aliases GNU as accepts: immediate forms of OP mnemonics, zext.b
    add a0, a1, 5
    xor a0, a1, -1
    or a0, a1, 0x7f
    and a0, a1, 255
    sll a0, a0, 3
    srl a0, a0, 31
    sra a0, a0, 1
    zext.b a0, a1
    ret

    .section .rodata
message:
    .asciz  "hello"
    .data
    .align  2
table:
    .word   1, 2, 3

