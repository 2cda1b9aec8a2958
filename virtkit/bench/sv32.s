# Runs compute.s in U-mode with Sv32 paging on: the benchmark of a user process.
#
# M-mode setup, from `sv32_start` (RISC-V privileged spec 20211203):
#   - 4.3 Sv32: an identity map of the upper half of the address space (where RAM is).
#     The first 4 MiB (code, data, page tables) is mapped with 4 KiB pages through a
#     level-0 table, so every page the workload touches has its own TLB entry; the
#     rest is mapped with 4 MiB megapages. Every leaf is U+R+W+X with A and D preset.
#   - 3.7 PMP: entry 0 is NAPOT over the whole address space with R, W and X, since
#     without a matching entry S- and U-mode accesses fail.
#   - satp selects Sv32 and the root table; MRET with mstatus.MPP = U enters the
#     workload at compute_start.
# Assembled together with compute.s, which provides compute_start.

    .equ PTE_V, 1 << 0
    .equ PTE_R, 1 << 1
    .equ PTE_W, 1 << 2
    .equ PTE_X, 1 << 3
    .equ PTE_U, 1 << 4
    .equ PTE_A, 1 << 6
    .equ PTE_D, 1 << 7
    .equ PTE_LEAF, PTE_V | PTE_R | PTE_W | PTE_X | PTE_U | PTE_A | PTE_D
    .equ PTE_PPN_SHIFT, 10
    .equ PTES_PER_TABLE, 1024
    .equ RAM_VPN1, 0x80000000 >> 22     # VPN[1] of the first megapage of RAM

    .equ PMP_R, 1 << 0
    .equ PMP_W, 1 << 1
    .equ PMP_X, 1 << 2
    .equ PMP_NAPOT, 3 << 3
    .equ SATP_MODE_SV32, 1 << 31
    .equ MSTATUS_MPP, 3 << 11

    .text
    .globl sv32_start
sv32_start:
    # The level-0 table: 1024 leaves for the 4 KiB pages of RAM's first megapage.
    la   t0, pt_level0
    li   t1, (RAM_VPN1 << 20) | PTE_LEAF        # PPN = VPN of 0x80000000, i.e. 0x80000
    li   t2, PTES_PER_TABLE
    li   t3, 1 << PTE_PPN_SHIFT                 # one page further
1:  sw   t1, 0(t0)
    add  t1, t1, t3
    addi t0, t0, 4
    addi t2, t2, -1
    bnez t2, 1b

    # The root table: entry RAM_VPN1 points to the level-0 table ...
    la   t0, pt_root
    la   t1, pt_level0
    srli t1, t1, 12
    slli t1, t1, PTE_PPN_SHIFT
    ori  t1, t1, PTE_V                          # V alone: a pointer, not a leaf
    li   t2, RAM_VPN1 * 4
    add  t2, t0, t2
    sw   t1, 0(t2)
    # ... and entries RAM_VPN1 + 1 .. 1023 are megapages mapping themselves.
    li   t3, ((RAM_VPN1 + 1) << 20) | PTE_LEAF
    li   t4, 1 << 20                            # one megapage further
    li   t5, PTES_PER_TABLE * 4
    add  t5, t0, t5                             # end of the root table
2:  addi t2, t2, 4
    bgeu t2, t5, 3f
    sw   t3, 0(t2)
    add  t3, t3, t4
    j    2b
3:
    # PMP entry 0: everything, readable, writable and executable.
    li   t0, -1
    csrw pmpaddr0, t0
    li   t0, PMP_NAPOT | PMP_R | PMP_W | PMP_X
    csrw pmpcfg0, t0

    la   t0, pt_root
    srli t0, t0, 12
    li   t1, SATP_MODE_SV32
    or   t0, t0, t1
    csrw satp, t0
    sfence.vma

    li   t0, MSTATUS_MPP
    csrc mstatus, t0                            # MPP = U
    la   t0, compute_start
    csrw mepc, t0
    mret

    .bss
    .align 12
pt_root:
    .zero 4096
pt_level0:
    .zero 4096
