"""``SensitivityTable``: RV32's instructions as Popek and Goldberg classify them.

The rows are ``virtkit.popek_goldberg.classify()``, measured on the hart; the view only
filters them: by class, by extension, or by text in the instruction.
"""

from __future__ import annotations

import ipywidgets as widgets

from virtkit import popek_goldberg as PG
from virtkit.ui.html import table

ALL = "all"


class SensitivityTable(widgets.VBox):
    def __init__(self, rows=None, category: str = ALL, extension: str = ALL, text: str = ""):
        self.rows = tuple(PG.classify() if rows is None else rows)
        categories = sorted({row.category for row in self.rows})
        extensions = [e for e in PG.EXTENSIONS if any(r.extension == e for r in self.rows)]
        self.category_box = widgets.Dropdown(
            options=[ALL, *categories], value=category, description="class"
        )
        self.extension_box = widgets.Dropdown(
            options=[ALL, *extensions], value=extension, description="extension"
        )
        self.text_box = widgets.Text(value=text, description="contains", placeholder="csr, sret")
        for box in (self.category_box, self.extension_box, self.text_box):
            box.observe(lambda _change: self.update(), names="value")
        self.count = widgets.Label("").add_class("virtkit-status")
        self.table = widgets.HTML().add_class("virtkit-classes")
        controls = widgets.HBox([self.category_box, self.extension_box, self.text_box])
        super().__init__([controls, self.count, self.table])
        self.update()

    def shown(self) -> list:
        """The rows the filters let through."""
        category, extension = self.category_box.value, self.extension_box.value
        text = self.text_box.value.strip().lower()
        return [
            row
            for row in self.rows
            if category in (ALL, row.category)
            and extension in (ALL, row.extension)
            and text in row.text.lower()
        ]

    def update(self) -> None:
        rows = self.shown()
        self.count.value = f"{len(rows)} of {len(self.rows)} instructions"
        self.table.value = table(PG.HEADER, PG.rows(rows))
