# The arch layer's assembly: the kernel's first instructions, the trap vector, and the
# way back to user mode.
#
# The firmware enters _start in S-mode with a0 = hartid, as OpenSBI's FW_JUMP does for
# Linux (Documentation/arch/riscv/boot.rst). Every trap, from user mode or from the
# kernel, enters trap_vector (stvec in direct mode, privileged spec 1.12, 4.1.2).
# sscratch tells the two apart (4.1.7): while a process runs in user mode it holds the
# address of that process's trap frame, at the top of its kernel stack; while the
# kernel runs it is 0.

    .equ SSTATUS_SPP, 1 << 8        # the mode SRET returns to: 0 = user (4.1.1)
    .equ SSTATUS_SPIE, 1 << 5       # SIE after SRET; user mode takes interrupts anyway
    .equ KERNEL_TRAP_FRAME, 64      # ra, t0..t6, a0..a7: what a C function may clobber

    .section .text.start
    .globl _start
_start:
    la sp, boot_stack_top
    # Zero .bss: after an SBI reboot RAM keeps what the last run left there.
    la t0, __bss_start
    la t1, __bss_end
1:  bgeu t0, t1, 2f
    sw zero, 0(t0)
    addi t0, t0, 4
    j 1b
2:  call kmain                      # a0 = hartid; kmain does not return

    .text
    .balign 4
    .globl trap_vector
trap_vector:
    csrrw sp, sscratch, sp          # swap sp and sscratch
    bnez sp, from_user              # sscratch was a trap frame: the trap came from user
    csrrw sp, sscratch, sp          # it was 0: undo the swap, we are on a kernel stack

    # A trap in the kernel: an interrupt taken while arch_idle waits, or a kernel bug.
    # Save what C code may clobber on the current stack; kernel_trap does the rest.
    addi sp, sp, -KERNEL_TRAP_FRAME
    sw ra, 0(sp)
    sw t0, 4(sp)
    sw t1, 8(sp)
    sw t2, 12(sp)
    sw a0, 16(sp)
    sw a1, 20(sp)
    sw a2, 24(sp)
    sw a3, 28(sp)
    sw a4, 32(sp)
    sw a5, 36(sp)
    sw a6, 40(sp)
    sw a7, 44(sp)
    sw t3, 48(sp)
    sw t4, 52(sp)
    sw t5, 56(sp)
    sw t6, 60(sp)
    call kernel_trap
    lw ra, 0(sp)
    lw t0, 4(sp)
    lw t1, 8(sp)
    lw t2, 12(sp)
    lw a0, 16(sp)
    lw a1, 20(sp)
    lw a2, 24(sp)
    lw a3, 28(sp)
    lw a4, 32(sp)
    lw a5, 36(sp)
    lw a6, 40(sp)
    lw a7, 44(sp)
    lw t3, 48(sp)
    lw t4, 52(sp)
    lw t5, 56(sp)
    lw t6, 60(sp)
    addi sp, sp, KERNEL_TRAP_FRAME
    sret

from_user:
    # sp = the trap frame (struct trapframe, proc.h: register xn at offset 4 * n),
    # sscratch = the user's sp.
    sw x1, 4(sp)
    sw x3, 12(sp)
    sw x4, 16(sp)
    sw x5, 20(sp)
    sw x6, 24(sp)
    sw x7, 28(sp)
    sw x8, 32(sp)
    sw x9, 36(sp)
    sw x10, 40(sp)
    sw x11, 44(sp)
    sw x12, 48(sp)
    sw x13, 52(sp)
    sw x14, 56(sp)
    sw x15, 60(sp)
    sw x16, 64(sp)
    sw x17, 68(sp)
    sw x18, 72(sp)
    sw x19, 76(sp)
    sw x20, 80(sp)
    sw x21, 84(sp)
    sw x22, 88(sp)
    sw x23, 92(sp)
    sw x24, 96(sp)
    sw x25, 100(sp)
    sw x26, 104(sp)
    sw x27, 108(sp)
    sw x28, 112(sp)
    sw x29, 116(sp)
    sw x30, 120(sp)
    sw x31, 124(sp)
    csrrw t0, sscratch, zero        # the user's sp; sscratch = 0: in the kernel now
    sw t0, 8(sp)
    csrr t0, sepc
    sw t0, 0(sp)
    mv a0, sp
    call user_trap                  # on the kernel stack, just below the trap frame
    mv a0, sp                       # C code gave sp back: it is the trap frame again

    .globl arch_return_to_user
arch_return_to_user:                # a0 = the trap frame
    lw t0, 0(a0)
    csrw sepc, t0
    li t0, SSTATUS_SPP
    csrc sstatus, t0
    li t0, SSTATUS_SPIE
    csrs sstatus, t0
    csrw sscratch, a0               # where the next trap from user mode saves registers
    lw x1, 4(a0)
    lw x2, 8(a0)
    lw x3, 12(a0)
    lw x4, 16(a0)
    lw x5, 20(a0)
    lw x6, 24(a0)
    lw x7, 28(a0)
    lw x8, 32(a0)
    lw x9, 36(a0)
    lw x11, 44(a0)
    lw x12, 48(a0)
    lw x13, 52(a0)
    lw x14, 56(a0)
    lw x15, 60(a0)
    lw x16, 64(a0)
    lw x17, 68(a0)
    lw x18, 72(a0)
    lw x19, 76(a0)
    lw x20, 80(a0)
    lw x21, 84(a0)
    lw x22, 88(a0)
    lw x23, 92(a0)
    lw x24, 96(a0)
    lw x25, 100(a0)
    lw x26, 104(a0)
    lw x27, 108(a0)
    lw x28, 112(a0)
    lw x29, 116(a0)
    lw x30, 120(a0)
    lw x31, 124(a0)
    lw x10, 40(a0)                  # a0 last: it held the frame's address
    sret

    .bss
    .balign 16
boot_stack:                         # kmain's and then the scheduler's stack
    .space 4096
boot_stack_top:
