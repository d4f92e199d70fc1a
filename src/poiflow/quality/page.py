"""The building blocks of poiflow's HTML pages (the run's report, an explanation): a
section, a table, bars, text escaped, and a page written whole or not at all."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["ASSETS", "Raw", "bars", "escape", "html_table", "maybe", "pct", "section", "write_page"]

# The pages' scripts and styles (Leaflet vendored from npm among them), inlined in each.
ASSETS = Path(__file__).resolve().parent / "assets"


def write_page(path: Path, page: str) -> Path:
    """Write a page at ``path`` whole or not at all (a file beside it, then renamed)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(page, "utf-8")
    tmp.replace(path)
    return path


def escape(value: Any) -> str:
    """``value`` as HTML text (None as nothing)."""
    return html.escape("" if value is None else str(value))


def section(title: str, content: str) -> str:
    """A titled section of a page."""
    return f"<section><h2>{escape(title)}</h2>\n{content}\n</section>"


def html_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    numeric: Sequence[int] = (),
    below: Sequence[Raw | None] = (),
) -> str:
    """An HTML table; ``below[i]``, where given, is a row of its own under row ``i``, the
    table's whole width (a worst offender's records)."""
    head = "".join(
        f"<th{NUM if i in numeric else ''}>{escape(h)}</th>" for i, h in enumerate(headers)
    )
    lines = []
    for index, row in enumerate(rows):
        cells = "".join(
            f"<td{NUM if i in numeric else ''}>{cell_html(cell)}</td>" for i, cell in enumerate(row)
        )
        lines.append(f"<tr>{cells}</tr>")
        extra = below[index] if index < len(below) else None
        if extra is not None:
            lines.append(f'<tr class="members"><td colspan="{len(headers)}">{extra}</td></tr>')
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(lines)}</tbody></table>"


NUM = ' class="num"'


class Raw(str):
    """HTML that is already escaped."""


def cell_html(cell: Any) -> str:
    """A cell's HTML: itself if already HTML (``Raw``), else its text escaped."""
    return cell if isinstance(cell, Raw) else escape(cell)


def pct(part: float, whole: float) -> str:
    """``part`` as a percentage of ``whole`` (``-`` of nothing)."""
    return f"{100 * part / whole:.1f}%" if whole else "-"


def bars(
    counts: Sequence[float], labels: Sequence[str], *, width: int = 720, height: int = 220
) -> str:
    """Bars on a log scale (pairs pile up near 0: a linear scale would show one bar)."""
    top = float(np.log10(1 + max(max(counts, default=0), 1)))
    bar = (width - 60) / max(1, len(counts))
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height + 40}" role="img">']
    for i, (count, label) in enumerate(zip(counts, labels, strict=True)):
        h = height * float(np.log10(1 + count)) / top
        x = 50 + i * bar
        tip = f"<title>{escape(label)}: {count:,.0f}</title>"
        parts.append(
            f'<rect x="{x:.1f}" y="{height - h + 10:.1f}" width="{bar * 0.9:.1f}" '
            f'height="{h:.1f}">{tip}</rect>'
        )
        if i % max(1, len(counts) // 10) == 0:
            parts.append(f'<text x="{x:.1f}" y="{height + 28}" class="tick">{escape(label)}</text>')
    parts.append(f'<text x="4" y="20" class="tick">{max(counts, default=0):,.0f}</text>')
    parts.append(f'<line x1="48" y1="{height + 10}" x2="{width}" y2="{height + 10}" class="axis"/>')
    parts.append("</svg>")
    return "".join(parts)


def maybe(value: float | None, form: str) -> str:
    """``value`` in ``form``, or ``-`` where it is missing or NaN."""
    return "-" if value is None or np.isnan(value) else form.format(value)
