"""The compiled core: fetch, decode and execute RV32IMA + Zicsr + Zifencei + H instructions.

``run`` is the one entry point. It executes until something Python must see happens
(see virtkit.cpu.exits) and returns the exit reason. Each instruction word is decoded
once (virtkit.cpu.decode: major opcode, Volume I, table 24.1, then funct3/funct7)
into a form the hot loop dispatches on with one switch, and the decode cache keeps
that form for as long as the word in RAM is unchanged. The common instructions
(integer, branches, loads and stores that hit the TLB) are executed inline in
``execute``; everything rarer goes through helpers that are compiled separately, so
the hot loop stays small. The hot loop reads registers, TLB entries and the decode
cache through the one ``state`` buffer and RAM through one 32-bit view (LBU and SB
alone use the bytes themselves), so that the machine keeps few base pointers and more
of its registers for the guest's values.

Interrupts are checked at these points, and only there:
  - when ``run`` is entered, and after every SYSTEM instruction (CSR accesses, xRET,
    WFI, ECALL, EBREAK, SFENCE.VMA), which end the current batch;
  - when mtime reaches mtimecmp: ``run`` sizes each batch to end at that instruction;
  - after a store to the CLINT, which ends the batch too.
An interrupt is therefore taken before the first instruction that follows the event
that made it pending and enabled, which is what the spec requires (3.1.9).

Time is deterministic: every retired instruction is one tick, mtime advances one step
every TICKS_PER_MTIME ticks, and a WFI whose wake-up is the timer skips ahead to it.

Virtualization (the H extension, privileged spec 20211203, chapter 8) costs the hot
loop nothing: the mode with V=1 only selects other TLB arrays and another tag bias
when a batch starts (virtkit.cpu.mmu). The hypervisor instructions, the VS CSRs and
the virtual-instruction exceptions live in the SYSTEM helpers.

Values in x are kept as unsigned 32-bit numbers in int64; ``signed`` reinterprets one.
"""

from __future__ import annotations

import numpy as np

from virtkit.cpu import csrfile as F
from virtkit.cpu import decode as D
from virtkit.cpu import exits as E
from virtkit.cpu import mmu, trap
from virtkit.cpu import state as S
from virtkit.cpu.jitcache import njit
from virtkit.isa import causes as C
from virtkit.isa import instructions as I

MASK32 = 0xFFFFFFFF
NEVER = 1 << 62  # a number of ticks no run reaches
NO_INSTRUCTION = np.int64(0)  # the instruction bits of a trap not caused by one
NO_VALUE = np.int64(0)  # tval of an interrupt (np.int64: see virtkit.cpu.mmu)
# The ``jump`` of an instruction in the hot loop is the byte offset from its pc to the
# next one when it jumps; every real jump is even, so odd values can mean something else.
NO_JUMP = 1  # execution goes on at the next word
FAULTED = 3  # the instruction raised an exception
SLOW_ACCESS = 5  # a load or store for the slow path
FETCH_PAGE_MASK = 0xFFFFF003  # the page of a pc, and the bits that make it misaligned
PAGE_OFFSET = mmu.PAGE_SIZE - 1  # the offset of an address in its page
PAGE_WORD_BITS = 10  # a page holds 2**10 words
PAGE_WORD_OFFSET = (1 << PAGE_WORD_BITS) - 1  # the index of a word in its page
NO_PAGE = -(1 << 40)  # page_end of a block of one instruction: no word is in its page

# Fully fixed SYSTEM encodings, from the instruction table.
ECALL = I.BY_NAME["ecall"].match
EBREAK = I.BY_NAME["ebreak"].match
MRET = I.BY_NAME["mret"].match
SRET = I.BY_NAME["sret"].match
WFI = I.BY_NAME["wfi"].match
SFENCE_VMA_MATCH = I.BY_NAME["sfence.vma"].match
SFENCE_VMA_MASK = I.BY_NAME["sfence.vma"].mask
HFENCE_VVMA_MATCH = I.BY_NAME["hfence.vvma"].match
HFENCE_GVMA_MATCH = I.BY_NAME["hfence.gvma"].match
# HLV, HLVX and HSV (8.3.1): funct3 = 100 and funct7 = 0110 ss x, where ss is log2 of
# the access size and x is 1 for HSV; for loads the rs2 field says signed (00000),
# unsigned (00001) or HLVX (00011). The table's rows are the encodings that exist.
_HYPERVISOR_MEMORY = [insn for insn in I.INSTRUCTIONS if insn.format in ("HLV", "HSV")]
HYPERVISOR_MEMORY_MATCH = np.array([insn.match for insn in _HYPERVISOR_MEMORY], dtype=np.int64)
HYPERVISOR_MEMORY_MASK = np.array([insn.mask for insn in _HYPERVISOR_MEMORY], dtype=np.int64)
HLV_SIGNED = 0b00000
HLVX = 0b00011

# How a SYSTEM or AMO helper ends.
NEXT = 0  # continue at pc + 4
JUMP = 1  # continue at st[PC] (xRET)
FAULT = 2  # an exception is recorded in st[EXC_CAUSE] / st[EXC_TVAL]
EXIT = 3  # exit to Python; st[EXIT_REASON] says why


@njit(cache=True)
def virtual_instruction(st, insn):
    """Record a virtual-instruction exception (8.6.1); tval holds the instruction bits,
    as for an illegal instruction."""
    mmu.raise_exception(st, C.CAUSE_VIRTUAL_INSTRUCTION, insn)
    return FAULT


@njit(cache=True)
def illegal(st, insn):
    """Record an illegal-instruction exception; tval holds the instruction bits."""
    mmu.raise_exception(st, C.CAUSE_ILLEGAL_INSTRUCTION, insn)
    return FAULT


@njit(cache=True)
def signed(value):
    return (value ^ 0x80000000) - 0x80000000


@njit(cache=True)
def data_context(st, csr):
    """The context (privilege + 4 * V) of loads and stores: the current mode, or, when
    M-mode sets MPRV, the mode MPP and MPV name (3.1.6.3, 8.4.1)."""
    priv = st[S.PRIV]
    mstatus = csr[F.CSR_MSTATUS]
    if priv == S.PRV_M and (mstatus & F.MSTATUS_MPRV):
        mpp = (mstatus & F.MSTATUS_MPP) >> F.MSTATUS_MPP_SHIFT
        if mpp != S.PRV_M and (csr[F.CSR_MSTATUSH] & F.MSTATUSH_MPV):
            return mpp + S.CONTEXT_V
        return mpp
    return priv + S.CONTEXT_V * st[S.VIRT]


# -- M extension (Volume I, chapter 7) ------------------------------------------------


@njit(cache=True)
def execute_muldiv(funct3, a, b):
    sa = signed(a)
    sb = signed(b)
    if funct3 == 0:  # MUL (in uint64, where the full product fits without overflow)
        return np.int64((np.uint64(a) * np.uint64(b)) & np.uint64(MASK32))
    if funct3 == 1:  # MULH
        return ((sa * sb) >> 32) & MASK32
    if funct3 == 2:  # MULHSU
        return ((sa * b) >> 32) & MASK32
    if funct3 == 3:  # MULHU: the full product needs 64 unsigned bits
        return np.int64((np.uint64(a) * np.uint64(b)) >> np.uint64(32))
    if funct3 == 4:  # DIV: rounds towards zero; x/0 = -1; overflow gives the dividend
        if sb == 0:
            return MASK32
        if sa == -(1 << 31) and sb == -1:
            return a
        q = abs(sa) // abs(sb)
        return (-q if (sa < 0) != (sb < 0) else q) & MASK32
    if funct3 == 5:  # DIVU
        return MASK32 if b == 0 else a // b
    if funct3 == 6:  # REM: the sign of the dividend; x%0 = x; overflow gives 0
        if sb == 0:
            return a
        if sa == -(1 << 31) and sb == -1:
            return 0
        r = abs(sa) % abs(sb)
        return (-r if sa < 0 else r) & MASK32
    return a if b == 0 else a % b  # REMU


# -- Loads and stores that miss the TLB, cross a page, or are misaligned --------------


@njit(cache=True)
def data_trap(st, context):
    """A load or store in ``context`` failed. When it was made as though V=1 from a
    V=0 mode (HLV, HSV, MPRV with MPV), its tval is a guest virtual address all the
    same: note it for the GVA bit, which V alone would not set (8.2.1)."""
    if context >= S.CONTEXT_V:
        st[S.EXC_GVA] = 1
    return mmu.ACCESS_TRAP


@njit(cache=True)
def extend(value, size, is_signed):
    """The low ``size`` bytes of a loaded ``value``, sign-extended if ``is_signed``
    (LB, LH, HLV.B, HLV.H), as an unsigned 32-bit number."""
    bits = 8 * size
    low = value & ((1 << bits) - 1)
    if not is_signed:
        return low
    sign = 1 << (bits - 1)
    return ((low ^ sign) - sign) & MASK32


@njit(cache=True)
def load_slow(st, csr, ram, tlb_tag, tlb_delta, stats, va, size, is_signed, access, context):
    """Returns (status, value), the value extended to 32 bits (see ``extend``).
    Misaligned loads are handled byte by byte."""
    if va & (size - 1) == 0:
        pa = mmu.translate(st, csr, ram, tlb_tag, tlb_delta, stats, va, size, access, context)
        if pa < 0:
            return data_trap(st, context), 0
        status, value = mmu.load_physical(st, ram, pa, size, va, mmu.ACCESS_LOAD)
        if status == mmu.ACCESS_TRAP:
            data_trap(st, context)
        return status, extend(value, size, is_signed)
    value = np.int64(0)  # (an int literal would compile another copy of extend)
    for k in range(size):
        byte_va = (va + k) & MASK32
        pa = mmu.translate(
            st, csr, ram, tlb_tag, tlb_delta, stats, byte_va, mmu.BYTE, access, context
        )
        if pa < 0:
            return data_trap(st, context), 0
        if not mmu.in_ram(st, pa, mmu.BYTE):
            mmu.raise_exception(st, C.CAUSE_LOAD_ACCESS, byte_va)  # no misaligned MMIO
            return data_trap(st, context), 0
        value |= mmu.ram_read(ram, pa, mmu.BYTE) << (8 * k)
    return mmu.ACCESS_OK, extend(value, size, is_signed)


@njit(cache=True)
def store_slow(st, csr, ram, tlb_tag, tlb_delta, stats, va, size, value, context):
    """Returns the status. A misaligned store checks every byte before writing any."""
    if va & (size - 1) == 0:
        pa = mmu.translate(
            st, csr, ram, tlb_tag, tlb_delta, stats, va, size, mmu.ACCESS_STORE, context
        )
        if pa < 0:
            return data_trap(st, context)
        status = mmu.store_physical(st, ram, pa, size, value, va)
        if status == mmu.ACCESS_TRAP:
            data_trap(st, context)
        return status
    addresses = np.empty(size, dtype=np.int64)
    for k in range(size):
        byte_va = (va + k) & MASK32
        pa = mmu.translate(
            st, csr, ram, tlb_tag, tlb_delta, stats, byte_va, mmu.BYTE, mmu.ACCESS_STORE, context
        )
        if pa < 0:
            return data_trap(st, context)
        if not mmu.in_ram(st, pa, mmu.BYTE):
            mmu.raise_exception(st, C.CAUSE_STORE_ACCESS, byte_va)
            return data_trap(st, context)
        addresses[k] = pa
    status = mmu.ACCESS_OK
    for k in range(size):
        result = mmu.store_physical(st, ram, addresses[k], mmu.BYTE, value >> (8 * k), va + k)
        if result != mmu.ACCESS_OK:
            status = result
    return status


# -- A extension (Volume I, chapter 8) -------------------------------------------------


@njit(cache=True)
def execute_amo(x, csr, st, ram, tlb_tag, tlb_delta, stats, insn, context):
    """LR.W, SC.W and the AMOs. Returns NEXT or FAULT; writes rd itself."""
    rd = (insn >> 7) & 31
    funct5 = insn >> 27
    va = x[(insn >> 15) & 31]
    b = x[(insn >> 20) & 31]
    if (insn >> 12) & 7 != 2:
        mmu.raise_exception(st, C.CAUSE_ILLEGAL_INSTRUCTION, insn)
        return FAULT
    is_lr = funct5 == 0b00010
    if va & 3:
        cause = C.CAUSE_MISALIGNED_LOAD if is_lr else C.CAUSE_MISALIGNED_STORE
        mmu.raise_exception(st, cause, va)
        data_trap(st, context)
        return FAULT
    access = mmu.ACCESS_LOAD if is_lr else mmu.ACCESS_STORE
    pa = mmu.translate(st, csr, ram, tlb_tag, tlb_delta, stats, va, mmu.WORD, access, context)
    if pa < 0:
        data_trap(st, context)
        return FAULT
    if not mmu.in_ram(st, pa, mmu.WORD):
        # Atomics are supported on RAM only (the PMA of the rest of the map).
        mmu.raise_exception(st, C.CAUSE_LOAD_ACCESS if is_lr else C.CAUSE_STORE_ACCESS, va)
        data_trap(st, context)
        return FAULT
    if is_lr:
        if (insn >> 20) & 31:
            mmu.raise_exception(st, C.CAUSE_ILLEGAL_INSTRUCTION, insn)
            return FAULT
        st[S.RESERVATION] = pa
        if rd:
            x[rd] = mmu.ram_read(ram, pa, mmu.WORD)
        return NEXT
    if funct5 == 0b00011:  # SC.W: succeeds only on the reserved address; always clears it
        success = st[S.RESERVATION] == pa
        st[S.RESERVATION] = -1
        if success:
            mmu.store_physical(st, ram, pa, mmu.WORD, b, va)
        if rd:
            x[rd] = 0 if success else 1
        return NEXT
    old = mmu.ram_read(ram, pa, mmu.WORD)
    so = signed(old)
    sb = signed(b)
    if funct5 == 0b00001:
        new = b  # AMOSWAP
    elif funct5 == 0b00000:
        new = (old + b) & MASK32  # AMOADD
    elif funct5 == 0b00100:
        new = old ^ b  # AMOXOR
    elif funct5 == 0b01100:
        new = old & b  # AMOAND
    elif funct5 == 0b01000:
        new = old | b  # AMOOR
    elif funct5 == 0b10000:
        new = old if so < sb else b  # AMOMIN
    elif funct5 == 0b10100:
        new = old if so > sb else b  # AMOMAX
    elif funct5 == 0b11000:
        new = old if old < b else b  # AMOMINU
    elif funct5 == 0b11100:
        new = old if old > b else b  # AMOMAXU
    else:
        mmu.raise_exception(st, C.CAUSE_ILLEGAL_INSTRUCTION, insn)
        return FAULT
    mmu.store_physical(st, ram, pa, mmu.WORD, new, va)
    if rd:
        x[rd] = old
    return NEXT


# -- SYSTEM (Zicsr, ECALL, EBREAK, xRET, WFI, SFENCE.VMA, the H instructions) -----------


@njit(cache=True)
def execute_csr(x, csr, st, tlb_tag, insn, priv, virt):
    """CSRRW, CSRRS, CSRRC and their immediate forms (Volume I, 9.1).

    With V=1 a supervisor CSR number reaches the matching VS CSR (8.2).
    """
    funct3 = (insn >> 12) & 7
    rd = (insn >> 7) & 31
    rs1 = (insn >> 15) & 31
    number = insn >> 20
    operand = rs1 if funct3 >= 5 else x[rs1]  # the immediate forms use the rs1 field
    kind = funct3 & 3  # 1: write, 2: set, 3: clear
    writes = kind == 1 or rs1 != 0
    verdict = F.check_access(st, csr, number, priv, virt, writes)
    if verdict == F.CSR_ILLEGAL:
        if st[S.SSTATUS_UNPRIVILEGED] and number == F.CSR_SSTATUS and priv == S.PRV_U:
            # The Popek-Goldberg switch (Hart.sstatus_unprivileged): like x86's POPF in
            # user mode, the access neither traps nor takes effect; a read sees the
            # real sstatus, a write is dropped.
            if rd:
                x[rd] = F.read(st, csr, number) & MASK32
            return NEXT
        return illegal(st, insn)
    if verdict == F.CSR_VIRTUAL:
        return virtual_instruction(st, insn)
    if virt:
        number = F.VS_ALIAS[number]
    old = F.read(st, csr, number)
    if writes:
        # CSRRS and CSRRC on mip work on the bits software wrote (mip's own and hvip's
        # VSSIP alias), never on the level a device drives onto SEIP (3.1.9): that
        # line would otherwise stick.
        base = csr[F.CSR_MIP] | csr[F.CSR_HVIP] if number == F.CSR_MIP else old
        if kind == 1:
            new = operand
        elif kind == 2:
            new = base | operand
        else:
            new = base & ~operand
        F.write(st, csr, tlb_tag, number, new)
        if number == F.CSR_MINSTRET or number == F.CSR_MINSTRETH:
            # The written value is what the next instruction reads: the writing
            # instruction's own increment is suppressed (3.1.10).
            st[S.MINSTRET_OFFSET] -= 1
    if rd:
        x[rd] = old & MASK32
    return NEXT


@njit(cache=True)
def execute_system(x, csr, st, tlb_tag, insn, pc):
    """The SYSTEM instructions with funct3 = 0 (the CSR instructions are execute_csr's).

    Who may execute what: 3.3 and 4.2.1 for M, S and U; for the hypervisor extension
    8.6.1: with V=1, an instruction HS-mode could execute (taking mstatus.TSR and TVM
    as 0) that VS- or VU-mode may not raises a virtual-instruction exception rather
    than an illegal-instruction one. TSR and TVM bind HS-mode only; VTSR, VTW and
    VTVM in hstatus do the same for VS-mode; TW binds every mode below M.
    """
    priv = st[S.PRIV]
    virt = st[S.VIRT]
    if insn == ECALL:
        if priv == S.PRV_M:
            cause = C.CAUSE_MACHINE_ECALL
        elif priv == S.PRV_U:
            cause = C.CAUSE_USER_ECALL  # from U- or VU-mode
        elif virt:
            cause = C.CAUSE_VIRTUAL_SUPERVISOR_ECALL
        else:
            cause = C.CAUSE_SUPERVISOR_ECALL
        mmu.raise_exception(st, cause, NO_VALUE)
        return FAULT
    if insn == EBREAK:
        if st[S.EBREAK_EXITS]:
            st[S.EXIT_REASON] = E.EXIT_EBREAK
            return EXIT
        mmu.raise_exception(st, C.CAUSE_BREAKPOINT, pc)
        return FAULT
    mstatus = csr[F.CSR_MSTATUS]
    hstatus = csr[F.CSR_HSTATUS]
    in_hs = priv == S.PRV_S and virt == 0
    in_vs = priv == S.PRV_S and virt != 0
    if insn == MRET:
        if priv == S.PRV_M:
            trap.mret(st, csr)
            return JUMP
        return illegal(st, insn)  # not HS-qualified: illegal from VS and VU too
    if insn == SRET:
        if priv == S.PRV_M or (in_hs and not (mstatus & F.MSTATUS_TSR)):
            trap.sret(st, csr)
            return JUMP
        if in_vs and not (hstatus & F.HSTATUS_VTSR):
            trap.sret(st, csr)
            return JUMP
        return virtual_instruction(st, insn) if virt else illegal(st, insn)
    if insn == WFI:
        if priv == S.PRV_M:
            return wait_for_interrupt(st, csr)
        if mstatus & F.MSTATUS_TW:
            return illegal(st, insn)
        if in_hs or (in_vs and not (hstatus & F.HSTATUS_VTW)):
            return wait_for_interrupt(st, csr)
        return virtual_instruction(st, insn) if virt else illegal(st, insn)
    fence = insn & SFENCE_VMA_MASK  # SFENCE.VMA, HFENCE.VVMA, HFENCE.GVMA: rs1 and rs2 vary
    if fence == SFENCE_VMA_MATCH:
        if priv == S.PRV_M or (in_hs and not (mstatus & F.MSTATUS_TVM)):
            mmu.tlb_flush(tlb_tag)
            return NEXT
        if in_vs and not (hstatus & F.HSTATUS_VTVM):
            mmu.tlb_flush_virtual(tlb_tag)  # the guest's own translations (8.5.3)
            return NEXT
        return virtual_instruction(st, insn) if virt else illegal(st, insn)
    if fence == HFENCE_VVMA_MATCH or fence == HFENCE_GVMA_MATCH:
        if virt:
            return virtual_instruction(st, insn)
        if priv == S.PRV_U:
            return illegal(st, insn)
        if fence == HFENCE_GVMA_MATCH and in_hs and (mstatus & F.MSTATUS_TVM):
            return illegal(st, insn)  # TVM binds HFENCE.GVMA, not HFENCE.VVMA (8.4.1)
        # Every V=1 entry combines both stages, so either fence forgets them all.
        mmu.tlb_flush_virtual(tlb_tag)
        return NEXT
    return illegal(st, insn)


@njit(cache=True)
def execute_hypervisor_memory(x, csr, st, ram, tlb_tag, tlb_delta, stats, insn):
    """HLV, HLVX and HSV (8.3.1): a load or store made as though V=1, in VU-mode when
    hstatus.SPVP = 0 and in VS-mode when it is 1, whatever MPRV says.

    Valid in M- and HS-mode, and in U-mode when hstatus.HU = 1; with V=1 a
    virtual-instruction exception. Returns NEXT, FAULT or EXIT (an MMIO read or write,
    completed like that of a load or store).
    """
    for i in range(HYPERVISOR_MEMORY_MATCH.size):
        if insn & HYPERVISOR_MEMORY_MASK[i] == HYPERVISOR_MEMORY_MATCH[i]:
            break
    else:
        return illegal(st, insn)
    if st[S.VIRT]:
        return virtual_instruction(st, insn)
    hstatus = csr[F.CSR_HSTATUS]
    if st[S.PRIV] == S.PRV_U and not (hstatus & F.HSTATUS_HU):
        return illegal(st, insn)
    context = ((hstatus & F.HSTATUS_SPVP) >> F.HSTATUS_SPVP_SHIFT) + S.CONTEXT_V
    funct7 = insn >> 25
    size = np.int64(1) << ((funct7 >> 1) & 3)
    va = x[(insn >> 15) & 31]
    rd = (insn >> 7) & 31
    if funct7 & 1:  # HSV.B, HSV.H, HSV.W
        status = store_slow(
            st, csr, ram, tlb_tag, tlb_delta, stats, va, size, x[(insn >> 20) & 31], context
        )
        if status == mmu.ACCESS_MMIO:
            st[S.MMIO_PENDING] = 2
            st[S.EXIT_REASON] = E.EXIT_MMIO_WRITE
            return EXIT
        if status == mmu.ACCESS_HTIF:
            st[S.EXIT_REASON] = E.EXIT_HALT
            return EXIT
        return FAULT if status == mmu.ACCESS_TRAP else NEXT
    kind = (insn >> 20) & 31
    access = mmu.ACCESS_LOAD_X if kind == HLVX else mmu.ACCESS_LOAD
    signed_load = kind == HLV_SIGNED
    status, value = load_slow(
        st, csr, ram, tlb_tag, tlb_delta, stats, va, size, signed_load, access, context
    )
    if status == mmu.ACCESS_MMIO:
        st[S.EXIT_RD] = rd
        st[S.EXIT_SIGNED] = 1 if signed_load else 0
        st[S.MMIO_PENDING] = 1
        st[S.EXIT_REASON] = E.EXIT_MMIO_READ
        return EXIT
    if status == mmu.ACCESS_TRAP:
        return FAULT
    if rd:
        x[rd] = value
    return NEXT


@njit(cache=True)
def ticks_until_timer(st):
    """Ticks until mtime reaches mtimecmp; 0 if it already has; -1 if never."""
    mtime_at_target = st[S.MTIMECMP] - st[S.MTIME_OFFSET]
    if st[S.MTIMECMP] < 0 or mtime_at_target > NEVER // st[S.TICKS_PER_MTIME]:
        return -1
    wait = mtime_at_target * st[S.TICKS_PER_MTIME] - st[S.TICKS]
    return wait if wait > 0 else 0


@njit(cache=True)
def wait_for_interrupt(st, csr):
    """WFI (3.3.3): a no-op when any interrupt is pending; otherwise idle.

    The spec lets a hart resume from WFI for any reason; resuming whenever mip is
    non-zero, enabled or not, is what the riscv-tests' rv32si wfi test expects.

    The hart idles until the timer when the timer interrupt is enabled in mie (the
    ticks pass as idle cycles, so mtime and mcycle jump ahead); anything else could
    only be woken by a device, which Python owns, so the core exits.
    """
    if F.mip_value(st, csr):
        return NEXT  # something is pending: resume at once, even if it is disabled
    if st[S.WFI_EXITS] == 0 and (csr[F.CSR_MIE] & F.MIP_MTIP):
        wait = ticks_until_timer(st)
        if wait >= 0:
            st[S.TICKS] += wait
            return NEXT
    st[S.EXIT_REASON] = E.EXIT_WFI
    return EXIT


# -- The hot loop -------------------------------------------------------------------------


@njit(cache=True)
def flush_retired(st, stats, retired):
    st[S.TICKS] += retired
    st[S.RETIRED] += retired
    stats[S.STAT_INSNS_BY_MODE + st[S.PRIV] + 4 * st[S.VIRT]] += retired


@njit(cache=True)
def is_breakpoint(st, pc):
    for i in range(st[S.N_BREAKPOINTS]):
        if st[S.BREAKPOINT_BASE + i] == pc:
            return True
    return False


@njit(cache=True)
def execute(state, x, csr, st, tlb_tag, tlb_delta, stats, ram, ram32, limit):
    """Run up to ``limit`` instructions. Returns (steps taken, exit reason or EXIT_NONE).

    A step is a retired instruction or one that trapped. Ends early after a SYSTEM
    instruction, a trap, or a store to the CLINT, so that ``run`` can check for
    interrupts. ``retired`` counts this call's instructions (kept up to date between
    blocks and worked out from ``word`` within one, see below); ``counted`` how many
    of them are already in the counters (flushed before any helper that reads time).

    Each instruction is fetched as a word of RAM and executed from its decoded form
    (virtkit.cpu.decode), which the decode cache keeps as long as the word is unchanged.
    """
    pc = st[S.PC]
    context = st[S.PRIV] + S.CONTEXT_V * st[S.VIRT]
    data = data_context(st, csr)
    # The slots in state of the TLB tags for this context; an entry's delta is
    # TLB_SIZE slots after its tag (see virtkit.cpu.state).
    fetch_tags = S.TLB_TAG_BASE + mmu.tlb_base(context, mmu.ACCESS_FETCH)
    load_tags = S.TLB_TAG_BASE + mmu.tlb_base(data, mmu.ACCESS_LOAD)
    store_tags = S.TLB_TAG_BASE + mmu.tlb_base(data, mmu.ACCESS_STORE)
    # A TLB tag is vpn + bias; the bias carries the VMID in V=1 contexts (see mmu).
    fetch_bias = mmu.tlb_tag_bias(csr, context)
    data_bias = mmu.tlb_tag_bias(csr, data)
    fetch_page = -1
    fetch_delta = 0
    tohost_offset = st[S.TOHOST] - S.RAM_BASE  # HTIF (negative: none)
    has_breakpoints = st[S.N_BREAKPOINTS] > 0
    skip_breakpoint = st[S.SKIP_BREAKPOINT]  # only for the first instruction
    st[S.SKIP_BREAKPOINT] = -1
    retired = 0
    counted = 0
    # Instructions run in blocks. A block starts where the fetch is looked up (the
    # first instruction, the target of a jump to another page, the start of the next
    # page) and goes on through the words of its page without looking up the fetch or
    # the limit again. In a block, ``word`` (the instruction's index in RAM as 32-bit
    # words) is all that advances: pc = (word << 2) - fetch_delta, and the limit is
    # reached at word ``limit_word`` (retired = word + limit - limit_word). The block
    # ends when ``word`` reaches ``block_end``: ``page_end`` (the word after the page)
    # or ``limit_word``. A branch or jump taken to the block's page only moves
    # ``word``: the block goes on. A block of one instruction has page_end NO_PAGE.
    while retired < limit:
        # Fetch: from the page of the last block, else through the fetch TLB. A pc that
        # is not 4-byte aligned never matches fetch_page and faults in the slow path.
        # With pc breakpoints set, fetch_page stays -1 and every block is one
        # instruction, so every fetch comes here and checks them.
        if (pc & FETCH_PAGE_MASK) == fetch_page:
            word = (pc + fetch_delta) >> 2
            page_end = (word | PAGE_WORD_OFFSET) + 1
        else:
            if (
                has_breakpoints
                and is_breakpoint(st, pc)
                and not (retired == 0 and pc == skip_breakpoint)
            ):
                st[S.PC] = pc
                flush_retired(st, stats, retired - counted)
                st[S.EXIT_REASON] = E.EXIT_BREAKPOINT
                st[S.EXIT_PC] = pc
                return retired, E.EXIT_BREAKPOINT
            index = fetch_tags + ((pc >> 12) & (S.TLB_ENTRIES - 1))
            if state[np.uint64(index)] == (pc >> 12) + fetch_bias and (pc & 3) == 0:
                fetch_delta = state[np.uint64(index + S.TLB_SIZE)]
                word = (pc + fetch_delta) >> 2
                page_end = NO_PAGE
                if not has_breakpoints:
                    fetch_page = pc & ~PAGE_OFFSET
                    page_end = (word | PAGE_WORD_OFFSET) + 1
            else:
                # A fetch that missed the TLB goes through the MMU and makes a block of
                # one instruction: its translation holds for this pc only (a PMP region
                # may be smaller than a page), so no other pc may use its delta.
                flush_retired(st, stats, retired - counted)
                counted = retired
                if pc & 3:  # IALIGN = 32 (Volume I, 1.5)
                    mmu.raise_exception(st, C.CAUSE_MISALIGNED_FETCH, pc)
                    return retired + 1, take_exception(x, st, csr, stats, pc, NO_INSTRUCTION)
                pa = mmu.translate(
                    st, csr, ram, tlb_tag, tlb_delta, stats, pc, mmu.WORD, mmu.ACCESS_FETCH, context
                )
                if pa >= 0 and not mmu.in_ram(st, pa, mmu.WORD):
                    mmu.raise_exception(st, C.CAUSE_FETCH_ACCESS, pc)  # code runs from RAM only
                    pa = -1
                if pa < 0:
                    return retired + 1, take_exception(x, st, csr, stats, pc, NO_INSTRUCTION)
                word = (pa - S.RAM_BASE) >> 2
                fetch_page = -1
                fetch_delta = (word << 2) - pc
                page_end = NO_PAGE
        limit_word = word + limit - retired
        if page_end == NO_PAGE:
            block_end = word + 1
        else:  # the lesser (min() would be compiled as a function of its own)
            block_end = page_end if page_end < limit_word else limit_word

        while True:  # the instructions of one block
            insn = np.int64(ram32[np.uint64(word)])
            entry = S.DECODE_BASE + S.DECODE_SLOTS * (word & (S.DECODE_ENTRIES - 1))
            if state[entry + D.ENTRY_WORD] != insn:
                form = D.decode(insn)
                state[entry + D.ENTRY_WORD] = insn
                state[entry + D.ENTRY_OP_RD] = form & 0xFFFF
                state[entry + D.ENTRY_SOURCES] = (form >> 16) & 0xFFFF
                state[entry + D.ENTRY_IMM] = form >> 32
            op_rd = state[entry + D.ENTRY_OP_RD]
            sources = state[entry + D.ENTRY_SOURCES]
            op = op_rd & D.OP_MASK
            # The registers are read and written in ``state`` itself, not through the
            # view x: one base pointer for all the hot loop's arrays leaves more
            # machine registers free. The form names registers by their slots in
            # state, and a result for x0 by the slot of the sink (see decode).
            rd = (op_rd >> 8) & 0xFF
            a = state[sources & 0xFF]
            b = state[(sources >> 8) & 0xFF]
            imm = state[entry + D.ENTRY_IMM]
            # Where execution goes on: the next word, or pc + jump (a byte offset; a
            # fault or a target that is not 4-byte aligned leave (jump & 3) != 0).
            jump = NO_JUMP

            # ALU instructions: the decoder turned those that write x0 into OP_NOP.
            if op == D.OP_ADDI:
                state[rd] = (a + imm) & MASK32
            elif op == D.OP_ADD:
                state[rd] = (a + b) & MASK32
            elif op == D.OP_SUB:
                state[rd] = (a - b) & MASK32
            elif op == D.OP_LUI:
                state[rd] = imm & MASK32
            elif op == D.OP_AUIPC:
                state[rd] = ((word << 2) - fetch_delta + imm) & MASK32
            elif op == D.OP_ANDI:
                state[rd] = a & imm & MASK32
            elif op == D.OP_ORI:
                state[rd] = (a | imm) & MASK32
            elif op == D.OP_XORI:
                state[rd] = (a ^ imm) & MASK32
            elif op == D.OP_SLTI:
                state[rd] = 1 if signed(a) < imm else 0
            elif op == D.OP_SLTIU:
                state[rd] = 1 if a < (imm & MASK32) else 0
            elif op == D.OP_SLLI:
                state[rd] = (a << imm) & MASK32
            elif op == D.OP_SRLI:
                state[rd] = a >> imm
            elif op == D.OP_SRAI:
                state[rd] = (signed(a) >> imm) & MASK32
            elif op == D.OP_AND:
                state[rd] = a & b
            elif op == D.OP_OR:
                state[rd] = a | b
            elif op == D.OP_XOR:
                state[rd] = a ^ b
            elif op == D.OP_SLL:
                state[rd] = (a << (b & 31)) & MASK32
            elif op == D.OP_SRL:
                state[rd] = a >> (b & 31)
            elif op == D.OP_SRA:
                state[rd] = (signed(a) >> (b & 31)) & MASK32
            elif op == D.OP_SLT:
                state[rd] = 1 if signed(a) < signed(b) else 0
            elif op == D.OP_SLTU:
                state[rd] = 1 if a < b else 0
            elif op == D.OP_MUL:  # in uint64, where the full product fits without overflow
                state[rd] = np.int64((np.uint64(a) * np.uint64(b)) & np.uint64(MASK32))
            elif (
                op == D.OP_MULH
                or op == D.OP_MULHSU
                or op == D.OP_MULHU
                or op == D.OP_DIV
                or op == D.OP_DIVU
                or op == D.OP_REM
                or op == D.OP_REMU
            ):
                state[rd] = execute_muldiv(op - D.OP_MUL, a, b)
            elif op == D.OP_NOP:
                pass
            # Branches and jumps: where they go is worked out after the switch.
            elif op == D.OP_BEQ:
                if a == b:
                    jump = imm
            elif op == D.OP_BNE:
                if a != b:
                    jump = imm
            elif op == D.OP_BLT:
                if signed(a) < signed(b):
                    jump = imm
            elif op == D.OP_BGE:
                if signed(a) >= signed(b):
                    jump = imm
            elif op == D.OP_BLTU:
                if a < b:
                    jump = imm
            elif op == D.OP_BGEU:
                if a >= b:
                    jump = imm
            # Jumps write their link only when the target is aligned: a jump that
            # faults leaves rd alone (for JALR, rd may be rs1: a is read already).
            elif op == D.OP_JAL:
                jump = imm
                if (jump & 3) == 0:
                    state[rd] = (((word + 1) << 2) - fetch_delta) & MASK32
            elif op == D.OP_JALR:
                pc = (word << 2) - fetch_delta
                jump = ((a + imm) & (MASK32 - 1)) - pc
                if (jump & 3) == 0:
                    state[rd] = (pc + 4) & MASK32
            # Loads and stores that hit the TLB; the rest (a miss, a misaligned
            # address, HTIF's tohost) go to the slow path after the switch. LW and LBU,
            # the common loads, take their value as it is.
            elif op == D.OP_LW:
                va = (a + imm) & MASK32
                index = load_tags + ((va >> 12) & (S.TLB_ENTRIES - 1))
                if state[np.uint64(index)] == (va >> 12) + data_bias and (va & 3) == 0:
                    offset = va + state[np.uint64(index + S.TLB_SIZE)]
                    state[rd] = np.int64(ram32[np.uint64(offset >> 2)])
                else:
                    jump = SLOW_ACCESS
            elif op == D.OP_LBU:
                va = (a + imm) & MASK32
                index = load_tags + ((va >> 12) & (S.TLB_ENTRIES - 1))
                if state[np.uint64(index)] == (va >> 12) + data_bias:
                    offset = va + state[np.uint64(index + S.TLB_SIZE)]
                    state[rd] = np.int64(ram[np.uint64(offset)])
                else:
                    jump = SLOW_ACCESS
            elif op == D.OP_SW:
                va = (a + imm) & MASK32
                index = store_tags + ((va >> 12) & (S.TLB_ENTRIES - 1))
                offset = va + state[np.uint64(index + S.TLB_SIZE)]
                if (
                    state[np.uint64(index)] == (va >> 12) + data_bias
                    and (va & 3) == 0
                    and offset != tohost_offset
                ):
                    ram32[np.uint64(offset >> 2)] = b
                else:
                    jump = SLOW_ACCESS
            elif op == D.OP_SB:
                va = (a + imm) & MASK32
                index = store_tags + ((va >> 12) & (S.TLB_ENTRIES - 1))
                offset = va + state[np.uint64(index + S.TLB_SIZE)]
                if (
                    state[np.uint64(index)] == (va >> 12) + data_bias
                    and (offset & ~3) != tohost_offset
                ):
                    ram[np.uint64(offset)] = b & 0xFF
                else:
                    jump = SLOW_ACCESS
            elif op == D.OP_SH:  # merged into the aligned word that holds it
                va = (a + imm) & MASK32
                index = store_tags + ((va >> 12) & (S.TLB_ENTRIES - 1))
                offset = va + state[np.uint64(index + S.TLB_SIZE)]
                if (
                    state[np.uint64(index)] == (va >> 12) + data_bias
                    and (va & 1) == 0
                    and (offset & ~3) != tohost_offset
                ):
                    shift = (offset & 3) << 3
                    mask = 0xFFFF << shift
                    old = np.int64(ram32[np.uint64(offset >> 2)])
                    ram32[np.uint64(offset >> 2)] = (old & ~mask) | ((b << shift) & mask)
                else:
                    jump = SLOW_ACCESS
            # The other loads come last: an ``or`` of cases splits LLVM's jump table,
            # and here it only splits off the cases after it.
            elif op == D.OP_LB or op == D.OP_LH or op == D.OP_LHU:
                funct3 = sources >> 8  # a load's byte 3 (see virtkit.cpu.decode)
                va = (a + imm) & MASK32
                size = 1 << (funct3 & 3)
                index = load_tags + ((va >> 12) & (S.TLB_ENTRIES - 1))
                if state[np.uint64(index)] == (va >> 12) + data_bias and (va & (size - 1)) == 0:
                    # Read as the aligned word that holds it (little-endian).
                    offset = va + state[np.uint64(index + S.TLB_SIZE)]
                    value = np.int64(ram32[np.uint64(offset >> 2)]) >> ((offset & 3) << 3)
                    state[rd] = extend(value, size, funct3 < 4)
                else:
                    jump = SLOW_ACCESS
            elif op == D.OP_AMO:
                retired = word + limit - limit_word
                flush_retired(st, stats, retired - counted)
                counted = retired
                outcome = execute_amo(x, csr, st, ram, tlb_tag, tlb_delta, stats, insn, data)
                if outcome == FAULT:
                    jump = FAULTED
            elif op == D.OP_SYSTEM:
                pc = (word << 2) - fetch_delta
                retired = word + limit - limit_word
                flush_retired(st, stats, retired - counted)
                counted = retired
                st[S.PC] = pc
                # By funct3: 0 the privileged instructions, 4 HLV/HLVX/HSV, else CSRs.
                if (insn >> 12) & 7 == 0:
                    outcome = execute_system(x, csr, st, tlb_tag, insn, pc)
                elif (insn >> 12) & 7 == 4:
                    outcome = execute_hypervisor_memory(
                        x, csr, st, ram, tlb_tag, tlb_delta, stats, insn
                    )
                else:
                    outcome = execute_csr(x, csr, st, tlb_tag, insn, st[S.PRIV], st[S.VIRT])
                if outcome == NEXT or outcome == JUMP:
                    if outcome == NEXT:
                        st[S.PC] = (pc + 4) & MASK32
                    # It retires in the mode it ran in (xRET changes the mode).
                    st[S.TICKS] += 1
                    st[S.RETIRED] += 1
                    stats[S.STAT_INSNS_BY_MODE + context] += 1
                    return retired + 1, E.EXIT_NONE
                if outcome == EXIT:
                    st[S.EXIT_PC] = pc
                    st[S.EXIT_INSN] = insn
                    reason = st[S.EXIT_REASON]
                    if reason == E.EXIT_WFI or reason == E.EXIT_HALT:
                        st[S.PC] = (pc + 4) & MASK32  # it retires; the hart stops after it
                        flush_retired(st, stats, retired + 1 - counted)
                    return retired + 1, reason
                jump = FAULTED
            else:
                illegal(st, insn)
                jump = FAULTED

            # A taken branch or jump is tested for first: the other cases set jump to
            # a constant, so the compiler sends them straight to theirs anyway.
            if (jump & 3) == 0:
                # A taken branch or jump, to an aligned target.
                target = word + (jump >> 2)
                if (page_end - 1 - target) >> PAGE_WORD_BITS:
                    # Not in the block's page (or the block has none): the next block
                    # looks up the fetch.
                    pc = ((word << 2) - fetch_delta + jump) & MASK32
                    retired = word + limit - limit_word + 1
                    break
                limit_word += target - word - 1  # one instruction retired, at word
                block_end = page_end if page_end < limit_word else limit_word
                word = target - 1  # the step to the next word below makes it target
            elif jump == NO_JUMP:
                pass  # on to the next word
            elif jump == SLOW_ACCESS:
                # A load or store the switch did not complete: load_slow and store_slow
                # translate it (filling the TLB), split a misaligned one into bytes,
                # and find what it reaches: RAM, the CLINT, tohost, or a device.
                pc = (word << 2) - fetch_delta
                retired = word + limit - limit_word
                flush_retired(st, stats, retired - counted)
                counted = retired
                va = (a + imm) & MASK32
                if op >= D.OP_SB:
                    status = store_slow(
                        st, csr, ram, tlb_tag, tlb_delta, stats, va, 1 << (op - D.OP_SB), b, data
                    )
                    if status == mmu.ACCESS_MMIO:
                        st[S.PC] = pc
                        st[S.EXIT_PC] = pc
                        st[S.EXIT_INSN] = insn
                        st[S.MMIO_PENDING] = 2
                        return retired + 1, E.EXIT_MMIO_WRITE
                    if status == mmu.ACCESS_TRAP:
                        return retired + 1, take_exception(x, st, csr, stats, pc, insn)
                    st[S.PC] = (pc + 4) & MASK32
                    if status == mmu.ACCESS_HTIF:
                        st[S.EXIT_PC] = pc
                        st[S.EXIT_INSN] = insn
                        flush_retired(st, stats, retired + 1 - counted)
                        return retired + 1, E.EXIT_HALT
                    if (va >> 16) == (S.CLINT_BASE >> 16):
                        # A CLINT store may raise or lower MSIP or MTIP: let run() look.
                        flush_retired(st, stats, retired + 1 - counted)
                        return retired + 1, E.EXIT_NONE
                else:
                    funct3 = sources >> 8
                    status, value = load_slow(
                        st,
                        csr,
                        ram,
                        tlb_tag,
                        tlb_delta,
                        stats,
                        va,
                        1 << (funct3 & 3),
                        funct3 < 4,
                        mmu.ACCESS_LOAD,
                        data,
                    )
                    if status == mmu.ACCESS_MMIO:
                        st[S.PC] = pc
                        st[S.EXIT_PC] = pc
                        st[S.EXIT_INSN] = insn
                        st[S.EXIT_RD] = (insn >> 7) & 31
                        st[S.EXIT_SIGNED] = 1 if funct3 < 4 else 0
                        st[S.MMIO_PENDING] = 1
                        return retired + 1, E.EXIT_MMIO_READ
                    if status == mmu.ACCESS_TRAP:
                        return retired + 1, take_exception(x, st, csr, stats, pc, insn)
                    state[rd] = value
            else:
                # An exception, or a target that is not 4-byte aligned (Volume I, 2.5),
                # reported on the branch or jump.
                pc = (word << 2) - fetch_delta
                retired = word + limit - limit_word
                if jump != FAULTED:
                    mmu.raise_exception(st, C.CAUSE_MISALIGNED_FETCH, (pc + jump) & MASK32)
                flush_retired(st, stats, retired - counted)
                return retired + 1, take_exception(x, st, csr, stats, pc, insn)
            word += 1
            if word == block_end:
                # The end of the page, or of the limit: the next block looks up the fetch.
                pc = ((word << 2) - fetch_delta) & MASK32
                retired = word + limit - limit_word
                break

    st[S.PC] = pc
    flush_retired(st, stats, retired - counted)
    return retired, E.EXIT_NONE


@njit(cache=True, inline="always")  # compiled into its one caller (see jitcache)
def transformed_instruction(x, insn, tval):
    """The transformed instruction of a load, store, AMO, HLV or HSV (8.6.3): the
    instruction with its immediate cleared and, in the rs1 field, the distance from
    the address it meant to access to the faulting address ``tval`` (non-zero only
    for the later bytes of a misaligned access). 0 for other instructions."""
    opcode = insn & 0x7F
    base = x[(insn >> 15) & 31]
    if opcode == I.OPCODE_LOAD:
        va = base + (signed(insn) >> 20)
        kept = insn & 0x00007FFF  # funct3, rd, opcode
    elif opcode == I.OPCODE_STORE:
        va = base + ((signed(insn) >> 25 << 5) | ((insn >> 7) & 31))
        kept = insn & 0x01F0707F  # rs2, funct3, opcode
    elif opcode == I.OPCODE_AMO or opcode == I.OPCODE_SYSTEM:
        va = base
        kept = insn & ~(31 << 15)  # everything but rs1
    else:
        return 0
    return kept | (((tval - va) & 31) << 15)


@njit(cache=True)
def take_exception(x, st, csr, stats, pc, insn):
    """Deliver the exception recorded in st, or exit if Python owns its target."""
    if st[S.EXC_TINST] == mmu.TINST_TRANSFORM:
        st[S.EXC_TINST] = transformed_instruction(x, insn, st[S.EXC_TVAL])
    return trap.take(st, csr, stats, st[S.EXC_CAUSE], trap.EXCEPTION, st[S.EXC_TVAL], pc, insn)


@njit(cache=True)
def run(state, ram, budget):
    """The entry point: run up to ``budget`` instructions and return the exit record.

    Instructions run in batches (``execute``); each batch ends at the next timer
    event, so a timer interrupt is seen at the instruction at which mtime reaches
    mtimecmp. The record is a tuple of the fields of virtkit.cpu.exits.Exit, in its
    order; the same values stay in the EXIT_* slots of the state.
    """
    x, csr, st, tlb_tag, tlb_delta, stats, decoded = S.split(state)
    ram32 = ram.view(np.uint32)
    remaining = budget
    reason = E.EXIT_BUDGET
    while remaining > 0:
        cause = trap.pending_interrupt(st, csr)
        if cause != trap.NO_INTERRUPT:
            pc = st[S.PC]
            taken = trap.take(st, csr, stats, cause, trap.INTERRUPT, NO_VALUE, pc, NO_INSTRUCTION)
            if taken == E.EXIT_TRAP:
                reason = E.EXIT_TRAP
                break
            remaining -= 1  # taking an interrupt is one step, so step() can show it
            continue
        limit = remaining
        wait = ticks_until_timer(st)
        if 0 < wait < limit:
            limit = wait
        steps, reason = execute(state, x, csr, st, tlb_tag, tlb_delta, stats, ram, ram32, limit)
        remaining -= steps
        if reason != E.EXIT_NONE:
            break
        reason = E.EXIT_BUDGET
    if reason == E.EXIT_BUDGET:
        st[S.EXIT_PC] = st[S.PC]
    if reason != E.EXIT_TRAP:
        st[S.EXIT_HTVAL] = 0
        st[S.EXIT_HTINST] = 0
        st[S.EXIT_GVA] = 0
    st[S.EXIT_REASON] = reason
    stats[S.STAT_EXITS + reason] += 1
    return (
        reason,
        st[S.EXIT_PC],
        st[S.EXIT_INSN],
        st[S.EXIT_CAUSE],
        st[S.EXIT_INTERRUPT],
        st[S.EXIT_TVAL],
        st[S.EXIT_ADDR],
        st[S.EXIT_SIZE],
        st[S.EXIT_VALUE],
        st[S.EXIT_RD],
        st[S.EXIT_SIGNED],
        st[S.EXIT_HTVAL],
        st[S.EXIT_HTINST],
        st[S.EXIT_GVA],
        st[S.VIRT],
        st[S.PRIV],
    )
