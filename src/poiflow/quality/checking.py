"""What a quality check is (:class:`Check`), what it looks at (:class:`QualityInput`) and
what it finds (:class:`CheckResult`, one :class:`Issue` per place it flags), and the
helpers the built-in checks make their results with."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

import polars as pl
import pyarrow as pa

from poiflow.schema import GOLDEN_PLACE_SCHEMA

__all__ = [
    "Check",
    "CheckResult",
    "Issue",
    "Kind",
    "QualityInput",
    "Severity",
    "each_value",
    "flagged",
    "result",
]

Severity = Literal["warn", "error"]
Kind = Literal["rule", "anomaly"]


@dataclass(frozen=True, slots=True)
class Issue:
    """One place a check flagged, and why."""

    check: str
    severity: Severity
    place_id: str
    detail: str


@dataclass(frozen=True, slots=True)
class CheckResult:
    """What one check found.

    Attributes:
        name: The check ("phone_format").
        kind: ``rule`` or ``anomaly``.
        severity: ``warn`` or ``error``.
        description: What it checks, for people.
        checked: Places it applied to.
        issues: The places it flagged.
    """

    name: str
    kind: Kind
    severity: Severity
    description: str
    checked: int
    issues: tuple[Issue, ...]

    @property
    def passed(self) -> bool:
        """No place was flagged."""
        return not self.issues

    @property
    def message(self) -> str:
        """One line: passed, or how many places failed (nothing to check: no place it
        applies to, as a hospital's phone in a town without one)."""
        if not self.checked:
            return "nothing to check: no place it applies to"
        if self.passed:
            return f"passed ({self.checked:,} places checked)"
        return f"{len(self.issues):,} of {self.checked:,} places: {self.issues[0].detail}" + (
            ", ..." if len(self.issues) > 1 else ""
        )


@dataclass(frozen=True, slots=True)
class QualityInput:
    """What checks look at.

    Attributes:
        places: Golden places (``GOLDEN_PLACE_SCHEMA``).
        pairs: Scored pairs (``pairs.parquet``), for the duplicates detector.
        membership: Each record's place, for the duplicates detector and what the
            records of a place say.
        as_of: "Now" for staleness; default: the newest update time in the places, so
            that the same data gives the same result whenever it is checked.
        records: The normalized records (``records.parquet``), for what the records of
            a place say (whether it is open).
    """

    places: pa.Table
    pairs: pa.Table | None = None
    membership: pa.Table | None = None
    as_of: datetime | None = None
    records: pa.Table | None = None
    frame: pl.DataFrame = field(init=False, repr=False)

    def __post_init__(self) -> None:
        frame = pl.DataFrame(self.places.select([f.name for f in GOLDEN_PLACE_SCHEMA]))
        frame = frame.with_columns(
            pl.col("names").struct.field("primary").alias("name"),
            pl.col("categories").struct.field("primary").alias("category"),
            pl.col("address").struct.field("locality").alias("locality"),
        )
        object.__setattr__(self, "frame", frame)

    def columns(self, *names: str) -> pl.DataFrame:
        """The places' ``id`` and the columns ``names`` of ``frame``: what a check filters,
        instead of every column (a filtered copy of the whole frame, with its lists of
        sources and alternates, took 0.4-0.6 GB and 0.4 s at 1.1M records)."""
        return self.frame.select("id", *names)


class Check(Protocol):
    """A quality check: a name, what it is, and how to run it."""

    @property
    def name(self) -> str:
        """Its name ("phone_format")."""

    @property
    def kind(self) -> Kind:
        """``rule`` or ``anomaly``."""

    @property
    def severity(self) -> Severity:
        """``warn`` or ``error``."""

    @property
    def description(self) -> str:
        """What it checks, for people."""

    def run(self, data: QualityInput) -> CheckResult:
        """Check ``data``."""


def result(check: Check, checked: int, ids: Sequence[str], details: Sequence[str]) -> CheckResult:
    issues = tuple(
        Issue(check.name, check.severity, place, detail)
        for place, detail in zip(ids, details, strict=True)
    )
    return CheckResult(check.name, check.kind, check.severity, check.description, checked, issues)


def flagged(check: Check, frame: pl.DataFrame, flagged: pl.DataFrame, detail: str) -> CheckResult:
    """The places of ``flagged`` in id order (whatever order a check's joins left them
    in), each with ``detail`` filled in from its row's columns."""
    flagged = flagged.sort("id", maintain_order=True)
    details = flagged.select(pl.format(_template(detail), *_fields(detail)).alias("d"))["d"]
    return result(check, frame.height, flagged["id"].to_list(), details.to_list())


def _fields(template: str) -> list[pl.Expr]:
    """The columns a ``pl.format`` template names as ``{column}`` (rewritten to ``{}``)."""
    return [
        pl.col(name).cast(pl.String).fill_null("-") for name in re.findall(r"\{(\w+)\}", template)
    ]


def _template(detail: str) -> str:
    return re.sub(r"\{\w+\}", "{}", detail)


def each_value(
    check: Check, data: QualityInput, column: str, pattern: str, problem: str
) -> CheckResult:
    """Flag the places with a value of list ``column`` that does not match ``pattern``."""
    values = data.frame.select("id", column).explode(column).drop_nulls(column)
    bad = values.filter(~pl.col(column).str.contains(pattern))
    bad = bad.group_by("id", maintain_order=True).first()
    checked = data.frame.select((pl.col(column).list.len() > 0).sum()).item()
    details = [f"{column.removesuffix('s')} '{v}' {problem}" for v in bad[column]]
    return result(check, checked, bad["id"].to_list(), details)
