"""A record's phones, web and email addresses: each value of their list columns read, a
value that is none withheld with its reason, and a web or email address written in the
phone column given to the record's own."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

from poiflow.normalize.columns import FieldProblem
from poiflow.normalize.phones import PHONE_SEPARATORS, parse_phones
from poiflow.normalize.websites import canonical_email, canonical_url

__all__ = [
    "MISFILED",
    "email_values",
    "misfiled_contacts",
    "normalize_lists",
    "phone_values",
    "website_values",
]

_LISTED_PARTS: Final = 5
"""The parts of a phone value that are not numbers, each a reason of its own, up to this;
past it (a description in the phone column, thousands of parts) the value has one reason
naming the first few, and the quarantine one row, not a copy of the value per part."""


MISFILED: Final = (
    "a web or email address in the phone column, given to the record's web or email addresses"
)
"""What ingest says of the records with a web or email address among their phones
("https://www.viinitie.fi/", "info@aalto.fi")."""
# A phone value that starts as a web address does ("https://", "www."): read as one.
_WEB_START: Final = re.compile(r"^(?:https?://|www\.)\S+$", re.IGNORECASE)


def _may_hold_address(value: str | None) -> bool:
    """Whether a phone value may hold a web or email address: "@", "www." or "://" in it."""
    return value is not None and ("@" in value or "www." in value.lower() or "://" in value)


def misfiled_contacts(
    phones: list[list[str] | None],
    websites: list[list[str] | None],
    emails: list[list[str] | None],
) -> tuple[list[list[str] | None], list[list[str] | None], list[list[str] | None], list[str]]:
    """``(phones, websites, emails, moved)``: a web or email address written whole in the
    phone column (OpenStreetMap's Helsinki has "phone=https://www.viinitie.fi/") moved to
    the record's web or email addresses, after its own, and the phone values they were
    moved from (one a record, the first).
    Only a value with "@", "www." or "://" in it is looked at twice; the lists given are
    not changed."""
    rows = [
        row for row, values in enumerate(phones) if values and any(map(_may_hold_address, values))
    ]
    if not rows:
        return phones, websites, emails, []
    phones, websites, emails = list(phones), list(websites), list(emails)
    moved: list[str] = []
    for row in rows:
        kept: list[str] = []
        sites, mails = list(websites[row] or ()), list(emails[row] or ())
        for value in phones[row] or ():
            if not value:
                kept.append(value)
                continue
            numbers: list[str] = []
            for part in PHONE_SEPARATORS.split(value.strip()):  # "09 123 4567; info@aalto.fi"
                if canonical_email(part) is not None:
                    mails.append(part)
                elif _WEB_START.match(part) and canonical_url(part) is not None:
                    sites.append(part)
                else:
                    numbers.append(part)
            kept += ["; ".join(numbers)] if numbers else []
        if len(sites) + len(mails) > len(websites[row] or ()) + len(emails[row] or ()):
            moved.append(next(filter(_may_hold_address, phones[row] or ())))
            phones[row], websites[row], emails[row] = kept or None, sites or None, mails or None
    return phones, websites, emails, moved


def phone_values(value: str, region: str | None) -> tuple[list[str], list[str]]:
    parsed = parse_phones(value, region)
    rejected = parsed.rejected
    if len(rejected) > _LISTED_PARTS:  # a text, not numbers: one reason, not one a part
        shown = ", ".join(f"'{r}'" for r in rejected[:_LISTED_PARTS])
        more = len(rejected) - _LISTED_PARTS
        return list(parsed.numbers), [f"{shown} and {more:,} more are not phone numbers"]
    return list(parsed.numbers), [f"'{r}' is not a phone number" for r in rejected]


def website_values(value: str, _region: str | None) -> tuple[list[str], list[str]]:
    url = canonical_url(value)
    return ([url], []) if url else ([], [f"'{value}' is not a web address"])


def email_values(value: str, _region: str | None) -> tuple[list[str], list[str]]:
    email = canonical_email(value)
    return ([email], []) if email else ([], [f"'{value}' is not an email address"])


def normalize_lists(
    values_by_row: list[list[str] | None],
    problems: list[FieldProblem],
    column: str,
    region: list[str | None] | None,
    normalize: Callable[[str, str | None], tuple[list[str], list[str]]],
    plainly: Callable[[list[str], list[str | None]], list[str | None]] | None = None,
) -> list[list[str] | None]:
    """Normalize every value of a list column; unparsable values become FieldProblems.

    ``plainly`` reads the distinct (value, region) pairs column-wise first: where it gives
    a value, that is the value's one normalized form (what ``normalize`` would give it);
    ``normalize`` reads the rest.
    """
    out: list[list[str] | None] = []
    regions = region if region is not None else [None] * len(values_by_row)
    memo: dict[tuple[str, str | None], tuple[list[str], list[str]]] = {}
    if plainly is not None:
        keys = list(
            dict.fromkeys(
                (value, row_region)
                for values, row_region in zip(values_by_row, regions, strict=True)
                if values
                for value in values
                if value
            )
        )
        read = plainly([k[0] for k in keys], [k[1] for k in keys]) if keys else []
        memo = {key: ([v], []) for key, v in zip(keys, read, strict=True) if v}
    for row, (values, row_region) in enumerate(zip(values_by_row, regions, strict=True)):
        if not values:
            out.append(None)
            continue
        kept: list[str] = []
        for value in values:
            if not value or value.isspace():
                continue
            key = (value, row_region)
            found = memo.get(key)
            if found is None:
                good, bad = normalize(value, row_region)
                found = memo[key] = (list(dict.fromkeys(good)), bad)
            good, bad = found
            if kept:
                kept.extend(v for v in good if v not in kept)
            else:
                kept = good.copy()
            if bad:
                problems.extend(FieldProblem(row, column, value, reason) for reason in bad)
        out.append(kept or None)
    return out
