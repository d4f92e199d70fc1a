"""Normalize a table of validated source records into places (``PLACE_SCHEMA``).

Every normalizer is a pure function of one value; this module applies them column-wise,
once per distinct value (chains repeat names, cities repeat streets), and collects the
values that could not be normalized so that nothing is dropped silently.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from poiflow.normalize.addresses import parse_address, postcode_key, street_key
from poiflow.normalize.columns import (
    FieldProblem,
    RowColumns,
    TableColumns,
    once,
    once_lists,
    struct_array,
    struct_row,
)
from poiflow.normalize.contact_lists import (
    MISFILED,
    email_values,
    misfiled_contacts,
    normalize_lists,
    phone_values,
    website_values,
)
from poiflow.normalize.countries import country_code, places_at
from poiflow.normalize.hours import canonical_hours
from poiflow.normalize.house_numbers import house_number_parts, housenumber_key
from poiflow.normalize.name_readings import keep_as_written, read_contacts, read_names
from poiflow.normalize.names import brand_key, name_key
from poiflow.normalize.phones import plain_e164
from poiflow.normalize.websites import plain_urls, registrable_domain, registrable_domains
from poiflow.schema import (
    ADDRESS_FIELDS,
    ADDRESS_TYPE,
    KEYS_TYPE,
    PLACE_SCHEMA,
    POINT_FIELD,
    UNKNOWN_CATEGORY,
)
from poiflow.taxonomy import taxonomy
from poiflow.text import REPAIRS, clean_text, fold, kept_examples, repairs_of

__all__ = [
    "NULL_ISLAND",
    "NormalizedBatch",
    "normalize_records",
    "normalize_rows",
]


_STATUS: Final = {
    "open": "open",
    "opened": "open",
    "operational": "open",
    "active": "open",
    "temporarily closed": "temporarily_closed",
    "temporarily_closed": "temporarily_closed",
    "closed temporarily": "temporarily_closed",
    "closed": "permanently_closed",
    "permanently closed": "permanently_closed",
    "permanently_closed": "permanently_closed",
    "closed permanently": "permanently_closed",
    "defunct": "permanently_closed",
}


@dataclass(frozen=True, slots=True)
class NormalizedBatch:
    """The places of one batch, the values withheld from them, and how many records had a
    name, street, town or brand repaired (``repaired``: by what, of ``poiflow.text.REPAIRS``
    and of ``name_readings.read_names``; only repairs that some record had), with the
    first values each repair was made of (``repair_examples``)."""

    places: pa.Table
    problems: tuple[FieldProblem, ...]
    repaired: Mapping[str, int] = field(default_factory=dict)
    repair_examples: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


NULL_ISLAND: Final = (
    "the point (0, 0), where a geocoder puts an address it could not place: not where the place is"
)
_UNREAD_HOURS: Final = (
    "not opening hours as OpenStreetMap writes them (Mo-Fr 09:00-17:00) nor as people "
    "write them (Mon-Fri 9am-5pm)"
)


FEW_ROWS: Final = 64
"""Up to this many rows (a request's records) go through ``normalize_rows``: Arrow's
per-call overhead is most of the time for one row. Both ways give the same places (a
test holds them to it)."""


def normalize_records(records: pa.Table) -> NormalizedBatch:
    """Normalize validated source records (``SOURCE_RECORD_SCHEMA``) into places.

    Args:
        records: Records that passed validation: each has an id and a name.

    Returns:
        The places (``PLACE_SCHEMA``, same rows in the same order) and every value that was
        withheld (an unparsable phone, a website that is not a URL, an unknown status).
    """
    if records.num_rows <= FEW_ROWS:
        rows, problems, done = _normalized_rows(records.to_pylist())
        return NormalizedBatch(
            pa.Table.from_pylist(rows, schema=PLACE_SCHEMA),
            problems,
            done["repaired"],
            done["repair_examples"],
        )
    done, problems = _normalize(TableColumns(records))
    names_array = pa.StructArray.from_arrays(
        [
            pa.array(done["primary"], pa.string()),
            pa.array(done["alternates"], PLACE_SCHEMA.field("names").type.field("alternates").type),
        ],
        fields=list(PLACE_SCHEMA.field("names").type),
    )
    columns: dict[str, Any] = {
        "source": records.column("source"),
        "id": records.column("id"),
        "names": names_array,
        "categories": pa.array(done["categories"], PLACE_SCHEMA.field("categories").type),
        "source_category": pa.array(done["source_category"], pa.string()),
        "lat": _withheld(records.column("lat"), done["nowhere"]),
        "lon": _withheld(records.column("lon"), done["nowhere"]),
        "address": struct_array(done["address"], ADDRESS_TYPE),
        "phones": pa.array(done["phones"], pa.list_(pa.string())),
        "websites": pa.array(done["websites"], pa.list_(pa.string())),
        "emails": pa.array(done["emails"], pa.list_(pa.string())),
        "brand": struct_array(done["brand"], PLACE_SCHEMA.field("brand").type),
        "opening_hours": pa.array(done["opening_hours"], pa.string()),
        "operating_status": pa.array(done["operating_status"], pa.string()),
        "update_time": records.column("update_time"),
        "origin": records.column("origin"),
        "keys": struct_array(done["keys"], KEYS_TYPE),
    }
    places = pa.Table.from_pydict(columns, schema=PLACE_SCHEMA)
    return NormalizedBatch(places, problems, done["repaired"], done["repair_examples"])


def _repaired(
    n: int, columns: Sequence[Sequence[str | None]]
) -> tuple[dict[str, int], dict[str, tuple[str, ...]]]:
    """How many of ``n`` records had a value of ``columns`` repaired, by what (the
    ``REPAIRS`` some record had), each value looked at once; and the values of the first
    records of each (a record's of the first of ``columns`` that had it)."""
    bits = np.zeros(n, dtype=np.int8)
    each = [np.asarray(once(v, lambda v: repairs_of(v) if v else 0), np.int8) for v in columns]
    for found in each:
        bits |= found
    if not bits.any():
        return {}, {}
    made = [(bit, what) for bit, what in REPAIRS.items() if (bits & bit).any()]
    examples = {
        what: kept_examples(
            (),
            (
                next(v[row] for v, found in zip(columns, each, strict=True) if found[row] & bit)
                for row in np.flatnonzero(bits & bit).tolist()
            ),
        )
        for bit, what in made
    }
    return {what: int(((bits & bit) > 0).sum()) for bit, what in made}, examples


def _split_house_numbers(address: dict[str, list[Any]]) -> None:
    """A floor or flat written after the house number moved to the unit, and the street
    written before it left out (:func:`house_number_parts`), in place; a number of digits
    alone, most of them, is not looked at."""
    numbers, streets, units = address["housenumber"], address["street"], address["unit"]
    for row, number in enumerate(numbers):
        if number and not number.isdigit():
            numbers[row], units[row] = house_number_parts(number, streets[row], units[row])


def _postcode_countries(
    region: list[str | None], address: dict[str, list[Any]], lats: np.ndarray, lons: np.ndarray
) -> list[str | None]:
    """Each record's country for its postcode's key: its ``region``, else, for a postcode a
    table may have written as a number (its leading zeros lost: digits alone, fewer than
    six), the country its coordinates fall in."""
    wanted = [
        bool(postcode) and not np.isnan(lat) and _numeric(postcode)
        for postcode, lat in zip(address["postcode"], lats, strict=True)
    ]
    return _where_unknown(region, wanted, lats, lons)


def _where_unknown(
    countries: list[str | None], wanted: Sequence[bool], lats: np.ndarray, lons: np.ndarray
) -> list[str | None]:
    """``countries``, with the country their points fall in for the rows ``wanted`` (each
    located) that have none."""
    missing = [
        i for i, (code, w) in enumerate(zip(countries, wanted, strict=True)) if w and not code
    ]
    if not missing:
        return countries
    found = list(countries)
    places = places_at(lats[missing].tolist(), lons[missing].tolist())
    for i, (code, _town) in zip(missing, places, strict=True):
        found[i] = code
    return found


def _numeric(postcode: str) -> bool:
    digits = postcode.removesuffix(".0")
    return digits.isascii() and digits.isdigit() and len(digits) < 6


def _withheld(column: pa.ChunkedArray, rows: np.ndarray | None) -> pa.ChunkedArray:
    """``column`` null at ``rows`` (a mask; None: none)."""
    if rows is None:
        return column
    return pc.if_else(pa.array(rows), pa.scalar(None, column.type), column)


def normalize_rows(
    records: Sequence[dict[str, Any]],
) -> tuple[list[dict[str, Any]], tuple[FieldProblem, ...]]:
    """``normalize_records`` of records given as rows (``SOURCE_RECORD_SCHEMA``'s fields),
    with the places as rows (``PLACE_SCHEMA``'s, as ``to_pylist`` gives them): no Arrow
    call at all, for a request's few records."""
    places, problems, _ = _normalized_rows(records)
    return places, problems


def _normalized_rows(
    records: Sequence[dict[str, Any]],
) -> tuple[list[dict[str, Any]], tuple[FieldProblem, ...], dict[str, Any]]:
    """:func:`normalize_rows`, and all it made of the records by column (what was repaired
    among them: ``done["repaired"]`` and ``done["repair_examples"]``)."""
    done, problems = _normalize(RowColumns(records))
    address, brand, keys = done["address"], done["brand"], done["keys"]
    nowhere = done["nowhere"]
    places = []
    for i, record in enumerate(records):
        located = nowhere is None or not nowhere[i]
        places.append(
            {
                "source": record["source"],
                "id": record["id"],
                "names": {"primary": done["primary"][i], "alternates": done["alternates"][i]},
                "categories": done["categories"][i],
                "source_category": done["source_category"][i],
                "lat": record["lat"] if located else None,
                "lon": record["lon"] if located else None,
                "address": struct_row(address, i),
                "phones": done["phones"][i],
                "websites": done["websites"][i],
                "emails": done["emails"][i],
                "brand": struct_row(brand, i),
                "opening_hours": done["opening_hours"][i],
                "operating_status": done["operating_status"][i],
                "update_time": record["update_time"],
                "origin": record["origin"],
                "keys": struct_row(keys, i),
            }
        )
    return places, problems, done


def _normalize(
    records: TableColumns | RowColumns,
) -> tuple[dict[str, Any], tuple[FieldProblem, ...]]:
    """Every normalized value of the records, as lists by column (struct columns as dicts
    of child lists), and every value withheld."""
    n = records.n
    problems: list[FieldProblem] = []
    tax = taxonomy()

    lats = records.numbers("lat")
    lons = records.numbers("lon")
    # (0, 0) is where a geocoder puts an address it could not place: the record goes on
    # without it, and meets its place by town, name and address.
    nowhere = (lats == 0) & (lons == 0)
    if nowhere.any():
        for row in np.flatnonzero(nowhere).tolist():
            problems.append(FieldProblem(row, POINT_FIELD, "0, 0", NULL_ISLAND))
        lats, lons = np.where(nowhere, np.nan, lats), np.where(nowhere, np.nan, lons)

    # Country: the record's own, else the country its coordinates fall in. Only a phone
    # written nationally or a freeform address needs it, so only those rows look it up.
    raw_country = records.field("address", "country")
    country: list[str | None] = once(raw_country, lambda c: country_code(c) if c else None)
    for row, (raw, code) in enumerate(zip(raw_country, country, strict=True)):
        if raw and code is None:
            problems.append(FieldProblem(row, "address.country", raw, "not a known country"))
    region = list(country)
    primary_in = records.field("names", "primary")
    primary = once(primary_in, lambda v: clean_text(v) if v else None)
    # A phone or web address a listing wrote after its name is the record's where it gives
    # none: read first, so that it is normalized (and its region found) as theirs are.
    contacts = read_contacts(primary)
    phones_in = contacts.filled(records.values("phones"), "phone")
    freeform_in = records.field("address", "freeform")
    located = (~np.isnan(lats)).tolist()
    region = _where_unknown(
        region,
        [
            here
            and bool(freeform or any(p and not p.lstrip().startswith("+") for p in given or ()))
            for here, freeform, given in zip(located, freeform_in, phones_in, strict=True)
        ],
        lats,
        lons,
    )

    # Address: freeform lines parsed into the parts the source did not give.
    address = {part: records.field("address", part) for part in ADDRESS_FIELDS}
    for row in range(n):
        freeform = address["freeform"][row]
        if freeform and not address["street"][row]:
            parsed = parse_address(freeform, region[row]).as_dict()
            for part, value in parsed.items():
                if value and not address[part][row]:
                    address[part][row] = value
    brand_in = records.field("brand", "name")
    repaired, repair_examples = _repaired(
        n, [primary_in, address["street"], address["locality"], brand_in]
    )
    for part in ADDRESS_FIELDS:
        address[part] = once(address[part], lambda v: clean_text(v) if v else None)
    address["country"] = country
    address["postcode"] = [p.upper() if p else None for p in address["postcode"]]
    _split_house_numbers(address)

    postcode_countries = _postcode_countries(region, address, lats, lons)

    # Names.
    alternates_in = records.field("names", "alternates")
    alternates: list[list[dict[str, Any]] | None] = []
    for row, alts in enumerate(alternates_in):
        if not alts:
            alternates.append(None)
            continue
        kept: list[dict[str, Any]] = []
        seen = {primary[row]}
        for alt in alts:
            value = clean_text(alt["value"]) if alt["value"] else None
            if value and value not in seen:
                seen.add(value)
                kept.append({**alt, "value": value})
        alternates.append(kept or None)

    # Categories: each label into the taxonomy; labels that map nowhere are kept as provenance.
    cat_primary = records.field("categories", "primary")
    cat_alternate = records.field("categories", "alternate")
    labels = [
        tuple(label for label in (first, *rest) if label) if rest else (first,) if first else ()
        for first, rest in zip(cat_primary, cat_alternate, strict=True)
    ]
    # Read as cleaned ("Caf&#233;", "CafÃ©" as "Café"); kept as given for provenance.
    found = {
        row_labels: tax.from_labels(tuple(filter(None, map(clean_text, row_labels))))
        for row_labels in dict.fromkeys(labels)
    }
    as_category = {
        row_labels: {"primary": ids[0], "alternate": ids[1:]} if ids else None
        for row_labels, ids in found.items()
    }
    categories = list(map(as_category.__getitem__, labels))
    unknown = {row_labels for row_labels, ids in found.items() if row_labels and not ids}
    if unknown:
        problems.extend(
            FieldProblem(row, "categories", row_labels[0], UNKNOWN_CATEGORY)
            for row, row_labels in enumerate(labels)
            if row_labels in unknown
        )
    source_category = [
        given or primary_label
        for given, primary_label in zip(records.values("source_category"), cat_primary, strict=True)
    ]

    phones_in, websites_in, emails_in, misfiled = misfiled_contacts(
        phones_in, contacts.filled(records.values("websites"), "website"), records.values("emails")
    )
    if misfiled:
        repaired[MISFILED] = len(misfiled)
        repair_examples[MISFILED] = kept_examples((), misfiled)
    phones = normalize_lists(
        phones_in,
        problems,
        "phones",
        region,
        phone_values,
        plainly=plain_e164 if records.columnar else None,
    )
    websites = normalize_lists(
        websites_in,
        problems,
        "websites",
        None,
        website_values,
        plainly=(lambda values, _regions: plain_urls(values)) if records.columnar else None,
    )
    emails = normalize_lists(emails_in, problems, "emails", None, email_values)

    status_in = records.values("operating_status")
    status = once(status_in, lambda v: _STATUS.get(fold(v)) if v else None)
    problems.extend(
        FieldProblem(row, "operating_status", value, "not a known status")
        for row, (value, mapped) in enumerate(zip(status_in, status, strict=True))
        if value and mapped is None
    )

    brand_name = once(brand_in, lambda v: clean_text(v) if v else None)
    hours_in = records.values("opening_hours")
    opening_hours = once(hours_in, lambda v: canonical_hours(v) if v else None)
    problems.extend(
        FieldProblem(row, "opening_hours", value, _UNREAD_HOURS)
        for row, (value, read) in enumerate(zip(hours_in, opening_hours, strict=True))
        if read is None and value and not value.isspace()
    )

    # What else a name says beside the place's name (a closure, an old name, a listing's
    # title, a translation), read out of it.
    readings = contacts.then(read_names(primary, alternates, status, address, labels, categories))
    name_keys = once(primary, lambda v: name_key(v) if v else None)
    name_alternates = [
        _unique_keys([a["value"] for a in alts], exclude=key) if alts else None
        for alts, key in zip(alternates, name_keys, strict=True)
    ]
    keep_as_written(primary, alternates, readings.written)  # with no key
    repaired.update(readings.repaired)
    repair_examples.update(readings.examples)
    keys: dict[str, list[Any]] = {
        "name": name_keys,
        "name_alternates": name_alternates,
        "brand": once(brand_name, lambda v: (brand_key(v) or None) if v else None),
        "domains": once_lists(
            websites,
            functools.partial(_domains, known=_known_domains(websites) if records.columnar else {}),
        ),
        "street": [
            (street_key(s, c) or None) if s else None
            for s, c in zip(address["street"], region, strict=True)
        ],
        "housenumber": once(address["housenumber"], lambda v: housenumber_key(v) if v else None),
        "postcode": [
            (postcode_key(p, c) or None) if p else None
            for p, c in zip(address["postcode"], postcode_countries, strict=True)
        ],
        "locality": once(address["locality"], lambda v: (fold(v) or None) if v else None),
    }
    done = {
        "primary": primary,
        "alternates": alternates,
        "categories": categories,
        "source_category": source_category,
        "address": address,
        "phones": phones,
        "websites": websites,
        "emails": emails,
        "brand": {"name": brand_name, "wikidata": records.field("brand", "wikidata")},
        "opening_hours": opening_hours,
        "operating_status": status,
        "keys": keys,
        "nowhere": nowhere if nowhere.any() else None,  # points withheld
        "repaired": repaired,
        "repair_examples": repair_examples,
    }
    return done, tuple(problems)


def _domains(urls: tuple[str, ...], known: dict[str, str | None]) -> list[str] | None:
    found = (known[url] if url in known else registrable_domain(url) for url in urls)
    return sorted({d for d in found if d}) or None


def _known_domains(websites: list[list[str] | None]) -> dict[str, str | None]:
    """The registrable domain of every URL of these rows (``registrable_domains``)."""
    urls = [url for urls in websites if urls for url in urls]
    return registrable_domains(urls) if urls else {}


def _unique_keys(values: list[str], exclude: str | None) -> list[str] | None:
    out: list[str] = []
    for value in values:
        key = name_key(value)
        if key and key != exclude and key not in out:
            out.append(key)
    return out or None
