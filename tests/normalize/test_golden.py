"""Golden files: normalizer output on real names, phones, websites, addresses and categories.

The inputs come from the bundled Helsinki extract (ODbL, © OpenStreetMap contributors) plus a
few addresses from other countries; each expected value was checked by hand. A change that
alters one of them must be deliberate: update the file in the same commit and say why.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from poiflow.generate.habits import read_as_windows_1252
from poiflow.normalize import (
    canonical_url,
    name_key,
    parse_address,
    parse_phones,
    registrable_domain,
    taxonomy,
)
from poiflow.pipeline import ingest
from poiflow.text import repair_encoding

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


@pytest.fixture(scope="module")
def helsinki_records(helsinki_pbf: Path, tmp_path_factory: pytest.TempPathFactory) -> pa.Table:
    out = tmp_path_factory.mktemp("helsinki") / "places.parquet"
    ingest([helsinki_pbf], out, workers=1)
    return pq.read_table(out)


def test_the_extracts_text_read_with_the_wrong_encoding_is_repaired_and_as_written_kept(
    helsinki_records: pa.Table,
) -> None:
    """Every name, alternate name, street and locality of the Helsinki extract: as written,
    none is taken for a wrong decoding; read as Windows-1252 once or twice (a spreadsheet's
    CSV), each is itself again."""
    texts = set()
    for names in helsinki_records.column("names").to_pylist():
        texts.add(names["primary"])
        texts.update(a["value"] for a in names["alternates"] or ())
    for address in helsinki_records.column("address").to_pylist():
        texts.update(v for k, v in (address or {}).items() if k in ("street", "locality") and v)
    accented = sorted(t for t in texts if not t.isascii())
    assert len(accented) > 200
    assert [t for t in texts if repair_encoding(t) != t] == []
    once = [read_as_windows_1252(t) for t in accented]
    assert [repair_encoding(t) for t in once] == accented
    assert [repair_encoding(read_as_windows_1252(t)) for t in once] == accented
