"""Deploy a pipeline to Airflow: a DAG that runs it the way ``poiflow run`` does, stage by
stage (Kubernetes manifests: :mod:`poiflow.pipeline.kubernetes`).

Each task is ``poiflow run PIPELINE --only STAGE`` (a stage reads what the stages before
it left in the pipeline's cache, so every task must see the same cache: a shared volume
or object storage), and a last task publishes the outputs and logs the run to MLflow.
Nothing here imports Airflow: the DAG is plain text, checked by the tests against a real
Airflow.
"""

from __future__ import annotations

import shlex
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from poiflow.errors import ConfigError

if TYPE_CHECKING:
    from poiflow.pipeline.declared import Pipeline

__all__ = ["AirflowOptions", "airflow_dag", "dag_id"]

_PUBLISH: Final = "publish"


@dataclass(frozen=True, slots=True)
class AirflowOptions:
    """How the DAG runs the stages.

    Attributes:
        poiflow: The ``poiflow`` command on the Airflow workers.
        pipeline: Where the pipeline file is on the workers (default: where it is here).
        retries: How often a failed task is retried.
        retry_delay_minutes: How long Airflow waits before a retry.
        timeout_minutes: A task running longer than this is failed (and retried).
    """

    poiflow: str = str(Path(sys.executable).with_name("poiflow"))
    pipeline: str | None = None
    retries: int = 2
    retry_delay_minutes: int = 5
    timeout_minutes: int = 240


def dag_id(pipeline: Pipeline) -> str:
    """The DAG's id: ``poiflow_`` and the pipeline's name."""
    return "poiflow_" + "".join(c if c.isalnum() or c in "_-." else "_" for c in pipeline.spec.name)


def airflow_dag(pipeline: Pipeline, options: AirflowOptions | None = None) -> str:
    """The source of an Airflow 3 DAG file that runs ``pipeline`` one task per stage.

    Raises:
        ConfigError: The pipeline has no cache (tasks hand stages on through it) or no file.
    """
    options = options or AirflowOptions()
    if pipeline.cache is None:
        raise ConfigError(
            "a deployed pipeline runs each stage as its own task, and the stages hand their "
            "outputs on through the cache: set 'cache' (a folder every task can see)",
            path=pipeline.path,
        )
    where = options.pipeline or (str(pipeline.path.resolve()) if pipeline.path else None)
    if where is None:
        raise ConfigError("the pipeline must be a file (poiflow run reads it on the workers)")
    stages = [*pipeline.stages, _PUBLISH]
    tasks = []
    for stage in stages:
        command = [options.poiflow, "run", where]
        if stage != _PUBLISH:
            command += ["--only", stage, "--no-track"]
        tasks.append(
            f"    {_task_name(stage)} = BashOperator(\n"
            f"        task_id={stage!r},\n"
            f"        bash_command={shlex.join(command)!r},\n"
            f"        doc_md={_task_doc(stage)!r},\n"
            "    )"
        )
    chain = " >> ".join(_task_name(stage) for stage in stages)
    schedule = pipeline.spec.schedule
    description = pipeline.spec.description or f"The poiflow pipeline {pipeline.spec.name}."
    name, engine = pipeline.spec.name, pipeline.spec.engine
    header = f'''\
        """Airflow DAG of the poiflow pipeline '{name}' ({engine} engine).

        Written by: poiflow deploy airflow {where}
        Edit the pipeline, not this file, and write it again.

        One task per stage, each `poiflow run PIPELINE --only STAGE`: a stage reads what the
        stages before it left in the pipeline's cache ({pipeline.cache}), so every
        worker must see that folder. The last task, 'publish', finds every stage cached,
        writes the outputs ({pipeline.output}) and logs the run to MLflow.
        """
        '''
    body = f"""\
from __future__ import annotations

import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

with DAG(
    dag_id={dag_id(pipeline)!r},
    description={description!r},
    schedule={schedule!r},
    start_date=datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc),
    catchup=False,
    max_active_runs=1,
    tags=["poiflow", {pipeline.spec.engine!r}],
    default_args={{
        "owner": "poiflow",
        "retries": {options.retries},
        "retry_delay": datetime.timedelta(minutes={options.retry_delay_minutes}),
        "execution_timeout": datetime.timedelta(minutes={options.timeout_minutes}),
    }},
) as dag:
{chr(10).join(tasks)}

    {chain}
"""
    return textwrap.dedent(header) + body


def _task_name(stage: str) -> str:
    return "stage_" + "".join(c if c.isalnum() else "_" for c in stage)


def _task_doc(stage: str) -> str:
    if stage == _PUBLISH:
        return "Write the outputs (every stage is cached by now) and log the run to MLflow."
    return f"Stage '{stage}' of the pipeline; its outputs go to the pipeline's cache."
