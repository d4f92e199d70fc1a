from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from poiflow.config import OsmOptions
from poiflow.errors import CorruptInputError, InputError
from poiflow.schema import SOURCE_RECORD_SCHEMA
from poiflow.sources import OsmSource, open_source
from poiflow.sources.osm import SHAPE_CHUNKS, _tag_list


def read_all(source: OsmSource, batch_size: int = 50_000) -> pa.Table:
    return pa.concat_tables(b.records for b in source.batches(batch_size))


def test_helsinki_yields_every_named_poi(helsinki_pbf: Path) -> None:
    table = read_all(OsmSource(helsinki_pbf))
    assert table.schema.equals(SOURCE_RECORD_SCHEMA)
    assert table.num_rows > 1400
    kinds = Counter(i.split("/")[0] for i in table.column("id").to_pylist())
    assert kinds["node"] > 1300
    assert kinds["way"] > 40
    assert kinds["relation"] >= 1
    assert len(set(table.column("id").to_pylist())) == table.num_rows
    names = pc.struct_field(table.column("names"), "primary")
    assert pc.all(pc.greater(pc.utf8_length(names), 0)).as_py()
    # Everything lies in central Helsinki, ways and relations included (centroids, not 0/0).
    assert pc.min(table.column("lat")).as_py() > 60.1
    assert pc.max(table.column("lat")).as_py() < 60.3
    assert pc.min(table.column("lon")).as_py() > 24.8
    assert pc.max(table.column("lon")).as_py() < 25.1


def test_tags_map_to_fields(helsinki_pbf: Path) -> None:
    rows = read_all(OsmSource(helsinki_pbf)).to_pylist()
    with_sv = [
        r for r in rows if any(a["language"] == "sv" for a in r["names"]["alternates"] or [])
    ]
    assert len(with_sv) > 100
    assert sum(1 for r in rows if r["address"] and r["address"]["street"]) > 900
    assert sum(1 for r in rows if r["phones"]) > 300
    assert sum(1 for r in rows if r["opening_hours"]) > 500
    assert all(
        r["categories"]["primary"].split("=")[0]
        in ("amenity", "shop", "tourism", "leisure", "office", "craft", "healthcare")
        for r in rows
    )


def test_batches_are_bounded_and_complete(helsinki_pbf: Path) -> None:
    batches = list(OsmSource(helsinki_pbf).batches(200))
    assert all(b.records.num_rows <= 200 for b in batches)
    assert sum(b.records.num_rows for b in batches) == read_all(OsmSource(helsinki_pbf)).num_rows
    # The nodes' batches from 0, then the ways' and multipolygons' from SHAPE_CHUNKS.
    chunks = [b.chunk for b in batches]
    nodes = [c for c in chunks if c < SHAPE_CHUNKS]
    assert nodes == list(range(len(nodes)))
    assert chunks[len(nodes) :] == [SHAPE_CHUNKS + i for i in range(len(chunks) - len(nodes))]
    for batch in batches:
        kinds = {i.split("/")[0] for i in batch.records.column("id").to_pylist()}
        assert kinds == {"node"} if batch.chunk < SHAPE_CHUNKS else kinds <= {"way", "relation"}


def test_partitions_split_the_batches_and_cover_them_all(helsinki_pbf: Path) -> None:
    whole = list(OsmSource(helsinki_pbf).batches(100))
    nodes = sum(b.chunk < SHAPE_CHUNKS for b in whole)
    halves = [list(OsmSource(helsinki_pbf).batches(100, part=p, parts=2)) for p in (0, 1)]
    # The nodes' batches alternate; the last partition alone reads ways and multipolygons.
    assert [b.chunk for b in halves[0]] == list(range(0, nodes, 2))
    assert [b.chunk for b in halves[1]] == [
        *range(1, nodes, 2),
        *(b.chunk for b in whole[nodes:]),
    ]
    merged = sorted(halves[0] + halves[1], key=lambda b: b.chunk)
    assert [b.records.equals(w.records) for b, w in zip(merged, whole, strict=True)] == [
        True
    ] * len(whole)


def test_options_narrow_the_objects(helsinki_pbf: Path) -> None:
    shops = read_all(
        OsmSource(helsinki_pbf, OsmOptions(keys=("shop",), ways=False, relations=False))
    )
    assert 400 < shops.num_rows < 600
    assert all(i.startswith("node/") for i in shops.column("id").to_pylist())


def test_truncated_pbf_is_refused(helsinki_pbf: Path, tmp_path: Path) -> None:
    truncated = tmp_path / "cut.osm.pbf"
    truncated.write_bytes(helsinki_pbf.read_bytes()[:300_000])
    with pytest.raises(CorruptInputError, match="truncated") as err:
        read_all(OsmSource(truncated))
    assert err.value.path == str(truncated)


def test_garbage_and_missing_files(tmp_path: Path) -> None:
    garbage = tmp_path / "x.osm.pbf"
    garbage.write_bytes(b"definitely not protobuf" * 20)
    with pytest.raises(CorruptInputError):
        read_all(OsmSource(garbage))
    with pytest.raises(InputError, match="no such file"):
        open_source(tmp_path / "missing.osm.pbf")


def test_small_extract_from_shared_data(small_pbf: Path) -> None:
    table = read_all(OsmSource(small_pbf))
    assert 5 <= table.num_rows <= 40


def test_node_locations_on_disk_give_the_same_places_and_are_removed(
    helsinki_pbf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the file goes
    seen: list[Path] = []
    source = OsmSource(helsinki_pbf, OsmOptions(locations="disk"))
    batches = []
    for batch in source.batches(500):
        seen += list(tmp_path.glob("poiflow-nodes-*/nodes.idx"))
        batches.append(batch.records)
    assert seen  # held in a file while the extract was read ...
    assert list(tmp_path.iterdir()) == []  # ... and removed after
    on_disk = pa.concat_tables(batches)
    assert on_disk.equals(read_all(OsmSource(helsinki_pbf), 500))
    ways = pc.starts_with(on_disk.column("id"), "way/")
    assert pc.sum(ways).as_py() > 40  # placed from the locations the file held
    # Stopped half way (an error downstream), the file is removed all the same.
    first = next(OsmSource(helsinki_pbf, OsmOptions(locations="disk")).batches(100))
    assert first.records.num_rows
    import gc

    gc.collect()
    assert list(tmp_path.iterdir()) == []


def test_tags_read_by_count_are_the_tags_in_order(helsinki_pbf: Path) -> None:
    """``_tag_list`` reads pyosmium's tag lists by count, not through their iterator: the
    same pairs in the same order for nodes, ways, relations and assembled areas, and a
    tag list of another kind (without pyosmium's data) is read through its iterator."""
    import osmium

    kinds: Counter[str] = Counter()
    for obj in osmium.FileProcessor(str(helsinki_pbf)).with_areas():
        listed = [tuple(tag) for tag in _tag_list(obj.tags)]
        assert listed == [(tag.k, tag.v) for tag in obj.tags]
        kinds[obj.type_str()] += bool(listed)
    assert set(kinds) == {"n", "w", "r", "a"}
    assert min(kinds.values()) > 10
    plain = [("name", "Kahvila"), ("amenity", "cafe")]
    assert list(_tag_list(plain)) == plain
