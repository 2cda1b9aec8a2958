"""``CPUView``: registers, pc, privilege mode and the code around the pc, with controls.

    view = CPUView(hart, program)      # program: the assembled Program, for source lines
    view                               # in a notebook cell: displays it

Step runs one instruction, Step N the number in the box, Run runs until an exit other
than the budget (a breakpoint, EBREAK, a trap Python owns, ...), Pause stops a run,
Reset puts the hart back as it was when the view was made. The dot left of a line of
code sets or clears a breakpoint there.

Run executes ``batch`` instructions at a time from an asyncio task on the kernel's
event loop and yields between batches, so Pause (and everything else) stays
responsive and the count of instructions grows while it runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import ipywidgets as widgets

from virtkit.cpu import exits as E
from virtkit.cpu.inspect import code_around_pc, register_rows, toggle_breakpoint
from virtkit.ui.html import CHANGED, HIGHLIGHT, MONOSPACE, pre

BREAKPOINT_SET = "●"
BREAKPOINT_CLEAR = "○"


class CPUView(widgets.VBox):
    """A debugger view of one hart.

    ``run`` is what executes instructions, ``hart.run`` by default; pass
    ``recorder.run`` of a ``TrapRecorder`` to log traps while stepping.
    """

    def __init__(
        self,
        hart,
        program=None,
        *,
        run: Callable | None = None,
        batch: int = 100_000,
        before: int = 4,
        after: int = 8,
    ):
        self.hart = hart
        self.program = program
        self.batch = batch
        self._run = run or hart.run
        self._before, self._after = before, after
        self._initial = hart.arrays.state.copy()
        self._initial_breakpoints = hart.breakpoints
        self._previous = hart.x.as_dict()
        self._start_instret = hart.instret
        self._task: asyncio.Task | None = None
        self._pause_requested = False
        self._observers: list[Callable[[], None]] = []
        self.last_exit: E.Exit | None = None

        self.pc_label = widgets.Label().add_class("virtkit-pc")
        self.mode_label = widgets.Label().add_class("virtkit-mode")
        self.count_label = widgets.Label().add_class("virtkit-count")
        self.status = widgets.Label().add_class("virtkit-status")
        self.step_button = self._button("Step", self.on_step, "virtkit-step")
        self.step_n_button = self._button("Step N", self.on_step_n, "virtkit-step-n")
        self.n_box = widgets.BoundedIntText(
            value=10, min=1, max=1 << 40, layout=widgets.Layout(width="8em")
        )
        self.run_button = self._button("Run", self.on_run, "virtkit-run")
        self.pause_button = self._button("Pause", self.on_pause, "virtkit-pause")
        self.reset_button = self._button("Reset", self.on_reset, "virtkit-reset")
        self.registers = widgets.HTML()
        self._code_rows = [self._code_row() for _ in range(before + after + 1)]
        self.code = widgets.VBox([row for row, _, _ in self._code_rows])
        controls = widgets.HBox(
            [
                self.step_button,
                self.step_n_button,
                self.n_box,
                self.run_button,
                self.pause_button,
                self.reset_button,
            ]
        )
        header = widgets.HBox([self.pc_label, self.mode_label, self.count_label, self.status])
        body = widgets.HBox([self.registers, self.code])
        super().__init__([header, controls, body])
        self.update()

    # -- building -----------------------------------------------------------------------------
    @staticmethod
    def _button(text: str, handler, css_class: str) -> widgets.Button:
        button = widgets.Button(description=text, layout=widgets.Layout(width="auto"))
        button.on_click(handler)
        return button.add_class(css_class)

    def _code_row(self):
        dot = widgets.Button(
            description=BREAKPOINT_CLEAR,
            tooltip="set or clear a breakpoint here",
            layout=widgets.Layout(width="2.2em", height="1.6em", padding="0"),
        )
        line = widgets.HTML()
        row = widgets.HBox([dot, line])
        dot.on_click(lambda _button: self._toggle(row))
        return row, dot, line

    def on_update(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` after every update (e.g. a CSRView's ``update``)."""
        self._observers.append(callback)

    # -- showing --------------------------------------------------------------------------------
    def update(self) -> None:
        hart = self.hart
        self.pc_label.value = f"pc {hart.pc:#010x}"
        self.mode_label.value = f"mode {hart.mode}  V={int(hart.virtual)}"
        self.count_label.value = f"{hart.instret - self._start_instret:,} instructions"
        rows = register_rows(hart, self._previous)
        cells = []
        for row in rows:
            text = f"{row.name:>4} {row.value:#010x}"
            cells.append(f"<span style='{CHANGED}'>{text}</span>" if row.changed else text)
        lines = ["   ".join(cells[i : i + 2]) for i in range(0, 32, 2)]
        self.registers.value = f"<pre style='{MONOSPACE} margin:0'>" + "\n".join(lines) + "</pre>"
        self._previous = hart.x.as_dict()
        code = code_around_pc(hart, self.program, self._before, self._after)
        for (row, dot, line), item in zip(self._code_rows, code, strict=True):
            row.address = item.address
            dot.description = BREAKPOINT_SET if item.breakpoint else BREAKPOINT_CLEAR
            label = f"{item.label}:  " if item.label else ""
            source = ""
            if item.source:
                source = f"   # line {item.source.line}: {item.source.text.strip()}"
            text = f"{item.address:08x}  {label}{item.text}{source}"
            line.value = pre(text, HIGHLIGHT if item.is_pc else "")
        for callback in self._observers:
            callback()

    def _show_exit(self, exit: E.Exit) -> None:
        self.last_exit = exit
        self.status.value = "" if exit.reason == E.EXIT_BUDGET else f"stopped: {exit}"

    # -- controls ---------------------------------------------------------------------------------
    def _toggle(self, row) -> None:
        toggle_breakpoint(self.hart, row.address)
        self.update()

    def on_step(self, _button=None) -> None:
        self._show_exit(self._run(1))
        self.update()

    def on_step_n(self, _button=None) -> None:
        self._show_exit(self._run(self.n_box.value))
        self.update()

    def on_reset(self, _button=None) -> None:
        self.on_pause()
        self.hart.arrays.state[:] = self._initial
        self.hart.breakpoints = self._initial_breakpoints
        if self.program is not None:
            for address, data in self.program.segments():
                self.hart.write_memory(address, data)
        self._previous = self.hart.x.as_dict()
        self._start_instret = self.hart.instret
        self.status.value = "reset"
        self.update()

    def on_run(self, _button=None) -> None:
        if self._task is not None and not self._task.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.status.value = "Run needs the event loop of a Jupyter kernel; use Step N"
            return
        self._task = loop.create_task(self.run_until_exit())

    def on_pause(self, _button=None) -> None:
        self._pause_requested = True

    async def run_until_exit(self, max_batches: int | None = None) -> E.Exit:
        """Run in batches until an exit other than BUDGET, Pause, or ``max_batches``."""
        self._pause_requested = False
        self.run_button.disabled = True
        self.status.value = "running"
        batches = 0
        try:
            while True:
                exit = self._run(self.batch)
                batches += 1
                self.update()
                if exit.reason != E.EXIT_BUDGET:
                    self._show_exit(exit)
                    return exit
                await asyncio.sleep(0)  # let the kernel handle Pause and other messages
                if self._pause_requested or (max_batches is not None and batches >= max_batches):
                    self.status.value = "paused"
                    self.last_exit = exit
                    return exit
        finally:
            self.run_button.disabled = False
