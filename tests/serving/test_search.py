"""The embedded search index: typo-tolerant, prefix and transliterated matching, category
filter, ranking by distance and confidence, atomic rebuilds, and readable errors."""

from __future__ import annotations

import math
import os
import random
import re
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from poiflow.errors import InputError
from poiflow.schema import GOLDEN_PLACE_SCHEMA
from poiflow.serving import SearchIndex, build_search_index, output_index, ranking
from poiflow.serving import search as search_module
from poiflow.serving.opening import When, parse_when
from poiflow.text import fold

from ..conftest import HELSINKI, VENDOR_FEED, killed_outright, poiflow


def place(
    id: str,
    name: str,
    category: str,
    lat: float,
    lon: float,
    *,
    confidence: float = 0.8,
    alternates: tuple[str, ...] = (),
    brand: str | None = None,
    street: str | None = None,
    more_categories: tuple[str, ...] = (),
    hours: str | None = None,
) -> dict[str, Any]:
    return {
        "id": id,
        "names": {
            "primary": name,
            "alternates": [{"value": a, "language": None, "variant": None} for a in alternates],
        },
        "categories": {"primary": category, "alternate": list(more_categories)},
        "lat": lat,
        "lon": lon,
        "address": {"street": street, "locality": "Helsinki"} if street else None,
        "brand": {"name": brand, "wikidata": None} if brand else None,
        "confidence": confidence,
        "members": 1,
        "opening_hours": hours,
    }


PLACES = [
    place(
        "p1",
        "Stockmann",
        "department_store",
        60.1686,
        24.9418,
        street="Aleksanterinkatu",
        hours="Mo-Fr 10:00-20:00; Sa 10:00-18:00; Su 12:00-18:00; PH off",
    ),
    place("p2", "Jääpuiston kahvila", "cafe", 60.1590, 24.9220, hours="May-Sep 09:00-21:00"),
    place("p3", "Cafe Java", "cafe", 60.1700, 24.9400, confidence=0.5, hours="Mo-Fr 07:00-17:00"),
    place("p4", "Cafe Java", "cafe", 60.2500, 25.1000, confidence=0.5, hours="24/7"),
    place(
        "p5",
        "Москва кафе",
        "cafe",
        60.1650,
        24.9300,
        alternates=("Moscow Cafe",),
        hours='"by appointment"',
    ),
    place("p6", "Apteekki Bulevardi", "pharmacy", 60.1640, 24.9380, brand="Yliopiston Apteekki"),
    place("p7", "Hotel Kämp", "hotel", 60.1679, 24.9475, more_categories=("restaurant",)),
    place(
        "p8",
        "Ravintola Savoy",
        "restaurant",
        60.1672,
        24.9470,
        confidence=0.95,
        hours="Mo-Sa 11:00-23:00",
    ),
    place(
        "p9",
        "Ravintola Savoy",
        "restaurant",
        60.1672,
        24.9470,
        confidence=0.30,
        hours="Fr-Sa 22:00-04:00",
    ),
    place("p10", "北京饭店", "restaurant", 60.1600, 24.9500),
    # In New York: an instant is another hour of its clock than of Helsinki's.
    place("p12", "Cafe Java", "cafe", 40.7128, -74.0060, confidence=0.5, hours="Mo-Fr 07:00-17:00"),
]


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> SearchIndex:
    table = pa.Table.from_pylist(PLACES, schema=GOLDEN_PLACE_SCHEMA)
    return build_search_index(table, tmp_path_factory.mktemp("idx") / "search")


def ids(hits: list[Any]) -> list[str]:
    return [hit.id for hit in hits]


def test_every_place_is_indexed(index: SearchIndex) -> None:
    assert len(index) == len(PLACES)


# Queries and the place each must find first, whatever the backend.
FOUND_BY = [
    ("Stockmann", "p1"),
    ("stokman", "p1"),  # two typos in an eight-letter word
    ("STOCKMAN", "p1"),
    ("kahvila", "p2"),
    ("kahv", "p2"),  # the start of a word, for autocomplete
    ("jaapuiston", "p2"),  # accents folded
    ("москва", "p5"),
    ("moskva", "p5"),  # transliterated
    ("moscow", "p5"),  # an alternate name
    ("yliopiston apteekki", "p6"),  # the brand
    ("aleksanterinkatu", "p1"),  # the address
    ("bei jing", "p10"),  # Han transliterated a syllable a word
    ("北京", "p10"),
]


@pytest.mark.parametrize(("query", "expected"), FOUND_BY)
def test_a_place_is_found_by_its_words_typos_and_scripts(
    index: SearchIndex, query: str, expected: str
) -> None:
    assert index.search(query, limit=3)[0].id == expected


def test_words_that_match_nothing_find_nothing(index: SearchIndex) -> None:
    assert index.search("zzqxw") == []


def test_a_category_filter_keeps_only_that_category(index: SearchIndex) -> None:
    assert set(ids(index.search("", category="cafe"))) == {"p2", "p3", "p4", "p5", "p12"}
    # An alternate category counts too; a word that is elsewhere does not.
    assert set(ids(index.search("", category="restaurant"))) == {"p7", "p8", "p9", "p10"}
    assert ids(index.search("kahvila", category="pharmacy")) == []


def test_the_nearer_of_two_equal_names_ranks_first(index: SearchIndex) -> None:
    near_first = index.search("cafe java", near=(60.1700, 24.9400), limit=2)
    assert ids(near_first) == ["p3", "p4"]
    assert near_first[0].distance_km is not None
    assert near_first[0].distance_km < 0.01
    far_first = index.search("cafe java", near=(60.2500, 25.1000), limit=2)
    assert ids(far_first) == ["p4", "p3"]
    assert far_first[0].score > far_first[1].score


def test_the_more_confident_of_two_equal_places_ranks_first(index: SearchIndex) -> None:
    assert ids(index.search("ravintola savoy", limit=2)) == ["p8", "p9"]


def local(*parts: int) -> When:
    """A local time at each place (2026-12-11 is a Friday; Helsinki is UTC+2 in winter)."""
    return When(datetime(*parts))


def check_open_at(backend: Any) -> None:
    """What every backend finds open at a time, by ``PLACES``' opening hours."""
    friday_noon = local(2026, 12, 11, 12, 0)
    assert set(ids(backend.search("cafe java", open_at=friday_noon))) == {"p3", "p4", "p12"}
    assert ids(backend.search("cafe java", open_at=local(2026, 12, 13, 12, 0))) == ["p4"]
    # An instant is another hour in New York than in Helsinki.
    at = [parse_when(f"2026-12-11T{hour}Z") for hour in ("04:30", "05:30", "16:00")]
    assert set(ids(backend.search("cafe java", open_at=at[0]))) == {"p4"}
    assert set(ids(backend.search("cafe java", open_at=at[1]))) == {"p3", "p4"}
    assert set(ids(backend.search("cafe java", open_at=at[2]))) == {"p4", "p12"}
    # Friday's late hours run into Saturday; each place says when it closes.
    late = backend.search("ravintola savoy", open_at=local(2026, 12, 12, 2, 0))
    assert [(h.id, h.open_until) for h in late] == [("p9", "2026-12-12T04:00:00+02:00")]
    both = backend.search("ravintola savoy", open_at=local(2026, 12, 12, 22, 30))
    assert [(h.id, h.open_until) for h in both] == [
        ("p8", "2026-12-12T23:00:00+02:00"),
        ("p9", "2026-12-13T04:00:00+02:00"),
    ]
    assert backend.search("cafe java", open_at=friday_noon, near=(60.25, 25.1))[0].id == "p4"
    assert (
        backend.search("cafe java", open_at=friday_noon, near=(60.25, 25.1))[0].open_until is None
    )
    # Finland's public holidays: closed on Christmas Day, a Friday; open a week before.
    assert backend.search("stockmann", open_at=local(2026, 12, 25, 12, 0)) == []
    assert ids(backend.search("stockmann", open_at=local(2026, 12, 18, 12, 0))) == ["p1"]
    # Seasons: the park café opens in May.
    assert backend.search("kahvila", open_at=friday_noon) == []
    assert ids(backend.search("kahvila", open_at=local(2027, 6, 11, 12, 0))) == ["p2"]
    # A comment alone says nothing of when; no hours say nothing at all.
    assert backend.search("moskva", open_at=friday_noon) == []
    assert backend.search("bei jing", open_at=friday_noon) == []
    assert set(
        ids(backend.search("", category="restaurant", open_at=local(2026, 12, 12, 2, 0)))
    ) == {"p9"}
    # Without a time asked about, nothing is left out, and the hours are there to read.
    stockmann = backend.search("stockmann", limit=1)[0]
    assert (stockmann.opening_hours, stockmann.open_until) == (PLACES[0]["opening_hours"], None)


def test_only_places_open_at_a_time_are_found(index: SearchIndex) -> None:
    check_open_at(index)


def test_places_open_are_found_beyond_the_first_text_matches(tmp_path: Path) -> None:
    # 120 kiosks open only in summer pass the hour of the week, not the exact check; the
    # three open in December match the word less well, so they rank last.
    summer = [
        place(f"s{i}", "Kiosk", "kiosk", 60.17, 24.94, hours="May-Sep 09:00-21:00")
        for i in range(120)
    ]
    always = [
        place(f"a{i}", "Kiosk at the Central Railway Station", "kiosk", 60.17, 24.94)
        for i in range(3)
    ]
    for kiosk in always:
        kiosk["opening_hours"] = "09:00-21:00"
    table = pa.Table.from_pylist(summer + always, schema=GOLDEN_PLACE_SCHEMA)
    index = build_search_index(table, tmp_path / "search")
    assert {h.id for h in index.search("kiosk", limit=3)} <= {f"s{i}" for i in range(120)}
    found = index.search("kiosk", open_at=local(2026, 12, 11, 12, 0), limit=3)
    assert sorted(ids(found)) == ["a0", "a1", "a2"]


# 400 places scattered over 60 km x 55 km around Helsinki: pharmacies and cafés, most open
# on weekdays only, every third always.
NEARBY = [
    place(
        f"n{i}",
        f"Paikka {i}",
        "pharmacy" if i % 2 else "cafe",
        60.0 + random.Random(i).random() * 0.5,
        24.5 + random.Random(-i).random() * 1.0,
        hours="24/7" if i % 3 == 0 else "Mo-Fr 09:00-17:00",
    )
    for i in range(400)
]


def check_nearest(backend: Any) -> None:
    """With a point and no words, every backend finds the places nearest to it first."""
    here = (60.3, 25.0)

    def nearest(keep: Any, count: int) -> list[str]:
        kept = [p for p in NEARBY if keep(p)]
        kept.sort(key=lambda p: ranking.haversine_km(*here, p["lat"], p["lon"]))
        return [p["id"] for p in kept[:count]]

    pharmacy = backend.search("", category="pharmacy", near=here, limit=5)
    assert ids(pharmacy) == nearest(lambda p: p["categories"]["primary"] == "pharmacy", 5)
    assert ids(backend.search("", near=here, limit=12)) == nearest(lambda p: True, 12)
    sunday = local(2026, 12, 13, 12, 0)
    always = backend.search("", near=here, open_at=sunday, limit=4)
    assert ids(always) == nearest(lambda p: p["opening_hours"] == "24/7", 4)
    far = (61.5, 23.8)  # Tampere: nothing within 100 km
    assert (
        ids(backend.search("", near=far, limit=3))
        == [
            p["id"]
            for p in sorted(NEARBY, key=lambda p: ranking.haversine_km(*far, p["lat"], p["lon"]))
        ][:3]
    )


def test_with_a_point_and_no_words_the_nearest_places_come_first(nearby: SearchIndex) -> None:
    check_nearest(nearby)


@pytest.fixture(scope="module")
def nearby(tmp_path_factory: pytest.TempPathFactory) -> SearchIndex:
    table = pa.Table.from_pylist(NEARBY, schema=GOLDEN_PLACE_SCHEMA)
    return build_search_index(table, tmp_path_factory.mktemp("nearby") / "search")


@settings(max_examples=60, deadline=None)
@given(
    lat=st.floats(59.9, 60.6),
    lon=st.floats(24.3, 25.7),
    wanted=st.integers(1, 80),
)
def test_the_box_around_a_point_holds_the_places_nearest_to_it(
    nearby: SearchIndex, lat: float, lon: float, wanted: int
) -> None:
    import tantivy

    searcher = nearby._index.searcher()
    box = nearby._around(searcher, tantivy.Query.all_query(), (lat, lon), wanted)
    inside = {searcher.doc(a)["id"][0] for _, a in searcher.search(box, limit=1000).hits}
    by_distance = sorted(NEARBY, key=lambda p: ranking.haversine_km(lat, lon, p["lat"], p["lon"]))
    assert {p["id"] for p in by_distance[:wanted]} <= inside


# Sixty places named just "Pizza", 500-2,000 km from Helsinki, match "pizza" best of all;
# one pizzeria of a longer name is 300 m from the point asked about.
PIZZAS = [
    place(f"z{i}", "Pizza", "restaurant", 45.0 + i * 0.2, 5.0 + i * 0.1) for i in range(60)
] + [place("kamppi", "Pizza Hut Kamppi", "restaurant", 60.1680, 24.9310)]


def check_words_near(backend: Any) -> None:
    """With words and a point, every backend ranks the nearest matches too, not only the
    best matches of the whole index."""
    here = (60.1680, 24.9365)  # 300 m east of the pizzeria
    assert ids(backend.search("pizza", near=here, limit=3))[0] == "kamppi"
    # Without the point, the whole names come first.
    assert "kamppi" not in ids(backend.search("pizza", limit=10))


def test_with_words_and_a_point_the_nearest_matches_are_ranked_too(tmp_path: Path) -> None:
    table = pa.Table.from_pylist(PIZZAS, schema=GOLDEN_PLACE_SCHEMA)
    check_words_near(build_search_index(table, tmp_path / "search"))


def test_a_place_just_outside_the_box_beats_one_in_its_corner(tmp_path: Path) -> None:
    # 0.45 km north and east (0.64 km away), inside the first box (500 m each way); and
    # 0.55 km north, outside it but nearer.
    here = (60.0, 25.0)
    north = 1 / ranking.KM_PER_DEGREE
    east = north / math.cos(math.radians(60.0))
    corner = place("corner", "Kulma", "cafe", 60.0 + 0.45 * north, 25.0 + 0.45 * east)
    outside = place("outside", "Pohjoinen", "cafe", 60.0 + 0.55 * north, 25.0)
    table = pa.Table.from_pylist([corner, outside], schema=GOLDEN_PLACE_SCHEMA)
    index = build_search_index(table, tmp_path / "search")
    assert ids(index.search("", near=here, limit=1)) == ["outside"]
    import tantivy

    searcher = index._index.searcher()
    box = index._around(searcher, tantivy.Query.all_query(), here, 1)
    assert {searcher.doc(a)["id"][0] for _, a in searcher.search(box).hits} == {
        "corner",
        "outside",
    }


def test_the_limit_is_kept(index: SearchIndex) -> None:
    assert len(index.search("", category="cafe", limit=2)) == 2


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"text": "  ,.;  "}, "nothing to search for"),
        ({"text": "cafe", "limit": 0}, "limit must be between 1 and 1000"),
        ({"text": "cafe", "near": (91.0, 0.0)}, "not a point on the globe"),
        ({"text": "cafe", "near": (None, 24.9)}, "not a point on the globe"),
    ],
)
def test_bad_searches_say_what_is_wrong(
    index: SearchIndex, kwargs: dict[str, Any], says: str
) -> None:
    text = kwargs.pop("text")
    with pytest.raises(InputError, match=says):
        index.search(text, **kwargs)


@settings(max_examples=150)
@given(st.text(max_size=40))
def test_any_text_is_a_query_or_a_clear_error(index: SearchIndex, text: str) -> None:
    try:
        hits = index.search(text, limit=5)
    except InputError:
        assert not fold(text)  # only a query without words is refused
        return
    assert len(hits) <= 5
    assert all(hit.id in {p["id"] for p in PLACES} for hit in hits)
    assert hits == sorted(hits, key=lambda hit: -hit.score)


def test_a_folder_without_an_index_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="poiflow publish search"):
        SearchIndex(tmp_path)


def test_a_table_that_is_not_golden_places_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a golden places table: no categories, names"):
        build_search_index(pa.table({"id": ["a"], "lat": [1.0], "lon": [2.0]}), tmp_path / "s")


def test_a_failed_rebuild_leaves_the_old_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = pa.Table.from_pylist(PLACES, schema=GOLDEN_PLACE_SCHEMA)
    folder = tmp_path / "search"
    build_search_index(table, folder)

    real = search_module.search_documents

    def broken(places: Any, **kwargs: Any) -> Any:
        yield from real(places[:2], **kwargs)
        raise RuntimeError("disk gone")

    monkeypatch.setattr(search_module, "search_documents", broken)
    with pytest.raises(RuntimeError, match="disk gone"):
        build_search_index(table.slice(0, 3), folder)
    monkeypatch.setattr(search_module, "search_documents", real)
    assert len(SearchIndex(folder)) == len(PLACES)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["search"]  # nothing half-built left
    build_search_index(table.slice(0, 3), folder)
    assert len(SearchIndex(folder)) == 3


def test_an_outputs_index_answers_only_for_the_places_it_was_built_from(
    tmp_path: Path,
) -> None:
    """A later run into the folder writes other places: the index built before would
    name places that are gone and miss the new ones, so it is refused, saying why and
    how to build it again (or built anew, asked to). The same bytes written again (a run
    that changed nothing) keep it."""
    out = tmp_path / "out"
    out.mkdir()
    table = pa.Table.from_pylist(PLACES, schema=GOLDEN_PLACE_SCHEMA)
    pq.write_table(table, out / "places.parquet")
    with pytest.raises(InputError, match=r"no search index here: build one with `poiflow publ"):
        output_index(out)
    build_search_index(out / "places.parquet", out / "search")
    assert len(output_index(out)) == len(PLACES)
    assert output_index(out).search("savoy")
    # An index shipped without its places has nothing to be checked against: it answers.
    shutil.copytree(out / "search", tmp_path / "shipped" / "search")
    assert len(output_index(tmp_path / "shipped")) == len(PLACES)

    # A later run: other places, written beside and moved in, as a run does.
    pq.write_table(table.slice(0, 3), out / "later.parquet")
    os.replace(out / "later.parquet", out / "places.parquet")
    with pytest.raises(InputError, match="the places changed since this search index was bu"):
        output_index(out)
    with pytest.raises(InputError, match="build it again with `poiflow publish search"):
        output_index(out)
    assert output_index(out, build=True).search("savoy") == []  # gone with the later run
    assert len(output_index(out)) == 3

    # The same bytes again, at another time: still the places it was built from.
    marker = out / "search" / "poiflow-index.txt"
    before = marker.read_text()
    (out / "places.parquet").write_bytes((out / "places.parquet").read_bytes())
    os.utime(out / "places.parquet", ns=(1, 1))
    assert len(output_index(out)) == 3
    assert marker.read_text() != before  # its time remembered: not read again next time
    assert marker.read_text().split()[3] == before.split()[3]  # the same bytes' hash

    # An index of another version is built again too.
    marker.write_text("3\n")
    with pytest.raises(InputError, match="another poiflow version: build it again"):
        output_index(out)
    assert len(output_index(out, build=True)) == 3


def test_builders_of_one_folders_index_build_it_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The processes of a server that all find the index older than the places (a later
    run) build it one at a time: the first builds, the others open what it built."""
    from concurrent.futures import ThreadPoolExecutor

    out = tmp_path / "out"
    out.mkdir()
    pq.write_table(pa.Table.from_pylist(PLACES, schema=GOLDEN_PLACE_SCHEMA), out / "places.parquet")
    built: list[Path] = []
    real = search_module.build_search_index

    def counted(places: Any, folder: Path) -> SearchIndex:
        built.append(folder)
        return real(places, folder)

    monkeypatch.setattr(search_module, "build_search_index", counted)
    with ThreadPoolExecutor(4) as pool:
        found = list(pool.map(lambda _: len(output_index(out, build=True)), range(4)))
    assert found == [len(PLACES)] * 4
    assert built == [out / "search"]
    output_index(out, rebuild=True)  # as poiflow publish search: built whatever it was
    assert len(built) == 2
    assert sorted(p.name for p in out.iterdir()) == [".search.lock", "places.parquet", "search"]


def test_a_build_killed_outright_leaves_its_folder_for_the_next_build_to_remove(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    pq.write_table(pa.Table.from_pylist(PLACES, schema=GOLDEN_PLACE_SCHEMA), out / "places.parquet")
    places = str(out / "places.parquet")
    pid = killed_outright(
        "import os; from pathlib import Path; import poiflow.serving.search as search\n"
        "def dies(places, **kwargs):\n"
        "    yield from []; os.kill(os.getpid(), 9)\n"
        "search.search_documents = dies\n"
        f"search.build_search_index(Path({places!r}), Path({str(out / 'search')!r}))\n"
    )
    assert [p.name for p in out.glob(".search.*")] == [f".search.building-{pid}"]
    assert len(output_index(out, build=True)) == len(PLACES)
    assert sorted(p.name for p in out.iterdir()) == [".search.lock", "places.parquet", "search"]


@pytest.mark.slow
def test_helsinki_places_are_found_from_perturbed_names(tmp_path: Path) -> None:
    """Top-3 accuracy on queries made from the real names of central Helsinki, each with
    a typo, its case changed or its last letters not typed yet."""
    out = tmp_path / "out"
    done = poiflow("conflate", str(HELSINKI), str(VENDOR_FEED), "-o", str(out))
    assert done.returncode == 0, done.stderr
    published = poiflow("publish", "search", str(out))
    assert published.returncode == 0, published.stderr
    index = SearchIndex(out / "search")
    places = pq.read_table(out / "places.parquet").to_pylist()
    rng = random.Random(7)
    named = [p for p in places if p["names"] and len(fold(p["names"]["primary"] or "")) >= 6]
    sample = rng.sample(named, 200)
    found = 0
    for p in sample:
        name = p["names"]["primary"]
        query = _perturbed(name, rng)
        near = (p["lat"], p["lon"]) if rng.random() < 0.5 and p["lat"] is not None else None
        hits = index.search(query, near=near, limit=3)
        # A name several places share (a chain) counts when any of them is found.
        folded = fold(name)
        same = {
            q["id"] for q in places if q["names"] and fold(q["names"]["primary"] or "") == folded
        }
        found += any(hit.id in same for hit in hits)
    assert found / len(sample) >= 0.95, f"top-3 accuracy {found / len(sample):.2f}"
    shown = poiflow("search", str(out), "stockman", "--near", "60.17,24.94")
    assert shown.returncode == 0, shown.stderr
    assert "Stockmann" in shown.stdout + shown.stderr
    assert " km " in shown.stdout + shown.stderr  # how far from --near


def _perturbed(name: str, rng: random.Random) -> str:
    how = rng.choice(["typo", "case", "prefix"])
    if how == "case":
        return name.upper()
    if how == "prefix":  # the last word not typed to the end
        return name[: max(4, len(name) - 2)]
    letters = list(name)
    at = rng.randrange(1, len(letters) - 1)
    letters[at], letters[at + 1] = letters[at + 1], letters[at]  # two letters swapped
    return "".join(letters)


def test_the_cli_refuses_a_folder_without_places_or_index_and_a_bad_point(tmp_path: Path) -> None:
    done = poiflow("publish", "search", str(tmp_path))
    assert done.returncode == 1
    assert "no places.parquet here" in done.stdout + done.stderr
    done = poiflow("search", str(tmp_path), "cafe")
    assert done.returncode == 1
    assert "no search index here" in done.stdout + done.stderr
    table = pa.Table.from_pylist(PLACES, schema=GOLDEN_PLACE_SCHEMA)
    pq.write_table(table, tmp_path / "places.parquet")
    done = poiflow("publish", "search", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert f"indexed {len(PLACES)} places" in done.stderr
    done = poiflow("search", str(tmp_path), "cafe", "--near", "north")
    assert done.returncode == 1
    assert "--near takes LAT,LON" in done.stdout + done.stderr
    done = poiflow("search", str(tmp_path), "kahv", "--category", "cafe")
    assert done.returncode == 0
    assert "Jääpuiston kahvila" in done.stdout + done.stderr
    assert " km " not in done.stdout + done.stderr  # no --near: no column of blanks
    done = poiflow("search", str(tmp_path), "savoy", "--open-at", "2026-12-12T02:00")
    assert done.returncode == 0, done.stderr
    assert "1 place open at 2026-12-12T02:00" in done.stdout + done.stderr
    assert re.search(r"Sat( 12 Dec)? 04:00", done.stdout + done.stderr)  # the date if far off
    done = poiflow("search", str(tmp_path), "savoy", "--open-at", "Sa 25:00")
    assert done.returncode == 1
    assert "not a time: 'Sa 25:00'" in done.stdout + done.stderr
    # A later run into the folder: the index is refused until it is published again.
    pq.write_table(table.slice(0, 3), tmp_path / "places.parquet")
    done = poiflow("search", str(tmp_path), "savoy")
    assert done.returncode == 1
    said = " ".join((done.stdout + done.stderr).split())
    assert "the places changed since this search index was built" in said
    assert f"build it again with `poiflow publish search {tmp_path}`" in said
    assert poiflow("publish", "search", str(tmp_path)).returncode == 0
    done = poiflow("search", str(tmp_path), "savoy")
    assert (done.returncode, (done.stdout + done.stderr).strip()) == (0, "no place matches")


def check_upsert(backend: Any) -> None:
    """What a stream does to an index holding ``PLACES``: a place renamed, a place gone,
    a new place; doing it again changes nothing (a replayed batch)."""
    changed = pa.Table.from_pylist(
        [
            place("p2", "Kuura Bistro", "restaurant", 60.1590, 24.9220),
            place("p11", "Halla Studio", "cafe", 60.1700, 24.9300),
        ],
        schema=GOLDEN_PLACE_SCHEMA,
    )
    for _ in range(2):
        backend.upsert(changed, ["p6"])
        assert len(backend) == len(PLACES)
        assert ids(backend.search("kuura bistro", limit=1)) == ["p2"]
        assert ids(backend.search("halla studio", limit=1)) == ["p11"]
        assert "p2" not in ids(backend.search("kahvila"))
        assert "p6" not in ids(backend.search("apteekki bulevardi"))


def test_a_stream_keeps_the_index_current(tmp_path: Path) -> None:
    table = pa.Table.from_pylist(PLACES, schema=GOLDEN_PLACE_SCHEMA)
    check_upsert(build_search_index(table, tmp_path / "search"))
    assert len(SearchIndex(tmp_path / "search")) == len(PLACES)  # what a new reader sees
