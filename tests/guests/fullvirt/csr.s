# Every virtual S-level CSR written and read back by its field rules (WARL), an
# M-level CSR (illegal: the trap handler prints scause and stval and skips it), and
# an EBREAK; results printed through the SBI console.
    .equ EID_SRST, 0x53525354
_start:
    la sp, stack_top
    la t0, trap
    csrw stvec, t0
    li t0, 0x12345678
    csrw sscratch, t0
    csrr a0, sscratch
    call puthex
    li a0, 0x55
    csrrw a0, sscratch, a0
    call puthex
    csrr a0, sscratch
    call puthex
    li t0, 0x80200003
    csrw stvec, t0
    csrr a0, stvec
    call puthex
    la t0, trap
    csrw stvec, t0
    li t0, 0x80200007
    csrw sepc, t0
    csrr a0, sepc
    call puthex
    li t0, -1
    csrw sie, t0
    csrr a0, sie
    call puthex
    csrw sie, zero
    li t0, -1
    csrw sstatus, t0
    csrr a0, sstatus
    call puthex
    li t0, 0x2
    csrc sstatus, t0
    csrr a0, sstatus
    call puthex
    csrw sstatus, zero
    csrr a0, mstatus          # illegal: the trap handler prints and skips
    li a0, 0x7
    csrw scounteren, a0
    csrr a0, scounteren
    call puthex
    csrsi sip, 2
    csrr a0, sip
    call puthex
    csrci sip, 2
    ebreak
    li a7, EID_SRST
    li a6, 0
    li a0, 0
    li a1, 0
    ecall

puthex:                       # print a0 as 8 hex digits and a newline
    mv t1, a0
    li t2, 28
1:  srl t3, t1, t2
    andi t3, t3, 15
    li t4, 10
    blt t3, t4, 2f
    addi t3, t3, 87
    j 3f
2:  addi t3, t3, 48
3:  mv a0, t3
    li a7, 1
    ecall
    addi t2, t2, -4
    bgez t2, 1b
    li a0, 10
    li a7, 1
    ecall
    ret

    .align 2
trap:
    addi sp, sp, -16
    sw ra, 0(sp)
    sw a0, 4(sp)
    sw a7, 8(sp)
    csrr a0, scause
    call puthex
    csrr a0, stval
    call puthex
    csrr a0, sepc
    addi a0, a0, 4
    csrw sepc, a0
    lw ra, 0(sp)
    lw a0, 4(sp)
    lw a7, 8(sp)
    addi sp, sp, 16
    sret

    .align 4
    .zero 1024
stack_top:
