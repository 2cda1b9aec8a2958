# Two address spaces, A (ASID 1) and B (ASID 2), and the shadow page table cache. While
# B is in satp, the kernel changes a PTE of A's tables and fences (all addresses, one
# address, one ASID; a leaf, then a root entry); back in A it must read through the new
# mapping, never through a shadow kept from before. It prints each word it reads.
    .equ SBI_PUTCHAR, 1
    .equ EID_SRST, 0x53525354
    .equ PTE_V, 1
    .equ PTE_R, 2
    .equ PTE_W, 4
    .equ PTE_X, 8
    .equ PTE_A, 0x40
    .equ PTE_D, 0x80
    .equ KERNEL_MEGAPAGE, (0x80000000 >> 12) << 10 | PTE_V | PTE_R | PTE_W | PTE_X | PTE_A | PTE_D
    .equ VA, 0x00400000         # vpn1 = 1, vpn0 = 0
    .equ VB, 0x00401000         # vpn1 = 1, vpn0 = 1
    .equ SATP_A, 0x80000000 | (1 << 22)
    .equ SATP_B, 0x80000000 | (2 << 22)
_start:
    la sp, kstack_top
    # Both roots map the kernel's megapage (root[0x200]); root[1] points at table_a in
    # A and table_b in B. A maps VA and VB to page_1, B maps VA to page_2.
    li t1, KERNEL_MEGAPAGE
    li t2, 0x200 * 4
    la t0, root_a
    add t0, t0, t2
    sw t1, 0(t0)
    la t0, root_b
    add t0, t0, t2
    sw t1, 0(t0)
    la a0, table_a
    call pointer_pte
    la t0, root_a
    sw a0, 4(t0)
    la a0, table_b
    call pointer_pte
    la t0, root_b
    sw a0, 4(t0)
    la a0, page_1
    call leaf_pte
    la t0, table_a
    sw a0, 0(t0)
    sw a0, 4(t0)
    la a0, page_2
    call leaf_pte
    la t0, table_b
    sw a0, 0(t0)
    la a0, page_4
    call leaf_pte
    la t0, table_c
    sw a0, 0(t0)

    # 1. A, then B: each reads its own page (the monitor fills a shadow for each root).
    call use_a
    call read_va                # 11111111
    call read_vb                # 11111111
    call use_b
    call read_va                # 22222222

    # 2. On B: A's VA -> page_3, SFENCE.VMA x0, x0. Back in A: page_3.
    la a0, page_3
    call leaf_pte
    la t0, table_a
    sw a0, 0(t0)
    sfence.vma zero, zero
    call use_a
    call read_va                # 33333333
    call use_b
    call read_va                # 22222222: B's tables did not change

    # 3. On B: A's VB -> page_3, SFENCE.VMA for that address only.
    la a0, page_3
    call leaf_pte
    la t0, table_a
    sw a0, 4(t0)
    li t0, VB
    sfence.vma t0, zero
    call use_a
    call read_vb                # 33333333
    call use_b

    # 4. On B: A's VA -> page_2, SFENCE.VMA for ASID 1 (A's) only.
    la a0, page_2
    call leaf_pte
    la t0, table_a
    sw a0, 0(t0)
    li t0, 1
    sfence.vma zero, t0
    call use_a
    call read_va                # 22222222
    call use_b

    # 5. On B: A's root entry for VA's 4 MiB -> table_c (VA -> page_4), SFENCE.VMA x0, x0.
    la a0, table_c
    call pointer_pte
    la t0, root_a
    sw a0, 4(t0)
    sfence.vma zero, zero
    call use_a
    call read_va                # 44444444
    li a0, 0
    j shutdown

use_a:                          # satp = A: no fence, the last one ordered every change
    la t0, root_a
    srli t0, t0, 12
    li t1, SATP_A
    or t0, t0, t1
    csrw satp, t0
    ret

use_b:
    la t0, root_b
    srli t0, t0, 12
    li t1, SATP_B
    or t0, t0, t1
    csrw satp, t0
    ret

pointer_pte:                    # a0 = the PTE pointing at the level-0 table at a0
    srli a0, a0, 12
    slli a0, a0, 10
    ori a0, a0, PTE_V
    ret

leaf_pte:                       # a0 = a kernel read-only leaf for the page at a0
    srli a0, a0, 12
    slli a0, a0, 10
    ori a0, a0, PTE_V | PTE_R | PTE_A
    ret

read_va:
    li t0, VA
    lw a0, 0(t0)
    j puthex

read_vb:
    li t0, VB
    lw a0, 0(t0)
    j puthex

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

shutdown:
    mv a1, a0
    li a0, 0
    li a7, EID_SRST
    li a6, 0
    ecall

    .align 12
page_1:
    .word 0x11111111
    .align 12
page_2:
    .word 0x22222222
    .align 12
page_3:
    .word 0x33333333
    .align 12
page_4:
    .word 0x44444444
    .align 12
root_a:
    .zero 4096
root_b:
    .zero 4096
table_a:
    .zero 4096
table_b:
    .zero 4096
table_c:
    .zero 4096
    .zero 2048
kstack_top:
