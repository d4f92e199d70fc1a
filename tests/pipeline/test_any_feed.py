"""Whole runs of feeds broken in any way: values no feed should hold, bytes changed, lines
doubled, dropped or cut, rows of the wrong width, headers renamed. Each run must either
refuse, saying what and where, or account for every record it read, with nothing on the
terminal; never a crash or a record lost."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from poiflow.errors import PoiflowError, StageFailedError
from poiflow.pipeline import conflate

# Values a feed should not hold, in any column: out of range, not numbers, not text,
# too long, markup, control characters, formats no parser knows.
ODD = [
    b"",
    b" ",
    b"nan",
    b"inf",
    b"-inf",
    b"1e400",
    b"91",
    b"-181",
    b"-0.0",
    b"12345678901234567890",
    b"+999999999999999999999",
    b"40,123",
    b'"',
    b'a"b',
    b"\x00",
    b"\xff\xfe",
    b"\xc3",
    b"\r",
    b"\t",
    "🙂🙂".encode(),
    "名前".encode(),
    "ｅｘａｍｐｌｅ".encode(),
    "\u202e".encode(),
    b"x" * 600,
    b"http://",
    b"http://[::1",
    b"https://exa mple.com",
    b"++358",
    b"Mo-Fr 25:00-99:00",
    b"NULL",
    b"-",
    b"POINT (1e400 1)",
    b"<b>x</b>",
    b"\xef\xbb\xbf",
    b"\x1b[31m",
]
HEADERS = [b"", b"name", b"lat", b"ID", b" name", b"x", b"geometry", b"source", b"address"]

# What may go wrong in a feed's rows, and (rarer) in its header. An odd value is drawn as
# its place in ODD, so that a failing example prints short.
IN_ROWS = st.one_of(
    st.tuples(
        st.just("value"),
        st.integers(1, 10**6),
        st.integers(0, 20),
        st.integers(0, len(ODD) - 1),
        st.integers(1, 30),
    ),
    st.tuples(st.just("width"), st.integers(1, 10**6), st.booleans(), st.integers(0, len(ODD) - 1)),
    st.tuples(
        st.just("line"),
        st.integers(1, 10**6),
        st.sampled_from(["double", "drop", "blank", "commas", "quote", "header"]),
    ),
)
IN_FILE = st.one_of(
    st.tuples(
        st.just("byte"),
        st.integers(0, 10**9),
        st.integers(0, 255),
        st.sampled_from(["set", "insert", "cut"]),
    ),
    st.tuples(st.just("cut"), st.floats(0, 1)),
    st.tuples(
        st.just("header"),
        st.integers(0, 20),
        st.sampled_from(["rename", "drop", "add", "turn"]),
        st.sampled_from(HEADERS),
    ),
)
ROWS_BROKEN = st.lists(IN_ROWS, max_size=8)
FILE_BROKEN = st.tuples(ROWS_BROKEN, st.lists(IN_FILE, max_size=2)).map(lambda p: p[0] + p[1])


def mutated(lines: list[bytes], mutation: tuple[Any, ...]) -> list[bytes]:
    """``lines`` (a CSV's, the header first) changed by one ``mutation``."""
    kind, *how = mutation
    lines = list(lines)
    if kind == "value":  # in one column of a run of lines (a feed's habit, or a chain's)
        start = how[0] % (len(lines) - 1) + 1 if len(lines) > 1 else 0
        for at in range(start, min(start + how[3], len(lines))):
            cells = lines[at].split(b",")
            cells[how[1] % len(cells)] = ODD[how[2]]
            lines[at] = b",".join(cells)
    elif kind == "width":
        at = how[0] % (len(lines) - 1) + 1 if len(lines) > 1 else 0
        cells = lines[at].split(b",")
        if how[1]:
            cells.append(ODD[how[2]])
        elif len(cells) > 1:
            del cells[-1]
        lines[at] = b",".join(cells)
    elif kind == "byte":
        blob = bytearray(b"\n".join(lines))
        if blob:
            at = how[0] % len(blob)
            if how[2] == "set":
                blob[at] = how[1]
            elif how[2] == "insert":
                blob.insert(at, how[1])
            else:
                del blob[at : at + 1 + how[1] % 30]
        return bytes(blob).split(b"\n")
    elif kind == "line" and len(lines) > 1:
        at = how[0] % (len(lines) - 1) + 1
        extra = {"blank": b"", "commas": b",,,,", "quote": b'"unterminated', "header": lines[0]}
        if how[1] == "double":
            lines.insert(at, lines[at])
        elif how[1] == "drop":
            del lines[at]
        else:
            lines.insert(at, extra[how[1]])
    elif kind == "cut":
        blob = b"\n".join(lines)
        return blob[: int(len(blob) * how[0])].split(b"\n")
    elif kind == "header":
        cells = lines[0].split(b",")
        at = how[0] % len(cells)
        if how[1] == "rename":
            cells[at] = how[2]
        elif how[1] == "drop" and len(cells) > 1:
            del cells[at]
        elif how[1] == "add":
            cells.append(b"extra")
        else:
            cells.reverse()
        lines[0] = b",".join(cells)
    return lines


FEEDS: tuple[str, str] = ("source_a.csv", "source_b.csv")


def first_lines(folder: Path, count: int = 120) -> dict[str, list[bytes]]:
    """The header and first ``count`` records of two of a generated world's sources."""
    return {name: (folder / name).read_bytes().split(b"\n")[: count + 1] for name in FEEDS}


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(FILE_BROKEN, ROWS_BROKEN, st.lists(IN_ROWS, max_size=3))
def test_a_run_of_feeds_broken_any_way_refuses_by_name_or_accounts_for_every_record(
    conflated: Path,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    first: list[tuple[Any, ...]],
    second: list[tuple[Any, ...]],
    both: list[tuple[Any, ...]],
) -> None:
    printed: list[object] = []
    monkeypatch.setattr(sys, "unraisablehook", printed.append)
    folder = tmp_path_factory.mktemp("any_feed")
    inputs = []
    feeds = first_lines(conflated.parent / "sources")
    for (name, lines), mutations in zip(feeds.items(), (first, second), strict=True):
        for mutation in both + mutations:  # what both do, then each its own
            lines = mutated(lines, mutation)
        (folder / name).write_bytes(b"\n".join(lines))
        inputs.append(folder / name)
    out = folder / "out"
    capfd.readouterr()
    refused: PoiflowError | None = None
    try:
        conflate(inputs, out, workers=1)
    except PoiflowError as exc:
        refused = exc
    finally:
        said = capfd.readouterr()
        assert "Traceback" not in said.out + said.err
        assert printed == []
    if refused is not None:
        # Refused: said plainly, naming the file, and nothing written. A StageFailedError
        # is what the runner makes of an error poiflow did not foresee.
        event(f"refused: {type(refused).__name__}")
        assert not isinstance(refused, StageFailedError), refused
        assert "Traceback" not in str(refused)
        assert str(folder) in str(refused), refused
        assert not out.exists()
        return
    event("ran")
    counts = json.loads((out / "run.json").read_text(encoding="utf-8"))["counts"]
    assert counts["read"] == counts["records"] + counts["quarantined"]
    membership = pq.read_table(out / "membership.parquet")
    assert membership.num_rows == counts["records"]
    keys = set(zip(*(membership.column(c).to_pylist() for c in ("source", "id")), strict=True))
    assert len(keys) == membership.num_rows  # each record once
    places = pq.read_table(out / "places.parquet")
    assert set(places.column("id").to_pylist()) == set(membership.column("place_id").to_pylist())
    held = pq.read_table(out / "quarantine.parquet")
    records_held = held.filter(pc.equal(held.column("scope"), "record"))
    assert records_held.num_rows == counts["quarantined"]
    assert all(reason for reason in records_held.column("reason").to_pylist())
