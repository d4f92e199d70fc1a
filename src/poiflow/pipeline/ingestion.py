"""Ingest: read any mix of sources, validate, normalize, and write places and quarantine.

Invariant, checked on every run: every record read is either a place or quarantined
(``read == valid + quarantined``). Values withheld from a record that went on (an
unparsable phone) are quarantined too, with ``scope == "field"``, and counted apart.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from poiflow.config import IngestSettings, OsmOptions, SourceMapping, validated
from poiflow.engines import prepare_workers, release_workers, run_partitioned
from poiflow.errors import InputError, NothingValidError, PoiflowError
from poiflow.pipeline.ingest_report import IngestProgress, IngestReport, SourceReport
from poiflow.pipeline.preparing import Chunk, ingest_batch, repeats_held_back
from poiflow.pipeline.workers import GROUP_MIN_BYTES, WORKER_MODULES, WORKER_UNUSED
from poiflow.quality import DuplicateIds
from poiflow.schema import PLACE_SCHEMA, QUARANTINE_SCHEMA
from poiflow.sinks import ParquetSink
from poiflow.sources import (
    DEFAULT_BATCH_SIZE,
    Inputs,
    OsmSource,
    Source,
    bytes_on_disk,
    input_list,
    open_inputs,
    refuse_unknown_inputs,
)
from poiflow.text import kept_examples

if TYPE_CHECKING:  # the normalizers run in the workers; they are imported there, on first use
    import polars as pl

    from poiflow.normalize.points import PointTally, SwapWatch

__all__ = [
    "default_quarantine_path",
    "ingest",
    "prepare_ingest",
    "true_places",
]


def true_places(truth: Path, known: Iterable[str]) -> pa.Table:
    """The true places in ``truth``, a flat place file whose ids are the places of a gold
    file (``gold_places.csv`` of ``poiflow generate``), read and normalized as any input
    is (``PLACE_SCHEMA``).

    Args:
        truth: The file.
        known: The places of the gold file (``source,id,place``).

    Raises:
        InputError: No valid place in it, or none of its ids is a place of ``known``.
    """
    import tempfile

    import pyarrow.parquet as pq

    with tempfile.TemporaryDirectory(prefix="poiflow-truth-") as tmp:
        try:
            ingest([truth], Path(tmp) / "truth.parquet", workers=1)
        except NothingValidError as exc:  # its quarantine file is temporary
            raise InputError(
                f"no valid place in the true places file ({exc.why})", path=truth
            ) from None
        true = pq.read_table(Path(tmp) / "truth.parquet")
    if not set(known) & set(true.column("id").to_pylist()):
        raise InputError(
            "none of its ids is a place of the gold file: the true places of another world?",
            path=truth,
        )
    return true


def default_quarantine_path(output: Path) -> Path:
    """``places.parquet`` -> ``places.quarantine.parquet``, beside it."""
    return output.with_name(f"{output.name.removesuffix('.parquet')}.quarantine.parquet")


# Below these sizes an input is read in this process: starting workers costs more than it
# saves. An OSM extract is dense and slow to read (about 30 bytes and 60 µs a place); a
# text feed is read in blocks of 4 MiB, so a smaller one is a single batch anyway. Parquet
# says how many rows it holds: more than one batch's worth is read by workers (Overture's
# places take about 80 bytes each, so 16 MiB of them are four batches).
PARALLEL_MIN_BYTES = {"osm": 2 << 20, "other": 16 << 20}


def ingest(
    inputs: Inputs,
    output: str | Path,
    quarantine: str | Path | None = None,
    *,
    mapping: SourceMapping | None = None,
    mappings: Mapping[str, SourceMapping] | None = None,
    osm: OsmOptions | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    workers: int | None = None,
    progress: IngestProgress | None = None,
    on_places: Callable[[pa.Table], None] | None = None,
    meanwhile: Callable[[], None] | None = None,
) -> IngestReport:
    """Read, validate and normalize places from any mix of inputs into one GeoParquet file.

    Args:
        inputs: Files (the kind is told from the name) or opened sources; one alone
            needs no list.
        output: The places file to write (GeoParquet, ``PLACE_SCHEMA`` plus ``geometry``).
        quarantine: Where held-back records and withheld values go; default beside output.
        mapping: Column mapping for the tabular inputs (OSM extracts take none).
        mappings: Column mappings of single inputs, keyed by the input as given; they come
            before ``mapping``.
        osm: Which OSM objects are places.
        batch_size: Records per batch; memory grows with it, not with the input.
        workers: Processes per input; default: one per core for large inputs (OSM
            extracts of 2 MiB, other files of 16 MiB or more), and for several smaller
            inputs that add up to 4 MiB (16 MiB where workers are spawned, not forked)
            one worker per input; else none. The output is the same, byte for byte,
            whatever the number.
        progress: Told about each source and batch.
        on_places: Given each table of places (``PLACE_SCHEMA``) as it is written, in the
            file's order: a pipeline keeps them for the next stage instead of reading the
            file back.
        meanwhile: Run on a side thread while workers read, when this process mostly waits
            for them (a pipeline imports its later stages' code); ingest returns once it
            is done. Not run when there are no workers. What it raises is ignored.

    Returns:
        The counts per input, with ``read == valid + quarantined`` for each.

    Raises:
        poiflow.errors.ConfigError: No input; ``batch_size`` or ``workers`` below 1.
        poiflow.errors.InputError: An input is missing, of unknown kind, truncated or
            malformed; nothing is written.
        poiflow.errors.OutputError: No record at all survived validation (the quarantine
            file is still written, to show why).
    """
    inputs = input_list(inputs)
    # Refused before any work, as a pipeline file's settings are.
    validated(IngestSettings, {"batch_size": batch_size, "workers": workers})
    refuse_unknown_inputs(inputs, mappings)
    output = Path(output)
    quarantine_path = Path(quarantine) if quarantine else default_quarantine_path(output)
    sources = open_inputs(inputs, mapping, mappings, osm)
    _refuse_repeats(sources)
    folders = _folders_of_namesakes(sources)
    report = IngestReport(output, quarantine_path)
    started = time.perf_counter()
    places = ParquetSink(output, PLACE_SCHEMA, geo=True)
    held = ParquetSink(quarantine_path, QUARANTINE_SCHEMA)
    duplicates = DuplicateIds()
    side: threading.Thread | None = None
    points = _point_tally()
    written: list[pa.Table] = []  # for on_places, once the stacked points are known

    rounding: list[pl.DataFrame] = []  # each table's rounding counts (conflate.rounding)

    def write_places(table: pa.Table) -> None:
        places.write(table)
        points.add(table)
        rounding.append(_rounding_counts(table))
        if on_places is not None:
            written.append(table)

    def consume(source: Source, chunks: Iterator[Chunk]) -> SourceReport:
        return _consume(
            source,
            chunks,
            write_places,
            held,
            duplicates,
            report,
            progress,
            folders.get(id(source)),
        )

    try:
        plan = _plan(sources, workers)
        if _uses_workers(plan, workers):
            prepare_workers(WORKER_MODULES)
            if meanwhile is not None:
                side = threading.Thread(
                    target=_quietly, args=(meanwhile,), name="ingest-meanwhile", daemon=True
                )
                side.start()
        for group in plan:
            if len(group) == 1:
                source = group[0]
                parts = _parts(source, workers)
                task = functools.partial(_ingest_part, source, batch_size)
                # Closed on any error here too: its workers are stopped, not left waiting
                # to hand over their next chunks (and the process they were forked from,
                # which waits for them, with them).
                with contextlib.closing(
                    run_partitioned(task, parts, unused=WORKER_UNUSED)
                ) as chunks:
                    consume(source, chunks)
                continue
            # Several small inputs: each read whole by one of the workers, in input order.
            whole = functools.partial(_ingest_sources, tuple(group), batch_size)
            pool = min(len(group), os.cpu_count() or 1)
            with contextlib.closing(run_partitioned(whole, pool, unused=WORKER_UNUSED)) as results:
                for source, (pieces, seconds) in zip(group, results, strict=True):
                    counts = consume(source, iter(pieces))
                    counts.seconds = seconds
    except BaseException:
        places.abort()
        held.abort()
        raise
    finally:
        # Also one started ahead for inputs that turned out small; its exit overlaps what
        # comes next.
        release_workers(wait=False)
        if side is not None:
            side.join()
    try:
        _withhold_stacked_points(points, places, held, written, report)
        _note_rounding(rounding, report)
    except BaseException:
        places.abort()
        held.abort()
        raise
    held.close()
    if on_places is not None:
        for table in written:
            on_places(table)
    if report.valid == 0:
        places.abort()
        raise NothingValidError(
            _nothing_valid(report),
            quarantine=quarantine_path if report.read else None,
            path=report.inputs[0].path if len(report.inputs) == 1 else None,
        )
    places.close()
    report.seconds = time.perf_counter() - started
    return report


def _rounding_counts(table: pa.Table) -> pl.DataFrame:
    from poiflow.conflate.rounding import rounding_counts

    return rounding_counts(table)


def _note_rounding(counts: list[pl.DataFrame], report: IngestReport) -> None:
    """Note in the report each source that gives most of its points to 2 decimals or
    fewer (about a kilometre: matching reads its distances less that), and each that
    gives some of them so (each such point is read so)."""
    import polars as pl

    from poiflow.conflate.rounding import partly_rounded, rounded_decimals

    if not counts:
        return
    summed = pl.concat(counts)
    mostly, partly = rounded_decimals(summed), partly_rounded(summed)
    for inputs in report.inputs:
        inputs.rounded.update({n: d for n, d in mostly.items() if n in inputs.sources})
        inputs.partly_rounded.update({n: s for n, s in partly.items() if n in inputs.sources})


def _point_tally() -> PointTally:
    from poiflow.normalize.points import PointTally  # see TYPE_CHECKING above

    return PointTally()


def _swap_watch(source: Source) -> SwapWatch:
    from poiflow.normalize.points import SwapWatch  # see TYPE_CHECKING above

    return SwapWatch(source.path)


def _withhold_stacked_points(
    points: PointTally,
    places: ParquetSink,
    held: ParquetSink,
    written: list[pa.Table],
    report: IngestReport,
) -> None:
    """Withhold the points that a source gives to many records of several streets (a
    geocoder's centre, see :mod:`poiflow.normalize.points`), in the places written and in
    ``written``, and quarantine them, counted as withheld values of their inputs."""
    from poiflow.normalize.points import withhold_points

    stacks = points.stacks()
    if stacks.is_empty():
        return
    by_source = {name: counts for counts in report.inputs for name in counts.sources}

    fixed: list[pa.Table] = []  # what the rewrite writes: the next stage's tables too

    def fix(table: pa.Table) -> pa.Table:
        without, quarantine = withhold_points(table, stacks)
        if quarantine.num_rows:
            held.write(quarantine)
            for name, n in Counter(quarantine.column("source").to_pylist()).items():
                by_source[name].withheld_values += n
        if written:
            fixed.append(without.cast(PLACE_SCHEMA))
        return without

    places.rewrite(fix)
    written[:] = fixed


def _refuse_repeats(sources: Sequence[Source]) -> None:
    """One file read twice as one source would hold back its every record the second time
    (each id already seen): refused before anything is read."""
    seen: set[tuple[Path, str]] = set()
    for source in sources:
        key = (Path(source.path).resolve(), source.name)
        if key in seen:
            raise InputError(
                f"given twice (as source '{source.name}'): each input is read once",
                path=source.path,
            )
        seen.add(key)


def _nothing_valid(report: IngestReport, shown: int = 3) -> str:
    """Why no record went on: none read, or the commonest reasons they were held back."""
    if report.read == 0:
        names = [s.path for s in report.inputs]
        return (
            "no records to read: the input holds none"
            if len(names) == 1
            else f"no records to read: none of the inputs ({', '.join(names)}) holds any"
        )
    from poiflow.quality.profile import quarantine_reasons

    commonest = quarantine_reasons(report.quarantine, scope="record")
    said = [
        f"{r.reason} ({r.records:,} record{'s' if r.records > 1 else ''}, "
        f"{'first ' if r.records > 1 else ''}at {r.first})"
        for r in commonest[:shown]
    ]
    if len(commonest) > shown:
        others = len(commonest) - shown
        said.append(f"and {others:,} other reason{'s' if others > 1 else ''}")
    return f"no valid records: all {report.read:,} records read were quarantined: " + "; ".join(
        said
    )


def _quietly(function: Callable[[], None]) -> None:
    with contextlib.suppress(Exception):
        function()


def _consume(
    source: Source,
    chunks: Iterator[Chunk],
    write_places: Callable[[pa.Table], None],
    held: ParquetSink,
    duplicates: DuplicateIds,
    report: IngestReport,
    progress: IngestProgress | None,
    folder: str | None = None,
) -> SourceReport:
    """Write one source's chunks (places and quarantine rows), in order, and count them;
    with ``folder``, the file's origins name the folder it was given in."""
    counts = SourceReport(str(source.path), source.kind)
    report.inputs.append(counts)
    t0 = time.perf_counter()
    name = source.path.name
    if progress is not None:
        progress.start(name if folder is None else f"{folder}/{name}", source.size_hint())
    own = None if source.path.is_dir() else name  # a folder's origins are all its own
    swapped = _swap_watch(source)
    for chunk in chunks:
        if folder is not None:
            chunk = _in_folder(chunk, own, folder if own else f"{folder}/{name}")
        place_table, quarantine_table = _drop_duplicates(chunk, duplicates, counts)
        swapped.add(place_table)
        if place_table.num_rows:
            write_places(place_table)
        if quarantine_table.num_rows:
            held.write(quarantine_table)
        if progress is not None:
            progress.advance(chunk.read)
    swapped.finish()
    counts.seconds = time.perf_counter() - t0
    if progress is not None:
        progress.finish()
    if not counts.balanced:  # pragma: no cover - an internal invariant
        msg = f"lost records: read {counts.read} != {counts.valid} + {counts.quarantined}"
        raise AssertionError(msg)
    return counts


def _folders_of_namesakes(sources: Sequence[Source]) -> dict[int, str]:
    """The folder each input was given in, by the source's ``id``, for the inputs that
    share their name with another (``jan/vendor.csv`` and ``feb/vendor.csv``; two
    ``places/`` folders of Overture's downloads): a record's origin names its file (within
    a folder input, the file's path in it), and the name alone would not say which."""
    paths: dict[str, set[Path]] = {}
    for source in sources:
        if source.path.exists():
            paths.setdefault(source.path.name, set()).add(source.path.resolve())
    return {
        id(source): source.path.parent.as_posix()
        for source in sources
        if len(paths.get(source.path.name, ())) > 1
    }


def _in_folder(chunk: Chunk, name: str | None, folder: str) -> Chunk:
    """The chunk with the origins of file ``name`` (``vendor.csv:2``) in ``folder``
    (``jan/vendor.csv:2``); with no name, every origin (a folder input's
    ``part-0.parquet#row=1`` in ``jan/places``)."""

    def moved(table: pa.Table) -> pa.Table:
        if not table.num_rows:
            return table
        at = table.schema.get_field_index("origin")
        origins = table.column(at)
        joined = pc.binary_join_element_wise(pa.scalar(folder), origins, "/")
        if name is None:
            return table.set_column(at, table.field(at), joined)
        own = f"^{re.escape(name)}($|[:#])"
        named = pc.fill_null(pc.match_substring_regex(origins, own), False)
        return table.set_column(at, table.field(at), pc.if_else(named, joined, origins))

    return replace(chunk, places=moved(chunk.places), quarantine=moved(chunk.quarantine))


def _plan(sources: Sequence[Source], workers: int | None) -> list[list[Source]]:
    """Inputs in order, in groups: a large input alone (read by several workers), and runs
    of small ones together when they are worth a pool (each read whole by one worker)."""
    plan: list[list[Source]] = []
    run: list[Source] = []

    def close_run() -> None:
        size = sum(_size(s) for s in run)
        if len(run) > 1 and size >= GROUP_MIN_BYTES and (os.cpu_count() or 1) > 1:
            plan.append(list(run))
        else:
            plan.extend([s] for s in run)
        run.clear()

    for source in sources:
        if workers is None and _auto_workers(source) == 1:
            run.append(source)
            continue
        close_run()
        plan.append([source])
    close_run()
    return plan


def _size(source: Source) -> int:
    return bytes_on_disk(source.path)


def _ingest_sources(
    sources: tuple[Source, ...], batch_size: int, part: int, parts: int
) -> Iterator[tuple[int, tuple[list[Chunk], float]]]:
    """Every ``parts``-th source from ``part``, read whole (runs in a worker)."""
    for index, source in enumerate(sources):
        if index % parts == part:
            started = time.perf_counter()
            chunks = [ingest_batch(batch, source.name) for batch in source.batches(batch_size)]
            yield index, (chunks, time.perf_counter() - started)


def prepare_ingest(
    inputs: Sequence[str | Path | Source],
    *,
    mapping: SourceMapping | None = None,
    mappings: Mapping[str, SourceMapping] | None = None,
    osm: OsmOptions | None = None,
    workers: int | None = None,
) -> None:
    """Start the process that ``ingest``'s workers are forked from now, if reading
    ``inputs`` will use workers: called first thing, its imports overlap the other work
    before ingest. An input that cannot be opened is left for ``ingest`` to report."""
    try:
        sources = open_inputs(inputs, mapping, mappings, osm)
    except PoiflowError:
        return
    if _uses_workers(_plan(sources, workers), workers):
        prepare_workers(WORKER_MODULES)


def _uses_workers(plan: list[list[Source]], workers: int | None) -> bool:
    return any(len(group) > 1 or _parts(group[0], workers) > 1 for group in plan)


def _parts(source: Source, workers: int | None) -> int:
    return workers if workers is not None else _auto_workers(source)


def _auto_workers(source: Source) -> int:
    cores = max(1, os.cpu_count() or 1)
    try:  # the rows, where the input tells them cheaply (Parquet's footers)
        rows = source.size_hint()
    except PoiflowError:  # unreadable: ``ingest`` says why
        rows = None
    if rows is not None:
        return cores if rows > DEFAULT_BATCH_SIZE else 1
    kind = "osm" if isinstance(source, OsmSource) else "other"
    return cores if _size(source) >= PARALLEL_MIN_BYTES[kind] else 1


def _ingest_part(
    source: Source, batch_size: int, part: int, parts: int
) -> Iterator[tuple[int, Chunk]]:
    """One partition's share of a source: validated, normalized chunks (runs in a worker)."""
    for batch in source.batches(batch_size, part=part, parts=parts):
        yield batch.chunk, ingest_batch(batch, source.name)


def _drop_duplicates(
    chunk: Chunk, duplicates: DuplicateIds, counts: SourceReport
) -> tuple[pa.Table, pa.Table]:
    """Hold back places whose (source, id) came earlier; runs in input order, in one process."""
    places, quarantine, kept = repeats_held_back(chunk.places, chunk.quarantine, duplicates)
    counts.read += chunk.read
    counts.valid += places.num_rows
    counts.quarantined += chunk.quarantined + int((~kept).sum())
    counts.withheld_values += chunk.withheld
    for what, records in chunk.repaired.items():
        counts.repaired[what] = counts.repaired.get(what, 0) + records
        shown = counts.repair_examples.get(what, ())
        counts.repair_examples[what] = kept_examples(shown, chunk.repair_examples.get(what, ()))
    counts.sources.update(s for s in places.column("source").unique().to_pylist() if s)
    return places, quarantine
