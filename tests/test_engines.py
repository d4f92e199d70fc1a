"""The local engine's pools: results in chunk order whatever the parts, and the server that
workers are forked from can be stopped and comes back for the next pool."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from poiflow.engines import FORKED_WORKERS, prepare_workers, release_workers, run_partitioned

CHUNKS = 7


def _squares(part: int, parts: int) -> Iterator[tuple[int, tuple[int, int]]]:
    """Every ``parts``-th chunk from ``part``: its square and the process that made it."""
    for chunk in range(part, CHUNKS, parts):
        yield chunk, (chunk * chunk, os.getpid())


def _pandas_seen(part: int, parts: int) -> Iterator[tuple[int, tuple[bool, bool]]]:
    """Whether pyarrow's conversion of a list brought pandas in, and whether this process
    can import it."""
    import pyarrow as pa

    pa.array([1, 2])
    brought = "pandas" in sys.modules
    try:
        importlib.import_module("pandas.api.types")
    except ModuleNotFoundError:
        importable = False
    else:
        importable = True
    for chunk in range(part, 2, parts):
        yield chunk, (brought, importable)


def _uneven(part: int, parts: int) -> Iterator[tuple[int, tuple[int, int]]]:
    """Chunks 0-5 split between the parts, then the last part's own from 100 on (as an OSM
    extract's ways come after its nodes), and one part that yields nothing at all."""
    if part == 0:
        return
    for chunk in range(part - 1, 6, parts - 1):
        yield chunk, (chunk, part)
    if part == parts - 1:
        for chunk in (100, 101, 250):
            yield chunk, (chunk, part)


def test_chunks_with_gaps_and_parts_of_any_share_come_in_order() -> None:
    alone = list(run_partitioned(_uneven, 1))
    assert alone == []  # one part of one: it is part 0, which yields nothing
    pooled = list(run_partitioned(_uneven, 3))
    assert [chunk for chunk, _ in pooled] == [0, 1, 2, 3, 4, 5, 100, 101, 250]
    assert [part for _, part in pooled] == [1, 2, 1, 2, 1, 2, 2, 2, 2]


def test_the_workers_cannot_import_what_the_task_never_uses() -> None:
    release_workers()  # a server of its own, which has not imported pandas before it forks
    prepare_workers([__name__])
    finders = list(sys.meta_path)
    kept_out = list(run_partitioned(_pandas_seen, 2, unused=["pandas"]))
    assert kept_out == [(False, False), (False, False)]
    # Without it, pyarrow's first conversion imports pandas in each worker ...
    assert list(run_partitioned(_pandas_seen, 2)) == [(True, True), (True, True)]
    # ... and with one part the task runs here, where nothing is kept out.
    assert list(run_partitioned(_pandas_seen, 1, unused=["pandas"])) == [(True, True)] * 2
    assert sys.meta_path == finders
    release_workers()


def test_results_come_in_chunk_order_whatever_the_parts() -> None:
    alone = list(run_partitioned(_squares, 1))
    pooled = list(run_partitioned(_squares, 3))
    assert [r for r, _ in alone] == [r for r, _ in pooled] == [c * c for c in range(CHUNKS)]
    assert {pid for _, pid in alone} == {os.getpid()}
    assert os.getpid() not in {pid for _, pid in pooled}
    assert len({pid for _, pid in pooled}) == 3


@pytest.mark.skipif(not FORKED_WORKERS, reason="workers are spawned on this platform")
@pytest.mark.parametrize("wait", [True, False])
def test_the_server_stops_and_comes_back(wait: bool) -> None:
    prepare_workers([__name__])
    list(run_partitioned(_squares, 2))
    me = psutil.Process()
    running = len(me.children())
    release_workers(wait=wait)
    if not wait:  # told to stop: it ends on its own time
        deadline = time.monotonic() + 20
        while len(me.children()) != running - 1 and time.monotonic() < deadline:
            time.sleep(0.02)
    assert len(me.children()) == running - 1  # the server, with its imports, is gone
    assert [r for r, _ in run_partitioned(_squares, 2)] == [c * c for c in range(CHUNKS)]
    release_workers()


@pytest.mark.skipif(not FORKED_WORKERS, reason="workers are spawned on this platform")
def test_a_pool_started_right_after_a_stop_on_the_side_gets_a_new_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Starting a worker checks that the server runs, then asks it for a fork. A stop on a
    # side thread that lands in between ends the server under the request ("unexpected
    # EOF"). Here the side thread starts late and the gap is wide, so that it does.
    from multiprocessing import forkserver

    from poiflow.engines import local

    checked, stop = forkserver.ForkServer.ensure_running, local._stop_server

    def check_slowly(self: forkserver.ForkServer) -> None:
        checked(self)
        time.sleep(0.6)

    def stop_late() -> None:
        time.sleep(0.2)
        stop()

    prepare_workers([__name__])
    list(run_partitioned(_squares, 2))
    monkeypatch.setattr(forkserver.ForkServer, "ensure_running", check_slowly)
    monkeypatch.setattr(local, "_stop_server", stop_late)
    release_workers(wait=False)
    assert [r for r, _ in run_partitioned(_squares, 2)] == [c * c for c in range(CHUNKS)]
    release_workers()


UNGUARDED = """
import sys
import poiflow
from poiflow.sources import FrameSource

print("top level ran")
rows = [{"id": str(i), "name": f"Kahvila {i}", "lat": 60.1, "lon": 24.9} for i in range(400)]
report = poiflow.ingest(
    [FrameSource(rows, "feed")], sys.argv[1], batch_size=50, workers=2
)
print("read", report.read)
"""

GUARDED_OWN_SOURCE = """
import sys
import poiflow
from poiflow.sources import FrameSource


class Doubled(FrameSource):
    \"\"\"A source class of the script's own: workers need the script to unpickle it.\"\"\"


if __name__ == "__main__":
    rows = [{"id": str(i), "name": f"Kahvila {i}"} for i in range(400)]
    report = poiflow.ingest([Doubled(rows, "feed")], sys.argv[1], batch_size=50, workers=2)
    print("read", report.read)
"""


@pytest.mark.skipif(not FORKED_WORKERS, reason="workers are spawned here, not forked")
@pytest.mark.parametrize(("script", "top_level_runs"), [(UNGUARDED, 1), (GUARDED_OWN_SOURCE, 0)])
def test_a_script_that_runs_poiflow_is_not_run_again_by_its_workers(
    tmp_path: Path, script: str, top_level_runs: int
) -> None:
    """Workers do not run the script's top level again (a script without a ``__main__``
    guard would start ingests of its own in each), unless the task needs something the
    script defines."""
    path = tmp_path / "script.py"
    path.write_text(script)
    done = subprocess.run(
        [sys.executable, str(path), str(tmp_path / "out.parquet")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("top level ran") == top_level_runs
    assert done.stdout.strip().endswith("read 400")
