"""A request's few places are read, validated and normalized as rows, without Arrow
(``flat_record_rows`` then ``prepare_rows``); files and batches go through tables
(``flat_records`` then ``prepare_records``). Both must give the same places and hold back
the same records and values with the same reasons."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from poiflow.pipeline.preparing import prepare_records, prepare_rows
from poiflow.sources import flat_record_rows, flat_records


def _maybe(*values: object) -> st.SearchStrategy[object]:
    return st.one_of(st.none(), st.sampled_from(values))


# Flat fields with values that pass, are rewritten, parsed, withheld or refuse the record.
_place = st.fixed_dictionaries(
    {"id": _maybe("a1", " ", "", "b 2"), "name": _maybe("Café Nord", "!!!", "  ", "ÄIJÄ oy")},
    optional={
        "source": _maybe("vendor", " osm "),
        "lat": _maybe(60.17, "60,17", 0, "north", 95.5, "-33.9"),
        "lon": _maybe(24.94, "24.94", 0, 200, "east"),
        "category": _maybe("cafe", "amenity=pharmacy", "no such thing"),
        "street": _maybe("Aleksanterinkatu", " "),
        "housenumber": _maybe("1 b", 12),
        "postcode": _maybe("00170", "sw1a 1aa"),
        "city": _maybe("Helsinki"),
        "country": _maybe("FI", "Finland", "Narnia"),
        "address": _maybe("Mannerheimintie 12, 00100 Helsinki", "somewhere"),
        "phone": _maybe("+358 9 123 456", "09 123 456", "call me"),
        "website": _maybe("nordea.fi/x", "not a url"),
        "email": _maybe("a@b.fi", "nope"),
        "brand": _maybe("K-Market"),
        "opening_hours": _maybe("Mo-Fr 08:00-16:00"),
        "operating_status": _maybe("open", "closed", "sometimes"),
        "update_time": _maybe(
            "2024-01-02", "2024-01-02T03:04:05.123456+02:00", "2024-06-01T10:00:00Z", "yesterday"
        ),
    },
)


@settings(max_examples=150, deadline=None)
@given(objects=st.lists(_place, min_size=1, max_size=5))
def test_rows_are_prepared_as_tables_are(objects: list[dict]) -> None:
    origins = [f"request[{i}]" for i in range(len(objects))]
    places, quarantine = prepare_records(flat_records(objects, "request", origins), "request")
    row_places, row_quarantine = prepare_rows(
        flat_record_rows(objects, "request", origins), "request"
    )
    assert row_places == places.to_pylist()
    assert row_quarantine == quarantine.to_pylist()
