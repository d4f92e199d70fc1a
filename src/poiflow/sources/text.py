"""Values read as text: files opened as text (decompressed as they are read), JSON values
as text, and numbers and times read from text, as the tabular readers share them."""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import re
import zipfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final

import pyarrow as pa

from poiflow.errors import CorruptInputError

__all__ = [
    "COMPRESSED",
    "NUMBER",
    "LazyRow",
    "Rows",
    "Wanted",
    "as_text",
    "batched_rows",
    "degrees",
    "file_encoding",
    "is_utf8",
    "not_a_time",
    "open_bytes",
    "open_text",
    "read_number",
    "read_time",
    "strings_table",
    "zip_member",
]

# Text files may come compressed (a vendor's feed.csv.gz); Arrow reads them as it goes.
COMPRESSED: Final = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd", ".zip": "zip"}
"""Suffixes of compressed text files, and how each is read (a ``.zip`` holds one file)."""
# A decimal number as a coordinate is written (ASCII digits: RE2's \d and Python's differ).
NUMBER: Final = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def is_utf8(encoding: str) -> bool:
    """Whether ``encoding`` names UTF-8, however it is spelled (``utf8``, ``UTF_8``)."""
    return encoding.lower().replace("_", "-") in ("utf-8", "utf8")


def open_text(file: Path, encoding: str, newline: str | None = None) -> IO[str]:
    """The file as text, decompressed as it is read where its name says so; as UTF-8, a
    byte-order mark at its start (Windows tools write one) is not part of the text."""
    if is_utf8(encoding):
        encoding = "utf-8-sig"
    if file.suffix.lower() == ".zip":
        return io.TextIOWrapper(_zip_member(file), encoding=encoding, newline=newline)
    if file.suffix.lower() in COMPRESSED:
        stream = pa.input_stream(file, compression=COMPRESSED[file.suffix.lower()])
        return io.TextIOWrapper(stream, encoding=encoding, newline=newline)
    return file.open(encoding=encoding, newline=newline)


_UTF16_MARKS: Final = (b"\xff\xfe", b"\xfe\xff")


def file_encoding(file: Path, encoding: str) -> str:
    """``encoding``, or UTF-16 where that is UTF-8 (the default) and the file begins with
    UTF-16's byte-order mark: what a spreadsheet saves as "Unicode text"."""
    if not is_utf8(encoding) or not file.is_file():
        return encoding
    try:
        with open_bytes(file) as handle:
            start = handle.read(2)
    except (OSError, zipfile.BadZipFile, pa.ArrowInvalid):
        return encoding  # its reader says what is wrong with it
    return "utf-16" if start in _UTF16_MARKS else encoding


def open_bytes(file: Path) -> IO[bytes]:
    """The file's bytes, decompressed as they are read where its name says so, without a
    UTF-8 byte-order mark at its start."""
    suffix = file.suffix.lower()
    raw: Any
    if suffix == ".zip":
        raw = _zip_member(file)
    elif suffix in COMPRESSED:
        raw = pa.input_stream(file, compression=COMPRESSED[suffix])
    else:
        raw = file.open("rb")
    buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw)
    if buffered.peek(3)[:3] == _BOM:
        buffered.read(3)
    return buffered


_BOM: Final = b"\xef\xbb\xbf"


def zip_member(file: Path) -> str:
    """The one file a ``.zip`` input holds (what archivers add beside it, ``__MACOSX/`` and
    names starting with ``.``, left out).

    Raises:
        CorruptInputError: It is not a zip archive, or holds no file or several.
    """
    try:
        with zipfile.ZipFile(file) as archive:
            names = [
                info.filename
                for info in archive.infolist()
                if not info.is_dir()
                and not info.filename.startswith("__MACOSX/")
                and not Path(info.filename).name.startswith(".")
            ]
    except (zipfile.BadZipFile, OSError) as exc:
        raise CorruptInputError(f"not a readable zip archive ({exc})", path=file) from exc
    if len(names) != 1:
        listed = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        raise CorruptInputError(
            f"a .zip input holds one file; this one holds {len(names)}"
            + (f" ({listed}): unzip it and give the files, or their folder" if names else ""),
            path=file,
        )
    return names[0]


def _zip_member(file: Path) -> IO[bytes]:
    """The bytes of the one file a ``.zip`` input holds, decompressed as they are read."""
    member = zip_member(file)
    # The archive closed at once: its file stays open while the member is read, and
    # closes with it.
    with zipfile.ZipFile(file) as archive:
        return archive.open(member)


def as_text(value: Any) -> str | None:
    """A JSON value as text: strings as they are, numbers as Python writes them, lists and
    objects as JSON."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value, ensure_ascii=False)


def strings_table(rows: list[dict[str, str | None]], columns: dict[str, None]) -> pa.Table:
    """A table of text columns, one per name in ``columns``, of rows that may lack some."""
    return pa.table(
        {name: pa.array([row.get(name) for row in rows], pa.string()) for name in columns}
    )


def read_number(field: str, value: str | None, issues: list[str]) -> float | None:
    """A decimal number (a comma as the decimal mark where there is no point), or None with
    an issue where the text is not one; a latitude or longitude may be written in degrees,
    minutes and seconds too (:func:`degrees`)."""
    if value is None:
        return None
    fixed = value if "." in value else value.replace(",", ".")
    if NUMBER.fullmatch(fixed):
        return float(fixed)
    if (read := degrees(field, value)) is not None:
        return read
    issues.append(f"{field}: '{value}' is not a number")
    return None


# Degrees, minutes and seconds, or degrees and minutes, with the hemisphere's letter before
# or after: "60°10′05.7″N", "N 60° 10.095'", "60 10 5.7 N", "60 deg 10 min N", "60.1699 N".
_DEGREES: Final = re.compile(
    r"(?P<before>[NSEW])?\s*(?P<sign>[+-])?"
    r"(?P<d>[0-9]{1,3}(?:[.,][0-9]+)?)\s*(?P<mark>[°º˚]|deg(?![a-z]))?\s*"
    r"(?:(?P<m>[0-9]{1,2}(?:[.,][0-9]+)?)\s*(?:['′’]|min(?![a-z]))?\s*)?"
    r"(?:(?P<s>[0-9]{1,2}(?:[.,][0-9]+)?)\s*(?:[\"″”]|''|′′|sec(?![a-z]))?\s*)?"
    r"(?P<after>[NSEW])?",
    re.IGNORECASE,
)
_HEMISPHERES: Final = {"lat": "NS", "lon": "EW"}


def degrees(field: str, value: str) -> float | None:
    """A latitude (``field`` "lat") or longitude ("lon") written in degrees, minutes and
    seconds, or degrees and decimal minutes, as a GPS or an older survey writes it
    ("60°10′05.7″N", "N 60° 10.095'", "24 56 37.7 E"; south and west are negative): decimal
    degrees. None where it is not one: no degree sign nor hemisphere letter (two bare
    numbers could be anything), the other axis's letter, minutes or seconds of 60 or more.

    >>> degrees("lat", "60°10′05.7″N"), degrees("lon", "W 0° 7.5'")
    (60.16825, -0.125)
    >>> degrees("lat", "24°56′37.7″E") is None
    True
    """
    read = _DEGREES.fullmatch(value.strip())
    if read is None or field not in _HEMISPHERES:
        return None
    letters = [h.upper() for h in (read["before"], read["after"]) if h]
    if len(letters) > 1 or not (letters or read["mark"]):
        return None
    if letters and letters[0] not in _HEMISPHERES[field]:
        return None
    d, m, s = (float((read[k] or "0").replace(",", ".")) for k in ("d", "m", "s"))
    if m >= 60 or s >= 60 or (read["s"] and not read["m"]):
        return None
    negative = read["sign"] == "-" or (letters and letters[0] in "SW")
    return round((-1 if negative else 1) * (d + m / 60 + s / 3600), 7)


def read_time(value: str | None, issues: list[str]) -> datetime | None:
    """An ISO 8601 date or time (UTC where it names no zone), or None with an issue."""
    if value is None:
        return None
    try:
        stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        issues.append(not_a_time(value))
        return None
    stamp = stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
    with contextlib.suppress(OverflowError):  # a zone at the ends of the calendar
        stamp = stamp.astimezone(UTC)
    # In UTC and to the millisecond, as the timestamp column holds it.
    return stamp.replace(microsecond=stamp.microsecond // 1000 * 1000)


def not_a_time(value: str) -> str:
    return f"update_time: '{value}' is not an ISO 8601 date or time"


# A row of text read lazily: its origin, and a function that gives the row (or None), the
# reason it has none and its raw text; called only for the batches a reader wants.
LazyRow = tuple[str, Callable[[], tuple[dict[str, str | None] | None, str, str]]]
# What a tabular reader yields: a table of a batch's rows, their origins, rejected rows.
Rows = Iterator[tuple[pa.Table, list[str], list[tuple[str, str, str]]]]
# Which batches of a file (numbered from 0) a reader is to turn into rows; None: all.
Wanted = Callable[[int], bool] | None
_NOTHING: Final = pa.table({})


def batched_rows(items: Iterator[LazyRow], batch_size: int, wanted: Wanted) -> Rows:
    """The items in batches of ``batch_size`` (rejected ones count), as a table of text
    rows where ``wanted`` says a batch is, and as nothing where it is not: a worker turns
    only its own share into rows. A file of no items yields one empty batch."""
    number = 0
    while True:
        batch = itertools.islice(items, batch_size)
        if wanted is None or wanted(number):
            table, origins, rejected, count = _rows(batch)
        else:
            table, origins, rejected, count = _NOTHING, [], [], sum(1 for _ in batch)
        if count == 0:
            break
        yield table, origins, rejected
        number += 1
    if number == 0:
        yield _NOTHING, [], []


def _rows(
    batch: Iterator[LazyRow],
) -> tuple[pa.Table, list[str], list[tuple[str, str, str]], int]:
    """A batch's rows of text, origins and rejected rows, and how many items it held."""
    rows: list[dict[str, str | None]] = []
    origins: list[str] = []
    rejected: list[tuple[str, str, str]] = []
    columns: dict[str, None] = {}
    count = 0
    for origin, read in batch:
        count += 1
        row, reason, raw = read()
        if row is None:
            rejected.append((origin, reason, raw))
            continue
        rows.append(row)
        origins.append(origin)
        columns.update(dict.fromkeys(row))
    return strings_table(rows, columns), origins, rejected, count
