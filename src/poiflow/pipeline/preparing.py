"""A batch of source records validated and normalized: the places that passed, and a
quarantine row for each record held back and each value withheld, with its reason and its
original values as JSON. What ingest's workers do to each batch (:func:`ingest_batch`),
and what ``POST /match``, ``poiflow match`` and the stream run on their input
(:func:`prepare_records`; a request's few records as rows, :func:`prepare_rows`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from poiflow._gc import paused_gc
from poiflow.quality import DuplicateIds, validate_records, validate_rows
from poiflow.schema import QUARANTINE_SCHEMA
from poiflow.sources import SourceBatch

if TYPE_CHECKING:  # the normalizers run in the workers; they are imported there, on first use
    from poiflow.normalize import FieldProblem

__all__ = [
    "Chunk",
    "checked_batch",
    "ingest_batch",
    "prepare_records",
    "prepare_rows",
    "repeats_held_back",
    "to_json",
]


@dataclass(frozen=True, slots=True)
class Chunk:
    """What a worker hands back for one batch: places, quarantine rows, and counts."""

    places: pa.Table
    quarantine: pa.Table
    read: int
    quarantined: int
    withheld: int
    repaired: Mapping[str, int] = field(default_factory=dict)  # NormalizedBatch.repaired
    repair_examples: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # and its


def prepare_records(records: pa.Table | SourceBatch, source_name: str) -> tuple[pa.Table, pa.Table]:
    """Validate and normalize source records (or a source's batch) as ``ingest`` does,
    without writing anything: ``(places, quarantine)``, the records that passed
    (``PLACE_SCHEMA``) and what was held back with its reason (``QUARANTINE_SCHEMA``).
    What ``POST /match`` and ``poiflow match`` run on their input."""
    batch = records if isinstance(records, SourceBatch) else SourceBatch(records)
    chunk = ingest_batch(batch, source_name)
    return chunk.places, chunk.quarantine


def ingest_batch(batch: SourceBatch, source_name: str) -> Chunk:
    """A batch validated and normalized, with the cycle collector paused: the batch makes a
    few Python objects per record, and the collector would walk them over and over (see
    ``poiflow._gc``)."""
    with paused_gc(collect_young=True):
        return checked_batch(batch, source_name)


def checked_batch(batch: SourceBatch, source_name: str) -> Chunk:
    from poiflow.normalize import normalize_records

    records = batch.records
    quarantine_rows = [
        _held_back(source_name, None, origin, reason, text)
        for origin, reason, text in batch.rejected
    ]
    verdict = validate_records(records)
    valid = verdict.valid
    bad = np.flatnonzero(~valid)
    if len(bad):
        sources = records.column("source").to_pylist()
        ids = records.column("id").to_pylist()
        origins = records.column("origin").to_pylist()
        original = batch.original if batch.original is not None else records.drop_columns("issues")
        originals = original.take(pa.array(bad)).to_pylist()
        for row, values in zip(bad.tolist(), originals, strict=True):
            reason = verdict.reasons[row] or ""
            quarantine_rows.append(
                _held_back(sources[row], ids[row], origins[row], reason, to_json(values))
            )
    good = records.filter(pa.array(valid)) if len(bad) else records
    normalized = normalize_records(good)
    if normalized.problems:
        sources, ids, origins = (
            normalized.places.column(c).to_pylist() for c in ("source", "id", "origin")
        )
        quarantine_rows.extend(_field_rows(sources, ids, origins, normalized.problems))
    return Chunk(
        places=normalized.places,
        quarantine=pa.Table.from_pylist(quarantine_rows, schema=QUARANTINE_SCHEMA),
        read=records.num_rows + len(batch.rejected),
        quarantined=len(bad) + len(batch.rejected),
        withheld=len(normalized.problems),
        repaired=normalized.repaired,
        repair_examples=normalized.repair_examples,
    )


def prepare_rows(
    records: Sequence[dict[str, Any]], source_name: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``prepare_records`` of a few records given as rows (``SOURCE_RECORD_SCHEMA``'s
    fields), with rows out: the places (``PLACE_SCHEMA``'s) and what was held back
    (``QUARANTINE_SCHEMA``'s), as ``to_pylist`` gives them. No Arrow call: what a request
    of one record takes."""
    from poiflow.normalize import normalize_rows

    verdict = validate_rows(records)
    quarantine = [
        _held_back(
            record["source"],
            record["id"],
            record["origin"],
            reason,
            to_json({k: v for k, v in record.items() if k != "issues"}),
        )
        for record, reason in zip(records, verdict.reasons, strict=True)
        if reason is not None
    ]
    places, problems = normalize_rows(
        [r for r, ok in zip(records, verdict.valid.tolist(), strict=True) if ok]
    )
    sources, ids, origins = ([p[c] for p in places] for c in ("source", "id", "origin"))
    quarantine.extend(_field_rows(sources, ids, origins, problems))
    return places, quarantine


def repeats_held_back(
    places: pa.Table, quarantine: pa.Table, duplicates: DuplicateIds
) -> tuple[pa.Table, pa.Table, np.ndarray]:
    """``places`` without those whose (source, id) an earlier place of the input had, held
    back as ingest holds them (the first one goes on): the places kept, ``quarantine``
    with a row (``QUARANTINE_SCHEMA``) for each held back, whose reason names where the
    first one was, and which rows of ``places`` were kept (a mask). ``duplicates``
    remembers the input's ids so far."""
    reasons = duplicates.check(places, np.ones(places.num_rows, dtype=bool))
    repeated = {row: reason for row, reason in enumerate(reasons) if reason is not None}
    keep = np.ones(places.num_rows, dtype=bool)
    if not repeated:
        return places, quarantine, keep
    keep[list(repeated)] = False
    held = places.take(pa.array(list(repeated), pa.int64())).to_pylist()
    rows = [
        _held_back(
            row["source"],
            row["id"],
            row["origin"],
            reason,
            to_json({k: v for k, v in row.items() if k != "keys"}),
        )
        for row, reason in zip(held, repeated.values(), strict=True)
    ]
    repeats = pa.Table.from_pylist(rows, schema=QUARANTINE_SCHEMA)
    return places.filter(pa.array(keep)), pa.concat_tables([quarantine, repeats]), keep


def _held_back(
    source: str, record_id: str | None, origin: str, reason: str, original: str | None
) -> dict[str, Any]:
    """A quarantine row (``QUARANTINE_SCHEMA``) of a whole record held back."""
    return {
        "source": source,
        "id": record_id,
        "origin": origin,
        "scope": "record",
        "field": None,
        "reason": reason,
        "original": original,
    }


def _field_rows(
    sources: list[str], ids: list[str], origins: list[str], problems: Iterable[FieldProblem]
) -> list[dict[str, Any]]:
    problems = list(problems)
    if not problems:
        return []
    return [
        {
            "source": sources[p.row],
            "id": ids[p.row],
            "origin": origins[p.row],
            "scope": "field",
            "field": p.field,
            "reason": p.reason,
            "original": to_json({p.field: p.value}),
        }
        for p in problems
    ]


def to_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=_json_default, sort_keys=True)


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return repr(value)
