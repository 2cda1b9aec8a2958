"""Placing operand fields into instruction words and taking them out again.

The bit layouts of the immediate formats are those of Volume I, 2.3 "Immediate
Encoding Variants" (figure 2.4): I, S, B, U and J. Every function here is the exact
inverse of its partner, which the round-trip tests check for every instruction.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache


def sign_extend(value: int, bits: int) -> int:
    """Interpret the low ``bits`` of ``value`` as a two's complement number."""
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


@dataclass(frozen=True)
class Field:
    """An operand field: its legal range and how it sits in the word."""

    name: str
    low: int
    high: int
    align: int = 1

    def encode(self, value: int) -> int:
        return _ENCODERS[self.name](value)

    def decode(self, word: int) -> int:
        return _DECODERS[self.name](word)


def _reg(shift):
    return (lambda v: (v & 0x1F) << shift), (lambda w: (w >> shift) & 0x1F)


def _enc_s(v):
    return ((v >> 5 & 0x7F) << 25) | ((v & 0x1F) << 7)


def _dec_s(w):
    return sign_extend(((w >> 25) << 5) | ((w >> 7) & 0x1F), 12)


def _enc_b(v):
    return (
        ((v >> 12 & 1) << 31)
        | ((v >> 5 & 0x3F) << 25)
        | ((v >> 1 & 0xF) << 8)
        | ((v >> 11 & 1) << 7)
    )


def _dec_b(w):
    value = (
        ((w >> 31) & 1) << 12
        | ((w >> 7) & 1) << 11
        | ((w >> 25) & 0x3F) << 5
        | ((w >> 8) & 0xF) << 1
    )
    return sign_extend(value, 13)


def _enc_j(v):
    return (
        ((v >> 20 & 1) << 31)
        | ((v >> 1 & 0x3FF) << 21)
        | ((v >> 11 & 1) << 20)
        | ((v >> 12 & 0xFF) << 12)
    )


def _dec_j(w):
    value = (
        ((w >> 31) & 1) << 20
        | ((w >> 12) & 0xFF) << 12
        | ((w >> 20) & 1) << 11
        | ((w >> 21) & 0x3FF) << 1
    )
    return sign_extend(value, 21)


_ENCODERS = {
    "imm12": lambda v: (v & 0xFFF) << 20,
    "simm12": _enc_s,
    "bimm13": _enc_b,
    "imm20": lambda v: (v & 0xFFFFF) << 12,
    "jimm21": _enc_j,
    "shamt": lambda v: (v & 0x1F) << 20,
    "csr": lambda v: (v & 0xFFF) << 20,
    "zimm": lambda v: (v & 0x1F) << 15,
    "pred": lambda v: (v & 0xF) << 24,
    "succ": lambda v: (v & 0xF) << 20,
    "aqrl": lambda v: (v & 0b11) << 25,
}
_DECODERS = {
    "imm12": lambda w: sign_extend(w >> 20, 12),
    "simm12": _dec_s,
    "bimm13": _dec_b,
    "imm20": lambda w: (w >> 12) & 0xFFFFF,
    "jimm21": _dec_j,
    "shamt": lambda w: (w >> 20) & 0x1F,
    "csr": lambda w: (w >> 20) & 0xFFF,
    "zimm": lambda w: (w >> 15) & 0x1F,
    "pred": lambda w: (w >> 24) & 0xF,
    "succ": lambda w: (w >> 20) & 0xF,
    "aqrl": lambda w: (w >> 25) & 0b11,
}
for _name, _shift in (("rd", 7), ("rs1", 15), ("rs2", 20)):
    _ENCODERS[_name], _DECODERS[_name] = _reg(_shift)

# Legal values of each field; "align" is the required alignment of byte offsets.
FIELDS: dict[str, Field] = {
    "rd": Field("rd", 0, 31),
    "rs1": Field("rs1", 0, 31),
    "rs2": Field("rs2", 0, 31),
    "imm12": Field("imm12", -2048, 2047),
    "simm12": Field("simm12", -2048, 2047),
    "bimm13": Field("bimm13", -4096, 4094, align=2),
    "imm20": Field("imm20", 0, 0xFFFFF),
    "jimm21": Field("jimm21", -(1 << 20), (1 << 20) - 2, align=2),
    "shamt": Field("shamt", 0, 31),
    "csr": Field("csr", 0, 0xFFF),
    "zimm": Field("zimm", 0, 31),
    "pred": Field("pred", 0, 15),
    "succ": Field("succ", 0, 15),
    "aqrl": Field("aqrl", 0, 3),
}


# Which fields an operand written as "imm12(rs1)" or "(rs1)" stands for.
def operand_fields(operand: str) -> tuple[str, ...]:
    """The fields behind one operand of a FORMATS entry, in order."""
    if operand.endswith("(rs1)"):
        offset = operand[: -len("(rs1)")]
        return (offset, "rs1") if offset else ("rs1",)
    return (operand,)


def encode(insn, **values: int) -> int:
    """Encode ``insn`` (an Instruction) with the given field values (not range-checked)."""
    word = insn.match
    for name, value in values.items():
        word |= _ENCODERS[name](value)
    return word & 0xFFFFFFFF


def field_names(insn) -> tuple[str, ...]:
    """The fields of ``insn``'s format, in operand order: what ``decode_fields`` returns.
    AMO and LR also have aq and rl (as "aqrl"), which are not written as operands."""
    return _format_field_names(insn.format, insn.operands)


def _format_field_names(fmt: str, operands: tuple[str, ...]) -> tuple[str, ...]:
    names = tuple(name for operand in operands for name in operand_fields(operand))
    return names + ("aqrl",) if fmt in ("AMO", "LR") else names


def decode_fields(insn, word: int) -> dict[str, int]:
    """The operand field values of ``word``, which must match ``insn``."""
    return dict(_field_values(insn.format, insn.operands, word))


# Cached: a monitor decodes every instruction its guest traps on, and a kernel traps on
# few distinct words. The fields depend on the format alone, so the format (a string,
# quick to hash) keys the cache, not the instruction. The cache holds tuples; each
# caller gets a dict of its own.
@lru_cache(maxsize=4096)
def _field_values(fmt: str, operands: tuple[str, ...], word: int) -> tuple[tuple[str, int], ...]:
    return tuple((name, _DECODERS[name](word)) for name in _format_field_names(fmt, operands))
