"""Coordinates in degrees, minutes and seconds, as a GPS or an older survey writes them."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from poiflow.generate.habits import as_degrees
from poiflow.pipeline import ingest
from poiflow.sources.text import degrees


@given(st.floats(-89.9, 89.9), st.floats(-179.9, 179.9), st.integers(0, 2))
def test_a_point_written_in_degrees_and_minutes_reads_back(
    lat: float, lon: float, way: int
) -> None:
    # To a tenth of a second (~3 m) or a thousandth of a minute (~2 m), as written.
    for value, axis in ((lat, "lat"), (lon, "lon")):
        read = degrees(axis, as_degrees(value, axis, way))
        assert read == pytest.approx(value, abs=1 / 36_000 + 1e-9)


@pytest.mark.parametrize(
    ("axis", "written", "read"),
    [
        ("lat", "60°10′05.7″N", 60.16825),
        ("lat", "N 60° 10.095'", 60.16825),
        ("lat", "33 52 5.9S", -33.8683056),
        ("lon", "W 0° 7.5'", -0.125),
        ("lat", "60 deg 10 min N", 60.1666667),
        ("lat", "60.1699 N", 60.1699),
        # Not a latitude: the other axis's letter, two bare numbers, 60 minutes, words.
        ("lat", "24°56′37.7″E", None),
        ("lat", "60 10", None),
        ("lat", "60°70′N", None),
        ("lat", "60°10′05.7″N and more", None),
        ("name", "60°10′05.7″N", None),
    ],
)
def test_degrees_as_feeds_write_them(axis: str, written: str, read: float | None) -> None:
    assert degrees(axis, written) == read


@pytest.mark.parametrize("rows", [3, 100])  # read value by value, and column-wise
def test_a_feed_of_points_in_degrees_is_read_not_withheld(tmp_path: Path, rows: int) -> None:
    feed = tmp_path / "gps.csv"
    lines = [f'{i},Kahvila {i},"60°10′05.7″N","E 24° 56.628\'"' for i in range(rows)]
    feed.write_text("id,name,lat,lon\n" + "\n".join(lines) + "\nx,Baari,abc,24.9\n", "utf-8")
    report = ingest([feed], tmp_path / "p.parquet")
    places = pq.read_table(tmp_path / "p.parquet").to_pylist()
    assert report.inputs[0].valid == rows
    assert {(p["lat"], p["lon"]) for p in places} == {(60.16825, 24.9438)}
    withheld = pq.read_table(tmp_path / "p.quarantine.parquet").to_pylist()
    assert [w["reason"] for w in withheld] == ["lat: 'abc' is not a number"]
