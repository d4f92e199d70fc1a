"""Object storage against a real S3-compatible server (S3Proxy, started on 127.0.0.1 by
``scripts/s3_server.sh``): inputs, models and outputs at ``s3://`` URIs on both engines,
and readable errors with nothing half-written when the server or credentials are wrong."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from poiflow.errors import OutputError
from poiflow.pipeline import Pipeline
from poiflow.serving.responses import Refusal
from poiflow.storage import fetch, put_folder, remote_fingerprint

from ..conftest import ONE_SPARK, ROOT, free_port, poiflow, script_server
from ..serving.test_api import TOKEN, get, post, serving
from ..sources.overture_fixture import place, write_overture
from .staging import STAGED_TABLES, run_both_through, served_and_taken_up

HELSINKI = ROOT / "examples" / "helsinki"
pytestmark = [pytest.mark.s3, pytest.mark.server, ONE_SPARK]  # a Spark test too


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """An S3 server on 127.0.0.1 for this module; yields the folder of its buckets (a
    bucket is a folder there). The AWS variables point every client at it."""
    folder = tmp_path_factory.mktemp("s3")
    with script_server("s3", folder) as printed:
        env = dict(line.split("=", 1) for line in printed.split())
        saved = {key: os.environ.get(key) for key in env}
        os.environ.update(env)
        (folder / "data" / "poi").mkdir()
        try:
            yield folder / "data"
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def test_a_pipeline_reads_inputs_and_a_model_from_s3_and_writes_its_outputs_there(
    s3: Path, tmp_path: Path
) -> None:
    bucket = s3 / "poi"
    (bucket / "in").mkdir()
    for name in ("Helsinki.osm.pbf", "vendor_feed.csv"):
        shutil.copy(HELSINKI / name, bucket / "in" / name)
    model = ROOT / "src" / "poiflow" / "conflate" / "models" / "default.json.gz"
    shutil.copy(model, bucket / "model.json.gz")
    local = Pipeline.from_yaml(HELSINKI / "pipeline.yaml")
    remote = local.replace(
        {
            "sources": [
                {"path": "s3://poi/in/Helsinki.osm.pbf"},
                {"path": "s3://poi/in/vendor_feed.csv"},
            ],
            "stages": {"score": {"model": "s3://poi/model.json.gz"}},
            "cache": str(tmp_path / "cache"),
            "tracking": None,
        }
    )
    expected = local.run(tmp_path / "local", use_cache=False, track=False)
    result = remote.run("s3://poi/out", track=False)
    assert result.uploaded_to == "s3://poi/out"
    assert expected.output is not None
    for name in ("places", "membership"):
        got = pl.read_parquet(bucket / "out" / f"{name}.parquet")
        assert got.equals(pl.read_parquet(expected.output / f"{name}.parquet")), name
    assert (bucket / "out" / "run.json").exists()
    assert (bucket / "out" / "report.html").stat().st_size > 10_000
    # A second run fetches nothing again (same objects), and reuses every stage.
    downloads = sorted(p.name for p in (tmp_path / "cache" / "downloads").iterdir())
    again = remote.run("s3://poi/out", track=False)
    assert again.ran == []
    assert sorted(p.name for p in (tmp_path / "cache" / "downloads").iterdir()) == downloads
    # A changed object is fetched anew: the inputs' fingerprint changes, and so the run.
    before = remote_fingerprint("s3://poi/in/vendor_feed.csv")
    with (bucket / "in" / "vendor_feed.csv").open("a", encoding="utf-8") as feed:
        feed.write("\n")
    assert remote_fingerprint("s3://poi/in/vendor_feed.csv") != before
    assert remote.run("s3://poi/out", track=False).ran[0] == "ingest"


def test_conflate_cli_from_and_to_s3(s3: Path, tmp_path: Path) -> None:
    shutil.copy(HELSINKI / "vendor_feed.csv", s3 / "poi" / "feed.csv")
    done = poiflow("conflate", "s3://poi/feed.csv", "-o", "s3://poi/cli-out")
    assert done.returncode == 0, done.stderr
    assert "s3://poi/cli-out" in done.stderr
    places = pq.read_table(s3 / "poi" / "cli-out" / "places.parquet")
    assert places.num_rows > 100


def test_conflate_cli_reads_an_overture_release_folder_from_s3(s3: Path, tmp_path: Path) -> None:
    # A release lays out its places as Parquet parts under theme=places/type=place/.
    parts = s3 / "poi" / "release" / "theme=places" / "type=place"
    parts.mkdir(parents=True)
    write_overture(
        parts / "part-00000.zstd.parquet",
        [place("a", "Kahvila Aalto", 24.9400, 60.1700), place("b", "Kirjakauppa", 24.95, 60.17)],
    )
    write_overture(
        parts / "part-00001.zstd.parquet", [place("c", "Kahvila Aalto", 24.9401, 60.1700)]
    )
    done = poiflow("conflate", "s3://poi/release/theme=places", "-o", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    members = pq.read_table(tmp_path / "out" / "membership.parquet").to_pylist()
    assert sorted((m["source"], m["id"]) for m in members) == [
        ("overture", "a"),
        ("overture", "b"),
        ("overture", "c"),
    ]
    place_of = {m["id"]: m["place_id"] for m in members}
    assert place_of["a"] == place_of["c"] != place_of["b"]


@pytest.mark.parametrize(
    ("env", "where", "says"),
    [
        ({"AWS_SECRET_ACCESS_KEY": "wrong"}, "s3://poi/feed.csv", "check the credentials"),
        ({"AWS_ENDPOINT_URL": "http://127.0.0.1:9"}, "s3://poi/feed.csv", "cannot be reached"),
        ({}, "s3://poi/no-such-feed.csv", "no such object"),
    ],
)
def test_storage_errors_name_the_uri_and_the_cause_and_write_nothing(
    s3: Path, tmp_path: Path, env: dict[str, str], where: str, says: str
) -> None:
    shutil.copy(HELSINKI / "vendor_feed.csv", s3 / "poi" / "feed.csv")
    out = tmp_path / "out"
    done = poiflow("conflate", where, "-o", str(out), **env)
    assert done.returncode == 1
    assert where in done.stderr
    assert says in done.stderr
    assert "Traceback" not in done.stderr
    assert not out.exists()


def test_an_output_bucket_that_is_not_there_is_refused_before_any_work(
    s3: Path, tmp_path: Path
) -> None:
    shutil.copy(HELSINKI / "vendor_feed.csv", s3 / "poi" / "feed.csv")
    done = poiflow("conflate", "s3://poi/feed.csv", "-o", "s3://no-bucket/out")
    assert done.returncode == 1
    assert "s3://no-bucket/out" in done.stderr
    assert "no bucket 'no-bucket'" in done.stderr
    assert "records" not in done.stderr  # refused before ingest read anything


def test_a_failed_upload_takes_back_what_it_put(
    s3: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "outputs"
    folder.mkdir()
    for name in ("a.parquet", "b.parquet", "c.parquet", "run.json"):
        (folder / name).write_bytes(b"x" * 100)
    real_open = Path.open

    def failing_open(self: Path, *args: object, **kwargs: object) -> object:
        if self.name == "c.parquet":
            raise OSError("disk gone")
        return real_open(self, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(Path, "open", failing_open)
    with pytest.raises(OutputError, match="nothing was left there"):
        put_folder(folder, "s3://poi/half")
    left = list((s3 / "poi" / "half").rglob("*.parquet")) if (s3 / "poi" / "half").exists() else []
    assert left == []
    assert not (s3 / "poi" / "half" / "run.json").exists()


def test_fetch_a_prefix_keeps_its_files_in_place(s3: Path, tmp_path: Path) -> None:
    (s3 / "poi" / "release" / "part").mkdir(parents=True)
    (s3 / "poi" / "release" / "membership.parquet").write_bytes(b"m")
    (s3 / "poi" / "release" / "part" / "x.txt").write_bytes(b"x")
    local = fetch("s3://poi/release", tmp_path)
    assert (local / "membership.parquet").read_bytes() == b"m"
    assert (local / "part" / "x.txt").read_bytes() == b"x"


def test_a_shapefile_is_fetched_with_the_files_read_with_it(s3: Path, tmp_path: Path) -> None:
    import pyarrow as pa
    import shapely
    from pyogrio.raw import write_arrow

    from poiflow.sources import open_source
    from poiflow.sources.base import companion_suffixes

    folder = s3 / "poi" / "toimittaja"
    folder.mkdir(parents=True)
    table = pa.table(
        {
            "id": ["T1", "T2"],
            "name": ["Kahvila Kulma", "Baari"],
            "geometry": pa.array(
                shapely.to_wkb(shapely.points([385792.0, 386000.0], [6672144.0, 6672300.0])),
                pa.binary(),
            ),
        }
    )
    write_arrow(table, folder / "kohteet.shp", driver="ESRI Shapefile", geometry_name="geometry",
                geometry_type="Point", crs="EPSG:3067")  # fmt: skip
    (folder / "muut.dbf").write_bytes(b"another layer's attributes")
    uri = "s3://poi/toimittaja/kohteet.shp"
    local = fetch(uri, tmp_path, companion_suffixes(uri))
    assert sorted(p.name for p in local.parent.iterdir() if not p.name.startswith(".")) == [
        "kohteet.cpg", "kohteet.dbf", "kohteet.prj", "kohteet.shp", "kohteet.shx",
    ]  # fmt: skip
    rows = [r for b in open_source(local).batches() for r in b.records.to_pylist()]
    assert [(r["id"], r["names"]["primary"]) for r in rows] == [
        ("T1", "Kahvila Kulma"),
        ("T2", "Baari"),
    ]
    assert rows[0]["lat"] == pytest.approx(60.17, abs=0.01)  # reprojected from its .prj


@pytest.mark.spark
@pytest.mark.slow
def test_spark_reads_the_stage_tables_through_s3a_with_the_same_results(
    s3: Path, tmp_path: Path
) -> None:
    pytest.importorskip("pyspark")
    expected, result = run_both_through("s3://poi/staging", "s3://poi/spark-out", tmp_path)
    assert result.uploaded_to == "s3://poi/spark-out"
    # The stage tables, and nothing else: the scoring shards' files are gone again.
    staged_files = sorted(p.name for p in (s3 / "poi" / "staging").rglob("*") if p.is_file())
    assert staged_files == STAGED_TABLES
    for name in ("places", "membership", "pairs"):
        got = pl.read_parquet(s3 / "poi" / "spark-out" / f"{name}.parquet")
        assert got.equals(pl.read_parquet(expected / f"{name}.parquet")), name


@pytest.mark.spark
def test_spark_reads_a_staged_copy_not_the_local_file(s3: Path, tmp_path: Path) -> None:
    pytest.importorskip("pyspark")
    from poiflow.engines.spark import SparkEngine

    table = tmp_path / "t.parquet"
    pl.DataFrame({"x": [3, 1, 2]}).write_parquet(table)
    engine = SparkEngine("local[1]", partitions=1, staging="s3://poi/direct")
    uri = engine.staged(str(table))
    assert uri.startswith("s3a://poi/direct/")
    table.unlink()  # whatever Spark reads now, it reads through s3a
    rows = engine.collect(engine.session.read.parquet(uri)).column("x").to_pylist()
    assert sorted(rows) == [1, 2, 3]


def test_a_server_answers_from_an_output_in_s3_and_takes_up_a_later_run_there(
    s3: Path,
    conflated: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    releases = served_and_taken_up("s3://poi/served/out", conflated, tmp_path)

    # Storage that cannot be reached: the last release goes on answering, said once.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="poiflow.serving.releases"):
        assert not releases.take_up()
        assert not releases.take_up()
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1
    assert said[0].startswith("cannot look for a later run: s3://poi/served/out/run.json:")


def test_poiflow_serve_s3_answers_from_a_copy_and_takes_no_labels(
    s3: Path, conflated: Path, tmp_path: Path
) -> None:
    uri = "s3://poi/served-cli/out"
    put_folder(conflated, uri)
    some = pq.read_table(conflated / "places.parquet", columns=["id"])["id"][0].as_py()
    with serving(uri, TOKEN, "--watch", "0", logs=tmp_path) as base:
        status, health = get(base, "/health")
        assert (status, health["places"]) == (200, len(pq.read_table(conflated / "places.parquet")))
        assert get(base, f"/places/{some}")[0] == 200
        status, story = get(base, f"/places/{some}/story")
        assert status == 200, story
        label = {
            "left_source": "source_a",
            "left_id": "A1",
            "right_source": "source_b",
            "right_id": "B1",
            "label": "match",
        }
        status, body = post(base, "/labels", label)
        assert status == 409
        assert (
            "answers from a copy of s3://poi/served-cli/out" in Refusal.model_validate(body).detail
        )
    port = str(free_port())
    refused = poiflow("serve", "s3://poi/nothing-here", "--port", port)
    assert refused.returncode == 1
    assert "s3://poi/nothing-here" in refused.stderr
    assert "no such object or prefix" in refused.stderr
    web = poiflow("serve", "https://example.org/out", "--port", port)
    assert web.returncode == 1
    assert "a web address is not served" in " ".join(web.stderr.split())


def test_a_server_pod_of_an_output_in_s3_waits_for_its_first_run(
    s3: Path, conflated: Path, tmp_path: Path
) -> None:
    """``poiflow deploy k8s --serve``'s init container for an output in object storage,
    run here: it waits while the output's ``run.json`` is missing, and returns once a
    run has uploaded it."""
    from poiflow.pipeline.kubernetes import KubernetesOptions, k8s_manifests

    uri = "s3://poi/deployed/out"
    remote = Pipeline.from_yaml(HELSINKI / "pipeline.yaml").replace({"output": uri})
    serve = k8s_manifests(remote, KubernetesOptions(serve=1))[2]
    (init,) = serve["spec"]["template"]["spec"]["initContainers"]
    command = [sys.executable if init["command"][0] == "python" else init["command"][0]]
    command += init["command"][1:]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as waiting:
        try:
            assert waiting.stdout is not None
            assert waiting.stdout.readline() == f"waiting for the pipeline to write {uri}\n"
            put_folder(conflated, uri)
            assert waiting.wait(timeout=30) == 0
        finally:
            waiting.kill()
