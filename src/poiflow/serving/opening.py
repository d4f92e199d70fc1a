"""Whether a place is open at a time: its opening hours (OpenStreetMap's syntax, as
``poiflow.normalize.hours`` writes them) read by the ``opening_hours`` parser in the
place's own time zone and country (both found from its point: summer time and public
holidays count), and the hours of the week it can be open, for a search index to filter on.

A time asked about is either an instant (``now``, or an ISO 8601 time with an offset),
the same moment everywhere, or a local time (a time with no offset: ``Sa 10:00``,
``18:30``, ``2026-12-24T10:00``), read at each place in its own time zone. A search
filters on an hour of the week first (in UTC for an instant, in local time for a local
time): each place's document lists every hour of the week in which it is open at least
once in the year from when it was indexed. What passes is then checked exactly. Hours
that are only a comment (``"by appointment"``) say nothing of when: such a place is never
found open. A place without a point has no time zone: it is found open at a local time,
never at an instant.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Final
from zoneinfo import ZoneInfo

from poiflow.errors import InputError

if TYPE_CHECKING:
    from opening_hours import OpeningHours

__all__ = ["WEEK_HOURS", "Week", "When", "open_until", "parse_when", "week_hours"]

WEEK_HOURS: Final = 168
_UTC: Final = ZoneInfo("UTC")
_YEAR: Final = timedelta(days=366)
_HOUR: Final = timedelta(hours=1)
_WEEKS: dict[tuple[str, str | None, datetime], Week | None] = {}
_WEEKS_KEPT: Final = 20_000
# A rule of a comment alone: the parser reads it as open always, which it does not say.
_COMMENT_ALONE: Final = re.compile(r'(^|; )(?=")')
_COMMENT: Final = re.compile(r'"[^"]*"')
_CLOSING_RULE: Final = re.compile(r'(?:^|; )[^;"]*\b(?:off|closed)(?=;|$)')
# What makes hours differ from week to week: months, holidays, week numbers, years, the
# sun, the n-th weekday of a month. Days are two letters in OSM's syntax, months three.
_DATED: Final = re.compile(r"[A-Z][a-z]{2}|PH|SH|week|easter|sun|dawn|dusk|\[|\d{4}")
_A_MONDAY: Final = datetime(2024, 1, 1)
_AN_INSTANT: Final = datetime(2024, 1, 1, tzinfo=_UTC)
_CELL: Final = 0.05  # degrees: the grid of time zone lookups
_CLOCK: Final = re.compile(r"(?:(?P<day>[^\W\d_]+)\.?\s+)?(?P<hour>\d{1,2})[:.](?P<minute>\d{2})")


@dataclass(frozen=True)
class When:
    """A time asked about: ``moment`` with a time zone is an instant; without one, a local
    time at each place."""

    moment: datetime

    @property
    def local(self) -> bool:
        """A local time at each place (not an instant)."""
        return self.moment.tzinfo is None

    @property
    def field(self) -> str:
        """The search document's field of hours to filter on."""
        return "open_local" if self.local else "open_utc"

    @property
    def hour(self) -> int:
        """The hour of the week (0: Monday 00:00-01:00) to filter on: in UTC for an instant,
        in local time for a local time."""
        return _hour_of_week(self.moment if self.local else self.moment.astimezone(_UTC))


@dataclass(frozen=True)
class Week:
    """The hours of the week (0-167, from Monday 00:00) in which a place is open at least
    once in a year: in UTC (none without a time zone) and in its local time."""

    utc: tuple[int, ...]
    local: tuple[int, ...]


def parse_when(text: str, *, now: datetime | None = None) -> When:
    """A time asked about, from what a person writes.

    - ``now``: this instant;
    - ``HH:MM``: today at that local time at each place;
    - ``DAY HH:MM`` (``Sa 10:00``, ``Saturday 10:00``, ``la 10:00``: a day as the hours
      reader knows it, see ``poiflow.normalize.hours.weekday``): the coming such day (today
      if it is that day) at that local time;
    - ISO 8601 (``2026-12-24T10:00``): a local time; with an offset or ``Z``
      (``2026-12-24T10:00+02:00``), an instant.

    Raises:
        InputError: None of these.
    """
    now = (now or datetime.now(_UTC)).astimezone(_UTC)
    written = text.strip()
    if written.lower() == "now":
        return When(now)
    clock = _CLOCK.fullmatch(written)
    if clock:
        hour, minute = int(clock["hour"]), int(clock["minute"])
        day = clock["day"]
        if day:  # the hours reader's days (it brings normalization's imports: only now)
            from poiflow.normalize.hours import weekday

            wanted = weekday(day)
        else:
            wanted = now.weekday()
        if wanted is None or hour > 23 or minute > 59:
            raise InputError(f"not a time: {text!r}: {_FORMS}")
        date = now.date() + timedelta(days=(wanted - now.weekday()) % 7)
        return When(datetime(date.year, date.month, date.day, hour, minute))
    try:
        moment = datetime.fromisoformat(written.replace("z", "Z"))
        return When(moment.astimezone(_UTC) if moment.tzinfo is not None else moment)
    except (ValueError, OverflowError):  # not a time, or not one in UTC's years 1-9999
        raise InputError(f"not a time: {text!r}: {_FORMS}") from None


_FORMS: Final = (
    "give 'now', 'HH:MM' (today, local time), 'DAY HH:MM' ('Sa 10:00') or an ISO 8601 "
    "time ('2026-12-24T10:00'; with an offset, '2026-12-24T10:00+02:00', an instant)"
)


def week_hours(
    hours: str | None, lat: float | None, lon: float | None, *, since: datetime
) -> Week | None:
    """The hours of the week in which a place with these opening hours, at this point, is
    open at least once in the year from ``since`` (an instant); None without readable hours.
    """
    if not hours:
        return None
    point = _point(lat, lon)
    hour = since.astimezone(_UTC).replace(minute=0, second=0, microsecond=0)
    zone = _zone(point) if point else None
    key = (_evaluated(hours), zone, hour)
    if key not in _WEEKS:
        if len(_WEEKS) >= _WEEKS_KEPT:
            _WEEKS.clear()
        # Every place of one time zone with the same hours has the same week (the first
        # such place's point stands for its country's holidays).
        _WEEKS[key] = _week(key[0], point if zone else None, zone, hour)
    return _WEEKS[key]


def open_until(
    hours: str | None, lat: float | None, lon: float | None, when: When
) -> tuple[bool, datetime | None]:
    """Whether a place is open at ``when``, and until when (None: open with no end in the
    year ahead, or closed)."""
    if not hours:
        return False, None
    point = _point(lat, lon)
    if point is None and not when.local:
        return False, None
    expression = _expression(_evaluated(hours), point)
    moment = when.moment if when.local else when.moment.astimezone(_UTC)
    if expression is None or not expression.is_open(moment):
        return False, None
    return True, expression.next_change(moment)


def _point(lat: float | None, lon: float | None) -> tuple[float, float] | None:
    return (lat, lon) if lat is not None and lon is not None else None


def _evaluated(hours: str) -> str:
    """The hours as they are evaluated: a rule of a comment alone is unknown, not open."""
    return _COMMENT_ALONE.sub(r"\1unknown ", hours) if '"' in hours else hours


@lru_cache(maxsize=65_536)
def _expression(
    hours: str, point: tuple[float, float] | None, *, zoned: bool = True
) -> OpeningHours | None:
    """The parsed hours, at ``point``'s country (its holidays) and, ``zoned``, its time zone
    (else on its local clock: times in and out naive). Parsed once: a server asks the same
    places again and again."""
    import opening_hours

    unreadable = opening_hours.ParserError  # type: ignore[attr-defined]  # not in its stubs

    try:
        return opening_hours.OpeningHours(
            hours, coords=point, auto_timezone=zoned, max_interval_days=366
        )
    except unreadable:  # not written by poiflow's reader: nothing can be said of it
        return None


def _zone(point: tuple[float, float]) -> str | None:
    """The time zone at a point, as the parser finds it. A cell of the grid whose four
    corners lie in one zone is taken to lie in it whole (places are dense where people
    are: one lookup serves a city's); elsewhere the point itself is looked up."""
    lat, lon = point
    row, column = math.floor(lat / _CELL), math.floor(lon / _CELL)
    whole = _cell_zone(row, column)
    return whole if whole is not None else _zone_at(point)


@lru_cache(maxsize=65_536)
def _cell_zone(row: int, column: int) -> str | None:
    corners = {_zone_at(((row + i) * _CELL, (column + j) * _CELL)) for i in (0, 1) for j in (0, 1)}
    return corners.pop() if len(corners) == 1 else None


def _zone_at(point: tuple[float, float]) -> str | None:
    always = _expression("24/7", point)
    assert always is not None
    for start, _, _, _ in always.intervals(_AN_INSTANT, _AN_INSTANT + _HOUR):
        return getattr(start.tzinfo, "key", None)
    return None


def _week(
    hours: str, point: tuple[float, float] | None, zone: str | None, since: datetime
) -> Week | None:
    """The hours are read on the local clock (over one week where they name no dates, else
    over the year); the UTC hours are the local ones moved by each offset the zone has in
    that year (a little more than the exact ones: a search checks what it finds)."""
    # A rule that only closes ("PH off") can only take hours away: without it the hours
    # are a few more, and often the same every week.
    opening = _CLOSING_RULE.sub("", hours).removeprefix("; ")
    if not opening:
        local: frozenset[int] | None = frozenset()
    elif _DATED.search(_COMMENT.sub("", opening)):
        start = (since.astimezone(ZoneInfo(zone)) if zone else since).replace(tzinfo=None)
        local = _local_hours(opening, point, start, _YEAR)
    else:  # the same every week, wherever it is
        local = _weekly_hours(opening)
    if local is None:
        return None
    utc = {
        (hour - shift) % WEEK_HOURS
        for offset in (_offsets(zone, since) if zone else ())
        for shift in {math.floor(offset), math.ceil(offset)}
        for hour in local
    }
    return Week(utc=tuple(sorted(utc)), local=tuple(sorted(local)))


@lru_cache(maxsize=4096)
def _weekly_hours(hours: str) -> frozenset[int] | None:
    """The local hours of a week of hours that name no dates: one week from a Monday (the
    parser gives the Monday's first hours the Sunday night before it)."""
    return _local_hours(hours, None, _A_MONDAY, timedelta(days=7))


def _local_hours(
    hours: str, point: tuple[float, float] | None, start: datetime, span: timedelta
) -> frozenset[int] | None:
    """The hours of the week (local clock) open in [start, start + span), at ``point``'s
    country (its holidays)."""
    from opening_hours import State

    expression = _expression(hours, point, zoned=False)
    if expression is None:
        return None
    local: set[int] = set()
    for begin, end, state, _ in expression.intervals(start, start + span):
        if state != State.OPEN:
            continue
        first = begin.weekday() * 24 + begin.hour
        seconds = (end - begin).total_seconds() + begin.minute * 60 + begin.second
        _mark(local, first, math.ceil(seconds / 3600))
        if len(local) == WEEK_HOURS:
            break
    return frozenset(local)


@lru_cache(maxsize=1024)
def _offsets(zone: str, since: datetime) -> frozenset[float]:
    """The offsets from UTC (hours) a time zone has in the year from ``since``."""
    tz = ZoneInfo(zone)
    return frozenset(
        (since + timedelta(days=day)).astimezone(tz).utcoffset().total_seconds() / 3600  # type: ignore[union-attr]
        for day in range(0, 367, 7)
    )


def _mark(hours: set[int], first: int, count: int) -> None:
    """Add ``count`` hours of the week from ``first`` (going round past Sunday's end)."""
    if count >= WEEK_HOURS:
        hours.update(range(WEEK_HOURS))
        return
    hours.update(range(first, min(first + count, WEEK_HOURS)))
    hours.update(range(max(0, first + count - WEEK_HOURS)))


def _hour_of_week(moment: datetime) -> int:
    return moment.weekday() * 24 + moment.hour
