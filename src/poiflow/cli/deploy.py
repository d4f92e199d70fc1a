"""``poiflow deploy``: write what production schedulers run: an Airflow DAG, Kubernetes
manifests. Each reads the pipeline file and writes plain files; nothing is submitted."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from poiflow.cli import app, console

deploy = typer.Typer(
    name="deploy",
    help="Write the files that run a pipeline in production (Airflow DAG, Kubernetes).",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
app.add_typer(deploy)

_AIRFLOW_HELP = """Write an Airflow 3 DAG that runs the pipeline, one task per stage.

Each task runs [bold]poiflow run PIPELINE --only STAGE[/bold] (a stage reads what the ones
before it left in the pipeline's cache: every worker must see that folder); a last task,
[bold]publish[/bold], writes the outputs and logs the run to MLflow. The schedule is the
pipeline's [bold]schedule[/bold] ('@daily', a cron line; none: run by hand).

[bold]Example[/bold]

  poiflow deploy airflow examples/helsinki/pipeline.yaml --output dags/
"""


@deploy.command(name="airflow", help=_AIRFLOW_HELP, no_args_is_help=True)
def airflow_command(
    pipeline_file: Annotated[Path, typer.Argument(help="The pipeline file.", metavar="PIPELINE")],
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", help="The folder to write the DAG file into.", metavar="DIR"
        ),
    ],
    poiflow: Annotated[
        str | None,
        typer.Option(
            help="The poiflow command on the workers (default: this one).", metavar="COMMAND"
        ),
    ] = None,
    pipeline_path: Annotated[
        str | None,
        typer.Option(
            help="Where the pipeline file is on the workers (default: here).", metavar="PATH"
        ),
    ] = None,
    retries: Annotated[int, typer.Option(min=0, help="Retries of a failed task.", metavar="N")] = 2,
    retry_delay: Annotated[
        int,
        typer.Option(min=0, help="Minutes between a failure and its retry.", metavar="MINUTES"),
    ] = 5,
) -> None:
    """Write the Airflow DAG of a pipeline."""
    from poiflow.pipeline.declared import Pipeline
    from poiflow.pipeline.deploy import AirflowOptions, airflow_dag, dag_id

    pipeline = Pipeline.from_yaml(pipeline_file)
    defaults = AirflowOptions()
    options = AirflowOptions(
        poiflow=poiflow or defaults.poiflow,
        pipeline=pipeline_path,
        retries=retries,
        retry_delay_minutes=retry_delay,
    )
    text = airflow_dag(pipeline, options)
    output.mkdir(parents=True, exist_ok=True)
    path = output / f"{dag_id(pipeline)}.py"
    path.write_text(text, "utf-8")
    console.print(f"wrote the DAG [bold]{dag_id(pipeline)}[/bold]: {path}")


_K8S_HELP = """Write Kubernetes manifests that run the pipeline.

The local engine gets a [bold]Job[/bold] (a [bold]CronJob[/bold] with the pipeline's schedule); the
Spark engine a [bold]SparkApplication[/bold] of the Spark operator (scheduled: a
[bold]ScheduledSparkApplication[/bold]) and the service account its driver starts executors with.
The pipeline file travels in a ConfigMap; a PersistentVolumeClaim mounted at /work holds the
inputs (at the pipeline's relative paths), the cache and the outputs. CPU and memory come
from the pipeline's [bold]resources[/bold] and [bold]spark[/bold] settings. The image is what the
project's Dockerfile builds.

[bold]--serve[/bold] adds a [bold]Deployment[/bold] of [bold]poiflow serve[/bold] over the output
and a [bold]Service[/bold] (port 80) in front of it (with [bold]--replicas[/bold] 2 or more, a
[bold]PodDisruptionBudget[/bold] that keeps one answering): its pods wait for the pipeline's first
run, are ready once [bold]/health[/bold] answers, and take up each later run by themselves
([bold]--watch[/bold]). [bold]--stream[/bold] adds a [bold]Deployment[/bold] of one
[bold]poiflow stream[/bold] pod (Kafka at the pipeline's [bold]stream.brokers[/bold], or
[bold]--brokers[/bold]; restarted when its loop has not turned for 15 minutes); with both,
the servers answer from the Cassandra and OpenSearch stores the stream keeps current, where
the pipeline's stream names them. A review's
answers (POST /labels) need the token in the Secret [bold]poiflow-NAME-serve-token[/bold] (key
[bold]token[/bold]); without it the server takes no writes. An output in object storage
(a Spark pipeline's s3://...) is served from a copy in each pod, which mounts no volume and
waits for the output's run.json in the bucket; the stream needs an output on the volume.

[bold]Examples[/bold]

  poiflow deploy k8s examples/helsinki/pipeline.yaml -o k8s/ --image HOST/poiflow:0.1
  kubectl apply -f k8s/poiflow-helsinki.yaml
  poiflow deploy k8s pipeline.yaml -o k8s/ --serve --replicas 2 --stream --brokers kafka:9092
"""


@deploy.command(name="k8s", help=_K8S_HELP, no_args_is_help=True)
def k8s_command(
    pipeline_file: Annotated[Path, typer.Argument(help="The pipeline file.", metavar="PIPELINE")],
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", help="The folder to write the manifests into.", metavar="DIR"
        ),
    ],
    image: Annotated[
        str, typer.Option(help="The container image.", metavar="IMAGE")
    ] = "poiflow:latest",
    namespace: Annotated[
        str, typer.Option(help="The Kubernetes namespace.", metavar="NAME")
    ] = "default",
    claim: Annotated[
        str,
        typer.Option(
            help="The PersistentVolumeClaim mounted at /work (data, outputs).", metavar="NAME"
        ),
    ] = "poiflow-data",
    serve: Annotated[
        bool, typer.Option("--serve", help="Also serve the output over HTTP (poiflow serve).")
    ] = False,
    replicas: Annotated[
        int,
        typer.Option(
            min=1,
            help="With --serve: server pods. Every pod mounts the claim: pods on several "
            "nodes need a ReadWriteMany claim.",
            metavar="N",
        ),
    ] = 1,
    serve_memory: Annotated[
        str | None,
        typer.Option(help="With --serve: each server pod's memory (default: 4Gi).", metavar="SIZE"),
    ] = None,
    watch: Annotated[
        float | None,
        typer.Option(
            min=1,
            help="With --serve: look for a later run this often (default: 30).",
            metavar="SECONDS",
        ),
    ] = None,
    stream: Annotated[
        bool,
        typer.Option("--stream", help="Also apply Kafka's edits as they come (poiflow stream)."),
    ] = False,
    brokers: Annotated[
        str | None,
        typer.Option(
            help="With --stream: Kafka as the pods reach it (default: the pipeline's).",
            metavar="HOSTS",
        ),
    ] = None,
) -> None:
    """Write the Kubernetes manifests of a pipeline."""
    import yaml

    from poiflow.pipeline.declared import Pipeline
    from poiflow.pipeline.kubernetes import KubernetesOptions, k8s_manifests, k8s_name

    pipeline = Pipeline.from_yaml(pipeline_file)
    defaults = KubernetesOptions()
    options = KubernetesOptions(
        image=image,
        namespace=namespace,
        claim=claim,
        serve=replicas if serve else 0,
        serve_memory=serve_memory or defaults.serve_memory,
        watch_s=watch or defaults.watch_s,
        stream=stream,
        brokers=brokers,
    )
    manifests = k8s_manifests(pipeline, options)
    output.mkdir(parents=True, exist_ok=True)
    path = output / f"{k8s_name(pipeline)}.yaml"
    needs = [f"the image {image}", f"the PersistentVolumeClaim {claim} (mounted at /work)"]
    if pipeline.spec.engine == "spark":
        needs.append("the Spark operator")
    if stream:
        needs.append(f"Kafka at {options.brokers or pipeline.spec.stream.brokers}")
    header = (
        f"# Kubernetes manifests of the poiflow pipeline '{pipeline.spec.name}' "
        f"({pipeline.spec.engine} engine).\n"
        f"# Written by: poiflow {shlex.join(sys.argv[1:])}; edit the pipeline and write "
        "again.\n"
        f"# Needs: {', '.join(needs)}.\n"
    )
    text = yaml.dump_all(manifests, Dumper=_manifest_dumper(), sort_keys=False, allow_unicode=True)
    path.write_text(header + text, "utf-8")
    kinds = ", ".join(m["kind"] for m in manifests)
    console.print(f"wrote {len(manifests)} manifests ({kinds}): {path}")


def _manifest_dumper() -> type:
    import yaml

    class Dumper(yaml.SafeDumper):
        """Plain YAML for people: no anchors, multi-line strings as blocks."""

        def ignore_aliases(self, data: object) -> bool:
            return True

    def text(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(str, text)
    return Dumper
