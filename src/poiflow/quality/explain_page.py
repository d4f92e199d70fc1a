"""A pair's explanation as one self-contained web page (``poiflow explain ... --html``).

The page shows what ``poiflow explain`` prints: the two records side by side, the verdict,
and the score as a waterfall chart: the model's start, each part of the score as a bar
from where the parts before it left the score (green up, red down), the score, and the
line from which the run joins a pair. It reads the story as JSON-ready data
(``PairStory.as_dict()``), so the quality package draws it without the matcher.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from poiflow.quality.page import ASSETS, escape, write_page

__all__ = ["explain_fragment", "write_explain_page"]

_SHOWN: Final = ("name", "category", "address", "phones", "websites", "lat", "lon", "update_time")
_LEAST_BITS: Final = 0.1  # smaller parts are summed into one bar
_ROW: Final = 22  # pixels a bar of the chart takes
_LABEL: Final = 260  # pixels of the labels' column
_WIDTH: Final = 760

# The chart's own rules: only its classes, so that a notebook can take them in as they are.
_CHART_CSS: Final = f"""svg.waterfall{{width:100%;max-width:{_WIDTH}px}}
svg.waterfall .up{{fill:#2e7d32}}svg.waterfall .down{{fill:#c62828}}
svg.waterfall .total{{fill:#3b78c4}}
svg.waterfall .bar{{stroke:#b35900;stroke-dasharray:4 3}}svg.waterfall .axis{{stroke:#555}}
svg.waterfall text{{font-size:12px;fill:#1d2733}}"""

_PAGE: Final = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>{css}
{chart_css}
</style></head>
<body>
<header><h1>{title}</h1><p>{verdict}</p></header>
<section><h2>The two records</h2>{records}</section>
<section><h2>{chart_title}</h2>
<p>Each bar is one part of the score, in bits (+1 bit doubles the odds of a match), from
where the parts above it left the score. {how}</p>
{chart}</section>
</body></html>
"""


def write_explain_page(story: Mapping[str, Any], path: Path) -> Path:
    """Write ``story`` (``PairStory.as_dict()``) as a web page at ``path``, whole or not
    at all."""
    left, right = story["records"]
    title = f"{left['source']}:{left['id']} and {right['source']}:{right['id']}"
    chart_title, how = _chart_said(story)
    page = _PAGE.format(
        title=escape(f"poiflow explain: {title}"),
        css=(ASSETS / "report.css").read_text("utf-8"),
        chart_css=_CHART_CSS,
        verdict=escape(story["verdict"]),
        records=_records(left, right),
        chart_title=escape(chart_title),
        how=escape(how),
        chart=_waterfall(story["explanation"], story.get("threshold"), story.get("threshold_bits")),
    )
    return write_page(path, page)


def explain_fragment(story: Mapping[str, Any]) -> str:
    """``story`` (``PairStory.as_dict()``) as a piece of a page, for a notebook: the
    verdict, the two records and the waterfall, styled by rules of the chart's own classes
    alone (the page's style sheet would restyle the notebook)."""
    left, right = story["records"]
    chart_title, how = _chart_said(story)
    return (
        f"<div><style>{_CHART_CSS}</style><p><b>{escape(story['verdict'])}</b></p>"
        f"{_records(left, right)}<p>{escape(chart_title)}. Each bar is one part of the "
        f"score, in bits, from where the parts above it left it. {escape(how)}</p>"
        f"{_waterfall(story['explanation'], story.get('threshold'), story.get('threshold_bits'))}"
        "</div>"
    )


def _chart_said(story: Mapping[str, Any]) -> tuple[str, str]:
    """The chart's title, and what its parts are."""
    explanation = story["explanation"]
    how = (
        "The parts are the model's SHAP values; the score's logistic, calibrated, is the "
        "probability."
        if explanation["calibrated"]
        else "The parts are the Fellegi-Sunter model's match weights; the score's logistic is "
        "the probability."
    )
    run = story.get("run_probability")
    chart_title = (
        f"Why {story['model']} scores them {explanation['probability']:.3f}"
        if run is not None
        else f"Never compared: {story['model']} would score them {explanation['probability']:.3f}"
    )
    return chart_title, how


def _records(left: Mapping[str, Any], right: Mapping[str, Any]) -> str:
    def cell(record: Mapping[str, Any], field: str) -> str:
        value = record.get(field)
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        return f"<td>{escape(value)}</td>"

    rows = "".join(
        f"<tr><th>{escape(field.replace('_', ' '))}</th>"
        f"{cell(left, field)}{cell(right, field)}</tr>"
        for field in _SHOWN
    )
    head = (
        f"<tr><th></th><th>{escape(left['source'])}:{escape(left['id'])}</th>"
        f"<th>{escape(right['source'])}:{escape(right['id'])}</th></tr>"
    )
    return f"<table><thead>{head}</thead><tbody>{rows}</tbody></table>"


def _waterfall(
    explanation: Mapping[str, Any], threshold: float | None, threshold_bits: float | None
) -> str:
    """The score as an SVG waterfall: one row a part, each bar from the running score."""
    parts: Sequence[Mapping[str, Any]] = explanation["parts"]
    big = [p for p in parts if abs(p["bits"]) >= _LEAST_BITS]
    rest = sum(p["bits"] for p in parts if abs(p["bits"]) < _LEAST_BITS)
    start = float(explanation["start_bits"])
    rows: list[tuple[str, float, float, str]] = [("start: an average pair", 0.0, start, "total")]
    score = start
    for part in big:
        label = f"{part.get('label', part['name'])}: {part['shows']}"
        rows.append((label, score, score + part["bits"], "up" if part["bits"] > 0 else "down"))
        score += part["bits"]
    if rest:
        count = len(parts) - len(big)
        rows.append(
            (
                f"{count} more, each under {_LEAST_BITS}",
                score,
                score + rest,
                "up" if rest > 0 else "down",
            )
        )
        score += rest
    rows.append((f"score (probability {explanation['probability']:.3f})", 0.0, score, "total"))
    ends = [0.0, *(v for _, a, b, _ in rows for v in (a, b))]
    if threshold_bits is not None:
        ends.append(threshold_bits)
    low, high = min(ends), max(ends)
    span = (high - low) or 1.0
    plot = _WIDTH - _LABEL - 60

    def x(bits: float) -> float:
        return _LABEL + (bits - low) / span * plot

    shapes = []
    for i, (label, a, b, kind) in enumerate(rows):
        y = 10 + i * _ROW
        left, right = sorted((x(a), x(b)))
        change = b - a
        shapes.append(
            f'<text x="{_LABEL - 8}" y="{y + 14}" text-anchor="end">{escape(label)}</text>'
            f'<rect class="{kind}" x="{left:.1f}" y="{y + 3}" width="{max(right - left, 1):.1f}" '
            f'height="{_ROW - 6}"><title>{escape(f"{change:+.2f} bits")}</title></rect>'
            f'<text x="{right + 4:.1f}" y="{y + 14}">{change:+.1f}</text>'
        )
    height = 20 + len(rows) * _ROW
    zero = x(0.0)
    shapes.append(f'<line class="axis" x1="{zero:.1f}" y1="4" x2="{zero:.1f}" y2="{height - 6}"/>')
    if threshold_bits is not None and threshold is not None:
        at = x(threshold_bits)
        said = f"the run joins from {threshold_bits:+.1f} bits (p {threshold:g})"
        shapes.append(
            f'<line class="bar" x1="{at:.1f}" y1="4" x2="{at:.1f}" y2="{height - 6}">'
            f"<title>{escape(said)}</title></line>"
        )
    return (
        f'<svg class="waterfall" viewBox="0 0 {_WIDTH} {height}" role="img" '
        f'aria-label="the score, part by part">{"".join(shapes)}</svg>'
        + (
            f"<p>The dashed line: the run joins a pair from {threshold_bits:+.1f} bits "
            f"(probability {threshold:g}).</p>"
            if threshold_bits is not None and threshold is not None
            else ""
        )
    )
