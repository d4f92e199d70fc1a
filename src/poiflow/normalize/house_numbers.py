"""House numbers as feeds write them, and the key they compare by.

One building's number is written many ways. OpenStreetMap's Helsinki has "14-20" (a
building that spans four numbers), "20 B" and "13A" (an entrance's or a plot's letter),
"11 B 9" (a staircase and a flat), "26, 14. krs." (a floor after a comma) and, once,
"Keskuskatu 5" (the street again, in the number's field). A vendor writes the same
places "14", "20", "13 a", "26".

:func:`house_number_parts` takes the field apart: what follows a comma is the address's
unit (a floor, a yard), and the record's own street before the number is dropped.
:func:`housenumber_key` is the key the number compares by: the first number, its letter and
a range's end, in one form ("14-20", "20b", "13a", "5bis"). The comparison of two keys
(a number within the other's range, a letter on one side only) is conflation's
(``poiflow.conflate.alike``), which reads this form.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Final

from poiflow.text import fold

__all__ = ["house_number_parts", "housenumber_key"]

_SUFFIXES: Final = ("quater", "bis", "ter")  # what follows a number as a letter does
# A letter standing alone after a number ("14 A", "14a", "5 bis"), not a word's start
# ("14 krs", "8 Floor 6").
_LETTER: Final = rf"(?:{'|'.join(_SUFFIXES)}|[^\W\d_])(?![^\W\d_])"
_NUMBER: Final = re.compile(
    rf"(?P<lo>\d+)\s*(?P<letter>{_LETTER})?"
    rf"(?:\s*[-\u2010-\u2015]\s*(?P<hi>\d+)\s*(?P<hi_letter>{_LETTER})?)?"
)


@lru_cache(maxsize=1 << 16)
def housenumber_key(number: str) -> str | None:
    """The key a house number compares by: its first number (without leading zeros), the
    letter after it and, for a range, the range's end, lower case and without spaces;
    what follows a comma or semicolon (a floor, a flat) left out. A field with no digit is
    its folded text without spaces, as it is written. None where nothing is left.

    Idempotent: a key's key is itself.

    >>> [housenumber_key(v) for v in ("14-20", "14 – 20", "20 B", "11 B 9", "26, 14. krs.")]
    ['14-20', '14-20', '20b', '11b', '26']
    >>> housenumber_key("Keskuskatu 5"), housenumber_key("5 bis"), housenumber_key("042")
    ('5', '5bis', '42')
    """
    head = re.split(r"[,;]", unicodedata.normalize("NFKC", number).casefold(), maxsplit=1)[0]
    found = _NUMBER.search(head)
    if found is None:
        folded = fold(number).replace(" ", "")
        # Folding may make digits of what NFKC did not (a rare script's numerals).
        return housenumber_key(folded) if any(c.isdigit() for c in folded) else folded or None
    key = str(int(found["lo"])) + _letter(found["letter"])
    if found["hi"] is not None:
        key += f"-{int(found['hi'])}" + _letter(found["hi_letter"])
    return key


def _letter(letter: str | None) -> str:
    """A house number's letter as its key writes it: one ASCII letter ("Ä" as "a"), or
    "bis", "ter", "quater"; nothing for a character that folds to anything else."""
    folded = fold(letter or "")
    return folded if folded in _SUFFIXES or (len(folded) == 1 and folded.isalpha()) else ""


def house_number_parts(
    number: str, street: str | None, unit: str | None
) -> tuple[str | None, str | None]:
    """``(number, unit)``: a house number field taken apart. What follows its first comma
    or semicolon is the unit where the address has none ("26, 14. krs." -> "26" and
    "14. krs."), and left out where it has one; the record's own ``street`` written before
    the number is left out ("Keskuskatu 5" on Keskuskatu -> "5"). A number with neither is
    as it is.

    >>> house_number_parts("13 A, 5. krs./Floor 5", "Fredrikinkatu", None)
    ('13 A', '5. krs./Floor 5')
    >>> house_number_parts("Keskuskatu 5", "Keskuskatu", None)
    ('5', None)
    """
    head, *tail = re.split(r"[,;]", number, maxsplit=1)
    head, rest = head.strip(), "".join(tail).strip(" ,;")
    written_after = head[len(street or "") :]
    if (
        street
        and head[: len(street)].casefold() == street.casefold()
        and written_after[:1].isspace()
    ):
        head = written_after.strip()
    if not any(ch.isdigit() for ch in head):
        return number, unit  # not a number and what follows it: as written
    return head or None, unit or rest or None
