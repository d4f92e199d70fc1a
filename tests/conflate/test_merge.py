from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from poiflow.conflate.alike import site
from poiflow.conflate.belief import DEFAULT_ACCURACY, FALSE_VALUES
from poiflow.conflate.ids import place_id_for
from poiflow.conflate.merge import MergeConfig, _positions, merge_clusters
from poiflow.conflate.point import INLIER_SPREADS
from poiflow.conflate.reliability import learn_sources, source_accuracy, source_precision
from poiflow.normalize import normalize_records
from poiflow.schema import GOLDEN_PLACE_SCHEMA, MEMBERSHIP_SCHEMA
from poiflow.sources import records_from_rows

ROWS = [
    {
        "source": "osm",
        "id": "n1",
        "names": {"primary": "Café Aalto"},
        "lat": 60.1680,
        "lon": 24.9440,
        "categories": {"primary": "amenity=cafe"},
        "phones": ["+358 9 123 4567"],
        "address": {"street": "Pohjoisesplanadi", "housenumber": "39", "postcode": "00100"},
    },
    {
        "source": "vendor",
        "id": "v1",
        "names": {"primary": "CAFE AALTO OY"},
        "lat": 60.1681,
        "lon": 24.9442,
        "categories": {"primary": "Coffee Shop"},
        "phones": ["09 1234567"],
        "address": {"street": "Pohjoisesplanadi", "housenumber": "39", "country": "FI"},
        "websites": ["cafeaalto.fi"],
    },
    {
        "source": "feed",
        "id": "f1",
        "names": {"primary": "Cafe Aalto"},
        "categories": {"primary": "Bakery"},
        "websites": ["https://www.cafeaalto.fi/"],
        "address": {"locality": "Helsinki"},
    },
    {"source": "osm", "id": "n2", "names": {"primary": "Kiosk"}, "lat": 60.2, "lon": 24.9},
]


def records(rows: list[dict]) -> pa.Table:
    return normalize_records(records_from_rows([{**r, "origin": r["id"]} for r in rows])).places


def test_a_cluster_becomes_one_place_with_provenance() -> None:
    table = records(ROWS)
    labels = np.array([0, 0, 0, 3])
    places, membership = merge_clusters(table, labels, np.array([0.97, 0.97, 0.8, 1.0]))
    assert places.schema.equals(GOLDEN_PLACE_SCHEMA)
    assert membership.schema.equals(MEMBERSHIP_SCHEMA)
    assert places.num_rows == 2
    assert membership.num_rows == 4
    aalto = next(p for p in places.to_pylist() if p["members"] == 3)
    assert aalto["names"]["primary"] == "Café Aalto"  # mixed case, the most supported spelling
    assert {a["value"] for a in aalto["names"]["alternates"]} == {"CAFE AALTO OY", "Cafe Aalto"}
    assert aalto["categories"]["primary"] == "cafe"  # two of three say cafe
    assert aalto["phones"] == ["+35891234567"]
    # One site, written two ways by one record each: listed once, the secure way.
    assert aalto["websites"] == ["https://www.cafeaalto.fi"]
    assert 60.168 <= aalto["lat"] <= 60.1681
    # Two records of sources nothing is learned of (right 0.9 of the time) agree.
    odds = FALSE_VALUES * DEFAULT_ACCURACY / (1 - DEFAULT_ACCURACY)
    assert aalto["attribute_confidence"]["phone"] == pytest.approx(
        1 / (1 + FALSE_VALUES / odds**2), abs=1e-4
    )
    assert aalto["attribute_confidence"]["category"] < 1.0
    members = {(s["dataset"], s["record_id"]) for s in aalto["sources"] if s["property"] == ""}
    assert members == {("osm", "n1"), ("vendor", "v1"), ("feed", "f1")}
    props = {s["property"]: s["dataset"] for s in aalto["sources"] if s["property"]}
    assert props["/geometry"] in ("osm", "vendor")
    assert "/names" in props
    assert aalto["id"] == place_id_for("feed", "f1")  # the first member by (source, id)
    assert props["/websites"] == "feed"  # the record that writes the site as it is listed
    kiosk = next(p for p in places.to_pylist() if p["members"] == 1)
    assert kiosk["confidence"] < aalto["confidence"]


def test_trust_decides_between_disagreeing_sources() -> None:
    rows = [{**ROWS[0], "names": {"primary": "Aalto Kahvila"}}, ROWS[1]]
    table = records(rows)
    trusted_vendor = MergeConfig(trust={"vendor": 3.0})
    places, _ = merge_clusters(table, np.array([0, 0]), np.ones(2), trusted_vendor)
    assert places.to_pylist()[0]["names"]["primary"] == "CAFE AALTO OY"
    places, _ = merge_clusters(table, np.array([0, 0]), np.ones(2), MergeConfig(trust={"osm": 3.0}))
    assert places.to_pylist()[0]["names"]["primary"] == "Aalto Kahvila"


def primary_name_of(*names: str) -> str:
    """The golden name of one place whose records (one source each) give these names."""
    rows = [{"source": f"s{i}", "id": str(i), "names": {"primary": n}} for i, n in enumerate(names)]
    places, _ = merge_clusters(
        records(rows), np.zeros(len(rows), dtype=np.int64), np.ones(len(rows))
    )
    return places.to_pylist()[0]["names"]["primary"]


def test_the_golden_name_is_the_spelling_most_records_write_at_its_best() -> None:
    # All of these fold to one name; which way to write it is what is chosen.
    assert primary_name_of("Refiner Sp. z o.o.", "REFINER", "Refiner", "refiner") == "Refiner"
    assert primary_name_of("Eerikin Pippuri Oy", "Eerikin Pippuri") == "Eerikin Pippuri"
    assert primary_name_of("Kahvila Äijä", "KAHVILA AIJA", "Kahvila Aija") == "Kahvila Äijä"
    assert primary_name_of("Hotel Intl", "Hotel International") == "Hotel International"
    # A place's name, not its company's: without the legal form where any record writes
    # it so, however many add one (the one with it stays an alternate name).
    assert primary_name_of("Stockmann Oyj", "Stockmann Oyj", "Stockmann") == "Stockmann"
    assert primary_name_of("BLACK STORE LTD", "Black store Ltd", "Black store") == "Black store"
    # Where every record adds one, it stays: a name is never made up.
    assert primary_name_of("Kinopalatsi Sp. z o.o.", "KINOPALATSI SP Z O O") == (
        "Kinopalatsi Sp. z o.o."
    )


@settings(max_examples=30, deadline=None)
@given(st.permutations(list(range(len(ROWS)))))
def test_golden_records_do_not_depend_on_input_order(order: list[int]) -> None:
    labels_by_id = {"n1": "a", "v1": "a", "f1": "a", "n2": "b"}
    shuffled = [ROWS[i] for i in order]
    table = records(shuffled)
    ids = [r["id"] for r in shuffled]
    first = {lab: min(i for i, x in enumerate(ids) if labels_by_id[x] == lab) for lab in "ab"}
    labels = np.array([first[labels_by_id[x]] for x in ids])
    best = np.array([{"n1": 0.97, "v1": 0.97, "f1": 0.8, "n2": 1.0}[x] for x in ids])
    places, membership = merge_clusters(table, labels, best)
    reference, reference_membership = merge_clusters(
        records(ROWS), np.array([0, 0, 0, 3]), np.array([0.97, 0.97, 0.8, 1.0])
    )
    assert places.equals(reference)
    assert membership.equals(reference_membership)


def located_rows(points: list[tuple[str, float, float]]) -> pa.Table:
    """Records of one place each, (source, lat, lon)."""
    rows = [
        {"source": s, "id": f"{s}{i}", "names": {"primary": "Kahvila"}, "lat": lat, "lon": lon}
        for i, (s, lat, lon) in enumerate(points)
    ]
    return records(rows)


def test_each_source_is_as_precise_as_its_points_lie_from_their_places() -> None:
    # 25 places of three records: one surveyed on the spot, one ~20 m north, one ~100 m
    # east; the places' median point is the surveyed one. Then a source of five records
    # (too few to say), two places of two records (too few points to have a median), and
    # records left out by a negative label.
    north, east = 20 / 111_320, 100 / (111_320 * np.cos(np.radians(60.0)))
    points, labels = [], []
    for place in range(25):
        lat, lon = 60.0 + place * 0.01, 24.0
        points += [("survey", lat, lon), ("mid", lat + north, lon), ("geo", lat, lon + east)]
        labels += [place] * 3
    points += [("rare", 60.0, 24.0)] * 5
    labels += [0] * 5
    points += [("pair", 61.0, 25.0), ("pair", 61.001, 25.0)] * 2
    labels += [100, 100, 101, 101]
    points += [("gone", 62.0, 26.0)] * 30
    labels += [-1] * 30
    table = located_rows(points)
    learned = source_precision(
        table.column("source"), table.column("lat"), table.column("lon"), np.array(labels)
    )
    assert set(learned) == {"survey", "mid", "geo"}
    assert learned["survey"] == 1.0  # on the spot (less than a metre counts as one)
    assert 17 <= learned["mid"] <= 23  # rounded to steps of ~19%
    assert 90 <= learned["geo"] <= 115


def test_a_point_leans_to_the_more_precise_source() -> None:
    table = located_rows([("survey", 60.0, 24.0), ("geo", 60.0027, 24.0)])  # ~300 m apart
    best = np.ones(2)
    plain, _ = merge_clusters(table, np.zeros(2, dtype=np.int64), best)
    assert plain.column("lat")[0].as_py() == pytest.approx(60.00135)  # the middle
    learned = MergeConfig(precision_m={"survey": 10.0, "geo": 100.0})
    weighted, _ = merge_clusters(table, np.zeros(2, dtype=np.int64), best, learned)
    assert weighted.column("lat")[0].as_py() == pytest.approx(60.0)
    # A source it has not learnt weighs as the least precise one it has.
    other = MergeConfig(precision_m={"survey": 10.0})
    weighted, _ = merge_clusters(table, np.zeros(2, dtype=np.int64), best, other)
    assert weighted.column("lat")[0].as_py() == pytest.approx(60.00135)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 5), max_size=40))
def test_positions_count_the_rows_of_each_label_as_a_group_by_does(labels: list[int]) -> None:
    ordered = np.sort(np.array(labels, dtype=np.int64))
    by_group_by = pl.DataFrame({"label": ordered}).select(pl.int_range(pl.len()).over("label"))
    assert _positions(ordered).tolist() == by_group_by.to_series().to_list()


@settings(max_examples=60, deadline=None)  # each example merges a place whole (~0.1 s)
@given(st.lists(st.floats(-80, 80), min_size=1, max_size=9))
def test_with_equal_weights_the_point_is_by_the_plain_median(lats: list[float]) -> None:
    # Nothing learned of the sources: each counts as precise to a metre, so the mean is of
    # the points within INLIER_SPREADS metres of the median.
    table = located_rows([(f"s{i}", lat, 24.0) for i, lat in enumerate(lats)])
    places, _ = merge_clusters(table, np.zeros(len(lats), dtype=np.int64), np.ones(len(lats)))
    off_m = abs(places.column("lat")[0].as_py() - float(np.median(lats))) * 111_195
    assert off_m <= INLIER_SPREADS + 1e-6


def test_the_point_averages_the_jitter_and_leaves_out_a_geocoding_error() -> None:
    metres = 1 / 111_195
    north = {"a": 0, "b": 10, "c": 30, "d": 40, "e": 2000}  # e: geocoded to another street
    table = located_rows([(s, 60.0 + m * metres, 24.0) for s, m in north.items()])
    typical = MergeConfig(precision_m=dict.fromkeys(north, 20.0))
    places, _ = merge_clusters(table, np.zeros(5, dtype=np.int64), np.ones(5), typical)
    # The median is c's 30 m; within 5 x 20 m of it lie a-d, whose mean is 20 m.
    assert places.column("lat")[0].as_py() == pytest.approx(60.0 + 20 * metres, abs=1e-9)


def test_a_source_whose_phones_are_right_more_often_wins_a_tie() -> None:
    # 25 places: "good" and "third" give the true number, "stale" an old one at 10 of them.
    rows, labels = [], []
    for place in range(25):
        true, old = f"+35840{place:07d}", f"+35850{place:07d}"
        for source, phone in (
            ("good", true),
            ("third", true),
            ("stale", old if place < 10 else true),
        ):
            rows.append(
                {
                    "source": source,
                    "id": f"{source}{place}",
                    "names": {"primary": "Kahvila"},
                    "phones": [phone],
                }
            )
            labels.append(place)
    table = records(rows)
    learned = source_accuracy(table, np.array(labels))["phone"]
    # good and third agree on 25 places of 25, stale with each on 15: smoothed, the
    # products a_good * a_third = 26/27 and a_good * a_stale = a_third * a_stale = 16/27.
    good = (26 / 27) ** 0.5
    assert learned == {
        "good": round(good, 3),
        "third": round(good, 3),
        "stale": round(16 / 27 / good, 3),
    }
    # Two records, one number each: equally supported. Without what was learned the
    # smaller number comes first; with it, that of the source right more often.
    pair = records(
        [
            {
                "source": "good",
                "id": "1",
                "names": {"primary": "Kahvila"},
                "phones": ["+358402222222"],
            },
            {
                "source": "stale",
                "id": "2",
                "names": {"primary": "Kahvila"},
                "phones": ["+358401111111"],
            },
        ]
    )
    plain, _ = merge_clusters(pair, np.zeros(2, dtype=np.int64), np.ones(2))
    assert plain.column("phones")[0].as_py() == ["+358401111111", "+358402222222"]
    told = MergeConfig(accuracy={"phone": learned})
    weighed, _ = merge_clusters(pair, np.zeros(2, dtype=np.int64), np.ones(2), told)
    assert weighed.column("phones")[0].as_py() == ["+358402222222", "+358401111111"]
    # Two numbers, one record each: the good source's is surer than even, not sure.
    assert weighed.column("attribute_confidence")[0].as_py()["phone"] == pytest.approx(
        sure(log_odds(learned["good"]), log_odds(learned["stale"])), abs=1e-4
    )
    # Of sources equally sure (nothing learned), each is less than even.
    assert plain.column("attribute_confidence")[0].as_py()["phone"] == pytest.approx(
        sure(log_odds(DEFAULT_ACCURACY), log_odds(DEFAULT_ACCURACY)), abs=1e-4
    )


def golden_address_of(*addresses: tuple[str, str]) -> tuple[str, str]:
    """The golden (street, number) of one place whose records give these."""
    rows = [
        {
            "source": f"s{i}",
            "id": str(i),
            "names": {"primary": "Kahvila"},
            "address": {"street": street, "housenumber": number},
        }
        for i, (street, number) in enumerate(addresses)
    ]
    places, _ = merge_clusters(
        records(rows), np.zeros(len(rows), dtype=np.int64), np.ones(len(rows))
    )
    address = places.to_pylist()[0]["address"]
    return address["street"], address["housenumber"]


def test_values_backed_alike_tie_however_their_weights_add_up() -> None:
    # Trust 0.1 and 0.2 back one value, 0.3 another: alike, though 0.1 + 0.2 comes to
    # 0.30000000000000004 as floats (and polars adds a group's floats in an order that
    # depends on its threads). The tie goes to the first record, as ties do.
    rows = [
        {"source": source, "id": "1", "names": {"primary": name}, "address": address}
        for source, name, address in (
            ("a", "Kahvila Aalto", {"street": "Liisankatu", "housenumber": "1"}),
            ("b", "Cafe Aalto", {"street": "Mariankatu", "housenumber": "2"}),
            ("c", "Cafe Aalto", {"street": "Mariankatu", "housenumber": "2"}),
        )
    ]
    trust = MergeConfig(trust={"a": 0.3, "b": 0.1, "c": 0.2})
    places, _ = merge_clusters(records(rows), np.zeros(3, dtype=np.int64), np.ones(3), trust)
    place = places.to_pylist()[0]
    assert place["address"]["street"] == "Liisankatu"
    assert place["names"]["primary"] == "Kahvila Aalto"
    # Where the sums truly differ, the larger wins.
    trust = MergeConfig(trust={"a": 0.3, "b": 0.1, "c": 0.2000001})
    places, _ = merge_clusters(records(rows), np.zeros(3, dtype=np.int64), np.ones(3), trust)
    place = places.to_pylist()[0]
    assert place["address"]["street"] == "Mariankatu"
    assert place["names"]["primary"] == "Cafe Aalto"


def test_a_street_abbreviated_votes_with_the_street_spelled_out() -> None:
    # Two records abbreviate, one spells it out: one street, written in full.
    assert golden_address_of(("Liisank.", "92"), ("Liisank.", "92"), ("Liisankatu", "92")) == (
        "Liisankatu",
        "92",
    )
    both = ("Aleksanterink./Mannerheimint.", "3")
    assert golden_address_of(both, both, ("Aleksanterinkatu/Mannerheimintie", "3"))[0] == (
        "Aleksanterinkatu/Mannerheimintie"
    )
    # Another number, or a street the abbreviation does not begin, is another address.
    assert golden_address_of(("Liisank.", "92"), ("Liisank.", "92"), ("Liisankatu", "90")) == (
        "Liisank.",
        "92",
    )
    assert golden_address_of(("Liisank.", "92"), ("Liisank.", "92"), ("Lisankatu", "92")) == (
        "Liisank.",
        "92",
    )


def test_one_buildings_numbers_vote_together_for_the_number_they_agree_with() -> None:
    # "14 A" and "14-16" are the building at 14, as "14" is: one vote, and the golden
    # number is the one all of them agree with. Another number is another address.
    assert golden_address_of(("Liisankatu", "14 A"), ("Liisankatu", "14")) == (
        "Liisankatu",
        "14",
    )
    assert golden_address_of(
        ("Liisankatu", "14 A"), ("Liisankatu", "14-16"), ("Liisankatu", "12")
    ) == ("Liisankatu", "14")
    assert golden_address_of(("Liisankatu", "59 A"), ("Liisankatu", "59b")) == (
        "Liisankatu",
        "59",
    )
    # Written one way, it stays as written.
    assert golden_address_of(("Liisankatu", "20 B"), ("Liisankatu", "20 B")) == (
        "Liisankatu",
        "20 B",
    )
    assert golden_address_of(("Liisankatu", "20 B")) == ("Liisankatu", "20 B")


def confidence_of(rows: list[dict], config: MergeConfig | None = None) -> dict[str, float]:
    """The attribute confidence of one place made of ``rows``."""
    places, _ = merge_clusters(
        records(rows), np.zeros(len(rows), dtype=np.int64), np.ones(len(rows)), config
    )
    return places.column("attribute_confidence")[0].as_py()


def sure(*evidence: float) -> float:
    """The probability of the first of these values (each the summed log odds of its
    records), the rest of ``FALSE_VALUES + 1`` values having none."""
    weights = [np.exp(e) for e in evidence] + [1.0] * (FALSE_VALUES + 1 - len(evidence))
    return weights[0] / sum(weights)


def log_odds(accuracy: float) -> float:
    return float(np.log(FALSE_VALUES * accuracy / (1 - accuracy)))


def test_a_value_one_record_gives_is_as_sure_as_its_source() -> None:
    row = {**ROWS[0], "websites": ["https://cafeaalto.fi"]}
    learned = MergeConfig(
        accuracy={a: {"osm": 0.8} for a in ("name", "category", "address", "phone", "website")}
        | {"location": {"osm": 0.7}}
    )
    told = confidence_of([row], learned)
    assert told == pytest.approx(
        {
            "name": 0.8,
            "category": 0.8,
            "address": 0.8,
            "phone": 0.8,
            "website": 0.8,
            "location": 0.7,
        },
        abs=1e-4,
    )
    # Of a source nothing is learned of, as sure as DEFAULT_ACCURACY; without a value, 0.
    plain = confidence_of([{**row, "websites": []}])
    assert plain["name"] == pytest.approx(DEFAULT_ACCURACY, abs=1e-4)
    assert plain["website"] == 0.0


def test_sources_that_agree_make_a_value_surer_and_sources_that_differ_split_it() -> None:
    accuracy = {"a": 0.9, "b": 0.8, "c": 0.6}
    config = MergeConfig(accuracy={"category": accuracy, "name": accuracy})

    def row(source: str, category: str, name: str = "Kahvila") -> dict:
        return {
            "source": source,
            "id": source,
            "names": {"primary": name},
            "categories": {"primary": category},
        }

    agree = confidence_of([row("a", "cafe"), row("b", "cafe")], config)
    assert agree["category"] == pytest.approx(sure(log_odds(0.9) + log_odds(0.8)), abs=1e-4)
    assert agree["category"] > 0.99
    # a and c differ: the vote is a tie (equal trust), won by the first record, a's; its
    # confidence is what a's accuracy against c's makes of it.
    differ = confidence_of([row("a", "cafe"), row("c", "bakery")], config)
    assert differ["category"] == pytest.approx(sure(log_odds(0.9), log_odds(0.6)), abs=1e-4)
    assert 0.5 < differ["category"] < 0.9
    # Three against one: the one does not make the three unsure.
    three = confidence_of(
        [row("a", "cafe"), row("b", "cafe"), row("c", "cafe"), row("d", "bakery")], config
    )
    assert three["category"] > agree["category"]
    # A name is as sure as the records that spell it so.
    names = confidence_of(
        [
            row("a", "cafe", "Kahvila Aalto"),
            row("b", "cafe", "KAHVILA AALTO Oy"),
            row("c", "cafe", "Kahvila Alto"),
        ],
        config,
    )
    # A legal form aside, a and b agree; c's typo is another name.
    assert names["name"] == pytest.approx(
        sure(log_odds(0.9) + log_odds(0.8), log_odds(0.6)), abs=1e-4
    )


def test_a_point_is_as_sure_as_the_records_near_it() -> None:
    accuracy = MergeConfig(accuracy={"location": {"a": 0.9, "b": 0.9, "c": 0.9}})

    def at(source: str, metres_north: float) -> dict:
        return {
            "source": source,
            "id": source,
            "names": {"primary": "Kahvila"},
            "lat": 60.17 + metres_north / 111_195,
            "lon": 24.94,
        }

    near = confidence_of([at("a", 0), at("b", 20), at("c", 35)], accuracy)
    assert near["location"] == pytest.approx(sure(3 * log_odds(0.9)), abs=1e-4)
    # c 400 m away: the point (the median) lies with a and b; c is another value.
    far = confidence_of([at("a", 0), at("b", 20), at("c", 400)], accuracy)
    assert far["location"] == pytest.approx(sure(2 * log_odds(0.9), log_odds(0.9)), abs=1e-4)
    # Two points 300 m apart: the point between them is near neither.
    apart = confidence_of([at("a", 0), at("b", 300)], accuracy)
    assert apart["location"] == pytest.approx(sure(0.0, log_odds(0.9), log_odds(0.9)), abs=1e-4)
    assert apart["location"] < 0.1


def test_websites_that_name_one_site_agree() -> None:
    rows = [
        {"source": "a", "id": "1", "names": {"primary": "Aalto"}, "websites": ["http://aalto.fi"]},
        {
            "source": "b",
            "id": "2",
            "names": {"primary": "Aalto"},
            "websites": ["https://www.Aalto.fi/"],
        },
    ]
    odds = log_odds(DEFAULT_ACCURACY)
    assert confidence_of(rows)["website"] == pytest.approx(sure(2 * odds), abs=1e-4)


def site_of(url: str) -> str:
    return str(pl.select(site(pl.lit(url))).item())


def test_a_site_is_listed_once_as_most_records_write_it() -> None:
    def record(i: int, *sites: str) -> dict[str, object]:
        return {
            "source": f"s{i}",
            "id": str(i),
            "names": {"primary": "Aalto"},
            "websites": list(sites),
        }

    # Two records write the site plainly, one securely: the plain way is listed, once;
    # another site (one record's second) comes after it.
    rows = [
        record(1, "http://aalto.fi", "https://shop.aalto.fi"),
        record(2, "http://aalto.fi"),
        record(3, "https://www.aalto.fi/"),
    ]
    table = records(rows)
    places, _ = merge_clusters(table, np.zeros(3, dtype=np.int64), np.ones(3))
    (place,) = places.to_pylist()
    assert [site_of(url) for url in place["websites"]] == ["aalto.fi", "shop.aalto.fi"]
    assert place["websites"][0].startswith("http://")
    given = {s["property"]: (s["dataset"], s["record_id"]) for s in place["sources"]}
    assert given["/websites"] == ("s1", "1")


def test_a_source_right_more_often_has_more_say_in_the_category() -> None:
    rows = [
        {
            "source": "a",
            "id": "1",
            "names": {"primary": "Aalto"},
            "categories": {"primary": "bakery"},
        },
        {
            "source": "b",
            "id": "2",
            "names": {"primary": "Aalto"},
            "categories": {"primary": "cafe"},
        },
    ]

    def category(config: MergeConfig | None = None) -> str:
        places, _ = merge_clusters(records(rows), np.zeros(2, dtype=np.int64), np.ones(2), config)
        return places.to_pylist()[0]["categories"]["primary"]

    assert category() == "bakery"  # a tie: the first record's
    learned = {"category": {"a": 0.6, "b": 0.95}}
    assert category(MergeConfig(accuracy=learned)) == "cafe"
    # What the user says of a source (its trust) still weighs more.
    assert category(MergeConfig(accuracy=learned, trust={"a": 5.0})) == "bakery"


def golden_names(places: list[list[tuple[str, datetime]]]) -> list[str]:
    return [name for name, _ in golden_names_and_confidence(places)]


def golden_names_and_confidence(
    places: list[list[tuple[str, datetime]]],
) -> list[tuple[str, float]]:
    """The golden name of each place, whose records are given as (name, update time)
    with the last one the most recent, one source each; what the run says of names is
    learned from all of them, as a run learns it."""
    rows = [
        {
            "source": f"s{i}",
            "id": f"{p}-{i}",
            "names": {"primary": name},
            "update_time": time,
        }
        for p, place in enumerate(places)
        for i, (name, time) in enumerate(place)
    ]
    labels = np.array([p for p, place in enumerate(places) for _ in place], dtype=np.int64)
    table = records(rows)
    config = learn_sources(table, labels, MergeConfig())
    merged, _ = merge_clusters(table, labels, np.ones(len(rows)), config)
    by_id = {
        p["id"]: (p["names"]["primary"], p["attribute_confidence"]["name"])
        for p in merged.to_pylist()
    }
    return [by_id[place_id_for("s0", f"{p}-0")] for p in range(len(places))]


OLD, NEW = datetime(2024, 1, 1, tzinfo=UTC), datetime(2025, 6, 1, tzinfo=UTC)


def test_between_two_names_backed_alike_a_branchs_added_words_yield() -> None:
    # The newer record would win a plain tie; "Subway Kamppi" is "Subway" and a branch.
    names = golden_names([[("Subway", OLD), ("Subway Kamppi", NEW)]])
    assert names == ["Subway"]
    # More records writing the branch still win: the vote comes first.
    names = golden_names([[("Subway", NEW), ("Subway Kamppi", OLD), ("SUBWAY KAMPPI", OLD)]])
    assert names == ["Subway Kamppi"]


def test_between_two_names_backed_alike_a_typo_yields_to_the_commoner_word() -> None:
    # "Erottajan" is carried by records of another place too; "Erottajna" by one.
    places = [
        [("Erottajan Majakka", OLD), ("Erottajna Majakka", NEW)],
        [("Erottajan Kahvila", OLD)],
    ]
    assert golden_names(places)[0] == "Erottajan Majakka"
    # Whichever record is newer.
    places[0] = [("Erottajna Majakka", OLD), ("Erottajan Majakka", NEW)]
    assert golden_names(places)[0] == "Erottajan Majakka"
    # The typo's record meant the name: it backs it (as half a record), so the name is
    # surer than one of two unrelated names.
    typo = golden_names_and_confidence(places)[0][1]
    renamed = golden_names_and_confidence([[("Kahvila Kuu", OLD), ("Bar Luna", NEW)]])[0][1]
    assert typo > renamed + 0.1


def test_a_new_name_is_not_taken_for_a_typo() -> None:
    # Far from the old name (a place renamed): the newer record wins the tie, however
    # many records carry the old name's words.
    places = [[("Kahvila Kuu", OLD), ("Bar Luna", NEW)], [("Kahvila Kuu", OLD)]]
    assert golden_names(places)[0] == "Bar Luna"
    # Near it but as common: no typo to tell, the newer record wins.
    assert golden_names([[("Cafe Mono", OLD), ("Cafe Moni", NEW)]])[0] == "Cafe Moni"


def test_a_place_is_as_sure_as_it_is_likely_whole() -> None:
    rows = [
        {"source": "a", "id": "1", "names": {"primary": "Kiosk Kulma"}},
        {"source": "b", "id": "2", "names": {"primary": "Kiosk Kulma"}},
        {"source": "b", "id": "3", "names": {"primary": "Cafe Mono"}},
        {"source": "z", "id": "4", "names": {"primary": "Bar Luna"}},
    ]
    table = records(rows)
    labels = np.array([0, 0, 1, 2])
    best = np.array([0.9, 0.8, 1.0, 1.0])
    config = MergeConfig(whole={"a": 0.7, "b": 0.3}, split={"a": 0.02, "b": 0.1, "c": 0.2})
    places, _ = merge_clusters(table, labels, best, config)
    confidence = {p["names"]["primary"]: p["confidence"] for p in places.to_pylist()}
    # Two records: as strongly as they matched, and if c has no record of it split off.
    assert confidence["Kiosk Kulma"] == pytest.approx(0.85 * (1 - 0.2), abs=1e-4)
    # One record: as often as its source's places alone are whole; a source nothing was
    # learnt of, as the least whole.
    assert confidence["Cafe Mono"] == pytest.approx(0.3)
    assert confidence["Bar Luna"] == pytest.approx(0.3)
    # Without what the run learnt, the older reckoning: more sources, surer.
    places, _ = merge_clusters(table, labels, best)
    confidence = {p["names"]["primary"]: p["confidence"] for p in places.to_pylist()}
    assert confidence["Kiosk Kulma"] == pytest.approx((1 - 0.5**3) * 0.85, abs=1e-4)
    assert confidence["Cafe Mono"] == pytest.approx(0.75)


def kahvila(hours: dict[tuple[str, str], str]) -> list[dict]:
    """One cafe's records, by (source, id), with these opening hours."""
    return [
        {"source": source, "id": key, "names": {"primary": "Kahvila"}, "opening_hours": value}
        for (source, key), value in hours.items()
    ]


def test_opening_hours_sources_agree_on_win_however_each_wrote_them() -> None:
    """Normalization spells hours one way, so two sources that write the same hours
    differently agree, and outvote a third that is trusted more than either alone; the
    record that gave the hours is in the provenance."""
    rows = kahvila(
        {
            ("osm", "n1"): "Mo-Fr 08:00-16:00",
            ("vendor", "v1"): "Mon-Fri 8am-4pm",
            ("feed", "f1"): "Mo-Su 10-22",
        }
    )
    labels, best = np.zeros(3, dtype=np.int64), np.ones(3)
    places, _ = merge_clusters(records(rows), labels, best, MergeConfig(trust={"feed": 1.5}))
    [place] = places.to_pylist()
    assert place["opening_hours"] == "Mo-Fr 08:00-16:00"
    given = [
        (s["dataset"], s["record_id"])
        for s in place["sources"]
        if s["property"] == "/opening_hours"
    ]
    assert given == [("osm", "n1")]
    # Trusted more than the two together, the feed's hours are the place's.
    places, _ = merge_clusters(records(rows), labels, best, MergeConfig(trust={"feed": 3.0}))
    assert places.to_pylist()[0]["opening_hours"] == "Mo-Su 10:00-22:00"


def test_between_two_hours_the_source_whose_hours_agree_more_often_wins() -> None:
    rows = kahvila({("osm", "n1"): "Mo-Fr 08:00-16:00", ("vendor", "v1"): "Mo-Fr 09:00-17:00"})
    labels, best = np.zeros(2, dtype=np.int64), np.ones(2)
    for right, wrong, hours in (
        ("osm", "vendor", "Mo-Fr 08:00-16:00"),
        ("vendor", "osm", "Mo-Fr 09:00-17:00"),
    ):
        config = MergeConfig(accuracy={"opening_hours": {right: 0.98, wrong: 0.6}})
        places, _ = merge_clusters(records(rows), labels, best, config)
        assert places.to_pylist()[0]["opening_hours"] == hours


def test_each_sources_hours_are_judged_by_the_other_sources_of_its_places() -> None:
    """A source whose hours are often another place's (stale) agrees less often with the
    others, and is learned to be right less often."""
    rng = np.random.default_rng(5)
    rows, labels = [], []
    for place in range(200):
        hours = f"Mo-Fr {8 + place % 4:02d}:00-{16 + place % 5:02d}:00"
        for source in ("a", "b", "c"):
            stale = source == "c" and rng.random() < 0.3
            rows.append(
                {
                    "source": source,
                    "id": f"{source}{place}",
                    "names": {"primary": f"Paikka {place}"},
                    "opening_hours": "Sa 10:00-14:00" if stale else hours,
                }
            )
            labels.append(place)
    learned = source_accuracy(records(rows), np.array(labels))["opening_hours"]
    assert learned["c"] < learned["a"] - 0.15
    assert learned["a"] == learned["b"]
