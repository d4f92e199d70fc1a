"""``report.html``: one self-contained page about a run that a person can open and read.

Counts per stage and source, the match-probability histogram, precision, recall and F1
when there is known truth, the checks, per-category and per-source quality, the worst
offenders, and an interactive map of places and their clusters. Everything is inline
(Leaflet, vendored from npm, and the data): it works offline, with no CDN. Map tiles come
from OpenStreetMap when online; the places show without them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import polars as pl
import pyarrow as pa

from poiflow._version import __version__
from poiflow.quality.checks import CheckResult
from poiflow.quality.notes import input_notes, unjudged_notes
from poiflow.quality.page import (
    ASSETS,
    Raw,
    bars,
    escape,
    html_table,
    maybe,
    pct,
    section,
    write_page,
)
from poiflow.quality.truth_sections import ErrorBreakdown, error_lines, errors_section, pr_curve
from poiflow.schema import ATTRIBUTE_CONFIDENCE_TYPE
from poiflow.text import address_line

__all__ = ["MAP_LIMIT", "write_report"]

# Places drawn on the map at most (the file stays a few MB); a deterministic sample beyond.
MAP_LIMIT = 20_000
WORST = 30
CATEGORIES_SHOWN = 20
"""The categories of the most places shown at once; the others are one click away."""
_ASSETS = ("leaflet.css", "report.css", "errors.js", "leaflet.js", "report.js")


def write_report(
    path: Path,
    *,
    run: Mapping[str, Any],
    places: pa.Table,
    records: pa.Table,
    membership: pa.Table,
    pairs: pa.Table,
    checks: Sequence[CheckResult],
    gold: pl.DataFrame | None = None,
    errors: ErrorBreakdown | None = None,
) -> Path:
    """Write the report of one run.

    Args:
        path: The HTML file to write.
        run: What ``run.json`` holds (counts, seconds, inputs, model, metrics).
        places: Golden places.
        records: The normalized records.
        membership: Each record's place.
        pairs: The scored pairs (keys and ``match_probability``).
        checks: The results of the quality checks.
        gold: Known truth (``source, id, place``), for precision and recall by threshold.
        errors: With known truth, where the errors came from.
    """
    frame = pl.DataFrame(
        places.select(
            [
                "id",
                "names",
                "categories",
                "lat",
                "lon",
                "confidence",
                "members",
                "phones",
                "websites",
                "address",
                "attribute_confidence",
            ]
        )
    )
    frame = frame.with_columns(
        pl.col("names").struct.field("primary").alias("name"),
        pl.col("categories").struct.field("primary").alias("category"),
    )
    issues = _issues(checks)
    probability = pairs.column("match_probability").to_numpy(zero_copy_only=False)
    body = [
        _header(run, places.num_rows),
        section("Stages", _stages(run)),
        section("Sources", _sources(run, records, membership)),
        section("Golden records", _golden(run, frame)),
        section("Match probability of the candidate pairs", _histogram(probability)),
    ]
    if gold is not None:
        threshold = run.get("matching", {}).get("cluster", {}).get("threshold")
        curve = pr_curve(pairs, gold, threshold)
        body.append(section("Precision, recall and F1 by threshold", curve))
    if errors is not None:
        body.append(section("Where the errors are", errors_section(errors)))
    body += [
        section("Checks", _checks(checks)),
        section("Quality by category", _categories(frame, issues)),
        section("Worst offenders", _worst(frame, issues, records, membership)),
        section(
            "Map of places and clusters",
            _map(frame, records, membership, issues, None if errors is None else errors.pairs),
        ),
    ]
    asset = {name: (ASSETS / name).read_text("utf-8") for name in _ASSETS}
    page = _PAGE.format(
        title=escape(f"poiflow report: {run.get('pipeline', {}).get('name', 'run')}"),
        leaflet_css=asset["leaflet.css"],
        css=asset["report.css"],
        errors=asset["errors.js"],
        leaflet=asset["leaflet.js"],
        script=asset["report.js"],
        body="\n".join(body),
    )
    return write_page(path, page)


def _header(run: Mapping[str, Any], places: int) -> str:
    counts = run.get("counts", {})
    cards = [
        ("records read", f"{counts.get('read', 0):,}"),
        ("quarantined", f"{counts.get('quarantined', 0):,}"),
        ("candidate pairs", f"{counts.get('candidate_pairs', 0):,}"),
        ("matched pairs", f"{counts.get('matched_pairs', 0):,}"),
        ("golden places", f"{places:,}"),
        ("from 2+ records", pct(counts.get("multi_source_places", 0), places)),
    ]
    decided = run.get("decisions")
    if decided:  # a person's decisions the run followed, and how many overruled the model
        followed = decided["match"] + decided["different"]
        cards.append(("decisions followed", f"{followed:,} ({decided['overruled']:,} overruled)"))
    metrics = run.get("metrics")
    if metrics:
        cards += [
            ("pairwise F1", f"{metrics['f1']:.4f}"),
            ("B-cubed F1", f"{metrics['bcubed_f1']:.4f}"),
        ]
    tiles = "".join(
        f'<div class="card"><b>{escape(v)}</b><span>{escape(k)}</span></div>' for k, v in cards
    )
    name = run.get("pipeline", {}).get("name", "conflate")
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"<header><h1>poiflow report: {escape(name)}</h1>"
        f"<p>model {escape(run.get('model'))} · poiflow {escape(__version__)} · written {when}</p>"
        f'<div class="cards">{tiles}</div></header>'
    )


def _stages(run: Mapping[str, Any]) -> str:
    stages = run.get("stages") or [
        {"name": k, "seconds": v, "reused": False} for k, v in run.get("seconds", {}).items()
    ]
    rows = [
        (
            s["name"],
            "reused from the cache" if s.get("reused") else "ran",
            f"{s.get('seconds', 0):.2f}",
        )
        for s in stages
    ]
    return html_table(["stage", "ran or reused", "seconds"], rows, numeric=[2])


def _sources(run: Mapping[str, Any], records: pa.Table, membership: pa.Table) -> str:
    inputs = html_table(
        ["input", "kind", "read", "valid", "quarantined", "values withheld"],
        [
            (
                Path(i["path"]).name,
                i["kind"],
                f"{i['read']:,}",
                f"{i['valid']:,}",
                f"{i['quarantined']:,}",
                f"{i['withheld_values']:,}",
            )
            for i in run.get("inputs", [])
        ],
        numeric=[2, 3, 4, 5],
    )
    frame = pl.DataFrame(
        records.select(["source", "lat", "phones", "websites", "address", "categories"])
    )
    # Each record's place is in the membership: counted there by source, not joined back
    # to the records by their keys (1.5 s at 1.1M records).
    places = pl.DataFrame(membership.select(["source", "place_id"]))
    matched = places.filter(pl.len().over("place_id") > 1).group_by("source").len("matched_records")
    per_source = (
        frame.group_by("source")
        .agg(
            pl.len().alias("records"),
            pl.col("lat").is_not_null().mean().alias("coordinates"),
            (pl.col("phones").list.len() > 0).fill_null(False).mean().alias("phone"),
            (pl.col("websites").list.len() > 0).fill_null(False).mean().alias("website"),
            pl.col("address").struct.field("street").is_not_null().mean().alias("street"),
            pl.col("categories").struct.field("primary").is_not_null().mean().alias("category"),
        )
        .join(matched, on="source", how="left")
        .with_columns((pl.col("matched_records").fill_null(0) / pl.col("records")).alias("matched"))
        .sort("source")
    )
    rows = [
        (
            r["source"],
            f"{r['records']:,}",
            *(
                f"{100 * r[k]:.1f}%"
                for k in ("coordinates", "phone", "website", "street", "category", "matched")
            ),
        )
        for r in per_source.iter_rows(named=True)
    ]
    completeness = html_table(
        [
            "source",
            "records",
            "coordinates",
            "phone",
            "website",
            "street",
            "category",
            "matched to another record",
        ],
        rows,
        numeric=list(range(1, 8)),
    )
    return f"{inputs}{_input_notes(run)}<h3>Completeness and matching by source</h3>{completeness}"


def _input_notes(run: Mapping[str, Any]) -> str:
    """A line for each source whose points ingest found mostly rounded to a kilometre or
    more (their distances to other records are that uncertain), for each that rounds
    some of them, and for each kind of repair ingest made of the inputs' text."""
    return "".join(f"<p>{escape(note)}</p>" for note in input_notes(run.get("inputs", [])))


# The attributes with a confidence of their own, as ``attribute_confidence`` names them.
_CONFIDENT = tuple(field.name for field in ATTRIBUTE_CONFIDENCE_TYPE)


def _golden(run: Mapping[str, Any], frame: pl.DataFrame) -> str:
    """Each attribute's confidence over the places that have it (the probability that the
    value is right), beside how right it was against the truth where the run had it;
    then how often each source is right, as the other records of its places judge it."""
    metrics = run.get("metrics", {})
    judged = any(f"golden.{a}.accuracy" in metrics for a in _CONFIDENT)
    rows = []
    for attribute in ("place", *_CONFIDENT):
        confidence = (
            frame["confidence"]
            if attribute == "place"
            else frame["attribute_confidence"].struct.field(attribute)
        ).fill_null(0.0)
        given = confidence.filter(confidence > 0)
        row: list[Any] = [
            attribute,
            f"{given.len():,}",
            maybe(given.mean() if given.len() else None, "{:.3f}"),  # type: ignore[arg-type]
            pct(int((given >= 0.9).sum()), given.len()),
            pct(int((given < 0.5).sum()), given.len()),
        ]
        if judged:
            row += [
                maybe(metrics.get(f"golden.{attribute}.accuracy"), "{:.3f}"),
                maybe(metrics.get(f"golden.{attribute}.naive_accuracy"), "{:.3f}"),
                maybe(metrics.get(f"golden.{attribute}.calibration_error"), "{:.3f}"),
            ]
        rows.append(row)
    headers = ["attribute", "places with it", "mean confidence", "confidence >= 0.9", "< 0.5"]
    if judged:
        headers += ["right (truth)", "naive merge", "calibration error"]
    text = (
        "<p>A place's confidence is the probability that it is one whole place of the world "
        "(not two merged, nor a fragment of one), from how strongly its records matched and "
        "how much of the world each source covers. An attribute's confidence is the "
        "probability that its value is right, from which sources agree on it and how often "
        "each is right. "
        + (
            "Against the true places: the share right, the same for a naive merge (each "
            "place's first record), and how far confidence is from accuracy (0: a value of "
            "confidence 0.9 is right nine times in ten).</p>"
            if judged
            else "Give the run the true places (<code>gold_places</code>) to see how right "
            "they are.</p>"
        )
    )
    table = html_table(headers, rows, numeric=list(range(1, len(headers))))
    accuracy = run.get("source_accuracy") or {}
    precision = run.get("source_precision_m") or {}
    covered = run.get("place_coverage") or {}
    covers, whole = covered.get("coverage", {}), covered.get("whole", {})
    shown = [a for a in _CONFIDENT if a in accuracy]
    sources = sorted({s for a in shown for s in accuracy[a]} | set(precision) | set(covers))
    if not sources:
        return text + table
    by_source = html_table(
        ["source", *shown, "points typically off", "covers", "its places alone whole"],
        [
            (
                source,
                *(maybe(accuracy[a].get(source), "{:.2f}") for a in shown),
                maybe(precision.get(source), "{:g} m"),
                maybe(covers.get(source), "{:.0%}"),
                maybe(whole.get(source), "{:.2f}"),
            )
            for source in sources
        ],
        numeric=list(range(1, len(shown) + 4)),
    )
    world = (
        f"<p>The places sources share imply about {covered['places']:,} places in the "
        "world: each source covers its share of them, and of the places only its records "
        "describe, the share that are whole places rather than fragments the matcher "
        "split off.</p>"
        if covered.get("places")
        else ""
    )
    return (
        f"{text}{table}<h3>How often each source is right, as the other records of its "
        f"places judge it, and how much of the world it covers</h3>{world}{by_source}"
        + _unjudged(accuracy, shown, [s for s in sources if s not in precision])
    )


def _unjudged(accuracy: Mapping[str, Mapping[str, float]], shown: list[str], far: list[str]) -> str:
    """What the sources' table cannot say, and why (``notes.unjudged_notes``)."""
    return "".join(f"<p>{escape(line)}</p>" for line in unjudged_notes(accuracy, shown, far))


def _histogram(probability: np.ndarray) -> str:
    counts, edges = np.histogram(probability, bins=20, range=(0.0, 1.0))
    labels = [f"{edges[i]:.2f}" for i in range(20)]
    share = float((probability >= 0.5).mean()) if len(probability) else 0.0
    return (
        bars(counts.tolist(), labels)
        + f"<p>{len(probability):,} candidate pairs (counts on a log scale); "
        f"{100 * share:.1f}% scored 0.5 or more. "
        "A good matcher puts most pairs near 0 or 1; a hump in the middle is where labels help "
        "most (<code>poiflow label</code>).</p>"
    )


def _issues(checks: Sequence[CheckResult]) -> pl.DataFrame:
    rows = [(i.place_id, i.check, i.severity, i.detail) for c in checks for i in c.issues]
    # Typed, so that a run where no check flags a place still joins on the places' ids.
    schema = dict.fromkeys(("id", "check", "severity", "detail"), pl.String)
    return pl.DataFrame(rows, schema=schema, orient="row")


def _checks(checks: Sequence[CheckResult]) -> str:
    rows = [
        (
            c.name,
            c.kind,
            c.severity,
            Raw(
                '<span class="unchecked">none to check</span>'
                if not c.checked
                else '<span class="pass">pass</span>'
                if c.passed
                else f'<span class="{c.severity}">{len(c.issues):,} flagged</span>'
            ),
            c.message,
        )
        for c in checks
    ]
    return html_table(["check", "kind", "severity", "result", "details"], rows)


def _categories(frame: pl.DataFrame, issues: pl.DataFrame) -> str:
    flagged = issues.group_by("id").len().rename({"len": "issues"})
    stats = (
        frame.join(flagged, on="id", how="left")
        .group_by(pl.col("category").fill_null("(none)"))
        .agg(
            pl.len().alias("places"),
            pl.col("confidence").mean().alias("confidence"),
            (pl.col("phones").list.len() > 0).fill_null(False).mean().alias("phone"),
            (pl.col("websites").list.len() > 0).fill_null(False).mean().alias("website"),
            pl.col("address").struct.field("street").is_not_null().mean().alias("street"),
            (pl.col("members") > 1).mean().alias("multi"),
            pl.col("issues").fill_null(0).sum().alias("issues"),
        )
        .sort(["places", "category"], descending=[True, False])  # ties by name: same bytes
    )
    rows = [
        (
            r["category"],
            f"{r['places']:,}",
            f"{r['confidence']:.3f}",
            *(f"{100 * r[k]:.1f}%" for k in ("phone", "website", "street", "multi")),
            f"{r['issues']:,}",
        )
        for r in stats.iter_rows(named=True)
    ]
    headers = [
        "category",
        "places",
        "mean confidence",
        "phone",
        "website",
        "street",
        "from 2+ records",
        "issues",
    ]
    numeric = list(range(1, 8))
    shown = html_table(headers, rows[:CATEGORIES_SHOWN], numeric=numeric)
    rest = rows[CATEGORIES_SHOWN:]
    if not rest:
        return shown
    places = int(stats["places"].slice(CATEGORIES_SHOWN).sum())
    said = f"{len(rest):,} more categories ({places:,} places)"
    return (
        f"{shown}<details><summary>{said}</summary>"
        f"{html_table(headers, rest, numeric=numeric)}</details>"
    )


def _worst(
    frame: pl.DataFrame, issues: pl.DataFrame, records: pa.Table, membership: pa.Table
) -> str:
    if issues.height == 0:
        return "<p>No place was flagged by any check.</p>"
    per_place = issues.group_by("id").agg(
        (pl.col("severity") == "error").sum().alias("errors"),
        (pl.col("severity") == "warn").sum().alias("warnings"),
        pl.col("detail").str.join("; ").alias("details"),
    )
    worst = (
        frame.join(per_place, on="id")
        .sort(["errors", "warnings", "confidence", "id"], descending=[True, True, False, False])
        .head(WORST)
    )
    members = _members_of(worst["id"], records, membership)
    rows = [
        (
            r["id"],
            r["name"],
            r["category"],
            f"{r['confidence']:.3f}",
            r["members"],
            r["errors"],
            r["warnings"],
            r["details"],
        )
        for r in worst.iter_rows(named=True)
    ]
    table = html_table(
        ["place", "name", "category", "confidence", "records", "errors", "warnings", "why"],
        rows,
        numeric=[3, 4, 5, 6],
        below=[members.get(r[0]) for r in rows],  # its records, folded away below it
    )
    return (
        "<p>Open a place's records to see what each says; <code>poiflow explain RUN "
        "PLACE</code> shows which values the place took from which record.</p>" + table
    )


def _members_of(places: pl.Series, records: pa.Table, membership: pa.Table) -> dict[str, Raw]:
    """For each of ``places``, its records side by side, folded away under their count."""
    columns = ["source", "id", "names", "categories", "address", "phones", "websites"]
    found = (
        pl.DataFrame(membership)
        .filter(pl.col("place_id").is_in(places.to_list()))
        .join(pl.DataFrame(records.select(columns)), on=["source", "id"])
        .sort("place_id", "source", "id")
    )
    shown: dict[str, Raw] = {}
    for (place_id,), rows in found.partition_by("place_id", as_dict=True).items():
        table = html_table(
            ["record", "name", "category", "address", "phone", "website"],
            [
                (
                    f"{r['source']}:{r['id']}",
                    (r["names"] or {}).get("primary") or "",
                    (r["categories"] or {}).get("primary") or "",
                    address_line(r["address"] or {}),
                    ", ".join(r["phones"] or []),
                    ", ".join(r["websites"] or []),
                )
                for r in rows.iter_rows(named=True)
            ],
        )
        said = f"its {rows.height} records" if rows.height > 1 else "its record"
        shown[str(place_id)] = Raw(f"<details><summary>{said}</summary>{table}</details>")
    return shown


def _map(
    frame: pl.DataFrame,
    records: pa.Table,
    membership: pa.Table,
    issues: pl.DataFrame,
    errors: pl.DataFrame | None = None,
) -> str:
    shown_columns = ("id", "lat", "lon", "name", "category", "members", "confidence")
    located = frame.select(shown_columns).filter(
        pl.col("lat").is_not_null() & pl.col("lon").is_not_null()
    )
    total = located.height
    if total > MAP_LIMIT:  # a deterministic sample: the same places every time
        located = (
            located.with_columns(pl.col("id").hash(seed=7).alias("h"))
            .sort("h")
            .head(MAP_LIMIT)
            .drop("h")
        )
    worst = issues.group_by("id").agg(
        pl.when((pl.col("severity") == "error").any())
        .then(pl.lit("error"))
        .otherwise(pl.lit("warn"))
        .alias("level"),
        pl.col("detail").head(3).str.join("; ").alias("why"),
    )
    located = located.join(worst, on="id", how="left").sort("id")
    points = located.select(
        pl.col("lat").round(6),
        pl.col("lon").round(6),
        pl.col("name").fill_null(""),
        pl.col("category").fill_null(""),
        pl.col("members"),
        pl.col("confidence").cast(pl.Float64).fill_null(0.0).round(3),
        pl.col("level").fill_null(""),
        pl.col("why").fill_null(""),
        pl.col("id"),
    ).rows()
    shown = located.filter(pl.col("members") > 1).select(pl.col("id").alias("place_id"))
    members = (
        pl.DataFrame(membership)
        .join(shown, on="place_id", how="semi")
        .join(pl.DataFrame(records.select(["source", "id", "lat", "lon"])), on=["source", "id"])
        .filter(pl.col("lat").is_not_null())
        .join(
            located.select(
                pl.col("id").alias("place_id"),
                pl.col("lat").alias("plat"),
                pl.col("lon").alias("plon"),
            ),
            on="place_id",
        )
        .sort("place_id", "source", "id")
    )
    links = members.select(pl.col("plat", "plon", "lat", "lon").round(6), pl.col("source")).rows()
    lines = [] if errors is None else error_lines(errors)
    payload = orjson.dumps({"points": points, "links": links, "errors": lines})
    data = payload.decode().replace("</", "<\\/")
    note = f"{len(points):,} place{'' if len(points) == 1 else 's'}" + (
        f" (a sample of {total:,})" if total > len(points) else ""
    )
    against = (
        " Against the truth: dashed red lines join records of one place that the run kept "
        "apart (missed), purple lines records the run joined wrongly; the layer control "
        "hides them."
        if errors is not None
        else ""
    )
    return (
        f"<p>{note}: blue places are clean, orange have warnings, red errors; bigger circles "
        "merge more records; thin lines join a place to its records. Click one for details."
        f"{against}</p>"
        f'<div id="map"></div><script id="map-data" type="application/json">{data}</script>'
    )


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{leaflet_css}</style><style>{css}</style>
<script>{errors}</script>
</head><body>
{body}
<script>{leaflet}</script>
<script>{script}</script>
</body></html>
"""
