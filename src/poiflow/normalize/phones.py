"""Phone numbers to E.164, with the country taken from the record or its coordinates."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers

__all__ = ["ParsedPhones", "parse_phones", "to_e164"]

# OSM separates several numbers with ";"; feeds use "," or "|" or " / ". A bare "/" is kept:
# it is a digit-group separator in some countries ("030/1234567").
_SEPARATORS = re.compile(r"\s*(?:[;,|]|\s/\s|\s+or\s+|\s+tai\s+|\s+eller\s+)\s*", re.IGNORECASE)
_DIGIT = re.compile(r"\d")


@dataclass(frozen=True, slots=True)
class ParsedPhones:
    """The numbers found in one phone value.

    Attributes:
        numbers: Valid-looking numbers in E.164, in the order given, without repeats.
        rejected: The parts that are not phone numbers, as written.
    """

    numbers: tuple[str, ...]
    rejected: tuple[str, ...]


@lru_cache(maxsize=1 << 18)
def to_e164(number: str, region: str | None = None) -> str | None:
    """One phone number in E.164 (``+358401234567``), or ``None`` if it is not one.

    Args:
        number: The number as written: spaces, dashes, brackets, "00" prefixes, extensions.
        region: ISO country code used when the number is written nationally ("09 123 4567").

    A number written without "+" and without a known region is read as international when
    its digits make a possible number that way ("358 40 123 4567").
    """
    text = number.strip()
    if not _DIGIT.search(text):
        return None
    candidates: list[tuple[str, str | None]] = [(text, region.upper() if region else None)]
    if not text.startswith("+"):
        digits = "".join(ch for ch in text if ch.isdigit())
        if digits.startswith("00"):
            candidates.insert(0, ("+" + digits[2:], None))
        elif region is None:
            candidates.append(("+" + digits, None))
    for candidate, candidate_region in candidates:
        try:
            parsed = phonenumbers.parse(candidate, candidate_region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_possible_number(parsed):
            return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return None


def parse_phones(value: str | None, region: str | None = None) -> ParsedPhones:
    """Split a phone value into numbers and normalize each to E.164.

    Never raises. Idempotent in effect: parsing the E.164 output gives it back unchanged.

    >>> parse_phones("+358 9 123 4567; 040-765 4321", "FI").numbers
    ('+35891234567', '+358407654321')
    """
    if not value or not value.strip():
        return ParsedPhones((), ())
    numbers: list[str] = []
    rejected: list[str] = []
    for part in _SEPARATORS.split(value.strip()):
        if not part:
            continue
        e164 = to_e164(part, region)
        if e164 is None:
            rejected.append(part)
        elif e164 not in numbers:
            numbers.append(e164)
    return ParsedPhones(tuple(numbers), tuple(rejected))
