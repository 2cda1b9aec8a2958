# Runs compute.s in VS-mode with both stages of translation on: the benchmark of a
# guest kernel under the hypervisor extension.
#
# M-mode setup, from `two_stage_start` (RISC-V privileged spec 20211203):
#   - 8.5.1 G-stage, Sv32x4: a 16 KiB root table on a 16 KiB boundary. Guest physical
#     addresses equal supervisor physical ones for RAM's first megapage, mapped with
#     4 KiB pages through a level-0 table. Every G-stage access counts as a U-level one,
#     so every leaf is U+R+W+X, with A and D preset.
#   - 4.3 and 8.5 VS-stage, Sv32: the same identity map of RAM's first megapage from the
#     guest's vsatp, with 4 KiB supervisor pages (no U: VS-mode runs the code). Its
#     tables live in guest physical memory, which the G-stage maps to themselves.
#   - 3.7 PMP: entry 0 is NAPOT over the whole address space with R, W and X.
#   - hgatp selects Sv32x4 (VMID 1), vsatp Sv32; MRET with mstatus.MPP = S and
#     mstatush.MPV = 1 enters VS-mode at compute_start (8.6.4).
# Assembled together with compute.s, which provides compute_start, and sv32.s, whose
# PTE and PMP constants this file uses.

    .equ VS_LEAF, PTE_V | PTE_R | PTE_W | PTE_X | PTE_A | PTE_D
    .equ G_LEAF, VS_LEAF | PTE_U
    .equ G_ROOT_ENTRY, (0x80000000 >> 22) * 4   # Sv32x4 vpn[1]: guest physical bits 33:22
    .equ HGATP_MODE_SV32X4, 1 << 31
    .equ HGATP_VMID_1, 1 << 22
    .equ MSTATUS_MPP_S, 1 << 11
    .equ MSTATUSH_MPV, 1 << 7

    .text
    .globl two_stage_start
two_stage_start:
    # The level-0 tables of both stages: 1024 leaves each for RAM's first megapage.
    la   t0, vs_level0
    la   t5, g_level0
    li   t1, (RAM_VPN1 << 20) | VS_LEAF         # PPN = VPN of 0x80000000, i.e. 0x80000
    li   t4, (RAM_VPN1 << 20) | G_LEAF
    li   t2, PTES_PER_TABLE
    li   t3, 1 << PTE_PPN_SHIFT                 # one page further
1:  sw   t1, 0(t0)
    sw   t4, 0(t5)
    add  t1, t1, t3
    add  t4, t4, t3
    addi t0, t0, 4
    addi t5, t5, 4
    addi t2, t2, -1
    bnez t2, 1b

    # The roots: the entry of RAM's first megapage points to the level-0 table.
    la   t0, vs_root
    la   t1, vs_level0
    srli t1, t1, 12
    slli t1, t1, PTE_PPN_SHIFT
    ori  t1, t1, PTE_V                          # V alone: a pointer, not a leaf
    li   t2, RAM_VPN1 * 4
    add  t0, t0, t2
    sw   t1, 0(t0)
    la   t0, g_root
    la   t1, g_level0
    srli t1, t1, 12
    slli t1, t1, PTE_PPN_SHIFT
    ori  t1, t1, PTE_V
    li   t2, G_ROOT_ENTRY
    add  t0, t0, t2
    sw   t1, 0(t0)

    # PMP entry 0: everything, readable, writable and executable.
    li   t0, -1
    csrw pmpaddr0, t0
    li   t0, PMP_NAPOT | PMP_R | PMP_W | PMP_X
    csrw pmpcfg0, t0

    la   t0, g_root
    srli t0, t0, 12
    li   t1, HGATP_MODE_SV32X4 | HGATP_VMID_1
    or   t0, t0, t1
    csrw hgatp, t0
    la   t0, vs_root
    srli t0, t0, 12
    li   t1, SATP_MODE_SV32
    or   t0, t0, t1
    csrw vsatp, t0
    hfence.gvma

    li   t0, MSTATUS_MPP
    csrc mstatus, t0
    li   t0, MSTATUS_MPP_S
    csrs mstatus, t0                            # MPP = S ...
    li   t0, MSTATUSH_MPV
    csrs mstatush, t0                           # ... with V = 1: VS-mode
    la   t0, compute_start
    csrw mepc, t0
    mret

    .bss
    .align 14                                   # the Sv32x4 root: 16 KiB, 16 KiB aligned
g_root:
    .zero 16384
g_level0:
    .zero 4096
vs_root:
    .zero 4096
vs_level0:
    .zero 4096
