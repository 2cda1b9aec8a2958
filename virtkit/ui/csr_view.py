"""``CSRView``: control and status registers with their named fields decoded.

The rows come from ``virtkit.cpu.inspect.csr_rows``; only non-zero fields are listed.
"""

from __future__ import annotations

import ipywidgets as widgets

from virtkit.cpu.inspect import DEFAULT_CSRS, csr_rows
from virtkit.ui.html import table


class CSRView(widgets.VBox):
    def __init__(self, hart, names: tuple[str, ...] = DEFAULT_CSRS):
        self.hart = hart
        self.names = tuple(names)
        self.table = widgets.HTML().add_class("virtkit-csrs")
        refresh = widgets.Button(description="Refresh", layout=widgets.Layout(width="auto"))
        refresh.on_click(lambda _button: self.update())
        super().__init__([refresh, self.table])
        self.update()

    def update(self) -> None:
        rows = [
            [
                row.name,
                f"{row.value:#010x}",
                " ".join(f"{k}={v:#x}" if v > 1 else k for k, v in row.fields.items()),
                row.note,
            ]
            for row in csr_rows(self.hart, self.names)
        ]
        self.table.value = table(["CSR", "value", "fields set", "meaning"], rows)
