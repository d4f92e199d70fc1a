"""Deploy a pipeline to production schedulers: an Airflow DAG, Kubernetes manifests.

Both run the pipeline the way ``poiflow run`` does, stage by stage: each Airflow task is
``poiflow run PIPELINE --only STAGE`` (a stage reads what the stages before it left in the
pipeline's cache, so every task must see the same cache: a shared volume or object
storage), and a last task publishes the outputs and logs the run to MLflow. Nothing here
imports Airflow or a Kubernetes client: the files are plain text, checked by the tests
against a real Airflow and the real Kubernetes and Spark operator schemas.
"""

from __future__ import annotations

import math
import shlex
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from poiflow.errors import ConfigError

if TYPE_CHECKING:
    from poiflow.pipeline.declared import Pipeline

__all__ = [
    "AirflowOptions",
    "KubernetesOptions",
    "airflow_dag",
    "dag_id",
    "deployed_spec",
    "k8s_manifests",
    "k8s_name",
]

_PUBLISH: Final = "publish"
# Where the data volume is mounted in the pods, and the pipeline file in it.
WORKDIR: Final = "/work"
_SPARK_MAIN: Final = "local:///opt/poiflow/spark_main.py"
_SPARK_API: Final = "sparkoperator.k8s.io/v1beta2"


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


@dataclass(frozen=True, slots=True)
class KubernetesOptions:
    """Where the manifests run the pipeline.

    Attributes:
        image: The container image (the project's ``Dockerfile`` builds it).
        namespace: The Kubernetes namespace.
        claim: The PersistentVolumeClaim mounted at ``/work``: the inputs (at the paths
            the pipeline gives, relative to ``/work``), the cache and the outputs.
        spark_version: The Spark version of the image (the Spark operator wants it).
    """

    image: str = "poiflow:latest"
    namespace: str = "default"
    claim: str = "poiflow-data"
    spark_version: str = "4.3.0"


def k8s_name(pipeline: Pipeline) -> str:
    """The name of the pipeline's Kubernetes objects: ``poiflow-`` and its name, as a DNS
    label (lower case, dashes)."""
    name = "".join(c if c.isalnum() else "-" for c in pipeline.spec.name.lower()).strip("-")
    return f"poiflow-{name}"[:52].rstrip("-")


def deployed_spec(pipeline: Pipeline) -> dict[str, Any]:
    """The pipeline as the pods run it from ``/work/pipeline.yaml``: outputs, cache and a
    SQLite tracking store inside ``/work``; on Spark, the master the operator gives."""
    spec = pipeline.spec.model_dump(mode="json", exclude_unset=True)
    spec["output"] = _inside(pipeline.spec.output, "out")
    if pipeline.spec.cache:
        spec["cache"] = _inside(pipeline.spec.cache, ".poiflow-cache")
    tracking = pipeline.spec.tracking
    if tracking is not None and tracking.uri and tracking.uri.startswith("sqlite:///"):
        spec["tracking"] = {**spec.get("tracking", {}), "uri": "sqlite:///mlflow.db"}
    if pipeline.spec.engine == "spark":
        spec["spark"] = {**spec.get("spark", {}), "master": ""}
    return spec


def k8s_manifests(
    pipeline: Pipeline, options: KubernetesOptions | None = None
) -> list[dict[str, Any]]:
    """The Kubernetes objects that run ``pipeline``: its file in a ConfigMap, and a Job
    (a CronJob with a schedule) for the local engine, or a SparkApplication (a
    ScheduledSparkApplication) of the Spark operator, with its service account, for the
    Spark engine. Resources come from the pipeline's ``resources`` and ``spark``."""
    import yaml

    options = options or KubernetesOptions()
    name = k8s_name(pipeline)
    spec = pipeline.spec
    labels = {"app.kubernetes.io/name": "poiflow", "app.kubernetes.io/instance": name}
    meta = {"name": name, "namespace": options.namespace, "labels": labels}
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {**meta, "name": f"{name}-pipeline"},
        "data": {
            "pipeline.yaml": yaml.safe_dump(
                deployed_spec(pipeline), sort_keys=False, allow_unicode=True
            )
        },
    }
    volumes = [
        {"name": "data", "persistentVolumeClaim": {"claimName": options.claim}},
        {"name": "pipeline", "configMap": {"name": f"{name}-pipeline"}},
    ]
    mounts = [
        {"name": "data", "mountPath": WORKDIR},
        {"name": "pipeline", "mountPath": f"{WORKDIR}/pipeline.yaml", "subPath": "pipeline.yaml"},
    ]
    if spec.engine == "spark":
        return [config_map, *_spark_objects(pipeline, options, meta, volumes, mounts)]
    container = {
        "name": "poiflow",
        "image": options.image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["poiflow"],
        "args": ["run", f"{WORKDIR}/pipeline.yaml"],
        "workingDir": WORKDIR,
        "resources": {
            "requests": {"cpu": spec.resources.cpu, "memory": spec.resources.memory},
            "limits": {"memory": spec.resources.memory},
        },
        "volumeMounts": mounts,
    }
    job_spec = {
        "backoffLimit": 2,
        "template": {
            "metadata": {"labels": labels},
            "spec": {"restartPolicy": "Never", "containers": [container], "volumes": volumes},
        },
    }
    if spec.schedule is None:
        return [
            config_map,
            {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": job_spec},
        ]
    cron = {
        "schedule": spec.schedule,
        "concurrencyPolicy": "Forbid",
        "successfulJobsHistoryLimit": 3,
        "failedJobsHistoryLimit": 3,
        "jobTemplate": {"metadata": {"labels": labels}, "spec": job_spec},
    }
    return [
        config_map,
        {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": meta, "spec": cron},
    ]


def _spark_objects(
    pipeline: Pipeline,
    options: KubernetesOptions,
    meta: dict[str, Any],
    volumes: list[dict[str, Any]],
    mounts: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """The SparkApplication (or ScheduledSparkApplication) and the service account its
    driver uses to start executors."""
    spec = pipeline.spec
    spark = spec.spark
    account = f"{meta['name']}-spark"
    cores = max(1, math.ceil(_cpu(spec.resources.cpu)))
    application = {
        "type": "Python",
        "pythonVersion": "3",
        "mode": "cluster",
        "image": options.image,
        "imagePullPolicy": "IfNotPresent",
        "mainApplicationFile": _SPARK_MAIN,
        "arguments": ["run", f"{WORKDIR}/pipeline.yaml"],
        "sparkVersion": options.spark_version,
        "sparkConf": {"spark.sql.shuffle.partitions": str(spark.partitions), **spark.conf},
        "restartPolicy": {
            "type": "OnFailure",
            "onFailureRetries": 2,
            "onFailureRetryInterval": 300,
            "onSubmissionFailureRetries": 2,
            "onSubmissionFailureRetryInterval": 60,
        },
        "driver": {
            "cores": cores,
            "memory": spark.driver_memory,
            "serviceAccount": account,
            "labels": meta["labels"],
            "volumeMounts": mounts,
        },
        "executor": {
            "cores": spark.executor_cores,
            "instances": spark.executors,
            "memory": spark.executor_memory,
            "labels": meta["labels"],
            "volumeMounts": mounts,
        },
        "volumes": volumes,
    }
    if spec.schedule is None:
        app = {
            "apiVersion": _SPARK_API,
            "kind": "SparkApplication",
            "metadata": meta,
            "spec": application,
        }
    else:
        scheduled = {
            "schedule": spec.schedule,
            "concurrencyPolicy": "Forbid",
            "template": application,
        }
        app = {
            "apiVersion": _SPARK_API,
            "kind": "ScheduledSparkApplication",
            "metadata": meta,
            "spec": scheduled,
        }
    account_meta = {**meta, "name": account}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": account_meta},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": account_meta,
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["pods", "services", "configmaps", "persistentvolumeclaims"],
                    "verbs": [
                        "create",
                        "get",
                        "list",
                        "watch",
                        "update",
                        "patch",
                        "delete",
                        "deletecollection",
                    ],
                }
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": account_meta,
            "subjects": [
                {"kind": "ServiceAccount", "name": account, "namespace": options.namespace}
            ],
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": account},
        },
        app,
    ]


def _cpu(value: str) -> float:
    return float(value[:-1]) / 1000 if value.endswith("m") else float(value)


def _inside(path: str, default: str) -> str:
    """A path of the pipeline as it is inside ``/work``: relative paths that stay inside
    the pipeline's folder are kept, others become ``default``."""
    parts = Path(path).parts
    if Path(path).is_absolute() or ".." in parts:
        return default
    return path
