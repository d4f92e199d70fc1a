"""Quality checks of golden places: rules and anomaly detectors, each a small object.

A check returns a :class:`CheckResult`: whether it passed, a severity (a ``warn`` is worth a
look, an ``error`` is wrong data), a message, and one :class:`Issue` per place it flags
(the diagnostics). Rules test what must hold of every place (ranges, formats, a pharmacy
has a phone); anomaly detectors compare a place with the rest (far from its locality, a
name that says another category, a likely duplicate left after conflation, stale).
What a check is lives in :mod:`poiflow.quality.checking`, the built-in ones in
:mod:`poiflow.quality.place_checks`; this module runs them, and a user's own
(:class:`FunctionCheck`).

>>> results = run_checks(QualityInput(places))      # doctest: +SKIP
>>> [r.name for r in results if not r.passed]       # doctest: +SKIP
['pharmacy_has_phone', 'in_the_sea']
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import polars as pl
import pyarrow as pa

from poiflow.errors import ConfigError, did_you_mean
from poiflow.quality.checking import (
    Check,
    CheckResult,
    Issue,
    Kind,
    QualityInput,
    Severity,
    result,
)
from poiflow.quality.place_checks import (
    CategoryNeeds,
    ConfidenceInRange,
    CoordinatesInRange,
    FarFromLocality,
    HasLocation,
    InTheSea,
    LikelyDuplicates,
    NameSaysOtherCategory,
    OutsideItsCountry,
    PhoneFormat,
    SharedPhone,
    StackedPoint,
    Stale,
    StatusDisagrees,
    WebsiteFormat,
)

__all__ = [
    "DEFAULT_CHECKS",
    "CategoryNeeds",
    "Check",
    "CheckResult",
    "ConfidenceInRange",
    "CoordinatesInRange",
    "FarFromLocality",
    "FunctionCheck",
    "HasLocation",
    "InTheSea",
    "Issue",
    "Kind",
    "LikelyDuplicates",
    "NameSaysOtherCategory",
    "OutsideItsCountry",
    "PhoneFormat",
    "QualityInput",
    "Severity",
    "SharedPhone",
    "StackedPoint",
    "Stale",
    "StatusDisagrees",
    "WebsiteFormat",
    "built_in_checks",
    "issues_table",
    "results_table",
    "run_checks",
]

DEFAULT_CHECKS: tuple[Any, ...] = (
    CoordinatesInRange(),
    HasLocation(),
    InTheSea(),
    OutsideItsCountry(),
    StackedPoint(),
    PhoneFormat(),
    WebsiteFormat(),
    SharedPhone(),
    ConfidenceInRange(),
    CategoryNeeds("pharmacy", "phones"),
    CategoryNeeds("hospital", "phones"),
    CategoryNeeds("hotel", "phones"),
    FarFromLocality(),
    NameSaysOtherCategory(),
    LikelyDuplicates(),
    StatusDisagrees(),
    Stale(),
)


@dataclass(frozen=True, slots=True)
class FunctionCheck:
    """A check of the user's own: ``function(places, **params)`` of the golden places (a
    polars DataFrame: ``QualityInput.frame``) returns the places it flags, a table with
    their ``id`` and, if it likes, a ``detail`` each (polars, Arrow or pandas)."""

    name: str
    function: Callable[..., Any]
    severity: Severity = "warn"
    description: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)
    kind: ClassVar[Kind] = "rule"

    def run(self, data: QualityInput) -> CheckResult:
        """Run the function, and hold what it returns to the places it was given.

        Raises:
            ConfigError: It failed, or returned something else than places of ``data``.
        """
        where = f"check '{self.name}'"
        try:
            flagged = pl.DataFrame(self.function(data.frame.clone(), **self.params))
        except Exception as exc:
            raise ConfigError(f"{where} failed: {type(exc).__name__}: {exc}") from exc
        if "id" not in flagged.columns:
            raise ConfigError(
                f"{where} must return the places it flags, a table with an 'id' column (and "
                f"a 'detail'); it returned columns {', '.join(flagged.columns) or 'none'}"
            )
        ids = flagged["id"].cast(pl.String)
        unknown = ids.filter(~ids.is_in(data.frame["id"]) | ids.is_null())
        if len(unknown):
            raise ConfigError(
                f"{where} returned {len(unknown):,} ids that are no place of the run, "
                f"first '{unknown[0]}'"
            )
        if "detail" in flagged.columns:
            details = flagged["detail"].cast(pl.String).fill_null(self.description)
        else:
            details = pl.Series([self.description or self.name] * len(ids))
        return result(self, data.frame.height, ids.to_list(), details.to_list())


def built_in_checks(
    *,
    skip: Sequence[str] = (),
    stale_years: float = 3.0,
    needs: Mapping[str, Sequence[Literal["phones", "websites", "opening_hours"]]] | None = None,
) -> list[Check]:
    """The built-in checks, as a pipeline's ``checks`` settings shape them: those named in
    ``skip`` left out, ``stale`` at ``stale_years``, one ``CATEGORY_has_FIELD`` check per
    field a category ``needs`` (None: those of ``DEFAULT_CHECKS``), where those stand.

    Raises:
        ConfigError: ``skip`` names no built-in check (with the names there are).
    """
    built_in = [c for c in DEFAULT_CHECKS if isinstance(c, CategoryNeeds)]
    needed = (
        built_in
        if needs is None
        else [CategoryNeeds(category, wanted) for category, f in needs.items() for wanted in f]
    )
    at = DEFAULT_CHECKS.index(built_in[0])
    others = [
        Stale(stale_years) if isinstance(c, Stale) else c
        for c in DEFAULT_CHECKS
        if not isinstance(c, CategoryNeeds)
    ]
    checks: list[Check] = [*others[:at], *needed, *others[at:]]
    names = [check.name for check in checks]
    for name in skip:
        if name not in names:
            raise ConfigError(
                f"checks.skip: no built-in check '{name}'.{did_you_mean(name, names)} "
                f"The checks: {', '.join(names)}"
            )
    return [check for check in checks if check.name not in skip]


def run_checks(data: QualityInput, checks: Sequence[Check] = DEFAULT_CHECKS) -> list[CheckResult]:
    """Run ``checks`` (by default every built-in rule and detector) on ``data``."""
    return [check.run(data) for check in checks]


def results_table(results: Sequence[CheckResult]) -> pa.Table:
    """One row per check: name, kind, severity, checked, failed, passed, message."""
    return pa.table(
        {
            "check": [r.name for r in results],
            "kind": [r.kind for r in results],
            "severity": [r.severity for r in results],
            "description": [r.description for r in results],
            "checked": pa.array([r.checked for r in results], pa.int64()),
            "failed": pa.array([len(r.issues) for r in results], pa.int64()),
            "passed": [r.passed for r in results],
            "message": [r.message for r in results],
        }
    )


def issues_table(results: Sequence[CheckResult]) -> pa.Table:
    """One row per flagged place and check: check, severity, place_id, detail."""
    issues = [issue for result in results for issue in result.issues]
    return pa.table(
        {
            "check": pa.array([i.check for i in issues], pa.string()),
            "severity": pa.array([i.severity for i in issues], pa.string()),
            "place_id": pa.array([i.place_id for i in issues], pa.string()),
            "detail": pa.array([i.detail for i in issues], pa.string()),
        }
    )
