"""Golden files: normalizer output on real names, phones, websites, addresses and categories.

The inputs come from the bundled Helsinki extract (ODbL, © OpenStreetMap contributors) plus a
few addresses from other countries; each expected value was checked by hand. A change that
alters one of them must be deliberate: update the file in the same commit and say why.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from poiflow.normalize import (
    canonical_url,
    name_key,
    parse_address,
    parse_phones,
    registrable_domain,
    taxonomy,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "normalize"


def rows(name: str) -> list[list[str]]:
    lines = (FIXTURES / name).read_text(encoding="utf-8").splitlines()
    return [line.split("\t") for line in lines if line and not line.startswith("#")]


@pytest.mark.parametrize(("name", "expected"), rows("names.tsv"))
def test_name_keys(name: str, expected: str) -> None:
    assert name_key(name) == expected


@pytest.mark.parametrize(("phone", "country", "expected"), rows("phones.tsv"))
def test_phones(phone: str, country: str, expected: str) -> None:
    assert ";".join(parse_phones(phone, country).numbers) == expected


@pytest.mark.parametrize(("website", "url", "domain"), rows("websites.tsv"))
def test_websites(website: str, url: str, domain: str) -> None:
    assert canonical_url(website) == url
    assert registrable_domain(url) == domain


@pytest.mark.parametrize("row", rows("addresses.tsv"), ids=lambda r: r[0])
def test_addresses(row: list[str]) -> None:
    line, country, *expected = row
    parts = parse_address(line, country)
    got = [parts.street, parts.housenumber, parts.unit, parts.postcode, parts.locality]
    assert [g or "" for g in got] == expected


@pytest.mark.parametrize(("label", "expected"), rows("categories.tsv"))
def test_categories(label: str, expected: str) -> None:
    assert str(taxonomy().from_label(label)) == expected
