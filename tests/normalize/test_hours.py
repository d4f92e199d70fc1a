"""Opening hours: OSM's syntax spelled canonically, and hours written for people read into
it, in English, Finnish, Swedish and German."""

from __future__ import annotations

import itertools
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from opening_hours import OpeningHours

from poiflow.normalize.hours import canonical_hours

DAYS = ["Mo", "Tu", "We", "Th", "Fr", "Sa", "Su"]
WRITTEN_DAYS = {
    "en": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
    "en_short": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
    "fi": ["ma", "ti", "ke", "to", "pe", "la", "su"],
    "sv": ["mån", "tis", "ons", "tors", "fre", "lör", "sön"],
    "de": ["Mo", "Di", "Mi", "Do", "Fr", "Sa", "So"],
}
CLOSED = {
    "en": "closed",
    "en_short": "Closed",
    "fi": "suljettu",
    "sv": "stängt",
    "de": "geschlossen",
}


@st.composite
def schedules(draw: st.DrawFn) -> list[tuple[int, int, list[tuple[int, int]] | None]]:
    """Rules of a week: a range of days each (first, last; the ranges apart, in order, as a
    week's hours are written), and its spans of minutes in the day (start < end, on the
    quarter hour, up to 24:00), or None for closed. (Where two rules' days overlap, OSM
    reads ``,`` between them as adding hours and ``;`` as replacing them: a written value
    that is valid OSM is read as OSM reads it.)"""
    cuts = sorted(draw(st.sets(st.integers(0, 7), min_size=2, max_size=4)))
    rules = []
    for first, after in itertools.pairwise(cuts):
        last = after - 1
        if draw(st.booleans()) and rules:
            rules.append((first, last, None))
            continue
        marks = sorted(draw(st.sets(st.integers(0, 96), min_size=2, max_size=4)))
        spans = [(marks[i] * 15, marks[i + 1] * 15) for i in range(0, len(marks) - 1, 2)]
        rules.append((first, last, spans))
    return rules


def _days(first: int, last: int, names: list[str], dash: str = "-") -> str:
    return names[first] if first == last else f"{names[first]}{dash}{names[last]}"


def _osm(rules: list[tuple[int, int, list[tuple[int, int]] | None]]) -> str:
    def clock(minutes: int) -> str:
        return f"{minutes // 60:02d}:{minutes % 60:02d}"

    return "; ".join(
        f"{_days(a, b, DAYS)} "
        + ("off" if spans is None else ",".join(f"{clock(s)}-{clock(e)}" for s, e in spans))
        for a, b, spans in rules
    )


def _written(
    rules: list[tuple[int, int, list[tuple[int, int]] | None]], language: str, style: int
) -> str:
    """The rules as a person writes them: 12-hour clocks with am/pm (English), dots or
    bare hours (Finnish), "to" between days, ", " between rules."""
    names = WRITTEN_DAYS[language]

    def clock(minutes: int) -> str:
        hours, rest = divmod(minutes, 60)
        if language.startswith("en") and style % 2 and minutes not in (0, 1440):
            suffix = "am" if hours < 12 else "pm"
            shown = hours % 12 or 12
            return f"{shown}{f':{rest:02d}' if rest else ''}{suffix}"
        if language == "fi":
            return f"{hours}" if not rest else f"{hours}.{rest:02d}"
        return f"{hours}:{rest:02d}"

    dash = " to " if language == "en" and style % 3 == 0 else "-"
    separator = ", " if style % 2 else "; "
    parts = []
    for a, b, spans in rules:
        when = (
            CLOSED[language]
            if spans is None
            else ", ".join(f"{clock(s)} - {clock(e)}" for s, e in spans)
        )
        parts.append(f"{_days(a, b, names, dash)}{':' if style % 4 == 1 else ''} {when}")
    return separator.join(parts)


@given(schedules())
def test_osm_hours_are_spelled_as_the_parser_spells_them_and_stay_so(
    rules: list[tuple[int, int, list[tuple[int, int]] | None]],
) -> None:
    value = _osm(rules)
    spelled = canonical_hours(value)
    assert spelled == str(OpeningHours(value))
    assert canonical_hours(spelled) == spelled
    # Spacing and case are the writer's, not the hours'.
    assert canonical_hours(value.replace("; ", ";").lower()) == spelled


@given(schedules(), st.sampled_from(sorted(WRITTEN_DAYS)), st.integers(0, 11))
@example([(0, 4, [(540, 1020)]), (5, 5, [(600, 840)]), (6, 6, None)], "en", 3)
@example([(0, 3, [(600, 1080)]), (4, 4, [(600, 1200)])], "fi", 0)
def test_hours_written_for_people_are_read_as_the_same_hours(
    rules: list[tuple[int, int, list[tuple[int, int]] | None]], language: str, style: int
) -> None:
    assert canonical_hours(_written(rules, language, style)) == canonical_hours(_osm(rules))


@given(
    st.lists(st.sampled_from(DAYS), min_size=2, max_size=4, unique=True),
    st.sampled_from([", ", " , ", ",  ", ","]),
    st.sampled_from(["09:00-16:00", "off", "10:00-12:00,13:00-18:00"]),
    st.booleans(),
    st.sampled_from(["; ", " || "]),
)
def test_a_rules_days_listed_with_spaces_are_one_list(
    days: list[str], comma: str, hours: str, first: bool, separator: str
) -> None:
    # "Sa, Su 09:00-16:00": the parser reads ", " as two rules, "Sa" (open all day) and
    # "Su 09:00-16:00"; the mapper meant one list of days, as "Sa,Su 09:00-16:00" says.
    rule = f"{comma.join(days)} {hours}"
    value = rule if first else f"PH off{separator}{rule}"
    listed = value.replace(rule, f"{','.join(days)} {hours}")
    assert canonical_hours(value) == canonical_hours(listed) == str(OpeningHours(listed))


def test_the_days_of_a_rule_with_spaces_keep_their_hours() -> None:
    # Three of the Helsinki extract's values are so written (the Ateneum's among them).
    tuesday_night = datetime(2026, 12, 8, 3, 0)
    spelled = canonical_hours("Tu, Fr 10:00-18:00; We-Th 10:00-20:00; Sa-Su 10:00-17:00")
    assert spelled == "Tu,Fr 10:00-18:00; We-Th 10:00-20:00; Sa-Su 10:00-17:00"
    assert not OpeningHours(spelled).is_open(tuesday_night)
    assert OpeningHours(spelled).is_open(tuesday_night.replace(hour=11))
    # Days after a rule's hours start a rule of their own, as written.
    assert canonical_hours("Mo-Fr 09:00-17:00, Sa 10:00-14:00") == (
        "Mo-Fr 09:00-17:00; Sa 10:00-14:00"
    )
    assert canonical_hours('Mo-Su 10:00-20:00 "Sa, Su by appointment"') == (
        'Mo-Su 10:00-20:00 "Sa, Su by appointment"'
    )


@given(st.text(alphabet=st.sampled_from(list("MoTuWeFrSaSu0123456789:.-–;, amp")), max_size=40))
@example('Mo-Fr 09:00-17:00 "call first"')
@example("12:60-13")
def test_any_text_is_read_as_hours_the_parser_takes_or_not_at_all(value: str) -> None:
    spelled = canonical_hours(value)
    if spelled is not None:
        assert str(OpeningHours(spelled)) == spelled
        assert canonical_hours(spelled) == spelled


@given(st.text(max_size=60))
def test_canonical_hours_never_raises(value: str) -> None:
    spelled = canonical_hours(value)
    assert spelled is None or spelled == canonical_hours(spelled)


@pytest.mark.parametrize(
    ("written", "hours"),
    [
        ("Mon-Fri 9am-5pm", "Mo-Fr 09:00-17:00"),
        (
            "Monday to Friday 9:00 a.m. - 5:30 p.m., Sat 10-2, Sun closed",
            "Mo-Fr 09:00-17:30; Sa 10:00-14:00; Su closed",
        ),
        ("Mon-Fri 5-9pm", "Mo-Fr 17:00-21:00"),  # the evening, not 5 in the morning
        ("Weekdays 9-5", "Mo-Fr 09:00-17:00"),
        ("10am–10pm daily", "Mo-Su 10:00-22:00"),
        ("Closed Sundays and holidays", "Su,PH closed"),
        ("Open 24 hours", "24/7"),
        ("noon to midnight", "12:00-24:00"),
        ("Mon-Fri 0900-1700", "Mo-Fr 09:00-17:00"),
        ("ma-to 10-18, pe 10-20, la 10-15", "Mo-Th 10:00-18:00; Fr 10:00-20:00; Sa 10:00-15:00"),
        ("arkisin klo 8-16", "Mo-Fr 08:00-16:00"),
        ("to 9.30-17", "Th 09:30-17:00"),  # Finnish Thursday, not English "to"
        ("mån-fre 9-17, lör 10-14, sön stängt", "Mo-Fr 09:00-17:00; Sa 10:00-14:00; Su closed"),
        ("Mo-Fr 9-17 Uhr, Sa 10-14 Uhr", "Mo-Fr 09:00-17:00; Sa 10:00-14:00"),
        # Real OSM values that OSM's parser refuses, as mappers write them.
        ("We-Fr 13:00-18:00 Sa 12:00-18:00", "We-Fr 13:00-18:00; Sa 12:00-18:00"),
        ("Mo-Fr 7:00-21; Sa-Su 12:00-18:00", "Mo-Fr 07:00-21:00; Sa-Su 12:00-18:00"),
        ("Mo-Fr 16:00-, Sa 14:00-", "Mo-Fr 16:00+; Sa 14:00+"),
        # OSM values are kept as they say: a later rule would override "Sa 14:00-24:00"
        # under OSM's rules, but the value is not rewritten by them.
        ("Mo-Su 11:00-24:00;Sa-Su 00:00-02:00", "Mo-Su 11:00-24:00; Sa-Su 00:00-02:00"),
        ('Mo-Fr 09:00-17:00 "call first"', 'Mo-Fr 09:00-17:00 "call first"'),
        # A comment alone says when nothing is open; the parser's "24/7" is not written.
        ('"for request only"', '"for request only"'),
        ('Mo-Fr 09:00-17:00; "call first"', 'Mo-Fr 09:00-17:00; "call first"'),
        ("off", "24/7 closed"),
        # OSM's "," between rules adds hours; where the days do not overlap, that is ";".
        ("Mo-Fr 09:00-17:00, Sa 10:00-14:00", "Mo-Fr 09:00-17:00; Sa 10:00-14:00"),
        ("Mo-Su 11:00-24:00, Sa-Su 00:00-02:00", "Mo-Su 11:00-24:00, Sa-Su 00:00-02:00"),
    ],
)
def test_examples_of_written_hours(written: str, hours: str) -> None:
    assert canonical_hours(written) == hours


@pytest.mark.parametrize(
    "text",
    [
        "by appointment",
        "Seasonal, only summer time",
        "Mon-Fri",
        "Mo-Fr 25:00-26:00",
        "13pm-2pm",
        "",
    ],
)
def test_what_is_not_opening_hours_is_none(text: str) -> None:
    assert canonical_hours(text) is None


def test_records_carry_their_hours_spelled_as_osm_and_unread_hours_are_withheld() -> None:
    from poiflow.normalize import normalize_records
    from poiflow.sources import records_from_rows

    hours = ["Mo-Fr 8:00-16:00;Sa 10:00-14:00", "Mon-Fri 8am-4pm, Sat 10-2", "by appointment", None]
    records = records_from_rows(
        [
            {"source": "s", "id": str(i), "names": {"primary": "Kahvila"}, "opening_hours": h}
            for i, h in enumerate(hours)
        ]
    )
    normalized = normalize_records(records)
    assert normalized.places.column("opening_hours").to_pylist() == [
        "Mo-Fr 08:00-16:00; Sa 10:00-14:00",
        "Mo-Fr 08:00-16:00; Sa 10:00-14:00",
        None,
        None,
    ]
    [problem] = normalized.problems
    assert (problem.row, problem.field, problem.value) == (2, "opening_hours", "by appointment")
    assert "Mon-Fri 9am-5pm" in problem.reason


def test_the_helsinki_extracts_hours(helsinki_pbf: Path) -> None:
    """Real OSM values: nearly all are OSM's syntax; of those the parser refuses, those a
    mapper wrote as people do are read, and only free text is left."""
    from poiflow.sources import OsmSource

    values = [
        value
        for batch in OsmSource(helsinki_pbf).batches()
        for value in batch.records.column("opening_hours").to_pylist()
        if value
    ]
    unread = sorted(v for v in values if canonical_hours(v) is None)
    assert len(values) == 542
    assert unread == [
        "Mo-Fr 09:30 - 15:00. Lunch Mo-Fr 11:00 - 13:30",
        "Seasonal, only summer time",
    ]
    assert canonical_hours("Su-Th 15-00; Fr-Sa 15-02") == "Su-Th 15:00-00:00; Fr-Sa 15:00-02:00"
    assert all(
        canonical_hours(canonical_hours(v) or "") in (canonical_hours(v), None) for v in values
    )
