"""What a run prints beside its tables of figures: the ingest table with its notes and
warnings, a person's decisions followed, and how right the golden records are."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.table import Table

from poiflow.cli import console
from poiflow.quality.notes import input_notes

if TYPE_CHECKING:
    from poiflow.pipeline import IngestReport

__all__ = ["checks_line", "counted", "decisions_line", "golden_line", "print_ingest_report"]


def print_ingest_report(
    report: IngestReport, *, paths: bool = True, quarantine: str | Path | None = None
) -> None:
    """The ingest table and its balance; with ``paths``, where places and quarantine went.

    An input that added nothing (no record, or every one held back) is warned of, with
    where its records' reasons are (``quarantine``; default: the report's).
    """
    table = Table(title="Ingest", title_justify="left", show_edge=False)
    # On a narrow terminal (or in a log: 80 columns) a long name is broken, not cut short.
    table.add_column("input", overflow="fold")
    table.add_column("kind", overflow="fold")
    for column in ("read", "valid", "quarantined", "values withheld", "records/s"):
        table.add_column(column, justify="right")
    for s in report.inputs:
        rate = f"{s.read / s.seconds:,.0f}" if s.seconds > 0 else "-"
        table.add_row(
            Path(s.path).name,
            s.kind,
            f"{s.read:,}",
            f"{s.valid:,}",
            f"{s.quarantined:,}",
            f"{s.withheld_values:,}",
            rate,
        )
    console.print(table)
    check = "[green]✓[/green]" if report.balanced else "[red]✗[/red]"
    console.print(
        f"{check} read {report.read:,} = valid {report.valid:,} + quarantined "
        f"{report.quarantined:,}; {report.withheld_values:,} values withheld "
        f"({report.seconds:.1f} s)"
    )
    held = quarantine if quarantine is not None else report.quarantine
    first: dict[str, str] = {}
    for s in report.inputs:
        shared = sorted(name for name in s.sources if first.get(name, s.path) != s.path)
        for name in shared:
            console.print(
                f"[yellow]note[/yellow]: {first[name]} and {s.path} both give source '{name}', "
                "so they are one source: an id in both is held back as a repeat (a mapping's "
                "'source:' keeps them apart)"
            )
        for name in s.sources:
            first.setdefault(name, s.path)
        if s.read == 0:
            console.print(f"[yellow]warning[/yellow]: {s.path} holds no records")
        elif s.valid == 0:
            console.print(
                f"[yellow]warning[/yellow]: {s.path}: all {s.read:,} of its records were "
                f"quarantined, so it adds nothing; their reasons are in {held}"
            )
    # What the inputs mean for matching, and what ingest repaired (a repair of one kind in
    # many inputs, a habit of them all, said once), as the report says it.
    for note in input_notes(report.to_dict()["inputs"]):
        console.print(f"[yellow]note[/yellow]: {escape(note)}")
    if paths:
        console.print(f"places:     [bold]{report.output}[/bold]")
        console.print(f"quarantine: {report.quarantine}")


def decisions_line(decided: dict[str, int]) -> str:
    """What became of a person's decisions, in a line of a run's summary."""
    followed = decided["match"] + decided["different"]
    line = (
        f"decisions: {followed:,} followed ({decided['match']:,} match, "
        f"{decided['different']:,} different), {decided['overruled']:,} of them against "
        "the model"
    )
    if decided["not_in_run"]:
        line += (
            f"; {decided['not_in_run']:,} name a record this run does not have "
            "(decisions.parquet: in_run false)"
        )
    return line


def counted(n: int, noun: str) -> str:
    """``n`` and its noun, plural unless one: ``counted(1, "place")`` is "1 place",
    ``counted(1200, "place")`` "1,200 places"."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def checks_line(checks: Mapping[str, Any], where: str) -> str | None:
    """What the run's quality checks found (``run.json``'s ``checks``), in a line of its
    summary: how many flagged places, at which level, the checks that flagged the most,
    and where to look (None when the run ran none)."""
    ran, failed = checks.get("checks"), checks.get("failed")
    if not ran or failed is None:
        return None
    if not failed:
        return f"quality checks: none of {ran:,} flagged a place"
    errors, warnings = checks.get("errors", 0), checks.get("warnings", 0)
    at_error = checks.get("failed_at_error")
    named = f" ({', '.join(map(escape, at_error))})" if at_error else ""
    level = (
        f"[red]{counted(errors, 'issue')} of error level{named}[/red]"
        if errors
        else "none of error level"
    )
    most = sorted(failed.items(), key=lambda item: (-item[1], item[0]))
    shown = ", ".join(f"{escape(name)} {count:,}" for name, count in most[:3])
    more = f" and {len(most) - 3} more" if len(most) > 3 else ""
    return (
        f"quality checks: {len(failed):,} of {ran:,} flagged places, {level} and {warnings:,} "
        f"of warn level; the most: {shown}{more} (each in {escape(where)}/issues.parquet, "
        "the whole in report.html)"
    )


def golden_line(metrics: dict[str, float]) -> str | None:
    """How right the golden records are, in a line of a run's summary (None when the run
    was not given the true places)."""
    shown = [
        a
        for a in ("name", "category", "location", "address", "phone")
        if f"golden.{a}.accuracy" in metrics
    ]
    if not shown:
        return None
    return (
        "golden records right (naive merge): "
        + ", ".join(
            f"{a} {metrics[f'golden.{a}.accuracy']:.3f} "
            f"({metrics.get(f'golden.{a}.naive_accuracy', float('nan')):.3f})"
            for a in shown
        )
        + "; more: poiflow evaluate --gold-places"
    )
