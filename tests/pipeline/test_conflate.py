"""Whole conflation runs: hand-checked matches and non-matches on real Helsinki data,
determinism, atomic outputs, and the refusals."""

from __future__ import annotations

import csv
import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from poiflow.config import SourceMapping
from poiflow.conflate.clustering import SAME_SOURCE, ClusterConfig
from poiflow.conflate.evaluate import read_gold, score_membership
from poiflow.conflate.keys import BlockingConfig
from poiflow.conflate.matcher import ModelError
from poiflow.errors import ConfigError, CorruptInputError, InputError, OutputError
from poiflow.generate import generate
from poiflow.normalize import points
from poiflow.normalize.points import POINT_FIELD
from poiflow.pipeline import conflate, ingest
from poiflow.pipeline.conflation import OUTPUTS, conflate_stages
from poiflow.serving.search import SEARCH_FOLDER

from ..conftest import ROOT, VENDOR_FEED, moved_to_town_centres
from ..row_order import rows_in_any_order

TRUTH = ROOT / "examples" / "helsinki" / "vendor_feed.truth.csv"


@pytest.fixture(scope="module")
def helsinki_run(tmp_path_factory: pytest.TempPathFactory, helsinki_pbf: Path) -> Path:
    out = tmp_path_factory.mktemp("helsinki")
    conflate([helsinki_pbf, VENDOR_FEED], out, workers=1)
    return out


def place_of(run: Path) -> dict[tuple[str, str], str]:
    return {
        (r["source"], r["id"]): r["place_id"]
        for r in pq.read_table(run / "membership.parquet").to_pylist()
    }


def test_outputs_and_run_report(helsinki_run: Path) -> None:
    assert sorted(p.name for p in helsinki_run.iterdir()) == sorted(OUTPUTS)
    run = json.loads((helsinki_run / "run.json").read_text())
    counts = run["counts"]
    assert counts["read"] == counts["records"] + counts["quarantined"]
    assert counts["records"] == pq.read_table(helsinki_run / "membership.parquet").num_rows
    assert counts["places"] == pq.read_table(helsinki_run / "places.parquet").num_rows
    assert run["model"] == "default-5"
    # The bars it clustered at, the trained model's own, for matching new records alike.
    assert run["matching"]["cluster"] | {"min_coverage": 0, "veto": 0} == {
        "threshold": 0.3,
        "same_source": 0.8,
        "min_coverage": 0,
        "veto": 0,
    }
    stages = ["ingest", "block", "score", "cluster", "merge", "report"]
    assert list(run["seconds"]) == [s["name"] for s in run["stages"]] == stages
    pairs = pq.read_table(helsinki_run / "pairs.parquet")
    assert pairs.num_rows == counts["candidate_pairs"]
    assert {"match_probability", "distance_m", "name_token_set", "phone_match"} <= set(
        pairs.column_names
    )


def test_the_report_checks_the_pairs_the_run_wrote(helsinki_run: Path) -> None:
    # The report stage takes the pairs' keys from the records and the scores in memory
    # instead of reading pairs.parquet back: the same table, to the last bit.
    from poiflow.pipeline.plan import scored_pairs
    from poiflow.quality.checks import LikelyDuplicates, QualityInput, issues_table
    from poiflow.schema import PAIR_SCORE_COLUMNS

    records = pq.read_table(helsinki_run / "records.parquet")
    written = pq.read_table(helsinki_run / "pairs.parquet", columns=list(PAIR_SCORE_COLUMNS))
    columns = records.select(["source", "id"]).to_pydict()
    row = {key: n for n, key in enumerate(zip(columns["source"], columns["id"], strict=True))}
    keys = written.to_pydict()
    scores = pa.table(
        {
            "left_row": pa.array(
                [row[k] for k in zip(keys["left_source"], keys["left_id"], strict=True)],
                pa.uint32(),
            ),
            "right_row": pa.array(
                [row[k] for k in zip(keys["right_source"], keys["right_id"], strict=True)],
                pa.uint32(),
            ),
            "probability": pa.array(keys["match_probability"], pa.float64()),
        }
    )
    assert scored_pairs(records, scores).equals(written)
    # ... so the duplicates it reports are those of the written pairs.
    found = LikelyDuplicates().run(
        QualityInput(
            pq.read_table(helsinki_run / "places.parquet"),
            written,
            pq.read_table(helsinki_run / "membership.parquet"),
            records=records,
        )
    )
    reported = pq.read_table(helsinki_run / "issues.parquet").to_pylist()
    assert found.issues, "the Helsinki run has likely duplicates to report"
    assert issues_table([found]).to_pylist() == [
        r for r in reported if r["check"] == LikelyDuplicates.name
    ]


def test_vendor_records_find_the_osm_object_they_describe(helsinki_run: Path) -> None:
    places = place_of(helsinki_run)
    with TRUTH.open(encoding="utf-8") as handle:
        truth = [(row["vendor_id"], row["osm_id"]) for row in csv.DictReader(handle)]
    found = sum(
        places[("vendor_feed", v)] == places[("osm", o)]
        for v, o in truth
        if ("vendor_feed", v) in places
    )
    assert found >= 0.95 * len(truth)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("node/317766540", "node/1369465559"),  # Minuuttibaari / Baguette & Co, one station
        ("node/5301126785", "node/5301128404"),  # statues Väinämöinen / Ilmarinen, side by side
        ("node/1604685371", "node/4860193998"),  # Gaijin / Gaia: near names, different places
        ("node/319517902", "node/2001532381"),  # XXL Kluuvi / Alepa Kluuvi, one mall
        ("node/4860193985", "node/4860193986"),  # Spirit FM / Veropaja, one office block
    ],
)
def test_hand_checked_non_matches(helsinki_run: Path, first: str, second: str) -> None:
    places = place_of(helsinki_run)
    assert places[("osm", first)] != places[("osm", second)]


def test_golden_places_carry_provenance(helsinki_run: Path) -> None:
    places = pq.read_table(helsinki_run / "places.parquet").to_pylist()
    for place in places:
        members = [s for s in place["sources"] if s["property"] == ""]
        assert len(members) == place["members"]
        assert 0 < place["confidence"] <= 1
    multi = [p for p in places if p["members"] > 1]
    assert len(multi) > 100
    assert all(len({s["dataset"] for s in p["sources"]}) >= 1 for p in multi)


def test_same_input_same_bytes(helsinki_pbf: Path, tmp_path: Path) -> None:
    conflate([VENDOR_FEED, helsinki_pbf], tmp_path / "a", workers=1)
    conflate([VENDOR_FEED, helsinki_pbf], tmp_path / "b", workers=2)
    for name in ("places.parquet", "membership.parquet", "pairs.parquet"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


TIMED = ("report.html", "run.json")
"""The outputs that hold a run's timings."""


def _written(folder: Path) -> list[str]:
    """The files a run wrote in ``folder``, but ``TIMED``: not the search index that
    ``poiflow serve`` adds to an output it serves, nor the test servers' logs (the
    serving tests serve the session's ``conflated``)."""
    served = {SEARCH_FOLDER, f".{SEARCH_FOLDER}.lock"}  # the index, and its build lock
    return sorted(
        p.name
        for p in folder.iterdir()
        if p.name not in TIMED and p.name not in served and not p.match("server-*.log")
    )


def files_that_differ(first: Path, second: Path) -> list[str]:
    """The files two runs wrote differently, leaving out ``TIMED`` (and failing where
    they did not write the same files)."""
    names = _written(first)
    assert names == _written(second)
    return [n for n in names if (first / n).read_bytes() != (second / n).read_bytes()]


def test_a_run_writes_the_same_bytes_whatever_order_polars_gives_the_rows(
    conflated: Path, tmp_path: Path
) -> None:
    # polars keeps no row order for a join, group-by or unique unless asked to, and the
    # order it gives can change with thread timing: no output may hang on it.
    sources = sorted((conflated.parent / "sources").glob("source_*.csv"))
    with rows_in_any_order(seed=1):
        conflate(sources, tmp_path / "any", workers=1)
    assert files_that_differ(conflated, tmp_path / "any") == []
    # The unsupervised model, against the first run as an earlier release.
    conflate(sources[1:], tmp_path / "em", model="em", previous=conflated, workers=1)
    with rows_in_any_order(seed=2):
        conflate(sources[1:], tmp_path / "em_any", model="em", previous=conflated, workers=1)
    assert (tmp_path / "em" / "changes.parquet").is_file()
    assert files_that_differ(tmp_path / "em", tmp_path / "em_any") == []


def test_the_places_do_not_depend_on_the_order_the_feeds_list_their_records(
    conflated: Path, tmp_path: Path
) -> None:
    # The same feeds exported again in another order (a database's unordered dump): the
    # same places, ids, changes and checks, to the byte. Only the records, pairs and
    # quarantine, which follow the input's rows (and name its lines), are otherwise.
    import random

    shuffled = []
    for source in sorted((conflated.parent / "sources").glob("source_*.csv")):
        header, *rows = source.read_text(encoding="utf-8").splitlines(keepends=True)
        random.Random(source.name).shuffle(rows)
        (tmp_path / source.name).write_text(header + "".join(rows), encoding="utf-8")
        shuffled.append(tmp_path / source.name)
    conflate(shuffled, tmp_path / "out", workers=1)
    differ = files_that_differ(conflated, tmp_path / "out")
    assert sorted(differ) == ["pairs.parquet", "quarantine.parquet", "records.parquet"]


def test_a_feed_in_a_folder_of_parts_conflates_as_the_whole_file(tmp_path: Path) -> None:
    header, *rows = VENDOR_FEED.read_text(encoding="utf-8").splitlines(keepends=True)
    parts = tmp_path / "vendor_feed"
    (parts / "day=1").mkdir(parents=True)
    (parts / "day=2").mkdir()
    (parts / "day=1" / "part-0.csv").write_text(header + "".join(rows[:70]), encoding="utf-8")
    with gzip.open(parts / "day=2" / "part-0.csv.gz", "wt", encoding="utf-8") as part:
        part.write(header + "".join(rows[70:]) + "V-bad,,60.17,24.94\n")
    (parts / "_SUCCESS").write_bytes(b"")
    conflate([VENDOR_FEED], tmp_path / "whole", workers=1)
    conflate([parts], tmp_path / "parts", workers=2)
    whole = pq.read_table(tmp_path / "whole" / "membership.parquet")
    assert pq.read_table(tmp_path / "parts" / "membership.parquet").equals(whole)
    # Each record held back is named by its line in its part; and the one bad row added.
    lines = [
        int(r["origin"].rsplit(":", 1)[1])
        for r in pq.read_table(tmp_path / "whole" / "quarantine.parquet").to_pylist()
    ]
    assert lines
    expected = [
        f"day=1/part-0.csv:{n}" if n < 72 else f"day=2/part-0.csv.gz:{n - 70}" for n in lines
    ]
    held = pq.read_table(tmp_path / "parts" / "quarantine.parquet").column("origin").to_pylist()
    assert sorted(held) == sorted([*expected, f"day=2/part-0.csv.gz:{len(rows) - 70 + 2}"])


# The vendor feed's categories as the OpenStreetMap tags a tagged feed would carry.
_TAGS = {
    "Cafe": ("amenity", "cafe"),
    "Restaurant": ("amenity", "restaurant"),
    "Fast Food": ("amenity", "fast_food"),
    "Clothes": ("shop", "clothes"),
    "Hairdresser": ("shop", "hairdresser"),
    "Hotel": ("tourism", "hotel"),
}
_ADDR = {
    "street": "addr:street",
    "housenumber": "addr:housenumber",
    "postcode": "addr:postcode",
    "city": "addr:city",
    "country": "addr:country",
    "name": "name",
    "phone": "phone",
    "website": "website",
}


def vendor_features(tagged: bool) -> list[dict]:
    """The vendor feed as GeoJSON features: its columns as flat properties, or as OSM tags."""
    with VENDOR_FEED.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    features = []
    for row in rows:
        if None in row:  # a row of too many fields, which no feature can be
            continue
        try:
            point = [float(row["lon"]), float(row["lat"])]
        except ValueError:  # none, or not numbers: kept as properties, read as in the CSV
            point = None
        values = {
            k: v for k, v in row.items() if k and v and (point is None or k not in ("lat", "lon"))
        }
        if tagged:
            key_value = _TAGS.get(values.pop("category", ""))
            values = {_ADDR.get(k, k): v for k, v in values.items()}
            if key_value:
                values[key_value[0]] = key_value[1]
        geometry = None if point is None else {"type": "Point", "coordinates": point}
        features.append({"type": "Feature", "geometry": geometry, "properties": values})
    return features


def test_the_vendor_feed_as_geojson_conflates_as_the_csv(
    helsinki_run: Path, helsinki_pbf: Path, tmp_path: Path
) -> None:
    flat = tmp_path / "vendor_feed.geojson"
    flat.write_text(
        json.dumps({"type": "FeatureCollection", "features": vendor_features(tagged=False)}),
        encoding="utf-8",
    )
    conflate([helsinki_pbf, flat], tmp_path / "flat", workers=1)
    assert pq.read_table(tmp_path / "flat" / "membership.parquet").equals(
        pq.read_table(helsinki_run / "membership.parquet")
    )

    # The same places as a feed of OSM tags, one feature a line: each finds its object.
    tagged = tmp_path / "vendor_feed.geojsonl"
    tagged.write_text(
        "".join(json.dumps(f) + "\n" for f in vendor_features(tagged=True)), encoding="utf-8"
    )
    conflate([helsinki_pbf, tagged], tmp_path / "tagged", workers=2)
    places = place_of(tmp_path / "tagged")
    with TRUTH.open(encoding="utf-8") as handle:
        truth = [(row["vendor_id"], row["osm_id"]) for row in csv.DictReader(handle)]
    found = [
        places[("vendor_feed", v)] == places[("osm", o)]
        for v, o in truth
        if ("vendor_feed", v) in places
    ]
    assert len(found) == len(truth)
    assert sum(found) >= 0.95 * len(truth)


def test_the_vendor_feed_as_a_geopackage_conflates_as_the_csv(
    helsinki_run: Path, helsinki_pbf: Path, tmp_path: Path
) -> None:
    import shapely
    from pyogrio.raw import write_arrow

    with VENDOR_FEED.open(encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle) if None not in row]
    points = []
    kept = []
    for row in rows:
        try:
            point = shapely.Point(float(row["lon"]), float(row["lat"]))
        except ValueError:
            if row["lat"] or row["lon"]:
                continue  # a coordinate that is no number, which the CSV quarantines
            point = None
        kept.append({k: v or None for k, v in row.items() if k not in ("lat", "lon")})
        points.append(None if point is None else shapely.to_wkb(point))
    table = pa.Table.from_pylist(kept).append_column("geometry", pa.array(points, pa.binary()))
    path = tmp_path / "vendor_feed.gpkg"
    write_arrow(
        table,
        path,
        driver="GPKG",
        geometry_name="geometry",
        geometry_type="Point",
        crs="EPSG:4326",
    )
    conflate([helsinki_pbf, path], tmp_path / "gpkg", workers=2)
    assert pq.read_table(tmp_path / "gpkg" / "membership.parquet").equals(
        pq.read_table(helsinki_run / "membership.parquet")
    )


def test_a_feed_in_its_own_columns_conflates_beside_an_extract_by_its_mapping(
    helsinki_run: Path, helsinki_pbf: Path, tmp_path: Path
) -> None:
    header, rest = VENDOR_FEED.read_text(encoding="utf-8").split("\n", 1)
    feed = tmp_path / "vendor_feed.csv"
    feed.write_text(header.replace("id,name,", "tunnus,nimi,") + "\n" + rest, encoding="utf-8")
    mapping = SourceMapping(columns={"id": "tunnus", "name": "nimi"})
    # The one mapping is for the tabular input; the extract takes none.
    conflate([helsinki_pbf, feed], tmp_path / "every", mapping=mapping, workers=1)
    # Or named for it, as the input is given.
    conflate([helsinki_pbf, feed], tmp_path / "one", mappings={str(feed): mapping}, workers=2)
    expected = pq.read_table(helsinki_run / "membership.parquet")
    for run in ("every", "one"):
        assert pq.read_table(tmp_path / run / "membership.parquet").equals(expected), run
    with pytest.raises(InputError, match="which is not an input"):
        conflate([helsinki_pbf, feed], tmp_path / "typo", mappings={"vendor.csv": mapping})


def test_a_failed_run_keeps_the_previous_outputs(helsinki_pbf: Path, tmp_path: Path) -> None:
    conflate([VENDOR_FEED], tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    truncated = tmp_path.parent / "cut.osm.pbf"
    truncated.write_bytes(helsinki_pbf.read_bytes()[:300_000])
    with pytest.raises(CorruptInputError):
        conflate([VENDOR_FEED, truncated], tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_a_failed_background_write_fails_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conflate([VENDOR_FEED], tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    write = pq.write_table

    def disk_full_for_pairs(table: pa.Table, path: Path, **options: object) -> None:
        if Path(path).name == "pairs.parquet":  # written in the background, clustering on
            raise OSError(28, "No space left on device")
        write(table, path, **options)

    monkeypatch.setattr(pq, "write_table", disk_full_for_pairs)
    with pytest.raises(OutputError, match="No space left") as err:
        conflate([VENDOR_FEED], tmp_path)
    assert str(err.value.path).endswith("pairs.parquet")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_refusals(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="cannot read"):
        conflate([VENDOR_FEED], tmp_path / "x", model=tmp_path / "nope.json.gz")
    assert not (tmp_path / "x" / "run.json").exists()
    empty = tmp_path / "empty.csv"
    empty.write_text("id,name\n", encoding="utf-8")
    with pytest.raises(OutputError, match="no records to read"):
        conflate([empty], tmp_path / "y")
    bad = tmp_path / "bad.csv"
    bad.write_text("id,name\n1,\n", encoding="utf-8")
    with pytest.raises(OutputError) as err:
        conflate([bad], tmp_path / "z")
    # Why, and where, without the run's quarantine file: it goes with the failed run.
    assert str(err.value) == (
        f"{bad}: no valid records: all 1 records read were quarantined: "
        "name is missing (1 record, at bad.csv:2)"
    )
    assert not (tmp_path / "z").exists() or not any((tmp_path / "z").iterdir())


@pytest.mark.parametrize(
    ("arguments", "said"),
    [
        ({"engine": "sprak"}, "engine 'sprak' is not one of local, spark"),
        ({"batch_size": 0}, "batch_size: Input should be greater than or equal to 1"),
        ({"workers": 0}, "workers: Input should be greater than or equal to 1"),
        (
            {"clustering": ClusterConfig(threshold=2.0)},
            "clustering.threshold: Input should be less than or equal to 1",
        ),
        (
            {"blocking": BlockingConfig(near_resolution=16)},
            "blocking.near_resolution: Input should be less than or equal to 15",
        ),
    ],
)
def test_settings_out_of_range_are_refused_by_argument_before_any_work(
    tmp_path: Path, arguments: dict[str, Any], said: str
) -> None:
    # A notebook's arguments, held to what a pipeline file's settings are held to: an
    # unknown engine ran on Spark, and the rest raised pydantic's own error.
    with pytest.raises(ConfigError) as err:
        conflate([VENDOR_FEED], tmp_path / "out", **arguments)
    assert str(err.value) == said
    assert not (tmp_path / "out").exists()
    if "batch_size" in arguments or "workers" in arguments:
        with pytest.raises(ConfigError, match=said):
            ingest([VENDOR_FEED], tmp_path / "places.parquet", **arguments)
        assert not any(tmp_path.iterdir())


def test_an_output_that_is_a_file_is_refused_and_kept(tmp_path: Path) -> None:
    taken = tmp_path / "places"
    taken.write_text("a file of the user's", encoding="utf-8")
    with pytest.raises(
        OutputError, match=r"cannot write the outputs here \(a file, not a folder\)"
    ):
        conflate([VENDOR_FEED], taken)
    assert taken.read_text(encoding="utf-8") == "a file of the user's"


def test_place_ids_are_stable_across_releases(helsinki_pbf: Path, tmp_path: Path) -> None:
    first = tmp_path / "first"
    conflate([helsinki_pbf, VENDOR_FEED], first, workers=1)
    # The next release: the vendor sends fewer records, one of them renamed.
    lines = VENDOR_FEED.read_text(encoding="utf-8").splitlines()
    header, rows = lines[0], lines[1:120]
    rows[0] = rows[0].replace("HAPPY!", "Happy Store", 1)
    feed = tmp_path / "vendor_feed.csv"
    feed.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    second = tmp_path / "second"
    report = conflate([helsinki_pbf, feed], second, previous=first, workers=1)
    before = place_of(first)
    after = place_of(second)
    kept = [k for k in after if k in before and k[0] == "osm"]
    assert sum(before[k] == after[k] for k in kept) >= 0.99 * len(kept)
    changes = pq.read_table(second / "changes.parquet").to_pylist()
    kinds = {c["change"] for c in changes}
    assert "updated" in kinds or "split" in kinds  # places that lost their vendor record
    assert report.changes == {k: sum(1 for c in changes if c["change"] == k) for k in kinds}
    first_changes = pq.read_table(first / "changes.parquet")
    assert set(first_changes.column("change").to_pylist()) == {"created"}


def test_previous_must_be_an_output_folder(tmp_path: Path) -> None:
    from poiflow.errors import InputError

    with pytest.raises(InputError, match="not a poiflow conflate output folder"):
        conflate([VENDOR_FEED], tmp_path / "out", previous=tmp_path)


def test_unsupervised_run_on_real_data(helsinki_pbf: Path, tmp_path: Path) -> None:
    # No model and no labels: Fellegi-Sunter fitted by EM on the run's own pairs.
    report = conflate([helsinki_pbf, VENDOR_FEED], tmp_path, model="em", workers=1)
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["model"] == report.model == "fellegi-sunter, fitted on this run"
    weights = run["model_info"]["match_weights"]
    assert weights["phone"]["shared"] > 0 > weights["phone"]["different"]
    assert weights["website"]["same page"] >= weights["website"]["same domain"]
    # Its own threshold, and the higher bar for records of one source.
    assert run["matching"]["cluster"]["threshold"] == 0.05
    assert run["matching"]["cluster"]["same_source"] == SAME_SOURCE == 0.9
    places = place_of(tmp_path)
    with TRUTH.open(encoding="utf-8") as handle:
        truth = [(row["vendor_id"], row["osm_id"]) for row in csv.DictReader(handle)]
    found = sum(places[("vendor_feed", v)] == places[("osm", o)] for v, o in truth)
    assert found >= 0.85 * len(truth)
    apart = [("node/5301126785", "node/5301128404"), ("node/319517902", "node/2001532381")]
    for first, second in apart:
        assert places[("osm", first)] != places[("osm", second)]


def test_what_runs_before_ingest_leaves_the_later_stages_libraries_alone() -> None:
    """The command, conflate's set-up and the model's check run before ingest: they must not
    import what only the later stages use (polars, scipy, rapidfuzz, ~0.4 s), nor the
    normalizers (the workers import those) or DuckDB; the later stages' modules are imported
    while ingest's workers read (``stages.LATER_MODULES``)."""
    code = (
        "import sys\n"
        "import poiflow.cli, poiflow.pipeline.conflation, poiflow.pipeline.ingestion\n"
        "from poiflow.conflate.matcher import load_matcher\n"
        "load_matcher()\n"
        "heavy = ('polars', 'scipy', 'rapidfuzz', 'duckdb', 'poiflow.normalize')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
        "from poiflow.pipeline.stages import import_later_stages\n"
        "import_later_stages()\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    said = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    before, after = said.stdout.splitlines()
    assert before == "[]"
    assert after == "['polars', 'rapidfuzz', 'scipy']"


def test_a_report_shows_itself_briefly_and_as_a_table_in_a_notebook(tmp_path: Path) -> None:
    from poiflow.pipeline.ingest_report import IngestReport, SourceReport

    report = conflate([VENDOR_FEED], tmp_path / "run", workers=1)
    text = repr(report)
    assert len(text) < 300
    assert f"records={report.records}, places={report.places}," in text
    page = report._repr_html_()
    assert "<td>" + str(VENDOR_FEED) + "</td><td>CSV</td>" in page
    assert f'<td style="text-align:right">{report.places:,}</td>' in page
    assert str(tmp_path / "run" / "report.html") in page
    # Whatever a path holds is shown as text, not as markup.
    odd = IngestReport(Path("a.parquet"), Path("q.parquet"), [SourceReport("<b>x</b>.csv", "CSV")])
    assert "&lt;b&gt;x&lt;/b&gt;.csv" in odd._repr_html_()
    assert "<b>" not in odd._repr_html_()
    assert repr(odd).startswith("IngestReport(output='a.parquet', inputs=1, read=0,")


def test_a_place_fixed_by_hand_through_a_trusted_feed_and_a_decision(
    helsinki_pbf: Path, tmp_path: Path
) -> None:
    # A curator's fix: a feed of its own (here one record without coordinates, with the
    # right name, category and phone), decided to be one place with the OSM record, and
    # trusted above the other sources: the golden place says what the curator says.
    from poiflow.conflate.merge import MergeConfig

    fixes = tmp_path / "fixes.csv"
    fixes.write_text("id,name,phone,category\nF1,Minuuttibaari Kamppi,+358 9 1234567,Bar\n")
    decisions = tmp_path / "decisions.csv"
    decisions.write_text(
        "left_source,left_id,right_source,right_id,label\nfixes,F1,osm,node/317766540,match\n"
    )
    out = tmp_path / "run"
    conflate(
        [helsinki_pbf, fixes],
        out,
        workers=1,
        decisions=decisions,
        merging=MergeConfig(trust={"fixes": 100.0}),
    )
    places = place_of(out)
    assert places[("fixes", "F1")] == places[("osm", "node/317766540")]
    (fixed,) = [
        p
        for p in pq.read_table(out / "places.parquet").to_pylist()
        if p["id"] == places[("fixes", "F1")]
    ]
    assert fixed["names"]["primary"] == "Minuuttibaari Kamppi"
    assert "Minuuttibaari" in [a["value"] for a in fixed["names"]["alternates"]]
    assert fixed["categories"]["primary"] == "bar"
    assert fixed["phones"] == ["+35891234567"]
    assert fixed["lat"] is not None  # the point is still the OSM record's


def test_a_record_at_0_0_is_conflated_as_one_without_a_point(tmp_path: Path) -> None:
    """(0, 0) is where a geocoder puts an address it could not place: the record goes on
    without that point (one withheld value), as the same record with none would."""
    made = generate(1500, 3, 12, tmp_path / "world")
    last = made.sources[-1]
    frame = pl.read_csv(last, infer_schema_length=0)
    ids = frame.filter(pl.col("lat").is_not_null()).gather_every(7)["id"]
    chosen = pl.col("id").is_in(ids.implode())
    outputs = {}
    for label, point in (("nowhere", pl.lit("0")), ("blank", pl.lit(None, pl.String))):
        folder = tmp_path / label
        folder.mkdir()
        for source in made.sources[:-1]:
            shutil.copy(source, folder / source.name)
        frame.with_columns(
            lat=pl.when(chosen).then(point).otherwise("lat"),
            lon=pl.when(chosen).then(point).otherwise("lon"),
        ).write_csv(folder / last.name)
        report = conflate(sorted(folder.glob("*.csv")), folder / "out", workers=1)
        outputs[label] = (report, folder / "out")
    (nowhere, at), (blank, plain) = outputs["nowhere"], outputs["blank"]
    assert nowhere.ingest.valid == blank.ingest.valid
    assert nowhere.ingest.withheld_values == blank.ingest.withheld_values + ids.len()
    for name in ("membership.parquet", "places.parquet"):
        assert pq.read_table(at / name).equals(pq.read_table(plain / name)), name
    held = pl.read_parquet(at / "quarantine.parquet").filter(pl.col("field") == POINT_FIELD)
    assert sorted(held["id"]) == sorted(ids)


def test_records_geocoded_to_their_towns_centre_still_find_their_places(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every fifth record of a source with a town moved to the town's centre, as a
    geocoder does with an address it cannot place: ingest withholds that point, and the
    records meet their places by town, name and address instead."""
    made = generate(3000, 3, 11, tmp_path / "world")
    last = made.sources[-1]
    moved = moved_to_town_centres(last, made.sources, last)
    gold = read_gold(made.gold)
    ids = pl.DataFrame({"source": last.stem, "id": moved})
    of_moved = gold.join(gold.join(ids, on=["source", "id"]).select("place").unique(), on="place")

    def recall(out: Path) -> float:
        conflate(made.sources, out, workers=1)
        membership = pl.read_parquet(out / "membership.parquet")
        return score_membership(membership.join(of_moved, on=["source", "id"]), gold).recall

    withheld = recall(tmp_path / "run")
    quarantine = pl.read_parquet(tmp_path / "run" / "quarantine.parquet")
    assert sorted(quarantine.filter(pl.col("field") == POINT_FIELD)["id"]) == sorted(moved)
    monkeypatch.setattr(points, "STACK_RECORDS", 10**9)  # no point is ever a stack
    kept = recall(tmp_path / "kept")
    assert withheld >= 0.95
    assert kept < withheld - 0.05


def test_a_previous_output_lacking_a_column_is_refused_by_name(tmp_path: Path) -> None:
    first = tmp_path / "first"
    conflate([VENDOR_FEED], first)
    membership = pq.read_table(first / "membership.parquet")
    pq.write_table(membership.drop_columns(["place_id"]), first / "membership.parquet")
    with pytest.raises(InputError, match=r"membership.parquet lacks the column place_id;"):
        conflate([VENDOR_FEED], tmp_path / "out", previous=first)
    pq.write_table(membership, first / "membership.parquet")
    places = pq.read_table(first / "places.parquet")
    pq.write_table(places.drop_columns(["lat", "lon"]), first / "places.parquet")
    with pytest.raises(InputError, match=r"places.parquet lacks the columns lat, lon;"):
        conflate([VENDOR_FEED], tmp_path / "out", previous=first)


def test_an_attribute_an_earlier_release_lacks_is_not_called_changed(tmp_path: Path) -> None:
    # A release of an older poiflow, or one a person trimmed: the same run again changed
    # no place's phones, web sites or hours, and says none did; an attribute the release
    # has is still compared.
    first = tmp_path / "first"
    conflate([VENDOR_FEED], first)
    places = pq.read_table(first / "places.parquet")
    names = places.column("names").to_pylist()
    names[0] = {**names[0], "primary": "Another name"}
    older = places.drop_columns(["phones", "websites", "opening_hours"]).set_column(
        places.schema.get_field_index("names"),
        "names",
        pa.array(names, places.schema.field("names").type),
    )
    pq.write_table(older, first / "places.parquet")
    conflate([VENDOR_FEED], tmp_path / "out", previous=first)
    changes = pq.read_table(tmp_path / "out" / "changes.parquet").to_pylist()
    assert [(c["place_id"], c["change"], c["attributes"]) for c in changes] == [
        (places.column("id")[0].as_py(), "updated", ["names"])
    ]


def test_a_progress_display_is_told_every_stage_the_run_goes_through(tmp_path: Path) -> None:
    made = generate(200, 2, 5, tmp_path / "world")
    for gold in (None, made.gold):
        seen: list[str] = []
        conflate(made.sources, tmp_path / f"run-{gold is None}", gold=gold, on_stage=seen.append)
        assert seen == conflate_stages(gold=gold is not None)
    assert seen[-2:] == ["evaluate", "report"]
