"""The golden places as a flat GIS file or table (``poiflow publish file``)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from poiflow.config import SourceMapping
from poiflow.errors import InputError, OutputError
from poiflow.sinks import PLACE_FILE_FORMATS, flat_golden_places, write_places_file
from poiflow.sources import open_source

from ..conftest import poiflow


def golden(conflated: Path) -> pa.Table:
    return pq.read_table(conflated / "places.parquet")


@pytest.mark.parametrize("suffix", sorted(PLACE_FILE_FORMATS))
def test_a_places_file_reads_back_as_the_golden_places(
    conflated: Path, tmp_path: Path, suffix: str
) -> None:
    """Written in each format and read back by ``poiflow ingest`` (the golden record's own
    columns ignored): every place, with its id, name, category, point, address and phones."""
    places = golden(conflated)
    path = tmp_path / f"places{suffix}"
    assert write_places_file(places, path) == places.num_rows
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # nothing half-written left
    mapping = SourceMapping.model_validate({"ignore": ["confidence", "members", "datasets"]})
    back = []
    for batch in open_source(path, mapping).batches(100_000):
        back += batch.records.to_pylist()
    want = places.to_pylist()
    assert len(back) == len(want)
    by_id = {row["id"]: row for row in back}
    for place in want:
        row = by_id[place["id"]]
        assert row["source"] == "places"
        assert row["names"]["primary"] == place["names"]["primary"]
        assert row["source_category"] == (place["categories"] or {}).get("primary")
        assert (row["lat"], row["lon"]) == pytest.approx((place["lat"], place["lon"]), abs=1e-12)
        for part in ("street", "housenumber", "postcode", "locality", "country"):
            assert row["address"][part] == (place["address"] or {}).get(part), part
        assert row["phones"] == (["; ".join(place["phones"])] if place["phones"] else None)


def test_the_golden_columns_say_the_confidence_members_and_datasets(conflated: Path) -> None:
    places = golden(conflated)
    flat = flat_golden_places(places).to_pylist()
    for place, row in zip(places.to_pylist(), flat, strict=True):
        assert row["confidence"] == pytest.approx(place["confidence"])
        assert row["members"] == place["members"]
        datasets = list(dict.fromkeys(s["dataset"] for s in place["sources"]))
        assert row["datasets"] == ", ".join(datasets)
        assert row["website"] == (place["websites"][0] if place["websites"] else None)
    assert any(row["members"] > 1 and "," in row["datasets"] for row in flat)


def test_a_bad_target_is_refused_and_leaves_nothing(conflated: Path, tmp_path: Path) -> None:
    places = golden(conflated)
    with pytest.raises(InputError, match=r"cannot tell the format from 'places.kml'"):
        write_places_file(places, tmp_path / "places.kml")
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(OutputError, match="cannot write it"):
        write_places_file(places, blocker / "places.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_the_cli_publishes_a_geopackage(conflated: Path, tmp_path: Path) -> None:
    out = tmp_path / "gis" / "places.gpkg"
    done = poiflow("publish", "file", str(conflated), str(out))
    assert done.returncode == 0, done.stderr
    assert f"golden places written to {out}" in (done.stdout + done.stderr).replace("\n", "")
    import pyogrio

    assert pyogrio.read_info(out)["features"] == golden(conflated).num_rows
    missing = poiflow("publish", "file", str(tmp_path / "nothing"), str(out))
    assert missing.returncode != 0
    assert "no places.parquet here" in missing.stdout + missing.stderr
