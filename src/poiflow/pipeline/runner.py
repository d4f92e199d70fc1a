"""Run a plan of stages: reuse what is cached, run the rest, publish the outputs atomically.

Every stage's output is stored under a key made of poiflow's code (a fingerprint of the
package: its modules, data and shipped models), the stage's settings, and the keys of its
inputs (for ``ingest``: the content of the input files and how they are read). A stage
whose key is in the cache is reused, not run; change one setting and only the stages from
there on run again.

A cache entry is built in a hidden folder and renamed into place with its ``stage.json``
(the lineage: key, settings, input keys, seconds, summary) inside: a killed run never
leaves an entry that looks complete. The run's outputs are staged the same way and moved
into the output folder at the end, ``run.json`` last.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import html
import json
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from poiflow._gc import paused_gc
from poiflow.errors import (
    ConfigError,
    NoSuchStageError,
    OutputError,
    PoiflowError,
    StageFailedError,
    did_you_mean,
)
from poiflow.pipeline.artifacts import ARTIFACT_FILES, Artifacts, StageContext, StageFunction
from poiflow.storage import clear_stale, link_or_copy

__all__ = [
    "PUBLISHED",
    "PlannedStage",
    "RunResult",
    "StagePlan",
    "StageRun",
    "code_fingerprint",
    "plan_stages",
    "run_plan",
]

# What a run publishes into its output folder (with run.json, written last).
PUBLISHED = (
    "places",
    "membership",
    "pairs",
    "records",
    "quarantine",
    "changes",
    "decisions",
    "checks",
    "issues",
    "report",
    "model",
)


@dataclass(frozen=True, slots=True)
class PlannedStage:
    """One stage of a plan.

    Attributes:
        name: Unique in the plan ("score", or a custom stage's name).
        function: What runs it.
        needs: Artifacts it reads.
        makes: Artifacts it writes (a custom stage may make what it needs, anew).
        settings: Its settings (JSON data); part of its key and handed to it.
        identity: Anything else its output depends on (input file contents, a function's
            source): part of its key only.
    """

    name: str
    function: StageFunction
    needs: tuple[str, ...]
    makes: tuple[str, ...]
    settings: Mapping[str, Any] = field(default_factory=dict)
    identity: str = ""


@dataclass(slots=True)
class StageRun:
    """What happened to one stage in a run."""

    name: str
    key: str
    reused: bool
    seconds: float
    summary: dict[str, Any]
    inputs: dict[str, str]
    settings: Mapping[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class RunResult:
    """A finished run: where its outputs are, and each stage's part."""

    output: Path | None
    stages: list[StageRun]
    run_id: str | None = None  # the MLflow run it was logged as, if tracked
    repeats_run: bool = False  # nothing ran: run_id is the logged run this one repeats
    uploaded_to: str | None = None  # the object-storage folder the outputs were put in

    def stage(self, name: str) -> StageRun:
        """The run of stage ``name``.

        Raises:
            ConfigError: The run has no such stage (a ``KeyError`` too); the message
                names those it has.
        """
        for run in self.stages:
            if run.name == name:
                return run
        names = [s.name for s in self.stages]
        raise NoSuchStageError(
            f"no stage '{name}' in this run.{did_you_mean(name, names)} "
            f"Its stages: {', '.join(names)}"
        )

    @property
    def reused(self) -> list[str]:
        """Stages taken from the cache."""
        return [s.name for s in self.stages if s.reused]

    @property
    def ran(self) -> list[str]:
        """Stages that ran."""
        return [s.name for s in self.stages if not s.reused]

    def _repr_html_(self) -> str:
        """A notebook's view, as ``poiflow run`` prints it: each stage ran or reused and
        its seconds; what came out (records, places, and the scores against the truth
        where the pipeline has it); where the outputs are, and the MLflow run."""
        from poiflow.pipeline.ingest_report import report_table

        stages = report_table(
            ["stage", "", "seconds"],
            [
                [s.name, "reused" if s.reused else "ran", "" if s.reused else s.seconds]
                for s in self.stages
            ],
            caption="The stages",
        )
        if self.output is None:
            return stages
        where = self.uploaded_to or str(self.output)
        note = f"Outputs in {where}" + (
            ""
            if self.run_id is None
            else f"; MLflow run {self.run_id}"
            + (" (nothing changed: not logged again)" if self.repeats_run else "")
        )
        try:
            run = json.loads((Path(self.output) / "run.json").read_text("utf-8"))
        except (OSError, ValueError):
            return f"{stages}<p>{html.escape(note)}</p>"
        counts, metrics = run.get("counts", {}), run.get("metrics", {})
        rows = [[name, counts[key]] for key, name in _SHOWN_COUNTS if key in counts]
        rows += [[key, f"{metrics[key]:.4f}"] for key in _SHOWN_METRICS if key in metrics]
        return stages + report_table(["", ""], rows, caption="What came out", note=note)


# What a run's view in a notebook shows of its run.json.
_SHOWN_COUNTS: Final = (
    ("read", "records read"),
    ("quarantined", "quarantined"),
    ("records", "records"),
    ("places", "places"),
    ("multi_source_places", "places of 2+ records"),
)
_SHOWN_METRICS: Final = ("precision", "recall", "f1", "bcubed_f1")


OnStage = Callable[[str, bool], None]


def run_plan(
    plan: Sequence[PlannedStage],
    context: StageContext,
    *,
    output: Path | None,
    cache: Path | None,
    report: Callable[[RunResult], dict[str, Any]],
    from_stage: str | None = None,
    only: str | None = None,
    on_stage: OnStage | None = None,
    gate: Callable[[RunResult], None] | None = None,
) -> RunResult:
    """Run ``plan``, reusing cached stages, and publish its outputs into ``output``.

    Args:
        plan: The stages, in order.
        context: Inputs and options the stages share; its folder and settings are set
            per stage.
        output: The output folder; None publishes nothing (the cache keeps everything).
        cache: The cache folder; None runs every stage in a scratch folder.
        report: Builds ``run.json`` from the finished run.
        from_stage: Run this stage and those after it even if cached.
        only: Run only this stage; what it needs must be in the cache.
        on_stage: Told each stage's name as it starts, and whether it was reused.
        gate: Told of the run before its outputs are published (or, with ``only``, once
            that stage is done); what it raises stops the run with nothing published.

    Raises:
        ConfigError: ``from_stage`` or ``only`` names no stage, or ``only`` needs a stage
            that is not cached.
        StageFailedError: A stage failed (its error is the cause).
    """
    names = _stage_names(plan, cache, from_stage, only)
    force_from = names.index(from_stage) if from_stage is not None else len(names)
    created = output is not None and not output.exists()
    staging = _staging(output) if output is not None else None
    scratch = None
    if cache is None:
        scratch = (staging or Path(os.getcwd())) / f".work-{os.getpid()}"
        scratch.mkdir(parents=True, exist_ok=True)
    else:
        _clear_stale(cache)
    # Without a cache, only the published files are needed: the others stay in memory.
    artifacts = Artifacts(PUBLISHED if cache is None else None)
    context.artifacts = artifacts
    keys: dict[str, str] = {}
    runs: list[StageRun] = []
    last_use = {a: i for i, s in enumerate(plan) for a in s.needs}
    only_index = names.index(only) if only is not None else None
    try:
        for index, stage in enumerate(plan):
            if only_index is not None and index > only_index:
                break  # the stages after --only are not run
            inputs = {a: keys[a] for a in stage.needs if a in keys}
            key = _key(stage, inputs)
            entry = cache / stage.name / key if cache is not None else None
            done = entry is not None and (entry / "stage.json").exists()
            if only_index is not None:
                run_it = index == only_index
            else:
                run_it = not done or index >= force_from
            if run_it:
                if on_stage is not None:
                    on_stage(stage.name, False)
                runs.append(_run_stage(stage, key, inputs, context, entry, scratch, runs))
            elif done and entry is not None:
                lineage = json.loads((entry / "stage.json").read_text("utf-8"))
                for name in stage.makes:
                    artifacts.put(name, entry / ARTIFACT_FILES[name])
                runs.append(
                    StageRun(stage.name, key, True, 0.0, lineage["summary"], inputs, stage.settings)
                )
                if on_stage is not None:
                    on_stage(stage.name, True)
            else:
                raise ConfigError(
                    f"--only {only}: it needs stage '{stage.name}', which is not cached; "
                    "run the pipeline up to it first (without --only)"
                )
            for name in stage.makes:
                keys[name] = f"{key}:{name}"
            for name, last in last_use.items():
                if last == index:
                    artifacts.release(name)
        artifacts.settle()
        result = RunResult(output, runs)
        complete = len(runs) == len(plan)
        if gate is not None:
            gate(result)
        if staging is not None and output is not None and complete:
            _publish(artifacts, staging, output, report(result))
        elif output is not None and not complete:
            result.output = None
        return result
    finally:
        artifacts.close()
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
        if created and output is not None:
            with contextlib.suppress(OSError):  # a failed run leaves no empty folder behind
                output.rmdir()


def _run_stage(
    stage: PlannedStage,
    key: str,
    inputs: dict[str, str],
    context: StageContext,
    entry: Path | None,
    scratch: Path | None,
    runs: list[StageRun],
) -> StageRun:
    if entry is not None:
        folder = entry.parent / f".tmp-{key}-{os.getpid()}"
    else:
        assert scratch is not None
        folder = scratch / stage.name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    context.folder = folder
    context.settings = stage.settings
    context.objects.update(_handed_on(runs))
    started = time.perf_counter()
    try:
        # A stage turns many records into Python objects; the collector would walk them
        # over and over (see poiflow._gc). It runs again when the stage is done.
        with paused_gc():
            summary = stage.function(context)
    except BaseException as exc:
        if entry is not None:  # a half-built entry never stays behind
            context.artifacts.close()
            shutil.rmtree(folder, ignore_errors=True)
        if isinstance(exc, PoiflowError):
            exc.stage = stage.name
            raise
        if not isinstance(exc, Exception):
            raise
        message = f"stage '{stage.name}' failed: {type(exc).__name__}: {exc}"
        raise StageFailedError(message, stage=stage.name) from exc
    seconds = time.perf_counter() - started
    run = StageRun(stage.name, key, False, seconds, summary, inputs, stage.settings)
    if entry is not None:
        context.artifacts.settle()  # an entry is kept whole: its files written first
        lineage = {
            "stage": stage.name,
            "key": key,
            "settings": stage.settings,
            "inputs": inputs,
            # What else the key is made of, hashed: a dry run says which of them changed.
            "code": code_fingerprint(),
            "identity": _digest(stage.identity),
            "seconds": round(seconds, 3),
            "summary": summary,
        }
        (folder / "stage.json").write_text(json.dumps(lineage, indent=2, default=str), "utf-8")
        if entry.exists():  # re-run on purpose (--from): swap the old entry out
            old = entry.parent / f".old-{key}-{os.getpid()}"
            os.replace(entry, old)
            shutil.rmtree(old, ignore_errors=True)
        os.replace(folder, entry)
        context.artifacts.relocate(folder, entry)
    return run


def _stage_names(
    plan: Sequence[PlannedStage], cache: Path | None, from_stage: str | None, only: str | None
) -> list[str]:
    """The plan's stage names, once ``--from`` and ``--only`` are found among them.

    Raises:
        ConfigError: ``from_stage`` or ``only`` names no stage, or ``only`` without a cache.
    """
    names = [s.name for s in plan]
    for option, value in (("--from", from_stage), ("--only", only)):
        if value is not None and value not in names:
            raise ConfigError(
                f"{option}: no stage '{value}'.{did_you_mean(value, names)} "
                f"Stages: {', '.join(names)}"
            )
    if only is not None and cache is None:
        raise ConfigError("--only needs a cache for the stages before it; this pipeline has none")
    return names


@dataclass(frozen=True, slots=True)
class StagePlan:
    """What a run would do with one stage (``Pipeline.dry_run``).

    Attributes:
        name: The stage.
        key: Its cache key.
        runs: Whether it would run.
        cached: Whether its output under this key is in the cache (reused when it does not
            run; a stage before ``--only`` that is neither is missing).
        why: Why, in words: ``cached``, ``--from cluster``, or what changed since the
            stage last ran in the cache (its settings, its inputs, poiflow's code, a file
            it reads).
    """

    name: str
    key: str
    runs: bool
    cached: bool
    why: str


# What changed when a stage's ``identity`` did (what it reads besides its settings and
# inputs), in words.
_READS: Final = {
    "ingest": "an input file changed, or how one is read",
    "score": "the model file or the engine changed",
    "cluster": "the decisions file or the engine changed",
    "merge": "the previous release or the engine changed",
    "block": "the engine changed",
    "evaluate": "the truth (gold) changed",
    "report": "a custom check's code changed",
}
_OWN_CODE: Final = "its function's code changed"  # a custom stage's


def plan_stages(
    plan: Sequence[PlannedStage],
    cache: Path | None,
    *,
    from_stage: str | None = None,
    only: str | None = None,
) -> list[StagePlan]:
    """What ``run_plan`` would do with each stage, without running or writing anything:
    its key, whether it would run, and why.

    Raises:
        ConfigError: As ``run_plan`` does for ``from_stage`` and ``only``.
    """
    names = _stage_names(plan, cache, from_stage, only)
    force_from = names.index(from_stage) if from_stage is not None else len(names)
    only_index = names.index(only) if only is not None else None
    keys: dict[str, str] = {}
    planned: list[StagePlan] = []
    for index, stage in enumerate(plan):
        if only_index is not None and index > only_index:
            break
        inputs = {a: keys[a] for a in stage.needs if a in keys}
        key = _key(stage, inputs)
        done = cache is not None and (cache / stage.name / key / "stage.json").exists()
        if only_index is not None and index < only_index:
            runs = False
            why = "cached" if done else f"not cached, so --only {only} cannot run"
        elif only_index is not None:
            runs, why = True, f"--only {only}"
        elif index >= force_from:
            runs, why = True, f"--from {from_stage}"
        elif done:
            runs, why = False, "cached"
        else:
            runs, why = True, _changed(stage, inputs, cache)
        planned.append(StagePlan(stage.name, key, runs, done, why))
        for name in stage.makes:
            keys[name] = f"{key}:{name}"
    return planned


def _changed(stage: PlannedStage, inputs: Mapping[str, str], cache: Path | None) -> str:
    """Why ``stage`` is not cached: what differs from its latest entry in ``cache``."""
    if cache is None:
        return "no cache: every stage runs"
    entries = [p for p in (cache / stage.name).glob("*/stage.json") if p.is_file()]
    if not entries:
        return "it has not run with this cache"
    try:
        last = json.loads(max(entries, key=lambda p: p.stat().st_mtime).read_text("utf-8"))
    except (OSError, ValueError):
        return "not cached"
    said = []
    from poiflow.pipeline.tracking import flatten

    settings = dict(flatten(json.loads(json.dumps(dict(stage.settings), default=str))))
    before = dict(flatten(last.get("settings") or {}))
    moved = [k for k in sorted(settings.keys() | before.keys()) if settings.get(k) != before.get(k)]
    if moved:
        shown = [f"{k} {before.get(k)!r} -> {settings.get(k)!r}" for k in moved[:3]]
        more = f" and {len(moved) - 3} more" if len(moved) > 3 else ""
        said.append("its settings changed: " + ", ".join(shown) + more)
    was = last.get("inputs") or {}
    other = [a for a in sorted(inputs) if was.get(a) != inputs[a]]
    if other:
        said.append(f"its inputs changed ({', '.join(other)})")
    if "code" in last and last["code"] != code_fingerprint():
        said.append("poiflow's code changed")
    if "identity" in last and last["identity"] != _digest(stage.identity):
        said.append(_READS.get(stage.name, _OWN_CODE))
    if said:
        return "; ".join(said)
    if "code" in last:  # nothing differs that a stage.json records
        return "not cached"
    return "poiflow's code, or a file it reads, changed"


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def _handed_on(runs: list[StageRun]) -> dict[str, Any]:
    """What the stages before tell a stage: the model's own clustering bars, and (for the
    report) every stage's run so far."""
    handed: dict[str, Any] = {"runs": list(runs)}
    for run in runs:
        if run.name == "score":
            handed["model_threshold"] = run.summary.get("model_threshold")
            handed["model_source_bar"] = run.summary.get("model_source_bar")
    return handed


def _key(stage: PlannedStage, inputs: Mapping[str, str]) -> str:
    payload = json.dumps(
        {
            "stage": stage.name,
            "code": code_fingerprint(),
            "settings": stage.settings,
            "identity": stage.identity,
            "inputs": dict(sorted(inputs.items())),
        },
        sort_keys=True,
        default=str,
    )
    return _digest(payload)


@functools.cache
def code_fingerprint() -> str:
    """A hash of poiflow's own files (modules, data, shipped models): its code version."""
    root = Path(__file__).resolve().parents[1]  # the poiflow package
    digest = hashlib.blake2b(digest_size=12)
    for path in sorted(root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def file_fingerprint(path: Path) -> str:
    """A hash of a file's bytes (with the files read with it, a shapefile's ``.dbf``...; or
    of a folder's files), for the keys of input stages."""
    from poiflow.sources.base import companions

    digest = hashlib.blake2b(digest_size=12)
    if path.is_dir():
        files = [
            (f.relative_to(path).as_posix(), f) for f in sorted(path.rglob("*")) if f.is_file()
        ]
    else:
        files = [(f.name, f) for f in (path, *companions(path))]
    for name, file in files:
        digest.update(name.encode())
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _staging(output: Path) -> Path:
    """A new staging folder in ``output``, where no run's half-written one is left over
    (a run killed outright cannot remove its own)."""
    staging = output / f".staging-{os.getpid()}"
    try:
        output.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(staging, ignore_errors=True)
        clear_stale(output, ".staging-*")
        staging.mkdir()
    except OSError as exc:  # a file of that name, a read-only disk, no permission
        what = "a file, not a folder" if output.is_file() else exc.strerror
        raise OutputError(
            f"cannot write the outputs here ({what}); the output is a folder", path=output
        ) from exc
    return staging


def _publish(artifacts: Artifacts, staging: Path, output: Path, run: dict[str, Any]) -> None:
    """Link (or copy) the published artifacts into ``output``, ``run.json`` last."""
    names = []
    for artifact in PUBLISHED:
        name = ARTIFACT_FILES[artifact]
        source = artifacts.path(artifact)
        link_or_copy(source, staging / name)
        names.append(name)
    (staging / "run.json").write_text(json.dumps(run, indent=2, default=str), "utf-8")
    for name in [*names, "run.json"]:
        os.replace(staging / name, output / name)


def _clear_stale(cache: Path) -> None:
    """Remove half-built entries of runs that are no longer alive."""
    if cache.exists():
        clear_stale(cache, "*/.tmp-*")
