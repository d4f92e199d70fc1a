"""Opening hours as sources write them: OpenStreetMap's syntax, or written for people.

The world's places carry the opening hours of real OSM objects. An OSM-like source writes
them as they are; a feed may write them for people, in English ("Mon-Fri 9am-5pm, Sun
closed") or in Finnish ("ma-pe 9-17, su suljettu"), may not have them, or may have a
place's old hours (another place's, drawn from the world). Normalization reads every
style back to one spelling, so the golden record can be held to the truth's hours.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final

import numpy as np

from poiflow.generate.world import Place

__all__ = ["HOUR_STYLES", "SourceHours", "hours_as_written"]

HOUR_STYLES: Final = ("osm", "en", "fi")
_OSM_DAYS: Final = ("Mo", "Tu", "We", "Th", "Fr", "Sa", "Su")
_DAY_NAMES: Final = {
    "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
    "fi": ("ma", "ti", "ke", "to", "pe", "la", "su"),
}
_CLOSED: Final = {"en": "closed", "fi": "suljettu"}
_DAY: Final = r"(?:Mo|Tu|We|Th|Fr|Sa|Su)"
_DAYS: Final = re.compile(rf"^{_DAY}(?:-{_DAY})?(?:,{_DAY}(?:-{_DAY})?)*$")
_SPANS: Final = re.compile(r"^\d\d:\d\d-\d\d:\d\d(?:,\d\d:\d\d-\d\d:\d\d)*$")


def hours_as_written(hours: str, style: str) -> str:
    """OSM opening hours as a source of ``style`` writes them (``HOUR_STYLES``). Hours
    beyond days and times (holidays, months, comments) are written as OSM writes them."""
    if style == "osm":
        return hours
    rules = []
    parts = hours.split(";")
    for rule in parts:
        days, _, when = rule.strip().rpartition(" ")
        if (days and not _DAYS.match(days)) or (not days and len(parts) > 1):
            return hours  # a rule of every day after others has no plain words
        if when in ("off", "closed") and days:
            spoken = _CLOSED[style]
        elif _SPANS.match(when):
            spoken = ", ".join(_span(span, style) for span in when.split(","))
        else:
            return hours
        rules.append(f"{_days(days, style)} {spoken}" if days else spoken)
    return ", ".join(rules)


def _days(days: str, style: str) -> str:
    names = _DAY_NAMES[style]
    return ", ".join(
        "-".join(names[_OSM_DAYS.index(day)] for day in part.split("-")) for part in days.split(",")
    )


def _span(span: str, style: str) -> str:
    start, end = span.split("-")
    return f"{_clock(start, style)}-{_clock(end, style)}"


def _clock(time: str, style: str) -> str:
    hour, minute = (int(part) for part in time.split(":"))
    if style == "fi":  # "9", "9.30", "17"
        return f"{hour}" if not minute else f"{hour}.{minute:02d}"
    if hour == 24:
        return "midnight"
    if hour == 0:  # on a 24-hour clock: "12am" would be read as the day's end
        return f"0:{minute:02d}"
    suffix = "am" if hour < 12 else "pm"
    shown = hour % 12 or 12
    return f"{shown}{f':{minute:02d}' if minute else ''}{suffix}"


class SourceHours:
    """The opening hours each source of a world writes. The first (OSM-like) source writes
    OSM's syntax, leaves out 30% and has 2% out of date; each feed after it writes in turn
    OSM's syntax, English or Finnish, leaves out half and has 8% out of date (another
    place's hours). Drawn from ``rng``, a stream of their own, so that hours change no other
    value of a generated world."""

    def __init__(self, world: Sequence[Place], rng: np.random.Generator) -> None:
        self.hours_of = {place.place_id: place.opening_hours for place in world}
        self.pool = [hours for hours in self.hours_of.values() if hours]
        self.rng = rng

    def add(self, rows: list[dict[str, Any]], number: int) -> None:
        """Give each record of the source ``number`` (from 0) its place's hours (by the
        record's ``_place``) as the source writes them."""
        style = "osm" if number == 0 else HOUR_STYLES[(number - 1) % len(HOUR_STYLES)]
        missing, stale = (0.3, 0.02) if number == 0 else (0.5, 0.08)
        for row in rows:
            hours = self.hours_of[row["_place"]]
            if hours is None or self.rng.random() < missing:
                continue
            if self.pool and self.rng.random() < stale:
                hours = self.pool[int(self.rng.integers(len(self.pool)))]
            row["opening_hours"] = hours_as_written(hours, style)
