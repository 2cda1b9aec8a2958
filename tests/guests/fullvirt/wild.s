# A guest that scribbles over its own page tables, then jumps to unmapped memory.
    .equ PTE_V, 1
    .equ PTE_R, 2
    .equ PTE_W, 4
    .equ PTE_X, 8
_start:
    la t0, trap
    csrw stvec, t0
    la t0, pt_root
    li t1, (0x80000000 >> 12) << 10 | PTE_V | PTE_R | PTE_W | PTE_X
    li t2, 0x200 * 4
    add t2, t0, t2
    sw t1, 0(t2)
    srli t0, t0, 12
    li t1, 0x80000000
    or t0, t0, t1
    csrw satp, t0
    sfence.vma
    # scribble: an LCG fills the root table (except the kernel's own entry) with junk
    la s0, pt_root
    li s1, 12345
    li s2, 0
1:  li t0, 1664525
    mul s1, s1, t0
    li t0, 1013904223
    add s1, s1, t0
    li t0, 0x200
    beq s2, t0, 2f
    slli t0, s2, 2
    add t0, s0, t0
    sw s1, 0(t0)
2:  addi s2, s2, 1
    li t0, 1024
    blt s2, t0, 1b
    sfence.vma
    # touch addresses all over: each faults or reads somewhere the junk points
    li s2, 0
3:  slli t0, s2, 22
    lw t1, 0(t0)
    sw t1, 0(t0)
    addi s2, s2, 1
    li t0, 1024
    blt s2, t0, 3b
    # and jump into the junk: unmapped, or mapped anywhere
    li t0, 0x00400000
    jr t0
    .align 2
trap:                           # count the trap, skip the instruction, or, for a fetch
    la t0, count                # fault, go back to where the scribbling was
    lw t1, 0(t0)
    addi t1, t1, 1
    sw t1, 0(t0)
    csrr t0, scause
    li t1, 12
    beq t0, t1, 4f
    csrr t0, sepc
    addi t0, t0, 4
    csrw sepc, t0
    sret
4:  li t0, 0x00400000           # fetch fault: jump to unmapped memory again
    csrw sepc, t0
    sret
    .align 12
pt_root:
    .zero 4096
count:
    .word 0
