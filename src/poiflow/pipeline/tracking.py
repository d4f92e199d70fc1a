"""Experiment tracking with MLflow: every pipeline run logged, and runs compared.

A run logs its parameters (every setting of the pipeline, flattened: ``stages.cluster.
threshold``), its metrics (counts per stage, seconds per stage, and with known truth the
precision, recall, F1 and B-cubed scores), tags (which stages were reused, the code
fingerprint), and as artifacts the pipeline file, ``run.json``, the model file and the
report. The store is MLflow's: a SQLite file beside the pipeline by default, or any
tracking URI (a server) from the pipeline's ``tracking.uri``.
"""

from __future__ import annotations

import html
import json
import logging
import math
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from poiflow._version import __version__
from poiflow.errors import ConfigError, OutputError, ServerUnavailableError

if TYPE_CHECKING:
    import polars as pl
    from mlflow.tracking import MlflowClient

__all__ = [
    "CHECK_TOTALS",
    "Comparison",
    "RunRecord",
    "compare",
    "compare_runs",
    "default_uri",
    "log_run",
    "number_text",
    "read_runs",
]

# The metrics of all the quality checks together; each check's own is ``checks.NAME``.
CHECK_TOTALS = ("checks.errors", "checks.warnings")

# Metrics that say more when they go down; every other metric is better up. The missed
# and wrong pairs of each stage (``missed_blocking``, ``wrong_matcher``, ...) are errors.
LOWER_IS_BETTER = (
    "seconds",
    "checks.",  # places flagged
    "quarantined",
    "withheld",
    "missed_",
    "wrong_",
    "unmatched",
    # The golden records' (``golden.*``): confidence's gap from accuracy, metres off.
    "calibration_error",
    "brier",
    "median_m",
    "p90_m",
)


REACH_TIMEOUT_S = 5.0


def reach_tracking(uri: str, timeout_s: float | None = None) -> None:
    """Ask a tracking server (an ``http(s)://`` store) whether it is there, once, without
    retries: a wrong address or a server not running is said at once, not after the run
    and minutes of MLflow's own retries. A store of another kind is not asked.

    Raises:
        ServerUnavailableError: No answer within ``timeout_s`` (default
            ``REACH_TIMEOUT_S``). Any answer, even an error status, is one.
    """
    if not uri.startswith(("http://", "https://")):
        return
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(  # noqa: S310 - the scheme is http(s), checked above
            f"{uri.rstrip('/')}/health",
            timeout=REACH_TIMEOUT_S if timeout_s is None else timeout_s,
        ):
            return
    except urllib.error.HTTPError:
        return  # it answered
    except (OSError, ValueError) as exc:  # refused, no such host, timed out, a bad URI
        reason = getattr(exc, "reason", exc)
        raise ServerUnavailableError(
            f"cannot reach the MLflow tracking server at {uri} ({reason}): start it "
            "(mlflow server --port PORT), or name yours (the pipeline's tracking: {uri: "
            "...}, --tracking-uri); --no-track runs without it"
        ) from None


def _client(uri: str) -> MlflowClient:
    reach_tracking(uri)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # MLflow's own deprecation notices on import
            from mlflow.tracking import MlflowClient
    except ImportError as exc:  # pragma: no cover - make install installs it
        raise ConfigError(
            "experiment tracking needs MLflow: pip install 'poiflow[tracking]' "
            "(or set 'tracking: null' in the pipeline)"
        ) from exc
    # What MLflow says as it makes a new store's tables ("Creating initial MLflow database
    # tables...", at INFO on the terminal) is none of a person's business: poiflow says
    # where the run was logged.
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
    return MlflowClient(tracking_uri=uri)


def default_uri(base: Path) -> str:
    """The default store: ``mlflow.db`` (SQLite) in the pipeline's folder."""
    return f"sqlite:///{(base / 'mlflow.db').resolve()}"


def _experiment(client: MlflowClient, name: str, uri: str) -> str:
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    location = None
    if uri.startswith("sqlite:///"):  # artifacts beside the database, not under the CWD
        location = (Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts").as_uri()
    return str(client.create_experiment(name, artifact_location=location))


def flatten(data: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``{"a": {"b": 1}}`` -> ``("a.b", 1)``; lists stay values."""
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            yield from flatten(value, f"{name}.")
        else:
            yield name, value


def run_metrics(run_json: Mapping[str, Any]) -> dict[str, float]:
    """The numbers of ``run.json`` worth plotting: counts, seconds, scores, what became of
    a person's decisions, and the places each quality check flagged."""
    metrics: dict[str, float] = {}
    for key, value in run_json.get("counts", {}).items():
        metrics[key] = float(value)
    for stage, seconds in run_json.get("seconds", {}).items():
        metrics[f"seconds.{stage}"] = float(seconds)
    metrics["seconds.total"] = float(sum(run_json.get("seconds", {}).values()))
    for key, value in run_json.get("metrics", {}).items():
        metrics[key] = float(value)
    for key, value in run_json.get("decisions", {}).items():  # what became of them
        metrics[f"decisions.{key}"] = float(value)
    checks = run_json.get("checks", {})
    if "errors" in checks:  # the places each check flagged, a check that passed at 0
        metrics[CHECK_TOTALS[0]] = float(checks["errors"])
        metrics[CHECK_TOTALS[1]] = float(checks["warnings"])
        for name in checks.get("passed", []):
            metrics[f"checks.{name}"] = 0.0
        for name, flagged in checks.get("failed", {}).items():
            metrics[f"checks.{name}"] = float(flagged)
    return {k: v for k, v in metrics.items() if math.isfinite(v)}


def log_run(
    *,
    uri: str,
    experiment: str,
    params: Mapping[str, Any],
    run_json: Mapping[str, Any],
    artifacts: Sequence[Path],
    run_name: str | None = None,
) -> str:
    """Log one pipeline run; returns its MLflow run id.

    Raises:
        OutputError: The store cannot be reached or refuses the run.
    """
    with warnings.catch_warnings():
        # MLflow's dependencies warn about their own deprecations: nothing a user can act on.
        warnings.simplefilter("ignore", DeprecationWarning)
        return _log_run(uri, experiment, params, run_json, artifacts, run_name)


def _log_run(
    uri: str,
    experiment: str,
    params: Mapping[str, Any],
    run_json: Mapping[str, Any],
    artifacts: Sequence[Path],
    run_name: str | None,
) -> str:
    from mlflow.entities import Metric, Param, RunTag

    try:
        client = _client(uri)
        experiment_id = _experiment(client, experiment, uri)
        stages = run_json.get("stages", [])
        tags = {
            "poiflow.version": __version__,
            "poiflow.reused": ",".join(s["name"] for s in stages if s["reused"]) or "-",
            "poiflow.ran": ",".join(s["name"] for s in stages if not s["reused"]) or "-",
            "poiflow.output": str(run_json.get("output", "")),
            "poiflow.model": str(run_json.get("model", "")),
        }
        run = client.create_run(experiment_id, run_name=run_name, tags=tags)
        run_id = run.info.run_id
        now = int(time.time() * 1000)
        client.log_batch(
            run_id,
            metrics=[Metric(k, v, now, 0) for k, v in run_metrics(run_json).items()],
            params=[Param(k, _param(v)) for k, v in flatten(params)],
            tags=[RunTag(f"stage.{s['name']}.key", s["key"]) for s in stages],
        )
        with tempfile.TemporaryDirectory() as tmp:
            summary = Path(tmp) / "run.json"
            summary.write_text(json.dumps(run_json, indent=2, default=str), "utf-8")
            client.log_artifact(run_id, str(summary))
        for path in artifacts:
            if path.exists():
                client.log_artifact(run_id, str(path))
        client.set_terminated(run_id, "FINISHED")
    except ConfigError:
        raise
    except Exception as exc:
        raise OutputError(
            f"could not log the run to MLflow at {uri}: {type(exc).__name__}: {exc}"
        ) from exc
    return str(run_id)


def _param(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text[:6000]


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One logged run, as ``compare`` reads it."""

    run_id: str
    name: str
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]


def read_runs(uri: str, run_ids: Sequence[str]) -> list[RunRecord]:
    """The logged runs ``run_ids`` (a unique prefix of an id is enough within a store).

    Raises:
        ConfigError: A run is not in the store.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return _read_runs(uri, run_ids)


def _read_runs(uri: str, run_ids: Sequence[str]) -> list[RunRecord]:
    client = _client(uri)
    records = []
    for wanted in run_ids:
        run = _find(client, wanted, uri)
        records.append(
            RunRecord(
                run.info.run_id,
                run.info.run_name or run.info.run_id[:8],
                dict(run.data.params),
                dict(run.data.metrics),
                dict(run.data.tags),
            )
        )
    return records


def _find(client: MlflowClient, wanted: str, uri: str) -> Any:
    if len(wanted) == 32:
        try:
            return client.get_run(wanted)
        except Exception as exc:
            raise ConfigError(f"no run '{wanted}' in {uri}") from exc
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(experiments, max_results=5000)
    matches = [r for r in runs if r.info.run_id.startswith(wanted)]
    if len(matches) != 1:
        found = "no run" if not matches else f"{len(matches)} runs"
        raise ConfigError(f"{found} with an id starting '{wanted}' in {uri}")
    return matches[0]


def latest_runs(uri: str, experiment: str, count: int) -> list[str]:
    """The ids of the ``count`` latest runs of ``experiment``, oldest first."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return _latest_runs(uri, experiment, count)


def _latest_runs(uri: str, experiment: str, count: int) -> list[str]:
    client = _client(uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        raise ConfigError(f"no experiment '{experiment}' in {uri}")
    runs = client.search_runs(
        [found.experiment_id], max_results=count, order_by=["attributes.start_time DESC"]
    )
    return [r.info.run_id for r in reversed(runs)]


@dataclass(frozen=True, slots=True)
class Comparison:
    """Runs side by side: the parameters that differ, and every metric."""

    runs: list[RunRecord]
    params: list[tuple[str, list[str | None]]]
    metrics: list[tuple[str, list[float | None]]]

    @property
    def names(self) -> list[str]:
        """Each run's name and the start of its id, as its column is headed."""
        return [f"{r.name} {r.run_id[:8]}" for r in self.runs]

    def shown(self, only: str | None = None) -> list[tuple[str, list[float | None]]]:
        """The metrics a person is shown: with ``only``, those whose name has it in it;
        else every one but a check's that flagged no place in any of the runs (the totals
        always)."""
        if only is not None:
            return [(k, v) for k, v in self.metrics if only in k]
        return [
            (k, v)
            for k, v in self.metrics
            if not k.startswith("checks.") or k in CHECK_TOTALS or any(v)
        ]

    def cached(self, index: int, metric: str) -> bool:
        """Whether ``metric`` is the seconds of a stage that the run at ``index`` took
        from the cache: it did no work to time, and is no speed to compare."""
        stage = metric.removeprefix("seconds.")
        reused = self.runs[index].tags.get("poiflow.reused", "")
        return stage != metric and stage in reused.split(",")

    def cells(
        self, only: str | None = None
    ) -> list[tuple[str, list[tuple[str, str, bool | None]]]]:
        """Each metric :meth:`shown`, with each run's value as text, its change from the
        first run's ('' for the first, or where either has none) and whether that change
        is better (None: no change); what both views of a comparison draw. A stage's
        seconds in a run that took the stage from the cache read "cached", with no change
        from or to it."""
        rows = []
        for key, values in self.shown(only):
            first = None if self.cached(0, key) else values[0]
            cells: list[tuple[str, str, bool | None]] = []
            for index, value in enumerate(values):
                if self.cached(index, key):
                    cells.append(("cached", "", None))
                    continue
                text = "" if value is None else number_text(value)
                if index and value is not None and first is not None:
                    cells.append((text, f"{value - first:+.4g}", better(key, first, value)))
                else:
                    cells.append((text, "", None))
            rows.append((key, cells))
        return rows

    def frame(self) -> pl.DataFrame:
        """The metrics as a table: ``metric``, then one column a run (:attr:`names`)."""
        import polars as pl

        return pl.DataFrame(
            {
                "metric": [k for k, _ in self.metrics],
                **{
                    name: pl.Series([v[i] for _, v in self.metrics], dtype=pl.Float64)
                    for i, name in enumerate(self.names)
                },
            }
        )

    def chart(self, path: str | Path) -> Path:
        """Draw the runs side by side as a PNG at ``path`` (:func:`chart`)."""
        return chart(self, Path(path))

    def _repr_html_(self) -> str:
        """A notebook's view, as ``poiflow compare`` prints it: the settings that differ,
        and every metric with its change from the first run (green better, red worse)."""
        head = "".join(f"<th>{html.escape(n)}</th>" for n in self.names)
        params = "".join(
            f"<tr><td>{html.escape(key)}</td>"
            + "".join(f"<td>{html.escape('' if v is None else v)}</td>" for v in values)
            + "</tr>"
            for key, values in self.params
        )
        if not params:
            span = len(self.runs) + 1
            params = f'<tr><td colspan="{span}">(none: the runs share every setting)</td></tr>'
        colour = {None: "#777", True: "#2e7d32", False: "#c62828"}
        rows = []
        for key, cells in self.cells():
            shown = "".join(
                f'<td style="text-align:right">{text}'
                + (f' <span style="color:{colour[verdict]}">({change})</span>' if change else "")
                + "</td>"
                for text, change, verdict in cells
            )
            rows.append(f"<tr><td>{html.escape(key)}</td>{shown}</tr>")
        return (
            f"<table><caption>Settings that differ</caption><thead><tr><th>parameter</th>"
            f"{head}</tr></thead><tbody>{params}</tbody></table>"
            f"<table><caption>Metrics</caption><thead><tr><th>metric</th>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>"
        )


def number_text(value: float) -> str:
    """A metric as text: a whole number as one ("3", "0"), anything else to four decimals."""
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:.4f}"


def compare(
    uri: str, runs: Sequence[str] = (), *, experiment: str | None = None, last: int | None = None
) -> Comparison:
    """The runs ``runs`` of the store at ``uri`` (a unique prefix of an id will do), then
    the last ``last`` of ``experiment``, side by side.

    Raises:
        ConfigError: Fewer than two runs, ``last`` below 1 or without an experiment, a
            run or the experiment not in the store.
    """
    ids = list(runs)
    if last is not None:
        if last < 1:
            raise ConfigError(f"last is {last}: give how many of the latest runs, 1 or more")
        if experiment is None:
            raise ConfigError("--last needs --pipeline (whose experiment to read)")
        ids += latest_runs(uri, experiment, last)
    if len(ids) < 2:
        raise ConfigError("compare needs two runs or more (run ids, or --last N)")
    return compare_runs(read_runs(uri, ids))


def compare_runs(runs: Sequence[RunRecord]) -> Comparison:
    """The parameters whose values differ between ``runs``, and all their metrics."""
    keys = sorted({k for r in runs for k in r.params})
    params = [
        (key, values) for key in keys if len(set(values := [r.params.get(key) for r in runs])) > 1
    ]
    metric_keys = sorted({k for r in runs for k in r.metrics})
    metrics = [(key, [r.metrics.get(key) for r in runs]) for key in metric_keys]
    return Comparison(list(runs), params, metrics)


def better(metric: str, old: float, new: float) -> bool | None:
    """Whether ``new`` is an improvement on ``old`` for ``metric`` (None: no change)."""
    if new == old:
        return None
    lower = any(word in metric for word in LOWER_IS_BETTER)
    return (new < old) if lower else (new > old)


def chart_panels(comparison: Comparison) -> list[tuple[str, list[str]]]:
    """The panels of :func:`chart`, each its title and its metrics, those without any
    left out: quality (with known truth), how right the golden records are (with the
    true places), counts, the places each quality check flagged (the checks that flagged
    any in one of the runs), seconds."""
    values = dict(comparison.metrics)
    quality: list[str] = [
        m for m in ("precision", "recall", "f1", "bcubed_f1") if any(values.get(m) or [])
    ]
    counts: list[str] = [
        m for m in ("places", "multi_source_places", "matched_pairs") if m in values
    ]
    golden = [
        k for k, _ in comparison.metrics if k.startswith("golden.") and k.endswith(".accuracy")
    ]
    flagged = [
        k
        for k, found in comparison.metrics
        if k.startswith("checks.") and k not in CHECK_TOTALS and any(found)
    ]
    seconds = [
        k for k, _ in comparison.metrics if k.startswith("seconds.") and k != "seconds.total"
    ]
    panels: list[tuple[str, list[str]]] = [
        ("quality", quality),
        ("golden records right", golden),
        ("counts", counts),
        ("places flagged by checks", flagged),
        ("seconds", seconds),
    ]
    return [(title, keys) for title, keys in panels if keys]


def chart(comparison: Comparison, path: Path) -> Path:
    """A PNG of the runs side by side, a panel each of :func:`chart_panels`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = chart_panels(comparison)
    figure, axes = plt.subplots(1, max(1, len(panels)), figsize=(6 * max(1, len(panels)), 4))
    axes_list = list(axes) if len(panels) > 1 else [axes]
    values = dict(comparison.metrics)
    width = 0.8 / max(1, len(comparison.runs))
    for axis, (title, keys) in zip(axes_list, panels, strict=False):
        for index, run in enumerate(comparison.runs):
            heights = [values[k][index] or 0.0 for k in keys]
            positions = [i + index * width for i in range(len(keys))]
            axis.bar(positions, heights, width, label=f"{run.name} ({run.run_id[:8]})")
            for at, key in zip(positions, keys, strict=True):
                if comparison.cached(index, key):  # no bar: say why
                    axis.text(at, 0, "cached", rotation=90, ha="center", va="bottom", size=7)
        axis.set_xticks([i + width * (len(comparison.runs) - 1) / 2 for i in range(len(keys))])
        axis.set_xticklabels(
            [
                k.removeprefix("seconds.")
                .removeprefix("golden.")
                .removeprefix("checks.")
                .removesuffix(".accuracy")
                for k in keys
            ],
            rotation=30,
        )
        axis.set_title(title)
        if title in ("quality", "golden records right"):
            low = min((values[k][i] or 1.0) for k in keys for i in range(len(comparison.runs)))
            axis.set_ylim(max(0.0, low - 0.05), 1.0)
    axes_list[0].legend(fontsize="small")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
