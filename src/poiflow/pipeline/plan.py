"""The plan of a conflation run: its stages, their settings and keys, and its ``run.json``.

``poiflow conflate`` and ``poiflow run`` both run this plan; a pipeline file adds custom
stages, a cache and known truth.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from poiflow._version import __version__
from poiflow.config import (
    BlockSettings,
    ChecksSettings,
    ClusterSettings,
    CustomStage,
    GateSettings,
    IngestSettings,
    MergeSettings,
    ScoreSettings,
)
from poiflow.errors import ConfigError, QualityGateError
from poiflow.pipeline.artifacts import ARTIFACT_FILES, StageContext, StageFunction
from poiflow.pipeline.custom import checked_result
from poiflow.pipeline.runner import PUBLISHED, PlannedStage, RunResult
from poiflow.pipeline.stage_results import pairs_table, scores_table
from poiflow.pipeline.stages import BUILT_IN, run_cluster_config

if TYPE_CHECKING:
    import polars as pl

    from poiflow.conflate.clustering import ClusterConfig
    from poiflow.quality.truth_sections import ErrorBreakdown

__all__ = ["build_plan", "load_function", "quality_gate", "run_json"]

# What a custom stage after each built-in stage gets and hands back.
_CUSTOM_TABLES = {"ingest": ("records",), "score": ("pairs", "scores"), "merge": ("places",)}


def build_plan(
    *,
    ingest: IngestSettings,
    block: BlockSettings,
    score: ScoreSettings,
    cluster: ClusterSettings,
    merge: MergeSettings,
    inputs_identity: str,
    previous_identity: str = "",
    model_identity: str = "",
    gold_identity: str | None = None,
    gold_places_identity: str = "",
    decisions_identity: str = "",
    checks: ChecksSettings | None = None,
    custom: Sequence[CustomStage] = (),
    base: Path | None = None,
    engine: str = "local",
) -> list[PlannedStage]:
    """The stages of a conflation run, in order, with custom stages where they belong.

    Args:
        ingest, block, score, cluster, merge: The stages' settings.
        inputs_identity: What the inputs are (a hash of their content and how they are
            read): the key of ``ingest``.
        previous_identity: The same of the previous release, if any (``merge`` uses it).
        model_identity: The same of a model file, if one is named.
        gold_identity: The same of known truth; without it there is no ``evaluate``.
        gold_places_identity: The same of the true places, if any (``evaluate`` scores
            the golden records against them).
        decisions_identity: The same of a person's decisions about pairs, if any
            (``cluster`` follows them).
        checks: Which quality checks ``report`` runs (default: every built-in one).
        custom: The user's stages.
        base: Where relative paths in ``custom`` functions start.
        engine: Which engine runs the stages Spark can spread (part of their cache key:
            the engines agree, and a cache entry still says which one made it).
    """
    spread = "" if engine == "local" else f"engine={engine}|"
    settings: dict[str, tuple[Mapping[str, Any], str]] = {
        "ingest": (ingest.model_dump(), inputs_identity),
        "block": (block.model_dump(), spread),
        "score": (score.model_dump(), spread + model_identity),
        "cluster": (cluster.model_dump(), spread + decisions_identity),
        "merge": (merge.model_dump(), spread + previous_identity),
        "evaluate": ({}, f"{gold_identity or ''}|{gold_places_identity}"),
    }
    plan: list[PlannedStage] = []
    for name, (function, needs, makes) in BUILT_IN.items():
        if name == "evaluate" and gold_identity is None:
            continue
        stage_settings, identity = settings[name]
        plan.append(PlannedStage(name, function, needs, makes, stage_settings, identity))
        for stage in custom:
            if stage.after == name:
                plan.append(_custom_stage(stage, base))
    # With the truth, the report shows what drove the scores of the surest mistakes (their
    # features, from the pairs' file, and the model).
    drivers = ("pairs", "model", "decisions") if gold_identity else ()
    needs = ("places", "membership", "scores", "records", *drivers)
    return [*plan, _report_stage(checks or ChecksSettings(), base, needs, gold_identity or "")]


def _report_stage(
    checks: ChecksSettings, base: Path | None, needs: tuple[str, ...], identity: str
) -> PlannedStage:
    """The ``report`` stage, with the checks ``checks`` asks for (checked, and the user's
    own loaded, before any work); the source of the user's checks is part of its key."""
    makes = ("checks", "issues", "report")
    if checks == ChecksSettings():  # every built-in check: their module loads as ingest runs
        return PlannedStage("report", run_report, needs, makes, {}, identity)
    from poiflow.quality.checks import FunctionCheck

    made: list[Any] = _built_in(checks)
    taken = {check.name for check in made} | set(checks.skip)
    sources = []
    for spec in checks.custom:
        if spec.name in taken:
            raise ConfigError(f"checks.custom: '{spec.name}' is a built-in check's name")
        function = load_function(spec.function, base, what=f"check '{spec.name}'")
        sources.append(_source_hash(function))
        made.append(
            FunctionCheck(spec.name, function, spec.severity, spec.description, spec.params)
        )
    return PlannedStage(
        "report",
        functools.partial(run_report, checks=tuple(made)),
        needs,
        makes,
        checks.model_dump(mode="json"),
        "|".join([identity, *sources]),
    )


def _built_in(checks: ChecksSettings) -> list[Any]:
    """The built-in checks as ``checks`` shapes them (``quality.checks.built_in_checks``)."""
    from poiflow.quality.checks import built_in_checks

    return built_in_checks(skip=checks.skip, stale_years=checks.stale_years, needs=checks.needs)


def quality_gate(
    gate: GateSettings, checks: ChecksSettings, cache: Path | None
) -> Callable[[RunResult], None]:
    """What holds a run to ``gate`` before its outputs are published: it raises when the
    run's report stage (run, or taken from ``cache``) counts more than a limit allows.

    Raises:
        ConfigError: The gate names a check the report stage does not run (``checks``).
    """
    from poiflow.errors import did_you_mean

    names = [check.name for check in (*_built_in(checks), *checks.custom)]
    for name in gate.checks:
        if name not in names:
            raise ConfigError(
                f"gate.checks: no check '{name}' runs.{did_you_mean(name, names)} "
                f"The checks: {', '.join(names)}"
            )

    def check(result: RunResult) -> None:
        report = next((run for run in result.stages if run.name == "report"), None)
        if report is None:  # an --only run of a stage before it
            return
        summary = report.summary
        over = [
            f"{found:,} issues of {severity}-level checks (at most {most:,})"
            for severity, found, most in (
                ("error", summary["errors"], gate.error),
                ("warn", summary["warnings"], gate.warn),
            )
            if most is not None and found > most
        ]
        over += [
            f"{summary['failed'].get(name, 0):,} places flagged by {name} (at most {most:,})"
            for name, most in gate.checks.items()
            if summary["failed"].get(name, 0) > most
        ]
        if over:
            where = cache / "report" / report.key / "report.html" if cache else None
            raise QualityGateError(
                "quality gate: "
                + "; ".join(over)
                + ". Nothing was published: the last outputs stay as they were"
                + (f"; the report of this run: {where}" if where else "")
            )

    return check


def _settings(result: RunResult, stage: str) -> Mapping[str, Any]:
    return next((run.settings for run in result.stages if run.name == stage), {})


def run_report(ctx: StageContext, checks: Sequence[Any] | None = None) -> dict[str, Any]:
    """Quality checks of the golden places (``checks``; default: every built-in one), and
    ``report.html``."""
    from poiflow.quality.checks import (
        DEFAULT_CHECKS,
        QualityInput,
        issues_table,
        results_table,
        run_checks,
    )
    from poiflow.quality.report import write_report

    places = ctx.artifacts.table("places")
    membership = ctx.artifacts.table("membership")
    records = ctx.artifacts.table("records")
    pairs = scored_pairs(records, ctx.artifacts.table("scores"))
    results = run_checks(
        QualityInput(places, pairs, membership, records=records), checks or DEFAULT_CHECKS
    )
    ctx.write("checks", results_table(results))
    ctx.write("issues", issues_table(results))
    gold = errors = None
    if ctx.gold is not None:
        from poiflow.conflate.evaluate import read_gold

        gold = read_gold(ctx.gold)
        cluster = run_cluster_config(ctx)
        if cluster is not None:
            errors = _error_breakdown(ctx, membership, pairs, gold, cluster)
    done = RunResult(None, list(ctx.objects.get("runs", [])))
    path = ctx.folder / ARTIFACT_FILES["report"]
    write_report(
        path,
        run=run_json(done, {"pipeline": ctx.objects.get("pipeline", {})}),
        places=places,
        records=records,
        membership=membership,
        pairs=pairs,
        checks=results,
        gold=gold,
        errors=errors,
    )
    ctx.artifacts.put("report", path)
    failed = [r for r in results if not r.passed]
    return {
        "checks": len(results),
        "failed": {r.name: len(r.issues) for r in failed},
        "failed_at_error": sorted(r.name for r in failed if r.severity == "error"),
        "passed": sorted(r.name for r in results if r.passed),
        "errors": sum(len(r.issues) for r in failed if r.severity == "error"),
        "warnings": sum(len(r.issues) for r in failed if r.severity == "warn"),
    }


def scored_pairs(records: pa.Table, scores: pa.Table) -> pa.Table:
    """The scored pairs by their records' keys (``PAIR_SCORE_COLUMNS``), as
    ``pairs.parquet`` holds them, made from the ``scores`` (record rows) and the records
    in memory: at 354k records, reading the 3.7M pairs' keys back from the file took
    0.7 s, and taking them out of the records 0.1-0.2 s."""
    return pairs_table(
        records,
        scores.column("left_row").to_numpy(),
        scores.column("right_row").to_numpy(),
        scores.column("probability").to_numpy(),
        {},
    )


EXAMPLES = 5
"""The surest mistakes of each kind the report shows."""

EXPLAINED = 300
"""The scored mistakes of each kind whose scores the report takes apart, at most."""


def _error_breakdown(
    ctx: StageContext,
    membership: pa.Table,
    pairs: pa.Table,
    gold: pl.DataFrame,
    cluster: ClusterConfig,
) -> ErrorBreakdown:
    """Where the run's errors came from, for the report (``pairs``: ``scored_pairs``)."""

    import polars as pl

    from poiflow.conflate.diagnosis import CAUSES, RULES, diagnose
    from poiflow.conflate.explain import FEATURE_WORDS
    from poiflow.conflate.matcher import load_matcher
    from poiflow.pipeline.drivers import MISTAKE_DRIVERS, stored_error_drivers, with_drivers
    from poiflow.quality.truth_sections import ErrorBreakdown

    records = ctx.artifacts.table("records", ["source", "id", "names", "lat", "lon"])
    decisions = ctx.artifacts.table("decisions")
    found = diagnose(membership, gold, pairs, cluster, records=records, decisions=decisions)
    counts = found.counts()
    model = load_matcher(ctx.artifacts.path("model"))

    def examples(error: str, stage: str) -> pl.DataFrame:
        shown = found.examples(error, stage, EXAMPLES)
        return with_drivers(shown, model, ctx.artifacts.path("pairs"), keys=pairs)

    # What moved the scores of each kind of mistake: its largest parts, in words.
    moved = (
        stored_error_drivers(
            found.errors, model, ctx.artifacts.path("pairs"), keys=pairs, at_most=EXPLAINED
        )
        .group_by("error", "stage", maintain_order=True)
        .head(MISTAKE_DRIVERS)
        .with_columns(pl.col("feature").replace(FEATURE_WORDS))
    )

    return ErrorBreakdown(
        threshold=cluster.threshold,
        kinds=[
            (e, s, cause, counts[f"{e}_{s}"])
            for (e, s), cause in CAUSES.items()
            if s != "decision" or counts[f"{e}_{s}"]  # decisions: only if any
        ],
        kept_apart=[(rule, RULES[rule], n) for rule, n in found.kept_apart().items()],
        by_sources=found.by_sources,
        examples=[
            (f"{e} · {s}: {cause}", examples(e, s))
            for (e, s), cause in CAUSES.items()
            if counts[f"{e}_{s}"]
        ],
        pairs=found.errors,
        drivers=moved,
    )


def _custom_stage(spec: CustomStage, base: Path | None) -> PlannedStage:
    function = load_function(spec.function, base)
    tables = _CUSTOM_TABLES[spec.after]
    return PlannedStage(
        spec.name,
        _run_custom(spec, function),
        tables,
        tables,
        {"function": spec.function, "params": spec.params},
        _source_hash(function),
    )


def _source_hash(function: Callable[..., Any]) -> str:
    """A hash of a user's function's source: a change to it changes its stage's key."""
    try:
        source = inspect.getsource(function)
    except (OSError, TypeError):  # pragma: no cover - a builtin or C function
        source = repr(function)
    return hashlib.blake2b(source.encode(), digest_size=12).hexdigest()


def load_function(
    reference: str, base: Path | None = None, *, what: str = "custom stage"
) -> Callable[..., Any]:
    """The function ``module:name`` or ``path/to/file.py:name`` (relative to ``base``);
    ``what`` names what it is for in an error.

    Raises:
        ConfigError: The module or file cannot be loaded, or has no such function.
    """
    module_name, _, name = reference.rpartition(":")
    try:
        if module_name.endswith(".py"):
            path = Path(module_name)
            if not path.is_absolute() and base is not None:
                path = base / path
            unique = (
                f"poiflow_custom_{hashlib.blake2b(str(path).encode(), digest_size=6).hexdigest()}"
            )
            spec = importlib.util.spec_from_file_location(unique, path)
            if spec is None or spec.loader is None or not path.exists():
                raise ConfigError(f"{what}: no Python file {path}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[unique] = module
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(module_name)
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(
            f"{what}: cannot load '{module_name}': {type(exc).__name__}: {exc}"
        ) from exc
    function = getattr(module, name, None)
    if not callable(function):
        from poiflow.errors import did_you_mean

        public = [n for n in dir(module) if callable(getattr(module, n)) and not n.startswith("_")]
        raise ConfigError(
            f"{what}: '{module_name}' has no function '{name}'.{did_you_mean(name, public)}"
        )
    return function  # type: ignore[no-any-return]


def _run_custom(spec: CustomStage, function: Callable[..., Any]) -> StageFunction:
    """A custom stage: the user's function between two built-in stages, its result checked."""

    def run(ctx: StageContext) -> dict[str, Any]:
        where = f"custom stage '{spec.name}' ({spec.function})"
        if spec.after == "score":
            pairs = ctx.artifacts.table("pairs")
            scores = ctx.artifacts.table("scores")
            table = pairs.append_column("left_row", scores.column("left_row")).append_column(
                "right_row", scores.column("right_row")
            )
            result = checked_result(function, table, after="score", params=spec.params, where=where)
            ctx.write("pairs", result.drop_columns(["left_row", "right_row"]))
            ctx.write(
                "scores",
                scores_table(
                    result.column("left_row").to_numpy(),
                    result.column("right_row").to_numpy(),
                    result.column("match_probability").to_numpy(),
                ),
            )
            return {"rows_in": pairs.num_rows, "rows_out": result.num_rows}
        name = "records" if spec.after == "ingest" else "places"
        given = ctx.artifacts.table(name)
        result = checked_result(function, given, after=spec.after, params=spec.params, where=where)
        ctx.write(name, result, geo=True)
        return {"rows_in": given.num_rows, "rows_out": result.num_rows}

    return run


def run_json(result: RunResult, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``run.json`` of a finished conflation run: counts, seconds per stage, the model, and
    each stage's lineage (its key, whether it was reused, the keys of its inputs)."""
    summary = {run.name: run.summary for run in result.stages}
    ingest, block, score = summary["ingest"], summary["block"], summary["score"]
    cluster, merge = summary["cluster"], summary["merge"]
    report: dict[str, Any] = {
        "poiflow": __version__,
        "model": score["model"],
        "model_info": score["model_info"],
        "output": str(result.output),
        "files": {name: name for name in [*(ARTIFACT_FILES[a] for a in PUBLISHED), "run.json"]},
        "counts": {
            "read": ingest["read"],
            "quarantined": ingest["quarantined"],
            "withheld_values": ingest["withheld_values"],
            "records": block["records"],
            "candidate_pairs": block["candidate_pairs"],
            "candidates_per_record": block["candidates_per_record"],
            "matched_pairs": cluster["matched_pairs"],
            "places": merge["places"],
            "multi_source_places": merge["multi_source_places"],
        },
        "candidate_pairs_by_key": block["candidate_pairs_by_key"],
        "changes": merge["changes"],
        # How far each source's points lie from their places' (metres): what the golden
        # points were weighted by (``poiflow.conflate.reliability.source_precision``).
        "source_precision_m": merge.get("source_precision_m", {}),
        # How often each source's value of each attribute is right, as its place's other
        # records judge it: what each attribute's confidence was reckoned from.
        "source_accuracy": merge.get("source_accuracy", {}),
        # How many places the world holds and how much of it each source covers, from
        # the places sources share: how often a place of one source alone is whole, and
        # how often a place lacks a record split off (what a place's confidence is
        # reckoned from; ``poiflow.conflate.reliability.place_coverage``).
        "place_coverage": merge.get("place_coverage", {}),
        # What matching a new record the way this run matched its own needs (POST /match).
        "matching": {
            "block": dict(_settings(result, "block")),
            "cluster": dict(_settings(result, "cluster"))
            | {"threshold": cluster["threshold"], "same_source": cluster["same_source"]},
        },
        "engine": score.get("engine", "local"),
        "seconds": {run.name: round(run.seconds, 3) for run in result.stages},
        "inputs": ingest["inputs"],
        "stages": [
            {
                "name": run.name,
                "key": run.key,
                "reused": run.reused,
                "seconds": round(run.seconds, 3),
                "inputs": run.inputs,
            }
            for run in result.stages
        ],
    }
    if "decisions" in cluster:  # what became of a person's decisions
        report["decisions"] = cluster["decisions"]
    if "shards" in score:  # how Spark cut the scoring work
        report["score_shards"] = {
            "shards": score["shards"],
            "largest_shard_pairs": score.get("largest_shard_pairs"),
        }
    if "evaluate" in summary:
        report["metrics"] = summary["evaluate"]
    if "report" in summary:
        report["checks"] = summary["report"]
    custom = {run.name: run.summary for run in result.stages if run.name not in BUILT_IN}
    if custom:
        report["custom"] = custom
    return report | dict(extra or {})
