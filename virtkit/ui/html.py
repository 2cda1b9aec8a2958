"""Small HTML helpers shared by the views: escaped, monospace tables."""

from __future__ import annotations

from html import escape

MONOSPACE = "font-family: var(--jp-code-font-family, monospace); font-size: 12px;"
HIGHLIGHT = "background: #fff3b0;"
CHANGED = "color: #b00020; font-weight: bold;"


def table(header: list[str], rows: list[list[str]], row_styles: list[str] | None = None) -> str:
    """An HTML table; cells are escaped, ``row_styles`` are CSS for each row."""
    styles = row_styles or [""] * len(rows)
    head = "".join(f"<th style='text-align:left; padding:0 8px'>{escape(h)}</th>" for h in header)
    body = "".join(
        f"<tr style='{style}'>"
        + "".join(f"<td style='padding:0 8px; white-space:pre'>{escape(c)}</td>" for c in row)
        + "</tr>"
        for row, style in zip(rows, styles, strict=True)
    )
    return f"<table style='{MONOSPACE} border-collapse: collapse'><tr>{head}</tr>{body}</table>"


def pre(text: str, style: str = "") -> str:
    return f"<pre style='{MONOSPACE} margin: 0; {style}'>{escape(text)}</pre>"
