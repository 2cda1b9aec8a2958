"""``ShadowPageTableView``: a guest's page table walk next to the shadow table's.

For a full-virtualization monitor (virtkit.monitors.fullvirt): on the left the walk
through the guest's own tables (guest virtual -> guest physical), on the right the walk
the hart does through the shadow table (guest virtual -> host physical), and between
them the monitor's guest-physical map. The walks are
``virtkit.monitors.inspect.compare_walks``.
"""

from __future__ import annotations

import ipywidgets as widgets

from virtkit.cpu import sv32
from virtkit.monitors.inspect import compare_walks
from virtkit.ui.html import pre
from virtkit.ui.page_table_view import parse_address, walk_html


class ShadowPageTableView(widgets.VBox):
    def __init__(self, monitor, va: int = 0, access: str = "load", mode: str | None = None):
        self.monitor = monitor
        self.va_box = widgets.Text(value=f"{va:#010x}", description="va", continuous_update=False)
        self.access_box = widgets.Dropdown(
            options=list(sv32.ACCESSES), value=access, description="access"
        )
        self.mode_box = widgets.Dropdown(
            options=[("guest S", "S"), ("guest U", "U")],
            value=mode or monitor.vcpu.mode,
            description="by",
        )
        translate = widgets.Button(description="Translate", layout=widgets.Layout(width="auto"))
        translate.on_click(lambda _button: self.update())
        self.va_box.observe(lambda _change: self.update(), names="value")
        self.guest = widgets.HTML().add_class("virtkit-walk")
        self.shadow = widgets.HTML().add_class("virtkit-walk")
        self.summary = widgets.HTML()
        self.comparison = None
        controls = widgets.HBox([self.va_box, self.access_box, self.mode_box, translate])
        super().__init__([controls, widgets.HBox([self.guest, self.shadow]), self.summary])
        self.update()

    def update(self) -> None:
        va = parse_address(self.va_box.value)
        if va is None:
            self.comparison = None
            self.guest.value = self.shadow.value = ""
            self.summary.value = pre(
                f"{self.va_box.value!r} is not a number: write it as 0x00401234 or 4198964"
            )
            return
        found = compare_walks(self.monitor, va, self.access_box.value, self.mode_box.value)
        self.comparison = found
        self.guest.value = walk_html(
            found.guest, "the guest's tables: guest virtual -> guest physical"
        )
        self.shadow.value = walk_html(
            found.shadow, f"the shadow table ({found.view} view): guest virtual -> host physical"
        )
        self.summary.value = pre(str(found))
