"""Each quality check flags exactly the places planted to fail it, and passes clean ones."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pytest

from poiflow.errors import ConfigError
from poiflow.land import in_country_box, on_land
from poiflow.quality.checks import (
    DEFAULT_CHECKS,
    FunctionCheck,
    QualityInput,
    built_in_checks,
    issues_table,
    results_table,
    run_checks,
)
from poiflow.schema import GOLDEN_PLACE_SCHEMA, MEMBERSHIP_SCHEMA, PAIR_KEY_FIELDS

from ..row_order import rows_in_any_order

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def place(pid: str, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": pid,
        "names": {"primary": values.pop("name", f"Place {pid}"), "alternates": None},
        "categories": {"primary": values.pop("category", "cafe"), "alternate": []},
        "lat": 60.17,
        "lon": 24.94,
        "address": {"locality": values.pop("locality", "Helsinki"), "country": "FI"},
        "phones": [f"+358912{zlib.crc32(pid.encode()) % 1_000_000:06d}"],  # its own
        "websites": ["https://example.fi"],
        "update_time": NOW,
        "confidence": 0.8,
        "members": 1,
    }
    row.update(values)
    return row


def clean_town(count: int = 6) -> list[dict[str, Any]]:
    return [place(f"ok{i}", lat=60.17 + i * 0.002, lon=24.94 + i * 0.002) for i in range(count)]


def flagged(rows: list[dict[str, Any]], **extra: Any) -> dict[str, set[str]]:
    table = pa.Table.from_pylist(rows, schema=GOLDEN_PLACE_SCHEMA)
    results = run_checks(QualityInput(table, **extra))
    return {r.name: {i.place_id for i in r.issues} for r in results}


def test_a_place_its_sources_call_open_and_closed_is_flagged_with_who_says_what() -> None:
    rows = clean_town(4)
    said = [  # (source, id, place, status)
        ("a", "1", "ok0", "open"),
        ("b", "2", "ok0", "permanently_closed"),
        ("c", "3", "ok0", "open"),
        ("a", "4", "ok1", "open"),
        ("b", "5", "ok1", "open"),
        ("a", "6", "ok2", "temporarily_closed"),
        ("b", "7", "ok2", None),
        ("a", "8", "ok3", None),
    ]
    membership = pa.Table.from_pylist(
        [{"source": s, "id": i, "place_id": p} for s, i, p, _ in said], schema=MEMBERSHIP_SCHEMA
    )
    records = pa.table(
        {
            "source": [s for s, *_ in said],
            "id": [i for _, i, *_ in said],
            "operating_status": [status for *_, status in said],
        }
    )
    table = pa.Table.from_pylist(rows, schema=GOLDEN_PLACE_SCHEMA)
    data = QualityInput(table, membership=membership, records=records)
    (found,) = [r for r in run_checks(data) if r.name == "status_disagrees"]
    assert [(i.place_id, i.detail) for i in found.issues] == [
        ("ok0", "open by a, c; permanently_closed by b")
    ]
    assert found.checked == 3  # the places any source gives a status
    # Without the records, nothing to compare: not run, not passed by mistake.
    (alone,) = [r for r in run_checks(QualityInput(table)) if r.name == "status_disagrees"]
    assert (alone.checked, alone.issues) == (0, ())


def test_clean_places_pass_every_check() -> None:
    found = flagged(clean_town())
    assert all(not ids for ids in found.values()), found
    assert set(found) == {c.name for c in DEFAULT_CHECKS}


@pytest.mark.parametrize(
    ("check", "values"),
    [
        ("coordinates_in_range", {"lat": 95.0}),
        ("has_location", {"lat": None, "lon": None}),
        ("in_the_sea", {"lat": 59.5, "lon": 24.0, "locality": "Sea"}),
        ("phone_format", {"phones": ["+358912345678", "12345"]}),
        ("website_format", {"websites": ["ftp://example.fi"]}),
        ("confidence_in_range", {"confidence": 1.5}),
        ("pharmacy_has_phone", {"category": "pharmacy", "phones": None}),
        ("hotel_has_phone", {"category": "hotel", "phones": []}),
        ("far_from_locality", {"lat": 61.5, "lon": 23.76}),  # Tampere, filed in Helsinki
        ("outside_its_country", {"lat": 24.94, "lon": 60.17, "locality": "Swapped"}),
        ("name_category_mismatch", {"name": "Apteekki Kaisaniemi", "category": "restaurant"}),
        ("stale", {"update_time": datetime(2020, 1, 1, tzinfo=UTC)}),
    ],
)
def test_each_check_flags_the_planted_place(check: str, values: dict[str, Any]) -> None:
    found = flagged([*clean_town(), place("bad", **values)])
    assert found[check] == {"bad"}
    # Nothing else is blamed on the clean places.
    assert not any(ids - {"bad"} for ids in found.values()), found


def test_a_phone_of_three_places_is_a_shared_one_and_of_two_is_not() -> None:
    call_centre, entrances = ["+358205550000"], ["+358911111111"]
    rows = [
        *clean_town(),
        *(place(f"chain{i}", phones=call_centre, lat=60.2 + i / 100) for i in range(3)),
        place("hall", phones=entrances),
        place("hall-east", phones=[*entrances, "+358922222222"]),
    ]
    assert flagged(rows)["shared_phone"] == {"chain0", "chain1", "chain2"}
    (result,) = [
        r
        for r in run_checks(QualityInput(pa.Table.from_pylist(rows, schema=GOLDEN_PLACE_SCHEMA)))
        if r.name == "shared_phone"
    ]
    assert result.issues[0].detail == "its phone +358205550000 is the phone of 2 other places too"
    assert result.checked == len(rows)


def test_a_point_of_many_places_of_several_streets_is_a_geocoders_centre() -> None:
    def at(pid: str, street: str, lat: float = 60.2) -> dict[str, Any]:
        return place(pid, lat=lat, lon=24.9, address={"locality": "Helsinki", "street": street})

    centre = [at(f"centre{i}", f"Katu {i}") for i in range(5)]
    mall = [at(f"mall{i}", "Kauppakatu", lat=60.21) for i in range(6)]  # one street
    few = [at(f"few{i}", f"Tie {i}", lat=60.22) for i in range(4)]  # under five
    rows = [*clean_town(), *centre, *mall, *few]
    assert flagged(rows)["stacked_point"] == {f"centre{i}" for i in range(5)}
    table = pa.Table.from_pylist(rows, schema=GOLDEN_PLACE_SCHEMA)
    (result,) = [r for r in run_checks(QualityInput(table)) if r.name == "stacked_point"]
    assert result.issues[0].detail == "its point 60.2, 24.9 is that of 4 other places, of 5 streets"


def test_a_place_near_its_countrys_border_is_in_it_and_one_abroad_is_not() -> None:
    def at(pid: str, lat: float, lon: float, country: str | None) -> dict[str, Any]:
        return place(pid, lat=lat, lon=lon, address={"locality": pid, "country": country})

    rows = [
        at("haparanda", 65.8355, 24.1368, "SE"),  # across the river from Tornio, FI
        at("tornio", 65.8481, 24.1466, "FI"),
        at("valga", 57.7778, 26.0473, "EE"),  # one town with Valka, LV
        at("mariehamn", 60.0973, 19.9348, "FI"),  # Åland's (AX), filed as Finland's
        at("swapped", 24.94, 60.17, "FI"),
        at("vendor-hq", 59.3293, 18.0686, "FI"),  # Stockholm, filed as Finnish
        at("no-country", 24.94, 60.17, None),
    ]
    table = pa.Table.from_pylist(rows, schema=GOLDEN_PLACE_SCHEMA)
    (result,) = [r for r in run_checks(QualityInput(table)) if r.name == "outside_its_country"]
    assert [i.place_id for i in result.issues] == ["swapped", "vendor-hq"]
    assert result.checked == 6
    assert (
        result.issues[0].detail == "Place swapped at 24.94, 60.17 is far from FI (in the box of IR)"
    )


def test_likely_duplicates_are_places_whose_records_match_across() -> None:
    rows = clean_town(2)
    membership = pa.Table.from_pylist(
        [
            {"source": "a", "id": "1", "place_id": "ok0"},
            {"source": "b", "id": "2", "place_id": "ok1"},
            {"source": "b", "id": "3", "place_id": "ok0"},
        ],
        schema=MEMBERSHIP_SCHEMA,
    )
    pairs = pa.Table.from_pylist(
        [
            {
                "left_source": "a",
                "left_id": "1",
                "right_source": "b",
                "right_id": "2",
                "match_probability": 0.9,
            },
            {
                "left_source": "a",
                "left_id": "1",
                "right_source": "b",
                "right_id": "3",
                "match_probability": 0.99,
            },
        ],
        schema=pa.schema(list(PAIR_KEY_FIELDS)),
    )
    assert flagged(rows, pairs=pairs, membership=membership)["likely_duplicates"] == {"ok0"}
    low = pairs.set_column(4, "match_probability", pa.array([0.3, 0.99], pa.float32()))
    assert flagged(rows, pairs=low, membership=membership)["likely_duplicates"] == set()
    # Given the run's records, the detail says what each of the two is called.
    records = pa.table(
        {
            "source": ["a", "b", "b"],
            "id": ["1", "2", "3"],
            "names": [{"primary": n, "alternates": None} for n in ("Kahvila", "Kahvila Oy", None)],
            "operating_status": pa.array([None] * 3, pa.string()),
        }
    )
    table = pa.Table.from_pylist(rows, schema=GOLDEN_PLACE_SCHEMA)
    data = QualityInput(table, pairs=pairs, membership=membership, records=records)
    (found,) = [r for r in run_checks(data) if r.name == "likely_duplicates"]
    assert [(i.place_id, i.detail) for i in found.issues] == [
        ("ok0", "its record a/1 ('Kahvila') matches b/2 ('Kahvila Oy') of place ok1 (p = 0.90)")
    ]


def test_the_checks_say_the_same_whatever_order_polars_gives_the_rows() -> None:
    # A town with places filed in it from far away (flagged in id order, whichever way
    # the join put them), and a record two places' records match alike (p = 0.9 each):
    # the pair named is the first by its records' keys.
    far = [
        place(pid, lat=61.5 + i * 0.1, lon=23.76, name=f"Far {pid}")
        for i, pid in enumerate(["far3", "far1", "far2"])
    ]
    rows = [*clean_town(40), *far]
    membership = pa.Table.from_pylist(
        [{"source": "a", "id": "1", "place_id": "ok0"}]
        + [{"source": "b", "id": str(n), "place_id": f"ok{n}"} for n in range(1, 7)],
        schema=MEMBERSHIP_SCHEMA,
    )
    pairs = pa.Table.from_pylist(
        [
            {
                "left_source": "a",
                "left_id": "1",
                "right_source": "b",
                "right_id": str(n),
                "match_probability": 0.9,
            }
            for n in (5, 3, 1, 6, 2, 4)
        ],
        schema=pa.schema(list(PAIR_KEY_FIELDS)),
    )
    data = QualityInput(pa.Table.from_pylist(rows, schema=GOLDEN_PLACE_SCHEMA), pairs, membership)
    expected = run_checks(data)
    by_name = {r.name: r for r in expected}
    assert [i.place_id for i in by_name["far_from_locality"].issues] == sorted(p["id"] for p in far)
    (duplicate,) = by_name["likely_duplicates"].issues
    assert duplicate.detail == "its record a/1 matches b/1 of place ok1 (p = 0.90)"
    for seed in range(8):
        with rows_in_any_order(seed):
            assert run_checks(data) == expected, seed
    # A run whose input listed the records the other way writes each pair the other way
    # round: the same issue, from the place with the lower id.
    assert pairs.column_names == [
        "left_source",
        "left_id",
        "right_source",
        "right_id",
        "match_probability",
    ]
    turned = pairs.rename_columns(
        ["right_source", "right_id", "left_source", "left_id", "match_probability"]
    ).select(pairs.column_names)
    data = QualityInput(data.places, turned, membership)
    assert run_checks(data) == expected


def test_tables_count_every_issue() -> None:
    table = pa.Table.from_pylist(
        [*clean_town(), place("x", confidence=2.0, phones=["bad"])], schema=GOLDEN_PLACE_SCHEMA
    )
    results = run_checks(QualityInput(table))
    summary = results_table(results).to_pylist()
    issues = issues_table(results).to_pylist()
    assert sum(r["failed"] for r in summary) == len(issues) == 2
    assert {i["check"] for i in issues} == {"confidence_in_range", "phone_format"}
    assert all(i["severity"] == "error" for i in issues)
    failed = next(r for r in summary if r["check"] == "phone_format")
    assert not failed["passed"]
    assert "'bad' is not E.164" in failed["message"]


def test_the_land_mask_knows_land_from_sea() -> None:
    land = [(60.17, 24.94), (48.85, 2.35), (40.71, -74.0), (-33.87, 151.2), (35.68, 139.76)]
    sea = [(59.85, 25.5), (30.0, -40.0), (0.0, -150.0), (56.0, 3.0), (-40.0, 80.0)]
    points = np.array(land + sea)
    assert on_land(points[:, 0], points[:, 1]).tolist() == [True] * 5 + [False] * 5


def test_country_boxes_hold_their_countries_and_wrap_the_antimeridian() -> None:
    points = [
        (60.17, 24.94, "FI", True),
        (60.10, 19.93, "FI", True),  # Åland, in its own box (AX), Finland's territory
        (59.33, 18.07, "FI", False),  # Stockholm
        (-18.14, 178.44, "FJ", True),  # Suva, east of the antimeridian's box edge
        (-16.80, -179.90, "FJ", True),  # Fiji's islands west of it
        (-17.0, 0.0, "FJ", False),
        (60.17, 24.94, "XX", True),  # no box: not in doubt
    ]
    lat, lon, country, expected = (np.array(c, dtype=object) for c in zip(*points, strict=True))
    inside = in_country_box(lat.astype(float), lon.astype(float), country)
    assert inside.tolist() == expected.tolist()


def test_built_in_checks_as_a_pipeline_shapes_them() -> None:
    rows = [
        *clean_town(),
        place("old", update_time=datetime(2025, 1, 1, tzinfo=UTC)),  # 22 months before NOW
        place("hours", category="restaurant"),  # no opening hours
    ]
    table = pa.Table.from_pylist(rows, schema=GOLDEN_PLACE_SCHEMA)
    shaped = built_in_checks(
        skip=["in_the_sea"], stale_years=1.5, needs={"restaurant": ["opening_hours"]}
    )
    found = {
        r.name: {i.place_id for i in r.issues} for r in run_checks(QualityInput(table), shaped)
    }
    assert found["stale"] == {"old"}  # 3 years by default would pass it
    assert found["restaurant_has_opening_hour"] == {"hours"}
    assert "in_the_sea" not in found
    assert "pharmacy_has_phone" not in found  # the categories' needs are the pipeline's
    assert [c.name for c in built_in_checks()] == [c.name for c in DEFAULT_CHECKS]
    with pytest.raises(ConfigError, match="Did you mean 'stale'"):
        built_in_checks(skip=["stael"])


def test_a_check_of_ones_own_is_held_to_the_places_it_was_given() -> None:
    table = pa.Table.from_pylist([*clean_town(), place("x9", name="Bar X")], GOLDEN_PLACE_SCHEMA)
    data = QualityInput(table)

    def bars(places: pl.DataFrame, word: str) -> pl.DataFrame:
        return places.filter(pl.col("name").str.contains(word)).select("id")

    result = FunctionCheck("named_bar", bars, "error", "no bars", {"word": "Bar"}).run(data)
    assert [(i.place_id, i.detail, i.severity) for i in result.issues] == [
        ("x9", "no bars", "error")
    ]
    assert result.checked == len(clean_town()) + 1
    as_pandas = FunctionCheck("p", lambda places: places.head(1).select("id").to_pandas())
    assert [i.place_id for i in as_pandas.run(data).issues] == ["ok0"]
    for wrong, says in [
        (lambda places: places.select("name"), "must return the places it flags"),
        (lambda places: pl.DataFrame({"id": ["nowhere"]}), "1 ids that are no place"),
        (lambda places: 1 / 0, "failed: ZeroDivisionError"),
    ]:
        with pytest.raises(ConfigError, match=says):
            FunctionCheck("mine", wrong).run(data)


def _pairs(*scored: tuple[str, str, float]) -> pa.Table:
    """Scored pairs of records ``SOURCE/ID``."""
    return pa.Table.from_pylist(
        [
            {
                "left_source": left.split("/")[0],
                "left_id": left.split("/")[1],
                "right_source": right.split("/")[0],
                "right_id": right.split("/")[1],
                "match_probability": p,
            }
            for left, right, p in scored
        ],
        schema=pa.schema(list(PAIR_KEY_FIELDS)),
    )


def test_a_likely_pair_among_unlike_ones_across_two_places_is_not_a_duplicate() -> None:
    # A museum (osm/1, vendor/1) and its bistro (osm/2, vendor/2): the museum's vendor
    # record matches the bistro's OSM object strongly, the rest across are unlike.
    rows = clean_town(2)
    membership = pa.Table.from_pylist(
        [
            {"source": s, "id": i, "place_id": f"ok{int(i) - 1}"}
            for s, i in (("osm", "1"), ("vendor", "1"), ("osm", "2"), ("vendor", "2"))
        ],
        schema=MEMBERSHIP_SCHEMA,
    )
    unlike = _pairs(
        ("vendor/1", "osm/2", 0.97),
        ("osm/1", "osm/2", 0.1),
        ("osm/1", "vendor/2", 0.05),
        ("vendor/1", "vendor/2", 0.2),
        ("osm/1", "vendor/1", 0.99),  # within a place: not across
    )
    assert flagged(rows, pairs=unlike, membership=membership)["likely_duplicates"] == set()
    # The same strong pair where the others across lean the same way: flagged, and the
    # detail says what the pairs across say.
    alike = unlike.set_column(
        4, "match_probability", pa.array([0.97, 0.6, 0.3, 0.4, 0.99], pa.float32())
    )
    table = pa.Table.from_pylist(rows, schema=GOLDEN_PLACE_SCHEMA)
    data = QualityInput(table, pairs=alike, membership=membership)
    (found,) = [r for r in run_checks(data) if r.name == "likely_duplicates"]
    assert [(i.place_id, i.detail) for i in found.issues] == [
        (
            "ok0",
            "its record vendor/1 matches osm/2 of place ok1 "
            "(p = 0.97; 0.57 on average over the 4 pairs scored across the two)",
        )
    ]
    for seed in range(4):
        with rows_in_any_order(seed):
            assert [r for r in run_checks(data) if r.name == "likely_duplicates"] == [found]
