"""The generated sources of the ``conflated`` fixture as their next release has them:
what a later run under a stream is made from."""

from __future__ import annotations

import csv
from pathlib import Path


def later_sources(
    conflated: Path, to: Path, changes: dict[tuple[str, str], dict[str, str]]
) -> list[Path]:
    """The run's sources as a later release has them, written into ``to``: ``changes`` by
    record (``(source, id)``: values by column), and an ``update_time`` column (empty but
    where a change gives one)."""
    files = []
    for path in sorted((conflated.parent / "sources").glob("source_*.csv")):
        with path.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
        for row in rows:
            row.update(changes.get((path.stem, row["id"]), {}))
            row.setdefault("update_time", "")
        to.mkdir(parents=True, exist_ok=True)
        with (to / path.name).open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, [*rows[0].keys()])
            writer.writeheader()
            writer.writerows(rows)
        files.append(to / path.name)
    return files
