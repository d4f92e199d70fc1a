"""Opening hours in OpenStreetMap's syntax (``Mo-Fr 09:00-17:00; Sa 10:00-14:00``).

A value in OSM's syntax is read by the ``opening_hours`` parser and written back in its
canonical spelling (days capitalized, times of two digits, rules apart by ``"; "``, ``off``
as ``closed``): what the value says is kept as it says it, not rewritten by OSM's rules
(a later rule for the same day overrides an earlier one, and a mapper who meant to add
hours would lose them).

Feeds write hours for people: ``Mon-Fri 9am-5pm``, ``Monday to Friday 09.00 - 17.00, Sat
10-14, Sun closed``, ``ma-pe 9-17, la 10-14`` (Finnish), ``mån-fre 9-17`` (Swedish),
``Mo-Fr 9-17 Uhr`` (German), ``Open 24 hours``. Those are read here into the same syntax,
so that sources that agree write the same value. A value that neither reads is ``None``:
the record's normalization withholds it, with the reason, and a place's hours come from
the sources that can be read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Final

from poiflow.text import clean_text

__all__ = ["canonical_hours", "weekday"]

_DAYS: Final = ("Mo", "Tu", "We", "Th", "Fr", "Sa", "Su")

# Day names as written in English, Finnish, Swedish and German (their common abbreviations
# too); Finnish "to" and Swedish "to" (Thursday) are told from English "to" by position.
_DAY_WORDS: Final = {
    day: index
    for index, words in enumerate(
        (
            "mo mon monday maanantai maanantaisin ma må mån måndag montag",
            "tu tue tues tuesday tiistai tiistaisin ti tis tisdag di dienstag",
            "we wed weds wednesday keskiviikko keskiviikkoisin ke ons onsdag mi mittwoch",
            "th thu thur thurs thursday torstai torstaisin to tor tors torsdag do donnerstag",
            "fr fri friday perjantai perjantaisin pe fre fredag freitag",
            "sa sat saturday lauantai lauantaisin la lö lör lördag samstag",
            "su sun sunday sunnuntai sunnuntaisin sö sön söndag so sonntag",
        )
    )
    for day in words.split()
}
# Words for several days at once.
_GROUPS: Final = {
    word: days
    for days, words in (
        ("Mo-Su", "daily everyday päivittäin dagligen täglich"),
        ("Mo-Fr", "weekdays weekday arkisin arkipäivisin vardagar"),
        ("Sa-Su", "weekends weekend viikonloppuisin helger"),
        ("PH", "holidays holiday ph pyhäpäivisin pyhinä helgdagar feiertags feiertage"),
    )
    for word in words.split()
}


def weekday(word: str) -> int | None:
    """The day of the week (0: Monday) a day's name or abbreviation means, in English,
    Finnish, Swedish or German (any case); None for any other word."""
    return _DAY_WORDS.get(word.lower())


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_CLOSED_WORDS: Final = _words("closed off suljettu kiinni stängt geschlossen ruhetag")
# Words that say nothing about when: "open", "from", "klo" (Finnish "at"), "Uhr", ...
_FILLER: Final = _words(
    "open opens opening hours hrs hr h from at klo kello kl avoinna auki öppet geöffnet uhr "
    "public every day days alla dagar joka päivä the on"
)
# Open all day, written within a text ("Mon-Fri 24 hours, Sat 10-14") or as the whole of it
# ("Open 24 hours", "around the clock"): read as one word.
_ALL_DAY: Final = re.compile(
    r"\b24\s*(?:/\s*7|h(?:ours|rs|r)?\b)(?:\s+a\s+day\b)?|around the clock|"
    r"ympäri vuorokauden|dygnet runt|rund um die uhr"
)
# Day names that only English writes (OSM's two-letter ones are for a 24-hour clock).
_ENGLISH_DAYS: Final = _words(
    "mon monday tue tues tuesday wed weds wednesday thu thur thurs thursday fri friday sat "
    "saturday sun sunday"
)
_TWENTY_FOUR_WORDS: Final = _words("klo kello kl uhr")
_ALWAYS: Final = "00:00-24:00"
_DOTTED: Final = re.compile(r"\d\.\d")
_WORD: Final = re.compile(r"[^\W\d_]+")
# The parser writes a rule without days or times as "24/7 ...": before a comment alone
# ('"by appointment"') that says more than the value did.
_ALWAYS_COMMENT: Final = re.compile(r'(^|; )24/7 (?=")')
_MERIDIEM: Final = re.compile(r"([ap])\.?m\.?")
_TOKENS: Final = re.compile(
    r"""
    (?P<time>(?:\d{4}|\d{1,2}(?:[:.]\d{2})?\s*(?:a\.?m\.?|p\.?m\.?)?|noon|midnight)(?!\d|[:.]\d))
    |(?P<dash>-|–|—|until\b|till\b|through\b|thru\b|to\b|bis\b)
    |(?P<sep>,|&|\+|\band\b|\bja\b|\boch\b|\bund\b)
    |(?P<rule>;|\||\n)
    |(?P<word>[^\W\d_]+)
    |(?P<colon>:|\.)
    |(?P<space>\s+)
    |(?P<other>.)
    """,
    re.VERBOSE,
)


@lru_cache(maxsize=1 << 14)
def canonical_hours(value: str) -> str | None:
    """The value's opening hours in OSM's syntax, canonically spelled; ``None`` where it
    cannot be read as opening hours.

    >>> canonical_hours("Mo-Fr 9:00-17:00;Sa 10:00-14:00; Su off")
    'Mo-Fr 09:00-17:00; Sa 10:00-14:00; Su closed'
    >>> canonical_hours("Monday to Friday 9am - 5:30pm, Sat 10-2, Sun closed")
    'Mo-Fr 09:00-17:30; Sa 10:00-14:00; Su closed'
    >>> canonical_hours("ma-pe 9-17, la 10-15"), canonical_hours("by appointment")
    ('Mo-Fr 09:00-17:00; Sa 10:00-15:00', None)
    """
    text = clean_text(value)
    if not text:
        return None
    spelled = _osm(text)
    if spelled is not None:
        return spelled
    written = _written(text.lower())
    return _osm(written) if written is not None else None


# A rule's days written as a list with spaces: "Sa, Su 09:00-16:00".
_DAY: Final = r"(?:Mo|Tu|We|Th|Fr|Sa|Su|PH|SH)"
_SPACED_DAYS: Final = re.compile(
    rf"(?P<lead>^|;|\|\|)(?P<space>\s*)(?P<days>{_DAY}(?:-{_DAY})?(?:\s*,\s*{_DAY}(?:-{_DAY})?)+)"
    rf"(?=\s|;|$)"
)


def _listed_days(text: str) -> str:
    """``text`` with a rule's days listed as OSM lists them: "Sa, Su 09:00-16:00" is
    "Sa,Su 09:00-16:00". Read as written, ", " parts two rules, "Sa" (open all day) and
    "Su 09:00-16:00": not what a mapper who wrote it meant. Only days at a rule's start
    (the value's, or after ``;`` or ``||``) are joined; "Mo-Fr 09:00-17:00, Sa
    10:00-14:00" is two rules, as written."""
    if '"' in text:  # a comment may hold anything
        return text
    return _SPACED_DAYS.sub(
        lambda m: m["lead"] + m["space"] + re.sub(r"\s*,\s*", ",", m["days"]), text
    )


def _osm(text: str) -> str | None:
    """``text`` in OSM's canonical spelling, if the parser reads it. Rules apart by ``, ``
    (OSM's additional rules) are apart by ``; `` where that means the same (their days do
    not overlap, as in ``Mo-Fr 09:00-17:00, Sa 10:00-14:00``), so that both spellings
    agree; a rule's days listed with spaces (``Sa, Su``) are one list
    (:func:`_listed_days`)."""
    from opening_hours import OpeningHours

    text = _listed_days(text)
    try:
        parsed = OpeningHours(text)
    except Exception:  # the parser's error is not exported; anything it refuses is unread
        return None
    spelled = str(parsed)
    if "24/7" not in text:  # a rule of a comment alone is not "open always" in its text
        spelled = _ALWAYS_COMMENT.sub(r"\1", spelled)
    if ", " not in spelled or '"' in spelled:  # a comment may hold ", " of its own
        return spelled
    apart = spelled.replace(", ", "; ")
    try:
        same = str(OpeningHours(apart).normalize()) == str(parsed.normalize())
    except Exception:
        return spelled
    return apart if same else spelled


@dataclass
class _Rule:
    days: list[str] = field(default_factory=list)
    times: list[str] = field(default_factory=list)
    closed: bool = False

    def empty(self) -> bool:
        return not (self.days or self.times or self.closed)

    def done(self) -> bool:
        return bool(self.times) or self.closed


def _written(text: str) -> str | None:
    """OSM's syntax for hours written for people, or None if a part cannot be read."""
    tokens = _tokens(_ALL_DAY.sub(" nonstop ", text))
    if tokens is None:
        return None
    twelve = _twelve_hour(text, tokens)
    rules: list[_Rule] = [_Rule()]
    i = 0
    while i < len(tokens):
        kind, value = tokens[i]
        rule = rules[-1]
        if kind in ("day", "group"):
            if _listing(tokens, i) or (not rule.days and rule.done() and _trailing(tokens, i)):
                pass  # one more of a list of days; or "10am-10pm daily", "closed Sundays"
            elif rule.done():
                rule = _Rule()
                rules.append(rule)
            if kind == "day" and _at(tokens, i + 1) == "dash" and _at(tokens, i + 2) == "day":
                rule.days.append(f"{value}-{tokens[i + 2][1]}")
                i += 3
                continue
            rule.days.append(value)
        elif kind == "time":
            span = _span(tokens, i, twelve=twelve)
            if span is None:
                return None
            text_span, i = span
            rule.times.append(text_span)
            continue
        elif kind == "closed":
            rule.closed = True
        elif kind == "always":
            rule.times.append(_ALWAYS)
        elif kind == "rule":
            if not rule.empty():
                rules.append(_Rule())
        elif kind in ("dash", "sep", "colon"):
            pass  # between days or times, or after a rule's days ("Mon-Fri: 9-17")
        i += 1
    rules = [rule for rule in rules if not rule.empty()]
    if not rules or any(not rule.done() for rule in rules):
        return None  # days without hours ("Mon-Fri") say nothing a reader can be sure of
    if len(rules) == 1 and not rules[0].days and rules[0].times == [_ALWAYS]:
        return "24/7"  # "Open 24 hours"
    return "; ".join(_rule_text(rule) for rule in rules)


def _listing(tokens: list[tuple[str, str]], i: int) -> bool:
    """Whether token ``i`` continues a list of days ("Sundays and holidays")."""
    days = ("day", "group")
    before = _at(tokens, i - 1) if i else None
    if before in days:
        return True
    return before in ("sep", "dash") and i >= 2 and _at(tokens, i - 2) in days


def _twelve_hour(text: str, tokens: list[tuple[str, str]]) -> bool:
    """Whether the text's times are on a 12-hour clock: not where anything says 24 hours
    (an hour of 0 or past 12 without "am" or "pm", minutes after a dot as in "9.30");
    else where any time says "am" or "pm"; else unless a day is named in Finnish, Swedish,
    German or as OSM writes it, or "klo" or "Uhr" is written."""
    suffixed = False
    for kind, value in tokens:
        clock = _clock(value) if kind == "time" and value[:1].isdigit() else None
        if clock is None:
            continue
        if (clock[2] is None and (clock[0] == 0 or clock[0] > 12)) or _DOTTED.search(value):
            return False
        suffixed = suffixed or clock[2] is not None
    if suffixed:
        return True
    words = set(_WORD.findall(text)) - {"to"}  # "to" is English too
    if words & _TWENTY_FOUR_WORDS:
        return False
    return all(
        w in _ENGLISH_DAYS or w.removesuffix("s") in _ENGLISH_DAYS or w not in _DAY_WORDS
        for w in words
    )


def _trailing(tokens: list[tuple[str, str]], i: int) -> bool:
    """Whether the days from token ``i`` end their rule (nothing but days follow)."""
    for kind, _ in tokens[i:]:
        if kind == "rule":
            return True
        if kind not in ("day", "group", "dash", "sep"):
            return False
    return True


def _rule_text(rule: _Rule) -> str:
    days = ",".join(rule.days)
    when = "closed" if rule.closed and not rule.times else ",".join(rule.times)
    return f"{days} {when}" if days else when


def _at(tokens: list[tuple[str, str]], i: int) -> str | None:
    return tokens[i][0] if i < len(tokens) else None


def _tokens(text: str) -> list[tuple[str, str]] | None:
    """The text's tokens that mean something (kind, value); None at a word not known."""
    out: list[tuple[str, str]] = []
    for match in _TOKENS.finditer(text):
        kind = match.lastgroup or "other"
        word = match.group()
        if kind == "space":
            continue
        if kind == "other":
            return None
        if kind == "dash" and word == "to" and (not out or out[-1][0] in ("dash", "sep", "rule")):
            kind = "word"  # Finnish and Swedish Thursday: "ma-to", "to 9-17"
        if kind == "word":
            token = _word(word)
            if token is None:
                return None
            if token[0] == "filler":
                continue
            out.append(token)
            continue
        out.append((kind, word))
    return out


def _word(word: str) -> tuple[str, str] | None:
    bare = word.rstrip(".")
    plural = bare[:-1] if bare.endswith("s") and bare[:-1] in _DAY_WORDS else bare
    if plural in _DAY_WORDS:
        return ("day", _DAYS[_DAY_WORDS[plural]])
    if bare in _GROUPS:
        return ("group", _GROUPS[bare])
    if bare in _CLOSED_WORDS:
        return ("closed", bare)
    if bare == "nonstop":
        return ("always", bare)
    if bare in _FILLER:
        return ("filler", bare)
    return None


def _span(tokens: list[tuple[str, str]], i: int, *, twelve: bool) -> tuple[str, int] | None:
    """The time span that starts at token ``i`` (``9-17``, ``9am to 5pm``, ``16:00-`` with
    no end), and the index after it."""
    if _at(tokens, i + 1) != "dash":
        return None
    start = _clock(tokens[i][1])
    if start is None:
        return None
    if _at(tokens, i + 2) != "time":
        return (f"{_hhmm(*start[:2])}+", i + 2)  # open end: "16:00-"
    end = _clock(tokens[i + 2][1])
    if end is None:
        return None
    opens, closes = _meridiem(start, end, twelve=twelve)
    return (f"{_hhmm(*opens)}-{_hhmm(*closes)}", i + 3)


def _clock(text: str) -> tuple[int, int, str | None] | None:
    """Hour, minute and "am"/"pm" (or None) of a written time; None if out of range."""
    text = _MERIDIEM.sub(r"\1m", text.replace(" ", "")).replace(".", ":")
    if text == "noon":
        return 12, 0, None
    if text == "midnight":
        return 12, 0, "am"  # 00:00 as a start, 24:00 as an end
    suffix = text[-2:] if text.endswith(("am", "pm")) else None
    digits = text[:-2] if suffix else text
    hour, _, minute = (
        (digits[:2], "", digits[2:])
        if len(digits) == 4 and digits.isdigit()
        else digits.partition(":")
    )
    h, m = int(hour), int(minute or 0)
    if m > 59 or h > 24 or (suffix and not 1 <= h <= 12):
        return None
    return h, m, suffix


def _meridiem(
    start: tuple[int, int, str | None], end: tuple[int, int, str | None], *, twelve: bool
) -> tuple[tuple[int, int], tuple[int, int]]:
    """Both ends on a 24-hour clock. A suffix on the end alone carries to the start where
    the span is then still forward ("5-9pm" is 17-21, "9-5pm" is 9-17). On a ``twelve``
    hour clock, an end of 1 to 11 without a suffix, before a start before noon, is in the
    afternoon ("Mon-Fri 9-5" and "9am-5" are 9-17); on a 24-hour clock it is past
    midnight ("ma-pe 12-2" is 12-02), as "22-2" is on either."""
    (sh, sm, ss), (eh, em, es) = start, end
    if es is not None:
        eh = _on_24(eh, em, es, end=True)
        if ss is None and 1 <= sh <= 12 and (sh % 12 + 12) * 60 + sm < eh * 60 + em:
            ss = "pm"
    if ss is not None:
        sh = _on_24(sh, sm, ss, end=False)
    opens, closes = sh * 60 + sm, eh * 60 + em
    if twelve and es is None and 1 <= eh <= 11 and closes < opens <= 12 * 60 < closes + 12 * 60:
        eh += 12
    return (sh, sm), (eh, em)


def _on_24(hour: int, minute: int, suffix: str, *, end: bool) -> int:
    if suffix == "am":
        return 24 if hour == 12 and minute == 0 and end else hour % 12
    return hour % 12 + 12


def _hhmm(hour: int, minute: int) -> str:
    return f"{hour:02d}:{minute:02d}"
