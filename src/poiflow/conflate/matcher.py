"""The learned matcher: pair features to a calibrated match probability.

A gradient-boosted model (LightGBM) scores each pair; an isotonic map fitted on held-out
pairs turns its score into a probability that means what it says (of the pairs scored 0.8,
about 80% are matches). A model is one versioned file: the booster, the calibration, the
feature list it was trained on, and how it was trained. poiflow ships a default model
trained on its own generator (``models/default.json.gz``). A model file may instead hold
an unsupervised Fellegi-Sunter model (:mod:`poiflow.conflate.fellegi_sunter`); both kinds
load with :func:`load_matcher` and score pairs the same way.
"""

from __future__ import annotations

import gzip
import json
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Final

import numpy as np

from poiflow._imports import is_command_process, without
from poiflow.conflate.compiled import CompiledTrees, compiled_trees
from poiflow.conflate.feature_names import FEATURES
from poiflow.conflate.fellegi_sunter import KIND as FELLEGI_SUNTER
from poiflow.conflate.fellegi_sunter import FellegiSunter
from poiflow.errors import InputError, OutputError

if TYPE_CHECKING:  # LightGBM costs ~1 s to import (it imports scikit-learn): on first use
    from types import ModuleType

    import lightgbm as lgb

__all__ = [
    "DEFAULT_MODEL",
    "UNSUPERVISED",
    "AnyMatcher",
    "Matcher",
    "ModelError",
    "lightgbm",
    "load_matcher",
    "save_model",
    "train_matcher",
]

FORMAT: Final = "poiflow-matcher"
FORMAT_VERSION: Final = 1
DEFAULT_MODEL: Final = "default"
# The model name that asks conflate to fit a Fellegi-Sunter model on the run's own pairs.
UNSUPERVISED: Final = "em"
_PARAMS: Final = {
    "objective": "binary",
    "learning_rate": 0.1,
    "num_leaves": 31,
    "min_data_in_leaf": 40,
    "feature_fraction": 0.9,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "deterministic": True,
    "force_row_wise": True,
    "num_threads": 2,
    "verbosity": -1,
}


_PARALLEL_ROWS: Final = 10_000  # fewer pairs are predicted on one thread


class ModelError(InputError):
    """A model file is missing, not a poiflow model, or made for other features."""


@dataclass
class Matcher:
    """A trained matcher: ``predict`` maps feature columns to match probabilities.

    Attributes:
        model: The LightGBM model, or its text (a model file's): parsed into a booster
            only when LightGBM itself is needed. Compiled trees predict from the text, and
            importing LightGBM costs a command about a second.
        features: The feature names, in the order the booster expects.
        calibration: Isotonic map from raw score to probability, as (x, y) knots.
        threshold: The probability above which a pair is called a match.
        info: How and on what the model was trained, and its held-out metrics.
    """

    model: lgb.Booster | str
    features: tuple[str, ...]
    calibration: tuple[np.ndarray, np.ndarray]
    threshold: float = 0.5
    info: dict[str, Any] = field(default_factory=dict)
    # The clustering bar for joining records of one source: lower than Fellegi-Sunter's
    # (``clustering.SAME_SOURCE``), since a trained model sees whether a pair's records
    # come from one source (``same_source``) and has weighed it already. On three
    # generated worlds no benchmark uses, 0.8 gave the best pair F1 of 0.8, 0.9 and 0.95.
    source_bar: ClassVar[float] = 0.8
    _trees: CompiledTrees | None = field(default=None, init=False, repr=False, compare=False)
    # Whether the compiled trees were looked for (``_trees`` is None where they could not
    # be had: LightGBM predicts).
    _tried: bool = field(default=False, init=False, repr=False, compare=False)

    def __getstate__(self) -> dict[str, Any]:
        # Compiled trees are native code in this process: a copy elsewhere (a Spark
        # executor) loads them again from its own cache.
        return {**self.__dict__, "_trees": None, "_tried": False}

    @property
    def booster(self) -> lgb.Booster:
        """The LightGBM booster (parsed from the model's text on first use)."""
        if isinstance(self.model, str):
            booster: lgb.Booster = lightgbm().Booster(model_str=self.model)
            self.model = booster
        return self.model

    @property
    def text(self) -> str:
        """The model as LightGBM writes it (what a model file and the compiler take)."""
        return self.model if isinstance(self.model, str) else self.model.model_to_string()

    def prepare(self, on_compile: Callable[[], None] | None = None) -> bool:
        """Load the compiled trees now (compiling them first, a few seconds once per
        machine, unless cached), rather than at the first prediction. True if compiled
        trees will be used. ``on_compile`` is called just before they are compiled (not
        when they are loaded): a progress display says so."""
        return self._compiled(on_compile) is not None

    def _compiled(self, on_compile: Callable[[], None] | None = None) -> CompiledTrees | None:
        """The compiled trees, or None where they cannot be had (LightGBM predicts).

        Every prediction that can use them does, however few its pairs and whether or not
        they were cached: the compiled trees add the trees' values in another order than
        LightGBM, so one pair in some tens of thousands gets a probability a bit apart
        (one float32 step). Were the choice made by the number of pairs or by the cache,
        a run's output would depend on the machine's history, and the two engines (which
        predict in shards of different sizes) would not write the same bytes."""
        if not self._tried:
            self._trees = compiled_trees(self.text, on_compile=on_compile)
            self._tried = True
        return self._trees

    @property
    def version(self) -> str:
        """A short identifier of the model: its name and training seed."""
        return str(self.info.get("name", "custom"))

    def predict(self, features: Mapping[str, np.ndarray], *, compiled: bool = True) -> np.ndarray:
        """Calibrated match probabilities for the pairs whose features are given.

        Args:
            features: The pairs' feature columns.
            compiled: False: LightGBM itself, for a model that predicts once (the held-out
                pairs of one just trained), where compiling would cost more than it
                saves. Its probabilities may differ from the compiled trees' in the last
                bit: what a run writes is predicted compiled.
        """
        missing = [name for name in self.features if name not in features]
        if missing:
            raise ModelError(
                f"the model needs features this run did not compute: {', '.join(missing)}"
            )
        rows = len(features[self.features[0]]) if self.features else 0
        if rows == 0:
            return np.zeros(0, dtype=np.float32)
        trees = self._compiled() if compiled else None
        x, y = self.calibration
        if trees is not None:
            raw = trees.predict([np.asarray(features[name]) for name in self.features])
            return np.asarray(np.interp(raw, x, y), dtype=np.float32)
        # LightGBM itself, every tree (no prediction early stopping): the compiled trees'
        # probabilities to rounding.
        matrix = np.column_stack([features[name] for name in self.features]).astype(np.float32)
        raw = np.asarray(
            self.booster.predict(
                matrix,
                # One thread for a request's few rows: OpenMP's threads spin for a while
                # after each parallel region, burning a core that others need.
                num_threads=2 if len(matrix) >= _PARALLEL_ROWS else 1,
            )
        )
        return np.asarray(np.interp(raw, x, y), dtype=np.float32)

    def describe(self) -> dict[str, Any]:
        """How and on what the model was trained (for run reports)."""
        return dict(self.info)

    def to_payload(self) -> dict[str, Any]:
        """The model as JSON-ready data (the body of a model file)."""
        return {
            "kind": "lightgbm",
            "features": list(self.features),
            "threshold": self.threshold,
            "calibration": {"x": self.calibration[0].tolist(), "y": self.calibration[1].tolist()},
            "info": self.info,
            "booster": self.text,
        }

    def save(self, path: str | Path) -> Path:
        """Write the model as one gzip-compressed JSON file."""
        return save_model(self, path)


AnyMatcher = Matcher | FellegiSunter


def save_model(model: AnyMatcher, path: str | Path) -> Path:
    """Write a model of either kind as one gzip-compressed JSON file, whole or not at all
    (a file beside it, then renamed: a model a run stopped writing is no model).

    Raises:
        OutputError: ``path`` is a folder, or cannot be written (nothing is left behind).
    """
    path = Path(path)
    refuse_model_path(path)
    payload = {"format": FORMAT, "version": FORMAT_VERSION, **model.to_payload()}
    partial = path.with_name(f".{path.name}.partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # No name or time in the gzip header: the same model is the same bytes.
        with (
            partial.open("wb") as raw,
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as handle,
        ):
            handle.write(json.dumps(payload, sort_keys=True).encode("utf-8"))
        partial.replace(path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise OutputError(f"cannot write the model ({exc.strerror or exc})", path=path) from exc
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return path


def refuse_model_path(path: Path) -> None:
    """Refuse a model file's path that is a folder (before the work that makes the model).

    Raises:
        OutputError: ``path`` is a folder.
    """
    if path.is_dir():
        raise OutputError("cannot write the model here: a folder, not a file", path=path)


def lightgbm() -> ModuleType:
    """LightGBM, imported on first use. In the ``poiflow`` command's own process it is
    imported without its scikit-learn estimators, which poiflow never uses (scikit-learn
    brings SciPy's statistics: 2.4 s to import LightGBM, 0.9 s without them; ``poiflow
    explain`` 3.3 s, 2.0 s). Elsewhere (a notebook, a user's program) it is imported
    whole, as its user may want them."""
    if "lightgbm" in sys.modules or not is_command_process():
        import lightgbm as lgb

        return lgb
    with without(["sklearn"]):
        import lightgbm as lgb
    return lgb


def load_matcher(model: str | Path = DEFAULT_MODEL) -> AnyMatcher:
    """Load a model file of either kind, or the shipped default (``"default"``).

    Raises:
        ModelError: The file is missing, not a poiflow model, of a newer format, or needs
            features this version of poiflow does not compute.
    """
    if str(model) == DEFAULT_MODEL:
        data = resources.files("poiflow.conflate").joinpath("models/default.json.gz").read_bytes()
        where: str | Path = "the default model"
    else:
        where = Path(model)
        try:
            data = where.read_bytes()
        except OSError as exc:
            raise ModelError(f"cannot read the model ({exc.strerror})", path=where) from exc
    try:
        payload = json.loads(gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data)
    except (OSError, ValueError) as exc:
        raise ModelError(
            "not a poiflow model file (expected gzip-compressed JSON)", path=where
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ModelError("not a poiflow model file (no 'format: poiflow-matcher')", path=where)
    if int(payload.get("version", 0)) > FORMAT_VERSION:
        raise ModelError(
            f"model format {payload['version']} is newer than this poiflow reads "
            f"({FORMAT_VERSION}); upgrade poiflow",
            path=where,
        )
    unknown = [name for name in payload["features"] if name not in FEATURES]
    if unknown:
        raise ModelError(
            f"the model was trained with features poiflow does not compute: {', '.join(unknown)}; "
            "retrain it with 'poiflow train'",
            path=where,
        )
    if payload.get("kind") == FELLEGI_SUNTER:
        try:
            return FellegiSunter.from_payload(payload)
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"a broken Fellegi-Sunter model ({exc})", path=where) from exc
    calibration = (
        np.asarray(payload["calibration"]["x"], dtype=float),
        np.asarray(payload["calibration"]["y"], dtype=float),
    )
    return Matcher(
        _booster_text(payload, where),
        tuple(payload["features"]),
        calibration,
        float(payload.get("threshold", 0.5)),
        dict(payload.get("info", {})),
    )


def _booster_text(payload: Mapping[str, Any], where: str | Path) -> str:
    """The LightGBM text of a model file, checked without LightGBM (parsed only when
    needed): a LightGBM model that reads as many features as the file lists."""
    text = payload.get("booster")
    if not isinstance(text, str):
        raise ModelError("a broken model: no LightGBM booster in it", path=where)
    header = text.split("\nTree=", 1)[0]
    found = re.search(r"^max_feature_idx=(\d+)$", header, re.MULTILINE)
    if not header.startswith("tree") or found is None:
        raise ModelError("a broken model: its 'booster' is not a LightGBM model", path=where)
    if int(found.group(1)) + 1 != len(payload["features"]):
        raise ModelError(
            f"a broken model: its booster reads {int(found.group(1)) + 1} features, "
            f"its feature list has {len(payload['features'])}",
            path=where,
        )
    return text


def train_matcher(
    features: Mapping[str, np.ndarray],
    labels: np.ndarray,
    *,
    seed: int = 0,
    rounds: int = 120,
    holdout: float = 0.2,
    name: str = "custom",
    feature_names: tuple[str, ...] = FEATURES,
) -> Matcher:
    """Fit a matcher on labelled pairs.

    Args:
        features: Feature columns of the pairs (from ``pair_features``).
        labels: 1 for a match, 0 for a non-match, per pair.
        seed: Fixes the split and the boosting: same data, same seed, same model.
        rounds: Boosting rounds (trees).
        holdout: Share of pairs kept out of training, to fit the calibration and report
            held-out precision, recall and F1.
        name: A name recorded in the model file.
        feature_names: Which features to use.
    """
    labels = np.asarray(labels, dtype=np.int8)
    if labels.size == 0 or labels.min() == labels.max():
        msg = "training needs both matching and non-matching pairs"
        raise ValueError(msg)
    lgb = lightgbm()
    matrix = np.column_stack([features[n] for n in feature_names]).astype(np.float32)
    rng = np.random.default_rng(seed)
    held = rng.random(len(labels)) < holdout
    data = lgb.Dataset(
        matrix[~held], labels[~held], feature_name=list(feature_names), free_raw_data=True
    )
    booster = lgb.train({**_PARAMS, "seed": seed}, data, num_boost_round=rounds)
    raw = np.asarray(booster.predict(matrix[held]))
    calibration = _isotonic(raw, labels[held])
    matcher = Matcher(booster, feature_names, calibration)
    probability = matcher.predict({n: features[n][held] for n in feature_names}, compiled=False)
    predicted = probability >= matcher.threshold
    tp = int((predicted & (labels[held] == 1)).sum())
    precision = tp / max(1, int(predicted.sum()))
    recall = tp / max(1, int((labels[held] == 1).sum()))
    matcher.info = {
        "name": name,
        "seed": seed,
        "rounds": rounds,
        "pairs": len(labels),
        "matches": int(labels.sum()),
        "holdout": {
            "pairs": int(held.sum()),
            "precision": round(precision, 5),
            "recall": round(recall, 5),
            "f1": round(2 * precision * recall / max(1e-9, precision + recall), 5),
        },
        "importance": dict(
            zip(feature_names, booster.feature_importance("gain").round(1).tolist(), strict=True)
        ),
    }
    return matcher


def _isotonic(
    score: np.ndarray, label: np.ndarray, knots: int = 200
) -> tuple[np.ndarray, np.ndarray]:
    """Pool-adjacent-violators fit of P(match | score), thinned to at most ``knots`` knots."""
    order = np.argsort(score, kind="stable")
    x = score[order]
    y = label[order].astype(float)
    values: list[float] = []
    weights: list[float] = []
    ends: list[float] = []
    for xi, yi in zip(x, y, strict=True):
        values.append(yi)
        weights.append(1.0)
        ends.append(xi)
        while len(values) > 1 and values[-2] > values[-1]:
            w = weights[-2] + weights[-1]
            v = (values[-2] * weights[-2] + values[-1] * weights[-1]) / w
            values[-2:] = [v]
            weights[-2:] = [w]
            ends[-2:] = [ends[-1]]
    xs = np.asarray(ends)
    ys = np.asarray(values)
    if len(xs) > knots:
        keep = np.unique(np.linspace(0, len(xs) - 1, knots).astype(int))
        xs, ys = xs[keep], ys[keep]
    return np.concatenate([[0.0], xs, [1.0]]), np.concatenate([[ys[0]], ys, [ys[-1]]])
