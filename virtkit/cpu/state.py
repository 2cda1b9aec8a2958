"""The hart's state as flat NumPy arrays, with a named index for every slot.

The compiled core (virtkit.cpu.core) reads and writes only these arrays, so the
whole machine state can be inspected, copied and snapshotted from Python, and the
Numba functions stay cacheable (no jitclass).

Arrays of one hart (see ``HartArrays``): one int64 buffer ``state`` holding
  st    int64[ST_SIZE]  pc, privilege, timers, exit information, ... (the slots below)
  x     int64[32]       integer registers, always held as unsigned 32-bit values
  csr   int64[4096]     the CSR file indexed by CSR number: plain storage for CSRs
                         without side effects; views (sstatus, sip, sie), counters and
                         mip's hardware bits are computed in virtkit.cpu.csrfile
  stats int64[...]      counters exposed as statistics
  tlb   int64[...]      the software TLB (virtkit.cpu.mmu): tags, then deltas
and ``ram``, uint8[...], the physical RAM (the core reads it through uint16 and uint32
views of the same bytes).

Privilege levels are encoded as in the privileged spec (1.2, table 1.1): U = 0,
S = 1, M = 3. The V bit of the hypervisor extension has its own slot; with it the hart
has the five modes of privileged spec 20211203, 8.1: U, HS (S with V = 0) and M,
and VU and VS (U and S with V = 1). Where one number must name a mode (the TLB, the
statistics), it is the *context* ``priv + CONTEXT_V * V``.
"""

from __future__ import annotations

import numpy as np

from virtkit.cpu.jitcache import njit

# -- Privilege levels (privileged spec 20211203, table 1.1) ----------------------------
# np.int64, not int: Numba compiles a separate copy of a helper for every distinct
# literal int argument, and these are passed to helpers all the time.
PRV_U = np.int64(0)
PRV_S = np.int64(1)
PRV_M = np.int64(3)
MODE_NAMES = {int(PRV_U): "U", int(PRV_S): "S", int(PRV_M): "M"}
VIRTUAL_MODE_NAMES = {int(PRV_U): "VU", int(PRV_S): "VS"}  # the modes with V = 1
CONTEXT_V = np.int64(4)  # context = priv + CONTEXT_V * V: 0 U, 1 HS, 3 M, 4 VU, 5 VS


def mode_name(priv: int, virt: int) -> str:
    """The name of a mode: "U", "S" (HS-mode), "M", "VU" or "VS"."""
    return VIRTUAL_MODE_NAMES[priv] if virt else MODE_NAMES[priv]


# -- Physical memory map the core itself knows (QEMU virt) -----------------------------
RAM_BASE = 0x8000_0000
CLINT_BASE = 0x0200_0000
CLINT_SIZE = 0x1_0000
CLINT_MSIP = 0x0000
CLINT_MTIMECMP = 0x4000
CLINT_MTIME = 0xBFF8

# -- Slots of st ---------------------------------------------------------------------------
PC = 0
PRIV = 1
VIRT = 2  # the V bit of the hypervisor extension (0 until H is enabled)
RESERVATION = 3  # physical address reserved by LR.W, or -1
TICKS = 4  # retired instructions plus idle cycles: the basis of mtime and mcycle
RETIRED = 5  # retired instructions: the basis of minstret
MCYCLE_OFFSET = 6  # mcycle = TICKS + MCYCLE_OFFSET (software may write mcycle)
MINSTRET_OFFSET = 7  # minstret = RETIRED + MINSTRET_OFFSET
MTIME_OFFSET = 8  # mtime = TICKS // TICKS_PER_MTIME + MTIME_OFFSET
TICKS_PER_MTIME = 9  # how many instructions make one mtime tick
MTIMECMP = 10  # CLINT mtimecmp (64-bit)
MSIP = 11  # CLINT msip bit
EXT_IRQ = 12  # interrupt lines driven by devices (mip bits SEIP, MEIP, ...)
TOHOST = 13  # physical address of the HTIF tohost word, or -1
TRAP_EXITS = 14  # which traps exit to Python (TRAP_EXIT_* bits)
WFI_EXITS = 15  # 1: every WFI exits to Python instead of idling inside the core
EBREAK_EXITS = 16  # 1: EBREAK exits to Python (a debugger) instead of trapping
N_BREAKPOINTS = 17  # number of pc breakpoints in BREAKPOINT_BASE..
PMP_LOCKED = 18  # 1 if any PMP entry is locked (M-mode accesses must be checked)
MMIO_PENDING = 19  # an MMIO exit awaits completion (1 read, 2 write)
SKIP_BREAKPOINT = 20  # pc whose breakpoint is skipped once (after resuming from it)
RAM_SIZE = 21
EXC_CAUSE = 22  # the exception a helper raised (see virtkit.cpu.mmu.raise_exception)
EXC_TVAL = 23
# Exit information, valid after run() returns (see virtkit.cpu.exits).
EXIT_REASON = 24
EXIT_CAUSE = 25
EXIT_TVAL = 26
EXIT_PC = 27
EXIT_INSN = 28
EXIT_ADDR = 29
EXIT_SIZE = 30
EXIT_VALUE = 31
EXIT_RD = 32
EXIT_SIGNED = 33
EXIT_INTERRUPT = 34  # 1 if EXIT_CAUSE is an interrupt code
N_MMIO_REGIONS = 35  # number of (start, end) pairs in MMIO_REGION_BASE..
# What the hypervisor extension adds to an exception (privileged spec 20211203, 8.6):
# set by the helper that raises it, consumed and cleared when the trap is taken.
EXC_TVAL2 = 36  # guest physical address >> 2 of a guest-page fault (for htval/mtval2)
EXC_TINST = 37  # the trap instruction value (for htinst/mtinst), see virtkit.cpu.mmu
EXC_GVA = 38  # 1: the faulting access was made as though V = 1 (HLV, HSV, MPRV with MPV)
EXIT_HTVAL = 39  # a TRAP exit's htval/mtval2 value, htinst/mtinst value and GVA bit
EXIT_HTINST = 40
EXIT_GVA = 41
SSTATUS_UNPRIVILEGED = 42  # 1: U-mode sstatus accesses neither trap nor act (Hart docs)
SINK = 43  # where the core drops the result of a load, JAL or JALR to x0 (decode)
BREAKPOINT_BASE = 48
MAX_BREAKPOINTS = 64
MMIO_REGION_BASE = BREAKPOINT_BASE + MAX_BREAKPOINTS  # physical ranges that exit as MMIO
MAX_MMIO_REGIONS = 32
ST_SIZE = MMIO_REGION_BASE + 2 * MAX_MMIO_REGIONS

# -- TRAP_EXITS bits: the trap targets Python owns ---------------------------------------
TRAP_EXIT_M = 1  # traps into M-mode (Python SBI firmware, bare-metal monitors)
TRAP_EXIT_S = 2  # traps into S/HS-mode (a Python hypervisor owns HS)
TRAP_EXIT_ALL = 4  # every trap (trap-and-emulate)

# -- Statistics (stats array) ---------------------------------------------------------------
STAT_INSNS_BY_MODE = 0  # 8 slots: index PRIV + 4 * VIRT
STAT_TRAPS = 8  # 64 slots: exceptions by cause
STAT_INTERRUPTS = 72  # 64 slots: interrupts by cause
STAT_EXITS = 136  # 16 slots: exits by reason
STAT_TLB_MISSES = 152
STAT_SIZE = 160

# -- TLB geometry (virtkit.cpu.mmu) -------------------------------------------------------
TLB_ENTRIES = 256  # direct-mapped, per (context, access type)
TLB_CONTEXTS = 8  # the context of the access: effective privilege, plus 4 with V=1
TLB_ACCESS_TYPES = 3  # fetch, load, store
TLB_SIZE = TLB_CONTEXTS * TLB_ACCESS_TYPES * TLB_ENTRIES


# -- One buffer for everything but RAM -------------------------------------------------
# The compiled entry point takes this buffer and RAM, and nothing else: each array
# argument costs time on every call from Python, and a monitor calls once per exit.
ST_BASE = 0
X_BASE = ST_BASE + ST_SIZE
CSR_BASE = X_BASE + 32
STATS_BASE = CSR_BASE + 4096
TLB_TAG_BASE = STATS_BASE + STAT_SIZE
TLB_DELTA_BASE = TLB_TAG_BASE + TLB_SIZE
# The decode cache (virtkit.cpu.decode): per entry, an instruction word and its decoded
# form, in DECODE_SLOTS slots. An entry is only ever used for the word it holds, so the
# cache needs no saving, copying or flushing, and an all-zero entry is correct (word 0
# decodes to 0, illegal).
DECODE_ENTRIES = 16384  # direct-mapped by the word's RAM address: 64 KiB of code
DECODE_SLOTS = 4  # the word, and the form in three parts (virtkit.cpu.decode)
DECODE_BASE = TLB_DELTA_BASE + TLB_SIZE
STATE_SIZE = DECODE_BASE + DECODE_SLOTS * DECODE_ENTRIES
SAVED_SIZE = DECODE_BASE  # what a snapshot keeps: everything but the decode cache


@njit(cache=True, inline="always")  # compiled into its one caller (see jitcache)
def split(state):
    """The named views of the state buffer: (x, csr, st, tlb_tag, tlb_delta, stats,
    decoded)."""
    return (
        state[X_BASE : X_BASE + 32],
        state[CSR_BASE : CSR_BASE + 4096],
        state[ST_BASE : ST_BASE + ST_SIZE],
        state[TLB_TAG_BASE : TLB_TAG_BASE + TLB_SIZE],
        state[TLB_DELTA_BASE : TLB_DELTA_BASE + TLB_SIZE],
        state[STATS_BASE : STATS_BASE + STAT_SIZE],
        state[DECODE_BASE:STATE_SIZE],
    )


class HartArrays:
    """The arrays of one hart: ``state`` and ``ram``, and named views of both."""

    def __init__(self, ram_size: int):
        if ram_size <= 0 or ram_size % 4096:
            raise ValueError(f"RAM size must be a positive multiple of 4096, got {ram_size}")
        self.state = np.zeros(STATE_SIZE, dtype=np.int64)
        self.x = self.state[X_BASE : X_BASE + 32]
        self.csr = self.state[CSR_BASE : CSR_BASE + 4096]
        self.st = self.state[ST_BASE : ST_BASE + ST_SIZE]
        # TLB tags hold vpn + 1 (0 means invalid); deltas map a page to its RAM offset.
        self.tlb_tag = self.state[TLB_TAG_BASE : TLB_TAG_BASE + TLB_SIZE]
        self.tlb_delta = self.state[TLB_DELTA_BASE : TLB_DELTA_BASE + TLB_SIZE]
        self.stats = self.state[STATS_BASE : STATS_BASE + STAT_SIZE]
        self.decoded = self.state[DECODE_BASE:STATE_SIZE]
        self.ram = np.zeros(ram_size, dtype=np.uint8)
        self.st[RAM_SIZE] = ram_size
