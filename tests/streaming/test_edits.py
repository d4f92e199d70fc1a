"""Edit messages: what is read, what is refused and why, and how messages are keyed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from poiflow.streaming.edits import (
    EditError,
    edit_message,
    parse_edit,
    region_key,
)
from poiflow.streaming.producer import edit_keys

TEXT = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=20)


@given(
    edit_id=TEXT,
    op=st.sampled_from(["upsert", "close", "delete"]),
    seconds=st.integers(0, 4_000_000_000),
    offset=st.integers(-12, 14),
    source=TEXT,
    record=st.one_of(TEXT, st.integers(0, 10**12)),
    name=TEXT,
)
def test_every_edit_a_producer_writes_reads_back_the_same(
    edit_id: str, op: str, seconds: int, offset: int, source: str, record: object, name: str
) -> None:
    time = datetime.fromtimestamp(seconds, timezone(timedelta(hours=offset)))
    place = {"source": source, "id": record, "name": name}
    edit = parse_edit(edit_message(edit_id, op, time, place))
    assert (edit.edit_id, edit.op, edit.source, edit.id) == (edit_id, op, source, str(record))
    assert edit.time == time
    assert edit.time.tzinfo == UTC
    assert edit.place["name"] == name
    assert edit.record == (source, str(record))
    assert edit.stamp == (seconds * 1000, edit_id)


@given(st.binary(max_size=200))
def test_any_bytes_are_an_edit_or_refused_with_a_reason(value: bytes) -> None:
    reason = ""
    try:
        parse_edit(value)
    except EditError as exc:
        reason = str(exc)
    else:  # pragma: no cover - random bytes are practically never an edit
        reason = "read"
    assert reason


GOOD = {
    "schema": 1,
    "edit_id": "e1",
    "op": "upsert",
    "time": "2026-11-30T08:00:00Z",
    "place": {"source": "osm", "id": "n1", "name": "Cafe"},
}


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "not a JSON object but list"),
        (json.dumps({**GOOD, "schema": 2}).encode(), "schema version 2; this consumer reads"),
        (json.dumps({k: v for k, v in GOOD.items() if k != "schema"}).encode(), "no schema"),
        (json.dumps({**GOOD, "op": "merge"}).encode(), "op: Input should be"),
        (json.dumps({**GOOD, "time": "2026-11-30T08:00:00"}).encode(), "has no time zone"),
        (json.dumps({**GOOD, "time": "yesterday"}).encode(), "time: Input should be"),
        (json.dumps({**GOOD, "place": {"id": "n1"}}).encode(), "place.source: missing"),
        (json.dumps({**GOOD, "place": {"source": "osm"}}).encode(), "place.id: missing"),
        (json.dumps({**GOOD, "colour": "red"}).encode(), "colour: Extra inputs"),
        (json.dumps({k: v for k, v in GOOD.items() if k != "edit_id"}).encode(), "edit_id"),
        (None, "empty message"),
    ],
)
def test_a_bad_message_is_refused_with_a_reason_that_says_what(
    message: bytes | None, reason: str
) -> None:
    with pytest.raises(EditError, match=reason.replace("(", r"\(")):
        parse_edit(message)


def test_messages_are_keyed_by_region_and_a_close_follows_its_record() -> None:
    helsinki, nearby, tokyo = (60.17, 24.94), (60.175, 24.95), (35.68, 139.69)
    assert region_key(*helsinki) == region_key(*nearby) != region_key(*tokyo)
    assert region_key(None, None) == region_key(95.0, 24.0) == "unlocated"

    def message(op: str, record: str, point: tuple[float, float] | None) -> bytes:
        place: dict[str, object] = {"source": "osm", "id": record, "name": "x"}
        if point:
            place.update(lat=point[0], lon=point[1])
        return edit_message("e", op, "2026-11-30T08:00:00Z", place)

    keys = edit_keys(
        [
            message("upsert", "a", tokyo),
            message("close", "a", None),
            message("delete", "b", None),
            b"not json",
        ]
    )
    assert keys == [region_key(*tokyo), region_key(*tokyo), "unlocated", "unlocated"]
