"""``poiflow deploy k8s``: the manifests validate against the real Kubernetes schemas
(kubernetes-validate, offline) and the Spark operator's own CRD schema, carry the
pipeline's resources and schedule, and agree with the Dockerfile."""

from __future__ import annotations

import copy
import gzip
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pyarrow.parquet as pq
import pytest
import yaml
from kubernetes_validate.utils import latest_version

from poiflow.config import PipelineSpec, StreamSettings
from poiflow.errors import ConfigError
from poiflow.pipeline import Pipeline
from poiflow.pipeline.kubernetes import WORKDIR, KubernetesOptions, k8s_manifests

from ..conftest import ROOT, free_port

HELSINKI = ROOT / "examples" / "helsinki" / "pipeline.yaml"
CRDS = ROOT / "tests" / "fixtures" / "k8s"
K8S_VERSION = latest_version()


def crd_schema(kind: str) -> dict[str, Any]:
    """The openAPIV3Schema of a Spark operator CRD, strict: an object that lists its
    properties takes no others (what ``kubectl apply --validate=strict`` rejects)."""
    path = CRDS / f"sparkoperator.k8s.io_{kind.lower()}s.yaml.gz"
    crd = yaml.safe_load(gzip.decompress(path.read_bytes()))
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1beta2")
    schema = copy.deepcopy(version["schema"]["openAPIV3Schema"])

    def strict(node: Any) -> None:
        if isinstance(node, dict):
            if (
                node.get("type") == "object"
                and "properties" in node
                and not node.get("x-kubernetes-preserve-unknown-fields")
            ):
                node.setdefault("additionalProperties", False)
            for value in node.values():
                strict(value)
        elif isinstance(node, list):
            for value in node:
                strict(value)

    strict(schema)
    return schema


def validate(manifest: dict[str, Any]) -> None:
    """Validate against Kubernetes' own schema, or the Spark operator's for its kinds."""
    if manifest["apiVersion"].startswith("sparkoperator.k8s.io/"):
        jsonschema.validate(manifest, crd_schema(manifest["kind"]))
    else:
        kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)


def pipeline(tmp_path: Path, **changes: Any) -> Pipeline:
    return Pipeline.from_yaml(HELSINKI).replace(changes)


def test_local_engine_is_a_job_with_the_pipeline_in_a_config_map(tmp_path: Path) -> None:
    manifests = k8s_manifests(
        pipeline(tmp_path, resources={"cpu": "3", "memory": "12Gi"}),
        KubernetesOptions(image="registry.local/poiflow:1", namespace="poi", claim="poi-data"),
    )
    assert [m["kind"] for m in manifests] == ["ConfigMap", "Job"]
    for manifest in manifests:
        validate(manifest)
    pod = manifests[1]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == "registry.local/poiflow:1"
    assert container["command"] == ["poiflow"]
    assert container["args"] == ["run", "/work/pipeline.yaml"]
    assert container["resources"]["requests"] == {"cpu": "3", "memory": "12Gi"}
    assert pod["volumes"][0]["persistentVolumeClaim"]["claimName"] == "poi-data"
    assert {m["metadata"]["namespace"] for m in manifests} == {"poi"}
    # The pipeline the pod reads: valid, its outputs inside the mounted volume.
    deployed = yaml.safe_load(manifests[0]["data"]["pipeline.yaml"])
    spec = PipelineSpec.model_validate(deployed)
    assert spec.output == "out"
    assert spec.cache == ".poiflow-cache"
    assert spec.tracking is not None
    assert spec.tracking.uri == "sqlite:///mlflow.db"
    assert [s.path for s in spec.sources] == ["Helsinki.osm.pbf", "vendor_feed.csv"]


def test_a_schedule_makes_a_cron_job(tmp_path: Path) -> None:
    manifests = k8s_manifests(pipeline(tmp_path, schedule="0 3 * * *"))
    cron = manifests[1]
    assert cron["kind"] == "CronJob"
    assert cron["spec"]["schedule"] == "0 3 * * *"
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    validate(cron)


def test_spark_engine_is_a_spark_application_valid_for_the_operator(tmp_path: Path) -> None:
    spark = {
        "master": "local[2]",
        "executors": 6,
        "executor_cores": 3,
        "executor_memory": "6g",
        "driver_memory": "5g",
        "conf": {"spark.sql.adaptive.enabled": "true"},
    }
    manifests = k8s_manifests(
        pipeline(tmp_path, engine="spark", spark=spark, resources={"cpu": "1500m"})
    )
    kinds = [m["kind"] for m in manifests]
    assert kinds == ["ConfigMap", "ServiceAccount", "Role", "RoleBinding", "SparkApplication"]
    for manifest in manifests:
        validate(manifest)
    app = manifests[-1]["spec"]
    assert app["executor"] | {"labels": None, "volumeMounts": None} == {
        "cores": 3,
        "instances": 6,
        "memory": "6g",
        "labels": None,
        "volumeMounts": None,
    }
    assert app["driver"]["cores"] == 2  # 1500m, rounded up to whole cores
    assert app["driver"]["memory"] == "5g"
    assert app["driver"]["serviceAccount"] == manifests[1]["metadata"]["name"]
    assert app["sparkConf"]["spark.sql.adaptive.enabled"] == "true"
    # The driver takes the master the operator gives it, not the laptop's local[2].
    deployed = yaml.safe_load(manifests[0]["data"]["pipeline.yaml"])
    assert deployed["spark"]["master"] == ""
    assert deployed["engine"] == "spark"


def test_a_scheduled_spark_pipeline_is_a_scheduled_spark_application(tmp_path: Path) -> None:
    manifests = k8s_manifests(pipeline(tmp_path, engine="spark", schedule="@weekly"))
    app = manifests[-1]
    assert app["kind"] == "ScheduledSparkApplication"
    assert app["spec"]["schedule"] == "@weekly"
    validate(app)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("spec", "executor", "instancez"), 2),  # a misspelt field
        (("spec", "driver", "cores"), "two"),  # a wrong type
        (("spec", "type"), "Perl"),  # not one of the allowed values
    ],
)
def test_the_operator_schema_catches_mistakes(
    tmp_path: Path, path: tuple[str, ...], value: Any
) -> None:
    app = k8s_manifests(pipeline(tmp_path, engine="spark"))[-1]
    node = app
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(jsonschema.ValidationError):
        validate(app)


def test_kubernetes_schema_catches_mistakes(tmp_path: Path) -> None:
    job = k8s_manifests(pipeline(tmp_path))[1]
    job["spec"]["template"]["spec"]["containers"][0]["resource"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(job)


def test_the_dockerfile_builds_what_the_manifests_run() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text("utf-8")
    app = k8s_manifests(Pipeline.from_yaml(HELSINKI).replace({"engine": "spark"}))[-1]
    main = app["spec"]["mainApplicationFile"].removeprefix("local://")
    assert f"COPY scripts/spark_main.py {main}" in dockerfile
    assert (ROOT / "scripts" / "spark_main.py").exists()
    assert 'ENTRYPOINT ["/opt/entrypoint.sh"]' in dockerfile  # Spark's driver/executor start
    # It reads GeoPackage feeds, and streams from Kafka into the stores it serves from.
    assert ".[spark,tracking,gis,streaming,cassandra,opensearch]" in dockerfile


def test_cli_writes_the_manifests(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "poiflow", "deploy", "k8s", str(HELSINKI), "-o", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    written = tmp_path / "poiflow-helsinki.yaml"
    assert str(written.name) in done.stderr.replace("\n", "")
    documents = list(yaml.safe_load_all(written.read_text("utf-8")))
    assert [d["kind"] for d in documents] == ["ConfigMap", "Job"]
    assert "&id" not in written.read_text("utf-8")  # plain YAML, no anchors
    for document in documents:
        validate(document)


def test_cli_writes_the_servers_and_the_stream_and_says_how_it_was_called(
    tmp_path: Path,
) -> None:
    command = ["deploy", "k8s", str(HELSINKI), "-o", str(tmp_path), "--serve", "--replicas", "2"]
    refused = subprocess.run(
        [sys.executable, "-m", "poiflow", *command, "--stream"], capture_output=True, text=True
    )
    assert refused.returncode == 1
    said = " ".join(refused.stderr.split())
    assert "stream.brokers is 127.0.0.1:9092: inside a pod that is the pod itself" in said
    assert not list(tmp_path.iterdir())
    done = subprocess.run(
        [sys.executable, "-m", "poiflow", *command, "--stream", "--brokers", "kafka.poi:9092"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "Deployment, Deployment, Service, PodDisruptionBudget" in " ".join(done.stderr.split())
    text = (tmp_path / "poiflow-helsinki.yaml").read_text("utf-8")
    assert f"# Written by: poiflow {' '.join(command)} --stream --brokers kafka.poi:9092;" in text
    assert "Kafka at kafka.poi:9092" in text
    documents = list(yaml.safe_load_all(text))
    serve = next(d for d in documents if d["metadata"]["name"] == "poiflow-helsinki-serve")
    assert serve["spec"]["replicas"] == 2
    resources = serve["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert resources["limits"]["memory"] == KubernetesOptions().serve_memory
    for document in documents:
        validate(document)


LIVE_STREAM = {
    "brokers": "127.0.0.1:9092",
    "cassandra": "cassandra.poi:9042",
    "keyspace": "helsinki",
    "opensearch": "http://search.poi:9200",
    "index": "helsinki-places",
}


def test_serve_and_stream_run_beside_the_pipeline_as_deployments(tmp_path: Path) -> None:
    manifests = k8s_manifests(
        pipeline(tmp_path, stream=LIVE_STREAM),
        KubernetesOptions(
            namespace="poi", serve=2, serve_memory="3Gi", stream=True, brokers="kafka.poi:9092"
        ),
    )
    kinds = [(m["kind"], m["metadata"]["name"]) for m in manifests]
    assert kinds == [
        ("ConfigMap", "poiflow-helsinki-pipeline"),
        ("Job", "poiflow-helsinki"),
        ("Deployment", "poiflow-helsinki-stream"),
        ("Deployment", "poiflow-helsinki-serve"),
        ("Service", "poiflow-helsinki-serve"),
        ("PodDisruptionBudget", "poiflow-helsinki-serve"),
    ]
    for manifest in manifests:
        validate(manifest)
    stream, serve, service, budget = manifests[2:]
    # A drain takes the servers one at a time.
    assert budget["spec"] == {
        "minAvailable": 1,
        "selector": {"matchLabels": serve["spec"]["template"]["metadata"]["labels"]},
    }
    # One stream pod, replaced rather than doubled: two would write one snapshot folder.
    assert stream["spec"]["replicas"] == 1
    assert stream["spec"]["strategy"] == {"type": "Recreate"}
    pod = stream["spec"]["template"]["spec"]
    assert pod["containers"][0]["args"] == ["stream", "/work/pipeline.yaml"]
    assert pod["terminationGracePeriodSeconds"] >= 60  # the batch in hand is finished
    deployed = PipelineSpec.model_validate(yaml.safe_load(manifests[0]["data"]["pipeline.yaml"]))
    assert deployed.stream.brokers == "kafka.poi:9092"  # as the pods reach Kafka
    # The servers: the pipeline's output, the stores the stream keeps current.
    assert serve["spec"]["replicas"] == 2
    assert "strategy" not in serve["spec"]  # the servers roll: new pods ready beside old
    container = serve["spec"]["template"]["spec"]["containers"][0]
    args = container["args"]
    assert args[:2] == ["serve", "/work/out"]
    assert _option(args, "--host") == "0.0.0.0"
    assert _option(args, "--cassandra") == "cassandra.poi:9042"
    assert _option(args, "--keyspace") == "helsinki"
    assert _option(args, "--opensearch") == "http://search.poi:9200"
    assert _option(args, "--index") == "helsinki-places"
    assert container["resources"]["limits"]["memory"] == "3Gi"
    port = container["ports"][0]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/health", "port": port["name"]}
    assert int(_option(args, "--port")) == port["containerPort"]
    # The Service sends to the servers, not to the stream.
    labels = serve["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert (
        not service["spec"]["selector"].items()
        <= stream["spec"]["template"]["metadata"]["labels"].items()
    )
    assert service["spec"]["ports"][0]["targetPort"] == port["name"]


def test_the_stream_pod_is_alive_while_its_loop_turns(tmp_path: Path) -> None:
    """The stream's probes, run here with the volume at a folder of the tests: alive
    while the heartbeat in its state folder is young, not before the first (it is still
    loading) and not once the loop has stopped turning."""
    for state, beats in ((None, "out/stream"), ("live", "live"), ("/var/live", "out/stream")):
        stream = {"brokers": "kafka.poi:9092", **({"state": state} if state else {})}
        deployment = k8s_manifests(
            pipeline(tmp_path, stream=stream), KubernetesOptions(stream=True)
        )[2]
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        probe = container["livenessProbe"]["exec"]["command"]
        assert container["startupProbe"]["exec"]["command"] == probe
        assert f"{WORKDIR}/{beats}/{StreamSettings.HEARTBEAT}" in probe[-1]
    work = tmp_path / "work"
    here = [a.replace(WORKDIR, str(work)) for a in probe]
    heartbeat = work / "out" / "stream" / StreamSettings.HEARTBEAT
    assert subprocess.run(here, capture_output=True).returncode != 0  # none yet: loading
    heartbeat.parent.mkdir(parents=True)
    heartbeat.touch()
    assert subprocess.run(here, capture_output=True).returncode == 0
    long_ago = time.time() - 20 * 60
    os.utime(heartbeat, (long_ago, long_ago))
    assert subprocess.run(here, capture_output=True).returncode != 0  # stuck


def test_servers_without_a_stream_read_the_output_alone(tmp_path: Path) -> None:
    manifests = k8s_manifests(pipeline(tmp_path, stream=LIVE_STREAM), KubernetesOptions(serve=1))
    assert [m["kind"] for m in manifests] == ["ConfigMap", "Job", "Deployment", "Service"]
    args = manifests[2]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--cassandra" not in args
    assert "--opensearch" not in args


def test_spark_pipelines_are_served_too(tmp_path: Path) -> None:
    manifests = k8s_manifests(pipeline(tmp_path, engine="spark"), KubernetesOptions(serve=1))
    assert [m["kind"] for m in manifests][-3:] == ["SparkApplication", "Deployment", "Service"]


@pytest.mark.parametrize(
    ("stream", "said"),
    [
        ({}, "stream.brokers is 127.0.0.1:9092"),
        ({"brokers": "localhost:9092,kafka:9092"}, "stream.brokers is localhost:9092,kafka:9092"),
        ({"brokers": "kafka:9092", "cassandra": "[::1]:9042"}, "stream.cassandra is [::1]:9042"),
        (
            {"brokers": "kafka:9092", "opensearch": "http://0.0.0.0:9200"},
            "stream.opensearch is 0.0.0.0:9200",
        ),
    ],
)
def test_a_stream_in_a_pod_is_refused_an_address_of_the_pod_itself(
    tmp_path: Path, stream: dict[str, str], said: str
) -> None:
    with pytest.raises(ConfigError, match="inside a pod that is the pod itself") as caught:
        k8s_manifests(pipeline(tmp_path, stream=stream), KubernetesOptions(stream=True))
    assert said in str(caught.value)


def test_an_output_in_object_storage_is_served_from_a_copy_and_not_streamed(
    tmp_path: Path,
) -> None:
    remote = pipeline(tmp_path, output="s3://bucket/release")
    assert [m["kind"] for m in k8s_manifests(remote)] == ["ConfigMap", "Job"]
    manifests = k8s_manifests(remote, KubernetesOptions(serve=2))
    assert [m["kind"] for m in manifests] == [
        "ConfigMap",
        "Job",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
    ]
    for manifest in manifests:
        validate(manifest)
    pod = manifests[2]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["args"][:2] == ["serve", "s3://bucket/release"]
    # Nothing of the volume: the servers copy the output from the bucket.
    assert (container["volumeMounts"], pod["volumes"]) == ([], [])
    (init,) = pod["initContainers"]
    assert init["command"][:2] == ["python", "-c"]
    assert "'s3://bucket/release/run.json'" in init["command"][2]
    assert "volumeMounts" not in init
    with pytest.raises(ConfigError, match=r"--stream .* the pipeline's output is s3://bucket"):
        k8s_manifests(remote, KubernetesOptions(serve=1, stream=True))


def test_a_stream_state_outside_the_volume_becomes_the_default(tmp_path: Path) -> None:
    for state, deployed in (("/var/stream", None), ("live", "live")):
        config_map = k8s_manifests(pipeline(tmp_path, stream={"state": state}))[0]
        spec = PipelineSpec.model_validate(yaml.safe_load(config_map["data"]["pipeline.yaml"]))
        assert spec.stream.state == deployed


def test_the_server_pod_waits_for_the_first_run_then_serves_it(
    conflated: Path, tmp_path: Path
) -> None:
    """The containers' own commands, run here with the volume at a folder of the tests:
    the init container waits while the output is missing and lets the server start once
    it is there; the server answers its probe with the places of the output."""
    work = tmp_path / "work"
    work.mkdir()
    serve = k8s_manifests(pipeline(tmp_path), KubernetesOptions(serve=1))[2]
    pod = serve["spec"]["template"]["spec"]
    (init,) = pod["initContainers"]
    (container,) = pod["containers"]

    def here(argv: list[str]) -> list[str]:
        return [a.replace(WORKDIR, str(work)) for a in argv]

    with subprocess.Popen(here(init["command"]), stdout=subprocess.PIPE, text=True) as waiting:
        try:
            assert waiting.stdout is not None
            assert "waiting for the pipeline to write" in waiting.stdout.readline()
            time.sleep(0.5)
            assert waiting.poll() is None  # still waiting
        finally:
            waiting.kill()
    shutil.copytree(conflated, work / "out", ignore=shutil.ignore_patterns("search*", ".search*"))
    waited = subprocess.run(here(init["command"]), capture_output=True, timeout=30)
    assert waited.returncode == 0
    port = free_port()
    args = here(container["args"])
    args[args.index("--port") + 1] = str(port)
    assert container["command"] == ["poiflow"]
    log = tmp_path / "serve.log"
    with log.open("w") as sink:
        server = subprocess.Popen(
            [sys.executable, "-m", "poiflow", *args],
            cwd=here([container["workingDir"]])[0],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    probe = container["startupProbe"]["httpGet"]
    try:
        health = _answer(f"http://127.0.0.1:{port}{probe['path']}", server, log)
    finally:
        server.terminate()
        server.wait(timeout=20)
    places = pq.read_metadata(work / "out" / "places.parquet").num_rows
    assert (health["status"], health["places"], health["search_documents"]) == (
        "ok",
        places,
        places,
    )


def _answer(url: str, server: subprocess.Popen[bytes], log: Path) -> dict[str, Any]:
    """What ``url`` answers once the server has started (as a probe waits for it)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert server.poll() is None, log.read_text()
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                return dict(json.loads(answer.read()))
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"the server did not answer {url}: {log.read_text()}")


def _option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]
