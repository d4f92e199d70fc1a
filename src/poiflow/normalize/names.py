"""Place and brand names: the folded keys that matching compares.

The key of a name is its folded text (see :func:`poiflow.text.fold`) with the
legal form of a company dropped ("Oy", "GmbH", "S.p.A.", "Sp. z o.o."), common
abbreviations spelled out ("Intl" -> "international"), connectors ("&", "and") and a
leading article dropped. A brand's key is its name key without spaces, so "Mc Donald's",
"McDonalds" and "MCDONALD'S" agree.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Final

from poiflow.text import LEGAL_FORMS, fold

__all__ = [
    "LEGAL_FORMS",
    "SEPARATED",
    "SEPARATORS",
    "TITLES",
    "brand_key",
    "name_key",
    "without_own_parts",
]

_MAX_FORM = max(len(form) for form in LEGAL_FORMS)
# Forms that also open a name ("Oy Hartwall Ab", "Tmi Virtanen").
_LEADING_FORMS: Final = frozenset({("oy",), ("tmi",), ("ab",), ("as",), ("ooo",)})

ABBREVIATIONS: Final[dict[str, str]] = {
    "intl": "international",
    "int": "international",
    "ctr": "center",
    "cntr": "center",
    "centre": "center",
    "dept": "department",
    "univ": "university",
    "uni": "university",
    "hosp": "hospital",
    "mkt": "market",
    "mkts": "markets",
    "bros": "brothers",
    "mt": "mount",
    "ft": "fort",
    "st": "saint",
    "ste": "sainte",
    "sta": "santa",
    "natl": "national",
    "assn": "association",
    "assoc": "association",
    "svc": "service",
    "svcs": "services",
    "mfg": "manufacturing",
    "dr": "doctor",
    "no": "number",
    "n": "number",  # only ever reached as a lone "N°"-style token after the check below
}
# "N" alone is far more often an initial than "number"; only expand it before a digit.
_EXPAND_BEFORE_DIGIT_ONLY: Final = frozenset({"no", "n"})

_DROPPED: Final = frozenset({"and"})
_ARTICLES: Final = frozenset({"the"})


# What a listing's title puts between a place's name and what it says of the place ("Cafe
# Aalto - Helsinki", "Cafe Aalto, Mannerheimintie 5", "Cafe Aalto (Cafe)").
SEPARATORS: Final = (", ", " - ", " – ", " — ", " | ", " @ ", " / ", " (")
SEPARATED: Final = re.compile("|".join(re.escape(s) for s in SEPARATORS))
"""Any of :data:`SEPARATORS`: where a name may be a title."""
TITLES: Final = "a listing's title for a name, read as the name before it"
"""What ingest says of the records whose name :func:`without_own_parts` shortened ("Cafe
Aalto - Helsinki", "Cafe Aalto (Cafe)")."""


def without_own_parts(name: str, *own: str | None) -> str:
    """``name`` up to a separator (:data:`SEPARATORS`; the last such first) whose part
    after it, to the end, is one of ``own`` (what the record says of the place elsewhere:
    its town, street, street and number, category), folded alike: a listing's title
    repeats it; the place's name is the rest. A name with no separator keeps all its
    words ("Hotel Helsinki" in Helsinki), and so does a name that is only such a part.

    >>> without_own_parts("Cafe Aalto - HELSINKI", "Helsinki")
    'Cafe Aalto'
    >>> without_own_parts("Cafe Aalto, Mannerheimintie 5", "Helsinki", "Mannerheimintie 5")
    'Cafe Aalto'
    >>> without_own_parts("Aalto (Coffee shop)", "Helsinki", "coffee_shop")
    'Aalto'
    >>> street = "Galleria Esplanad, Aleksanterinkatu 2"
    >>> without_own_parts(f"Forex, {street}", street)
    'Forex'
    >>> without_own_parts("Hotel Helsinki", "Helsinki")
    'Hotel Helsinki'
    """
    wanted = {fold(o) for o in own if o} - {""}
    # Every separator, the last first: an address may hold one itself ("Galleria
    # Esplanad, Aleksanterinkatu 2").
    cuts = sorted(((m.start(), m.group()) for m in SEPARATED.finditer(name)), reverse=True)
    for at, separator in cuts:
        tail = name[at + len(separator) :]
        if separator == " (":
            if not tail.endswith(")"):
                continue
            tail = tail[:-1]
        if at > 0 and fold(tail) in wanted:
            return name[:at].rstrip()
    return name


@lru_cache(maxsize=1 << 18)
def name_key(name: str) -> str:
    """The folded key of a place name, for comparing names across sources.

    Idempotent: ``name_key(name_key(x)) == name_key(x)``. Never empties a name that has
    letters or digits: a name made only of a legal form ("AB") keeps it.

    >>> name_key("Hartwall Oy")
    'hartwall'
    >>> name_key("The Marks & Spencer Intl Ltd.")
    'marks spencer international'
    """
    words = fold(name).split()
    if not words:
        return ""
    words = _strip_legal_forms(words)
    expanded: list[str] = []
    for index, word in enumerate(words):
        if word in _DROPPED and 0 < index < len(words) - 1:
            continue
        full = ABBREVIATIONS.get(word)
        if full is not None and word in _EXPAND_BEFORE_DIGIT_ONLY:
            following = words[index + 1] if index + 1 < len(words) else ""
            full = full if following[:1].isdigit() else None
        expanded.append(full if full is not None else word)
    # No expansion is itself a legal form or an article, so one pass settles the key.
    return " ".join(expanded)


def _strip_legal_forms(words: list[str]) -> list[str]:
    """Drop legal forms at the end, and legal forms and articles at the start, keeping a word."""
    changed = True
    while changed and len(words) > 1:
        changed = False
        for size in range(min(_MAX_FORM, len(words) - 1), 0, -1):
            if tuple(words[-size:]) in LEGAL_FORMS:
                words = words[:-size]
                changed = True
                break
        if len(words) > 1 and ((words[0],) in _LEADING_FORMS or words[0] in _ARTICLES):
            words = words[1:]
            changed = True
    return words


@lru_cache(maxsize=1 << 16)
def brand_key(brand: str) -> str:
    """The key of a brand: its name key without spaces.

    >>> brand_key("Mc Donald's")
    'mcdonalds'
    >>> brand_key("K-Market")
    'kmarket'
    """
    key = name_key(brand).replace(" ", "")
    # A key that is itself an abbreviation ("S:T" -> "st") spells out when keyed again
    # ("saint"): keyed once more, the key of a key is the key.
    return name_key(key).replace(" ", "")
