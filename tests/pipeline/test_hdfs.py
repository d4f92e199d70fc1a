"""HDFS against a real one (Hadoop's MiniDFSCluster, a NameNode and a DataNode started on
127.0.0.1 by ``scripts/hdfs_server.sh``): inputs, models and outputs at ``hdfs://`` URIs on
both engines, and readable errors with nothing half-written when HDFS is not there."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from poiflow.errors import InputError
from poiflow.pipeline import Pipeline
from poiflow.storage import exists, fetch, filesystem, put_folder, remote_fingerprint

from ..conftest import ONE_SPARK, ROOT, free_port, poiflow, script_server
from .staging import STAGED_TABLES, run_both_through, served_and_taken_up

HELSINKI = ROOT / "examples" / "helsinki"
pytestmark = [pytest.mark.hdfs, pytest.mark.server, ONE_SPARK]  # a Spark test too


@pytest.fixture(scope="module")
def hdfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An HDFS on 127.0.0.1 for this module; yields its URI (``hdfs://127.0.0.1:PORT``)."""
    with script_server("hdfs", tmp_path_factory.mktemp("hdfs")) as uri:
        yield uri


def upload(local: Path, uri: str) -> None:
    """Put one local file at ``uri`` (with HDFS's own client, as a user would)."""
    fs, path = filesystem(uri)
    with local.open("rb") as source, fs.open_output_stream(path) as sink:
        sink.write(source.read())


def read_table(uri: str) -> pl.DataFrame:
    fs, path = filesystem(uri)
    return pl.from_arrow(pq.read_table(path, filesystem=fs))  # type: ignore[return-value]


def test_a_pipeline_reads_inputs_and_a_model_from_hdfs_and_writes_its_outputs_there(
    hdfs: str, tmp_path: Path
) -> None:
    for name in ("Helsinki.osm.pbf", "vendor_feed.csv"):
        upload(HELSINKI / name, f"{hdfs}/in/{name}")
    model = ROOT / "src" / "poiflow" / "conflate" / "models" / "default.json.gz"
    upload(model, f"{hdfs}/models/default.json.gz")
    local = Pipeline.from_yaml(HELSINKI / "pipeline.yaml")
    remote = local.replace(
        {
            "sources": [
                {"path": f"{hdfs}/in/Helsinki.osm.pbf"},
                {"path": f"{hdfs}/in/vendor_feed.csv"},
            ],
            "stages": {"score": {"model": f"{hdfs}/models/default.json.gz"}},
            "cache": str(tmp_path / "cache"),
            "tracking": None,
        }
    )
    expected = local.run(tmp_path / "local", use_cache=False, track=False)
    result = remote.run(f"{hdfs}/out", track=False)
    assert result.uploaded_to == f"{hdfs}/out"
    assert expected.output is not None
    for name in ("places", "membership"):
        got = read_table(f"{hdfs}/out/{name}.parquet")
        assert got.equals(pl.read_parquet(expected.output / f"{name}.parquet")), name
    assert exists(f"{hdfs}/out/run.json")
    assert exists(f"{hdfs}/out/report.html")
    # Again: nothing is fetched anew and every stage is reused.
    downloads = sorted(p.name for p in (tmp_path / "cache" / "downloads").iterdir())
    assert remote.run(f"{hdfs}/out", track=False).ran == []
    assert sorted(p.name for p in (tmp_path / "cache" / "downloads").iterdir()) == downloads
    # A file written again is fetched again (HDFS's modification time), even at the same
    # size; its stages are reused while its content is the same, and run when it is not.
    before = remote_fingerprint(f"{hdfs}/in/vendor_feed.csv")
    time.sleep(0.01)
    upload(HELSINKI / "vendor_feed.csv", f"{hdfs}/in/vendor_feed.csv")
    assert remote_fingerprint(f"{hdfs}/in/vendor_feed.csv") != before
    assert remote.run(f"{hdfs}/out", track=False).ran == []
    assert len(list((tmp_path / "cache" / "downloads").iterdir())) == len(downloads) + 1
    changed = tmp_path / "vendor_feed.csv"
    lines = (HELSINKI / "vendor_feed.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    changed.write_text("".join(lines[:1] + lines[2:]), encoding="utf-8")  # a record fewer
    upload(changed, f"{hdfs}/in/vendor_feed.csv")
    assert remote.run(f"{hdfs}/out", track=False).ran[0] == "ingest"
    assert read_table(f"{hdfs}/out/membership.parquet").height == (
        pl.read_parquet(expected.output / "membership.parquet").height - 1
    )


def test_conflate_cli_from_and_to_hdfs(hdfs: str) -> None:
    upload(HELSINKI / "vendor_feed.csv", f"{hdfs}/cli/feed.csv")
    done = poiflow("conflate", f"{hdfs}/cli/feed.csv", "-o", f"{hdfs}/cli/out")
    assert done.returncode == 0, done.stderr
    assert f"{hdfs}/cli/out" in done.stderr
    assert read_table(f"{hdfs}/cli/out/places.parquet").height > 100


def test_hdfs_errors_name_the_uri_and_the_cause_and_write_nothing(
    hdfs: str, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    missing = f"{hdfs}/no/such/feed.csv"
    done = poiflow("conflate", missing, "-o", str(out))
    assert done.returncode == 1
    assert missing in done.stderr
    assert "no such object" in done.stderr
    assert not out.exists()
    # No NameNode there: one line at once, not minutes of the client's retries.
    nowhere = f"hdfs://127.0.0.1:{free_port()}/feed.csv"
    started = time.monotonic()
    done = poiflow("conflate", nowhere, "-o", str(out))
    assert time.monotonic() - started < 60
    assert done.returncode == 1
    assert nowhere in done.stderr
    assert "cannot be reached" in done.stderr
    assert "Traceback" not in done.stderr
    assert not out.exists()
    with pytest.raises(InputError, match="cannot be reached"):
        fetch(nowhere, tmp_path)


def test_a_server_answers_from_an_output_in_hdfs_and_takes_up_a_later_run_there(
    hdfs: str, conflated: Path, tmp_path: Path
) -> None:
    served_and_taken_up(f"{hdfs}/served/out", conflated, tmp_path)


def test_a_folder_goes_up_whole_and_comes_back_in_place(hdfs: str, tmp_path: Path) -> None:
    folder = tmp_path / "release"
    (folder / "part").mkdir(parents=True)
    (folder / "membership.parquet").write_bytes(b"m" * 1000)
    (folder / "part" / "x.txt").write_bytes(b"x")
    (folder / "run.json").write_text("{}")
    put_folder(folder, f"{hdfs}/release")
    local = fetch(f"{hdfs}/release", tmp_path / "downloads")
    assert (local / "membership.parquet").read_bytes() == b"m" * 1000
    assert (local / "part" / "x.txt").read_bytes() == b"x"
    assert (local / "run.json").read_text() == "{}"


@pytest.mark.spark
@pytest.mark.slow
def test_spark_reads_the_stage_tables_from_hdfs_with_the_same_results(
    hdfs: str, tmp_path: Path
) -> None:
    pytest.importorskip("pyspark")
    expected, result = run_both_through(f"{hdfs}/staging", f"{hdfs}/spark-out", tmp_path)
    assert result.uploaded_to == f"{hdfs}/spark-out"
    fs, base = filesystem(f"{hdfs}/staging")
    listed = fs.get_file_info(pafs.FileSelector(base, recursive=True))
    # The stage tables, and nothing else: the scoring shards' files are gone again.
    staged_files = sorted(Path(i.path).name for i in listed if i.type == pafs.FileType.File)
    assert staged_files == STAGED_TABLES
    for name in ("places", "membership", "pairs"):
        got = read_table(f"{hdfs}/spark-out/{name}.parquet")
        assert got.equals(pl.read_parquet(expected / f"{name}.parquet")), name
