"""Text primitives every stage builds on: clean for display, fold for comparison."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Final

from anyascii import anyascii

if TYPE_CHECKING:
    import polars as pl

__all__ = [
    "ASCII_ONLY",
    "ASCII_WHITESPACE",
    "LEGAL_FORMS",
    "SYLLABIC_CHARACTERS",
    "address_line",
    "clean_text",
    "fold",
    "fold_ascii",
    "tokens",
]

# Legal forms of companies and associations, as folded word sequences (a name's key drops
# them, ``poiflow.normalize.names``; a golden name prefers a spelling without one). Dotted
# forms fold to single letters ("S.p.A." -> "s p a"), so both spellings are listed where
# they differ.
LEGAL_FORMS: Final[frozenset[tuple[str, ...]]] = frozenset(
    tuple(form.split())
    for form in (
        # English
        "ltd",
        "limited",
        "llc",
        "l l c",
        "inc",
        "incorporated",
        "corp",
        "corporation",
        "plc",
        "llp",
        "lp",
        "pllc",
        "co ltd",
        "pty ltd",
        "pty",
        "pte ltd",
        "pvt ltd",
        "private limited",
        "sdn bhd",
        "bhd",
        # Finnish, Swedish, Norwegian, Danish, Estonian
        "oy",
        "oyj",
        "oy ab",
        "ab",
        "abp",
        "ky",
        "tmi",
        "ry",
        "rf",
        "as",
        "asa",
        "a s",
        "aps",
        "i s",
        "ou",
        "hb",
        "kb",
        # German, Dutch, Belgian, Swiss
        "gmbh",
        "mbh",
        "gmbh co kg",
        "ag",
        "kg",
        "kgaa",
        "ohg",
        "gbr",
        "ug",
        "e v",
        "ev",
        "bv",
        "b v",
        "nv",
        "n v",
        "vof",
        "bvba",
        "sprl",
        # French, Spanish, Portuguese, Italian
        "sa",
        "s a",
        "sarl",
        "s a r l",
        "sas",
        "s a s",
        "sasu",
        "eurl",
        "sl",
        "s l",
        "slu",
        "sau",
        "ltda",
        "lda",
        "s p a",
        "srl",
        "s r l",
        "snc",
        "sas di",
        # Central and Eastern Europe, Russia
        "sp z o o",
        "sp zoo",
        "s r o",
        "a s",
        "kft",
        "zrt",
        "nyrt",
        "bt",
        "d o o",
        "doo",
        "ooo",
        "oao",
        "zao",
        "pao",
        "ao",
        # Polish (beyond "sp z o o"), Greek (as folded: "Α.Β.Ε.Ε." -> "a v e e")
        "s c",
        "sp j",
        "sp k",
        "sp p",
        "s k a",
        "a e",
        "ae",
        "o e",
        "oe",
        "e e",
        "ee",
        "a v e e",
        "avee",
        "a e v e",
        "e p e",
        "epe",
        "i k e",
        "ike",
        # Asia (written in Latin letters: stripping the folded syllables of "株式会社" lost
        # recall on generated Japanese names, see benchmarks/RESULTS.md)
        "kk",
        "k k",
        "kabushiki kaisha",
        "co ltd",
        "yugen kaisha",
    )
)

# Control and format characters (zero-width joiners, BOMs, bidi marks) never belong in a value.
_INVISIBLE = re.compile(
    r"[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff]"
)
_SPACE = re.compile(r"\s+")
_APOSTROPHES = re.compile(r"['’`´ʼ‘]")
_ASCII_APOSTROPHES = re.compile(r"['`]")  # the ASCII ones of _APOSTROPHES
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")
# Han, kana and hangul: written without spaces between words, and transliterated a
# syllable per character; spacing them keeps syllables apart as words ("北京饭店" -> "bei
# jing fan dian") instead of one long run. Half-width kana are full-width after NFKC.
SYLLABIC_CHARACTERS: Final = (
    "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f"
)
_SYLLABIC = re.compile(f"([{SYLLABIC_CHARACTERS}])")


def clean_text(value: str | None) -> str | None:
    """Tidy a value for display: NFC, no invisible characters, single spaces; ``None`` if empty.

    >>> clean_text("  Café\\u200b  Regatta ")
    'Café Regatta'
    """
    if value is None:
        return None
    if value.isprintable() and "  " not in value:
        # No control, format or separator character but single spaces: nothing for the
        # expressions below to replace (the usual value, at a fraction of the cost).
        return unicodedata.normalize("NFC", value).strip() or None
    text = unicodedata.normalize("NFC", _INVISIBLE.sub(" ", value))
    text = _SPACE.sub(" ", text).strip()
    return text or None


@lru_cache(maxsize=1 << 18)
def fold(value: str) -> str:
    """Fold text to lower-case ASCII words for comparison.

    NFKC, casefold, transliteration of every script to ASCII, apostrophes dropped (so
    "McDonald's" and "McDonalds" agree), every other run of non-alphanumerics one space.

    >>> fold("Ravintola Sävy – Kaffe & Mat")
    'ravintola savy kaffe mat'
    >>> fold("Москва")
    'moskva'
    """
    if value.isascii():  # NFKC, casefold and transliteration leave ASCII as it is, lowered
        text = _ASCII_APOSTROPHES.sub("", value.lower())
    else:
        text = unicodedata.normalize("NFKC", value).casefold()
        text = anyascii(_SYLLABIC.sub(r" \1 ", text)).lower()
        text = _APOSTROPHES.sub("", text)
    return _NOT_ALNUM.sub(" ", text).strip()


def fold_ascii(text: pl.Expr) -> pl.Expr:
    """:func:`fold` of ASCII text as a polars expression, for many values at once: what
    ``fold`` does to a value that ``isascii()`` (lower-case, apostrophes dropped, every
    other run of non-alphanumerics one space). Other text needs ``fold`` itself."""
    return (
        text.str.replace_all(_ASCII_APOSTROPHES.pattern, "")
        .str.to_lowercase()
        .str.replace_all(_NOT_ALNUM.pattern, " ")
        .str.strip_chars(" ")
    )


ASCII_ONLY: Final = r"^[\x00-\x7f]*$"
"""A text that ``isascii()`` (as a regular expression, for polars' ``str.contains``)."""

ASCII_WHITESPACE: Final = " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f"
"""What ``str.strip`` takes off the ends of an ASCII text (for polars' ``strip_chars``,
whose own default differs: it keeps the four separators ``\x1c``-``\x1f``)."""


def tokens(value: str) -> list[str]:
    """The folded words of ``value``."""
    folded = fold(value)
    return folded.split() if folded else []


def address_line(address: Mapping[str, Any]) -> str:
    """An address (``schema.ADDRESS_TYPE``'s fields) as one line for a person: street and
    number, postcode and locality; else its free form; else empty."""
    street = " ".join(str(address[f]) for f in ("street", "housenumber") if address.get(f))
    town = " ".join(str(address[f]) for f in ("postcode", "locality") if address.get(f))
    return ", ".join(x for x in (street, town) if x) or str(address.get("freeform") or "")
