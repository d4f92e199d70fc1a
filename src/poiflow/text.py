"""Text primitives every stage builds on: clean for display, fold for comparison."""

from __future__ import annotations

import html
import html.entities
import re
import unicodedata
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Final

from anyascii import anyascii

if TYPE_CHECKING:
    import polars as pl

__all__ = [
    "ASCII_ONLY",
    "ASCII_WHITESPACE",
    "EXAMPLES_KEPT",
    "LEGAL_FORMS",
    "REPAIRS",
    "SYLLABIC_CHARACTERS",
    "address_line",
    "clean_text",
    "fold",
    "fold_ascii",
    "kept_examples",
    "repair_encoding",
    "repairs_of",
    "strip_markup",
    "tokens",
    "unescape_references",
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


# UTF-8 read as Windows-1252 or Latin-1 on its way ("CafÃ©" for "Café", "HÃ¤meentie"): the
# first byte of a character of two to four bytes, then a following byte, each read as a
# character of its own (of Latin-1, or what Windows-1252 puts at 0x80-0x9F).
_MOJIBAKE: Final = re.compile(
    "[\u00c2-\u00f4][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192"
    "\u02c6\u02dc\u2013\u2014\u2018-\u201a\u201c-\u201e\u2020-\u2022\u2026\u2030"
    "\u2039\u203a\u20ac\u2122]"
)
# Each character back to the byte it was read from: Windows-1252's, and Latin-1's for the
# five bytes Windows-1252 leaves undefined (most readers give those their Latin-1 control).
_AS_READ: Final = {chr(b): b for b in range(256)} | {
    bytes([b]).decode("cp1252"): b
    for b in range(0x80, 0xA0)
    if b not in (0x81, 0x8D, 0x8F, 0x90, 0x9D)
}
_REPAIRS: Final = 3  # layers of wrong decoding undone at most


def repair_encoding(value: str) -> str:
    """Undo a wrong decoding that text went through on its way: UTF-8 read as Windows-1252
    or Latin-1, once or more (a CSV saved by a spreadsheet, a feed of an older system).

    Only a value with such a pair of characters is looked at, and it is repaired only where
    all of it reads back into bytes that are UTF-8: "São", "SÃO" and "Âme" stay as they
    are, and so does a value with a character neither encoding has ("CafÃ© Łódź").

    >>> repair_encoding("CafÃ© HÃ¤meentie")
    'Café Hämeentie'
    """
    for _ in range(_REPAIRS):
        if value.isascii() or _MOJIBAKE.search(value) is None:
            break
        try:
            value = bytes(_AS_READ[c] for c in value).decode("utf-8")
        except (KeyError, UnicodeDecodeError):
            break
    return value


# An HTML or XML character reference written whole: "&amp;", "&#39;", "&#xE9;".
_REFERENCE: Final = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")


def unescape_references(value: str) -> str:
    """Decode the HTML character references of a value escaped for a web page or XML on
    its way ("Ben &amp; Jerry&#39;s" -> "Ben & Jerry's"), however many times ("&amp;amp;").
    Only a reference written whole, with its ";", is read, and a name only if HTML knows
    it: "AT&T", "Fish &chips" and "&notes" stay as written.

    >>> unescape_references("Caf&eacute; &amp;amp; Bar")
    'Café & Bar'
    """
    if "&" not in value or ";" not in value:
        return value
    # Each reference read is shorter than what it was written as: the loop ends.
    while (decoded := _REFERENCE.sub(_referenced, value)) != value:
        value = decoded
    return value


def _referenced(reference: re.Match[str]) -> str:
    """A reference's character, or the reference as written where it names none (an
    unknown name, a number beyond Unicode or of no character)."""
    text = reference.group(0)
    if text[1] != "#":
        return html.entities.html5.get(text[1:], text)
    character = html.unescape(text)
    return text if character == "\ufffd" and text.lower() not in _REPLACEMENT else character


_REPLACEMENT: Final = frozenset({"&#65533;", "&#xfffd;"})  # references to U+FFFD itself


# A tag of a web page's markup, written whole: "<b>", "</span>", "<br/>", '<a href="x">'.
# Only the tags a listing's title or address is marked up with; anything else between
# "<" and ">" ("Cafe <3", "Fish < Chips > Bar", "<Unnamed>") is text.
_TAG: Final = re.compile(
    r"</?(?:a|abbr|b|big|br|center|div|em|font|h[1-6]|hr|i|li|mark|nobr|ol|p|s|small|span"
    r"|strike|strong|sub|sup|td|th|tr|u|ul)(?:\s[^<>]*)?/?>",
    re.IGNORECASE,
)


def strip_markup(value: str) -> str:
    """Drop the HTML tags that a value scraped from a web page kept ("<b>Café</b>",
    "Café<br>Aalto"), each for a space (``clean_text`` makes single spaces of them).
    Only a tag HTML knows, written whole, is dropped.

    >>> strip_markup('<span class="name">Café</span><br/>Aalto')
    ' Café  Aalto'
    >>> strip_markup("Cafe <3 Aalto")
    'Cafe <3 Aalto'
    """
    if "<" not in value or ">" not in value:
        return value
    # Until none is left: a tag may be written around another ("<b<br>>" leaves "<b >").
    # Each pass makes the value shorter, so the loop ends.
    while (stripped := _TAG.sub(" ", value)) != value:
        value = stripped
    return value


def clean_text(value: str | None) -> str | None:
    """Tidy a value for display: NFC, no invisible characters, single spaces, HTML's
    character references decoded (:func:`unescape_references`), a wrong decoding undone
    (:func:`repair_encoding`), HTML's tags dropped (:func:`strip_markup`); ``None`` if
    empty.

    >>> clean_text("  Café\\u200b  Regatta ")
    'Café Regatta'
    """
    if value is None:
        return None
    # Repaired before it is tidied (a byte read as a control character is part of what a
    # repair reads), and again after, until neither changes it: "Â" and a space tidied
    # from two are a no-break space read wrongly.
    text = _tidy(_repaired(value))
    for _ in range(_REPAIRS):
        if text is None or (repaired := _repaired(text)) == text:
            break
        text = _tidy(repaired)
    return text


# Each repair of clean_text, in the order it is made, with its bit of REPAIRS. The tags
# last: an escaped tag ("&lt;b&gt;") is one once its references are read.
_REPAIR_STEPS: Final = (
    (1, unescape_references),
    (2, repair_encoding),
    (4, strip_markup),
)


def _repaired(value: str) -> str:
    for _, repair in _REPAIR_STEPS:
        value = repair(value)
    return value


REPAIRS: Final = {
    1: "text escaped for the web, read as its characters",
    2: "text garbled by a wrong encoding on its way, repaired",
    4: "a web page's markup in their text, dropped",
}
"""What :func:`clean_text` repairs of a value ("Caf&#233;", "CafÃ©", "<b>Café</b>"), by
the bit :func:`repairs_of` sets."""

EXAMPLES_KEPT: Final = 2
"""How many values as given a run keeps of each kind of repair, to show with its count."""


def kept_examples(kept: Iterable[str], more: Iterable[str | None]) -> tuple[str, ...]:
    """``kept`` and then the values of ``more`` it lacks, up to :data:`EXAMPLES_KEPT`:
    what a run shows of a kind of repair, the first values it made it of.

    >>> kept_examples(["CafÃ©"], ["CafÃ©", None, "BrÃ¶d", "KÃ¤mp"])
    ('CafÃ©', 'BrÃ¶d')
    """
    examples = list(kept)[:EXAMPLES_KEPT]
    for value in more:
        if len(examples) == EXAMPLES_KEPT:
            break
        if value and value not in examples:
            examples.append(value)
    return tuple(examples)


def repairs_of(value: str) -> int:
    """What :func:`clean_text` repairs of ``value``, as bits of :data:`REPAIRS` (0: none).

    >>> repairs_of("Caf&#233;"), repairs_of("CafÃ©"), repairs_of("<b>Café</b>"), repairs_of("Café")
    (1, 2, 4, 0)
    """
    bits = 0
    for bit, repair in _REPAIR_STEPS:
        repaired = repair(value)
        bits |= bit if repaired != value else 0
        value = repaired
    return bits


def _tidy(value: str) -> str | None:
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
        text = unicodedata.normalize("NFKC", repair_encoding(value)).casefold()
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
