"""Sending edits: each message keyed by the region of its place."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from poiflow.config import StreamSettings
from poiflow.errors import ConfigError
from poiflow.streaming.consumer import reach_brokers
from poiflow.streaming.edits import coordinate, region_keys

__all__ = ["create_topics", "edit_keys", "send_edits"]


def edit_keys(messages: Sequence[bytes]) -> list[str]:
    """The key of each edit message: the H3 region of its place. An edit without
    coordinates takes the key of the last located edit of its record before it (a close
    or a delete lands where the record's upserts went); a message that is not an edit, or
    a record never located, is ``unlocated``."""
    points: list[tuple[Any, Any]] = []
    records: list[tuple[str, str] | None] = []
    for message in messages:
        try:
            data = json.loads(message)
            place = data["place"]
            points.append((coordinate(place.get("lat")), coordinate(place.get("lon"))))
            records.append((str(place["source"]), str(place["id"])))
        except (ValueError, TypeError, KeyError, AttributeError):
            points.append((None, None))
            records.append(None)
    keys = region_keys([p[0] for p in points], [p[1] for p in points])
    last: dict[tuple[str, str], str] = {}
    for i, record in enumerate(records):
        if record is None:
            continue
        if points[i][0] is not None and keys[i] != "unlocated":
            last[record] = keys[i]
        else:
            keys[i] = last.get(record, keys[i])
    return keys


def send_edits(settings: StreamSettings, messages: Sequence[bytes], producer: Any = None) -> int:
    """Produce edit messages to ``settings.edits``, keyed by region; returns how many.

    Args:
        settings: Brokers and topic.
        messages: The edits.
        producer: A ``confluent_kafka.Producer`` to send with (default: a new one).

    Raises:
        ServerUnavailableError: No broker can be reached (nothing is sent).
        RuntimeError: The broker did not take them all.
    """
    from confluent_kafka import Producer

    reach_brokers(settings)
    producer = producer or Producer(
        {"bootstrap.servers": settings.brokers, **settings.config, "enable.idempotence": True}
    )
    messages = [m for m in messages if m.strip()]
    for key, message in zip(edit_keys(messages), messages, strict=True):
        while True:
            try:
                producer.produce(settings.edits, key=key.encode(), value=message)
                break
            except BufferError:
                producer.poll(0.1)
    left = producer.flush(60)
    if left:
        msg = f"{left} edits were not delivered to {settings.edits} within 60 s"
        raise RuntimeError(msg)
    return len(messages)


def create_topics(settings: StreamSettings, partitions: int = 3) -> list[str]:
    """Create the stream's topics that do not exist yet (edits and events with
    ``partitions`` partitions, dead letters with one); returns the ones created.

    A topic the broker says exists already (made by another process meanwhile, or just
    made and not yet in the metadata this client was sent) is left as it is.

    Raises:
        ConfigError: ``partitions`` is less than 1.
        ServerUnavailableError: No broker can be reached.
    """
    if partitions < 1:
        raise ConfigError(f"partitions: {partitions}; a topic has at least 1")
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

    reach_brokers(settings)
    admin = AdminClient({"bootstrap.servers": settings.brokers, **settings.config})
    existing = set(admin.list_topics(timeout=30).topics)
    wanted = {settings.edits: partitions, settings.events: partitions, settings.dead_letters: 1}
    new = [NewTopic(t, num_partitions=n) for t, n in wanted.items() if t not in existing]
    made = []
    for topic, future in (admin.create_topics(new) if new else {}).items():
        try:
            future.result()
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
        else:
            made.append(topic)
    return made
