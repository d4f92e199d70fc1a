"""A folder read as one input: Spark's and DuckDB's outputs, Overture's releases."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from poiflow.errors import InputError, SchemaMismatchError, UnknownFormatError
from poiflow.sources import OvertureSource, Source, TabularSource, open_source

from .overture_fixture import place, write_overture


def flat(ids: range, stem: str) -> pa.Table:
    return pa.table(
        {
            "id": [f"{stem}{i}" for i in ids],
            "name": [f"Kahvila {stem} {i}" for i in ids],
            "lat": [60.1 + i / 1000 for i in ids],
            "lon": [24.9] * len(ids),
        }
    )


def spark_output(folder: Path, sizes: tuple[int, ...]) -> list[str]:
    """Parts as Spark writes them, with its bookkeeping beside them; the ids in order."""
    folder.mkdir(parents=True)
    ids: list[str] = []
    for number, size in enumerate(sizes):
        part = flat(range(size), f"p{number}-")
        pq.write_table(part, folder / f"part-{number:05d}-c000.snappy.parquet")
        (folder / f".part-{number:05d}-c000.snappy.parquet.crc").write_bytes(b"\x00crc")
        ids += part.column("id").to_pylist()
    (folder / "_SUCCESS").write_bytes(b"")
    return ids


def read(source: Source, batch_size: int = 4, part: int = 0, parts: int = 1) -> list[dict]:
    rows: list[dict] = []
    for batch in source.batches(batch_size, part=part, parts=parts):
        rows += batch.records.to_pylist()
    return rows


def test_a_folder_of_parquet_parts_is_one_source_in_name_order(tmp_path: Path) -> None:
    folder = tmp_path / "vendor.parquet"
    ids = spark_output(folder, (3, 5, 0, 2))
    source = open_source(folder)
    assert isinstance(source, TabularSource)
    assert source.name == "vendor"
    assert source.size_hint() == 10
    rows = read(source)
    assert [r["id"] for r in rows] == ids
    assert {r["source"] for r in rows} == {"vendor"}
    assert rows[3]["origin"] == "part-00001-c000.snappy.parquet#row=0"
    assert rows[-1]["origin"] == "part-00003-c000.snappy.parquet#row=1"


@settings(max_examples=30, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 9), min_size=1, max_size=4),
    batch_size=st.integers(1, 5),
    parts=st.integers(1, 3),
)
def test_partitions_of_a_folder_share_it_batch_by_batch(
    tmp_path_factory: pytest.TempPathFactory, sizes: list[int], batch_size: int, parts: int
) -> None:
    folder = tmp_path_factory.mktemp("parts") / "out"
    spark_output(folder, tuple(sizes))
    source = open_source(folder)
    whole = list(source.batches(batch_size))
    assert [b.chunk for b in whole] == list(range(len(whole)))
    shared = sorted(
        (b for part in range(parts) for b in source.batches(batch_size, part=part, parts=parts)),
        key=lambda b: b.chunk,
    )
    assert [b.chunk for b in shared] == [b.chunk for b in whole]
    assert [b.records.to_pylist() for b in shared] == [b.records.to_pylist() for b in whole]


def test_a_folder_of_text_parts_in_subfolders(tmp_path: Path) -> None:
    folder = tmp_path / "feed"
    (folder / "country=FI").mkdir(parents=True)
    (folder / "country=SE").mkdir()
    (folder / "country=FI" / "part-0.csv").write_text("id,name\n1,Kahvila\n2,Baari\n")
    (folder / "country=SE" / "part-0.csv").write_text("name,id\nKafé,3\n,4\n")
    source = open_source(folder)
    rows = read(source)
    assert [(r["id"], r["origin"]) for r in rows] == [
        ("1", "country=FI/part-0.csv:2"),
        ("2", "country=FI/part-0.csv:3"),
        ("3", "country=SE/part-0.csv:2"),
        ("4", "country=SE/part-0.csv:3"),
    ]
    assert rows[3]["names"]["primary"] is None


def test_a_folder_of_overture_parts(tmp_path: Path) -> None:
    folder = tmp_path / "theme=places" / "type=place"
    folder.mkdir(parents=True)
    write_overture(folder / "part-00000.zstd.parquet", [place("a", "Kahvila", 24.9, 60.1)])
    write_overture(
        folder / "part-00001.zstd.parquet",
        [place("b", "Baari", 24.9, 60.2), place("c", "Kirja", 24.8, 60.2)],
    )
    source = open_source(tmp_path / "theme=places")
    assert isinstance(source, OvertureSource)
    assert source.size_hint() == 3
    rows = read(source, batch_size=1)
    assert [(r["id"], r["origin"]) for r in rows] == [
        ("a", "type=place/part-00000.zstd.parquet#row=0"),
        ("b", "type=place/part-00001.zstd.parquet#row=0"),
        ("c", "type=place/part-00001.zstd.parquet#row=1"),
    ]
    assert [r["lat"] for r in rows] == pytest.approx([60.1, 60.2, 60.2])


def test_a_part_unlike_the_first_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    pq.write_table(flat(range(2), "a"), folder / "part-0.parquet")
    pq.write_table(
        flat(range(2), "b").append_column("colour", pa.array(["r", "g"])), folder / "part-1.parquet"
    )
    with pytest.raises(SchemaMismatchError, match="unknown column 'colour'") as err:
        read(open_source(folder))
    assert err.value.path == str(folder / "part-1.parquet")

    overture = tmp_path / "overture"
    overture.mkdir()
    write_overture(overture / "part-0.parquet", [place("a", "Kahvila", 24.9, 60.1)])
    pq.write_table(flat(range(2), "b"), overture / "part-1.parquet")
    with pytest.raises(SchemaMismatchError, match="not an Overture places file") as err:
        read(open_source(overture))
    assert err.value.path == str(overture / "part-1.parquet")


def test_folders_that_are_not_one_input_are_refused_with_what_they_hold(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "_SUCCESS").write_bytes(b"")
    with pytest.raises(InputError, match="an empty folder: it holds no files to read"):
        open_source(empty)

    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "a.csv").write_text("id,name\n1,Kahvila\n")
    (mixed / "b.csv.gz").write_bytes(b"")
    pq.write_table(flat(range(1), "c"), mixed / "c.parquet")
    with pytest.raises(UnknownFormatError) as err:
        open_source(mixed)
    assert "holds files of 2 kinds: a.csv (csv), c.parquet (parquet)" in str(err.value)

    unknown = tmp_path / "unknown"
    unknown.mkdir()
    (unknown / "a.csv").write_text("id,name\n1,Kahvila\n")
    (unknown / "README.txt").write_text("read me")
    with pytest.raises(UnknownFormatError, match=r"README\.txt in it is of a kind that cannot"):
        open_source(unknown)

    osm = tmp_path / "osm"
    osm.mkdir()
    (osm / "helsinki.osm.pbf").write_bytes(b"")
    with pytest.raises(
        InputError, match=r"a folder of OpenStreetMap extracts: give them one by one"
    ):
        open_source(osm)
