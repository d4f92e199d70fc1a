"""The artifacts of a run (:class:`Artifacts`: each on disk, and in memory while a later
stage needs it), and what a stage function gets (:class:`StageContext`).

The stages themselves are in :mod:`poiflow.pipeline.stages` (the local engine's) and
:mod:`poiflow.pipeline.spark_stages`; the runner (:mod:`poiflow.pipeline.runner`) hands
each its context.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from poiflow.config import OsmOptions, SourceMapping
from poiflow.errors import OutputError

if TYPE_CHECKING:
    from poiflow.pipeline.ingest_report import IngestProgress
    from poiflow.sources import Source

__all__ = [
    "ARTIFACT_FILES",
    "ROW_GROUP_ROWS",
    "Artifacts",
    "RowGroupWriter",
    "StageContext",
    "StageFunction",
]

# Rows in a row group of an artifact's file (pyarrow's own default, said so that a table
# written in parts gets the same row groups, and bytes, as one written whole).
ROW_GROUP_ROWS = 1024 * 1024

# The file each artifact is kept in, inside its stage's folder.
ARTIFACT_FILES = {
    "records": "records.parquet",
    "quarantine": "quarantine.parquet",
    "candidates": "candidates.parquet",
    "pairs": "pairs.parquet",
    "scores": "scores.parquet",
    "clusters": "clusters.parquet",
    "decisions": "decisions.parquet",
    "places": "places.parquet",
    "membership": "membership.parquet",
    "changes": "changes.parquet",
    "metrics": "metrics.json",
    "checks": "checks.parquet",
    "issues": "issues.parquet",
    "report": "report.html",
    "model": "model.json.gz",
}


class Artifacts:
    """The artifacts of a run: each on disk, and in memory while a later stage needs it.

    A stage may hand a file to be written in the background (``StageContext.write``'s
    ``background``): Arrow writes it without the interpreter lock, on the other core, while
    the next stages run. Asking for its path (or for its table once it is no longer held
    in memory) waits for the file; :meth:`settle` waits for every one, and raises what a
    write raised.
    """

    def __init__(self, files: Collection[str] | None = None) -> None:
        """``files``: the artifacts whose files must be written (None: every one). The file
        of another artifact held in memory is written only if asked for (:meth:`path`): a
        run without a stage cache publishes only some files, and holds the others (the
        candidate pairs, the scores, the clusters) until their last use anyway."""
        self._paths: dict[str, Path] = {}
        self._tables: dict[str, pa.Table] = {}
        self._pending: dict[str, Future[None]] = {}
        self._unwritten: dict[str, Callable[[], None]] = {}
        self._writer: ThreadPoolExecutor | None = None
        self._files = None if files is None else frozenset(files)

    def put(
        self,
        name: str,
        path: Path,
        table: pa.Table | None = None,
        *,
        pending: Callable[[], None] | None = None,
        background: bool = True,
    ) -> None:
        """Record that ``name`` is at ``path`` (and, if given, keep its table in memory).

        Args:
            name: The artifact.
            path: Its file.
            table: Its table, kept in memory for the stages after.
            pending: Writes the file: now, or in the background (in the order given), or
                only when the file is asked for (an artifact whose file need not be
                written, held in memory).
            background: Whether ``pending`` may run in the background.
        """
        self.settle(name)
        self._unwritten.pop(name, None)
        self._paths[name] = path
        self._tables.pop(name, None)
        if table is not None:
            self._tables[name] = table
        if pending is None:
            return
        if table is not None and self._files is not None and name not in self._files:
            self._unwritten[name] = pending
        elif background:
            if self._writer is None:
                self._writer = ThreadPoolExecutor(1, thread_name_prefix="poiflow-write")
            self._pending[name] = self._writer.submit(pending)
        else:
            pending()

    def settle(self, name: str | None = None) -> None:
        """Wait until the file of ``name`` (default: of every artifact) is written; raise
        the first error of those writes."""
        names = list(self._pending) if name is None else [name]
        futures = [f for f in (self._pending.pop(each, None) for each in names) if f is not None]
        errors = [f.exception() for f in futures]  # waits for each
        first = next((e for e in errors if e is not None), None)
        if first is not None:
            raise first

    def close(self) -> None:
        """Wait for the background writes without raising (the run is over, or failed
        anyway), and stop the writer."""
        for future in self._pending.values():
            with contextlib.suppress(BaseException):
                future.result()
        self._pending.clear()
        if self._writer is not None:
            self._writer.shutdown()
            self._writer = None

    def path(self, name: str) -> Path:
        """Where ``name`` is on disk (once written; written now if it was not to be)."""
        write = self._unwritten.pop(name, None)
        if write is not None:
            write()
        self.settle(name)
        return self._paths[name]

    def __contains__(self, name: object) -> bool:
        return name in self._paths

    def table(self, name: str, columns: Sequence[str] | None = None) -> pa.Table:
        """The table of ``name`` (only ``columns``, if given), read from disk if not held."""
        table = self._tables.get(name)
        if table is None:
            table = pq.read_table(self.path(name), columns=list(columns) if columns else None)
            if columns is None:
                self._tables[name] = table
        if "geometry" in table.column_names:
            table = table.drop_columns(["geometry"])
        return table.select(list(columns)) if columns else table

    def relocate(self, old: Path, new: Path) -> None:
        """The files of folder ``old`` are now in folder ``new`` (written by now: the
        caller settles before it moves them)."""
        for name, path in self._paths.items():
            if path.parent == old:
                self._paths[name] = new / path.name

    def release(self, name: str) -> None:
        """Let go of the in-memory table of ``name`` (it stays on disk, if it was to be
        written; the runner releases an artifact after its last use)."""
        self._tables.pop(name, None)
        self._unwritten.pop(name, None)


@dataclass(slots=True)
class StageContext:
    """What a stage function gets: where to write, what came before, and its settings."""

    folder: Path
    artifacts: Artifacts
    settings: Mapping[str, Any]
    sources: Sequence[str | Path | Source] = ()
    mapping: SourceMapping | None = None
    osm: OsmOptions | None = None
    per_source: Sequence[tuple[SourceMapping | None, OsmOptions | None]] = ()
    previous: Path | None = None
    gold: Path | None = None
    gold_places: Path | None = None
    decisions: Path | None = None
    progress: IngestProgress | None = None
    objects: dict[str, Any] = field(default_factory=dict)
    engine: Any = None  # None: the local engine; else the engine that spreads the work

    def write(
        self, name: str, table: pa.Table, *, geo: bool = False, background: bool = False
    ) -> None:
        """Write ``table`` as artifact ``name`` into this stage's folder, and hand it on.

        Args:
            name: The artifact.
            table: Its table.
            geo: Write GeoParquet (a ``geometry`` column from ``lat``/``lon``).
            background: Write it while the run goes on (a large file the next stages do
                not read back): the runner waits for it before it keeps or publishes the
                stage's files, and a failed write still fails the run.
        """
        path = self.folder / ARTIFACT_FILES[name]
        write = functools.partial(_write_table, table, path, geo)
        self.artifacts.put(name, path, table, pending=write, background=background)

    @contextlib.contextmanager
    def stream(self, name: str, schema: pa.Schema) -> Iterator[RowGroupWriter]:
        """Write artifact ``name`` a part at a time (a table too large to hold whole): the
        same file as :meth:`write` of the parts' concatenation. The artifact is handed on
        (by its file, not held in memory) once the block ends; an error inside it leaves
        no file.
        """
        path = self.folder / ARTIFACT_FILES[name]
        with RowGroupWriter(path, schema) as writer:
            yield writer
        self.artifacts.put(name, path)


class RowGroupWriter:
    """A Parquet file written from parts, with the row groups (and bytes) that
    ``pq.write_table`` gives the whole: parts are held until they fill a row group.

    Each full row group is encoded and compressed on a thread of its own (Arrow does it
    without the interpreter lock) while the caller makes the next parts; one at a time,
    so that at most one row group waits. Written to a hidden file beside ``path`` and
    renamed to it when closed without an error, so that a failed run leaves no
    part-written file.
    """

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.path = path
        self.schema = schema
        self.rows = 0
        self._partial = path.with_name(f".{path.name}.part")
        self._held: list[pa.Table] = []
        self._held_rows = 0
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="poiflow-row-groups")
        self._pending: Future[None] | None = None
        try:
            self._writer = pq.ParquetWriter(self._partial, schema, compression="zstd")
        except OSError as exc:
            self._thread.shutdown()
            raise OutputError(f"cannot write ({exc})", path=path) from exc

    def write(self, part: pa.Table) -> None:
        """Append ``part`` (of the writer's schema)."""
        self._held.append(part)
        self._held_rows += part.num_rows
        self.rows += part.num_rows
        if self._held_rows >= ROW_GROUP_ROWS:
            held = pa.concat_tables(self._held)
            full = (held.num_rows // ROW_GROUP_ROWS) * ROW_GROUP_ROWS
            self._write(held.slice(0, full))
            rest = held.slice(full)
            self._held, self._held_rows = [rest], rest.num_rows

    def _write(self, table: pa.Table) -> None:
        self._wait()
        self._pending = self._thread.submit(self._write_now, table)

    def _write_now(self, table: pa.Table) -> None:
        try:
            self._writer.write_table(table.combine_chunks(), row_group_size=ROW_GROUP_ROWS)
        except OSError as exc:
            raise OutputError(f"cannot write ({exc})", path=self.path) from exc

    def _wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()  # raises what the write raised

    def __enter__(self) -> RowGroupWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        try:
            if kind is None:
                self._finish()
            else:
                self._abort()
        except BaseException:
            self._abort()
            raise
        finally:
            self._thread.shutdown()

    def _finish(self) -> None:
        if self._held_rows or not self.rows:  # an empty table: one empty row group
            self._write(pa.concat_tables(self._held or [self.schema.empty_table()]))
        self._wait()
        self._writer.close()
        self._partial.replace(self.path)

    def _abort(self) -> None:
        with contextlib.suppress(Exception):  # the error being raised is the one to see
            self._wait()
        with contextlib.suppress(OSError):
            self._writer.close()
        self._partial.unlink(missing_ok=True)


def _write_table(table: pa.Table, path: Path, geo: bool) -> None:
    from poiflow.sinks import ParquetSink

    # Where a page of the file ends depends on where the table's chunks do, and polars
    # cuts a table into as many chunks as it has threads: one chunk, the same bytes on
    # any machine.
    if any(column.num_chunks > 1 for column in table.columns):
        table = table.combine_chunks()
    try:
        if geo:
            with ParquetSink(path, table.schema, geo=True) as sink:
                sink.write(table)
        else:
            pq.write_table(table, path, compression="zstd", row_group_size=ROW_GROUP_ROWS)
    except OSError as exc:
        raise OutputError(f"cannot write ({exc})", path=path) from exc


StageFunction = Callable[[StageContext], dict[str, Any]]
