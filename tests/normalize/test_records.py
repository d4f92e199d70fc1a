"""``normalize_records`` normalizes a few rows row by row (``normalize_rows``, a request's
records, no Arrow call) and many column by column: both must give the same places."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from poiflow.normalize import normalize_records
from poiflow.normalize import records as module
from poiflow.normalize.records import normalize_rows
from poiflow.sources import records_from_rows


def _maybe(*values: str) -> st.SearchStrategy[str | None]:
    return st.one_of(st.none(), st.sampled_from(values))


# Values normalization keeps, rewrites, parses or withholds with a reason.
_row = st.fixed_dictionaries(
    {
        "names": st.fixed_dictionaries(
            {
                "primary": _maybe("Café Nord", " Kauppa  Oy ", "ÄIJÄ", "x"),
                "alternates": st.one_of(
                    st.none(),
                    st.lists(
                        st.fixed_dictionaries(
                            {"value": _maybe("Cafe Nord", "Nordea", ""), "language": _maybe("fi")}
                        ),
                        max_size=2,
                    ),
                ),
            }
        ),
        "categories": st.one_of(
            st.none(),
            st.fixed_dictionaries(
                {
                    "primary": _maybe("cafe", "amenity=pharmacy", "no such thing"),
                    "alternate": st.one_of(st.none(), st.lists(_maybe("bank", "shop"), max_size=2)),
                }
            ),
        ),
        "address": st.one_of(
            st.none(),
            st.fixed_dictionaries(
                {
                    "freeform": _maybe("Mannerheimintie 12, 00100 Helsinki", "somewhere"),
                    "street": _maybe("Aleksanterinkatu"),
                    "housenumber": _maybe("1 b", "12"),
                    "postcode": _maybe("00170", "sw1a 1aa"),
                    "locality": _maybe("Helsinki"),
                    "country": _maybe("FI", "Finland", "Narnia"),
                }
            ),
        ),
        "phones": st.one_of(
            st.none(),
            st.lists(
                _maybe("+358 9 123 456", "09 123 456", "call", "(212) 555-0123", "09 1; 040 2")
            ),
        ),
        "websites": st.one_of(
            st.none(),
            st.lists(
                _maybe("nordea.fi/x", "not a url", "HTTPS://Nordea.FI/?utm_source=x", "a.fi:81"),
                max_size=2,
            ),
        ),
        "emails": st.one_of(st.none(), st.lists(_maybe("a@b.fi", "nope"), max_size=2)),
        "brand": st.one_of(
            st.none(),
            st.fixed_dictionaries({"name": _maybe("K-Market"), "wikidata": _maybe("Q1")}),
        ),
        "operating_status": _maybe("open", "closed", "sometimes"),
        "opening_hours": _maybe("Mo-Fr 08:00-16:00", "mon-fri 8am-4pm", "by appointment", " "),
        "source_category": _maybe("Kahvila"),
        "at": st.one_of(st.none(), st.sampled_from([(60.17, 24.94), (59.33, 18.07), (0.0, 0.0)])),
    }
)


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(_row, min_size=1, max_size=5))
def test_a_few_rows_normalize_as_many_do(rows: list[dict]) -> None:
    flat = []
    for i, r in enumerate(rows):
        r = dict(r)
        lat, lon = r.pop("at") or (None, None)
        flat.append(
            {**r, "source": "s", "id": str(i), "origin": f"row {i}", "lat": lat, "lon": lon}
        )
    records = records_from_rows(flat)
    few = normalize_records(records)
    few_rows, module.FEW_ROWS = module.FEW_ROWS, 0  # every row through the columnar path
    try:
        columnar = normalize_records(records)
    finally:
        module.FEW_ROWS = few_rows
    assert few.places.equals(columnar.places), (few.places.to_pylist(), columnar.places.to_pylist())
    assert few.problems == columnar.problems
    assert few.places.num_rows == len(rows)
    as_rows, problems = normalize_rows(records.to_pylist())
    assert as_rows == columnar.places.to_pylist()
    assert problems == columnar.problems


def test_a_phone_value_of_many_parts_that_are_no_numbers_is_one_reason() -> None:
    # A description in the phone column splits into thousands of parts: each part its own
    # reason copied the whole value into the quarantine once a part (minutes, gigabytes).
    # A few bad parts are each still said.
    text = "; ".join(["09 123 4567", *(f"soita {n}" for n in range(2000))])
    few = "09 123 4567; call us; ask for Matti"
    record = {
        "source": "s",
        "origin": "row",
        "names": {"primary": "Kahvila"},
        "address": {"country": "FI"},
    }
    rows = [{**record, "id": "1", "phones": [text]}, {**record, "id": "2", "phones": [few]}]
    records = records_from_rows(rows)
    batch = normalize_records(records)
    by_row = normalize_rows(records.to_pylist())
    for places, problems in ((batch.places.to_pylist(), batch.problems), by_row):
        assert [p["phones"] for p in places] == [["+35891234567"], ["+35891234567"]]
        assert [(p.row, p.reason) for p in problems] == [
            (
                0,
                "'soita 0', 'soita 1', 'soita 2', 'soita 3', 'soita 4' and 1,995 more are not "
                "phone numbers",
            ),
            (1, "'call us' is not a phone number"),
            (1, "'ask for Matti' is not a phone number"),
        ]


def test_a_record_escaped_for_the_web_is_read_as_written() -> None:
    """An XML feed in ASCII: its text fields' references are read, its category label
    too (kept as given for provenance)."""
    escaped = {"name": "Caf&#233; &amp; Bar", "street": "H&auml;meentie", "city": "Espoo"}
    plain = {"name": "Café & Bar", "street": "Hämeentie", "city": "Espoo"}
    places = []
    for i, (text, label) in enumerate(((escaped, "Caf&#233;"), (plain, "Café"))):
        record = {
            "source": "s",
            "id": str(i),
            "origin": f"row {i}",
            "names": {"primary": text["name"]},
            "categories": {"primary": label},
            "address": {"street": text["street"], "locality": text["city"]},
        }
        places.append(normalize_records(records_from_rows([record])).places.to_pylist()[0])
    first, second = places
    for field in ("names", "categories", "keys"):
        assert first[field] == second[field], field
    assert first["address"]["street"] == "Hämeentie"
    assert (first["source_category"], second["source_category"]) == ("Caf&#233;", "Café")
    assert first["categories"]["primary"] == "cafe"


def test_a_postcode_a_table_wrote_as_a_number_gets_its_zeros_back() -> None:
    """The country is the record's own, else where its point lies; without either the
    key is the postcode as written."""
    given = [
        ({"postcode": "170", "country": "FI"}, None, "00170"),
        ({"postcode": "170.0"}, (60.17, 24.94), "00170"),  # in Helsinki
        ({"postcode": "1067"}, (51.05, 13.74), "01067"),  # in Dresden
        ({"postcode": "170"}, None, "170"),
    ]
    for i, (address, point, key) in enumerate(given):
        lat, lon = point or (None, None)
        record = {
            "source": "s",
            "id": str(i),
            "origin": f"row {i}",
            "names": {"primary": "Kahvila"},
            "address": address,
            "lat": lat,
            "lon": lon,
        }
        place = normalize_records(records_from_rows([record])).places.to_pylist()[0]
        assert place["keys"]["postcode"] == key, address
        assert place["address"]["postcode"] == address["postcode"]  # shown as given
