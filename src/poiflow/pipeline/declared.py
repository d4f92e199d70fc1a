"""A declared pipeline: what a ``pipeline.yaml`` says, as a Python object.

>>> from poiflow import Pipeline
>>> pipeline = Pipeline.from_yaml("examples/helsinki/pipeline.yaml")   # doctest: +SKIP
>>> result = pipeline.run()                                             # doctest: +SKIP
>>> tighter = pipeline.replace({"stages": {"cluster": {"threshold": 0.5}}})  # doctest: +SKIP
>>> tighter.run(output="out/tighter").reused                            # doctest: +SKIP
['ingest', 'block', 'score']

The YAML file and the Python object load into one model (:class:`poiflow.config.PipelineSpec`),
so a pipeline built in a notebook can be saved and run by ``poiflow run``, and the other
way round.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from poiflow.config import PipelineSpec, SourceMapping, SourceSpec, load_yaml, validated
from poiflow.errors import ConfigError
from poiflow.pipeline.artifacts import Artifacts, StageContext
from poiflow.pipeline.plan import build_plan, quality_gate, run_json
from poiflow.pipeline.runner import (
    OnStage,
    RunResult,
    StagePlan,
    code_fingerprint,
    file_fingerprint,
    plan_stages,
    run_plan,
)
from poiflow.pipeline.stages import make_engine
from poiflow.storage import TEMP_ROOT, fetch, is_remote, output_staging, put_folder

if TYPE_CHECKING:
    from poiflow.pipeline.ingest_report import IngestProgress
    from poiflow.pipeline.tracking import Comparison

__all__ = ["Pipeline"]


@dataclass(frozen=True, slots=True)
class Pipeline:
    """A pipeline: its spec, and the folder its relative paths start from.

    Attributes:
        spec: What to run (sources, stage settings, custom stages, output, cache).
        base: Where relative paths in the spec start (the pipeline file's folder).
        path: The file it was read from, if any.
    """

    spec: PipelineSpec
    base: Path = Path()
    path: Path | None = None

    @classmethod
    def from_yaml(cls, path: str | Path) -> Pipeline:
        """Read a pipeline file.

        Raises:
            ConfigError: The file is missing or malformed (the message names the line
                and key, with a "did you mean" for a misspelt one).
        """
        path = Path(path)
        return cls(load_yaml(path, PipelineSpec), path.parent, path)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], base: str | Path = ".") -> Pipeline:
        """A pipeline from the same keys a pipeline file has.

        Raises:
            ConfigError: The data does not describe a pipeline (every problem, each by
                its key, as a pipeline file's are said).
        """
        return cls(validated(PipelineSpec, data), Path(base))

    def replace(self, changes: Mapping[str, Any]) -> Pipeline:
        """A copy with ``changes`` merged in: nested mappings merge key by key, and a key
        with dots names a setting inside (``{"stages.cluster.threshold": 0.6}`` is
        ``{"stages": {"cluster": {"threshold": 0.6}}}``).

        Raises:
            ConfigError: The changed pipeline is not one (as :meth:`from_dict`).
        """
        data = self.spec.model_dump(exclude_unset=True)
        for key, value in changes.items():
            *inside, last = str(key).split(".")
            change: Any = {last: value}
            for part in reversed(inside):
                change = {part: change}
            data = _merge(data, change)
        return Pipeline.from_dict(data, self.base)

    def with_table(self, name: str, data: Any, mapping: SourceMapping | None = None) -> Pipeline:
        """A copy that reads a table in memory as its source ``name``: in place of the
        source of that name, or as one more. A source's name is the one its records carry:
        ``osm`` for an OpenStreetMap extract, ``overture`` for Overture's places, else its
        mapping's ``source`` or its file's name up to the first dot.

        The table is read as :class:`poiflow.FrameSource` reads it (a pandas, polars,
        GeoPandas or Spark DataFrame, an Arrow table, ...). It is kept as a Parquet file
        named by a hash of its contents, in the cache (or the temporary folder when the
        pipeline has none): while the table is the same, the run reuses its stages; the
        run is logged with the file; and ``to_yaml`` gives a pipeline that ``poiflow run``
        runs again, on any engine.

        Raises:
            InputError: ``data`` is not a table.
            ConfigError: The cache is in object storage.

        Example:
            >>> feed = pd.read_csv("vendor.csv").query("score > 0.5")   # doctest: +SKIP
            >>> pipeline = Pipeline.from_yaml("pipeline.yaml")               # doctest: +SKIP
            >>> pipeline.with_table("vendor", feed).run()                    # doctest: +SKIP
        """
        from poiflow.sources.frame import FrameSource

        source = FrameSource(data, name, mapping)
        folder = (self.cache or TEMP_ROOT) / "tables"
        file = source.saved(folder).resolve()  # not relative to the pipeline file
        entry = SourceSpec(path=str(file), mapping=source.saved_mapping)
        names = [_source_name(s, self.base) for s in self.spec.sources]
        sources = [
            s for s, named in zip(self.spec.sources, names, strict=True) if named != source.name
        ]
        at = names.index(source.name) if source.name in names else len(sources)
        sources.insert(at, entry)
        return Pipeline(
            self.spec.model_copy(update={"sources": tuple(sources)}), self.base, self.path
        )

    def to_yaml(self) -> str:
        """The pipeline as a pipeline file's text."""
        data = self.spec.model_dump(exclude_unset=True, mode="json")
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)

    @property
    def stages(self) -> list[str]:
        """The names of the stages, in order."""
        return [stage.name for stage in self._plan(fingerprints=False)]

    def resolve(self, value: str | Path) -> Path:
        """A path of the spec, relative to the pipeline's folder; an object-storage URI
        (``s3://...``) is fetched, and its local copy's path returned.

        Raises:
            InputError: A URI that cannot be read (the cause is named).
        """
        if is_remote(str(value)):
            from poiflow.sources.base import companion_suffixes

            return fetch(str(value), self.downloads, companion_suffixes(str(value)))
        path = Path(value).expanduser()
        return path if path.is_absolute() else Path(os.path.normpath(self.base / path))

    @property
    def output(self) -> Path | str:
        """The output folder the spec names (a URI for object storage)."""
        if is_remote(self.spec.output):
            return self.spec.output
        return self.resolve(self.spec.output)

    @property
    def cache(self) -> Path | None:
        """The cache folder, or None.

        Raises:
            ConfigError: The cache is in object storage (it must be a local folder or a
                mounted volume: stages rename their entries into place).
        """
        if self.spec.cache and is_remote(self.spec.cache):
            raise ConfigError(
                f"cache: {self.spec.cache} is in object storage; the cache must be a folder "
                "(a mounted volume on a cluster). Inputs and outputs may be s3:// or hdfs:// URIs.",
                path=self.path,
            )
        return self.resolve(self.spec.cache) if self.spec.cache else None

    @property
    def downloads(self) -> Path:
        """Where inputs in object storage are fetched to (in the cache, if any)."""
        if self.spec.cache and not is_remote(self.spec.cache):
            return self.resolve(self.spec.cache) / "downloads"
        return TEMP_ROOT / "downloads"

    def run(
        self,
        output: str | Path | None = None,
        *,
        from_stage: str | None = None,
        only: str | None = None,
        use_cache: bool = True,
        track: bool = True,
        progress: IngestProgress | None = None,
        on_stage: OnStage | None = None,
    ) -> RunResult:
        """Run the pipeline, reusing cached stages.

        Args:
            output: The output folder; default: the spec's ``output``.
            from_stage: Run this stage and those after it even if cached.
            only: Run only this stage (what it needs must be cached): for schedulers
                that run one stage per task.
            use_cache: False runs every stage and keeps nothing.
            track: False does not log the run to MLflow (the pipeline's ``tracking``).
            progress: Told about each input as it is read.
            on_stage: Told each stage's name as it starts, and whether it was reused.

        Returns:
            The run: each stage with its key and whether it was reused, and the MLflow run
            id; ``output`` is None when ``only`` stopped before the last stage (nothing
            was published, nothing logged).

        Raises:
            ConfigError: The pipeline names something that is not there.
            ServerUnavailableError: Its tracking server cannot be reached (asked before
                any work; ``track=False`` runs without it).
            StageFailedError: A stage failed; re-running resumes at it.
        """
        if track and self.tracking_uri is not None:  # said now, not after the run
            from poiflow.pipeline.tracking import reach_tracking

            reach_tracking(self.tracking_uri)
        target = output if output is not None else self.output
        remote = str(target) if is_remote(str(target)) else None
        # An output in object storage is written here first and uploaded whole at the end.
        out = output_staging(remote, self.cache) if remote is not None else Path(target)
        objects = self._checked_inputs()
        context = StageContext(
            Path(),
            Artifacts(),
            {},
            sources=[self.resolve(s.path) for s in self.spec.sources],
            per_source=[(s.mapping, s.osm) for s in self.spec.sources],
            previous=self.resolve(self.spec.previous) if self.spec.previous else None,
            gold=self.resolve(self.spec.gold) if self.spec.gold else None,
            gold_places=self.resolve(self.spec.gold_places) if self.spec.gold_places else None,
            decisions=self.resolve(self.spec.decisions) if self.spec.decisions else None,
            progress=progress,
            objects=objects,
            engine=make_engine(self.spec.engine, self.spec.spark),
        )
        extra = {"pipeline": {"name": self.spec.name, "file": str(self.path or "")}}
        context.objects["pipeline"] = extra["pipeline"]
        result = run_plan(
            self._plan(),
            context,
            output=out,
            cache=self.cache if use_cache else None,
            report=lambda result: run_json(result, extra),
            from_stage=from_stage,
            only=only,
            on_stage=on_stage,
            gate=None
            if self.spec.gate is None
            else quality_gate(self.spec.gate, self.spec.checks, self.cache if use_cache else None),
        )
        if track and self.spec.tracking is not None and result.output is not None:
            # A run that only repeats one already logged (every stage reused, same keys,
            # same store) is not logged again: it is that run (as DVC skips a cached
            # experiment). It says so, and costs no MLflow start-up.
            signature = self._signature(result)
            repeated = self._logged().get(signature) if result.ran == [] else None
            result.run_id = repeated or self._log(result.output)
            if repeated is None:
                self._remember(signature, result.run_id)
            result.repeats_run = repeated is not None
            path = result.output / "run.json"
            data = json.loads(path.read_text("utf-8"))
            data["mlflow"] = {
                "run_id": result.run_id,
                "tracking_uri": self.tracking_uri,
                "repeats_logged_run": repeated is not None,
            }
            tmp = path.with_name(".run.json.tmp")  # written anew, atomically
            tmp.write_text(json.dumps(data, indent=2, default=str), "utf-8")
            tmp.replace(path)
        if remote is not None and result.output is not None:
            put_folder(result.output, remote)
            result.uploaded_to = remote
        return result

    def dry_run(
        self, *, from_stage: str | None = None, only: str | None = None, use_cache: bool = True
    ) -> list[StagePlan]:
        """What :meth:`run` would do, without doing it: each stage, whether it would run
        or reuse its cached output, and why (what changed since it last ran in the cache:
        its settings, the stages before it, poiflow's code, a file it reads). Nothing is
        run, written or logged; the inputs are read to know whether they changed.

        Args:
            from_stage, only, use_cache: As :meth:`run` takes them.

        Raises:
            ConfigError: As :meth:`run` raises it before any work (a source that is not
                there, a decisions file that cannot be read, a stage that is not one).
        """
        self._checked_inputs()
        return plan_stages(
            self._plan(),
            self.cache if use_cache else None,
            from_stage=from_stage,
            only=only,
        )

    def _checked_inputs(self) -> dict[str, Any]:
        """Refuse, before any work, a source that is not there or decisions that cannot be
        read; returns the decisions read (once, kept for the run)."""
        for source in self.spec.sources:
            where = self.resolve(source.path).resolve()
            if not where.exists():
                raise ConfigError(
                    f"sources: {source.path} does not exist (looked at {where}; paths are "
                    "relative to the pipeline file)",
                    path=self.path,
                )
        objects: dict[str, Any] = {}
        if self.spec.decisions:
            from poiflow.conflate.decisions import read_decisions

            objects["decisions"] = read_decisions(self.resolve(self.spec.decisions))
        return objects

    def _signature(self, result: RunResult) -> str:
        parts = {
            "uri": self.tracking_uri,
            "experiment": self.experiment,
            "stages": [(s.name, s.key) for s in result.stages],
            "output": str(result.output),
        }
        return hashlib.blake2b(json.dumps(parts).encode(), digest_size=12).hexdigest()

    def _logged(self) -> dict[str, str]:
        """Runs logged from this cache: signature -> MLflow run id."""
        path = self.cache / "tracking.json" if self.cache else None
        if path is None or not path.exists():
            return {}
        try:
            return dict(json.loads(path.read_text("utf-8")))
        except (OSError, ValueError):
            return {}

    def _remember(self, signature: str, run_id: str) -> None:
        if self.cache is None:
            return
        logged = self._logged() | {signature: run_id}
        self.cache.mkdir(parents=True, exist_ok=True)
        tmp = self.cache / f".tracking.json.{os.getpid()}"
        tmp.write_text(json.dumps(logged, indent=1), "utf-8")
        tmp.replace(self.cache / "tracking.json")

    def compare(self, *runs: str, last: int | None = None) -> Comparison:
        """This pipeline's logged runs side by side, as ``poiflow compare --pipeline``
        does: the settings that differ and every metric (``frame()``, a table; ``chart()``
        a PNG; in a notebook it shows itself, changes coloured).

        Args:
            runs: Run ids (a unique prefix will do).
            last: Then the pipeline's last ``last`` runs, oldest first.

        Raises:
            ConfigError: The pipeline logs no runs, or fewer than two are named.
        """
        from poiflow.pipeline.tracking import compare

        uri = self.tracking_uri
        if uri is None:
            raise ConfigError("this pipeline logs no runs to compare: give it tracking: {uri: ...}")
        return compare(uri, runs, experiment=self.experiment, last=last)

    @property
    def experiment(self) -> str:
        """The MLflow experiment its runs are logged in: ``tracking.experiment``, or the
        pipeline's name."""
        tracking = self.spec.tracking
        return (tracking.experiment if tracking else None) or self.spec.name

    @property
    def tracking_uri(self) -> str | None:
        """Where runs are logged, or None."""
        from poiflow.pipeline.tracking import default_uri

        tracking = self.spec.tracking
        if tracking is None:
            return None
        uri = tracking.uri or default_uri(self.base)
        local = uri.removeprefix("sqlite:///")
        if uri.startswith("sqlite:///") and not local.startswith("/"):
            return f"sqlite:///{self.resolve(local).resolve()}"  # relative to the pipeline
        return uri

    def _log(self, output: Path) -> str:
        from poiflow.pipeline.tracking import log_run

        uri = self.tracking_uri
        assert uri is not None
        assert self.spec.tracking is not None
        run_json = json.loads((output / "run.json").read_text("utf-8"))
        params = self.spec.model_dump(mode="json", exclude={"tracking", "description"})
        params["code"] = code_fingerprint()
        artifacts = [output / "report.html", output / "model.json.gz"]
        with tempfile.TemporaryDirectory() as tmp:
            # The pipeline as it ran (after any replace()), with where it came from.
            effective = Path(tmp) / "pipeline.yaml"
            origin = f"# from {self.path}\n" if self.path else ""
            effective.write_text(f"{origin}# base: {self.base.resolve()}\n{self.to_yaml()}")
            return log_run(
                uri=uri,
                experiment=self.experiment,
                params=params,
                run_json=run_json,
                artifacts=[effective, *artifacts],
                run_name=self.spec.name,
            )

    def _plan(self, *, fingerprints: bool = True) -> list[Any]:
        """The plan; without ``fingerprints`` the input files are not read (the stage
        names are the same, the keys are not)."""
        spec = self.spec
        model = spec.stages.score.model
        model_identity = ""
        if model not in ("default", "em"):
            model_path = self.resolve(model)
            if not model_path.exists():
                raise ConfigError(f"stages.score.model: no model file {model}", path=self.path)
            model_identity = file_fingerprint(model_path) if fingerprints else ""
            spec = spec.model_copy(
                update={
                    "stages": spec.stages.model_copy(
                        update={
                            "score": spec.stages.score.model_copy(update={"model": str(model_path)})
                        }
                    )
                }
            )
        try:
            return self._build(spec, model_identity, fingerprints)
        except ConfigError as exc:
            if exc.path is None and self.path is not None:
                exc.path = str(self.path)
            raise

    def _build(self, spec: PipelineSpec, model_identity: str, fingerprints: bool) -> list[Any]:
        identity = self._identity if fingerprints else (lambda value: "")
        return build_plan(
            ingest=spec.stages.ingest,
            block=spec.stages.block,
            score=spec.stages.score,
            cluster=spec.stages.cluster,
            merge=spec.stages.merge,
            inputs_identity=self._inputs_identity() if fingerprints else "",
            previous_identity=identity(spec.previous),
            model_identity=model_identity,
            gold_identity=identity(spec.gold) if spec.gold else None,
            gold_places_identity=identity(spec.gold_places) if spec.gold_places else "",
            decisions_identity=identity(spec.decisions) if spec.decisions else "",
            checks=spec.checks,
            custom=spec.custom,
            base=self.base,
            engine=spec.engine,
        )

    def _inputs_identity(self) -> str:
        parts = [
            {
                "file": file_fingerprint(self.resolve(s.path))
                if self.resolve(s.path).exists()
                else s.path,
                "mapping": s.mapping.model_dump(mode="json") if s.mapping else None,
                "osm": s.osm.model_dump(mode="json") if s.osm else None,
            }
            for s in self.spec.sources
        ]
        return hashlib.blake2b(json.dumps(parts).encode(), digest_size=12).hexdigest()

    def _identity(self, value: str | None) -> str:
        if not value:
            return ""
        path = self.resolve(value)
        return file_fingerprint(path) if path.exists() else value


def _source_name(source: SourceSpec, base: Path) -> str:
    """The name a pipeline's source goes by, as ``open_source`` names it: ``osm`` for an
    OpenStreetMap extract, ``overture`` for Overture's places, else its mapping's
    ``source`` or its file's name (``default_name``). A file in object storage is not
    fetched for it: it is named as a file that is not Overture's."""
    from poiflow.sources import source_name

    path = source.path if is_remote(source.path) else Path(os.path.normpath(base / source.path))
    return source_name(path, source.mapping)


def _merge(base: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in changes.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(dict(merged[key]), value)
        else:
            merged[key] = value
    return merged
