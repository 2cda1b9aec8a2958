# A paging mini-kernel: Sv32 with a kernel megapage and a user process (code, data),
# system calls, page faults from U and from S (SUM), A/D bits, a timer interrupt in U.
    .equ SBI_PUTCHAR, 1
    .equ EID_TIME, 0x54494D45
    .equ EID_SRST, 0x53525354
    .equ PTE_V, 1
    .equ PTE_R, 2
    .equ PTE_W, 4
    .equ PTE_X, 8
    .equ PTE_U, 16
    .equ SSTATUS_SUM, 0x40000
    .equ SSTATUS_SPP, 0x100
    .equ USER_CODE_VA, 0x10000
    .equ USER_DATA_VA, 0x20000
_start:
    la sp, kstack_top
    la t0, trap
    csrw stvec, t0
    la t0, save_area
    csrw sscratch, t0
    # root[0x200] = kernel megapage 0x80000000, RWX, A and D left for the MMU to set
    la t0, pt_root
    li t1, (0x80000000 >> 12) << 10 | PTE_V | PTE_R | PTE_W | PTE_X
    li t2, 0x200 * 4
    add t2, t0, t2
    sw t1, 0(t2)
    # root[0] -> pt_user
    la t1, pt_user
    srli t1, t1, 12
    slli t1, t1, 10
    ori t1, t1, PTE_V
    sw t1, 0(t0)
    # pt_user[0x10] = user code (U, R, X); pt_user[0x20] = user data (U, R, W)
    la t2, pt_user
    la t1, user_code
    srli t1, t1, 12
    slli t1, t1, 10
    ori t1, t1, PTE_V | PTE_R | PTE_X | PTE_U
    sw t1, 0x40(t2)
    la t1, user_data
    srli t1, t1, 12
    slli t1, t1, 10
    ori t1, t1, PTE_V | PTE_R | PTE_W | PTE_U
    sw t1, 0x80(t2)
    # satp = Sv32 | root
    la t0, pt_root
    srli t0, t0, 12
    li t1, 0x80000000
    or t0, t0, t1
    csrw satp, t0
    sfence.vma
    li a0, 0x11111111
    call puthex
    # S reads a user page with SUM = 0: a load page fault in S (the handler skips it)
    li t0, USER_DATA_VA
    lw a0, 0(t0)
    # and with SUM = 1: it works
    li t0, SSTATUS_SUM
    csrs sstatus, t0
    li t0, USER_DATA_VA
    lw a0, 0(t0)
    call puthex
    li t0, SSTATUS_SUM
    csrc sstatus, t0
    # the timer: an interrupt in a while, delivered in U
    rdtime a0
    li t0, 3000
    add a0, a0, t0
    li a1, 0
    li a7, EID_TIME
    li a6, 0
    ecall
    li t0, 0x20                 # sie.STIE
    csrs sie, t0
    # to user mode: SPP = 0, SPIE = 1 (interrupts on in U anyway), sepc = user entry
    li t0, SSTATUS_SPP
    csrc sstatus, t0
    li t0, 0x20
    csrs sstatus, t0
    li t0, USER_CODE_VA
    csrw sepc, t0
    sret

puthex:                         # a0 as 8 hex digits and a newline, through SBI
    addi sp, sp, -16
    sw ra, 0(sp)
    sw s0, 4(sp)
    sw s1, 8(sp)
    mv s0, a0
    li s1, 28
1:  srl a0, s0, s1
    andi a0, a0, 15
    li t0, 10
    blt a0, t0, 2f
    addi a0, a0, 39
2:  addi a0, a0, 48
    li a7, SBI_PUTCHAR
    ecall
    addi s1, s1, -4
    bgez s1, 1b
    li a0, 10
    li a7, SBI_PUTCHAR
    ecall
    lw ra, 0(sp)
    lw s0, 4(sp)
    lw s1, 8(sp)
    addi sp, sp, 16
    ret

    .align 2
trap:
    csrrw t6, sscratch, t6      # t6 = save area
    sw ra, 0(t6)
    sw sp, 4(t6)
    sw t0, 8(t6)
    sw t1, 12(t6)
    sw t2, 16(t6)
    sw a0, 20(t6)
    sw a1, 24(t6)
    sw a6, 28(t6)
    sw a7, 32(t6)
    sw s0, 36(t6)
    sw s1, 40(t6)
    la sp, kstack_top
    addi sp, sp, -64
    csrr s0, scause
    li t0, 8
    beq s0, t0, syscall
    li t0, 0x80000005
    beq s0, t0, timer
    li t0, 12
    beq s0, t0, page_fault
    li t0, 13
    beq s0, t0, page_fault
    li t0, 15
    beq s0, t0, page_fault
    mv a0, s0
    call puthex
    li a0, 1
    j shutdown
page_fault:
    mv a0, s0
    call puthex
    csrr a0, stval
    call puthex
    csrr a0, sstatus
    andi a0, a0, SSTATUS_SPP
    call puthex
    j skip
timer:
    li a0, 0x7171
    call puthex
    li a0, -1
    li a1, -1
    li a7, EID_TIME
    li a6, 0
    ecall
    la t0, ticks
    li t1, 1
    sw t1, 0(t0)
    j return
syscall:
    lw a7, 32(t6)
    lw a0, 20(t6)
    li t0, 1
    beq a7, t0, sys_putchar
    li t0, 2
    beq a7, t0, sys_get42
    li t0, 3
    beq a7, t0, sys_ticks
    # exit: print the code and the user data PTE's A and D, then shut down
    call puthex
    la t0, pt_user
    lw a0, 0x80(t0)
    andi a0, a0, 0xC0
    call puthex
    la t0, pt_user
    lw a0, 0x40(t0)
    andi a0, a0, 0xC0
    call puthex
    li a0, 0
    j shutdown
sys_putchar:
    li a7, SBI_PUTCHAR
    ecall
    j skip
sys_get42:
    li a0, 42
    sw a0, 20(t6)
    j skip
sys_ticks:
    la t0, ticks
    lw a0, 0(t0)
    sw a0, 20(t6)
skip:
    csrr t0, sepc
    addi t0, t0, 4
    csrw sepc, t0
return:
    lw ra, 0(t6)
    lw sp, 4(t6)
    lw t0, 8(t6)
    lw t1, 12(t6)
    lw t2, 16(t6)
    lw a0, 20(t6)
    lw a1, 24(t6)
    lw a6, 28(t6)
    lw a7, 32(t6)
    lw s0, 36(t6)
    lw s1, 40(t6)
    csrrw t6, sscratch, t6
    sret
shutdown:
    li a1, 0
    li a7, EID_SRST
    li a6, 0
    mv a1, a0
    li a0, 0
    ecall

    .align 12
user_code:                      # runs at USER_CODE_VA in U-mode
    li a0, 85                   # 'U'
    li a7, 1
    ecall
    li a0, 10
    li a7, 1
    ecall
    li t0, 0x80200000           # a kernel page: a load page fault from U
    lw t1, 0(t0)
    li t0, USER_DATA_VA
    li t1, 0x5eed
    sw t1, 0(t0)                # the data page gets dirty
    li s0, 100                  # 100 system calls
    li s1, 0
3:  li a7, 2
    ecall
    add s1, s1, a0
    addi s0, s0, -1
    bnez s0, 3b
4:  li a7, 3                    # wait for the timer interrupt
    ecall
    beqz a0, 4b
    mv a0, s1                   # exit(4200)
    li a7, 93
    ecall
    .align 12
user_data:
    .word 0xda7a
    .align 12
pt_root:
    .zero 4096
pt_user:
    .zero 4096
ticks:
    .word 0
save_area:
    .zero 64
    .align 4
    .zero 2048
kstack_top:
