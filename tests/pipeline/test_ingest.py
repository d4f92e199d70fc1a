from __future__ import annotations

import json
import pickle
import re
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from poiflow import ingest
from poiflow.config import SourceMapping
from poiflow.errors import CorruptInputError, InputError, NothingValidError, OutputError
from poiflow.generate.habits import read_as_windows_1252
from poiflow.normalize.contact_lists import MISFILED
from poiflow.normalize.name_asides import CONTACTS, FORMER, NAMES, STATUSES, STORE_NUMBERS
from poiflow.normalize.names import TITLES
from poiflow.normalize.points import STACKED_POINT
from poiflow.pipeline import ingestion
from poiflow.pipeline.ingest_report import IngestReport
from poiflow.quality.profile import quarantine_reasons
from poiflow.schema import PLACE_SCHEMA, POINT_FIELD, QUARANTINE_SCHEMA
from poiflow.sources import OvertureSource, TabularSource
from poiflow.text import REPAIRS

from ..sources.overture_fixture import place, write_overture

E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def test_helsinki_every_named_poi_and_every_phone_in_e164(
    helsinki_pbf: Path, tmp_path: Path
) -> None:
    report = ingest([helsinki_pbf], tmp_path / "places.parquet")
    assert report.balanced
    assert report.read == report.valid > 1400
    places = pq.read_table(tmp_path / "places.parquet")
    assert places.num_rows == report.valid
    assert places.schema.remove(places.schema.get_field_index("geometry")).equals(PLACE_SCHEMA)
    phones = [p for row in places.column("phones").to_pylist() for p in row or []]
    assert len(phones) > 340
    assert all(E164.match(p) for p in phones)
    categories = places.column("categories").to_pylist()
    assert sum(c is not None for c in categories) == places.num_rows
    geo = json.loads(pq.read_metadata(tmp_path / "places.parquet").metadata[b"geo"])
    assert geo["primary_column"] == "geometry"
    assert geo["columns"]["geometry"]["encoding"] == "WKB"
    xmin, ymin, xmax, ymax = geo["columns"]["geometry"]["bbox"]
    assert 24.8 < xmin < xmax < 25.1
    assert 60.1 < ymin < ymax < 60.3


def test_csv_bad_rows_are_quarantined_with_reasons(tmp_path: Path) -> None:
    feed = tmp_path / "vendor.csv"
    feed.write_text(
        "id,name,lat,lon,phone,website,country\n"
        "1,Good Cafe,60.17,24.94,09 123 4567,www.good.fi,FI\n"
        "2,,60.17,24.94,,,\n"
        "3,Bad Lat,abc,24.94,,,\n"
        "4,Half,60.17,,,,\n"
        "5,Far Away,95,24.9,,,\n"
        "6,Null Island,0,0,,,\n"
        "1,Again,60.1,24.9,,,\n"
        "7,Bad Phone,60.18,24.95,not a phone,not a url,FI\n"
        "8,Too,many,cols,x,y,z,w\n"
        "9,No Coordinates,,,+358 40 123 4567,,\n",
        encoding="utf-8",
    )
    report = ingest([feed], tmp_path / "out" / "places.parquet")
    assert (report.read, report.valid, report.quarantined) == (10, 4, 6)
    assert report.withheld_values == 3
    held = pq.read_table(tmp_path / "out" / "places.quarantine.parquet")
    assert held.schema.equals(QUARANTINE_SCHEMA)
    by_origin = {r["origin"]: r for r in held.to_pylist() if r["scope"] == "record"}
    assert by_origin["vendor.csv:3"]["reason"] == "name is missing"
    assert by_origin["vendor.csv:4"]["reason"] == "lat: 'abc' is not a number"
    assert by_origin["vendor.csv:5"]["reason"] == "only one of lat and lon is given"
    assert by_origin["vendor.csv:6"]["reason"] == "lat 95.0 is out of range [-90, 90]"
    assert by_origin["vendor.csv:8"]["reason"].startswith("duplicate id '1' in source 'vendor'")
    assert by_origin["vendor.csv:10"]["reason"] == "expected 7 columns, found 8"
    assert json.loads(by_origin["vendor.csv:4"]["original"])["lat"] == "abc"
    fields = {r["field"]: r for r in held.to_pylist() if r["scope"] == "field"}
    assert set(fields) == {"phones", "websites", POINT_FIELD}
    # (0, 0) is a geocoder's "nowhere": the record goes on without it.
    assert "(0, 0)" in fields[POINT_FIELD]["reason"]
    assert fields[POINT_FIELD]["origin"] == "vendor.csv:7"
    places = {r["id"]: r for r in pq.read_table(tmp_path / "out" / "places.parquet").to_pylist()}
    assert places["7"]["phones"] is None
    assert (places["6"]["names"]["primary"], places["6"]["lat"]) == ("Null Island", None)
    assert places["7"]["names"]["primary"] == "Bad Phone"
    assert places["9"]["lat"] is None
    assert places["9"]["geometry"] is None
    assert places["9"]["phones"] == ["+358401234567"]
    assert places["1"]["phones"] == ["+35891234567"]
    assert places["1"]["keys"]["domains"] == ["good.fi"]


def test_phone_region_comes_from_coordinates_when_the_record_has_no_country(tmp_path: Path) -> None:
    feed = tmp_path / "f.csv"
    feed.write_text(
        "id,name,lat,lon,phone\n1,Helsinki Cafe,60.17,24.94,09 123 4567\n"
        "2,Berlin Cafe,52.52,13.40,030 1234567\n",
        encoding="utf-8",
    )
    ingest([feed], tmp_path / "p.parquet")
    phones = pq.read_table(tmp_path / "p.parquet").column("phones").to_pylist()
    assert phones == [["+35891234567"], ["+49301234567"]]


def test_mixed_inputs(helsinki_pbf: Path, tmp_path: Path) -> None:
    overture = write_overture(tmp_path / "overture.parquet", [place("g1", "Kafe", 24.94, 60.17)])
    feed = tmp_path / "feed.jsonl"
    feed.write_text(
        '{"id": "a", "name": "Jsonl Place", "category": "Pharmacy"}\n', encoding="utf-8"
    )
    report = ingest([helsinki_pbf, overture, feed], tmp_path / "all.parquet")
    assert [s.kind for s in report.inputs] == ["OpenStreetMap", "Overture", "JSON lines"]
    sources = set(pq.read_table(tmp_path / "all.parquet").column("source").to_pylist())
    assert sources == {"osm", "overture", "feed"}
    table = pq.read_table(tmp_path / "all.parquet").to_pylist()
    by_id = {r["id"]: r for r in table}
    assert by_id["g1"]["categories"]["primary"] == "cafe"
    assert by_id["a"]["categories"]["primary"] == "pharmacy"


def test_truncated_input_leaves_no_output(helsinki_pbf: Path, tmp_path: Path) -> None:
    truncated = tmp_path / "cut.osm.pbf"
    truncated.write_bytes(helsinki_pbf.read_bytes()[:300_000])
    good = tmp_path / "good.csv"
    good.write_text("id,name\n1,A\n", encoding="utf-8")
    out = tmp_path / "out"
    with pytest.raises(CorruptInputError):
        ingest([good, truncated], out / "places.parquet", batch_size=100)
    assert list(out.iterdir()) == []


def test_existing_output_survives_a_failed_run(helsinki_pbf: Path, tmp_path: Path) -> None:
    output = tmp_path / "places.parquet"
    output.write_bytes(b"previous run")
    truncated = tmp_path / "cut.osm.pbf"
    truncated.write_bytes(helsinki_pbf.read_bytes()[:300_000])
    with pytest.raises(CorruptInputError):
        ingest([truncated], output)
    assert output.read_bytes() == b"previous run"


def test_everything_quarantined_is_an_error_that_says_why_and_where_to_look(
    tmp_path: Path,
) -> None:
    feed = tmp_path / "bad.csv"
    rows = ["1,,60.1,24.9", "2,   ,60.1,24.9", "3,Cafe,95,24.9", "4,Bar,1,200", "5,Pub,1,400"]
    feed.write_text("id,name,lat,lon\n" + "\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(NothingValidError) as err:
        ingest([feed], tmp_path / "p.parquet")
    assert isinstance(err.value, OutputError)
    assert err.value.path == str(feed)
    # The commonest reason first, each with where it first occurs; the rest counted.
    assert err.value.why == (
        "no valid records: all 5 records read were quarantined: "
        f"name is missing (2 records, first at {feed.name}:2); "
        f"lat 95.0 is out of range [-90, 90] (1 record, at {feed.name}:4); "
        f"lon 200.0 is out of range [-180, 180] (1 record, at {feed.name}:5); "
        "and 1 other reason"
    )
    assert str(err.value).endswith(
        f"each, with its reason, is in {tmp_path / 'p.quarantine.parquet'}"
    )
    assert pickle.loads(pickle.dumps(err.value)).args == err.value.args
    assert not (tmp_path / "p.parquet").exists()
    assert pq.read_table(tmp_path / "p.quarantine.parquet").num_rows == 5


def test_inputs_without_a_record_are_an_error_that_says_so(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("id,name,lat,lon\n", encoding="utf-8")
    with pytest.raises(
        NothingValidError, match=r"^[^:]*empty\.csv: no records to read: the input holds none$"
    ):
        ingest([empty], tmp_path / "p.parquet")
    also = tmp_path / "also.csv"
    also.write_text("id,name\n", encoding="utf-8")
    with pytest.raises(NothingValidError, match=r"none of the inputs \(.*empty.csv, .*also.csv\)"):
        ingest([empty, also], tmp_path / "p.parquet")


CELL = st.one_of(
    st.none(),
    st.text(
        alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\r\n\x00"),
        max_size=12,
    ),
    st.floats(allow_nan=True).map(str),
)


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(CELL, CELL, CELL, CELL, CELL), min_size=1, max_size=25))
def test_every_record_is_accounted_for(
    tmp_path_factory: pytest.TempPathFactory, rows: list[tuple[str | None, ...]]
) -> None:
    import csv

    folder = tmp_path_factory.mktemp("acct")
    feed = folder / "any.csv"
    with feed.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "name", "lat", "lon", "phone"])
        writer.writerows([["" if c is None else c for c in row] for row in rows])
    try:
        report = ingest([feed], folder / "p.parquet", batch_size=7)
    except OutputError:
        held = pq.read_table(folder / "p.quarantine.parquet")
        assert held.filter(pc.equal(held.column("scope"), "record")).num_rows == len(rows)
        return
    assert report.balanced
    held = pq.read_table(folder / "p.quarantine.parquet")
    records_held = held.filter(pc.equal(held.column("scope"), "record")).num_rows
    assert report.read == len(rows) == report.valid + records_held
    assert pq.read_table(folder / "p.parquet").num_rows == report.valid


# A CSV cell as bytes: text, or bytes that may not be UTF-8 (no quote, comma or line break,
# so that each line is one row).
RAW_CELL = st.one_of(
    st.text(
        alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters='\r\n",'),
        max_size=10,
    ).map(str.encode),
    st.binary(max_size=4).filter(lambda b: not set(b) & set(b'\r\n",')),
)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(RAW_CELL, min_size=3, max_size=7), min_size=1, max_size=20))
def test_any_rows_of_bytes_are_read_or_refused_by_line_and_none_is_lost(
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    rows: list[list[bytes]],
) -> None:
    # Rows of any width, bytes that may not be UTF-8: every row is a record or held back
    # with its line, or the file is refused, naming it, with nothing on the terminal. The
    # rows come after 12 kB of good ones, past what the header's reading decodes.
    printed: list[object] = []
    monkeypatch.setattr(sys, "unraisablehook", printed.append)
    folder = tmp_path_factory.mktemp("raw")
    feed = folder / "any.csv"
    good = [b"k%d,Kahvila %d,60.17,24.94,09 123 4567" % (i, i) for i in range(300)]
    lines = sorted(f"any.csv:{n}" for n in range(2, len(good) + len(rows) + 2))
    head = b"id,name,lat,lon,phone\n" + b"".join(g + b"\n" for g in good)
    feed.write_bytes(head + b"".join(b",".join(r) + b"\n" for r in rows))
    refused: InputError | None = None
    try:
        ingest([feed], folder / "p.parquet", batch_size=7)
    except NothingValidError:
        pass  # every row held back: the quarantine says why, line by line
    except InputError as exc:
        refused = exc
    assert printed == []
    if refused is not None:
        assert str(refused).startswith(f"{feed}:")
        assert not (folder / "p.parquet").exists()
        return
    held = pq.read_table(folder / "p.quarantine.parquet")
    held = held.filter(pc.equal(held.column("scope"), "record")).column("origin").to_pylist()
    read = []
    if (folder / "p.parquet").exists():
        read = pq.read_table(folder / "p.parquet").column("origin").to_pylist()
    assert sorted(read + held) == lines


def test_output_is_the_same_bytes_whatever_the_number_of_workers(
    helsinki_pbf: Path, tmp_path: Path
) -> None:
    feed = tmp_path / "feed.csv"
    rows = "".join(f"{i},Place {i % 40},60.{i:04d},24.9,,\n" for i in range(900))
    feed.write_text("id,name,lat,lon,phone,website\n" + rows + "5,Dup,60.1,24.9,,\n", "utf-8")
    outputs = []
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        report = ingest([helsinki_pbf, feed], out / "p.parquet", batch_size=250, workers=workers)
        assert report.quarantined == 1  # the repeated id, found across partitions
        outputs.append(
            ((out / "p.parquet").read_bytes(), (out / "p.quarantine.parquet").read_bytes())
        )
    assert outputs[0] == outputs[1]


def test_small_inputs_read_side_by_side_give_the_same_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    feeds = []
    for k in range(3):
        feed = tmp_path / f"feed{k}.csv"
        rows = "".join(f"{i},Place {i % 40},60.{i:04d},24.9,,\n" for i in range(300))
        bad = f"{k},Dup,60.1,24.9,,\nx{k},,not a number,24.9,,\n"
        feed.write_text("id,name,lat,lon,phone,website\n" + rows + bad, "utf-8")
        feeds.append(feed)
    outputs = []
    for group_min in (1 << 40, 0):  # never grouped, then always (one worker per input)
        monkeypatch.setattr(ingestion, "GROUP_MIN_BYTES", group_min)
        out = tmp_path / f"g{group_min}"
        report = ingest(feeds, out / "p.parquet", batch_size=100)
        assert [(i.read, i.valid, i.quarantined) for i in report.inputs] == [(302, 300, 2)] * 3
        outputs.append(
            ((out / "p.parquet").read_bytes(), (out / "p.quarantine.parquet").read_bytes())
        )
    assert outputs[0] == outputs[1]


def test_a_worker_error_surfaces_with_its_context(helsinki_pbf: Path, tmp_path: Path) -> None:
    truncated = tmp_path / "cut.osm.pbf"
    truncated.write_bytes(helsinki_pbf.read_bytes()[:300_000])
    with pytest.raises(CorruptInputError) as err:
        ingest([truncated], tmp_path / "p.parquet", workers=2, batch_size=100)
    assert err.value.path == str(truncated)
    assert not (tmp_path / "p.parquet").exists()


def test_the_places_handed_on_are_the_places_written(helsinki_pbf: Path, tmp_path: Path) -> None:
    """A pipeline keeps ``on_places``' tables for its next stage instead of reading the file."""
    kept: list[pa.Table] = []
    feed = tmp_path / "feed.csv"
    feed.write_text("id,name,lat,lon\n1,Cafe Regatta,60.18,24.91\n2,,60.1,24.9\n", encoding="utf-8")
    report = ingest([helsinki_pbf, feed], tmp_path / "p.parquet", on_places=kept.append)
    written = pq.read_table(tmp_path / "p.parquet").drop_columns(["geometry"])
    handed = pa.concat_tables(kept)
    assert handed.num_rows == report.valid == written.num_rows
    assert handed.schema.equals(PLACE_SCHEMA)
    assert handed.equals(written.cast(PLACE_SCHEMA))


def test_meanwhile_runs_beside_the_workers_and_ends_before_ingest(
    helsinki_pbf: Path, tmp_path: Path
) -> None:
    """A pipeline imports its later stages while the workers read: on another thread, only
    when there are workers, and finished by the time ingest returns."""
    calls: list[tuple[int, float]] = []

    def meanwhile() -> None:
        time.sleep(0.3)
        calls.append((threading.get_ident(), time.perf_counter()))

    ingest([helsinki_pbf], tmp_path / "p.parquet", workers=2, meanwhile=meanwhile)
    returned = time.perf_counter()
    assert len(calls) == 1
    assert calls[0][0] != threading.get_ident()
    assert calls[0][1] <= returned

    ingest([helsinki_pbf], tmp_path / "q.parquet", workers=1, meanwhile=meanwhile)
    assert len(calls) == 1  # one process reads: it does not wait, nothing runs beside it


def test_meanwhile_failing_does_not_fail_ingest(helsinki_pbf: Path, tmp_path: Path) -> None:
    def meanwhile() -> None:
        raise RuntimeError("an import failed")

    report = ingest([helsinki_pbf], tmp_path / "p.parquet", workers=2, meanwhile=meanwhile)
    assert report.valid > 0
    assert (tmp_path / "p.parquet").exists()


class _FailingProgress:
    """A progress display that fails at the first chunk written (a full disk, a closed
    terminal): the error is the consumer's, not a worker's."""

    def start(self, label: str, total: int | None) -> None:
        pass

    def advance(self, records: int) -> None:
        raise RuntimeError("the display broke")

    def finish(self) -> None:
        pass


def test_an_error_while_writing_leaves_no_worker_behind(tmp_path: Path) -> None:
    import multiprocessing

    feed = tmp_path / "feed.csv"
    rows = "".join(f"{i},Place {i},60.{i:05d},24.9\n" for i in range(4000))
    feed.write_text("id,name,lat,lon\n" + rows, "utf-8")
    for grouped in (False, True):  # one input read by two workers; two read side by side
        inputs = [feed] if not grouped else [feed, feed.with_name("copy.csv")]
        if grouped:
            inputs[1].write_text(feed.read_text("utf-8"), "utf-8")  # another source
        # The error is kept (as a caller's log or a test's report keeps it): its traceback
        # holds ingest's frames, and whatever they held.
        with pytest.raises(RuntimeError, match="the display broke") as failed:
            ingest(
                inputs,
                tmp_path / f"a{grouped}.parquet",
                batch_size=50,
                workers=2,
                progress=_FailingProgress(),
            )
        # The workers were stopped, not left waiting to hand over their next chunks...
        assert multiprocessing.active_children() == []
        # ... where they would hold up every later run that starts workers.
        done: list[int] = []

        def again(inputs: list[Path], out: Path, done: list[int]) -> None:
            done.append(ingest(inputs, out, workers=2).valid)

        later = threading.Thread(
            target=again, args=(inputs, tmp_path / f"b{grouped}.parquet", done), daemon=True
        )
        later.start()
        later.join(60)
        assert done == [4000 * len(inputs)]
        assert failed.value.__traceback__ is not None


def test_true_places_without_a_valid_place_say_why_and_not_a_temporary_file(
    tmp_path: Path,
) -> None:
    truth = tmp_path / "gold_places.csv"
    truth.write_text("id,name,lat,lon\np1,,60.1,24.9\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        ingestion.true_places(truth, ["p1"])
    assert str(err.value) == (
        f"{truth}: no valid place in the true places file (no valid records: all 1 records "
        "read were quarantined: name is missing (1 record, at gold_places.csv:2))"
    )


def test_one_file_given_twice_is_refused_before_anything_is_read(tmp_path: Path) -> None:
    feed = tmp_path / "feed.csv"
    feed.write_text("id,name\n1,Cafe\n", encoding="utf-8")
    out = tmp_path / "out" / "p.parquet"
    with pytest.raises(InputError, match=r"given twice \(as source 'feed'\)") as err:
        ingest([feed, tmp_path / "." / "feed.csv"], out)
    assert err.value.path == str(feed)
    assert not out.parent.exists()
    # The same file under two source names is two sources.
    other = SourceMapping(source="feed_again")
    report = ingest([feed, TabularSource(feed, other)], out)
    assert (report.valid, report.quarantined) == (2, 0)


def test_parquet_is_read_by_workers_by_its_rows_not_its_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingestion.os, "cpu_count", lambda: 2)
    rows = ingestion.DEFAULT_BATCH_SIZE + 1
    # Repeated values compress to a few kilobytes: by bytes, this file would be read here.
    table = pa.table({"id": pa.array(range(rows)).cast(pa.string()), "name": ["Kahvila"] * rows})
    pq.write_table(table, tmp_path / "many.parquet")
    pq.write_table(table.slice(0, rows - 1), tmp_path / "one_batch.parquet")
    (tmp_path / "small.csv").write_text("id,name\n1,Kahvila\n")
    assert (tmp_path / "many.parquet").stat().st_size < ingestion.PARALLEL_MIN_BYTES["other"]
    workers = {
        name: ingestion._auto_workers(TabularSource(tmp_path / name))
        for name in ("many.parquet", "one_batch.parquet", "small.csv")
    }
    assert workers == {"many.parquet": 2, "one_batch.parquet": 1, "small.csv": 1}
    overture = write_overture(tmp_path / "overture.parquet", [place("a", "Kahvila", 24.9, 60.1)])
    assert ingestion._auto_workers(OvertureSource(overture)) == 1


@pytest.mark.parametrize("workers", [1, 2])
def test_files_of_one_name_in_two_folders_are_told_apart_in_origins(
    tmp_path: Path, workers: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two months' deliveries of one feed: one source, and every origin says which file.
    monkeypatch.chdir(tmp_path)
    for month, rows in (
        ("jan", "1,Kahvila,60.1,24.9\n2,,60.1,24.9\n"),
        ("feb", "1,Kahvila,60.1,24.9\n3,Baari,60.2,24.9\n"),
    ):
        (tmp_path / month).mkdir()
        (tmp_path / month / "vendor.csv").write_text("id,name,lat,lon\n" + rows)
    alone = tmp_path / "other" / "vendor.csv"
    alone.parent.mkdir()
    alone.write_text("id,name,lat,lon\n9,Pub,60.3,24.9\n")
    ingest([Path("jan/vendor.csv"), Path("feb/vendor.csv")], "out.parquet", workers=workers)
    places = pq.read_table("out.parquet").select(["id", "origin"]).to_pylist()
    assert places == [
        {"id": "1", "origin": "jan/vendor.csv:2"},
        {"id": "3", "origin": "feb/vendor.csv:3"},
    ]
    held = pq.read_table("out.quarantine.parquet").select(["origin", "reason"]).to_pylist()
    assert held == [
        {"origin": "jan/vendor.csv:3", "reason": "name is missing"},
        {
            "origin": "feb/vendor.csv:2",
            "reason": "duplicate id '1' in source 'vendor' (first at jan/vendor.csv:2)",
        },
    ]
    # A file whose name no other input has keeps its plain origins.
    ingest([alone], tmp_path / "alone.parquet")
    assert pq.read_table(tmp_path / "alone.parquet")["origin"].to_pylist() == ["vendor.csv:2"]


@pytest.mark.parametrize("workers", [1, 2])
def test_folders_of_one_name_are_told_apart_in_origins(
    tmp_path: Path, workers: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Overture's downloads per city are each a ``places/`` folder of parts: one source,
    # and every origin says which folder.
    monkeypatch.chdir(tmp_path)
    for city, rows in (
        ("helsinki", "1,Kahvila,60.1,24.9\n2,,60.1,24.9\n"),
        ("espoo", "1,Kahvila,60.2,24.7\n3,Baari,60.2,24.8\n"),
    ):
        (tmp_path / city / "places" / "day=1").mkdir(parents=True)
        (tmp_path / city / "places" / "day=1" / "part-0.csv").write_text("id,name,lat,lon\n" + rows)
    ingest([Path("helsinki/places"), Path("espoo/places")], "out.parquet", workers=workers)
    places = pq.read_table("out.parquet").select(["source", "id", "origin"]).to_pylist()
    assert places == [
        {"source": "places", "id": "1", "origin": "helsinki/places/day=1/part-0.csv:2"},
        {"source": "places", "id": "3", "origin": "espoo/places/day=1/part-0.csv:3"},
    ]
    held = pq.read_table("out.quarantine.parquet").select(["origin", "reason"]).to_pylist()
    assert held == [
        {"origin": "helsinki/places/day=1/part-0.csv:3", "reason": "name is missing"},
        {
            "origin": "espoo/places/day=1/part-0.csv:2",
            "reason": "duplicate id '1' in source 'places' "
            "(first at helsinki/places/day=1/part-0.csv:2)",
        },
    ]
    # A folder whose name no other input has keeps origins within it.
    ingest([Path("espoo/places")], "alone.parquet")
    assert pq.read_table("alone.parquet")["origin"].to_pylist()[0] == "day=1/part-0.csv:2"


def _stacked_feed(path: Path, at: str = "60.170123,24.940456", digits: int = 6) -> Path:
    """A feed whose geocoder put six addresses of three streets at one point (a town's
    centre), six shops of one street at another (a mall), four records of two streets at
    a third (too few to tell), and one record at each of the others: its points to
    ``digits`` decimals."""

    def point(lat: float, lon: float) -> str:
        return f"{lat:.{digits}f},{lon:.{digits}f}"

    rows = ["id,name,lat,lon,street,housenumber,city"]
    streets = ("Mannerheimintie", "Aleksanterinkatu", "Fredrikinkatu")
    rows += [f"c{i},Centre {i},{at},{streets[i % 3]},{i + 1},Helsinki" for i in range(6)]
    mall, few = point(60.201234, 24.901234), point(60.301234, 24.801234)
    rows += [f"m{i},Mall Shop {i},{mall},Itäkatu,1,Helsinki" for i in range(6)]
    rows += [f"f{i},Few {i},{few},{streets[i % 2]},{i + 1},Helsinki" for i in range(4)]
    rows += [
        f"o{i},Own {i},{point(60.1 + i / 77, 24.9 + i / 77)},Kauppakatu,{i},Helsinki"
        for i in range(3)
    ]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_a_point_a_source_gives_to_many_records_of_several_streets_is_withheld(
    tmp_path: Path,
) -> None:
    feed = _stacked_feed(tmp_path / "vendor.csv")
    # The same point in another source counts apart: its three records are not withheld.
    other = tmp_path / "other.csv"
    other.write_text(
        "id,name,lat,lon,street\n"
        + "".join(f"x{i},Other {i},60.170123,24.940456,Street {i}\n" for i in range(3)),
        encoding="utf-8",
    )
    kept: list[pa.Table] = []
    out = tmp_path / "p.parquet"
    report = ingest([feed, other], out, batch_size=4, on_places=kept.append)
    assert (report.read, report.valid, report.quarantined) == (22, 22, 0)
    assert [i.withheld_values for i in report.inputs] == [6, 0]
    written = pq.read_table(out)
    located = {r["id"]: r["lat"] is not None for r in written.to_pylist()}
    assert [i for i, has in located.items() if not has] == [f"c{i}" for i in range(6)]
    assert written.column("geometry").null_count == 6
    handed = pa.concat_tables(kept)  # the next stage gets what the file holds
    assert handed.equals(written.drop_columns(["geometry"]).cast(PLACE_SCHEMA))
    held = pq.read_table(tmp_path / "p.quarantine.parquet").to_pylist()
    assert [(r["id"], r["scope"], r["field"]) for r in held] == [
        (f"c{i}", "field", "lat, lon") for i in range(6)
    ]
    assert held[0]["reason"] == STACKED_POINT
    # Summed up whole in a run's report, no part of it taken for a quoted value.
    (reason,) = quarantine_reasons(tmp_path / "p.quarantine.parquet")
    assert (reason.reason, reason.records) == (STACKED_POINT, 6)
    assert json.loads(held[0]["original"]) == {"lat": 60.170123, "lon": 24.940456}
    assert held[0]["origin"] == "vendor.csv:2"
    again = tmp_path / "w2" / "p.parquet"
    ingest([feed, other], again, batch_size=4, workers=2)
    assert again.read_bytes() == out.read_bytes()
    quarantine = "p.quarantine.parquet"
    assert (again.parent / quarantine).read_bytes() == (tmp_path / quarantine).read_bytes()


def test_a_stack_is_five_records_or_more_at_one_point_to_six_decimals(tmp_path: Path) -> None:
    feed = _stacked_feed(tmp_path / "vendor.csv", at="60.412345,24.712345")
    report = ingest([feed], tmp_path / "p.parquet", batch_size=4)
    assert report.withheld_values == 6
    lines = feed.read_text(encoding="utf-8").splitlines()
    # One of the six moved a metre off: five records of the point are still a stack ...
    lines[1] = lines[1].replace("60.412345,24.712345", "60.412355,24.712345")
    feed.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert ingest([feed], tmp_path / "p.parquet").withheld_values == 5
    # ... four are not.
    lines[2] = lines[2].replace("60.412345,24.712345", "60.412365,24.712345")
    feed.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert ingest([feed], tmp_path / "p.parquet").withheld_values == 0
    assert pq.read_table(tmp_path / "p.parquet").column("geometry").null_count == 0


def test_a_point_rounded_to_100_m_is_shared_by_rounding_and_kept(
    tmp_path: Path,
) -> None:
    """Points to 3 decimals (100 m): several places of several streets share one by
    rounding, not by a geocoder's centre; to 4, the centre's stack is one again. So it is
    of a point, whether its source rounds every point or only some (the others to 6
    decimals)."""
    for digits, withheld in ((3, 0), (2, 0), (4, 6)):
        at = f"{60.170123:.{digits}f},{24.940456:.{digits}f}"
        feed = _stacked_feed(tmp_path / f"rounded{digits}.csv", at=at, digits=digits)
        assert ingest([feed], tmp_path / "p.parquet").withheld_values == withheld, digits
        some = _stacked_feed(tmp_path / f"some{digits}.csv", at=at)
        assert ingest([some], tmp_path / "p.parquet").withheld_values == withheld, digits


def test_a_source_whose_points_are_mostly_rounded_to_a_kilometre_is_said_to_be(
    tmp_path: Path,
) -> None:
    """Its points can be a kilometre from its places: the report says so per source, and
    keeps saying it once read back; a source to 3 decimals (100 m) or finer is not named."""
    fine = tmp_path / "fine.csv"
    rows = [f"{i},Place {i},{60.1 + i / 997:.6f},{24.9 + i / 991:.6f}" for i in range(30)]
    fine.write_text("id,name,lat,lon\n" + "\n".join(rows) + "\n", encoding="utf-8")
    found = {}
    for digits in (3, 2, 1):
        coarse = tmp_path / f"coarse{digits}.csv"
        coarse.write_text(
            "id,name,lat,lon\n"
            + "".join(f"{i},Place {i},{60.1 + i / 97:.{digits}f},24.9\n" for i in range(30)),
            encoding="utf-8",
        )
        report = ingest([fine, coarse], tmp_path / f"p{digits}.parquet")
        assert report.inputs[0].rounded == {}
        found[digits] = report.inputs[1].rounded
        again = IngestReport.from_dict(report.to_dict())
        assert again.inputs[1].rounded == found[digits]
    assert found == {3: {}, 2: {"coarse2": 2}, 1: {"coarse1": 1}}
    # A source that rounds some of its points (12 of 40), and one of 3 decimals whose
    # points land on whole hundredths by chance: only the first is named, with its share.
    some = tmp_path / "some.csv"
    digits = [2 if i < 12 else 6 for i in range(40)]
    rows = [
        f"{i},Place {i},{60.1 + i / 97:.{d}f},{24.9 + i / 89:.{d}f}" for i, d in enumerate(digits)
    ]
    some.write_text("id,name,lat,lon\n" + "\n".join(rows) + "\n", encoding="utf-8")
    third = tmp_path / "third.csv"
    rows = [f"{i},Place {i},{60.1 + i / 1000:.3f},{24.9 + i / 1000:.3f}" for i in range(200)]
    third.write_text("id,name,lat,lon\n" + "\n".join(rows) + "\n", encoding="utf-8")
    report = ingest([fine, some, third], tmp_path / "some.parquet")
    assert [i.partly_rounded for i in report.inputs] == [{}, {"some": 0.3}, {}]
    assert [i.rounded for i in report.inputs] == [{}, {}, {}]
    again = IngestReport.from_dict(report.to_dict())
    assert again.inputs[1].partly_rounded == {"some": 0.3}


def test_a_feed_read_with_the_wrong_encoding_on_its_way_is_repaired(tmp_path: Path) -> None:
    """UTF-8 saved again as if it were Windows-1252 (a spreadsheet's round trip): names,
    streets and category labels are read as they were written."""
    feed = tmp_path / "excel.csv"
    rows = (
        "id,name,lat,lon,street,housenumber,city,category\n"
        "1,Café Aalto,60.168,24.944,Pohjoisesplanadi,39,Helsinki,Café\n"
        "2,Ravintola Sävel,60.17,24.95,Hämeentie,2,Helsinki,Ravintola\n"
        "3,Åbo Bageri,60.45,22.27,Åbo Gatan,1,Åbo,Bäckerei\n"
    )
    garbled = rows.encode("utf-8").decode("cp1252", errors="replace")
    assert "CafÃ© Aalto" in garbled
    feed.write_text(garbled, encoding="utf-8")
    report = ingest([feed], tmp_path / "p.parquet")
    # Counted, and said: three records had text garbled, none escaped.
    assert report.inputs[0].repaired == {REPAIRS[2]: 3}
    assert IngestReport.from_dict(report.to_dict()).inputs[0].repaired == {REPAIRS[2]: 3}
    # With the first two of them, as they came: what a person looks for in the feed.
    shown = {REPAIRS[2]: ("CafÃ© Aalto", "Ravintola SÃ¤vel")}
    assert report.inputs[0].repair_examples == shown
    assert IngestReport.from_dict(report.to_dict()).inputs[0].repair_examples == shown
    places = pq.read_table(tmp_path / "p.parquet").to_pylist()
    assert [p["names"]["primary"] for p in places] == [
        "Café Aalto",
        "Ravintola Sävel",
        "Åbo Bageri",
    ]
    assert [p["address"]["street"] for p in places] == [
        "Pohjoisesplanadi",
        "Hämeentie",
        "Åbo Gatan",
    ]
    assert places[2]["address"]["locality"] == "Åbo"
    assert places[0]["keys"]["name"] == "cafe aalto"
    assert [p["categories"]["primary"] for p in places] == ["cafe", "restaurant", "bakery"]


def test_what_ingest_repaired_is_counted_by_input_and_kind(tmp_path: Path) -> None:
    """A record counts once per kind of repair, whichever of its name, street, town and
    brand had it; a value that needed none counts nothing."""
    feed = tmp_path / "web.csv"
    rows = ["id,name,street,city,brand"]
    rows += [f"e{i},Ben &amp; Jerry&#39;s {i},Kauppakatu,Helsinki," for i in range(40)]
    rows += [f"s{i},Kahvila {i},H&#228;meentie,Helsinki," for i in range(20)]
    rows += [f"b{i},Kahvila B {i},Kauppakatu,Helsinki,Caf&#233; &amp; Co" for i in range(5)]
    rows += [f"x{i},Plain {i},Kauppakatu,Helsinki,AT&T" for i in range(30)]
    rows += [
        f'm{i},"<span class=""n"">Kahvila M {i}</span><br>",Kauppakatu,Helsinki,' for i in range(3)
    ]
    rows += ["t0,Kahvila <3,Kauppakatu,Helsinki,"]  # no tag: as written
    feed.write_text("\n".join(rows) + "\n", encoding="utf-8")
    garbled = tmp_path / "garbled.csv"
    garbled.write_text(
        "id,name,street,city\n"
        + "".join(
            f"g{i},Caf{read_as_windows_1252('é')} {i},Kauppakatu,Helsinki\n" for i in range(7)
        ),
        encoding="utf-8",
    )
    report = ingest([feed, garbled], tmp_path / "p.parquet", batch_size=16)
    assert [i.repaired for i in report.inputs] == [
        {REPAIRS[1]: 65, REPAIRS[4]: 3},
        {REPAIRS[2]: 7},
    ]
    # Each kind's first two records' values, whichever of a record's values had it: the
    # same in batches of 16 (a record at a time) as in one (column by column).
    assert [i.repair_examples for i in report.inputs] == [
        {
            REPAIRS[1]: ("Ben &amp; Jerry&#39;s 0", "Ben &amp; Jerry&#39;s 1"),
            REPAIRS[4]: tuple(f'<span class="n">Kahvila M {i}</span><br>' for i in range(2)),
        },
        {REPAIRS[2]: tuple(f"Caf{read_as_windows_1252('é')} {i}" for i in range(2))},
    ]
    streets_first = tmp_path / "streets_first.csv"
    streets_first.write_text("\n".join([rows[0], *rows[41:], *rows[1:41]]) + "\n")
    for batch_size in (16, 50_000):
        [again] = ingest([streets_first], tmp_path / "q.parquet", batch_size=batch_size).inputs
        assert again.repair_examples[REPAIRS[1]] == ("H&#228;meentie", "Caf&#233; &amp; Co")
    names = pq.read_table(tmp_path / "p.parquet").column("names").to_pylist()
    assert names[0]["primary"] == "Ben & Jerry's 0"
    assert [n["primary"] for n in names[95:99]] == [
        *(f"Kahvila M {i}" for i in range(3)),
        "Kahvila <3",
    ]


def _ingested(tmp_path: Path, name: str, text: str) -> tuple[IngestReport, list[dict[str, Any]]]:
    """``text`` ingested as the file ``name``: the report, and the places as rows."""
    feed = tmp_path / name
    feed.write_text(text, encoding="utf-8")
    report = ingest([feed], tmp_path / "p.parquet")
    return report, pq.read_table(tmp_path / "p.parquet").to_pylist()


def test_a_name_that_repeats_its_own_town_address_or_category_is_read_without_it(
    tmp_path: Path,
) -> None:
    """A listing's title ("Cafe Aalto - Helsinki", "Aalto (Cafe)") is read as the
    place's name: what its record says of the place elsewhere (its town, address or
    category), after a separator, is left out of its name and key, and the title is kept
    among its other names."""
    report, places = _ingested(
        tmp_path,
        "titles.csv",
        "id,name,street,housenumber,city,category\n"
        "1,Cafe Aalto - Helsinki,Pohjoisesplanadi,39,Helsinki,\n"
        '2,"Cafe Aalto, Pohjoisesplanadi 39",Pohjoisesplanadi,39,Helsinki,\n'
        "3,Cafe Aalto (Espoo),Pohjoisesplanadi,39,Helsinki,\n"
        "4,Hotel Helsinki,Pohjoisesplanadi,39,Helsinki,\n"
        "5,Cafe Aalto - Helsinki,,,,\n"
        "6,Aalto (Cafe),,,,cafe\n"
        "7,Aalto (Bakery),,,,cafe\n"
        '8,"Cafe Aalto, Pohjoisesplanadi 39",Pohjoisesplanadi,39 B 12,Helsinki,\n',
    )
    assert report.inputs[0].repaired == {TITLES: 4}  # said, as the other repairs are
    assert report.inputs[0].repair_examples == {
        TITLES: ("Cafe Aalto - Helsinki", "Cafe Aalto, Pohjoisesplanadi 39")
    }
    assert [p["keys"]["name"] for p in places] == [
        "cafe aalto",
        "cafe aalto",
        "cafe aalto espoo",  # another town: part of its name
        "hotel helsinki",  # no separator: its name
        "cafe aalto helsinki",  # no town or street of its own to compare with
        "aalto",
        "aalto bakery",  # not its category
        "cafe aalto",  # its building's number, without the staircase and flat
    ]
    assert [p["names"]["primary"] for p in places[:3]] == [
        "Cafe Aalto",
        "Cafe Aalto",
        "Cafe Aalto (Espoo)",
    ]
    assert places[0]["names"]["alternates"] == [
        {"value": "Cafe Aalto - Helsinki", "language": None, "variant": "alternate"}
    ]
    assert places[3]["names"]["alternates"] is None
    # Kept for people to read, but no key to match by: its town is what it was read without.
    assert places[0]["keys"]["name_alternates"] is None


def test_a_name_in_two_languages_is_read_as_the_first_with_the_other_as_another_name(
    tmp_path: Path,
) -> None:
    """A bilingual town's feed writes both names ("Merenneito / Sjöjungfru"): the first is
    the record's name and the other one of its other names, each with its own key (as a
    translation has); the name as written is kept, with no key."""
    report, places = _ingested(
        tmp_path,
        "names.csv",
        "id,name,city\n"
        "1,Merenneito / Sjöjungfru,Helsinki\n"
        "2,KANSALLISKIRJASTO / NATIONALBIBLIOTEKET / NATIONAL LIBRARY,Helsinki\n"
        "3,Rautatientori / länsi kaupunkipyöräasema,Helsinki\n"
        "4,Ravintolalaiva M/S Maria,Helsinki\n"
        "5,Tuomiokirkko / Domkyrkan - Helsinki,Helsinki\n",
    )
    assert report.inputs[0].repaired == {NAMES: 3, TITLES: 1}
    assert report.inputs[0].repair_examples == {  # each name as its reading saw it
        NAMES: (
            "Merenneito / Sjöjungfru",
            "KANSALLISKIRJASTO / NATIONALBIBLIOTEKET / NATIONAL LIBRARY",
        ),
        TITLES: ("Tuomiokirkko / Domkyrkan - Helsinki",),
    }
    assert [p["names"]["primary"] for p in places] == [
        "Merenneito",
        "KANSALLISKIRJASTO",
        "Rautatientori / länsi kaupunkipyöräasema",  # lower case after the slash: one name
        "Ravintolalaiva M/S Maria",
        "Tuomiokirkko",  # the town read off first, then the two names
    ]
    assert [p["keys"]["name_alternates"] for p in places] == [
        ["sjojungfru"],
        ["nationalbiblioteket", "national library"],
        None,
        None,
        ["domkyrkan"],
    ]
    assert [a["value"] for a in places[0]["names"]["alternates"]] == [
        "Sjöjungfru",
        "Merenneito / Sjöjungfru",
    ]
    # The title as written is what is kept, not the name it was read as on the way.
    assert [a["value"] for a in places[4]["names"]["alternates"]] == [
        "Domkyrkan",
        "Tuomiokirkko / Domkyrkan - Helsinki",
    ]


def test_a_closure_written_in_a_name_is_the_records_status(tmp_path: Path) -> None:
    """ "Cafe Aalto (closed)": the name is "Cafe Aalto", and the record's status is closed
    where it gives none; the name as written is kept, with no key."""
    report, places = _ingested(
        tmp_path,
        "closed.csv",
        "id,name,city,operating_status\n"
        "1,Cafe Aalto (closed),Helsinki,\n"
        "2,[SULJETTU] Cafe Aalto - Helsinki,Helsinki,\n"
        "3,Cafe Aalto (tillfälligt stängd),Helsinki,\n"
        "4,Cafe Aalto (closed),Helsinki,open\n"
        "5,Closed Loop Cafe,Helsinki,\n"
        "6,Cafe Aalto (Closed Mondays),Helsinki,\n"
        "7,Cafe Aalto (closed) - Helsinki,Helsinki,\n",
    )
    assert report.inputs[0].repaired == {STATUSES: 5, TITLES: 2}
    assert [(p["names"]["primary"], p["operating_status"]) for p in places] == [
        ("Cafe Aalto", "permanently_closed"),
        ("Cafe Aalto", "permanently_closed"),  # its town read off after its status
        ("Cafe Aalto", "temporarily_closed"),
        ("Cafe Aalto", "open"),  # the record's own status stands
        ("Closed Loop Cafe", None),
        ("Cafe Aalto (Closed Mondays)", None),
        ("Cafe Aalto", "permanently_closed"),  # before the rest of a listing's title
    ]
    assert {p["keys"]["name"] for p in places[:4]} == {"cafe aalto"}
    assert [a["value"] for a in places[1]["names"]["alternates"]] == [
        "[SULJETTU] Cafe Aalto - Helsinki"
    ]
    assert places[1]["keys"]["name_alternates"] is None


def test_an_old_name_beside_a_name_is_kept_as_the_places_old_name(tmp_path: Path) -> None:
    """ "Cafe Aalto (formerly Bar Rio)": the name is "Cafe Aalto", and "Bar Rio" joins its
    other names as its old name (as OpenStreetMap's old_name), with a key to be matched
    by: a source that still has the old name meets it."""
    report, places = _ingested(
        tmp_path,
        "renamed.csv",
        "id,name,city\n"
        "1,Cafe Aalto (formerly Bar Rio),Helsinki\n"
        "2,Cafe Aalto - ent. Bar Rio,Helsinki\n"
        "3,Cafe Aalto (aka Aalto),Helsinki\n"
        "4,Cafe Aalto (formerly Bar Rio) (closed),Helsinki\n"
        "5,Cafe Aalto (Espoo),Helsinki\n"
        "6,Antikvariaatti (Ex Libris),Helsinki\n",
    )
    assert report.inputs[0].repaired == {FORMER: 4, STATUSES: 1}
    assert [p["names"]["primary"] for p in places] == [
        *["Cafe Aalto"] * 4,
        "Cafe Aalto (Espoo)",
        "Antikvariaatti (Ex Libris)",  # "Ex" without its "-" or "." is a word of the name
    ]
    assert [p["keys"]["name_alternates"] for p in places] == [
        ["bar rio"],
        ["bar rio"],
        ["aalto"],  # a name it goes by too
        ["bar rio"],
        None,
        None,
    ]
    assert places[0]["names"]["alternates"] == [
        {"value": "Bar Rio", "language": None, "variant": "old"},
        {"value": "Cafe Aalto (formerly Bar Rio)", "language": None, "variant": "alternate"},
    ]
    assert places[2]["names"]["alternates"][0] == {
        "value": "Aalto",
        "language": None,
        "variant": "alternate",
    }
    assert places[3]["operating_status"] == "permanently_closed"


def test_a_phone_or_web_address_in_a_name_is_the_records_where_it_gives_none(
    tmp_path: Path,
) -> None:
    """A scraped directory's listing ("Cafe Aalto, puh. 09 123 4567"): the name is "Cafe
    Aalto", and the phone or web address is the record's where it has none; its own
    stands where it has one."""
    report, places = _ingested(
        tmp_path,
        "listings.csv",
        "id,name,country,phone,website\n"
        '1,"Cafe Aalto, puh. 09 123 4567",FI,,\n'
        "2,Cafe Aalto (+358 9 1234567),FI,09 7654 321,\n"
        "3,Cafe Aalto - www.cafeaalto.fi,FI,,\n"
        "4,Route 66,FI,,\n"
        "5,Booking.com,FI,,\n"
        "6,Cafe Aalto (+358 9 1234567) (tillfälligt stängd),FI,,\n",
    )
    assert report.inputs[0].repaired == {CONTACTS: 4, STATUSES: 1}
    assert report.inputs[0].repair_examples == {
        CONTACTS: ("Cafe Aalto, puh. 09 123 4567", "Cafe Aalto (+358 9 1234567)"),
        STATUSES: ("Cafe Aalto (tillfälligt stängd)",),  # its phone read first
    }
    assert [p["names"]["primary"] for p in places] == [
        *["Cafe Aalto"] * 3,
        "Route 66",
        "Booking.com",
        "Cafe Aalto",  # its contact read before its closure, and its closure after
    ]
    assert [p["phones"] for p in places] == [
        ["+35891234567"],
        ["+35897654321"],  # its own
        None,
        None,
        None,
        ["+35891234567"],
    ]
    assert places[5]["operating_status"] == "temporarily_closed"
    assert places[2]["websites"] == ["http://www.cafeaalto.fi"]
    assert places[2]["keys"]["domains"] == ["cafeaalto.fi"]
    assert places[0]["names"]["alternates"][-1]["value"] == "Cafe Aalto, puh. 09 123 4567"


def test_a_chains_number_for_its_store_is_read_out_of_its_name(tmp_path: Path) -> None:
    """A chain's list of its stores writes each one's number after the name: the name is
    the chain's, the name as written is kept among its other names, and ingest says how
    many it read."""
    report, places = _ingested(
        tmp_path,
        "stores.csv",
        "id,name,city\n"
        "1,Alepa #4512,Helsinki\n"
        "2,Alepa (Store 4513) - Helsinki,Helsinki\n"
        "3,Studio 54,Helsinki\n",
    )
    assert report.inputs[0].repaired == {STORE_NUMBERS: 2, TITLES: 1}
    assert [p["names"]["primary"] for p in places] == ["Alepa", "Alepa", "Studio 54"]
    assert [p["keys"]["name"] for p in places] == ["alepa", "alepa", "studio 54"]
    assert places[0]["names"]["alternates"][-1]["value"] == "Alepa #4512"


def test_a_web_or_email_address_in_the_phone_column_is_given_to_its_own(
    tmp_path: Path,
) -> None:
    """OpenStreetMap's Helsinki has "phone=https://www.viinitie.fi/": a web or email
    address in the phone column is the record's web or email address, not a phone number
    withheld; the numbers beside it are read as they were."""
    report, places = _ingested(
        tmp_path,
        "misfiled.csv",
        "id,name,phone,website,email,country\n"
        "1,Viinitie,https://www.viinitie.fi/,,,FI\n"
        '2,Aalto,"09 123 4567; info@aalto.fi",,,FI\n'
        "3,Rio,call us,,,FI\n",
    )
    assert report.inputs[0].repaired == {MISFILED: 2}
    assert report.inputs[0].repair_examples == {
        MISFILED: ("https://www.viinitie.fi/", "09 123 4567; info@aalto.fi")
    }
    assert [(p["phones"], p["websites"], p["emails"]) for p in places] == [
        (None, ["https://www.viinitie.fi"], None),
        (["+35891234567"], None, ["info@aalto.fi"]),
        (None, None, None),
    ]
    withheld = pq.read_table(tmp_path / "p.quarantine.parquet").to_pylist()
    assert [w["reason"] for w in withheld] == ["'call us' is not a phone number"]


def test_a_phone_in_a_name_is_read_as_the_records_phones_are(tmp_path: Path) -> None:
    """A phone read in a name is normalized with the record's phones: written nationally
    in a record with a point and no country, in the country its point falls in; one
    that is no number is withheld with its reason, as a phone column's is."""
    _, places = _ingested(
        tmp_path,
        "points.csv",
        "id,name,lat,lon\n"
        '1,"Cafe Aalto, puh. 09 123 4567",60.17,24.94\n'
        '2,"Cafe Rio, puh. 0000000",60.17,24.94\n',
    )
    assert [p["phones"] for p in places] == [["+35891234567"], None]
    assert [p["names"]["primary"] for p in places] == ["Cafe Aalto", "Cafe Rio"]
    withheld = pq.read_table(tmp_path / "p.quarantine.parquet").to_pylist()
    assert [(w["origin"], w["field"], w["reason"]) for w in withheld] == [
        ("points.csv:3", "phones", "'0000000' is not a phone number")
    ]


def _towns_feed(path: Path, swapped: bool, count: int = 40) -> Path:
    """``count`` records in Finnish towns, naming their country; latitude and longitude in
    each other's columns where ``swapped``."""
    towns = [(60.17, 24.94), (61.50, 23.76), (60.45, 22.27), (65.01, 25.47), (62.60, 29.76)]
    rows = ["id,name,lat,lon,country"]
    for i in range(count):
        lat, lon = towns[i % len(towns)]
        lat, lon = lat + i / 1000, lon + i / 1000
        rows.append(f"{i},Kauppa {i},{lon if swapped else lat},{lat if swapped else lon},FI")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_a_source_with_latitude_and_longitude_swapped_is_refused_with_the_fix(
    tmp_path: Path,
) -> None:
    feed = _towns_feed(tmp_path / "swapped.csv", swapped=True)
    out = tmp_path / "out" / "places.parquet"
    with pytest.raises(InputError, match="latitudes and longitudes look swapped") as err:
        ingest([feed], out, batch_size=7)
    assert err.value.path == str(feed)
    assert "0% of the first 40 located records" in err.value.message
    assert "{lat: <its longitude column>, lon: <its latitude column>}" in err.value.message
    assert not out.exists()
    # The fix it names: the mapping reads the columns the other way round.
    fixed = SourceMapping(columns={"lat": "lon", "lon": "lat"})
    report = ingest([feed], out, mapping=fixed)
    assert report.valid == 40
    assert pq.read_table(out).column("lat").to_pylist()[0] == pytest.approx(60.17)
    # The same records the right way round, and too few swapped to say, go on.
    assert ingest([_towns_feed(tmp_path / "right.csv", swapped=False)], out).valid == 40
    few = _towns_feed(tmp_path / "few.csv", swapped=True, count=20)
    assert ingest([few], out).valid == 20


def test_geojson_written_latitude_first_is_refused(tmp_path: Path) -> None:
    towns = [(60.17, 24.94), (61.50, 23.76), (60.45, 22.27), (65.01, 25.47), (62.60, 29.76)]
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [lat + i / 1000, lon + i / 1000]},
            "properties": {"id": str(i), "name": f"Kauppa {i}", "country": "FI"},
        }
        for i, (lat, lon) in enumerate(towns * 8)
    ]
    path = tmp_path / "lat_first.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), "utf-8")
    with pytest.raises(InputError, match="write GeoJSON and WKT longitude first"):
        ingest([path], tmp_path / "p.parquet")
