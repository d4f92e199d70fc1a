"""Arbitrary small records for the parity tests of the plain-Python paths (a few
records' keys and features) with the vectorized ones."""

from __future__ import annotations

import pyarrow as pa
from hypothesis import strategies as st

from poiflow.normalize import normalize_records
from poiflow.sources import records_from_rows

# Words that meet each other: shared, one typo apart, short, accented, chain-like, and
# written without spaces (a syllable a character once folded).
_WORDS = (
    "cafe",
    "nord",
    "nordea",
    "norda",
    "kauppa",
    "kaupa",
    "äijä",
    "östra",
    "ab",
    "x",
    "oy",
    "山田",
    "田中カフェ",
    "株式会社",
)
_CATEGORIES = (None, "cafe", "restaurant", "airport", "park", "pharmacy", "bank", "unknown")

names = st.lists(st.sampled_from(_WORDS), min_size=1, max_size=4).map(" ".join)
_maybe = st.one_of(st.none(), st.sampled_from(("Mannerheimintie", "Aleksanterinkatu")))

row = st.fixed_dictionaries(
    {
        "names": st.fixed_dictionaries(
            {
                "primary": names,
                "alternates": st.lists(st.fixed_dictionaries({"value": names}), max_size=2),
            }
        ),
        # Within a few kilometres of each other, or without coordinates, or rounded to 2
        # or 1 decimals (their rings are wider, and typo variants meet them).
        "at": st.one_of(
            st.none(),
            st.tuples(st.floats(60.15, 60.19), st.floats(24.90, 24.98)),
            st.tuples(st.sampled_from((60.16, 60.17, 60.2)), st.sampled_from((24.93, 24.9))),
        ),
        "categories": st.sampled_from(_CATEGORIES).map(lambda c: {"primary": c}),
        "phones": st.lists(st.sampled_from(("+358 9 123 456", "+358 40 555 0101")), max_size=2),
        "websites": st.lists(
            st.sampled_from(
                (
                    "https://nordea.fi/x",
                    "http://www.nordea.fi/fi/x/",
                    "https://nordea.fi/y",
                    "www.example.com",
                    "example.com/en",
                    "kauppa.fi",
                )
            ),
            max_size=2,
        ),
        "address": st.fixed_dictionaries(
            {
                "street": _maybe,
                "housenumber": st.one_of(
                    st.none(), st.sampled_from(("1", "12", "12 B", "12b", "12-14", "11-13", "3A"))
                ),
                "postcode": st.one_of(st.none(), st.sampled_from(("00100", "00170"))),
                "locality": st.one_of(st.none(), st.just("Helsinki")),
            }
        ),
        "source": st.sampled_from(("a", "b")),
    }
)


def records_of(rows: list[dict]) -> pa.Table:
    """Normalized records (``PLACE_SCHEMA``) of rows drawn from ``row``."""
    flat = []
    for i, r in enumerate(rows):
        r = dict(r)
        at = r.pop("at")
        lat, lon = at if at else (None, None)
        flat.append({**r, "id": str(i), "origin": f"row {i}", "lat": lat, "lon": lon})
    return normalize_records(records_from_rows(flat)).places
