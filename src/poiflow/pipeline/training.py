"""A matcher trained and written as a model file (``poiflow train``, and :func:`train` in a
notebook): from the truth of labelled records (LightGBM), from no labels at all
(Fellegi-Sunter by EM), or refined with a person's answers (``poiflow label``)."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from poiflow.errors import ConfigError, InputError, NoCandidatesError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import numpy as np
    import polars as pl

    from poiflow.pipeline.ingest_report import IngestProgress

__all__ = ["TRAIN_STAGES", "Trained", "train"]

TRAIN_STAGES: tuple[str, ...] = ("ingest", "pairs", "fit")
"""What :func:`train` tells ``on_stage``, in order: the records read, their candidate
pairs and features made, the model fitted (and written)."""

_SCORES = ("accuracy", "log_loss", "precision", "recall", "f1")


@dataclass(frozen=True, slots=True)
class Trained:
    """A model trained, and how it did.

    Attributes:
        model: The model file written (for ``conflate(..., model=)`` or a pipeline's
            ``stages.score.model``).
        kind: ``lightgbm`` (from ``gold``), ``fellegi-sunter`` (``unsupervised``) or
            ``refined`` (``base`` refined with ``labels``).
        pairs: The pairs it learnt from: candidate pairs, or answered ones.
        matches: How many of them are one place (a Fellegi-Sunter model's: as many as its
            fitted share of matches says).
        holdout: A LightGBM model's scores on the fifth of the pairs held out
            (``precision``, ``recall``, ``f1``); empty otherwise.
        before, after: A refined model's: the base's and the refined one's scores on a
            third of the answers held out (``accuracy``, ``log_loss``, ``precision``,
            ``recall``, ``f1``); empty with fewer than 10 answers.
        unknown: Answers that name records not in the inputs (left out).
        info: The model's own description (its features, version, how it was fitted; a
            Fellegi-Sunter model's ``match_weights`` in bits, a refined one's
            ``refined_on``).
    """

    model: Path
    kind: Literal["lightgbm", "fellegi-sunter", "refined"]
    pairs: int
    matches: int
    holdout: dict[str, float] = field(default_factory=dict)
    before: dict[str, float] = field(default_factory=dict)
    after: dict[str, float] = field(default_factory=dict)
    unknown: int = 0
    info: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        held = self.after or self.holdout
        said = f", held-out f1={held['f1']:.4f}" if "f1" in held else ""
        return (
            f"Trained(model={str(self.model)!r}, kind={self.kind!r}, pairs={self.pairs:,}, "
            f"matches={self.matches:,}{said})"
        )


def train(
    inputs: Sequence[str | Path] | str | Path,
    output: str | Path,
    *,
    gold: str | Path | None = None,
    labels: str | Path | None = None,
    unsupervised: bool = False,
    base: str | Path = "default",
    seed: int = 0,
    progress: IngestProgress | None = None,
    on_stage: Callable[[str], None] | None = None,
) -> Trained:
    """Train a matcher on the records of ``inputs`` and write it to ``output``, as
    ``poiflow train`` does. Give one of ``gold``, ``labels`` and ``unsupervised``.

    Args:
        inputs: The records' files, ingested, blocked and featured as ``conflate`` does
            (with ``labels``, a run's ``records.parquet`` is taken as it is); one alone
            needs no list.
        output: The model file to write (``.json.gz``).
        gold: A CSV of ``source,id,place``: every candidate pair whose two records share a
            place is a match. A LightGBM model learns from them; a fifth is held out to
            calibrate its probabilities and to score it.
        labels: A labels file (``poiflow label``'s answers, or any CSV of
            ``left_source, left_id, right_source, right_id, label``): ``base`` is refined
            with a few small trees fitted to the answers.
        unsupervised: No labels: a Fellegi-Sunter model fitted by EM on the candidate pairs.
        base: With ``labels``: the model to refine (``default``, or a LightGBM model file).
        seed: Fixes the split and the boosting.
        progress: Told how the records are read, as by :func:`poiflow.ingest`.
        on_stage: Called with each of ``TRAIN_STAGES`` as it starts (for progress
            displays).

    Raises:
        ConfigError: No input; not one of ``gold``, ``labels`` and ``unsupervised``; a
            ``base`` that is not a LightGBM model; answers about none of the records.
        InputError: Truth a model cannot learn from (the message says why); a ``labels``
            file that does not exist.
        NoCandidatesError: The records make no candidate pairs.
    """
    from poiflow.pipeline.ingestion import ingest

    if sum((gold is not None, unsupervised, labels is not None)) != 1:
        raise ConfigError(
            "give one of --gold (labelled records), --labels (answers from 'poiflow label') "
            "and --unsupervised (no labels)"
        )
    from poiflow.conflate.matcher import refuse_model_path
    from poiflow.sources import input_list

    paths = [Path(p) for p in input_list(inputs)]
    output = Path(output)
    refuse_model_path(output)  # before the work that makes the model
    name = output.name.split(".")[0]
    tell = on_stage or _quiet
    if labels is not None:
        return _refine(paths, Path(labels), base, output, seed, name, progress, tell)
    if unsupervised:
        from poiflow.conflate.fellegi_sunter import fit_fellegi_sunter
        from poiflow.conflate.matcher import save_model
        from poiflow.conflate.training import candidate_features

        with tempfile.TemporaryDirectory() as tmp:
            tell("ingest")
            ingest(paths, Path(tmp) / "records.parquet", progress=progress)
            tell("pairs")
            features = candidate_features(Path(tmp) / "records.parquet")
        tell("fit")
        model = fit_fellegi_sunter(features, name=name)
        save_model(model, output)
        pairs = int(model.info["pairs"])
        return Trained(
            output, "fellegi-sunter", pairs, round(model.prior * pairs), info=model.describe()
        )
    from poiflow.conflate.evaluate import read_gold
    from poiflow.conflate.matcher import train_matcher
    from poiflow.conflate.training import labelled_pairs

    assert gold is not None
    truth = read_gold(gold)  # refuse a bad gold file before the work
    with tempfile.TemporaryDirectory() as tmp:
        tell("ingest")
        ingest(paths, Path(tmp) / "records.parquet", progress=progress)
        tell("pairs")
        features, found = labelled_pairs(Path(tmp) / "records.parquet", truth)
        _check_labels(found, truth, Path(tmp) / "records.parquet", Path(gold))
    tell("fit")
    matcher = train_matcher(features, found, seed=seed, name=name)
    matcher.save(output)
    held = matcher.info["holdout"]
    return Trained(
        output,
        "lightgbm",
        len(found),
        int(found.sum()),
        holdout={k: float(held[k]) for k in ("precision", "recall", "f1")},
        info=dict(matcher.info),
    )


def _quiet(_stage: str) -> None:
    """No progress display to tell."""


def _refine(
    inputs: list[Path],
    labels: Path,
    base: str | Path,
    output: Path,
    seed: int,
    name: str,
    progress: IngestProgress | None,
    tell: Callable[[str], None],
) -> Trained:
    """``base`` refined with the answers in ``labels``: scored first on a held-out third of
    them (10 answers or more), then refined on all of them and written."""
    import pyarrow.parquet as pq

    from poiflow.conflate.active import agreement, label_features, read_labels, refine_matcher
    from poiflow.conflate.active import split as split_off
    from poiflow.conflate.matcher import Matcher, load_matcher
    from poiflow.pipeline.ingestion import ingest

    matcher = load_matcher(base)
    if not isinstance(matcher, Matcher):
        raise ConfigError(
            "--labels refines a LightGBM model; the --base given is a Fellegi-Sunter one"
        )
    if not labels.is_file():
        raise InputError("the labels file does not exist", path=labels)
    answers = read_labels(labels)
    tell("ingest")
    with tempfile.TemporaryDirectory() as tmp:
        if len(inputs) == 1 and _is_records(inputs[0]):
            records = pq.read_table(inputs[0]).drop_columns(["geometry"])
        else:
            ingest(inputs, Path(tmp) / "records.parquet", progress=progress)
            records = pq.read_table(Path(tmp) / "records.parquet").drop_columns(["geometry"])
    tell("pairs")
    found = label_features(records, answers)
    if found.labels.size == 0:
        raise ConfigError(f"no answered pair of {labels} is among these records", path=labels)
    before: dict[str, float] = {}
    after: dict[str, float] = {}
    tell("fit")
    if found.labels.size >= 10:
        held = split_off(found.labels.size, 1 / 3, seed)
        part = {k: v[~held] for k, v in found.features.items()}
        trial = refine_matcher(matcher, part, found.labels[~held], seed=seed)
        test = {k: v[held] for k, v in found.features.items()}
        before = _scores(agreement(matcher, test, found.labels[held]))
        after = _scores(agreement(trial, test, found.labels[held]))
    refined = refine_matcher(matcher, found.features, found.labels, seed=seed, name=name)
    refined.save(output)
    return Trained(
        output,
        "refined",
        int(found.labels.size),
        int(found.labels.sum()),
        before=before,
        after=after,
        unknown=int(found.unknown),
        info={**refined.info, "base": matcher.version},
    )


def _scores(found: dict[str, Any]) -> dict[str, float]:
    return {k: float(found[k]) for k in ("pairs", *_SCORES)}


def _is_records(path: Path) -> bool:
    """Whether ``path`` is a run's records (``records.parquet``), taken as it is."""
    if path.suffix != ".parquet":
        return False
    import pyarrow.parquet as pq

    try:
        metadata = pq.read_schema(path).metadata or {}
    except (OSError, ValueError):
        return False
    return metadata.get(b"poiflow.table") == b"places"


def _check_labels(labels: np.ndarray, truth: pl.DataFrame, records: Path, gold: Path) -> None:
    """Refuse labels a model cannot learn from, saying why."""
    matches = int(labels.sum())
    if matches and matches < len(labels):
        return
    if not len(labels):
        raise NoCandidatesError("training a model")
    if matches:
        raise InputError(
            f"every one of the {matches:,} candidate pairs is a match by the gold file: a "
            "model needs non-matching pairs too",
            path=gold,
        )
    import polars as pl
    import pyarrow.parquet as pq

    from poiflow.pipeline.evaluation import nothing_in_common

    keyed = pq.read_table(records, columns=["source", "id"])
    known = truth.join(pl.DataFrame(keyed), on=["source", "id"])
    if not known.height:
        raise InputError(nothing_in_common(keyed, truth, "the inputs'"), path=gold)
    why = (
        "no two records it puts in one place became a candidate pair"
        if known["place"].n_unique() < known.height
        else "it puts no two of the inputs' records in one place"
    )
    raise InputError(
        f"none of the {len(labels):,} candidate pairs is a match by the gold file: {why}",
        path=gold,
    )
