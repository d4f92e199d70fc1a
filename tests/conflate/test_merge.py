from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from poiflow.conflate.merge import MergeConfig, merge_clusters, place_id_for
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
    assert (
        aalto["websites"] == ["http://cafeaalto.fi", "https://www.cafeaalto.fi"]
        or len(aalto["websites"]) == 2
    )
    assert 60.168 <= aalto["lat"] <= 60.1681
    assert aalto["attribute_confidence"]["phone"] == 1.0
    assert aalto["attribute_confidence"]["category"] < 1.0
    members = {(s["dataset"], s["record_id"]) for s in aalto["sources"] if s["property"] == ""}
    assert members == {("osm", "n1"), ("vendor", "v1"), ("feed", "f1")}
    props = {s["property"]: s["dataset"] for s in aalto["sources"] if s["property"]}
    assert props["/geometry"] in ("osm", "vendor")
    assert "/names" in props
    assert aalto["id"] == place_id_for("feed", "f1")  # the first member by (source, id)
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
    # ... and the legal form, where most records write it.
    assert primary_name_of("Stockmann Oyj", "Stockmann Oyj", "Stockmann") == "Stockmann Oyj"


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
