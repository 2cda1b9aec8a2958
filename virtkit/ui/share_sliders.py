"""``ShareSliders``: a weight and a cap slider for each VM, a slice slider, and a Run button.

The widget computes nothing itself: Run calls ``experiment(weights, caps, slice_ms)``,
a plain function the lesson defines (it boots the VMs on a hypervisor, runs them, prints
the table and draws the plots), and shows what it prints and draws below the sliders.
Each run boots real VMs and takes a second or two, so the sliders do not re-run on every
move: set them, then press Run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import ipywidgets as widgets

from virtkit.monitors.hypervisor.scheduler import DEFAULT_WEIGHT, MAX_CAP, NO_CAP

WEIGHT_RANGE = (64, 1024, 64)  # min, max, step: Xen's weights are relative, 256 by default
CAP_STEP = 5  # percent


class ShareSliders(widgets.VBox):
    """Sliders for ``names`` (one VM each) and the slice; Run calls ``experiment``.

    ``weights`` and ``caps`` are the starting values (default 256 and no cap);
    ``slices`` the slice lengths in milliseconds to choose from.
    """

    def __init__(
        self,
        experiment: Callable[[list[int], list[int], int], object],
        names: Sequence[str],
        weights: Sequence[int] | None = None,
        caps: Sequence[int] | None = None,
        slices: Sequence[int] = (1, 2, 3, 5, 10, 30),
        slice_ms: int = 1,
    ):
        self.experiment = experiment
        weights = list(weights or [DEFAULT_WEIGHT] * len(names))
        caps = list(caps or [NO_CAP] * len(names))
        if not len(names) == len(weights) == len(caps):
            raise ValueError(
                f"ShareSliders needs a weight and a cap for each VM: {len(names)} names, "
                f"{len(weights)} weights, {len(caps)} caps"
            )
        low, high, step = WEIGHT_RANGE
        self.weight_sliders = [
            widgets.IntSlider(value=weight, min=low, max=high, step=step, description=name)
            for name, weight in zip(names, weights, strict=True)
        ]
        self.cap_sliders = [
            widgets.IntSlider(
                value=cap, min=NO_CAP, max=MAX_CAP, step=CAP_STEP, description="cap %"
            )
            for cap in caps
        ]
        self.slice_slider = widgets.SelectionSlider(
            options=list(slices), value=slice_ms, description="slice (ms)"
        )
        self.run_button = widgets.Button(description="Run", button_style="primary")
        self.run_button.on_click(lambda _button: self.run())
        self.status = widgets.Label("").add_class("virtkit-status")
        self.output = widgets.Output()
        rows = [
            widgets.HBox([weight, cap])
            for weight, cap in zip(self.weight_sliders, self.cap_sliders, strict=True)
        ]
        controls = widgets.HBox([self.slice_slider, self.run_button, self.status])
        super().__init__([*rows, controls, self.output])

    def values(self) -> tuple[list[int], list[int], int]:
        """What the sliders say: (weights, caps, slice in milliseconds)."""
        return (
            [slider.value for slider in self.weight_sliders],
            [slider.value for slider in self.cap_sliders],
            self.slice_slider.value,
        )

    def run(self) -> None:
        """Call the experiment with the sliders' values; show its output in place of the last."""
        weights, caps, slice_ms = self.values()
        self.status.value = "running..."
        self.output.clear_output(wait=True)
        with self.output:
            self.experiment(weights, caps, slice_ms)
        self.status.value = f"weights {weights}, caps {caps}, slice {slice_ms} ms"
