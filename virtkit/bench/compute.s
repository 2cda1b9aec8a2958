# The CPU-bound integer workload of `virtkit bench` (RV32IM, user-level code only).
#
# Four classic kernels, run `repeat_count` times over the same inputs:
#   sieve   - sieve of Eratosthenes over SIEVE_SIZE byte flags (byte loads and stores)
#   crc32   - bitwise CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320, as zlib)
#             of CRC_BYTES pseudo-random bytes (shifts, masks, tight inner loop)
#   matmul  - MAT_N x MAT_N matrix product of signed 16-bit matrices (lh, mul)
#   sort    - insertion sort of SORT_N pseudo-random words (lw/sw, data-dependent branches)
# The pseudo-random inputs come from the LCG x' = 1664525 x + 1013904223 mod 2^32
# (Numerical Recipes, 2nd ed., 7.1). Each kernel's results are folded into a checksum
# with FNV-1 (h' = (h xor v) * 16777619); virtkit.bench computes the same checksum in
# plain Python and refuses to report a speed when the two differ.
#
# The code runs unchanged in M-mode without paging, in U-mode under Sv32 (entered from
# sv32.s), and on Unicorn. It starts at `compute_start`; at `compute_done` the checksum
# is in a0 (Unicorn stops there); then it writes 1 to the HTIF `tohost` word (exit
# code 0), which ends a virtkit run with a HALT exit.

    .equ SIEVE_SIZE, 16384
    .equ CRC_BYTES, 1024
    .equ MAT_N, 16
    .equ MAT_ROW_BYTES, 2 * MAT_N
    .equ SORT_N, 256

    .equ LCG_A, 1664525
    .equ LCG_C, 1013904223
    .equ CRC_SEED, 0x12345678
    .equ MAT_SEED, 0x9E3779B9
    .equ SORT_SEED, 0x2545F491
    .equ SORT_RANGE, 100000

    .equ FNV_OFFSET_BASIS, 2166136261
    .equ FNV_PRIME, 16777619
    .equ CRC32_POLY, 0xEDB88320

    .text
    .globl compute_start
compute_start:
    la   s0, repeat_count
    lw   s0, 0(s0)              # s0: repetitions left
    li   s1, FNV_OFFSET_BASIS   # s1: checksum
    li   s2, FNV_PRIME
repeat:
    beqz s0, finished
    call sieve                  # a0 = number of primes, a1 = their sum
    xor  s1, s1, a0
    mul  s1, s1, s2
    xor  s1, s1, a1
    mul  s1, s1, s2
    call crc32                  # a0 = CRC-32 of the buffer
    xor  s1, s1, a0
    mul  s1, s1, s2
    call matmul                 # a0 = hash of the product matrix
    xor  s1, s1, a0
    mul  s1, s1, s2
    call sort                   # a0 = hash of the sorted array and its mean
    xor  s1, s1, a0
    mul  s1, s1, s2
    addi s0, s0, -1
    j    repeat
finished:
    mv   a0, s1
    .globl compute_done
compute_done:
    li   t0, 1                  # HTIF: device 0, command 0, exit code 0
    la   t1, tohost
    .globl compute_halt
compute_halt:
    sw   t0, 0(t1)
1:  j    1b


# sieve() -> a0 = count of primes below SIEVE_SIZE, a1 = their sum
sieve:
    la   t0, sieve_flags
    li   t1, SIEVE_SIZE
    add  t2, t0, t1             # t2: end of the flags
    li   t3, 1
    mv   t4, t0
1:  sb   t3, 0(t4)              # every number is a prime candidate ...
    addi t4, t4, 1
    bltu t4, t2, 1b
    sb   zero, 0(t0)            # ... except 0 and 1
    sb   zero, 1(t0)
    li   t3, 2                  # t3: i
2:  mul  t4, t3, t3
    bgeu t4, t1, 5f             # i * i >= SIEVE_SIZE: every composite is crossed out
    add  t5, t0, t3
    lbu  t5, 0(t5)
    beqz t5, 4f                 # i is composite: its multiples are already crossed out
    add  t4, t0, t4
3:  sb   zero, 0(t4)            # cross out i*i, i*i + i, ...
    add  t4, t4, t3
    bltu t4, t2, 3b
4:  addi t3, t3, 1
    j    2b
5:  li   a0, 0
    li   a1, 0
    li   t3, 0
    mv   t4, t0
6:  lbu  t5, 0(t4)
    beqz t5, 7f
    addi a0, a0, 1
    add  a1, a1, t3
7:  addi t3, t3, 1
    addi t4, t4, 1
    bltu t3, t1, 6b
    ret


# crc32() -> a0 = CRC-32 of CRC_BYTES bytes, byte k being bits 31:24 of the k-th LCG value
crc32:
    la   t0, crc_buffer
    li   t1, CRC_BYTES
    add  t2, t0, t1             # t2: end of the buffer
    li   t3, CRC_SEED
    li   t4, LCG_A
    li   t5, LCG_C
    mv   t6, t0
1:  mul  t3, t3, t4
    add  t3, t3, t5
    srli a0, t3, 24
    sb   a0, 0(t6)
    addi t6, t6, 1
    bltu t6, t2, 1b
    li   a0, -1                 # the register starts all ones ...
    li   t4, CRC32_POLY
    mv   t6, t0
2:  lbu  t3, 0(t6)
    xor  a0, a0, t3
    li   t5, 8
3:  andi t3, a0, 1              # one bit at a time: shift right, and
    neg  t3, t3                 # xor in the polynomial if the bit shifted out was 1
    and  t3, t3, t4
    srli a0, a0, 1
    xor  a0, a0, t3
    addi t5, t5, -1
    bnez t5, 3b
    addi t6, t6, 1
    bltu t6, t2, 2b
    not  a0, a0                 # ... and is inverted at the end
    ret


# matmul() -> a0 = h over the product C = A B in row order, h' = 31 h + C[i][j] (h0 = 0).
# A and B are filled together (A first) with the LCG values shifted right
# arithmetically by 20: signed 12-bit numbers, stored as halfwords.
matmul:
    la   t0, mat_a
    li   t1, 2 * MAT_N * MAT_N
    li   t3, MAT_SEED
    li   t4, LCG_A
    li   t5, LCG_C
1:  mul  t3, t3, t4
    add  t3, t3, t5
    srai t2, t3, 20
    sh   t2, 0(t0)
    addi t0, t0, 2
    addi t1, t1, -1
    bnez t1, 1b
    la   a2, mat_a
    la   a3, mat_b
    la   a4, mat_c
    li   a1, MAT_N
    li   a7, MAT_ROW_BYTES
    li   a0, 0
    li   a5, 0                  # a5: i
2:  li   a6, 0                  # a6: j
3:  mul  t3, a5, a7
    add  t3, a2, t3             # t3: &A[i][0]
    slli t4, a6, 1
    add  t4, a3, t4             # t4: &B[0][j]
    li   t1, 0                  # t1: the dot product
    li   t2, 0                  # t2: k
4:  lh   t5, 0(t3)
    lh   t6, 0(t4)
    mul  t5, t5, t6
    add  t1, t1, t5
    addi t3, t3, 2              # along row i of A
    add  t4, t4, a7             # down column j of B
    addi t2, t2, 1
    blt  t2, a1, 4b
    sw   t1, 0(a4)
    addi a4, a4, 4
    slli t5, a0, 5              # h = 31 h + C[i][j]
    sub  a0, t5, a0
    add  a0, a0, t1
    addi a6, a6, 1
    blt  a6, a1, 3b
    addi a5, a5, 1
    blt  a5, a1, 2b
    ret


# sort() -> a0 = 31 h + (sum / SORT_N), where h' = 31 h + a[i] over the sorted array
# (h0 = 0). a[i] = (x >> 8) mod SORT_RANGE for the i-th LCG value x.
sort:
    la   t0, sort_array
    li   t1, SORT_N
    li   t3, SORT_SEED
    li   t4, LCG_A
    li   t5, LCG_C
    li   t6, SORT_RANGE
    mv   a1, t0
1:  mul  t3, t3, t4
    add  t3, t3, t5
    srli t2, t3, 8
    remu t2, t2, t6
    sw   t2, 0(a1)
    addi a1, a1, 4
    addi t1, t1, -1
    bnez t1, 1b
    li   t1, 1                  # t1: i, the next element to insert
    li   t2, SORT_N
2:  slli t3, t1, 2
    add  t3, t0, t3             # t3: the hole, starting at &a[i]
    lw   t4, 0(t3)              # t4: the key
3:  beq  t3, t0, 4f             # the hole reached a[0]
    lw   t5, -4(t3)
    bge  t4, t5, 4f             # the element before the hole is not larger: stop
    sw   t5, 0(t3)              # move it up into the hole
    addi t3, t3, -4
    j    3b
4:  sw   t4, 0(t3)
    addi t1, t1, 1
    bltu t1, t2, 2b
    li   a0, 0
    li   a1, 0                  # a1: sum
    mv   t3, t0
    slli t1, t2, 2
    add  t1, t0, t1             # t1: end of the array
5:  lw   t4, 0(t3)
    slli t5, a0, 5
    sub  a0, t5, a0
    add  a0, a0, t4
    add  a1, a1, t4
    addi t3, t3, 4
    bltu t3, t1, 5b
    divu a1, a1, t2
    slli t5, a0, 5
    sub  a0, t5, a0
    add  a0, a0, a1
    ret


    .data
    .align 2
    .globl repeat_count
repeat_count:
    .word 1                     # patched by virtkit.bench before each run

    # tohost gets a page of its own: no other store may bring its page into the TLB.
    .align 12
    .globl tohost
tohost:
    .word 0, 0
    .align 12

    .bss
    .align 12
sieve_flags:
    .zero SIEVE_SIZE
crc_buffer:
    .zero CRC_BYTES
    .align 2
mat_a:
    .zero 2 * MAT_N * MAT_N
mat_b:
    .zero 2 * MAT_N * MAT_N
    .align 2
mat_c:
    .zero 4 * MAT_N * MAT_N
sort_array:
    .zero 4 * SORT_N
