"""The ingest workers' server started ahead, from the command line alone."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from poiflow import ingest
from poiflow.engines import FORKED_WORKERS, release_workers
from poiflow.pipeline.workers import GROUP_MIN_BYTES, start_early

pytestmark = pytest.mark.skipif(not FORKED_WORKERS, reason="workers are spawned here")


def _servers() -> int:
    """How many workers' servers this process has started (and not stopped); a child that
    has ended (another test's, not yet reaped) is none."""
    found = 0
    for child in psutil.Process().children():
        with contextlib.suppress(psutil.Error):
            found += "multiprocessing.forkserver" in " ".join(child.cmdline())
    return found


def _servers_soon(expected: int, seconds: float = 20.0) -> int:
    """``_servers()`` once it is ``expected`` or ``seconds`` have passed: a server just
    started shows its command line only once it has replaced the forked copy of this
    process (until then it reads as this process's)."""
    deadline = time.monotonic() + seconds
    while (found := _servers()) != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


@pytest.fixture
def no_server() -> Iterator[None]:
    release_workers()
    yield
    release_workers()


@pytest.fixture
def inputs(tmp_path: Path) -> tuple[str, str]:
    """Two files that add up to the size a pool of workers reads (only their size counts)."""
    names = []
    for name in ("a.csv", "b.csv"):
        path = tmp_path / name
        with path.open("wb") as handle:
            handle.truncate(GROUP_MIN_BYTES // 2)
        names.append(str(path))
    return names[0], names[1]


@pytest.mark.usefixtures("no_server")
@pytest.mark.parametrize(
    "words",
    [
        ["serve", "{a}", "{b}"],  # not a command that reads inputs
        ["conflate", "{a}"],  # too little input
        ["conflate", "{a}", "{b}", "--engine", "spark"],
        ["conflate", "{a}", "{b}", "--engine=spark"],
        ["conflate", "{a}", "{b}", "--help"],
        ["conflate", "{a}", "{a}/missing", "-o", "out"],
        [],
    ],
)
def test_no_server_unless_the_command_will_read_enough(
    words: list[str], inputs: tuple[str, str]
) -> None:
    a, b = inputs
    argv = [w.format(a=a, b=b) for w in words]
    assert start_early(argv) is False
    assert _servers() == 0


@pytest.mark.usefixtures("no_server")
def test_a_server_started_ahead_is_stopped_by_ingest_even_when_unused(
    inputs: tuple[str, str], tmp_path: Path
) -> None:
    a, b = inputs
    assert start_early(["conflate", a, b, "--engine", "local", "-o", str(tmp_path / "out")])
    assert _servers_soon(1) == 1  # importing the ingest module meanwhile
    feed = tmp_path / "small.csv"
    feed.write_text("id,name,lat,lon\n1,Cafe Regatta,60.18,24.91\n", encoding="utf-8")
    report = ingest([feed], tmp_path / "places.parquet")  # read in this process
    assert report.valid == 1
    assert _servers_soon(0) == 0  # it is told to stop; its exit is not waited for


def _chunks(part: int, parts: int) -> Iterator[tuple[int, int]]:
    """A partitioned task with far more chunks than a worker may hold ahead."""
    for chunk in range(part, 10_000, parts):
        yield chunk, chunk


@pytest.mark.usefixtures("no_server")
def test_a_worker_no_pool_knows_of_does_not_hold_up_the_next_pool() -> None:
    import multiprocessing
    import multiprocessing.process
    import threading

    from poiflow.engines import run_partitioned

    # A pool left open, its workers blocked handing over their next chunks; and forgotten
    # by this process (as a pool whose generator was dropped, or whose server went away).
    # Each worker holds the server's "alive" pipe, so the server cannot stop by itself.
    left = run_partitioned(_chunks, 2, ahead=1)
    assert next(left) == 0
    forgotten = multiprocessing.active_children()
    assert len(forgotten) == 2
    for worker in forgotten:
        multiprocessing.process._children.discard(worker)  # type: ignore[attr-defined]
    try:
        stopping = threading.Thread(target=release_workers, daemon=True)
        stopping.start()
        stopping.join(30)
        assert not stopping.is_alive(), "stopping the workers' server waited for its workers"
        # A new pool starts (its own server), and runs to the end.
        assert list(run_partitioned(_chunks, 2)) == list(range(10_000))
    finally:
        for worker in forgotten:
            worker.kill()
            worker.join(5)
        left.close()
