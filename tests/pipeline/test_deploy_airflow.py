"""``poiflow deploy airflow``: the DAG has a task per stage in order, with the pipeline's
schedule and retries, and a real Airflow 3 (in its own virtualenv) runs it end to end."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from poiflow.errors import ConfigError
from poiflow.pipeline import Pipeline
from poiflow.pipeline.deploy import AirflowOptions, airflow_dag, dag_id

from ..conftest import ROOT

HELSINKI = ROOT / "examples" / "helsinki"
AIRFLOW_VENV = ROOT / ".venv-airflow"


def helsinki_copy(folder: Path, **changes: object) -> Path:
    """The Helsinki pipeline with its sources where they are and everything else in
    ``folder``."""
    spec = yaml.safe_load((HELSINKI / "pipeline.yaml").read_text("utf-8"))
    spec["sources"] = [{"path": str(HELSINKI / s["path"])} for s in spec["sources"]]
    spec |= {
        "output": str(folder / "out"),
        "cache": str(folder / "cache"),
        "tracking": {"uri": f"sqlite:///{folder / 'mlflow.db'}"},
        **changes,
    }
    path = folder / "pipeline.yaml"
    path.write_text(yaml.safe_dump(spec), "utf-8")
    return path


def dag_tasks(text: str) -> tuple[list[str], list[str], dict[str, object]]:
    """The task ids, the order they are chained in, and the DAG's keyword arguments."""
    tree = ast.parse(text)
    tasks: dict[str, str] = {}
    dag_args: dict[str, object] = {}
    chain: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            call = node.value
            if getattr(call.func, "id", "") == "BashOperator":
                kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
                tasks[node.targets[0].id] = kwargs["task_id"]  # type: ignore[attr-defined]
        if isinstance(node, ast.With):
            call = node.items[0].context_expr
            for k in call.keywords:  # type: ignore[attr-defined]
                if k.arg in ("schedule", "dag_id", "max_active_runs"):
                    dag_args[k.arg] = ast.literal_eval(k.value)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.BinOp):
            names = []
            value: ast.expr = node.value
            while isinstance(value, ast.BinOp):
                names.append(value.right.id)  # type: ignore[attr-defined]
                value = value.left
            names.append(value.id)  # type: ignore[attr-defined]
            chain = [tasks[n] for n in reversed(names)]
    return list(tasks.values()), chain, dag_args


def test_the_dag_has_a_task_per_stage_in_order(tmp_path: Path) -> None:
    rules = tmp_path / "rules.py"
    rules.write_text("def keep(records):\n    return records\n", "utf-8")
    path = helsinki_copy(
        tmp_path,
        schedule="@daily",
        name="hel.sinki",
        custom=[{"name": "tidy", "function": "rules.py:keep", "after": "ingest"}],
    )
    pipeline = Pipeline.from_yaml(path)
    text = airflow_dag(pipeline, AirflowOptions(poiflow="/opt/bin/poiflow", retries=4))
    ids, chain, args = dag_tasks(text)
    expected = ["ingest", "tidy", "block", "score", "cluster", "merge", "report", "publish"]
    assert ids == expected
    assert chain == expected
    assert args == {"dag_id": "poiflow_hel.sinki", "schedule": "@daily", "max_active_runs": 1}
    assert "/opt/bin/poiflow run " + str(path) + " --only tidy --no-track" in text
    assert '"retries": 4' in text
    compile(text, "dag.py", "exec")


def test_a_pipeline_without_a_cache_cannot_be_deployed(tmp_path: Path) -> None:
    pipeline = Pipeline.from_yaml(helsinki_copy(tmp_path, cache=None))
    with pytest.raises(ConfigError, match="set 'cache'"):
        airflow_dag(pipeline)


@pytest.fixture(scope="session")
def airflow() -> Path:
    """Airflow 3 in its own virtualenv (``make test`` installs it first)."""
    subprocess.run(
        ["bash", "scripts/install_airflow.sh"], cwd=ROOT, check=True, capture_output=True
    )
    return AIRFLOW_VENV / "bin" / "airflow"


@pytest.mark.airflow
@pytest.mark.slow
def test_airflow_runs_the_helsinki_dag_end_to_end(tmp_path: Path, airflow: Path) -> None:
    path = helsinki_copy(tmp_path, schedule="@daily")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "poiflow",
            "deploy",
            "airflow",
            str(path),
            "-o",
            str(tmp_path / "dags"),
        ],
        check=True,
    )
    pipeline = Pipeline.from_yaml(path)
    home = tmp_path / "airflow"
    home.mkdir()
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(tmp_path / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
    }

    def airflow_cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(airflow), *args], env=env, capture_output=True, text=True, timeout=600
        )

    assert airflow_cli("db", "migrate").returncode == 0
    errors = airflow_cli("dags", "list-import-errors")
    assert "No data found" in errors.stdout, errors.stdout + errors.stderr
    run = airflow_cli("dags", "test", dag_id(pipeline), "2026-12-01")
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-3000:]
    ended = [
        line.split("task_id=")[1].split()[0]
        for line in log.splitlines()
        if "end task task_id=" in line
    ]
    assert ended == ["ingest", "block", "score", "cluster", "merge", "report", "publish"]
    assert "state=success" in log
    # What the tasks made: the outputs, published once, and the run logged to MLflow.
    places = pq.read_table(tmp_path / "out" / "places.parquet")
    assert places.num_rows > 1000
    assert pq.read_table(tmp_path / "out" / "membership.parquet").num_rows > places.num_rows
    assert (tmp_path / "mlflow.db").exists()
    entries = [p.name for p in (tmp_path / "cache").iterdir() if not p.name.startswith(".")]
    assert {"ingest", "block", "score", "cluster", "merge", "report"} <= set(entries)
