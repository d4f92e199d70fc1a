"""``poiflow explain``: why a run put two records in one place, or kept them apart."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Final

import typer
from rich.table import Column, Table
from rich.text import Text

from poiflow.cli import app, out, print_json
from poiflow.errors import InputError
from poiflow.quality.notes import unjudged_notes

if TYPE_CHECKING:  # the matcher's modules: only when the command runs
    from poiflow.pipeline.explaining import PairStory
    from poiflow.pipeline.place_story import PlaceStory

_BAR: Final = 24  # the widest part's bar, in characters
_SHOWN: Final = ("name", "category", "address", "phones", "websites", "point", "update_time")


@app.command(name="explain", no_args_is_help=True)
def explain_command(
    run: Annotated[
        Path, typer.Argument(help="An output folder of 'poiflow conflate' or 'run'.", metavar="RUN")
    ],
    left: Annotated[
        str,
        typer.Argument(
            help="A place id, or a record as SOURCE:ID (with RIGHT: one of two).", metavar="LEFT"
        ),
    ],
    right: Annotated[
        str | None,
        typer.Argument(help="The other record, as SOURCE:ID.", metavar="RIGHT", show_default=False),
    ] = None,
    model: Annotated[
        Path | None,
        typer.Option(
            help="Score the pair with this model file instead of the run's own.", metavar="FILE"
        ),
    ] = None,
    every: Annotated[
        bool, typer.Option("--all", help="Show every feature, not only those that matter.")
    ] = False,
    json_report: Annotated[bool, typer.Option("--json", help="Print it as JSON.")] = False,
    page: Annotated[
        Path | None,
        typer.Option(
            "--html",
            help="Also write the pair's story as a web page (a waterfall of its score).",
            metavar="FILE",
        ),
    ] = None,
) -> None:
    """Why a run put two records in one place or kept them apart; or why a place says what
    it says.

    With two records, shows the two records as the run normalized them; whether blocking made them a
    candidate pair; the matcher's score taken apart, each feature's part in bits (+1
    bit doubles the odds of a match; a trained model's parts are its SHAP values, a
    Fellegi-Sunter model's its match weights); and what clustering made of it: one
    place (scored above the threshold, or joined through other records, and which), or
    two (scored below it, never compared, or kept apart by a clustering rule, and which).
    For a pair never compared, the score is what the model would have said.

    With a place (its id, or one of its records), shows its chosen values with their
    confidence, and each of its records beside them: what it says (green where it agrees
    with the place, yellow where not), the values the place took from it, how far its
    point lies from the place's, and its strongest link to the others; then how often
    each source is right, which weighs each record's say.

    [bold]Examples[/bold]

      poiflow explain out/run source_a:A0000009 source_c:C0011503
      poiflow explain out/run p000172b16d4ba6e8
      poiflow explain out/run source_a:A0000009      # the place of this record
      poiflow explain out/run osm:n2386171544 vendor:A-1187 --json
      poiflow explain out/run source_a:A0000009 source_c:C0011503 --model my-model.json.gz
      poiflow explain out/run source_a:A0000009 source_c:C0011503 --html why.html

    A record's SOURCE is its source's name in the run (membership.parquet's source
    column: an input file's name without its extension, unless a mapping names it).
    """
    from poiflow.pipeline.explaining import explain_pair

    if right is None:
        from poiflow.pipeline.place_story import explain_place

        if model is not None or every or page is not None:
            raise InputError(
                "--model, --all and --html take a pair's score apart: name two records"
            )
        place = explain_place(run, left)
        if json_report:
            print_json(place.as_dict())
        else:
            draw_place(place)
        return
    story = explain_pair(run, left, right, model=model)
    if page is not None:
        from poiflow.quality.explain_page import write_explain_page

        write_explain_page(story.as_dict(), page)
    if json_report:
        print_json(story.as_dict())
        return
    draw_story(story, every=every)
    if page is not None:
        out.print(f"the page: {page}")


def draw_story(story: PairStory, *, every: bool = False) -> None:
    """The two records, the score's parts and the verdict, on the terminal."""
    from poiflow.pipeline.place_story import field_text

    a, b = story.records
    records = Table(  # each column's text broken over lines, not cut, where it is long
        Column("", overflow="fold"),
        *(Column(f"{r['source']}:{r['id']}", overflow="fold") for r in (a, b)),
        show_edge=False,
    )
    for field in _SHOWN:
        records.add_row(field.replace("_", " "), field_text(a, field), field_text(b, field))
    out.print(records)
    out.print()
    explanation = story.explanation
    said = f"{explanation.probability:.3f}"
    if story.run_probability is None:
        title = f"Never compared; {story.model} would score the pair {said}"
    elif abs(story.run_probability - explanation.probability) > 5e-7:
        title = (
            f"{story.model} scores the pair {said} (the run scored it {story.run_probability:.3f})"
        )
    else:
        title = f"Why {story.model} scores the pair {said}"
    parts = Table(
        "feature" if explanation.calibrated else "comparison",
        "this pair",
        Column("bits", justify="right"),
        "",
        show_edge=False,
        title=title,
        title_justify="left",
    )
    parts.add_row(
        "an average pair" if explanation.calibrated else "prior odds",
        "",
        f"{explanation.start_bits:+.1f}",
        "",
    )
    widest = max((abs(p.bits) for p in explanation.parts), default=1.0) or 1.0
    shown = [p for p in explanation.parts if every or abs(p.bits) >= 0.1]
    for part in shown:
        bar = "━" * max(1, round(_BAR * abs(part.bits) / widest))
        parts.add_row(
            part.label,
            part.shows,
            f"{part.bits:+.1f}",
            Text(bar, style="green" if part.bits > 0 else "red"),
        )
    rest = [p for p in explanation.parts if p not in shown]
    if rest:
        parts.add_row(
            f"{len(rest)} more, each under 0.1", "", f"{sum(p.bits for p in rest):+.1f}", ""
        )
    after = "then calibrated" if explanation.calibrated else "its probability"
    parts.add_row(
        Text("score", style="bold"),
        "",
        Text(f"{explanation.total_bits:+.1f}", style="bold"),
        f"{after}: {explanation.probability:.3f}",
    )
    if math.isfinite(story.threshold_bits):
        gap = explanation.total_bits - story.threshold_bits
        said = f"{abs(gap):.1f} bits {'above' if gap >= 0 else 'short of'} it"
        parts.add_row(
            f"joined from p {story.threshold:g}",
            "",
            f"{story.threshold_bits:+.1f}",
            Text(said, style="dim"),
        )
    out.print(parts)
    out.print()
    together = story.places[0] == story.places[1]
    colour = "green" if together else "yellow"
    out.print(f"[bold {colour}]{story.verdict}[/bold {colour}]", highlight=False)
    if together:
        out.print(f"place {story.places[0]}", highlight=False)
    else:
        out.print(f"places {story.places[0]} and {story.places[1]}", highlight=False)
    if not story.candidate and not story.blocking:
        out.print(
            "[dim]blocking compares records that share a rare name word nearby, lie within "
            "about 100 m, share a phone, or a website domain within a few km (without "
            "coordinates: a rare name word or the street address in one locality)[/dim]"
        )
    if story.path:
        chain = " -> ".join(f"{key} ({p:.2f})" for key, p in story.path)
        out.print(f"joined by: {a['source']}:{a['id']} -> {chain}", highlight=False)


def draw_place(story: PlaceStory) -> None:
    """A place's chosen values, its records beside them, and its sources' accuracy."""
    from poiflow.pipeline.place_story import ATTRIBUTES

    place = story.place
    confidence = place.get("attribute_confidence") or {}
    n = len(story.records)
    whole = (
        "that they are one whole place (all of it, and nothing else)"
        if n > 1
        else "that it is a whole place (no record of it split off to another)"
    )
    out.print(
        f"[bold]{place['id']}[/bold]: {n} record{'s' * (n != 1)}; "
        f"{place['confidence']:.2f} {whole}",
        highlight=False,
    )
    golden = story.values()
    table = Table(  # each column's text broken over lines, not cut, where it is long
        Column("", overflow="fold"),
        Column("the place", overflow="fold"),
        *(Column(f"{r['source']}:{r['id']}", overflow="fold") for r in story.records),
    )
    for attribute in ATTRIBUTES:
        sure = confidence.get(attribute)
        head = Text(str(golden[attribute] or ""))
        if sure is not None and golden[attribute]:
            head.append(f" ({sure:.2f})", style="dim")
        label = attribute.replace("_", " ")  # "opening hours": it breaks at the space
        table.add_row(label, head, *(_said(story, r, attribute) for r in story.records))
    table.add_row(
        "strongest link",
        "",
        *("" if r["link"] is None else f"{r['link']:.2f}" for r in story.records),
    )
    table.add_row("the place took", "", *(", ".join(r["gave"]) for r in story.records))
    out.print(table)
    sources = sorted({r["source"] for r in story.records})
    learnt = story.source_accuracy
    if learnt:
        right = Table(
            "source",
            *(Column(a.replace("_", " "), overflow="fold") for a in ATTRIBUTES if a in learnt),
            show_edge=False,
            title="How often each source is right (learnt from the run; it weighs their say)",
            title_justify="left",
        )
        for source in sources:
            right.add_row(
                source,
                *(
                    "" if learnt[a].get(source) is None else f"{learnt[a][source]:.2f}"
                    for a in ATTRIBUTES
                    if a in learnt
                ),
            )
        out.print()
        out.print(right)
        for line in unjudged_notes(learnt, [a for a in ATTRIBUTES if a in learnt]):
            out.print(Text(line, style="dim"))


def _said(story: PlaceStory, record: dict[str, object], attribute: str) -> Text:
    """What a record says of an attribute, coloured by whether the place agrees."""
    agrees = (record.get("agrees") or {}).get(attribute)  # type: ignore[attr-defined]
    style = None if agrees is None else "green" if agrees else "yellow"
    return Text(story.said(record, attribute), style=style or "")
