"""The snapshot folders a stream's state is written as (``StreamState.save``).

Each snapshot is a folder of its own, ``snapshot-NNNNNNNN`` numbered on: written whole
under a hidden name, renamed into place, then named by ``CURRENT``, which is replaced
atomically. A crash at any point leaves the previous snapshot in force. The oldest are
removed once ``KEPT_SNAPSHOTS`` newer ones exist.

Beside a run's files, a snapshot holds ``stream.parquet``: each record's last edit (its
time and id), tombstones of deleted records included (:func:`stream_table`,
:func:`read_stream`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.parquet as pq

from poiflow.errors import OutputError
from poiflow.schema import GOLDEN_PLACE_SCHEMA
from poiflow.sinks import ParquetSink
from poiflow.storage import clear_stale

__all__ = [
    "CURRENT",
    "KEPT_SNAPSHOTS",
    "STREAM_SCHEMA",
    "current_snapshot",
    "publish_snapshot",
    "read_stream",
    "stream_table",
    "write_tables",
]

CURRENT: Final = "CURRENT"  # the file that names the current snapshot
KEPT_SNAPSHOTS: Final = 2
STREAM_SCHEMA: Final = pa.schema(
    [
        pa.field("source", pa.string(), nullable=False),
        pa.field("id", pa.string(), nullable=False),
        pa.field("time", pa.int64()),  # the last edit's time, ms since the epoch
        pa.field("edit_id", pa.string()),
        pa.field("deleted", pa.bool_(), nullable=False),
    ]
)

Key = tuple[str, str]  # (source, id)
Stamp = tuple[int, str]  # (time in ms, edit id)


def current_snapshot(state: Path) -> Path | None:
    """The current snapshot in ``state``, or None where none was written."""
    current = state / CURRENT
    if not current.exists():
        return None
    return state / current.read_text("utf-8").strip()


def publish_snapshot(state: Path, write: Callable[[Path], None]) -> Path:
    """Make the next snapshot in ``state``: ``write`` fills a fresh folder, which then
    becomes the current snapshot; the oldest beyond ``KEPT_SNAPSHOTS`` go. Returns it.

    Raises:
        OutputError: The folder cannot be written (the previous snapshot stays current).
    """
    current = state / CURRENT
    try:
        state.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot write the stream's snapshots here ({exc})", path=state) from exc
    number = 0
    if current.exists():
        number = int(current.read_text("utf-8").strip().rsplit("-", 1)[1]) + 1
    name = f"snapshot-{number:08d}"
    staging = state / f".{name}.{os.getpid()}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    clear_stale(state, ".snapshot-*.tmp")  # a stream killed outright left it
    try:
        write(staging)
        os.replace(staging, state / name)
        pointer = state / f".{CURRENT}.{os.getpid()}.tmp"
        pointer.write_text(name + "\n", "utf-8")
        os.replace(pointer, current)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise OutputError(f"cannot write the stream's snapshot ({exc})", path=state) from exc
    old = sorted(p for p in state.glob("snapshot-*") if p.name < name)
    for stale in old[: max(0, len(old) - KEPT_SNAPSHOTS + 1)]:
        shutil.rmtree(stale, ignore_errors=True)
    return state / name


def write_tables(folder: Path, places: pa.Table, tables: Mapping[str, pa.Table]) -> None:
    """Write ``places`` (GeoParquet) and each of ``tables`` (by file name) into ``folder``,
    side by side: Arrow lets go of the interpreter while it encodes. lz4: a snapshot is
    written every few seconds and read back only on a restart."""

    def write_places() -> None:
        sink = ParquetSink(
            folder / "places.parquet", GOLDEN_PLACE_SCHEMA, geo=True, compression="lz4"
        )
        sink.write(places)
        sink.close()

    with ThreadPoolExecutor(max_workers=len(tables) + 1) as pool:
        done = [pool.submit(write_places)] + [
            pool.submit(pq.write_table, table, folder / name, compression="lz4")
            for name, table in tables.items()
        ]
        for job in done:
            job.result()


def stream_table(
    alive: Iterable[Key], deleted: Iterable[Key], stamps: Mapping[Key, Stamp]
) -> pa.Table:
    """``stream.parquet``: the last edit of each record ``alive``, then of each deleted
    one (sorted), with whether it is deleted (``STREAM_SCHEMA``)."""
    keys = list(alive)
    gone = sorted(deleted)
    every = keys + gone
    found = [stamps.get(k) for k in every]
    return pa.table(
        {
            "source": [k[0] for k in every],
            "id": [k[1] for k in every],
            "time": [s[0] if s else None for s in found],
            "edit_id": [s[1] if s else None for s in found],
            "deleted": [False] * len(keys) + [True] * len(gone),
        },
        schema=STREAM_SCHEMA,
    )


def read_stream(path: Path) -> tuple[dict[Key, Stamp], set[Key]]:
    """The last edit of each record and the deleted records, of a ``stream.parquet``."""
    table = pq.read_table(path)
    stamps: dict[Key, Stamp] = {}
    deleted: set[Key] = set()
    columns = [table.column(n).to_pylist() for n in STREAM_SCHEMA.names]
    for source, rid, time, edit, gone in zip(*columns, strict=True):
        if time is not None:
            stamps[(source, rid)] = (time, edit)
        if gone:
            deleted.add((source, rid))
    return stamps, deleted
