"""A folder read as one input: Spark's and DuckDB's outputs, Overture's releases."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from poiflow.config import SourceMapping
from poiflow.errors import InputError, SchemaMismatchError, UnknownFormatError
from poiflow.sources import OvertureSource, Source, TabularSource, open_source
from poiflow.sources.base import partition_values

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
    # The folders name each part's country, as a table partitioned by it is laid out.
    assert [r["address"]["country"] for r in rows] == ["FI", "FI", "SE", "SE"]


PARTITIONED = pa.table(
    {
        "id": ["1", "2", "3", "4", "5"],
        "name": ["Kahvila", "Baari", "Kirja", "Kukka", "Leipä"],
        "country": ["FI", None, "FI", "SE", "FI"],
        "city": ["Helsinki/Helsingfors", "Tallinn", "Espoo: keskus", "Åbo=Turku", "Helsinki"],
        "day": ["2024-05-01", "2024-05-01", "2024-05-02", "2024-05-02", "2024-05-01"],
        "phone": ["+358 9 1", None, None, "+46 8 2", None],
    }
)


def write_partitioned(writer: str, folder: Path) -> None:
    """Write ``PARTITIONED`` as a table partitioned by country, city and day: the three
    columns leave the files and become folders (``country=FI/city=Espoo%3A%20keskus/``)."""
    if writer == "pyarrow":
        pq.write_to_dataset(PARTITIONED, folder, partition_cols=["country", "city", "day"])
    else:
        import duckdb

        with duckdb.connect() as con:
            con.register("places", PARTITIONED)
            con.execute(
                f"COPY places TO '{folder}' (FORMAT PARQUET, PARTITION_BY (country, city, day))"
            )


@pytest.mark.parametrize("writer", ["pyarrow", "duckdb"])
def test_a_table_partitioned_by_flat_fields_gets_them_back_from_its_folders(
    tmp_path: Path, writer: str
) -> None:
    folder = tmp_path / "vendor"
    write_partitioned(writer, folder)
    assert all("country" not in pq.read_schema(f).names for f in folder.rglob("*.parquet"))
    rows = {r["id"]: r for r in read(open_source(folder))}
    expected = PARTITIONED.to_pylist()
    assert sorted(rows) == [e["id"] for e in expected]
    for row in expected:
        address = rows[row["id"]]["address"]
        # A null partition (Hive's __HIVE_DEFAULT_PARTITION__) is a missing country.
        assert (address["country"], address["locality"]) == (row["country"], row["city"])
    # "day" is not a flat field: it lays the files out and is not read, and is no error.
    originals = [b.original for b in open_source(folder).batches()]
    assert all(set(o.column_names) == {"id", "name", "phone", "country", "city"} for o in originals)


def test_a_mapping_reads_a_folders_value_as_it_reads_a_column(tmp_path: Path) -> None:
    folder = tmp_path / "feed"
    (folder / "kunta=Espoo" / "erä=3").mkdir(parents=True)
    (folder / "country=SE" / "kunta=Vantaa").mkdir(parents=True)
    (folder / "kunta=Espoo" / "erä=3" / "part-0.csv").write_text("tunnus,nimi\n1,Kahvila\n")
    # The file's own column comes before the folder's value of the same name.
    (folder / "country=SE" / "kunta=Vantaa" / "part-0.csv").write_text(
        "tunnus,nimi,country\n2,Baari,FI\n"
    )
    mapping = SourceMapping(
        columns={"id": "tunnus", "name": "nimi", "city": "kunta"}, ignore=("erä",)
    )
    source = TabularSource(folder, mapping)
    rows = read(source)
    assert [(r["id"], r["address"]["locality"], r["address"]["country"]) for r in rows] == [
        ("2", "Vantaa", "FI"),
        ("1", "Espoo", None),
    ]
    originals = [batch.original for batch in source.batches()]
    assert "erä" not in originals[0].column_names
    assert originals[1].column("erä").to_pylist() == ["3"]

    # A flat field the mapping reads from another column, or sets, is not read from a folder.
    coded = tmp_path / "coded" / "country=SE"
    coded.mkdir(parents=True)
    (coded / "part-0.csv").write_text("tunnus,nimi,maa\n1,Kahvila,NO\n")
    for other in (
        SourceMapping(columns={"id": "tunnus", "name": "nimi", "country": "maa"}),
        SourceMapping(
            columns={"id": "tunnus", "name": "nimi"}, constants={"country": "NO"}, ignore=("maa",)
        ),
    ):
        (row,) = read(TabularSource(coded.parent, other))
        assert row["address"]["country"] == "NO"


@settings(max_examples=60, deadline=None)
@given(
    values=st.dictionaries(
        st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=8),
        st.text(st.characters(blacklist_categories=("Cs",)), max_size=12),
        max_size=3,
    )
)
def test_partition_values_read_what_writers_escape(values: dict[str, str]) -> None:
    root = Path("/data/feed")
    file = root.joinpath(
        *(f"{quote(key, safe='')}={quote(value, safe='')}" for key, value in values.items()),
        "part-0.parquet",
    )
    assert partition_values(root, file) == values
    assert partition_values(file, file) == {}
    hive_null = root / "country=__HIVE_DEFAULT_PARTITION__" / "not-a-key" / "part-0.csv"
    assert partition_values(root, hive_null) == {"country": None}


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
