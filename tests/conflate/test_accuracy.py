from __future__ import annotations

import pyarrow as pa
import pytest

from poiflow.conflate.accuracy import score_places
from poiflow.normalize import normalize_records
from poiflow.sources import records_from_rows

AALTO = {
    "names": {"primary": "Café Aalto"},
    "lat": 60.1680,
    "lon": 24.9440,
    "categories": {"primary": "cafe"},
    "phones": ["+358 9 123 4567"],
    "websites": ["https://www.cafeaalto.fi/"],
    "address": {"street": "Pohjoisesplanadi", "housenumber": "39"},
}
KULMA = {
    "names": {"primary": "Kiosk Kulma"},
    "lat": 60.2000,
    "lon": 24.9000,
    "categories": {"primary": "convenience_store"},
    "phones": ["+358 40 555 0101"],
}


def table(*rows: dict) -> pa.Table:
    """Normalized places (``PLACE_SCHEMA``) of rows with a source and an id."""
    return normalize_records(records_from_rows([{**r, "origin": r["id"]} for r in rows])).places


def golden(*rows: dict, confidence: list[float]) -> pa.Table:
    """Golden places made by hand: normalized rows with one confidence for every attribute
    and for the place."""
    places = table(*rows)
    fields = ("name", "category", "location", "address", "phone", "website")
    struct = pa.array(
        [dict.fromkeys(fields, c) for c in confidence],
        pa.struct([pa.field(f, pa.float32()) for f in fields]),
    )
    places = places.append_column("confidence", pa.array(confidence, pa.float32()))
    return places.append_column("attribute_confidence", struct)


TRUTH = table({"source": "truth", "id": "P1", **AALTO}, {"source": "truth", "id": "P2", **KULMA})
GOLD = pa.table(
    {
        "source": ["a", "b", "a", "c", "d"],
        "id": ["a1", "b1", "a2", "c2", "d1"],
        "place": ["P1", "P1", "P2", "P2", "P1"],
    }
)
MEMBERSHIP = pa.table(
    {
        "source": ["a", "b", "a", "c", "d"],
        "id": ["a1", "b1", "a2", "c2", "d1"],
        "place_id": ["g1", "g1", "g2", "g2", "g2"],  # d1 is P1's, wrongly put with P2's two
    }
)


def test_each_attribute_of_a_golden_place_is_held_to_its_true_place() -> None:
    places = golden(
        {
            "source": "run",
            "id": "g1",
            **AALTO,
            "names": {"primary": "CAFE AALTO"},  # the name, not as written
            "lat": 60.16809,  # ~10 m off
            "websites": ["http://cafeaalto.fi"],  # the same site
        },
        {
            "source": "run",
            "id": "g2",
            **KULMA,
            "names": {"primary": "Kiosk Kulmala"},
            "categories": None,
            "lat": 60.2009,  # ~100 m off
            "phones": ["+358 40 555 0102"],
            "brand": {"name": "Acme"},  # the truth has no brand
        },
        confidence=[1.0, 0.4],
    )
    records = table(
        {"source": "a", "id": "a1", **AALTO},
        {"source": "b", "id": "b1", **AALTO, "names": {"primary": "Aalto"}},
        {"source": "a", "id": "a2", **KULMA},
        {"source": "c", "id": "c2", **KULMA},
        {"source": "d", "id": "d1", **AALTO},
    )
    scored = score_places(places, MEMBERSHIP, GOLD, TRUTH, records)
    rows = {row["attribute"]: row for row in scored.table.iter_rows(named=True)}
    assert scored.places == 2
    assert (rows["name"]["correct"], rows["name"]["given"]) == (1, 2)  # folded: g1 right
    assert rows["name as written"]["correct"] == 0
    assert (rows["category"]["given"], rows["category"]["coverage"]) == (1, 0.5)
    assert rows["category"]["accuracy"] == 1.0
    assert rows["location"]["accuracy"] == 0.5  # 10 m is the place, 100 m is not
    assert rows["address"]["true"] == 1  # the kiosk's truth has no address
    assert rows["address"]["accuracy"] == 1.0
    assert rows["phone"]["accuracy"] == 0.5
    assert (rows["website"]["true"], rows["website"]["accuracy"]) == (1, 1.0)
    assert (rows["brand"]["true"], rows["brand"]["spurious"]) == (0, 1)
    # The naive merge takes each place's first record (a1, a2), which are the truth.
    assert rows["name as written"]["naive_accuracy"] == 1.0
    assert rows["phone"]["naive_accuracy"] == 1.0
    assert scored.location_m["naive_median"] == 0.0
    assert 50 < scored.location_m["p90"] < 100
    # Confidence 1 was right about the name, confidence 0.4 was not.
    names = {
        r["confidence"]: r
        for r in scored.calibration.filter(scored.calibration["attribute"] == "name").iter_rows(
            named=True
        )
    }
    assert (names[">= 0.99"]["places"], names[">= 0.99"]["accuracy"]) == (1, 1.0)
    assert (names["< 0.5"]["places"], names["< 0.5"]["accuracy"]) == (1, 0.0)
    assert names["< 0.5"]["mean_confidence"] == pytest.approx(0.4)
    assert names["0.5-0.8"]["places"] == 0
    # Calibration error: (1 * |1 - 1| + 1 * |0 - 0.4|) / 2; Brier: (0 + 0.4 ** 2) / 2.
    assert rows["name"]["calibration_error"] == pytest.approx(0.2)
    assert rows["name"]["brier"] == pytest.approx(0.08)
    assert rows["brand"]["brier"] is None  # no confidence of its own
    assert scored.accuracy("phone") == 0.5
    # Neither place is one whole true place: g1 lacks d1 of P1, and g2 has it beside P2's.
    assert (rows["place"]["given"], rows["place"]["correct"]) == (2, 0)
    assert rows["place"]["naive_accuracy"] is None  # the naive merge has the same places
    assert rows["place"]["calibration_error"] == pytest.approx((1.0 + 0.4) / 2)
    assert rows["place"]["brier"] == pytest.approx((1.0 + 0.4**2) / 2)
    # Without their confidence, places are not judged whole or not.
    unsure = score_places(places.drop_columns(["confidence"]), MEMBERSHIP, GOLD, TRUTH)
    assert "place" not in unsure.table["attribute"].to_list()


def test_the_truth_scored_as_golden_is_right_everywhere() -> None:
    as_golden = golden(
        {"source": "run", "id": "g1", **AALTO},
        {"source": "run", "id": "g2", **KULMA},
        confidence=[1.0, 1.0],
    )
    one_each = pa.table({"source": ["a", "a"], "id": ["a1", "a2"], "place_id": ["g1", "g2"]})
    scored = score_places(as_golden, one_each, GOLD, TRUTH)
    # Each place is whole among the run's records: P1 has only a1 of them, P2 only a2.
    assert scored.accuracy("place") == 1.0
    for row in scored.table.iter_rows(named=True):
        if row["true"]:
            assert row["accuracy"] == 1.0, row
            assert row["coverage"] == 1.0, row
        assert row["naive_accuracy"] is None  # no records given: no naive merge
    assert scored.location_m["median"] == pytest.approx(0.0)


def test_golden_opening_hours_are_right_as_hours_not_as_text() -> None:
    """Hours are held to the truth's as normalization spells them: a feed's "Mon-Fri
    9am-5pm" is the truth's "Mo-Fr 09:00-17:00"."""
    truth = table(
        {"source": "truth", "id": "P1", **AALTO, "opening_hours": "Mo-Fr 09:00-17:00"},
        {"source": "truth", "id": "P2", **KULMA, "opening_hours": "Mo-Su 07:00-23:00"},
    )
    places = golden(
        {"source": "run", "id": "g1", **AALTO, "opening_hours": "Mon-Fri 9am-5pm"},
        {"source": "run", "id": "g2", **KULMA, "opening_hours": "Mo-Sa 07:00-23:00"},
        confidence=[1.0, 1.0],
    )
    scored = score_places(places, MEMBERSHIP, GOLD, truth)
    [row] = scored.table.filter(scored.table["attribute"] == "opening hours").to_dicts()
    assert (row["true"], row["given"], row["correct"]) == (2, 2, 1)
    assert scored.metrics()["golden.opening_hours.accuracy"] == 0.5
