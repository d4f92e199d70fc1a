"""The ``poiflow`` command: thin; it parses, calls the Python API, and draws the results."""

from __future__ import annotations

import enum
import inspect
import json
import signal
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, Final

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from poiflow._version import __version__
from poiflow.errors import PoiflowError, StageFailedError, Terminated

# Commands import what they run when they run it: `poiflow run` on a warm cache should not
# pay for loading the matcher. (Kept equal to poiflow.sources.DEFAULT_BATCH_SIZE by a test.)
DEFAULT_BATCH_SIZE = 50_000
# What the commands that read and conflate on this machine keep out of their own process
# (``poiflow._imports.kept_out``): pyarrow and lleaves import pandas only to ask whether a
# value is one of its objects, 0.3 s of a 6 s conflation of 100k records.
NOT_USED_HERE: Final = ("pandas",)

__all__ = ["app", "main"]


class Engine(enum.StrEnum):
    """Where a run's stages run."""

    local = "local"
    spark = "spark"


console = Console(stderr=True)
out = Console()


def print_json(data: Any) -> None:
    """``data`` as JSON on stdout: coloured on a terminal, plain (and at once) for a
    program reading it."""
    if out.is_terminal:
        out.print_json(json.dumps(data))
    else:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")


app = typer.Typer(
    name="poiflow",
    help=(
        "Points of Interest from many sources into one clean set of places.\n\n"
        "[bold]Start here[/bold]\n\n"
        "  poiflow conflate osm.pbf feed.csv -o out/run   the same places, merged\n"
        "  poiflow explain out/run PLACE_ID               why a place says what it says\n"
        "  poiflow init my-flow                           a pipeline to run and track\n\n"
        "Every command teaches with --help; [bold]poiflow conflate --help[/bold] first."
    ),
    rich_markup_mode="rich",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        out.print(f"poiflow {__version__}")
        raise typer.Exit


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Points of Interest from many sources into one clean set of places."""


def _progress(*, hidden: bool) -> Progress:
    """The progress display of long commands (on stderr; none when stdout carries JSON)."""
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=hidden,
    )


class _StageBar:
    """One bar over a run's stages (``names``, in order): each stage's name as it starts
    (``(cached)`` when it is taken from a cache), and ``done`` at the end; ``reading``
    draws the run's inputs as they are read."""

    def __init__(self, progress: Progress, label: str, names: Sequence[str]) -> None:
        self._progress = progress
        self._names = list(names)
        self._task = progress.add_task(label, total=len(self._names))
        self.reading = _RichProgress(progress)

    def __call__(self, name: str, reused: bool = False) -> None:
        done = self._names.index(name) + (1 if reused else 0)
        description = f"{name} (cached)" if reused else name
        self._progress.update(self._task, description=description, completed=done)

    def done(self) -> None:
        self._progress.update(self._task, description="done", completed=len(self._names))


@contextmanager
def _stages(label: str, names: Sequence[str], *, hidden: bool) -> Iterator[_StageBar]:
    """The progress display of a run of stages (``poiflow run``, ``conflate``, ``train``):
    a :class:`_StageBar`, done when the run ends well."""
    with _progress(hidden=hidden) as progress:
        bar = _StageBar(progress, label, names)
        yield bar
        bar.done()


class _RichProgress:
    """Draws ingest progress: one bar per input, a spinner where the total is unknown."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._task: TaskID | None = None

    def start(self, label: str, total: int | None) -> None:
        self._task = self._progress.add_task(label, total=total)

    def advance(self, records: int) -> None:
        if self._task is not None:
            self._progress.advance(self._task, records)

    def finish(self) -> None:
        if self._task is not None:
            done = next(t.completed for t in self._progress.tasks if t.id == self._task)
            self._progress.update(self._task, total=done)


def _traceback_line(exc: BaseException) -> str:
    """Where in the user's code an error of a custom stage was raised."""
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    last = frames[-1] if frames else None
    return f"  raised at {last.filename}:{last.lineno} ({last.name})" if last else ""


def print_weights(info: dict[str, Any], prior: float, weights: dict[str, dict[str, float]]) -> None:
    """The match weights of a Fellegi-Sunter model, as a table with bars."""
    console.print(
        f"fitted on {info['pairs']:,} candidate pairs ({info['patterns']:,} patterns) in "
        f"{info['iterations']} EM steps{'' if info['converged'] else ', not converged'}; "
        f"matches about {prior:.1%} of the pairs"
    )
    table = Table(title="Match weights (bits)", title_justify="left", show_edge=False)
    table.add_column("comparison")
    table.add_column("level")
    table.add_column("weight", justify="right")
    table.add_column("")
    for comparison, levels in weights.items():
        for k, (level, weight) in enumerate(levels.items()):
            bar = "[green]" + "+" * min(20, round(weight)) if weight > 0 else ""
            bar = bar or "[red]" + "-" * min(20, round(-weight))
            table.add_row(comparison if k == 0 else "", level, f"{weight:+.1f}", bar)
    console.print(table)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; a PoiflowError becomes one readable line and exit status 1."""
    try:
        app(args=argv)
    except PoiflowError as exc:
        console.print(f"[bold red]error:[/bold red] {exc}", highlight=False, soft_wrap=True)
        # Where a stage's code broke (a custom stage's, the user's own); an error raised on
        # purpose has said what went wrong, and where in a library it surfaced tells nothing.
        if isinstance(exc, StageFailedError) and exc.__cause__ and exc.__cause__.__traceback__:
            console.print(_traceback_line(exc.__cause__), highlight=False, soft_wrap=True)
        sys.exit(1)
    except Terminated:
        console.print("[yellow]stopped (SIGTERM); no output was written[/yellow]")
        raise
    except SystemExit as exc:  # the CLI library ends Ctrl-C (a KeyboardInterrupt) as 130
        if exc.code == 128 + signal.SIGINT and _interrupted(exc):
            console.print("[yellow]interrupted; no output was written[/yellow]")
        raise


def _interrupted(exc: BaseException | None) -> bool:
    """Whether a KeyboardInterrupt is behind ``exc``."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, KeyboardInterrupt):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


# The commands live beside; importing them registers them. `poiflow --help` lists commands
# in the order they were registered: ingest, summary and conflate first (batch.py), as a
# user meets them; then the others, imported sorted by name, evaluate.py's right after.
from poiflow.cli import batch as _batch  # noqa: E402
from poiflow.cli import deploy as _deploy  # noqa: E402
from poiflow.cli import evaluate as _evaluate  # noqa: E402
from poiflow.cli import explain as _explain  # noqa: E402
from poiflow.cli import label as _label  # noqa: E402
from poiflow.cli import pipelines as _pipelines  # noqa: E402
from poiflow.cli import serving as _serving  # noqa: E402
from poiflow.cli import streaming as _streaming  # noqa: E402

del _batch, _deploy, _evaluate, _explain, _label, _pipelines, _serving, _streaming


def reflow(text: str) -> str:
    """Help text with its prose lines joined, so that the terminal wraps them at its own
    width (the help keeps single line breaks: prose written at 88 columns would break
    ragged at 80). Indented lines (examples, tables) and list items keep their lines."""
    lines: list[str] = []
    for line in inspect.cleandoc(text).split("\n"):
        previous = lines[-1] if lines else ""
        joins = line and previous and not line[0].isspace() and not previous[0].isspace()
        if joins and not line.startswith(("- ", "* ")):
            lines[-1] = f"{previous} {line}"
        else:
            lines.append(line)
    return "\n".join(lines)


def _kept_indents(text: str) -> str:
    """``text`` with a blank line more after its first paragraph, so that typer keeps the
    indents of what follows. Typer dedents all of that part at once as a docstring
    (``inspect.cleandoc``: by the least indent of its lines after the first), so a help
    whose first paragraph is followed by one heading and then only indented lines
    ("Examples", then the commands) lost their indent. With a blank first line, the
    heading's own indent of 0 counts, and cleandoc drops the blank line again."""
    first, gap, rest = text.partition("\n\n")
    return f"{first}\n\n\n{rest}" if gap else text


def _untyped(params: Iterable[object]) -> None:
    """The flags and arguments among ``params`` with nothing in their help's type column.
    Typer writes ``<bool>`` there for a flag, as for an option that takes ``true`` or
    ``false``: ``--json <bool>`` reads as if ``--json`` wanted a value, and ``--json true``
    is refused. For an argument it writes its Python type (``RUN <path>``, ``INPUT
    <list[str]>``), where its name already says what it takes, as an option's does."""
    for param in params:
        if isinstance(param, typer.core.TyperOption) and param.is_flag and param.metavar is None:
            param.metavar = ""
        elif isinstance(param, typer.core.TyperArgument):
            param.display_type_rich = _no_type  # type: ignore[method-assign] # asked by typer


def _no_type(ctx: Any) -> None:
    """What an argument shows in its help's type column: nothing (see ``_untyped``)."""


if TYPE_CHECKING:  # what the mixin below is mixed into
    _Mixed = typer.core.TyperCommand
else:
    _Mixed = object


class _UntypedFlags(_Mixed):
    """What poiflow's commands and groups add to typer's: their flags (``--help`` among
    them) and arguments show no type (``_untyped``). (``ctx`` is typed ``Any``: its class
    is typer's private copy of click's.)"""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _untyped(self.params)

    def get_help_option(self, ctx: Any) -> typer.core.TyperOption | None:
        option = super().get_help_option(ctx)  # made once, then kept
        _untyped([option])
        return option


class _Command(_UntypedFlags, typer.core.TyperCommand):
    """A poiflow command."""


class _Group(_UntypedFlags, typer.core.TyperGroup):
    """A poiflow group of commands: ``poiflow`` itself, ``deploy``, ``publish``."""


def _settle_commands(commands: typer.Typer) -> None:
    """Every command's help reflowed, and every command and group built as poiflow's
    (``_Command``, ``_Group``)."""
    commands.info.cls = _Group
    for command in commands.registered_commands:
        if command.cls in (None, typer.core.TyperCommand):  # typer's own, not one chosen
            command.cls = _Command
        text = command.help if isinstance(command.help, str) else None
        text = text or (inspect.getdoc(command.callback) if command.callback else None)
        if text:
            command.help = _kept_indents(reflow(text))
    for group in commands.registered_groups:
        if group.typer_instance is not None:
            _settle_commands(group.typer_instance)


_settle_commands(app)
