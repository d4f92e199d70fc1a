"""What ``poiflow evaluate`` shows beyond the scores: where the errors came from."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Column, Table

from poiflow.errors import OutputError
from poiflow.schema import PAIR_RECORD_KEYS

if TYPE_CHECKING:
    from collections.abc import Callable

    import polars as pl

    from poiflow.conflate.accuracy import PlaceAccuracy
    from poiflow.conflate.diagnosis import Diagnosis

__all__ = [
    "draw_accuracy",
    "draw_diagnosis",
    "draw_drivers",
    "draw_sweep",
    "score_drivers",
    "write_errors",
]


def score_drivers(
    folder: Path, pairs_path: Path | None
) -> Callable[[pl.DataFrame], pl.DataFrame] | None:
    """What adds to example pairs the parts of their scores that moved them most, with the
    run's own model (``model.json.gz`` beside the membership); None without one."""
    import pyarrow.parquet as pq

    from poiflow.conflate.matcher import ModelError, load_matcher
    from poiflow.pipeline.drivers import with_drivers

    pairs_path = pairs_path or folder / "pairs.parquet"
    if not (folder / "model.json.gz").exists() or not pairs_path.exists():
        return None
    try:
        model = load_matcher(folder / "model.json.gz")
    except ModelError:
        return None  # the drivers only decorate the examples
    keys = pq.read_table(pairs_path, columns=list(PAIR_RECORD_KEYS))
    return lambda rows: with_drivers(rows, model, pairs_path, keys=keys)


def draw_drivers(console: Console, drivers: pl.DataFrame) -> None:
    """Each kind of mistake the matcher made, and the features that moved its scores most."""
    from poiflow.conflate.diagnosis import CAUSES
    from poiflow.conflate.explain import FEATURE_WORDS
    from poiflow.pipeline.drivers import MISTAKE_DRIVERS

    for (error, stage), rows in sorted(
        drivers.partition_by(["error", "stage"], as_dict=True).items()
    ):
        pairs = int(rows["pairs"][0])
        table = Table(
            "feature",
            "mean bits",
            "what most of the pairs showed",
            show_edge=False,
            title=f"What moved the scores: {error} · {stage}, {CAUSES[(str(error), str(stage))]} "
            f"({pairs:,} pairs)",
            title_justify="left",
        )
        for row in rows.head(MISTAKE_DRIVERS).iter_rows(named=True):
            table.add_row(
                FEATURE_WORDS.get(row["feature"], row["feature"]),
                f"{row['mean_bits']:+.2f}",
                f"{row['typical']} ({row['typical_share']:.0%})",
            )
        console.print()
        console.print(table)


def draw_diagnosis(
    console: Console,
    diagnosis: Diagnosis,
    said: str,
    examples: int,
    drivers: Callable[[pl.DataFrame], pl.DataFrame] | None = None,
) -> None:
    """The errors by stage, the scores by pair of sources, and the surest mistakes (with
    ``drivers``, what moved each one's score most: ``drivers.with_drivers``)."""
    from poiflow.conflate.diagnosis import CAUSES, RULES

    counts = diagnosis.counts()
    table = Table(
        "error",
        "stage",
        "pairs",
        "share",
        "what happened",
        show_edge=False,
        title=f"Where the errors are (threshold {diagnosis.threshold:g}, {said})",
        title_justify="left",
    )
    for error in ("missed", "wrong"):
        total = sum(counts[f"{error}_{stage}"] for e, stage in CAUSES if e == error)
        first = True
        for (e, stage), cause in CAUSES.items():
            n = counts[f"{e}_{stage}"]
            if e != error or (stage == "decision" and not n):  # decisions: only if any
                continue
            share = f"{n / total:.0%}" if total else "-"
            table.add_row(error if first else "", stage, f"{n:,}", share, cause)
            first = False
    console.print(table)
    apart = diagnosis.kept_apart()
    if any(apart.values()):
        rules = Table(
            "rule",
            "pairs",
            "what it means",
            show_edge=False,
            title="What kept true pairs apart in clustering",
            title_justify="left",
        )
        for rule, n in apart.items():
            if n:
                rules.add_row(rule, f"{n:,}", RULES[rule])
        console.print()
        console.print(rules)
    sources = Table(show_edge=False, title="By pair of sources", title_justify="left")
    # A pair of sources on one line, however narrow the terminal: the figures' headings
    # wrap instead.
    sources.add_column("sources", no_wrap=True)
    for heading in ("true pairs", "joined", "right", "precision", "recall", "F1"):
        sources.add_column(heading, justify="right")
    for row in diagnosis.by_sources.iter_rows(named=True):
        sources.add_row(
            f"{row['left_source']} · {row['right_source']}",
            f"{row['true_pairs']:,}",
            f"{row['predicted_pairs']:,}",
            f"{row['correct_pairs']:,}",
            f"{row['precision']:.4f}",
            f"{row['recall']:.4f}",
            f"{row['f1']:.4f}",
        )
    console.print()
    console.print(sources)
    if examples <= 0:
        return
    for (error, stage), cause in CAUSES.items():
        rows = diagnosis.examples(error, stage, examples)
        if rows.height == 0:
            continue
        if drivers is not None:
            rows = drivers(rows)
        why = bool(rows["kept_apart_by"].is_not_null().any())
        drove = "drivers" in rows.columns and bool(rows["drivers"].is_not_null().any())
        shown = Table(
            Column("record", overflow="fold"),  # its key whole, for poiflow explain
            Column("record", overflow="fold"),
            "p",
            "metres",
            *(["kept apart by"] if why else []),
            *(["what moved the score most (bits)"] if drove else []),
            show_edge=False,
            title=f"{error} · {stage}: {cause}",
            title_justify="left",
        )
        for row in rows.iter_rows(named=True):
            shown.add_row(
                _record(row, "left"),
                _record(row, "right"),
                _number(row["match_probability"], "{:.3f}"),
                _number(row.get("metres_apart"), "{:,.0f}"),
                *([row["kept_apart_by"]] if why else []),
                *([row["drivers"] or ""] if drove else []),
            )
        console.print()
        console.print(shown)


def _record(row: dict[str, Any], end: str) -> str:
    name = row.get(f"{end}_name")
    key = f"[dim]{row[f'{end}_source']}:{row[f'{end}_id']}[/dim]"
    return f"{name} {key}" if name else key


def _number(value: float | None, form: str) -> str:
    if value is None or math.isnan(value):
        return "-"
    return form.format(value)


def draw_sweep(console: Console, sweep: pl.DataFrame, threshold: float) -> None:
    """Each threshold's scores, the run's own and the best marked."""
    best = float(sweep.sort("f1", "threshold", descending=[True, False])["threshold"][0])
    table = Table(
        "threshold",
        "precision",
        "recall",
        "F1",
        "B-cubed F1",
        "places",
        "",
        show_edge=False,
        title="The same pairs clustered at other thresholds",
        title_justify="left",
    )
    for row in sweep.iter_rows(named=True):
        marks = [
            m
            for m, on in (
                ("this run", row["threshold"] == threshold),
                ("best F1", row["threshold"] == best),
            )
            if on
        ]
        table.add_row(
            f"{row['threshold']:g}",
            f"{row['precision']:.4f}",
            f"{row['recall']:.4f}",
            f"{row['f1']:.4f}",
            f"{row['bcubed_f1']:.4f}",
            f"{row['places']:,}",
            ", ".join(marks),
            style="bold" if row["threshold"] == best else None,
        )
    console.print()
    console.print(table)
    console.print(
        f"[dim]re-run with --threshold {best:g} (or cluster.threshold in a pipeline) to "
        "use the best; judge it on data other than the one it was picked on[/dim]"
    )


def write_errors(diagnosis: Diagnosis, path: Path) -> None:
    """Every error pair to ``path``: Parquet, or CSV if the name ends in ``.csv``."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        if path.suffix.lower() == ".csv":
            diagnosis.errors.write_csv(tmp)
        else:
            diagnosis.errors.write_parquet(tmp, compression="zstd")
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write the errors ({exc})", path=path) from exc


def _count(n: int) -> str:
    """A count in few characters: 465, 1k, 14k."""
    return str(n) if n < 1000 else f"{round(n / 1000)}k"


def draw_accuracy(console: Console, accuracy: PlaceAccuracy) -> None:
    """Each attribute's coverage and accuracy beside the naive merge's, the location's
    error in metres, and how often values are right at each level of their confidence."""
    from poiflow.conflate.accuracy import NEAR_M

    table = Table(
        "attribute",
        "true",
        "given",
        "coverage",
        "accuracy",
        "naive",
        show_edge=False,
        title=f"Golden records against the truth ({accuracy.places:,} places)",
        title_justify="left",
        caption=f"accuracy: share of the values given that are right (location: within "
        f"{NEAR_M:.0f} m); naive: each place's first record (sources by name) taken whole",
        caption_justify="left",
    )
    for row in accuracy.table.iter_rows(named=True):
        table.add_row(
            row["attribute"],
            f"{row['true']:,}",
            f"{row['given']:,}",
            _number(row["coverage"], "{:.3f}"),
            _number(row["accuracy"], "{:.4f}"),
            _number(row["naive_accuracy"], "{:.4f}"),
        )
    console.print(table)
    metres = accuracy.location_m
    if metres["median"] is not None:
        line = f"location: median {metres['median']:,.1f} m, 90% within {metres['p90']:,.1f} m"
        if metres["naive_median"] is not None:
            line += f" (naive: {metres['naive_median']:,.1f} m, {metres['naive_p90']:,.1f} m)"
        console.print(line)
    console.print()
    calibration = _calibration(accuracy, "/")
    unbounded = console.options.update(max_width=10_000)
    if console.measure(calibration, options=unbounded).maximum > console.width:  # it would cut
        calibration = _calibration(accuracy, "\n")  # them short: the values under each
    console.print(calibration)


def _calibration(accuracy: PlaceAccuracy, between: str) -> Table:
    """How often a value is right, by its own confidence: each cell the accuracy and the
    number of values, ``between`` them."""
    from poiflow.conflate.accuracy import CONFIDENCE_BINS

    attributes = accuracy.calibration["attribute"].unique(maintain_order=True).to_list()
    calibration = Table(
        "confidence",
        *attributes,
        show_edge=False,
        title="How often a value is right, by its own confidence ("
        + ("accuracy/values)" if between == "/" else "accuracy, and the values under it)"),
        title_justify="left",
        caption="error: the gap between each bin's mean confidence and its accuracy, "
        "averaged over the values (0: a confidence of 0.9 is right nine times in ten); "
        "Brier: the mean squared gap between confidence and right (1) or wrong (0), "
        "lower is better",
        caption_justify="left",
    )
    cells = {
        (r["attribute"], r["confidence"]): "-"
        if r["places"] == 0
        else f"{r['accuracy']:.2f}{between}{_count(r['places'])}"
        for r in accuracy.calibration.iter_rows(named=True)
    }
    for label, _ in CONFIDENCE_BINS:
        calibration.add_row(label, *(cells[a, label] for a in attributes))
    scores = {row["attribute"]: row for row in accuracy.table.iter_rows(named=True)}
    for column, title in (("calibration_error", "error"), ("brier", "Brier")):
        calibration.add_row(
            title,
            *(_number(scores[a][column], "{:.3f}") for a in attributes),
            style="bold" if column == "calibration_error" else None,
        )
    return calibration
