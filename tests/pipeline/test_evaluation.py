"""``poiflow.evaluate`` and ``poiflow.decide``: the notebook's way to score a run against
the truth and to overrule it, saying what the commands say."""

from __future__ import annotations

import html
import json
import re
import shutil
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

import poiflow
from poiflow.conflate.evaluate import read_gold, score_membership
from tests.conftest import poiflow as run_cli


def test_evaluate_scores_a_run_as_the_command_does(conflated: Path) -> None:
    gold = conflated.parent / "sources" / "gold.csv"
    found = poiflow.evaluate(gold, conflated, sweep=True)
    said = run_cli(
        "evaluate", "--gold", str(gold), "--membership", str(conflated), "--sweep", "--json"
    )
    assert said.returncode == 0, said.stderr
    assert found.as_dict() == json.loads(said.stdout)
    # The scores are those of the membership against the truth, whichever way it is named.
    membership = pq.read_table(conflated / "membership.parquet")
    assert found.scores == score_membership(membership, read_gold(gold))
    assert poiflow.evaluate(gold, conflated / "membership.parquet").scores == found.scores
    assert (found.precision, found.recall, found.f1) == (
        found.scores.precision,
        found.scores.recall,
        found.scores.f1,
    )
    assert found.said == "from run.json"
    assert found.sweep is not None
    assert found.sweep.height > 1


def test_evaluate_gives_every_error_pair_with_its_stage_and_features(conflated: Path) -> None:
    gold = conflated.parent / "sources" / "gold.csv"
    found = poiflow.evaluate(gold, conflated)
    assert found.diagnosis is not None
    assert found.errors is not None
    counts = found.diagnosis.counts()
    assert found.errors.height == sum(counts.values()) > 0
    by_kind = found.errors.group_by("error", "stage").len()
    assert {f"{e}_{s}": n for e, s, n in by_kind.iter_rows()} == {
        kind: n for kind, n in counts.items() if n
    }
    # Each wrong pair is one the run joined and the truth keeps apart, and a missed one
    # the other way round.
    wrong = found.errors.filter(pl.col("error") == "wrong")
    assert (wrong["left_place_id"] == wrong["right_place_id"]).all()
    assert (wrong["left_place"] != wrong["right_place"]).all()
    missed = found.errors.filter(pl.col("error") == "missed")
    assert (missed["left_place"] == missed["right_place"]).all()
    assert (missed["left_place_id"] != missed["right_place_id"]).all()
    assert "name_jaro_winkler" in found.errors.columns  # the features, for a notebook
    quick = poiflow.evaluate(gold, conflated, features=False)
    assert quick.errors is not None
    assert "name_jaro_winkler" not in quick.errors.columns
    assert quick.errors.height == found.errors.height


def test_evaluate_holds_the_golden_records_to_the_true_places(conflated: Path) -> None:
    sources = conflated.parent / "sources"
    found = poiflow.evaluate(
        sources / "gold.csv", conflated, gold_places=sources / "gold_places.csv"
    )
    assert found.golden is not None
    report = found.as_dict()["golden"]
    assert report == found.golden.as_dict()
    assert "name" in json.dumps(report)


def test_evaluate_without_pairs_scores_and_says_it_cannot_trace(
    conflated: Path, tmp_path: Path
) -> None:
    shutil.copy(conflated / "membership.parquet", tmp_path / "membership.parquet")
    gold = conflated.parent / "sources" / "gold.csv"
    found = poiflow.evaluate(gold, tmp_path)
    assert found.diagnosis is None
    assert found.errors is None
    assert found.scores == poiflow.evaluate(gold, conflated).scores
    assert set(found.as_dict()) == set(found.scores.as_dict())
    with pytest.raises(poiflow.InputError, match="no scored pairs to trace the errors") as caught:
        poiflow.evaluate(gold, tmp_path, sweep=True)
    assert caught.value.path == str(tmp_path / "pairs.parquet")


def test_evaluate_refuses_the_truth_of_other_inputs(conflated: Path, tmp_path: Path) -> None:
    other = tmp_path / "gold.csv"
    other.write_text("source,id,place\nsomewhere,1,P1\nsomewhere,2,P1\n")
    with pytest.raises(poiflow.InputError, match="its sources are somewhere; the run's are"):
        poiflow.evaluate(other, conflated)
    with pytest.raises(poiflow.InputError, match="no such file"):
        poiflow.evaluate(conflated.parent / "sources" / "gold.csv", tmp_path / "nowhere.parquet")


@pytest.mark.parametrize("threshold", [1.5, -0.1, float("nan")])
def test_a_threshold_that_is_no_probability_is_refused(conflated: Path, threshold: float) -> None:
    # As the command refuses --threshold 1.5: a threshold above 1 would call every error
    # the matcher's.
    with pytest.raises(poiflow.ConfigError, match=f"threshold {threshold} is not a probability"):
        poiflow.evaluate(conflated.parent / "sources" / "gold.csv", conflated, threshold=threshold)


def test_decide_writes_a_decision_the_next_run_follows(conflated: Path, tmp_path: Path) -> None:
    folder = tmp_path / "run"
    shutil.copytree(conflated, folder)
    membership = pl.DataFrame(pq.read_table(folder / "membership.parquet"))
    sizes = membership.with_columns(pl.len().over("place_id").alias("n"))
    together = sizes.filter(pl.col("n") > 1).sort("place_id", "source", "id").head(2)
    (a_source, a_id), (b_source, b_id) = together.select("source", "id").rows()
    said = poiflow.decide(folder, f"{a_source}:{a_id}", f"{b_source}:{b_id}", label="different")
    assert said.together
    assert said.overrules
    assert (said.left, said.right) == ((a_source, a_id), (b_source, b_id))
    assert said.labels == folder / "labels.csv"
    assert said.line == 2
    sources = sorted((conflated.parent / "sources").glob("source_*.csv"))
    again = tmp_path / "again"
    poiflow.conflate(sources, again, workers=1, decisions=said.labels)
    after = pl.DataFrame(pq.read_table(again / "membership.parquet"))
    place = dict(
        zip(zip(after["source"], after["id"], strict=True), after["place_id"], strict=True)
    )
    assert place[(a_source, a_id)] != place[(b_source, b_id)]
    with pytest.raises(poiflow.InputError, match="no source 'nowhere' in this run"):
        poiflow.decide(folder, "nowhere:1", f"{a_source}:{a_id}", label="match")
    # An answer no run could read is refused, and the file is left as it was.
    before = said.labels.read_bytes()
    with pytest.raises(poiflow.ConfigError, match="label 'yes' is not one of match, different"):
        poiflow.decide(folder, f"{a_source}:{a_id}", f"{b_source}:{b_id}", label="yes")  # type: ignore[arg-type]
    assert said.labels.read_bytes() == before


def test_a_notebook_shows_the_scores_and_where_the_errors_are(
    conflated: Path, tmp_path: Path
) -> None:
    gold = conflated.parent / "sources" / "gold.csv"
    found = poiflow.evaluate(gold, conflated)
    assert found.diagnosis is not None
    assert repr(found) == (
        f"Evaluation(precision={found.precision:.4f}, recall={found.recall:.4f}, "
        f"f1={found.f1:.4f}, bcubed_f1={found.scores.bcubed_f1:.4f}, "
        f"records={found.scores.records:,}, errors={found.diagnosis.errors.height:,})"
    )
    shown = found._repr_html_()
    assert f"<td>pairwise</td><td>{found.precision:.4f}</td>" in shown
    assert f"<td>{found.f1:.4f}</td>" in shown
    counts = found.diagnosis.counts()
    for kind in ("missed_blocking", "missed_matcher", "wrong_matcher"):
        error, stage = kind.split("_")
        assert f"<td>{error}</td><td>{stage}</td><td" in shown
        assert f">{counts[kind]:,}</td>" in shown
    assert "decision" not in shown  # the run followed no person's decisions
    shutil.copy(conflated / "membership.parquet", tmp_path / "membership.parquet")
    untraced = poiflow.evaluate(gold, tmp_path)
    assert "errors untraced" in untraced._repr_html_()
    assert repr(untraced).endswith("errors=untraced)")


def test_a_notebook_shows_a_pairs_story_and_a_places(conflated: Path) -> None:
    membership = pl.DataFrame(pq.read_table(conflated / "membership.parquet"))
    sizes = membership.with_columns(pl.len().over("place_id").alias("n"))
    place = sizes.filter(pl.col("n") > 1).sort("place_id", "source", "id")
    (a_source, a_id), (b_source, b_id) = place.head(2).select("source", "id").rows()
    story = poiflow.explain_pair(conflated, f"{a_source}:{a_id}", f"{b_source}:{b_id}")
    shown = story._repr_html_()
    assert html.escape(story.verdict) in shown
    assert f"{a_source}:{a_id}" in shown
    assert f"{b_source}:{b_id}" in shown
    assert shown.count('<svg class="waterfall"') == 1
    # The chart's own rules alone: the page's style sheet would restyle the notebook.
    styles = re.findall(r"<style>(.*?)</style>", shown, re.S)
    rules = [rule for style in styles for rule in re.findall(r"([^{}]+)\{", style)]
    assert rules
    assert all(rule.strip().startswith("svg.waterfall") for rule in rules)
    told = poiflow.explain_place(conflated, f"{a_source}:{a_id}")
    shown = told._repr_html_()
    assert shown.count("<tr>") == 1 + 7 + 2  # the head, each attribute, link and took
    for record in told.records:
        assert f"<th>{record['source']}:{record['id']}</th>" in shown
        assert f">{html.escape(told.said(record, 'name'))}</td>" in shown
    agreeing = sum(v is True for r in told.records for v in r["agrees"].values())
    differing = sum(v is False for r in told.records for v in r["agrees"].values())
    assert shown.count("background:#e3f4e1") == agreeing > 0
    assert shown.count("background:#fff3c4") == differing


def test_evaluate_says_what_moved_the_matchers_mistakes(conflated: Path, tmp_path: Path) -> None:
    gold = conflated.parent / "sources" / "gold.csv"
    found = poiflow.evaluate(gold, conflated)
    drivers = found.drivers()
    said = run_cli(
        "evaluate", "--gold", str(gold), "--membership", str(conflated), "--drivers", "--json"
    )
    assert said.returncode == 0, said.stderr
    assert drivers.to_dicts() == json.loads(said.stdout)["drivers"]
    assert set(drivers["error"].to_list()) <= {"missed", "wrong"}
    with pytest.raises(poiflow.InputError, match="without their features"):
        poiflow.evaluate(gold, conflated, features=False).drivers()
    for name in ("membership.parquet", "pairs.parquet", "run.json", "records.parquet"):
        shutil.copy(conflated / name, tmp_path / name)
    with pytest.raises(poiflow.InputError, match=r"needs the run's model\.json\.gz"):
        poiflow.evaluate(gold, tmp_path).drivers()


def test_a_notebook_asks_the_questions_label_asks_and_answers_them(
    conflated: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "run"
    shutil.copytree(conflated, folder)
    asked = poiflow.questions(folder, count=8)
    assert asked.height == 8
    assert asked.columns[:7] == [
        "left_source",
        "left_id",
        "right_source",
        "right_id",
        "match_probability",
        "same_place",
        "reason",
    ]
    # Each record described as the run normalized it.
    records = pl.DataFrame(
        pq.read_table(folder / "records.parquet", columns=["source", "id", "names"])
    )
    name = {(s, i): n["primary"] for s, i, n in records.select("source", "id", "names").iter_rows()}
    for row in asked.iter_rows(named=True):
        assert row["left_name"] == (name[(row["left_source"], row["left_id"])] or "")
        assert row["right_name"] == (name[(row["right_source"], row["right_id"])] or "")
    # Answered, a pair is not asked again; the next most useful one takes its place.
    first = asked.row(0, named=True)
    poiflow.decide(  # a row's keys, as (source, id): no text to build
        folder,
        (first["left_source"], first["left_id"]),
        (first["right_source"], first["right_id"]),
        label="match",
    )
    again = poiflow.questions(folder, count=8)
    keys = ["left_source", "left_id", "right_source", "right_id"]
    assert again.select(keys).rows()[:7] == asked.select(keys).rows()[1:]
    assert again.height == 8
    with pytest.raises(poiflow.InputError):
        poiflow.questions(tmp_path / "nowhere")
    for count in (0, -1):
        with pytest.raises(poiflow.ConfigError, match=f"count is {count}: ask for 1 pair"):
            poiflow.questions(folder, count=count)
