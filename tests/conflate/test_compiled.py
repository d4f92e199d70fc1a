"""The compiled trees predict what LightGBM predicts (to rounding), are compiled once per
machine, and predict whatever a run writes, however few its pairs and whatever the cache
holds."""

from __future__ import annotations

import builtins
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from poiflow.conflate import compiled as compiled_module
from poiflow.conflate.compiled import CACHE_ENV, cache_folder, compiled_trees
from poiflow.conflate.features import FEATURES
from poiflow.conflate.matcher import Matcher, load_matcher, train_matcher


@pytest.fixture(scope="module")
def small_matcher() -> Matcher:
    """A small model over every feature, trained on pairs whose label follows two features."""
    rng = np.random.default_rng(5)
    n = 4_000
    features = {name: rng.random(n).astype(np.float32) for name in FEATURES}
    features["distance_m"] = rng.exponential(200, n).astype(np.float32)
    labels = ((features["name_token_set"] > 0.6) & (features["distance_m"] < 150)).astype(int)
    matcher = train_matcher(features, labels, seed=1, rounds=25, name="small")
    assert isinstance(matcher, Matcher)
    return matcher


def _features(rows: int, seed: int) -> dict[str, np.ndarray]:
    """Features as a run has them: float32, some missing (a record without coordinates)."""
    rng = np.random.default_rng(seed)
    features = {name: rng.random(rows).astype(np.float32) for name in FEATURES}
    features["distance_m"] = rng.exponential(200, rows).astype(np.float32)
    features["distance_m"][rng.random(rows) < 0.2] = np.nan
    features["name_tfidf"][rng.random(rows) < 0.1] = np.nan
    return features


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    return cache_folder()


def test_compiled_predictions_are_lightgbms(small_matcher: Matcher, cache: Path) -> None:
    # Rows of several chunks (the last one short), shared between threads.
    features = _features(2 * compiled_module._CHUNK_ROWS + 12_345, seed=2)
    trees = compiled_trees(small_matcher.booster.model_to_string())
    assert trees is not None
    columns = [features[name] for name in small_matcher.features]
    expected = small_matcher.booster.predict(np.column_stack(columns))
    # Many threads and one: the same numbers as LightGBM to rounding, and as each other.
    threaded = trees.predict(columns)
    np.testing.assert_allclose(threaded, expected, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(trees.predict(columns, threads=1), threaded)
    np.testing.assert_array_equal(trees.predict(columns, threads=3), threaded)
    assert expected.std() > 0.1  # the model separates the pairs: the check has teeth


def test_a_matcher_gives_the_same_probabilities_compiled_or_not_to_rounding(
    small_matcher: Matcher, cache: Path
) -> None:
    features = _features(5_000, seed=3)
    plain = pickle.loads(pickle.dumps(small_matcher))
    plain._tried = True  # as if compiling had been tried and failed: LightGBM itself
    fast = pickle.loads(pickle.dumps(small_matcher))
    assert fast.prepare()
    expected = plain.predict(features)
    np.testing.assert_allclose(fast.predict(features), expected, rtol=1e-6, atol=0)
    np.testing.assert_array_equal(fast.predict(features, compiled=False), expected)


def test_compiled_once_then_loaded_from_the_cache(small_matcher: Matcher, cache: Path) -> None:
    text = small_matcher.booster.model_to_string()
    assert compiled_trees(text, compile_now=False) is None  # not cached yet
    assert compiled_trees(text) is not None
    objects = list(cache.glob("*.o"))
    assert len(objects) == 1
    stamp = objects[0].stat().st_mtime_ns
    again = compiled_trees(text, compile_now=False)
    assert again is not None
    assert objects[0].stat().st_mtime_ns == stamp  # loaded, not written again
    # The object and its checksum, and no scratch files left behind.
    assert sorted(cache.iterdir()) == [objects[0], objects[0].with_suffix(".sha256")]


def test_a_matcher_compiles_at_its_first_prediction_however_few_its_pairs(
    small_matcher: Matcher, cache: Path
) -> None:
    matcher = pickle.loads(pickle.dumps(small_matcher))
    matcher.predict(_features(10, seed=4), compiled=False)
    assert not list(cache.glob("*.o"))  # asked for LightGBM: nothing compiled
    matcher.predict(_features(10, seed=4))
    assert len(list(cache.glob("*.o"))) == 1
    # Another process with the same model finds it cached.
    other = pickle.loads(pickle.dumps(small_matcher))
    assert other._compiled() is not None
    assert len(list(cache.glob("*.o"))) == 1


# A pair of the Helsinki example's run (two OpenStreetMap records 32 m apart, their names
# unlike) that LightGBM and the compiled trees, adding the trees' values in other orders,
# put one float32 step apart. When a run of few pairs predicted with whichever the cache
# offered, the Spark engine wrote this pair's probability another way than the local one
# once another process had compiled the model meanwhile.
TOLD_APART: dict[str, float] = {
    "distance_m": 31.98015785217285,
    "distance_over_extent": 0.2665013372898102,
    "name_token_set": 0.2222222089767456,
    "name_jaro_winkler": 0.5200450420379639,
    "name_partial": 0.2666666507720947,
    "name_best_alternate": 0.2857142686843872,
    "name_tfidf": 0.0,
    "name_area_commonness": 0.6931471824645996,
    "locality_match": 1.0,
    "located": 2.0,
    "category_agreement": 0.0,
    "same_source": 1.0,
}


def test_what_a_run_predicts_does_not_depend_on_what_the_cache_holds(cache: Path) -> None:
    model = load_matcher("default")
    features = {
        name: np.asarray([TOLD_APART.get(name, np.nan)], dtype=np.float32)
        for name in model.features
    }
    plain = model.predict(features, compiled=False)
    cold = load_matcher("default").predict(features)  # nothing cached: compiled now
    warm = load_matcher("default").predict(features)  # loaded from the cache
    assert plain[0] != cold[0], (
        "LightGBM and the compiled trees agree on this pair now (a new default model?): "
        "take a pair of a run where they do not"
    )
    assert warm[0] == cold[0]


def test_a_pickled_matcher_leaves_its_native_code_behind(
    small_matcher: Matcher, cache: Path
) -> None:
    matcher = pickle.loads(pickle.dumps(small_matcher))
    assert matcher.prepare()
    copy = pickle.loads(pickle.dumps(matcher))  # what a Spark executor receives
    assert copy._trees is None
    features = _features(100, seed=6)
    np.testing.assert_array_equal(copy.predict(features), matcher.predict(features))


def test_without_the_compiler_lightgbm_predicts(
    small_matcher: Matcher, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_import = builtins.__import__

    def no_lleaves(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "lleaves":
            raise ImportError("no lleaves here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_lleaves)
    matcher = pickle.loads(pickle.dumps(small_matcher))
    assert not matcher.prepare()
    features = _features(2_000, seed=7)
    expected = small_matcher.booster.predict(
        np.column_stack([features[n] for n in small_matcher.features])
    )
    x, y = small_matcher.calibration
    np.testing.assert_allclose(matcher.predict(features), np.interp(expected, x, y), atol=1e-6)
    assert not list(cache.glob("*.o"))


def test_a_damaged_cached_object_is_compiled_again(small_matcher: Matcher, cache: Path) -> None:
    text = small_matcher.booster.model_to_string()
    assert compiled_trees(text) is not None
    target = cache / f"{compiled_module._cache_key(text)}.o"
    good = target.read_bytes()
    # LLVM would abort the process on loading this: the checksum keeps it from trying.
    target.write_bytes(b"not an object file")
    assert compiled_trees(text, compile_now=False) is None
    trees = compiled_trees(text)
    assert trees is not None
    assert target.read_bytes() == good
    features = _features(1_000, seed=8)
    columns = [features[name] for name in small_matcher.features]
    np.testing.assert_allclose(
        trees.predict(columns), small_matcher.booster.predict(np.column_stack(columns)), atol=1e-12
    )


class _Shown:
    """The lines a progress display is asked to show."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def start(self, label: str, total: int | None) -> None:
        self.lines.append(label)

    def advance(self, records: int) -> None:
        pass

    def finish(self) -> None:
        pass


def test_a_run_that_compiles_its_model_says_so_once(
    small_matcher: Matcher, cache: Path, tmp_path: Path
) -> None:
    from poiflow.pipeline import conflate
    from poiflow.pipeline.stage_results import COMPILING

    from ..conftest import VENDOR_FEED

    model = tmp_path / "small.json.gz"
    small_matcher.save(model)
    first, second, unsupervised = _Shown(), _Shown(), _Shown()
    conflate([VENDOR_FEED], tmp_path / "one", model=model, progress=first, workers=1)
    conflate([VENDOR_FEED], tmp_path / "two", model=model, progress=second, workers=1)
    conflate([VENDOR_FEED], tmp_path / "em", model="em", progress=unsupervised, workers=1)
    assert first.lines == ["vendor_feed.csv", COMPILING]
    assert second.lines == ["vendor_feed.csv"]  # compiled by the first run: loaded
    assert unsupervised.lines == ["vendor_feed.csv"]  # nothing to compile
    assert len(list(cache.glob("*.o"))) == 1
