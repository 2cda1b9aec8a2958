"""``ConsoleView``: a guest's console output and an input line wired to its UART.

Works with anything that has ``console.text`` and ``console.send(text)``, as
``virtkit.machine.machine.Machine`` has. With ``run_after_send`` and a machine that
has ``run(count)``, sending a line also runs the guest that many instructions so it
can answer.
"""

from __future__ import annotations

import ipywidgets as widgets

from virtkit.ui.html import pre


class ConsoleView(widgets.VBox):
    def __init__(self, machine, run_after_send: int = 0):
        self.machine = machine
        self.run_after_send = run_after_send
        self.output = widgets.HTML().add_class("virtkit-console")
        # Without continuous updates the value changes on Enter (or leaving the box).
        self.input = widgets.Text(
            placeholder="type a line for the guest, then Enter", continuous_update=False
        )
        self.input.observe(lambda change: change["new"] and self.send(), names="value")
        refresh = widgets.Button(description="Refresh", layout=widgets.Layout(width="auto"))
        refresh.on_click(lambda _button: self.update())
        super().__init__([self.output, widgets.HBox([self.input, refresh])])
        self.update()

    def send(self, text: str | None = None) -> None:
        """Send ``text`` (by default the input box's line) with a newline."""
        if text is None:
            text, self.input.value = self.input.value, ""
        self.machine.console.send(text + "\n")
        if self.run_after_send:
            self.machine.run(self.run_after_send)
        self.update()

    def update(self) -> None:
        style = "max-height: 20em; overflow-y: auto; background: #f7f7f7; padding: 4px"
        self.output.value = pre(self.machine.console.text, style)
