from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from poiflow.conflate.evaluate import read_gold
from poiflow.conflate.features import FEATURES
from poiflow.conflate.matcher import ModelError, load_matcher, train_matcher
from poiflow.conflate.training import labelled_pairs
from poiflow.errors import OutputError

from .conftest import World


@pytest.fixture(scope="module")
def labelled(world: World) -> tuple[dict[str, np.ndarray], np.ndarray]:
    return labelled_pairs(world.folder / "records.parquet", read_gold(world.gold))


def test_train_save_load_round_trip(
    labelled: tuple[dict[str, np.ndarray], np.ndarray], tmp_path: Path
) -> None:
    features, labels = labelled
    matcher = train_matcher(features, labels, seed=3, rounds=40, name="small")
    assert matcher.info["holdout"]["f1"] > 0.9
    path = matcher.save(tmp_path / "m.json.gz")
    again = load_matcher(path)
    assert again.features == FEATURES
    assert again.version == "small"
    np.testing.assert_array_equal(again.predict(features), matcher.predict(features))
    # Same data and seed: the same model, byte for byte.
    twin = train_matcher(features, labels, seed=3, rounds=40, name="small")
    assert twin.save(tmp_path / "twin.json.gz").read_bytes() == path.read_bytes()


def test_a_model_is_written_whole_or_not_at_all(
    labelled: tuple[dict[str, np.ndarray], np.ndarray],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    features, labels = labelled
    matcher = train_matcher(features, labels, seed=3, rounds=10, name="small")
    path = matcher.save(tmp_path / "m.json.gz")
    before = path.read_bytes()
    # A run stopped while it writes the model again: the old model stays, whole, and
    # nothing half-written is left beside it.
    from poiflow.conflate import matcher as module

    def stopped(*_: object, **__: object) -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr(module.json, "dumps", stopped)
    with pytest.raises(KeyboardInterrupt):
        matcher.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json.gz"]
    # A folder is not a model file.
    with pytest.raises(OutputError, match="cannot write the model here: a folder, not a file"):
        matcher.save(tmp_path)


def test_a_model_from_before_a_feature_was_added_still_scores(
    labelled: tuple[dict[str, np.ndarray], np.ndarray], tmp_path: Path
) -> None:
    """A model file lists its features: one trained before ``page_match`` existed reads
    its own columns of a run that computes every feature."""
    features, labels = labelled
    older = tuple(name for name in FEATURES if name != "page_match")
    made = train_matcher(features, labels, seed=3, rounds=20, name="older", feature_names=older)
    again = load_matcher(made.save(tmp_path / "older.json.gz"))
    assert again.features == older
    np.testing.assert_array_equal(
        again.predict(features), again.predict({name: features[name] for name in older})
    )
    np.testing.assert_array_equal(again.predict(features), made.predict(features))


def test_probabilities_are_calibrated_and_monotone(
    labelled: tuple[dict[str, np.ndarray], np.ndarray],
) -> None:
    features, labels = labelled
    probability = load_matcher().predict(features)
    assert ((probability >= 0) & (probability <= 1)).all()
    x, y = load_matcher().calibration
    assert (np.diff(y) >= 0).all()
    assert (np.diff(x) >= 0).all()
    # Of the pairs scored above 0.9, nearly all are matches; of those below 0.1, nearly none.
    assert labels[probability > 0.9].mean() > 0.95
    assert labels[probability < 0.1].mean() < 0.02


def test_default_model_generalizes_to_an_unseen_world(
    labelled: tuple[dict[str, np.ndarray], np.ndarray],
) -> None:
    features, labels = labelled
    # A world of one dense city (shared buildings, look-alikes, chain branches) it never saw.
    predicted = load_matcher().predict(features) >= 0.5
    tp = (predicted & (labels == 1)).sum()
    assert tp / predicted.sum() > 0.9
    assert tp / labels.sum() > 0.9


def test_bad_model_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="cannot read"):
        load_matcher(tmp_path / "missing.json.gz")
    junk = tmp_path / "junk.json.gz"
    junk.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="not a poiflow model"):
        load_matcher(junk)
    payload = json.loads(
        gzip.decompress(
            (
                Path(__file__).resolve().parents[2] / "src/poiflow/conflate/models/default.json.gz"
            ).read_bytes()
        )
    )
    payload["features"] = [*payload["features"], "wifi_password_match"]
    other = tmp_path / "other.json.gz"
    other.write_bytes(gzip.compress(json.dumps(payload).encode()))
    with pytest.raises(ModelError, match=r"wifi_password_match.*poiflow train"):
        load_matcher(other)
    payload["features"] = payload["features"][:-1]
    for booster, says in (
        ("not a model", "not a LightGBM model"),
        (
            payload["booster"].replace(
                f"max_feature_idx={len(payload['features']) - 1}", "max_feature_idx=3"
            ),
            "reads 4",
        ),
    ):
        broken = tmp_path / "broken.json.gz"
        broken.write_bytes(gzip.compress(json.dumps({**payload, "booster": booster}).encode()))
        with pytest.raises(ModelError, match=says):
            load_matcher(broken)
    payload["version"] = 99
    newer = tmp_path / "newer.json.gz"
    newer.write_bytes(gzip.compress(json.dumps(payload).encode()))
    with pytest.raises(ModelError, match="newer"):
        load_matcher(newer)


def test_training_needs_both_classes() -> None:
    with pytest.raises(ValueError, match="both"):
        train_matcher({n: np.zeros(5, np.float32) for n in FEATURES}, np.zeros(5))


def test_loading_a_model_does_not_import_lightgbm() -> None:
    # LightGBM (and the scikit-learn it imports) costs a command about a second: a model
    # is parsed into a booster only when LightGBM itself must predict or train.
    code = (
        "import sys\n"
        "from poiflow.conflate.matcher import load_matcher\n"
        "m = load_matcher()\n"
        "print('lightgbm' in sys.modules, len(m.text) > 1000)\n"
        "m.booster\n"
        "print('lightgbm' in sys.modules)\n"
    )
    said = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert said.stdout.split() == ["False", "True", "True"]


# Prints whether scikit-learn came in with LightGBM, the shipped model's raw predictions
# of some made-up pairs by LightGBM itself, and whether scikit-learn can be imported after.
_LIGHTGBM_PROBE = """
import sys
import numpy as np
from poiflow import _imports
from poiflow.conflate.matcher import lightgbm, load_matcher
if sys.argv[1] == "command":
    _imports.command_process()
lgb = lightgbm()
print("sklearn" in sys.modules)
m = load_matcher()
x = np.random.default_rng(1).random((50, len(m.features))).astype(np.float32)
print(",".join(f"{p:.12f}" for p in m.booster.predict(x)))
import sklearn.base
print(True)
"""


def test_lightgbm_comes_without_scikit_learn_only_in_the_command() -> None:
    # The command owns its process and never uses LightGBM's scikit-learn estimators
    # (1.5 s of imports); a notebook or program that imports poiflow gets them.
    said = {}
    for process in ("command", "library"):
        run = subprocess.run(
            [sys.executable, "-c", _LIGHTGBM_PROBE, process], capture_output=True, text=True
        )
        assert run.returncode == 0, run.stderr
        said[process] = run.stdout.split()
    assert said["command"][0] == "False"
    assert said["library"][0] == "True"
    assert said["command"][1] == said["library"][1]  # the same booster either way
    assert len(set(said["command"][1].split(","))) > 10
    assert said["command"][2] == said["library"][2] == "True"  # nothing kept out after
