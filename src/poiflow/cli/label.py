"""``poiflow label``: answer the questions that teach the matcher most; and training from
the answers (``poiflow train --labels``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final

import typer
from rich.panel import Panel
from rich.prompt import Prompt
from rich.table import Table

from poiflow.cli import app, console
from poiflow.errors import ConfigError

if TYPE_CHECKING:  # the matcher's modules import LightGBM: only when a command runs
    from poiflow.conflate.active import RecordCards
    from poiflow.conflate.decisions import Answer
    from poiflow.pipeline.training import Trained

__all__ = ["print_refined"]

_KEYS_HELP = (
    "[bold]y[/bold] same place · [bold]n[/bold] different · [bold]s[/bold] unsure · "
    "[bold]q[/bold] stop"
)
_ANSWER = {"y": "match", "n": "different", "s": "unsure"}


@app.command(name="label", no_args_is_help=True)
def label_command(
    run: Annotated[
        Path, typer.Argument(help="An output folder of 'poiflow conflate' or 'run'.", metavar="RUN")
    ],
    labels: Annotated[
        Path | None,
        typer.Option(help="The labels file (default: RUN/labels.csv).", metavar="CSV"),
    ] = None,
    count: Annotated[
        int, typer.Option(min=1, help="How many pairs to ask about.", metavar="N")
    ] = 20,
    simulate: Annotated[
        Path | None,
        typer.Option(
            help="Answer from known truth (source,id,place) instead of asking.", metavar="CSV"
        ),
    ] = None,
    web: Annotated[
        bool, typer.Option("--web", help="Ask in a web page (with a map) instead.")
    ] = False,
    port: Annotated[
        int, typer.Option(help="With --web: the port on 127.0.0.1.", metavar="PORT")
    ] = 8765,
    labeller: Annotated[
        str, typer.Option(help="Who answers (kept with each answer).", metavar="NAME")
    ] = "",
) -> None:
    """Label the candidate pairs the model is least sure about, to train a better one.

    Pairs are asked about in order of what an answer teaches: first where clustering
    disagrees with the model (scored a match but kept apart, or joined though scored
    apart), then where the model is least sure; each record at most once per session.
    Every answer is stored at once in the labels file (CSV), so stopping loses nothing;
    pairs already answered are not asked again. Then:

      poiflow train RUN/records.parquet --labels RUN/labels.csv -o model.json.gz

    prints the gain on held-out answers and writes the refined model; and

      poiflow conflate INPUT... -o OUT --decisions RUN/labels.csv

    keeps the answers themselves in every run: a match is one place, different two,
    whatever the model says.

    [bold]Examples[/bold]

      poiflow label out/run                       # in the terminal: y / n / s / q
      poiflow label out/run --web                 # in a web page with a map
      poiflow label out/gen --simulate out/gen-data/gold.csv --count 50
    """
    from poiflow.conflate.active import RecordCards, append_label
    from poiflow.pipeline.deciding import pairs_to_ask

    store = labels or run / "labels.csv"
    chosen, records = pairs_to_ask(run, count, store)
    if chosen.height == 0:
        console.print("nothing left to ask: every uncertain pair is answered")
        return
    if web:
        from poiflow.cli.label_web import serve_labelling

        serve_labelling(chosen, records, store, port=port, labeller=labeller)
        return
    view = RecordCards(records, chosen)
    truth = _truth(simulate) if simulate else None
    answered: dict[str, int] = {"match": 0, "different": 0, "unsure": 0}
    for number, pair in enumerate(chosen.iter_rows(named=True), start=1):
        left = (pair["left_source"], pair["left_id"])
        right = (pair["right_source"], pair["right_id"])
        if truth is not None:
            same = truth.get(left) is not None and truth.get(left) == truth.get(right)
            answer = "match" if same else "different"
        else:
            console.print(_panel(view, pair, number, chosen.height))
            try:
                key = Prompt.ask(_KEYS_HELP, choices=["y", "n", "s", "q"], console=console)
            except (EOFError, KeyboardInterrupt):  # the end of the input or Ctrl-C: as q
                console.print()
                break
            if key == "q":
                break
            answer = _ANSWER[key]
        append_label(store, pair, answer, labeller=labeller or ("simulated" if truth else ""))  # type: ignore[arg-type]
        answered[answer] += 1
    total = sum(answered.values())
    console.print(
        f"{total} answer{'s' * (total != 1)} ({answered['match']} same place, "
        f"{answered['different']} different, "
        f"{answered['unsure']} unsure) added to [bold]{store}[/bold]"
    )
    console.print(
        f"next: poiflow train {run / 'records.parquet'} --labels {store} -o model.json.gz "
        f"(a model that learns from them), or poiflow conflate ... --decisions {store} "
        "(the answers themselves, kept in every run)"
    )


def _truth(path: Path) -> dict[tuple[str, str], str]:
    from poiflow.conflate.evaluate import read_gold

    gold = read_gold(path)
    return {(s, i): str(p) for s, i, p in gold.select("source", "id", "place").iter_rows()}


def _panel(view: RecordCards, pair: dict[str, Any], number: int, total: int) -> Panel:
    left = view.describe(pair["left_source"], pair["left_id"])
    right = view.describe(pair["right_source"], pair["right_id"])
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="dim")
    table.add_column(ratio=1)
    table.add_column(ratio=1)
    for field in ("record", "name", "category", "address", "phone", "website", "where", "updated"):
        a, b = left.get(field, ""), right.get(field, "")
        style = "green" if a and a == b else ""
        table.add_row(
            field,
            f"[{style}]{a}[/{style}]" if style else a,
            f"[{style}]{b}[/{style}]" if style else b,
        )
    from poiflow.conflate.active import distance_m

    metres = distance_m(
        view.position(pair["left_source"], pair["left_id"]),
        view.position(pair["right_source"], pair["right_id"]),
    )
    apart = f"{metres:,.0f} m apart" if metres is not None else "distance unknown"
    said = f"the model says {pair['match_probability']:.2f} ({pair['reason']})"
    title = f"pair {number} of {total}: {said}; {apart}"
    return Panel(table, title=title, title_align="left")


def print_refined(trained: Trained) -> None:
    """What refining a model with answers did: the held-out check, and the model written."""
    if trained.unknown:
        console.print(
            f"[yellow]{trained.unknown} answered pairs name records not in the input[/yellow]"
        )
    if trained.before:
        table = Table(
            title=f"On {int(trained.after['pairs'])} held-out answers",
            title_justify="left",
            show_edge=False,
        )
        table.add_column("model")
        for metric in _REFINED_SCORES:
            table.add_column(metric.replace("_", "-"), justify="right")
        for label, scores in ((trained.info["base"], trained.before), ("refined", trained.after)):
            table.add_row(label, *(f"{scores[m]:.4f}" for m in _REFINED_SCORES))
        console.print(table)
    else:
        console.print("fewer than 10 answers: no held-out check; label more for one")
    said = trained.info["refined_on"]
    console.print(
        f"refined {trained.info['base']} on {trained.pairs} answers "
        f"({trained.matches} same place; the model expected "
        f"{said['expected_matches']:.1f}): [bold]{trained.model}[/bold]"
    )
    why = (
        "the answers contradict the model (a new kind of data)"
        if said["strength"] == "strong"
        else "the answers are near what the model expected"
    )
    console.print(f"{said['strength']} refining, {said['rounds']} trees: {why}")


_REFINED_SCORES: Final = ("accuracy", "log_loss", "precision", "recall", "f1")


@app.command(name="decide", no_args_is_help=True)
def decide_command(
    run: Annotated[
        Path, typer.Argument(help="An output folder of 'poiflow conflate' or 'run'.", metavar="RUN")
    ],
    first: Annotated[
        str, typer.Argument(help="A record as SOURCE:ID, or a place id.", metavar="FIRST")
    ],
    second: Annotated[str, typer.Argument(help="Another record or place.", metavar="SECOND")],
    same: Annotated[bool, typer.Option("--same", help="They are one place.")] = False,
    different: Annotated[bool, typer.Option("--different", help="They are two places.")] = False,
    forget: Annotated[
        bool, typer.Option("--forget", help="Take back a decision: the model decides again.")
    ] = False,
    labels: Annotated[
        Path | None,
        typer.Option(help="The labels file (default: RUN/labels.csv).", metavar="CSV"),
    ] = None,
    labeller: Annotated[
        str, typer.Option(help="Who decides (kept with the decision).", metavar="NAME")
    ] = "",
) -> None:
    """Decide that two records, or two places, are one place or two, whatever the model says.

    The decision is added to the labels file (the one poiflow label writes), and every run
    given it as --decisions follows it: a match is one place, different two. A place
    stands for its first record: deciding two places are one joins them, deciding they are
    two keeps them apart; --forget takes a decision back. A decision that contradicts the
    file (A is B, B is C, and now A is not C) is refused, and nothing is written.

    [bold]Examples[/bold]

      poiflow decide out/run osm:node/317766540 vendor_feed:V1044 --same
      poiflow decide out/run p2f7ca4554739aae2 p91c0ffee1234567 --different
      poiflow decide out/run osm:node/317766540 vendor_feed:V1044 --forget
      poiflow conflate osm.pbf vendor.csv -o out/run2 --decisions out/run/labels.csv
    """
    from poiflow.pipeline.deciding import decide

    flags: tuple[tuple[Answer, bool], ...] = (
        ("match", same),
        ("different", different),
        ("unsure", forget),
    )
    chosen = [label for label, on in flags if on]
    if len(chosen) != 1:
        raise ConfigError("say one of --same, --different or --forget")
    decision = decide(run, first, second, label=chosen[0], labels=labels, labeller=labeller)
    (ls, li), (rs, ri) = decision.left, decision.right
    said = {
        "match": "are one place",
        "different": "are two places",
        "unsure": "are the model's to decide again",
    }[decision.label]
    score = (
        "never compared" if decision.probability is None else f"scored {decision.probability:.3f}"
    )
    now = "in one place" if decision.together else "apart"
    console.print(
        f"{ls}:{li} and {rs}:{ri} {said}: line {decision.line} of "
        f"[bold]{decision.labels}[/bold] (the run has them {now}, {score}"
        + ("; the decision overrules it)" if decision.overrules else ")"),
        highlight=False,
    )
    console.print(
        f"next: poiflow conflate ... --decisions {decision.labels} (or decisions: "
        f"{decision.labels} in a pipeline)",
        highlight=False,
    )
