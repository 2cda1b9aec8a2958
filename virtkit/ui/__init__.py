"""ipywidgets views and matplotlib plots over virtkit's public APIs.

This is the only package that imports ipywidgets or matplotlib. Each view shows rows
that a plain function computes (virtkit.cpu.inspect, virtkit.cpu.sv32,
virtkit.cpu.trace, virtkit.monitors.inspect, virtkit.popek_goldberg), so everything on
screen is also reachable without a widget.

    from virtkit.ui import CPUView, CSRView, TrapLog, PageTableView, ConsoleView
    from virtkit.ui import ShadowPageTableView, SensitivityTable      # lesson 04
    from virtkit.ui import ShareSliders                                # lesson 02
"""

from virtkit.ui.console_view import ConsoleView
from virtkit.ui.cpu_view import CPUView
from virtkit.ui.csr_view import CSRView
from virtkit.ui.page_table_view import PageTableView
from virtkit.ui.sensitivity_table import SensitivityTable
from virtkit.ui.shadow_view import ShadowPageTableView
from virtkit.ui.share_sliders import ShareSliders
from virtkit.ui.trap_log import TrapLog

__all__ = [
    "CPUView",
    "CSRView",
    "ConsoleView",
    "PageTableView",
    "SensitivityTable",
    "ShadowPageTableView",
    "ShareSliders",
    "TrapLog",
]
