"""What a stage of the user's own must hand back: the table it was given, changed, of the
schema the stages after it read; after merge, the same places."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pyarrow as pa

from poiflow.config import CUSTOM_AFTER
from poiflow.errors import ConfigError, did_you_mean
from poiflow.schema import GOLDEN_PLACE_SCHEMA, PLACE_SCHEMA

__all__ = ["checked_result"]


def checked_result(
    function: Callable[..., Any],
    table: pa.Table,
    *,
    after: str,
    params: Mapping[str, Any],
    where: str,
) -> pa.Table:
    """``function(table, **params)``, a stage after ``after``, held to what the stages
    after it read: the records (``PLACE_SCHEMA``) after ingest, the table it was given
    after score (the scored pairs and their rows), the same golden places
    (``GOLDEN_PLACE_SCHEMA``) after merge.

    Raises:
        ConfigError: It returned something else, said of ``where``.
    """
    if after not in CUSTOM_AFTER:
        raise ConfigError(
            f"{where}: a stage of your own runs after one of {', '.join(CUSTOM_AFTER)}, not "
            f"'{after}'.{did_you_mean(after, CUSTOM_AFTER)}"
        )
    schema = {"ingest": PLACE_SCHEMA, "score": table.schema}.get(after, GOLDEN_PLACE_SCHEMA)
    result = _conform(function(table, **params), schema, where)
    if after == "merge" and sorted(result.column("id").to_pylist()) != sorted(
        table.column("id").to_pylist()
    ):
        raise ConfigError(
            f"{where}: a stage after merge may change places but not add or drop them "
            "(membership names every place)"
        )
    return result


def _conform(result: Any, schema: pa.Schema, where: str) -> pa.Table:
    """``result`` as a table of ``schema``, or a ConfigError saying what is wrong."""
    if hasattr(result, "to_arrow") and not isinstance(result, pa.Table):
        result = result.to_arrow()  # a polars DataFrame
    if not isinstance(result, pa.Table):
        raise ConfigError(f"{where} returned {type(result).__name__}, not a table")
    missing = [name for name in schema.names if name not in result.column_names]
    if missing:
        raise ConfigError(f"{where} returned a table without the columns {missing}")
    try:
        return result.select(schema.names).cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as exc:
        raise ConfigError(f"{where} returned columns of the wrong type: {exc}") from exc
