"""``TrapLog``: one row per trap or exit, from a ``virtkit.cpu.trace.TrapRecorder`` or a
``virtkit.monitors.inspect.ExitRecorder`` (a monitor's VM exits).

Given ``run`` (a function that runs the machine or monitor a little further), the log
has a button that calls it and shows the new rows: a live log of a guest booting.
"""

from __future__ import annotations

import ipywidgets as widgets

from virtkit.ui.html import table

HEADER = ["#", "instret", "pc", "mode", "kind", "cause", "tval", "instruction", "handled by"]


class TrapLog(widgets.VBox):
    def __init__(self, recorder, last: int = 50, run=None, run_label: str = "Run on"):
        self.recorder = recorder
        self.last = last  # rows shown, the newest
        self.run = run
        self.table = widgets.HTML().add_class("virtkit-traps")
        self.status = widgets.Label("").add_class("virtkit-status")
        refresh = widgets.Button(description="Refresh", layout=widgets.Layout(width="auto"))
        refresh.on_click(lambda _button: self.update())
        buttons = [refresh]
        if run is not None:
            self.run_button = widgets.Button(
                description=run_label, layout=widgets.Layout(width="auto")
            )
            self.run_button.on_click(lambda _button: self.on_run())
            buttons.insert(0, self.run_button)
        super().__init__([widgets.HBox([*buttons, self.status]), self.table])
        self.update()

    def on_run(self) -> None:
        """Run a little further (``run``), then show what it added."""
        before = self.total()
        result = self.run()
        self.update()
        added = f"{self.total() - before} new rows"
        self.status.value = added if result is None else f"{result}: {added}"

    def total(self) -> int:
        """Rows written so far, the dropped ones included."""
        return len(self.recorder.rows) + self.recorder.dropped

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
