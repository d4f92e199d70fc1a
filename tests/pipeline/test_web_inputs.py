"""Inputs at ``http(s)://`` addresses, fetched from a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import functools
import http.server
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from poiflow.errors import InputError, OutputError
from poiflow.pipeline import conflate
from poiflow.storage import fetch

from ..conftest import VENDOR_FEED, killed_outright

pytestmark = pytest.mark.server


class _Logged(http.server.SimpleHTTPRequestHandler):
    """Python's file server, remembering each request (method and path)."""

    requests: list[tuple[str, str]]

    def log_message(self, format: str, *args: object) -> None:
        self.requests.append((self.command, self.path))


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[str, Path, list[tuple[str, str]]]]:
    """The address of a folder served over HTTP, the folder, and the requests made."""
    folder = tmp_path / "site"
    folder.mkdir()
    requests: list[tuple[str, str]] = []
    handler = type("Handler", (_Logged,), {"requests": requests})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(folder))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", folder, requests
    finally:
        server.shutdown()
        server.server_close()


def test_a_feed_at_a_web_address_is_conflated_as_its_file(
    site: tuple[str, Path, list[tuple[str, str]]], tmp_path: Path
) -> None:
    address, folder, requests = site
    (folder / "feeds").mkdir()
    (folder / "feeds" / "vendor_feed.csv").write_bytes(VENDOR_FEED.read_bytes())
    url = f"{address}/feeds/vendor_feed.csv"
    conflate([url], tmp_path / "web", workers=1)
    conflate([VENDOR_FEED], tmp_path / "local", workers=1)
    # The same places, named after the file the address ends in.
    for name in ("membership.parquet", "pairs.parquet"):
        assert (tmp_path / "web" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()
    assert set(pq.read_table(tmp_path / "web" / "membership.parquet")["source"].to_pylist()) == {
        "vendor_feed"
    }

    # Fetched once; asked again, the unchanged file costs a HEAD request only.
    downloads = tmp_path / "downloads"
    first = fetch(url, downloads)
    requests.clear()
    assert fetch(url, downloads) == first
    assert requests == [("HEAD", "/feeds/vendor_feed.csv")]
    # Changed on the server (its time and length): fetched again.
    changed = folder / "feeds" / "vendor_feed.csv"
    changed.write_bytes(VENDOR_FEED.read_bytes() + b"V9999,Uusi Kahvila,60.17,24.94\n")
    os.utime(changed, (1_900_000_000, 1_900_000_000))
    again = fetch(url, downloads)
    assert again != first
    assert again.read_bytes() == changed.read_bytes()


def test_a_fetch_killed_outright_leaves_its_part_for_the_next_fetch_to_remove(
    site: tuple[str, Path, list[tuple[str, str]]], tmp_path: Path
) -> None:
    address, folder, _ = site
    (folder / "vendor_feed.csv").write_bytes(VENDOR_FEED.read_bytes())
    url, downloads = f"{address}/vendor_feed.csv", tmp_path / "downloads"
    pid = killed_outright(
        "import os, poiflow.storage as storage\n"
        "def dies(url, target, required):\n"
        "    target.write_bytes(b'half'); os.kill(os.getpid(), 9)\n"
        "storage._download = dies\n"
        f"storage.fetch({url!r}, storage.Path({str(downloads)!r}))\n"
    )
    (left,) = downloads.iterdir()
    assert left.name.startswith(".tmp-")
    assert left.name.endswith(f"-{pid}")
    live = downloads / f".tmp-other-{os.getppid()}"  # a fetch still at work
    live.mkdir()

    fetched = fetch(url, downloads)
    assert fetched.read_bytes() == VENDOR_FEED.read_bytes()
    assert not left.exists()
    assert sorted(p.name for p in downloads.iterdir()) == sorted([live.name, fetched.parent.name])


def test_a_shapefile_at_a_web_address_comes_with_its_parts(
    site: tuple[str, Path, list[tuple[str, str]]], tmp_path: Path
) -> None:
    address, folder, _ = site
    for suffix in (".shp", ".dbf", ".shx"):  # no .prj on the server: skipped, not an error
        (folder / f"kohteet{suffix}").write_bytes(suffix.encode())
    got = fetch(f"{address}/kohteet.shp", tmp_path / "d", (".dbf", ".shx", ".prj"))
    assert sorted(p.name for p in got.parent.iterdir() if not p.name.startswith(".")) == [
        "kohteet.dbf",
        "kohteet.shp",
        "kohteet.shx",
    ]


def test_what_a_web_address_cannot_do_is_said(
    site: tuple[str, Path, list[tuple[str, str]]], tmp_path: Path
) -> None:
    address, _, _ = site
    with pytest.raises(InputError, match=r"cannot read: HTTP 404") as missing:
        conflate([f"{address}/nothing.csv"], tmp_path / "out", workers=1)
    assert missing.value.path == f"{address}/nothing.csv"
    assert not (tmp_path / "d").exists()
    with pytest.raises(InputError, match=r"cannot read: .*refused"):
        fetch("http://127.0.0.1:9/feed.csv", tmp_path / "d")  # nothing listens on port 9
    assert list((tmp_path / "d").iterdir()) == []  # nothing half-fetched left
    with pytest.raises(OutputError, match="a web address is read, not written"):
        conflate([VENDOR_FEED], f"{address}/out", workers=1)
