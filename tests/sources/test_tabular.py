from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from poiflow.config import CsvOptions, SourceMapping
from poiflow.errors import (
    CorruptInputError,
    InputError,
    SchemaMismatchError,
    UnknownFormatError,
)
from poiflow.sources import TabularSource, open_source
from poiflow.sources.flat import FlatFormat
from poiflow.sources.tabular import tabular_format


def records(source: TabularSource) -> tuple[list[dict], list[tuple[str, str, str]]]:
    rows: list[dict] = []
    rejected: list[tuple[str, str, str]] = []
    for batch in source.batches(batch_size=3):
        rows += batch.records.to_pylist()
        rejected += batch.rejected
    return rows, rejected


def test_flat_csv_with_bad_rows_keeps_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "acme.csv"
    path.write_text(
        "id,name,lat,lon,phone,city\n"  # line 1
        "1,Cafe One,60.1,24.9,09 123,Helsinki\n"  # 2
        "2,Short row\n"  # 3: too few columns
        "\n"  # 4: blank: an empty row
        '3,Comma Decimal,"60,2","24,8",,\n'  # 5
        "4,Bad Lat,north,24.9,,\n"  # 6
        "5,Too,many,columns,here,x,y\n"  # 7
        "6,Last,60.3,24.7,,\n",  # 8
        encoding="utf-8",
    )
    rows, rejected = records(TabularSource(path))
    assert [r["id"] for r in rows] == ["1", "3", "4", "6"]
    assert [r["origin"] for r in rows] == ["acme.csv:2", "acme.csv:5", "acme.csv:6", "acme.csv:8"]
    assert [r[0] for r in rejected] == ["acme.csv:3", "acme.csv:7", "acme.csv:4"]
    assert rejected[0][1] == "expected 6 columns, found 2"
    assert rejected[0][2] == "2,Short row"
    assert rows[0]["source"] == "acme"
    assert rows[0]["phones"] == ["09 123"]
    assert rows[0]["address"]["locality"] == "Helsinki"
    assert (rows[1]["lat"], rows[1]["lon"]) == (60.2, 24.8)
    assert rows[2]["lat"] is None
    assert rows[2]["issues"] == ["lat: 'north' is not a number"]


_VALUE = st.text(alphabet="ab ,\"'\n;é", max_size=12)


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.booleans(), _VALUE, _VALUE).filter(lambda r: r[1].strip(" \n")),
        min_size=1,
        max_size=40,
    ),
    block=st.sampled_from([64, 256, 4 << 20]),
)
def test_each_row_is_named_by_the_line_it_starts_on(
    tmp_path_factory: pytest.TempPathFactory,
    rows: list[tuple[bool, str, str]],
    block: int,
) -> None:
    # Quoted values may span lines (a spreadsheet's address) and rows may have the
    # wrong number of values; every row is kept or quarantined, named by its first line,
    # whichever of Arrow's blocks it falls in.
    import csv
    import io

    path = tmp_path_factory.mktemp("lines") / "feed.csv"
    text, starts = io.StringIO(), []
    writer = csv.writer(text, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(["id", "name", "city"])
    for i, (ragged, name, city) in enumerate(rows):
        starts.append(text.getvalue().count("\n") + 1)
        writer.writerow([str(i), name, city, "extra"] if ragged else [str(i), name, city])
    path.write_text(text.getvalue(), encoding="utf-8")
    source = TabularSource(path)
    kept, rejected = [], []
    for _, origins, skipped in source._csv(path, 7, block=block):
        kept += origins
        rejected += [origin for origin, _, _ in skipped]
    assert sorted(kept + rejected, key=lambda o: int(o.split(":")[1])) == [
        f"feed.csv:{line}" for line in starts
    ]
    assert rejected == [f"feed.csv:{starts[i]}" for i, row in enumerate(rows) if row[0]]
    records_read, _ = records(source)
    assert [r["names"]["primary"] for r in records_read] == [
        name.strip() for ragged, name, _ in rows if not ragged
    ]


@pytest.mark.parametrize(
    ("body", "kept"),
    [
        # Every row of the wrong width: Arrow yields no batch at all.
        ("1,Short\n2,Bar,60.1,24.9,,,extra\n", []),
        # The last row bad, after the last batch.
        ("1,Cafe,60.1,24.9\n2,Bar,60.1,24.9,extra\n", ["1"]),
    ],
)
def test_rows_skipped_with_no_batch_after_them_are_not_lost(
    tmp_path: Path, body: str, kept: list[str]
) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text("id,name,lat,lon\n" + body, encoding="utf-8")
    rows, rejected = records(TabularSource(path))
    assert [r["id"] for r in rows] == kept
    lines = body.splitlines()
    assert len(rows) + len(rejected) == len(lines)
    bad = [(f"ragged.csv:{n}", text) for n, text in enumerate(lines, 2) if text.count(",") != 3]
    assert [(origin, text) for origin, _, text in rejected] == bad
    assert all(reason.startswith("expected 4 columns, found ") for _, reason, _ in rejected)


def test_source_column_wins_over_file_stem(tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    path.write_text("source,id,name\nyelpish,1,A\n,2,B\n", encoding="utf-8")
    rows, _ = records(TabularSource(path))
    assert [r["source"] for r in rows] == ["yelpish", "mixed"]


def test_jsonl_with_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "feed.jsonl"
    path.write_text(
        json.dumps({"id": 1, "name": "A", "lat": 60.1, "lon": 24.9})
        + "\n"
        + "{not json\n"
        + "[1, 2]\n"
        + "\n"
        + json.dumps({"id": "x", "name": "B", "update_time": "2024-05-01T12:00:00Z"})
        + "\n",
        encoding="utf-8",
    )
    rows, rejected = records(TabularSource(path))
    assert [(r["id"], r["origin"]) for r in rows] == [("1", "feed.jsonl:1"), ("x", "feed.jsonl:5")]
    assert rows[0]["lat"] == 60.1
    assert rows[1]["update_time"].year == 2024
    assert [(o, reason.split(":")[0]) for o, reason, _ in rejected] == [
        ("feed.jsonl:2", "not JSON"),
        ("feed.jsonl:3", "expected a JSON object, found list"),
    ]


def test_parquet_with_numeric_columns(tmp_path: Path) -> None:
    path = tmp_path / "vendor.parquet"
    pq.write_table(
        pa.table({"id": [1, 2], "name": ["A", "B"], "lat": [60.1, None], "lon": [24.9, None]}), path
    )
    source = open_source(path)
    assert isinstance(source, TabularSource)
    assert source.size_hint() == 2
    rows, _ = records(source)
    assert [(r["id"], r["lat"], r["origin"]) for r in rows] == [
        ("1", 60.1, "vendor.parquet#row=0"),
        ("2", None, "vendor.parquet#row=1"),
    ]


def test_parquet_with_text_as_bytes_reads_as_text(tmp_path: Path) -> None:
    # Parquet files of older tools store text as plain bytes, unannotated.
    path = tmp_path / "bytes.parquet"
    pq.write_table(pa.table({"id": [b"1"], "name": ["Café".encode()], "lat": [60.1]}), path)
    rows, _ = records(open_source(path))
    assert [(r["id"], r["names"]["primary"]) for r in rows] == [("1", "Café")]


@pytest.mark.parametrize(
    ("column", "values", "said"),
    [
        ("name", [["Cafe"], ["Bar"]], "column 'name' holds list<element: string> values"),
        ("phone", [{"n": "09 1"}, {"n": "09 2"}], "column 'phone' holds struct<n: string> values"),
        (
            "name",
            ["Café".encode("latin-1"), b"Bar"],
            "column 'name' holds bytes that are not UTF-8",
        ),
    ],
)
def test_a_column_no_flat_field_can_hold_is_refused_by_name(
    tmp_path: Path, column: str, values: list, said: str
) -> None:
    path = tmp_path / "nested.parquet"
    table = {"id": ["1", "2"], "name": ["Cafe", "Bar"]} | {column: values}
    pq.write_table(pa.table(table), path)
    with pytest.raises(SchemaMismatchError, match=said) as caught:
        records(open_source(path))
    assert caught.value.path == str(path)


def test_mapping_renames_and_adds_constants(tmp_path: Path) -> None:
    path = tmp_path / "raw.csv"
    path.write_text(
        "vendor_id;business_name;latitude;longitude;score\n7;Kahvila;60.1;24.9;3\n",
        encoding="latin-1",
    )
    mapping = SourceMapping(
        source="acme",
        columns={"id": "vendor_id", "name": "business_name", "lat": "latitude", "lon": "longitude"},
        constants={"country": "FI"},
        ignore=("score",),
        csv=CsvOptions(delimiter=";", encoding="latin-1"),
    )
    rows, _ = records(TabularSource(path, mapping))
    assert rows[0]["source"] == "acme"
    assert rows[0]["id"] == "7"
    assert rows[0]["names"]["primary"] == "Kahvila"
    assert rows[0]["address"]["country"] == "FI"


@pytest.mark.parametrize("rows", [3, 200], ids=["few", "many"])
def test_a_mappings_categories_read_the_feeds_own_codes(tmp_path: Path, rows: int) -> None:
    """A few rows are read value by value, many column-wise: both map the codes, and keep
    each record's own label as its source category."""
    path = tmp_path / "codes.csv"
    codes = ["5812", " 5814 ", "Kahvila"]
    lines = [f"{i},Place {i},{codes[i % 3]}" for i in range(rows)]
    path.write_text("id,name,category\n" + "\n".join(lines) + "\n", encoding="utf-8")
    mapping = SourceMapping(categories={"5812": "restaurant", "5814": "fast_food_restaurant"})
    found, _ = records(TabularSource(path, mapping))
    assert [r["categories"]["primary"] for r in found[:3]] == [
        "restaurant",
        "fast_food_restaurant",
        "Kahvila",  # not listed: read as any label is (the taxonomy's "cafe")
    ]
    assert [r["source_category"] for r in found[:3]] == ["5812", "5814", "Kahvila"]
    assert len(found) == rows


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_a_file_of_another_delimiter_is_read_by_it(tmp_path: Path, delimiter: str) -> None:
    # As Europe's spreadsheets write it: ';' between values, commas in the numbers.
    path = tmp_path / "export.csv"
    lines = [["id", "name", "lat", "lon", "city"], ["1", "Kahvila, Aalto", "60,1", "24,9", ""]]
    lines.append(["2", "Baari", "60.2", "24.8", "Espoo"])
    cells = [[f'"{c}"' if "," in c and delimiter != ";" else c for c in row] for row in lines]
    path.write_text("\n".join(delimiter.join(row) for row in cells) + "\n", encoding="utf-8")
    rows, rejected = records(TabularSource(path))
    assert rejected == []
    assert [(r["id"], r["names"]["primary"]) for r in rows] == [
        ("1", "Kahvila, Aalto"),
        ("2", "Baari"),
    ]
    assert [(r["lat"], r["lon"]) for r in rows] == [(60.1, 24.9), (60.2, 24.8)]
    assert rows[1]["address"]["locality"] == "Espoo"
    assert [r["origin"] for r in rows] == ["export.csv:2", "export.csv:3"]


def test_a_delimiter_the_mapping_names_is_not_second_guessed(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_text("id;name\n1;A\n", encoding="utf-8")
    mapping = SourceMapping(csv=CsvOptions(delimiter=","))
    with pytest.raises(SchemaMismatchError, match="unknown column 'id;name'"):
        records(TabularSource(path, mapping))


def test_unknown_column_is_refused_with_a_suggestion(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_text("id,name,postal_code\n1,A,00100\n", encoding="utf-8")
    with pytest.raises(SchemaMismatchError, match="unknown column 'postal_code'") as err:
        records(TabularSource(path))
    assert "Did you mean 'postcode'?" in str(err.value)
    assert err.value.path == str(path)
    # Every unknown column at once, each with the field it may mean: a flat field that is
    # a word of its name first ("Phone Number": phone), then the closest spelling.
    path.write_text("id,name,Phone Number,postal_code,colour_code\n1,A,1,2,3\n", encoding="utf-8")
    with pytest.raises(SchemaMismatchError) as err:
        records(TabularSource(path))
    assert str(err.value).split(" The flat place format")[0] == (
        f"{path}: unknown columns 'Phone Number' (did you mean 'phone'?), 'postal_code' "
        "(did you mean 'postcode'?), 'colour_code'."
    )


def test_mapping_names_a_missing_column(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_text("id,business_name\n1,A\n", encoding="utf-8")
    mapping = SourceMapping(columns={"name": "busines_name"})
    with pytest.raises(SchemaMismatchError, match="Did you mean 'business_name'"):
        records(TabularSource(path, mapping))


@pytest.mark.parametrize(
    ("header", "kind"),
    [
        ("id,name,latitude,longitude", "csv"),
        ("ID,Name,Latitude,Longitude", "csv"),
        ("id,name,lat,lng", "csv"),
        ("id,name,Latitude,Lng", "parquet"),
    ],
)
def test_the_coordinates_other_names_are_read_as_lat_and_lon(
    tmp_path: Path, header: str, kind: str
) -> None:
    # A spreadsheet's Latitude and Longitude, a web map's lng: the same point as lat, lon.
    columns = header.split(",")
    values = ["1", "Kahvila", "60.1699", "24.9384"]
    path = tmp_path / f"f.{kind}"
    if kind == "csv":
        path.write_text(f"{header}\n{','.join(values)}\n", encoding="utf-8")
    else:
        pq.write_table(pa.table({c: [v] for c, v in zip(columns, values, strict=True)}), path)
    [record], held = records(TabularSource(path))
    assert held == []
    assert (record["lat"], record["lon"]) == (60.1699, 24.9384)


@pytest.mark.parametrize(
    ("header", "said"),
    [
        (
            "id,name,lat,lon,latitude",
            "column 'latitude' is another name of 'lat', which the file gives too",
        ),
        (
            "id,name,lat,longitude,lng",
            "column 'lng' is the flat field 'lon', as column 'longitude' is; add 'lng' to the "
            "mapping's 'ignore:' list",
        ),
    ],
)
def test_two_columns_of_one_coordinate_are_refused(tmp_path: Path, header: str, said: str) -> None:
    path = tmp_path / "f.csv"
    path.write_text(f"{header}\n1,A,60.1,24.9,24.8\n", encoding="utf-8")
    with pytest.raises(SchemaMismatchError, match=said):
        records(TabularSource(path))
    ignored = header.split(",")[-1]
    [record], _ = records(TabularSource(path, SourceMapping(ignore=(ignored,))))
    assert (record["lat"], record["lon"]) == (60.1, 24.9)


def test_a_flat_field_mapped_from_another_column_and_present_itself(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_text("id,name,Country,maa\n1,A,FI,SE\n", encoding="utf-8")
    mapping = SourceMapping(columns={"country": "maa"})
    with pytest.raises(
        SchemaMismatchError,
        match="column 'Country' is the flat field 'country', which the mapping reads from "
        "column 'maa'; add 'Country' to the mapping's 'ignore:' list",
    ):
        records(TabularSource(path, mapping))
    mapping = SourceMapping(columns={"country": "maa"}, ignore=("Country",))
    assert records(TabularSource(path, mapping))[0][0]["address"]["country"] == "SE"


def test_required_columns_and_empty_files(tmp_path: Path) -> None:
    no_name = tmp_path / "a.csv"
    no_name.write_text("id,lat\n1,60\n", encoding="utf-8")
    with pytest.raises(SchemaMismatchError, match="no 'name' column"):
        records(TabularSource(no_name))
    empty = tmp_path / "b.csv"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(SchemaMismatchError, match="empty file"):
        records(TabularSource(empty))


def test_wrong_encoding_is_a_readable_error(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes("id,name\n1,Kahvila Ääni\n".encode("latin-1"))
    with pytest.raises(CorruptInputError, match="encoding"):
        records(TabularSource(path))


def test_unknown_suffix(tmp_path: Path) -> None:
    path = tmp_path / "places.docx"
    path.write_bytes(b"PK")
    with pytest.raises(UnknownFormatError, match="cannot tell"):
        open_source(path)


@pytest.mark.parametrize(
    ("suffix", "codec"), [(".gz", "gzip"), (".bz2", "bz2"), (".zst", "zstd"), (".zip", "zip")]
)
@pytest.mark.parametrize("kind", ["csv", "jsonl"])
def test_a_compressed_text_file_reads_as_the_plain_one(
    tmp_path: Path, kind: str, suffix: str, codec: str
) -> None:
    plain = tmp_path / f"feed.{kind}"
    if kind == "csv":
        rows = [f'{i},"Kahvila {i}, Ääni",60.{i},24.9' for i in range(1, 2000)]
        plain.write_text("id,name,lat,lon\n" + "\n".join([*rows, "8,Short row"]) + "\n", "utf-8")
    else:
        lines = [
            json.dumps({"id": str(i), "name": f"Kahvila {i}", "lat": 60.1}) for i in range(2000)
        ]
        plain.write_text("\n".join([*lines, "{not json"]) + "\n", "utf-8")
    packed = tmp_path / f"feed.{kind}{suffix}"
    if codec == "zip":  # as a vendor mails it: one file, and what macOS adds beside it
        with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.write(plain, plain.name)
            archive.writestr(f"__MACOSX/._{plain.name}", b"\x00")
    else:
        with pa.CompressedOutputStream(str(packed), codec) as out:
            out.write(plain.read_bytes())
    assert packed.stat().st_size < plain.stat().st_size / 3
    source = open_source(packed)
    assert isinstance(source, TabularSource)
    assert source.name == "feed"
    rows, rejected = records(source)
    # The same records and rejections, each at the same line of the file it names.
    assert rejected
    assert all(r[0].startswith(f"{packed.name}:") for r in rejected)
    assert all(r["origin"].startswith(f"{packed.name}:") for r in rows)
    named = [r | {"origin": r["origin"].replace(packed.name, plain.name)} for r in rows]
    unnamed = [(o.replace(packed.name, plain.name), *rest) for o, *rest in rejected]
    assert (named, unnamed) == records(TabularSource(plain))
    # Cut short: a readable error, not a traceback.
    cut = tmp_path / f"cut.{kind}{suffix}"
    cut.write_bytes(packed.read_bytes()[: packed.stat().st_size // 2])
    with pytest.raises(CorruptInputError) as err:
        records(TabularSource(cut))
    assert err.value.path == str(cut)


def test_a_zip_is_read_as_the_one_file_it_holds(tmp_path: Path) -> None:
    plain = tmp_path / "kohteet.csv"
    plain.write_text("id,name\n1,Kahvila\n2,Baari\n", "utf-8")
    packed = tmp_path / "toimitus.zip"  # the archive's name says nothing of what it holds
    with zipfile.ZipFile(packed, "w") as archive:
        archive.write(plain, "data/kohteet.csv")
    source = open_source(packed)
    assert isinstance(source, TabularSource)
    assert (source.format, source.name) == ("csv", "toimitus")
    assert [r["names"]["primary"] for r in records(source)[0]] == ["Kahvila", "Baari"]
    two = tmp_path / "kaksi.csv.zip"
    with zipfile.ZipFile(two, "w") as archive:
        archive.write(plain, "a.csv")
        archive.write(plain, "b.csv")
    with pytest.raises(
        CorruptInputError, match=r"holds one file; this one holds 2 \(a.csv, b.csv\)"
    ):
        records(open_source(two))
    broken = tmp_path / "rikki.csv.zip"
    broken.write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(CorruptInputError, match="not a readable zip archive"):
        records(open_source(broken))


def test_only_text_formats_are_read_compressed() -> None:
    assert tabular_format(Path("a.CSV.GZ")) == "csv"
    assert tabular_format(Path("a.tsv.zst")) == "tsv"
    assert tabular_format(Path("a.ndjson.bz2")) == "jsonl"
    assert tabular_format(Path("a.parquet.gz")) is None  # Parquet compresses inside
    assert tabular_format(Path("a.gz")) is None
    assert tabular_format(Path("a.xlsx.gz")) is None


_FIELDS = ("id", "name", "lat", "lon", "category", "city", "phone", "update_time", "source")
_VALUES = st.one_of(
    st.none(),
    st.text(max_size=12),  # any characters: whitespace of every kind, digits of any script
    st.sampled_from(
        (
            " 60.17 ",
            "24,94",
            "1e3",
            "-.5",
            "+3.",
            "1,2.3",
            "١٢",
            "2024-05-01",
            "2024-05-01T10:00",
            "2024-13-01",
            "2024-05-01T10:00Z",
            " \u3000 ",
            "\u2003x\u2003",
            "\x1cy\x1f",
            "60°10′05.7″N",
            "24 56.628 E",
            "S 33 52.1",
            "60 10",
        )
    ),
)


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(st.dictionaries(st.sampled_from(_FIELDS), _VALUES), min_size=1, max_size=6),
    constant=st.booleans(),
)
def test_a_few_rows_read_in_python_are_read_as_arrow_reads_them(
    rows: list[dict], constant: bool
) -> None:
    # A request of a few records is read value by value in Python; it must give the
    # columnar reader's records exactly, issues and all.
    columns = sorted({"id", "name"} | {k for row in rows for k in row})
    raw = pa.table({c: pa.array([row.get(c) for row in rows], pa.string()) for c in columns})
    mapping = SourceMapping(source="s", constants={"country": " FI "} if constant else {})
    reader = FlatFormat(mapping, "s", Path("s.jsonl"))
    origins = [f"row {i}" for i in range(len(rows))]
    resolved = reader.resolve(raw.column_names)
    few = reader._few_records(raw, origins, resolved)
    columnar = reader._columnar_records(raw, origins, resolved)
    assert few.equals(columnar), (few.to_pylist(), columnar.to_pylist())


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_a_byte_order_mark_is_not_part_of_the_first_column(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"excel{suffix}"
    text = "id,name\n1,Kahvila\n" if suffix == ".csv" else '{"id": "1", "name": "Kahvila"}\n'
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    rows, rejected = records(TabularSource(path))
    assert rejected == []
    assert [(r["id"], r["names"]["primary"]) for r in rows] == [("1", "Kahvila")]


def test_a_csv_is_told_to_be_of_osm_tags_even_when_its_first_row_is_long(tmp_path: Path) -> None:
    # The layout is told from the first rows, read from a CSV's first 256 KiB: a longer
    # row (a long text, a polygon as WKT) is read again in whole blocks, not refused.
    path = tmp_path / "tags.csv"
    long_text = "x" * 3_000_000  # under the 4 MiB of a whole block
    path.write_text(
        f"id,name,amenity,description\n1,Kahvila,cafe,{long_text}\n2,Baari,bar,\n", "utf-8"
    )
    source = open_source(path)
    assert source.kind == "CSV, OSM tags"
    rows, rejected = records(source)
    assert rejected == []
    expected = [("1", "amenity=cafe"), ("2", "amenity=bar")]
    assert [(r["id"], r["categories"]["primary"]) for r in rows] == expected


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_a_file_not_in_its_encoding_is_refused_at_its_line_with_the_way_to_read_it(
    tmp_path: Path, suffix: str
) -> None:
    rows = (
        ["id,name", "1,Kahvila", "2,Café Ö"]
        if suffix == ".csv"
        else ['{"id": "1", "name": "Kahvila"}', '{"id": "2", "name": "Café Ö"}']
    )
    path = tmp_path / f"windows{suffix}"
    path.write_bytes("\n".join(rows).encode("cp1252") + b"\n")
    with pytest.raises(CorruptInputError, match="byte 0xe9 at column") as caught:
        records(TabularSource(path))
    assert caught.value.location == str(len(rows))
    assert "csv: {encoding: cp1252}" in str(caught.value)
    mapping = SourceMapping(csv=CsvOptions(encoding="cp1252"))
    read, _ = records(TabularSource(path, mapping))
    assert [r["names"]["primary"] for r in read] == ["Kahvila", "Café Ö"]


def test_a_line_not_utf8_after_the_first_block_says_how_to_read_the_file(tmp_path: Path) -> None:
    path = tmp_path / "late.csv"
    lines = ["id,name"] + [f"{i},Kahvila {i}" for i in range(20_000)] + ["20000,Café"]
    path.write_bytes("\n".join(lines).encode("cp1252") + b"\n")
    with pytest.raises(CorruptInputError, match=r"csv: \{encoding: cp1252\}") as caught:
        records(TabularSource(path))
    assert caught.value.location == str(len(lines))  # its line, though Arrow found it
    assert "byte 0xe9 at column 10" in str(caught.value)


def test_a_row_of_the_wrong_width_not_utf8_is_refused_at_its_line_as_not_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Arrow decodes a row of the wrong width before it hands it over to be skipped; where
    # the row is not UTF-8 that fails inside Arrow, which then gives up on the whole file
    # as a "parse error". The file is not text, and the answer says so, where.
    printed: list[object] = []
    monkeypatch.setattr(sys, "unraisablehook", printed.append)
    path = tmp_path / "late.csv"
    lines = [b"id,name,city"] + [b"%d,Kahvila %d,Helsinki" % (i, i) for i in range(2_000)]
    lines.append(b"2000,Caf\xe9 \xfb")  # a value short, and two bytes not UTF-8
    path.write_bytes(b"\n".join([*lines, b"2001,Baari,Espoo"]) + b"\n")
    with pytest.raises(CorruptInputError, match="byte 0xe9 at column 9") as caught:
        records(TabularSource(path))
    assert caught.value.location == str(len(lines))
    assert "csv: {encoding: cp1252}" in str(caught.value)
    assert "delimiter" not in str(caught.value)
    assert printed == []  # no "Exception ignored" and a traceback on the terminal


def test_what_means_missing_in_a_csv_is_the_mappings_to_say(tmp_path: Path) -> None:
    # R and spreadsheets write NA and #N/A for a missing value; in a feed of Namibia's
    # places 'NA' is the country.
    path = tmp_path / "windhoek.csv"
    path.write_text("id,name,country,phone\n1,Craft,NA,#N/A\n2,NA,NA,NULL\n", encoding="utf-8")
    rows, _ = records(TabularSource(path))
    assert [(r["names"]["primary"], r["address"]["country"], r["phones"]) for r in rows] == [
        ("Craft", None, None),
        (None, None, None),
    ]
    mapping = SourceMapping.model_validate({"csv": {"missing": ["#N/A", "NULL"]}})
    rows, _ = records(TabularSource(path, mapping))
    assert [(r["names"]["primary"], r["address"]["country"], r["phones"]) for r in rows] == [
        ("Craft", "NA", None),
        ("NA", "NA", None),
    ]


@pytest.mark.parametrize("crs", ["EPSG:3067", "EPSG:3857"])  # Finland's TM35FIN, web maps'
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_lat_and_lon_in_another_coordinate_system_are_reprojected_by_the_mappings_crs(
    tmp_path: Path, crs: str, suffix: str
) -> None:
    import pyproj

    points = [(60.1699, 24.9384), (65.0121, 25.4651), (None, None)]  # Helsinki, Oulu, none
    to_metres = pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    northing = [None if lat is None else to_metres.transform(lon, lat)[1] for lat, lon in points]
    easting = [None if lat is None else to_metres.transform(lon, lat)[0] for lat, lon in points]
    table = pa.table({"id": ["1", "2", "3"], "name": ["A", "B", "C"], "y": northing, "x": easting})
    path = tmp_path / f"metres{suffix}"
    if suffix == ".csv":
        rows = [
            f"{i},{n},{'' if y is None else y},{'' if x is None else x}"
            for i, n, y, x in zip(table["id"].to_pylist(), "ABC", northing, easting, strict=True)
        ]
        path.write_text("id,name,y,x\n" + "\n".join(rows) + "\n", encoding="utf-8")
    else:
        pq.write_table(table, path)
    mapping = SourceMapping(columns={"lat": "y", "lon": "x"}, crs=crs)
    rows, rejected = records(TabularSource(path, mapping))
    assert rejected == []
    for row, (lat, lon) in zip(rows, points, strict=True):
        if lat is None:
            assert (row["lat"], row["lon"]) == (None, None)
        else:
            assert row["lat"] == pytest.approx(lat, abs=1e-7)
            assert row["lon"] == pytest.approx(lon, abs=1e-7)


def test_a_crs_is_refused_where_it_is_not_known_or_the_points_are_a_geometry(
    tmp_path: Path,
) -> None:
    feed = tmp_path / "feed.csv"
    feed.write_text("id,name,lat,lon\n1,A,6672469,385785\n", encoding="utf-8")
    with pytest.raises(CorruptInputError, match="not one PROJ knows") as err:
        TabularSource(feed, SourceMapping(crs="EPSG:999999"))
    assert err.value.path == str(feed)
    features = tmp_path / "places.geojson"
    features.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "geometry": {"type": "Point", "coordinates": [24.94, 60.17]},
                        "properties": {"id": "1", "name": "A"},
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    with pytest.raises(InputError, match="leave crs out, or map the lat and lon columns"):
        TabularSource(features, SourceMapping(crs="EPSG:3067"))
    wkt = tmp_path / "export.csv"
    wkt.write_text('id,name,WKT\n1,A,"POINT (24.94 60.17)"\n', encoding="utf-8")
    with pytest.raises(InputError, match="its geometry column 'WKT'"):
        records(TabularSource(wkt, SourceMapping(crs="EPSG:3067")))


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".jsonl"])
def test_a_file_saved_as_unicode_text_is_read_as_utf16_by_its_byte_order_mark(
    tmp_path: Path, suffix: str
) -> None:
    """A spreadsheet's "Unicode text" is UTF-16 with a byte-order mark (and tabs)."""
    import gzip

    if suffix == ".jsonl":
        text = "".join(
            json.dumps({"id": i, "name": n, "lat": 60.17, "lon": 24.94}, ensure_ascii=False) + "\n"
            for i, n in (("1", "Café Aalto"), ("2", "Ravintola Sävel"))
        )
    else:
        text = "id\tname\tlat\tlon\n1\tCafé Aalto\t60.17\t24.94\n2\tRavintola Sävel\t60,18\t24,95\n"
    data = text.encode("utf-16")
    assert data[:2] in (b"\xff\xfe", b"\xfe\xff")
    path = tmp_path / f"unicode{suffix}"
    path.write_bytes(gzip.compress(data) if suffix.endswith(".gz") else data)
    rows, rejected = records(TabularSource(path))
    assert rejected == []
    assert [r["names"]["primary"] for r in rows] == ["Café Aalto", "Ravintola Sävel"]
    first = 1 if suffix == ".jsonl" else 2  # a CSV's header is its first line
    assert [r["origin"] for r in rows] == [
        f"unicode{suffix}:{first}",
        f"unicode{suffix}:{first + 1}",
    ]


def test_a_constant_a_table_of_tags_cannot_take_is_refused_naming_the_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "tags.csv"
    path.write_text("id,name,amenity,lat,lon\n1,Kahvila,cafe,60.1,24.9\n", encoding="utf-8")
    mapping = SourceMapping(constants={"category": "cafe"})
    with pytest.raises(SchemaMismatchError, match="not for category") as err:
        records(TabularSource(path, mapping))
    assert err.value.path == str(path)
