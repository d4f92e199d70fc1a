"""Phone numbers to E.164, with the country taken from the record or its coordinates."""

from __future__ import annotations

import re
import traceback
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers

__all__ = ["ParsedPhones", "parse_phones", "to_e164"]

# OSM separates several numbers with ";"; feeds use "," or "|" or " / ". A bare "/" is kept:
# it is a digit-group separator in some countries ("030/1234567").
_SEPARATORS = re.compile(r"\s*(?:[;,|]|\s/\s|\s+or\s+|\s+tai\s+|\s+eller\s+)\s*", re.IGNORECASE)
_DIGIT = re.compile(r"\d")
# "+358 40 123 4567", "+1-212-555-0123": written internationally, nothing to interpret.
_INTERNATIONAL = re.compile(r"^\+[1-9][\d \-.]{6,20}$")
_NOT_DIGIT = re.compile(r"\D")


def _international(text: str) -> str | None:
    """E.164 of a plainly international number, checked against its country's possible
    lengths (what ``is_possible_number`` checks), without the full parser."""
    digits = _NOT_DIGIT.sub("", text)
    for size in (1, 2, 3):
        regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(int(digits[:size]))
        if not regions:
            continue
        metadata = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(
            int(digits[:size]), regions[0]
        )
        national = digits[size:]
        if metadata is None or (national.startswith("0") and regions[0] not in _LEADING_ZERO):
            return None
        general = metadata.general_desc
        lengths = (general.possible_length or ()) if general is not None else ()
        return f"+{digits}" if len(national) in lengths else None
    return None


# "09 123 4567", "(212) 555-0123": written nationally with plain separators.
_NATIONAL = re.compile(r"^\(?[0-9][\d \-.()]{5,20}$")


@lru_cache(maxsize=512)
def _plain_trunk(region: str) -> tuple[str, str, tuple[int, ...], tuple[str, ...]] | None:
    """(calling code, trunk prefix, possible lengths, other prefixes) of a region whose
    national numbers are read by dropping a fixed trunk prefix, or None where parsing needs
    the full rules (carrier codes, prefixes with patterns). A number that starts with one
    of the other prefixes ("0|180020" in GB) is left to the full parser."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if metadata is None or metadata.general_desc is None:
        return None
    trunk = metadata.national_prefix or ""
    for_parsing = metadata.national_prefix_for_parsing
    others: tuple[str, ...] = ()
    if for_parsing not in (None, trunk):
        alternatives = for_parsing.split("|")
        if trunk not in alternatives or not all(a.isdigit() for a in alternatives):
            return None
        others = tuple(a for a in alternatives if a != trunk)
    if metadata.national_prefix_transform_rule:
        return None
    if not trunk.isdigit() and trunk != "":
        return None
    if region in _LEADING_ZERO and trunk:
        return None
    lengths = tuple(metadata.general_desc.possible_length or ())
    return str(metadata.country_code), trunk, lengths, others


def _national(text: str, region: str) -> str | None:
    """E.164 of a nationally written number in a plain-trunk country (see ``_plain_trunk``)."""
    rules = _plain_trunk(region)
    if rules is None:
        return None
    code, trunk, lengths, others = rules
    digits = _NOT_DIGIT.sub("", text)
    if others and digits.startswith(others):
        return None
    if trunk and digits.startswith(trunk):
        digits = digits[len(trunk) :]
    elif trunk and not (code == "1" and len(digits) == 10):
        # No trunk prefix: a local number, or something else; let the parser judge. But
        # North America writes its ten digits without its "1" ("(212) 555-0123").
        return None
    if digits.startswith("00") or (code == "1" and digits[:1] == "1"):
        return None  # "00..." dials abroad; no NANP number starts with 1
    if digits.startswith("0") and region not in _LEADING_ZERO:
        return None  # no national number starts with 0, but where the 0 is part of it (IT)
    if digits.startswith(code):
        return None  # maybe the country code written without "+": let the parser judge
    return f"+{code}{digits}" if len(digits) in lengths else None


# Countries whose national numbers keep a leading zero after the country code.
_LEADING_ZERO = frozenset({"IT", "VA", "SM", "CI", "CG", "GA", "TG", "BJ", "NE", "ML", "BF"})


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
    if _INTERNATIONAL.match(text):
        fast = _international(text)
        if fast is not None:
            return fast
    elif region is not None and _NATIONAL.match(text):
        fast = _national(text, region.upper())
        if fast is not None:
            return fast
    candidates: list[tuple[str, str | None]] = [(text, region.upper() if region else None)]
    if not text.startswith("+") and region is None:
        # Without a region, "00 49 ..." and "358 40 ..." can only be international.
        digits = "".join(ch for ch in text if ch.isdigit())
        candidates.append(("+" + (digits[2:] if digits.startswith("00") else digits), None))
    for candidate, candidate_region in candidates:
        try:
            parsed = phonenumbers.parse(candidate, candidate_region)
        except phonenumbers.NumberParseException as exc:
            # phonenumbers keeps the exception in a local of the frame it passes through,
            # a cycle that would hold every caller's frame (a whole batch's lists) until
            # the cycle collector runs: clear those frames' locals.
            traceback.clear_frames(exc.__traceback__)
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
