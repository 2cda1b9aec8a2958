"""``PageTableView``: the Sv32 walk of a virtual address the student types.

Each level shows the PTE read and decoded and the decision taken; the last line is
the physical address or the fault. The walk is ``virtkit.cpu.sv32.walk``. For a
guest's mode (VS or VU) it has two stages: each VS-stage level is followed by the
G-stage rows that found its PTE, and the guest physical address it ends with by the
G-stage rows that find the supervisor physical address. ``walk_html`` draws any such
walk, for the views that show several side by side.
"""

from __future__ import annotations

import ipywidgets as widgets

from virtkit.cpu import sv32
from virtkit.ui.html import pre, table

WALK_HEADER = ["level", "PTE address", "PTE", "flags", "ppn", "decision"]


def walk_html(result: sv32.Walk, title: str | None = None) -> str:
    """One walk as HTML: a heading, a row per level, and the outcome in bold.

    A two-stage walk gets a "stage" column, with each G-stage walk under the level or
    the address it served."""
    head = title or f"{result.access} of va {result.va:#010x} in {result.mode}-mode"
    if result.stage == sv32.STAGE_SV32 and result.g_stage is None:
        rows = [_level_row(level) for level in result.levels]
        return pre(head) + table(WALK_HEADER, rows) + pre(result.summary, "font-weight: bold")
    rows: list[list[str]] = []
    styles: list[str] = []
    _rows(result, rows, styles)
    if result.stage == sv32.STAGE_VS and title is None:
        head += ": VS-stage from vsatp, each table read through the G-stage from hgatp"
    return (
        pre(head)
        + table(["stage", *WALK_HEADER], rows, styles)
        + pre(result.summary, "font-weight: bold")
    )


def _level_row(level: sv32.Level) -> list[str]:
    pte = level.pte
    return [
        str(level.level),
        f"{level.pte_address:#010x}",
        f"{pte.value:#010x}" if pte else "-",
        pte.flags if pte else "-",
        f"{pte.ppn:#x}" if pte else "-",
        level.decision,
    ]


def parse_address(text: str) -> int | None:
    """An address as typed: 0x00401234, 4198964, 0x0040_1234; None if it is none."""
    try:
        return int(text.replace("_", ""), 0)
    except ValueError:
        return None


class PageTableView(widgets.VBox):
    def __init__(self, hart, va: int = 0, access: str = "load", mode: str = "S"):
        self.hart = hart
        self.va_box = widgets.Text(value=f"{va:#010x}", description="va", continuous_update=False)
        self.access_box = widgets.Dropdown(
            options=list(sv32.ACCESSES), value=access, description="access"
        )
        self.mode_box = widgets.Dropdown(options=list(sv32.MODES), value=mode, description="mode")
        translate = widgets.Button(description="Translate", layout=widgets.Layout(width="auto"))
        translate.on_click(lambda _button: self.update())
        self.va_box.observe(lambda _change: self.update(), names="value")
        self.output = widgets.HTML().add_class("virtkit-walk")
        self.walk: sv32.Walk | None = None
        super().__init__(
            [widgets.HBox([self.va_box, self.access_box, self.mode_box, translate]), self.output]
        )
        self.update()

    def update(self) -> None:
        va = parse_address(self.va_box.value)
        if va is None:
            self.walk = None
            self.output.value = pre(
                f"{self.va_box.value!r} is not a number: write it as 0x00401234 or 4198964"
            )
            return
        self.walk = sv32.walk(self.hart, va, self.access_box.value, self.mode_box.value)
        self.output.value = walk_html(self.walk)


G_STAGE_ROW = "color: #555;"


def _rows(walk: sv32.Walk, rows: list[list[str]], styles: list[str]) -> None:
    """One row per level, a G-stage walk's rows under the level or address it served."""
    stage = {sv32.STAGE_SV32: "Sv32", sv32.STAGE_VS: "VS", sv32.STAGE_G: "  G"}[walk.stage]
    for level in walk.levels:
        rows.append([stage, *_level_row(level)])
        styles.append(G_STAGE_ROW if walk.stage == sv32.STAGE_G else "")
        if level.g_stage is not None:
            _rows(level.g_stage, rows, styles)
    if walk.g_stage is not None:
        gpa = f"guest pa {walk.gpa:#x}"
        rows.append(
            ["  G", "", gpa, "", "", "", "the guest physical address, through the G-stage:"]
        )
        styles.append(G_STAGE_ROW)
        _rows(walk.g_stage, rows, styles)
