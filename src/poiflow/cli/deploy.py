"""``poiflow deploy``: write what production schedulers run: an Airflow DAG, Kubernetes
manifests. Each reads the pipeline file and writes plain files; nothing is submitted."""

from __future__ import annotations

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
        Path, typer.Option("--output", "-o", help="The folder to write the DAG file into.")
    ],
    poiflow: Annotated[
        str | None,
        typer.Option(help="The poiflow command on the workers (default: this one)."),
    ] = None,
    pipeline_path: Annotated[
        str | None,
        typer.Option(help="Where the pipeline file is on the workers (default: here)."),
    ] = None,
    retries: Annotated[int, typer.Option(min=0, help="Retries of a failed task.")] = 2,
    retry_delay: Annotated[
        int, typer.Option(min=0, help="Minutes between a failure and its retry.")
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
