"""matplotlib helpers for the lessons: counts by cause, events on a timeline, and who ran
when (a Gantt chart of a hypervisor's vCPUs).

Output depends only on the data: no dates, times or random colours, so a figure
drawn twice is the same figure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import matplotlib.pyplot as plt


def _axes(ax):
    if ax is None:
        _figure, ax = plt.subplots(figsize=(7, 3))
    return ax


def bars_by_cause(counts: Mapping[str, int], ax=None, title: str = "exits by cause"):
    """Horizontal bars, largest first (ties by name); returns the Axes."""
    ax = _axes(ax)
    items = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    names = [name for name, _ in items]
    values = [value for _, value in items]
    ax.barh(names, values, color="tab:blue")
    ax.invert_yaxis()
    ax.set_xlabel("count")
    ax.set_title(title)
    for y, value in enumerate(values):
        ax.annotate(str(value), (value, y), xytext=(3, 0), textcoords="offset points", va="center")
    ax.figure.tight_layout()
    return ax


def bars_by_group(
    values: Mapping[str, Mapping[str, float]],
    ax=None,
    title: str = "",
    ylabel: str = "",
    log: bool = False,
    labels: bool = True,
):
    """Grouped vertical bars: one group per outer key (a workload), one bar per inner
    key (a technique), in the order given; returns the Axes. ``log`` for a log scale."""
    if ax is None:
        _figure, ax = plt.subplots(figsize=(9, 3.2))
    groups = list(values)
    series = list(dict.fromkeys(name for inner in values.values() for name in inner))
    width = 0.8 / max(len(series), 1)
    for k, name in enumerate(series):
        xs = [g + (k - (len(series) - 1) / 2) * width for g in range(len(groups))]
        ys = [values[group].get(name, 0) for group in groups]
        bars = ax.bar(xs, ys, width, label=name, color=f"C{k}")
        if labels:
            ax.bar_label(bars, fmt="%.3g", fontsize=7, padding=1)
    ax.set_xticks(range(len(groups)), groups)
    if log:
        ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.figure.tight_layout()
    return ax


def timeline(
    events: Iterable[tuple[int, str]], ax=None, title: str = "events", xlabel: str = "instructions"
):
    """One marker per (position, label) event, one row per label; returns the Axes."""
    ax = _axes(ax)
    events = list(events)
    labels = sorted({label for _, label in events})
    rows = {label: i for i, label in enumerate(labels)}
    ax.scatter([x for x, _ in events], [rows[label] for _, label in events], marker="|", s=200)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.figure.tight_layout()
    return ax


def trap_timeline(recorder, ax=None, title: str = "traps and exits"):
    """The rows of a TrapRecorder on a timeline of retired instructions."""
    return timeline(((row.instret, row.cause) for row in recorder.rows), ax, title)


def gantt(
    timeline,
    ax=None,
    title: str = "who ran when",
    window: tuple[int, int] | None = None,
    queued: bool = True,
):
    """Which vCPU ran when: one row per vCPU, a solid bar for each run; returns the Axes.

    ``timeline`` is a ``Timeline`` of virtkit.monitors.hypervisor (``Hypervisor.timeline()``
    or ``simulation.simulate``): its ``vcpus`` give the rows, top to bottom, and its
    ``runs`` the bars. With ``queued``, a pale bar shows each vCPU that sat in the run
    queue while another ran, numbered with its place in the queue at that dispatch when
    there is room. ``window`` = (start, end) in microseconds draws only that part; times
    are shown in milliseconds.
    """
    if ax is None:
        _figure, ax = plt.subplots(figsize=(10, 0.5 + 0.45 * len(timeline.vcpus)))
    names = [vcpu.name for vcpu in timeline.vcpus]
    rows = {name: row for row, name in enumerate(names)}
    colours = {name: f"C{row % 10}" for row, name in enumerate(names)}
    start, end = window if window is not None else (0, timeline.duration)
    span = max(end - start, 1)
    for run in timeline.runs:
        left, right = max(run.start, start), min(run.end, end)
        if left >= right:
            continue
        width = (right - left) / 1000
        ax.barh(rows[run.vcpu], width, left=left / 1000, height=0.7, color=colours[run.vcpu])
        if not queued:
            continue
        for place, name in enumerate(run.runq, start=1):
            ax.barh(
                rows[name], width, left=left / 1000, height=0.35, color=colours[name], alpha=0.3
            )
            if (right - left) * 40 >= span:  # wide enough for a digit
                ax.text(
                    (left + right) / 2000,
                    rows[name],
                    str(place),
                    ha="center",
                    va="center",
                    fontsize=7,
                )
    ax.set_yticks(range(len(names)), names)
    ax.set_ylim(len(names) - 0.5, -0.5)  # the first vCPU on top
    ax.set_xlim(start / 1000, end / 1000)
    ax.set_xlabel("machine time (ms)")
    ax.set_title(title)
    ax.figure.tight_layout()
    return ax
