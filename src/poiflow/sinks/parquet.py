"""Parquet and GeoParquet files, written atomically in streamed batches."""

from __future__ import annotations

import contextlib
import glob
import json
import os
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from poiflow._version import __version__
from poiflow.errors import OutputError
from poiflow.storage import clear_stale

__all__ = ["ParquetSink", "point_wkb"]

_POINT_HEADER: Final = np.frombuffer(b"\x01\x01\x00\x00\x00", dtype=np.uint8)


def point_wkb(lat: np.ndarray, lon: np.ndarray) -> pa.Array:
    """WKB points (little-endian, 2D) for coordinate arrays; null where either is NaN."""
    n = len(lat)
    data = np.empty((n, 21), dtype=np.uint8)
    data[:, :5] = _POINT_HEADER
    data[:, 5:13] = np.ascontiguousarray(lon, dtype="<f8").view(np.uint8).reshape(n, 8)
    data[:, 13:21] = np.ascontiguousarray(lat, dtype="<f8").view(np.uint8).reshape(n, 8)
    valid = ~(np.isnan(lat) | np.isnan(lon))
    offsets = np.arange(0, 21 * (n + 1), 21, dtype=np.int32)
    validity = pa.array(valid, pa.bool_()).buffers()[1] if not valid.all() else None
    return pa.Array.from_buffers(
        pa.binary(),
        n,
        [validity, pa.py_buffer(offsets), pa.py_buffer(data.tobytes())],
        null_count=int((~valid).sum()),
    )


class ParquetSink:
    """Write batches to a Parquet file that appears only when the writer closes cleanly.

    Batches go to a hidden temporary file next to ``path``; :meth:`close` renames it into
    place, :meth:`abort` (or leaving the ``with`` block by an exception) deletes it.

    Args:
        path: The file to create (replaced if it exists).
        schema: The schema of every batch.
        geo: Add a WKB ``geometry`` column from ``lat``/``lon`` and GeoParquet metadata.
    """

    def __init__(
        self, path: str | Path, schema: pa.Schema, *, geo: bool = False, compression: str = "zstd"
    ) -> None:
        self.path = Path(path)
        self.geo = geo
        self._compression = compression
        self.rows = 0
        self._bbox = [np.inf, np.inf, -np.inf, -np.inf]
        if geo:
            schema = schema.append(pa.field("geometry", pa.binary()))
        self.schema = schema
        if self.path.is_dir():  # found now, not when the finished file is moved there
            example = self.path / "places.parquet"
            raise OutputError(
                f"a folder, not a file; name the file to write, e.g. {example}", path=self.path
            )
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create the folder ({exc.strerror})", path=self.path) from exc
        # Hidden beside the file until it is whole; a writer killed outright cannot remove
        # its own, so the next writer of the file does.
        clear_stale(self.path.parent, f".{glob.escape(self.path.name)}.*.tmp*")
        self._tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            self._writer: pq.ParquetWriter | None = pq.ParquetWriter(
                self._tmp, schema, compression=compression
            )
        except OSError as exc:
            raise OutputError(f"cannot write ({exc})", path=self.path) from exc

    def write(self, table: pa.Table) -> None:
        """Append a table of the sink's schema (without ``geometry``; it is added here)."""
        if self._writer is None:
            msg = "the sink is closed"
            raise OutputError(msg, path=self.path)
        if self.geo:
            lat = table.column("lat").to_numpy(zero_copy_only=False).astype(float)
            lon = table.column("lon").to_numpy(zero_copy_only=False).astype(float)
            table = table.append_column("geometry", point_wkb(lat, lon))
            if np.isfinite(lat).any():
                self._bbox = [
                    min(self._bbox[0], float(np.nanmin(lon))),
                    min(self._bbox[1], float(np.nanmin(lat))),
                    max(self._bbox[2], float(np.nanmax(lon))),
                    max(self._bbox[3], float(np.nanmax(lat))),
                ]
        self._writer.write_table(table.cast(self.schema))
        self.rows += table.num_rows

    def rewrite(self, fix: Callable[[pa.Table], pa.Table]) -> None:
        """Pass every table written so far through ``fix`` (which keeps the schema),
        one written table at a time: a second pass over the unfinished file, for what
        could only be known once all was written. Later writes append as before."""
        if self._writer is None:
            msg = "the sink is closed"
            raise OutputError(msg, path=self.path)
        self._writer.close()
        first = self._tmp
        self._tmp = first.with_name(f"{first.name}.2")
        self._writer = pq.ParquetWriter(self._tmp, self.schema, compression=self._compression)
        self.rows = 0
        self._bbox = [np.inf, np.inf, -np.inf, -np.inf]
        try:
            written = pq.ParquetFile(first)
            for group in range(written.num_row_groups):
                table = written.read_row_group(group)
                if self.geo:
                    table = table.drop_columns(["geometry"])
                self.write(fix(table))
        finally:
            first.unlink()

    def close(self) -> Path:
        """Finish the file and move it into place; returns its path."""
        if self._writer is None:
            return self.path
        if self.geo:
            self._writer.add_key_value_metadata({"geo": json.dumps(self._geo_metadata())})
        self._writer.close()
        self._writer = None
        os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Drop the partial file; the destination is left as it was."""
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.close()
            self._writer = None
        with contextlib.suppress(FileNotFoundError):
            self._tmp.unlink()

    def _geo_metadata(self) -> dict[str, Any]:
        column: dict[str, Any] = {"encoding": "WKB", "geometry_types": ["Point"]}
        if np.isfinite(self._bbox).all():
            column["bbox"] = self._bbox
        return {
            "version": "1.1.0",
            "primary_column": "geometry",
            "columns": {"geometry": column},
            "creator": {"library": "poiflow", "version": __version__},
        }

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
