"""``poiflow.train``: a notebook's experiment goes on from its score to a model of its own,
trained from the truth, from no labels, or refined with a person's answers."""

from __future__ import annotations

import csv
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

import poiflow
from poiflow.conflate.decisions import LABEL_COLUMNS
from poiflow.conflate.evaluate import read_gold
from poiflow.conflate.fellegi_sunter import FellegiSunter
from poiflow.conflate.matcher import Matcher, load_matcher
from poiflow.pipeline.training import TRAIN_STAGES


class _Read:
    """What ingest tells a progress display: the sources begun, the records read."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.records = 0

    def start(self, label: str, total: int | None) -> None:
        self.started.append(label)

    def advance(self, records: int) -> None:
        self.records += records

    def finish(self) -> None:
        pass


def _sources(conflated: Path) -> list[Path]:
    return sorted((conflated.parent / "sources").glob("source_*.csv"))


def test_a_model_trained_on_the_truth_runs_as_well_as_its_holdout_says(
    conflated: Path, tmp_path: Path
) -> None:
    gold = conflated.parent / "sources" / "gold.csv"
    seen: list[str] = []
    read = _Read()
    trained = poiflow.train(
        _sources(conflated),
        tmp_path / "mine.json.gz",
        gold=gold,
        seed=3,
        progress=read,
        on_stage=seen.append,
    )
    assert seen == list(TRAIN_STAGES)
    assert read.started == [p.name for p in _sources(conflated)]
    assert read.records == sum(len(p.read_text().splitlines()) - 1 for p in _sources(conflated))
    assert trained.kind == "lightgbm"
    assert trained.model == tmp_path / "mine.json.gz"
    assert isinstance(load_matcher(trained.model), Matcher)
    assert 0 < trained.matches < trained.pairs
    assert set(trained.holdout) == {"precision", "recall", "f1"}
    assert trained.holdout["f1"] > 0.9
    assert repr(trained).endswith(f"held-out f1={trained.holdout['f1']:.4f})")
    # The loop closes: a run with the model, scored against the same truth.
    poiflow.conflate(_sources(conflated), tmp_path / "run", model=trained.model, workers=1)
    assert poiflow.evaluate(gold, tmp_path / "run").f1 > 0.95


def test_a_model_without_labels_gives_its_match_weights(conflated: Path, tmp_path: Path) -> None:
    seen: list[str] = []
    trained = poiflow.train(
        _sources(conflated), tmp_path / "em.json.gz", unsupervised=True, on_stage=seen.append
    )
    assert seen == list(TRAIN_STAGES)
    assert trained.kind == "fellegi-sunter"
    assert isinstance(load_matcher(trained.model), FellegiSunter)
    weights = trained.info["match_weights"]
    assert weights["phone"]["shared"] > 0 > weights["phone"]["different"]
    assert trained.matches == round(trained.info["prior"] * trained.pairs)
    assert trained.holdout == {}


def test_a_model_refined_with_answers_says_how_it_did_on_those_held_out(
    conflated: Path, tmp_path: Path
) -> None:
    # Thirty answers from the truth about the run's most doubtful pairs, and one about a
    # record the run lacks.
    truth = read_gold(conflated.parent / "sources" / "gold.csv")
    place = dict(zip(zip(truth["source"], truth["id"], strict=True), truth["place"], strict=True))
    pairs = pl.DataFrame(pq.read_table(conflated / "pairs.parquet"))
    doubtful = pairs.sort((pl.col("match_probability") - 0.5).abs()).head(30)
    labels = tmp_path / "labels.csv"
    with labels.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(LABEL_COLUMNS)
        at = "2026-12-06T12:00:00+00:00"
        for ls, li, rs, ri, p in doubtful.select(
            "left_source", "left_id", "right_source", "right_id", "match_probability"
        ).iter_rows():
            same = place[(ls, li)] == place[(rs, ri)]
            out.writerow([ls, li, rs, ri, "match" if same else "different", p, at, "test"])
        out.writerow(["nowhere", "1", ls, li, "match", "", at, "test"])
    records = conflated / "records.parquet"
    seen: list[str] = []
    trained = poiflow.train(
        [records], tmp_path / "refined.json.gz", labels=labels, on_stage=seen.append
    )
    assert seen == list(TRAIN_STAGES)
    assert trained.kind == "refined"
    assert trained.pairs == 30
    assert trained.unknown == 1
    assert trained.info["base"] == load_matcher("default").version
    assert trained.before["pairs"] == trained.after["pairs"] == 10  # a third held out
    assert {"accuracy", "log_loss", "precision", "recall", "f1"} <= set(trained.after)
    assert load_matcher(trained.model).describe()["refined_on"]["pairs"] == 30
    # The same answers in a decisions file written by hand (the keys and the label, no
    # more) teach the same model.
    decided = tmp_path / "decisions.csv"
    kept = list(LABEL_COLUMNS[:5])
    pl.read_csv(labels, infer_schema=False).select(kept).write_csv(decided)
    again = poiflow.train([records], tmp_path / "decided.json.gz", labels=decided)
    assert (again.pairs, again.unknown, again.before, again.after) == (
        trained.pairs,
        trained.unknown,
        trained.before,
        trained.after,
    )
    same = load_matcher(again.model).describe()["refined_on"]
    assert same == load_matcher(trained.model).describe()["refined_on"]


def test_train_asks_for_one_kind_of_teaching(conflated: Path, tmp_path: Path) -> None:
    with pytest.raises(poiflow.OutputError, match="a folder, not a file"):
        poiflow.train(_sources(conflated), tmp_path, unsupervised=True)
    with pytest.raises(poiflow.InputError, match=r"labels\.csv: the labels file does not exist"):
        poiflow.train(
            [conflated / "records.parquet"], tmp_path / "m.json.gz", labels=tmp_path / "labels.csv"
        )
    with pytest.raises(poiflow.ConfigError, match="give one of"):
        poiflow.train(_sources(conflated), tmp_path / "m.json.gz")
    with pytest.raises(poiflow.ConfigError, match="give one of"):
        poiflow.train(
            _sources(conflated),
            tmp_path / "m.json.gz",
            unsupervised=True,
            gold=conflated.parent / "sources" / "gold.csv",
        )
    assert not (tmp_path / "m.json.gz").exists()
