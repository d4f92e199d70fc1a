"""``poiflow deploy k8s``: the manifests validate against the real Kubernetes schemas
(kubernetes-validate, offline) and the Spark operator's own CRD schema, carry the
pipeline's resources and schedule, and agree with the Dockerfile."""

from __future__ import annotations

import copy
import gzip
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import latest_version

from poiflow.config import PipelineSpec
from poiflow.pipeline import Pipeline
from poiflow.pipeline.deploy import KubernetesOptions, k8s_manifests

from ..conftest import ROOT

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
    assert ".[spark,tracking,gis]" in dockerfile  # the image reads GeoPackage feeds too


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
