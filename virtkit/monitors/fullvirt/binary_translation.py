"""Binary translation of the guest kernel: VMware's software VMM, on RV32.

Trap-and-emulate pays a VM exit for every privileged instruction of the guest kernel.
VMware's first monitor did not run guest kernel code directly at all: it translated it,
a basic block at a time, into a *translation cache* (TC) in the monitor's memory, and
ran the translation instead (Adams and Agesen, "A Comparison of Software and Hardware
Techniques for x86 Virtualization", ASPLOS 2006, section 3). Most instructions are
copied as they are ("IDENT"); the sensitive ones become code that does their job on the
virtual CPU without a trap: a read of sstatus is a load from the virtual-CPU area, an
interrupt enable a store and a test; the rare ones that need the monitor become
*call-outs*, cheap jumps into it rather than traps. Guest user code still runs
directly on the hart: only guest-S code is translated.

How the translated code runs here:

- The TC, a lookup table and the virtual-CPU area are mapped in the top 4 MiB of the
  guest kernel's address space (kernel view of the shadow tables only, never the user
  view), as VMware kept its monitor in the top 4 MiB of every guest address space.
  The guest kernel must not use those addresses itself while it is translated.
- The virtual-CPU area sits at 0xFFFF_F000: translated code reaches its slots with
  x0-relative loads and stores (offsets -2048..-1), so it needs no free register to
  read a virtual CSR. When it needs scratch registers it saves guest registers in the
  area's spill slots and restores them.
- Direct jumps and branches to a block on the same guest page are *chained*: a JAL
  straight to its translation, patched in when the target is first translated.
  Everything else (returns, indirect calls, jumps to another page) goes through a
  shared *dispatch* routine that looks the guest target up in a 4096-entry table in
  translated code; a miss calls out, and the monitor translates and fills the entry.
  Jumps leave the page only through the lookup because the mapping of another page can
  differ between address spaces; on every satp write and SFENCE.VMA the monitor keeps
  only the entries whose page the guest still maps to the same guest-physical page.
- Call-outs are ECALLs in the TC: the hart exits, the monitor sees a TC address, looks
  up what it means (``Callout``), and does it.
- Code pages are write-protected in the shadow tables while they have translations.
  A store to one (or a DMA write, or the monitor's own) drops that page's translations
  (VMware's "translation cache coherence"); the store itself then runs directly, once,
  and its block is translated again the next time it runs.

A precise interrupt needs a guest pc: every TC word that starts a guest instruction
records it (``boundary``). An interrupt that arrives in the middle of a sequence of
translated code waits until the sequence reaches the next boundary.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from virtkit.isa import causes as C
from virtkit.isa import instructions as I
from virtkit.isa.encoding import decode_fields, encode, sign_extend
from virtkit.monitors.fullvirt import vcpu as V
from virtkit.monitors.fullvirt.shadow_paging import PTE_A, PTE_D, PTE_R, PTE_U, PTE_V, PTE_W, PTE_X
from virtkit.monitors.fullvirt.trap_and_emulate import CSR_INSTRUCTIONS, is_counter
from virtkit.monitors.memory import PAGE_SHIFT, PAGE_SIZE

MASK32 = 0xFFFFFFFF
WINDOW_VPN1 = 0x3FF  # the top 4 MiB of the guest kernel's virtual addresses
TC_VA = 0xFFC0_0000
LOOKUP_BITS = 12
LOOKUP_ENTRIES = 1 << LOOKUP_BITS  # each (guest pc, translated entry): 8 bytes
LOOKUP_PAGES = LOOKUP_ENTRIES * 8 // 4096
LOOKUP_VA = 0xFFFF_F000 - LOOKUP_PAGES * 4096  # just below the virtual-CPU area
TC_PAGES = 128  # 512 KiB of translated code (JAL reaches +-1 MiB, so all of it)
MAX_BLOCK = 64  # guest instructions per block at most

T0, T1, T2 = 5, 6, 7
SSTATUS_SIE = V.SSTATUS_SIE
SSTATUS_LOW_WRITABLE = V.SSTATUS_SIE | V.SSTATUS_SPIE | V.SSTATUS_SPP  # fits an ANDI
SUM_MXR_SHIFT = 18  # SUM is bit 18, MXR bit 19

# Virtual CSRs whose every write the translated code can do with a store: plain storage.
PLAIN_CSRS = {n for n, name in V.VIRTUAL_CSRS.items() if name in ("sscratch", "stval", "scause")}
CSR_SSTATUS = next(n for n, name in V.VIRTUAL_CSRS.items() if name == "sstatus")
CSR_SEPC = next(n for n, name in V.VIRTUAL_CSRS.items() if name == "sepc")


def _slot(name: str) -> int:
    return V.slot_offset_from_x0(name)


def enc(name: str, **fields: int) -> int:
    """One instruction word, from the ISA table (virtkit.isa.instructions)."""
    return encode(I.BY_NAME[name], **fields)


def load_immediate(rd: int, value: int) -> list[int]:
    """LUI/ADDI words that put the 32-bit ``value`` in ``rd`` (the ``li`` pseudo)."""
    value &= MASK32
    low = sign_extend(value & 0xFFF, 12)
    high = ((value - low) >> 12) & 0xFFFFF
    if not high:
        return [enc("addi", rd=rd, rs1=0, imm12=low)]
    words = [enc("lui", rd=rd, imm20=high)]
    if low:
        words.append(enc("addi", rd=rd, rs1=rd, imm12=low))
    return words


def lookup_index(guest_pc: int) -> int:
    """The dispatch table's entry for a guest pc: the word index folded with the bits
    above it, so that code a multiple of the table's span apart does not collide."""
    return ((guest_pc ^ (guest_pc >> LOOKUP_BITS)) >> 2) & (LOOKUP_ENTRIES - 1)


class Callout(NamedTuple):
    """What an ECALL in the translation cache asks the monitor to do.

    ``kind``:
      "instruction"      the guest instruction ``insn`` at ``guest_pc`` needs the monitor
                         (a privileged instruction, ECALL, an unknown encoding...);
      "interrupt_window" translated code set sstatus.SIE with an interrupt ready: the
                         guest continues at ``guest_pc`` (after the write), or at
                         ``resume`` when nothing is to be taken after all;
      "chain"            a direct jump to ``guest_pc`` on the same page, not yet
                         translated: translate it and patch the JAL at ``site``;
      "reflect"          raise exception ``cause`` with ``tval`` at ``guest_pc``;
      "dispatch_miss"    the lookup table had no entry for the target in t0.
    ``restore``: (register, spill slot) pairs to restore before the guest state is whole.
    """

    kind: str
    guest_pc: int = 0
    insn: int = 0
    site: int = 0
    resume: int = 0
    cause: int = 0
    tval: int = 0
    restore: tuple[tuple[int, str], ...] = ()


@dataclass
class Block:
    """One translated basic block: guest code from ``guest_pc`` on guest page ``gppn``."""

    guest_pc: int
    gppn: int
    start: int  # TC address of the indirect entry (restores t0 after a dispatch)
    end: int
    guest_instructions: int
    valid: bool = True

    @property
    def entry(self) -> int:
        """The direct entry: the first guest instruction's translation."""
        return self.start + 4


class _Builder:
    """The words of one block as they are emitted, with their guest-pc bookkeeping."""

    def __init__(self, start: int):
        self.start = start
        self.words: list[int] = []
        self.boundary: list[int] = []  # guest pc this word starts, or -1
        self.owner: list[int] = []  # guest pc of the instruction this word belongs to
        self.callouts: dict[int, Callout] = {}  # word index -> callout
        self.chains: list[tuple[int, int]] = []  # (index of a JAL, guest target)

    def address(self, index: int) -> int:
        return self.start + 4 * index

    def emit(self, words, owner: int, boundary: int = -1) -> int:
        """Append words; the first one may start guest instruction ``boundary``."""
        first = len(self.words)
        for k, word in enumerate(words if isinstance(words, list) else [words]):
            self.words.append(word)
            self.boundary.append(boundary if k == 0 else -1)
            self.owner.append(owner)
        return first

    def callout(self, callout: Callout, owner: int, boundary: int = -1) -> int:
        index = self.emit(enc("ecall"), owner, boundary)
        self.callouts[index] = callout
        return index

    def branch_to(self, index: int, target_index: int) -> None:
        """Set the offset of the branch at ``index`` to reach word ``target_index``."""
        word = self.words[index]
        offset = 4 * (target_index - index)
        kind = I.lookup(word)
        fields = decode_fields(kind, word)
        fields["bimm13"] = offset
        self.words[index] = encode(kind, **fields)


class BinaryTranslator:
    """Translates guest-kernel code into a translation cache in host memory.

    ``hart`` runs the translated code; ``frames`` gives host pages (HostFrames);
    ``shadow`` is the ShadowMMU (it maps the TC, and write-protects translated code);
    ``memory`` the guest-physical memory the guest code is read from.
    """

    def __init__(self, hart, frames, vcpu_area_hppn: int, shadow, memory, meter):
        self.hart = hart
        self.shadow = shadow
        self.memory = memory
        self.meter = meter
        self._ram32 = hart.arrays.ram.view(np.uint32)
        self.tc_frames = frames.take(TC_PAGES, what="the translation cache")
        self.lookup_frames = frames.take(LOOKUP_PAGES, what="the dispatch lookup table")
        window = frames.take(1, what="the translator's page table")[0]
        self._map_window(window, vcpu_area_hppn)
        shadow.reserve_window(WINDOW_VPN1, window)
        words = TC_PAGES * PAGE_SIZE // 4
        self.boundary = np.full(words, -1, dtype=np.int64)
        self.owner = np.full(words, -1, dtype=np.int64)
        self.callouts: dict[int, Callout] = {}
        self.blocks: dict[tuple[int, int], Block] = {}  # (guest pc, guest page) -> block
        self._block_starts: list[int] = []  # sorted TC addresses, to find a pc's block
        self._blocks_by_start: dict[int, Block] = {}
        self.pages: dict[int, list[Block]] = {}  # guest page -> its blocks
        self._entry_cache: dict[int, Block] = {}  # guest pc -> block, this address space
        self.statistics = {
            "blocks translated": 0,
            "guest instructions translated": 0,
            "words emitted": 0,
            "chains patched": 0,
            "code pages invalidated": 0,
            "translation cache flushes": 0,
        }
        self.flush()

    @staticmethod
    def host_pages() -> int:
        """Host pages the translator needs: the TC, the lookup table, one page table."""
        return TC_PAGES + LOOKUP_PAGES + 1

    # -- host memory ------------------------------------------------------------------------------
    def _map_window(self, window_hppn: int, vcpu_area_hppn: int) -> None:
        """The level-0 table of the top 4 MiB: TC (R+X), lookup table (R), vCPU area (R+W)."""
        leaf = PTE_V | PTE_U | PTE_A | PTE_D  # the translated code runs in real U-mode
        base = ((window_hppn << PAGE_SHIFT) - self.hart.ram_base) // 4
        self._ram32[base : base + 1024] = 0
        for k, hppn in enumerate(self.tc_frames):
            vpn0 = ((TC_VA >> PAGE_SHIFT) & 0x3FF) + k
            self._ram32[base + vpn0] = (hppn << 10) | leaf | PTE_R | PTE_X
        for k, hppn in enumerate(self.lookup_frames):
            vpn0 = ((LOOKUP_VA >> PAGE_SHIFT) & 0x3FF) + k
            self._ram32[base + vpn0] = (hppn << 10) | leaf | PTE_R
        vpn0 = (V.AREA_VA >> PAGE_SHIFT) & 0x3FF
        self._ram32[base + vpn0] = (vcpu_area_hppn << 10) | leaf | PTE_R | PTE_W

    def _tc_index(self, address: int) -> int:
        """Index into host RAM (32-bit words) of TC address ``address``."""
        offset = address - TC_VA
        hppn = self.tc_frames[offset >> PAGE_SHIFT]
        return ((hppn << PAGE_SHIFT) - self.hart.ram_base + (offset & (PAGE_SIZE - 1))) // 4

    def _write_words(self, address: int, words: list[int]) -> None:
        # The TC's host pages are consecutive, so one slice holds a whole block.
        start = self._tc_index(address)
        self._ram32[start : start + len(words)] = np.array(words, dtype=np.uint32)

    def contains(self, pc: int) -> bool:
        """Whether ``pc`` is an address in the translation cache."""
        return TC_VA <= pc < TC_VA + TC_PAGES * PAGE_SIZE

    # -- the whole cache ---------------------------------------------------------------------------
    def flush(self) -> None:
        """Drop every translation and start the cache again with the dispatch routine."""
        for block in self._blocks_by_start.values():
            block.valid = False
        self.blocks.clear()
        self._block_starts.clear()
        self._blocks_by_start.clear()
        self.pages.clear()
        self.callouts.clear()
        self.boundary[:] = -1
        self.owner[:] = -1
        for gppn in list(self.shadow.protected):
            self.shadow.unprotect(gppn)
        self.clear_lookup()
        self.statistics["translation cache flushes"] += 1
        self._next = TC_VA
        self._emit_dispatch()

    def clear_lookup(self) -> None:
        """Empty the dispatch table and the entry cache (after translations were dropped)."""
        for hppn in self.lookup_frames:
            start = ((hppn << PAGE_SHIFT) - self.hart.ram_base) // 4
            self._ram32[start : start + PAGE_SIZE // 4] = 0
        self._entry_cache.clear()

    def _lookup_word(self, guest_pc: int) -> int:
        """Index into host RAM (32-bit words) of the lookup entry for ``guest_pc``."""
        index = lookup_index(guest_pc)
        page = self.lookup_frames[index * 8 >> PAGE_SHIFT]
        return ((page << PAGE_SHIFT) - self.hart.ram_base + (index * 8 & (PAGE_SIZE - 1))) // 4

    def _lookup_install(self, guest_pc: int, block: Block) -> None:
        word = self._lookup_word(guest_pc)
        self._ram32[word] = guest_pc
        self._ram32[word + 1] = block.start

    def revalidate(self, instruction_page) -> None:
        """After a change of address space (satp, SFENCE.VMA): keep the entries whose
        code page the guest's tables still map to the same guest page, drop the rest.
        ``instruction_page(va)`` walks the guest's tables now. A kernel mapped the same
        way in every address space keeps all its entries, which is why one lookup per
        page is cheaper than emptying the table on every context switch."""
        pages: dict[int, int | None] = {}
        for guest_pc, block in list(self._entry_cache.items()):
            va_page = guest_pc >> PAGE_SHIFT
            if va_page not in pages:
                gppn = instruction_page(guest_pc)
                pages[va_page] = gppn if isinstance(gppn, int) else None
            if not block.valid or pages[va_page] != block.gppn:
                del self._entry_cache[guest_pc]
                word = self._lookup_word(guest_pc)
                if self._ram32[word] == guest_pc:
                    self._ram32[word] = 0
                    self._ram32[word + 1] = 0

    def _emit_dispatch(self) -> None:
        """The shared lookup routine. On entry t0 = guest target, t1 = return address of
        the jump site; the guest's t0 and t1 are in spill0 and spill1."""
        b = _Builder(self._next)
        lookup_high = LOOKUP_VA >> 12
        b.emit(
            [
                enc("sw", rs2=T1, rs1=0, simm12=_slot("site")),
                enc("sw", rs2=T2, rs1=0, simm12=_slot("spill2")),
                enc("andi", rd=T0, rs1=T0, imm12=-2),  # JALR clears bit 0 of the target
                enc("srli", rd=T1, rs1=T0, shamt=LOOKUP_BITS),  # lookup_index(target)...
                enc("xor", rd=T1, rs1=T1, rs2=T0),
                enc("andi", rd=T1, rs1=T1, imm12=-4),
                enc("slli", rd=T1, rs1=T1, shamt=30 - LOOKUP_BITS),
                enc("srli", rd=T1, rs1=T1, shamt=29 - LOOKUP_BITS),  # ...times 8
                enc("lui", rd=T2, imm20=lookup_high),
                enc("add", rd=T1, rs1=T1, rs2=T2),
                enc("lw", rd=T2, rs1=T1, imm12=0),  # the guest pc in the entry
            ],
            owner=-1,
        )
        miss_branch = b.emit(enc("bne", rs1=T2, rs2=T0, bimm13=0), owner=-1)
        b.emit(
            [
                enc("lw", rd=T0, rs1=T1, imm12=4),  # the block's indirect entry
                enc("lw", rd=T1, rs1=0, imm12=_slot("spill1")),
                enc("lw", rd=T2, rs1=0, imm12=_slot("spill2")),
                enc("jalr", rd=0, rs1=T0, imm12=0),
            ],
            owner=-1,
        )
        miss = b.emit(
            [
                enc("lw", rd=T1, rs1=0, imm12=_slot("spill1")),
                enc("lw", rd=T2, rs1=0, imm12=_slot("spill2")),
            ],
            owner=-1,
        )
        b.branch_to(miss_branch, miss)
        b.callout(Callout("dispatch_miss"), owner=-1)
        self.dispatch = self._next
        self._commit(b)

    # -- finding translations ----------------------------------------------------------------------
    def block_of(self, pc: int) -> Block | None:
        """The block whose translated code holds TC address ``pc``."""
        k = bisect.bisect_right(self._block_starts, pc) - 1
        if k < 0:
            return None
        block = self._blocks_by_start[self._block_starts[k]]
        return block if pc < block.end else None

    def guest_pc(self, pc: int) -> int | None:
        """The guest pc at TC address ``pc`` if it is an instruction boundary, else None."""
        value = int(self.boundary[(pc - TC_VA) >> 2]) if self.contains(pc) else -1
        return None if value < 0 else value

    def owner_pc(self, pc: int) -> int | None:
        """The guest pc of the instruction whose translation holds TC address ``pc``."""
        value = int(self.owner[(pc - TC_VA) >> 2]) if self.contains(pc) else -1
        return None if value < 0 else value

    def cached(self, guest_pc: int) -> Block | None:
        """The block entered at ``guest_pc`` before in this address space, if still valid."""
        block = self._entry_cache.get(guest_pc)
        return block if block is not None and block.valid else None

    def entry(self, guest_pc: int, gppn: int) -> Block:
        """The block for ``guest_pc``, whose code the guest's tables put on guest page
        ``gppn`` now, translated if need be; it becomes the lookup table's entry."""
        block = self.blocks.get((guest_pc, gppn))
        if block is None:
            block = self.translate(guest_pc, gppn)
        self._entry_cache[guest_pc] = block
        self._lookup_install(guest_pc, block)
        return block

    # -- translating -------------------------------------------------------------------------------
    def translate(self, guest_pc: int, gppn: int) -> Block:
        """Translate the basic block at ``guest_pc`` (on guest page ``gppn``)."""
        if self._next + 4 * (16 * MAX_BLOCK + 64) > TC_VA + TC_PAGES * PAGE_SIZE:
            self.flush()  # full: start again (the current pc is always at a boundary here)
        b = _Builder(self._next)
        b.emit(enc("lw", rd=T0, rs1=0, imm12=_slot("spill0")), owner=guest_pc)
        page_end = (guest_pc | (PAGE_SIZE - 1)) + 1
        page_gpa = gppn << PAGE_SHIFT
        g = guest_pc
        count = 0
        while True:
            insn = self.memory.read_word(page_gpa | (g & (PAGE_SIZE - 1)))
            count += 1
            ends = self._translate_one(b, g, insn, page_end)
            if ends:
                break
            g = (g + 4) & MASK32
            if g == page_end or count == MAX_BLOCK:
                self._goto(b, g, owner=g - 4, page_end=page_end, boundary=g)
                break
        self._place_chain_stubs(b, gppn)
        block = Block(guest_pc, gppn, b.start, b.address(len(b.words)), count)
        self._commit(b)
        self.blocks[(guest_pc, gppn)] = block
        self._blocks_by_start[block.start] = block
        self._block_starts.append(block.start)  # blocks are placed in increasing order
        self.pages.setdefault(gppn, []).append(block)
        self.shadow.protect(gppn)
        self.statistics["blocks translated"] += 1
        self.statistics["guest instructions translated"] += count
        self.meter.charge("translated_instruction", count)
        return block

    def _commit(self, b: _Builder) -> None:
        self._write_words(b.start, b.words)
        first = (b.start - TC_VA) >> 2
        self.boundary[first : first + len(b.words)] = b.boundary
        self.owner[first : first + len(b.words)] = b.owner
        for index, callout in b.callouts.items():
            self.callouts[b.address(index)] = callout
        self._next = b.address(len(b.words))
        self.statistics["words emitted"] += len(b.words)

    def _place_chain_stubs(self, b: _Builder, gppn: int) -> None:
        """Each JAL to a block on the same page goes straight there if it exists, else to
        a stub that calls out to translate it (and patch the JAL)."""
        for site, target in b.chains:
            existing = self.blocks.get((target, gppn))
            if existing is not None:
                b.words[site] = self._jal(b.address(site), existing.entry)
                continue
            chain = Callout("chain", guest_pc=target, site=b.address(site))
            stub = b.callout(chain, owner=target, boundary=target)
            b.words[site] = self._jal(b.address(site), b.address(stub))

    @staticmethod
    def _jal(site: int, target: int, rd: int = 0) -> int:
        return enc("jal", rd=rd, jimm21=target - site)

    def patch_chain(self, site: int, block: Block) -> None:
        """Point the JAL at TC address ``site`` straight at ``block``."""
        self._write_words(site, [self._jal(site, block.entry)])
        self.statistics["chains patched"] += 1

    def _goto(self, b: _Builder, target: int, *, owner: int, page_end: int, boundary: int = -1):
        """Continue at guest ``target``: chained on the same page, else through dispatch."""
        if target & 3:
            b.callout(
                Callout("reflect", guest_pc=owner, cause=C.CAUSE_MISALIGNED_FETCH, tval=target),
                owner=owner,
            )
            return
        if page_end - PAGE_SIZE <= target < page_end:
            site = b.emit(enc("jal", rd=0, jimm21=0), owner=owner, boundary=boundary)
            b.chains.append((site, target))
            return
        words = [
            enc("sw", rs2=T0, rs1=0, simm12=_slot("spill0")),
            enc("sw", rs2=T1, rs1=0, simm12=_slot("spill1")),
            *load_immediate(T0, target),
        ]
        b.emit(words, owner=owner, boundary=boundary)
        b.emit(self._jal(b.address(len(b.words)), self.dispatch, rd=T1), owner=owner)

    def _translate_one(self, b: _Builder, g: int, insn: int, page_end: int) -> bool:
        """Emit the translation of the guest instruction ``insn`` at ``g``; True ends the block."""
        kind = I.lookup(insn)
        opcode = insn & 0x7F
        if kind is None:
            b.callout(Callout("instruction", guest_pc=g, insn=insn), owner=g, boundary=g)
            return True
        rd = (insn >> 7) & 31
        if opcode in (
            I.OPCODE_LOAD,
            I.OPCODE_STORE,
            I.OPCODE_OP,
            I.OPCODE_OP_IMM,
            I.OPCODE_LUI,
            I.OPCODE_MISC_MEM,
            I.OPCODE_AMO,
        ):
            b.emit(insn, owner=g, boundary=g)  # IDENT: the same instruction does the same
            return False
        if opcode == I.OPCODE_AUIPC:
            if rd:
                b.emit(load_immediate(rd, g + (insn & 0xFFFFF000)), owner=g, boundary=g)
            return False
        if opcode == I.OPCODE_JAL:
            target = (g + decode_fields(kind, insn)["jimm21"]) & MASK32
            if rd:
                b.emit(load_immediate(rd, g + 4), owner=g, boundary=g)
                self._goto(b, target, owner=g, page_end=page_end)
            else:
                self._goto(b, target, owner=g, page_end=page_end, boundary=g)
            return True
        if opcode == I.OPCODE_JALR:
            self._jalr(b, g, insn)
            return True
        if opcode == I.OPCODE_BRANCH:
            self._branch(b, g, insn, kind, page_end)
            return True
        if kind.name in CSR_INSTRUCTIONS:
            return self._csr(b, g, insn, kind)
        # ECALL, EBREAK, SRET, WFI, SFENCE.VMA, MRET, hypervisor instructions.
        b.callout(Callout("instruction", guest_pc=g, insn=insn), owner=g, boundary=g)
        return True

    def _jalr(self, b: _Builder, g: int, insn: int) -> None:
        """JALR: target into t0, link into rd, then the dispatch routine."""
        fields = decode_fields(I.lookup(insn), insn)
        rd, rs1, offset = fields["rd"], fields["rs1"], fields["imm12"]
        words = [
            enc("sw", rs2=T0, rs1=0, simm12=_slot("spill0")),
            enc("sw", rs2=T1, rs1=0, simm12=_slot("spill1")),
            enc("addi", rd=T0, rs1=rs1, imm12=offset),  # rs1 still holds the guest value
        ]
        if rd in (T0, T1):  # the link goes where the dispatch will restore rd from
            spill = "spill0" if rd == T0 else "spill1"
            words += load_immediate(T1, g + 4)
            words.append(enc("sw", rs2=T1, rs1=0, simm12=_slot(spill)))
        elif rd:
            words += load_immediate(rd, g + 4)
        b.emit(words, owner=g, boundary=g)
        b.emit(self._jal(b.address(len(b.words)), self.dispatch, rd=T1), owner=g)

    def _branch(self, b: _Builder, g: int, insn: int, kind, page_end: int) -> None:
        """Bxx: the same test, over the fall-through exit to the taken exit."""
        fields = decode_fields(kind, insn)
        target = (g + fields["bimm13"]) & MASK32
        fields["bimm13"] = 0
        branch = b.emit(encode(kind, **fields), owner=g, boundary=g)
        fall = (g + 4) & MASK32
        self._goto(b, fall, owner=g, page_end=page_end, boundary=fall)
        taken = len(b.words)
        self._goto(b, target, owner=g, page_end=page_end, boundary=target)
        b.branch_to(branch, taken)

    def _csr(self, b: _Builder, g: int, insn: int, kind) -> bool:
        """A CSR instruction: inline on the virtual-CPU area when it is simple, a
        call-out otherwise. Returns True when the block ends."""
        fields = decode_fields(kind, insn)
        number, rd = fields["csr"], fields["rd"]
        immediate = kind.name.endswith("i")
        operand = fields["zimm"] if immediate else fields["rs1"]
        operation = kind.name[:5]
        writes = operation == "csrrw" or operand != 0
        name = V.VIRTUAL_CSRS.get(number)
        if is_counter(number) and not writes:
            b.emit(insn, owner=g, boundary=g)  # cycle, time, instret run on the hart
            return False
        if name is not None and not writes:
            if rd:
                b.emit(enc("lw", rd=rd, rs1=0, imm12=_slot(name)), owner=g, boundary=g)
            return False
        if number in PLAIN_CSRS and operation == "csrrw" and not immediate:
            self._swap_plain(b, g, name, rd, operand)
            return False
        if number == CSR_SEPC and operation == "csrrw" and not immediate and rd == 0:
            temp = next(r for r in (T0, T1, T2) if r != operand)
            b.emit(
                [
                    enc("sw", rs2=temp, rs1=0, simm12=_slot("spill0")),
                    enc("andi", rd=temp, rs1=operand, imm12=-4),  # sepc[1:0] are zero
                    enc("sw", rs2=temp, rs1=0, simm12=_slot("sepc")),
                    enc("lw", rd=temp, rs1=0, imm12=_slot("spill0")),
                ],
                owner=g,
                boundary=g,
            )
            return False
        if number == CSR_SSTATUS and rd == 0:
            if immediate and operand == SSTATUS_SIE and operation in ("csrrs", "csrrc"):
                self._sstatus_sie(b, g, set_sie=operation == "csrrs")
            else:
                self._sstatus_write(b, g, insn, operation, operand, immediate)
            return False
        b.callout(Callout("instruction", guest_pc=g, insn=insn), owner=g, boundary=g)
        return True

    def _swap_plain(self, b: _Builder, g: int, name: str, rd: int, rs1: int) -> None:
        """CSRRW on sscratch, stval or scause: loads and stores of the slot."""
        slot = _slot(name)
        if rd == 0:
            words = [enc("sw", rs2=rs1, rs1=0, simm12=slot)]
        elif rd != rs1:
            words = [enc("lw", rd=rd, rs1=0, imm12=slot), enc("sw", rs2=rs1, rs1=0, simm12=slot)]
        else:  # csrrw sp, sscratch, sp: a swap, through a borrowed register
            temp = T0 if rd != T0 else T1
            words = [
                enc("sw", rs2=temp, rs1=0, simm12=_slot("spill0")),
                enc("lw", rd=temp, rs1=0, imm12=slot),
                enc("sw", rs2=rd, rs1=0, simm12=slot),
                enc("addi", rd=rd, rs1=temp, imm12=0),
                enc("lw", rd=temp, rs1=0, imm12=_slot("spill0")),
            ]
        b.emit(words, owner=g, boundary=g)

    def _sstatus_sie(self, b: _Builder, g: int, *, set_sie: bool) -> None:
        """csrsi/csrci sstatus, SIE: VMware's inline CLI/STI, on the virtual sstatus."""
        restore = ((T0, "spill0"),)
        words = [
            enc("sw", rs2=T0, rs1=0, simm12=_slot("spill0")),
            enc("lw", rd=T0, rs1=0, imm12=_slot("sstatus")),
            enc("ori", rd=T0, rs1=T0, imm12=SSTATUS_SIE)
            if set_sie
            else enc("andi", rd=T0, rs1=T0, imm12=~SSTATUS_SIE),
            enc("sw", rs2=T0, rs1=0, simm12=_slot("sstatus")),
        ]
        b.emit(words, owner=g, boundary=g)
        if set_sie:
            # An interrupt that was waiting for SIE is taken right after this instruction.
            b.emit(enc("lw", rd=T0, rs1=0, imm12=_slot("interrupt_ready")), owner=g)
            skip = b.emit(enc("beq", rs1=T0, rs2=0, bimm13=0), owner=g)
            window = b.callout(
                Callout("interrupt_window", guest_pc=g + 4, restore=restore), owner=g
            )
            b.branch_to(skip, window + 1)
            b.callouts[window] = b.callouts[window]._replace(resume=b.address(window + 1))
        b.emit(enc("lw", rd=T0, rs1=0, imm12=_slot("spill0")), owner=g)

    def _sstatus_write(
        self, b: _Builder, g: int, insn: int, operation: str, operand: int, immediate: bool
    ) -> None:
        """A write, set or clear of sstatus: inline unless SUM or MXR change (the shadow
        tables depend on them, so those call out); an interrupt that the new SIE lets
        through is taken right after the instruction."""
        t, u = [r for r in (T0, T1, T2) if r != operand or immediate][:2]
        restore = ((t, "spill0"), (u, "spill1"))
        if operation == "csrrw":  # u = the value written, before the field rules
            new = [
                enc(
                    "addi", rd=u, rs1=0 if immediate else operand, imm12=operand if immediate else 0
                )
            ]
        elif operation == "csrrs":
            new = [
                enc("ori", rd=u, rs1=t, imm12=operand)
                if immediate
                else enc("or", rd=u, rs1=t, rs2=operand)
            ]
        elif immediate:
            new = [enc("andi", rd=u, rs1=t, imm12=~operand)]
        else:
            new = [enc("xori", rd=u, rs1=operand, imm12=-1), enc("and", rd=u, rs1=u, rs2=t)]
        changed = [*new, enc("xor", rd=u, rs1=u, rs2=t)]  # u = bits that change
        b.emit(
            [
                enc("sw", rs2=t, rs1=0, simm12=_slot("spill0")),
                enc("sw", rs2=u, rs1=0, simm12=_slot("spill1")),
                enc("lw", rd=t, rs1=0, imm12=_slot("sstatus")),  # old
                *changed,
                enc("srli", rd=u, rs1=u, shamt=SUM_MXR_SHIFT),
                enc("andi", rd=u, rs1=u, imm12=3),
            ],
            owner=g,
            boundary=g,
        )
        to_slow = b.emit(enc("bne", rs1=u, rs2=0, bimm13=0), owner=g)
        b.emit(
            [
                *changed,
                enc("andi", rd=u, rs1=u, imm12=SSTATUS_LOW_WRITABLE),
                enc("xor", rd=t, rs1=t, rs2=u),  # old with the new SIE, SPIE and SPP
                enc("sw", rs2=t, rs1=0, simm12=_slot("sstatus")),
                enc("andi", rd=t, rs1=t, imm12=SSTATUS_SIE),
            ],
            owner=g,
        )
        no_sie = b.emit(enc("beq", rs1=t, rs2=0, bimm13=0), owner=g)
        b.emit(enc("lw", rd=t, rs1=0, imm12=_slot("interrupt_ready")), owner=g)
        no_irq = b.emit(enc("beq", rs1=t, rs2=0, bimm13=0), owner=g)
        window = b.callout(Callout("interrupt_window", guest_pc=g + 4, restore=restore), owner=g)
        done = b.emit(
            [
                enc("lw", rd=t, rs1=0, imm12=_slot("spill0")),
                enc("lw", rd=u, rs1=0, imm12=_slot("spill1")),
            ],
            owner=g,
        )
        skip_slow = b.emit(enc("jal", rd=0, jimm21=0), owner=g)
        slow = b.callout(Callout("instruction", guest_pc=g, insn=insn, restore=restore), owner=g)
        after = len(b.words)
        b.branch_to(to_slow, slow)
        b.branch_to(no_sie, done)
        b.branch_to(no_irq, done)
        b.words[skip_slow] = enc("jal", rd=0, jimm21=4 * (after - skip_slow))
        b.callouts[window] = b.callouts[window]._replace(resume=b.address(done))

    # -- keeping translations coherent -------------------------------------------------------------
    def invalidate_page(self, gppn: int) -> bool:
        """Drop the translations of guest page ``gppn`` (its code was written)."""
        blocks = self.pages.pop(gppn, None)
        if not blocks:
            return False
        for block in blocks:
            block.valid = False
            self.blocks.pop((block.guest_pc, block.gppn), None)
        self.shadow.unprotect(gppn)
        self.clear_lookup()
        self.statistics["code pages invalidated"] += 1
        return True

    def guest_memory_written(self, gpa: int, size: int) -> bool:
        """A write to guest memory outside the guest's own stores (DMA, the monitor).
        Returns True when translations were dropped."""
        dropped = False
        for gppn in range(gpa >> PAGE_SHIFT, (gpa + max(size, 1) - 1 >> PAGE_SHIFT) + 1):
            if gppn in self.pages:
                dropped |= self.invalidate_page(gppn)
        return dropped
