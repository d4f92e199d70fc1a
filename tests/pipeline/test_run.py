"""Declared pipelines: YAML and Python load alike, stages are cached by what they depend on,
custom stages run where they are put, and failed or killed runs leave nothing half-built."""

from __future__ import annotations

import csv
import json
import os
import re
import signal as signals
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from poiflow.config import PipelineSpec
from poiflow.errors import ConfigError, InputError, QualityGateError, StageFailedError
from poiflow.generate import generate
from poiflow.pipeline import Pipeline, conflate
from poiflow.pipeline.declared import _source_name

from ..conftest import ROOT, poiflow

PUBLISHED = ("places", "membership", "pairs", "records", "quarantine", "changes", "checks")
STAGES = ["ingest", "block", "score", "cluster", "merge"]

RULES = """
import pyarrow as pa
import pyarrow.compute as pc


def drop_source(records, source):
    return records.filter(pc.not_equal(records.column("source"), source))


def never_match(pairs):
    return pairs.set_column(
        pairs.schema.get_field_index("match_probability"),
        "match_probability",
        pa.array([0.0] * pairs.num_rows, pa.float32()),
    )


def upper_names(places):
    return places


def drop_a_place(places):
    return places.slice(1)


def broken(records):
    raise RuntimeError("the rule broke")


def places_named(places, word):
    import polars as pl

    hit = places.filter(pl.col("name").str.to_lowercase().str.contains(word))
    return hit.select("id", pl.format("{} says {}", "name", pl.lit(word)).alias("detail"))


def kill_myself(records):
    import os, signal
    os.kill(os.getpid(), signal.SIGKILL)


def signal_myself(records):
    import os, signal, time
    os.kill(os.getpid(), getattr(signal, os.environ["SIGNAL"]))
    time.sleep(60)
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("world")
    generate(250, 3, 5, folder / "data")
    (folder / "rules.py").write_text(RULES)
    return folder


def write_pipeline(folder: Path, extra: str = "", name: str = "pipeline.yaml") -> Path:
    sources = "".join(f"  - path: data/{p.name}\n" for p in sorted(folder.glob("data/source_*")))
    # Tracking is tested on its own (test_tracking.py); here it would only cost time.
    text = f"name: test\nsources:\n{sources}gold: data/gold.csv\ntracking: null\n"
    text += textwrap.dedent(extra)
    path = folder / name
    path.write_text(text)
    return path


def read_bytes(output: Path) -> dict[str, bytes]:
    return {name: (output / f"{name}.parquet").read_bytes() for name in PUBLISHED}


@pytest.fixture
def pipeline(world: Path, tmp_path: Path) -> Pipeline:
    path = write_pipeline(world, f"cache: {tmp_path / 'cache'}\noutput: {tmp_path / 'out'}\n")
    return Pipeline.from_yaml(path)


def test_yaml_and_python_load_into_one_model(world: Path) -> None:
    path = write_pipeline(world, "stages:\n  cluster: {threshold: 0.4}\n")
    from_file = Pipeline.from_yaml(path)
    from_dict = Pipeline.from_dict(yaml.safe_load(path.read_text()), base=world)
    assert from_file.spec == from_dict.spec
    assert isinstance(from_file.spec, PipelineSpec)
    assert from_file.spec.stages.cluster.threshold == 0.4
    assert from_file.stages == [*STAGES, "evaluate", "report"]
    again = Pipeline.from_dict(yaml.safe_load(from_file.to_yaml()), base=world)
    assert again.spec == from_file.spec


def test_misspelt_keys_name_the_file_line_and_a_suggestion(world: Path) -> None:
    path = write_pipeline(world, "stages:\n  clustr: {threshold: 0.4}\n", "bad.yaml")
    with pytest.raises(ConfigError) as error:
        Pipeline.from_yaml(path)
    message = str(error.value)
    line = path.read_text().splitlines().index("  clustr: {threshold: 0.4}") + 1
    assert message.startswith(f"{path}:{line}:")
    assert "unknown key 'clustr'" in message
    assert "Did you mean 'cluster'?" in message

    path = write_pipeline(
        world, "custom:\n  - {name: x, function: 'rules.py:upper_names', after: merj}\n", "b.yaml"
    )
    with pytest.raises(ConfigError, match="Did you mean 'merge'"):
        Pipeline.from_yaml(path)

    path = write_pipeline(
        world, "custom:\n  - {name: x, function: 'rules.py:uper_names', after: merge}\n", "c.yaml"
    )
    with pytest.raises(ConfigError, match=r"no function 'uper_names'\. Did you mean 'upper_names'"):
        Pipeline.from_yaml(path).run()


def test_the_same_outputs_as_conflate_and_metrics_from_the_truth(
    pipeline: Pipeline, world: Path, tmp_path: Path
) -> None:
    result = pipeline.run()
    assert result.ran == [*STAGES, "evaluate", "report"]
    direct = tmp_path / "direct"
    conflate(sorted(world.glob("data/source_*")), direct)
    assert read_bytes(pipeline.output) == read_bytes(direct)
    run = json.loads((pipeline.output / "run.json").read_text())
    metrics = run["metrics"]
    assert metrics["f1"] > 0.9
    # Each missed and wrong pair traced to a stage: tracking shows which stage a change helped.
    missed = sum(metrics[f"missed_{stage}"] for stage in ("blocking", "matcher", "clustering"))
    assert missed == metrics["true_pairs"] - metrics["correct_pairs"] > 0
    wrong = metrics["wrong_matcher"] + metrics["wrong_clustering"]
    assert wrong == metrics["predicted_pairs"] - metrics["correct_pairs"]
    report = (pipeline.output / "report.html").read_text("utf-8")
    assert "Where the errors are" in report
    assert "at the clustering threshold 0.3." in report
    assert [s["name"] for s in run["stages"]] == pipeline.stages
    assert run["stages"][1]["inputs"] == {"records": f"{run['stages'][0]['key']}:records"}


def test_a_rerun_reuses_every_stage_and_a_changed_setting_reruns_what_follows(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    first = pipeline.run()
    before = read_bytes(pipeline.output)
    again = pipeline.run()
    assert again.ran == []
    assert again.reused == pipeline.stages
    assert read_bytes(pipeline.output) == before

    stricter = pipeline.replace({"stages": {"cluster": {"threshold": 0.97, "same_source": 0.99}}})
    changed = stricter.run(tmp_path / "strict")
    said = json.loads((tmp_path / "strict" / "run.json").read_text())["matching"]["cluster"]
    assert (said["threshold"], said["same_source"]) == (0.97, 0.99)  # over the model's own
    metrics = [
        json.loads((o / "run.json").read_text())["metrics"]
        for o in (pipeline.output, tmp_path / "strict")
    ]
    assert metrics[1]["missed_matcher"] > metrics[0]["missed_matcher"]  # judged at 0.97
    assert changed.reused == ["ingest", "block", "score"]
    assert changed.ran == ["cluster", "merge", "evaluate", "report"]
    assert changed.stage("score").key == first.stage("score").key
    assert changed.stage("cluster").key != first.stage("cluster").key
    strict = pq.read_table(tmp_path / "strict" / "places.parquet").num_rows
    assert strict > pq.read_table(pipeline.output / "places.parquet").num_rows

    forced = pipeline.run(from_stage="cluster")
    assert forced.reused == ["ingest", "block", "score"]
    assert read_bytes(pipeline.output) == before


def test_a_known_precision_of_a_source_wins_over_the_learnt_one(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    pipeline.run()
    learnt = json.loads((pipeline.output / "run.json").read_text())["source_precision_m"]
    assert set(learnt) == {"source_a", "source_b", "source_c"}
    assert all(metres >= 1.0 for metres in learnt.values())
    # The vendor feed said to be the surveyed one: its points pull the places to them.
    told = pipeline.replace({"stages": {"merge": {"precision_m": {"source_c": 0.5}}}})
    told.run(tmp_path / "told")
    said = json.loads((tmp_path / "told" / "run.json").read_text())["source_precision_m"]
    assert said == {**learnt, "source_c": 0.5}
    before = pq.read_table(pipeline.output / "places.parquet", columns=["id", "lat"])
    after = pq.read_table(tmp_path / "told" / "places.parquet", columns=["id", "lat"])
    assert before.column("id").equals(after.column("id"))
    assert before.column("lat") != after.column("lat")
    with pytest.raises(ConfigError, match="precision_m"):
        pipeline.replace({"stages": {"merge": {"precision_m": {"source_c": 0}}}})


def test_a_known_coverage_of_a_source_wins_over_the_learnt_one(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    pipeline.run()
    learnt = json.loads((pipeline.output / "run.json").read_text())["place_coverage"]
    assert set(learnt["whole"]) == set(learnt["split"]) == {"source_a", "source_b", "source_c"}
    assert all(0 < c <= 1 for c in learnt["coverage"].values())
    # Said to have its places alone whole one time in two: such places are that sure.
    told = pipeline.replace({"stages": {"merge": {"whole": {"source_c": 0.5}}}})
    told.run(tmp_path / "told")
    said = json.loads((tmp_path / "told" / "run.json").read_text())["place_coverage"]
    assert said["whole"] == {**learnt["whole"], "source_c": 0.5}
    places = pq.read_table(tmp_path / "told" / "places.parquet", columns=["confidence", "sources"])
    lonely_c = [
        p["confidence"]
        for p in places.to_pylist()
        if len({s["record_id"] for s in p["sources"]}) == 1
        and p["sources"][0]["dataset"] == "source_c"
    ]
    assert lonely_c
    assert lonely_c == pytest.approx([0.5] * len(lonely_c), abs=1e-4)


def test_a_known_accuracy_of_a_source_wins_over_the_learnt_one(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    pipeline.run()
    learnt = json.loads((pipeline.output / "run.json").read_text())["source_accuracy"]
    assert set(learnt) >= {"name", "category", "location", "address"}
    # Said to be right about names one time in two: its names are less sure.
    told = pipeline.replace({"stages": {"merge": {"accuracy": {"name": {"source_c": 0.5}}}}})
    told.run(tmp_path / "told")
    said = json.loads((tmp_path / "told" / "run.json").read_text())["source_accuracy"]
    assert said == {**learnt, "name": {**learnt["name"], "source_c": 0.5}}
    columns = ["id", "attribute_confidence", "sources", "members"]
    before = pq.read_table(pipeline.output / "places.parquet", columns=columns).to_pylist()
    after = pq.read_table(tmp_path / "told" / "places.parquet", columns=columns).to_pylist()
    # Places of one record, source_c's: the name is as sure as source_c.
    lonely_c = [
        (b, a)
        for b, a in zip(before, after, strict=True)
        if b["members"] == 1 and b["sources"][0]["dataset"] == "source_c"
    ]
    assert lonely_c
    for b, a in lonely_c:
        assert b["attribute_confidence"]["name"] == pytest.approx(
            learnt["name"]["source_c"], abs=1e-3
        )
        assert a["attribute_confidence"]["name"] == pytest.approx(0.5, abs=1e-3)
    for wrong in ({"colour": {"source_c": 0.5}}, {"name": {"source_c": 1.0}}):
        with pytest.raises(ConfigError, match=r"stages\.merge\.accuracy"):
            pipeline.replace({"stages": {"merge": {"accuracy": wrong}}})


def test_a_dry_run_says_which_stages_would_run_and_why_and_runs_nothing(
    world: Path, tmp_path: Path
) -> None:
    """What each stage would do, with the keys a run then uses, and the reason in words;
    nothing is written (no output, no cache entry)."""
    data = tmp_path / "data"
    data.mkdir()
    for path in (world / "data").iterdir():
        (data / path.name).write_bytes(path.read_bytes())
    path = write_pipeline(tmp_path, f"cache: {tmp_path / 'cache'}\noutput: {tmp_path / 'out'}\n")
    pipeline = Pipeline.from_yaml(path)
    stages = pipeline.stages

    def plan(of: Pipeline = pipeline, **options: str) -> dict[str, tuple[bool, str]]:
        return {p.name: (p.runs, p.why) for p in of.dry_run(**options)}

    assert plan() == dict.fromkeys(stages, (True, "it has not run with this cache"))
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "cache").exists()
    first = pipeline.run()
    assert [(p.name, p.key) for p in pipeline.dry_run()] == [(s.name, s.key) for s in first.stages]
    assert plan() == dict.fromkeys(stages, (False, "cached"))
    assert all(p.cached for p in pipeline.dry_run(from_stage="block"))  # run, yet cached

    stricter = pipeline.replace({"stages": {"cluster": {"threshold": 0.97}}})
    said = plan(stricter)
    assert [s for s, (runs, _) in said.items() if runs] == stricter.run(tmp_path / "o2").ran
    assert said["score"] == (False, "cached")
    assert said["cluster"] == (True, "its settings changed: threshold None -> 0.97")
    assert said["merge"] == (True, "its inputs changed (clusters)")
    assert plan(stricter) == dict.fromkeys(stages, (False, "cached"))  # run now
    # Back to the first settings: cached still, whichever ran last.
    assert plan() == dict.fromkeys(stages, (False, "cached"))

    assert plan(from_stage="merge")["merge"] == (True, "--from merge")
    assert plan(from_stage="merge")["cluster"] == (False, "cached")
    assert list(plan(only="block")) == ["ingest", "block"]
    assert plan(only="block")["block"] == (True, "--only block")

    with (data / "source_b.csv").open("a") as feed:
        feed.write("B9999999,Dry Run Cafe,60.17,24.94,cafe,,,,,,,,,\n")
    said = plan()
    assert said["ingest"] == (True, "an input file changed, or how one is read")
    assert said["block"] == (True, "its inputs changed (records)")
    only = plan(only="block")
    assert only["ingest"] == (False, "not cached, so --only block cannot run")

    with pytest.raises(ConfigError, match=r"no stage 'clustr'\. Did you mean 'cluster'"):
        pipeline.dry_run(from_stage="clustr")
    # Nothing more in the cache than the two runs made.
    entries = sorted(str(e.relative_to(tmp_path)) for e in (tmp_path / "cache").glob("*/*"))
    assert len(entries) == len(stages) + 4  # cluster, merge, evaluate and report ran again


def test_the_cli_dry_run_prints_the_plan_and_writes_nothing(world: Path, tmp_path: Path) -> None:
    path = write_pipeline(
        world, f"cache: {tmp_path / 'cache'}\noutput: {tmp_path / 'out'}\n", "dry.yaml"
    )
    done = poiflow("run", str(path), "--dry-run")
    assert done.returncode == 0, done.stderr
    said = done.stdout + done.stderr
    assert "what a run would do" in said
    assert "7 of 7 stages would run; nothing was run or written" in said
    assert "it has not run with this cache" in said
    as_json = poiflow("run", str(path), "--dry-run", "--json", "--from", "merge")
    assert as_json.returncode == 0, as_json.stderr
    planned = json.loads(as_json.stdout)
    assert planned["pipeline"] == "test"
    assert [s["stage"] for s in planned["stages"]] == [*STAGES, "evaluate", "report"]
    assert all(s["runs"] and not s["cached"] for s in planned["stages"])
    assert planned["stages"][4]["why"] == "--from merge"
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "cache").exists()
    only = poiflow("run", str(path), "--dry-run", "--only", "score")
    lines = [line.split() for line in (only.stdout + only.stderr).splitlines()]
    assert ["ingest", "│", "missing", "│", "not", "cached,", "so", "--only", "score"] in [
        line[:9] for line in lines
    ]
    assert "1 of 3 stages would run" in only.stdout + only.stderr
    bad = poiflow("run", str(path), "--dry-run", "--only", "scroe")
    assert bad.returncode != 0
    assert "Did you mean 'score'" in bad.stdout + bad.stderr


def test_only_runs_one_stage_from_the_cache(pipeline: Pipeline) -> None:
    with pytest.raises(ConfigError, match="--only score: it needs stage 'ingest'"):
        pipeline.run(only="score")
    with pytest.raises(ConfigError, match=r"no stage 'clustr'\. Did you mean 'cluster'"):
        pipeline.run(only="clustr")
    for stage in (*STAGES, "evaluate"):
        result = pipeline.run(only=stage)
        assert result.ran == [stage]
        assert result.output is None  # nothing is published before the last stage
    assert not (pipeline.output / "run.json").exists()
    last = pipeline.run(only="report")
    assert last.output == pipeline.output
    assert (pipeline.output / "run.json").exists()
    assert pipeline.run().ran == []


def test_custom_stages_run_where_they_are_put(world: Path, tmp_path: Path) -> None:
    path = write_pipeline(
        world,
        f"""\
        cache: null
        output: {tmp_path / "out"}
        custom:
          - name: no_c
            function: "rules.py:drop_source"
            after: ingest
            params: {{source: source_c}}
          - {{name: apart, function: "rules.py:never_match", after: score}}
        """,
    )
    result = Pipeline.from_yaml(path).run()
    assert result.ran[:3] == ["ingest", "no_c", "block"]
    membership = pq.read_table(tmp_path / "out" / "membership.parquet")
    assert set(membership.column("source").to_pylist()) == {"source_a", "source_b"}
    # Every pair overruled to 0: every record is its own place.
    assert pq.read_table(tmp_path / "out" / "places.parquet").num_rows == membership.num_rows
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["custom"]["no_c"]["rows_out"] < run["custom"]["no_c"]["rows_in"]


def test_a_stage_after_merge_may_not_drop_places(world: Path, tmp_path: Path) -> None:
    path = write_pipeline(
        world,
        f"""\
        cache: null
        output: {tmp_path / "out"}
        custom: [{{name: fewer, function: "rules.py:drop_a_place", after: merge}}]
        """,
    )
    with pytest.raises(ConfigError, match="may change places but not add or drop them"):
        Pipeline.from_yaml(path).run()
    assert not (tmp_path / "out" / "run.json").exists()


def test_a_failed_stage_says_which_keeps_what_came_before_and_resumes(
    world: Path, tmp_path: Path
) -> None:
    cache, out = tmp_path / "cache", tmp_path / "out"
    custom = 'custom: [{name: rule, function: "rules.py:broken", after: ingest}]\n'
    path = write_pipeline(world, f"cache: {cache}\noutput: {out}\n{custom}")
    with pytest.raises(StageFailedError) as error:
        Pipeline.from_yaml(path).run()
    assert error.value.stage == "rule"
    assert "RuntimeError: the rule broke" in str(error.value)
    assert not out.exists() or not any(out.iterdir())
    assert list((cache / "rule").iterdir()) == []  # no half-built entry
    assert len(list((cache / "ingest").iterdir())) == 1

    fixed = write_pipeline(world, f"cache: {cache}\noutput: {out}\n")
    assert Pipeline.from_yaml(fixed).run().reused == ["ingest"]


def test_a_killed_run_leaves_no_entry_that_looks_complete(world: Path, tmp_path: Path) -> None:
    cache, out = tmp_path / "cache", tmp_path / "out"
    custom = 'custom: [{name: rule, function: "rules.py:kill_myself", after: ingest}]\n'
    path = write_pipeline(world, f"cache: {cache}\noutput: {out}\n{custom}")
    code = f"from poiflow import Pipeline; Pipeline.from_yaml({str(path)!r}).run()"
    killed = subprocess.run([sys.executable, "-c", code], check=False)
    assert killed.returncode == -9
    half_built = list((cache / "rule").iterdir())
    assert [p.name.startswith(".tmp-") for p in half_built] == [True]
    assert not (out / "run.json").exists()
    assert not any(p.suffix == ".parquet" for p in out.glob("*")) if out.exists() else True

    assert [p.name for p in out.glob(".staging-*")] == [f".staging-{killed_pid(out)}"]

    fixed = write_pipeline(world, f"cache: {cache}\noutput: {out}\n")
    result = Pipeline.from_yaml(fixed).run()
    assert result.reused == ["ingest"]
    assert not (cache / "rule").exists() or list((cache / "rule").iterdir()) == []
    assert (out / "run.json").exists()
    assert list(out.glob(".staging-*")) == []  # the killed run's, gone with it


def killed_pid(out: Path) -> int:
    (staging,) = out.glob(".staging-*")
    return int(staging.name.rsplit("-", 1)[1])


def as_in_the_foreground() -> None:
    """In a child before it runs its command: SIGINT at its default and not blocked, as in
    a command a shell runs in the foreground (Ctrl-C reaches it). A process inherits an
    ignored SIGINT and a blocked one from the process that starts it: a suite started in
    the background of a shell (``nohup make test &``) ignores SIGINT, and so did its
    commands, unless a Spark test had run earlier in the same worker (PySpark's handler
    is not inherited: the command's SIGINT is at its default again). Once the Spark tests
    ran on a worker of their own, the signal never came."""
    signals.pthread_sigmask(signals.SIG_UNBLOCK, {signals.SIGINT})
    signals.signal(signals.SIGINT, signals.SIG_DFL)


@pytest.mark.parametrize(
    ("signal", "status", "says"),
    [("SIGTERM", 143, "stopped (SIGTERM)"), ("SIGINT", 130, "interrupted")],
)
def test_a_signal_stops_a_run_and_removes_what_it_half_wrote(
    world: Path, tmp_path: Path, signal: str, status: int, says: str
) -> None:
    # SIGTERM is what Kubernetes and Airflow send to stop a task; SIGINT is Ctrl-C.
    cache, out = tmp_path / "cache", tmp_path / "out"
    Pipeline.from_yaml(write_pipeline(world, f"cache: {cache}\noutput: {out}\n")).run()
    before = read_bytes(out)
    custom = 'custom: [{name: rule, function: "rules.py:signal_myself", after: ingest}]\n'
    path = write_pipeline(world, f"cache: {cache}\noutput: {out}\n{custom}", "signal.yaml")
    stopped = subprocess.run(
        [sys.executable, "-m", "poiflow", "run", str(path)],
        capture_output=True,
        text=True,
        env={**os.environ, "SIGNAL": signal},
        preexec_fn=as_in_the_foreground,
    )
    assert stopped.returncode == status, stopped.stderr
    assert f"{says}; no output was written" in stopped.stdout + stopped.stderr
    assert "Traceback" not in stopped.stderr
    assert read_bytes(out) == before  # the last finished run's outputs, as they were
    assert list(out.glob(".staging-*")) == []
    assert list((cache / "rule").glob(".tmp-*")) == []


def test_cli_init_run_and_the_resume_command(tmp_path: Path) -> None:
    poiflow = [sys.executable, "-m", "poiflow"]
    env = {**os.environ, "COLUMNS": "200"}
    folder = tmp_path / "p"
    subprocess.run([*poiflow, "init", str(folder)], check=True, env=env)
    text = (folder / "pipeline.yaml").read_text()
    assert "examples/helsinki/Helsinki.osm.pbf" in text
    assert "# custom:" in text
    refused = subprocess.run([*poiflow, "init", str(folder)], env=env, capture_output=True)
    assert refused.returncode == 1
    assert b"--force" in refused.stderr

    first = subprocess.run(
        [*poiflow, "run", str(folder / "pipeline.yaml"), "--json"],
        check=True,
        env=env,
        capture_output=True,
        text=True,
    )
    run = json.loads(first.stdout)
    assert run["counts"]["places"] > 1000
    assert (folder / "out" / "places.parquet").exists()
    second = subprocess.run(
        [*poiflow, "run", str(folder / "pipeline.yaml")],
        check=True,
        env=env,
        capture_output=True,
        text=True,
    )
    assert "reused from the cache: ingest, block, score, cluster, merge, report" in second.stderr

    missing = tmp_path / "no-such-model.json.gz"
    broken = text.replace("    model: default ", f"    model: {missing} ")
    assert broken != text
    (folder / "pipeline.yaml").write_text(broken)
    failed = subprocess.run(
        [*poiflow, "run", str(folder / "pipeline.yaml")], env=env, capture_output=True, text=True
    )
    assert failed.returncode == 1
    assert f"stages.score.model: no model file {missing}" in failed.stderr


def test_resume_command_after_a_failed_stage(world: Path, tmp_path: Path) -> None:
    custom = 'custom: [{name: rule, function: "rules.py:broken", after: ingest}]\n'
    path = write_pipeline(world, f"cache: {tmp_path / 'c'}\noutput: {tmp_path / 'o'}\n{custom}")
    failed = subprocess.run(
        [sys.executable, "-m", "poiflow", "run", str(path), "-o", str(tmp_path / "x")],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "300"},
    )
    assert failed.returncode == 1
    assert "stage 'rule' failed: RuntimeError: the rule broke" in failed.stderr
    assert f"poiflow run {path} --output {tmp_path / 'x'} --from rule" in failed.stderr
    assert "rules.py" in failed.stderr  # where in the user's code it was raised


def test_examples_load(tmp_path: Path) -> None:
    for path in sorted((ROOT / "examples").glob("*/pipeline.yaml")):
        pipeline = Pipeline.from_yaml(path)
        assert pipeline.stages[0] == "ingest"


def test_a_previous_release_keeps_place_ids(world: Path, tmp_path: Path) -> None:
    first = write_pipeline(world, f"cache: null\noutput: {tmp_path / 'v1'}\n", "v1.yaml")
    Pipeline.from_yaml(first).run()
    second = write_pipeline(
        world,
        f"cache: null\noutput: {tmp_path / 'v2'}\nprevious: {tmp_path / 'v1'}\n"
        "stages: {merge: {recency_weight: 0.0}}\n",
        "v2.yaml",
    )
    Pipeline.from_yaml(second).run()
    old = pq.read_table(tmp_path / "v1" / "membership.parquet").to_pylist()
    new = pq.read_table(tmp_path / "v2" / "membership.parquet").to_pylist()
    assert {(r["source"], r["id"]): r["place_id"] for r in old} == {
        (r["source"], r["id"]): r["place_id"] for r in new
    }
    changes = pq.read_table(tmp_path / "v2" / "changes.parquet").column("change").to_pylist()
    assert "created" not in changes


def test_a_missing_source_is_named_before_any_work(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("name: x\nsources:\n  - path: nothere.csv\ntracking: null\n")
    pipeline = Pipeline.from_yaml(path)
    assert pipeline.stages[0] == "ingest"
    with pytest.raises(ConfigError, match=r"sources: nothere\.csv does not exist") as error:
        pipeline.run()
    assert str(tmp_path / "nothere.csv") in str(error.value)
    assert not (tmp_path / "out").exists()
    # A folder is an input of its files; one without any is refused as it is read.
    (tmp_path / "parts").mkdir()
    path.write_text("name: x\nsources:\n  - path: parts\ntracking: null\n")
    with pytest.raises(InputError, match="an empty folder: it holds no files to read"):
        Pipeline.from_yaml(path).run()
    assert not (tmp_path / "out").exists()  # the folder the failed run made is gone too


def test_a_table_in_memory_takes_a_sources_place_and_keeps_the_cache(
    pipeline: Pipeline, world: Path, tmp_path: Path
) -> None:
    import pandas as pd

    pipeline.run()
    # As text, as the file is read (a phone read as a number would lose its zeros).
    frame = pd.read_csv(world / "data" / "source_b.csv", dtype=str, keep_default_na=False)
    swapped = pipeline.with_table("source_b", frame)
    paths = [Path(s.path) for s in swapped.spec.sources]
    assert [p.name for p in paths] == ["source_a.csv", "source_b.parquet", "source_c.csv"]
    assert paths[1].parent.parent == pipeline.cache / "tables"
    first = swapped.run(tmp_path / "swapped")
    assert first.ran[0] == "ingest"
    for name in ("membership", "pairs", "places"):
        table = f"{name}.parquet"
        assert (tmp_path / "swapped" / table).read_bytes() == (pipeline.output / table).read_bytes()
    # The same table again, as another frame: every stage is reused.
    assert pipeline.with_table("source_b", frame.copy()).run(tmp_path / "swapped").ran == []
    # Saved as a pipeline file, it runs again as it was.
    reloaded = Pipeline.from_dict(yaml.safe_load(swapped.to_yaml()), base=world)
    assert reloaded.run(tmp_path / "swapped").ran == []
    # A changed table runs again from ingest; a new name is one more source.
    frame.loc[0, "name"] = "Somewhere else entirely"
    assert pipeline.with_table("source_b", frame).run(tmp_path / "changed").ran[0] == "ingest"
    # A pipeline whose folder and cache are relative paths: the table's file is found.
    data = yaml.safe_load(pipeline.to_yaml()) | {"cache": "cache-of-tables"}
    relative = Pipeline.from_dict(data, base=os.path.relpath(world)).with_table("source_b", frame)
    assert relative.run(tmp_path / "relative").ran[0] == "ingest"
    more = pipeline.with_table("walk_in", frame.head(3))
    assert [_source_name(s, more.base) for s in more.spec.sources][-1] == "walk_in"
    assert len(more.spec.sources) == len(pipeline.spec.sources) + 1


def test_a_table_in_memory_takes_the_place_of_an_extract_or_overtures_file(
    tmp_path: Path,
) -> None:
    """A source goes by the name its records carry: an OSM extract's ``osm`` and an
    Overture file's ``overture`` (or the name its mapping gives it), not its file's."""
    import pandas as pd

    from tests.sources.overture_fixture import place, write_overture

    write_overture(tmp_path / "places.parquet", [place("g1", "Kahvila", 24.94, 60.17)])
    write_overture(tmp_path / "named.parquet", [place("g2", "Kahvila", 24.94, 60.17)])
    (tmp_path / "overture.csv").write_text("id,name\n1,Kahvila\n")
    sources = [
        {"path": "Helsinki.osm.pbf"},
        {"path": "places.parquet"},
        {"path": "named.parquet", "mapping": {"source": "overture_march"}},
        {"path": "overture.csv", "mapping": {"source": "vendor"}},
    ]
    pipeline = Pipeline.from_dict({"name": "x", "sources": sources}, base=tmp_path)
    assert [_source_name(s, pipeline.base) for s in pipeline.spec.sources] == [
        "osm",
        "overture",
        "overture_march",
        "vendor",
    ]
    frame = pd.DataFrame({"id": ["1"], "name": ["Kahvila"], "lat": [60.17], "lon": [24.94]})
    for name, at in (("osm", 0), ("overture", 1), ("overture_march", 2), ("vendor", 3)):
        swapped = [Path(s.path) for s in pipeline.with_table(name, frame).spec.sources]
        assert len(swapped) == 4
        assert swapped[at].parent.parent.name == "tables"
        assert [p for i, p in enumerate(swapped) if i != at] == [
            Path(s["path"]) for i, s in enumerate(sources) if i != at
        ]
    # A name no source goes by, such as a file's stem where the records are Overture's, is
    # one more source.
    assert len(pipeline.with_table("places", frame).spec.sources) == 5


def test_decisions_overrule_the_model_and_a_changed_file_reruns_clustering_on(
    world: Path, tmp_path: Path
) -> None:
    decisions = tmp_path / "decisions.csv"
    decisions.write_text("left_source,left_id,right_source,right_id,label\n")
    path = write_pipeline(
        world,
        f"cache: {tmp_path / 'cache'}\noutput: {tmp_path / 'out'}\ndecisions: {decisions}\n",
    )
    pipeline = Pipeline.from_yaml(path)
    first = pipeline.run()
    membership = pq.read_table(pipeline.output / "membership.parquet").to_pylist()
    place = {(r["source"], r["id"]): r["place_id"] for r in membership}
    by_place: dict[str, list[tuple[str, str]]] = {}
    for key, place_id in place.items():
        by_place.setdefault(place_id, []).append(key)
    joined = next(keys for keys in by_place.values() if len(keys) == 2)
    alone = [keys[0] for keys in by_place.values() if len(keys) == 1][:2]
    rows = [(*joined[0], *joined[1], "different"), (*alone[0], *alone[1], "match")]
    rows.append(("source_a", "nowhere", *alone[0], "match"))
    with decisions.open("a") as handle:
        handle.writelines(",".join(row) + "\n" for row in rows)

    second = pipeline.run()
    assert second.reused == ["ingest", "block", "score"]
    assert second.ran == ["cluster", "merge", "evaluate", "report"]
    assert second.stage("cluster").key != first.stage("cluster").key
    after = {
        (r["source"], r["id"]): r["place_id"]
        for r in pq.read_table(pipeline.output / "membership.parquet").to_pylist()
    }
    assert after[joined[0]] != after[joined[1]]
    assert after[alone[0]] == after[alone[1]]
    run = json.loads((pipeline.output / "run.json").read_text())
    assert run["decisions"] == {"match": 1, "different": 1, "overruled": 2, "not_in_run": 1}
    kept = pq.read_table(pipeline.output / "decisions.parquet")
    assert kept.column("in_run").to_pylist() == [True, True, False]
    # The metrics see the decisions, and the errors the decisions made are theirs.
    assert run["metrics"]["precision"] < first.stage("evaluate").summary["precision"]
    with (world / "data" / "gold.csv").open(encoding="utf-8") as handle:
        truth = {(r["source"], r["id"]): r["place"] for r in csv.DictReader(handle)}
    assert run["metrics"]["missed_decision"] == int(truth[joined[0]] == truth[joined[1]])
    assert run["metrics"]["wrong_decision"] == int(truth[alone[0]] != truth[alone[1]])


def test_contradicting_decisions_are_refused_before_any_work(world: Path, tmp_path: Path) -> None:
    decisions = tmp_path / "decisions.csv"
    decisions.write_text(
        "left_source,left_id,right_source,right_id,label\n"
        "source_a,A1,source_b,B1,match\nsource_b,B1,source_c,C1,match\n"
        "source_c,C1,source_a,A1,different\n"
    )
    path = write_pipeline(
        world, f"cache: {tmp_path / 'cache'}\noutput: {tmp_path / 'out'}\ndecisions: {decisions}\n"
    )
    with pytest.raises(InputError, match=r"decisions.csv:4: .* matches of lines 2, 3"):
        Pipeline.from_yaml(path).run()
    assert not (tmp_path / "cache" / "ingest").exists()


CHECKS = """
checks:
  skip: [stale, likely_duplicates]
  needs: {cafe: [opening_hours]}
  custom:
    - {name: says_cafe, function: rules.py:places_named, params: {word: cafe}, severity: error}
"""


def test_a_pipelines_checks_shape_its_report_and_rerun_the_report_alone(
    world: Path, tmp_path: Path
) -> None:
    base = f"cache: {tmp_path / 'cache'}\noutput: {tmp_path / 'out'}\n"
    plain = Pipeline.from_yaml(write_pipeline(world, base, "plain.yaml"))
    first = plain.run()
    shaped = Pipeline.from_yaml(write_pipeline(world, base + CHECKS, "shaped.yaml"))
    second = shaped.run()
    assert second.ran == ["report"]  # the checks change the report alone
    assert second.stage("report").key != first.stage("report").key
    checks = {r["check"]: r for r in pq.read_table(tmp_path / "out" / "checks.parquet").to_pylist()}
    assert "stale" not in checks
    assert "likely_duplicates" not in checks
    assert checks["cafe_has_opening_hour"]["checked"] > 0
    assert checks["says_cafe"]["severity"] == "error"
    issues = pq.read_table(tmp_path / "out" / "issues.parquet").to_pylist()
    said = [i for i in issues if i["check"] == "says_cafe"]
    assert said
    assert len(said) == checks["says_cafe"]["failed"]
    assert all(i["detail"].lower().endswith("says cafe") for i in said)
    places = {p["id"]: p for p in pq.read_table(tmp_path / "out" / "places.parquet").to_pylist()}
    assert all("cafe" in places[i["place_id"]]["names"]["primary"].lower() for i in said)
    # A check's own code is part of the report's key.
    rules = world / "rules.py"
    before = rules.read_text()
    try:
        rules.write_text(before.replace('.alias("detail")', '.alias("detail").str.to_uppercase()'))
        assert Pipeline.from_yaml(world / "shaped.yaml").run().ran == ["report"]
    finally:
        rules.write_text(before)


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ("checks: {skip: [stael]}\n", "no built-in check 'stael'. Did you mean 'stale'?"),
        ("gate: {checks: {says_cafe: 0}}\n", "gate.checks: no check 'says_cafe' runs"),
        (
            "checks: {custom: [{name: stale, function: rules.py:places_named}]}\n",
            "'stale' is a built-in check's name",
        ),
        (
            "checks: {custom: [{name: mine, function: rules.py:nowhere}]}\n",
            "check 'mine': ",
        ),
    ],
)
def test_bad_checks_and_gates_are_refused_before_any_work(
    world: Path, tmp_path: Path, extra: str, says: str
) -> None:
    path = write_pipeline(world, f"cache: {tmp_path / 'cache'}\n" + extra, "bad.yaml")
    with pytest.raises(ConfigError, match=re.escape(says)):
        Pipeline.from_yaml(path).run(tmp_path / "out")
    assert not (tmp_path / "cache" / "ingest").exists()


def test_a_gate_holds_a_release_back_and_keeps_the_last_one(world: Path, tmp_path: Path) -> None:
    base = f"cache: {tmp_path / 'cache'}\noutput: {tmp_path / 'out'}\n" + CHECKS
    Pipeline.from_yaml(write_pipeline(world, base, "open.yaml")).run()
    published = read_bytes(tmp_path / "out")
    flagged = json.loads((tmp_path / "out" / "run.json").read_text())["checks"]["failed"]
    assert flagged["says_cafe"] > 0
    strict = Pipeline.from_yaml(write_pipeline(world, base + "gate: {error: 0}\n", "strict.yaml"))
    with pytest.raises(QualityGateError) as refused:
        strict.run()
    message = str(refused.value)
    assert f"{flagged['says_cafe']:,} issues of error-level checks (at most 0)" in message
    assert "Nothing was published" in message
    report = Path(message.rsplit("the report of this run: ", 1)[1])
    assert report.name == "report.html"
    assert report.is_file()
    assert read_bytes(tmp_path / "out") == published
    # A scheduler's task of the report stage alone fails too (nothing after it runs).
    with pytest.raises(QualityGateError):
        strict.run(only="report")
    # The gate is no part of a stage's key: a looser one publishes without re-running.
    loose = f"gate: {{error: {flagged['says_cafe']}, checks: {{cafe_has_opening_hour: 100000}}}}\n"
    result = Pipeline.from_yaml(write_pipeline(world, base + loose, "loose.yaml")).run()
    assert result.ran == []
    assert result.output is not None


def test_the_cli_says_a_gate_passed_or_why_it_held_the_release_back(
    world: Path, tmp_path: Path
) -> None:
    base = f"cache: {tmp_path / 'cache'}\noutput: {tmp_path / 'out'}\n" + CHECKS
    held = write_pipeline(world, base + "gate: {error: 0}\n", "held.yaml")
    result = subprocess.run(
        [sys.executable, "-m", "poiflow", "run", str(held)], capture_output=True, text=True
    )
    assert result.returncode == 1
    said = " ".join(result.stderr.split())
    assert "quality gate: " in said
    assert "Nothing was published" in said
    assert "Traceback" not in result.stderr
    passed = write_pipeline(world, base + "gate: {warn: 100000, error: 100000}\n", "ok.yaml")
    result = subprocess.run(
        [sys.executable, "-m", "poiflow", "run", str(passed)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "quality gate passed" in " ".join((result.stdout + result.stderr).split())


def test_the_cli_says_what_a_run_held_back_and_repaired(tmp_path: Path) -> None:
    feeds = tmp_path / "feeds"
    feeds.mkdir()
    (feeds / "a.csv").write_text(
        "id,name,lat,lon\n1,Caf&#233; Aalto,60.1675,24.9425\n2,,60.1,24.9\n3,Baari,95.0,24.9\n",
        encoding="utf-8",
    )
    (feeds / "b.csv").write_text(
        "id,name,lat,lon\n1,Caf&#233; Aalto,60.16751,24.94251\n", encoding="utf-8"
    )
    path = tmp_path / "p.yaml"
    path.write_text(
        "name: q\nsources:\n  - path: feeds/a.csv\n  - path: feeds/b.csv\n"
        "output: out\ncache: cache\ntracking: null\n",
        encoding="utf-8",
    )
    result = subprocess.run(
        [sys.executable, "-m", "poiflow", "run", str(path)],
        capture_output=True,
        text=True,
        env=os.environ | {"COLUMNS": "200"},
    )
    assert result.returncode == 0, result.stderr
    said = " ".join((result.stdout + result.stderr).split())
    counts = json.loads((tmp_path / "out" / "run.json").read_text())["counts"]
    assert (counts["read"], counts["records"], counts["quarantined"]) == (4, 2, 2)
    assert (
        f"read 4 = 2 records + 2 quarantined (their reasons: {tmp_path / 'out'}/"
        "quarantine.parquet); 0 values withheld"
    ) in said
    assert pq.read_table(tmp_path / "out" / "quarantine.parquet").num_rows == 2
    # One repair of both feeds, said once with each feed's count.
    assert said.count("note:") == 1
    assert "note: 2 records had text escaped for the web" in said
    assert f': "Caf&#233; Aalto"; in {feeds}/: a.csv 1, b.csv 1' in said  # one value, once
    assert "2 records -> 1 place (1 from 2+ records)" in said
    assert "stage ┃ ran or reused ┃ seconds" in said  # each column named, as in the report
