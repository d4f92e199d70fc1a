from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from poiflow.quality import DuplicateIds, validate_records, validate_rows
from poiflow.sources import records_from_rows


def rec(
    i: str | None,
    name: str | None,
    lat: float | None = 60.0,
    lon: float | None = 24.0,
    issues: list[str] | None = None,
    source: str = "s",
) -> dict:
    return {
        "source": source,
        "id": i,
        "names": {"primary": name},
        "lat": lat,
        "lon": lon,
        "issues": issues,
        "origin": f"f.csv:{i}",
    }


def table(*rows: dict) -> pa.Table:
    return records_from_rows(list(rows))


def test_each_rule_names_its_reason() -> None:
    verdict = validate_records(
        table(
            rec("1", "Fine"),
            rec("2", "  "),
            rec("", "No id"),
            rec("4", "!!! ..."),
            rec("5", "Half", lon=None),
            rec("6", "North", lat=91.0),
            rec("7", "East", lon=-181.0),
            rec("8", "Zero", 0.0, 0.0),
            rec("9", "Parse", None, None, issues=["lat: 'x' is not a number"]),
            rec("10", "No point", None, None),
            rec("11", "NaN", math.nan, math.nan),
        )
    )
    # (0, 0) passes: normalization withholds the point, and the record goes on.
    assert verdict.valid.tolist() == [
        True,
        False,
        False,
        False,
        False,
        False,
        False,
        True,
        False,
        True,
        True,
    ]
    assert verdict.reasons[1] == "name is missing"
    assert verdict.reasons[2] == "id is missing"
    assert verdict.reasons[3] == "name has no letters or digits"
    assert verdict.reasons[4] == "only one of lat and lon is given"
    assert verdict.reasons[5] == "lat 91.0 is out of range [-90, 90]"
    assert verdict.reasons[6] == "lon -181.0 is out of range [-180, 180]"
    assert verdict.reasons[7] is None
    assert verdict.reasons[8] == "lat: 'x' is not a number"  # not also "only one of lat and lon"
    assert verdict.held_back == 7


def test_a_placeholder_for_a_name_is_no_name() -> None:
    """What a feed writes where it has no name ("Unknown", "N/A", "<unnamed>") is held
    back as no name is, with what it was: records so named would meet each other."""
    names = ["Unknown", "<Unnamed>", "N/A", "(no name)", "NIMETÖN", "Unbekannt", "None"]
    kept = ["Unknown Pleasures", "Nameless Bar", "Nona", "Café Anonymous"]
    records = [rec(str(i), name) for i, name in enumerate([*names, *kept])]
    for verdict in (validate_records(table(*records)), validate_rows(records)):
        assert verdict.valid.tolist() == [False] * len(names) + [True] * len(kept)
        assert verdict.reasons[1] == "name '<Unnamed>' is what a feed writes for no name"


def test_metres_of_another_coordinate_system_are_said_to_be_so() -> None:
    records = (rec("1", "TM35FIN", 6672469.0, 385785.0), rec("2", "Astray", 95.0, 24.9))
    verdicts = (validate_records(table(*records)), validate_rows(records))
    for verdict in verdicts:
        assert verdict.reasons[0] == (
            "lat 6672469.0 is out of range [-90, 90]; lon 385785.0 is out of range "
            "[-180, 180]; coordinates in metres of another coordinate system? name it with "
            "crs in a mapping"
        )
        assert verdict.reasons[1] == "lat 95.0 is out of range [-90, 90]"


def test_a_name_or_street_longer_than_any_places_is_held_back() -> None:
    # A description, or a row whose quotes broke, in the name: matching compares names
    # pair by pair, and a name of megabytes stalled it (ten of 200,000 characters: minutes).
    long, fine = "Kahvila " * 70, "Kahvila " * 60  # 560 and 480 characters
    records = [
        rec("1", long),
        rec("2", fine),
        {**rec("3", "Baari"), "address": {"street": "Katu " * 101}},
        {**rec("4", "Baari"), "names": {"primary": "Baari", "alternates": [{"value": long}]}},
        rec("5", "!" * 600),
    ]
    for verdict in (validate_records(table(*records)), validate_rows(records)):
        assert verdict.valid.tolist() == [False, True, False, False, False]
        assert verdict.reasons[0] == (
            "name is 560 characters long: longer than any place's (at most 500), a "
            "description or a broken row"
        )
        assert verdict.reasons[2].startswith("street is 505 characters long")
        assert verdict.reasons[3].startswith("another name is 560 characters long")
        assert verdict.reasons[4].startswith("name has no letters or digits; name is 600")


def test_several_reasons_are_joined() -> None:
    verdict = validate_records(table(rec(None, None, lat=100.0)))
    assert (
        verdict.reasons[0] == "id is missing; name is missing; lat 100.0 is out of range [-90, 90]"
    )


def test_duplicate_ids_across_batches_and_sources() -> None:
    seen = DuplicateIds()
    first = table(rec("1", "A"), rec("1", "B", source="other"))
    second = table(rec("1", "C"), rec("2", "D"))
    assert seen.check(first, validate_records(first).valid) == [None, None]
    repeat = seen.check(second, validate_records(second).valid)
    assert repeat[0] == "duplicate id '1' in source 's' (first at f.csv:1)"
    assert repeat[1] is None


_key_row = st.tuples(
    st.sampled_from(["s", "t"]),
    st.sampled_from(["1", "2", "3"]),
    st.sampled_from([None, "", "f.csv:7", "g.csv:9"]),
    st.booleans(),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(_key_row, max_size=6), max_size=4))
def test_duplicate_ids_name_the_first_valid_record_as_a_dictionary_of_all_would(
    batches: list[list[tuple[str, str, str | None, bool]]],
) -> None:
    seen, first = DuplicateIds(), {}
    for rows in batches:
        records = pa.table(
            {name: [row[k] for row in rows] for k, name in enumerate(["source", "id", "origin"])},
            schema=pa.schema(
                [("source", pa.string()), ("id", pa.string()), ("origin", pa.string())]
            ),
        )
        valid = np.array([row[3] for row in rows], dtype=bool)
        expected: list[str | None] = []
        for source, record_id, origin, ok in rows:
            if not ok:
                expected.append(None)
            elif (source, record_id) in first:
                where = first[(source, record_id)]
                expected.append(
                    f"duplicate id '{record_id}' in source '{source}' (first at {where})"
                )
            else:
                first[(source, record_id)] = origin or "an earlier row"
                expected.append(None)
        assert seen.check(records, valid) == expected


_value = st.one_of(
    st.none(),
    st.sampled_from(
        ["", "  ", "\u3000", "\x1c", "!!!", "x", " Café ", "Unknown", "<unnamed>", "K" * 501]
    ),
    st.text(max_size=4),
)
_coordinate = st.one_of(st.none(), st.sampled_from([0.0, 60.5, -91.0, 181.0, math.nan, -0.0]))
_issues = st.one_of(
    st.none(),
    st.lists(
        st.sampled_from(["lat: 'x' is not a number", "update_time: 'y' is not a time"]), max_size=2
    ),
)


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(
        st.tuples(_value, _value, _coordinate, _coordinate, _issues), min_size=1, max_size=6
    )
)
def test_rows_are_validated_as_tables_are(rows: list[tuple]) -> None:
    records = table(*(rec(i, name, lat, lon, issues) for i, name, lat, lon, issues in rows))
    by_column, by_row = validate_records(records), validate_rows(records.to_pylist())
    assert by_row.valid.tolist() == by_column.valid.tolist()
    assert by_row.reasons == by_column.reasons
