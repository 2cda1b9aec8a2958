"""matplotlib helpers for the lessons: counts by cause, and events on a timeline.

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
