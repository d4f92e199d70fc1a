"""Edit messages: what is read, what is refused and why, and how messages are keyed; and
what the Kafka side says where no broker can be reached."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from poiflow.config import StreamSettings
from poiflow.errors import ConfigError, ServerUnavailableError
from poiflow.streaming import StreamState, consumer
from poiflow.streaming.consumer import EditStream
from poiflow.streaming.edits import (
    EditError,
    edit_message,
    parse_edit,
    region_key,
)
from poiflow.streaming.producer import create_topics, edit_keys, send_edits

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


@given(
    op=st.one_of(st.sampled_from(["upsert", "close", "delete"]), TEXT),
    time=st.one_of(
        st.datetimes(timezones=st.one_of(st.none(), st.just(UTC))),
        st.sampled_from(["2026-11-30T08:00:00Z", "2026-11-30T08:00", "yesterday", ""]),
    ),
    place=st.dictionaries(
        st.sampled_from(["source", "id", "name"]),
        st.one_of(st.none(), st.booleans(), st.integers(0, 9), TEXT),
    ),
)
def test_a_producer_writes_only_what_the_consumer_reads(
    op: str, time: datetime | str, place: dict[str, object]
) -> None:
    """Whatever it is given, edit_message writes a message parse_edit reads, or refuses
    with the reason the consumer would have given: nothing is sent to the dead letters."""
    refused = ""
    try:
        message = edit_message("e1", op, time, place)
    except EditError as exc:
        refused = str(exc)
    if not refused:
        edit = parse_edit(message)
        assert (edit.op, edit.source, edit.id) == (op, str(place["source"]), str(place["id"]))
    elif isinstance(time, datetime) and time.tzinfo is None:
        assert refused.startswith("time: ")
        assert "has no time zone" in refused
    else:  # the consumer names the same field
        data = {"schema": 1, "edit_id": "e1", "op": op, "time": time, "place": place}
        with pytest.raises(EditError, match=refused.split(":")[0]):
            parse_edit(data)


@pytest.mark.parametrize(
    ("op", "time", "place", "reason"),
    [
        ("update", "2026-11-30T08:00:00Z", {"source": "osm", "id": "n1"}, "op: Input should be"),
        ("upsert", datetime(2026, 11, 30, 8), {"source": "osm", "id": "n1"}, "no time zone"),
        ("upsert", "2026-11-30T08:00", {"source": "osm", "id": "n1"}, "no time zone"),
        ("close", "2026-11-30T08:00:00Z", {"source": "osm"}, "place.id: missing"),
        ("close", "2026-11-30T08:00:00Z", "osm:n1", "place: Input should be"),
    ],
)
def test_a_producer_is_told_what_the_consumer_would_refuse(
    op: str, time: datetime | str, place: dict[str, object], reason: str
) -> None:
    with pytest.raises(EditError, match=reason):
        edit_message("e1", op, time, place)


def test_an_edit_is_read_from_its_decoded_object_as_from_its_message() -> None:
    assert parse_edit(GOOD) == parse_edit(json.dumps(GOOD).encode())
    with pytest.raises(EditError, match="not a message but int"):
        parse_edit(5)  # type: ignore[arg-type]


def test_messages_are_keyed_by_region_and_a_close_follows_its_record() -> None:
    helsinki, nearby, tokyo = (60.17, 24.94), (60.175, 24.95), (35.68, 139.69)
    assert region_key(*helsinki) == region_key(*nearby) != region_key(*tokyo)
    assert region_key(None, None) == region_key(95.0, 24.0) == "unlocated"
    assert region_key("60.17", "24.94") == region_key(*helsinki)  # a feed's text
    assert region_key("", "north") == "unlocated"

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


def test_topics_of_no_partitions_are_refused_before_a_broker_is_asked() -> None:
    nowhere = StreamSettings(brokers="127.0.0.1:1")  # nothing listens
    with pytest.raises(ConfigError, match="partitions: 0; a topic has at least 1"):
        create_topics(nowhere, partitions=0)


def test_brokers_that_cannot_be_reached_are_said_before_any_work(
    monkeypatch: pytest.MonkeyPatch, conflated: Path, tmp_path: Path
) -> None:
    monkeypatch.setattr(consumer, "REACH_TIMEOUT_S", 1.0)
    nowhere = StreamSettings(brokers="127.0.0.1:1")
    said = r"cannot reach Kafka at 127\.0\.0\.1:1 \(.+\): start one"
    with pytest.raises(ServerUnavailableError, match=said):
        create_topics(nowhere)
    with pytest.raises(ServerUnavailableError, match=said):
        send_edits(nowhere, [edit_message("e", "delete", "2026-11-30T08:00:00Z", GOOD["place"])])
    with pytest.raises(ServerUnavailableError, match=said):
        EditStream(StreamState(conflated), tmp_path / "state", nowhere)
    assert not (tmp_path / "state").exists()
