"""Every pipeline run is logged to MLflow (a SQLite store here, a real tracking server in a
server test), and ``poiflow compare`` puts runs side by side."""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import polars as pl
import pytest
from mlflow.tracking import MlflowClient

from poiflow.conflate.evaluate import read_gold
from poiflow.errors import ConfigError, OutputError, ServerUnavailableError
from poiflow.generate import generate
from poiflow.pipeline import Pipeline
from poiflow.pipeline.evaluation import score_golden
from poiflow.pipeline.tracking import better, chart, chart_panels, compare_runs, read_runs

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tracked")
    generate(200, 3, 9, folder / "data")
    return folder / "data"


def make_pipeline(data: Path, folder: Path, tracking: str = "") -> Pipeline:
    sources = "".join(f"  - path: {p}\n" for p in sorted(data.glob("source_*")))
    path = folder / "pipeline.yaml"
    path.write_text(
        f"name: tracked\nsources:\n{sources}gold: {data / 'gold.csv'}\n"
        f"output: out\ncache: cache\n{tracking}"
    )
    return Pipeline.from_yaml(path)


def test_each_run_logs_params_metrics_and_artifacts(data: Path, tmp_path: Path) -> None:
    pipeline = make_pipeline(data, tmp_path)
    first = pipeline.run()
    assert pipeline.tracking_uri == f"sqlite:///{tmp_path / 'mlflow.db'}"
    second = pipeline.replace({"stages": {"cluster": {"threshold": 0.9}}}).run()
    assert first.run_id is not None
    assert second.run_id is not None
    assert first.run_id != second.run_id

    client = MlflowClient(pipeline.tracking_uri)
    run = client.get_run(second.run_id)
    assert run.data.params["stages.cluster.threshold"] == "0.9"
    assert run.data.params["stages.score.model"] == "default"
    assert 0.5 < run.data.metrics["f1"] <= 1.0
    assert run.data.metrics["records"] > 400
    assert "seconds.cluster" in run.data.metrics
    assert "bcubed_f1" in run.data.metrics
    # What each quality check flagged, as run.json has it; a check that passed at 0.
    checks = json.loads((pipeline.output / "run.json").read_text())["checks"]
    assert run.data.metrics["checks.warnings"] == checks["warnings"]
    assert run.data.metrics["checks.errors"] == checks["errors"]
    assert checks["passed"]
    assert checks["failed"]
    for name in checks["passed"]:
        assert run.data.metrics[f"checks.{name}"] == 0
    for name, flagged in checks["failed"].items():
        assert run.data.metrics[f"checks.{name}"] == flagged > 0
    assert run.data.tags["poiflow.reused"] == "ingest,block,score"
    assert run.data.tags["poiflow.ran"] == "cluster,merge,evaluate,report"
    assert client.get_experiment(run.info.experiment_id).name == "tracked"
    artifacts = {a.path for a in client.list_artifacts(second.run_id)}
    assert {"pipeline.yaml", "run.json", "report.html", "model.json.gz"} <= artifacts
    em = pipeline.replace({"stages": {"score": {"model": "em"}}}).run(tmp_path / "em")
    assert em.run_id is not None
    fitted = {a.path for a in client.list_artifacts(em.run_id)}
    assert "model.json.gz" in fitted
    # Artifacts live beside the store, not wherever the command was started.
    assert (tmp_path / "mlartifacts").is_dir()

    comparison = compare_runs(read_runs(pipeline.tracking_uri, [first.run_id, second.run_id[:10]]))
    assert [key for key, _ in comparison.params] == ["stages.cluster.threshold"]
    metrics = dict(comparison.metrics)
    assert metrics["records"][0] == metrics["records"][1]
    assert metrics["places"][1] != metrics["places"][0]
    # The chart's panel of checks: each check that flagged a place in either run, by its
    # count in each; none that passed in both.
    panels = dict(chart_panels(comparison))
    flagged = panels["places flagged by checks"]
    assert flagged == sorted(flagged)
    assert {f"checks.{name}" for name in checks["failed"]} <= set(flagged)
    for key in flagged:
        assert any(metrics[key])
    assert "checks.errors" not in flagged
    assert list(panels) == ["quality", "counts", "places flagged by checks", "seconds"]


def test_the_golden_records_accuracy_is_tracked_and_compared(data: Path, tmp_path: Path) -> None:
    pipeline = make_pipeline(data, tmp_path, f"gold_places: {data / 'gold_places.csv'}\n")
    plain = pipeline.run()
    trusted = pipeline.replace({"stages": {"merge": {"trust": {"source_c": 5.0}}}}).run(
        tmp_path / "trusted"
    )
    assert plain.run_id is not None
    assert trusted.run_id is not None
    client = MlflowClient(pipeline.tracking_uri)
    logged = client.get_run(plain.run_id).data.metrics
    # The figures poiflow evaluate --gold-places gives of the same output.
    golden = score_golden(
        pl.read_parquet(plain.output / "membership.parquet"),
        read_gold(data / "gold.csv"),
        plain.output,
        data / "gold_places.csv",
    )
    for row in golden.table.iter_rows(named=True):
        key = row["attribute"].replace(" ", "_")
        assert logged[f"golden.{key}.accuracy"] == pytest.approx(row["accuracy"]), key
    assert 0 <= logged["golden.location.calibration_error"] <= 1
    comparison = compare_runs(read_runs(pipeline.tracking_uri, [plain.run_id, trusted.run_id]))
    assert "stages.merge.trust.source_c" in dict(comparison.params)
    # Trusting the source whose names are worst costs the golden names dearly.
    plain_names, trusted_names = dict(comparison.metrics)["golden.name.accuracy"]
    assert trusted_names is not None
    assert plain_names is not None
    assert trusted_names < plain_names - 0.05
    drawn = chart(comparison, tmp_path / "golden.png")  # with a panel of golden accuracy
    assert drawn.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Only merge and what follows ran again: the truth is part of evaluate's key.
    assert (
        client.get_run(trusted.run_id).data.tags["poiflow.reused"] == "ingest,block,score,cluster"
    )


def test_the_true_places_need_the_gold_file(data: Path, tmp_path: Path) -> None:
    path = tmp_path / "pipeline.yaml"
    path.write_text(
        f"name: x\nsources:\n  - path: {data / 'source_a.csv'}\n"
        f"gold_places: {data / 'gold_places.csv'}\n"
    )
    with pytest.raises(ConfigError, match="gold_places needs gold too"):
        Pipeline.from_yaml(path)


def test_a_rerun_that_changes_nothing_is_the_run_it_repeats(data: Path, tmp_path: Path) -> None:
    pipeline = make_pipeline(data, tmp_path)
    first = pipeline.run()
    again = pipeline.run()
    assert again.ran == []
    assert again.run_id == first.run_id
    assert again.repeats_run
    assert not first.repeats_run
    run_json = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run_json["mlflow"] == {
        "run_id": first.run_id,
        "tracking_uri": pipeline.tracking_uri,
        "repeats_logged_run": True,
    }
    client = MlflowClient(pipeline.tracking_uri)
    experiment = client.get_experiment_by_name("tracked")
    assert experiment is not None
    assert len(client.search_runs([experiment.experiment_id])) == 1
    # Outputs elsewhere, or a stage that runs: a run of its own.
    assert pipeline.run(tmp_path / "elsewhere").run_id != first.run_id
    assert pipeline.run(from_stage="report").run_id != first.run_id


def test_cli_compare_prints_the_changes_and_draws_a_chart(data: Path, tmp_path: Path) -> None:
    pipeline = make_pipeline(data, tmp_path)
    pipeline.run()
    pipeline.replace({"stages": {"merge": {"recency_weight": 0.0}}}).run()
    chart = tmp_path / "chart.png"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "poiflow",
            "compare",
            "--pipeline",
            str(pipeline.path),
            "--last",
            "2",
            "--chart",
            str(chart),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        check=True,
    )
    assert "stages.merge.recency_weight" in result.stderr
    assert "f1" in result.stderr
    # A check's row only where it flagged places in a run; the totals always; counts as
    # whole numbers.
    rows = {
        line.split()[0]: [cell for cell in line.split()[1:] if cell.replace(",", "").isdigit()]
        for line in result.stderr.splitlines()
        if line.startswith(" checks.")
    }
    assert {"checks.errors", "checks.warnings"} <= set(rows)
    assert len(rows) > 2
    for key, counts in rows.items():
        assert len(counts) == 2  # one a run
        assert key in ("checks.errors", "checks.warnings") or counts != ["0", "0"]
    assert rows["checks.errors"] == ["0", "0"]
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    command = [sys.executable, "-m", "poiflow", "compare", "--pipeline", str(pipeline.path)]
    seconds = subprocess.run(
        [*command, "--last", "2", "--chart", str(chart), "--metrics", "seconds."],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        check=True,
    )
    assert "seconds.merge" in seconds.stderr
    assert "bcubed_f1" not in seconds.stderr
    nothing = subprocess.run(
        [*command, "--last", "2", "--metrics", "golden"], capture_output=True, text=True
    )
    assert nothing.returncode == 1
    assert "no metric of these runs has 'golden' in its name" in nothing.stderr


def test_a_store_that_refuses_the_run_is_an_error_after_the_outputs_are_written(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that is there at the start (it answers /health) and fails at the end."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "3")

    class Failing(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/health" else 503)
            self.end_headers()

        def do_POST(self) -> None:
            self.do_GET()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Failing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        uri = f"http://127.0.0.1:{server.server_address[1]}"
        pipeline = make_pipeline(data, tmp_path, f"tracking: {{uri: '{uri}'}}\n")
        with pytest.raises(OutputError, match=f"could not log the run to MLflow at {uri}"):
            pipeline.run()
    finally:
        server.shutdown()
        server.server_close()
    assert (tmp_path / "out" / "run.json").exists()
    assert pipeline.run(track=False).run_id is None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.server
def test_runs_log_to_a_real_tracking_server(data: Path, tmp_path: Path) -> None:
    port = _free_port()
    mlflow = Path(sys.executable).parent / "mlflow"
    server = subprocess.Popen(
        [
            str(mlflow),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{tmp_path / 'server.db'}",
            "--artifacts-destination",
            str(tmp_path / "server-artifacts"),
            "--workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        uri = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.5)
        pipeline = make_pipeline(data, tmp_path, f"tracking: {{uri: '{uri}', experiment: e2e}}\n")
        result = pipeline.run()
        assert result.run_id is not None
        run = MlflowClient(uri).get_run(result.run_id)
        assert run.data.metrics["f1"] > 0.5
        assert {a.path for a in MlflowClient(uri).list_artifacts(result.run_id)} >= {"run.json"}
        assert any((tmp_path / "server-artifacts").rglob("run.json"))
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_tracking_server_that_cannot_be_reached_is_said_before_the_run(
    data: Path, tmp_path: Path
) -> None:
    """Before: the run ran whole, then MLflow retried for about four minutes."""
    from poiflow.pipeline.tracking import compare

    nowhere = "http://127.0.0.1:1"
    pipeline = make_pipeline(data, tmp_path, f"tracking: {{uri: '{nowhere}'}}\n")
    said = r"cannot reach the MLflow tracking server at http://127\.0\.0\.1:1 \(.*refused"
    started = time.monotonic()
    with pytest.raises(ServerUnavailableError, match=said):
        pipeline.run()
    with pytest.raises(ServerUnavailableError, match=said):
        compare(nowhere, ["a", "b"])
    assert time.monotonic() - started < 30
    assert not (tmp_path / "out").exists()  # no work was done
    assert pipeline.run(track=False).run_id is None  # the run itself needs no server


def test_errors_and_seconds_are_better_down_scores_better_up() -> None:
    from poiflow.pipeline.tracking import better

    assert better("missed_blocking", 120, 80) is True
    assert better("wrong_matcher", 10, 12) is False
    assert better("unmatched_records", 3, 0) is True
    assert better("seconds.score", 2.0, 1.5) is True
    assert better("f1", 0.97, 0.98) is True
    assert better("recall", 0.97, 0.96) is False
    assert better("f1", 0.97, 0.97) is None
    assert better("golden.name.accuracy", 0.93, 0.95) is True
    assert better("golden.name.calibration_error", 0.02, 0.03) is False
    assert better("golden.phone.brier", 0.03, 0.02) is True
    assert better("golden.location.p90_m", 40.0, 35.0) is True
    assert better("checks.likely_duplicates", 40, 35) is True


def test_a_persons_decisions_are_logged_with_what_became_of_them(
    data: Path, tmp_path: Path
) -> None:
    gold = pl.read_csv(data / "gold.csv", infer_schema=False).sort("place", "source", "id")
    first, second = gold.unique("place", keep="first").sort("place").head(2).rows()
    decisions = tmp_path / "decisions.csv"
    decisions.write_text(
        "left_source,left_id,right_source,right_id,label\n"
        f"{first[0]},{first[1]},{second[0]},{second[1]},match\n"
    )
    pipeline = make_pipeline(data, tmp_path, f"decisions: {decisions}\n")
    result = pipeline.run()
    assert result.run_id is not None
    run = MlflowClient(pipeline.tracking_uri).get_run(result.run_id)
    assert run.data.params["decisions"] == str(decisions)
    assert run.data.metrics["decisions.match"] == 1
    assert run.data.metrics["decisions.overruled"] == 1
    assert run.data.metrics["decisions.not_in_run"] == 0


def test_a_notebook_compares_a_pipelines_runs(data: Path, tmp_path: Path) -> None:
    pipeline = make_pipeline(data, tmp_path)
    first = pipeline.run()
    second = pipeline.replace({"stages": {"cluster": {"threshold": 0.05}}}).run()
    assert first.run_id is not None
    assert second.run_id is not None
    comparison = pipeline.compare(last=2)
    assert [r.run_id for r in comparison.runs] == [first.run_id, second.run_id]
    assert comparison.params == [("stages.cluster.threshold", ["null", "0.05"])]
    frame = comparison.frame()
    assert frame.columns == ["metric", *comparison.names]
    assert frame["metric"].to_list() == [k for k, _ in comparison.metrics]
    before, after = frame.filter(frame["metric"] == "f1").select(comparison.names).row(0)
    assert before == first.stage("evaluate").summary["f1"]
    assert after == second.stage("evaluate").summary["f1"]
    # The same runs by id (a prefix will do); in a notebook, the changes coloured.
    again = pipeline.compare(first.run_id[:10], second.run_id)
    assert again.metrics == comparison.metrics
    shown = comparison._repr_html_()
    assert "<td>stages.cluster.threshold</td><td>null</td><td>0.05</td>" in shown
    colour = {None: "#777", True: "#2e7d32", False: "#c62828"}[better("f1", before, after)]
    assert f'<span style="color:{colour}">({after - before:+.4g})</span>' in shown
    assert comparison.chart(tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ConfigError, match="compare needs two runs or more"):
        pipeline.compare(first.run_id)
    for last in (0, -1):  # before the store is asked (it would say max_results)
        with pytest.raises(ConfigError, match=f"last is {last}: give how many"):
            pipeline.compare(last=last)
    # One id and the latest run: two.
    assert len(pipeline.compare(first.run_id, last=1).runs) == 2
    (tmp_path / "untracked").mkdir()
    untracked = make_pipeline(data, tmp_path / "untracked")
    with pytest.raises(ConfigError, match="logs no runs"):
        untracked.replace({"tracking": None}).compare(last=2)


def test_a_notebook_shows_a_run_as_poiflow_run_prints_it(data: Path, tmp_path: Path) -> None:
    pipeline = make_pipeline(data, tmp_path)
    first = pipeline.run()
    again = pipeline.run()
    shown = first._repr_html_()
    for stage in first.stages:
        assert f"<td>{stage.name}</td><td>ran</td>" in shown
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert f'<td>places</td><td style="text-align:right">{run["counts"]["places"]:,}</td>' in shown
    assert f"<td>f1</td><td>{run['metrics']['f1']:.4f}</td>" in shown
    assert f"MLflow run {first.run_id}" in shown
    repeated = again._repr_html_()
    assert all(f"<td>{s.name}</td><td>reused</td><td></td>" in repeated for s in again.stages)
    assert "(nothing changed: not logged again)" in repeated
    # A stage the run has not, named with those it has (a KeyError, as a dict's would be).
    assert first.stage("cluster").name == "cluster"
    with pytest.raises(KeyError, match=r"no stage 'clustr' in this run\. Did you mean 'cluster'"):
        first.stage("clustr")


def test_a_stage_taken_from_the_cache_is_no_speed_to_compare() -> None:
    from poiflow.pipeline.tracking import RunRecord

    def logged(run_id: str, reused: str, seconds: dict[str, float]) -> RunRecord:
        metrics = {f"seconds.{stage}": s for stage, s in seconds.items()}
        return RunRecord(
            run_id, "tracked", {}, {**metrics, "places": 10.0}, {"poiflow.reused": reused}
        )

    first = logged("a" * 32, "-", {"ingest": 1.5, "merge": 0.2})
    second = logged("b" * 32, "ingest", {"ingest": 0.0, "merge": 0.3})
    third = logged("c" * 32, "ingest,merge", {"ingest": 0.0, "merge": 0.0})
    rows = dict(compare_runs([first, second, third]).cells())
    # Cached: no time, and no change from the run before; a stage that ran is compared.
    assert rows["seconds.ingest"] == [
        ("1.5000", "", None),
        ("cached", "", None),
        ("cached", "", None),
    ]
    assert rows["seconds.merge"] == [
        ("0.2000", "", None),
        ("0.3000", "+0.1", False),
        ("cached", "", None),
    ]
    assert rows["places"] == [("10", "", None), ("10", "+0", None), ("10", "+0", None)]
    # Against a first run that was cached, no change is worked out either.
    again = dict(compare_runs([second, first]).cells())
    assert again["seconds.ingest"] == [("cached", "", None), ("1.5000", "", None)]


def test_poiflow_run_says_where_it_logged_and_mlflow_nothing(data: Path, tmp_path: Path) -> None:
    # A new store's tables made: MLflow said so at INFO on the terminal, two lines of
    # "Creating initial MLflow database tables..." before the run's own display.
    make_pipeline(data, tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "poiflow", "run", str(tmp_path / "pipeline.yaml")],
        capture_output=True,
        text=True,
        env=os.environ | {"COLUMNS": "200"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    said = result.stdout + result.stderr
    assert (tmp_path / "mlflow.db").exists()
    assert f"in sqlite:///{tmp_path / 'mlflow.db'}" in " ".join(said.split())
    assert "INFO" not in said
    assert "database tables" not in said
