"""Reading a finished run's output folder (``poiflow conflate`` or ``poiflow run``): its
tables, its ``run.json`` and the settings it ran with, for what looks back at a run
(``poiflow explain``, ``poiflow evaluate``, a stream's start)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

import polars as pl
import pyarrow as pa

from poiflow.errors import InputError, did_you_mean
from poiflow.schema import PAIR_RECORD_KEYS, PAIR_SCORE_COLUMNS

__all__ = [
    "RecordName",
    "name_text",
    "output_path",
    "pair_row",
    "pairs_among",
    "read_output",
    "read_run",
    "record_keys",
    "record_name",
    "run_settings",
]

Settings = TypeVar("Settings")


def output_path(folder: Path, name: str) -> Path:
    """``folder / name``, which must exist.

    Raises:
        InputError: It does not (not an output folder of a run).
    """
    path = folder / name
    if not path.exists():
        raise InputError(
            f"no {name}: give the output folder of 'poiflow conflate' or 'poiflow run'",
            path=folder,
        )
    return path


def read_output(folder: Path, name: str, columns: list[str] | None = None) -> pa.Table:
    """A table of the run (only ``columns``, if given).

    Raises:
        InputError: The file is missing or not a Parquet table with those columns.
    """
    import pyarrow.parquet as pq

    path = output_path(folder, name)
    try:
        return pq.read_table(path, columns=columns)
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"cannot read {name} ({exc})", path=path) from exc


def read_run(folder: Path) -> dict[str, Any]:
    """The run's ``run.json``; empty where there is none or it is not a JSON object."""
    try:
        found = json.loads((folder / "run.json").read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def run_settings(kind: type[Settings], run: dict[str, Any], stage: str) -> Settings:
    """A stage's settings (``kind``, e.g. ``ClusterConfig``) as ``run.json`` records them
    (``matching.STAGE``), else the defaults (no record of them, or of another version)."""
    try:
        return kind(**run.get("matching", {}).get(stage, {}))
    except (TypeError, AttributeError):
        return kind()


def pairs_among(folder: Path, members: pl.DataFrame) -> pl.DataFrame:
    """The run's scored pairs between ``members`` (``row, source, id``), by their rows:
    ``row, row_r, match_probability``; with the person's decisions the run followed over
    them (``decisions.parquet``), as clustering took them: a match at 1.0 and a difference
    at 0.0, a decided pair the run never scored among them too."""
    keys = members.select("row", "source", "id")
    scored = _pairs_of(
        pl.scan_parquet(output_path(folder, "pairs.parquet")).select(*PAIR_SCORE_COLUMNS), keys
    )
    path = folder / "decisions.parquet"
    if not path.exists():  # an output of a poiflow before decisions
        return scored
    decided = pl.scan_parquet(path).filter("in_run")
    said = pl.when(pl.col("decision") == "match").then(1.0).otherwise(0.0)
    decided = decided.select(*PAIR_RECORD_KEYS, said.cast(pl.Float32).alias("match_probability"))
    found = _pairs_of(decided, keys)
    if found.is_empty():
        return scored

    def either_way(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns(
            pl.min_horizontal("row", "row_r").alias("a"),
            pl.max_horizontal("row", "row_r").alias("b"),
        )

    kept = either_way(scored).join(either_way(found), on=["a", "b"], how="anti")
    return pl.concat([kept.select(scored.columns), found])


def _pairs_of(pairs: pl.LazyFrame, keys: pl.DataFrame) -> pl.DataFrame:
    """The ``pairs`` (``PAIR_SCORE_COLUMNS``) between the records ``keys`` numbers, by
    their rows."""
    return (
        pairs.join(
            keys.lazy().rename({"source": "left_source", "id": "left_id"}),
            on=["left_source", "left_id"],
        )
        .join(
            keys.lazy().rename({"row": "row_r", "source": "right_source", "id": "right_id"}),
            on=["right_source", "right_id"],
        )
        .select("row", "row_r", "match_probability")
        .collect()
    )


RecordName = str | tuple[str, str]  # "SOURCE:ID", or (source, id)


def record_name(name: object) -> RecordName:
    """A record or place as a person names it: text (``SOURCE:ID``, a place id) or a
    ``(source, id)`` pair, as a table's two columns give it.

    Raises:
        InputError: It is neither.
    """
    if isinstance(name, str):
        return name
    if (
        isinstance(name, tuple | list)
        and len(name) == 2
        and all(isinstance(v, str | int) and not isinstance(v, bool) for v in name)
    ):
        return (str(name[0]), str(name[1]))
    raise InputError(f"name a record as SOURCE:ID or (source, id), not {name!r}")


def name_text(name: RecordName) -> str:
    """How a record's name reads in a message: ``SOURCE:ID``."""
    return name if isinstance(name, str) else f"{name[0]}:{name[1]}"


def record_keys(name: RecordName, sources: list[str]) -> list[tuple[str, str]]:
    """The ``(source, id)`` a record named ``SOURCE:ID`` may be, most likely first: a
    source's name may hold a colon itself, and so may an id, so every split whose source
    is one of ``sources`` is given (shortest source first). A ``(source, id)`` pair is
    itself.

    Raises:
        InputError: No colon, or no source of that name.
    """
    if isinstance(name, tuple):
        found = [name] if name[0] in sources else []
        source = name[0]
    else:
        text = name
        if ":" not in text:
            example = f"{sources[0] if sources else 'osm'}:42"
            raise InputError(f"name a record as SOURCE:ID (e.g. {example}), not '{text}'")
        known = set(sources)
        found = [
            (text[:at], text[at + 1 :])
            for at, c in enumerate(text)
            if c == ":" and text[:at] in known
        ]
        source = text.split(":", 1)[0]
    if not found:
        raise InputError(
            f"no source '{source}' in this run.{did_you_mean(source, sources)} "
            f"Its sources: {', '.join(sources)}"
        )
    return found


def pair_row(path: Path, keys: tuple[tuple[str, str], tuple[str, str]]) -> dict[str, Any] | None:
    """The row of the pair ``keys`` (either way round) in a file of pairs, or None."""
    (a_source, a_id), (b_source, b_id) = keys
    col = pl.col
    one = (col("left_source") == a_source) & (col("left_id") == a_id)
    one &= (col("right_source") == b_source) & (col("right_id") == b_id)
    other = (col("left_source") == b_source) & (col("left_id") == b_id)
    other &= (col("right_source") == a_source) & (col("right_id") == a_id)
    found = pl.scan_parquet(path).filter(one | other).collect()
    return found.row(0, named=True) if found.height else None
