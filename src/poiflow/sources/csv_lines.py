"""Where a CSV file's rows are: the line each starts on, though a quoted value may span
lines, with the rows Arrow skips placed among them; and the error of a file not in its
encoding, at its first bad byte."""

from __future__ import annotations

import contextlib
import itertools
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc

from poiflow.errors import CorruptInputError
from poiflow.sources.text import open_bytes

__all__ = ["OTHER_ENCODING", "CsvLines", "first_undecodable", "not_text", "undecodable_rows"]

OTHER_ENCODING: Final = (
    "a file from a spreadsheet or an older system is often Windows-1252 or Latin-1: read it "
    "with a mapping's 'csv: {encoding: cp1252}'"
)


def not_text(file: Path, encoding: str) -> CorruptInputError:
    """The error of a file that is not ``encoding`` text, at the line and column of its
    first byte that is not (looked for line by line)."""
    found = first_undecodable(file, encoding)
    return found or CorruptInputError(f"not {encoding} text; {OTHER_ENCODING}", path=file)


def first_undecodable(file: Path, encoding: str) -> CorruptInputError | None:
    """The error of the file's first line that is not ``encoding`` text, at the line and
    column of its first byte that is not; None where every line decodes."""
    with open_bytes(file) as handle:
        for number, raw in enumerate(handle, 1):
            try:
                raw.decode(encoding)
            except UnicodeDecodeError as exc:
                return CorruptInputError(
                    f"not {encoding} text (byte 0x{raw[exc.start]:02x} at column "
                    f"{exc.start + 1}); {OTHER_ENCODING}",
                    path=file,
                    location=number,
                )
    return None


@contextlib.contextmanager
def undecodable_rows(handler: Callable[..., Any]) -> Iterator[list[BaseException]]:
    """While in it, what Arrow could not decode to hand over to ``handler`` (its invalid
    row handler) is kept in the list it gives, not printed.

    Arrow decodes a row of the wrong width as UTF-8 before it calls the handler; where the
    row is not UTF-8, the decoding fails inside Arrow, which prints it as an exception it
    could not raise (a traceback on the user's terminal) and then gives up on the file with
    a "parse error". The reader says instead where the file is not text."""
    failed: list[BaseException] = []
    previous = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        if unraisable.object is handler and isinstance(unraisable.exc_value, UnicodeDecodeError):
            failed.append(unraisable.exc_value)
        else:
            previous(unraisable)

    sys.unraisablehook = hook
    try:
        yield failed
    finally:
        if sys.unraisablehook is hook:  # not where another has been put in since
            sys.unraisablehook = previous


class CsvLines:
    """The line each row of a CSV file starts on. Arrow numbers rows (the header is row 1)
    and counts a row once however many lines its quoted values span; the lines come from
    Arrow's numbers and the line breaks in each row's values. Rows Arrow skips (the wrong
    number of values) are placed where the walk through the file reaches them."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.row = 2  # Arrow's number of the next row
        self.line = 2  # the line it starts on
        self.pending: dict[int, tuple[str, str]] = {}  # skipped rows not reached yet
        self.unplaced: list[tuple[str, str, str]] = []  # skipped rows Arrow gave no number

    def skipped(self, number: int | None, reason: str, text: str) -> None:
        if number is None:
            if reason:
                self.unplaced.append((self.where, reason, text))
        else:
            self.pending[number] = (reason, text)

    def of(self, table: pa.Table) -> tuple[list[str], list[tuple[str, str, str]]]:
        """Each of the next rows' origin, and the skipped rows before and among them."""
        breaks = _line_breaks(table)
        rejected, self.unplaced = self.unplaced, []
        n = table.num_rows
        if breaks is None and not any(self.row <= row < self.row + n for row in self.pending):
            # One line a row, none skipped among them: the common case, at once.
            origins = [f"{self.where}:{line}" for line in range(self.line, self.line + n)]
            self.line, self.row = self.line + n, self.row + n
            return origins, rejected + self._reach()
        origins = []
        for extra in breaks if breaks is not None else itertools.repeat(0, n):
            if self.row in self.pending:
                rejected += self._reach()
            origins.append(f"{self.where}:{self.line}")
            self.line += 1 + extra
            self.row += 1
        return origins, rejected + self._reach()

    def rest(self) -> list[tuple[str, str, str]]:
        """The skipped rows not placed yet: those after the last row read."""
        rejected = self.unplaced + self._reach()
        rejected += [
            (f"{self.where}:{number}", reason, text)  # past a gap: Arrow's number
            for number, (reason, text) in sorted(self.pending.items())
            if reason
        ]
        self.unplaced, self.pending = [], {}
        return rejected

    def _reach(self) -> list[tuple[str, str, str]]:
        """The skipped rows from here on, up to the next row read."""
        rejected = []
        while self.row in self.pending:
            reason, text = self.pending.pop(self.row)
            if reason:
                rejected.append((f"{self.where}:{self.line}", reason, text))
            self.line += 1 + text.count("\n")
            self.row += 1
        return rejected


def _line_breaks(table: pa.Table) -> list[int] | None:
    """The line breaks in each row's values, or None where no value has one: a search of
    each column's bytes decides that, the count only runs where it finds one."""
    columns = [
        column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
        for column in table.columns
        if pa.types.is_string(column.type)
    ]
    if not any(
        array.buffers()[2] is not None and b"\n" in array.buffers()[2].to_pybytes()
        for array in columns
    ):
        return None
    total = None
    for array in columns:
        counts = pc.fill_null(pc.count_substring(array, "\n"), 0)
        total = counts if total is None else pc.add(total, counts)
    return total.to_pylist() if total is not None else None
