"""The report's sections against known truth: where a run's errors came from
(:class:`ErrorBreakdown`, made by the pipeline), precision, recall and F1 by threshold,
and the error pairs as lines on the map."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import polars as pl
import pyarrow as pa

from poiflow.quality.page import Raw, escape, html_table, maybe, pct
from poiflow.schema import PAIR_RECORD_KEYS, PAIR_SCORE_COLUMNS

__all__ = ["MAP_ERRORS", "ErrorBreakdown", "error_lines", "errors_section", "pr_curve"]

# Error pairs drawn on the map at most.
MAP_ERRORS: Final = 5_000


@dataclass(frozen=True, slots=True)
class ErrorBreakdown:
    """Where a run's errors came from, against known truth (made by the pipeline from
    ``poiflow.conflate.diagnosis``; the quality package does not match records itself).

    Attributes:
        threshold: The clustering threshold.
        kinds: ``(error, stage, what happened, pairs)`` for each kind of error.
        kept_apart: ``(rule, what it means, pairs)``: the clustering rules that kept
            true pairs apart.
        by_sources: ``left_source, right_source, true_pairs, predicted_pairs,
            correct_pairs, precision, recall, f1``.
        examples: Per kind, a title and its surest mistakes: ``left_source, left_id,
            right_source, right_id``, ``left_name``/``right_name``, ``match_probability``,
            ``kept_apart_by``, ``metres_apart`` and ``drivers`` (the parts of the score
            that moved it most) where known.
        pairs: Every error pair, for the map: ``error``, ``stage``, ``left_name``,
            ``right_name``, ``match_probability``, ``left_lat``, ``left_lon``,
            ``right_lat``, ``right_lon``.
        drivers: What moved the scores of each kind of mistake (the scored ones): per
            ``error``, ``stage``, its largest ``feature`` parts in words, with
            ``mean_bits``, ``typical`` (what most of the pairs showed),
            ``typical_share`` and ``pairs``, largest first.
    """

    threshold: float
    kinds: Sequence[tuple[str, str, str, int]]
    kept_apart: Sequence[tuple[str, str, int]]
    by_sources: pl.DataFrame
    examples: Sequence[tuple[str, pl.DataFrame]]
    pairs: pl.DataFrame | None = None
    drivers: pl.DataFrame | None = None


def errors_section(errors: ErrorBreakdown) -> str:
    """Where the errors are: each kind, what moved their scores, the clustering rules
    that kept true pairs apart, each pair of sources, and the surest mistakes."""
    totals = {e: sum(n for k, _, _, n in errors.kinds if k == e) for e in ("missed", "wrong")}
    kinds = html_table(
        ["error", "stage", "what happened", "pairs", "share"],
        [(e, stage, cause, f"{n:,}", pct(n, totals[e])) for e, stage, cause, n in errors.kinds],
        numeric=[3, 4],
    )
    sources = html_table(
        ["sources", "true pairs", "predicted", "correct", "precision", "recall", "F1"],
        [
            (
                f"{r['left_source']} · {r['right_source']}",
                f"{r['true_pairs']:,}",
                f"{r['predicted_pairs']:,}",
                f"{r['correct_pairs']:,}",
                f"{r['precision']:.4f}",
                f"{r['recall']:.4f}",
                f"{r['f1']:.4f}",
            )
            for r in errors.by_sources.iter_rows(named=True)
        ],
        numeric=list(range(1, 7)),
    )
    apart = sum(n for _, _, n in errors.kept_apart)
    rules = html_table(
        ["rule", "what it means", "pairs", "share"],
        [(rule, what, f"{n:,}", pct(n, apart)) for rule, what, n in errors.kept_apart if n],
        numeric=[2, 3],
    )
    parts = [
        f"<p>Each pair of records the truth puts in one place and the run did not (missed), "
        f"and each the run put in one place wrongly (wrong), traced to the stage that lost "
        f"it, at the clustering threshold {errors.threshold:g}. "
        "<code>poiflow evaluate --errors FILE</code> writes them all, with their features; "
        "<code>poiflow explain RUN SOURCE:ID SOURCE:ID</code> takes one pair's score apart.</p>",
        kinds,
        _drivers(errors),
        f"<h3>What kept true pairs apart in clustering</h3>{rules}" if apart else "",
        f"<h3>By pair of sources</h3>{sources}",
    ]
    for title, rows in errors.examples:
        why = "kept_apart_by" in rows.columns and rows["kept_apart_by"].is_not_null().any()
        drove = "drivers" in rows.columns and rows["drivers"].is_not_null().any()
        shown = html_table(
            ["record", "record", "match probability", "metres apart"]
            + ["kept apart by"] * why
            + ["what moved the score most (bits)"] * drove,
            [
                (
                    _example_record(r, "left"),
                    _example_record(r, "right"),
                    maybe(r.get("match_probability"), "{:.3f}"),
                    maybe(r.get("metres_apart"), "{:,.0f}"),
                    *([r["kept_apart_by"]] if why else []),
                    *([r["drivers"] or ""] if drove else []),
                )
                for r in rows.iter_rows(named=True)
            ],
            numeric=[2, 3],
        )
        parts.append(f"<h3>{escape(title)}</h3>{shown}")
    return "\n".join(parts)


def _drivers(errors: ErrorBreakdown) -> str:
    """Each kind of scored mistake and the features that moved its scores most."""
    if errors.drivers is None or errors.drivers.is_empty():
        return ""
    kinds = {(e, stage): (cause, n) for e, stage, cause, n in errors.kinds}
    parts = [
        "<h3>What moved the scores of the mistakes</h3><p>For each kind of mistake the "
        "matcher scored, the features whose parts of the scores were largest on average, "
        "in bits (positive: towards a match), and what most of the pairs showed there; of "
        "a sample of each kind's pairs where it has many (<code>poiflow evaluate "
        "--drivers</code> takes apart every one).</p>"
    ]
    for (error, stage), rows in errors.drivers.partition_by(
        ["error", "stage"], as_dict=True, maintain_order=True
    ).items():
        table = html_table(
            ["feature", "mean bits", "what most of the pairs showed", "share"],
            [
                (r["feature"], f"{r['mean_bits']:+.2f}", r["typical"], pct(r["typical_share"], 1))
                for r in rows.iter_rows(named=True)
            ],
            numeric=[1, 3],
        )
        cause, count = kinds.get((str(error), str(stage)), ("", 0))
        taken = int(rows.select(pl.col("pairs").max()).item())
        sampled = f"; {taken:,} of them taken apart" if taken < count else ""
        title = f"{error} · {stage}: {cause} ({count:,} pairs{sampled})"
        parts.append(f"<h4>{escape(title)}</h4>{table}")
    return "\n".join(parts)


def _example_record(row: Mapping[str, Any], end: str) -> Raw:
    name = row.get(f"{end}_name") or ""
    key = f"{row[f'{end}_source']}:{row[f'{end}_id']}"
    return Raw(f"{escape(name)} <small>{escape(key)}</small>")


def pr_curve(pairs: pa.Table, gold: pl.DataFrame, threshold: float | None = None) -> str:
    """Precision, recall and F1 of the scored ``pairs`` against ``gold`` at each
    threshold: a chart (the run's own ``threshold`` marked) and a table."""
    points = _by_threshold(pairs, gold)
    rows = [
        (f"{t / 100:.1f}", f"{pr:.4f}", f"{r:.4f}", f"{_f1(pr, r):.4f}")
        for t, pr, r in points
        if t % 10 == 0
    ]
    return (
        _threshold_chart(points, threshold)
        + "<p>Pair level, over the candidate pairs; recall counts every true pair, "
        "proposed or not.</p>"
        + html_table(["threshold", "precision", "recall", "F1"], rows, numeric=[0, 1, 2, 3])
    )


def _by_threshold(pairs: pa.Table, gold: pl.DataFrame) -> list[tuple[int, float, float]]:
    """``(threshold in hundredths, precision, recall)`` of the pairs scored at least each
    threshold from 0 to 1, by hundredths (those where some pair is)."""
    scored = pl.DataFrame(pairs.select(list(PAIR_SCORE_COLUMNS)))
    truth = gold.select("source", "id", pl.col("place").cast(pl.String))
    scored = scored.join(
        truth.rename({"source": "left_source", "id": "left_id", "place": "lp"}),
        on=["left_source", "left_id"],
    )
    scored = scored.join(
        truth.rename({"source": "right_source", "id": "right_id", "place": "rp"}),
        on=["right_source", "right_id"],
    )
    sizes = truth.group_by("place").len()["len"]
    true_pairs = int((sizes * (sizes - 1) // 2).sum())
    label = (scored["lp"] == scored["rp"]).to_numpy()
    p = scored["match_probability"].to_numpy()
    order = np.argsort(-p, kind="stable")
    tp = np.cumsum(label[order])
    # How many pairs score at least each threshold: one search of the sorted scores.
    called = np.searchsorted(-p[order], -np.arange(101) / 100, side="right").tolist()
    return [
        (hundredths, tp[n - 1] / n, tp[n - 1] / max(1, true_pairs))
        for hundredths, n in enumerate(called)
        if n
    ]


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


_WIDTH: Final = 720
_HEIGHT: Final = 300
_LEFT: Final = 50  # room for the value axis' labels


def _threshold_chart(points: Sequence[tuple[int, float, float]], threshold: float | None) -> str:
    """Precision, recall and F1 against the threshold, on a value axis that starts where
    the middle thresholds' values do (every one of them from 0.05 to 0.95 in sight): a
    good matcher's lie near 1, where an axis from 0 would draw them as one line. What
    falls below it (precision near a threshold of 0) leaves the chart at its foot."""
    middle = [v for t, pr, r in points if 5 <= t <= 95 for v in (pr, r)]
    low = min(0.9, math.floor(min(middle, default=0.0) * 20) / 20)

    def x(hundredths: float) -> float:
        return _LEFT + hundredths / 100 * (_WIDTH - _LEFT - 20)

    def y(value: float) -> float:
        return 10 + (1 - (value - low) / (1 - low)) * _HEIGHT

    bottom = _HEIGHT + 10
    lines = []
    for name, values in (
        ("precision", [(t, pr) for t, pr, _ in points]),
        ("recall", [(t, r) for t, _, r in points]),
        ("F1", [(t, _f1(pr, r)) for t, pr, r in points]),
    ):
        drawn = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in values)
        lines.append(f'<polyline points="{drawn}" class="curve {name.lower()}"/>')
    marks = "".join(
        f'<circle cx="{x(t):.1f}" cy="{y(_f1(pr, r)):.1f}" r="3"><title>threshold '
        f"{t / 100:.2f}: precision {pr:.4f}, recall {r:.4f}, F1 {_f1(pr, r):.4f}</title></circle>"
        for t, pr, r in points
        if t % 10 == 0
    )
    ticks = "".join(
        f'<text x="{_LEFT - 6}" y="{y(v) + 4:.1f}" class="tick" text-anchor="end">{v:g}</text>'
        for v in (low, (1 + low) / 2, 1.0)
    ) + "".join(
        f'<text x="{x(t):.1f}" y="{bottom + 16}" class="tick" text-anchor="middle">'
        f"{t / 100:g}</text>"
        for t in (0, 50, 100)
    )
    legend = "".join(  # under the chart, on the left: the lines end on the right
        f'<text x="{_LEFT + 70 * i}" y="{bottom + 34}" class="tick {name.lower()}">— {name}</text>'
        for i, name in enumerate(("precision", "recall", "F1"))
    )
    run = ""
    if threshold is not None:
        at = x(threshold * 100)
        run = (
            f'<line x1="{at:.1f}" y1="10" x2="{at:.1f}" y2="{bottom}" class="threshold"/>'
            f'<text x="{at + 4:.1f}" y="22" class="tick">this run: {threshold:g}</text>'
        )
    return "".join(
        [
            f'<svg class="chart" viewBox="0 0 {_WIDTH} {_HEIGHT + 50}" role="img">',
            f'<clipPath id="threshold-plot"><rect x="{_LEFT}" y="0" width="{_WIDTH}" '
            f'height="{bottom}"/></clipPath>',
            f'<g clip-path="url(#threshold-plot)">{"".join(lines)}{marks}</g>{run}',
            f'<line x1="{_LEFT}" y1="{bottom}" x2="{_WIDTH}" y2="{bottom}" class="axis"/>',
            f'<line x1="{_LEFT}" y1="10" x2="{_LEFT}" y2="{bottom}" class="axis"/>',
            f'{ticks}{legend}<text x="{x(50):.1f}" y="{bottom + 34}" class="tick" '
            'text-anchor="middle">threshold</text></svg>',
        ]
    )


def error_lines(pairs: pl.DataFrame) -> list[tuple[Any, ...]]:
    """The error pairs whose records both have coordinates, as map lines: a deterministic
    sample of ``MAP_ERRORS`` at most, missed pairs first."""
    located = pairs.drop_nulls(["left_lat", "left_lon", "right_lat", "right_lon"])
    if located.height > MAP_ERRORS:
        located = (
            located.with_columns(pl.concat_str(*PAIR_RECORD_KEYS).hash(seed=7).alias("h"))
            .sort("h")
            .head(MAP_ERRORS)
        )
    located = located.sort("error", *PAIR_RECORD_KEYS)
    p = pl.col("match_probability")
    label = pl.concat_str(
        pl.col("error"),
        pl.lit(" · "),
        pl.col("stage"),
        pl.lit(": "),
        pl.col("left_name").fill_null("?"),
        pl.lit(" / "),
        pl.col("right_name").fill_null("?"),
        pl.when(p.is_null())
        .then(pl.lit(" (never compared)"))
        .otherwise(pl.lit(" (p ") + p.round(3).cast(pl.String) + pl.lit(")")),
    )
    return located.select(
        pl.col("left_lat", "left_lon", "right_lat", "right_lon").round(6),
        pl.col("error"),
        label.alias("label"),
    ).rows()
