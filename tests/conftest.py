"""Fixtures shared by every test area."""

from __future__ import annotations

import contextlib
import gc
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parent.parent
HELSINKI = ROOT / "examples" / "helsinki" / "Helsinki.osm.pbf"
VENDOR_FEED = ROOT / "examples" / "helsinki" / "vendor_feed.csv"
SHARED_DATA = ROOT.parent / "shared" / "data"

# CI explores a fixed, larger set of examples (a red CI must be reproducible); a developer's
# run explores new random ones each time.
settings.register_profile(
    "ci",
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=100, deadline=None)
# A long hunt for counterexamples before a change lands: pytest --hypothesis-profile deep
settings.register_profile(
    "deep", max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

# The suite's Spark drivers (in-process and in the CLI's processes) live for seconds to a
# minute: the JIT's first tier alone (C1) makes a cold one's session and first jobs about
# a third quicker (benchmarks/RESULTS.md). Spark's launcher adds SPARK_SUBMIT_OPTS to the
# driver's JVM; nothing else reads it. A user's run keeps the JVM's own choice.
os.environ.setdefault("SPARK_SUBMIT_OPTS", "-XX:TieredStopAtLevel=1")


def one_worker(name: str) -> pytest.MarkDecorator:
    """Run the tests marked so on one pytest-xdist worker (``make test`` distributes them
    with ``--dist loadgroup``): a module's server, started by a module-scoped fixture, then
    starts once rather than once on each worker that draws one of its tests."""
    return pytest.mark.xdist_group(name)


_UNGROUPED = pytest.StashKey[str]()


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On a worker of ``--dist loadgroup``, see that pytest-xdist marked the grouped tests
    (it suffixes a test's id with ``@GROUP``; pytest 9.2 ignores that, and the groups would
    be spread silently, each server started on both workers): where it did not, each of
    them fails with the reason (an error raised here would not reach the terminal)."""
    if not getattr(config.option, "loadgroup", False):
        return
    if any(i.get_closest_marker("xdist_group") and "@" not in i.nodeid for i in items):
        config.stash[_UNGROUPED] = (
            f"pytest-xdist did not group the tests marked xdist_group under pytest "
            f"{pytest.__version__}: install the pytest requirements/constraints.txt names"
        )


def pytest_runtest_setup(item: pytest.Item) -> None:
    reason = item.config.stash.get(_UNGROUPED, None)
    if reason and item.get_closest_marker("xdist_group"):
        pytest.fail(reason, pytrace=False)


# The tests that run Spark in pytest's own process share one warm driver: a cold one
# spends about 25 s in its session and first jobs, each worker that draws a Spark test.
ONE_SPARK = one_worker("spark")


@contextlib.contextmanager
def script_server(name: str, folder: Path) -> Iterator[str]:
    """A server started by the project's own ``scripts/NAME_server.sh start FOLDER PORT``
    on a free port of 127.0.0.1; yields what the script printed (where to reach it) and
    stops it (``stop FOLDER``) afterwards. A start that fails is tried once more on another
    port: a server's second port (PORT+1) may have been taken meanwhile by a parallel test."""
    script = ROOT / "scripts" / f"{name}_server.sh"
    for attempt in (1, 2):
        started = subprocess.run(
            ["bash", str(script), "start", str(folder), str(free_port())],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if started.returncode == 0:
            break
        subprocess.run(["bash", str(script), "stop", str(folder)], check=False)
        if attempt == 2:
            pytest.fail(f"scripts/{name}_server.sh did not start: {started.stderr[-3000:]}")
    try:
        yield started.stdout.strip()
    finally:
        # Clients the tests let go of are closed first (Kafka's close when collected):
        # else they keep trying the stopped server and log each try.
        gc.collect()
        subprocess.run(["bash", str(script), "stop", str(folder)], check=False)


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def killed_outright(code: str) -> int:
    """Run Python ``code``, which kills its own process with SIGKILL (as the kernel's
    out-of-memory killer or ``kill -9`` would), and return that process's id."""
    process = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)
    assert process.wait(timeout=120) == -9, "the code did not die of SIGKILL"
    return process.pid


def poiflow(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``poiflow ARGS`` in a fresh process, with ``env`` added to this one's environment."""
    return subprocess.run(
        [sys.executable, "-m", "poiflow", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env, "COLUMNS": "200"},
        timeout=300,
    )


@pytest.fixture(scope="session")
def helsinki_pbf() -> Path:
    """The bundled OSM extract of central Helsinki (ODbL, © OpenStreetMap contributors)."""
    return HELSINKI


@pytest.fixture(scope="session")
def small_pbf() -> Path:
    """The small OSM extract from shared data (a dozen POIs), when present."""
    path = SHARED_DATA / "osm" / "test.osm.pbf"
    if not path.is_file():
        pytest.skip("shared/data/osm/test.osm.pbf is not present")
    return path


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's Chromium; the test set-up installs it when it is missing."""
    import shutil
    import subprocess

    found = shutil.which("chromium")
    if found is None:
        subprocess.run(["bash", str(ROOT / "scripts" / "install_chromium.sh")], check=True)
        found = shutil.which("chromium")
    assert found is not None, "scripts/install_chromium.sh did not install chromium"
    return found


@pytest.fixture
def browser_page(chromium: str) -> Iterator[Any]:
    """A fresh page in headless Chromium (driven by Playwright); its console errors and
    uncaught exceptions are collected in ``page.poiflow_errors``. Map tiles are optional
    and this machine is offline: a tile that fails to load is not counted."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        errors: list[str] = []

        def console(message: Any) -> None:
            tile = "tile.openstreetmap.org" in str(message.location.get("url", ""))
            if message.type == "error" and not tile:
                errors.append(message.text)

        page.on("console", console)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.poiflow_errors = errors
        yield page
        browser.close()


@pytest.fixture(scope="session")
def conflated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A conflated output of a small generated world (its sources beside it, in
    ``../sources``), made once per session for the tests that need the real thing
    (records, membership, model): matching, fuzzing, streaming. Tests must not change its
    outputs (serving it adds a search index, and the test servers' logs)."""
    from poiflow.generate import generate
    from poiflow.pipeline import conflate

    folder = tmp_path_factory.mktemp("conflated")
    made = generate(1500, 3, 21, folder / "sources")
    conflate(made.sources, folder / "out", workers=1)
    return folder / "out"


@pytest.fixture(scope="session")
def decided(conflated: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The world of ``conflated`` run again with a person's decisions against the run:
    two records of one place said to be two, two places of one record said to be one,
    and a record the run lacks said to be one place with a record alone."""
    import polars as pl
    import pyarrow.parquet as pq

    from poiflow.pipeline import conflate

    membership = pl.DataFrame(pq.read_table(conflated / "membership.parquet"))
    places = membership.with_columns(pl.len().over("place_id").alias("len"))
    places = places.sort("place_id", "source", "id")
    shared = places.filter(pl.col("len") == 3).group_by("place_id", maintain_order=True).head(2)
    a, b = shared.head(2).select("source", "id").rows()
    alone = places.filter(pl.col("len") == 1).select("source", "id").rows()
    (c, d), y = alone[:2], alone[2]
    folder = tmp_path_factory.mktemp("decided")
    decisions = folder / "decisions.csv"
    decisions.write_text(
        "left_source,left_id,right_source,right_id,label\n"
        f"{a[0]},{a[1]},{b[0]},{b[1]},different\n{c[0]},{c[1]},{d[0]},{d[1]},match\n"
        f"app,report-9,{y[0]},{y[1]},match\n"
    )
    sources = sorted((conflated.parent / "sources").glob("source_*.csv"))
    conflate(sources, folder / "out", workers=1, decisions=decisions)
    gold = conflated.parent / "sources" / "gold.csv"
    return {"out": folder / "out", "gold": gold, "a": a, "b": b, "c": c, "d": d, "y": y}


def moved_to_town_centres(feed: Path, towns: list[Path], out: Path, every: int = 5) -> list[str]:
    """Write ``feed`` (a flat place file) to ``out`` with every ``every``-th record that
    has a town and coordinates moved to its town's centre: the mean point of the town's
    records in the ``towns`` files, to 6 decimals, as a geocoder places an address it
    cannot find. Returns the ids of the records moved."""
    import polars as pl

    point = [pl.col("lat").cast(pl.Float64), pl.col("lon").cast(pl.Float64)]
    centres = (
        pl.concat([pl.read_csv(t, infer_schema_length=0).select("city", *point) for t in towns])
        .drop_nulls()
        .group_by("city")
        .agg(
            pl.col("lat").mean().round(6).alias("c_lat"),
            pl.col("lon").mean().round(6).alias("c_lon"),
        )
    )
    frame = pl.read_csv(feed, infer_schema_length=0)
    located = frame.filter(pl.col("city").is_not_null() & pl.col("lat").is_not_null())
    ids = located.gather_every(every)["id"]
    moved = pl.col("id").is_in(ids.implode())
    frame.join(centres, on="city", how="left", maintain_order="left").with_columns(
        lat=pl.when(moved).then(pl.col("c_lat").cast(pl.String)).otherwise("lat"),
        lon=pl.when(moved).then(pl.col("c_lon").cast(pl.String)).otherwise("lon"),
    ).select(frame.columns).write_csv(out)
    return ids.to_list()
