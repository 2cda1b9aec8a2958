"""``PageTableView``: the Sv32 walk of a virtual address the student types.

Each level shows the PTE read and decoded and the decision taken; the last line is
the physical address or the fault. The walk is ``virtkit.cpu.sv32.walk``.
``walk_html`` draws any such walk, for the views that show several side by side.
"""

from __future__ import annotations

import ipywidgets as widgets

from virtkit.cpu import sv32
from virtkit.ui.html import pre, table

WALK_HEADER = ["level", "PTE address", "PTE", "flags", "ppn", "decision"]


def walk_html(result: sv32.Walk, title: str | None = None) -> str:
    """One walk as HTML: a heading, a row per level, and the outcome in bold."""
    rows = [
        [
            str(level.level),
            f"{level.pte_address:#010x}",
            f"{level.pte.value:#010x}" if level.pte else "-",
            level.pte.flags if level.pte else "-",
            f"{level.pte.ppn:#x}" if level.pte else "-",
            level.decision,
        ]
        for level in result.levels
    ]
    head = title or f"{result.access} of va {result.va:#010x} in {result.mode}-mode"
    return pre(head) + table(WALK_HEADER, rows) + pre(result.summary, "font-weight: bold")


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
        self.mode_box = widgets.Dropdown(options=["U", "S", "M"], value=mode, description="mode")
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
