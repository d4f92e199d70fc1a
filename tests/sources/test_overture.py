from __future__ import annotations

import struct
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from poiflow.errors import SchemaMismatchError
from poiflow.sources import OvertureSource, open_source

from .overture_fixture import place, write_overture


def test_reads_overture_layout(tmp_path: Path) -> None:
    path = write_overture(
        tmp_path / "places.parquet",
        [
            place(
                "08f1",
                "Café Regatta",
                24.9,
                60.18,
                names={
                    "primary": "Café Regatta",
                    "common": [("sv", "Kafé Regatta")],
                    "rules": [
                        {
                            "variant": "short",
                            "language": None,
                            "value": "Regatta",
                            "between": None,
                            "side": None,
                        }
                    ],
                },
                phones=["+358 40 123 4567"],
                websites=["https://caferegatta.fi"],
                brand={
                    "wikidata": "Q1",
                    "names": {"primary": "Regatta", "common": None, "rules": None},
                },
            ),
            place(
                "08f2",
                "Kiosk",
                24.95,
                60.17,
                categories=None,
                addresses=None,
                operating_status="temporarily_closed",
            ),
        ],
    )
    source = open_source(path)
    assert isinstance(source, OvertureSource)
    assert source.size_hint() == 2
    rows = pa.concat_tables(b.records for b in source.batches()).to_pylist()
    first, second = rows
    assert first["source"] == "overture"
    assert first["id"] == "08f1"
    assert (first["lat"], first["lon"]) == (60.18, 24.9)  # full double precision, not bbox float32
    assert {(a["value"], a["language"], a["variant"]) for a in first["names"]["alternates"]} == {
        ("Kafé Regatta", "sv", "common"),
        ("Regatta", None, "short"),
    }
    assert first["categories"] == {"primary": "coffee_shop", "alternate": ["cafe", "bakery"]}
    assert first["address"]["locality"] == "Helsinki"
    assert first["address"]["country"] == "FI"
    assert first["brand"] == {"name": "Regatta", "wikidata": "Q1"}
    assert first["update_time"].year == 2025
    assert second["categories"] is None
    assert second["address"] is None
    assert second["operating_status"] == "temporarily_closed"


def test_non_point_geometry_is_flagged(tmp_path: Path) -> None:
    line = struct.pack("<BII", 1, 2, 2) + struct.pack("<4d", 24.9, 60.1, 24.91, 60.11)
    big_endian = struct.pack(">BIdd", 0, 1, 24.5, 60.5)
    path = write_overture(
        tmp_path / "p.parquet",
        [place("a", "Line", 0, 0, geometry=line), place("b", "Big", 0, 0, geometry=big_endian)],
    )
    rows = pa.concat_tables(b.records for b in OvertureSource(path).batches()).to_pylist()
    assert rows[0]["issues"] == ["geometry: not a point"]
    assert rows[0]["lat"] is None
    assert (rows[1]["lat"], rows[1]["lon"]) == (60.5, 24.5)
    assert rows[1]["issues"] is None


def test_missing_required_columns(tmp_path: Path) -> None:
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"id": ["1"], "names": [{"primary": "x"}]}), path)
    # Without geometry this is not Overture: read as flat places, which lack 'name'.
    with pytest.raises(SchemaMismatchError, match="unknown column 'names'"):
        list(open_source(path).batches())
    with pytest.raises(SchemaMismatchError, match="missing column"):
        list(OvertureSource(path).batches())
