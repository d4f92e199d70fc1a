"""``report.html``: self-contained, with what a person needs, and it works in a real browser."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest

from poiflow.generate import generate
from poiflow.pipeline import Pipeline, conflate
from poiflow.text import REPAIRS

from ..conftest import ROOT, VENDOR_FEED

ARTIFACTS = ROOT / "out" / "test-artifacts"


@pytest.fixture(scope="module")
def helsinki(tmp_path_factory: pytest.TempPathFactory, helsinki_pbf: Path) -> Path:
    out = tmp_path_factory.mktemp("report")
    conflate([helsinki_pbf, VENDOR_FEED], out, workers=1)
    return out


def map_data(page: str) -> dict[str, list[list[object]]]:
    found = re.search(r'<script id="map-data" type="application/json">(.*?)</script>', page, re.S)
    assert found is not None
    return json.loads(found.group(1).replace("<\\/", "</"))  # type: ignore[no-any-return]


def test_the_report_is_one_self_contained_file(helsinki: Path) -> None:
    page = (helsinki / "report.html").read_text()
    # No script, style or image is fetched: Leaflet and the data are inline.
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", page)
    for title in ("Stages", "Sources", "Match probability", "Checks", "Quality by category"):
        assert f"<h2>{title}" in page
    stages = page[page.index("<h2>Stages") : page.index("<h2>Sources")]
    assert re.findall(r"<th(?: [^>]*)?>(.*?)</th>", stages) == ["stage", "ran or reused", "seconds"]
    assert "OpenStreetMap</a> contributors" in page
    places = pq.read_table(helsinki / "places.parquet")
    located = sum(lat is not None for lat in places.column("lat").to_pylist())
    assert len(map_data(page)["points"]) == located


def test_the_categories_of_most_places_come_first_and_the_rest_on_a_click(
    helsinki: Path,
) -> None:
    from poiflow.quality.report import CATEGORIES_SHOWN

    page = (helsinki / "report.html").read_text()
    section = page[page.index("<h2>Quality by category") : page.index("<h2>Worst offenders")]
    shown, hidden = section.split("<details>")
    rows = re.findall(r"<tr><td>([^<]*)</td><td class=\"num\">([\d,]+)</td>", shown)
    folded = re.findall(r"<tr><td>([^<]*)</td><td class=\"num\">([\d,]+)</td>", hidden)
    assert len(rows) == CATEGORIES_SHOWN
    places = [
        (c or {}).get("primary")
        for c in pq.read_table(helsinki / "places.parquet").column("categories").to_pylist()
    ]
    counts = {c or "(none)": places.count(c) for c in set(places)}
    # Every category once, the commonest first, and the summary counts the rest.
    assert dict(rows) | dict(folded) == {c: f"{n:,}" for c, n in counts.items()}
    assert min(int(n) for _, n in rows) >= max(int(n) for _, n in folded)
    assert f"{len(folded)} more categories ({sum(int(n) for _, n in folded):,} places)" in hidden


def test_the_report_shows_what_the_checks_found(helsinki: Path) -> None:
    page = (helsinki / "report.html").read_text()
    checks = pq.read_table(helsinki / "checks.parquet").to_pylist()
    issues = pq.read_table(helsinki / "issues.parquet")
    assert sum(c["failed"] for c in checks) == issues.num_rows > 0
    for check in checks:
        assert f"<td>{check['check']}</td>" in page
    # A check that applies to no place (Helsinki's extract has no hospital) is not shown
    # as passed: it had nothing to check.
    rows = {
        cells[0]: cells[3:]
        for row in re.findall(r"<tr>(.*?)</tr>", page, re.S)
        if len(cells := re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)) == 5
    }
    unchecked = [c["check"] for c in checks if c["checked"] == 0]
    assert "hospital_has_phone" in unchecked
    for name in unchecked:
        assert rows[name] == [
            '<span class="unchecked">none to check</span>',
            "nothing to check: no place it applies to",
        ]
    assert all("pass</span>" in rows[c["check"]][0] for c in checks if c["checked"] and c["passed"])
    # Every place drawn with a warning or an error is one the checks flagged.
    flagged = set(issues.column("place_id").to_pylist())
    levels = {p[8]: p[6] for p in map_data(page)["points"]}
    assert {pid for pid, level in levels.items() if level} <= flagged
    assert {pid for pid, level in levels.items() if level} == flagged & set(levels)
    # Each worst offender folds its records away under their count, each named.
    worst = page[page.index("<h2>Worst offenders") :]
    worst = worst[: worst.index("<h2>", 4)]
    membership = pl.read_parquet(helsinki / "membership.parquet")
    rows = re.findall(
        r'<tr><td>(p[0-9a-f]{16})</td>.*?<tr class="members">(.*?)</details>', worst, re.S
    )
    assert rows
    for place_id, cells in rows:
        keys = membership.filter(pl.col("place_id") == place_id)
        said = f"its {keys.height} records" if keys.height > 1 else "its record"
        assert f"<summary>{said}</summary>" in cells
        for source, record_id in keys.select("source", "id").iter_rows():
            assert f"<td>{source}:{record_id}</td>" in cells


def test_each_sources_share_of_matched_records_is_read_off_the_membership(helsinki: Path) -> None:
    page = (helsinki / "report.html").read_text()
    section = page[page.index("<h3>Completeness and matching by source") :]
    table = section[: section.index("</table>")]
    shown = {
        cells[0]: (cells[1], cells[-1])
        for row in re.findall(r"<tr>(.*?)</tr>", table, re.S)
        if (cells := re.findall(r"<td[^>]*>(.*?)</td>", row))
    }
    # By hand: each record joined to its place, and its place's size counted.
    records = pl.read_parquet(helsinki / "records.parquet", columns=["source", "id"])
    membership = pl.read_parquet(helsinki / "membership.parquet")
    sized = membership.with_columns(pl.len().over("place_id").alias("size"))
    joined = records.join(sized, on=["source", "id"], how="left")
    expected = joined.group_by("source").agg(
        pl.len().alias("records"), (pl.col("size") > 1).fill_null(False).mean().alias("share")
    )
    assert len(shown) == expected.height == 2
    for source, n, share in expected.iter_rows():
        assert shown[source] == (f"{n:,}", f"{100 * share:.1f}%")
    assert 0 < expected["share"].min() < expected["share"].max() < 1


@pytest.fixture(scope="module")
def with_truth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pipeline run of a generated world with its truth (``gold:``); its folder."""
    folder = tmp_path_factory.mktemp("truth")
    generate(800, 3, 21, folder / "data")  # a world with both kinds of error
    sources = "".join(f"  - path: {p}\n" for p in sorted((folder / "data").glob("source_*")))
    (folder / "p.yaml").write_text(
        f"name: pr\nsources:\n{sources}gold: data/gold.csv\ngold_places: data/gold_places.csv\n"
        "cache: null\ntracking: null\n"
    )
    Pipeline.from_yaml(folder / "p.yaml").run()
    return folder


def golden_rows(page: str) -> dict[str, list[str]]:
    """The cells of the golden records' table, by attribute."""
    section = page[page.index("<h2>Golden records") :]
    table = section[: section.index("</table>")]
    rows = {}
    for row in re.findall(r"<tr>(.*?)</tr>", table, re.S):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row)
        if cells:
            rows[cells[0]] = cells[1:]
    return rows


def test_the_golden_records_confidence_and_accuracy_are_shown(
    helsinki: Path, with_truth: Path
) -> None:
    page = (helsinki / "report.html").read_text()
    rows = golden_rows(page)
    places = pl.read_parquet(helsinki / "places.parquet", columns=["attribute_confidence"])
    confidence = places["attribute_confidence"].struct.field("phone")
    given = confidence.filter(confidence > 0)
    assert rows["phone"][:2] == [f"{given.len():,}", f"{given.mean():.3f}"]
    assert "right (truth)" not in page  # no true places given
    assert "How often each source is right" in page
    # Two sources: where they differ, agreement cannot say which is wrong, so both are
    # taken to be as often right as the other; the report says so, and why no point of
    # theirs is judged (no place has three located records).
    run = json.loads((helsinki / "run.json").read_text())
    accuracy = run["source_accuracy"]
    judged = [a for a in ("name", "category", "address", "phone", "website") if a in accuracy]
    assert judged
    assert all(len(set(accuracy[a].values())) == 1 for a in judged)
    said = re.search(r"<p>([^<]*): judged by two sources alone\. Where they differ", page)
    assert said is not None
    assert said.group(1).lower().split(", ") == judged
    assert not run["source_precision_m"]
    assert "Points typically off, &#x27;-&#x27; (osm, vendor_feed): too few" in page
    # With the true places: the run's own figures, beside each attribute.
    page = (with_truth / "out" / "report.html").read_text()
    metrics = json.loads((with_truth / "out" / "run.json").read_text())["metrics"]
    rows = golden_rows(page)
    for attribute in ("name", "location", "phone"):
        assert rows[attribute][4] == f"{metrics[f'golden.{attribute}.accuracy']:.3f}"
        assert rows[attribute][5] == f"{metrics[f'golden.{attribute}.naive_accuracy']:.3f}"
    # Three sources tell each other apart: nothing to explain.
    run = json.loads((with_truth / "out" / "run.json").read_text())
    assert len(set(run["source_accuracy"]["name"].values())) == 3
    assert "judged by two sources alone" not in page
    assert "Points typically off, " not in page


def test_the_precision_recall_curve_matches_the_pairs(with_truth: Path) -> None:
    tmp_path = with_truth
    page = (tmp_path / "out" / "report.html").read_text()
    assert "<h2>Precision, recall and F1 by threshold" in page
    # The row at 0.5, computed here from pairs.parquet and gold.csv on their own.
    pairs = pl.read_parquet(tmp_path / "out" / "pairs.parquet")
    gold = pl.read_csv(tmp_path / "data" / "gold.csv", schema_overrides={"id": pl.String})
    gold = gold.with_columns(pl.col("place").cast(pl.String))
    joined = pairs.join(
        gold.rename({"source": "left_source", "id": "left_id", "place": "a"}),
        on=["left_source", "left_id"],
    ).join(
        gold.rename({"source": "right_source", "id": "right_id", "place": "b"}),
        on=["right_source", "right_id"],
    )
    called = joined.filter(pl.col("match_probability") >= 0.5)
    precision = float((called["a"] == called["b"]).mean())  # type: ignore[arg-type]
    sizes = gold.group_by("place").len()["len"].to_numpy()
    recall = int((called["a"] == called["b"]).sum()) / int((sizes * (sizes - 1) // 2).sum())
    f1 = 2 * precision * recall / (precision + recall)
    cells = "".join(
        f'<td class="num">{v}</td>'
        for v in ("0.5", f"{precision:.4f}", f"{recall:.4f}", f"{f1:.4f}")
    )
    assert cells in page
    # A row at each tenth (0.7 was lost to 0.7000000000000001 once), and the run's own
    # threshold marked on the chart.
    section = page[page.index("<h2>Precision, recall") :].split("</section>")[0]
    tenths = re.findall(r'<tr><td class="num">(\d\.\d)</td>', section)
    assert tenths == [f"{t / 10:.1f}" for t in range(11)]
    threshold = json.loads((tmp_path / "out" / "run.json").read_text())["matching"]["cluster"]
    assert f"this run: {threshold['threshold']:g}</text>" in section
    assert 0.9 < precision <= 1.0
    assert not np.isnan(recall)


def test_the_errors_are_counted_and_drawn_where_the_truth_says(with_truth: Path) -> None:
    out = with_truth / "out"
    page = (out / "report.html").read_text()
    metrics = json.loads((out / "run.json").read_text())["metrics"]
    assert "<h2>Where the errors are" in page
    for stage in ("blocking", "matcher", "clustering"):
        n = metrics[f"missed_{stage}"]
        assert f"<td>missed</td><td>{stage}</td>" in page
        assert f'<td class="num">{n:,}</td>' in page
    # Each line on the map joins two records, and the truth and the run say which kind.
    gold = pl.read_csv(with_truth / "data" / "gold.csv", schema_overrides={"id": pl.String})
    records = (
        pl.read_parquet(out / "records.parquet", columns=["source", "id", "lat", "lon"])
        .join(pl.read_parquet(out / "membership.parquet"), on=["source", "id"])
        .join(gold.with_columns(pl.col("place").cast(pl.String)), on=["source", "id"])
    )
    at = {
        (round(r["lat"], 6), round(r["lon"], 6)): (r["place"], r["place_id"])
        for r in records.drop_nulls("lat").iter_rows(named=True)
    }
    lines = map_data(page)["errors"]
    assert {line[4] for line in lines} == {"missed", "wrong"}
    for line in lines:
        (place_a, run_a), (place_b, run_b) = at[(line[0], line[1])], at[(line[2], line[3])]
        assert (place_a == place_b, run_a == run_b) == (
            (True, False) if line[4] == "missed" else (False, True)
        )
    located = records.drop_nulls("lat").height
    assert 0 < len(lines) <= sum(metrics[k] for k in metrics if k.startswith(("missed_", "wrong_")))
    assert located > 0
    # The surest mistakes say what moved their scores, in bits.
    assert "what moved the score most (bits)" in page
    assert re.search(r"<td>[^<]+ [+-]\d+\.\d · [^<]+ [+-]\d+\.\d · [^<]+ [+-]\d+\.\d</td>", page)
    # ... and each kind of scored mistake what moved its scores on average, in words.
    section = page[page.index("<h3>What moved the scores of the mistakes") :]
    section = section[: section.index("<h3>", 10)]
    titles = re.findall(r"<h4>(\w+) · (\w+): [^<(]*\(([\d,]+) pairs", section)
    scored = {(e, s) for e, s, _ in titles}
    assert ("missed", "matcher") in scored
    for error, stage, count in titles:
        assert int(count.replace(",", "")) == metrics[f"{error}_{stage}"]
    assert "names, Jaro-Winkler" in section  # a feature in words, not its column's name
    assert "name_jaro_winkler" not in section
    assert re.search(r'<td class="num">[+-]\d+\.\d\d</td>', section)


@pytest.mark.browser
def test_the_error_lines_load_in_chromium_with_their_layer_control(
    with_truth: Path, browser_page: Any
) -> None:
    page = browser_page
    report = with_truth / "out" / "report.html"
    page.goto(report.as_uri())
    page.wait_for_selector("body[data-ready='1']", timeout=30_000)
    assert page.evaluate("document.body.dataset.errors") == str(
        len(map_data(report.read_text())["errors"])
    )
    labels = page.inner_text(".leaflet-control-layers")
    assert "missed pairs" in labels
    assert "wrong pairs" in labels
    assert page.poiflow_errors == []


@pytest.mark.browser
def test_the_report_loads_in_chromium_with_every_marker_and_no_errors(
    helsinki: Path, browser_page: Any
) -> None:
    page = browser_page
    page.goto((helsinki / "report.html").as_uri())
    page.wait_for_selector("body[data-ready='1']", timeout=30_000)
    points = map_data((helsinki / "report.html").read_text())["points"]
    assert page.evaluate("document.body.dataset.markers") == str(len(points))
    # Leaflet made the map (its zoom control is there), with the OSM attribution.
    assert page.locator(".leaflet-control-zoom-in").count() == 1
    assert "OpenStreetMap" in page.inner_text(".leaflet-control-attribution")
    assert page.poiflow_errors == []
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 50_000  # a page with charts and tables, not a blank one


def test_a_run_where_no_check_flags_a_place_still_writes_its_report(tmp_path: Path) -> None:
    # Two copies of one cafe: one place, and nothing for any check to flag.
    feed = tmp_path / "cafe.csv"
    feed.write_text("id,name,lat,lon\n1,Cafe Aalto,60.1675,24.9425\n2,Cafe Aalto,60.1675,24.9425\n")
    report = conflate([feed], tmp_path / "out", workers=1)
    assert report.places == 1
    assert pq.read_table(tmp_path / "out" / "issues.parquet").num_rows == 0
    page = (tmp_path / "out" / "report.html").read_text()
    section = page[page.index("<h2>Quality by category") :]
    row = section[
        section.index("<td>(none)</td>") : section.index("</tr>", section.index("<td>(none)</td>"))
    ]
    assert row.startswith('<td>(none)</td><td class="num">1</td>')
    assert row.endswith('<td class="num">0</td>')  # no issue
    assert "<p>No place was flagged by any check.</p>" in page
    assert "<p>1 place: blue places are clean" in page


def test_a_source_whose_points_are_rounded_to_a_kilometre_is_named_in_the_report(
    tmp_path: Path,
) -> None:
    coarse = tmp_path / "coarse.csv"
    rows = "".join(f"{i},Kahvila {i},{60.1 + i / 97:.2f},24.94\n" for i in range(30))
    coarse.write_text("id,name,lat,lon\n" + rows, encoding="utf-8")
    fine = tmp_path / "fine.csv"  # its one name escaped for the web on its way
    fine.write_text("id,name,lat,lon\n1,Caf&#233; Aalto,60.167512,24.942533\n", encoding="utf-8")
    some = tmp_path / "some.csv"  # a tenth of its points to 2 decimals
    digits = [2 if i % 10 == 0 else 6 for i in range(100)]
    rows = "".join(
        f"{i},Baari {i},{60.2 + i / 97:.{d}f},{24.9 + i / 89:.{d}f}\n" for i, d in enumerate(digits)
    )
    some.write_text("id,name,lat,lon\n" + rows, encoding="utf-8")
    conflate([coarse, fine, some], tmp_path / "out", workers=1)
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert [i["rounded"] for i in run["inputs"]] == [{"coarse": 2}, {}, {}]
    assert [i["partly_rounded"] for i in run["inputs"]] == [{}, {}, {"some": 0.1}]
    assert [i["repaired"] for i in run["inputs"]] == [{}, {REPAIRS[1]: 1}, {}]
    page = (tmp_path / "out" / "report.html").read_text()
    sources = page[page.index("<h2>Sources") :]
    assert "<p>source &#x27;coarse&#x27; gives most of its points to 2 decimals" in sources
    assert "fine&#x27; gives" not in page
    said = f"<p>{fine}: 1 record had text escaped for the web, read as its characters: "
    assert f"{said}&quot;Caf&amp;#233; Aalto&quot;</p>" in sources  # the value, as it came
    assert "<p>source &#x27;some&#x27; gives 10% of its points to 2 decimals or fewer" in sources
