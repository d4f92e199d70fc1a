"""The Kafka broker the streaming tests run against (Apache Kafka 4.4 in KRaft mode, from
Maven Central's jars, started on 127.0.0.1 by ``scripts/kafka_server.sh``), driven through
the official client: keyed messages keep their order per key across partitions, and a
broker stopped and started again on its folder keeps its messages and the offsets its
consumer groups committed."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from ..conftest import ROOT, script_server

pytestmark = [pytest.mark.kafka, pytest.mark.server]


def consume(
    broker: str, topic: str, group: str, count: int, seconds: float = 30
) -> list[tuple[str, str]]:
    """Up to ``count`` messages of ``topic`` as (key, value), for a consumer group that
    commits what it read."""
    consumer = Consumer(
        {
            "bootstrap.servers": broker,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    got: list[tuple[str, str]] = []
    deadline = time.monotonic() + seconds
    try:
        while len(got) < count and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                got.append((message.key().decode(), message.value().decode()))
        if got:
            consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    return got


def produce(broker: str, topic: str, messages: list[tuple[str, str]]) -> None:
    producer = Producer({"bootstrap.servers": broker, "enable.idempotence": True})
    for key, value in messages:
        producer.produce(topic, key=key, value=value)
    assert producer.flush(30) == 0


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "kafka"


@pytest.fixture
def broker(folder: Path) -> Iterator[str]:
    with script_server("kafka", folder) as where:
        yield where


def test_keyed_edits_stay_in_order_per_key_and_survive_a_broker_restart(
    broker: str, folder: Path
) -> None:
    admin = AdminClient({"bootstrap.servers": broker})
    admin.create_topics([NewTopic("edits", num_partitions=3, replication_factor=1)])[
        "edits"
    ].result()
    sent = [(f"cell-{i % 4}", f"edit-{i}") for i in range(40)]
    produce(broker, "edits", sent)
    got = consume(broker, "edits", "first", len(sent))
    assert sorted(got) == sorted(sent)
    for key in {k for k, _ in sent}:  # one key, one partition: its edits in order
        assert [v for k, v in got if k == key] == [v for k, v in sent if k == key]
    # Stop the broker and start it again on the same folder (and port).
    port = broker.rsplit(":", 1)[1]
    script = ROOT / "scripts" / "kafka_server.sh"
    subprocess.run(["bash", str(script), "stop", str(folder)], check=True)
    subprocess.run(
        ["bash", str(script), "start", str(folder), port], check=True, capture_output=True
    )
    produce(broker, "edits", [("cell-0", "after-restart")])
    # The group committed what it read before: it now gets only the new message.
    assert consume(broker, "edits", "first", 2, seconds=15) == [("cell-0", "after-restart")]
    assert len(consume(broker, "edits", "second", len(sent) + 1)) == len(sent) + 1
