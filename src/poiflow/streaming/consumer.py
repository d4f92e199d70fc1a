"""The Kafka side of streaming: edits in, change events and dead letters out.

:class:`EditStream` runs one loop, batch after batch:

1. take up to ``batch_size`` edit messages (waiting at most ``wait_ms`` for them);
2. read each (:func:`~poiflow.streaming.edits.parse_edit`) and apply the batch to the
   state (:meth:`~poiflow.streaming.state.StreamState.apply`);
3. produce a change event per affected place (keyed by place id) and each refused
   message, unchanged, to the dead-letter topic with its reason in the ``reason`` header,
   and wait until the broker has them all;
4. write the changed places to the search indexes and stores kept current (the embedded
   index, an OpenSearch alias, a Cassandra keyspace);
5. at a checkpoint (every ``checkpoint_ms``, when the stream goes quiet, before its
   partitions are taken away, and when it stops): write the state's snapshot (the embedded
   store) atomically, then commit the offsets of every batch since the last one (when
   quiet, without waiting for the broker's answer: a commit that fails is counted when
   the answer comes, and the next checkpoint's covers it).

A crash anywhere before 5 replays the batches since the last checkpoint on restart.
Replayed edits that the snapshot already holds change nothing and cause no event (each
record keeps its last edit's stamp); those it does not hold are applied again and their
events produced again, with the same event ids and edit ids. So every edit is applied
exactly once in effect, and every change event reaches the topic at least once.

The loop is its own back-pressure: it takes no more edits until the batch before is
written. It stops after the batch in hand on SIGTERM or SIGINT. A broker that goes away is
waited for (the client reconnects by itself); events are never given up on.
"""

from __future__ import annotations

import json
import math
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

import numpy as np
import pyarrow as pa

from poiflow.config import StreamSettings
from poiflow.errors import InputError, PoiflowError, ServerUnavailableError
from poiflow.streaming.edits import Edit, EditError, parse_edit
from poiflow.streaming.snapshots import CURRENT
from poiflow.streaming.state import StreamState

__all__ = [
    "EditStream",
    "Publisher",
    "StreamError",
    "StreamMetrics",
    "client_config",
    "publishers_current",
    "reach_brokers",
]

_LATENCIES_KEPT: Final = 20_000
_PUBLISHED: Final = "published.txt"  # the snapshot the indexes and stores hold
_WRITING: Final = "writing"
_FLUSH_STEP_S: Final = 1.0
_BEAT_S: Final = 10.0  # how often the heartbeat is touched at most


class Publisher(Protocol):
    """A search index or store kept current: the changed places of each batch are written
    to it (doing it twice must change nothing: a replayed batch writes them again)."""

    def upsert(self, places: pa.Table, removed: Sequence[str] = ()) -> Any: ...


class StreamError(PoiflowError):
    """The stream cannot go on (a topic refused a message, the client is misconfigured)."""


def client_config(settings: StreamSettings) -> dict[str, Any]:
    """The Kafka client settings shared by the consumer and the producer."""
    return {"bootstrap.servers": settings.brokers, **settings.config}


REACH_TIMEOUT_S = 10.0  # how long a client is given to reach the brokers at the start


def reach_brokers(settings: StreamSettings, timeout_s: float | None = None) -> None:
    """Ask the brokers for their topics once, before any work, with a client of its own
    that logs nothing: a broker address that is wrong, or a broker that is not running,
    is said at once in one line, instead of being waited for under a stream of the
    client's connection failures (once it has started, a stream waits for a broker that
    goes away).

    Raises:
        ServerUnavailableError: No broker answered within ``timeout_s`` (default
            ``REACH_TIMEOUT_S``).
    """
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({**client_config(settings), "log_level": 0})
    try:
        admin.list_topics(timeout=REACH_TIMEOUT_S if timeout_s is None else timeout_s)
    except Exception as exc:  # KafkaException: transport, timed out, name not resolved
        said = exc.args[0].str() if exc.args and hasattr(exc.args[0], "str") else str(exc)
        raise ServerUnavailableError(
            f"cannot reach Kafka at {settings.brokers} ({said}): start one "
            "(scripts/kafka_server.sh start DIR PORT) or name yours with --brokers"
        ) from None


@dataclass(slots=True)
class StreamMetrics:
    """What the stream has done since it started (written beside the snapshots as
    ``metrics.json`` after every batch).

    Attributes:
        counts: Edits ``received``, ``applied``, ``stale``, ``duplicate``, ``superseded``,
            ``dead``; ``events`` produced; ``batches``.
        lag: Messages waiting per partition (``topic[partition]``) after the last batch.
        seconds: Wall time spent applying and writing batches.
        latencies: Seconds from an edit's production (its Kafka timestamp) to the moment
            its batch's events were acknowledged (the last 20,000).
    """

    counts: Counter[str] = field(default_factory=Counter)
    lag: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    started: float = field(default_factory=time.time)
    latencies: list[float] = field(default_factory=list)
    last_error: str | None = None

    def summary(self) -> dict[str, Any]:
        lat = np.asarray(self.latencies) if self.latencies else np.zeros(1)
        return {
            **dict(self.counts),
            "lag": self.lag,
            "total_lag": sum(self.lag.values()),
            "edits_per_s": round(self.counts["received"] / self.seconds, 1) if self.seconds else 0,
            "latency_p50_s": round(float(np.percentile(lat, 50)), 4),
            "latency_p99_s": round(float(np.percentile(lat, 99)), 4),
            "uptime_s": round(time.time() - self.started, 1),
            "last_error": self.last_error,
        }


class EditStream:
    """Consume edits, apply them, produce change events (see the module).

    Args:
        state: The live places.
        folder: Where snapshots (and ``metrics.json``) are written.
        settings: Brokers, topics, group, batch size.
        on_batch: Called after each committed batch with the metrics (progress display).
        publishers: Search indexes and stores given each batch's changed places (after the
            events, before the snapshot); one that cannot be reached is waited for.
        later_run: Asked between batches whether a later run has landed in the output the
            places started from: if so, the stream stops, its batches committed, with
            ``later_run_seen`` set, to be started again from that run.

    Raises:
        ServerUnavailableError: No broker can be reached now (:func:`reach_brokers`); one that
            goes away once the stream has started is waited for.
        StreamError: The client's settings are refused.
    """

    def __init__(
        self,
        state: StreamState,
        folder: Path,
        settings: StreamSettings,
        on_batch: Callable[[StreamMetrics], None] | None = None,
        publishers: Sequence[Publisher] = (),
        later_run: Callable[[], bool] | None = None,
    ) -> None:
        try:
            from confluent_kafka import Consumer, Producer
        except ImportError as exc:  # pragma: no cover - the streaming extra is installed
            raise InputError(
                "streaming needs Kafka's client: pip install 'poiflow[streaming]'"
            ) from exc
        self.state = state
        self.folder = Path(folder)
        self.settings = settings
        self.on_batch = on_batch
        self.publishers = list(publishers)
        self.later_run = later_run
        self.later_run_seen = False
        self.metrics = StreamMetrics()
        self.stopping = threading.Event()
        reach_brokers(settings)  # before the clients, which would try to connect over and over
        shared = client_config(settings)
        try:
            self.consumer = Consumer(
                {
                    **shared,
                    "group.id": settings.group,
                    "enable.auto.commit": False,
                    "auto.offset.reset": "earliest",
                    "on_commit": self._committed,  # the quiet stream's commits' answers
                    **settings.consumer,
                }
            )
            self.producer = Producer(
                {
                    **shared,
                    "enable.idempotence": True,
                    "linger.ms": 5,
                    "message.timeout.ms": 0,  # never give an event up: wait for the broker
                }
            )
        except Exception as exc:
            raise StreamError(f"cannot create the Kafka client: {exc}") from exc
        self._failed: list[str] = []
        self._dirty = self._broken = False
        self._last_checkpoint = time.monotonic()
        self.heartbeat_s = _BEAT_S  # the heartbeat is touched at most this often
        self._last_beat = -math.inf

    def run(
        self, idle_exit_s: float | None = None, max_batches: int | None = None
    ) -> StreamMetrics:
        """Consume until stopped (SIGTERM, SIGINT, :meth:`stop`), until no edit came for
        ``idle_exit_s`` seconds while the consumer held partitions and had read them all,
        or after ``max_batches`` batches."""
        self.consumer.subscribe([self.settings.edits], on_revoke=self._revoked)
        idle_since = time.monotonic()
        batches = 0
        try:
            with _signals(self.stopping):
                while not self.stopping.is_set():
                    self._beat()
                    if self.later_run is not None and self.later_run():
                        self.later_run_seen = True  # what it has applied is committed below
                        break
                    messages = self.consumer.consume(
                        num_messages=self.settings.batch_size,
                        timeout=self.settings.wait_ms / 1000,
                    )
                    messages = [m for m in messages if self._usable(m)]
                    if not messages:
                        # A quiet stream commits what it did at once, not waiting for
                        # the answer: its loop goes on turning while a broker is away.
                        self.checkpoint(wait=False)
                        idle = time.monotonic() - idle_since
                        if idle_exit_s is not None and idle > idle_exit_s and self._caught_up():
                            break
                        continue
                    self.process(messages)
                    batches += 1
                    idle_since = time.monotonic()
                    if max_batches is not None and batches >= max_batches:
                        break
        finally:
            self.checkpoint()
            self.consumer.close()
        return self.metrics

    def checkpoint(self, wait: bool = True) -> None:
        """Write the snapshot and commit the offsets of every batch applied since the last
        checkpoint (nothing when a batch failed midway: it is replayed on restart).
        ``wait``: until the broker has answered the commit (else its answer comes to
        :meth:`_committed` later, at a turn of the loop or when the consumer closes)."""
        if not self._dirty or self._broken:
            return
        snapshot = self.state.save(self.folder, {"metrics": dict(self.metrics.counts)})
        _mark(self.folder, snapshot.name)
        try:
            if wait:
                self.consumer.commit(asynchronous=False)
            else:
                self.consumer.commit(asynchronous=True)
        except Exception as exc:  # a replay is harmless: say so and go on
            self._commit_failed(exc)
        self.metrics.counts["checkpoints"] += 1
        self._dirty = False
        self._last_checkpoint = time.monotonic()
        self._write_metrics()

    def _committed(self, error: Any, partitions: Sequence[Any]) -> None:
        """The broker's answer to a commit that was not waited for (the client calls it
        for those alone)."""
        failed = error or next((p.error for p in partitions if p.error is not None), None)
        if failed is not None:
            self._commit_failed(failed)

    def _commit_failed(self, error: object) -> None:
        self.metrics.counts["commit_failures"] += 1
        self.metrics.last_error = f"commit: {error}"

    def _revoked(self, _consumer: Any, _partitions: Any) -> None:
        self.checkpoint()  # before another consumer takes the partitions over

    def stop(self) -> None:
        """Finish the batch in hand, then stop."""
        self.stopping.set()

    def _usable(self, message: Any) -> bool:
        error = message.error()
        if error is None:
            return True
        if error.fatal():
            raise StreamError(f"Kafka: {error.str()}")
        self.metrics.counts["client_errors"] += 1  # the client retries by itself
        return False

    def process(self, messages: list[Any]) -> None:
        """Apply one batch of messages and commit it (steps 2 to 5 of the module)."""
        started = time.perf_counter()
        self._broken = True  # until the batch's events and indexes are written
        edits: list[Edit] = []
        origin: dict[int, Any] = {}
        dead: list[tuple[Any, str]] = []
        for message in messages:
            try:
                edit = parse_edit(message.value())
            except EditError as exc:
                dead.append((message, str(exc)))
                continue
            edits.append(edit)
            origin[id(edit)] = message
        outcome = self.state.apply(edits)
        dead += [(origin[id(edit)], reason) for edit, reason in outcome.dead]
        for message, reason in dead:
            self._produce(
                self.settings.dead_letters,
                message.key(),
                message.value(),
                [
                    ("reason", reason.encode()),
                    ("topic", message.topic().encode()),
                    ("partition", str(message.partition()).encode()),
                    ("offset", str(message.offset()).encode()),
                ],
            )
        for event in outcome.events:
            self._produce(
                self.settings.events,
                event.place_id.encode(),
                event.to_json(),
                [("change", event.change.encode())],
            )
        self._flush()
        acknowledged = time.time()
        if self.publishers:
            _mark(self.folder, _WRITING)
        for publisher in self.publishers:
            self._publish(publisher, outcome.places, outcome.removed)
        counts = self.metrics.counts
        counts.update(outcome.counts)
        counts["dead"] += len(dead) - len(outcome.dead)
        counts["received"] += len(messages)
        counts["events"] += len(outcome.events)
        counts["batches"] += 1
        self.metrics.latencies.extend(
            max(0.0, acknowledged - m.timestamp()[1] / 1000) for m in messages if m.timestamp()[0]
        )
        del self.metrics.latencies[:-_LATENCIES_KEPT]
        self._broken, self._dirty = False, True
        if time.monotonic() - self._last_checkpoint >= self.settings.checkpoint_ms / 1000:
            self.checkpoint()
        self.metrics.seconds += time.perf_counter() - started
        self._measure_lag()
        self._write_metrics()
        if self.on_batch is not None:
            self.on_batch(self.metrics)

    def _publish(self, publisher: Publisher, places: pa.Table, removed: list[str]) -> None:
        while True:
            try:
                publisher.upsert(places, removed)
                return
            except ServerUnavailableError as exc:  # wait for it: nothing is committed meanwhile
                self.metrics.counts["publish_retries"] += 1
                self.metrics.last_error = str(exc)
                self._beat()
                if self.stopping.wait(1.0):
                    raise StreamError(f"stopped while waiting: {exc}") from exc

    def _produce(self, topic: str, key: bytes | None, value: bytes, headers: list[Any]) -> None:
        while True:
            try:
                self.producer.produce(
                    topic, key=key, value=value, headers=headers, on_delivery=self._delivered
                )
                return
            except BufferError:  # the local queue is full: let it drain
                self._beat()
                self.producer.poll(0.1)

    def _delivered(self, error: Any, message: Any) -> None:
        if error is not None:
            self._failed.append(f"{message.topic()}: {error.str()}")

    def _flush(self) -> None:
        while self.producer.flush(_FLUSH_STEP_S) > 0:
            self._beat()  # the broker is away: wait for it (nothing is committed meanwhile)
        if self._failed:
            failed, self._failed = self._failed, []
            raise StreamError(
                f"{len(failed)} message(s) were refused, e.g. {failed[0]}; nothing of this "
                "batch was committed: it is applied again on restart"
            )

    def _caught_up(self) -> bool:
        """Whether the consumer holds partitions and has read all they have."""
        assigned = self.consumer.assignment()
        if not assigned:
            return False  # not yet given partitions (a rebalance after a restart)
        try:
            for part in self.consumer.position(assigned):
                low, high = self.consumer.get_watermark_offsets(part, timeout=5, cached=False)
                at = part.offset
                if at < 0:  # nothing read here yet: from the committed offset, or the start
                    at = self.consumer.committed([part], timeout=5)[0].offset
                    at = low if at < 0 else at
                if at < high:
                    return False
        except Exception:  # a broker away: not caught up
            return False
        return True

    def _measure_lag(self) -> None:
        lag: dict[str, int] = {}
        try:
            assigned = self.consumer.assignment()
            for part in self.consumer.position(assigned):
                _, high = self.consumer.get_watermark_offsets(part, cached=True)
                if part.offset >= 0 and high >= 0:
                    lag[f"{part.topic}[{part.partition}]"] = max(0, high - part.offset)
        except Exception:  # lag is for display: a broker away must not stop us
            return
        self.metrics.lag = lag

    def _beat(self) -> None:
        """Touch the heartbeat (``StreamSettings.HEARTBEAT``), at most every
        ``heartbeat_s`` seconds."""
        now = time.monotonic()
        if now - self._last_beat < self.heartbeat_s:
            return
        self._last_beat = now
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / StreamSettings.HEARTBEAT).touch()

    def _write_metrics(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / "metrics.json"
        tmp = path.with_name(f".metrics.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.metrics.summary(), indent=2), "utf-8")
        os.replace(tmp, path)


def publishers_current(folder: Path) -> bool:
    """Whether the search indexes and stores kept by the stream writing snapshots into
    ``folder`` hold its current snapshot. They do not when it stopped between writing
    them and writing the snapshot: the replayed batch may not make the same places, so
    they are to be filled again from the snapshot."""
    marker, current = folder / _PUBLISHED, folder / CURRENT
    if not marker.exists():
        return True
    held = marker.read_text("utf-8").strip()
    return current.exists() and held == current.read_text("utf-8").strip()


def _mark(folder: Path, text: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{_PUBLISHED}.{os.getpid()}.tmp"
    tmp.write_text(text + "\n", "utf-8")
    os.replace(tmp, folder / _PUBLISHED)


@contextmanager
def _signals(stopping: threading.Event) -> Iterator[None]:
    """SIGTERM and SIGINT stop the loop after the batch in hand (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {
        sig: signal.signal(sig, lambda *_: stopping.set())
        for sig in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
