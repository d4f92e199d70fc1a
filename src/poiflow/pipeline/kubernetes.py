"""Kubernetes manifests of a pipeline (``poiflow deploy k8s``): what runs it, and what
runs all the time beside it.

The pipeline runs as ``poiflow run`` does: a Job (a CronJob with a schedule) on the local
engine, or a SparkApplication of the Spark operator on Spark. Beside it, on request, a
Deployment of ``poiflow serve`` over its output with a Service, and one of ``poiflow
stream``. A PersistentVolumeClaim mounted at ``/work`` holds the inputs, the cache and the
outputs for all of them; the pipeline file travels in a ConfigMap. Nothing here imports a
Kubernetes client: the manifests are plain objects, checked by the tests against the real
Kubernetes and Spark operator schemas.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from poiflow.config.platform import StreamSettings
from poiflow.errors import ConfigError
from poiflow.storage import is_remote

if TYPE_CHECKING:
    from poiflow.pipeline.declared import Pipeline

__all__ = ["WORKDIR", "KubernetesOptions", "deployed_spec", "k8s_manifests", "k8s_name"]

# Where the data volume is mounted in the pods, and the pipeline file in it.
WORKDIR: Final = "/work"
_SPARK_MAIN: Final = "local:///opt/poiflow/spark_main.py"
_SPARK_API: Final = "sparkoperator.k8s.io/v1beta2"
_SERVE_PORT: Final = 8000
_STREAM_GRACE_S: Final = 120
_STREAM_STALE_S: Final = 900  # a stream whose loop has not turned for this long is stuck


@dataclass(frozen=True, slots=True)
class KubernetesOptions:
    """Where the manifests run the pipeline.

    Attributes:
        image: The container image (the project's ``Dockerfile`` builds it).
        namespace: The Kubernetes namespace.
        claim: The PersistentVolumeClaim mounted at ``/work``: the inputs (at the paths
            the pipeline gives, relative to ``/work``), the cache and the outputs.
        spark_version: The Spark version of the image (the Spark operator wants it).
        serve: Pods of ``poiflow serve`` over the pipeline's output (a Deployment and
            its Service); 0: none. The Job, the stream and the servers all mount the
            claim: pods on more than one node need a ReadWriteMany claim.
        serve_cpu: The CPU each server pod asks for.
        serve_memory: The memory of each server pod: its places, search index and
            matcher are in memory, and a later run is loaded beside them (a generated
            world of 110k records, 35k places: 1.4 GB, 1.8 GB while it loads the next).
        watch_s: How often the servers look for a later run of the pipeline.
        stream: A Deployment of ``poiflow stream``: the pipeline's edits from Kafka,
            applied as they arrive (with ``serve``, the servers answer from the stores
            the stream keeps current).
        brokers: Kafka's bootstrap servers as the pods reach them, instead of the
            pipeline's ``stream.brokers``.
    """

    image: str = "poiflow:latest"
    namespace: str = "default"
    claim: str = "poiflow-data"
    spark_version: str = "4.3.0"
    serve: int = 0
    serve_cpu: str = "1"
    serve_memory: str = "4Gi"
    watch_s: float = 30.0
    stream: bool = False
    brokers: str | None = None


def k8s_name(pipeline: Pipeline) -> str:
    """The name of the pipeline's Kubernetes objects: ``poiflow-`` and its name, as a DNS
    label (lower case, dashes)."""
    name = "".join(c if c.isalnum() else "-" for c in pipeline.spec.name.lower()).strip("-")
    return f"poiflow-{name}"[:52].rstrip("-")


def deployed_spec(pipeline: Pipeline, brokers: str | None = None) -> dict[str, Any]:
    """The pipeline as the pods run it from ``/work/pipeline.yaml``: outputs, cache, a
    stream's snapshots and a SQLite tracking store inside ``/work``; on Spark, the master
    the operator gives; Kafka at ``brokers`` where they are given."""
    spec = pipeline.spec.model_dump(mode="json", exclude_unset=True)
    spec["output"] = _inside(pipeline.spec.output, "out")
    if pipeline.spec.cache:
        spec["cache"] = _inside(pipeline.spec.cache, ".poiflow-cache")
    stream = dict(spec.get("stream", {}))
    if brokers:
        stream["brokers"] = brokers
    if pipeline.spec.stream.state and _inside(pipeline.spec.stream.state, "") == "":
        del stream["state"]  # outside the volume: the default, OUTPUT/stream
    if stream or "stream" in spec:
        spec["stream"] = stream
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
                deployed_spec(pipeline, options.brokers), sort_keys=False, allow_unicode=True
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
    parts = _Parts(pipeline, options, meta, volumes, mounts)
    runs = _spark_objects(parts) if spec.engine == "spark" else _job_objects(parts)
    return [config_map, *runs, *_live_objects(parts)]


@dataclass(frozen=True, slots=True)
class _Parts:
    """What the objects of one pipeline's manifests share."""

    pipeline: Pipeline
    options: KubernetesOptions
    meta: dict[str, Any]  # the objects' name, namespace and labels
    volumes: list[dict[str, Any]]  # the data volume, then the pipeline file
    mounts: list[dict[str, Any]]  # of the volumes, in their order

    def container(
        self,
        name: str,
        args: list[str],
        cpu: str,
        memory: str,
        mounts: list[dict[str, Any]] | None = None,
        **more: Any,
    ) -> dict[str, Any]:
        """A container of the image running ``poiflow ARGS`` in ``/work``, with ``mounts``
        (default: every volume's) and ``more`` settings."""
        return {
            "name": name,
            "image": self.options.image,
            "imagePullPolicy": "IfNotPresent",
            "command": ["poiflow"],
            "args": args,
            "workingDir": WORKDIR,
            **more,
            "resources": {"requests": {"cpu": cpu, "memory": memory}, "limits": {"memory": memory}},
            "volumeMounts": self.mounts if mounts is None else mounts,
        }

    def pipeline_container(self, name: str, command: str, **more: Any) -> dict[str, Any]:
        """A container of ``poiflow COMMAND /work/pipeline.yaml`` with the pipeline's
        resources (and ``more`` settings)."""
        resources = self.pipeline.spec.resources
        args = [command, f"{WORKDIR}/pipeline.yaml"]
        return self.container(name, args, resources.cpu, resources.memory, **more)


def _job_objects(parts: _Parts) -> list[dict[str, Any]]:
    """The Job (or CronJob) that runs the pipeline on the local engine."""
    spec, meta = parts.pipeline.spec, parts.meta
    labels = meta["labels"]
    container = parts.pipeline_container("poiflow", "run")
    job_spec = {
        "backoffLimit": 2,
        "template": {
            "metadata": {"labels": labels},
            "spec": {
                "restartPolicy": "Never",
                "containers": [container],
                "volumes": parts.volumes,
            },
        },
    }
    if spec.schedule is None:
        return [{"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": job_spec}]
    cron = {
        "schedule": spec.schedule,
        "concurrencyPolicy": "Forbid",
        "successfulJobsHistoryLimit": 3,
        "failedJobsHistoryLimit": 3,
        "jobTemplate": {"metadata": {"labels": labels}, "spec": job_spec},
    }
    return [{"apiVersion": "batch/v1", "kind": "CronJob", "metadata": meta, "spec": cron}]


def _spark_objects(parts: _Parts) -> list[dict[str, Any]]:
    """The SparkApplication (or ScheduledSparkApplication) and the service account its
    driver uses to start executors."""
    pipeline, options, meta = parts.pipeline, parts.options, parts.meta
    volumes, mounts = parts.volumes, parts.mounts
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


def _live_objects(parts: _Parts) -> list[dict[str, Any]]:
    """What runs all the time beside the pipeline's runs: the stream's Deployment, and
    the servers' Deployment with its Service. Each pod waits for the pipeline's first
    run before it starts (an init container)."""
    pipeline, options = parts.pipeline, parts.options
    if not (options.serve or options.stream):
        return []
    output = _inside(pipeline.spec.output, "out")
    if is_remote(output) and options.stream:
        raise ConfigError(
            f"--stream runs beside the pipeline on its volume, and keeps a local output "
            f"folder current there; the pipeline's output is {output}: give the pipeline "
            f"an output inside the volume (a relative path, such as 'out')",
            path=pipeline.path,
        )
    # An output in object storage is served from a copy (poiflow serve s3://...).
    folder = output if is_remote(output) else f"{WORKDIR}/{output}"
    stream = pipeline.spec.stream.model_copy(
        update={"brokers": options.brokers} if options.brokers else {}
    )
    objects = []
    if options.stream:
        _reachable_from_pods(stream, pipeline)
        state = _inside(stream.state, "") if stream.state else ""  # as deployed_spec has it
        state = f"{WORKDIR}/{state}" if state else f"{folder}/stream"
        objects.append(_stream_deployment(parts, folder, state))
    if options.serve:
        stores = []
        if options.stream and stream.cassandra:
            stores += ["--cassandra", stream.cassandra, "--keyspace", stream.keyspace]
        if options.stream and stream.opensearch:
            stores += ["--opensearch", stream.opensearch, "--index", stream.index]
        objects += _serve_objects(parts, folder, stores)
    return objects


def _deployment(
    parts: _Parts,
    component: str,
    folder: str,
    container: dict[str, Any],
    replicas: int,
    recreate: bool = False,
    **pod: Any,
) -> dict[str, Any]:
    """A Deployment ``NAME-COMPONENT`` of ``replicas`` pods of one container (``pod``: more
    settings of the pods), each waiting until the pipeline's first run has written its
    output (an init container: ``run.json`` is written last). ``recreate``: an update
    stops the old pods before it starts new ones (else it rolls, new beside old)."""
    labels = {**parts.meta["labels"], "app.kubernetes.io/component": component}
    said = f"waiting for the pipeline to write {folder}"
    waiting: dict[str, Any] = {
        "name": "wait-for-places",
        "image": parts.options.image,
        "imagePullPolicy": "IfNotPresent",
    }
    if is_remote(folder):  # run.json is uploaded last: the rest is there before it
        script = (
            "import time\nfrom poiflow.storage import object_stamp\n"
            f"while object_stamp({f'{folder}/run.json'!r}) is None:\n"
            f"    print({said!r}, flush=True)\n    time.sleep(10)\n"
        )
        waiting |= {"command": ["python", "-c", script], "workingDir": WORKDIR}
    else:
        script = (
            f"until [ -f {folder}/run.json ] && [ -f {folder}/places.parquet ]; do "
            f"echo '{said}'; sleep 10; done"
        )
        waiting |= {
            "command": ["sh", "-c", script],
            "volumeMounts": [{"name": "data", "mountPath": WORKDIR, "readOnly": True}],
        }
    mounted = {m["name"] for m in container["volumeMounts"]}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {**parts.meta, "name": f"{parts.meta['name']}-{component}", "labels": labels},
        "spec": {
            "replicas": replicas,
            **({"strategy": {"type": "Recreate"}} if recreate else {}),
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    **pod,
                    "initContainers": [waiting],
                    "containers": [container],
                    "volumes": [v for v in parts.volumes if v["name"] in mounted],
                },
            },
        },
    }


def _stream_deployment(parts: _Parts, folder: str, state: str) -> dict[str, Any]:
    """One pod of ``poiflow stream``, replaced (not doubled) when it is updated: two
    streams would write one snapshot folder. It is alive while its loop turns: the
    heartbeat in its ``state`` folder is younger than ``_STREAM_STALE_S`` (the first
    comes after it has loaded the places and filled its indexes and stores)."""
    beat = f"{state}/{StreamSettings.HEARTBEAT}"
    young = f"[ -f {beat} ] && [ $(( $(date +%s) - $(stat -c %Y {beat}) )) -lt {_STREAM_STALE_S} ]"
    probe = {"exec": {"command": ["sh", "-c", young]}}
    container = parts.pipeline_container(
        "stream",
        "stream",
        startupProbe={**probe, "periodSeconds": 10, "failureThreshold": 180},
        livenessProbe={**probe, "periodSeconds": 60, "failureThreshold": 3},
    )
    return _deployment(
        parts,
        "stream",
        folder,
        container,
        1,
        recreate=True,
        # SIGTERM stops it after the batch in hand: its events, snapshot and commit.
        terminationGracePeriodSeconds=_STREAM_GRACE_S,
    )


def _serve_objects(parts: _Parts, folder: str, stores: list[str]) -> list[dict[str, Any]]:
    """The servers' Deployment, the Service in front of them and, with two or more, a
    disruption budget that keeps one answering. ``/health`` answers
    once a server has loaded the places: the start may take minutes (a search index to
    build), so a startup probe waits for it before readiness and liveness count."""
    options = parts.options
    health = {"path": "/health", "port": "http"}
    name = f"{parts.meta['name']}-serve"
    # Every address of the pod: the kubelet's probes and the Service reach it from outside.
    args = ["serve", folder, "--host", "0.0.0.0", "--port", str(_SERVE_PORT)]  # noqa: S104
    container = parts.container(
        "serve",
        [*args, "--watch", _number(options.watch_s), *stores],
        options.serve_cpu,
        options.serve_memory,
        [] if is_remote(folder) else parts.mounts[:1],  # no pipeline file; a copy of s3://
        ports=[{"name": "http", "containerPort": _SERVE_PORT}],
        # POST /labels takes a review's answers only with this token; none: no writes.
        env=[
            {
                "name": "POIFLOW_API_TOKEN",
                "valueFrom": {
                    "secretKeyRef": {"name": f"{name}-token", "key": "token", "optional": True}
                },
            }
        ],
        startupProbe={"httpGet": health, "periodSeconds": 10, "failureThreshold": 90},
        readinessProbe={"httpGet": health, "periodSeconds": 10, "timeoutSeconds": 5},
        livenessProbe={
            "httpGet": health,
            "periodSeconds": 30,
            "timeoutSeconds": 10,
            "failureThreshold": 3,
        },
    )
    deployment = _deployment(parts, "serve", folder, container, options.serve)
    labels = deployment["spec"]["selector"]["matchLabels"]
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {**parts.meta, "name": name, "labels": labels},
        "spec": {
            "selector": labels,
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
        },
    }
    if options.serve < 2:
        return [deployment, service]
    # A node drained, or a cluster upgraded, takes the servers one at a time.
    budget = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {**parts.meta, "name": name, "labels": labels},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": labels}},
    }
    return [deployment, service, budget]


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _reachable_from_pods(stream: StreamSettings, pipeline: Pipeline) -> None:
    """Refuse a stream that would look for Kafka (or a store) inside its own pod."""
    named = {
        "stream.brokers": stream.brokers.split(","),
        "stream.cassandra": (stream.cassandra or "").split(","),
        "stream.opensearch": [urlsplit(stream.opensearch).netloc] if stream.opensearch else [],
    }
    for setting, addresses in named.items():
        if any(_loopback(address) for address in addresses if address.strip()):
            raise ConfigError(
                f"{setting} is {','.join(addresses)}: inside a pod that is the pod itself; "
                "give the address the cluster reaches it at"
                + (" (--brokers)" if setting == "stream.brokers" else ""),
                path=pipeline.path,
            )


def _loopback(address: str) -> bool:
    """Whether HOST[:PORT] (or [IPv6]:PORT) names this machine."""
    address = address.strip()
    if address.startswith("["):
        host = address[1:].partition("]")[0]
    else:
        host = address.rpartition(":")[0] if address.count(":") == 1 else address
    if host.lower() == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False  # a name
    return ip.is_loopback or ip.is_unspecified


def _cpu(value: str) -> float:
    return float(value[:-1]) / 1000 if value.endswith("m") else float(value)


def _inside(path: str, default: str) -> str:
    """A path of the pipeline as it is inside ``/work``: relative paths that stay inside
    the pipeline's folder are kept, others become ``default``."""
    parts = Path(path).parts
    if Path(path).is_absolute() or ".." in parts:
        return default
    return path
