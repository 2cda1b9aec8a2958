"""``TrapLog``: one row per trap or exit, from a ``virtkit.cpu.trace.TrapRecorder``."""

from __future__ import annotations

import ipywidgets as widgets

from virtkit.ui.html import table

HEADER = ["#", "instret", "pc", "mode", "kind", "cause", "tval", "instruction", "handled by"]


class TrapLog(widgets.VBox):
    def __init__(self, recorder, last: int = 50):
        self.recorder = recorder
        self.last = last  # rows shown, the newest
        self.table = widgets.HTML().add_class("virtkit-traps")
        refresh = widgets.Button(description="Refresh", layout=widgets.Layout(width="auto"))
        refresh.on_click(lambda _button: self.update())
        super().__init__([refresh, self.table])
        self.update()

    def update(self) -> None:
        rows = [
            [
                str(r.sequence),
                str(r.instret),
                f"{r.pc:#010x}",
                r.mode,
                r.kind,
                r.cause,
                f"{r.tval:#x}",
                r.instruction,
                r.handled_by,
            ]
            for r in self.recorder.rows[-self.last :]
        ]
        hidden = len(self.recorder.rows) - len(rows) + self.recorder.dropped
        note = f"<p>{hidden} earlier rows not shown</p>" if hidden else ""
        self.table.value = note + table(HEADER, rows)
