"""Snapshot folders: numbered, made current whole or not at all, the oldest dropped; and
each record's last edit written and read back."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from poiflow.errors import OutputError
from poiflow.streaming.snapshots import (
    CURRENT,
    KEPT_SNAPSHOTS,
    current_snapshot,
    publish_snapshot,
    read_stream,
    stream_table,
)

from ..conftest import killed_outright


def _writes(text: str) -> Callable[[Path], None]:
    def write(folder: Path) -> None:
        folder.mkdir()
        (folder / "what.txt").write_text(text)

    return write


def test_snapshots_are_numbered_made_current_and_the_oldest_dropped(tmp_path: Path) -> None:
    state = tmp_path / "state"
    assert current_snapshot(state) is None
    made = [publish_snapshot(state, _writes(f"batch {i}")) for i in range(4)]
    assert [p.name for p in made] == [f"snapshot-{i:08d}" for i in range(4)]
    assert current_snapshot(state) == made[-1]
    assert (made[-1] / "what.txt").read_text() == "batch 3"
    kept = sorted(p.name for p in state.glob("snapshot-*"))
    assert kept == [p.name for p in made[-KEPT_SNAPSHOTS:]]
    assert not list(state.glob(".*"))  # no staging folder or pointer left behind


def test_a_failed_write_leaves_the_previous_snapshot_current(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = publish_snapshot(state, _writes("good"))

    def fails(folder: Path) -> None:
        folder.mkdir()
        (folder / "half.txt").write_text("half")
        raise OSError("disk full")

    with pytest.raises(OutputError, match="disk full"):
        publish_snapshot(state, fails)
    assert current_snapshot(state) == first
    assert (state / CURRENT).read_text().strip() == first.name
    assert sorted(p.name for p in state.iterdir()) == [CURRENT, first.name]


def test_a_stream_killed_while_writing_a_snapshot_leaves_it_for_the_next_to_remove(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    first = publish_snapshot(state, _writes("good"))
    pid = killed_outright(
        "import os; from pathlib import Path\n"
        "from poiflow.streaming.snapshots import publish_snapshot\n"
        "def dies(folder):\n"
        "    folder.mkdir(); (folder / 'half.txt').write_text('half'); os.kill(os.getpid(), 9)\n"
        f"publish_snapshot(Path({str(state)!r}), dies)\n"
    )
    left = state / f".snapshot-00000001.{pid}.tmp"
    assert (left / "half.txt").exists()
    assert current_snapshot(state) == first

    second = publish_snapshot(state, _writes("next"))
    assert sorted(p.name for p in state.iterdir()) == [CURRENT, first.name, second.name]


_keys = st.tuples(st.sampled_from(["osm", "vendor", "edits"]), st.text(min_size=1, max_size=6))
_stamps = st.tuples(st.integers(0, 2**53), st.text(max_size=8))


@given(
    alive=st.lists(_keys, unique=True, max_size=12),
    deleted=st.sets(_keys, max_size=6),
    stamps=st.dictionaries(_keys, _stamps, max_size=20),
)
def test_the_last_edits_read_back_as_written(
    tmp_path_factory: pytest.TempPathFactory,
    alive: list[tuple[str, str]],
    deleted: set[tuple[str, str]],
    stamps: dict[tuple[str, str], tuple[int, str]],
) -> None:
    deleted -= set(alive)  # a record is alive or deleted, never both
    path = tmp_path_factory.mktemp("stream") / "stream.parquet"
    pq.write_table(stream_table(alive, deleted, stamps), path)
    read, gone = read_stream(path)
    assert gone == deleted
    # Every record written keeps its stamp; one with none (never edited) has none.
    assert read == {k: stamps[k] for k in [*alive, *deleted] if k in stamps}
