# virtkit's M-mode SBI firmware: the SBI subset of virtkit.machine.sbi on the hart itself.
#
# Boots S-mode kernels on QEMU's virt board (qemu-system-riscv32 -machine virt
# -bios <this image> -kernel <kernel>) and on virtkit's Machine(firmware="image"),
# which assembles this file at 0x8000_0000. It does what OpenSBI's FW_JUMP does, minus
# everything a single-hart board without a device tree does not need:
#
#   - enter at 0x8000_0000 in M-mode with a0 = hartid, a1 = device tree (QEMU) or 0;
#   - delegate to S-mode the exceptions and interrupts a kernel handles, open PMP,
#     enable the counters for S-mode, set up the 16550 UART (8N1, FIFOs);
#   - mret to the kernel at 0x8020_0000 in S-mode with a0 and a1 as received.
#
# Then it handles ECALLs from S-mode (SBI spec v2.0: EID in a7, FID in a6, error in a0,
# value in a1) and the M-mode timer interrupt:
#   Base (EID 0x10), legacy putchar/getchar (0x01/0x02) on the UART, TIME set_timer on
#   the CLINT's mtimecmp, HSM hart_get_status, SRST through the sifive_test finisher,
#   DBCN write/read/write_byte on the UART. Anything else: SBI_ERR_NOT_SUPPORTED.
# DBCN buffers must lie at or above 0x8000_0000 and not wrap around (without a device
# tree the firmware does not know where RAM ends).
# Any other trap into M-mode prints mcause, mepc and mtval and fails the run through
# the finisher with code 1.
#
# Register conventions inside the trap handler: the interrupted a0..a7 stay live until
# a handler returns; helpers take t6 (a byte) and clobber t0 and t1; puts and put_hex
# are called with t5 as the link register because they call uart_putc themselves.

    .equ UART0, 0x10000000          # NS16550A (board.UART0_BASE)
    .equ UART_RBR, 0                # receive buffer (read)
    .equ UART_THR, 0                # transmit holding (write)
    .equ UART_IER, 1
    .equ UART_FCR, 2
    .equ UART_LCR, 3
    .equ UART_LSR, 5
    .equ UART_LSR_DR, 0x01          # data ready
    .equ UART_LSR_THRE, 0x20        # transmit holding register empty
    .equ UART_LCR_8N1, 0x03
    .equ UART_FCR_ENABLE_CLEAR, 0x07

    .equ TEST_BASE, 0x00100000      # sifive_test finisher (board.TEST_BASE)
    .equ FINISHER_PASS, 0x5555
    .equ FINISHER_FAIL, 0x3333
    .equ FINISHER_RESET, 0x7777

    .equ CLINT_MTIMECMP, 0x02004000 # mtimecmp of hart 0

    .equ KERNEL_BASE, 0x80200000    # FW_JUMP_ADDR (board.KERNEL_BASE)
    .equ RAM_BASE, 0x80000000

    .equ MSTATUS_MPP, 0x1800
    .equ MSTATUS_MPP_S, 0x0800
    .equ MIP_SSIP, 0x002
    .equ MIP_STIP, 0x020
    .equ MIP_MTIP, 0x080
    .equ MIP_SEIP, 0x200
    .equ IRQ_M_TIMER, 7
    .equ CAUSE_SUPERVISOR_ECALL, 9
    # misaligned/access faults (0, 1, 4-7), illegal instruction (2), breakpoint (3),
    # ECALL from U (8), page faults (12, 13, 15): as virtkit.machine.sbi.MEDELEG
    .equ MEDELEG, 0xB1FF
    .equ PMPCFG_NAPOT_RWX, 0x1F

    .equ SBI_SUCCESS, 0
    .equ SBI_ERR_NOT_SUPPORTED, -2
    .equ SBI_ERR_INVALID_PARAM, -3
    .equ EID_LEGACY_PUTCHAR, 0x01
    .equ EID_LEGACY_GETCHAR, 0x02
    .equ EID_BASE, 0x10
    .equ EID_TIME, 0x54494D45
    .equ EID_HSM, 0x48534D
    .equ EID_SRST, 0x53525354
    .equ EID_DBCN, 0x4442434E
    .equ SPEC_VERSION, 0x02000000   # v2.0
    .equ IMPL_ID, 0x564B            # "VK", as virtkit.machine.sbi.IMPL_ID
    .equ IMPL_VERSION, 1

    # The trap frame: the registers a handler may change, on the firmware's own stack.
    .equ FRAME_RA, 0
    .equ FRAME_T0, 4
    .equ FRAME_A0, 32
    .equ FRAME_A1, 36
    .equ FRAME_SIZE, 64

    .text
    .globl _start
_start:
    la t0, trap_entry
    csrw mtvec, t0
    la t0, trap_stack_top
    csrw mscratch, t0
    li t0, MEDELEG
    csrw medeleg, t0
    li t0, MIP_SSIP | MIP_STIP | MIP_SEIP
    csrw mideleg, t0
    csrw mie, zero
    li t0, -1
    csrw mcounteren, t0
    csrw pmpaddr0, t0
    li t0, PMPCFG_NAPOT_RWX
    csrw pmpcfg0, t0
    csrw satp, zero

    li t0, UART0
    sb zero, UART_IER(t0)
    li t1, UART_LCR_8N1
    sb t1, UART_LCR(t0)
    li t1, UART_FCR_ENABLE_CLEAR
    sb t1, UART_FCR(t0)

    li t0, MSTATUS_MPP
    csrc mstatus, t0
    li t0, MSTATUS_MPP_S
    csrs mstatus, t0
    li t0, KERNEL_BASE
    csrw mepc, t0
    mret                            # to the kernel, a0 = hartid, a1 = device tree

# -- Traps into M-mode ----------------------------------------------------------------------
    .align 2
trap_entry:
    csrrw sp, mscratch, sp          # sp = firmware stack, mscratch = the kernel's sp
    addi sp, sp, -FRAME_SIZE
    sw ra, 0(sp)
    sw t0, 4(sp)
    sw t1, 8(sp)
    sw t2, 12(sp)
    sw t3, 16(sp)
    sw t4, 20(sp)
    sw t5, 24(sp)
    sw t6, 28(sp)
    sw a0, 32(sp)
    sw a1, 36(sp)
    csrr t0, mcause
    bltz t0, interrupt
    li t1, CAUSE_SUPERVISOR_ECALL
    beq t0, t1, ecall
    j unhandled_trap

interrupt:
    slli t0, t0, 1                  # drop the Interrupt bit
    srli t0, t0, 1
    li t1, IRQ_M_TIMER
    bne t0, t1, unhandled_trap
    li t1, MIP_MTIP                 # the kernel's timer is due: pass it on as STIP
    csrc mie, t1
    li t1, MIP_STIP
    csrs mip, t1
    j trap_return

ecall:
    csrr t0, mepc
    addi t0, t0, 4
    csrw mepc, t0
    li t0, EID_LEGACY_PUTCHAR
    beq a7, t0, legacy_putchar
    li t0, EID_LEGACY_GETCHAR
    beq a7, t0, legacy_getchar
    li t0, EID_BASE
    beq a7, t0, base
    li t0, EID_TIME
    beq a7, t0, time
    li t0, EID_HSM
    beq a7, t0, hsm
    li t0, EID_SRST
    beq a7, t0, srst
    li t0, EID_DBCN
    beq a7, t0, dbcn
not_supported:
    li a0, SBI_ERR_NOT_SUPPORTED
    li a1, 0
    j return_error_value
invalid_param:
    li a0, SBI_ERR_INVALID_PARAM
    li a1, 0
    j return_error_value
success:                            # a1 = value
    li a0, SBI_SUCCESS
return_error_value:
    sw a1, FRAME_A1(sp)
return_a0:
    sw a0, FRAME_A0(sp)
trap_return:
    lw ra, 0(sp)
    lw t0, 4(sp)
    lw t1, 8(sp)
    lw t2, 12(sp)
    lw t3, 16(sp)
    lw t4, 20(sp)
    lw t5, 24(sp)
    lw t6, 28(sp)
    lw a0, 32(sp)
    lw a1, 36(sp)
    addi sp, sp, FRAME_SIZE
    csrrw sp, mscratch, sp
    mret

# -- Legacy console (chapter 5): the result in a0 only --------------------------------------
legacy_putchar:
    mv t6, a0
    jal uart_putc
    li a0, 0
    j return_a0
legacy_getchar:
    jal uart_getc
    mv a0, t6
    j return_a0

# -- Base (chapter 4) ------------------------------------------------------------------------
base:
    li t0, 0
    beq a6, t0, base_spec_version
    li t0, 1
    beq a6, t0, base_impl_id
    li t0, 2
    beq a6, t0, base_impl_version
    li t0, 3
    beq a6, t0, base_probe_extension
    li t0, 4
    beq a6, t0, base_mvendorid
    li t0, 5
    beq a6, t0, base_marchid
    li t0, 6
    beq a6, t0, base_mimpid
    j not_supported
base_spec_version:
    li a1, SPEC_VERSION
    j success
base_impl_id:
    li a1, IMPL_ID
    j success
base_impl_version:
    li a1, IMPL_VERSION
    j success
base_mvendorid:
    csrr a1, mvendorid
    j success
base_marchid:
    csrr a1, marchid
    j success
base_mimpid:
    csrr a1, mimpid
    j success
base_probe_extension:
    li a1, 1
    li t0, EID_LEGACY_PUTCHAR
    beq a0, t0, success
    li t0, EID_LEGACY_GETCHAR
    beq a0, t0, success
    li t0, EID_BASE
    beq a0, t0, success
    li t0, EID_TIME
    beq a0, t0, success
    li t0, EID_HSM
    beq a0, t0, success
    li t0, EID_SRST
    beq a0, t0, success
    li t0, EID_DBCN
    beq a0, t0, success
    li a1, 0
    j success

# -- TIME (chapter 6): set_timer(stime_value in a1:a0) --------------------------------------
time:
    bnez a6, not_supported
    li t0, CLINT_MTIMECMP
    li t1, -1
    sw t1, 4(t0)                    # no spurious interrupt between the two halves
    sw a0, 0(t0)
    sw a1, 4(t0)
    li t0, MIP_STIP
    csrc mip, t0
    li t0, MIP_MTIP
    csrs mie, t0
    li a1, 0
    j success

# -- HSM (chapter 9): hart_get_status(hartid) -----------------------------------------------
hsm:
    li t0, 2
    bne a6, t0, not_supported
    bnez a0, invalid_param          # hart 0 is the only hart
    li a1, 0                        # SBI_HSM_STATE_STARTED
    j success

# -- SRST (chapter 10): system_reset(reset_type, reset_reason) ------------------------------
srst:
    bnez a6, not_supported
    beqz a0, shutdown
    li t0, 2
    bleu a0, t0, reboot             # cold (1) or warm (2) reboot
    j invalid_param
shutdown:
    li t0, TEST_BASE
    li t1, FINISHER_PASS
    li t2, 1                        # SBI_SRST_RESET_REASON_SYSFAIL: fail with code 1
    bne a1, t2, 1f
    li t1, (1 << 16) | FINISHER_FAIL
1:  sw t1, 0(t0)
    j hang
reboot:
    li t0, TEST_BASE
    li t1, FINISHER_RESET
    sw t1, 0(t0)
hang:
    wfi
    j hang

# -- DBCN (chapter 12) -----------------------------------------------------------------------
dbcn:
    li t0, 2
    beq a6, t0, dbcn_write_byte
    bgtu a6, t0, not_supported
    bnez a2, invalid_param          # no memory above 4 GiB
    li t0, RAM_BASE
    bltu a1, t0, invalid_param
    add t3, a1, a0                  # end of the buffer
    bltu t3, a1, invalid_param      # it wraps around
    mv t2, a1
    bnez a6, dbcn_read
dbcn_write:
    beq t2, t3, dbcn_done
    lbu t6, 0(t2)
    jal uart_putc
    addi t2, t2, 1
    j dbcn_write
dbcn_read:
    beq t2, t3, dbcn_done
    jal uart_getc
    bltz t6, dbcn_done
    sb t6, 0(t2)
    addi t2, t2, 1
    j dbcn_read
dbcn_done:
    sub a1, t2, a1                  # bytes written or read
    j success
dbcn_write_byte:
    mv t6, a0
    jal uart_putc
    li a1, 0
    j success

# -- Unhandled traps -------------------------------------------------------------------------
unhandled_trap:
    la t2, message_unhandled
    jal t5, puts
    csrr t3, mcause
    jal t5, put_hex
    la t2, message_mepc
    jal t5, puts
    csrr t3, mepc
    jal t5, put_hex
    la t2, message_mtval
    jal t5, puts
    csrr t3, mtval
    jal t5, put_hex
    li t6, '\n'
    jal uart_putc
    li t0, TEST_BASE
    li t1, (1 << 16) | FINISHER_FAIL
    sw t1, 0(t0)
    j hang

# -- UART helpers -----------------------------------------------------------------------------
uart_putc:                          # t6 = byte; waits until THR is empty
    li t0, UART0
1:  lbu t1, UART_LSR(t0)
    andi t1, t1, UART_LSR_THRE
    beqz t1, 1b
    sb t6, UART_THR(t0)
    ret

uart_getc:                          # t6 = the next byte, or -1 if none is waiting
    li t0, UART0
    li t6, -1
    lbu t1, UART_LSR(t0)
    andi t1, t1, UART_LSR_DR
    beqz t1, 1f
    lbu t6, UART_RBR(t0)
1:  ret

puts:                               # t2 = NUL-terminated string; returns through t5
    lbu t6, 0(t2)
    beqz t6, 1f
    jal uart_putc
    addi t2, t2, 1
    j puts
1:  jr t5

put_hex:                            # t3 = value, printed as 0x and 8 hex digits; via t5
    li t6, '0'
    jal uart_putc
    li t6, 'x'
    jal uart_putc
    li t4, 28
1:  srl t6, t3, t4
    andi t6, t6, 0xF
    addi t6, t6, '0'
    li t0, '9' + 1
    blt t6, t0, 2f
    addi t6, t6, 'a' - '0' - 10
2:  jal uart_putc
    addi t4, t4, -4
    bgez t4, 1b
    jr t5

    .rodata
message_unhandled:
    .asciz "sbi: unhandled trap: mcause "
message_mepc:
    .asciz " mepc "
message_mtval:
    .asciz " mtval "

    .bss
    .align 4
trap_stack:
    .zero 1024
trap_stack_top:
