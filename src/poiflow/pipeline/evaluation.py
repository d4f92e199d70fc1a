"""A run scored against known truth (``poiflow evaluate``, and :func:`evaluate` in a
notebook): pairwise and B-cubed scores, every error traced to the stage that lost it, the
thresholds swept, and how right the golden records' attributes are."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from poiflow.errors import ConfigError, InputError
from poiflow.schema import PAIR_SCORE_COLUMNS

if TYPE_CHECKING:
    import polars as pl
    import pyarrow as pa

    from poiflow.conflate.accuracy import PlaceAccuracy
    from poiflow.conflate.clustering import ClusterConfig
    from poiflow.conflate.diagnosis import Diagnosis
    from poiflow.conflate.evaluate import Scores

__all__ = [
    "Evaluation",
    "evaluate",
    "nothing_in_common",
    "score_golden",
]


@dataclasses.dataclass(frozen=True, slots=True, repr=False)
class Evaluation:
    """A run against the truth.

    Attributes:
        scores: Pairwise precision, recall and F1, and B-cubed's (``Scores``).
        diagnosis: Every missed and wrong pair traced to the stage that lost it
            (``errors``), the scores per pair of sources (``by_sources``), and the counts
            by kind (``counts()``) and by clustering rule (``kept_apart()``); None where
            the run has no ``pairs.parquet``.
        said: Where the clustering settings that split matcher from clustering came from.
        sweep: With ``sweep=True``: the scored pairs clustered again at other thresholds,
            one row a threshold.
        golden: With ``gold_places``: how right each golden attribute is
            (``PlaceAccuracy``).
        folder: The run's folder (the membership's).
    """

    scores: Scores
    diagnosis: Diagnosis | None
    said: str
    sweep: pl.DataFrame | None
    golden: PlaceAccuracy | None
    folder: Path | None = None

    @property
    def precision(self) -> float:
        """Pairwise precision: the share of the pairs the run joined that are true."""
        return self.scores.precision

    @property
    def recall(self) -> float:
        """Pairwise recall: the share of the true pairs the run joined."""
        return self.scores.recall

    @property
    def f1(self) -> float:
        """Pairwise F1."""
        return self.scores.f1

    @property
    def errors(self) -> pl.DataFrame | None:
        """One row per missed or wrong pair, with the stage that lost it (None: no pairs
        to trace them with)."""
        return None if self.diagnosis is None else self.diagnosis.errors

    def drivers(self) -> pl.DataFrame:
        """What moved the scores of the matcher's mistakes, feature by feature, by the
        run's own model (as ``poiflow evaluate --drivers``): for each kind of mistake and
        feature, its mean part of the scores in bits and what the pairs showed there most.

        Raises:
            InputError: The errors are untraced, were read without their features, or the
                run has no ``model.json.gz``.
        """
        from poiflow.conflate.matcher import load_matcher
        from poiflow.pipeline.drivers import error_drivers

        if self.diagnosis is None or self.folder is None:
            raise InputError("no scored pairs to trace the errors with: no drivers either")
        if "name_jaro_winkler" not in self.diagnosis.errors.columns:
            raise InputError("the errors were read without their features: evaluate again")
        path = self.folder / "model.json.gz"
        if not path.exists():
            raise InputError(
                "--drivers needs the run's model.json.gz beside the membership", path=self.folder
            )
        return error_drivers(self.diagnosis.errors, load_matcher(path))

    def __repr__(self) -> str:
        errors = "untraced" if self.diagnosis is None else f"{self.diagnosis.errors.height:,}"
        return (
            f"Evaluation(precision={self.precision:.4f}, recall={self.recall:.4f}, "
            f"f1={self.f1:.4f}, bcubed_f1={self.scores.bcubed_f1:.4f}, "
            f"records={self.scores.records:,}, errors={errors})"
        )

    def _repr_html_(self) -> str:
        """A notebook's view: the scores, and the errors by kind and stage."""
        from poiflow.pipeline.ingest_report import report_table

        s = self.scores
        shown = report_table(
            ["", "precision", "recall", "F1"],
            [
                ["pairwise", *(f"{v:.4f}" for v in (s.precision, s.recall, s.f1))],
                [
                    "B-cubed",
                    *(f"{v:.4f}" for v in (s.bcubed_precision, s.bcubed_recall, s.bcubed_f1)),
                ],
            ],
            caption=f"{s.records:,} records; {s.correct_pairs:,} of {s.predicted_pairs:,} "
            f"pairs joined are true, of {s.true_pairs:,} true pairs",
        )
        if self.diagnosis is None:
            return shown + "<p>No pairs.parquet beside the membership: errors untraced.</p>"
        counts = self.diagnosis.counts()
        return shown + report_table(
            ["error", "stage", "pairs"],
            # A person's decisions only where the run followed any, as the command shows.
            [
                [*kind.split("_", 1), n]
                for kind, n in counts.items()
                if n or not kind.endswith("_decision")
            ],
            caption=f"Where the errors are (threshold {self.diagnosis.threshold:g}, {self.said})",
            note=".errors holds each pair: both records, the stage, the features.",
        )

    def as_dict(self) -> dict[str, Any]:
        """Everything but the error pairs as plain data (``poiflow evaluate --json``)."""
        report: dict[str, Any] = self.scores.as_dict()
        if self.diagnosis is not None:
            report["threshold"] = self.diagnosis.threshold
            report["errors"] = self.diagnosis.counts()
            report["kept_apart"] = self.diagnosis.kept_apart()
            report["by_sources"] = self.diagnosis.by_sources.to_dicts()
        if self.sweep is not None:
            report["sweep"] = self.sweep.to_dicts()
        if self.golden is not None:
            report["golden"] = self.golden.as_dict()
        return report


def evaluate(
    gold: str | Path,
    run: str | Path,
    *,
    pairs: str | Path | None = None,
    threshold: float | None = None,
    sweep: bool = False,
    gold_places: str | Path | None = None,
    features: bool = True,
) -> Evaluation:
    """Score the run in ``run`` against the truth in ``gold``, as ``poiflow evaluate`` does.

    Args:
        gold: A CSV of ``source,id,place``: which real place each record describes
            (``gold.csv`` of ``poiflow generate``).
        run: An output folder of ``poiflow conflate`` or ``poiflow run``, or its
            ``membership.parquet``. Its ``pairs.parquet`` and ``run.json`` trace the errors.
        pairs: The scored pairs, if not ``pairs.parquet`` beside the membership.
        threshold: The clustering threshold that splits matcher errors from clustering
            ones (default: the run's, from ``run.json``).
        sweep: Also cluster the scored pairs again at other thresholds, and score each.
        gold_places: The true places (``gold_places.csv`` of ``poiflow generate``): also
            score the golden records' attributes.
        features: Give each error pair its features (all of ``pairs.parquet``'s columns);
            without, only their keys and probabilities are read, which is quicker.

    Raises:
        ConfigError: A ``threshold`` outside 0 to 1.
        InputError: A file is missing or is not what it should be, or no record of the
            truth is in the run (the message says each side's sources).
        SchemaMismatchError: The truth lacks a column.
    """
    from poiflow.conflate.evaluate import read_gold, score_membership

    if threshold is not None and not 0.0 <= threshold <= 1.0:  # NaN too
        raise ConfigError(f"threshold {threshold} is not a probability: give one from 0 to 1")

    truth = read_gold(gold)
    path = Path(run)
    if path.is_dir():  # the run's folder
        path = path / "membership.parquet"
    predicted = _read_membership(path)
    scores = score_membership(predicted, truth)
    if scores.records == 0:
        raise InputError(nothing_in_common(predicted, truth), path=Path(gold))
    golden = (
        None
        if gold_places is None
        else score_golden(predicted, truth, path.parent, Path(gold_places))
    )
    pairs_path = None if pairs is None else Path(pairs)
    found = _diagnose_run(
        predicted, truth, path.parent, pairs_path, threshold, sweep=sweep, features=features
    )
    if found is None and (pairs_path is not None or sweep):
        raise InputError(
            "no scored pairs to trace the errors with: give the run's pairs.parquet (--pairs)",
            path=pairs_path or path.parent / "pairs.parquet",
        )
    if found is None:
        return Evaluation(scores, None, "", None, golden, path.parent)
    return Evaluation(scores, *found, golden, path.parent)


def _diagnose_run(
    membership: Any,
    gold: pl.DataFrame,
    folder: Path,
    pairs_path: Path | None,
    threshold: float | None,
    *,
    sweep: bool = False,
    features: bool = False,
) -> tuple[Diagnosis, str, pl.DataFrame | None] | None:
    """The diagnosis of a run in ``folder`` (``pairs.parquet``, ``run.json`` and
    ``records.parquet`` beside the membership), where its clustering settings came from,
    and with ``sweep`` its thresholds swept; None if there are no scored pairs to trace
    the errors with. Only with ``features``
    are the pairs' features read (for a file of the errors): the rest needs their keys
    and probabilities."""
    import pyarrow.parquet as pq

    from poiflow.conflate.diagnosis import diagnose, sweep_thresholds

    pairs_path = pairs_path or folder / "pairs.parquet"
    if not pairs_path.exists():
        return None
    try:
        pairs = pq.read_table(pairs_path, columns=None if features else list(PAIR_SCORE_COLUMNS))
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"not a pairs file ({exc})", path=pairs_path) from exc
    cluster, said = _run_cluster(folder / "run.json")
    if threshold is not None:
        cluster, said = dataclasses.replace(cluster, threshold=threshold), "--threshold"
    records = None
    path = folder / "records.parquet"
    if path.exists():
        try:
            records = pq.read_table(path, columns=["source", "id", "names", "lat", "lon"])
        except (OSError, ValueError, KeyError):
            records = None  # names and distances only decorate the examples
    decided = folder / "decisions.parquet"  # a person's decisions the run followed
    decisions = pq.read_table(decided) if decided.exists() else None
    found = diagnose(membership, gold, pairs, cluster, records=records, decisions=decisions)
    swept = (
        sweep_thresholds(membership, gold, pairs, cluster, decisions=decisions) if sweep else None
    )
    return found, said, swept


def _run_cluster(path: Path) -> tuple[ClusterConfig, str]:
    """The clustering settings ``run.json`` records, or the defaults if there are none."""
    from poiflow.conflate.clustering import ClusterConfig

    try:
        run = json.loads(path.read_text("utf-8"))
        return ClusterConfig(**run["matching"]["cluster"]), "from run.json"
    except (OSError, ValueError, KeyError, TypeError):
        return ClusterConfig(), f"the default; no clustering settings in {path}"


def score_golden(membership: Any, gold: pl.DataFrame, folder: Path, truth: Path) -> PlaceAccuracy:
    """The golden places of the run in ``folder`` (``places.parquet``; its
    ``records.parquet`` for the naive merge) against the true places in ``truth``, a flat
    place file whose ids are the places of ``gold`` (``gold_places.csv`` of ``poiflow
    generate``), read and normalized as any input is."""
    import pyarrow.parquet as pq

    from poiflow.conflate.accuracy import GOLDEN_READS, READS, score_places
    from poiflow.pipeline.ingestion import true_places

    path = folder / "places.parquet"
    if not path.exists():
        raise InputError("no places.parquet beside the membership: the golden places", path=path)
    try:
        places = pq.read_table(path, columns=list(GOLDEN_READS))
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"not a golden places file ({exc})", path=path) from exc
    records = None
    if (folder / "records.parquet").exists():
        try:
            records = pq.read_table(folder / "records.parquet", columns=["source", "id", *READS])
        except (OSError, ValueError, KeyError):
            records = None  # the naive merge is a yardstick, not the score
    true = true_places(truth, gold["place"].to_list())
    return score_places(places, membership, gold, true, records)


def nothing_in_common(predicted: pa.Table, truth: pl.DataFrame, whose: str = "the run's") -> str:
    """Why no record of the truth is among the records (``source, id``) of ``whose``: each
    side's sources, or that one side has none."""
    if not truth.height:
        return "the gold file lists no records"
    if not predicted.num_rows:
        return f"{whose} records are none"
    ours = sorted(predicted.column("source").unique().to_pylist())
    theirs = sorted(truth["source"].unique().to_list())
    shared = set(ours) & set(theirs)
    why = (
        f"its sources ({', '.join(theirs[:5])}) are {whose}, but not its ids"
        if shared
        else f"its sources are {', '.join(theirs[:5])}; {whose} are {', '.join(ours[:5])}"
    )
    return (
        f"none of the gold file's {truth.height:,} records is one of {whose}: {why}. "
        "Is it the truth of other inputs?"
    )


def _read_membership(path: Path) -> pa.Table:
    """The run's membership (``source, id, place_id``).

    Raises:
        InputError: No such file, or not a membership file (the message says what it has).
    """
    import pyarrow.parquet as pq

    if not path.exists():
        raise InputError("no such file", path=path)
    needed = ["source", "id", "place_id"]
    try:
        columns = pq.read_schema(path).names
        missing = [c for c in needed if c not in columns]
        if missing:
            shown = ", ".join(columns[:8]) + (", ..." if len(columns) > 8 else "")
            raise InputError(
                f"not a membership file: no {', '.join(missing)} column (it has {shown}); "
                "give the membership.parquet that 'poiflow conflate' wrote",
                path=path,
            )
        return pq.read_table(path, columns=needed)
    except (OSError, ValueError) as exc:
        raise InputError(f"not a membership file ({exc})", path=path) from exc
