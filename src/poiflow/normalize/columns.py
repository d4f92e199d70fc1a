"""A batch's columns as Python lists, and back: what normalization reads its records
through (a table column by column, or a request's few rows row by row, alike) and builds
its struct columns from.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "FieldProblem",
    "RowColumns",
    "TableColumns",
    "once",
    "once_lists",
    "struct_array",
    "struct_row",
]

Key = TypeVar("Key", bound=Hashable)
Value = TypeVar("Value")

_MISSING: Final = object()


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One value that could not be normalized and was withheld from its record.

    Attributes:
        row: The record's row in the batch.
        field: The field ("phones", "websites", ...).
        value: The value as the source gave it.
        reason: Why it was withheld.
    """

    row: int
    field: str
    value: str
    reason: str


def once(values: Sequence[Key], function: Callable[[Key], Value]) -> list[Value]:
    """``[function(v) for v in values]``, calling ``function`` once per distinct value."""
    memo = {value: function(value) for value in dict.fromkeys(values)}
    return list(map(memo.__getitem__, values))


class TableColumns:
    """A table's columns as Python lists, read column by column (many rows)."""

    columnar: Final = True  # worth reading values column-wise where that is quicker

    def __init__(self, table: pa.Table) -> None:
        self.table = table
        self.n = table.num_rows

    def values(self, column: str) -> list[Any]:
        return self.table.column(column).to_pylist()  # type: ignore[no-any-return]

    def field(self, column: str, child: str) -> list[Any]:
        return pc.struct_field(self.table.column(column), child).to_pylist()  # type: ignore[no-any-return]

    def numbers(self, column: str) -> np.ndarray:
        return np.asarray(self.table.column(column).to_numpy(zero_copy_only=False), float)


class RowColumns:
    """Rows' columns as Python lists, read row by row (a request's few records)."""

    columnar: Final = False

    def __init__(self, rows: Sequence[dict[str, Any]]) -> None:
        self.rows = rows
        self.n = len(rows)

    def values(self, column: str) -> list[Any]:
        return [row[column] for row in self.rows]

    def field(self, column: str, child: str) -> list[Any]:
        return [None if row[column] is None else row[column][child] for row in self.rows]

    def numbers(self, column: str) -> np.ndarray:
        return np.array([np.nan if r[column] is None else r[column] for r in self.rows], float)


def once_lists(
    values: Sequence[list[str] | None], function: Callable[[tuple[str, ...]], Value]
) -> list[Value | None]:
    """``once`` over list values (None or empty stays None): the lists are read as tuples."""
    memo: dict[tuple[str, ...], Value] = {}
    out: list[Value | None] = []
    for value in values:
        if not value:
            out.append(None)
            continue
        key = tuple(value)
        found = memo.get(key, _MISSING)
        if found is _MISSING:
            found = memo[key] = function(key)
        out.append(found)  # type: ignore[arg-type]
    return out


def struct_array(children: dict[str, list[Any]], struct_type: pa.StructType) -> pa.StructArray:
    """A struct array from child lists; a row whose children are all null is null."""
    names = [f.name for f in struct_type]
    arrays = [pa.array(children[name], f.type) for name, f in zip(names, struct_type, strict=True)]
    valid = np.zeros(len(arrays[0]), dtype=bool)
    for array in arrays:
        valid |= array.is_valid().to_numpy(zero_copy_only=False)
    return pa.StructArray.from_arrays(
        arrays, fields=list(struct_type), mask=pa.array(~valid, pa.bool_())
    )


def struct_row(children: dict[str, list[Any]], row: int) -> dict[str, Any] | None:
    """One row of ``struct_array``: None when every child is null."""
    value = {name: values[row] for name, values in children.items()}
    return None if all(v is None for v in value.values()) else value
