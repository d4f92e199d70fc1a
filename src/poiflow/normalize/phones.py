"""Phone numbers to E.164, with the country taken from the record or its coordinates."""

from __future__ import annotations

import re
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

import phonenumbers

from poiflow.text import ASCII_ONLY, ASCII_WHITESPACE

__all__ = ["PHONE_SEPARATORS", "ParsedPhones", "parse_phones", "plain_e164", "to_e164"]

# OSM separates several numbers with ";"; feeds use "," or "|" or " / ". A bare "/" is kept:
# it is a digit-group separator in some countries ("030/1234567").
PHONE_SEPARATORS: Final = re.compile(
    r"\s*(?:[;,|]|\s/\s|\s+or\s+|\s+tai\s+|\s+eller\s+)\s*", re.IGNORECASE
)
_DIGIT = re.compile(r"\d")
_E164_DIGITS: Final = 15  # the most digits an E.164 number has, its calling code's among them
# "+358 40 123 4567", "+1-212-555-0123": written internationally, nothing to interpret.
_INTERNATIONAL = re.compile(r"^\+[1-9][\d \-.]{6,20}$")
_NOT_DIGIT = re.compile(r"\D")
# A number a table wrote as a float: pandas' "401234567.0", a spreadsheet's "4.01234567E8"
# (whose digits may be fewer than its exponent says: "3.58401E+11" lost its last ones).
_FLOAT: Final = re.compile(r"^(\+?[0-9]{6,})\.0$")
_SCIENTIFIC: Final = re.compile(r"^(\+?)([1-9])\.([0-9]+)[eE]\+?([0-9]{1,2})$")


def _international(text: str) -> str | None:
    """E.164 of a plainly international number, checked against its country's possible
    lengths (what ``is_possible_number`` checks), without the full parser."""
    digits = _NOT_DIGIT.sub("", text)
    _, size, zero, lengths = _calling_code_rule(digits[:3])
    if size is None:
        return None
    national = digits[size:]
    if (national.startswith("0") and not zero) or not national.strip("0"):
        return None
    return f"+{digits}" if len(national) in lengths else None


@lru_cache(maxsize=1024)
def _calling_code_rule(prefix: str) -> tuple[str, int | None, bool, tuple[int, ...]]:
    """(prefix, size of the calling code the number's first three digits start with,
    whether a national number may start with 0, the national numbers' possible lengths);
    size None where no calling code starts it, or the code has no metadata (the full
    parser must judge)."""
    for size in (1, 2, 3):
        regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(int(prefix[:size]))
        if not regions:
            continue
        metadata = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(
            int(prefix[:size]), regions[0]
        )
        if metadata is None:
            return prefix, None, False, ()
        general = metadata.general_desc
        lengths = tuple((general.possible_length or ()) if general is not None else ())
        return prefix, size, regions[0] in _LEADING_ZERO, _in_e164(size, lengths)
    return prefix, None, False, ()


# "09 123 4567", "(212) 555-0123": written nationally with plain separators.
_NATIONAL = re.compile(r"^\(?[0-9][\d \-.()]{5,20}$")


@lru_cache(maxsize=512)
def _plain_trunk(region: str) -> tuple[str, str, tuple[int, ...], str | None] | None:
    """(calling code, trunk prefix, possible lengths, prefixes left to the parser) of a
    region whose national numbers are read by dropping a fixed trunk prefix, or None where
    parsing needs the full rules (carrier codes, prefixes with patterns). A number whose
    digits start with a prefix left to the parser (a pattern: the other trunk prefixes,
    "0|180020" in GB, and the prefix that dials abroad, "810" in Russia, where "8 10 ..."
    is a call abroad, not a number after the trunk "8") is left to it."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if metadata is None or metadata.general_desc is None:
        return None
    trunk = metadata.national_prefix or ""
    for_parsing = metadata.national_prefix_for_parsing
    aside = [metadata.international_prefix] if metadata.international_prefix else []
    if for_parsing not in (None, trunk):
        alternatives = for_parsing.split("|")
        if trunk not in alternatives or not all(a.isdigit() for a in alternatives):
            return None
        aside += [a for a in alternatives if a != trunk]
    if metadata.national_prefix_transform_rule:
        return None
    if not trunk.isdigit() and trunk != "":
        return None
    if region in _LEADING_ZERO and trunk:
        return None
    lengths = tuple(metadata.general_desc.possible_length or ())
    code = str(metadata.country_code)
    return (
        code,
        trunk,
        _in_e164(len(code), lengths),
        "^(?:" + "|".join(aside) + ")" if aside else None,
    )


def _in_e164(code: int, lengths: Sequence[int]) -> tuple[int, ...]:
    """The national numbers' possible lengths that E.164's 15 digits hold after a calling
    code of ``code`` digits (the metadata allows some countries longer ones)."""
    return tuple(n for n in lengths if code + n <= _E164_DIGITS)


def _national(text: str, region: str) -> str | None:
    """E.164 of a nationally written number in a plain-trunk country (see ``_plain_trunk``)."""
    rules = _plain_trunk(region)
    if rules is None:
        return None
    code, trunk, lengths, aside = rules
    digits = _NOT_DIGIT.sub("", text)
    if aside is not None and re.match(aside, digits):
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
    if not digits.strip("0"):
        return None  # no number is all zeros
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
    text = _unfloated(number.strip())
    if text is None or not _DIGIT.search(text):
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
        if parsed.national_number == 0:  # all zeros (the parser drops some of them)
            continue
        if phonenumbers.is_possible_number(parsed):
            e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
            if len(e164) <= 1 + _E164_DIGITS:
                return e164
    return None


def _unfloated(text: str) -> str | None:
    """A number that a table wrote as a float, as its digits ("401234567.0" and
    "4.01234567E8" are 401234567); None where the notation lost digits ("3.58401E+11")."""
    if (plain := _FLOAT.match(text)) is not None:
        return plain.group(1)
    if (scientific := _SCIENTIFIC.match(text)) is not None:
        sign, first, rest, exponent = scientific.groups()
        return f"{sign}{first}{rest}" if len(rest) == int(exponent) else None
    return text


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
    for part in PHONE_SEPARATORS.split(value.strip()):
        if not part:
            continue
        bare = _without_notes(part)  # a vanity number ("1 800 FLOWERS") is read as written
        e164 = (to_e164(bare, region) if bare and bare != part else None) or to_e164(part, region)
        if e164 is None:
            rejected.append(part)
        elif e164 not in numbers:
            numbers.append(e164)
    return ParsedPhones(tuple(numbers), tuple(rejected))


def _without_notes(text: str) -> str:
    """``text`` without the notes after its number ("040 123 4567 (mobile) Matti" ->
    "040 123 4567"); as it is where it has none. A note is in brackets with a letter in it
    ("(vaihde)", "(24h)", "(ma-pe 9-17)"), or words without a digit ("Matti"); an
    extension ("x23", "ext. 12") has digits, and an area code in brackets ("(09) 123
    4567") no letter. Read once from the end, a bracket or a word at a time, whatever a
    field holds."""
    end = len(text.rstrip())
    cut = None  # where the notes begin, once they hold a letter
    while end > 0:
        if text[end - 1] == ")":
            start = text.rfind("(", 0, end - 1)
            note = text[start + 1 : end - 1]
            if start < 0 or ")" in note or not any(c.isalpha() for c in note):
                break
            end = cut = start
        else:
            start = end
            while start > 0 and not text[start - 1].isspace():
                start -= 1
            word = text[start:end]
            if any(c.isdigit() or c in "()" for c in word):
                break
            end = start
            if cut is not None or any(c.isalpha() for c in word):
                cut = start
        while end > 0 and text[end - 1].isspace():
            end -= 1
    return text if cut is None else text[:cut].rstrip()


def plain_e164(values: Sequence[str], regions: Sequence[str | None]) -> list[str | None]:
    """``to_e164`` of every value that is one number written plainly, read column-wise.

    Read one at a time, a phone value costs some 15 µs of Python. Most values are one
    number written plainly: internationally ("+358 40 123 4567"), or nationally in a
    country whose trunk prefix is simply dropped ("040 123 4567" in Finland). Those are
    read here by whole-column string operations (polars), by the rules of ``to_e164``'s own
    shortcuts, so that each gives what ``to_e164`` gives it (a property test holds them to
    it). Only ASCII values are read so: beyond ASCII, Python's ``\\d`` and ``str.strip``
    differ from polars'.

    Args:
        values: Phone values as written (one number or several).
        regions: For each value, the ISO country code its national numbers are read in.

    Returns:
        For each value, its E.164 number where it is a single plainly written number that
        ``to_e164`` reads without the full parser; None for every other value (several
        numbers, other spellings, not a number), which ``parse_phones`` must read.
    """
    import polars as pl

    text = pl.col("text")
    # ASCII, and not a number written as a float (``to_e164`` reads it first).
    ascii_only = pl.col("value").str.contains(ASCII_ONLY) & ~text.str.contains(_FLOAT.pattern)
    frame = (
        pl.DataFrame(
            {"value": values, "region": regions},
            schema={"value": pl.String, "region": pl.String},
        )
        .with_columns(
            pl.col("value").str.strip_chars(ASCII_WHITESPACE).alias("text"),
            pl.col("region").str.to_uppercase(),
        )
        .with_columns(text.str.replace_all("[^0-9]", "").alias("digits"))
    )
    frame = _international_column(
        frame, ascii_only & text.str.contains(r"^\+[1-9][0-9 \-.]{6,20}$")
    )
    frame = _national_column(
        frame,
        ascii_only
        & pl.col("region").is_not_null()
        & text.str.contains(r"^\(?[0-9][0-9 \-.()]{5,20}$"),
    )
    return frame.select(pl.coalesce("abroad", "home")).to_series().to_list()  # type: ignore[no-any-return]


def _international_column(frame: Any, plain: Any) -> Any:
    """``frame`` with ``abroad``: the E.164 number ``_international`` reads from each row
    where ``plain`` holds (null elsewhere, and where it gives up)."""
    import polars as pl

    prefix = pl.col("digits").str.slice(0, 3)
    prefixes = frame.filter(plain).select(prefix.unique()).to_series().to_list()
    table = pl.DataFrame(
        [
            (p, size, zero, list(lengths))
            for p, size, zero, lengths in map(_calling_code_rule, prefixes)
        ],
        schema={
            "prefix": pl.String,
            "size": pl.Int64,
            "zero": pl.Boolean,
            "lengths": pl.List(pl.Int64),
        },
        orient="row",
    )
    national = pl.col("digits").str.slice(pl.col("size"))
    return (
        frame.with_columns(prefix.alias("prefix"))
        .join(table, on="prefix", how="left", maintain_order="left")
        .with_columns(
            pl.when(
                plain
                & pl.col("size").is_not_null()
                & (pl.col("zero") | ~national.str.starts_with("0"))
                & national.str.contains("[1-9]")
                & pl.col("lengths").list.contains(national.str.len_chars().cast(pl.Int64))
            )
            .then("+" + pl.col("digits"))
            .alias("abroad")
        )
        .drop(table.columns)
    )


def _national_column(frame: Any, plain: Any) -> Any:
    """``frame`` with ``home``: the E.164 number ``_national`` reads from each row where
    ``plain`` holds (null elsewhere, and where it gives up)."""
    import polars as pl

    rules = []
    for region in frame.filter(plain).select(pl.col("region").unique()).to_series().to_list():
        rule = _plain_trunk(region)
        if rule is not None:
            calling, prefix, lengths, aside = rule
            rules.append((region, calling, prefix, list(lengths), aside, region in _LEADING_ZERO))
    table = pl.DataFrame(
        rules,
        schema={
            "region": pl.String,
            "code": pl.String,
            "trunk": pl.String,
            "lengths": pl.List(pl.Int64),
            "aside": pl.String,
            "zero": pl.Boolean,
        },
        orient="row",
    )
    digits, trunk, code = pl.col("digits"), pl.col("trunk"), pl.col("code")
    has_trunk = (trunk != "") & digits.str.starts_with(trunk)
    national = pl.when(has_trunk).then(digits.str.slice(trunk.str.len_chars())).otherwise(digits)
    return (
        frame.join(table, on="region", how="left", maintain_order="left")
        .with_columns(
            pl.when(
                plain
                & code.is_not_null()
                & ~(pl.col("aside").is_not_null() & digits.str.contains(pl.col("aside")))
                & ((trunk == "") | has_trunk | ((code == "1") & (digits.str.len_chars() == 10)))
                & ~national.str.starts_with("00")
                & ~((code == "1") & national.str.starts_with("1"))
                & (pl.col("zero") | ~national.str.starts_with("0"))
                & ~national.str.starts_with(code)
                & national.str.contains("[1-9]")
                & pl.col("lengths").list.contains(national.str.len_chars().cast(pl.Int64))
            )
            .then("+" + code + national)
            .alias("home")
        )
        .drop([c for c in table.columns if c != "region"])
    )
