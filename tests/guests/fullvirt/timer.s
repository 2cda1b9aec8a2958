# S-mode timer interrupts arriving anywhere in a loop of CSR swaps, critical sections
# and calls; the handler checks that sepc is a loop instruction and the loop checks that
# t1 and sscratch survive.
    .equ EID_TIME, 0x54494D45
    .equ EID_SRST, 0x53525354
    .equ TICKS, 10
    .equ INTERVAL, 700
_start:
    la sp, stack_top
    la t0, trap
    csrw stvec, t0
    la t0, area
    csrw sscratch, t0
    li t1, 0x7e57
    call arm
    li t0, 0x20
    csrs sie, t0
    csrsi sstatus, 2
loop:
    csrrw t1, sscratch, t1
    csrrw t1, sscratch, t1
    addi s0, s0, 1
    csrci sstatus, 2
    li t2, 7
    csrsi sstatus, 2
    call leaf
    li t2, 0x2
    csrc sstatus, t2
    csrs sstatus, t2
    la t0, ticks
    lw t0, 0(t0)
    li t2, TICKS
    blt t0, t2, loop
    j done
leaf:
    addi s1, s1, 1
    ret
loop_end:
done:
    csrci sstatus, 2
    la t0, ticks
    lw a0, 0(t0)
    call puthex
    la t0, bad
    lw a0, 0(t0)
    call puthex
    li t0, 0x7e57
    sub a0, t1, t0
    call puthex
    csrr a0, sscratch
    la t0, area
    sub a0, a0, t0
    call puthex
    sltu a0, zero, s0
    call puthex
    sltu a0, zero, s1
    call puthex
    li a7, EID_SRST
    li a6, 0
    li a0, 0
    li a1, 0
    ecall
arm:                            # the timer in INTERVAL ticks of mtime
    rdtime a0
    addi a0, a0, INTERVAL
    li a1, 0
    li a7, EID_TIME
    li a6, 0
    ecall
    ret
puthex:
    mv t3, a0
    li t4, 28
1:  srl a0, t3, t4
    andi a0, a0, 15
    li t5, 10
    blt a0, t5, 2f
    addi a0, a0, 39
2:  addi a0, a0, 48
    li a7, 1
    ecall
    addi t4, t4, -4
    bgez t4, 1b
    li a0, 10
    li a7, 1
    ecall
    ret
    .align 2
trap:
    addi sp, sp, -32
    sw ra, 0(sp)
    sw t0, 4(sp)
    sw t2, 8(sp)
    sw a0, 12(sp)
    sw a1, 16(sp)
    sw a6, 20(sp)
    sw a7, 24(sp)
    csrr t0, sepc
    la t2, loop
    bltu t0, t2, 3f
    la t2, loop_end
    bltu t0, t2, 4f
3:  la t0, bad
    lw t2, 0(t0)
    addi t2, t2, 1
    sw t2, 0(t0)
4:  la t0, ticks
    lw t2, 0(t0)
    addi t2, t2, 1
    sw t2, 0(t0)
    li t0, TICKS
    bge t2, t0, 5f
    call arm
    j 6f
5:  li a0, -1
    li a1, -1
    li a7, EID_TIME
    li a6, 0
    ecall
6:  lw ra, 0(sp)
    lw t0, 4(sp)
    lw t2, 8(sp)
    lw a0, 12(sp)
    lw a1, 16(sp)
    lw a6, 20(sp)
    lw a7, 24(sp)
    addi sp, sp, 32
    sret
    .align 12
ticks:
    .word 0
bad:
    .word 0
area:
    .zero 64
    .align 4
    .zero 1024
stack_top:
