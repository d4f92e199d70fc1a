"""Reading a source whole in the tests: its records and its rejected rows."""

from __future__ import annotations

from poiflow.sources import Source


def read(source: Source, batch_size: int = 2) -> tuple[list[dict], list[tuple[str, str, str]]]:
    """Every record and every rejected row of a source, read in batches of ``batch_size``."""
    rows: list[dict] = []
    rejected: list[tuple[str, str, str]] = []
    for batch in source.batches(batch_size):
        rows += batch.records.to_pylist()
        rejected += batch.rejected
    return rows, rejected
