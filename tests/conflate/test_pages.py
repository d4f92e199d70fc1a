"""Page keys: which page of a site a website names, and each record's pages."""

from __future__ import annotations

import re

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from poiflow.conflate.pages import page_key, record_pages


@pytest.mark.parametrize(
    ("url", "page"),
    [
        ("https://www.Raflaamo.fi/fi/helsinki/la-famiglia/", "raflaamo.fi/helsinki/la-famiglia"),
        ("http://m.example.com/stores/kamppi#map", "example.com/stores/kamppi"),
        ("https://example.com/sv-fi/index.html", None),
        ("http://example.com", None),
        ("http://example.com/?store=12", "example.com/?store=12"),
        ("http://example.com?store=12", "example.com/?store=12"),
    ],
)
def test_page_key_examples(url: str, page: str | None) -> None:
    assert page_key(url) == page


_SEGMENT = st.text("abcdefghijklmnopqrstuvwxyz0123456789-_.", min_size=1, max_size=12)


@settings(max_examples=300, deadline=None)
@given(
    host=st.from_regex(r"[a-z0-9]{1,10}\.(fi|com|co\.uk)", fullmatch=True).filter(
        lambda h: re.match(r"(www\d*|m)\.", h) is None
    ),
    path=st.lists(_SEGMENT, max_size=4),
    scheme=st.sampled_from(("http://", "https://", "")),
    www=st.sampled_from(("", "www.", "www2.", "m.")),
    language=st.sampled_from(("", "fi/", "en-gb/")),
    slash=st.booleans(),
    upper=st.booleans(),
)
def test_page_key_ignores_how_a_page_is_written(
    host: str,
    path: list[str],
    scheme: str,
    www: str,
    language: str,
    slash: bool,
    upper: bool,
) -> None:
    plain = page_key(f"http://{host}/{'/'.join(path)}")
    url = f"{scheme}{www}{host}/{language}{'/'.join(path)}{'/' if slash else ''}"
    assert page_key(url.upper() if upper else url) == plain
    if plain is not None:
        assert page_key(f"http://{plain}") == plain  # a key keys to itself
        assert plain.startswith(host.lower() + "/")


_URLS = st.builds(
    "".join,
    st.tuples(
        st.sampled_from(("", "http://", "HTTPS://", "a:b://", "://")),
        st.text("abW.:", max_size=5),
        st.sampled_from(("", "/", "?", "#", "/?", "//", "/en/")),
        st.text("ab:/?#.W", max_size=8),
    ),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(_URLS, max_size=3), min_size=1, max_size=6))
def test_the_pages_of_records_are_page_key_of_each_website(websites: list[list[str]]) -> None:
    # Only URLs with more than a host are keyed: that shortcut must lose no page.
    records = pa.table(
        {"source": ["a"] * len(websites), "websites": websites},
        schema=pa.schema([("source", pa.string()), ("websites", pa.list_(pa.string()))]),
    )
    expected = [
        (row, page)
        for row, urls in enumerate(websites)
        for page in dict.fromkeys(page_key(u) for u in urls)
        if page is not None
    ]
    assert record_pages(records).rows() == expected
