"""Whether a place is open at a time: random weekly hours against a reading of them by
hand, in three time zones (one half an hour off UTC's) and without a point; the hours of
the week a search filters on never leave out a time a place is open; and what people
write as a time is read as they mean it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from poiflow.errors import InputError
from poiflow.serving.opening import WEEK_HOURS, When, open_until, parse_when, week_hours

_DAYS = ("Mo", "Tu", "We", "Th", "Fr", "Sa", "Su")
# Helsinki (UTC+2, +3 in summer), New York (-5, -4), Mumbai (+5:30, no summer time).
POINTS = {
    "Europe/Helsinki": (60.17, 24.94),
    "America/New_York": (40.71, -74.01),
    "Asia/Kolkata": (19.08, 72.88),
}
SINCE = datetime(2026, 12, 4, 17, tzinfo=UTC)


@st.composite
def weeks(draw: st.DrawFn) -> tuple[frozenset[int], list[tuple[int, int]]]:
    """Days of the week, and times of day (minutes, in order, apart) open on each; the
    last may run past midnight into the next day (its end is then below its start)."""
    days = draw(st.frozensets(st.integers(0, 6), min_size=1))
    edges = sorted(draw(st.sets(st.integers(1, 95).map(lambda q: q * 15), min_size=2, max_size=6)))
    spans = [(edges[i], edges[i + 1]) for i in range(0, len(edges) - 1, 2)]
    if draw(st.booleans()):  # e.g. 22:00-02:00
        spans.append((min(edges[-1] + 15 * draw(st.integers(0, 3)), 1425), edges[0] // 2))
    return days, [(s, e) for s, e in spans if s != e]


def written(days: frozenset[int], spans: list[tuple[int, int]]) -> str:
    clock = ",".join(f"{s // 60:02d}:{s % 60:02d}-{e // 60:02d}:{e % 60:02d}" for s, e in spans)
    return f"{','.join(_DAYS[d] for d in sorted(days))} {clock}"


def open_by_hand(days: frozenset[int], spans: list[tuple[int, int]], moment: datetime) -> bool:
    minute, day = moment.hour * 60 + moment.minute, moment.weekday()
    for start, end in spans:
        if start < end and day in days and start <= minute < end:
            return True
        if start > end and (  # past midnight: the evening of one day, the night after it
            (day in days and minute >= start) or ((day - 1) % 7 in days and minute < end)
        ):
            return True
    return False


def hours_by_hand(days: frozenset[int], spans: list[tuple[int, int]]) -> set[int]:
    """The hours of the week (from Monday 00:00) the hours have any part of."""
    found = set()
    for day in days:
        for start, end in spans:
            end = end if start < end else end + 24 * 60
            found.update((day * 24 + h) % WEEK_HOURS for h in range(start // 60, -(-end // 60)))
    return found


@settings(max_examples=150, deadline=None)
@given(
    week=weeks(),
    zone=st.sampled_from([*POINTS, None]),
    offsets=st.lists(st.integers(0, 365 * 24 * 4), min_size=1, max_size=8),
    dated=st.booleans(),
)
def test_random_weekly_hours_are_open_when_read_by_hand(
    week: tuple[frozenset[int], list[tuple[int, int]]],
    zone: str | None,
    offsets: list[int],
    dated: bool,
) -> None:
    days, spans = week
    # A rule of a date long after the year changes nothing, but makes the hours be read
    # over the year rather than one week.
    hours = written(days, spans) + ("; 2099 Jan 01 10:00-11:00" if dated else "")
    lat, lon = POINTS[zone] if zone else (None, None)
    found = week_hours(hours, lat, lon, since=SINCE)
    assert found is not None
    assert set(found.local) == hours_by_hand(days, spans)
    assert bool(found.utc) == (zone is not None)
    for quarter in offsets:
        instant = SINCE + timedelta(minutes=15 * quarter + 7)
        local = instant.astimezone(ZoneInfo(zone)) if zone else instant
        expected = open_by_hand(days, spans, local.replace(tzinfo=None))
        # An instant (in any zone): open where its hand-read local time is (unknown
        # without a point).
        when = When(local if zone else instant)
        is_open, until = open_until(hours, lat, lon, when)
        assert is_open == (expected and zone is not None)
        if is_open:
            assert when.hour in found.utc  # the search's filter never leaves it out
            assert until is not None
            assert until > instant
        # A local time: read on each place's own clock.
        when = When(local.replace(tzinfo=None))
        assert open_until(hours, lat, lon, when)[0] == expected
        if expected:
            assert when.hour in found.local


def test_a_comment_alone_or_unreadable_hours_are_never_open() -> None:
    friday = When(datetime(2026, 12, 11, 12, 0))
    lat, lon = POINTS["Europe/Helsinki"]
    for hours in ('"by appointment"', "Fr11:00-24:00", "", None):
        assert open_until(hours, lat, lon, friday) == (False, None)
    assert week_hours('"by appointment"', lat, lon, since=SINCE) == week_hours(
        "off", lat, lon, since=SINCE
    )
    assert week_hours("Fr11:00-24:00", lat, lon, since=SINCE) is None
    # A rule of a comment alone is unknown; the rules before it still count.
    assert open_until('Mo-Fr 09:00-17:00; Sa "call first"', lat, lon, friday)[0]
    everything = week_hours("24/7", lat, lon, since=SINCE)
    assert everything is not None
    assert len(everything.local) == len(everything.utc) == WEEK_HOURS


NOW = datetime(2026, 12, 11, 9, 30, tzinfo=UTC)  # a Friday


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("now", NOW),
        ("NOW", NOW),
        ("18:30", datetime(2026, 12, 11, 18, 30)),
        ("Fr 08:00", datetime(2026, 12, 11, 8, 0)),  # today, even if past
        ("Sa 10:00", datetime(2026, 12, 12, 10, 0)),
        ("thursday 9.15", datetime(2026, 12, 17, 9, 15)),
        ("la 10:00", datetime(2026, 12, 12, 10, 0)),  # Finnish, as the hours reader reads it
        ("2026-12-24T10:00", datetime(2026, 12, 24, 10, 0)),
        ("2026-12-24T10:00+02:00", datetime(2026, 12, 24, 8, 0, tzinfo=UTC)),
        ("2026-12-24T10:00Z", datetime(2026, 12, 24, 10, 0, tzinfo=UTC)),
    ],
)
def test_times_are_read_as_people_mean_them(text: str, moment: datetime) -> None:
    when = parse_when(text, now=NOW)
    assert when.moment == moment
    assert when.local == (moment.tzinfo is None)


@pytest.mark.parametrize(
    "text",
    ["", "tomorrow", "Sa 25:00", "Xy 10:00", "10", "2026-13-01", "0001-01-01T00:00+01:00"],
)
def test_a_time_that_is_not_one_says_how_to_write_one(text: str) -> None:
    with pytest.raises(InputError, match=r"not a time.*'now', 'HH:MM'"):
        parse_when(text, now=NOW)


@settings(max_examples=300)
@given(
    st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9998, 12, 30)), st.booleans()
)
def test_an_iso_time_reads_back_to_itself(moment: datetime, instant: bool) -> None:
    if instant:
        moment = moment.replace(tzinfo=UTC)
    when = parse_when(moment.isoformat(), now=NOW)
    assert when.moment == moment
    assert when.field == ("open_utc" if instant else "open_local")
    assert 0 <= when.hour < WEEK_HOURS


@given(st.text(max_size=40))
def test_any_text_is_a_time_or_a_clear_error(text: str) -> None:
    try:
        when = parse_when(text, now=NOW)
    except InputError as exc:
        error = str(exc)
    else:
        assert isinstance(when.moment, datetime)
        return
    assert error.startswith(f"not a time: {text!r}")


@given(st.integers(0, 6), st.integers(0, 23), st.integers(0, 59))
def test_a_day_and_a_clock_is_the_coming_such_day(day: int, hour: int, minute: int) -> None:
    when = parse_when(f"{_DAYS[day]} {hour}:{minute:02d}", now=NOW)
    assert when.local
    assert when.moment.weekday() == day
    assert (when.moment.hour, when.moment.minute) == (hour, minute)
    assert 0 <= (when.moment.date() - NOW.date()).days < 7
